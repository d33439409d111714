"""The evaluation gate: a pure decision over two scores on the same holdout.

The candidate is compared with the model in production; with no production model yet it must
beat the definition's naive baseline (the training mean, or the class frequencies).
`min_improvement` is in the metric's own units and always means "better by at least this
much": 0 lets a tie pass, a positive value demands real progress, a negative value tolerates a
slightly worse candidate. Against the baseline the candidate must
also be strictly better, whatever the tolerance.

A candidate trained on the same data, with the same parameters, from the same code as the
production model is that model again: it is rejected whatever its score (`same_model`,
`reject_identical`), so a re-run never registers a duplicate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from training.metrics import METRIC_DIRECTIONS
from training.spec import current_spec

ReferenceKind = Literal["production", "baseline"]


class GateError(ValueError):
    """The gate could not decide (unknown metric, missing or non-finite score): never a pass."""


@dataclass(frozen=True)
class GateConfig:
    """Which metric decides and by how much the candidate must improve on it."""

    metric: str = field(default_factory=lambda: current_spec().gate_metric)
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in METRIC_DIRECTIONS:
            raise GateError(
                f"unknown gate metric '{self.metric}'; use one of {', '.join(METRIC_DIRECTIONS)}"
            )
        if not math.isfinite(self.min_improvement):
            raise GateError(f"min_improvement must be a finite number, got {self.min_improvement}")


@dataclass(frozen=True)
class GateDecision:
    """The outcome and everything needed to explain it."""

    passed: bool
    metric: str
    candidate_score: float
    reference_score: float
    reference_kind: ReferenceKind
    reference_version: str | None
    improvement: float
    min_improvement: float
    reason: str

    @property
    def label(self) -> str:
        """'passed' or 'rejected', as recorded in tags."""
        return "passed" if self.passed else "rejected"

    def as_tags(self) -> dict[str, str]:
        """The decision as string tags for the run and the model version."""
        return {f"gate.{key}": str(value) for key, value in asdict(self).items()} | {
            "gate.decision": self.label
        }


def improvement(metric: str, candidate: float, reference: float) -> float:
    """How much better the candidate is, positive meaning better, in the metric's units."""
    if METRIC_DIRECTIONS[metric] == "lower":
        return reference - candidate
    return candidate - reference


def decide(
    config: GateConfig,
    candidate_score: float,
    reference_score: float,
    reference_kind: ReferenceKind,
    reference_version: str | None = None,
) -> GateDecision:
    """Decide whether the candidate may be registered.

    Raises GateError on a non-finite score: an error is never a pass.
    """
    for role, score in (("candidate", candidate_score), (reference_kind, reference_score)):
        if not isinstance(score, int | float) or not math.isfinite(score):
            raise GateError(f"the {role} {config.metric} is {score!r}, not a finite number")
    delta = improvement(config.metric, candidate_score, reference_score)
    passed = delta >= config.min_improvement
    if reference_kind == "baseline":
        passed = passed and delta > 0
    name = (
        f"production model v{reference_version}"
        if reference_kind == "production"
        else "the naive baseline"
    )
    verb = "beats" if delta > 0 else "ties" if delta == 0 else "is worse than"
    requirement = f"must improve {config.metric} by at least {config.min_improvement:g}" + (
        " and strictly beat it" if reference_kind == "baseline" else ""
    )
    reason = (
        f"candidate {config.metric} {candidate_score:.4f} {verb} {name} "
        f"({reference_score:.4f}, change {delta:+.4f}); {requirement}"
    )
    return GateDecision(
        passed=passed,
        metric=config.metric,
        candidate_score=float(candidate_score),
        reference_score=float(reference_score),
        reference_kind=reference_kind,
        reference_version=reference_version,
        improvement=delta,
        min_improvement=config.min_improvement,
        reason=reason,
    )


UNKNOWN_COMMIT = "unknown"


@dataclass(frozen=True)
class Lineage:
    """What makes a trained model what it is: its data, its training parameters, its code."""

    data_sha256: str | None
    params: Mapping[str, str] | None
    commit: str | None


def code_is_known(commit: str | None) -> bool:
    """Whether a commit tag pins the code: not missing, not 'unknown', not a bare '-dirty'.

    A dirty tree is pinned only with the hash of its changes (`<sha>-dirty.<hash>`).
    """
    return bool(commit) and commit != UNKNOWN_COMMIT and not str(commit).endswith("-dirty")


def same_model(candidate: Lineage, production: Lineage) -> bool:
    """True when both lineages are fully known and equal: then the candidate is that model again.

    Anything unknown (a missing tag, parameters that cannot be read, code outside git) is
    never identical: the gate decides on the score as usual.
    """
    for lineage in (candidate, production):
        if not (lineage.data_sha256 and lineage.params and code_is_known(lineage.commit)):
            return False
    return (
        candidate.data_sha256 == production.data_sha256
        and dict(candidate.params or {}) == dict(production.params or {})
        and candidate.commit == production.commit
    )


IDENTICAL = "identical to production model"


def identical_reason(production_ref: str) -> str:
    """Why an identical candidate is not registered."""
    return f"{IDENTICAL} {production_ref}: same data, parameters and code; nothing to register"


def reject_identical(decision: GateDecision, production_ref: str) -> GateDecision:
    """The decision for a candidate identical to production: rejected, whatever its score.

    The scores stay as measured; only the verdict and its reason change.
    """
    return replace(decision, passed=False, reason=identical_reason(production_ref))


def is_identical(decision: GateDecision) -> bool:
    """Whether the candidate was rejected as the production model again (`reject_identical`).

    Told by the reason, which every record of the decision carries (run and version tags,
    gate.json), so the decision's fields and the gate.json schema stay as they are.
    """
    return not decision.passed and decision.reason.startswith(f"{IDENTICAL} ")
