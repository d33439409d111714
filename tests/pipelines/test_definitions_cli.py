"""The CLI follows the selected model definition: parameters, profile, metrics, models list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bundles import DIABETES, diabetes_data
from training import validation


@pytest.fixture
def profiles_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Profiles written by these tests go to a temporary folder, never into the checkout."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    for name in ("diabetes", "breast-cancer"):
        source = validation.PROFILES_DIR / f"{name}.json"
        (folder / source.name).write_text(source.read_text())
    monkeypatch.setattr(validation, "PROFILES_DIR", folder)
    return folder


def test_param_sets_a_hyperparameter_and_alpha_is_its_shorthand(mlops) -> None:
    code, out = mlops("train", "--param", "alpha=0.2")
    assert code == 0, out
    assert "diabetes: alpha=0.2, seed=42" in out
    code, out = mlops("train", "--alpha", "0.3")
    assert code == 0 and "alpha=0.3" in out, out
    code, out = mlops("train", "--param", "depth=3")
    assert code == 2 and "has no parameter 'depth'; its parameters are alpha" in out
    code, out = mlops("train", "--param", "alpha")
    assert code == 2 and "--param expects NAME=NUMBER" in out
    code, out = mlops("train", "--alpha", "0.3", "--param", "alpha=0.4")
    assert code == 2 and "disagree" in out


def test_profile_from_any_matching_data_and_one_sentence_otherwise(
    mlops, tmp_path: Path, profiles_dir: Path
) -> None:
    data = tmp_path / "mine.csv"
    diabetes_data().sample(frac=0.8, random_state=5).to_csv(data, index=False)
    code, out = mlops("profile", "--data", str(data))
    assert code == 0, out
    assert "354 rows of" in out and "training/profiles/diabetes.json" in out
    written = json.loads((profiles_dir / "diabetes.json").read_text())
    assert list(written["columns"]) == list(DIABETES.columns)
    # The "another data set" fork: other columns are named, never a KeyError.
    other = tmp_path / "other.csv"
    diabetes_data().rename(columns={"age": "years"}).to_csv(other, index=False)
    code, out = mlops("profile", "--data", str(other))
    assert code == 2, out
    assert "does not match model definition 'diabetes'" in out
    assert "'age' fails rule 'schema.required'" in out and "'years'" in out
    assert "KeyError" not in out and "Traceback" not in out


def test_a_stale_profile_is_one_sentence_not_a_key_error(mlops, profiles_dir: Path) -> None:
    path = profiles_dir / "diabetes.json"
    path.write_text(path.read_text().replace('"age"', '"years"'))
    code, out = mlops("validate")
    assert code == 2, out
    assert "reference profile diabetes.json does not match model definition 'diabetes'" in out
    assert "mlops profile" in out and "KeyError" not in out


def test_an_unknown_definition_is_one_sentence(mlops, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_MODEL_SPEC", "iris")
    code, out = mlops("validate")
    assert code == 2, out
    assert "MLOPS_MODEL_SPEC='iris' is not a model definition; use one of diabetes" in out


# -- breast-cancer example only ---------------------------------------------------------------


def test_breast_cancer_lifecycle_gates_on_log_loss_and_lists_its_metrics(
    mlops, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.setenv("MLOPS_MODEL_SPEC", "breast-cancer")
    code, out = mlops("run", "--no-release")
    assert code == 0, out
    assert "breast-cancer: C=1, seed=42" in out
    assert "log_loss" in out and "roc_auc" in out and "rmse" not in out
    assert "candidate log_loss" in out and "naive baseline" in out
    code, out = mlops("run", "--no-release", "--param", "C=0.0001")
    assert code == 0 and "breast-cancer: C=0.0001" in out, out
    code, out = mlops("models", "list")
    assert code == 0, out
    assert "breast-cancer-logistic" in out
    header = next(line for line in out.splitlines() if "version" in line)
    for column in ("log_loss", "roc_auc", "accuracy", "serving"):
        assert column in header
    assert "numpy" in out
    code, out = mlops("evaluate", "--metric", "rmse")
    assert code == 2 and "unknown gate metric 'rmse' for model 'breast-cancer'" in out
