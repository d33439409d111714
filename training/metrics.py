"""Holdout metrics and naive baselines, shared by the model definitions.

Every metric takes the truth and what the model serves: one value per row for a regressor, one
probability per class and row for a classifier (classes are 0..k-1, in the definition's output
order). A baseline returns outputs of the same shape from the training targets alone.
scikit-learn and numpy are imported when a metric is computed, not when a definition is read:
the CLI's help and start-up stay fast (every command reads the definition for its help texts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from training.spec import Direction, Metric

if TYPE_CHECKING:
    import numpy as np


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import numpy as np
    from sklearn.metrics import mean_squared_error

    return float(np.sqrt(mean_squared_error(y_true, y_pred)))


def _mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y_true, y_pred))


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y_true, y_pred))


def _classes(proba: np.ndarray) -> list[int]:
    return list(range(proba.shape[1]))


def _log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y_true, proba, labels=_classes(proba)))


def _roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if proba.shape[1] == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    return float(roc_auc_score(y_true, proba, multi_class="ovr", labels=_classes(proba)))


def _accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    import numpy as np

    return float(np.mean(np.asarray(y_true) == np.argmax(proba, axis=1)))


RMSE = Metric("rmse", "lower", _rmse)
MAE = Metric("mae", "lower", _mae)
R2 = Metric("r2", "higher", _r2)
LOG_LOSS = Metric("log_loss", "lower", _log_loss)
ROC_AUC = Metric("roc_auc", "higher", _roc_auc)
ACCURACY = Metric("accuracy", "higher", _accuracy)


def mean_baseline(y_train: np.ndarray, n_rows: int) -> np.ndarray:
    """The naive regressor: predict the training mean for every row."""
    import numpy as np

    return np.full(n_rows, float(np.mean(y_train)), dtype=np.float64)


def prior_baseline(n_classes: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """The naive classifier: the training class frequencies for every row."""

    def baseline(y_train: np.ndarray, n_rows: int) -> np.ndarray:
        import numpy as np

        counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)
        return np.tile(counts / counts.sum(), (n_rows, 1)).astype(np.float64)

    return baseline


# Which way is better, per metric of the catalog above (the gate reads this).
METRIC_DIRECTIONS: dict[str, Direction] = {
    metric.name: metric.direction for metric in (RMSE, MAE, R2, LOG_LOSS, ROC_AUC, ACCURACY)
}
