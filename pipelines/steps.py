"""The lifecycle steps on an MLflow tracking server: data tests, train, gate, register.

Each step reads what the previous one recorded on the MLflow run, so `mlops train`,
`mlops evaluate` and `mlops register` can run one by one (as the Azure ML pipeline does) or
chained by `mlops run`. The same code serves the local SQLite store and an Azure ML workspace's
MLflow endpoint: only the tracking URI differs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.errors import MlopsError
from pipelines.gate import (
    UNKNOWN_COMMIT,
    GateConfig,
    GateDecision,
    GateError,
    Lineage,
    decide,
    identical_reason,
    reject_identical,
    same_model,
)
from pipelines.registry import (
    METRIC_TAG_PREFIX,
    MODEL_ARTIFACT_PATH,
    TAG_COMMIT,
    TAG_DATA,
    TAG_DIGEST,
    TAG_GOLDEN,
    TAG_RUN,
    TAG_SERVING,
    TAG_SOURCE,
    TAG_SPEC,
    ModelRegistry,
    RegisteredVersion,
    quiet_mlflow,
)
from pipelines.settings import PROJECT_ROOT, Settings, experiment_name
from pipelines.tags import checked_tags
from scoring.model_bundle import (
    GOLDEN_SAMPLE,
    IntegrityError,
    file_sha256,
    load_predictor,
    read_contract,
    verify_bundle,
)
from scoring.schema import ContractError
from training.data import DataError, fingerprint, load_data
from training.model import TrainingConfig, fit_and_evaluate, target_array
from training.spec import ModelSpec, current_spec
from training.validation import Finding, load_profile, validate

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from pipelines.datastore.store import BlobStore

HOLDOUT_ARTIFACT = "holdout/holdout.parquet"
TAG_STAGE = "mlops.stage"
DATA_SOURCE_PARAM = "data_source"  # where the data came from; its fingerprint says what it was
SPEC_PARAM = "model_spec"  # the model definition a run trained (TrainingConfig.params)


@dataclass(frozen=True)
class TrainOutcome:
    """What `train` produced."""

    run_id: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    digest: str
    data_sha256: str
    rows: int


class DataValidationError(MlopsError):
    """The data failed its tests; `findings` lists every failed rule."""

    def __init__(self, source: str, findings: list[Finding]) -> None:
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(
            f"data validation failed for {source}: {findings[0]}{more}; "
            "fix the data, or regenerate the reference profile if the change is intended",
            details=tuple(str(finding) for finding in findings),
        )
        self.findings = findings


def git_commit() -> str:
    """The commit being built: Azure DevOps' variable if set, else git, else 'unknown'.

    Uncommitted changes to tracked files make it `<sha>-dirty.<hash of the changes>`: the same
    edits give the same tag, so the gate can tell a re-run of the same code from new code.
    """
    for variable in ("BUILD_SOURCEVERSION", "GIT_COMMIT"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--no-color"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN_COMMIT
    if not changes:
        return commit
    return f"{commit}-dirty.{hashlib.sha256(changes).hexdigest()[:12]}"


def load_table(
    data_path: Path | None, spec: ModelSpec, store: Callable[[], BlobStore] | None = None
) -> pd.DataFrame:
    """The bundled data, a CSV/Parquet file, or a training data set version (`<name>:<n>`).

    A data set version is read from `store()` (default: the local target's blob store).
    """
    if data_path is not None and not data_path.exists():
        from pipelines.datastore.datasets import parse_ref

        ref = parse_ref(str(data_path))
        if ref is not None:
            from pipelines.datastore.datasets import read_version

            if store is None:
                from pipelines.datastore.store import local_store
                from pipelines.settings import load_settings

                table, _ = read_version(local_store(load_settings()), ref)
            else:
                table, _ = read_version(store(), ref)
            return table.reindex(columns=list(spec.columns))
    try:
        return load_data(data_path, spec)
    except DataError as error:
        raise MlopsError(str(error)) from error


def load_and_validate(data_path: Path | None, spec: ModelSpec | None = None) -> pd.DataFrame:
    """The data tests stage: load the table and run every rule of the definition's profile."""
    spec = spec or current_spec()
    source = str(data_path) if data_path else spec.data_description
    frame = load_table(data_path, spec)
    try:
        profile = load_profile(spec)
    except DataError as error:
        raise MlopsError(str(error)) from error
    findings = validate(frame, profile, spec)
    if findings:
        raise DataValidationError(source, findings)
    return frame


def training_params(params: Mapping[str, str]) -> dict[str, str]:
    """A run's training configuration as logged, without where its data came from."""
    return {key: value for key, value in params.items() if key != DATA_SOURCE_PARAM}


def run_lineage(run: Run) -> Lineage:
    """A training run's data fingerprint, training parameters and commit."""
    tags = run.data.tags
    return Lineage(tags.get(TAG_DATA), training_params(run.data.params), tags.get(TAG_COMMIT))


class Tracking:
    """An MLflow tracking server holding the project's experiment."""

    def __init__(self, settings: Settings) -> None:
        quiet_mlflow()
        import mlflow

        self.settings = settings
        self.mlflow = mlflow
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        if settings.tracking_uri.startswith("sqlite:"):
            settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.client: MlflowClient = mlflow.MlflowClient(
            settings.tracking_uri, settings.tracking_uri
        )
        self.registry = ModelRegistry(settings.tracking_uri, settings.model_name)

    def experiment_id(self) -> str:
        """The experiment's id, created on first use with artifacts under the state directory."""
        found = self.client.get_experiment_by_name(experiment_name())
        if found is not None:
            return str(found.experiment_id)
        location = (
            self.settings.artifact_root.as_uri()
            if self.settings.tracking_uri.startswith("sqlite:")
            else None
        )
        return str(self.client.create_experiment(experiment_name(), artifact_location=location))

    def get_run(self, run_id: str | None) -> Run:
        """The given training run, or the latest one."""
        from mlflow.exceptions import MlflowException

        if run_id is None:
            runs = self.client.search_runs(
                [self.experiment_id()],
                filter_string=f"tags.`{TAG_DIGEST}` != ''",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if not runs:
                raise MlopsError("there is no training run yet; run `mlops train` first")
            return runs[0]
        try:
            run = self.client.get_run(run_id)
        except MlflowException as error:
            raise MlopsError(
                f"run {run_id} does not exist; check the id with `mlflow ui`"
            ) from error
        if TAG_DIGEST not in run.data.tags:
            raise MlopsError(f"run {run_id} is not a training run of this project")
        return run

    def lineage(self, version: RegisteredVersion) -> Lineage:
        """A registered version's lineage: its tags and the parameters of the run that trained it.

        Parameters that cannot be read (the run is gone, or in another workspace) are unknown.
        """
        from mlflow.exceptions import MlflowException

        try:
            params = training_params(self.client.get_run(version.run_id).data.params)
        except MlflowException:
            params = None
        return Lineage(version.tags.get(TAG_DATA), params, version.tags.get(TAG_COMMIT))

    def repeats(self, run: Run, production: RegisteredVersion) -> bool:
        """Whether the run would merely repeat the production version (data, parameters, code)."""
        return same_model(run_lineage(run), self.lineage(production))

    def download_run_bundle(self, run: Run, dest: Path) -> Path:
        """The run's model bundle, verified against the digest recorded on the run."""
        local = Path(
            self.mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=MODEL_ARTIFACT_PATH, dst_path=str(dest)
            )
        )
        try:
            verify_bundle(local, run.data.tags[TAG_DIGEST])
        except IntegrityError as error:
            raise MlopsError(
                f"the model of run {run.info.run_id} failed its integrity check ({error}); "
                "train again"
            ) from error
        return local

    def download_holdout(self, run: Run, dest: Path) -> pd.DataFrame:
        """The holdout the run was scored on (the gate scores both models on exactly this)."""
        path = self.mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path=HOLDOUT_ARTIFACT, dst_path=str(dest)
        )
        return pd.read_parquet(path)


