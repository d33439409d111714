"""The gate, exhaustively: a worse candidate never passes, a better one always does."""

import math
from itertools import product

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipelines.gate import (
    GateConfig,
    GateError,
    Lineage,
    code_is_known,
    decide,
    improvement,
    is_identical,
    reject_identical,
    same_model,
)
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
        GateConfig(metric="f1")
    with pytest.raises(GateError):
        GateConfig(min_improvement=math.nan)


# The identity check: a candidate with production's data, parameters and code is that model.
DATA, PARAMS, COMMIT = "d" * 64, {"alpha": "0.1", "seed": "42"}, "a" * 40
PRODUCTION = Lineage(DATA, PARAMS, COMMIT)
# Each field of the candidate: the same as production, different, or unknown in every way.
DATA_VARIANTS = {"same": DATA, "other": "e" * 64, "missing": None, "empty": ""}
PARAMS_VARIANTS = {
    "same": dict(PARAMS),
    "other-value": {"alpha": "0.5", "seed": "42"},
    "extra-key": {**PARAMS, "fit_intercept": "True"},
    "missing": None,
    "empty": {},
}
COMMIT_VARIANTS = {
    "same": COMMIT,
    "other": "b" * 40,
    "unknown": "unknown",
    "missing": None,
    "empty": "",
    "bare-dirty": f"{COMMIT}-dirty",  # an old tag: uncommitted changes, but which ones?
}


@pytest.mark.parametrize(
    ("data", "params", "commit"), list(product(DATA_VARIANTS, PARAMS_VARIANTS, COMMIT_VARIANTS))
)
def test_identical_only_when_data_params_and_commit_are_known_and_equal(
    data: str, params: str, commit: str
) -> None:
    candidate = Lineage(DATA_VARIANTS[data], PARAMS_VARIANTS[params], COMMIT_VARIANTS[commit])
    expected = (data, params, commit) == ("same", "same", "same")
    assert same_model(candidate, PRODUCTION) is expected
    assert same_model(PRODUCTION, candidate) is expected  # symmetric


@pytest.mark.parametrize(
    "production",
    [
        Lineage(None, PARAMS, COMMIT),
        Lineage(DATA, None, COMMIT),  # the production run's parameters could not be read
        Lineage(DATA, PARAMS, None),
        Lineage(DATA, PARAMS, "unknown"),
    ],
)
def test_unknown_production_lineage_is_never_identical(production: Lineage) -> None:
    assert not same_model(production, production)  # even a candidate equal in every field


def test_a_dirty_tree_is_identified_by_the_hash_of_its_changes() -> None:
    dirty = f"{COMMIT}-dirty.0123456789ab"
    assert code_is_known(dirty)
    assert same_model(Lineage(DATA, PARAMS, dirty), Lineage(DATA, PARAMS, dirty))
    other_changes = Lineage(DATA, PARAMS, f"{COMMIT}-dirty.ba9876543210")
    assert not same_model(other_changes, Lineage(DATA, PARAMS, dirty))
    assert not same_model(Lineage(DATA, PARAMS, dirty), PRODUCTION)  # clean vs dirty
    for unknown in ("unknown", "", None, f"{COMMIT}-dirty"):
        assert not code_is_known(unknown)


@given(metrics, scores, scores, st.floats(min_value=-1e3, max_value=1e3))
def test_an_identical_candidate_is_rejected_whatever_its_score(
    metric, candidate, reference, min_improvement
) -> None:
    decision = decide(GateConfig(metric, min_improvement), candidate, reference, "production", "2")
    identical = reject_identical(decision, "diabetes-ridge:2")
    assert not identical.passed
    assert identical.label == "rejected"
    assert is_identical(identical)
    assert not is_identical(decision)
    assert identical.reason == (
        "identical to production model diabetes-ridge:2: same data, parameters and code; "
        "nothing to register"
    )
    # The scores stay on record; only the verdict and its reason change.
    assert (identical.candidate_score, identical.reference_score, identical.improvement) == (
        decision.candidate_score,
        decision.reference_score,
        decision.improvement,
    )
    tags = identical.as_tags()
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.reason"] == identical.reason
    assert set(tags) == set(decision.as_tags())  # no new field: gate.json keeps its schema
