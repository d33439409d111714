"""The offline plan: every resource a stack would create, with its key settings.

`pulumi preview` is the live equivalent; this one runs without Azure or the Pulumi CLI,
from the offline recording (`infra.tooling.recording`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from infra.tooling.recording import PLACEHOLDER_PREFIX, RecordedResource

MASK = "[secret]"

# Key settings shown in the tree, per type: (label, input path).
KEY_SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "azure-native:resources:ResourceGroup": (("location", "location"),),
    "azure-native:storage:StorageAccount": (
        ("sku", "sku.name"),
        ("https only", "enableHttpsTrafficOnly"),
        ("tls", "minimumTlsVersion"),
        ("public blobs", "allowBlobPublicAccess"),
        ("public network", "publicNetworkAccess"),
        ("default action", "networkRuleSet.defaultAction"),
    ),
    "azure-native:keyvault:Vault": (
        ("rbac", "properties.enableRbacAuthorization"),
        ("purge protection", "properties.enablePurgeProtection"),
        ("soft delete days", "properties.softDeleteRetentionInDays"),
        ("public network", "properties.publicNetworkAccess"),
    ),
    "azure-native:keyvault:Secret": (
        ("content type", "properties.contentType"),
        ("expires", "properties.attributes.expires"),
    ),
    "azure-native:containerregistry:Registry": (
        ("sku", "sku.name"),
        ("admin user", "adminUserEnabled"),
        ("public network", "publicNetworkAccess"),
        ("quarantine", "policies.quarantinePolicy.status"),
    ),
    "azure-native:machinelearningservices:Workspace": (
        ("identity", "identity.type"),
        ("v1 legacy", "v1LegacyMode"),
        ("public network", "publicNetworkAccess"),
        ("managed network", "managedNetwork.isolationMode"),
    ),
    "azure-native:machinelearningservices:Compute": (
        ("type", "properties.computeType"),
        ("vm", "properties.properties.vmSize"),
        ("nodes", "properties.properties.scaleSettings.minNodeCount"),
        ("max nodes", "properties.properties.scaleSettings.maxNodeCount"),
        ("namespace", "properties.properties.namespace"),
        ("local auth off", "properties.disableLocalAuth"),
    ),
    "azure-native:containerservice:ManagedCluster": (
        ("tier", "sku.tier"),
        ("upgrade", "autoUpgradeProfile.upgradeChannel"),
        ("network policy", "networkProfile.networkPolicy"),
        ("azure rbac", "aadProfile.enableAzureRBAC"),
        ("authorized ranges", "apiServerAccessProfile.authorizedIPRanges"),
    ),
    "azure-native:kubernetesconfiguration:Extension": (
        ("type", "extensionType"),
        ("router", "configurationSettings.inferenceRouterServiceType"),
        ("http allowed", "configurationSettings.allowInsecureConnections"),
        ("router HA", "configurationSettings.inferenceRouterHA"),
        ("ssl cname", "configurationSettings.sslCname"),
    ),
    "azure-native:machinelearningservices:OnlineEndpoint": (
        ("kind", "kind"),
        ("auth", "properties.authMode"),
    ),
    "azure-native:machinelearningservices:BatchEndpoint": (("auth", "properties.authMode"),),
    "azure-native:containerinstance:ContainerGroup": (
        ("ip", "ipAddress.type"),
        ("restart", "restartPolicy"),
        ("dns label", "ipAddress.dnsNameLabel"),
    ),
    "azure-native:authorization:RoleAssignment": (
        ("principal type", "principalType"),
        ("why", "description"),
    ),
    "azure-native:applicationinsights:Component": (("mode", "ingestionMode"),),
    "azure-native:operationalinsights:Workspace": (("retention days", "retentionInDays"),),
    "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM": (
        ("auth", "serviceEndpointAuthenticationScheme"),
    ),
    "azuredevops:index/checkBranchControl:CheckBranchControl": (
        ("branches", "allowedBranches"),
        ("verify protection", "verifyBranchProtection"),
    ),
    "azuredevops:index/branchPolicyBuildValidation:BranchPolicyBuildValidation": (
        ("blocking", "blocking"),
        ("paths", "settings.filenamePatterns"),
    ),
    "azuredevops:index/branchPolicyMinReviewers:BranchPolicyMinReviewers": (
        ("reviewers", "settings.reviewerCount"),
    ),
    "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType": (
        ("cpu", "spec.resources.requests.cpu"),
        ("memory", "spec.resources.requests.memory"),
    ),
}


def azure_name(resource: RecordedResource) -> str:
    """The name the resource gets in Azure or Kubernetes (falls back to the logical name)."""
    from infra.devops.settings import ROLE_NAMES
    from infra.policies import ALLOWED_ROLES
    from infra.tooling.arm import SPECS

    inputs = resource.inputs
    if resource.type.startswith("azuredevops:"):
        for key in ("name", "serviceEndpointName", "displayName", "settings.displayName"):
            if isinstance(resource.get(key), str):
                return str(resource.get(key))
        return resource.name
    if resource.type.startswith("kubernetes:"):
        return str(resource.get("metadata.name", resource.name))
    if resource.type == "azure-native:authorization:RoleAssignment":
        guid = str(inputs.get("roleDefinitionId", "")).rsplit("/")[-1]
        role = ALLOWED_ROLES.get(guid) or ROLE_NAMES.get(guid, guid)
        return f"{role} on {str(inputs.get('scope', '')).rsplit('/', 1)[-1]}"
    if resource.type == "azure-native:monitor:DiagnosticSetting":
        return f"{inputs.get('name')} for {str(inputs.get('resourceUri', '')).rsplit('/', 1)[-1]}"
    if resource.type == "azure-native:resources:ResourceGroup":
        return str(inputs.get("resourceGroupName", resource.name))
    spec = SPECS.get(resource.type)
    if spec is not None:
        try:
            return spec.name.format_map(dict(inputs)).rsplit("/", 1)[-1]
        except KeyError:
            return resource.name
    return resource.name


def short_type(type_token: str) -> str:
    """`azure-native:storage:StorageAccount` -> `storage:StorageAccount`."""
    parts = type_token.split(":")
    return ":".join(parts[1:]) if parts[0] in ("azure-native", "kubernetes") else type_token


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def key_settings(resource: RecordedResource) -> list[tuple[str, str]]:
    """(label, value) pairs shown for a resource in the tree."""
    shown = []
    for label, path in KEY_SETTINGS.get(resource.type, ()):
        value = resource.get(path)
        if label == "expires" and isinstance(value, int | float):
            value = dt.datetime.fromtimestamp(value, dt.UTC).date().isoformat()
        if value is not None and value != "":
            shown.append((label, _show(_clean(value, resource))))
    return shown


def _is_secret_value(value: str) -> bool:
    return value.startswith(PLACEHOLDER_PREFIX)


def _clean(value: Any, resource: RecordedResource) -> Any:
    """Integers back from the float wire format; secret values masked."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _is_secret_value(value):
        return MASK
    if isinstance(value, Mapping):
        return {k: _clean(v, resource) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, resource) for v in value]
    return value


