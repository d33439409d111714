"""Training is deterministic and its metrics are right, for every example definition."""

import json

import numpy as np
import pytest

from tests.bundles import SPEC_NAMES
from training.data import bundled_data, fingerprint
from training.metrics import mean_baseline, prior_baseline
from training.model import (
    TrainingConfig,
    fit_and_evaluate,
    golden_sample,
    predict,
    split_data,
    train_model,
)
from training.spec import ModelSpec, SpecError, load_spec, parse_param


@pytest.fixture(scope="module", params=SPEC_NAMES)
def spec(request: pytest.FixtureRequest) -> ModelSpec:
    return load_spec(request.param)


def fit(spec: ModelSpec, config: TrainingConfig):
    split = split_data(bundled_data(spec), config)
    return split, train_model(split.x_train, split.y_train, config)


def test_same_seed_same_model_and_holdout(spec: ModelSpec) -> None:
    config = TrainingConfig(spec=spec)
    (s1, m1), (s2, m2) = fit(spec, config), fit(spec, config)
    np.testing.assert_array_equal(s1.x_test, s2.x_test)
    np.testing.assert_array_equal(predict(m1, s1.x_test, spec), predict(m2, s2.x_test, spec))
    assert golden_sample(m1, s1, config) == golden_sample(m2, s2, config)


def test_other_seed_other_holdout(spec: ModelSpec) -> None:
    (s1, _), (s2, _) = (fit(spec, TrainingConfig(seed=seed, spec=spec)) for seed in (1, 2))
    assert not np.array_equal(s1.x_test, s2.x_test)


def test_split_sizes(spec: ModelSpec) -> None:
    split, _ = fit(spec, TrainingConfig(test_size=0.25, spec=spec))
    rows = len(bundled_data(spec))
    assert len(split.x_test) == int(np.ceil(rows * 0.25))
    assert len(split.x_train) + len(split.x_test) == rows


def test_default_beats_baseline_tuned_beats_default_worse_does_not(spec: ModelSpec) -> None:
    """The demo's story holds for every definition: tuned > default > worse, all on the gate."""
    frame = bundled_data(spec)
    scores = {
        name: fit_and_evaluate(frame, TrainingConfig(params, spec=spec))
        for name, params in (("default", {}), ("tuned", spec.tuned), ("worse", spec.worse))
    }
    metric, lower = spec.gate_metric, spec.directions[spec.gate_metric] == "lower"

    def better(a: float, b: float) -> bool:
        return a < b if lower else a > b

    default = scores["default"].metrics[metric]
    assert better(default, scores["default"].baseline_metrics[metric])
    assert better(scores["tuned"].metrics[metric], default)
    assert better(default, scores["worse"].metrics[metric])


def test_outputs_have_the_definitions_shape(spec: ModelSpec) -> None:
    config = TrainingConfig(spec=spec)
    split, model = fit(spec, config)
    outputs = predict(model, split.x_test[:7], spec)
    if spec.task == "regression":
        assert outputs.shape == (7,)
    else:
        assert outputs.shape == (7, len(spec.outputs))
        np.testing.assert_allclose(outputs.sum(axis=1), 1.0)
    assert np.asarray(golden_sample(model, split, config).predictions).shape[0] == 5


def test_golden_sample_is_holdout_head(spec: ModelSpec) -> None:
    config = TrainingConfig(golden_rows=3, spec=spec)
    split, model = fit(spec, config)
    golden = golden_sample(model, split, config)
    assert golden.rows == split.x_test[:3].tolist()
    np.testing.assert_allclose(golden.predictions, predict(model, split.x_test[:3], spec))


def test_fingerprint_changes_with_content(spec: ModelSpec) -> None:
    frame = bundled_data(spec)
    assert fingerprint(frame) == fingerprint(bundled_data(spec))
    changed = frame.copy()
    changed.loc[0, spec.feature_names[0]] += 1e-6
    assert fingerprint(changed) != fingerprint(frame)


