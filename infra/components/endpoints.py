"""Online and batch endpoint shells.

Pulumi owns the endpoint (stable name and URL, auth mode, identity); the release pipeline
owns deployments and traffic through azure-ai-ml. So traffic, mirror traffic and the batch
default deployment are in `ignore_changes`: a `pulumi up` after a blue/green release must
not route traffic back.

Both endpoints run as one user-assigned identity. With a system-assigned endpoint identity
Azure ML itself grants AcrPull on the workspace ACR and Storage Blob Data Reader on the
default datastore (Learn, "concept-endpoints-online-auth", Automatic role assignment for
endpoint identity), so granting them again would collide; with a user-assigned identity
"you're responsible for assigning proper roles", and they must exist "before you create
the endpoint". So the identity gets AcrPull, Storage Blob Data Reader and, for models
promoted through the shared registry, AzureML Registry User, before either endpoint.
The endpoint identity is immutable after creation (same page, Limitations).
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import machinelearningservices as ml

from infra.components.common import ClientConfig, UserIdentity, child
from infra.settings import Settings


class Endpoints(pulumi.ComponentResource):
    """One online endpoint (Kubernetes where AKS exists, else managed) and one batch endpoint."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        workspace_name: pulumi.Input[str],
        kubernetes_compute_id: pulumi.Input[str] | None,
        depends_on: list[pulumi.Resource],
        client: ClientConfig,
        acr_id: pulumi.Input[str],
        storage_id: pulumi.Input[str],
        registry_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:endpoints:Endpoints", name, None, opts)
        cfg, tags = settings.endpoints, settings.all_tags
        on_kubernetes = kubernetes_compute_id is not None
        self.identity = UserIdentity(
            f"{name}-identity",
            parent=self,
            client=client,
            resource_name=settings.names.endpoint_identity,
            resource_group_name=resource_group_name,
            location=settings.location,
            tags=tags,
            grants=[
                ("acr-pull", "AcrPull", acr_id, "Deployments pull the scoring image"),
                ("blob-read", "Storage Blob Data Reader", storage_id,
                 "Deployments download model files"),
                ("registry", "AzureML Registry User", registry_id,
                 "Deployments use models from the shared registry"),
            ],
        )  # fmt: skip
        waits = [*depends_on, *self.identity.grants]
        self.online = ml.OnlineEndpoint(
            f"{name}-online",
            endpoint_name=cfg.online_name,
            resource_group_name=resource_group_name,
            workspace_name=workspace_name,
            location=settings.location,
            kind="Kubernetes" if on_kubernetes else "Managed",
            identity=self.identity.azureml_identity(),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=cfg.online_auth_mode_arm,
                compute=kubernetes_compute_id,
                description=f"Diabetes model, {settings.environment} (deployments by the release)",
                # Set on purpose in every environment: left out, Azure applies its default
                # ("Enabled"). A Kubernetes endpoint is reached through the inference router,
                # whose load balancer decides reachability; the flag states the same intent.
                public_network_access=_public_access(settings),
            ),
            tags=tags,
            opts=child(
                self,
                depends_on=waits,
                ignore_changes=["properties.traffic", "properties.mirrorTraffic"],
            ),
        )
        self.batch = ml.BatchEndpoint(
            f"{name}-batch",
            endpoint_name=cfg.batch_name,
            resource_group_name=resource_group_name,
            workspace_name=workspace_name,
            location=settings.location,
            identity=self.identity.azureml_identity(),
            properties=ml.BatchEndpointPropertiesArgs(
                auth_mode="AADToken",
                description=f"Diabetes batch scoring, {settings.environment}",
            ),
            tags=tags,
            opts=child(self, depends_on=waits, ignore_changes=["properties.defaults"]),
        )
        self.online_principal_id = self.identity.principal_id
        self.register_outputs(
            {"online_endpoint": self.online.name, "batch_endpoint": self.batch.name}
        )


def _public_access(settings: Settings) -> str:
    """publicNetworkAccess of the online endpoint: off wherever the platform is private."""
    private_router = settings.aks.enabled and settings.inference.internal_load_balancer
    if settings.network.public_network_access and not private_router:
        return "Enabled"
    return "Disabled"
