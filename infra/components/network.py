"""Private network of an environment: VNet, subnets, private DNS zones, private endpoints.

Created when `network.privateNetwork` is on (prod). This is the customer-VNet pattern
Azure ML documents for bring-your-own AKS (a managed network does not support Kubernetes
compute: Learn, "how-to-managed-network", Limitations): AKS nodes live in the AKS subnet,
the training cluster in the training subnet, and storage (blob, file), Key Vault, ACR and
the workspace get private endpoints in the endpoint subnet of the same VNet, resolved
through the private DNS zones linked to it. With public access disabled this is the only
path to them, so pipelines need an agent inside (or peered with) the VNet.

The training cluster has no public IPs; Learn ("how-to-secure-training-vnet", No public IP)
says such a cluster has no internet outbound unless the subnet routes to a public IP, "for
example ... Virtual Network NAT with a public IP", so its subnet gets a NAT gateway. Its
inbound needs (VirtualNetwork to VirtualNetwork on 29876-29877, AzureLoadBalancer on 44224)
are covered by the default NSG rules, so no NSG is added.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import network, privatedns

from infra.components.common import child
from infra.settings import Settings

# Private DNS zone per private-link group, as Azure documents them (public cloud).
ZONES: dict[str, tuple[str, ...]] = {
    "amlworkspace": ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"),
    "blob": ("privatelink.blob.core.windows.net",),
    "file": ("privatelink.file.core.windows.net",),
    "vault": ("privatelink.vaultcore.azure.net",),
    "registry": ("privatelink.azurecr.io",),
}


class Network(pulumi.ComponentResource):
    """VNet with an AKS subnet, a private-endpoint subnet and (for private ACI) an ACI subnet."""

    aks_subnet_id: pulumi.Output[str]
    private_endpoint_subnet_id: pulumi.Output[str]
    aci_subnet_id: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        settings: Settings,
        resource_group_name: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:network:Network", name, None, opts)
        net = settings.network
        self._settings = settings
        self._resource_group_name = resource_group_name
        tags = settings.all_tags

        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=settings.names.vnet,
            resource_group_name=resource_group_name,
            location=settings.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[net.address_space]),
            tags=tags,
            # Subnets are separate resources; without this every VNet update would
            # try to remove them.
            opts=child(self, ignore_changes=["subnets"]),
        )
        self.vnet_id = vnet.id
        aks_subnet = network.Subnet(
            f"{name}-aks",
            subnet_name="snet-aks",
            resource_group_name=resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=net.aks_subnet,
            opts=child(self),
        )
        pe_subnet = network.Subnet(
            f"{name}-private-endpoints",
            subnet_name="snet-private-endpoints",
            resource_group_name=resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=net.private_endpoint_subnet,
            private_endpoint_network_policies="Disabled",
            # Subnet writes on one VNet must not run in parallel.
            opts=child(self, depends_on=[aks_subnet]),
        )
        nat_ip = network.PublicIPAddress(
            f"{name}-nat-ip",
            public_ip_address_name=f"pip-{settings.names.vnet}-nat",
            resource_group_name=resource_group_name,
            location=settings.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard"),
            public_ip_allocation_method="Static",
            tags=tags,
            opts=child(self),
        )
        nat = network.NatGateway(
            f"{name}-nat",
            nat_gateway_name=f"ng-{settings.names.vnet}",
            resource_group_name=resource_group_name,
            location=settings.location,
            sku=network.NatGatewaySkuArgs(name="Standard"),
            public_ip_addresses=[network.SubResourceArgs(id=nat_ip.id)],
            tags=tags,
            opts=child(self),
        )
        training_subnet = network.Subnet(
            f"{name}-training",
            subnet_name="snet-training",
            resource_group_name=resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=net.training_subnet,
            nat_gateway=network.SubResourceArgs(id=nat.id),
            opts=child(self, depends_on=[pe_subnet]),
        )
        self.aks_subnet_id = aks_subnet.id
        self.private_endpoint_subnet_id = pe_subnet.id
        self.training_subnet_id = training_subnet.id
        self.aci_subnet_id = None
        if settings.aci.enabled and not settings.aci.public:
            aci_subnet = network.Subnet(
                f"{name}-aci",
                subnet_name="snet-aci",
                resource_group_name=resource_group_name,
                virtual_network_name=vnet.name,
                address_prefix=net.aci_subnet,
                delegations=[
                    network.DelegationArgs(
                        name="aci", service_name="Microsoft.ContainerInstance/containerGroups"
                    )
                ],
                opts=child(self, depends_on=[training_subnet]),
            )
            self.aci_subnet_id = aci_subnet.id

        self.zone_ids: dict[str, pulumi.Output[str]] = {}
        for zone_name in sorted({zone for zones in ZONES.values() for zone in zones}):
            key = zone_name.removeprefix("privatelink.").split(".")[0]
            zone = privatedns.PrivateZone(
                f"{name}-zone-{key}",
                private_zone_name=zone_name,
                resource_group_name=resource_group_name,
                location="global",
                tags=tags,
                opts=child(self),
            )
            privatedns.VirtualNetworkLink(
                f"{name}-zone-{key}-link",
                virtual_network_link_name=f"link-{settings.names.vnet}",
                private_zone_name=zone.name,
                resource_group_name=resource_group_name,
                location="global",
                virtual_network=privatedns.SubResourceArgs(id=vnet.id),
                registration_enabled=False,
                tags=tags,
                opts=child(self),
            )
            self.zone_ids[zone_name] = zone.id

        self.register_outputs(
            {
                "vnet_id": vnet.id,
                "aks_subnet_id": self.aks_subnet_id,
                "private_endpoint_subnet_id": self.private_endpoint_subnet_id,
            }
        )

    def private_endpoint(
        self,
        name: str,
        *,
        parent: pulumi.Resource,
        target_id: pulumi.Input[str],
        group_id: str,
        target_name: str,
    ) -> tuple[network.PrivateEndpoint, network.PrivateDnsZoneGroup]:
        """A private endpoint for `target_id` and the zone group holding its DNS records."""
        endpoint = network.PrivateEndpoint(
            name,
            private_endpoint_name=f"pe-{target_name}-{group_id}",
            resource_group_name=self._resource_group_name,
            location=self._settings.location,
            subnet=network.SubnetArgs(id=self.private_endpoint_subnet_id),
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name=f"{target_name}-{group_id}",
                    private_link_service_id=target_id,
                    group_ids=[group_id],
                )
            ],
            tags=self._settings.all_tags,
            opts=child(parent),
        )
        zone_group = network.PrivateDnsZoneGroup(
            f"{name}-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=self._resource_group_name,
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(
                    name=zone.replace(".", "-"), private_dns_zone_id=self.zone_ids[zone]
                )
                for zone in ZONES[group_id]
            ],
            opts=child(parent),
        )
        return endpoint, zone_group
