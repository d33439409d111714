"""Data collection through azureml-ai-monitoring, and what score.py imports on the cold path."""

from __future__ import annotations

import json
import logging
import subprocess
import textwrap
from pathlib import Path

import pytest

from pipelines.scoring_env import REPO_ROOT, ensure_scoring_env, venv_python
from scoring.collection import AGENT, CaptureFileHandler, row_ids
from tests.scoring.conftest import TrainedBundle


def sdk_record(collection: str, correlation_id: str, content: str) -> logging.LogRecord:
    """A record shaped like the one the SDK's LocalCapture sender logs."""
    return logging.LogRecord(
        "local.capture",
        logging.INFO,
        __file__,
        1,
        "%s | %s | %s | %s",
        ("2026-01-02 03:04:05", collection, correlation_id, content),
        None,
    )


def test_capture_handler_writes_the_data_collector_layout_and_schema(tmp_path: Path) -> None:
    handler = CaptureFileHandler(tmp_path, instance_id="worker-1")
    handler.emit(sdk_record("model_inputs", "req-1", '[{"age":0.1}]'))
    handler.emit(sdk_record("model_inputs", "req-2", '[{"age":0.2}]'))
    handler.emit(sdk_record("model_outputs", "req-1", '[{"prediction":150.0}]'))
    handler.emit(logging.LogRecord("local.capture", 20, "", 1, "unrelated", None, None))
    # <collection>/<yyyy>/<MM>/<dd>/<HH>/<instance_id>.jsonl, as on Azure.
    inputs = (tmp_path / "model_inputs/2026/01/02/03/worker-1.jsonl").read_text().splitlines()
    assert [json.loads(line)["correlationid"] for line in inputs] == ["req-1", "req-2"]
    assert json.loads(inputs[1])["data"] == [{"age": 0.2}]
    (outputs,) = (tmp_path / "model_outputs/2026/01/02/03/worker-1.jsonl").read_text().splitlines()
    payload = json.loads(outputs)
    assert payload.pop("id")
    assert payload == {
        "specversion": "1.0",
        "type": "azureml.inference.model_outputs",
        "datacontenttype": "application/json",
        "time": "2026-01-02T03:04:05Z",
        "data": [{"prediction": 150.0}],
        "correlationid": "req-1",
        "xrequestid": "req-1",
        "collectdatatype": "pandas.core.frame.DataFrame",
        "agent": AGENT,
    }


def test_capture_handler_rolls_over_to_a_new_hour_folder(tmp_path: Path) -> None:
    handler = CaptureFileHandler(tmp_path, instance_id="w")
    handler.emit(sdk_record("model_inputs", "a", "[]"))
    later = sdk_record("model_inputs", "b", "[]")
    later.args = ("2026-01-02 04:00:00", "model_inputs", "b", "[]")
    handler.emit(later)
    handler.close()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl")) == [
        "model_inputs/2026/01/02/03/w.jsonl",
        "model_inputs/2026/01/02/04/w.jsonl",
    ]


def test_row_ids_name_each_row() -> None:
    assert row_ids("req", 1) == ["req"]
    assert row_ids("req", 3) == ["req:0", "req:1", "req:2"]


def run_in_scoring_env(script: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run a script with the scoring venv's interpreter; it prints one JSON document."""
    python = venv_python(ensure_scoring_env())
    result = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def collected(folder: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(folder.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.mark.integration
def test_collector_captures_inputs_and_outputs_locally(tmp_path: Path) -> None:
    report = run_in_scoring_env(
        f"""
        import json, sys, numpy as np
        from pathlib import Path
        from scoring.collection import DataCollection
        collection = DataCollection(Path({str(tmp_path)!r}))
        # Submitted before the SDK is loaded: must wait in the queue, not be lost.
        collection.submit(np.array([[0.1] * 10, [0.2] * 10]), np.array([150.0, 160.0]), "req-a")
        loaded_early = "azureml.ai.monitoring" in sys.modules
        collection.start()
        collection.submit(np.array([[0.3] * 10]), np.array([170.0]), "req-b")
        assert collection.ready.wait(30), collection.failure
        assert collection.flush(30)
        collection.stop()
        # The SDK's sender thread writes asynchronously: wait for the last line.
        import time
        deadline = time.monotonic() + 10
        folder = Path({str(tmp_path)!r}) / "model_outputs"
        while time.monotonic() < deadline:
            lines = sum(len(p.read_text().splitlines()) for p in folder.rglob("*.jsonl"))
            if lines == 2:
                break
            time.sleep(0.01)
        print(json.dumps({{"loaded_early": loaded_early, "failure": collection.failure,
                          "dropped": collection.dropped}}))
        """
    )
    assert report == {"loaded_early": False, "failure": None, "dropped": 0}
    inputs = collected(tmp_path / "model_inputs")
    outputs = collected(tmp_path / "model_outputs")
    assert [entry["correlationid"] for entry in inputs] == ["req-a", "req-b"]
    assert inputs[0]["data"][1]["bmi"] == pytest.approx(0.2)  # type: ignore[index]
    assert set(inputs[0]["data"][0]) == {  # type: ignore[index]
        "age",
        "sex",
        "bmi",
        "bp",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "s6",
        "correlationid",
    }
    assert {entry["correlationid"]: entry["data"] for entry in outputs} == {
        "req-a": [
            {"prediction": 150.0, "correlationid": "req-a:0"},
            {"prediction": 160.0, "correlationid": "req-a:1"},
        ],
        "req-b": [{"prediction": 170.0, "correlationid": "req-b"}],
    }


@pytest.mark.integration
def test_cold_path_imports_neither_scikit_learn_nor_pandas(bundle: TrainedBundle) -> None:
    report = run_in_scoring_env(
        """
        import json, sys
        import flask  # loaded by the server before the script
        import importlib.util
        spec = importlib.util.spec_from_file_location("entry_module", "scoring/score.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.init()
        heavy = sorted(name for name in ("sklearn", "pandas", "scipy", "joblib", "requests",
                                         "azureml.ai.monitoring") if name in sys.modules)
        print(json.dumps({"heavy": heavy}))
        """,
        env={"AZUREML_MODEL_DIR": str(bundle.path), "MODEL_SHA256": bundle.digest},
    )
    assert report == {"heavy": []}
