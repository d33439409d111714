"""The local loop through the real CLI: collected rows (in the collector's layout) → Azurite →
`mlops monitor` → report; labels → `mlops feedback` → a training data set → `mlops run --data`.
No stray Azurite process is left behind."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.commands.monitor import DRIFT_EXIT_CODE
from pipelines.datastore import azurite, layout
from pipelines.datastore.datasets import feedback_name, versions
from pipelines.datastore.store import local_store
from pipelines.gate import GateConfig
from pipelines.settings import Settings, load_settings
from pipelines.steps import Tracking, evaluate, register, train
from pipelines.targets.local import process_alive
from scoring.collection import CaptureFileHandler, row_ids
from tests.bundles import DIABETES_FEATURES as FEATURES
from tests.bundles import DIABETES_TARGET as TARGET
from tests.bundles import diabetes_data as bundled_diabetes
from training.model import TrainingConfig

CLI = Callable[..., tuple[int, str]]


@pytest.fixture
def production(state_dir: Path) -> Iterator[Settings]:
    """A model trained on the bundled data, registered and in production; no server."""
    settings = load_settings()
    tracking = Tracking(settings)
    outcome = train(tracking, TrainingConfig(), None)
    evaluate(tracking, outcome.run_id, GateConfig())
    tracking.registry.set_production(register(tracking, outcome.run_id))
    yield settings
    azurite.stop(settings)


def shifted_rows(size: int, seed: int = 0) -> pd.DataFrame:
    """Patients with BMI above the median, drawn with replacement: a real subpopulation."""
    data = bundled_diabetes()
    heavy = data[data["bmi"] > data["bmi"].median()].reset_index(drop=True)
    return heavy.iloc[np.random.default_rng(seed).integers(0, len(heavy), size)].reset_index(
        drop=True
    )


def collect(settings: Settings, rows: pd.DataFrame, per_request: int = 100) -> list[str]:
    """Write what the scoring service's collector writes for these rows, stamped now."""
    handler = CaptureFileHandler(
        settings.collected_dir / layout.deployment_prefix("prod", "blue"), "test"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    ids: list[str] = []
    for start in range(0, len(rows), per_request):
        chunk = rows.iloc[start : start + per_request]
        request = f"req-{start // per_request}"
        chunk_ids = row_ids(request, len(chunk))
        inputs = chunk.loc[:, list(FEATURES)].assign(correlationid=chunk_ids)
        outputs = pd.DataFrame({"prediction": chunk[TARGET] * 0.5 + 80, "correlationid": chunk_ids})
        for collection, frame in (("model_inputs", inputs), ("model_outputs", outputs)):
            record = logging.LogRecord(
                "local.capture", 20, "", 1, "%s",
                (stamp, collection, request, frame.to_json(orient="records")), None,
            )  # fmt: skip
            handler.emit(record)
        ids += chunk_ids
    handler.close()
    return ids


@pytest.mark.integration
def test_monitor_finds_drift_writes_the_report_and_feedback_feeds_training(
    production: Settings, mlops: CLI, tmp_path: Path
) -> None:
    rows = shifted_rows(1000)
    ids = collect(production, rows)

    code, out = mlops("monitor", "--deployment", "blue", "--fail-on-drift")
    assert code == DRIFT_EXIT_CODE, out
    assert "drift:" in out and "bmi" in out
    folder = production.state_dir / "monitoring" / "prod-blue"
    report = json.loads((folder / "monitor.json").read_text())
    assert report["outcome"] == "drift" and report["rows"] == 1000
    assert report["reference"] == "the bundled diabetes data"
    assert report["reference_rows"] == 442
    bmi = next(column for column in report["columns"] if column["name"] == "bmi")
    assert bmi["breached"] == ["normalized_wasserstein_distance"] and bmi["value"] > 0.5
    assert (folder / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| bmi | data drift |" in (folder / "monitor.md").read_text()
    server = azurite.running(production)
    assert server is not None  # the store is Azurite, started on demand
    blobs = [blob.name for blob in local_store(production).list("modelDataCollector/prod/blue/")]
    assert any("/model_inputs/" in name for name in blobs)

    # Without --fail-on-drift a breach is reported, not a failure.
    assert mlops("monitor", "--deployment", "blue")[0] == 0

    # Ground truth arrives for some of the rows: their true targets → a training data set.
    # (Labelling all 1000 shifted rows would move BMI's mean past the data tests' limit.)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"correlationid": ids[:300], "target": rows[TARGET][:300]}).to_csv(
        labels, index=False
    )
    code, out = mlops("feedback", "--labels", str(labels), "--deployment", "blue")
    assert code == 0, out
    assert f"{feedback_name()}:1" in out and "mlops run --data diabetes-feedback:1" in out
    store = local_store(production)
    lineage = json.loads(store.read("training-data/diabetes-feedback/1/lineage.json"))
    assert lineage["rows"] == {"base": 442, "labels": 300, "collected_in_window": 1000,
                               "total": 742}  # fmt: skip
    assert lineage["serving_model"] == "diabetes-ridge:1"
    assert lineage["deployment"] == "blue" and "start" in lineage["window"]

    code, out = mlops("run", "--data", f"{feedback_name()}:1", "--no-release")
    assert code == 0, out
    run = Tracking(production).get_run(None)
    assert run.data.params["data_source"] == f"{feedback_name()}:1"
    assert run.data.tags["data_rows"] == "742"

    code, out = mlops("teardown")
    assert code == 0 and "azurite" in out
    assert not process_alive(server.pid)


@pytest.mark.integration
def test_too_little_data_is_its_own_outcome(production: Settings, mlops: CLI) -> None:
    collect(production, shifted_rows(120))
    code, out = mlops("monitor", "--deployment", "blue", "--fail-on-drift")
    assert code == 0, out
    assert "too little data: 120 row(s) in the window, a verdict needs at least 1000" in out
    report = json.loads((production.state_dir / "monitoring/prod-blue/monitor.json").read_text())
    assert report["outcome"] == "too-little-data" and report["columns"] == []
    assert not (production.state_dir / "monitoring/prod-blue/drift.png").exists()


BAD_LABELS = [
    ("correlationid,target\nreq-0:0,100\nnobody,90\n",
     "line 3: id 'nobody' matches no collected row in the window"),
    ("correlationid,target\nreq-0:0,100\nreq-0:0,90\n", "line 3: id 'req-0:0' repeats line 2"),
    ("request_id,target\nreq-0:1,high\n", "line 2: target 'high' is not a finite number"),
    ("correlationid,target\nreq-0:1,nan\n", "line 2: target 'nan' is not a finite number"),
    ("id,value\nreq-0:1,1\n", "needs an id column (correlationid or request_id) and target"),
]  # fmt: skip


@pytest.mark.integration
def test_bad_labels_name_the_first_bad_line_and_write_nothing(
    production: Settings, mlops: CLI, tmp_path: Path
) -> None:
    collect(production, shifted_rows(150))
    labels = tmp_path / "labels.csv"
    for content, message in BAD_LABELS:
        labels.write_text(content)
        code, out = mlops("feedback", "--labels", str(labels), "--deployment", "blue")
        assert code != 0, content
        assert message in out
        assert out.count("error:") == 1
        assert versions(local_store(production), feedback_name()) == []
