"""Azure's documented rules (issue: first contact with Azure), each refused where it is broken.

Every case names its source; each feeds the broken input and expects the refusal, in the
settings (one sentence) or in the policies (on the recorded graph).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from infra.components.aml_kubernetes import extension_settings
from infra.policies import PolicyResource, evaluate
from infra.settings import SettingsError, settings_from_config
from infra.tooling.checks import policy_resources
from infra.tooling.recording import RecordedStack
from tests.infra.graph_edits import mutated


def _refusal(config: dict[str, Any], stack: str) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_config(config, stack)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    return message


SETTINGS_CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    # Learn, "how-to-managed-network", Limitations.
    ("managed network with AKS", "dev",
     lambda c: c["mlops:network"].update(workspaceIsolationMode="AllowInternetOutbound"),
     "does not support Kubernetes compute in a managed network"),
    # IP rules apply only to the public endpoint (storage / Key Vault network security).
    ("firewall ranges with public access off", "prod",
     lambda c: c["mlops:network"].update(allowedIpRanges=["20.1.2.0/24"]),
     "so the ranges do nothing"),
    # RFC 5737 placeholder in the prod API server ranges.
    ("documentation range for the API server", "prod",
     lambda c: c["mlops:aks"].update(privateCluster=False, authorizedIpRanges=["203.0.113.0/24"]),
     "documentation range"),
    ("public prod API server", "prod",
     lambda c: c["mlops:aks"].update(privateCluster=False, authorizedIpRanges=[]),
     "exposes the prod API server to every address"),
    ("private cluster with ranges", "prod",
     lambda c: c["mlops:aks"].update(authorizedIpRanges=["20.1.2.0/24"]),
     "lists authorizedIpRanges for a private cluster"),
    ("private cluster without a VNet", "dev",
     lambda c: c["mlops:aks"].update(privateCluster=True),
     "without network.privateNetwork"),
    # Learn "how-to-deploy-kubernetes-extension": keys travel in headers; TLS + internal.
    ("public prod router", "prod",
     lambda c: c["mlops:inference"].update(internalLoadBalancer=False),
     "public load balancer"),
    # The extension's CLI: NodePort and an internal load balancer exclude each other.
    ("NodePort with an internal load balancer", "dev",
     lambda c: c["mlops:inference"].update(routerServiceType="NodePort", internalLoadBalancer=True),
     "only a LoadBalancer router has a load balancer"),
    # Azure ML pulls its environment images from the workspace ACR.
    ("quarantine on the workspace ACR", "prod",
     lambda c: c["mlops:containerRegistry"].update(quarantine=True),
     "quarantine would keep unpullable"),
    ("prod without cluster admins", "prod",
     lambda c: c["mlops:aks"].update(adminGroupObjectIds=[]),
     "without adminGroupObjectIds"),
    ("prod without the private network", "prod",
     lambda c: (c["mlops:network"].update(privateNetwork=False, publicNetworkAccess=True),
                c["mlops:aks"].update(privateCluster=False, authorizedIpRanges=["20.1.2.0/24"])),
     "leaves public network access on in prod"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "change", "expected"),
    [(stack, change, expected) for _, stack, change, expected in SETTINGS_CASES],
    ids=[case[0] for case in SETTINGS_CASES],
)
def test_settings_refuse(stack_config, stack: str, change, expected: str) -> None:
    config = stack_config(stack)
    change(config)
    assert expected in _refusal(config, stack)


EXTENSION = "azure-native:kubernetesconfiguration:Extension"
CLUSTER = "azure-native:containerservice:ManagedCluster"

POLICY_CASES: list[tuple[str, str, str, Callable[[dict[str, Any]], None], str]] = [
    ("dev", EXTENSION, "NodePort without the nodePort key",
     lambda p: p["configurationSettings"].update(inferenceRouterServiceType="NodePort"),
     "without scoringFe.serviceType.nodePort"),
    ("prod", EXTENSION, "internal provider without the internal key",
     lambda p: p["configurationSettings"].pop("scoringFe.serviceType.internalLoadBalancer"),
     "without scoringFe.serviceType.internalLoadBalancer"),
    ("prod", EXTENSION, "public prod router",
     lambda p: [p["configurationSettings"].pop(k) for k in
                ("internalLoadBalancerProvider", "scoringFe.serviceType.internalLoadBalancer")],
     "public load balancer"),
    ("prod", EXTENSION, "TLS secret the router does not read",
     lambda p: p["configurationSettings"].pop("scoringFe.sslSecret"), "scoringFe.sslSecret"),
    ("dev", EXTENSION, "no nodeSelector",
     lambda p: p["configurationSettings"].pop("nodeSelector.mlops.azure.com/workload"),
     "has no nodeSelector"),
    ("dev", CLUSTER, "Azure ML pool without its taint",
     lambda p: p["agentPoolProfiles"][1].pop("nodeTaints"), "lacks the ml.azure.com/amlarc"),
    ("prod", CLUSTER, "public API server",
     lambda p: p.update(apiServerAccessProfile={"authorizedIPRanges": []}),
     "exposes the API server to every address"),
    ("prod", CLUSTER, "documentation range",
     lambda p: p.update(apiServerAccessProfile={"authorizedIPRanges": ["198.51.100.0/24"]}),
     "authorizes documentation ranges 198.51.100.0/24"),
    ("prod", "azure-native:containerregistry:Registry", "quarantine",
     lambda p: p["policies"]["quarantinePolicy"].update(status="enabled"),
     "quarantines images that Azure ML must pull"),
    ("dev", "azure-native:machinelearningservices:OnlineEndpoint", "default public access",
     lambda p: p["properties"].pop("publicNetworkAccess"), "Azure's default (Enabled)"),
    ("prod", "azure-native:machinelearningservices:OnlineEndpoint", "public prod endpoint",
     lambda p: p["properties"].update(publicNetworkAccess="Enabled"),
     "reachable from public networks in prod"),
    ("prod", "azure-native:machinelearningservices:Workspace", "managed network with AKS",
     lambda p: p.update(managedNetwork={"isolationMode": "AllowInternetOutbound"}),
     "Azure ML does not support"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "type_token", "change", "expected"),
    [(stack, t, change, expected) for stack, t, _, change, expected in POLICY_CASES],
    ids=[case[2] for case in POLICY_CASES],
)
def test_policies_refuse(
    recordings: dict[str, RecordedStack], stack: str, type_token: str, change, expected: str
) -> None:
    recorded = recordings[stack]
    resources = mutated(recorded, type_token, change)
    messages = [v.message for v in evaluate(resources, recorded.settings.environment).violations]
    assert any(expected in m for m in messages), messages


def test_kubernetes_waits_for_the_workspace_private_endpoint(
    recordings: dict[str, RecordedStack],
) -> None:
    resources = [
        dataclasses.replace(r, dependencies=()) if r.resource_type == EXTENSION else r
        for r in policy_resources(recordings["prod"])
    ]
    # The attach still waits (through the extension it no longer reaches, it must not).
    messages = [v.message for v in evaluate(resources, "prod").violations]
    assert "does not wait for the workspace's private endpoint and DNS records" in messages


def test_prod_needs_every_private_endpoint(recordings: dict[str, RecordedStack]) -> None:
    resources = [
        r
        for r in policy_resources(recordings["prod"])
        if not (r.resource_type.endswith(":PrivateEndpoint") and "file" in r.name)
    ]
    messages = [v.message for v in evaluate(resources, "prod").violations]
    assert "has no private endpoint for file in prod" in messages


def test_every_cluster_has_a_container_insights_association(
    recordings: dict[str, RecordedStack],
) -> None:
    for stack in ("dev", "prod"):
        recorded = recordings[stack]
        cluster = recorded.one(CLUSTER)
        rule = recorded.one("azure-native:monitor:DataCollectionRule")
        association = recorded.one("azure-native:monitor:DataCollectionRuleAssociation")
        assert association.inputs["resourceUri"] == cluster.outputs["id"]
        assert association.inputs["dataCollectionRuleId"] == rule.outputs["id"]
        stream = "Microsoft-ContainerInsights-Group-Default"
        assert rule.inputs["dataSources"]["extensions"][0]["streams"] == [stream]
        assert rule.inputs["dataFlows"][0]["destinations"] == ["ciworkspace"]
    resources = [
        r
        for r in policy_resources(recordings["dev"])
        if not r.resource_type.endswith(":DataCollectionRuleAssociation")
    ]
    messages = [v.message for v in evaluate(resources, "dev").violations]
    assert "has no Container Insights data collection rule associated" in messages


# --- the router's settings against the extension CLI's own logic ---------------------------


def _cli_scoring_fe(config: dict[str, str]) -> dict[str, object]:
    """A transcription of `__validate_scoring_fe_settings` and `__set_up_inference_ssl` in
    Azure/azure-cli-extensions, src/k8s-extension/azext_k8s_extension/partner_extensions/
    AzureMLKubernetes.py: the keys the CLI adds for the router, or the error it raises."""
    settings: dict[str, object] = {}
    insecure = str(config.get("allowInsecureConnections")).lower() == "true"
    ssl_enabled = bool(config.get("sslSecret"))
    if not ssl_enabled and not insecure:
        raise ValueError("To enable HTTPs endpoint, provide sslSecret")
    if ssl_enabled and not config.get("sslCname"):
        raise ValueError("please specify sslCname")
    service = str(config.get("inferenceRouterServiceType", "")).lower()
    if service not in ("nodeport", "loadbalancer", "clusterip"):
        raise ValueError("please specify inferenceRouterServiceType")
    node_port = service == "nodeport"
    internal = str(config.get("internalLoadBalancerProvider")).lower() == "azure"
    if node_port and internal:
        raise ValueError("When using nodePort ..., no need to specify internalLoadBalancerProvider")
    if node_port:
        settings["scoringFe.serviceType.nodePort"] = node_port
    elif internal:
        settings["scoringFe.serviceType.internalLoadBalancer"] = internal
    if not insecure:
        settings["scoringFe.sslSecret"] = config["sslSecret"]
    return settings


ROUTER_MODES = [
    (service, internal, tls)
    for service in ("LoadBalancer", "NodePort", "ClusterIP")
    for internal in (False, True)
    for tls in (False, True)
    if not (internal and service != "LoadBalancer")  # refused by the settings (tested above)
]


@pytest.mark.parametrize(("service", "internal", "tls"), ROUTER_MODES)
def test_router_settings_match_the_extension_cli(
    stack_config, service: str, internal: bool, tls: bool
) -> None:
    config = stack_config("dev")  # prod would refuse HTTP and a public router
    config["mlops:inference"].update(
        routerServiceType=service, internalLoadBalancer=internal, allowInsecureConnections=not tls
    )
    if tls:
        config["mlops:inference"].update(sslCname="scoring.example.com", sslSecret="fe-tls")
    settings = settings_from_config(config, "dev")
    sent = extension_settings(settings, "/subscriptions/x/clusters/aks", "aks")
    derived = _cli_scoring_fe(sent)
    for key, value in derived.items():
        assert sent.get(key) == str(value), key  # the CLI's True is the string "True" in ARM
    # and nothing router-related that the CLI would not have sent
    router_keys = {k for k in sent if k.startswith("scoringFe.")}
    assert router_keys == set(derived)


# --- a managed network, where no Kubernetes compute is attached (qa) ------------------------


@pytest.fixture(scope="module")
def qa_managed(request: pytest.FixtureRequest) -> RecordedStack:
    from infra.settings import read_stack_config
    from infra.tooling.recording import record_stack

    config = copy.deepcopy(read_stack_config("qa"))
    config["mlops:network"]["workspaceIsolationMode"] = "AllowOnlyApprovedOutbound"
    return record_stack("qa", config)


def test_managed_network_is_complete(qa_managed: RecordedStack) -> None:
    workspace = qa_managed.one("azure-native:machinelearningservices:Workspace")
    assert workspace.inputs["provisionNetworkNow"] is True
    rules = workspace.inputs["managedNetwork"]["outboundRules"]
    storage = qa_managed.one("azure-native:storage:StorageAccount").outputs["id"]
    assert {
        (
            rule["destination"]["serviceResourceId"] == storage,
            rule["destination"]["subresourceTarget"],
        )
        for rule in rules.values()
    } == {(False, "amlregistry"), (True, "queue"), (True, "table")}
    approver = qa_managed.one(
        "azure-native:authorization:RoleAssignment", "workspace-identity-registry-approver"
    )
    registry = rules["shared-model-registry"]["destination"]["serviceResourceId"]
    assert approver.inputs["scope"] == registry
    assert qa_managed.depends_on(workspace, approver)
    report = evaluate(policy_resources(qa_managed), "qa")
    assert report.violations == []
    assert "mlops-managed-network" in report.evaluated


ML_WORKSPACE = "machinelearningservices:Workspace"

MANAGED_CASES: list[tuple[str, Callable[[list[PolicyResource]], list[PolicyResource]], str]] = [
    ("not provisioned",
     lambda rs: _edit(rs, ML_WORKSPACE, lambda p: p.pop("provisionNetworkNow")),
     "does not provision its managed network at creation"),
    ("no queue rule",
     lambda rs: _edit(rs, ML_WORKSPACE,
                      lambda p: p["managedNetwork"]["outboundRules"].pop("default-storage-queue")),
     "no queue rule to its storage"),
    ("no approver", lambda rs: [r for r in rs if not r.name.endswith("registry-approver")],
     "cannot approve its private endpoint"),
    ("approver after the workspace",
     lambda rs: [dataclasses.replace(r, dependencies=()) if r.resource_type.endswith(ML_WORKSPACE)
                 else r for r in rs],
     "is created before it may approve"),
]  # fmt: skip


def _edit(
    resources: list[PolicyResource], type_suffix: str, change: Callable[[dict[str, Any]], object]
) -> list[PolicyResource]:
    result = []
    for resource in resources:
        if resource.resource_type.endswith(f":{type_suffix}"):
            props = copy.deepcopy(dict(resource.props))
            change(props)
            resource = dataclasses.replace(resource, props=props)
        result.append(resource)
    return result


@pytest.mark.parametrize(
    ("change", "expected"), [(c, e) for _, c, e in MANAGED_CASES], ids=[c[0] for c in MANAGED_CASES]
)
def test_managed_network_policy_catches(qa_managed: RecordedStack, change, expected: str) -> None:
    resources = change(policy_resources(qa_managed))
    messages = [v.message for v in evaluate(resources, "qa").violations]
    assert any(expected in m for m in messages), messages


def test_locks_guard_prod_and_the_shared_registry(recordings: dict[str, RecordedStack]) -> None:
    def locked(recorded: RecordedStack) -> set[str]:
        return {
            lock.inputs["scope"].rsplit("/", 2)[-2]
            for lock in recorded.of_type("azure-native:authorization:ManagementLockByScope")
            if lock.inputs["level"] == "CanNotDelete"
        }

    assert locked(recordings["prod"]) == {"workspaces", "vaults"}
    assert locked(recordings["dev"]) == {"registries"}  # dev owns the shared registry
    assert locked(recordings["qa"]) == set()
    resources = [
        r
        for r in policy_resources(recordings["prod"])
        if not (r.resource_type.endswith(":ManagementLockByScope") and "keyvault" in r.name)
    ]
    messages = [(v.resource, v.message) for v in evaluate(resources, "prod").violations]
    assert messages == [("workspace-keyvault", "has no CanNotDelete lock")]


def test_a_lock_on_a_managed_network_workspace_is_caught(qa_managed: RecordedStack) -> None:
    resources = policy_resources(qa_managed)
    workspace = next(r for r in resources if r.resource_type.endswith(ML_WORKSPACE))
    lock = PolicyResource(
        "azure-native:authorization:ManagementLockByScope", "lock", "urn:lock",
        {"scope": workspace.outputs["id"], "level": "CanNotDelete"},
    )  # fmt: skip
    messages = [v.message for v in evaluate([*resources, lock], "qa").violations]
    assert "has a managed network, which resource locks can block" in messages


# --- the "Done when", read from `mlops infra plan --stack prod --format json` --------


def test_prod_plan_meets_the_done_criteria(recorded_prod_plan: dict[str, Any]) -> None:
    from infra.addresses import is_documentation_range

    resources = recorded_prod_plan["resources"]

    def of(type_token: str) -> list[dict[str, Any]]:
        return [r for r in resources if r["type"] == type_token]

    workspace = of("azure-native:machinelearningservices:Workspace")[0]["inputs"]
    assert of("azure-native:machinelearningservices:Compute")  # Kubernetes compute attached...
    assert workspace.get("managedNetwork") is None  # ...so no managed network
    groups = sorted(
        r["inputs"]["privateLinkServiceConnections"][0]["groupIds"][0]
        for r in of("azure-native:network:PrivateEndpoint")
    )
    assert groups == ["amlworkspace", "blob", "file", "registry", "vault"]
    assert len(of("azure-native:network:PrivateDnsZoneGroup")) == 5
    assert workspace["identity"]["type"] == "UserAssigned"
    for type_token in (
        "azure-native:machinelearningservices:OnlineEndpoint",
        "azure-native:machinelearningservices:BatchEndpoint",
    ):
        assert of(type_token)[0]["inputs"]["identity"]["type"] == "UserAssigned"
    training = [
        r for r in of("azure-native:machinelearningservices:Compute")
        if r["inputs"]["properties"]["computeType"] == "AmlCompute"
    ]  # fmt: skip
    assert training[0]["inputs"]["identity"]["type"] == "UserAssigned"
    grants = [
        (g["inputs"]["principalId"], g["inputs"]["roleDefinitionId"], g["inputs"]["scope"])
        for g in of("azure-native:authorization:RoleAssignment")
    ]
    assert len(grants) == len(set(grants))
    extension = of("azure-native:kubernetesconfiguration:Extension")[0]["inputs"]
    settings = extension["configurationSettings"]
    assert settings["scoringFe.serviceType.internalLoadBalancer"] == "True"
    assert settings["allowInsecureConnections"] == "False" and settings["sslCname"]
    profile = of("azure-native:containerservice:ManagedCluster")[0]["inputs"][
        "apiServerAccessProfile"
    ]
    ranges = profile.get("authorizedIPRanges") or []
    assert profile.get("enablePrivateCluster") is True or (
        ranges and not any(is_documentation_range(cidr) for cidr in ranges)
    )
    assert len(of("azure-native:monitor:DataCollectionRuleAssociation")) == len(
        of("azure-native:containerservice:ManagedCluster")
    )


@pytest.fixture
def recorded_prod_plan(
    monkeypatch: pytest.MonkeyPatch, recordings: dict[str, RecordedStack]
) -> dict[str, Any]:
    """`mlops infra plan --stack prod --format json` through the CLI, on the session recording."""
    import json

    from typer.testing import CliRunner

    import pipelines.commands.infra as commands
    from pipelines.cli import app

    monkeypatch.setattr(commands, "_record", lambda stack: recordings[stack])
    result = CliRunner().invoke(app, ["infra", "plan", "--stack", "prod", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