def train(
    tracking: Tracking,
    config: TrainingConfig,
    data_path: Path | None,
    source: str | None = None,
) -> TrainOutcome:
    """Data tests, then train and log a run with params, metrics, lineage and the model bundle.

    `source` names where the data came from when `data_path` is only a copy of it (an Azure ML
    job reads its input from a mounted path); by default the path itself, or "bundled".
    """
    from training.bundle import write_bundle

    spec = config.spec
    frame = load_and_validate(data_path, spec)
    data_sha256 = fingerprint(frame)
    result = fit_and_evaluate(frame, config)
    split = result.split
    mlflow = tracking.mlflow
    with (
        tempfile.TemporaryDirectory() as scratch,
        mlflow.start_run(experiment_id=tracking.experiment_id()) as run,
    ):
        bundle = Path(scratch) / MODEL_ARTIFACT_PATH
        digest = write_bundle(result.model, bundle, result.golden, spec)
        holdout = pd.DataFrame(split.x_test, columns=list(spec.feature_names)).assign(
            **{spec.target.name: split.y_test}
        )
        holdout_file = Path(scratch) / Path(HOLDOUT_ARTIFACT).name
        holdout.to_parquet(holdout_file)
        origin = source or str(data_path or "bundled")
        mlflow.log_params(config.params() | {DATA_SOURCE_PARAM: origin})
        mlflow.log_metrics(
            result.metrics
            | {f"baseline_{key}": value for key, value in result.baseline_metrics.items()}
        )
        mlflow.set_tags(
            checked_tags(
                {
                    TAG_DATA: data_sha256,
                    TAG_COMMIT: git_commit(),
                    TAG_DIGEST: digest,
                    TAG_GOLDEN: file_sha256(bundle / GOLDEN_SAMPLE),
                    TAG_STAGE: "trained",
                    TAG_SERVING: read_contract(bundle).serving,
                    "data_rows": str(len(frame)),
                },
                f"run {run.info.run_id}",
            )
        )
        mlflow.log_artifacts(str(bundle), MODEL_ARTIFACT_PATH)
        mlflow.log_artifact(str(holdout_file), str(Path(HOLDOUT_ARTIFACT).parent))
    return TrainOutcome(
        run.info.run_id, result.metrics, result.baseline_metrics, digest, data_sha256, len(frame)
    )


