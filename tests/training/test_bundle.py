"""The bundle carries its contract, and its fast path never changes an answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scoring.model_bundle import FAST_PATH, SERVING_ESTIMATOR, SERVING_NUMPY, load_predictor
from scoring.runtime import load_model
from tests.bundles import SPEC_NAMES, TrainedBundle, train_bundle
from training import fast_path
from training.spec import Column, SpecError, load_spec


@pytest.fixture(scope="module", params=SPEC_NAMES)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return train_bundle(request.param, tmp_path_factory.mktemp(request.param) / "model")


def test_the_signature_in_mlmodel_is_the_contracts_and_the_definitions(
    trained: TrainedBundle,
) -> None:
    mlmodel = yaml.safe_load((trained.path / "MLmodel").read_text())
    contract = json.loads((trained.path / "contract.json").read_text())
    assert contract["signature"]["inputs"] == mlmodel["signature"]["inputs"]
    assert contract["signature"]["outputs"] == mlmodel["signature"]["outputs"]
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [(c["name"], c["type"]) for c in inputs] == [
        (column.name, column.type) for column in trained.spec.features
    ]
    outputs = json.loads(mlmodel["signature"]["outputs"])
    assert [c["name"] for c in outputs] == list(trained.spec.output_names)
    read = trained.contract
    assert (read.features, read.outputs, read.task) == (
        trained.spec.feature_names,
        trained.spec.output_names,
        trained.spec.task,
    )


def test_both_examples_serve_a_verified_fast_path_equal_to_the_estimator(
    trained: TrainedBundle,
) -> None:
    assert trained.contract.serving == SERVING_NUMPY
    assert (trained.path / FAST_PATH).is_file()
    predict, _ = load_predictor(trained.path)
    np.testing.assert_allclose(
        predict(trained.rows), trained.expected(trained.rows), rtol=1e-9, atol=1e-12
    )


def test_a_classifier_serves_probabilities(trained: TrainedBundle) -> None:
    served = load_model(trained.path, trained.digest).score(trained.rows[:9])
    if trained.spec.task == "classification":
        assert served.shape == (9, len(trained.spec.outputs))
        np.testing.assert_allclose(served.sum(axis=1), 1.0)
        assert ((served >= 0) & (served <= 1)).all()
    else:
        assert served.shape == (9,)


@pytest.mark.parametrize(
    "estimator",
    [
        PoissonRegressor(alpha=0.1, max_iter=1000),
        HistGradientBoostingRegressor(max_iter=20, random_state=0),
    ],
    ids=["PoissonRegressor", "HistGradientBoostingRegressor"],
)
def test_another_regressor_serves_what_the_estimator_predicts(
    estimator: object, tmp_path: Path
) -> None:
    """The issue's forks: PoissonRegressor has coef_ but a log link; a tree ensemble has none.
    Neither gets a fast path, both serve the estimator's own predictions."""
    trained = train_bundle("diabetes", tmp_path / "model", estimator=estimator)
    assert trained.contract.serving == SERVING_ESTIMATOR
    assert not (trained.path / FAST_PATH).exists()
    served = load_model(trained.path, trained.digest).score(trained.rows)
    np.testing.assert_allclose(served, trained.expected(trained.rows), rtol=1e-12)


def test_a_linear_fast_path_for_poisson_would_change_the_answer(tmp_path: Path) -> None:
    """What the verification prevents: X·coef + b without the link is far from the truth."""
    trained = train_bundle(
        "diabetes", tmp_path / "model", estimator=PoissonRegressor(alpha=0.1, max_iter=1000)
    )
    (candidate,) = fast_path.candidates(trained.model, trained.spec)
    from scoring.model_bundle import fast_predictor

    linear = fast_predictor(candidate)(trained.rows)
    assert np.max(np.abs(linear - trained.expected(trained.rows))) > 10


def test_a_fast_path_that_does_not_reproduce_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fast_path.candidates

    def off_by_a_little(model: object, spec: object) -> list[dict]:
        found = real(model, spec)  # type: ignore[arg-type]
        for candidate in found:
            candidate["intercept"] += 1e-4
        return found

    monkeypatch.setattr(fast_path, "candidates", off_by_a_little)
    trained = train_bundle("diabetes", tmp_path / "model")
    assert trained.contract.serving == SERVING_ESTIMATOR
    assert not (trained.path / FAST_PATH).exists()


def test_a_logistic_model_never_serves_logits(tmp_path: Path) -> None:
    """A flattened logistic coef_ served as X·coef + b gives logits: the identity link is not
    even a candidate for a classifier, and the logistic one is checked."""
    spec = load_spec("breast-cancer")
    trained = train_bundle(spec, tmp_path / "model")
    assert [c["link"] for c in fast_path.candidates(trained.model, spec)] == ["logistic"]
    no_scaler = LogisticRegression(C=1.0, max_iter=5000)
    plain = train_bundle(spec, tmp_path / "plain", estimator=no_scaler)
    assert plain.contract.serving == SERVING_NUMPY
    served = load_model(plain.path, plain.digest).score(plain.rows)
    np.testing.assert_allclose(served, plain.expected(plain.rows), rtol=1e-9, atol=1e-12)


def test_scalers_fold_into_the_coefficients(tmp_path: Path) -> None:
    model = make_pipeline(StandardScaler(), Ridge(alpha=0.5))
    trained = train_bundle("diabetes", tmp_path / "model", estimator=model)
    assert trained.contract.serving == SERVING_NUMPY


def test_declared_types_that_the_data_does_not_have_fail_at_training(tmp_path: Path) -> None:
    from dataclasses import replace

    spec = load_spec("diabetes")
    wrong = replace(spec, features=(Column("age", "long"), *spec.features[1:]))
    with pytest.raises(SpecError, match=r"inputs do not match definition 'diabetes': age"):
        train_bundle(wrong, tmp_path / "model")
    assert not (tmp_path / "model" / "contract.json").exists()


def test_saving_skips_mlflows_environment_scan_and_writes_what_mlflow_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.sklearn
    import sklearn
    from mlflow.utils import environment, requirements_utils

    scans: list[str] = []

    def scan() -> dict[str, list[str]]:
        scans.append("packages_distributions")
        return {}

    # Forget what an earlier test cached, so a scan would happen and be seen.
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(requirements_utils, "_PACKAGES_TO_MODULES", None)
    monkeypatch.setattr(requirements_utils.importlib_metadata, "packages_distributions", scan)
    ours = train_bundle("diabetes", tmp_path / "ours")
    assert scans == []
    assert (
        environment.warn_dependency_requirement_mismatches
        is requirements_utils.warn_dependency_requirement_mismatches
    )
    # MLflow's own save, check included, writes the same environment files.
    mlflow.sklearn.save_model(
        ours.model,
        str(tmp_path / "mlflow"),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    assert scans == ["packages_distributions"]
    for name in ("requirements.txt", "conda.yaml", "python_env.yaml"):
        assert (ours.path / name).read_text() == (tmp_path / "mlflow" / name).read_text()
