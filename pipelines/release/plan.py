"""The rollout plan and the rollback plan: pure functions, no I/O.

Production runs blue/green: the new model goes into the slot that is not live, is smoke-tested
directly, receives traffic (all at once locally; in stages on Azure), is smoke-tested through the
endpoint, and only then does the production alias move and the old slot retire. Any failure
before the alias moves sends all traffic back to the old slot and removes the new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from pipelines.errors import MlopsError

SLOTS = ("blue", "green")
QA_ENDPOINT = "qa"
PROD_ENDPOINT = "prod"
QA_DEPLOYMENT = "qa"
ENDPOINTS = (QA_ENDPOINT, PROD_ENDPOINT)


class Action(StrEnum):
    """What a step does."""

    DEPLOY = "deploy"
    SMOKE_DEPLOYMENT = "smoke-deployment"
    SMOKE_ENDPOINT = "smoke-endpoint"
    SET_TRAFFIC = "set-traffic"
    PROMOTE = "promote"
    DELETE = "delete"


@dataclass(frozen=True)
class Step:
    """One step of a plan."""

    action: Action
    endpoint: str
    deployment: str | None = None
    traffic: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """A line for progress output."""
        where = f"{self.endpoint}/{self.deployment}" if self.deployment else self.endpoint
        if self.action is Action.SET_TRAFFIC:
            split = ", ".join(f"{name} {share}%" for name, share in self.traffic.items())
            return f"traffic on {self.endpoint}: {split}"
        return {
            Action.DEPLOY: f"deploy {where}",
            Action.SMOKE_DEPLOYMENT: f"smoke test {where} directly",
            Action.SMOKE_ENDPOINT: f"smoke test endpoint {self.endpoint}",
            Action.PROMOTE: "move the production alias",
            Action.DELETE: f"retire {where}",
        }[self.action]


@dataclass(frozen=True)
class Plan:
    """The steps to run, and the index after which the release counts as done.

    Steps up to and including `commit_index` are rolled back on failure; later steps are
    clean-up, whose failure is reported but undoes nothing.
    """

    steps: tuple[Step, ...]
    commit_index: int
    new_deployment: str
    old_deployment: str | None


def check_endpoint(name: str) -> str:
    """The endpoint, if a release creates it (qa or prod); otherwise a one-sentence error."""
    if name not in ENDPOINTS:
        known = " and ".join(ENDPOINTS)
        raise MlopsError(f"there is no endpoint '{name}'; the endpoints are {known}")
    return name


class PlanError(ValueError):
    """A plan that would break an invariant (traffic must sum to 100, etc.)."""


def validate_traffic(traffic: Mapping[str, int]) -> None:
    """Traffic shares are whole percents, each 0 to 100, summing to 100."""
    if any(not 0 <= share <= 100 for share in traffic.values()):
        raise PlanError(f"traffic shares must be between 0 and 100, got {dict(traffic)}")
    if sum(traffic.values()) != 100:
        raise PlanError(f"traffic must sum to 100, got {dict(traffic)} = {sum(traffic.values())}")


def live_slot(traffic: Mapping[str, int]) -> str | None:
    """The slot taking all (or most) production traffic, or None before the first release."""
    serving = {name: share for name, share in traffic.items() if share > 0}
    if not serving:
        return None
    return max(serving, key=lambda name: (serving[name], name))


def next_slot(live: str | None) -> str:
    """The slot the new model goes into: the one that is not live."""
    return SLOTS[0] if live in (None, SLOTS[1]) else SLOTS[1]


def validate_stages(stages: Sequence[int]) -> None:
    """Traffic stages rise strictly and end at 100."""
    if not stages or stages[-1] != 100:
        raise PlanError(f"traffic stages must end at 100, got {list(stages)}")
    if stages[0] <= 0 or any(a >= b for a, b in pairwise(stages)):
        raise PlanError(f"traffic stages must rise strictly from above 0, got {list(stages)}")


def qa_plan() -> Plan:
    """QA has one deployment that is replaced in place, takes all traffic, and is smoke-tested."""
    steps = (
        Step(Action.DEPLOY, QA_ENDPOINT, QA_DEPLOYMENT),
        Step(Action.SET_TRAFFIC, QA_ENDPOINT, traffic={QA_DEPLOYMENT: 100}),
        Step(Action.SMOKE_ENDPOINT, QA_ENDPOINT),
    )
    return Plan(
        steps, commit_index=len(steps) - 1, new_deployment=QA_DEPLOYMENT, old_deployment=None
    )


def production_plan(current_traffic: Mapping[str, int], stages: Sequence[int] = (100,)) -> Plan:
    """Blue/green rollout from the endpoint's current traffic.

    `stages` are the new slot's traffic shares in order: locally (100,); on Azure e.g.
    (10, 50, 100).
    """
    validate_stages(stages)
    live = live_slot(current_traffic)
    new = next_slot(live)
    steps = [
        Step(Action.DEPLOY, PROD_ENDPOINT, new),
        Step(Action.SMOKE_DEPLOYMENT, PROD_ENDPOINT, new),
    ]
    for share in stages:
        traffic = {new: share} if live is None else {new: share, live: 100 - share}
        if live is None and share != 100:
            continue  # with nothing live there is no one to share traffic with
        validate_traffic(traffic)
        steps += [
            Step(Action.SET_TRAFFIC, PROD_ENDPOINT, traffic=traffic),
            Step(Action.SMOKE_ENDPOINT, PROD_ENDPOINT),
        ]
    steps.append(Step(Action.PROMOTE, PROD_ENDPOINT, new))
    commit = len(steps) - 1
    if live is not None:
        steps.append(Step(Action.DELETE, PROD_ENDPOINT, live))
    return Plan(tuple(steps), commit_index=commit, new_deployment=new, old_deployment=live)


def rollback_plan(plan: Plan, failed_index: int) -> tuple[Step, ...]:
    """What undoes a failure at `failed_index`.

    Before the commit point: traffic back to the old slot (if traffic had moved) and the new
    deployment removed. After it: nothing (a failed clean-up leaves a working release).
    """
    if failed_index > plan.commit_index:
        return ()
    if plan.steps[0].endpoint == QA_ENDPOINT:
        return ()  # QA has no previous slot to return to; production is untouched either way
    moved = any(step.action is Action.SET_TRAFFIC for step in plan.steps[: failed_index + 1])
    steps: list[Step] = []
    if moved and plan.old_deployment is not None:
        steps.append(Step(Action.SET_TRAFFIC, PROD_ENDPOINT, traffic={plan.old_deployment: 100}))
    steps.append(Step(Action.DELETE, PROD_ENDPOINT, plan.new_deployment))
    return tuple(steps)
