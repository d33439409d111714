"""The Azure ML registry shared by dev, qa and prod.

A model is trained and gated once, registered here, and promoted to qa and prod from the
same registry instead of being retrained per environment. One stack owns it
(`modelRegistry.create: true`, dev by default); the others look it up by name, which
fails at preview if the owning stack has not been deployed yet. The owner keeps the
registry and its resource group on `pulumi destroy` (`retain_on_delete`): destroying dev
must not delete the models prod runs, and a CanNotDelete lock guards the registry.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import resources

from infra.components.common import child, delete_lock
from infra.settings import Settings


class ModelRegistry(pulumi.ComponentResource):
    """Creates the shared registry (owner stack) or references it (other stacks)."""

    registry_id: pulumi.Output[str]
    registry_name: pulumi.Output[str]
    resource_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:registry:ModelRegistry", name, None, opts)
        reg = settings.model_registry
        if reg.create:
            group = resources.ResourceGroup(
                f"{name}-rg",
                resource_group_name=reg.resource_group,
                location=reg.location,
                tags={**settings.all_tags, "environment": "shared"},
                opts=child(self, retain_on_delete=True),
            )
            regions = [reg.location, *reg.replication_locations]
            registry = ml.Registry(
                name,
                registry_name=reg.name,
                resource_group_name=group.name,
                location=reg.location,
                identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
                sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
                public_network_access="Enabled",
                region_details=[
                    ml.RegistryRegionArmDetailsArgs(
                        location=region,
                        acr_details=[
                            ml.AcrDetailsArgs(
                                system_created_acr_account=ml.SystemCreatedAcrAccountArgs(
                                    acr_account_sku="Premium"
                                )
                            )
                        ],
                        storage_account_details=[
                            ml.StorageAccountDetailsArgs(
                                system_created_storage_account=ml.SystemCreatedStorageAccountArgs(
                                    storage_account_type=reg.storage_sku,
                                    storage_account_hns_enabled=False,
                                    allow_blob_public_access=False,
                                )
                            )
                        ],
                    )
                    for region in regions
                ],
                tags={**settings.all_tags, "environment": "shared"},
                opts=child(self, retain_on_delete=True),
            )
            # Prod serves models from it: it must not go by accident.
            delete_lock(
                f"{name}-lock",
                parent=self,
                scope=registry.id,
                why="shared model registry used by every environment: remove this lock first",
            )
            self.registry_id = registry.id
            self.registry_name = registry.name
            self.resource_group_name = group.name
        else:
            found = ml.get_registry_output(
                registry_name=reg.name,
                resource_group_name=reg.resource_group,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            self.registry_id = found.id
            self.registry_name = found.name
            self.resource_group_name = pulumi.Output.from_input(reg.resource_group)
        self.register_outputs(
            {"registry_id": self.registry_id, "registry_name": self.registry_name}
        )
