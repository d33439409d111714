"""Runs release plans on a target: QA, then production blue/green, rolling back on failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.atomic import write_text_atomically
from pipelines.errors import MlopsError
from pipelines.registry import ModelRegistry, RegisteredVersion
from pipelines.release.interface import DeploymentTarget
from pipelines.release.plan import (
    PROD_ENDPOINT,
    QA_ENDPOINT,
    Action,
    Plan,
    Step,
    production_plan,
    qa_plan,
    rollback_plan,
)
from pipelines.release.smoke import SmokeReport, smoke_test

Progress = Callable[[str], None]


class ReleaseError(MlopsError):
    """A release step failed; what was rolled back is in the message."""


REPORT_FILE = "release.json"


@dataclass
class ReleaseLog:
    """What happened, for the summary and the pipeline artifacts; written whatever the outcome."""

    version: str
    stage: str = "all"
    steps: list[str] = field(default_factory=list)
    smoke_reports: list[SmokeReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed_step: str | None = None  # the step that failed, as its progress line describes it
    rolled_back: list[str] = field(default_factory=list)  # rollback steps that ran
    rollback_problems: list[str] = field(default_factory=list)  # rollback steps that failed
    error: str | None = None  # the error sentence, when the release failed
    # endpoint/deployment → the artifact deployed there (Azure: the image reference, whose tag
    # is the image digest), so the report shows that QA and production run the same image.
    artifacts: dict[str, str] = field(default_factory=dict)

    def fail(self, error: BaseException) -> None:
        """Record why the release stopped (the first error wins: it is the cause)."""
        if self.error is None:
            self.error = str(error) or error.__class__.__name__

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "version": self.version,
            "stage": self.stage,
            "outcome": outcome(self),
            "failed_step": self.failed_step,
            "error": self.error,
            "steps": self.steps,
            "warnings": self.warnings,
            "artifacts": self.artifacts,
            "smoke_tests": [report.to_dict() for report in self.smoke_reports],
        }

    def write(self, folder: Path) -> Path:
        """Write `release.json` into `folder`, atomically: a reader never sees half a report."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / REPORT_FILE
        write_text_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path


Outcome = Literal["succeeded", "failed", "rolled back", "rollback incomplete"]


def outcome(log: ReleaseLog) -> Outcome:
    """succeeded; failed with nothing to undo; rolled back; or rolled back only in part."""
    if log.error is None:
        return "succeeded"
    if log.rollback_problems:
        return "rollback incomplete"
    return "rolled back" if log.rolled_back else "failed"


