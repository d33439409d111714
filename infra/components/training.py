"""The AML compute cluster that training jobs run on.

It scales to zero when idle (`minNodes: 0` in every stack file), authenticates with its
own user-assigned identity (local auth, i.e. SSH users and keys, off), and has no public
SSH port. The identity mounts storage and pulls images for the job ("the system uses the
default managed identity to set up the user's storage mounts, container registry and
datastores", Learn "how-to-identity-based-service-authentication", Compute cluster), so it
holds AcrPull on the ACR and Storage Blob Data Contributor on storage (jobs write outputs),
both granted before the cluster exists. Jobs find it through DEFAULT_IDENTITY_CLIENT_ID.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import machinelearningservices as ml

from infra.components.common import ClientConfig, UserIdentity, child
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
        client: ClientConfig,
        acr_id: pulumi.Input[str],
        storage_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str] | None = None,
        private_link: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:training:TrainingCompute", name, None, opts)
        training = settings.training
        self.identity = UserIdentity(
            f"{name}-identity",
            parent=self,
            client=client,
            resource_name=settings.names.training_identity,
            resource_group_name=resource_group_name,
            location=settings.location,
            tags=settings.all_tags,
            grants=[
                ("acr-pull", "AcrPull", acr_id, "Training nodes pull job images"),
                ("blob", "Storage Blob Data Contributor", storage_id,
                 "Training jobs read data and write outputs"),
            ],
        )  # fmt: skip
        # In a managed network or in our VNet (with the workspace behind a private endpoint
        # and a NAT gateway for outbound) the nodes need no public IPs; otherwise they do.
        isolated = settings.network.managed_network or subnet_id is not None
        self.compute = ml.Compute(
            f"{name}-cluster",
            compute_name=training.compute_name,
            resource_group_name=resource_group_name,
            workspace_name=workspace_name,
            location=settings.location,
            identity=self.identity.azureml_identity(),
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                description="Training cluster; scales to zero when idle",
                disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=training.vm_size,
                    vm_priority=training.vm_priority,
                    os_type="Linux",
                    enable_node_public_ip=not isolated,
                    subnet=ml.ResourceIdArgs(id=subnet_id) if subnet_id is not None else None,
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
            opts=child(self, depends_on=[*self.identity.grants, *(private_link or [])]),
        )
        self.compute_name = self.compute.name
        self.principal_id = self.identity.principal_id
        # Exported so a pipeline job can name this identity explicitly: azure-ai-ml's
        # `ManagedIdentityConfiguration(client_id=..., resource_id=...)`
        # (azure/ai/ml/entities/_credentials.py).
        self.identity_client_id = self.identity.client_id
        self.identity_id = self.identity.id
        self.register_outputs(
            {
                "compute_name": self.compute_name,
                "identity_client_id": self.identity_client_id,
                "identity_id": self.identity_id,
            }
        )
