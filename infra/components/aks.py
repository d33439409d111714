"""The AKS inference cluster.

Managed identity (Azure ML does not support service principals), Entra ID with Azure RBAC
for people, local accounts kept (the Azure ML extension needs them: documented exception
CKV_AZURE_141), autoscaling system and user pools, the user pool labelled for Azure ML
workloads, a network policy, Container Insights, an auto-upgrade channel, the retired
dashboard add-on explicitly disabled, and at least 50 pods per node.

The user pool is Azure ML's: labelled for the InstanceTypes' and the extension's
`nodeSelector`, and tainted `ml.azure.com/amlarc=true:NoSchedule`, the "amlarc overall"
taint that every Azure ML pod (extension services and workloads) tolerates and nothing else
does (Learn, "reference-kubernetes", Supported Azure Machine Learning taints and
tolerations), so other workloads stay on the system pool.

The API server is private where `aks.privateCluster` is set (prod), with a public FQDN that
resolves to its private address. Azure ML reaches such a cluster through AKS trusted access
(Azure/AML-Kubernetes, docs/azureml-aks-ta-support.md: "AKS cluster with authorized IP
range" and "Private AKS with public FQDN configuration"); the role binding is declared in
`aml_kubernetes.py`. Otherwise `aks.authorizedIpRanges` restricts it.

Container Insights collects only through a data collection rule associated with the cluster
(Learn, "kubernetes-monitoring-enable", ARM: the `ContainerInsightsExtension` data source
and the `ContainerInsightsExtension` association); `useAADAuth: true` on the add-on alone
sends nothing.
"""

from __future__ import annotations

import base64
import os
from typing import cast

import pulumi
from pulumi_azure_native import containerservice as aks
from pulumi_azure_native import managedidentity, monitor

from infra.components.common import ClientConfig, child, grant
from infra.components.network import Network
from infra.settings import AksSettings, NodePool, Settings

# Kubernetes-internal ranges of the CNI overlay; they must not overlap the VNet.
AZUREML_TAINT = "ml.azure.com/amlarc=true:NoSchedule"
"""The "amlarc overall" taint (Learn, "reference-kubernetes")."""
CONTAINER_INSIGHTS_STREAM = "Microsoft-ContainerInsights-Group-Default"

READ_ONLY_PREVIEW_ENV = "MLOPS_READ_ONLY_PREVIEW"
"""Set to `true` by `.azure-pipelines/templates/pulumi-preview.yml` for the read-only preview."""

POD_CIDR = "192.168.0.0/16"
SERVICE_CIDR = "172.16.0.0/16"
DNS_SERVICE_IP = "172.16.0.10"


