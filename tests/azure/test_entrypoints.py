"""The pipeline's steps, run as Azure ML would run them, on a SQLite tracking store."""

import json
from pathlib import Path

import pytest

from pipelines.azure.entrypoints import main
from pipelines.registry import ModelRegistry
from tests.azure.conftest import Store

MODEL = "entry-ridge"


def steps(store: Store, root: Path, alpha: str, min_improvement: str) -> dict[str, int]:
    uri = ["--tracking-uri", store.settings.tracking_uri, "--model-name", MODEL]
    codes = {
        "validate": main(["validate", "--output", str(root / "validated")]),
        "train": main(
            [
                "train",
                "--validated",
                str(root / "validated"),
                "--params",
                f"alpha={alpha}",
                "--seed",
                "42",
                "--test-size",
                "0.2",
                "--data-source",
                "bundled",
                *uri,
                "--output",
                str(root / "run"),
            ]
        ),
        "gate": main(
            [
                "gate",
                "--run",
                str(root / "run"),
                "--metric",
                "rmse",
                "--min-improvement",
                min_improvement,
                *uri,
                "--output",
                str(root / "decision"),
            ]
        ),
        "register": main(
            [
                "register",
                "--run",
                str(root / "run"),
                "--decision",
                str(root / "decision"),
                *uri,
                "--output",
                str(root / "registered"),
            ]
        ),
    }
    return codes


def read(root: Path, step: str, name: str) -> dict:
    return json.loads((root / step / name).read_text())


def test_pass_then_reject(store: Store, tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert steps(store, first, "0.5", "0") == dict.fromkeys(
        ("validate", "train", "gate", "register"), 0
    )
    assert (first / "validated" / "data.parquet").is_file()
    run_id = read(first, "run", "run.json")["run_id"]
    decision = read(first, "decision", "decision.json")
    assert decision["run_id"] == run_id
    assert decision["gate.decision"] == "passed"
    assert decision["gate.reference_kind"] == "baseline"
    registered = read(first, "registered", "registered.json")
    assert registered["registered"] is True
    version = ModelRegistry(store.settings.tracking_uri, MODEL).get(
        f"{MODEL}:{registered['version']}"
    )
    assert version.run_id == run_id
    # The lineage names the data as the pipeline was given it, not the job's mounted copy.
    assert version.tags["data_source"] == "bundled"

    # A candidate that cannot meet the bar: rejected, recorded, nothing registered, exit 0.
    second = tmp_path / "second"
    assert steps(store, second, "0.5", "1000") == dict.fromkeys(
        ("validate", "train", "gate", "register"), 0
    )
    assert read(second, "decision", "decision.json")["gate.decision"] == "rejected"
    assert read(second, "registered", "registered.json")["registered"] is False
    assert len(ModelRegistry(store.settings.tracking_uri, MODEL).versions()) == 1


def test_miswired_decision_is_refused(store: Store, tmp_path: Path) -> None:
    steps(store, tmp_path / "a", "0.5", "1000")
    steps(store, tmp_path / "b", "0.5", "1000")
    uri = ["--tracking-uri", store.settings.tracking_uri, "--model-name", MODEL]
    code = main(
        [
            "register",
            "--run",
            str(tmp_path / "a" / "run"),
            "--decision",
            str(tmp_path / "b" / "decision"),
            *uri,
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2


def test_bad_data_fails_the_first_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("age,sex\n1,2\n")
    assert main(["validate", "--data", str(bad), "--output", str(tmp_path / "v")]) == 2
    assert "data validation failed" in capsys.readouterr().err
    assert not (tmp_path / "v" / "data.parquet").exists()
