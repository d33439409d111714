"""The model definition: the one place that says what is trained, on what, and how it is judged.

A definition (`ModelSpec`) declares the task, the features and the target with their types,
the bundled data loader, the estimator factory and its hyperparameters, what the model serves
(`predict` or `predict_proba` and the output columns), the metrics with their direction, the
gate metric, the baseline predictor and the demo's "tuned" and "clearly worse" settings.
Training, the data tests, the gate, the registry tags, the summaries, the CLI help and the demo
read it; the scoring side never imports it (it reads the contract training writes into the
bundle, see `training.bundle`). A monitor gets feature names, types and the target from
`spec.features` and `spec.target`.

Two examples live in `training/definitions/`: `diabetes` (a ridge regressor, the default) and
`breast-cancer` (a logistic classifier serving probabilities). `MLOPS_MODEL_SPEC` selects one.
docs/forking.md shows how to change or add one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # annotations only: the CLI's start-up path does not pay for numpy
    import numpy as np

Task = Literal["regression", "classification"]
Direction = Literal["lower", "higher"]
SPEC_VARIABLE = "MLOPS_MODEL_SPEC"
DEFAULT_SPEC = "diabetes"
# Name -> module under training/definitions that defines `SPEC`.
DEFINITIONS: dict[str, str] = {
    "diabetes": "training.definitions.diabetes",
    "breast-cancer": "training.definitions.breast_cancer",
}


class SpecError(ValueError):
    """A model definition, or a value given for one of its parameters, is not usable."""


@dataclass(frozen=True)
class Column:
    """A named column and its type, in MLflow's column-type names (`double`, `long`, ...)."""

    name: str
    type: str = "double"


@dataclass(frozen=True)
class Param:
    """A numeric hyperparameter of the estimator, with its default and lower bound."""

    name: str
    default: float
    help: str
    minimum: float | None = None
    exclusive_minimum: bool = False

    def check(self, value: float) -> float:
        """The value as a float, or SpecError naming the parameter and its bound."""
        number = float(value)
        bound = self.minimum
        too_low = bound is not None and (
            number <= bound if self.exclusive_minimum else number < bound
        )
        if not math.isfinite(number) or too_low:
            sign = ">" if self.exclusive_minimum else ">="
            limit = f" {sign} {bound:g}" if bound is not None else ""
            raise SpecError(f"{self.name} must be a finite number{limit}, got {value}")
        return number


@dataclass(frozen=True)
class Metric:
    """A holdout metric: its name, which way is better and how it is computed from outputs."""

    name: str
    direction: Direction
    score: Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the template needs to know about one model (see the module docstring)."""

    name: str
    title: str
    task: Task
    features: tuple[Column, ...]
    target: Column
    load_bundled: Callable[[], Any]  # () -> pandas.DataFrame with the features and the target
    data_description: str
    params: tuple[Param, ...]
    estimator: Callable[[Mapping[str, float]], Any]  # hyperparameters -> unfitted estimator
    outputs: tuple[Column, ...]  # one "prediction" column, or one probability column per class
    metrics: tuple[Metric, ...]
    gate_metric: str
    baseline: Callable[[np.ndarray, int], np.ndarray]  # (y_train, rows) -> naive outputs
    tuned: Mapping[str, float] = field(default_factory=dict)
    worse: Mapping[str, float] = field(default_factory=dict)
    registered_name: str = ""
    # The demo's monitoring chapter sends the rows above this feature's median as drifted
    # traffic (None: the chapter is skipped; it monitors a single prediction column).
    demo_drift_feature: str | None = None

    def __post_init__(self) -> None:
        names = [column.name for column in self.features]
        if len(set(names)) != len(names):
            raise SpecError(f"model definition {self.name!r} lists a feature twice")
        if self.target.name in names:
            raise SpecError(f"model definition {self.name!r} uses its target as a feature")
        if self.gate_metric not in self.directions:
            raise SpecError(
                f"model definition {self.name!r}: gate metric {self.gate_metric!r} is not one "
                f"of its metrics ({', '.join(self.directions)})"
            )
        if self.task == "regression" and len(self.outputs) != 1:
            raise SpecError(f"model definition {self.name!r}: a regressor has one output column")
        if self.task == "classification" and len(self.outputs) < 2:
            raise SpecError(
                f"model definition {self.name!r}: a classifier has one probability per class"
            )
        for settings in (self.tuned, self.worse):
            self.hyperparameters(settings)
        if self.demo_drift_feature is not None and self.demo_drift_feature not in names:
            raise SpecError(
                f"model definition {self.name!r}: demo_drift_feature "
                f"{self.demo_drift_feature!r} is not one of its features"
            )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features, in the order every row lists them."""
        return tuple(column.name for column in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of a training table: the features, then the target."""
        return (*self.feature_names, self.target.name)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The names of what the model serves per row."""
        return tuple(column.name for column in self.outputs)

    @property
    def predict_method(self) -> str:
        """The estimator method whose result is served."""
        return "predict_proba" if self.task == "classification" else "predict"

    @property
    def directions(self) -> dict[str, Direction]:
        """Which way is better, per metric (the gate reads this)."""
        return {metric.name: metric.direction for metric in self.metrics}

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metrics in the order summaries show them."""
        return tuple(metric.name for metric in self.metrics)

    @property
    def model_name(self) -> str:
        """The registered model's default name."""
        return self.registered_name or self.name

    def asset_name(self, kind: str, separator: str = "-") -> str:
        """A name of this project's assets, `<definition><separator><kind>` (diabetes-scoring,
        diabetes_training): a fork's image, environments, pipeline and data sets are named
        after its own model definition."""
        return f"{self.name}{separator}{kind}".replace("-", separator)

    def default_params(self) -> dict[str, float]:
        """Every hyperparameter at its default."""
        return {param.name: param.default for param in self.params}

    def hyperparameters(self, overrides: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The defaults with `overrides` applied, each checked; SpecError on an unknown name."""
        known = {param.name: param for param in self.params}
        unknown = sorted(set(overrides or {}) - set(known))
        if unknown:
            raise SpecError(
                f"model {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are {', '.join(known) or '(none)'}"
            )
        values = self.default_params() | dict(overrides or {})
        return {name: known[name].check(value) for name, value in values.items()}

    def evaluate(self, y_true: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """Every metric of served outputs against the truth."""
        return {metric.name: float(metric.score(y_true, outputs)) for metric in self.metrics}


def parse_param(text: str) -> tuple[str, float]:
    """`NAME=VALUE` (as given to `--param`) -> (name, number); SpecError if malformed."""
    name, sep, value = text.partition("=")
    name = name.strip()
    try:
        if not sep or not name:
            raise ValueError(text)
        return name, float(value)
    except ValueError:
        raise SpecError(f"--param expects NAME=NUMBER, e.g. alpha=0.5; got {text!r}") from None


def spec_name_from_env() -> str:
    """The selected definition's name: MLOPS_MODEL_SPEC, else the default."""
    return os.environ.get(SPEC_VARIABLE, "").strip() or DEFAULT_SPEC


def load_spec(name: str) -> ModelSpec:
    """The definition registered under `name`; SpecError naming the known ones otherwise."""
    if name not in DEFINITIONS:
        raise SpecError(
            f"{SPEC_VARIABLE}={name!r} is not a model definition; use one of "
            f"{', '.join(DEFINITIONS)}"
        )
    spec: ModelSpec = import_module(DEFINITIONS[name]).SPEC
    return spec


def current_spec() -> ModelSpec:
    """The definition MLOPS_MODEL_SPEC selects (default: diabetes)."""
    return load_spec(spec_name_from_env())
