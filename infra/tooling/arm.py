"""Write the recorded Azure resources as an ARM template, so checkov can scan them.

Checkov has no Pulumi framework, but it scans ARM templates. Each azure-native resource
maps to an ARM resource: the provider type and API version the SDK uses, the name (with
parent names for child resources), top-level `location`, `sku`, `identity`, `kind`,
`tags`, and every other input under `properties`. Where the SDK renamed an ARM property
(storage `networkRuleSet` is ARM `networkAcls`; a secret's `expires` is ARM `exp`) the
export uses the ARM name, because that is what the checks read. Path parameters
(resource group, parent names) are dropped; secret values are replaced by parameter
references. Kubernetes objects and Pulumi components are not Azure resources and are
left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.tooling.recording import RecordedResource, RecordedStack

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
TOP_LEVEL = frozenset({"location", "tags", "sku", "identity", "kind", "zones", "extendedLocation"})


@dataclass(frozen=True)
class ArmSpec:
    """How one Pulumi type maps to ARM."""

    arm_type: str
    api_version: str
    name: str  # format string over the inputs, e.g. "{vaultName}/{secretName}"
    drop: frozenset[str] = frozenset()
    top_level: frozenset[str] = TOP_LEVEL
    renames: Mapping[str, str] = field(default_factory=dict)
    scope: str | None = None  # input holding the scope of an extension resource


def _spec(arm_type: str, api: str, name: str, *drop: str, **kwargs: Any) -> ArmSpec:
    return ArmSpec(arm_type, api, name, frozenset({"resourceGroupName", *drop}), **kwargs)


# API versions are the defaults of the installed pulumi-azure-native (a test keeps them in
# step with the SDK).
SPECS: dict[str, ArmSpec] = {
    "azure-native:storage:StorageAccount": _spec(
        "Microsoft.Storage/storageAccounts",
        "2024-01-01",
        "{accountName}",
        "accountName",
        renames={
            "enableHttpsTrafficOnly": "supportsHttpsTrafficOnly",
            "networkRuleSet": "networkAcls",
        },
    ),
    "azure-native:storage:BlobContainer": _spec(
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "2024-01-01",
        "{accountName}/default/{containerName}",
        "accountName",
        "containerName",
    ),
    "azure-native:keyvault:Vault": _spec(
        "Microsoft.KeyVault/vaults", "2024-11-01", "{vaultName}", "vaultName"
    ),
    "azure-native:keyvault:Secret": _spec(
        "Microsoft.KeyVault/vaults/secrets",
        "2024-11-01",
        "{vaultName}/{secretName}",
        "vaultName",
        "secretName",
        renames={"expires": "exp", "notBefore": "nbf"},
    ),
    "azure-native:operationalinsights:Workspace": _spec(
        "Microsoft.OperationalInsights/workspaces",
        "2023-09-01",
        "{workspaceName}",
        "workspaceName",
        top_level=frozenset({"location", "tags", "identity"}),
    ),
    "azure-native:applicationinsights:Component": _spec(
        "Microsoft.Insights/components",
        "2020-02-02",
        "{resourceName}",
        "resourceName",
        renames={
            "applicationType": "Application_Type",
            "flowType": "Flow_Type",
            "requestSource": "Request_Source",
            "workspaceResourceId": "WorkspaceResourceId",
            "ingestionMode": "IngestionMode",
            "retentionInDays": "RetentionInDays",
            "disableLocalAuth": "DisableLocalAuth",
        },
    ),
    "azure-native:containerregistry:Registry": _spec(
        "Microsoft.ContainerRegistry/registries",
        "2023-01-01-preview",
        "{registryName}",
        "registryName",
    ),
    "azure-native:machinelearningservices:Workspace": _spec(
        "Microsoft.MachineLearningServices/workspaces",
        "2025-12-01",
        "{workspaceName}",
        "workspaceName",
    ),
    "azure-native:machinelearningservices:Compute": _spec(
        "Microsoft.MachineLearningServices/workspaces/computes",
        "2025-12-01",
        "{workspaceName}/{computeName}",
        "workspaceName",
        "computeName",
    ),
    "azure-native:machinelearningservices:OnlineEndpoint": _spec(
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
        "2025-12-01",
        "{workspaceName}/{endpointName}",
        "workspaceName",
        "endpointName",
    ),
    "azure-native:machinelearningservices:BatchEndpoint": _spec(
        "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
        "2025-12-01",
        "{workspaceName}/{endpointName}",
        "workspaceName",
        "endpointName",
    ),
    "azure-native:machinelearningservices:Registry": _spec(
        "Microsoft.MachineLearningServices/registries",
        "2025-12-01",
        "{registryName}",
        "registryName",
    ),
    "azure-native:containerservice:ManagedCluster": _spec(
        "Microsoft.ContainerService/managedClusters",
        "2025-09-01",
        "{resourceName}",
        "resourceName",
    ),
    "azure-native:kubernetesconfiguration:Extension": _spec(
        "Microsoft.KubernetesConfiguration/extensions",
        "2023-05-01",
        "{extensionName}",
        "extensionName",
        "clusterRp",
        "clusterResourceName",
        "clusterName",
        top_level=frozenset({"identity", "plan"}),
        scope="clusterName",
    ),
    "azure-native:containerinstance:ContainerGroup": _spec(
        "Microsoft.ContainerInstance/containerGroups",
        "2024-05-01-preview",
        "{containerGroupName}",
        "containerGroupName",
    ),
    "azure-native:authorization:RoleAssignment": _spec(
        "Microsoft.Authorization/roleAssignments",
        "2022-04-01",
        "{roleAssignmentName}",
        "roleAssignmentName",
        "scope",
        top_level=frozenset(),
        scope="scope",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": _spec(
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "2023-01-31",
        "{resourceName}",
        "resourceName",
    ),
    "azure-native:authorization:ManagementLockByScope": _spec(
        "Microsoft.Authorization/locks",
        "2020-05-01",
        "{lockName}",
        "lockName",
        "scope",
        top_level=frozenset(),
        scope="scope",
    ),
    "azure-native:monitor:DiagnosticSetting": _spec(
        "Microsoft.Insights/diagnosticSettings",
        "2021-05-01-preview",
        "{name}",
        "name",
        "resourceUri",
        top_level=frozenset(),
        scope="resourceUri",
    ),
    "azure-native:network:VirtualNetwork": _spec(
        "Microsoft.Network/virtualNetworks",
        "2024-05-01",
        "{virtualNetworkName}",
        "virtualNetworkName",
    ),
    "azure-native:network:Subnet": _spec(
        "Microsoft.Network/virtualNetworks/subnets",
        "2024-05-01",
        "{virtualNetworkName}/{subnetName}",
        "virtualNetworkName",
        "subnetName",
    ),
    "azure-native:network:PrivateEndpoint": _spec(
        "Microsoft.Network/privateEndpoints",
        "2024-05-01",
        "{privateEndpointName}",
        "privateEndpointName",
    ),
    "azure-native:network:PrivateDnsZoneGroup": _spec(
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        "2024-05-01",
        "{privateEndpointName}/{privateDnsZoneGroupName}",
        "privateEndpointName",
        "privateDnsZoneGroupName",
    ),
    "azure-native:privatedns:PrivateZone": _spec(
        "Microsoft.Network/privateDnsZones",
        "2024-06-01",
        "{privateZoneName}",
        "privateZoneName",
    ),
    "azure-native:network:NatGateway": _spec(
        "Microsoft.Network/natGateways", "2024-05-01", "{natGatewayName}", "natGatewayName"
    ),
    "azure-native:network:PublicIPAddress": _spec(
        "Microsoft.Network/publicIPAddresses",
        "2024-05-01",
        "{publicIpAddressName}",
        "publicIpAddressName",
    ),
    "azure-native:containerservice:TrustedAccessRoleBinding": _spec(
        "Microsoft.ContainerService/managedClusters/trustedAccessRoleBindings",
        "2025-09-01",
        "{resourceName}/{trustedAccessRoleBindingName}",
        "resourceName",
        "trustedAccessRoleBindingName",
    ),
    "azure-native:monitor:DataCollectionRule": _spec(
        "Microsoft.Insights/dataCollectionRules",
        "2022-06-01",
        "{dataCollectionRuleName}",
        "dataCollectionRuleName",
    ),
    "azure-native:monitor:DataCollectionRuleAssociation": _spec(
        "Microsoft.Insights/dataCollectionRuleAssociations",
        "2022-06-01",
        "{associationName}",
        "associationName",
        "resourceUri",
        top_level=frozenset(),
        scope="resourceUri",
    ),
    "azure-native:privatedns:VirtualNetworkLink": _spec(
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "2024-06-01",
        "{privateZoneName}/{virtualNetworkLinkName}",
        "privateZoneName",
        "virtualNetworkLinkName",
    ),
}
SKIPPED_AZURE_TYPES = frozenset({"azure-native:resources:ResourceGroup"})
"""Deployment scopes rather than resources of a resource-group template."""


def _rename(value: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping):
        return {renames.get(k, k): _rename(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(item, renames) for item in value]
    return value


def _redact(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(item, secrets) for item in value]
    if isinstance(value, str) and value in secrets:
        return "[parameters('secretValue')]"
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the mock wire format turns every number into a float
    return value


def arm_resource(resource: RecordedResource, secrets: frozenset[str]) -> dict[str, Any] | None:
    """The ARM form of one recorded resource, or None for non-Azure resources."""
    spec = SPECS.get(resource.type)
    if spec is None:
        return None
    inputs = _redact(_rename(dict(resource.inputs), spec.renames), secrets)
    arm: dict[str, Any] = {
        "type": spec.arm_type,
        "apiVersion": spec.api_version,
        "name": spec.name.format_map(inputs),
    }
    if spec.scope:
        scope = inputs[spec.scope]
        if spec.scope == "clusterName":
            scope = f"Microsoft.ContainerService/managedClusters/{scope}"
        arm["scope"] = scope
    properties: dict[str, Any] = {}
    for key, value in inputs.items():
        if key in spec.drop:
            continue
        if key in spec.top_level:
            arm[key] = value
        elif key == "properties" and isinstance(value, Mapping):
            properties.update(value)
        else:
            properties[key] = value
    arm["properties"] = properties
    arm["metadata"] = {"pulumi": {"urn": resource.urn, "type": resource.type}}
    return arm


def to_arm_template(recorded: RecordedStack) -> dict[str, Any]:
    """An ARM deployment template with every Azure resource of the stack."""
    secrets = frozenset(recorded.placeholders.values()) | frozenset(
        value
        for resource in recorded
        for key in resource.secret_inputs
        for value in _strings(resource.inputs.get(key))
        if value.startswith("offline-placeholder-")
    )
    unknown = sorted(
        {
            r.type
            for r in recorded
            if r.custom
            and r.type.startswith("azure-native:")
            and r.type not in SPECS
            and r.type not in SKIPPED_AZURE_TYPES
        }
    )
    if unknown:
        raise ValueError(
            f"No ARM mapping for {', '.join(unknown)}; add it to infra/tooling/arm.py."
        )
    resources = [arm for r in recorded if (arm := arm_resource(r, secrets)) is not None]
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"generator": "mlops infra check", "stack": recorded.stack},
        "parameters": {"secretValue": {"type": "securestring"}},
        "resources": resources,
    }


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def write_arm_template(recorded: RecordedStack, path: Path) -> Path:
    """Write the stack's ARM template to `path` (a `.json` file) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_arm_template(recorded), indent=2, sort_keys=False) + "\n")
    return path
