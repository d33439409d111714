"""Capacity planner: Azure ML's replica formula and the node count behind it."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.tooling.sizing import (
    SizingError,
    SizingPlan,
    cpu_millicores,
    memory_mib,
    node_capacity,
    replicas,
)


def test_worked_example_from_the_azure_docs() -> None:
    # 20 rps x 10 s = 200 concurrent requests; / 0.7 / 1 = 285.7 -> 286 replicas
    assert replicas(20, 10_000, 0.7, 1) == 286


def test_exact_arithmetic_does_not_round_up_an_exact_result() -> None:
    assert replicas(10, 100, 0.5, 1) == 2  # 1 concurrent / 0.5 = exactly 2
    assert replicas(0.1, 1000, 0.1, 1) == 1  # 0.1 / 0.1 is 1, not 1.0000000000000002


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 100, 0.7, 1), "--rps must be greater than 0"),
        ((10, -5, 0.7, 1), "--latency-ms must be greater than 0"),
        ((10, 100, 1.5, 1), "--target-utilization must be in (0, 1]"),
        ((10, 100, 0, 1), "--target-utilization must be in (0, 1]"),
        ((10, 100, 0.7, 0), "--max-concurrent must be at least 1"),
    ],
)
def test_invalid_input(args: tuple[float, float, float, int], message: str) -> None:
    with pytest.raises(SizingError, match=message.replace("(", r"\(").replace("]", r"\]")):
        replicas(*args)


@given(
    rps=st.floats(min_value=0.01, max_value=10_000),
    latency=st.floats(min_value=1, max_value=60_000),
    utilization=st.floats(min_value=0.05, max_value=1),
    concurrent=st.integers(min_value=1, max_value=64),
)
def test_replicas_cover_the_load_with_headroom(
    rps: float, latency: float, utilization: float, concurrent: int
) -> None:
    count = replicas(rps, latency, utilization, concurrent)
    load = Fraction(str(rps)) * Fraction(str(latency)) / 1000
    capacity_at_target = count * concurrent * Fraction(str(utilization))
    assert capacity_at_target >= load  # enough replicas at the target utilization
    assert (count - 1) * concurrent * Fraction(str(utilization)) < load  # and not one more
    assert replicas(rps * 2, latency, utilization, concurrent) >= count


@pytest.mark.parametrize(
    ("quantity", "millicores"), [("500m", 500), ("2", 2000), ("0.5", 500), ("1.5", 1500)]
)
def test_cpu_quantities(quantity: str, millicores: int) -> None:
    assert cpu_millicores(quantity) == millicores


@pytest.mark.parametrize(
    ("quantity", "mib"),
    [("512Mi", 512), ("2Gi", 2048), ("1048576Ki", 1024), ("1G", Fraction(10**9, 2**20))],
)
def test_memory_quantities(quantity: str, mib: Fraction) -> None:
    assert memory_mib(quantity) == mib


def test_node_capacity_of_the_prod_pool() -> None:
    capacity = node_capacity("Standard_D8ds_v5", "500m", "1Gi", max_pods=60)
    assert capacity.allocatable_millicores == 8000 - 180
    assert capacity.allocatable_mib == 32 * 1024 - (20 * 60 + 50 + 100)
    assert capacity.pods_by_cpu == 15
    assert capacity.pods_by_memory == 30
    assert capacity.pods_per_node == 15
    plan = SizingPlan(20, 10_000, 0.7, 1, 286, "defaultinstancetype", capacity, 10)
    assert plan.nodes == math.ceil(286 / 15) == 20
    assert not plan.fits


def test_pod_limit_can_bind() -> None:
    capacity = node_capacity("Standard_E16s_v5", "100m", "128Mi", max_pods=50)
    assert capacity.pods_per_node == 40  # 50 pods minus the ~10 system pods per node


def test_unknown_vm_size_asks_for_its_shape() -> None:
    with pytest.raises(SizingError, match="--node-vcpus"):
        node_capacity("Standard_X99", "1", "1Gi", max_pods=50)
    assert node_capacity("Standard_X99", "1", "1Gi", 50, vcpus=4, memory_gib=16).pods_by_cpu == 3


def test_replica_bigger_than_a_node() -> None:
    capacity = node_capacity("Standard_D2s_v5", "4", "1Gi", max_pods=50)
    with pytest.raises(SizingError, match="cannot hold a single"):
        _ = SizingPlan(1, 100, 0.7, 1, 1, "huge", capacity, 3).nodes
