"""The training and gate settings of one run: the project's defaults with the caller's overrides.

One place for the CLI, the demo and the Azure ML pipeline steps. Imports nothing that only the
ops environment has (no console, no CLI): the training jobs import it on the cluster, where
the environment holds the training packages only (`pipelines.azure.entities.TRAINING_PACKAGES`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from pipelines.gate import GateConfig
    from training.model import TrainingConfig


def training_config(
    alpha: float | None, seed: int | None, test_size: float | None
) -> TrainingConfig:
    """Project defaults with the command-line overrides applied."""
    from training.model import TrainingConfig

    overrides: dict[str, Any] = {"alpha": alpha, "seed": seed, "test_size": test_size}
    try:
        return replace(TrainingConfig(), **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as error:
        raise MlopsError(f"invalid training setting: {error}") from error


def gate_config(metric: str | None, min_improvement: float | None) -> GateConfig:
    """Gate defaults with the command-line overrides applied."""
    from pipelines.gate import GateConfig, GateError

    overrides: dict[str, Any] = {"metric": metric, "min_improvement": min_improvement}
    try:
        return replace(GateConfig(), **{k: v for k, v in overrides.items() if v is not None})
    except GateError as error:
        raise MlopsError(f"invalid gate setting: {error}") from error
