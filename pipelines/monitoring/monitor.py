"""`mlops monitor`: a window of collected production data against the serving model's training
reference, with Azure ML model monitoring's metrics and thresholds.

The reference is found through lineage: the registered version's tags say where its data came
from (`data_source`: the bundled data, a file, or a training data set version) and its
fingerprint (`data_sha256`); the data is loaded again and must still have that fingerprint. The
same chain runs on both targets (`ProductionData` says where the data is). The
reference predictions are the served model's predictions of that data, so prediction drift
compares like with like.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
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
    from pipelines.registry import ModelRegistry, RegisteredVersion
    from pipelines.release.interface import ServingTarget
    from pipelines.steps import Tracking

PREDICTION = "prediction"  # scoring.schema.PREDICTION_COLUMN


@dataclass(frozen=True)
class ProductionData:
    """Where an endpoint's production data is, on either target.

    `collected_as` is the endpoint's name in the collector layout: the logical name locally,
    the online endpoint's Azure name on Azure. `capture` is the local target's capture
    directory, copied to the store before reading (what the data collector does on Azure); None
    on Azure, where the collector writes to the store itself. `tracking` reads the lineage of
    versions registered before they carried a `data_source` tag (None: not reachable).
    """

    serving: ServingTarget
    store: BlobStore
    endpoint: str
    collected_as: str
    capture: Path | None = None
    tracking: Tracking | None = None

    def mirror(self) -> None:
        """Bring the local capture into the store (nothing to do on Azure)."""
        if self.capture is not None:
            mirror_local_capture(self.capture, self.store)


@dataclass(frozen=True)
class Served:
    """Which deployment is monitored, the model version it serves, and where its data is."""

    data: ProductionData
    deployment: str
    version: RegisteredVersion

    @property
    def endpoint(self) -> str:
        """The logical endpoint (prod)."""
        return self.data.endpoint


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


def served(data: ProductionData, deployment: str | None) -> Served:
    """The monitored deployment (default: the one holding the traffic) and its model version."""
    from pipelines.release.plan import live_slot

    target, endpoint = data.serving, data.endpoint
    name = deployment or live_slot(target.traffic(endpoint))
    if name is None:
        found = collected_deployments(data.store, data.collected_as)
        known = f"collected data exists for: {', '.join(found)}" if found else "none collected"
        raise MlopsError(
            f"endpoint {endpoint} has no live deployment to monitor; pass --deployment NAME "
            f"({known})"
        )
    views = {view.name: view for view in target.endpoints()}
    view = views.get(endpoint) or views.get(data.collected_as)
    if view is not None and name in view.deployments:
        return Served(data, name, target.registry.get(view.deployments[name].model))
    production = target.registry.production()
    if production is None:
        raise MlopsError(
            f"no model is in production to compare {endpoint}/{name} with; run `mlops run` first"
        )
    return Served(data, name, production)


def training_source(version: RegisteredVersion, tracking: Tracking | None = None) -> str:
    """Where the version's training data came from: its registry tag, else its run's lineage.

    Versions registered before the `data_source` tag existed have it only on their run.
    """
    from pipelines.registry import TAG_SOURCE
    from pipelines.steps import DATA_SOURCE_PARAM

    recorded = version.tags.get(TAG_SOURCE)
    if recorded:
        return recorded
    if tracking is None:
        return "bundled"
    return str(
        tracking.client.get_run(version.run_id).data.params.get(DATA_SOURCE_PARAM, "bundled")
    )


def reference_data(
    version: RegisteredVersion, store: Callable[[], BlobStore], tracking: Tracking | None = None
) -> tuple[pd.DataFrame, str]:
    """The data the version was trained on (from its lineage), checked by fingerprint.

    A training data set version is read from `store()`: Azurite locally, the workspace storage
    on Azure. A version trained for another model definition is refused.
    """
    from pipelines.registry import TAG_DATA, TAG_SPEC
    from pipelines.steps import load_table
    from training.data import fingerprint
    from training.spec import current_spec

    spec = current_spec()
    trained_for = version.tags.get(TAG_SPEC, spec.name)
    if trained_for != spec.name:
        raise MlopsError(
            f"{version.ref} was trained for model definition {trained_for!r}, but "
            f"MLOPS_MODEL_SPEC selects {spec.name!r}; set MLOPS_MODEL_SPEC={trained_for}"
        )
    source = training_source(version, tracking)
    frame = load_table(None if source == "bundled" else Path(source), spec, store)
    expected = version.tags.get(TAG_DATA)
    if expected and fingerprint(frame) != expected:
        raise MlopsError(
            f"the training data of {version.ref} ({source}) has changed since it was trained; "
            "restore it, or monitor against a model trained on the current data"
        )
    label = spec.data_description if source == "bundled" else source
    return frame, label


def reference_predictions(
    registry: ModelRegistry, version: RegisteredVersion, features: pd.DataFrame
) -> np.ndarray:
    """The version's predictions of its own training data (the prediction drift reference)."""
    from scoring.model_bundle import load_predictor

    with tempfile.TemporaryDirectory() as scratch:
        predict, _ = load_predictor(registry.download(version, Path(scratch) / "model"))
        return np.asarray(predict(features.to_numpy(dtype=np.float64)), dtype=np.float64)


def window_frame(
    target: Served, collection: str, window: Window, columns: list[str]
) -> pd.DataFrame:
    """One collection of the served deployment in the window."""
    data = target.data
    return collection_frame(
        data.store, data.collected_as, target.deployment, collection, window, columns
    )


def production_window(target: Served, window: Window, features: list[str]) -> pd.DataFrame:
    """The window's inputs beside their predictions (joined on the row's correlation id)."""
    inputs = window_frame(target, layout.INPUTS, window, features)
    outputs = window_frame(target, layout.OUTPUTS, window, [PREDICTION])
    predictions = outputs.drop_duplicates("correlationid").set_index("correlationid")[PREDICTION]
    return inputs.assign(prediction=inputs["correlationid"].map(predictions))


def monitor(
    data: ProductionData,
    *,
    deployment: str | None,
    window: Window,
    thresholds: Thresholds,
    report_dir: Path,
) -> MonitorRun:
    """Read the window, evaluate, write the report."""
    from training.spec import current_spec

    data.mirror()
    target = served(data, deployment)
    features = list(current_spec().feature_names)
    production = production_window(target, window, features)
    reference, label = reference_data(target.version, lambda: data.store, data.tracking)
    reference = reference.assign(
        prediction=reference_predictions(data.serving.registry, target.version, reference[features])
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
