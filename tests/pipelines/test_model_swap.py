"""A fork that swaps the estimator: one line in the definition, and the lifecycle stays true.

The issue's PoissonRegressor fork: it has `coef_`, so a linear fast path used to serve
X·coef + b without its log link (training said RMSE 56, the gate saw 158). Now the bundle
serves the estimator, and the gate scores exactly what training measured.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.gate import GateConfig
from pipelines.steps import Tracking, evaluate, register, train
from scoring.model_bundle import SERVING_ESTIMATOR, load_predictor
from training.definitions import diabetes
from training.model import TrainingConfig


def poisson(params: Mapping[str, float]) -> Any:
    """The one-line change a fork makes in training/definitions/diabetes.py."""
    from sklearn.linear_model import PoissonRegressor

    return PoissonRegressor(alpha=params["alpha"], max_iter=1000)


@pytest.fixture
def poisson_spec(monkeypatch: pytest.MonkeyPatch):
    spec = replace(diabetes.SPEC, estimator=poisson)
    monkeypatch.setattr(diabetes, "SPEC", spec)
    return spec


def test_poisson_trains_gates_on_its_true_score_and_serves_the_estimator(
    tracking: Tracking, poisson_spec: Any
) -> None:
    outcome = train(tracking, TrainingConfig({"alpha": 0.1}, spec=poisson_spec), None)
    run = tracking.client.get_run(outcome.run_id)
    assert run.data.tags["serving_path"] == SERVING_ESTIMATOR
    _, decision = evaluate(tracking, outcome.run_id, GateConfig())
    # The gate's score of the candidate is the holdout RMSE training reported.
    assert decision.metric == "rmse"
    assert decision.candidate_score == pytest.approx(outcome.metrics["rmse"], rel=1e-12)
    assert decision.passed  # it beats the mean baseline, as its true score says
    version = register(tracking, outcome.run_id)
    assert version.tags["serving_path"] == SERVING_ESTIMATOR
    with tempfile.TemporaryDirectory() as scratch:
        bundle = tracking.registry.download(version, Path(scratch))
        served, _ = load_predictor(bundle)
        golden = tracking.registry.golden(version)
        rows = np.asarray(golden["rows"])
        np.testing.assert_allclose(served(rows), golden["predictions"], rtol=1e-12)
