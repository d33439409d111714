"""The Azure ML workspace and what it stands on.

Storage (HTTPS only, TLS 1.2, no public blob access, network rules), Key Vault (RBAC,
soft delete, purge protection), Log Analytics with workspace-based Application Insights,
ACR without the admin user, the workspace itself (user-assigned identity, v1 legacy
mode off, a managed network only where no Kubernetes compute is attached) and diagnostic
settings into Log Analytics.

The workspace runs as a user-assigned identity (`primary_user_assigned_identity`), so Azure
ML grants it nothing itself ("Role assignment creation: Managed by you" in Learn,
"how-to-identity-based-service-authentication", Workspace identity types). That page lists
what such an identity needs on the workspace-associated resources, and exactly that is
granted here, before the workspace is created (workspace provisioning checks it): Contributor
on storage, Key Vault, ACR and Application Insights; Storage Blob Data Contributor on
storage; Key Vault Administrator on an RBAC vault (Key Vault Secrets User is not enough);
and Contributor on the workspace itself, which can only follow the workspace.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    containerregistry,
    keyvault,
    monitor,
    operationalinsights,
    storage,
)
from pulumi_azure_native import machinelearningservices as ml

from infra.components.common import ClientConfig, Grant, UserIdentity, child, delete_lock
from infra.components.network import Network
from infra.settings import Settings


def _enabled(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


class Workspace(pulumi.ComponentResource):
    """Storage, Key Vault, monitoring, ACR and the Azure ML workspace of one environment."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        client: ClientConfig,
        registry_id: pulumi.Input[str],
        network: Network | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:workspace:Workspace", name, None, opts)
        names, net, tags = settings.names, settings.network, settings.all_tags
        public = net.public_network_access
        # dev/qa allow the public internet through the firewalls (laptops, hosted agents);
        # prod denies it and lists only the agent ranges.
        default_action = "Allow" if public else "Deny"
        storage_action = storage.DefaultAction.ALLOW if public else storage.DefaultAction.DENY

        # --- storage ----------------------------------------------------------------
        self.storage = storage.StorageAccount(
            f"{name}-storage",
            account_name=names.storage_account,
            resource_group_name=resource_group_name,
            location=settings.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=settings.storage.sku),
            access_tier=storage.AccessTier.HOT,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            allow_cross_tenant_replication=False,
            # Azure ML still mounts the workspace file share with the account key.
            allow_shared_key_access=True,
            default_to_o_auth_authentication=True,
            public_network_access=_enabled(public),
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage_action,
                bypass="AzureServices",
                ip_rules=[
                    storage.IPRuleArgs(i_p_address_or_range=cidr, action=storage.Action.ALLOW)
                    for cidr in net.allowed_ip_ranges
                ],
            ),
            tags=tags,
            opts=child(self),
        )
        self.containers = [
            storage.BlobContainer(
                f"{name}-container-{container}",
                container_name=container,
                account_name=self.storage.name,
                resource_group_name=resource_group_name,
                public_access=storage.PublicAccess.NONE,
                opts=child(self),
            )
            for container in settings.storage.containers
        ]

        # --- Key Vault ----------------------------------------------------------------
        kv = settings.key_vault
        self.key_vault = keyvault.Vault(
            f"{name}-keyvault",
            vault_name=names.key_vault,
            resource_group_name=resource_group_name,
            location=settings.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=client.tenant_id,
                sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName(kv.sku)),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=kv.soft_delete_retention_days,
                enable_purge_protection=True,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
                public_network_access=_enabled(public),
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action=default_action,
                    bypass="AzureServices",
                    ip_rules=[keyvault.IPRuleArgs(value=cidr) for cidr in net.allowed_ip_ranges],
                ),
            ),
            tags=tags,
            opts=child(self),
        )

        # --- monitoring ---------------------------------------------------------------
        self.log_analytics = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=names.log_analytics,
            resource_group_name=resource_group_name,
            location=settings.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=settings.monitoring.log_retention_days,
            tags=tags,
            opts=child(self),
        )
        self.app_insights = applicationinsights.Component(
            f"{name}-appinsights",
            resource_name_=names.app_insights,
            resource_group_name=resource_group_name,
            location=settings.location,
            kind="web",
            application_type="web",
            workspace_resource_id=self.log_analytics.id,
            ingestion_mode="LogAnalytics",
            retention_in_days=settings.monitoring.log_retention_days,
            tags=tags,
            opts=child(self),
        )

        # --- container registry ---------------------------------------------------------
        premium = settings.container_registry.sku == "Premium"
        self.acr = containerregistry.Registry(
            f"{name}-acr",
            registry_name=names.container_registry,
            resource_group_name=resource_group_name,
            location=settings.location,
            sku=containerregistry.SkuArgs(name=settings.container_registry.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            # Public access can only be switched off on Premium (private link).
            public_network_access=_enabled(public or not premium),
            network_rule_bypass_options="AzureServices",
            zone_redundancy=_enabled(premium),
            policies=containerregistry.PoliciesArgs(
                quarantine_policy=containerregistry.QuarantinePolicyArgs(
                    status="enabled" if settings.container_registry.quarantine else "disabled"
                ),
                retention_policy=containerregistry.RetentionPolicyArgs(
                    days=30, status="enabled" if premium else "disabled"
                ),
            ),
            tags=tags,
            opts=child(self),
        )

        # --- the workspace identity and its documented grants ---------------------------
        grants: list[Grant] = [
            ("storage-contributor", "Contributor", self.storage.id,
             "Workspace manages its storage account (control plane)"),
            ("storage-blob", "Storage Blob Data Contributor", self.storage.id,
             "Workspace reads and writes its datastores"),
            ("keyvault-contributor", "Contributor", self.key_vault.id,
             "Workspace manages its Key Vault (control plane)"),
            ("keyvault-admin", "Key Vault Administrator", self.key_vault.id,
             "Workspace stores connection secrets in its RBAC vault"),
            ("acr-contributor", "Contributor", self.acr.id,
             "Workspace builds and pulls environment images"),
            ("appinsights-contributor", "Contributor", self.app_insights.id,
             "Workspace writes to its Application Insights"),
        ]  # fmt: skip
        if net.managed_network:
            # Since 30 April 2025 Azure ML no longer grants the workspace identity the right
            # to approve the private endpoints of its outbound rules: "grant this role to the
            # workspace's managed identity" (Learn, "how-to-managed-network", Approval of
            # private endpoints). The registry rule needs it; default resources do not.
            grants.append(
                ("registry-approver", "Azure AI Enterprise Network Connection Approver",
                 registry_id, "Workspace approves its private endpoint to the shared registry")
            )  # fmt: skip
        self.identity = UserIdentity(
            f"{name}-identity",
            parent=self,
            client=client,
            resource_name=names.workspace_identity,
            resource_group_name=resource_group_name,
            location=settings.location,
            tags=tags,
            grants=grants,
        )

        # --- Azure ML workspace ---------------------------------------------------------
        managed_network = (
            _managed_network(net.workspace_isolation_mode, registry_id, self.storage.id)
            if net.managed_network
            else None
        )
        self.workspace = ml.Workspace(
            f"{name}-workspace",
            workspace_name=names.ml_workspace,
            resource_group_name=resource_group_name,
            location=settings.location,
            friendly_name=f"{settings.prefix} {settings.environment}",
            description=f"Azure ML workspace of the {settings.environment} environment",
            identity=self.identity.azureml_identity(),
            primary_user_assigned_identity=self.identity.id,
            sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
            storage_account=self.storage.id,
            key_vault=self.key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=self.acr.id,
            v1_legacy_mode=False,
            hbi_workspace=False,
            public_network_access=_enabled(public),
            managed_network=managed_network,
            # Provision the managed network now, not at the first compute: the private
            # endpoints of the outbound rules exist before anything needs them (Learn,
            # "how-to-managed-network", Manually provision a managed VNet).
            provision_network_now=True if managed_network is not None else None,
            # With ACR behind a private endpoint, images must be built on our compute.
            image_build_compute=None if public else settings.training.compute_name,
            tags=tags,
            opts=child(self, depends_on=self.identity.grants),
        )
        self.identity.add(
            [("workspace-contributor", "Contributor", self.workspace.id,
              "Workspace manages itself (documented for a user-assigned workspace identity)")]
        )  # fmt: skip
        self.principal_id = self.identity.principal_id

        # --- prod: locks against deletion (no managed network there, whose internal
        # operations locks can block: Learn, "how-to-managed-network", Limitations) --------
        self.locks = (
            [
                delete_lock(f"{name}-lock-workspace", parent=self, scope=self.workspace.id,
                            why="prod workspace: remove this lock before deleting it"),
                delete_lock(f"{name}-lock-keyvault", parent=self, scope=self.key_vault.id,
                            why="prod Key Vault: remove this lock before deleting it"),
            ]
            if settings.is_prod
            else []
        )  # fmt: skip

        # --- diagnostic settings ----------------------------------------------------------
        diagnostics: list[tuple[str, pulumi.Output[str], bool]] = [
            ("workspace", self.workspace.id, True),
            ("keyvault", self.key_vault.id, True),
            ("acr", self.acr.id, True),
            ("storage", self.storage.id, False),  # account level has metrics only
        ]
        for key, resource_id, has_logs in diagnostics:
            monitor.DiagnosticSetting(
                f"{name}-diag-{key}",
                name="to-log-analytics",
                resource_uri=resource_id,
                workspace_id=self.log_analytics.id,
                logs=[monitor.LogSettingsArgs(category_group="allLogs", enabled=True)]
                if has_logs
                else [],
                metrics=[
                    monitor.MetricSettingsArgs(
                        category="AllMetrics" if has_logs else "Transaction", enabled=True
                    )
                ],
                opts=child(self),
            )

        # --- private endpoints (prod) ------------------------------------------------------
        # What must exist before anything reaches the workspace over the VNet (the AKS
        # extension, the compute attach, the training cluster): endpoints and DNS records.
        self.private_link: list[pulumi.Resource] = []
        if network is not None:
            targets: list[tuple[str, pulumi.Output[str], str, str]] = [
                ("blob", self.storage.id, "blob", names.storage_account),
                ("file", self.storage.id, "file", names.storage_account),
                ("vault", self.key_vault.id, "vault", names.key_vault),
                ("registry", self.acr.id, "registry", names.container_registry),
                ("workspace", self.workspace.id, "amlworkspace", names.ml_workspace),
            ]
            for key, target_id, group_id, target_name in targets:
                self.private_link += network.private_endpoint(
                    f"{name}-pe-{key}",
                    parent=self,
                    target_id=target_id,
                    group_id=group_id,
                    target_name=target_name,
                )

        self.register_outputs(
            {
                "workspace_id": self.workspace.id,
                "storage_account_id": self.storage.id,
                "key_vault_id": self.key_vault.id,
                "acr_id": self.acr.id,
                "app_insights_id": self.app_insights.id,
                "log_analytics_id": self.log_analytics.id,
            }
        )


def _private_endpoint_rule(
    resource_id: pulumi.Input[str], subresource: str
) -> ml.PrivateEndpointOutboundRuleArgs:
    return ml.PrivateEndpointOutboundRuleArgs(
        type="PrivateEndpoint",
        category="UserDefined",
        destination=ml.PrivateEndpointDestinationArgs(
            service_resource_id=resource_id, subresource_target=subresource, spark_enabled=False
        ),
    )


def _managed_network(
    mode: str, registry_id: pulumi.Input[str], storage_id: pulumi.Input[str]
) -> ml.ManagedNetworkSettingsArgs:
    """The managed network's outbound rules (only where no Kubernetes compute is attached).

    The shared registry, reached privately because models are promoted through it; and the
    default storage's `queue` and `table`, which batch endpoints need ("Scenario: Use batch
    endpoints or ParallelRunStep" in Learn, "how-to-managed-network"): every stack has one.
    """
    return ml.ManagedNetworkSettingsArgs(
        isolation_mode=mode,
        outbound_rules={
            "shared-model-registry": _private_endpoint_rule(registry_id, "amlregistry"),
            "default-storage-queue": _private_endpoint_rule(storage_id, "queue"),
            "default-storage-table": _private_endpoint_rule(storage_id, "table"),
        },
    )
