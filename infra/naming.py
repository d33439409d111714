"""Azure naming rules and the names this template derives from prefix, environment and suffix.

Azure rejects a bad name only at deployment time, after minutes of waiting; these rules
reject it when the settings are loaded. Each rule is the documented constraint of the
resource type (length, characters, first and last character).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """One resource type's naming constraint."""

    kind: str
    pattern: re.Pattern[str]
    min_length: int
    max_length: int
    description: str

    def problem(self, name: str) -> str | None:
        """Return why `name` is invalid for this resource type, or None when it is valid."""
        if not self.min_length <= len(name) <= self.max_length:
            return (
                f"{self.kind} name '{name}' has {len(name)} characters but Azure allows "
                f"{self.min_length}-{self.max_length}"
            )
        if not self.pattern.fullmatch(name):
            return f"{self.kind} name '{name}' is invalid: {self.description}"
        return None


def _rule(kind: str, pattern: str, lo: int, hi: int, description: str) -> NameRule:
    return NameRule(kind, re.compile(pattern), lo, hi, description)


RULES: dict[str, NameRule] = {
    "resource_group": _rule(
        "resource group",
        r"[\w().-]*[\w()-]",
        1,
        90,
        "letters, digits, underscores, hyphens, periods and parentheses, not ending in a period",
    ),
    "storage_account": _rule(
        "storage account", r"[a-z0-9]+", 3, 24, "lowercase letters and digits only"
    ),
    "key_vault": _rule(
        "Key Vault",
        r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]",
        3,
        24,
        "letters, digits and single hyphens, starting with a letter and ending alphanumeric",
    ),
    "container_registry": _rule(
        "container registry", r"[a-zA-Z0-9]+", 5, 50, "letters and digits only"
    ),
    "log_analytics": _rule(
        "Log Analytics workspace",
        r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]",
        4,
        63,
        "letters, digits and hyphens, starting and ending alphanumeric",
    ),
    "app_insights": _rule(
        "Application Insights",
        r"[^%&\\?/]*[^%&\\?/.]",
        1,
        260,
        "no %, &, \\, ?, / and no trailing period",
    ),
    "ml_workspace": _rule(
        "Azure ML workspace",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*",
        3,
        33,
        "letters, digits, hyphens and underscores, starting alphanumeric",
    ),
    "ml_registry": _rule(
        "Azure ML registry",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*",
        3,
        33,
        "letters, digits, hyphens and underscores, starting alphanumeric",
    ),
    "ml_compute": _rule(
        "Azure ML compute",
        r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]",
        2,
        16,
        "letters, digits and hyphens, starting with a letter and ending alphanumeric",
    ),
    "ml_endpoint": _rule(
        "Azure ML endpoint",
        r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]",
        3,
        32,
        "letters, digits and hyphens, starting with a letter and ending alphanumeric",
    ),
    "aks": _rule(
        "AKS cluster",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*[a-zA-Z0-9]",
        1,
        63,
        "letters, digits, hyphens and underscores, starting and ending alphanumeric",
    ),
    "aks_dns_prefix": _rule(
        "AKS DNS prefix",
        r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]",
        1,
        54,
        "letters, digits and hyphens, starting and ending alphanumeric",
    ),
    "aks_pool": _rule(
        "AKS node pool", r"[a-z][a-z0-9]*", 1, 12, "lowercase letters and digits, starting a letter"
    ),
    "container_group": _rule(
        "container group",
        r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]",
        1,
        63,
        "lowercase letters, digits and single hyphens, starting and ending alphanumeric",
    ),
    "dns_label": _rule(
        "DNS name label",
        r"[a-z][a-z0-9-]*[a-z0-9]",
        3,
        63,
        "lowercase letters, digits and hyphens, starting with a letter",
    ),
    "identity": _rule(
        "managed identity",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*",
        3,
        128,
        "letters, digits, hyphens and underscores, starting alphanumeric",
    ),
    "kv_secret": _rule(
        "Key Vault secret", r"[a-zA-Z0-9-]+", 1, 127, "letters, digits and hyphens only"
    ),
    "k8s_name": _rule(
        "Kubernetes object",
        r"[a-z0-9]([a-z0-9-]*[a-z0-9])?",
        1,
        63,
        "lowercase letters, digits and hyphens, starting and ending alphanumeric (RFC 1123)",
    ),
    "vnet": _rule(
        "virtual network",
        r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]",
        2,
        64,
        "letters, digits, underscores, periods and hyphens",
    ),
    "blob_container": _rule(
        "blob container",
        r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]",
        3,
        63,
        "lowercase letters, digits and single hyphens",
    ),
}


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not a valid Azure name of `kind` (a key of RULES), or None."""
    return RULES[kind].problem(name)


@dataclass(frozen=True)
class Names:
    """Every Azure name of one stack, derived once so resources and outputs agree."""

    prefix: str
    environment: str
    suffix: str

    @property
    def resource_group(self) -> str:
        return f"rg-{self.prefix}-{self.environment}"

    @property
    def shared_resource_group(self) -> str:
        return f"rg-{self.prefix}-shared"

    @property
    def storage_account(self) -> str:
        return f"st{self.prefix}{self.environment}{self.suffix}"

    @property
    def key_vault(self) -> str:
        return f"kv-{self.prefix}-{self.environment}-{self.suffix}"

    @property
    def container_registry(self) -> str:
        return f"cr{self.prefix}{self.environment}{self.suffix}"

    @property
    def log_analytics(self) -> str:
        return f"log-{self.prefix}-{self.environment}"

    @property
    def app_insights(self) -> str:
        return f"appi-{self.prefix}-{self.environment}"

    @property
    def ml_workspace(self) -> str:
        return f"mlw-{self.prefix}-{self.environment}"

    @property
    def aks(self) -> str:
        return f"aks-{self.prefix}-{self.environment}"

    @property
    def aks_dns_prefix(self) -> str:
        return f"{self.prefix}-{self.environment}-{self.suffix}"

    @property
    def aks_identity(self) -> str:
        return f"id-{self.prefix}-{self.environment}-aks"

    @property
    def workspace_identity(self) -> str:
        return f"id-{self.prefix}-{self.environment}-workspace"

    @property
    def training_identity(self) -> str:
        return f"id-{self.prefix}-{self.environment}-training"

    @property
    def endpoint_identity(self) -> str:
        return f"id-{self.prefix}-{self.environment}-endpoints"

    @property
    def aci(self) -> str:
        return f"aci-{self.prefix}-{self.environment}"

    @property
    def aci_dns_label(self) -> str:
        return f"{self.prefix}-{self.environment}-{self.suffix}"

    @property
    def aci_identity(self) -> str:
        return f"id-{self.prefix}-{self.environment}-aci"

    @property
    def vnet(self) -> str:
        return f"vnet-{self.prefix}-{self.environment}"

    def checked(self) -> list[tuple[str, str]]:
        """(rule kind, name) pairs that the settings validation checks."""
        return [
            ("resource_group", self.resource_group),
            ("resource_group", self.shared_resource_group),
            ("storage_account", self.storage_account),
            ("key_vault", self.key_vault),
            ("container_registry", self.container_registry),
            ("log_analytics", self.log_analytics),
            ("app_insights", self.app_insights),
            ("ml_workspace", self.ml_workspace),
            ("aks", self.aks),
            ("aks_dns_prefix", self.aks_dns_prefix),
            ("identity", self.aks_identity),
            ("identity", self.workspace_identity),
            ("identity", self.training_identity),
            ("identity", self.endpoint_identity),
            ("container_group", self.aci),
            ("dns_label", self.aci_dns_label),
            ("identity", self.aci_identity),
            ("vnet", self.vnet),
        ]
