"""`mlops monitor --target azure` and `mlops feedback --target azure`: the same chain as locally,
reading the production workspace's blob storage in the collector's layout.

The blob part runs against Azurite with the real azure-storage-blob SDK (standing in for the
workspace storage, which `azure_store` reaches with DefaultAzureCredential over https); the Azure
ML part (endpoint, deployments, registry, data assets) against the recording fakes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import AzureBlobDatastore
from azure.identity import DefaultAzureCredential

from infra.outputs import StackOutputs
from pipelines.azure.monitoring import register_feedback
from pipelines.commands.monitor import production_data
from pipelines.datastore import azurite, layout
from pipelines.datastore.collected import mirror_local_capture, parse_window
from pipelines.datastore.datasets import feedback_name, versions
from pipelines.datastore.store import BlobStore, azure_store, local_store
from pipelines.errors import MlopsError
from pipelines.monitoring.drift import OUTCOME_DRIFT
from pipelines.monitoring.feedback import feedback
from pipelines.monitoring.monitor import ProductionData, monitor
from pipelines.monitoring.thresholds import THRESHOLDS
from pipelines.release.runner import release
from pipelines.settings import TargetName
from scoring.collection import CaptureFileHandler, row_ids
from tests.azure.conftest import World
from tests.bundles import DIABETES_FEATURES as FEATURES
from tests.bundles import DIABETES_TARGET as TARGET
from tests.monitoring.test_loop import shifted_rows


@pytest.fixture
def blobs(world: World) -> Iterator[BlobStore]:
    started = local_store(world.settings)
    yield started
    azurite.stop(world.settings)


def serving_v1(world: World, prod: StackOutputs) -> Any:
    """v1 released to the prod stack's online endpoint (blue, all traffic)."""
    world.workspace(prod).with_endpoint()
    target = world.target()
    world.image_in(target.outputs("qa"), world.store.v1)  # QA's stage built it
    release(target, target.registry, world.version(world.store.v1), stage="prod")
    return target


def collected_on_azure(
    store: BlobStore, scratch: Path, endpoint: str, rows: pd.DataFrame
) -> list[str]:
    """What the data collector of `endpoint`/blue uploads for these rows, stamped now."""
    handler = CaptureFileHandler(scratch / layout.deployment_prefix(endpoint, "blue"), "az")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    ids: list[str] = []
    for start in range(0, len(rows), 100):
        chunk = rows.iloc[start : start + 100]
        chunk_ids = row_ids(f"az-{start}", len(chunk))
        inputs = chunk.loc[:, list(FEATURES)].assign(correlationid=chunk_ids)
        outputs = pd.DataFrame({"prediction": chunk[TARGET] * 0.5 + 80, "correlationid": chunk_ids})
        for collection, frame in (("model_inputs", inputs), ("model_outputs", outputs)):
            handler.emit(
                logging.LogRecord(
                    "local.capture", 20, "", 1, "%s",
                    (stamp, collection, f"az-{start}", frame.to_json(orient="records")), None,
                )
            )  # fmt: skip
        ids += chunk_ids
    handler.close()
    mirror_local_capture(scratch, store)  # the collector's upload
    return ids


def write_labels(path: Path, ids: list[str], rows: pd.DataFrame, count: int) -> Path:
    """Ground truth for the first `count` collected rows."""
    frame = pd.DataFrame({"correlationid": ids[:count], "target": rows[TARGET][:count]})
    frame.to_csv(path, index=False)
    return path


class Assets:
    """`ml_client.data` and the default datastore, recording the order of events."""

    def __init__(self, ws: Any, store: BlobStore, fail: bool = False) -> None:
        self.store = store
        self.fail = fail
        self.created: list[Any] = []
        self.lineage_existed: list[bool] = []
        ws.handlers["datastores.get_default"] = lambda: SimpleNamespace(name="workspaceblobstore")
        ws.handlers["data.create_or_update"] = self.create

    def create(self, data: Any) -> Any:
        if self.fail:
            from azure.core.exceptions import HttpResponseError

            raise HttpResponseError("AuthorizationFailed: no write access to data assets")
        folder = f"training-data/{data.name}/{data.version}/"
        self.lineage_existed.append(self.store.exists(folder + "lineage.json"))
        self.created.append(data)
        return data


