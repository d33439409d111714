"""Training for any model definition: a deterministic split, the fit, and the golden sample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from training.spec import ModelSpec, current_spec


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters (the definition's defaults, overridden by name) and split settings."""

    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    test_size: float = 0.2
    seed: int = 42
    golden_rows: int = 5
    spec: ModelSpec = field(default_factory=current_spec, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Resolved once: defaults filled in and every value checked against the definition.
        object.__setattr__(self, "hyperparameters", self.spec.hyperparameters(self.hyperparameters))
        if not 0 < self.test_size < 1:
            raise ValueError(f"test_size must be between 0 and 1, got {self.test_size}")
        if self.golden_rows < 1:
            raise ValueError(f"golden_rows must be at least 1, got {self.golden_rows}")

    def with_params(self, overrides: Mapping[str, float]) -> TrainingConfig:
        """The same settings with some hyperparameters changed."""
        return TrainingConfig(
            {**self.hyperparameters, **overrides},
            self.test_size,
            self.seed,
            self.golden_rows,
            self.spec,
        )

    def params(self) -> dict[str, Any]:
        """Parameters as logged to the tracking server (the definition's name included)."""
        return {
            "model_spec": self.spec.name,
            **self.hyperparameters,
            "test_size": self.test_size,
            "seed": self.seed,
            "golden_rows": self.golden_rows,
        }

    def describe(self) -> str:
        """`alpha=0.5, seed=42`: what a progress line shows."""
        values = [f"{name}={value:g}" for name, value in self.hyperparameters.items()]
        return ", ".join([*values, f"seed={self.seed}"])


@dataclass(frozen=True)
class Split:
    """Training and holdout sets: features as float arrays in feature order, targets."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class GoldenSample:
    """A fixed sample of holdout rows and the model's outputs on them."""

    rows: list[list[float]]
    predictions: list[Any]  # one number per row, or one list of probabilities per row

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-ready form (read by the smoke tests)."""
        return {"rows": self.rows, "predictions": self.predictions}


def target_array(values: Any, spec: ModelSpec) -> np.ndarray:
    """Targets as the task needs them: floats for a regressor, class indices for a classifier."""
    dtype = np.int64 if spec.task == "classification" else np.float64
    return np.asarray(values, dtype=dtype)


def split_data(frame: pd.DataFrame, config: TrainingConfig) -> Split:
    """Split deterministically: the same data and seed always give the same holdout.

    Classifiers are split stratified, so the holdout keeps the class balance.
    """
    spec = config.spec
    features = frame.loc[:, list(spec.feature_names)].to_numpy(dtype=np.float64)
    target = target_array(frame[spec.target.name], spec)
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=config.test_size,
        random_state=config.seed,
        stratify=target if spec.task == "classification" else None,
    )
    return Split(x_train, x_test, y_train, y_test)


def train_model(x_train: np.ndarray, y_train: np.ndarray, config: TrainingConfig) -> Any:
    """Fit the definition's estimator (feature names kept, so the model knows its schema)."""
    spec = config.spec
    model = spec.estimator(config.hyperparameters)
    model.fit(pd.DataFrame(x_train, columns=list(spec.feature_names)), y_train)
    return model


def predict(model: Any, rows: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """What the model serves for rows in feature order: values, or class probabilities."""
    frame = pd.DataFrame(rows, columns=list(spec.feature_names))
    outputs = np.asarray(getattr(model, spec.predict_method)(frame), dtype=np.float64)
    return outputs.reshape(-1) if spec.task == "regression" else outputs


def golden_sample(model: Any, split: Split, config: TrainingConfig) -> GoldenSample:
    """The first `golden_rows` holdout rows and the model's outputs (fixed by the seed)."""
    rows = split.x_test[: config.golden_rows]
    return GoldenSample(
        rows=[[float(value) for value in row] for row in rows],
        predictions=predict(model, rows, config.spec).tolist(),
    )


@dataclass(frozen=True)
class TrainingResult:
    """Everything one training produces, before anything is written anywhere."""

    model: Any
    split: Split
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    golden: GoldenSample


def fit_and_evaluate(frame: pd.DataFrame, config: TrainingConfig) -> TrainingResult:
    """Split, fit, score on the holdout (model and naive baseline), and take the golden sample."""
    spec = config.spec
    split = split_data(frame, config)
    model = train_model(split.x_train, split.y_train, config)
    return TrainingResult(
        model=model,
        split=split,
        metrics=spec.evaluate(split.y_test, predict(model, split.x_test, spec)),
        baseline_metrics=spec.evaluate(
            split.y_test, spec.baseline(split.y_train, len(split.y_test))
        ),
        golden=golden_sample(model, split, config),
    )
