"""The lifecycle: train → gate → register → release, on whichever target it is handed.

One implementation for every caller: the `mlops` commands (`pipelines.commands`), the demo
(`pipelines.demo`), the monitoring loop and the Azure ML pipeline steps
(`pipelines.azure.entrypoints`, which run the steps one job each and take their settings from
here). Decisions stay below in pure modules (`pipelines.gate`, `pipelines.release.plan`); the
steps themselves are in `pipelines.steps` and `pipelines.release.runner`. Which tracking server
and target (local or Azure) is `pipelines.connect`'s choice, above this module: the lifecycle
knows neither implementation. What it adds is the chain, its settings and the progress a person
reads while it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from pipelines.console import console, display_path, step
from pipelines.errors import MlopsError
from pipelines.gate_summary import write_gate_summary

if TYPE_CHECKING:
    from pipelines.gate import GateConfig, GateDecision
    from pipelines.registry import ModelRegistry, RegisteredVersion
    from pipelines.release.interface import ServingTarget
    from pipelines.release.runner import ReleaseLog
    from pipelines.settings import Settings
    from pipelines.steps import Tracking, TrainOutcome
    from training.model import TrainingConfig


# --- Registered versions ------------------------------------------------------------


def resolve(registry: ModelRegistry, reference: str | None) -> RegisteredVersion:
    """The referenced version, or the newest one."""
    if reference:
        return registry.get(reference)
    versions = registry.versions()
    if not versions:
        raise MlopsError(
            f"no version of {registry.model_name} is registered; run `mlops run` first"
        )
    return versions[0]


# --- Train → gate → register -------------------------------------------------------------


def metrics_text(metrics: dict[str, float]) -> str:
    """The definition's metrics in its order: `rmse 54.01 · mae 44.42 · r2 0.449`."""
    from training.spec import current_spec

    return " · ".join(
        f"{key} {metrics[key]:.4g}" for key in current_spec().metric_names if key in metrics
    )


def invoke_example() -> str:
    """The request a summary tells you to send once production serves (`mlops` arguments):
    one row of the definition's bundled data, rounded; it follows the model, never a literal."""
    from training.data import bundled_data
    from training.spec import current_spec

    spec = current_spec()
    row = bundled_data(spec).loc[0, list(spec.feature_names)].to_numpy(dtype=float)
    values = ", ".join(f"{value:.4g}" for value in row.tolist())
    return f"endpoints invoke prod --data '[[{values}]]'"


def report_decision(decision: GateDecision) -> None:
    """Print the gate outcome: a rejection is an outcome, explained, not a crash."""
    if decision.passed:
        console.print(f"[green]✓ gate passed:[/] {decision.reason}")
    else:
        console.print(f"[yellow]✗ gate rejected the candidate:[/] {decision.reason}")
        console.print("  Nothing was registered; production is unchanged.")


def train_model(tracking: Tracking, config: TrainingConfig, data: Path | None) -> TrainOutcome:
    """Data tests, then training; the holdout metrics beside the naive baseline's."""
    from pipelines.steps import train

    with step(f"Data tests and training ({config.spec.name}: {config.describe()})"):
        outcome = train(tracking, config, data)
    console.print(
        f"  holdout {metrics_text(outcome.metrics)} "
        f"(naive baseline {metrics_text(outcome.baseline_metrics)})"
    )
    return outcome


def gate_run(tracking: Tracking, run_id: str | None, gate: GateConfig) -> GateDecision:
    """The gate on one run (the newest without `run_id`), its outcome reported."""
    from pipelines.steps import evaluate

    with step("Gate"):
        _, decision = evaluate(tracking, run_id, gate)
    report_decision(decision)
    return decision


def register_run(tracking: Tracking, run_id: str | None) -> RegisteredVersion:
    """Register the run's model; refused unless the gate passed it."""
    from pipelines.steps import register

    with step("Registration"):
        return register(tracking, run_id)


@dataclass(frozen=True)
class LifecycleResult:
    """What one pass of the lifecycle did."""

    run_id: str
    metrics: dict[str, float]
    decision: GateDecision
    version: RegisteredVersion | None
    deployed: dict[str, str]
    blue_green: bool  # the release put the new model beside a live one


