"""The Pulumi program: `build(settings)` composes the components of one environment.

Nothing here runs at import time. `infra/__main__.py` loads the stack's settings and calls
`main()`; the offline harness calls `build()` under Pulumi mocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_azure_native import authorization, resources

from infra.components.access import Principals, Scopes, SecretsAndAccess
from infra.components.aci import QaScoringService
from infra.components.aks import InferenceCluster
from infra.components.aml_kubernetes import KubernetesInference
from infra.components.common import ClientConfig
from infra.components.endpoints import Endpoints
from infra.components.loop_events import LoopEvents, retrain_webhook_url
from infra.components.network import Network
from infra.components.registry import ModelRegistry
from infra.components.training import TrainingCompute
from infra.components.workspace import Workspace
from infra.outputs import SECRET_KEYS, required_keys
from infra.settings import NAMESPACE, Settings, settings_from_config

# Top-level config keys the settings read (objects arrive as JSON strings).
CONFIG_KEYS = (
    "environment", "prefix", "suffix", "tags", "network", "storage", "keyVault",
    "containerRegistry", "monitoring", "training", "aks", "inference", "aci", "endpoints",
    "modelRegistry", "access", "loop",
)  # fmt: skip


def settings_from_pulumi_config() -> Settings:
    """Read and validate the current stack's settings from the Pulumi config."""
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = pulumi.Config(NAMESPACE).get(key)
        if value is None:
            continue
        # Pulumi hands objects over as JSON text and scalars as plain strings (a suffix
        # like "123456" must stay a string).
        if value.lstrip().startswith(("{", "[")):
            try:
                raw[f"{NAMESPACE}:{key}"] = json.loads(value)
                continue
            except json.JSONDecodeError:
                pass
        raw[f"{NAMESPACE}:{key}"] = value
    raw["azure-native:location"] = pulumi.Config("azure-native").get("location")
    return settings_from_config(raw, pulumi.get_stack())


