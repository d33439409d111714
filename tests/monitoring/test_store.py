"""Collection → blob layout → reader, against Azurite with the real azure-storage-blob SDK."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.datastore import azurite, layout
from pipelines.datastore.collected import (
    Window,
    collection_frame,
    mirror_local_capture,
    parse_window,
)
from pipelines.datastore.store import BlobStore, local_store
from pipelines.errors import MlopsError
from pipelines.processes import process_alive
from pipelines.settings import Settings, load_settings
from scoring.collection import CaptureFileHandler


def capture(handler: CaptureFileHandler, stamp: str, collection: str, cid: str, rows: str) -> None:
    handler.emit(
        logging.LogRecord("local.capture", 20, "", 1, "%s", (stamp, collection, cid, rows), None)
    )


@pytest.fixture
def settings(state_dir: Path) -> Settings:
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> BlobStore:
    started = local_store(settings)
    yield started  # type: ignore[misc]
    azurite.stop(settings)


@pytest.mark.integration
def test_capture_files_land_in_azurite_and_read_back(settings: Settings, store: BlobStore) -> None:
    server = azurite.running(settings)
    assert server is not None and process_alive(server.pid)
    assert server.blob_endpoint.startswith("http://127.0.0.1:")
    key_file = azurite.state_dir(settings) / "account.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    root = settings.collected_dir
    handler = CaptureFileHandler(root / layout.deployment_prefix("prod", "blue"), "w1")
    capture(handler, "2026-12-01 10:15:00", "model_inputs", "r1",
            '[{"age":0.1,"bmi":0.2,"correlationid":"r1"}]')  # fmt: skip
    capture(handler, "2026-12-01 10:16:00", "model_inputs", "r2",
            '[{"age":0.3,"bmi":0.4,"correlationid":"r2:0"},'
            '{"age":0.5,"bmi":0.6,"correlationid":"r2:1"}]')  # fmt: skip
    capture(handler, "2026-12-01 12:00:00", "model_inputs", "r3",
            '[{"age":0.7,"bmi":0.8,"correlationid":"r3"}]')  # fmt: skip
    capture(handler, "2026-12-01 10:15:00", "model_outputs", "r1",
            '[{"prediction":150.0,"correlationid":"r1"}]')  # fmt: skip

    assert mirror_local_capture(root, store) == 3
    assert mirror_local_capture(root, store) == 0  # nothing new
    names = sorted(blob.name for blob in store.list("modelDataCollector/"))
    assert names == [
        "modelDataCollector/prod/blue/model_inputs/2026/12/01/10/w1.jsonl",
        "modelDataCollector/prod/blue/model_inputs/2026/12/01/12/w1.jsonl",
        "modelDataCollector/prod/blue/model_outputs/2026/12/01/10/w1.jsonl",
    ]

    window = Window(datetime(2026, 12, 1, 10, tzinfo=UTC), datetime(2026, 12, 1, 11, tzinfo=UTC))
    frame = collection_frame(store, "prod", "blue", "model_inputs", window, ["age", "bmi", "bp"])
    assert frame["correlationid"].tolist() == ["r1", "r2:0", "r2:1"]
    assert frame["bmi"].tolist() == [0.2, 0.4, 0.6]
    assert frame["bp"].isna().all()  # absent from the rows: missing, not invented
    assert collection_frame(store, "prod", "green", "model_inputs", window, ["age"]).empty

    # A file that grows is copied again; other deployments stay apart.
    capture(handler, "2026-12-01 10:59:59", "model_inputs", "r4",
            '[{"age":0.9,"bmi":1.0,"correlationid":"r4"}]')  # fmt: skip
    assert mirror_local_capture(root, store) == 1
    frame = collection_frame(store, "prod", "blue", "model_inputs", window, ["age", "bmi"])
    assert frame["correlationid"].tolist() == ["r1", "r2:0", "r2:1", "r4"]
    line = json.loads(store.read(names[0]).decode().splitlines()[0])
    assert line["type"] == "azureml.inference.model_inputs"


@pytest.mark.integration
def test_store_refuses_to_overwrite_and_teardown_stops_azurite(
    settings: Settings, store: BlobStore
) -> None:
    store.write("training-data/x.csv", b"a\n")
    with pytest.raises(MlopsError, match="already exists"):
        store.write("training-data/x.csv", b"b\n")
    assert store.read("training-data/x.csv") == b"a\n"
    server = azurite.running(settings)
    assert server is not None
    assert local_store(settings).exists("training-data/x.csv")  # the same server, reused
    assert azurite.running(settings) == server

    from pipelines.registry import ModelRegistry
    from pipelines.targets.local import LocalTarget

    stopped = LocalTarget(settings, ModelRegistry(settings.tracking_uri, "m")).teardown()
    assert "azurite (local blob storage)" in stopped
    assert not process_alive(server.pid)
    assert azurite.running(settings) is None


def test_window_parsing() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parse_window("90m", now) == Window(datetime(2026, 12, 1, 10, 30, tzinfo=UTC), now)
    assert parse_window("7d", now).start == datetime(2026, 11, 24, 12, tzinfo=UTC)
    for bad in ("0h", "1w", "soon", ""):
        with pytest.raises(MlopsError, match="is not a duration"):
            parse_window(bad, now)


def test_layout_paths() -> None:
    name = "modelDataCollector/prod/blue/model_inputs/2026/12/01/10/w1.jsonl"
    assert layout.blob_hour(name) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert layout.blob_hour("modelDataCollector/prod/blue/model_inputs/notes.txt") is None
    assert layout.blob_hour("x/2026/13/01/10/a.jsonl") is None
    assert layout.day_prefixes(
        "p/", datetime(2026, 12, 31, 23, tzinfo=UTC), datetime(2027, 1, 1, 1, tzinfo=UTC)
    ) == ["p/2026/12/31/", "p/2027/01/01/"]


def test_a_stale_record_never_signals_another_process(settings: Settings) -> None:
    """The recorded pid now belongs to something else (here: this test): left alone."""
    import json as json_module

    folder = azurite.state_dir(settings)
    folder.mkdir(parents=True)
    record = {"pid": os.getpid(), "port": 1, "account": "a", "key": "k"}
    (folder / "server.json").write_text(json_module.dumps(record))
    assert azurite.running(settings) is None
    assert azurite.stop(settings) is False  # and we are still here
    assert not (folder / "server.json").exists()