def run_spec(run: Run) -> ModelSpec:
    """The selected definition, if the run trained it; MlopsError otherwise."""
    spec = current_spec()
    trained = run.data.params.get(SPEC_PARAM, spec.name)
    if trained != spec.name:
        raise MlopsError(
            f"run {run.info.run_id} trained model definition {trained!r}, but MLOPS_MODEL_SPEC "
            f"selects {spec.name!r}; set MLOPS_MODEL_SPEC={trained}"
        )
    return spec


def served_predictor(bundle: Path, spec: ModelSpec) -> Callable[[np.ndarray], np.ndarray]:
    """The bundle's served predict function; MlopsError if its contract is not the definition's."""
    try:
        predict, contract = load_predictor(bundle)
    except (ContractError, OSError) as error:
        raise MlopsError(f"the model in {bundle.name} cannot be loaded: {error}") from error
    if contract.features != spec.feature_names or contract.outputs != spec.output_names:
        raise MlopsError(
            f"the model in {bundle.name} was trained for other features or outputs than model "
            f"definition {spec.name!r}; train it again"
        )
    return predict


def evaluate(
    tracking: Tracking, run_id: str | None, config: GateConfig
) -> tuple[str, GateDecision]:
    """The gate: score the run's model and the production model on the run's holdout.

    With no production model, compare with the naive baseline logged by the run. A
    candidate with the production model's data, parameters and commit is that model again:
    rejected, whatever its score. Records the decision on the run. Any failure to score is an
    error, never a pass.
    """
    run = tracking.get_run(run_id)
    run_id = run.info.run_id
    spec = run_spec(run)
    if config.metric not in spec.directions:
        raise MlopsError(
            f"gate metric {config.metric!r} is not a metric of model definition {spec.name!r}; "
            f"use one of {', '.join(spec.metric_names)}"
        )
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        holdout = tracking.download_holdout(run, root / "holdout")
        rows = holdout.loc[:, list(spec.feature_names)].to_numpy(dtype=np.float64)
        truth = target_array(holdout[spec.target.name], spec)
        # Both models are scored as they serve (fast path or estimator): the gate sees the true
        # score of what would be deployed.
        candidate_predict = served_predictor(
            tracking.download_run_bundle(run, root / "candidate"), spec
        )
        candidate = spec.evaluate(truth, candidate_predict(rows))[config.metric]
        production = tracking.registry.production()
        try:
            if production is None:
                key = f"baseline_{config.metric}"
                if key not in run.data.metrics:
                    raise GateError(f"run {run_id} has no {key} metric to gate against")
                decision = decide(config, candidate, run.data.metrics[key], "baseline")
            else:
                bundle = tracking.registry.download(production, root / "production")
                production_predict = served_predictor(bundle, spec)
                reference = spec.evaluate(truth, production_predict(rows))[config.metric]
                decision = decide(config, candidate, reference, "production", production.version)
        except GateError as error:
            raise MlopsError(
                f"the gate could not decide: {error}; nothing was registered"
            ) from error
    if production is not None and tracking.repeats(run, production):
        decision = reject_identical(decision, production.ref)
    tracking.client.log_metric(run_id, "gate_candidate_score", decision.candidate_score)
    tracking.client.log_metric(run_id, "gate_reference_score", decision.reference_score)
    gate_tags = decision.as_tags() | {TAG_STAGE: f"gate-{decision.label}"}
    checked_tags(run.data.tags | gate_tags, f"run {run_id}")
    for key, value in gate_tags.items():
        tracking.client.set_tag(run_id, key, value)
    return run_id, decision


