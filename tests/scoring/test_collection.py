"""Data collection through azureml-ai-monitoring, and what score.py imports on the cold path."""

from __future__ import annotations

import json
import logging
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipelines.scoring_env import REPO_ROOT, ensure_scoring_env, venv_python
from scoring.collection import AGENT, CaptureFileHandler, DataCollection, batches, row_ids
from scoring.model_bundle import SERVING_NUMPY
from tests.bundles import TrainedBundle

# A collector's columns are the served model's contract; any names do for these tests.
FEATURES = tuple(f"f{index}" for index in range(10))


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
        collection = DataCollection(
            Path({str(tmp_path)!r}), features=tuple(f"f{{i}}" for i in range(10)),
            outputs=("prediction",),
        )
        # Submitted before the SDK is loaded: must wait, not be lost.
        collection.submit(np.array([[0.1] * 10, [0.2] * 10]), np.array([150.0, 160.0]), "req-a")
        loaded_early = "azureml.ai.monitoring" in sys.modules
        collection.start()
        collection.submit(np.array([[0.3] * 10]), np.array([170.0]), "req-b")
        assert collection.ready.wait(30), collection.failure
        assert collection.flush(30)
        # A burst below capacity: every request is collected, in order.
        for index in range(3000):
            row, prediction = np.full((1, 10), index / 1e4), np.array([float(index)])
            collection.submit(row, prediction, f"r{{index}}")
        assert collection.flush(30)
        collection.stop()
        # The SDK's sender thread writes asynchronously: wait for the last row.
        import time
        deadline = time.monotonic() + 10
        folder = Path({str(tmp_path)!r}) / "model_outputs"
        while time.monotonic() < deadline:
            rows = sum(len(json.loads(line)["data"]) for p in folder.rglob("*.jsonl")
                       for line in p.read_text().splitlines())
            if rows == 3003:
                break
            time.sleep(0.01)
        print(json.dumps({{"loaded_early": loaded_early, "failure": collection.failure,
                          "dropped": collection.dropped,
                          "in_worker": sorted(m for m in ("pandas", "azureml.ai.monitoring",
                                                          "requests") if m in sys.modules)}}))
        """
    )
    # The SDK, pandas and requests live in the collection process, never in the worker.
    assert report == {"loaded_early": False, "failure": None, "dropped": 0, "in_worker": []}
    inputs = collected(tmp_path / "model_inputs")
    outputs = collected(tmp_path / "model_outputs")
    input_rows = [row for entry in inputs for row in entry["data"]]  # type: ignore[attr-defined]
    output_rows = [row for entry in outputs for row in entry["data"]]  # type: ignore[attr-defined]
    ids = ["req-a:0", "req-a:1", "req-b", *(f"r{index}" for index in range(3000))]
    assert [row["correlationid"] for row in input_rows] == ids
    assert [row["correlationid"] for row in output_rows] == ids
    assert input_rows[1]["f2"] == pytest.approx(0.2)
    assert set(input_rows[0]) == {*FEATURES, "correlationid"}
    assert output_rows[:3] == [
        {"prediction": 150.0, "correlationid": "req-a:0"},
        {"prediction": 160.0, "correlationid": "req-a:1"},
        {"prediction": 170.0, "correlationid": "req-b"},
    ]
    assert [row["prediction"] for row in output_rows[3:]] == [float(i) for i in range(3000)]
    # Batched: a few payloads, none above the row limit; inputs and outputs pair up by id.
    assert len(inputs) < 100
    assert max(len(entry["data"]) for entry in inputs) <= 1000  # type: ignore[arg-type]
    assert [e["correlationid"] for e in inputs] == [e["correlationid"] for e in outputs]


def ready_collection(folder: Path) -> str:
    """The start of a script: a DataCollection capturing to `folder`, its process ready."""
    return f"""
        import json, time, numpy as np
        from pathlib import Path
        from scoring.collection import DataCollection
        collection = DataCollection(
            Path({str(folder)!r}), features=tuple(f"f{{i}}" for i in range(10)),
            outputs=("prediction",),
        )
        collection.start()
        assert collection.ready.wait(30), collection.failure
        """


@pytest.mark.integration
def test_a_collection_process_that_dies_switches_collection_off_and_nothing_else(
    tmp_path: Path,
) -> None:
    report = run_in_scoring_env(
        ready_collection(tmp_path)
        + """
        collection._process.kill()
        deadline = time.monotonic() + 10
        while collection.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        collection.submit(np.zeros((1, 10)), np.zeros(1), "after")  # ignored, never raises
        pending, flushed = collection.pending(), collection.flush(1)
        collection.stop()
        print(json.dumps({"failure": collection.failure, "pending": pending,
                          "flushed": flushed}))
        """
    )
    assert report == {
        "failure": "the collection process exited (code -9)",
        "pending": 0,
        "flushed": False,
    }


@pytest.mark.integration
def test_a_collection_problem_is_logged_once_and_scoring_goes_on(tmp_path: Path) -> None:
    # Rows 4 values wide against 10 feature names: the process's DataFrame fails for each batch.
    report = run_in_scoring_env(
        ready_collection(tmp_path)
        + """
        import io, logging
        log = io.StringIO()
        logging.getLogger("azmlinfsrv.score.collection").addHandler(logging.StreamHandler(log))
        for batch in range(3):
            collection.submit(np.zeros((1, 4)), np.zeros(1), f"narrow-{batch}")
            assert collection.flush(10)
        collection.submit(np.zeros((1, 10)), np.zeros(1), "right")
        flushed = collection.flush(10)
        collection.stop()
        problems = [line for line in log.getvalue().splitlines() if "problem" in line]
        print(json.dumps({"problems": problems, "flushed": flushed,
                          "failure": collection.failure}))
        """
    )
    assert report["flushed"] is True and report["failure"] is None
    problems = report["problems"]
    assert isinstance(problems, list) and len(problems) == 1
    assert problems[0].startswith("data collection problem (logged once): ValueError")
    assert [row["correlationid"] for row in collected(tmp_path / "model_outputs")[0]["data"]] == [
        "right"
    ]


@pytest.mark.integration
def test_stop_ends_the_collection_process(tmp_path: Path) -> None:
    report = run_in_scoring_env(
        ready_collection(tmp_path)
        + """
        collection.submit(np.ones((1, 10)), np.ones(1), "last")
        collection.stop()
        print(json.dumps({"exit": collection._process.poll(), "failure": collection.failure}))
        """
    )
    assert report == {"exit": 0, "failure": None}
    # What was pending at stop() was handed over and written before the process ended.
    assert [row["correlationid"] for row in collected(tmp_path / "model_outputs")[0]["data"]] == [
        "last"
    ]


def test_submissions_beyond_capacity_are_dropped_and_counted() -> None:
    collection = DataCollection(features=FEATURES, outputs=("prediction",), capacity=3)
    for index in range(5):
        collection.submit(np.zeros((1, 10)), np.zeros(1), f"r{index}")
    assert (collection.pending(), collection.dropped) == (3, 2)


def test_batches_group_requests_up_to_the_row_limit() -> None:
    def item(rows: int) -> tuple[np.ndarray, np.ndarray, str]:
        return (np.zeros((rows, 10)), np.zeros(rows), str(rows))

    groups = batches([item(1), item(2), item(3), item(5), item(1)], max_rows=4)
    assert [[request for _, _, request in group] for group in groups] == [
        ["1", "2"],
        ["3"],
        ["5"],  # one request larger than the limit still goes, alone
        ["1"],
    ]
    assert batches([], max_rows=4) == []


@pytest.mark.integration
def test_cold_path_imports_neither_scikit_learn_nor_pandas(bundle: TrainedBundle) -> None:
    """For bundles with a verified fast path; an estimator bundle needs scikit-learn to serve."""
    if bundle.contract.serving != SERVING_NUMPY:
        pytest.skip("served through its estimator: scikit-learn is on its cold path by design")
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
