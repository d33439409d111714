"""The project's own policies pass on the real graphs and catch each kind of drift."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from infra.checks import policy_resources
from infra.policies import (
    RESOURCE_POLICIES,
    STACK_POLICIES,
    PolicyResource,
    environment_of,
    evaluate,
)
from infra.policy_pack.pack import resource_validator, stack_validator
from infra.recording import RecordedStack


def test_policies_pass_on_every_stack(recorded: RecordedStack) -> None:
    report = evaluate(policy_resources(recorded), recorded.settings.environment)
    assert report.violations == []
    if recorded.settings.aks.enabled:
        assert "mlops-aks" in report.evaluated
        assert "mlops-azureml-extension" in report.evaluated


def _mutated(
    recorded: RecordedStack, type_token: str, change: Callable[[dict[str, Any]], None]
) -> list[PolicyResource]:
    resources = policy_resources(recorded)
    for index, resource in enumerate(resources):
        if resource.resource_type == type_token:
            props = copy.deepcopy(dict(resource.props))
            change(props)
            resources[index] = dataclasses.replace(resource, props=props)
            return resources
    raise LookupError(type_token)


def _messages(resources: list[PolicyResource], environment: str) -> list[str]:
    return [f"{v.policy}: {v.message}" for v in evaluate(resources, environment).violations]


CASES: list[tuple[str, str, str, Callable[[dict[str, Any]], None], str]] = [
    ("dev", "azure-native:containerregistry:Registry", "admin user",
     lambda p: p.update(adminUserEnabled=True), "mlops-acr: has the admin user enabled"),
    ("dev", "azure-native:storage:StorageAccount", "old TLS",
     lambda p: p.update(minimumTlsVersion="TLS1_0"), "accepts TLS older than 1.2"),
    ("dev", "azure-native:keyvault:Vault", "access policies",
     lambda p: p["properties"].update(enableRbacAuthorization=False), "RBAC authorization"),
    ("dev", "azure-native:keyvault:Secret", "no expiry",
     lambda p: p["properties"].pop("attributes"), "has no expiry date"),
    ("dev", "azure-native:containerservice:ManagedCluster", "dashboard left implicit",
     lambda p: p["addonProfiles"].pop("kubeDashboard"), "disable the dashboard explicitly"),
    ("dev", "azure-native:containerservice:ManagedCluster", "second pool below 50 pods",
     lambda p: p["agentPoolProfiles"][1].update(maxPods=30), "pool azureml allows fewer than 50"),
    ("dev", "azure-native:containerservice:ManagedCluster", "unlabelled pool",
     lambda p: p["agentPoolProfiles"][1].pop("nodeLabels"), "no user pool labelled"),
    ("dev", "azure-native:containerservice:ManagedCluster", "rotation off",
     lambda p: p["addonProfiles"]["azureKeyvaultSecretsProvider"]["config"].update(
         enableSecretRotation="false"), "does not rotate"),
    ("prod", "azure-native:kubernetesconfiguration:Extension", "HTTP in prod",
     lambda p: p["configurationSettings"].update(allowInsecureConnections="True"),
     "allows insecure (HTTP) connections"),
    ("prod", "azure-native:kubernetesconfiguration:Extension", "boolean setting",
     lambda p: p["configurationSettings"].update(inferenceRouterHA=True), "is not a string"),
    ("prod", "azure-native:machinelearningservices:Workspace", "public prod workspace",
     lambda p: p.update(publicNetworkAccess="Enabled"), "reachable from public networks"),
    ("dev", "azure-native:machinelearningservices:Workspace", "v1 legacy mode",
     lambda p: p.pop("v1LegacyMode"), "v1 legacy mode"),
    ("dev", "azure-native:authorization:RoleAssignment", "Contributor",
     lambda p: p.update(roleDefinitionId=p["roleDefinitionId"].rsplit("/", 1)[0]
                        + "/b24988ac-6180-42a0-ab88-20f7382dd24c"), "not on the least-privilege"),
    ("dev", "azure-native:authorization:RoleAssignment", "resource-group scope",
     lambda p: p.update(scope=p["scope"].split("/providers/")[0]), "resource group"),
    ("dev", "azure-native:authorization:RoleAssignment", "no principal type",
     lambda p: p.pop("principalType"), "principalType"),
    ("qa", "azure-native:containerinstance:ContainerGroup", "key in plain value",
     lambda p: p["containers"][0]["environmentVariables"][1].update(value="abc"),
     "passes SCORING_API_KEY as a plain environment value"),
    ("qa", "azure-native:containerinstance:ContainerGroup", "registry password",
     lambda p: p["imageRegistryCredentials"][0].update(password="x"), "with a password"),
    ("dev", "azure-native:storage:StorageAccount", "untagged",
     lambda p: p.pop("tags"), "mlops-tags: lacks the tags"),
    ("dev", "azure-native:storage:StorageAccount", "name too long",
     lambda p: p.update(accountName="stmlopsdevelopmentplatform01"), "has 28 characters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "type_token", "change", "expected"),
    [(stack, t, change, expected) for stack, t, _, change, expected in CASES],
    ids=[case[2] for case in CASES],
)
def test_policy_catches(
    recordings: dict[str, RecordedStack],
    stack: str,
    type_token: str,
    change: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    recorded = recordings[stack]
    messages = _messages(_mutated(recorded, type_token, change), recorded.settings.environment)
    assert any(expected in message for message in messages), messages


def test_traffic_must_stay_with_the_release(recordings: dict[str, RecordedStack]) -> None:
    resources = policy_resources(recordings["dev"])
    for index, resource in enumerate(resources):
        if resource.resource_type.endswith(":OnlineEndpoint"):
            resources[index] = dataclasses.replace(resource, ignore_changes=())
    messages = _messages(resources, "dev")
    assert any("overwrite traffic" in m for m in messages)


def test_instance_types_created_before_the_extension_are_caught(
    recordings: dict[str, RecordedStack],
) -> None:
    resources = [
        dataclasses.replace(r, dependencies=()) if r.resource_type.endswith(":InstanceType") else r
        for r in policy_resources(recordings["dev"])
    ]
    messages = _messages(resources, "dev")
    assert sum("without waiting for the Azure ML extension" in m for m in messages) == 2


def test_attach_without_its_namespace_is_caught(recordings: dict[str, RecordedStack]) -> None:
    resources = [
        dataclasses.replace(
            r, dependencies=tuple(d for d in r.dependencies if "Namespace" not in d)
        )
        if r.name.startswith("azureml-k8s-attach")
        else r
        for r in policy_resources(recordings["prod"])
    ]
    assert any("before its namespace mlops-prod exists" in m for m in _messages(resources, "prod"))


def test_environment_comes_from_tags_then_stack_then_prod() -> None:
    assert environment_of("urn:pulumi:dev::mlops::x::y", {"tags": {"environment": "qa"}}) == "qa"
    assert environment_of("urn:pulumi:dev::mlops::x::y", {}) == "dev"
    assert environment_of("urn:pulumi:staging::mlops::x::y", {}) == "prod"


class _Opts:
    def __init__(self, ignore_changes: tuple[str, ...]) -> None:
        self.ignore_changes = list(ignore_changes)


class _Args:
    """Shaped like CrossGuard's ResourceValidationArgs / PolicyResource."""

    def __init__(self, resource: PolicyResource, by_urn: dict[str, _Args] | None = None) -> None:
        self.resource_type = resource.resource_type
        self.name = resource.name
        self.urn = resource.urn
        self.props = resource.props
        self.opts = _Opts(resource.ignore_changes)
        self._resource = resource
        self.parent: _Args | None = None
        self.dependencies: list[_Args] = []


