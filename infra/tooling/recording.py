"""Run the Pulumi program offline under Pulumi's unit-test mocks and record the graph.

No Azure, no Pulumi CLI: `pulumi.runtime.set_mocks` replaces the engine, the mocks below
answer resource registrations and the few invokes the program makes, and a recording
monitor keeps what the engine would have received: every resource's type, name, parent,
inputs (with which of them are secret), dependencies, provider and `ignore_changes`.
The plan, the ARM export for checkov, the policy checks and the tests all read this
recording. Each call gets a fresh event loop, so dev, qa and prod can be recorded in one
process.

Secret config values cannot be decrypted offline (and the stack files hold none); the
recording substitutes placeholders for every secret key the settings require.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi
import pulumi.runtime
from pulumi.runtime import mocks, rpc

from infra.settings import NAMESPACE, Settings, read_stack_config, settings_from_config

T = TypeVar("T")

PROJECT = NAMESPACE
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
PLACEHOLDER_PREFIX = "offline-placeholder-"

_FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster: {server: 'https://offline.invalid:443'}
  name: offline
contexts:
- context: {cluster: offline, user: clusterAdmin}
  name: offline
current-context: offline
users:
- name: clusterAdmin
  user: {token: offline-placeholder-token}
"""


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine would have received it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: Mapping[str, Any]
    secret_inputs: frozenset[str]
    dependencies: tuple[str, ...]
    provider: str
    ignore_changes: tuple[str, ...]
    retain_on_delete: bool
    outputs: Mapping[str, Any] = field(default_factory=dict)
    alias_parents: tuple[str, ...] = ()
    """Parents this resource was once registered under (`Alias(parent=...)`)."""

    @property
    def is_component(self) -> bool:
        return not self.custom

    def get(self, path: str, default: Any = None) -> Any:
        """Input at a dotted path (`properties.authMode`), or `default`."""
        value: Any = self.inputs
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return default
            value = value[part]
        return value


