"""The Azure side of monitoring: an Azure ML MonitorSchedule on the production deployment.

Built with azure-ai-ml's entities (`azure/ai/ml/entities/_monitoring/`), from the same
thresholds as `mlops monitor` (`pipelines.monitoring.thresholds.THRESHOLDS`): data drift,
prediction drift and data quality signals on the deployment's collected `model_inputs` and
`model_outputs`, against the training data as reference (Learn, "how-to-monitor-model-
performance", advanced setup: the reference is an MLTable data asset, `data_context` training,
with the target column named). A run that breaches tags itself
`azureml_modelmonitor_threshold_breached` and fails; Event Grid carries that as a
`Microsoft.MachineLearningServices.RunStatusChanged` event (infra/components/loop_events.py).

The release creates or updates the schedule once a version is in production (`watch_production`,
called through `AzureTarget.watch` by the release chain, `pipelines.lifecycle.run_release`):
1. the production model's training data, found through its lineage tags (`data_source`,
   checked against `data_sha256`), is registered in the production workspace as an MLTable data
   asset `<model>-training:<model version>` whose tags carry the same lineage. MLTable because
   the signals' baseline input is `type: mltable` (Azure/azureml-assets,
   `assets/model_monitoring/components/data_drift/data_drift_signal_monitor/spec.yaml`,
   `baseline_data`) and Learn's training-data reference is `Input(type="mltable", ...)`;
2. `ml_client.schedules.begin_create_or_update(...)` submits the schedule on the live deployment.
The production data is left for the SDK to fill in: `ScheduleOperations.
_resolve_monitor_schedule_arm_id` (azure-ai-ml `operations/_schedule_operations.py`) takes it
from the deployment's data collector (`model_inputs`/`model_outputs` data assets), and refuses a
signal without it when collection is off; our deployments collect both
(`pipelines.azure.entities.data_collector`). Model monitoring reads only datastores with
credential-based access (Learn, "concept-model-monitoring", limitations); the workspace's
default blob datastore is one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError
from pipelines.monitoring.thresholds import THRESHOLDS, Thresholds

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.datastore.datasets import DataSetRef
    from pipelines.datastore.store import BlobStore
    from pipelines.registry import RegisteredVersion

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
    ml_task: str = "regression",
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
            ml_task=ml_task, endpoint_deployment_id=f"azureml:{endpoint}:{deployment}"
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


REFERENCE_SUFFIX = "-training"
# Parquet: typed and exact, so the asset has the fingerprint the model's `data_sha256` names
# (a CSV round trip through pandas changes the last digits of some floats).
REFERENCE_FILE = "data.parquet"
# The MLTable file of the reference folder (Learn, "reference-yaml-mltable": `paths` with a
# `file`, a `read_parquet` transformation); azure-ai-ml parses it before upload
# (`DataOperations._validate`, `_schema/_data/mltable_metadata_schema.py`).
MLTABLE = f"""\
type: mltable
paths:
  - file: ./{REFERENCE_FILE}
transformations:
  - read_parquet:
      include_path_column: false
"""


def reference_name(version: RegisteredVersion) -> tuple[str, str]:
    """The reference data asset of a model version: `<model>-training`, the model's version."""
    return f"{version.name}{REFERENCE_SUFFIX}", version.version


