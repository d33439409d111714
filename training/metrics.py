"""Holdout metrics and the naive baseline every model must beat."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

Direction = Literal["lower", "higher"]

# Which way is better, per metric: the gate reads this.
METRIC_DIRECTIONS: dict[str, Direction] = {"rmse": "lower", "mae": "lower", "r2": "higher"}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of predictions against the truth."""
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def mean_baseline(y_train: np.ndarray, n_rows: int) -> np.ndarray:
    """The naive model: predict the training mean for every row."""
    return np.full(n_rows, float(np.mean(y_train)), dtype=np.float64)
