"""Capacity planning for Kubernetes online deployments.

Replicas follow the formula of Azure ML's inference-router documentation:

    concurrent requests = requests per second x request latency (s)
    replicas = ceil(concurrent requests / target utilization / max concurrent per replica)

(20 rps at 10 s each, 70 % utilization, 1 request per replica: 286 replicas.)
Nodes follow from what one node of the AKS user pool can schedule: the InstanceType's
CPU and memory *requests* against the node's allocatable resources (AKS reserves part of
every node) and its pod limit. Arithmetic is exact (fractions), so 286 is 286.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

# vCPUs and memory (GiB) of common AKS node sizes.
VM_SIZES: dict[str, tuple[int, int]] = {
    "Standard_D2s_v3": (2, 8),
    "Standard_D4s_v3": (4, 16),
    "Standard_D8s_v3": (8, 32),
    "Standard_D16s_v3": (16, 64),
    "Standard_DS2_v2": (2, 7),
    "Standard_DS3_v2": (4, 14),
    "Standard_DS4_v2": (8, 28),
    "Standard_D2s_v5": (2, 8),
    "Standard_D4s_v5": (4, 16),
    "Standard_D8s_v5": (8, 32),
    "Standard_D16s_v5": (16, 64),
    "Standard_D32s_v5": (32, 128),
    "Standard_D2ds_v5": (2, 8),
    "Standard_D4ds_v5": (4, 16),
    "Standard_D8ds_v5": (8, 32),
    "Standard_D16ds_v5": (16, 64),
    "Standard_D32ds_v5": (32, 128),
    "Standard_E4s_v5": (4, 32),
    "Standard_E8s_v5": (8, 64),
    "Standard_E16s_v5": (16, 128),
    "Standard_F4s_v2": (4, 8),
    "Standard_F8s_v2": (8, 16),
    "Standard_F16s_v2": (16, 32),
    "Standard_NC6s_v3": (6, 112),
}

# Pods of the cluster and the Azure ML extension that take slots on every node
# (kube-proxy, CNI, CSI drivers, monitoring agent, fluent-bit ...).
SYSTEM_PODS_PER_NODE = 10

_CPU = re.compile(r"(\d+(?:\.\d+)?)(m?)")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_MEMORY_UNITS = {
    None: Fraction(1, 2**20),
    "Ki": Fraction(1, 2**10),
    "Mi": Fraction(1),
    "Gi": Fraction(2**10),
    "Ti": Fraction(2**20),
    "k": Fraction(1000, 2**20),
    "M": Fraction(10**6, 2**20),
    "G": Fraction(10**9, 2**20),
    "T": Fraction(10**12, 2**20),
}


class SizingError(ValueError):
    """Invalid sizing input; the message says which and what is allowed."""


def cpu_millicores(quantity: str) -> Fraction:
    """A Kubernetes CPU quantity ('500m', '2') in millicores."""
    match = _CPU.fullmatch(quantity.strip())
    if not match:
        raise SizingError(f"'{quantity}' is not a CPU quantity like 500m or 2.")
    value = Fraction(match.group(1))
    return value if match.group(2) else value * 1000


def memory_mib(quantity: str) -> Fraction:
    """A Kubernetes memory quantity ('512Mi', '2Gi') in MiB."""
    match = _MEMORY.fullmatch(quantity.strip())
    if not match:
        raise SizingError(f"'{quantity}' is not a memory quantity like 512Mi or 2Gi.")
    return Fraction(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def replicas(rps: float, latency_ms: float, target_utilization: float, max_concurrent: int) -> int:
    """Replicas needed to serve `rps` at `latency_ms` per request (Azure ML's formula)."""
    if not rps > 0:
        raise SizingError(f"--rps must be greater than 0, not {rps}.")
    if not latency_ms > 0:
        raise SizingError(f"--latency-ms must be greater than 0, not {latency_ms}.")
    if not 0 < target_utilization <= 1:
        raise SizingError(
            f"--target-utilization must be in (0, 1], not {target_utilization}; 0.7 means 70 %."
        )
    if max_concurrent < 1:
        raise SizingError(f"--max-concurrent must be at least 1, not {max_concurrent}.")
    concurrent = Fraction(str(rps)) * Fraction(str(latency_ms)) / 1000
    return math.ceil(concurrent / Fraction(str(target_utilization)) / max_concurrent)


def reserved_cpu_millicores(vcpus: int) -> int:
    """CPU AKS reserves for the kubelet on a node with `vcpus` cores (AKS docs table)."""
    table = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
    for cores in sorted(table):
        if vcpus <= cores:
            return table[cores]
    return 740


def reserved_memory_mib(max_pods: int) -> int:
    """Memory AKS (1.29+) reserves: 20 MiB per allowed pod + 50 MiB, plus 100 MiB eviction."""
    return 20 * max_pods + 50 + 100


@dataclass(frozen=True)
class NodeCapacity:
    """What one node can schedule for an instance type."""

    vm_size: str
    vcpus: int
    memory_gib: int
    allocatable_millicores: int
    allocatable_mib: int
    pods_by_cpu: int
    pods_by_memory: int
    pods_by_limit: int

    @property
    def pods_per_node(self) -> int:
        return min(self.pods_by_cpu, self.pods_by_memory, self.pods_by_limit)


def node_capacity(
    vm_size: str,
    cpu_request: str,
    memory_request: str,
    max_pods: int,
    vcpus: int | None = None,
    memory_gib: int | None = None,
) -> NodeCapacity:
    """Pods of one replica's requests that fit on one node of `vm_size`."""
    if vcpus is None or memory_gib is None:
        if vm_size not in VM_SIZES:
            raise SizingError(
                f"The VM size {vm_size} is not in the sizing table; pass --node-vcpus and "
                "--node-memory-gib."
            )
        vcpus, memory_gib = VM_SIZES[vm_size]
    cpu_alloc = vcpus * 1000 - reserved_cpu_millicores(vcpus)
    mem_alloc = memory_gib * 1024 - reserved_memory_mib(max_pods)
    cpu, memory = cpu_millicores(cpu_request), memory_mib(memory_request)
    if cpu <= 0 or memory <= 0:
        raise SizingError("The instance type must request some CPU and memory.")
    return NodeCapacity(
        vm_size=vm_size,
        vcpus=vcpus,
        memory_gib=memory_gib,
        allocatable_millicores=cpu_alloc,
        allocatable_mib=mem_alloc,
        pods_by_cpu=math.floor(Fraction(cpu_alloc) / cpu),
        pods_by_memory=math.floor(Fraction(mem_alloc) / memory),
        pods_by_limit=max(max_pods - SYSTEM_PODS_PER_NODE, 0),
    )


@dataclass(frozen=True)
class SizingPlan:
    """Replicas, nodes, and how they map onto the stack and the deployment."""

    rps: float
    latency_ms: float
    target_utilization: float
    max_concurrent: int
    replicas: int
    instance_type: str
    capacity: NodeCapacity
    user_pool_max: int

    @property
    def nodes(self) -> int:
        if self.capacity.pods_per_node < 1:
            raise SizingError(
                f"One {self.capacity.vm_size} node cannot hold a single {self.instance_type} "
                "replica; choose a bigger VM size or a smaller instance type."
            )
        return math.ceil(self.replicas / self.capacity.pods_per_node)

    @property
    def fits(self) -> bool:
        return self.nodes <= self.user_pool_max