class InferenceCluster(pulumi.ComponentResource):
    """AKS with its control-plane identity, diagnostics and admin kubeconfig."""

    kubeconfig: pulumi.Output[str]
    kubelet_object_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        client: ClientConfig,
        log_analytics_id: pulumi.Input[str],
        network: Network | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:aks:InferenceCluster", name, None, opts)
        cfg, names, tags = settings.aks, settings.names, settings.all_tags

        # A user-assigned control-plane identity exists before the cluster, so it can be
        # given rights on the subnet the cluster joins.
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=names.aks_identity,
            resource_group_name=resource_group_name,
            location=settings.location,
            tags=tags,
            opts=child(self),
        )
        waits: list[pulumi.Resource] = []
        subnet_id = network.aks_subnet_id if network else None
        if network is not None:
            waits.append(
                grant(
                    f"{name}-subnet-network-contributor",
                    parent=self,
                    client=client,
                    role="Network Contributor",
                    scope=network.aks_subnet_id,
                    principal_id=identity.principal_id,
                    description="AKS control plane joins nodes and load balancers to its subnet",
                )
            )

        def pool(
            spec: NodePool, mode: str, labels: dict[str, str] | None, taints: list[str] | None
        ) -> aks.ManagedClusterAgentPoolProfileArgs:
            return aks.ManagedClusterAgentPoolProfileArgs(
                name=spec.name,
                mode=mode,
                type="VirtualMachineScaleSets",
                os_type="Linux",
                os_sku="AzureLinux",
                vm_size=spec.vm_size,
                enable_auto_scaling=True,
                count=spec.min_count if mode == "User" else max(spec.min_count, 1),
                min_count=spec.min_count,
                max_count=spec.max_count,
                max_pods=cfg.max_pods,
                os_disk_type=spec.os_disk_type,
                os_disk_size_gb=spec.os_disk_size_gb,
                enable_encryption_at_host=cfg.encryption_at_host,
                enable_node_public_ip=False,
                node_labels=labels,
                node_taints=taints,
                vnet_subnet_id=subnet_id,
            )

        dataplane = "cilium" if cfg.network_policy == "cilium" else "azure"
        self.cluster = aks.ManagedCluster(
            f"{name}-cluster",
            resource_name_=names.aks,
            resource_group_name=resource_group_name,
            location=settings.location,
            dns_prefix=names.aks_dns_prefix,
            kubernetes_version=cfg.kubernetes_version,
            sku=aks.ManagedClusterSKUArgs(name="Base", tier=cfg.sku_tier),
            identity=aks.ManagedClusterIdentityArgs(
                type=aks.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity.id],
            ),
            enable_rbac=True,
            aad_profile=aks.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=list(cfg.admin_group_object_ids),
                tenant_id=client.tenant_id,
            ),
            # The Azure ML extension cannot run with local accounts disabled.
            disable_local_accounts=False,
            agent_pool_profiles=[
                pool(cfg.system_pool, "System", None, None),
                pool(
                    cfg.user_pool,
                    "User",
                    {cfg.workload_label_key: cfg.workload_label_value},
                    [AZUREML_TAINT],
                ),
            ],
            network_profile=aks.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane=dataplane,
                network_policy=cfg.network_policy,
                load_balancer_sku="standard",
                outbound_type="loadBalancer",
                pod_cidr=POD_CIDR,
                service_cidr=SERVICE_CIDR,
                dns_service_ip=DNS_SERVICE_IP,
            ),
            api_server_access_profile=_api_server_access(cfg),
            auto_upgrade_profile=aks.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=cfg.upgrade_channel,
                node_os_upgrade_channel=cfg.node_os_upgrade_channel,
            ),
            auto_scaler_profile=aks.ManagedClusterPropertiesAutoScalerProfileArgs(
                scale_down_unneeded_time="10m", expander="least-waste"
            ),
            addon_profiles={
                "omsagent": aks.ManagedClusterAddonProfileArgs(
                    enabled=True,
                    config={
                        "logAnalyticsWorkspaceResourceID": log_analytics_id,
                        "useAADAuth": "true",
                    },
                ),
                # Retired add-on, disabled explicitly so no API version turns it back on.
                "kubeDashboard": aks.ManagedClusterAddonProfileArgs(enabled=False),
                "azureKeyvaultSecretsProvider": aks.ManagedClusterAddonProfileArgs(
                    enabled=True,
                    config={"enableSecretRotation": "true", "rotationPollInterval": "2m"},
                ),
                "azurepolicy": aks.ManagedClusterAddonProfileArgs(enabled=True),
            },
            oidc_issuer_profile=aks.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=aks.ManagedClusterSecurityProfileArgs(
                workload_identity=aks.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                ),
                image_cleaner=aks.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=168
                ),
            ),
            tags=tags,
            opts=child(
                self,
                depends_on=waits,
                # The autoscaler owns node counts and the upgrade channel owns versions
                # after creation; `pulumi up` must not undo either.
                ignore_changes=[
                    "agentPoolProfiles[*].count",
                    "agentPoolProfiles[*].orchestratorVersion",
                    "kubernetesVersion",
                ],
            ),
        )
        self.kubelet_object_id = self.cluster.identity_profile.apply(
            lambda profile: (profile or {})["kubeletidentity"].object_id or ""
        )

        # --- Container Insights: data collection rule and its association -------------------
        self.data_collection_rule = monitor.DataCollectionRule(
            f"{name}-container-insights",
            data_collection_rule_name=f"MSCI-{settings.location}-{names.aks}",
            resource_group_name=resource_group_name,
            location=settings.location,
            kind="Linux",
            description="Container Insights for the inference cluster",
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                extensions=[
                    monitor.ExtensionDataSourceArgs(
                        name="ContainerInsightsExtension",
                        extension_name="ContainerInsights",
                        streams=[CONTAINER_INSIGHTS_STREAM],
                        extension_settings={
                            "dataCollectionSettings": {
                                "interval": "1m",
                                "namespaceFilteringMode": "Off",
                                "enableContainerLogV2": True,
                            }
                        },
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(
                        name="ciworkspace", workspace_resource_id=log_analytics_id
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=[CONTAINER_INSIGHTS_STREAM], destinations=["ciworkspace"]
                )
            ],
            tags=tags,
            opts=child(self),
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-container-insights-association",
            association_name="ContainerInsightsExtension",
            resource_uri=self.cluster.id,
            data_collection_rule_id=self.data_collection_rule.id,
            description="Sends the cluster's Container Insights data to Log Analytics",
            opts=child(self),
        )

        monitor.DiagnosticSetting(
            f"{name}-diag",
            name="to-log-analytics",
            resource_uri=self.cluster.id,
            workspace_id=log_analytics_id,
            logs=[monitor.LogSettingsArgs(category_group="audit", enabled=True)],
            metrics=[monitor.MetricSettingsArgs(category="AllMetrics", enabled=True)],
            opts=child(self),
        )

        # The Azure ML extension needs local accounts, and the admin credentials work
        # without kubelogin, so the Kubernetes provider is built from them.
        # A read-only preview cannot list them (Reader has no
        # `managedClusters/listClusterAdminCredential/action`, the action of the "Azure
        # Kubernetes Service Cluster Admin Role": Learn, "aks/concepts-identity"): there the
        # kubeconfig stays unknown, as in the first preview of a stack whose cluster does not
        # exist yet, and the Kubernetes objects show as unknown instead of failing the preview.
        if reads_cluster_credentials():
            credentials = aks.list_managed_cluster_admin_credentials_output(
                resource_group_name=resource_group_name,
                resource_name=self.cluster.name,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            kubeconfig = credentials.kubeconfigs.apply(
                lambda configs: base64.b64decode(configs[0].value).decode("utf-8")
            )
        else:
            kubeconfig = cast("pulumi.Output[str]", pulumi.Output.from_input(pulumi.output.UNKNOWN))
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.cluster_name = self.cluster.name
        self.cluster_id = self.cluster.id
        self.register_outputs(
            {"cluster_id": self.cluster.id, "kubelet_object_id": self.kubelet_object_id}
        )


def reads_cluster_credentials() -> bool:
    """False only in a preview run with `MLOPS_READ_ONLY_PREVIEW=true` (the PR preview)."""
    read_only = os.environ.get(READ_ONLY_PREVIEW_ENV, "").lower() == "true"
    return not (read_only and pulumi.runtime.is_dry_run())


def _api_server_access(cfg: AksSettings) -> aks.ManagedClusterAPIServerAccessProfileArgs | None:
    """A private API server (public FQDN kept for name resolution) or authorized ranges."""
    if cfg.private_cluster:
        return aks.ManagedClusterAPIServerAccessProfileArgs(
            enable_private_cluster=True, enable_private_cluster_public_fqdn=True
        )
    if cfg.authorized_ip_ranges:
        return aks.ManagedClusterAPIServerAccessProfileArgs(
            authorized_ip_ranges=list(cfg.authorized_ip_ranges)
        )
    return None
