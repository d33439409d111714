"""The MonitorSchedule, built and serialized offline with azure-ai-ml, from the local thresholds;
and the release that registers its reference data and submits it, against recording fakes."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from azure.ai.ml._utils._data_utils import read_local_mltable_metadata_contents
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import MonitorSchedule
from azure.ai.ml.entities._data.mltable_metadata import MLTableMetadata
from marshmallow import ValidationError

from infra.outputs import StackOutputs
from pipelines.azure.monitoring import (
    MONITOR_NAME,
    monitor_schedule,
    reference_asset,
    signal_names,
)
from pipelines.azure.registry import PRODUCTION_TAG, AzureModelRegistry
from pipelines.errors import MlopsError
from pipelines.lifecycle import run_release
from pipelines.monitoring.thresholds import THRESHOLDS, DriftMetric
from pipelines.registry import RegisteredVersion
from pipelines.release.runner import ReleaseError, ReleaseLog
from tests.azure.conftest import World
from tests.azure.fakes import Poller, not_found
from tests.bundles import DIABETES_FEATURES as FEATURES
from tests.bundles import DIABETES_TARGET as TARGET
from training.data import fingerprint


def rest(thresholds=THRESHOLDS) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    schedule = monitor_schedule(
        "prod", "green", "azureml:diabetes-training:3",
        features=list(FEATURES), target_column=TARGET, thresholds=thresholds,
    )  # fmt: skip
    return schedule._to_rest_object().as_dict()["properties"]


def thresholds_of(signal: dict[str, Any]) -> dict[str, float]:
    return {item["metric"]: item["threshold"]["value"] for item in signal["metricThresholds"]}


def test_schedule_targets_the_deployment_daily_with_three_alerting_signals() -> None:
    properties = rest()
    assert properties["trigger"]["frequency"] == "day" and properties["trigger"]["interval"] == 1
    definition = properties["action"]["monitorDefinition"]
    assert properties["action"]["actionType"] == "CreateMonitor"
    assert definition["monitoringTarget"] == {"taskType": "regression",
                                              "deploymentId": "azureml:prod:green"}  # fmt: skip
    assert definition["computeConfiguration"]["computeType"] == "ServerlessSpark"
    names = signal_names()
    signals = definition["signals"]
    assert set(signals) == set(names.values())
    assert all(name.startswith(MONITOR_NAME) for name in signals)  # Event Grid filters on it
    kinds = {signal["signalType"] for signal in signals.values()}
    assert kinds == {"DataDrift", "PredictionDrift", "DataQuality"}
    for signal in signals.values():
        assert signal["mode"] == "Enabled"  # a breach alerts (and fails the run)
        reference = signal["referenceData"]
        assert reference["uri"] == "azureml:diabetes-training:3"
        assert reference["jobInputType"] == "mltable"
        assert reference["dataContext"] == "training"
        assert reference["columns"] == {"target_column": TARGET}
    assert signals[names["data_drift"]]["features"]["features"] == list(FEATURES)


def test_azure_thresholds_are_the_local_ones() -> None:
    signals = rest()["action"]["monitorDefinition"]["signals"]
    names = signal_names()
    assert thresholds_of(signals[names["data_drift"]]) == {
        "normalizedWassersteinDistance": THRESHOLDS.data_drift
    }
    assert thresholds_of(signals[names["prediction_drift"]]) == {
        "normalizedWassersteinDistance": THRESHOLDS.prediction_drift
    }
    assert thresholds_of(signals[names["data_quality"]]) == {
        "nullValueRate": THRESHOLDS.null_value_rate,
        "dataTypeErrorRate": THRESHOLDS.data_type_error_rate,
        "outOfBoundsRate": THRESHOLDS.out_of_bounds_rate,
    }


def test_changed_thresholds_reach_the_schedule() -> None:
    changed = replace(
        THRESHOLDS,
        data_drift_metric=DriftMetric.KOLMOGOROV_SMIRNOV,
        data_drift=0.01,
        prediction_drift_metric=DriftMetric.POPULATION_STABILITY_INDEX,
        prediction_drift=0.2,
        null_value_rate=0.05,
    )
    signals = rest(changed)["action"]["monitorDefinition"]["signals"]
    names = signal_names()
    assert thresholds_of(signals[names["data_drift"]]) == {"twoSampleKolmogorovSmirnovTest": 0.01}
    assert thresholds_of(signals[names["prediction_drift"]]) == {"populationStabilityIndex": 0.2}
    assert thresholds_of(signals[names["data_quality"]])["nullValueRate"] == 0.05


# -- the release creates the schedule ------------------------------------------------------


class DataAssets:
    """`ml_client.data` as the SDK behaves: versions are immutable, `get` of a missing one raises,
    and an MLTable folder's `MLTable` file is read and parsed before upload
    (`DataOperations._validate` in azure-ai-ml `operations/_data_operations.py`)."""

    def __init__(self) -> None:
        self.assets: dict[tuple[str, str], Any] = {}
        self.tables: dict[tuple[str, str], pd.DataFrame] = {}

    def install(self, ws: Any) -> DataAssets:
        ws.handlers["data.get"] = self.get
        ws.handlers["data.create_or_update"] = self.create_or_update
        ws.handlers["schedules.begin_create_or_update"] = lambda schedule: Poller(schedule)
        return self

    def get(self, name: str, version: str) -> Any:
        try:
            return copy.deepcopy(self.assets[(name, version)])
        except KeyError:
            raise not_found(f"{name}:{version}") from None

    def create_or_update(self, data: Any) -> Any:
        key = (data.name, data.version)
        assert key not in self.assets, "data asset versions are immutable"
        if data.type == AssetTypes.MLTABLE:
            contents = read_local_mltable_metadata_contents(path=data.path)
            metadata = MLTableMetadata._load(contents, Path(data.path, "MLTable"))
            files = [Path(data.path, uri) for uri in metadata.referenced_uris()]
            assert all(file.is_file() for file in files), files
            self.tables[key] = pd.read_parquet(files[0])
        self.assets[key] = copy.deepcopy(data)
        return data


def schedules_sent(world: World) -> list[Any]:
    return [call.arg for call in world.log.of("schedules.begin_create_or_update")]


def released(world: World, which: str, tmp_path: Path) -> ReleaseLog:
    target = world.target()
    world.image_in(target.outputs("qa"), getattr(world.store, which))  # QA's stage built it
    return run_release(
        world.settings, target, world.version(getattr(world.store, which)),
        tmp_path / which, stage="prod",
    )  # fmt: skip


def test_release_registers_the_reference_and_schedules_the_monitor(
    world: World, prod: StackOutputs, tmp_path: Path
) -> None:
    ws = world.workspace(prod).with_endpoint()
    data = DataAssets().install(ws)
    log = released(world, "v1", tmp_path)
    names = world.log.names()
    # After promotion (the registry's production tag), the reference, then the schedule.
    promoted = max(
        i for i, c in enumerate(world.log.calls)
        if c.name == "registry.models.create_or_update" and PRODUCTION_TAG in c.arg.tags
    )  # fmt: skip
    assert names.index("data.create_or_update") > promoted
    assert names.index("schedules.begin_create_or_update") > names.index("data.create_or_update")

    version = world.store.v1
    asset = data.assets[("diabetes-ridge-training", version.version)]
    assert asset.type == AssetTypes.MLTABLE
    assert asset.tags["data_sha256"] == version.tags["data_sha256"]
    assert asset.tags["model"] == version.ref and asset.tags["data_source"] == "bundled"
    # The table registered is the data the model was trained on: same fingerprint.
    assert (
        fingerprint(data.tables[("diabetes-ridge-training", version.version)])
        == (version.tags["data_sha256"])
    )

    (schedule,) = schedules_sent(world)
    assert isinstance(schedule, MonitorSchedule) and schedule.name == MONITOR_NAME
    properties = schedule._to_rest_object().as_dict()["properties"]
    definition = properties["action"]["monitorDefinition"]
    assert definition["monitoringTarget"]["deploymentId"] == (
        f"azureml:{prod.online_endpoint_name}:blue"
    )
    signals = definition["signals"]
    assert {s["signalType"] for s in signals.values()} == {
        "DataDrift", "PredictionDrift", "DataQuality",
    }  # fmt: skip
    for signal in signals.values():
        assert (
            signal["referenceData"]["uri"] == f"azureml:diabetes-ridge-training:{version.version}"
        )
    names_ = signal_names()
    assert thresholds_of(signals[names_["data_drift"]]) == {
        "normalizedWassersteinDistance": THRESHOLDS.data_drift
    }
    assert thresholds_of(signals[names_["data_quality"]])["nullValueRate"] == (
        THRESHOLDS.null_value_rate
    )
    assert any("monitor schedule production-drift" in step for step in log.steps)
    assert log.warnings == []


def test_the_next_release_moves_the_schedule_to_the_new_deployment(
    world: World, prod: StackOutputs, tmp_path: Path
) -> None:
    data = DataAssets().install(world.workspace(prod).with_endpoint())
    released(world, "v1", tmp_path)
    released(world, "v2", tmp_path)
    first, second = schedules_sent(world)
    assert first.name == second.name == MONITOR_NAME  # one schedule, updated
    target = second.create_monitor.monitoring_target.endpoint_deployment_id
    assert target == f"azureml:{prod.online_endpoint_name}:green"
    assert set(data.assets) == {("diabetes-ridge-training", "1"), ("diabetes-ridge-training", "2")}


def test_a_failed_promotion_schedules_no_monitor(
    world: World, prod: StackOutputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataAssets().install(world.workspace(prod).with_endpoint())
    released(world, "v1", tmp_path)
    (first,) = schedules_sent(world)

    def refuse(self: AzureModelRegistry, version: RegisteredVersion) -> None:
        raise MlopsError("the registry refused the production tag")

    monkeypatch.setattr(AzureModelRegistry, "set_production", refuse)
    with pytest.raises(ReleaseError, match="production alias still on diabetes-ridge:1"):
        released(world, "v2", tmp_path)
    # Rolled back to blue: the schedule still watches blue, no reference for v2 was registered.
    assert schedules_sent(world) == [first]
    assert set(data.assets) == {("diabetes-ridge-training", "1")}


def test_a_reference_asset_with_other_data_is_a_warning_not_a_monitor(
    world: World, prod: StackOutputs, tmp_path: Path
) -> None:
    data = DataAssets().install(world.workspace(prod).with_endpoint())
    data.assets[("diabetes-ridge-training", "1")] = SimpleNamespace(tags={"data_sha256": "f00"})
    log = released(world, "v1", tmp_path)
    assert world.registry().production().ref == world.store.v1.ref  # released all the same
    assert schedules_sent(world) == []
    (warning,) = log.warnings
    assert "monitor was not set up" in warning and "holds other data" in warning


def test_the_reference_folder_is_an_mltable_the_sdk_reads(tmp_path: Path) -> None:
    table = pd.DataFrame({"a": [1.0, 2.0], "target": [3.0, 4.0]})
    version = RegisteredVersion(
        "diabetes-ridge", "7", "run-1", "0" * 64, "test", (),
        {"data_sha256": "abc", "data_source": "bundled"},
    )  # fmt: skip
    asset = reference_asset(version, table, "bundled", tmp_path / "ref")
    metadata = MLTableMetadata._load(
        read_local_mltable_metadata_contents(path=asset.path), tmp_path / "ref" / "MLTable"
    )
    assert metadata.referenced_uris() == ["./data.parquet"]
    assert pd.read_parquet(tmp_path / "ref" / "data.parquet").equals(table)
    rest = asset._to_rest_object().as_dict()["properties"]
    assert rest["dataType"] == "mltable" and rest["tags"]["model"] == "diabetes-ridge:7"
    # A broken MLTable file (no paths) is what the SDK refuses.
    (tmp_path / "ref" / "MLTable").write_text("type: mltable\n")
    with pytest.raises(ValidationError):
        MLTableMetadata._load(
            read_local_mltable_metadata_contents(path=asset.path), tmp_path / "ref" / "MLTable"
        )