def _crossguard_run(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    reported: list[tuple[str, str | None]] = []
    args = {r.urn: _Args(r) for r in resources}
    for arg in args.values():
        resource = arg._resource
        arg.parent = args.get(resource.parent) if resource.parent else None
        arg.dependencies = [args[d] for d in resource.dependencies if d in args]
    for policy in RESOURCE_POLICIES:
        validate = resource_validator(policy)
        for arg in args.values():
            validate(arg, lambda message, urn=None: reported.append((message, urn)))

    class _StackArgs:
        def __init__(self) -> None:
            self.resources = list(args.values())

    for stack_policy in STACK_POLICIES:
        stack_validator(stack_policy)(
            _StackArgs(), lambda message, urn=None: reported.append((message, urn))
        )
    return reported


def test_crossguard_adapters_agree_with_the_check(recordings: dict[str, RecordedStack]) -> None:
    resources = policy_resources(recordings["prod"])
    assert _crossguard_run(resources) == []
    broken = _mutated(
        recordings["prod"],
        "azure-native:kubernetesconfiguration:Extension",
        lambda p: p["configurationSettings"].update(allowInsecureConnections="True"),
    )
    reported = _crossguard_run(broken)
    assert any("azureml-k8s-extension allows insecure" in message for message, _ in reported)


def test_policy_pack_builds_with_crossguard() -> None:
    pulumi_policy = pytest.importorskip("pulumi_policy")
    from infra.policy_pack.pack import build_policies

    policies = build_policies()
    assert len(policies) == len(RESOURCE_POLICIES) + len(STACK_POLICIES)
    assert all(isinstance(p, pulumi_policy.Policy) for p in policies)


def test_policy_pack_module_imports_without_starting_a_server() -> None:
    import importlib

    module = importlib.import_module("infra.policy_pack.pack")
    assert callable(module.main)
