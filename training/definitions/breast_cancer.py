"""The classifier example: logistic regression on scikit-learn's bundled breast cancer data.

It serves class probabilities (`predict_proba`) and is gated on log loss. Features are the
data set's 30 measurements with spaces turned into underscores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.metrics import ACCURACY, LOG_LOSS, ROC_AUC, prior_baseline
from training.spec import Column, ModelSpec, Param

_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave_points",
    "symmetry",
    "fractal_dimension",
)
# scikit-learn's order: the 10 means, their standard errors, then the 10 worst values.
FEATURES = tuple(
    Column(name)
    for name in (
        *(f"mean_{m}" for m in _MEASURES),
        *(f"{m}_error" for m in _MEASURES),
        *(f"worst_{m}" for m in _MEASURES),
    )
)
TARGET = Column("target", "long")
CLASSES = ("malignant", "benign")  # target 0 and 1, as scikit-learn labels them


def load_bundled() -> Any:
    """scikit-learn's breast cancer data: 569 rows, 30 features, target 0 malignant 1 benign."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns=lambda name: str(name).replace(" ", "_"))


def estimator(params: Mapping[str, float]) -> Any:
    """Standardised features into an L2-regularised logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=params["C"], max_iter=1000))


SPEC = ModelSpec(
    name="breast-cancer",
    title="Breast cancer diagnosis",
    task="classification",
    features=FEATURES,
    target=TARGET,
    load_bundled=load_bundled,
    data_description="the bundled breast cancer data",
    params=(
        Param("C", 1.0, "inverse regularisation strength", minimum=0.0, exclusive_minimum=True),
    ),
    estimator=estimator,
    outputs=tuple(Column(f"probability_{name}") for name in CLASSES),
    metrics=(LOG_LOSS, ROC_AUC, ACCURACY),
    gate_metric="log_loss",
    baseline=prior_baseline(len(CLASSES)),
    tuned={"C": 3.0},
    worse={"C": 0.0001},
    registered_name="breast-cancer-logistic",
)
