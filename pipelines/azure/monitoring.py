"""The Azure side of monitoring: an Azure ML MonitorSchedule on the production deployment.

Built with azure-ai-ml's entities (`azure/ai/ml/entities/_monitoring/`), from the same
thresholds as `mlops monitor` (`pipelines.monitoring.thresholds.THRESHOLDS`): data drift,
prediction drift and data quality signals on the deployment's collected `model_inputs` and
`model_outputs`, against the training data as reference (Learn, "how-to-monitor-model-
performance", advanced setup: the reference is an MLTable data asset, `data_context` training,
with the target column named). A run that breaches tags itself
`azureml_modelmonitor_threshold_breached` and fails; Event Grid carries that as a
`Microsoft.MachineLearningServices.RunStatusChanged` event (infra/components/loop_events.py).
"""

from __future__ import annotations

from typing import Any

from pipelines.monitoring.thresholds import THRESHOLDS, Thresholds

MONITOR_NAME = "production-drift"
# Serverless Spark for the monitor's jobs; azure-ai-ml accepts runtime 3.4 or 3.5
# (`_SUPPORTED_RUNTIME_VERSIONS` in entities/_monitoring/compute.py).
SPARK_INSTANCE_TYPE = "standard_e4s_v3"
SPARK_RUNTIME = "3.4"
SCHEDULE_HOUR_UTC = 4  # daily, after the night's traffic


def signal_names(monitor: str = MONITOR_NAME) -> dict[str, str]:
    """Signal names prefixed with the monitor's: Learn's Event Grid filter matches on them."""
    return {
        kind: f"{monitor}-{kind.replace('_', '-')}"
        for kind in ("data_drift", "prediction_drift", "data_quality")
    }


def monitor_schedule(
    endpoint: str,
    deployment: str,
    reference: str,
    *,
    features: list[str],
    target_column: str,
    thresholds: Thresholds = THRESHOLDS,
    name: str = MONITOR_NAME,
) -> Any:
    """The schedule: one run a day over the last day of `endpoint`/`deployment`'s traffic.

    `reference` is the training data as an MLTable data asset, `azureml:<name>:<version>`.
    """
    from azure.ai.ml import Input
    from azure.ai.ml.constants import MonitorDatasetContext
    from azure.ai.ml.entities import (
        DataDriftMetricThreshold,
        DataDriftSignal,
        DataQualityMetricsNumerical,
        DataQualityMetricThreshold,
        DataQualitySignal,
        MonitorDefinition,
        MonitoringTarget,
        MonitorSchedule,
        NumericalDriftMetrics,
        PredictionDriftMetricThreshold,
        PredictionDriftSignal,
        RecurrencePattern,
        RecurrenceTrigger,
        ReferenceData,
        ServerlessSparkCompute,
    )

    def reference_data() -> ReferenceData:
        return ReferenceData(
            input_data=Input(type="mltable", path=reference),
            data_context=MonitorDatasetContext.TRAINING,
            data_column_names={"target_column": target_column},
        )

    def numerical(metric: str, value: float) -> NumericalDriftMetrics:
        metrics = NumericalDriftMetrics()
        setattr(metrics, metric, value)  # one of its four metric fields, named as ours are
        return metrics

    # Signals are `mode: Disabled` unless alert_enabled (PredictionDriftSignal._to_rest_object);
    # azure-ai-ml 1.35 also writes `modelType: classification` for prediction drift whatever the
    # target's ml_task: the service's handling of that for regression is not confirmed offline.
    names = signal_names(name)
    signals: dict[str, Any] = {
        names["data_drift"]: DataDriftSignal(
            reference_data=reference_data(),
            alert_enabled=True,
            features=list(features),
            metric_thresholds=DataDriftMetricThreshold(
                numerical=numerical(str(thresholds.data_drift_metric), thresholds.data_drift)
            ),
        ),
        names["prediction_drift"]: PredictionDriftSignal(
            reference_data=reference_data(),
            alert_enabled=True,
            metric_thresholds=PredictionDriftMetricThreshold(
                numerical=numerical(
                    str(thresholds.prediction_drift_metric), thresholds.prediction_drift
                )
            ),
        ),
        names["data_quality"]: DataQualitySignal(
            reference_data=reference_data(),
            alert_enabled=True,
            features=list(features),
            metric_thresholds=DataQualityMetricThreshold(
                numerical=DataQualityMetricsNumerical(**thresholds.quality_thresholds())
            ),
        ),
    }
    definition = MonitorDefinition(
        compute=ServerlessSparkCompute(
            instance_type=SPARK_INSTANCE_TYPE, runtime_version=SPARK_RUNTIME
        ),
        monitoring_target=MonitoringTarget(
            ml_task="regression", endpoint_deployment_id=f"azureml:{endpoint}:{deployment}"
        ),
        monitoring_signals=signals,
    )
    return MonitorSchedule(
        name=name,
        trigger=RecurrenceTrigger(
            frequency="day",
            interval=1,
            schedule=RecurrencePattern(hours=SCHEDULE_HOUR_UTC, minutes=0),
        ),
        create_monitor=definition,
        tags={"managed-by": "mlops release"},
    )


def apply_monitor_schedule(ml_client: Any, schedule: Any) -> Any:
    """Create or update the schedule in the workspace (the release's last step)."""
    return ml_client.schedules.begin_create_or_update(schedule).result()
