"""Azure ML on the AKS cluster: extension, TLS secret, namespaces, InstanceTypes, attach.

Order matters and is explicit:
0. (private network) the workspace's private endpoints and their DNS records, so the
   extension and the attach resolve the workspace privately;
1. (TLS) the `azureml` namespace and the certificate secret the router will read;
2. the `Microsoft.AzureML.Kubernetes` cluster extension, which installs the router and the
   InstanceType CRD;
3. namespaces per environment or team, and the InstanceType custom resources (after the
   extension: before it the CRD does not exist);
4. the AKS trusted-access role binding `Microsoft.MachineLearningServices/workspaces/mlworkload`
   for the workspace, through which Azure ML reaches a private API server or one behind
   authorized ranges (Azure/AML-Kubernetes, docs/azureml-aks-ta-support.md);
5. the cluster attached to the workspace as a Kubernetes compute target per namespace,
   after all of the above.
Kubernetes objects go through an explicit provider built from the admin kubeconfig.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import containerservice as aks
from pulumi_azure_native import kubernetesconfiguration as kc
from pulumi_azure_native import machinelearningservices as ml

from infra.components.common import child
from infra.settings import NAMESPACE, InstanceType, Settings

EXTENSION_NAMESPACE = "azureml"
TRUSTED_ACCESS_ROLE = "Microsoft.MachineLearningServices/workspaces/mlworkload"


def _flag(value: bool) -> str:
    return "True" if value else "False"


def extension_settings(settings: Settings, cluster_id: str, cluster_name: str) -> dict[str, str]:
    """Configuration settings of the extension, as `az k8s-extension create` would send them.

    All values are strings. Besides the documented inference settings, the CLI derives
    cluster identifiers, the job-scheduler location and the relay/service-bus switches;
    an ARM deployment has to send those itself. The router's service keys follow the CLI's
    `__validate_scoring_fe_settings` (Azure/azure-cli-extensions,
    src/k8s-extension/azext_k8s_extension/partner_extensions/AzureMLKubernetes.py):
    NodePort sets `scoringFe.serviceType.nodePort`; `internalLoadBalancerProvider=azure`
    sets `scoringFe.serviceType.internalLoadBalancer`; TLS from a Kubernetes secret sets
    `scoringFe.sslSecret` and needs `sslCname`. `nodeSelector.<label>=<value>` restricts the
    extension's services and the Azure ML workloads to the labelled user pool (Learn,
    "how-to-deploy-kubernetes-extension", configuration settings).
    """
    inference, location = settings.inference, settings.location
    values = {
        "enableTraining": _flag(inference.enable_training),
        "enableInference": "True",
        "clusterPurpose": "FastProd" if settings.is_prod else "DevTest",
        "cluster_name": cluster_id,
        "clusterId": cluster_id,
        "cluster_name_friendly": cluster_name,
        "prometheus.prometheusSpec.externalLabels.cluster_name": cluster_id,
        "domain": f"{location}.cloudapp.azure.com",
        "location": location,
        "jobSchedulerLocation": location,
        "servicebus.enabled": "false",
        "relayserver.enabled": "false",
        "nginxIngress.enabled": "true",
        "installNvidiaDevicePlugin": _flag(
            any(instance.gpu for instance in inference.instance_types)
        ),
        "installDcgmExporter": "False",
        "installPromOp": "True",
        "installVolcano": _flag(inference.enable_training),
        "inferenceRouterServiceType": inference.router_service_type,
        "allowInsecureConnections": _flag(inference.allow_insecure_connections),
        "inferenceRouterHA": _flag(inference.router_ha),
    }
    aks = settings.aks
    values[f"nodeSelector.{aks.workload_label_key}"] = aks.workload_label_value
    if inference.router_service_type == "NodePort":
        values["scoringFe.serviceType.nodePort"] = "True"
    elif inference.internal_load_balancer:
        values["internalLoadBalancerProvider"] = "azure"
        values["scoringFe.serviceType.internalLoadBalancer"] = "True"
    if inference.tls_enabled:
        values["sslCname"] = inference.ssl_cname
        values["sslSecret"] = inference.ssl_secret
        values["scoringFe.sslSecret"] = inference.ssl_secret
    return values


def instance_type_spec(settings: Settings, instance: InstanceType) -> dict[str, object]:
    """InstanceType spec: pods land on the Azure ML node pool with these resources."""
    limits: dict[str, object] = {"cpu": instance.cpu_limit, "memory": instance.memory_limit}
    if instance.gpu:
        limits["nvidia.com/gpu"] = instance.gpu
    return {
        "nodeSelector": {settings.aks.workload_label_key: settings.aks.workload_label_value},
        "resources": {
            "requests": {"cpu": instance.cpu_request, "memory": instance.memory_request},
            "limits": limits,
        },
    }


class KubernetesInference(pulumi.ComponentResource):
    """The Azure ML extension and everything that depends on it."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        workspace_name: pulumi.Input[str],
        workspace_id: pulumi.Input[str],
        cluster_id: pulumi.Output[str],
        cluster_name: pulumi.Output[str],
        kubeconfig: pulumi.Output[str],
        private_link: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:aml:KubernetesInference", name, None, opts)
        inference = settings.inference
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            enable_server_side_apply=True,
            opts=child(self),
        )
        k8s_opts = {"provider": provider}

        before_extension: list[pulumi.Resource] = list(private_link or [])
        if inference.tls_enabled:
            config = pulumi.Config(NAMESPACE)
            system_namespace = k8s.core.v1.Namespace(
                f"{name}-ns-azureml",
                metadata={"name": EXTENSION_NAMESPACE, "labels": {"managed-by": "pulumi"}},
                opts=child(self, **k8s_opts),
            )
            tls = k8s.core.v1.Secret(
                f"{name}-router-tls",
                metadata={"name": inference.ssl_secret, "namespace": EXTENSION_NAMESPACE},
                type="Opaque",
                string_data={
                    "cert.pem": config.require_secret(inference.tls_cert_config_key),
                    "key.pem": config.require_secret(inference.tls_key_config_key),
                },
                opts=child(self, depends_on=[system_namespace], **k8s_opts),
            )
            before_extension.append(tls)

        configuration = pulumi.Output.all(cluster_id, cluster_name).apply(
            lambda ids: extension_settings(settings, ids[0], ids[1])
        )
        self.extension = kc.Extension(
            f"{name}-extension",
            extension_name="azureml",
            extension_type="Microsoft.AzureML.Kubernetes",
            cluster_rp="Microsoft.ContainerService",
            cluster_resource_name="managedClusters",
            cluster_name=cluster_name,
            resource_group_name=resource_group_name,
            release_train="stable",
            auto_upgrade_minor_version=True,
            scope=kc.ScopeArgs(cluster=kc.ScopeClusterArgs(release_namespace=EXTENSION_NAMESPACE)),
            identity=kc.IdentityArgs(type=kc.ResourceIdentityType.SYSTEM_ASSIGNED),
            configuration_settings=configuration,
            opts=child(self, depends_on=before_extension),
        )

        self.instance_types = [
            k8s.apiextensions.CustomResource(
                f"{name}-instancetype-{instance.name}",
                api_version="amlarc.azureml.com/v1alpha1",
                kind="InstanceType",
                metadata={"name": instance.name},
                spec=instance_type_spec(settings, instance),
                # The CRD is installed by the extension.
                opts=child(self, depends_on=[self.extension], **k8s_opts),
            )
            for instance in inference.instance_types
        ]

        namespaces = [inference.namespace, *inference.team_namespaces]
        self.namespaces = {
            namespace: k8s.core.v1.Namespace(
                f"{name}-ns-{namespace}",
                metadata={
                    "name": namespace,
                    "labels": {"managed-by": "pulumi", "environment": settings.environment},
                },
                opts=child(self, **k8s_opts),
            )
            for namespace in namespaces
        }

        self.trusted_access = aks.TrustedAccessRoleBinding(
            f"{name}-trusted-access",
            resource_group_name=resource_group_name,
            resource_name_=cluster_name,
            trusted_access_role_binding_name=f"azureml-{settings.names.ml_workspace}"[:24],
            source_resource_id=workspace_id,
            roles=[TRUSTED_ACCESS_ROLE],
            opts=child(self),
        )

        self.computes: dict[str, ml.Compute] = {}
        for namespace in namespaces:
            self.computes[namespace] = ml.Compute(
                f"{name}-attach-{namespace}",
                compute_name=inference.compute_name_for(namespace),
                resource_group_name=resource_group_name,
                workspace_name=workspace_name,
                location=settings.location,
                properties=ml.KubernetesArgs(
                    compute_type="Kubernetes",
                    resource_id=cluster_id,
                    description=f"AKS inference cluster, namespace {namespace}",
                    properties=ml.KubernetesPropertiesArgs(
                        namespace=namespace,
                        default_instance_type=inference.default_instance_type,
                    ),
                ),
                tags=settings.all_tags,
                opts=child(
                    self,
                    depends_on=[
                        self.extension,
                        self.trusted_access,
                        self.namespaces[namespace],
                        *self.instance_types,
                    ],
                ),
            )
        self.compute = self.computes[inference.namespace]
        self.compute_name = self.compute.name
        self.register_outputs(
            {"compute_name": self.compute_name, "extension_id": self.extension.id}
        )
