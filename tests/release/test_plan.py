"""The rollout and rollback plans, as pure functions: every starting state, every failure point."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.release.plan import (
    PROD_ENDPOINT,
    Action,
    PlanError,
    live_slot,
    next_slot,
    production_plan,
    qa_plan,
    rollback_plan,
    validate_traffic,
)

STARTS = [{}, {"blue": 100}, {"green": 100}, {"blue": 100, "green": 0}, {"blue": 0, "green": 100}]
STAGES = [(100,), (10, 50, 100), (50, 100)]


def actions(plan):
    return [step.action for step in plan.steps]


def test_first_release_deploys_blue_and_switches_all_traffic() -> None:
    plan = production_plan({})
    assert actions(plan) == [
        Action.DEPLOY,
        Action.SMOKE_DEPLOYMENT,
        Action.SET_TRAFFIC,
        Action.SMOKE_ENDPOINT,
        Action.PROMOTE,
    ]
    assert plan.new_deployment == "blue"
    assert plan.old_deployment is None
    assert plan.steps[2].traffic == {"blue": 100}


def test_second_release_goes_green_and_retires_blue_after_promotion() -> None:
    plan = production_plan({"blue": 100})
    assert plan.new_deployment == "green"
    assert actions(plan)[-2:] == [Action.PROMOTE, Action.DELETE]
    assert plan.steps[-1].deployment == "blue"
    assert plan.commit_index == len(plan.steps) - 2


def test_staged_shift_smoke_tests_every_stage() -> None:
    plan = production_plan({"green": 100}, (10, 50, 100))
    shifts = [step.traffic for step in plan.steps if step.action is Action.SET_TRAFFIC]
    assert shifts == [
        {"blue": 10, "green": 90},
        {"blue": 50, "green": 50},
        {"blue": 100, "green": 0},
    ]
    for index, step in enumerate(plan.steps):
        if step.action is Action.SET_TRAFFIC:
            assert plan.steps[index + 1].action is Action.SMOKE_ENDPOINT


@pytest.mark.parametrize(("start", "stages"), list(itertools.product(STARTS, STAGES)))
def test_invariants_for_every_start(start, stages) -> None:
    plan = production_plan(start, stages)
    kinds = actions(plan)
    # the new deployment is smoke-tested directly before it receives any traffic
    assert kinds.index(Action.SMOKE_DEPLOYMENT) < kinds.index(Action.SET_TRAFFIC)
    # the alias moves only after the last endpoint smoke test, and exactly once
    assert kinds.count(Action.PROMOTE) == 1
    last_smoke = max(i for i, k in enumerate(kinds) if k is Action.SMOKE_ENDPOINT)
    assert kinds.index(Action.PROMOTE) == last_smoke + 1 == plan.commit_index
    # the old deployment is never deleted before the commit point
    for step in plan.steps[: plan.commit_index + 1]:
        assert step.action is not Action.DELETE
    # every traffic split sums to 100 and ends with everything on the new deployment
    shifts = [s.traffic for s in plan.steps if s.action is Action.SET_TRAFFIC]
    assert all(sum(t.values()) == 100 for t in shifts)
    assert shifts[-1][plan.new_deployment] == 100
    assert plan.new_deployment != live_slot(start)


@pytest.mark.parametrize(("start", "stages"), list(itertools.product(STARTS, STAGES)))
def test_rollback_at_every_failure_point(start, stages) -> None:
    plan = production_plan(start, stages)
    for failed in range(len(plan.steps)):
        undo = rollback_plan(plan, failed)
        if failed > plan.commit_index:
            assert undo == ()  # a failed clean-up leaves the working release alone
            continue
        # the new deployment is always removed, never the old one
        assert undo[-1].action is Action.DELETE
        assert undo[-1].deployment == plan.new_deployment
        moved = any(s.action is Action.SET_TRAFFIC for s in plan.steps[: failed + 1])
        if moved and plan.old_deployment:
            assert undo[0].traffic == {plan.old_deployment: 100}
        else:
            assert all(s.action is not Action.SET_TRAFFIC for s in undo)
        assert all(s.action is not Action.PROMOTE for s in undo)


def test_qa_plan_has_no_rollback_into_production() -> None:
    plan = qa_plan()
    assert actions(plan) == [Action.DEPLOY, Action.SET_TRAFFIC, Action.SMOKE_ENDPOINT]
    assert plan.steps[1].traffic == {"qa": 100}
    assert all(step.endpoint != PROD_ENDPOINT for step in plan.steps)
    assert all(rollback_plan(plan, index) == () for index in range(len(plan.steps)))


@given(st.dictionaries(st.sampled_from(["blue", "green"]), st.integers(0, 100)))
def test_next_slot_is_never_the_live_one(traffic) -> None:
    live = live_slot(traffic)
    assert next_slot(live) != live
    assert next_slot(live) in ("blue", "green")


@pytest.mark.parametrize(
    "traffic", [{"blue": 50}, {"blue": 60, "green": 60}, {"blue": 101, "green": -1}, {}]
)
def test_traffic_must_sum_to_100(traffic) -> None:
    with pytest.raises(PlanError):
        validate_traffic(traffic)


@pytest.mark.parametrize("stages", [(), (50,), (50, 10, 100), (0, 100), (10, 10, 100)])
def test_bad_stages_are_refused(stages) -> None:
    with pytest.raises(PlanError):
        production_plan({"blue": 100}, stages)