@dataclass
class RecordedStack:
    """The whole recorded graph of one stack plus its exported outputs."""

    stack: str
    settings: Settings
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]
    invokes: list[str]
    placeholders: dict[str, str]

    def __iter__(self) -> Iterator[RecordedResource]:
        return iter(self.resources)

    @property
    def environment(self) -> str:
        """The stack's environment (dev, qa, prod), as the plan shows it."""
        return self.settings.environment

    @property
    def by_urn(self) -> dict[str, RecordedResource]:
        return {resource.urn: resource for resource in self.resources}

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """Resources with this Pulumi type token."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> RecordedResource:
        """The single resource of a type (and logical name); fails loudly otherwise."""
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_token} {name or ''}, found {len(found)}")
        return found[0]

    def ancestors(self, resource: RecordedResource) -> list[RecordedResource]:
        """Parents of a resource, nearest first."""
        index, chain = self.by_urn, []
        parent = index.get(resource.parent)
        while parent is not None:
            chain.append(parent)
            parent = index.get(parent.parent)
        return chain

    def depends_on(self, resource: RecordedResource, other: RecordedResource) -> bool:
        """Whether `resource` waits for `other`, directly or through its dependencies."""
        index, seen, todo = self.by_urn, set(), list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn == other.urn:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            dependency = index.get(urn)
            if dependency is not None:
                todo.extend(dependency.dependencies)
                # Waiting on a component means waiting on everything inside it.
                todo.extend(r.urn for r in self.resources if r.parent == urn)
        return False


def _unwrap(value: Any) -> tuple[Any, bool]:
    """Remove secret markers anywhere in a value; report whether there were any."""
    if rpc.is_rpc_secret(value):
        inner, _ = _unwrap(rpc.unwrap_rpc_secret(value))
        return inner, True
    if isinstance(value, dict):
        secret, result = False, {}
        for key, item in value.items():
            result[key], item_secret = _unwrap(item)
            secret = secret or item_secret
        return result, secret
    if isinstance(value, list):
        secret, items = False, []
        for item in value:
            unwrapped, item_secret = _unwrap(item)
            items.append(unwrapped)
            secret = secret or item_secret
        return items, secret
    return value, False


# Pulumi type token -> (ARM provider type, input that names the resource)
_ARM_IDS: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": ("", "resourceGroupName"),
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts", "accountName"),
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName"),
    "azure-native:operationalinsights:Workspace": (
        "Microsoft.OperationalInsights/workspaces",
        "workspaceName",
    ),
    "azure-native:applicationinsights:Component": ("Microsoft.Insights/components", "resourceName"),
    "azure-native:containerregistry:Registry": (
        "Microsoft.ContainerRegistry/registries",
        "registryName",
    ),
    "azure-native:machinelearningservices:Workspace": (
        "Microsoft.MachineLearningServices/workspaces",
        "workspaceName",
    ),
    "azure-native:machinelearningservices:Registry": (
        "Microsoft.MachineLearningServices/registries",
        "registryName",
    ),
    "azure-native:containerservice:ManagedCluster": (
        "Microsoft.ContainerService/managedClusters",
        "resourceName",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
    ),
    "azure-native:containerinstance:ContainerGroup": (
        "Microsoft.ContainerInstance/containerGroups",
        "containerGroupName",
    ),
    "azure-native:network:VirtualNetwork": (
        "Microsoft.Network/virtualNetworks",
        "virtualNetworkName",
    ),
    "azure-native:network:PrivateEndpoint": (
        "Microsoft.Network/privateEndpoints",
        "privateEndpointName",
    ),
    "azure-native:privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", "privateZoneName"),
}
_CHILD_IDS: dict[str, tuple[str, str, str]] = {
    # child type -> (parent ARM type, parent name input, child segment)
    "azure-native:machinelearningservices:Compute": (
        "Microsoft.MachineLearningServices/workspaces",
        "workspaceName",
        "computes/{computeName}",
    ),
    "azure-native:machinelearningservices:OnlineEndpoint": (
        "Microsoft.MachineLearningServices/workspaces",
        "workspaceName",
        "onlineEndpoints/{endpointName}",
    ),
    "azure-native:machinelearningservices:BatchEndpoint": (
        "Microsoft.MachineLearningServices/workspaces",
        "workspaceName",
        "batchEndpoints/{endpointName}",
    ),
    "azure-native:keyvault:Secret": (
        "Microsoft.KeyVault/vaults",
        "vaultName",
        "secrets/{secretName}",
    ),
    "azure-native:storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts",
        "accountName",
        "blobServices/default/containers/{containerName}",
    ),
    "azure-native:network:Subnet": (
        "Microsoft.Network/virtualNetworks",
        "virtualNetworkName",
        "subnets/{subnetName}",
    ),
    "azure-native:kubernetesconfiguration:Extension": (
        "Microsoft.ContainerService/managedClusters",
        "clusterName",
        "providers/Microsoft.KubernetesConfiguration/extensions/{extensionName}",
    ),
}


class OfflineMocks(mocks.Mocks):
    """Answers registrations with realistic ids and the outputs the program reads."""

    def __init__(self) -> None:
        self.invokes: list[str] = []

    def _resource_id(self, args: mocks.MockResourceArgs, inputs: dict[str, Any]) -> str:
        rg = inputs.get("resourceGroupName", "rg-offline")
        base = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}"
        if args.typ in _ARM_IDS:
            arm_type, name_key = _ARM_IDS[args.typ]
            name = inputs.get(name_key, args.name)
            return base if not arm_type else f"{base}/providers/{arm_type}/{name}"
        if args.typ in _CHILD_IDS:
            parent_type, parent_key, segment = _CHILD_IDS[args.typ]
            child_segment = segment.format_map(_Default(inputs, args.name))
            return f"{base}/providers/{parent_type}/{inputs.get(parent_key)}/{child_segment}"
        if args.typ == "azure-native:authorization:RoleAssignment":
            name = inputs.get("roleAssignmentName") or _guid(args.name)
            return f"{inputs.get('scope')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        if args.typ == "azure-native:monitor:DiagnosticSetting":
            name = inputs.get("name") or args.name
            scope = inputs.get("resourceUri")
            return f"{scope}/providers/Microsoft.Insights/diagnosticSettings/{name}"
        return f"{base}/providers/offline/{args.typ.replace(':', '/')}/{args.name}"

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs, _ = _unwrap(dict(args.inputs))
        resource_id = self._resource_id(args, inputs)
        outputs = dict(inputs)
        outputs.setdefault("name", resource_id.rsplit("/", 1)[-1])
        outputs["id"] = resource_id
        principal = _guid("principal", resource_id)
        identity = inputs.get("identity")
        if isinstance(identity, dict):
            identity = dict(identity)
            # Inputs list user-assigned identities; Azure returns a map of them.
            assigned = identity.get("userAssignedIdentities")
            if isinstance(assigned, list):
                identity["userAssignedIdentities"] = {
                    key: {"principalId": _guid("principal", key), "clientId": _guid("client", key)}
                    for key in assigned
                }
            if "SystemAssigned" in str(identity.get("type", "")):
                identity.update(principalId=principal, tenantId=TENANT_ID)
            outputs["identity"] = identity
        extra: Callable[[str, dict[str, Any]], dict[str, Any]] | None = _EXTRA_OUTPUTS.get(args.typ)
        if extra:
            outputs.update(extra(resource_id, inputs))
        return resource_id, outputs

    def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.invokes.append(args.token)
        function, call_args = args.token, dict(args.args)
        if function == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
                "objectId": _guid("deployer"),
                "clientId": _guid("deployer-client"),
            }
        if function == "azure-native:containerservice:listManagedClusterAdminCredentials":
            encoded = base64.b64encode(_FAKE_KUBECONFIG.encode()).decode()
            return {"kubeconfigs": [{"name": "clusterAdmin", "value": encoded}]}
        if function == "azure-native:operationalinsights:getSharedKeys":
            return {
                "primarySharedKey": f"{PLACEHOLDER_PREFIX}la-key",
                "secondarySharedKey": f"{PLACEHOLDER_PREFIX}la-key-2",
            }
        if function == "azure-native:machinelearningservices:getRegistry":
            rg, name = call_args.get("resourceGroupName"), call_args.get("registryName")
            return {
                "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}/providers/"
                f"Microsoft.MachineLearningServices/registries/{name}",
                "name": name,
                "location": "westeurope",
                "type": "Microsoft.MachineLearningServices/registries",
                "registryProperties": {},
                "systemData": {},
            }
        raise NotImplementedError(f"The offline mocks do not answer invoke {function}.")


class _Default(dict[str, Any]):
    def __init__(self, values: Mapping[str, Any], fallback: str) -> None:
        super().__init__(values)
        self.fallback = fallback

    def __missing__(self, key: str) -> str:
        return self.fallback


def _cluster_outputs(resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    node_rg = f"MC_{inputs.get('resourceGroupName')}_{inputs.get('resourceName')}"
    kubelet = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{node_rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kubelet"  # noqa: E501
    return {
        "fqdn": f"{inputs.get('dnsPrefix')}.hcp.westeurope.azmk8s.io",
        "nodeResourceGroup": node_rg,
        "identityProfile": {
            "kubeletidentity": {
                "objectId": _guid("kubelet", resource_id),
                "clientId": _guid("kubelet-client", resource_id),
                "resourceId": kubelet,
            }
        },
    }


_EXTRA_OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "azure-native:keyvault:Vault": lambda rid, i: {
        "properties": {
            **i.get("properties", {}),
            "vaultUri": f"https://{i['vaultName']}.vault.azure.net/",
        }
    },
    "azure-native:containerregistry:Registry": lambda rid, i: {
        "loginServer": f"{i['registryName'].lower()}.azurecr.io"
    },
    "azure-native:applicationinsights:Component": lambda rid, i: {
        "instrumentationKey": _guid("ikey", rid),
        "connectionString": f"InstrumentationKey={_guid('ikey', rid)};"
        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
    },
    "azure-native:operationalinsights:Workspace": lambda rid, i: {"customerId": _guid("la", rid)},
    "azure-native:managedidentity:UserAssignedIdentity": lambda rid, i: {
        "principalId": _guid("principal", rid),
        "clientId": _guid("client", rid),
        "tenantId": TENANT_ID,
    },
    "azure-native:containerservice:ManagedCluster": _cluster_outputs,
    "azure-native:containerinstance:ContainerGroup": lambda rid, i: {
        "ipAddress": {
            **i.get("ipAddress", {}),
            "ip": "20.0.0.10" if i.get("ipAddress", {}).get("type") == "Public" else "10.40.17.4",
            "fqdn": f"{i['ipAddress']['dnsNameLabel']}.westeurope.azurecontainer.io"
            if i.get("ipAddress", {}).get("dnsNameLabel")
            else "",
        }
    },
    "azure-native:machinelearningservices:OnlineEndpoint": lambda rid, i: {
        "properties": {
            **i.get("properties", {}),
            "scoringUri": f"https://{i['endpointName']}.westeurope.inference.ml.azure.com/score",
        }
    },
}


class RecordingMonitor(mocks.MockMonitor):
    """The mock engine, plus a record of what every registration asked for."""

    def __init__(self, offline_mocks: OfflineMocks, project: str, stack: str) -> None:
        super().__init__(offline_mocks)
        self.recorded: list[RecordedResource] = []
        self.project, self.stack = project, stack

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine calls run on executor threads, which do not see the stack name.
        if parent:
            type_ = parent.split("::")[2].split("$")[-1] + "$" + type_
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object)
            inputs: dict[str, Any] = {}
            secret: set[str] = set()
            for key, value in raw.items():
                inputs[key], is_secret = _unwrap(value)
                if is_secret:
                    secret.add(key)
            state = self.resources.get(response.urn)
            self.recorded.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    parent=request.parent,
                    inputs=inputs,
                    secret_inputs=frozenset(secret),
                    dependencies=tuple(request.dependencies),
                    provider=request.provider,
                    ignore_changes=tuple(request.ignoreChanges),
                    retain_on_delete=bool(request.retainOnDelete),
                    outputs=_unwrap(state.state)[0] if state else {},
                    alias_parents=tuple(
                        alias.spec.parentUrn
                        for alias in request.aliases
                        if alias.HasField("spec") and alias.spec.parentUrn
                    ),
                )
            )
        return response


def offline_config(
    stack: str, raw: Mapping[str, Any] | None = None
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """Pulumi config of a stack file as the engine passes it, with placeholder secrets.

    Returns (config, secret keys, placeholder values by config key).
    """
    raw = dict(read_stack_config(stack) if raw is None else raw)
    settings = settings_from_config(raw, stack)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue  # ciphertext: replaced by a placeholder below
        config[key] = value if isinstance(value, str) else json.dumps(value)
    for key in settings.secret_config_keys():
        full = f"{NAMESPACE}:{key}"
        placeholders[key] = f"{PLACEHOLDER_PREFIX}{key}"
        config[full] = placeholders[key]
        secret_keys.append(full)
    return config, secret_keys, placeholders


def run_program(
    offline_mocks: mocks.Mocks,
    monitor: RecordingMonitor,
    *,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    program: Callable[[], T],
    preview: bool = False,
) -> tuple[T, dict[str, Any], frozenset[str]]:
    """Run a Pulumi program under mocks on its own event loop, then reset the runtime.

    Returns what `program` returned (its settings), the stack's exported outputs, and the
    names of the outputs that are secret. `preview` runs it as `pulumi preview` would.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    exported: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    holder: list[T] = []
    try:
        pulumi.runtime.set_all_config(config, secret_keys)
        mocks.set_mocks(
            offline_mocks, project=project, stack=stack, preview=preview, monitor=monitor
        )

        async def collect(outputs: dict[str, pulumi.Output[Any]]) -> None:
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                exported[key] = await output.future()
                if await output.is_secret():
                    secret_outputs.add(key)

        @pulumi.runtime.test
        def run() -> Any:
            holder.append(program())
            root = pulumi.runtime.settings.get_root_resource()
            return asyncio.ensure_future(collect(dict(getattr(root, "outputs", {}))))

        run()
    finally:
        pulumi.runtime.settings.reset_options()
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)
    return holder[0], exported, frozenset(secret_outputs)


def record_stack(
    stack: str, raw: Mapping[str, Any] | None = None, *, preview: bool = False
) -> RecordedStack:
    """Run the program for `stack` under mocks and return the recorded graph.

    `raw` replaces the stack file's config (tests use it for variants); `preview` records it
    as a `pulumi preview` run.
    """
    from infra import program  # deferred: importing the Azure SDK takes a few seconds

    def build() -> Settings:
        settings = program.settings_from_pulumi_config()
        program.main()
        return settings

    config, secret_keys, placeholders = offline_config(stack, raw)
    offline_mocks = OfflineMocks()
    monitor = RecordingMonitor(offline_mocks, PROJECT, stack)
    settings, exported, secret_outputs = run_program(
        offline_mocks, monitor, project=PROJECT, stack=stack, config=config,
        secret_keys=secret_keys, program=build, preview=preview,
    )  # fmt: skip
    return RecordedStack(
        stack=stack,
        settings=settings,
        resources=monitor.recorded,
        outputs=exported,
        secret_outputs=secret_outputs,
        invokes=list(offline_mocks.invokes),
        placeholders=placeholders,
    )