def lifecycle(
    tracking: Tracking,
    config: TrainingConfig,
    gate: GateConfig,
    data: Path | None,
    *,
    serving: Callable[[], ServingTarget] | None,
    summary_file: Path | None = None,
) -> LifecycleResult:
    """Data tests → train → gate → register → (release); a rejection stops after the gate.

    `serving` gives the target to release to, asked for only once a version is registered;
    None registers without releasing.
    """
    outcome = train_model(tracking, config, data)
    decision = gate_run(tracking, outcome.run_id, gate)
    version = register_run(tracking, outcome.run_id) if decision.passed else None
    if summary_file is not None:
        write_gate_summary(summary_file, decision, version.ref if version else None)
    deployed: dict[str, str] = {}
    blue_green = False
    if version is not None:
        if serving is not None:
            from pipelines.release.plan import PROD_ENDPOINT, live_slot

            target = serving()
            blue_green = live_slot(target.traffic(PROD_ENDPOINT)) is not None
            run_release(tracking.settings, target, version)
            deployed = describe_endpoints(target)
        else:
            console.print(f"  not released; next: mlops release --model {version.ref}")
    return LifecycleResult(outcome.run_id, outcome.metrics, decision, version, deployed, blue_green)


# --- Release ----------------------------------------------------------------------------


def run_release(
    settings: Settings,
    target: ServingTarget,
    version: RegisteredVersion,
    report_dir: Path | None = None,
    stage: str = "all",
) -> ReleaseLog:
    """QA → smoke → production blue/green → smoke, with progress.

    Everything that can be checked is checked before anything is printed or deployed. The
    report (`release.json`) is written whatever the outcome, then a failure propagates as is.
    """
    from pipelines.release.runner import (
        REPORT_FILE,
        ReleaseLog,
        check_releasable,
        check_stage,
        outcome,
        release,
    )

    check_stage(stage)
    golden = check_releasable(target.registry, version)
    reports = report_folder(report_dir or settings.state_dir / "reports")
    what = {"all": "QA, then production blue/green", "qa": "QA only", "prod": "production only"}
    console.print(f"[bold]Releasing {version.ref}[/] ({what[stage]})")
    log = ReleaseLog(version=version.ref, stage=stage)
    try:
        release(
            target,
            target.registry,
            version,
            lambda line: console.print(f"  → {line}"),
            stage=stage,
            log=log,
            golden=golden,
        )
    except BaseException:
        try:
            log.write(reports)
            console.print(
                f"  release report ({outcome(log)}): {display_path(reports / REPORT_FILE)}"
            )
        except OSError as problem:  # never hide the release's own error behind this one
            console.print(
                f"  [red]the release report could not be written:[/] {escape(str(problem))}"
            )
        raise
    if stage != "qa":
        watch(target, version, log)
    try:
        log.write(reports)
    except OSError as error:
        raise MlopsError(
            f"{version.ref} was released, but its report could not be written to {reports} "
            f"({error.strerror or error}); check the folder's permissions"
        ) from error
    where = "QA passed its smoke test" if stage == "qa" else "is in production"
    console.print(f"[green]✓[/] {version.ref} {where}; smoke reports in {display_path(reports)}")
    return log


def watch(target: ServingTarget, version: RegisteredVersion, log: ReleaseLog) -> None:
    """Monitoring of the version now in production (Azure: the MonitorSchedule).

    Runs only after the release succeeded, so a failed promotion never schedules a monitor. A
    failure here leaves production as released and is reported as the release's warning.
    """
    try:
        what = target.watch(version)
    except MlopsError as error:
        warning = f"{version.ref} is in production, but its monitor was not set up: {error}"
        log.warnings.append(warning)
        console.print(f"  [yellow]warning:[/] {escape(warning)}")
        return
    if what:
        log.steps.append(what)
        console.print(f"  → {escape(what)}")


def report_folder(folder: Path) -> Path:
    """The report folder, created now: a release never starts without a place for its report."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MlopsError(
            f"cannot create the report folder {folder} ({error.strerror or error}); "
            "pass another --report-dir"
        ) from error
    if not os.access(folder, os.W_OK):
        raise MlopsError(f"the report folder {folder} is not writable; pass another --report-dir")
    return folder


def describe_endpoints(target: ServingTarget) -> dict[str, str]:
    """One line per endpoint: which model serves where, with what traffic."""
    return {
        record.name: ", ".join(
            f"{name}: {deployed.model} at {deployed.url} ({record.traffic.get(name, 0)}%)"
            for name, deployed in record.deployments.items()
        )
        for record in target.endpoints()
    }