@pytest.mark.integration
def test_monitor_and_feedback_read_the_workspace_layout_and_register_the_data_set(
    world: World, prod: StackOutputs, blobs: BlobStore, tmp_path: Path
) -> None:
    store = blobs
    target = serving_v1(world, prod)
    rows = shifted_rows(1000)
    ids = collected_on_azure(store, tmp_path / "collector", prod.online_endpoint_name, rows)
    # On Azure the collector names the endpoint by its Azure name: rows under the logical name
    # belong to no deployment of this workspace and are not read.
    collected_on_azure(store, tmp_path / "other", "prod", shifted_rows(100, seed=3))
    data = ProductionData(target, store, "prod", prod.online_endpoint_name)

    run = monitor(
        data, deployment=None, window=parse_window("1h"), thresholds=THRESHOLDS,
        report_dir=tmp_path / "report",
    )  # fmt: skip
    assert run.evaluation.outcome == OUTCOME_DRIFT and run.evaluation.rows == 1000
    assert run.context.deployment == "blue" and run.context.model == world.store.v1.ref
    assert run.context.reference == "the bundled diabetes data"  # through the data_source tag
    report = json.loads((tmp_path / "report" / "monitor.json").read_text())
    bmi = next(column for column in report["columns"] if column["name"] == "bmi")
    assert bmi["breached"] == ["normalized_wasserstein_distance"]

    labels = write_labels(tmp_path / "labels.csv", ids, rows, 300)
    ws = world.workspace(prod)
    assets = Assets(ws, store)
    result = feedback(
        data, labels_path=labels, deployment=None, window=parse_window("1h"),
        register=lambda ref, record: register_feedback(ws, ref, record),
    )  # fmt: skip
    assert str(result.ref) == f"{feedback_name()}:1" and versions(store, feedback_name()) == [1]
    (asset,) = assets.created
    # Registered before the lineage record completes the version (its BlobCreated event
    # starts the retrain pipeline with azureml:<name>:<version>, which must exist by then).
    assert assets.lineage_existed == [False]
    assert (asset.name, asset.version, asset.type) == (feedback_name(), "1", AssetTypes.URI_FILE)
    assert asset.path == (
        "azureml://datastores/workspaceblobstore/paths/training-data/diabetes-feedback/1/data.csv"
    )
    assert asset.tags["serving_model"] == world.store.v1.ref
    assert asset.tags["deployment"] == "blue" and asset.tags["endpoint"] == "prod"
    assert (asset.tags["rows_labels"], asset.tags["rows_base"], asset.tags["rows_total"]) == (
        "300", "442", "742",
    )  # fmt: skip
    assert asset.tags["window_start"] == result.lineage["window"]["start"]
    assert "300 labelled production rows" in asset.description
    rest = asset._to_rest_object().as_dict()["properties"]
    assert rest["dataType"] == "uri_file"


@pytest.mark.integration
def test_a_failed_asset_registration_leaves_no_data_set_version(
    world: World, prod: StackOutputs, blobs: BlobStore, tmp_path: Path
) -> None:
    target = serving_v1(world, prod)
    rows = shifted_rows(200)
    ids = collected_on_azure(blobs, tmp_path / "collector", prod.online_endpoint_name, rows)
    labels = write_labels(tmp_path / "labels.csv", ids, rows, 50)
    ws = world.workspace(prod)
    Assets(ws, blobs, fail=True)
    data = ProductionData(target, blobs, "prod", prod.online_endpoint_name)
    with pytest.raises(MlopsError, match="registering data asset diabetes-feedback:1 failed"):
        feedback(
            data, labels_path=labels, deployment=None, window=parse_window("1h"),
            register=lambda ref, record: register_feedback(ws, ref, record),
        )  # fmt: skip
    assert versions(blobs, feedback_name()) == []  # no lineage record: no version, no event
    assert not blobs.exists("training-data/diabetes-feedback/1/lineage.json")


def test_the_azure_target_reads_the_production_workspace_storage(
    world: World, prod: StackOutputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = world.target()
    monkeypatch.setattr(
        "pipelines.connect.serving_target", lambda which, model: (world.settings, target)
    )
    ws = world.workspace(prod)
    ws.handlers["datastores.get_default"] = lambda: AzureBlobDatastore(
        name="workspaceblobstore", account_name="stmlopsprod", container_name="azureml-blobstore-1"
    )
    _, data, register = production_data(TargetName.azure, "prod", None)
    assert data.collected_as == prod.online_endpoint_name  # the collector's name for it
    assert data.capture is None and data.tracking is None and register is not None
    container = data.store.container
    assert container.url == "https://stmlopsprod.blob.core.windows.net/azureml-blobstore-1"
    assert isinstance(container.credential, DefaultAzureCredential)  # no account key
    with pytest.raises(MlopsError, match="only prod collects"):
        production_data(TargetName.azure, "qa", None)


def test_azure_store_uses_the_default_datastore() -> None:
    datastore = AzureBlobDatastore(name="d", account_name="acct", container_name="c")
    store = azure_store(SimpleNamespace(datastores=SimpleNamespace(get_default=lambda: datastore)))
    assert store.container.url == "https://acct.blob.core.windows.net/c"
    assert store.description == "the workspace storage (acct/c)"
