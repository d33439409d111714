"""The AML compute cluster that training jobs run on.

It scales to zero when idle (`minNodes: 0` in every stack file), authenticates with its
own managed identity (local auth, i.e. SSH users and keys, off), and has no public SSH port.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import machinelearningservices as ml

from infra.components.common import child
from infra.settings import Settings


class TrainingCompute(pulumi.ComponentResource):
    """One AmlCompute cluster attached to the workspace."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        workspace_name: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:training:TrainingCompute", name, None, opts)
        training = settings.training
        # Without a managed network the nodes need public IPs to reach Azure ML.
        isolated = settings.network.workspace_isolation_mode != "Disabled"
        self.compute = ml.Compute(
            f"{name}-cluster",
            compute_name=training.compute_name,
            resource_group_name=resource_group_name,
            workspace_name=workspace_name,
            location=settings.location,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                description="Training cluster; scales to zero when idle",
                disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=training.vm_size,
                    vm_priority=training.vm_priority,
                    os_type="Linux",
                    enable_node_public_ip=not isolated,
                    remote_login_port_public_access="Disabled",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=training.min_nodes,
                        max_node_count=training.max_nodes,
                        node_idle_time_before_scale_down=(
                            f"PT{training.idle_seconds_before_scale_down}S"
                        ),
                    ),
                ),
            ),
            tags=settings.all_tags,
            opts=child(self),
        )
        self.compute_name = self.compute.name
        self.principal_id = self.compute.identity.apply(
            lambda identity: identity.principal_id if identity else ""
        )
        self.register_outputs({"compute_name": self.compute_name})