def register(tracking: Tracking, run_id: str | None) -> RegisteredVersion:
    """Register the run's model, only if the gate passed it; all lineage tags in one call."""
    run = tracking.get_run(run_id)
    run_id = run.info.run_id
    tags = run.data.tags
    decision = tags.get("gate.decision")
    if decision is None:
        raise MlopsError(f"run {run_id} has not been through the gate; run `mlops evaluate` first")
    if decision != "passed":
        reason = tags.get("gate.reason", "no reason recorded")
        raise MlopsError(
            f"run {run_id} was rejected by the gate ({reason}); a rejected candidate is never "
            "registered"
        )
    existing = [v for v in tracking.registry.versions() if v.run_id == run_id]
    if existing:
        raise MlopsError(f"run {run_id} is already registered as {existing[0].ref}")
    production = tracking.registry.production()  # it may have moved since the gate
    if production is not None and tracking.repeats(run, production):
        raise MlopsError(f"run {run_id} is {identical_reason(production.ref)}")
    # Verify before registering: never register bytes that differ from what was trained.
    with tempfile.TemporaryDirectory() as scratch:
        tracking.download_run_bundle(run, Path(scratch))
    spec = run_spec(run)
    version_tags = {
        TAG_DIGEST: tags[TAG_DIGEST],
        TAG_RUN: run_id,
        TAG_DATA: tags[TAG_DATA],
        TAG_COMMIT: tags[TAG_COMMIT],
        TAG_GOLDEN: tags[TAG_GOLDEN],
        TAG_SERVING: tags.get(TAG_SERVING, "unknown"),
        TAG_SPEC: spec.name,
        TAG_SOURCE: run.data.params.get(DATA_SOURCE_PARAM, "bundled"),
    }
    version_tags |= {
        f"{METRIC_TAG_PREFIX}{key}": repr(value)
        for key, value in run.data.metrics.items()
        if key in spec.metric_names
    }
    version_tags |= {key: value for key, value in tags.items() if key.startswith("gate.")}
    version = tracking.registry.register(run_id, version_tags)
    tracking.client.set_tag(run_id, TAG_STAGE, f"registered-v{version.version}")
    return version
