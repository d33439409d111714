"""Capacity planning for the Kubernetes deployment: replicas from load, pure arithmetic.

Inputs: the peak load to serve and what one replica sustains. The scoring server answers in
about 1 ms per request and sustains 110 to 275 requests/s per worker on a small CPU (design note
§6); the default below assumes 50 per replica, leaving room for slower nodes and larger batches.
Autoscaling keeps utilisation near the target, so the replicas needed at peak are
`ceil(peak / (per_replica * target))`; the floor keeps two replicas for availability during
node upgrades, and the ceiling doubles the peak need for bursts.

Settings (environment variables, so CI and a laptop plan alike): MLOPS_PEAK_RPS,
MLOPS_REPLICA_RPS, MLOPS_TARGET_UTILIZATION, MLOPS_MIN_REPLICAS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.azure.entities import ScalePlan
from pipelines.errors import MlopsError


@dataclass(frozen=True)
class Load:
    """The load to plan for."""

    peak_rps: float = 100.0
    replica_rps: float = 50.0
    target_utilization_percentage: int = 70
    min_replicas: int = 2


def plan_capacity(load: Load) -> ScalePlan:
    """Replicas and autoscale target for the load."""
    if load.peak_rps <= 0 or load.replica_rps <= 0:
        raise MlopsError(
            f"capacity planning needs positive loads, got peak {load.peak_rps} and per replica "
            f"{load.replica_rps} requests/s"
        )
    if not 10 <= load.target_utilization_percentage <= 90:
        raise MlopsError(
            "the target utilisation must be between 10 and 90 percent, got "
            f"{load.target_utilization_percentage}"
        )
    if load.min_replicas < 1:
        raise MlopsError(f"at least one replica is needed, got {load.min_replicas}")
    usable = load.replica_rps * load.target_utilization_percentage / 100
    needed = math.ceil(load.peak_rps / usable)
    minimum = max(load.min_replicas, 1)
    return ScalePlan(
        min_instances=minimum,
        max_instances=max(minimum, 2 * needed),
        target_utilization_percentage=load.target_utilization_percentage,
    )


def load_from_environment(environ: Mapping[str, str] | None = None) -> Load:
    """The load to plan for, from the MLOPS_* variables in the module docstring."""
    env = os.environ if environ is None else environ
    defaults = Load()

    def number(name: str, default: float) -> float:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            return float(raw)
        except ValueError:
            raise MlopsError(f"{name}={raw!r} is not a number") from None

    return Load(
        peak_rps=number("MLOPS_PEAK_RPS", defaults.peak_rps),
        replica_rps=number("MLOPS_REPLICA_RPS", defaults.replica_rps),
        target_utilization_percentage=int(
            number("MLOPS_TARGET_UTILIZATION", defaults.target_utilization_percentage)
        ),
        min_replicas=int(number("MLOPS_MIN_REPLICAS", defaults.min_replicas)),
    )