def build(settings: Settings) -> dict[str, pulumi.Output[Any]]:
    """Declare every resource of the environment; return the stack outputs (the contract)."""
    names = settings.names
    client_config = authorization.get_client_config_output()
    client = ClientConfig(
        subscription_id=client_config.subscription_id, tenant_id=client_config.tenant_id
    )
    group = resources.ResourceGroup(
        "resource-group",
        resource_group_name=names.resource_group,
        location=settings.location,
        tags=settings.all_tags,
    )
    rg = group.name

    network = Network("network", settings, rg) if settings.network.private_network else None
    registry = ModelRegistry("model-registry", settings)
    workspace = Workspace(
        "workspace",
        settings,
        resource_group_name=rg,
        client=client,
        registry_id=registry.registry_id,
        network=network,
    )
    training = TrainingCompute(
        "training",
        settings,
        resource_group_name=rg,
        workspace_name=workspace.workspace.name,
        client=client,
        acr_id=workspace.acr.id,
        storage_id=workspace.storage.id,
        subnet_id=network.training_subnet_id if network else None,
        private_link=workspace.private_link,
    )

    outputs: dict[str, pulumi.Output[Any]] = {}
    kubernetes: KubernetesInference | None = None
    cluster: InferenceCluster | None = None
    if settings.aks.enabled:
        cluster = InferenceCluster(
            "aks",
            settings,
            resource_group_name=rg,
            client=client,
            log_analytics_id=workspace.log_analytics.id,
            network=network,
        )
        kubernetes = KubernetesInference(
            "azureml-k8s",
            settings,
            resource_group_name=rg,
            workspace_name=workspace.workspace.name,
            workspace_id=workspace.workspace.id,
            cluster_id=cluster.cluster_id,
            cluster_name=cluster.cluster_name,
            kubeconfig=cluster.kubeconfig,
            private_link=workspace.private_link,
        )
        inference = settings.inference
        outputs.update(
            aks_cluster_name=cluster.cluster_name,
            kubernetes_compute_name=kubernetes.compute_name,
            kubernetes_namespace=pulumi.Output.from_input(inference.namespace),
            inference_instance_type=pulumi.Output.from_input(inference.default_instance_type),
            inference_instance_types=pulumi.Output.from_input(
                ",".join(instance.name for instance in inference.instance_types)
            ),
            inference_router_scheme=pulumi.Output.from_input(
                "https" if inference.tls_enabled else "http"
            ),
        )

    endpoints = Endpoints(
        "endpoints",
        settings,
        resource_group_name=rg,
        workspace_name=workspace.workspace.name,
        kubernetes_compute_id=kubernetes.compute.id if kubernetes else None,
        depends_on=[kubernetes] if kubernetes else [workspace],
        client=client,
        acr_id=workspace.acr.id,
        storage_id=workspace.storage.id,
        registry_id=registry.registry_id,
    )

    access = SecretsAndAccess(
        "access",
        settings,
        resource_group_name=rg,
        key_vault_name=workspace.key_vault.name,
        client=client,
        principals=Principals(kubelet=cluster.kubelet_object_id if cluster else None),
        scopes=Scopes(
            acr=workspace.acr.id,
            storage=workspace.storage.id,
            key_vault=workspace.key_vault.id,
            workspace=workspace.workspace.id,
            registry=registry.registry_id,
        ),
    )

    if settings.loop.devops_organization:
        LoopEvents(
            "loop-events",
            settings,
            resource_group_name=rg,
            workspace_id=workspace.workspace.id,
            storage_id=workspace.storage.id,
            webhook_url=retrain_webhook_url(settings.loop.devops_organization),
        )

    if settings.aci.enabled:
        service = QaScoringService(
            "qa-scoring",
            settings,
            resource_group_name=rg,
            client=client,
            acr_id=workspace.acr.id,
            acr_login_server=workspace.acr.login_server,
            app_insights_connection_string=workspace.app_insights.connection_string,
            log_analytics_name=workspace.log_analytics.name,
            log_analytics_customer_id=workspace.log_analytics.customer_id,
            subnet_id=network.aci_subnet_id if network else None,
            opts=pulumi.ResourceOptions(depends_on=[access]),
        )
        outputs.update(
            qa_aci_name=service.group_name,
            qa_scoring_url=service.scoring_url,
            qa_aci_identity_id=service.identity_id,
        )

    scoring_secret = settings.aci.scoring_key_secret
    connection_string: pulumi.Output[str] = pulumi.Output.secret(
        workspace.app_insights.connection_string
    )
    outputs.update(
        environment=pulumi.Output.from_input(settings.environment),
        subscription_id=client.subscription_id,
        tenant_id=client.tenant_id,
        resource_group=rg,
        location=pulumi.Output.from_input(settings.location),
        workspace_name=workspace.workspace.name,
        workspace_id=workspace.workspace.id,
        registry_name=registry.registry_name,
        registry_resource_group=registry.resource_group_name,
        acr_name=workspace.acr.name,
        acr_login_server=workspace.acr.login_server,
        storage_account_name=workspace.storage.name,
        batch_scoring_container=workspace.containers[0].name,
        key_vault_name=workspace.key_vault.name,
        key_vault_uri=workspace.key_vault.properties.apply(lambda p: p.vault_uri),
        scoring_key_secret_name=access.secrets[scoring_secret].name
        if scoring_secret in access.secrets
        else pulumi.Output.from_input(""),
        app_insights_name=workspace.app_insights.name,
        app_insights_connection_string=connection_string,
        log_analytics_workspace_id=workspace.log_analytics.id,
        training_compute_name=training.compute_name,
        training_identity_client_id=training.identity_client_id,
        training_identity_id=training.identity_id,
        online_endpoint_name=endpoints.online.name,
        online_endpoint_auth_mode=pulumi.Output.from_input(settings.endpoints.online_auth_mode),
        batch_endpoint_name=endpoints.batch.name,
    )
    check_contract(settings, outputs)
    return outputs


def check_contract(settings: Settings, outputs: Mapping[str, object]) -> None:
    """Fail the deployment if the outputs drift from `infra.outputs` (the pipelines' view)."""
    expected = required_keys(aks=settings.aks.enabled, aci=settings.aci.enabled)
    if set(outputs) != expected:
        missing = sorted(expected - set(outputs))
        extra = sorted(set(outputs) - expected)
        raise ValueError(
            f"Stack outputs drifted from infra/outputs.py (missing {missing}, extra {extra}); "
            "update the contract and the program together."
        )
    for key in SECRET_KEYS:
        value = outputs[key]
        if not isinstance(value, pulumi.Output):  # pragma: no cover - defensive
            raise ValueError(f"Secret output {key} must be a pulumi.Output.")


def main() -> None:
    """Entry point of `pulumi up`: load settings, build, export the contract."""
    settings = settings_from_pulumi_config()
    for key, value in build(settings).items():
        pulumi.export(key, value)
