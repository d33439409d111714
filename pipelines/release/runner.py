"""Runs release plans on a target: QA, then production blue/green, rolling back on failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import MlopsError
from pipelines.registry import ModelRegistry, RegisteredVersion
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
from pipelines.targets.base import DeploymentTarget

Progress = Callable[[str], None]


class ReleaseError(MlopsError):
    """A release step failed; what was rolled back is in the message."""


@dataclass
class ReleaseLog:
    """What happened, for the summary and the pipeline artifacts."""

    version: str
    steps: list[str] = field(default_factory=list)
    smoke_reports: list[SmokeReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def write(self, folder: Path) -> None:
        """Write the smoke-test reports and the release log as JSON files."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "release.json").write_text(
            json.dumps(
                {
                    "version": self.version,
                    "steps": self.steps,
                    "warnings": self.warnings,
                    "smoke_tests": [report.to_dict() for report in self.smoke_reports],
                },
                indent=2,
            )
        )


class Runner:
    """Executes plans step by step on one target."""

    def __init__(
        self,
        target: DeploymentTarget,
        registry: ModelRegistry,
        version: RegisteredVersion,
        progress: Progress = lambda _: None,
    ) -> None:
        self.target = target
        self.registry = registry
        self.version = version
        self.progress = progress
        self.log = ReleaseLog(version=version.ref)

    def _smoke(self, step: Step) -> None:
        deployment = step.deployment if step.action is Action.SMOKE_DEPLOYMENT else None
        client = self.target.client(step.endpoint, deployment)
        where = f"{step.endpoint}/{deployment}" if deployment else step.endpoint
        report = smoke_test(where, client, self.version.golden)
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
            self.target.deploy(step.endpoint, step.deployment, self.version)
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
                undone = self._rollback(rollback_plan(plan, index))
                raise ReleaseError(
                    f"release of {self.version.ref} failed at '{step.describe()}': {error}; "
                    f"{undone}"
                ) from error
            self.log.steps.append(step.describe())

    def _rollback(self, steps: Sequence[Step]) -> str:
        """Undo what the failed plan did; returns a sentence saying where things stand."""
        problems = []
        for step in steps:
            self.progress(f"rollback: {step.describe()}")
            try:
                self._run_step(step)
                self.log.steps.append(f"rollback: {step.describe()}")
            except MlopsError as error:
                problems.append(f"{step.describe()} failed ({error})")
        production = self.registry.production()
        where = (
            f"production alias still on {production.ref}" if production else "no production alias"
        )
        if problems:
            return f"rollback incomplete: {'; '.join(problems)}; {where}"
        return f"rolled back; {where}"


RELEASE_STAGES = ("all", "qa", "prod")


def release(
    target: DeploymentTarget,
    registry: ModelRegistry,
    version: RegisteredVersion,
    progress: Progress = lambda _: None,
    traffic_stages: Sequence[int] | None = None,
    stage: str = "all",
) -> ReleaseLog:
    """QA deploy and smoke test, then production blue/green; the alias moves last.

    `stage` runs one half alone ("qa" or "prod"), as a CI pipeline does with an approval
    between the two.
    """
    if stage not in RELEASE_STAGES:
        raise MlopsError(f"unknown release stage '{stage}'; use one of {', '.join(RELEASE_STAGES)}")
    runner = Runner(target, registry, version, progress)
    if stage in ("all", "qa"):
        runner.execute(qa_plan())
    if stage in ("all", "prod"):
        # A target may stage the shift itself (Azure: 10 → 50 → 100); locally it is all at once.
        stages: Sequence[int] = traffic_stages or getattr(target, "traffic_stages", None) or (100,)
        runner.execute(production_plan(target.traffic(PROD_ENDPOINT), stages))
    return runner.log


__all__ = [
    "PROD_ENDPOINT",
    "QA_ENDPOINT",
    "RELEASE_STAGES",
    "ReleaseError",
    "ReleaseLog",
    "release",
]
