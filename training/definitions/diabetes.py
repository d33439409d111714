"""The default example: a ridge regressor on scikit-learn's bundled diabetes data.

To fork the template onto your own regression problem, edit this file: the features and the
target (names and types), the loader, the estimator and its parameters (docs/forking.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.metrics import MAE, R2, RMSE, mean_baseline
from training.spec import Column, ModelSpec, Param

FEATURES = tuple(
    Column(name) for name in ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
)
TARGET = Column("target")


def load_bundled() -> Any:
    """scikit-learn's diabetes data: 442 rows, scaled features, raw target."""
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


def estimator(params: Mapping[str, float]) -> Any:
    """The unfitted model for the given hyperparameters."""
    from sklearn.linear_model import Ridge

    return Ridge(alpha=params["alpha"])


SPEC = ModelSpec(
    name="diabetes",
    title="Diabetes progression",
    task="regression",
    features=FEATURES,
    target=TARGET,
    load_bundled=load_bundled,
    data_description="the bundled diabetes data",
    params=(Param("alpha", 0.5, "Ridge regularisation strength", minimum=0.0),),
    estimator=estimator,
    outputs=(Column("prediction"),),
    metrics=(RMSE, MAE, R2),
    gate_metric="rmse",
    baseline=mean_baseline,
    tuned={"alpha": 0.1},
    worse={"alpha": 1000.0},
    registered_name="diabetes-ridge",
    demo_drift_feature="bmi",  # heavier patients: the demo's drifted production traffic
)
