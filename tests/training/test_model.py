"""Training is deterministic and its metrics are right."""

import numpy as np
import pytest

from training.data import bundled_diabetes, fingerprint
from training.metrics import mean_baseline, regression_metrics
from training.model import TrainingConfig, golden_sample, predict, split_data, train_model


def fit(config: TrainingConfig):
    split = split_data(bundled_diabetes(), config)
    return split, train_model(split.x_train, split.y_train, config)


def test_same_seed_same_model_and_holdout() -> None:
    (s1, m1), (s2, m2) = fit(TrainingConfig()), fit(TrainingConfig())
    np.testing.assert_array_equal(s1.x_test, s2.x_test)
    np.testing.assert_array_equal(m1.coef_, m2.coef_)
    assert golden_sample(m1, s1, TrainingConfig()) == golden_sample(m2, s2, TrainingConfig())


def test_other_seed_other_holdout() -> None:
    (s1, _), (s2, _) = fit(TrainingConfig(seed=1)), fit(TrainingConfig(seed=2))
    assert not np.array_equal(s1.x_test, s2.x_test)


def test_split_sizes() -> None:
    split, _ = fit(TrainingConfig(test_size=0.25))
    assert len(split.x_test) == 111 and len(split.x_train) == 331


def test_default_model_beats_baseline_and_huge_alpha_does_not_help() -> None:
    split, model = fit(TrainingConfig())
    _, flat = fit(TrainingConfig(alpha=1000))
    good = regression_metrics(split.y_test, predict(model, split.x_test))
    bad = regression_metrics(split.y_test, predict(flat, split.x_test))
    base = regression_metrics(split.y_test, mean_baseline(split.y_train, len(split.y_test)))
    assert good["rmse"] < bad["rmse"] <= base["rmse"] + 1e-9
    assert good["r2"] > 0.4


def test_metrics_known_values() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    metrics = regression_metrics(truth, np.array([1.0, 2.0, 3.0, 6.0]))
    assert metrics["rmse"] == pytest.approx(1.0)
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)


def test_golden_sample_is_holdout_head() -> None:
    config = TrainingConfig(golden_rows=3)
    split, model = fit(config)
    golden = golden_sample(model, split, config)
    assert golden.rows == split.x_test[:3].tolist()
    np.testing.assert_allclose(golden.predictions, predict(model, split.x_test[:3]))


def test_fingerprint_changes_with_content() -> None:
    frame = bundled_diabetes()
    assert fingerprint(frame) == fingerprint(bundled_diabetes())
    changed = frame.copy()
    changed.loc[0, "age"] += 1e-6
    assert fingerprint(changed) != fingerprint(frame)


@pytest.mark.parametrize(
    "kwargs", [{"alpha": -1.0}, {"alpha": float("nan")}, {"test_size": 0.0}, {"test_size": 1.0}]
)
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TrainingConfig(**kwargs)


def test_training_entry_point_writes_bundle_and_report(tmp_path) -> None:
    import json

    from scoring.model_bundle import verify_bundle
    from training.train import main

    assert main(["--output", str(tmp_path), "--alpha", "0.3", "--seed", "7"]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["params"]["alpha"] == 0.3
    assert report["params"]["seed"] == 7
    assert verify_bundle(tmp_path / "model") == report["model_sha256"]
    assert report["metrics"]["rmse"] < report["baseline_metrics"]["rmse"]
    assert main(["--output", str(tmp_path), "--alpha", "-1"]) == 2