def _redacted(resource: RecordedResource) -> dict[str, Any]:
    inputs = {}
    for key, value in sorted(resource.inputs.items()):
        cleaned = _clean(value, resource)
        # A secret property whose secret leaf we cannot tell apart is masked whole.
        if key in resource.secret_inputs and cleaned == value:
            cleaned = MASK
        inputs[key] = cleaned
    return inputs


class RecordedGraph(Protocol):
    """What the plan reads: a platform stack's recording or the Azure DevOps stack's."""

    @property
    def stack(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def resources(self) -> list[RecordedResource]: ...
    @property
    def outputs(self) -> dict[str, Any]: ...
    @property
    def secret_outputs(self) -> frozenset[str]: ...
    @property
    def by_urn(self) -> dict[str, RecordedResource]: ...


def plan_json(recorded: RecordedGraph) -> dict[str, Any]:
    """The plan as data: every resource with its type, names, parent and inputs."""
    by_urn = recorded.by_urn
    resources = []
    for resource in recorded.resources:
        parent = by_urn.get(resource.parent)
        resources.append(
            {
                "type": resource.type,
                "name": resource.name,
                "azure_name": azure_name(resource),
                "component": parent.name if parent else None,
                "kind": "component" if resource.is_component else "resource",
                "inputs": {} if resource.is_component else _redacted(resource),
                "secret_inputs": sorted(resource.secret_inputs),
                "depends_on": sorted(
                    by_urn[urn].name for urn in resource.dependencies if urn in by_urn
                ),
            }
        )
    return {
        "stack": recorded.stack,
        "environment": recorded.environment,
        "resource_count": sum(1 for r in recorded.resources if r.custom),
        "resources": resources,
        "outputs": {
            key: MASK if key in recorded.secret_outputs else value
            for key, value in sorted(recorded.outputs.items())
        },
    }


def tree_rows(recorded: RecordedGraph) -> list[tuple[int, RecordedResource]]:
    """(depth, resource) in tree order: top-level resources, then components and children."""
    children: dict[str, list[RecordedResource]] = {}
    for resource in recorded.resources:
        children.setdefault(resource.parent, []).append(resource)
    for group in children.values():
        group.sort(key=lambda r: (r.is_component, r.type, r.name))
    known = {r.urn for r in recorded.resources}
    roots = [r for r in recorded.resources if r.parent not in known]
    roots.sort(key=lambda r: (r.is_component, r.type, r.name))
    rows: list[tuple[int, RecordedResource]] = []

    def walk(resource: RecordedResource, depth: int) -> None:
        rows.append((depth, resource))
        for child in children.get(resource.urn, []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return rows
