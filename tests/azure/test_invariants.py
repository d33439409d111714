"""The rules azure-ai-ml does not check client-side (design note §5), checked before any call."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.azure.invariants import (
    InvariantError,
    check_managed_scale,
    check_mirror,
    check_name,
    check_traffic,
)


@pytest.mark.parametrize("name", ["ab", "a" * 33, "1blue", "blue_green", "blue-", ""])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvariantError):
        check_name("deployment", name)


@pytest.mark.parametrize("name", ["abc", "a" * 32, "blue", "green", "diabetes-prod-t3mpl"])
def test_good_names_pass(name: str) -> None:
    assert check_name("endpoint", name) == name


@given(st.dictionaries(st.sampled_from(["blue", "green"]), st.integers(-10, 110), min_size=1))
def test_traffic_must_sum_to_exactly_100(traffic: dict[str, int]) -> None:
    valid = sum(traffic.values()) == 100 and all(0 <= v <= 100 for v in traffic.values())
    if valid:
        check_traffic("prod", traffic)
    else:
        with pytest.raises(InvariantError):
            check_traffic("prod", traffic)


def test_mirror_rules() -> None:
    check_mirror("prod", {"green": 50}, {"blue": 100, "green": 0}, kubernetes=False)
    check_mirror("prod", {}, {"blue": 100}, kubernetes=True)  # no mirror is always fine
    with pytest.raises(InvariantError, match="Kubernetes, which does not support mirrored"):
        check_mirror("prod", {"green": 10}, {"blue": 100}, kubernetes=True)
    with pytest.raises(InvariantError, match="from 1 to 50"):
        check_mirror("prod", {"green": 51}, {"blue": 100}, kubernetes=False)
    with pytest.raises(InvariantError, match="only one deployment"):
        check_mirror("prod", {"green": 10, "red": 10}, {"blue": 100}, kubernetes=False)
    with pytest.raises(InvariantError, match="already receives live traffic"):
        check_mirror("prod", {"green": 10}, {"blue": 90, "green": 10}, kubernetes=False)


def test_managed_deployments_take_default_scale_settings_only() -> None:
    from azure.ai.ml.entities import DefaultScaleSettings, TargetUtilizationScaleSettings

    check_managed_scale("blue", DefaultScaleSettings())
    check_managed_scale("blue", None)
    with pytest.raises(InvariantError, match="default scale settings"):
        check_managed_scale("blue", TargetUtilizationScaleSettings(min_instances=1))
