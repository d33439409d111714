"""The model: a deterministic split, a Ridge regression, and its golden sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from training.data import FEATURES, TARGET
from training.metrics import mean_baseline, regression_metrics


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters and split settings; the defaults are the project's defaults."""

    alpha: float = 0.5
    fit_intercept: bool = True
    test_size: float = 0.2
    seed: int = 42
    golden_rows: int = 5

    def __post_init__(self) -> None:
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0, got {self.alpha}")
        if not 0 < self.test_size < 1:
            raise ValueError(f"test_size must be between 0 and 1, got {self.test_size}")
        if self.golden_rows < 1:
            raise ValueError(f"golden_rows must be at least 1, got {self.golden_rows}")

    def params(self) -> dict[str, Any]:
        """Parameters as logged to the tracking server."""
        return asdict(self)


@dataclass(frozen=True)
class Split:
    """Training and holdout sets, as float arrays in feature order."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class GoldenSample:
    """A fixed sample of holdout rows and the model's predictions on them."""

    rows: list[list[float]]
    predictions: list[float]

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-ready form (golden.json in the model bundle, read by the smoke tests)."""
        return {"rows": self.rows, "predictions": self.predictions}


def split_data(frame: pd.DataFrame, config: TrainingConfig) -> Split:
    """Split deterministically: the same data and seed always give the same holdout."""
    features = frame.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    target = frame[TARGET].to_numpy(dtype=np.float64)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=config.test_size, random_state=config.seed
    )
    return Split(x_train, x_test, y_train, y_test)


def train_model(x_train: np.ndarray, y_train: np.ndarray, config: TrainingConfig) -> Ridge:
    """Fit the Ridge regression (feature names kept, so the model knows its schema)."""
    model = Ridge(alpha=config.alpha, fit_intercept=config.fit_intercept)
    model.fit(pd.DataFrame(x_train, columns=list(FEATURES)), y_train)
    return model


def predict(model: Ridge, rows: np.ndarray) -> np.ndarray:
    """Predictions for rows in feature order."""
    return np.asarray(model.predict(pd.DataFrame(rows, columns=list(FEATURES))), dtype=np.float64)


def golden_sample(model: Ridge, split: Split, config: TrainingConfig) -> GoldenSample:
    """The first `golden_rows` holdout rows and their predictions (fixed by the seed)."""
    rows = split.x_test[: config.golden_rows]
    return GoldenSample(
        rows=[[float(value) for value in row] for row in rows],
        predictions=[float(value) for value in predict(model, rows)],
    )


def linear_spec(model: Ridge) -> dict[str, Any]:
    """The coefficients that let the scoring image predict with numpy alone."""
    return {
        "kind": "linear",
        "features": list(FEATURES),
        "coef": [float(value) for value in model.coef_],
        "intercept": float(model.intercept_),
    }


@dataclass(frozen=True)
class TrainingResult:
    """Everything one training produces, before anything is written anywhere."""

    model: Ridge
    split: Split
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    golden: GoldenSample


def fit_and_evaluate(frame: pd.DataFrame, config: TrainingConfig) -> TrainingResult:
    """Split, fit, score on the holdout (model and mean baseline), and take the golden sample."""
    split = split_data(frame, config)
    model = train_model(split.x_train, split.y_train, config)
    return TrainingResult(
        model=model,
        split=split,
        metrics=regression_metrics(split.y_test, predict(model, split.x_test)),
        baseline_metrics=regression_metrics(
            split.y_test, mean_baseline(split.y_train, len(split.y_test))
        ),
        golden=golden_sample(model, split, config),
    )
