"""The gate, exhaustively: a worse candidate never passes, a better one always does."""

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipelines.gate import GateConfig, GateError, decide, improvement
from training.metrics import METRIC_DIRECTIONS

scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
metrics = st.sampled_from(sorted(METRIC_DIRECTIONS))
kinds = st.sampled_from(["production", "baseline"])


def worse(metric: str, reference: float, by: float) -> float:
    return reference + by if METRIC_DIRECTIONS[metric] == "lower" else reference - by


@given(metrics, scores, st.floats(min_value=1e-6, max_value=1e3), kinds)
def test_worse_candidate_never_passes_at_zero_tolerance(metric, reference, by, kind) -> None:
    candidate = worse(metric, reference, by)
    assume(candidate != reference)  # the shift may vanish in float rounding
    assert not decide(GateConfig(metric=metric), candidate, reference, kind).passed


@given(metrics, scores, st.floats(min_value=1e-6, max_value=1e3), kinds)
def test_better_candidate_always_passes_at_zero_tolerance(metric, reference, by, kind) -> None:
    candidate = worse(metric, reference, -by)
    assume(candidate != reference)
    assert decide(GateConfig(metric=metric), candidate, reference, kind).passed


@given(metrics, scores, st.floats(min_value=-10, max_value=10))
def test_ties_follow_the_tolerance(metric, score, min_improvement) -> None:
    decision = decide(GateConfig(metric, min_improvement), score, score, "production")
    assert decision.improvement == 0
    assert decision.passed == (min_improvement <= 0)


@given(metrics, scores, scores, st.floats(min_value=-10, max_value=10))
def test_decision_is_exactly_the_rule(metric, candidate, reference, min_improvement) -> None:
    config = GateConfig(metric, min_improvement)
    delta = improvement(metric, candidate, reference)
    assert decide(config, candidate, reference, "production").passed == (delta >= min_improvement)
    assert decide(config, candidate, reference, "baseline").passed == (
        delta >= min_improvement and delta > 0
    )


@given(metrics, scores)
def test_baseline_must_be_strictly_beaten_whatever_the_tolerance(metric, score) -> None:
    assert not decide(GateConfig(metric, -100.0), score, score, "baseline").passed


def test_reason_and_tags_explain_a_rejection() -> None:
    decision = decide(GateConfig("rmse"), 73.1, 54.0, "production", "1")
    assert not decision.passed
    assert "worse than production model v1" in decision.reason
    tags = decision.as_tags()
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.reference_version"] == "1"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "54"])
def test_unscorable_is_an_error_never_a_pass(bad) -> None:
    with pytest.raises(GateError):
        decide(GateConfig(), bad, 50.0, "production")
    with pytest.raises(GateError):
        decide(GateConfig(), 50.0, bad, "baseline")


def test_invalid_config() -> None:
    with pytest.raises(GateError, match="unknown gate metric"):
        GateConfig(metric="accuracy")
    with pytest.raises(GateError):
        GateConfig(min_improvement=math.nan)