class Runner:
    """Executes plans step by step on one target."""

    def __init__(
        self,
        target: DeploymentTarget,
        registry: ModelRegistry,
        version: RegisteredVersion,
        progress: Progress = lambda _: None,
        log: ReleaseLog | None = None,
        golden: dict[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.registry = registry
        self.version = version
        self.golden = golden if golden is not None else registry.golden(version)
        self.progress = progress
        self.log = log if log is not None else ReleaseLog(version=version.ref)

    def _smoke(self, step: Step) -> None:
        deployment = step.deployment if step.action is Action.SMOKE_DEPLOYMENT else None
        client = self.target.client(step.endpoint, deployment)
        where = f"{step.endpoint}/{deployment}" if deployment else step.endpoint
        report = smoke_test(where, client, self.golden)
        self.log.smoke_reports.append(report)
        self.progress(
            "  " + ", ".join(f"{c.name} {'ok' if c.passed else 'FAILED'}" for c in report.checks)
        )
        failure = report.first_failure
        if failure is not None:
            raise MlopsError(
                f"smoke test of {where} failed its {failure.name} check ({failure.detail})"
            )

    def _run_step(self, step: Step) -> None:
        if step.action is Action.DEPLOY:
            assert step.deployment is not None
            artifact = self.target.deploy(step.endpoint, step.deployment, self.version)
            if artifact:
                self.log.artifacts[f"{step.endpoint}/{step.deployment}"] = artifact
        elif step.action in (Action.SMOKE_DEPLOYMENT, Action.SMOKE_ENDPOINT):
            self._smoke(step)
        elif step.action is Action.SET_TRAFFIC:
            self.target.set_traffic(step.endpoint, dict(step.traffic))
        elif step.action is Action.PROMOTE:
            self.registry.set_production(self.version)
        elif step.action is Action.DELETE:
            assert step.deployment is not None
            self.target.delete(step.endpoint, step.deployment)

    def execute(self, plan: Plan) -> None:
        """Run every step; on a failure before the commit point, roll back and raise."""
        for index, step in enumerate(plan.steps):
            self.progress(step.describe())
            try:
                self._run_step(step)
            except MlopsError as error:
                if index > plan.commit_index:
                    warning = f"clean-up step '{step.describe()}' failed: {error}"
                    self.log.warnings.append(warning)
                    self.progress(f"warning: {warning}")
                    continue
                self.log.failed_step = step.describe()
                undone = self._rollback(rollback_plan(plan, index))
                failure = ReleaseError(
                    f"release of {self.version.ref} failed at '{step.describe()}': {error}; "
                    f"{undone}"
                )
                self.log.fail(failure)
                raise failure from error
            except BaseException:  # a bug or Ctrl-C: nothing is undone, but the report says where
                self.log.failed_step = step.describe()
                raise
            self.log.steps.append(step.describe())

    def _rollback(self, steps: Sequence[Step]) -> str:
        """Undo what the failed plan did; returns a sentence saying where things stand."""
        for step in steps:
            self.progress(f"rollback: {step.describe()}")
            try:
                self._run_step(step)
                self.log.steps.append(f"rollback: {step.describe()}")
                self.log.rolled_back.append(step.describe())
            except MlopsError as error:
                self.log.rollback_problems.append(f"{step.describe()} failed ({error})")
        production = self.registry.production()
        where = (
            f"production alias still on {production.ref}" if production else "no production alias"
        )
        if self.log.rollback_problems:
            return f"rollback incomplete: {'; '.join(self.log.rollback_problems)}; {where}"
        if not steps:
            return f"nothing to roll back; {where}"
        return f"rolled back; {where}"


RELEASE_STAGES = ("all", "qa", "prod")


def check_stage(stage: str) -> str:
    """The stage, if it is one; checked before anything is printed or deployed."""
    if stage not in RELEASE_STAGES:
        raise MlopsError(f"unknown release stage '{stage}'; use one of {', '.join(RELEASE_STAGES)}")
    return stage


def check_releasable(registry: ModelRegistry, version: RegisteredVersion) -> dict[str, Any]:
    """What a release needs from the version, checked before anything is deployed.

    Returns the golden sample from the verified bundle: the smoke tests compare with it, so an
    unreadable one is an error now, not after the QA deployment.
    """
    version.require_digest()
    return registry.golden(version)


def release(
    target: DeploymentTarget,
    registry: ModelRegistry,
    version: RegisteredVersion,
    progress: Progress = lambda _: None,
    traffic_stages: Sequence[int] | None = None,
    stage: str = "all",
    log: ReleaseLog | None = None,
    golden: dict[str, Any] | None = None,
) -> ReleaseLog:
    """QA deploy and smoke test, then production blue/green; the alias moves last.

    `stage` runs one half alone ("qa" or "prod"), as a CI pipeline does with an approval
    between the two. Pass `log` to keep what happened when the release fails: the failed step,
    the rollback and the error are recorded in it before the error propagates.
    """
    check_stage(stage)
    golden = golden if golden is not None else check_releasable(registry, version)
    log = log if log is not None else ReleaseLog(version=version.ref, stage=stage)
    runner = Runner(target, registry, version, progress, log, golden)
    try:
        if stage in ("all", "qa"):
            runner.execute(qa_plan())
        if stage in ("all", "prod"):
            # A target may stage the shift itself (Azure: 10 → 50 → 100); locally all at once.
            stages: Sequence[int] = (
                traffic_stages or getattr(target, "traffic_stages", None) or (100,)
            )
            runner.execute(production_plan(target.traffic(PROD_ENDPOINT), stages))
    except BaseException as error:  # recorded, then re-raised unchanged (Ctrl-C included)
        log.fail(error)
        raise
    return log


__all__ = [
    "PROD_ENDPOINT",
    "QA_ENDPOINT",
    "RELEASE_STAGES",
    "REPORT_FILE",
    "ReleaseError",
    "ReleaseLog",
    "check_releasable",
    "check_stage",
    "outcome",
    "release",
]
