"""`mlops monitor` and `mlops feedback`: the loop's commands, on either target.

Locally they read Azurite; with `--target azure` the production workspace's blob storage
(`DefaultAzureCredential`), in the same collector layout, with the same reader. On Azure the
scheduled monitoring is Azure ML's MonitorSchedule (created by the release with the same
thresholds, `pipelines/azure/monitoring.py`), whose breach reaches the retrain pipeline through
Event Grid; `mlops monitor --target azure` is the same check on demand, and `mlops feedback
--target azure` also registers the data set as a data asset. Heavy libraries (scipy,
matplotlib, the storage SDK) are imported inside the commands, never at CLI start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.commands.options import ModelName, Target, TargetName
from pipelines.console import console
from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pipelines.datastore.datasets import DataSetRef
    from pipelines.monitoring.monitor import ProductionData
    from pipelines.settings import Settings
    from pipelines.steps import Tracking

    Register = Callable[[DataSetRef, dict[str, Any]], None]

DRIFT_EXIT_CODE = 4  # the gate's rejection is 3

Window = Annotated[
    str,
    typer.Option("--window", help="How far back to read collected data: e.g. 90m, 24h, 7d."),
]
Endpoint = Annotated[str, typer.Option("--endpoint", help="The endpoint whose data to read.")]
Deployment = Annotated[
    str | None,
    typer.Option("--deployment", help="The deployment whose data to read. [default: the live one]"),
]


def production_data(
    target: TargetName, endpoint: str, model_name: str | None
) -> tuple[Settings, ProductionData, Register | None]:
    """Where the endpoint's collected data is, and (Azure) how a data set becomes an asset."""
    from pipelines.connect import serving_target
    from pipelines.monitoring.monitor import ProductionData

    settings, serving = serving_target(target, model_name)
    if target is TargetName.azure:
        from pipelines.azure.monitoring import register_feedback
        from pipelines.datastore.store import azure_store
        from pipelines.release.plan import PROD_ENDPOINT
        from pipelines.targets.azure import AzureTarget

        assert isinstance(serving, AzureTarget)
        if endpoint != PROD_ENDPOINT:
            raise MlopsError(
                f"on Azure only {PROD_ENDPOINT} collects production data; drop --endpoint "
                f"{endpoint}"
            )
        outputs = serving.outputs(endpoint)
        ml_client = serving.clients.workspace(outputs)
        data = ProductionData(
            serving, azure_store(ml_client), endpoint, outputs.online_endpoint_name
        )
        return settings, data, lambda ref, record: register_feedback(ml_client, ref, record)
    from pipelines.datastore.store import local_store
    from pipelines.steps import Tracking

    store = local_store(settings)
    data = ProductionData(
        serving, store, endpoint, endpoint, settings.collected_dir, Tracking(settings)
    )
    return settings, data, None


def monitor_command(
    window: Window = "24h",
    endpoint: Endpoint = "prod",
    deployment: Deployment = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Where to write monitor.json, monitor.md and drift.png. "
            "[default: .mlops/monitoring/<endpoint>-<deployment>]",
            file_okay=False,
        ),
    ] = None,
    fail_on_drift: Annotated[
        bool,
        typer.Option("--fail-on-drift", help=f"Exit with code {DRIFT_EXIT_CODE} on a breach."),
    ] = False,
    trigger_retrain: Annotated[
        bool,
        typer.Option(
            "--trigger-retrain",
            help="On a breach, run the retrain chain (`mlops run`) on the newest training data "
            "set from `mlops feedback`, or on the production model's data if there is none.",
        ),
    ] = False,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Drift and data quality of collected production data against the training reference."""
    from pipelines.datastore.collected import parse_window
    from pipelines.monitoring.drift import OUTCOME_DRIFT
    from pipelines.monitoring.monitor import monitor, print_run, served
    from pipelines.monitoring.report import report_folder
    from pipelines.monitoring.thresholds import THRESHOLDS

    span = parse_window(window)
    if trigger_retrain and target is TargetName.azure:
        raise MlopsError(
            "--trigger-retrain runs the local chain; on Azure a breach of the release's "
            "MonitorSchedule starts the retrain pipeline through Event Grid (docs/monitoring.md)"
        )
    settings, data, _ = production_data(target, endpoint, model_name)
    if report_dir is None:
        name = deployment or served(data, None).deployment
        report_dir = report_folder(settings.state_dir, endpoint, name)
    with console.status("Reading collected data and computing drift…"):
        run = monitor(
            data, deployment=deployment, window=span, thresholds=THRESHOLDS,
            report_dir=report_dir,
        )  # fmt: skip
    print_run(run)
    if run.evaluation.outcome != OUTCOME_DRIFT:
        return
    if trigger_retrain and data.tracking is not None:
        retrain(settings, data.tracking)
    elif fail_on_drift:
        raise typer.Exit(DRIFT_EXIT_CODE)


def retrain(settings: Settings, tracking: Tracking) -> None:
    """The drift trigger: the whole chain on the newest feedback data set (or production's data)."""
    from pipelines.commands.training import summary
    from pipelines.configs import gate_config, training_config
    from pipelines.connect import serving_target
    from pipelines.datastore.datasets import DataSetRef, feedback_name, versions
    from pipelines.datastore.store import local_store
    from pipelines.lifecycle import lifecycle

    known = versions(local_store(settings), feedback_name())
    data = Path(str(DataSetRef(feedback_name(), known[-1]))) if known else None
    console.print(f"Drift found: retraining on {data or 'the production data'}.")
    result = lifecycle(
        tracking, training_config(None, None, None), gate_config(None, None), data,
        serving=lambda: serving_target(TargetName.local, tracking.settings.model_name)[1],
    )  # fmt: skip
    summary(tracking, result)


def feedback_command(
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="CSV of ground truth: correlationid (or request_id) and target.",
            dir_okay=False,
        ),
    ],
    window: Window = "7d",
    endpoint: Endpoint = "prod",
    deployment: Deployment = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Join labels with the collected inputs into a new versioned training data set."""
    from pipelines.datastore.collected import parse_window
    from pipelines.monitoring.feedback import feedback

    span = parse_window(window)
    _, data, register = production_data(target, endpoint, model_name)
    with console.status("Joining labels with the collected inputs…"):
        result = feedback(
            data, labels_path=labels, deployment=deployment, window=span, register=register,
        )  # fmt: skip
    lineage = result.lineage
    rows = lineage["rows"]
    console.print(
        f"[green]✓[/] training data set {result.ref}: {rows['base']} rows of {lineage['base']} "
        f"+ {rows['labels']} labelled production rows ({lineage['serving_model']} on "
        f"{lineage['endpoint']}/{lineage['deployment']})"
    )
    if register is None:
        console.print(f"  in {result.ref.folder}; next: mlops run --data {result.ref}")
    else:
        console.print(
            f"  data asset azureml:{result.ref} (in {result.ref.folder}); its BlobCreated event "
            f"starts the retrain pipeline, or: mlops pipeline run --data azureml:{result.ref}"
        )


def event_command() -> None:
    """In the retrain pipeline: act on the Event Grid event in RETRAIN_EVENT (if any)."""
    from pipelines.monitoring.events import main

    code = main()
    if code:
        raise typer.Exit(code)
