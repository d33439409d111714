"""The project's own policies: what checkov cannot see in an ARM export.

Checkov reads ARM resources one at a time. It cannot see Kubernetes objects, the order
Pulumi creates things in, `ignore_changes`, whether a value is a Pulumi secret, or AKS
pool settings beyond the first pool. These policies can. The same functions serve
`mlops infra check` (on the offline recording) and the CrossGuard policy pack in
`infra/policy_pack/` (on a live `pulumi preview --policy-pack`), so they depend on the
standard library, `infra.naming` and `infra.addresses` only.

A resource policy gets a `PolicyResource` and the environment (dev, qa, prod) and yields
violation messages; a stack policy gets every resource and yields (urn, message) pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.addresses import is_documentation_range
from infra.naming import name_problem

ENVIRONMENTS = ("dev", "qa", "prod")
REQUIRED_TAGS = ("environment", "managed-by", "project")

# Built-in roles the platform may assign (role definition GUID -> name). Anything else,
# Owner and Contributor above all, is a violation.
ALLOWED_ROLES: dict[str, str] = {
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "b556d68e-0be0-4f35-a333-ad7ee1ce17ea": "Azure AI Enterprise Network Connection Approver",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "8311e382-0749-4cb8-b61a-304f252e45ec": "AcrPush",
    "c8d4ff99-41c3-41a8-9f60-21dfdad59608": "AcrQuarantineWriter",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "1823dd4f-9b8c-4ab6-ab4e-7397a3684615": "AzureML Registry User",
    "f6c7c914-8db3-469d-8ca1-694a8f32e121": "AzureML Data Scientist",
    "4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",
}
# Which kind of resource each role may be granted on (the last provider segment of the
# scope), so AcrPull on a storage account, say, is caught too.
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    # The resources Learn lists for a user-assigned workspace identity
    # ("how-to-identity-based-service-authentication"); `mlops-workspace-only-roles`
    # checks that only that identity holds these two roles.
    "Contributor": (
        "Microsoft.Storage/storageAccounts",
        "Microsoft.KeyVault/vaults",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.Insights/components",
        "Microsoft.MachineLearningServices/workspaces",
    ),
    "Key Vault Administrator": ("Microsoft.KeyVault/vaults",),
    "Azure AI Enterprise Network Connection Approver": (
        "Microsoft.MachineLearningServices/registries",
    ),
    "AcrPull": ("Microsoft.ContainerRegistry/registries",),
    "AcrPush": ("Microsoft.ContainerRegistry/registries",),
    "AcrQuarantineWriter": ("Microsoft.ContainerRegistry/registries",),
    "Key Vault Secrets User": ("Microsoft.KeyVault/vaults",),
    "Storage Blob Data Reader": ("Microsoft.Storage/storageAccounts",),
    "Storage Blob Data Contributor": ("Microsoft.Storage/storageAccounts",),
    "AzureML Registry User": ("Microsoft.MachineLearningServices/registries",),
    "AzureML Data Scientist": ("Microsoft.MachineLearningServices/workspaces",),
    "Network Contributor": ("Microsoft.Network/virtualNetworks",),
}

# Resource types that carry Azure tags (a test keeps this in step with the SDK).
TAGGABLE = frozenset(
    {
        "azure-native:network:NatGateway",
        "azure-native:network:PublicIPAddress",
        "azure-native:monitor:DataCollectionRule",
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Secret",
        "azure-native:operationalinsights:Workspace",
        "azure-native:applicationinsights:Component",
        "azure-native:containerregistry:Registry",
        "azure-native:machinelearningservices:Workspace",
        "azure-native:machinelearningservices:Compute",
        "azure-native:machinelearningservices:OnlineEndpoint",
        "azure-native:machinelearningservices:BatchEndpoint",
        "azure-native:machinelearningservices:Registry",
        "azure-native:containerservice:ManagedCluster",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:containerinstance:ContainerGroup",
        "azure-native:network:VirtualNetwork",
        "azure-native:network:PrivateEndpoint",
        "azure-native:privatedns:PrivateZone",
        "azure-native:privatedns:VirtualNetworkLink",
    }
)

# (type, input path) -> naming rule; the input must be set (no auto-naming).
EXPLICIT_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "azure-native:resources:ResourceGroup": (("resourceGroupName", "resource_group"),),
    "azure-native:storage:StorageAccount": (("accountName", "storage_account"),),
    "azure-native:storage:BlobContainer": (("containerName", "blob_container"),),
    "azure-native:keyvault:Vault": (("vaultName", "key_vault"),),
    "azure-native:keyvault:Secret": (("secretName", "kv_secret"),),
    "azure-native:operationalinsights:Workspace": (("workspaceName", "log_analytics"),),
    "azure-native:applicationinsights:Component": (("resourceName", "app_insights"),),
    "azure-native:containerregistry:Registry": (("registryName", "container_registry"),),
    "azure-native:machinelearningservices:Workspace": (("workspaceName", "ml_workspace"),),
    "azure-native:machinelearningservices:Registry": (("registryName", "ml_registry"),),
    "azure-native:machinelearningservices:Compute": (("computeName", "ml_compute"),),
    "azure-native:machinelearningservices:OnlineEndpoint": (("endpointName", "ml_endpoint"),),
    "azure-native:machinelearningservices:BatchEndpoint": (("endpointName", "ml_endpoint"),),
    "azure-native:containerservice:ManagedCluster": (
        ("resourceName", "aks"),
        ("dnsPrefix", "aks_dns_prefix"),
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (("resourceName", "identity"),),
    "azure-native:containerinstance:ContainerGroup": (("containerGroupName", "container_group"),),
    "azure-native:network:VirtualNetwork": (("virtualNetworkName", "vnet"),),
    "kubernetes:core/v1:Namespace": (("metadata.name", "k8s_name"),),
    "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType": (("metadata.name", "k8s_name"),),
}

EXTENSION = "azure-native:kubernetesconfiguration:Extension"
INSTANCE_TYPE = "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType"
NAMESPACE = "kubernetes:core/v1:Namespace"
COMPUTE = "azure-native:machinelearningservices:Compute"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
ONLINE_ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
BATCH_ENDPOINT = "azure-native:machinelearningservices:BatchEndpoint"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
USER_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
WORKSPACE_ONLY_ROLES = frozenset({"Contributor", "Key Vault Administrator"})
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
DNS_ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
DCR = "azure-native:monitor:DataCollectionRule"
DCR_ASSOCIATION = "azure-native:monitor:DataCollectionRuleAssociation"
AZUREML_TAINT = "ml.azure.com/amlarc=true:NoSchedule"
LOCK = "azure-native:authorization:ManagementLockByScope"
# Private-link groups the customer-VNet pattern needs (Learn, "how-to-secure-workspace-vnet").
PRIVATE_LINK_GROUPS = ("amlworkspace", "blob", "file", "vault", "registry")


@dataclass(frozen=True)
class PolicyResource:
    """What a policy sees of a resource (a subset of CrossGuard's view)."""

    resource_type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    ignore_changes: tuple[str, ...] = ()
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    # What the engine returned (offline recording only; unknown during a live preview).
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        """Property at a dotted path."""
        value: Any = self.props
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return default
            value = value[part]
        return value


ResourceCheck = Callable[[PolicyResource, str], Iterable[str]]
StackCheck = Callable[[Sequence[PolicyResource], str], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class ResourcePolicy:
    """A policy evaluated on each resource of the listed types."""

    name: str
    description: str
    types: frozenset[str]
    check: ResourceCheck
    environments: frozenset[str] = frozenset(ENVIRONMENTS)

    def evaluate(self, resource: PolicyResource, environment: str) -> list[str]:
        """Violation messages for one resource (none when the policy does not apply)."""
        if environment not in self.environments:
            return []
        if self.types and resource.resource_type not in self.types:
            return []
        return list(self.check(resource, environment))


@dataclass(frozen=True)
class StackPolicy:
    """A policy evaluated on the whole graph (ordering, relationships)."""

    name: str
    description: str
    check: StackCheck
    environments: frozenset[str] = frozenset(ENVIRONMENTS)

    def evaluate(
        self, resources: Sequence[PolicyResource], environment: str
    ) -> list[tuple[str, str]]:
        """(urn, message) for each violation."""
        if environment not in self.environments:
            return []
        return list(self.check(resources, environment))


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


# --- resource checks ---------------------------------------------------------------------


def _tags(resource: PolicyResource, environment: str) -> Iterator[str]:
    tags = resource.props.get("tags") or {}
    missing = [tag for tag in REQUIRED_TAGS if not tags.get(tag)]
    if missing:
        yield f"lacks the tags {', '.join(missing)}"
    elif tags.get("environment") not in (environment, "shared"):
        yield f"is tagged environment={tags.get('environment')} in the {environment} stack"


def _names(resource: PolicyResource, environment: str) -> Iterator[str]:
    for path, rule in EXPLICIT_NAMES.get(resource.resource_type, ()):
        name = resource.get(path)
        if not isinstance(name, str) or not name:
            yield f"has no explicit {path}: auto-generated names break Azure's limits"
            continue
        problem = name_problem(rule, name)
        if problem:
            yield problem
    if resource.resource_type == "azure-native:containerservice:ManagedCluster":
        for pool in resource.props.get("agentPoolProfiles") or []:
            problem = name_problem("aks_pool", str(pool.get("name", "")))
            if problem:
                yield problem


def _key_vault(resource: PolicyResource, environment: str) -> Iterator[str]:
    properties = resource.props.get("properties") or {}
    if properties.get("enableRbacAuthorization") is not True:
        yield "does not use RBAC authorization (access policies are not allowed)"
    if properties.get("enableSoftDelete") is False:
        yield "disables soft delete"
    if properties.get("enablePurgeProtection") is not True:
        yield "has no purge protection"
    if environment == "prod" and properties.get("publicNetworkAccess") != "Disabled":
        yield "is reachable from public networks in prod"


def _key_vault_secret(resource: PolicyResource, environment: str) -> Iterator[str]:
    if not resource.get("properties.contentType"):
        yield "has no content type"
    if not resource.get("properties.attributes.expires"):
        yield "has no expiry date"


def _storage(resource: PolicyResource, environment: str) -> Iterator[str]:
    props = resource.props
    if props.get("enableHttpsTrafficOnly") is False:
        yield "accepts plain HTTP"
    if props.get("minimumTlsVersion") != "TLS1_2":
        yield "accepts TLS older than 1.2"
    if props.get("allowBlobPublicAccess") is not False:
        yield "allows public blob access"
    rules = props.get("networkRuleSet")
    if not isinstance(rules, Mapping) or rules.get("bypass") != "AzureServices":
        yield "has no network rules letting trusted Azure services through"
    if environment == "prod" and (
        props.get("publicNetworkAccess") != "Disabled"
        or (rules or {}).get("defaultAction") != "Deny"
    ):
        yield "is reachable from public networks in prod"


def _container_registry(resource: PolicyResource, environment: str) -> Iterator[str]:
    if resource.props.get("adminUserEnabled") is not False:
        yield "has the admin user enabled (use AcrPull/AcrPush identities)"
    if resource.props.get("anonymousPullEnabled"):
        yield "allows anonymous pulls"
    if environment == "prod" and resource.get("sku.name") != "Premium":
        yield "is not Premium in prod"
    # Azure ML pushes and pulls environment images in the workspace registry; quarantined
    # images cannot be pulled (PSRule "Azure.ACR.Quarantine"; Learn built-in roles).
    if resource.get("policies.quarantinePolicy.status") == "enabled":
        yield "quarantines images that Azure ML must pull (environment and training images)"


def _workspace(resource: PolicyResource, environment: str) -> Iterator[str]:
    if not resource.get("identity.type"):
        yield "has no managed identity"
    if resource.props.get("v1LegacyMode") is not False:
        yield "does not turn v1 legacy mode off"
    if environment == "prod" and resource.props.get("publicNetworkAccess") != "Disabled":
        yield "is reachable from public networks in prod"


def _training_compute(resource: PolicyResource, environment: str) -> Iterator[str]:
    if resource.get("properties.computeType") != "AmlCompute":
        return
    scale = resource.get("properties.properties.scaleSettings") or {}
    if scale.get("minNodeCount") not in (0, 0.0):
        yield "does not scale to zero (minNodeCount must be 0)"
    if not scale.get("nodeIdleTimeBeforeScaleDown"):
        yield "has no idle scale-down time"
    if not resource.get("identity.type"):
        yield "has no managed identity"
    if resource.get("properties.disableLocalAuth") is not True:
        yield "keeps local (SSH) authentication"
    if resource.get("properties.properties.remoteLoginPortPublicAccess") != "Disabled":
        yield "exposes the SSH port"


def _aks(resource: PolicyResource, environment: str) -> Iterator[str]:
    props = resource.props
    if resource.get("identity.type") not in ("SystemAssigned", "UserAssigned"):
        yield "has no managed identity (Azure ML does not support service principals)"
    if not _true(resource.get("aadProfile.enableAzureRBAC")) or not _true(props.get("enableRBAC")):
        yield "does not use Entra ID with Azure RBAC"
    if not resource.get("networkProfile.networkPolicy"):
        yield "has no network policy"
    if not _true(resource.get("addonProfiles.omsagent.enabled")):
        yield "has no monitoring add-on"
    if resource.get("addonProfiles.kubeDashboard.enabled") is not False:
        yield "does not disable the dashboard explicitly"
    csi = resource.get("addonProfiles.azureKeyvaultSecretsProvider.config") or {}
    rotation = csi.get("enableSecretRotation")
    if rotation is not None and str(rotation).lower() != "true":
        yield "does not rotate Secrets Store CSI secrets"
    channel = resource.get("autoUpgradeProfile.upgradeChannel")
    if not channel or channel == "none":
        yield "has no auto-upgrade channel"
    pools = props.get("agentPoolProfiles") or []
    if not any(pool.get("mode") == "System" for pool in pools):
        yield "has no system pool"
    workload_pools = [
        pool
        for pool in pools
        if pool.get("mode") == "User"
        and (pool.get("nodeLabels") or {}).get("mlops.azure.com/workload") == "azureml"
    ]
    if not workload_pools:
        yield "has no user pool labelled mlops.azure.com/workload=azureml for Azure ML"
    # Learn, "reference-kubernetes": the "amlarc overall" taint keeps other pods off.
    for pool in workload_pools:
        if AZUREML_TAINT not in (pool.get("nodeTaints") or []):
            yield f"pool {pool.get('name')} lacks the {AZUREML_TAINT} taint for Azure ML nodes"
    for pool in pools:
        name = pool.get("name")
        if pool.get("enableAutoScaling") is not True:
            yield f"pool {name} does not autoscale"
        elif (pool.get("minCount") or 0) > (pool.get("maxCount") or 0):
            yield f"pool {name} has minCount above maxCount"
        if (pool.get("maxPods") or 0) < 50:
            yield f"pool {name} allows fewer than 50 pods per node"
    if environment == "prod":
        yield from _prod_api_server(resource)


def _prod_api_server(resource: PolicyResource) -> Iterator[str]:
    """Prod API server: private, or limited to real (non-documentation) ranges.

    Azure ML reaches either through AKS trusted access (Azure/AML-Kubernetes,
    docs/azureml-aks-ta-support.md).
    """
    profile = resource.get("apiServerAccessProfile") or {}
    if _true(profile.get("enablePrivateCluster")):
        return
    ranges = profile.get("authorizedIPRanges") or []
    if not ranges:
        yield "exposes the API server to every address in prod"
    placeholders = [cidr for cidr in ranges if is_documentation_range(str(cidr))]
    if placeholders:
        yield f"authorizes documentation ranges {', '.join(placeholders)}, which no agent uses"


def _extension(resource: PolicyResource, environment: str) -> Iterator[str]:
    if str(resource.props.get("extensionType", "")).lower() != "microsoft.azureml.kubernetes":
        return
    settings = resource.props.get("configurationSettings") or {}
    for key, value in settings.items():
        if not isinstance(value, str):
            yield f"setting {key} is not a string (cluster extensions take strings only)"
    if not _true(settings.get("enableInference")):
        yield "does not enable inference"
    if not settings.get("inferenceRouterServiceType"):
        yield "has no inferenceRouterServiceType"
    insecure = _true(settings.get("allowInsecureConnections"))
    if not insecure and not (settings.get("sslCname") and settings.get("sslSecret")):
        yield "disallows HTTP but has no sslCname and sslSecret for TLS"
    yield from _router_service_keys(settings)
    if not any(key.startswith("nodeSelector.") for key in settings):
        yield "has no nodeSelector keeping Azure ML on its labelled node pool"
    if environment == "prod":
        if insecure:
            yield "allows insecure (HTTP) connections to the prod inference router"
        if not _true(settings.get("inferenceRouterHA")):
            yield "runs a single inference router replica in prod"
        service = str(settings.get("inferenceRouterServiceType", ""))
        if service == "LoadBalancer" and not _true(
            settings.get("scoringFe.serviceType.internalLoadBalancer")
        ):
            yield "puts the prod inference router on a public load balancer"


def _router_service_keys(settings: Mapping[str, Any]) -> Iterator[str]:
    """The keys the extension's CLI derives for the router's service type.

    Azure/azure-cli-extensions, src/k8s-extension/azext_k8s_extension/partner_extensions/
    AzureMLKubernetes.py, `__validate_scoring_fe_settings`: NodePort sets
    `scoringFe.serviceType.nodePort`; `internalLoadBalancerProvider=azure` sets
    `scoringFe.serviceType.internalLoadBalancer`; the two exclude each other; TLS needs
    `sslCname`.
    """
    node_port = str(settings.get("inferenceRouterServiceType", "")).lower() == "nodeport"
    internal = str(settings.get("internalLoadBalancerProvider", "")).lower() == "azure"
    if node_port and internal:
        yield "combines a NodePort router with internalLoadBalancerProvider (the CLI refuses it)"
    if node_port and not _true(settings.get("scoringFe.serviceType.nodePort")):
        yield "runs a NodePort router without scoringFe.serviceType.nodePort"
    if internal and not _true(settings.get("scoringFe.serviceType.internalLoadBalancer")):
        yield "wants an internal load balancer without scoringFe.serviceType.internalLoadBalancer"
    if settings.get("sslSecret") and settings.get("scoringFe.sslSecret") != settings.get(
        "sslSecret"
    ):
        yield "names sslSecret but not scoringFe.sslSecret, which the router reads"


def _user_assigned(resource: PolicyResource, environment: str) -> Iterator[str]:
    """Azure ML resources run as user-assigned identities.

    With system-assigned identities Azure ML creates role assignments itself (workspace:
    "Managed by Microsoft"; online endpoint: AcrPull and Storage Blob Data Reader), which
    the stack cannot own and would collide with (Learn, "how-to-identity-based-service-
    authentication" and "concept-endpoints-online-auth").
    """
    if resource.resource_type == COMPUTE and resource.get("properties.computeType") != (
        "AmlCompute"
    ):
        return
    if resource.get("identity.type") != "UserAssigned":
        yield f"uses identity type {resource.get('identity.type')}, not UserAssigned"
    if resource.resource_type == WORKSPACE and not resource.props.get(
        "primaryUserAssignedIdentity"
    ):
        yield "has no primaryUserAssignedIdentity"


def _role_assignment(resource: PolicyResource, environment: str) -> Iterator[str]:
    role_id = str(resource.props.get("roleDefinitionId", ""))
    guid = role_id.rsplit("/", 1)[-1]
    role = ALLOWED_ROLES.get(guid)
    if role is None:
        yield f"grants role {guid}, which is not on the least-privilege list"
    if not resource.props.get("principalType"):
        yield "does not set principalType"
    scope = str(resource.props.get("scope", ""))
    if "/providers/" not in scope:
        yield f"is scoped to a subscription or resource group ({scope})"
    elif role is not None:
        kinds = ROLE_SCOPES[role]
        if not any(f"/providers/{kind}/" in scope + "/" for kind in kinds):
            yield f"grants {role} on {scope}, not on a {' or '.join(kinds)}"


def _endpoint_traffic(resource: PolicyResource, environment: str) -> Iterator[str]:
    if resource.resource_type.endswith(":OnlineEndpoint"):
        access = resource.get("properties.publicNetworkAccess")
        if access not in ("Enabled", "Disabled"):
            yield "leaves publicNetworkAccess to Azure's default (Enabled)"
        elif environment == "prod" and access != "Disabled":
            yield "is reachable from public networks in prod"
        if "properties.traffic" not in resource.ignore_changes:
            yield "lets `pulumi up` overwrite traffic set by the release pipeline"
        auth = resource.get("properties.authMode")
        if auth not in ("Key", "AMLToken"):
            yield f"uses auth mode {auth}; use key or aml_token"
    elif "properties.defaults" not in resource.ignore_changes:
        yield "lets `pulumi up` overwrite the default deployment set by the release pipeline"


def _container_group(resource: PolicyResource, environment: str) -> Iterator[str]:
    for credential in resource.props.get("imageRegistryCredentials") or []:
        if credential.get("password") or not credential.get("identity"):
            yield "pulls images with a password instead of a managed identity"
    for container in resource.props.get("containers") or []:
        for variable in container.get("environmentVariables") or []:
            name = str(variable.get("name", "")).upper()
            sensitive = any(word in name for word in ("KEY", "SECRET", "PASSWORD", "CONNECTION"))
            if sensitive and variable.get("value"):
                yield f"passes {variable.get('name')} as a plain environment value"
        requests = (container.get("resources") or {}).get("requests") or {}
        if not requests.get("cpu") or not requests.get("memoryInGB"):
            yield f"container {container.get('name')} has no CPU and memory sizing"
    if not resource.props.get("restartPolicy"):
        yield "has no restart policy"


# --- stack checks ------------------------------------------------------------------------


def _closure(resources: Sequence[PolicyResource]) -> Callable[[PolicyResource], set[str]]:
    """Transitive dependencies (waiting on a component means waiting on its children)."""
    index = {r.urn: r for r in resources}
    children: dict[str, list[str]] = {}
    for r in resources:
        if r.parent:
            children.setdefault(r.parent, []).append(r.urn)
    cache: dict[str, set[str]] = {}

    def deps(resource: PolicyResource) -> set[str]:
        if resource.urn in cache:
            return cache[resource.urn]
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            todo.extend(children.get(urn, []))
            if urn in index:
                todo.extend(index[urn].dependencies)
        cache[resource.urn] = seen
        return seen

    return deps


def _instance_types_after_extension(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    deps = _closure(resources)
    extensions = {r.urn for r in resources if r.resource_type == EXTENSION}
    for resource in resources:
        if resource.resource_type == INSTANCE_TYPE and not deps(resource) & extensions:
            yield resource.urn, "is created without waiting for the Azure ML extension (its CRD)"


def _attach_after_namespaces(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    deps = _closure(resources)
    namespaces = {r.get("metadata.name"): r.urn for r in resources if r.resource_type == NAMESPACE}
    extensions = {r.urn for r in resources if r.resource_type == EXTENSION}
    instance_types = {r.urn for r in resources if r.resource_type == INSTANCE_TYPE}
    for resource in resources:
        if resource.resource_type != COMPUTE:
            continue
        if resource.get("properties.computeType") != "Kubernetes":
            continue
        waits = deps(resource)
        namespace = resource.get("properties.properties.namespace")
        if namespace not in namespaces or namespaces[namespace] not in waits:
            yield resource.urn, f"is attached before its namespace {namespace} exists"
        if not waits & extensions:
            yield resource.urn, "is attached before the Azure ML extension is installed"
        if not instance_types <= waits:
            yield resource.urn, "is attached before its InstanceTypes exist"


def _grant_key(resource: PolicyResource) -> tuple[str, str, str]:
    role = str(resource.props.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    return (
        str(resource.props.get("principalId", "")).lower(),
        role,
        str(resource.props.get("scope", "")).lower(),
    )


def _unique_grants(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """No two role assignments share (principal, role, scope).

    ARM rejects the second with 409 RoleAssignmentExists whatever its name
    (hashicorp/terraform-provider-azurerm PR #28694 documents the behaviour).
    Values unknown during a preview are skipped.
    """
    seen: dict[tuple[str, str, str], str] = {}
    for resource in resources:
        if resource.resource_type != ROLE_ASSIGNMENT:
            continue
        key = _grant_key(resource)
        if not all(key) or any("unknown" in part for part in key):
            continue
        if key in seen:
            yield resource.urn, f"repeats the grant of {seen[key]} (409 RoleAssignmentExists)"
        else:
            seen[key] = resource.name


def _no_grants_to_azureml_managed(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """No role is granted to a system-assigned identity whose roles Azure ML manages."""
    managed = {
        str((r.outputs.get("identity") or {}).get("principalId", "")).lower(): r.name
        for r in resources
        if r.resource_type in (WORKSPACE, COMPUTE, ONLINE_ENDPOINT, BATCH_ENDPOINT)
        and "SystemAssigned" in str((r.outputs.get("identity") or {}).get("type", ""))
    }
    managed.pop("", None)
    for resource in resources:
        if resource.resource_type != ROLE_ASSIGNMENT:
            continue
        principal = str(resource.props.get("principalId", "")).lower()
        if principal in managed:
            yield (
                resource.urn,
                (
                    f"grants a role to the system-assigned identity of {managed[principal]}, "
                    "whose roles Azure ML manages"
                ),
            )


def _workspace_only_roles(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """Contributor and Key Vault Administrator go only to a workspace's primary identity."""
    by_id = {r.outputs.get("id"): r for r in resources if r.resource_type == USER_IDENTITY}
    allowed = set()
    for r in resources:
        if r.resource_type == WORKSPACE:
            identity = by_id.get(r.props.get("primaryUserAssignedIdentity"))
            if identity is not None:
                allowed.add(str(identity.outputs.get("principalId", "")).lower())
    for resource in resources:
        if resource.resource_type != ROLE_ASSIGNMENT or not resource.outputs:
            continue
        role = ALLOWED_ROLES.get(_grant_key(resource)[1], "")
        principal = _grant_key(resource)[0]
        if role in WORKSPACE_ONLY_ROLES and principal not in allowed:
            yield resource.urn, f"grants {role} to an identity other than the workspace's"


def _kubernetes_computes(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    return [
        r
        for r in resources
        if r.resource_type == COMPUTE and r.get("properties.computeType") == "Kubernetes"
    ]


def _no_managed_network_with_kubernetes(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """Learn, "how-to-managed-network", Limitations: "Kubernetes and attached VMs aren't
    supported in an Azure Machine Learning managed virtual network"."""
    if not _kubernetes_computes(resources):
        return
    for resource in resources:
        mode = resource.get("managedNetwork.isolationMode")
        if resource.resource_type == WORKSPACE and mode not in (None, "Disabled"):
            yield (
                resource.urn,
                (
                    f"has a managed network ({mode}) while Kubernetes compute is attached, "
                    "which Azure ML does not support"
                ),
            )


def _group_of(endpoint: PolicyResource) -> str:
    connections = endpoint.props.get("privateLinkServiceConnections") or [{}]
    return str((connections[0].get("groupIds") or [""])[0])


def _private_link_ready(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """Customer-VNet pattern: every private-link group has an endpoint and DNS records,
    required in prod, and the extension and the Kubernetes attach wait for the workspace's."""
    endpoints = {_group_of(r): r for r in resources if r.resource_type == PRIVATE_ENDPOINT}
    zone_groups = {
        str(r.props.get("privateEndpointName")): r
        for r in resources
        if r.resource_type == DNS_ZONE_GROUP
    }
    if environment == "prod":
        for group in PRIVATE_LINK_GROUPS:
            if group not in endpoints:
                yield "stack", f"has no private endpoint for {group} in prod"
    for group, endpoint in endpoints.items():
        if str(endpoint.props.get("privateEndpointName")) not in zone_groups:
            yield endpoint.urn, f"has no private DNS zone group for {group}"
    workspace_endpoint = endpoints.get("amlworkspace")
    if workspace_endpoint is None:
        return
    waits_for = {workspace_endpoint.urn}
    zone_group = zone_groups.get(str(workspace_endpoint.props.get("privateEndpointName")))
    if zone_group is not None:
        waits_for.add(zone_group.urn)
    deps = _closure(resources)
    dependents = [r for r in resources if r.resource_type == EXTENSION]
    dependents += _kubernetes_computes(resources)
    for resource in dependents:
        if not waits_for <= deps(resource):
            yield resource.urn, "does not wait for the workspace's private endpoint and DNS records"


APPROVER_ROLE = (
    "b556d68e-0be0-4f35-a333-ad7ee1ce17ea"  # Azure AI Enterprise Network Connection Approver
)


def _managed_network_rules(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """A managed network as Learn's "how-to-managed-network" requires it.

    Provisioned at creation; `queue` and `table` private-endpoint rules to the default
    storage when a batch endpoint exists ("Scenario: Use batch endpoints"); the approver role
    on every non-default private-endpoint target, held by the workspace's identity before the
    workspace exists ("Approval of private endpoints", no longer automatic since 30 April
    2025); and no resource locks ("Make sure there are no scope locks").
    """
    deps = _closure(resources)
    identities = {r.outputs.get("id"): r for r in resources if r.resource_type == USER_IDENTITY}
    has_batch = any(r.resource_type == BATCH_ENDPOINT for r in resources)
    approvals = [
        r
        for r in resources
        if r.resource_type == ROLE_ASSIGNMENT
        and str(r.props.get("roleDefinitionId", "")).endswith(APPROVER_ROLE)
    ]
    locks = [r for r in resources if r.resource_type == LOCK]
    for workspace in resources:
        mode = workspace.get("managedNetwork.isolationMode")
        if workspace.resource_type != WORKSPACE or mode in (None, "Disabled"):
            continue
        group = str(workspace.outputs.get("id", "")).split("/providers/")[0].lower()
        if group and any(str(r.props.get("scope", "")).lower().startswith(group) for r in locks):
            yield workspace.urn, "has a managed network, which resource locks can block"
        if workspace.props.get("provisionNetworkNow") is not True:
            yield workspace.urn, "does not provision its managed network at creation"
        rules = (workspace.get("managedNetwork.outboundRules") or {}).values()
        storage = workspace.props.get("storageAccount")
        targets = {
            (r.get("destination", {}).get("serviceResourceId"),
             r.get("destination", {}).get("subresourceTarget"))
            for r in rules
            if r.get("type") == "PrivateEndpoint"
        }  # fmt: skip
        for sub in ("queue", "table"):
            if has_batch and (storage, sub) not in targets:
                yield workspace.urn, f"has a batch endpoint but no {sub} rule to its storage"
        identity = identities.get(workspace.props.get("primaryUserAssignedIdentity"))
        principal = str((identity.outputs if identity else {}).get("principalId", "")).lower()
        defaults = {
            workspace.props.get(key)
            for key in ("storageAccount", "keyVault", "containerRegistry", "applicationInsights")
        }
        for target, _ in targets:
            if target in defaults:
                continue
            granted = [
                a
                for a in approvals
                if a.props.get("scope") == target
                and str(a.props.get("principalId", "")).lower() == principal
            ]
            if not granted:
                yield workspace.urn, f"cannot approve its private endpoint to {target}"
            elif not any(a.urn in deps(workspace) for a in granted):
                yield workspace.urn, f"is created before it may approve its endpoint to {target}"


def _locks(resources: Sequence[PolicyResource], environment: str) -> Iterator[tuple[str, str]]:
    """CanNotDelete locks on the prod workspace and Key Vault, and on the shared registry
    wherever the stack creates it."""
    locked = {
        r.props.get("scope")
        for r in resources
        if r.resource_type == LOCK and r.props.get("level") == "CanNotDelete"
    }
    wanted = ["azure-native:machinelearningservices:Registry"]
    if environment == "prod":
        wanted += [WORKSPACE, "azure-native:keyvault:Vault"]
    for resource in resources:
        resource_id = resource.outputs.get("id")  # unknown during a live preview: skipped
        if resource.resource_type in wanted and resource_id and resource_id not in locked:
            yield resource.urn, "has no CanNotDelete lock"


def _container_insights_collects(
    resources: Sequence[PolicyResource], environment: str
) -> Iterator[tuple[str, str]]:
    """Each AKS cluster has a Container Insights data collection rule associated with it."""
    rules = {
        r.outputs.get("id") or r.urn: r
        for r in resources
        if r.resource_type == DCR
        and any(
            "Microsoft-ContainerInsights" in stream
            for flow in r.props.get("dataFlows") or []
            for stream in flow.get("streams") or []
        )
    }
    associated = set()
    for r in resources:
        if r.resource_type == DCR_ASSOCIATION and r.props.get("dataCollectionRuleId") in rules:
            associated.add(r.props.get("resourceUri"))
    for cluster in resources:
        if cluster.resource_type != MANAGED_CLUSTER:
            continue
        cluster_id = cluster.outputs.get("id")
        if cluster_id is not None and cluster_id not in associated:
            yield cluster.urn, "has no Container Insights data collection rule associated"


RESOURCE_POLICIES: tuple[ResourcePolicy, ...] = (
    ResourcePolicy(
        "mlops-tags", "Every taggable resource carries the environment tags", TAGGABLE, _tags
    ),
    ResourcePolicy(
        "mlops-azure-names",
        "Resources have explicit names that fit Azure's naming rules",
        frozenset(EXPLICIT_NAMES),
        _names,
    ),
    ResourcePolicy(
        "mlops-keyvault",
        "Key Vault uses RBAC, soft delete and purge protection (private in prod)",
        frozenset({"azure-native:keyvault:Vault"}),
        _key_vault,
    ),
    ResourcePolicy(
        "mlops-keyvault-secret",
        "Key Vault secrets have a content type and an expiry date",
        frozenset({"azure-native:keyvault:Secret"}),
        _key_vault_secret,
    ),
    ResourcePolicy(
        "mlops-storage",
        "Storage is HTTPS-only with TLS 1.2, no public blobs, network rules (private in prod)",
        frozenset({"azure-native:storage:StorageAccount"}),
        _storage,
    ),
    ResourcePolicy(
        "mlops-acr",
        "Container registry without admin user or anonymous pull (Premium in prod)",
        frozenset({"azure-native:containerregistry:Registry"}),
        _container_registry,
    ),
    ResourcePolicy(
        "mlops-workspace",
        "Azure ML workspace with managed identity, v1 legacy mode off (private in prod)",
        frozenset({"azure-native:machinelearningservices:Workspace"}),
        _workspace,
    ),
    ResourcePolicy(
        "mlops-training-compute",
        "Training cluster scales to zero, idles down, uses its identity, no local auth",
        frozenset({COMPUTE}),
        _training_compute,
    ),
    ResourcePolicy(
        "mlops-aks",
        "AKS: managed identity, Entra RBAC, autoscaling pools, labelled Azure ML pool, "
        "network policy, monitoring, upgrade channel, no dashboard, 50+ pods on every pool",
        frozenset({"azure-native:containerservice:ManagedCluster"}),
        _aks,
    ),
    ResourcePolicy(
        "mlops-azureml-extension",
        "Azure ML extension: string settings, inference on, TLS and router HA in prod",
        frozenset({EXTENSION}),
        _extension,
    ),
    ResourcePolicy(
        "mlops-user-assigned-identities",
        "Workspace, training cluster and endpoints run as user-assigned identities",
        frozenset({WORKSPACE, COMPUTE, ONLINE_ENDPOINT, BATCH_ENDPOINT}),
        _user_assigned,
    ),
    ResourcePolicy(
        "mlops-least-privilege",
        "Role assignments use allowed built-in roles on single resources with principalType",
        frozenset({"azure-native:authorization:RoleAssignment"}),
        _role_assignment,
    ),
    ResourcePolicy(
        "mlops-endpoint-ownership",
        "Endpoints leave traffic and default deployments to the release pipeline",
        frozenset(
            {
                "azure-native:machinelearningservices:OnlineEndpoint",
                "azure-native:machinelearningservices:BatchEndpoint",
            }
        ),
        _endpoint_traffic,
    ),
    ResourcePolicy(
        "mlops-aci",
        "QA scoring service pulls with an identity, keeps keys in secure values, is sized",
        frozenset({"azure-native:containerinstance:ContainerGroup"}),
        _container_group,
    ),
)

STACK_POLICIES: tuple[StackPolicy, ...] = (
    StackPolicy(
        "mlops-no-managed-network-with-kubernetes",
        "No Azure ML managed network where Kubernetes compute is attached",
        _no_managed_network_with_kubernetes,
    ),
    StackPolicy(
        "mlops-private-link",
        "Private endpoints with DNS for workspace, blob, file, Key Vault and ACR (prod), "
        "and Kubernetes waits for the workspace's",
        _private_link_ready,
    ),
    StackPolicy(
        "mlops-managed-network",
        "A managed network is provisioned at creation, has the batch queue/table rules, may "
        "approve its private endpoints, and carries no locks",
        _managed_network_rules,
    ),
    StackPolicy(
        "mlops-locks",
        "CanNotDelete locks on the shared registry, and on the prod workspace and Key Vault",
        _locks,
    ),
    StackPolicy(
        "mlops-container-insights",
        "Every AKS cluster has a Container Insights data collection rule association",
        _container_insights_collects,
    ),
    StackPolicy(
        "mlops-unique-grants",
        "No two role assignments share principal, role and scope",
        _unique_grants,
    ),
    StackPolicy(
        "mlops-no-grants-to-azureml-managed",
        "No role is granted to a system-assigned identity whose roles Azure ML manages",
        _no_grants_to_azureml_managed,
    ),
    StackPolicy(
        "mlops-workspace-only-roles",
        "Contributor and Key Vault Administrator are held only by the workspace identity",
        _workspace_only_roles,
    ),
    StackPolicy(
        "mlops-instancetypes-after-extension",
        "InstanceType resources wait for the extension that installs their CRD",
        _instance_types_after_extension,
    ),
    StackPolicy(
        "mlops-attach-after-namespaces",
        "Kubernetes compute targets wait for their namespace, the extension and InstanceTypes",
        _attach_after_namespaces,
    ),
)


@dataclass(frozen=True)
class Violation:
    """One policy violation."""

    policy: str
    urn: str
    resource: str
    message: str


@dataclass
class PolicyReport:
    """Violations plus what was evaluated, for the check table."""

    violations: list[Violation] = field(default_factory=list)
    evaluated: dict[str, set[str]] = field(default_factory=dict)  # policy -> resource names


def evaluate(resources: Sequence[PolicyResource], environment: str) -> PolicyReport:
    """Run every policy over a graph."""
    report = PolicyReport()
    names = {r.urn: r.name for r in resources}
    for policy in RESOURCE_POLICIES:
        for resource in resources:
            if environment not in policy.environments or resource.resource_type not in policy.types:
                continue
            report.evaluated.setdefault(policy.name, set()).add(resource.name)
            for message in policy.evaluate(resource, environment):
                report.violations.append(
                    Violation(policy.name, resource.urn, resource.name, message)
                )
    for stack_policy in STACK_POLICIES:
        report.evaluated.setdefault(stack_policy.name, {"stack"})
        for urn, message in stack_policy.evaluate(resources, environment):
            report.violations.append(
                Violation(stack_policy.name, urn, names.get(urn, urn), message)
            )
    return report


def environment_of(urn: str, props: Mapping[str, Any] | None = None) -> str:
    """Environment of a resource under CrossGuard: its tag, else the stack name, else prod.

    Falling back to prod applies the strictest rules when nothing says otherwise.
    """
    tags = (props or {}).get("tags") or {}
    tagged = tags.get("environment") if isinstance(tags, Mapping) else None
    if tagged in ENVIRONMENTS:
        return str(tagged)
    stack = urn.split("::")[0].rsplit(":", 1)[-1] if urn.startswith("urn:pulumi:") else ""
    return stack if stack in ENVIRONMENTS else "prod"
