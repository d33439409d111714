"""The stack outputs contract: what every stack exports and the pipelines read.

The infrastructure exports exactly these keys (`infra/program.py` checks it at `pulumi up`),
and the pipelines read them from `pulumi stack output --json --show-secrets` through
`StackOutputs.from_json`, so a renamed output breaks a test instead of a release.

Some outputs exist only where the feature exists: the Kubernetes keys in stacks with AKS,
the QA scoring-service keys in stacks with ACI. Importing this module needs only the
standard library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

Feature = Literal["always", "aks", "aci"]


@dataclass(frozen=True)
class OutputSpec:
    """One stack output: key, meaning, whether it is a secret, when it exists."""

    key: str
    description: str
    feature: Feature = "always"
    secret: bool = False


CONTRACT: tuple[OutputSpec, ...] = (
    OutputSpec("environment", "dev, qa or prod"),
    OutputSpec("subscription_id", "Azure subscription of the stack"),
    OutputSpec("tenant_id", "Entra ID tenant"),
    OutputSpec("resource_group", "resource group holding the environment"),
    OutputSpec("location", "Azure region"),
    OutputSpec("workspace_name", "Azure ML workspace (MLClient workspace_name)"),
    OutputSpec("workspace_id", "ARM id of the Azure ML workspace"),
    OutputSpec("registry_name", "shared Azure ML registry that models are promoted through"),
    OutputSpec("registry_resource_group", "resource group of the shared registry"),
    OutputSpec("acr_name", "container registry of the environment"),
    OutputSpec("acr_login_server", "login server for image pushes and pulls"),
    OutputSpec("storage_account_name", "workspace storage account"),
    OutputSpec("batch_scoring_container", "blob container for batch-scoring inputs and outputs"),
    OutputSpec("key_vault_name", "Key Vault of the environment"),
    OutputSpec("key_vault_uri", "Key Vault URI for SDK clients"),
    OutputSpec("scoring_key_secret_name", "Key Vault secret holding the scoring API key"),
    OutputSpec("app_insights_name", "Application Insights component"),
    OutputSpec(
        "app_insights_connection_string",
        "Application Insights connection string for the scoring service",
        secret=True,
    ),
    OutputSpec("log_analytics_workspace_id", "ARM id of the Log Analytics workspace"),
    OutputSpec("training_compute_name", "AML compute cluster for training jobs"),
    OutputSpec(
        "training_identity_client_id",
        "client id of the training cluster's user-assigned identity (jobs' managed identity)",
    ),
    OutputSpec("training_identity_id", "ARM id of the training cluster's user-assigned identity"),
    OutputSpec("online_endpoint_name", "online endpoint shell the release pipeline deploys to"),
    OutputSpec("online_endpoint_auth_mode", "key or aml_token"),
    OutputSpec("batch_endpoint_name", "batch endpoint shell"),
    OutputSpec("aks_cluster_name", "AKS inference cluster", feature="aks"),
    OutputSpec("kubernetes_compute_name", "AKS attached to the workspace", feature="aks"),
    OutputSpec("kubernetes_namespace", "namespace the compute target deploys into", feature="aks"),
    OutputSpec(
        "inference_instance_type", "default InstanceType for Kubernetes deployments", feature="aks"
    ),
    OutputSpec(
        "inference_instance_types", "comma-separated InstanceTypes on the cluster", feature="aks"
    ),
    OutputSpec(
        "inference_router_scheme", "https when the router terminates TLS, else http", feature="aks"
    ),
    OutputSpec("qa_aci_name", "container group of the QA scoring service", feature="aci"),
    OutputSpec("qa_scoring_url", "scoring URL of the QA service", feature="aci"),
    OutputSpec(
        "qa_aci_identity_id", "user-assigned identity the QA service pulls with", feature="aci"
    ),
)

SPECS: dict[str, OutputSpec] = {spec.key: spec for spec in CONTRACT}
SECRET_KEYS = frozenset(spec.key for spec in CONTRACT if spec.secret)


def required_keys(*, aks: bool, aci: bool) -> frozenset[str]:
    """Keys a stack with these features must export."""
    enabled: set[str] = {"always"}
    if aks:
        enabled.add("aks")
    if aci:
        enabled.add("aci")
    return frozenset(spec.key for spec in CONTRACT if spec.feature in enabled)


class StackOutputsError(ValueError):
    """The stack outputs do not match the contract."""


@dataclass(frozen=True)
class StackOutputs:
    """Typed view of one stack's outputs, as the pipelines consume them."""

    environment: str
    subscription_id: str
    tenant_id: str
    resource_group: str
    location: str
    workspace_name: str
    workspace_id: str
    registry_name: str
    registry_resource_group: str
    acr_name: str
    acr_login_server: str
    storage_account_name: str
    batch_scoring_container: str
    key_vault_name: str
    key_vault_uri: str
    scoring_key_secret_name: str
    app_insights_name: str
    app_insights_connection_string: str
    log_analytics_workspace_id: str
    training_compute_name: str
    training_identity_client_id: str
    training_identity_id: str
    online_endpoint_name: str
    online_endpoint_auth_mode: str
    batch_endpoint_name: str
    aks_cluster_name: str | None = None
    kubernetes_compute_name: str | None = None
    kubernetes_namespace: str | None = None
    inference_instance_type: str | None = None
    inference_instance_types: str | None = None
    inference_router_scheme: str | None = None
    qa_aci_name: str | None = None
    qa_scoring_url: str | None = None
    qa_aci_identity_id: str | None = None

    @property
    def has_kubernetes(self) -> bool:
        return self.kubernetes_compute_name is not None

    @property
    def has_qa_service(self) -> bool:
        return self.qa_aci_name is not None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> StackOutputs:
        """Validate outputs (e.g. parsed `pulumi stack output --json --show-secrets`)."""
        missing = sorted(required_keys(aks=False, aci=False) - set(data))
        if missing:
            raise StackOutputsError(
                f"The stack outputs lack {', '.join(missing)}; run `pulumi up` for the stack "
                "with the current infra code."
            )
        for feature, marker in (("aks", "kubernetes_compute_name"), ("aci", "qa_aci_name")):
            if marker in data:
                group = {s.key for s in CONTRACT if s.feature == feature}
                lacking = sorted(group - set(data))
                if lacking:
                    raise StackOutputsError(
                        f"The stack outputs lack {', '.join(lacking)}; run `pulumi up` again."
                    )
        values: dict[str, str | None] = {}
        for spec_field in fields(cls):
            value = data.get(spec_field.name)
            if value is not None and not isinstance(value, str):
                value = str(value)
            if isinstance(value, str) and value.startswith("[secret]"):
                raise StackOutputsError(
                    f"Output {spec_field.name} is masked; read outputs with --show-secrets."
                )
            values[spec_field.name] = value
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> StackOutputs:
        """Parse the JSON that `pulumi stack output --json --show-secrets` prints."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise StackOutputsError(f"The stack outputs are not JSON ({error}).") from None
        if not isinstance(data, dict):
            raise StackOutputsError("The stack outputs are not a JSON object.")
        return cls.from_mapping(data)
