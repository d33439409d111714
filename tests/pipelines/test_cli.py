"""The CLI end to end on a temporary state directory, through the real entry point."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.bundles import diabetes_data as bundled_diabetes


def test_run_gates_against_production_and_rejects_a_worse_model(mlops, monkeypatch) -> None:
    monkeypatch.delenv("BUILD_SOURCEVERSION", raising=False)
    monkeypatch.setenv("GIT_COMMIT", "a" * 40)  # the code every run records, pinned
    code, out = mlops("run", "--no-release")
    assert code == 0, out
    assert "gate passed" in out
    assert "naive baseline" in out
    assert "registered" in out
    assert "not released; next: mlops release --model diabetes-ridge:1" in out

    # Without a release nothing moved the alias: promote v1 as a successful release would.
    from pipelines.registry import ModelRegistry
    from pipelines.settings import load_settings

    settings = load_settings()
    registry = ModelRegistry(settings.tracking_uri, settings.model_name)
    registry.set_production(registry.get("diabetes-ridge:1"))

    # Same data, parameters and code: production's model again, not registered twice.
    code, out = mlops("run", "--no-release")
    assert code == 0, out
    assert (
        "gate rejected the candidate: identical to production model diabetes-ridge:1: same data, "
        "parameters and code; nothing to register"
    ) in out
    assert "Nothing was registered; production is unchanged." in out
    assert mlops("run", "--no-release", "--fail-on-reject")[0] == 3

    monkeypatch.setenv("GIT_COMMIT", "b" * 40)  # other code, the same fit: a tie, passing at 0
    code, out = mlops("run", "--no-release")
    assert code == 0, out
    assert "ties production model v1" in out
    assert "diabetes-ridge:2" in out

    code, out = mlops("run", "--alpha", "1000")  # rejected before any release is attempted
    assert code == 0, out  # rejection is an outcome, not a crash
    assert "gate rejected the candidate" in out
    assert "worse than production model v1" in out
    assert "Nothing was registered; production is unchanged." in out
    assert registry.production().version == "1"

    code, out = mlops("run", "--alpha", "1000", "--fail-on-reject")
    assert code == 3, out

    code, out = mlops("models", "list")
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert [row.split("│")[1].strip() for row in rows] == ["2", "1"]
    aliases = [row.split("│")[2].strip() for row in rows]
    assert aliases == ["-", "production"]


def test_step_by_step_and_refused_registration(mlops) -> None:
    assert mlops("train", "--alpha", "0.5")[0] == 0
    code, out = mlops("register")
    assert code == 2 and "has not been through the gate; run `mlops evaluate` first" in out
    assert mlops("evaluate")[0] == 0
    code, out = mlops("register")
    assert code == 0 and "registered diabetes-ridge:1" in out
    # Nothing is in production yet (register does not promote), so the gate uses the baseline.
    mlops("train", "--alpha", "1000")
    code, out = mlops("evaluate", "--metric", "r2", "--fail-on-reject")
    assert code == 0 and "baseline" in out  # alpha 1000 still beats the plain mean, narrowly


def test_bad_data_names_column_and_rule(mlops, tmp_path: Path) -> None:
    frame = bundled_diabetes()
    frame.loc[4, "bmi"] = 9.0
    frame.loc[5, "s2"] = -9.0
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    code, out = mlops("run", "--no-release", "--data", str(path))
    assert code == 2
    assert "column 'bmi' fails rule 'range'" in out
    assert "column 's2' fails rule 'range'" in out  # every failed rule is listed
    assert "Traceback" not in out


def test_user_data_file_is_used(mlops, tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    bundled_diabetes().sample(frac=0.9, random_state=3).to_parquet(path)
    code, out = mlops("run", "--no-release", "--data", str(path))
    assert code == 0, out


def test_clear_errors(mlops) -> None:
    code, out = mlops("train", "--alpha", "-1")
    assert code == 2 and "alpha must be a finite number >= 0" in out
    code, out = mlops("evaluate", "--metric", "accuracy")
    assert code == 2 and "unknown gate metric 'accuracy'" in out
    code, out = mlops("evaluate")
    assert code == 2 and "there is no training run yet" in out
    code, out = mlops("register", "--run-id", "nope")
    assert code == 2 and "run nope does not exist" in out
    code, out = mlops("models", "list")
    assert code == 0 and "No versions of diabetes-ridge yet" in out


def test_console_script_exit_code_and_no_traceback(state_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "evaluate", "--metric", "accuracy"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown gate metric" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_validate_command(mlops, tmp_path: Path) -> None:
    code, out = mlops("validate")
    assert code == 0 and "442 rows passed every rule" in out
    path = tmp_path / "bad.csv"
    bundled_diabetes().drop(columns=["s6"]).to_csv(path, index=False)
    code, out = mlops("validate", "--data", str(path))
    assert code == 2 and "column 's6' fails rule 'schema.required'" in out
    assert pd.read_csv(path).shape[1] == 10


def test_gate_summary_file_for_ci(mlops, tmp_path: Path) -> None:
    summary = tmp_path / "out" / "gate.md"
    code, out = mlops("run", "--no-release", "--summary-file", str(summary))
    assert code == 0, out
    text = summary.read_text()
    assert text.startswith("## Gate: passed")
    assert "| rmse |" in text
    assert "registered as `diabetes-ridge:1`" in text
    gate = json.loads((tmp_path / "out" / "gate.json").read_text())
    assert gate["schema"] == 1 and gate["passed"] is True
    assert gate["registered"] == "diabetes-ridge:1"
    assert gate["reference_kind"] == "baseline" and gate["metric"] == "rmse"
    mlops("train", "--alpha", "1000")
    code, _ = mlops("evaluate", "--min-improvement", "100", "--summary-file", str(summary))
    assert code == 0
    assert summary.read_text().startswith("## Gate: rejected")
    assert "nothing registered" in summary.read_text()
    gate = json.loads((tmp_path / "out" / "gate.json").read_text())
    assert gate["passed"] is False and gate["registered"] is None


def test_the_summary_file_cannot_be_its_own_json_sibling(mlops, tmp_path: Path) -> None:
    code, out = mlops("run", "--no-release", "--summary-file", str(tmp_path / "gate.json"))
    assert code == 2
    assert out.startswith(
        "error: invalid value for '--summary-file': gate.json would be overwritten"
    )
    assert "╭" not in out and "Usage:" not in out  # one line, not Click's boxed panel
    assert not (tmp_path / "gate.json").exists()