def reference_asset(
    version: RegisteredVersion, table: pd.DataFrame, source: str, folder: Path
) -> Any:
    """The MLTable data asset of the version's training table, written into `folder`."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    from pipelines.registry import TAG_DATA, TAG_SOURCE
    from pipelines.tags import checked_tags

    folder.mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / REFERENCE_FILE, index=False)
    (folder / "MLTable").write_text(MLTABLE)
    name, number = reference_name(version)
    tags = {
        "model": version.ref,
        TAG_DATA: version.tags.get(TAG_DATA, ""),
        TAG_SOURCE: source,
        "rows": str(len(table)),
    }
    return Data(
        name=name,
        version=number,
        type=AssetTypes.MLTABLE,
        path=str(folder),
        description=f"Training data of {version.ref} ({source}): the monitor's reference.",
        tags=checked_tags(tags, f"data asset {name}:{number}"),
    )


def ensure_reference(
    ml_client: Any, version: RegisteredVersion, table: pd.DataFrame, source: str
) -> str:
    """Register the version's training data once; `azureml:<name>:<version>` of the asset.

    Data asset versions are immutable (Learn, "how-to-create-register-datasets"): an existing one
    is reused when its fingerprint matches and refused when it does not.
    """
    from azure.core.exceptions import ResourceNotFoundError

    from pipelines.registry import TAG_DATA

    name, number = reference_name(version)
    reference = f"azureml:{name}:{number}"
    try:
        existing = ml_client.data.get(name=name, version=number)
    except ResourceNotFoundError:
        existing = None
    if existing is not None:
        found = (existing.tags or {}).get(TAG_DATA)
        if found != version.tags.get(TAG_DATA):
            raise MlopsError(
                f"data asset {name}:{number} holds other data (sha256 {str(found)[:12]}…) than "
                f"{version.ref} was trained on; archive it in Azure ML studio and release again"
            )
        return reference
    with tempfile.TemporaryDirectory() as scratch:
        ml_client.data.create_or_update(
            reference_asset(version, table, source, Path(scratch) / "reference")
        )
    return reference


def watch_production(
    ml_client: Any,
    endpoint: str,
    deployment: str,
    version: RegisteredVersion,
    store: Callable[[], BlobStore],
) -> str:
    """The release's monitoring step: the reference data asset, then the schedule on it.

    `endpoint` is the online endpoint's Azure name; `store` makes the workspace blob store
    (`pipelines.datastore.store.azure_store`), read only for a version trained on a data set.
    """
    from pipelines.monitoring.monitor import reference_data, training_source
    from training.spec import current_spec

    spec = current_spec()
    table, _ = reference_data(version, store)
    source = training_source(version)
    reference = ensure_reference(ml_client, version, table.loc[:, list(spec.columns)], source)
    schedule = monitor_schedule(
        endpoint, deployment, reference,
        features=list(spec.feature_names), target_column=spec.target.name, ml_task=spec.task,
    )  # fmt: skip
    apply_monitor_schedule(ml_client, schedule)
    return f"monitor schedule {schedule.name} on {endpoint}/{deployment} against {reference}"


def feedback_asset(ref: DataSetRef, record: dict[str, Any], datastore: str) -> Any:
    """The data asset of a feedback data set version: its table in the workspace storage, with
    the lineage (window, serving model version, row counts) in its tags and description.

    The path is a datastore URI, `azureml://datastores/<name>/paths/<path>` (Learn,
    "how-to-datastore"); uri_file is the type the training pipeline's data input takes
    (`pipelines/azure/pipeline_job.py`), so `mlops pipeline run --data azureml:<name>:<n>` and the
    retrain pipeline train on it.
    """
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    from pipelines.tags import checked_tags

    rows, window = record["rows"], record["window"]
    tags = {
        "serving_model": record["serving_model"],
        "endpoint": record["endpoint"],
        "deployment": record["deployment"],
        "window_start": window["start"],
        "window_end": window["end"],
        "base": record["base"],
        "rows_base": str(rows["base"]),
        "rows_labels": str(rows["labels"]),
        "rows_total": str(rows["total"]),
    }
    return Data(
        name=ref.name,
        version=str(ref.version),
        type=AssetTypes.URI_FILE,
        path=f"azureml://datastores/{datastore}/paths/{ref.data_blob}",
        description=(
            f"{rows['labels']} labelled production rows of {record['serving_model']} on "
            f"{record['endpoint']}/{record['deployment']} ({window['start']} to {window['end']}) "
            f"on top of its training data ({record['base']}, {rows['base']} rows)"
        ),
        tags=checked_tags(tags, f"data asset {ref}"),
    )


def register_feedback(ml_client: Any, ref: DataSetRef, record: dict[str, Any]) -> None:
    """Register a feedback data set version (already in the default datastore) as a data asset."""
    from pipelines.azure.client import azure_call

    datastore = azure_call("reading the default datastore", ml_client.datastores.get_default)
    azure_call(
        f"registering data asset {ref}",
        lambda: ml_client.data.create_or_update(feedback_asset(ref, record, datastore.name)),
    )
