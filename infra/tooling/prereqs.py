"""What a subscription must have before `pulumi up`: resource providers and features.

Pure functions of the stack settings (so the list cannot drift from what the stacks use),
plus the `az` commands that register them. `mlops infra prereqs` prints them and, with
`--check`, reads their state from the subscription.

Sources: resource types the program declares (their namespaces must be registered:
Learn, "resource-providers-and-types"); `Microsoft.KubernetesConfiguration` for the
cluster extension (Learn, "how-to-deploy-kubernetes-extension", Prerequisites);
`Microsoft.Network` for private endpoints and managed networks (Learn,
"how-to-managed-network", Prerequisites); the `EncryptionAtHost` feature of
`Microsoft.Compute` for host encryption on AKS nodes (Learn, AKS
"enable-host-encryption", Prerequisites).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from infra.settings import Settings

ALWAYS = (
    "Microsoft.MachineLearningServices",
    "Microsoft.Storage",
    "Microsoft.KeyVault",
    "Microsoft.ContainerRegistry",
    "Microsoft.OperationalInsights",
    "Microsoft.Insights",
    "Microsoft.ManagedIdentity",
    "Microsoft.Authorization",
)


@dataclass(frozen=True)
class Requirement:
    """One provider registration or preview feature a stack needs."""

    kind: str  # "provider" or "feature"
    namespace: str
    feature: str = ""
    why: str = ""

    @property
    def command(self) -> str:
        """The `az` command that registers it."""
        if self.kind == "feature":
            return f"az feature register --namespace {self.namespace} --name {self.feature}"
        return f"az provider register --namespace {self.namespace}"

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.feature}" if self.feature else self.namespace


def requirements(stacks: Iterable[Settings]) -> list[Requirement]:
    """Providers and features the given stacks need, each once, in a stable order."""
    found: dict[str, Requirement] = {}

    def need(requirement: Requirement) -> None:
        found.setdefault(requirement.label, requirement)

    for settings in stacks:
        for namespace in ALWAYS:
            need(Requirement("provider", namespace, why="workspace and its dependencies"))
        if settings.aks.enabled:
            need(Requirement("provider", "Microsoft.ContainerService", why="AKS"))
            need(Requirement("provider", "Microsoft.KubernetesConfiguration",
                             why="the Azure ML cluster extension"))  # fmt: skip
            if settings.aks.encryption_at_host:
                need(Requirement("feature", "Microsoft.Compute", "EncryptionAtHost",
                                 why="encryption at host on AKS nodes"))  # fmt: skip
        if settings.aci.enabled:
            need(Requirement("provider", "Microsoft.ContainerInstance", why="QA scoring service"))
        if settings.network.private_network or settings.network.managed_network:
            need(Requirement("provider", "Microsoft.Network",
                             why="VNet, private endpoints, managed network"))  # fmt: skip
    return list(found.values())
