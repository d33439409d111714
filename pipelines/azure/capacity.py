"""Autoscale settings of the Kubernetes deployment, from the project's capacity planner.

`infra.tooling.sizing.replicas` (also behind `mlops infra size`) applies Azure ML's formula:
replicas = ceil(rps x latency / target utilisation / max concurrent requests per replica).
The peak it returns is the autoscaler's ceiling; the floor keeps two replicas so a node upgrade
never leaves production on one pod. The same target utilisation goes to
`TargetUtilizationScaleSettings`, and the concurrency per replica is the deployment's own
`max_concurrent_requests_per_instance`, so the plan and the deployment cannot disagree.

Inputs (environment variables, so a CI stage and a laptop plan alike): MLOPS_PEAK_RPS
(default 20), MLOPS_LATENCY_MS (default 100: request time at the router, queueing included),
MLOPS_TARGET_UTILIZATION (default 0.7), MLOPS_MIN_REPLICAS (default 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from infra.tooling.sizing import SizingError, replicas
from pipelines.azure.entities import ScalePlan
from pipelines.errors import MlopsError


@dataclass(frozen=True)
class Load:
    """The load to plan for."""

    peak_rps: float = 20.0
    latency_ms: float = 100.0
    target_utilization: float = 0.7
    min_replicas: int = 2


def plan_capacity(load: Load, max_concurrent_per_replica: int) -> ScalePlan:
    """Autoscale floor, ceiling and target for the load."""
    try:
        peak = replicas(
            load.peak_rps, load.latency_ms, load.target_utilization, max_concurrent_per_replica
        )
    except SizingError as error:
        raise MlopsError(f"capacity plan: {error}") from error
    if load.min_replicas < 1:
        raise MlopsError(f"MLOPS_MIN_REPLICAS must be at least 1, got {load.min_replicas}")
    return ScalePlan(
        min_instances=load.min_replicas,
        max_instances=max(load.min_replicas, peak),
        target_utilization_percentage=round(load.target_utilization * 100),
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
        latency_ms=number("MLOPS_LATENCY_MS", defaults.latency_ms),
        target_utilization=number("MLOPS_TARGET_UTILIZATION", defaults.target_utilization),
        min_replicas=int(number("MLOPS_MIN_REPLICAS", defaults.min_replicas)),
    )
