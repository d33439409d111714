"""The numpy fast path: written only when it reproduces the estimator's own outputs.

A linear estimator (optionally behind StandardScaler steps, folded into its coefficients)
becomes an affine map; the serving code (`scoring.model_bundle.fast_predictor`) applies it with
an identity or a logistic link. Each candidate is checked on the golden rows against what the
estimator itself serves; the first that matches within tolerance is kept. A model with no
matching candidate (a GLM with a log link such as PoissonRegressor, a multinomial classifier,
a tree ensemble) gets no fast path and is served through its estimator: a speed path must
never change the answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from scoring.model_bundle import LINKS, fast_predictor
from training.spec import ModelSpec

# Outputs must agree to ~7 significant digits: far below any metric's resolution, far above
# the float64 rounding of a folded scaler (~1e-15 relative).
RTOL = 1e-7
ATOL = 1e-9


def affine_map(model: Any) -> tuple[np.ndarray, float] | None:
    """(coef, intercept) in raw-feature space, or None when the model is not one affine map."""
    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    *preprocessing, final = steps
    coef = getattr(final, "coef_", None)
    if coef is None:
        return None
    coef = np.asarray(coef, dtype=np.float64)
    if coef.ndim == 2:
        if coef.shape[0] != 1:  # one row per class: not a binary model
            return None
        coef = coef[0]
    intercept = float(np.ravel(np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64))[0])
    for step in reversed(preprocessing):
        if not isinstance(step, StandardScaler):
            return None
        scale = step.scale_ if step.scale_ is not None else np.ones_like(coef)
        mean = step.mean_ if step.mean_ is not None else np.zeros_like(coef)
        coef = coef / scale
        intercept -= float(coef @ mean)
    return coef, intercept


def candidates(model: Any, spec: ModelSpec) -> list[dict[str, Any]]:
    """The fast paths worth trying for this task (each a fast_path.json document)."""
    found = affine_map(model)
    if found is None:
        return []
    coef, intercept = found
    links = ("identity",) if spec.task == "regression" else ("logistic",)
    return [
        {"kind": "linear", "link": link, "coef": coef.tolist(), "intercept": intercept}
        for link in links
        if link in LINKS
    ]


def verified_fast_path(
    model: Any, spec: ModelSpec, rows: np.ndarray, expected: np.ndarray
) -> dict[str, Any] | None:
    """The first candidate whose outputs on `rows` match `expected` (the estimator's own)."""
    for candidate in candidates(model, spec):
        with np.errstate(all="ignore"):
            got = np.asarray(fast_predictor(candidate)(rows), dtype=np.float64)
        if got.shape == expected.shape and np.allclose(got, expected, rtol=RTOL, atol=ATOL):
            return candidate
    return None
