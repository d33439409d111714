"""Online and batch endpoint shells.

Pulumi owns the endpoint (stable name and URL, auth mode, identity); the release pipeline
owns deployments and traffic through azure-ai-ml. So traffic, mirror traffic and the batch
default deployment are in `ignore_changes`: a `pulumi up` after a blue/green release must
not route traffic back.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import machinelearningservices as ml

from infra.components.common import child
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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:endpoints:Endpoints", name, None, opts)
        cfg, tags = settings.endpoints, settings.all_tags
        on_kubernetes = kubernetes_compute_id is not None
        self.online = ml.OnlineEndpoint(
            f"{name}-online",
            endpoint_name=cfg.online_name,
            resource_group_name=resource_group_name,
            workspace_name=workspace_name,
            location=settings.location,
            kind="Kubernetes" if on_kubernetes else "Managed",
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=cfg.online_auth_mode_arm,
                compute=kubernetes_compute_id,
                description=f"Diabetes model, {settings.environment} (deployments by the release)",
                # Kubernetes endpoints are reached through the router, not this switch.
                public_network_access=None
                if on_kubernetes
                else ("Enabled" if settings.network.public_network_access else "Disabled"),
            ),
            tags=tags,
            opts=child(
                self,
                depends_on=depends_on,
                ignore_changes=["properties.traffic", "properties.mirrorTraffic"],
            ),
        )
        self.batch = ml.BatchEndpoint(
            f"{name}-batch",
            endpoint_name=cfg.batch_name,
            resource_group_name=resource_group_name,
            workspace_name=workspace_name,
            location=settings.location,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=ml.BatchEndpointPropertiesArgs(
                auth_mode="AADToken",
                description=f"Diabetes batch scoring, {settings.environment}",
            ),
            tags=tags,
            opts=child(self, depends_on=depends_on, ignore_changes=["properties.defaults"]),
        )
        self.online_principal_id = self.online.identity.apply(
            lambda identity: identity.principal_id if identity else ""
        )
        self.register_outputs(
            {"online_endpoint": self.online.name, "batch_endpoint": self.batch.name}
        )