def test_params_are_checked_by_name_and_bound(spec: ModelSpec) -> None:
    name = spec.params[0].name
    with pytest.raises(SpecError, match=rf"{name} must be a finite number"):
        TrainingConfig({name: float("nan")}, spec=spec)
    with pytest.raises(SpecError, match=rf"{name} must be a finite number >"):
        TrainingConfig({name: -1.0}, spec=spec)
    with pytest.raises(SpecError, match=r"has no parameter 'depth'; its parameters are"):
        TrainingConfig({"depth": 3.0}, spec=spec)
    assert TrainingConfig(spec=spec).params()[name] == spec.params[0].default
    assert TrainingConfig(spec=spec).params()["model_spec"] == spec.name


@pytest.mark.parametrize("kwargs", [{"test_size": 0.0}, {"test_size": 1.0}, {"golden_rows": 0}])
def test_invalid_split_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TrainingConfig(**kwargs)


@pytest.mark.parametrize(
    ("text", "parsed"), [("alpha=0.5", ("alpha", 0.5)), (" C = 3 ", ("C", 3.0))]
)
def test_param_text(text: str, parsed: tuple[str, float]) -> None:
    assert parse_param(text) == parsed


@pytest.mark.parametrize("text", ["alpha", "=1", "alpha=big", ""])
def test_malformed_param_text_is_one_sentence(text: str) -> None:
    with pytest.raises(SpecError, match="--param expects NAME=NUMBER"):
        parse_param(text)


def test_an_unknown_definition_names_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.spec import current_spec

    monkeypatch.setenv("MLOPS_MODEL_SPEC", "iris")
    with pytest.raises(SpecError, match="'iris' is not a model definition; use one of diabetes"):
        current_spec()


def test_baselines_have_the_output_shape() -> None:
    np.testing.assert_allclose(mean_baseline(np.array([1.0, 3.0]), 3), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(prior_baseline(2)(np.array([0, 1, 1, 1]), 2), [[0.25, 0.75]] * 2)


def test_training_entry_point_writes_bundle_and_report(
    spec: ModelSpec, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scoring.model_bundle import verify_bundle
    from training.train import main

    monkeypatch.setenv("MLOPS_MODEL_SPEC", spec.name)
    name, value = spec.params[0].name, spec.tuned[spec.params[0].name]
    assert main(["--output", str(tmp_path), "--param", f"{name}={value}", "--seed", "7"]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["params"][name] == value
    assert report["params"]["seed"] == 7
    assert verify_bundle(tmp_path / "model") == report["model_sha256"]
    metric = spec.gate_metric
    lower = spec.directions[metric] == "lower"
    model, baseline = report["metrics"][metric], report["baseline_metrics"][metric]
    assert model < baseline if lower else model > baseline
    assert main(["--output", str(tmp_path), "--param", f"{name}=-1"]) == 2
    assert main(["--output", str(tmp_path), "--param", "nope=1"]) == 2


# -- diabetes example only --------------------------------------------------------------------


def test_diabetes_known_metric_values() -> None:
    spec = load_spec("diabetes")
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    metrics = spec.evaluate(truth, np.array([1.0, 2.0, 3.0, 6.0]))
    assert metrics["rmse"] == pytest.approx(1.0)
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)


def test_diabetes_split_sizes_and_holdout_quality() -> None:
    spec = load_spec("diabetes")
    split, model = fit(spec, TrainingConfig(test_size=0.25, spec=spec))
    assert len(split.x_test) == 111 and len(split.x_train) == 331
    assert spec.evaluate(split.y_test, predict(model, split.x_test, spec))["r2"] > 0.4


# -- breast-cancer example only ---------------------------------------------------------------


def test_breast_cancer_known_metric_values() -> None:
    spec = load_spec("breast-cancer")
    truth = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    metrics = spec.evaluate(truth, proba)
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.6, 0.3]))
    assert metrics["log_loss"] == pytest.approx(expected_loss)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["roc_auc"] == pytest.approx(0.75)


def test_breast_cancer_split_is_stratified() -> None:
    spec = load_spec("breast-cancer")
    split, _ = fit(spec, TrainingConfig(spec=spec))
    assert abs(split.y_test.mean() - split.y_train.mean()) < 0.01
    assert split.y_test.dtype == np.int64
