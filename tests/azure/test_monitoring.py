"""The MonitorSchedule, built and serialized offline with azure-ai-ml, from the local thresholds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.azure.monitoring import MONITOR_NAME, monitor_schedule, signal_names
from pipelines.monitoring.thresholds import THRESHOLDS, DriftMetric
from tests.bundles import DIABETES_FEATURES as FEATURES
from tests.bundles import DIABETES_TARGET as TARGET


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
