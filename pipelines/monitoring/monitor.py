"""`mlops monitor`: a window of collected production data against the serving model's training
reference, with Azure ML model monitoring's metrics and thresholds.

The reference is found through lineage: the registered version's run logged where its data came
from (`data_source`: the bundled data, a file, or a training data set version) and its
fingerprint (`data_sha256`); the data is loaded again and must still have that fingerprint. The
reference predictions are the served model's predictions of that data, so prediction drift
compares like with like.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.datastore import layout
from pipelines.datastore.collected import Window, collection_frame, mirror_local_capture
from pipelines.errors import MlopsError
from pipelines.monitoring.drift import Evaluation, evaluate
from pipelines.monitoring.report import Context, write_report
from pipelines.monitoring.thresholds import Thresholds

if TYPE_CHECKING:
    from pipelines.datastore.store import BlobStore
    from pipelines.registry import RegisteredVersion
    from pipelines.release.interface import ServingTarget
    from pipelines.steps import Tracking

PREDICTION = "prediction"  # scoring.schema.PREDICTION_COLUMN


@dataclass(frozen=True)
class Served:
    """Which deployment is monitored and the model version it serves."""

    endpoint: str
    deployment: str
    version: RegisteredVersion


@dataclass(frozen=True)
class MonitorRun:
    """One monitor pass: its verdict, context and report files."""

    evaluation: Evaluation
    context: Context
    files: list[Path]


def collected_deployments(store: BlobStore, endpoint: str) -> list[str]:
    """Deployments of the endpoint that have collected data."""
    prefix = f"{layout.ROOT}/{endpoint}/"
    return sorted({blob.name[len(prefix) :].split("/", 1)[0] for blob in store.list(prefix)})


def served(
    target: ServingTarget, store: BlobStore, endpoint: str, deployment: str | None
) -> Served:
    """The monitored deployment (default: the one holding the traffic) and its model version."""
    from pipelines.release.plan import live_slot

    name = deployment or live_slot(target.traffic(endpoint))
    if name is None:
        found = collected_deployments(store, endpoint)
        known = f"collected data exists for: {', '.join(found)}" if found else "none collected"
        raise MlopsError(
            f"endpoint {endpoint} has no live deployment to monitor; pass --deployment NAME "
            f"({known})"
        )
    views = {view.name: view for view in target.endpoints()}
    if endpoint in views and name in views[endpoint].deployments:
        return Served(endpoint, name, target.registry.get(views[endpoint].deployments[name].model))
    production = target.registry.production()
    if production is None:
        raise MlopsError(
            f"no model is in production to compare {endpoint}/{name} with; run `mlops run` first"
        )
    return Served(endpoint, name, production)


def reference_data(tracking: Tracking, version: RegisteredVersion) -> tuple[pd.DataFrame, str]:
    """The data the version was trained on (from its run's lineage), checked by fingerprint."""
    from pipelines.registry import TAG_DATA
    from pipelines.steps import DATA_SOURCE_PARAM, load_table, run_spec
    from training.data import fingerprint

    run = tracking.client.get_run(version.run_id)
    spec = run_spec(run)
    params = run.data.params
    source = params.get(DATA_SOURCE_PARAM, "bundled")
    frame = load_table(None if source == "bundled" else Path(source), spec)
    expected = version.tags.get(TAG_DATA)
    if expected and fingerprint(frame) != expected:
        raise MlopsError(
            f"the training data of {version.ref} ({source}) has changed since it was trained; "
            "restore it, or monitor against a model trained on the current data"
        )
    label = spec.data_description if source == "bundled" else source
    return frame, label


def reference_predictions(
    tracking: Tracking, version: RegisteredVersion, features: pd.DataFrame
) -> np.ndarray:
    """The version's predictions of its own training data (the prediction drift reference)."""
    from scoring.model_bundle import load_predictor

    with tempfile.TemporaryDirectory() as scratch:
        predict, _ = load_predictor(tracking.registry.download(version, Path(scratch) / "model"))
        return np.asarray(predict(features.to_numpy(dtype=np.float64)), dtype=np.float64)


def production_window(
    store: BlobStore, target: Served, window: Window, features: list[str]
) -> pd.DataFrame:
    """The window's inputs beside their predictions (joined on the row's correlation id)."""
    inputs = collection_frame(
        store, target.endpoint, target.deployment, layout.INPUTS, window, features
    )
    outputs = collection_frame(
        store, target.endpoint, target.deployment, layout.OUTPUTS, window, [PREDICTION]
    )
    predictions = outputs.drop_duplicates("correlationid").set_index("correlationid")[PREDICTION]
    return inputs.assign(prediction=inputs["correlationid"].map(predictions))


def monitor(
    tracking: Tracking,
    serving: ServingTarget,
    store: BlobStore,
    *,
    capture: Path | None,
    endpoint: str,
    deployment: str | None,
    window: Window,
    thresholds: Thresholds,
    report_dir: Path,
) -> MonitorRun:
    """Read the window, evaluate, write the report.

    `capture` is the local target's capture directory, copied to the store first (what the data
    collector does on Azure); None on Azure, where the collector writes to the store itself.
    """
    from training.spec import current_spec

    if capture is not None:
        mirror_local_capture(capture, store)
    target = served(serving, store, endpoint, deployment)
    features = list(current_spec().feature_names)
    production = production_window(store, target, window, features)
    reference, label = reference_data(tracking, target.version)
    reference = reference.assign(
        prediction=reference_predictions(tracking, target.version, reference[features])
    )
    evaluation = evaluate(reference, production, features, PREDICTION, thresholds)
    context = Context(
        endpoint=target.endpoint,
        deployment=target.deployment,
        model=target.version.ref,
        reference=label,
        window=window.as_dict(),
        window_label=window.label,
    )
    files = write_report(report_dir, evaluation, context, thresholds, reference, production)
    return MonitorRun(evaluation, context, files)


def print_run(run: MonitorRun) -> None:
    """The verdict, the drift table and where the report is."""
    from rich.table import Table

    from pipelines.console import console, display_path
    from pipelines.monitoring.drift import OUTCOME_DRIFT, OUTCOME_TOO_LITTLE
    from pipelines.monitoring.report import TABLE_HEADER, headline, table_rows
    from pipelines.monitoring.thresholds import THRESHOLDS

    evaluation, context = run.evaluation, run.context
    if evaluation.columns:
        table = Table(
            title=f"Drift: {context.endpoint}/{context.deployment} ({context.model}) vs "
            f"{context.reference}, {context.window_label}",
            title_justify="left",
        )
        for heading in TABLE_HEADER:
            table.add_column(heading, overflow="fold")
        for row in table_rows(evaluation):
            table.add_row(*row, style="yellow" if row[-1] != "ok" else None)
        console.print(table)
    colour = {OUTCOME_DRIFT: "yellow", OUTCOME_TOO_LITTLE: "cyan"}.get(evaluation.outcome, "green")
    console.print(f"[{colour}]{headline(evaluation, THRESHOLDS)}[/]")
    console.print(f"  report: {', '.join(display_path(path) for path in run.files)}")
