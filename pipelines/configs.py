"""The training and gate settings of one run: the project's defaults with the caller's overrides.

One place for the CLI, the demo and the Azure ML pipeline steps. Imports nothing that only the
ops environment has (no console, no CLI): the training jobs import it on the cluster, where
the environment holds the training packages only (training/requirements.in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from pipelines.gate import GateConfig
    from training.model import TrainingConfig


def training_config(
    alpha: float | None,
    seed: int | None,
    test_size: float | None,
    params: Sequence[str] | None = None,
) -> TrainingConfig:
    """The definition's defaults with the command-line overrides applied.

    `--param NAME=VALUE` sets any hyperparameter of the definition; `--alpha A` is the
    diabetes example's `--param alpha=A`, kept as its own option.
    """
    from training.model import TrainingConfig
    from training.spec import parse_param

    split: dict[str, Any] = {"seed": seed, "test_size": test_size}
    try:
        hyperparameters = dict(parse_param(text) for text in params or ())
        if alpha is not None:
            if hyperparameters.get("alpha", alpha) != alpha:
                raise ValueError("--alpha and --param alpha=... disagree; give one of them")
            hyperparameters["alpha"] = alpha
        config = TrainingConfig(hyperparameters)
        return replace(config, **{k: v for k, v in split.items() if v is not None})
    except ValueError as error:
        raise MlopsError(f"invalid training setting: {error}") from error


def gate_config(metric: str | None, min_improvement: float | None) -> GateConfig:
    """Gate defaults (the definition's gate metric) with the command-line overrides applied."""
    from pipelines.gate import GateConfig, GateError
    from training.spec import current_spec

    overrides: dict[str, Any] = {"metric": metric, "min_improvement": min_improvement}
    try:
        spec = current_spec()
        if metric is not None and metric not in spec.directions:
            raise GateError(
                f"unknown gate metric '{metric}' for model {spec.name!r}; use one of "
                f"{', '.join(spec.metric_names)}"
            )
        return replace(GateConfig(), **{k: v for k, v in overrides.items() if v is not None})
    except GateError as error:
        raise MlopsError(f"invalid gate setting: {error}") from error
