"""Whole-graph assertions on the recorded dev, qa and prod stacks (Pulumi mocks)."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

from infra.naming import name_problem
from infra.policies import ALLOWED_ROLES, EXPLICIT_NAMES, REQUIRED_TAGS, ROLE_SCOPES, TAGGABLE
from infra.tooling.recording import RecordedResource, RecordedStack

EXTENSION = "azure-native:kubernetesconfiguration:Extension"
INSTANCE_TYPE = "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType"
NAMESPACE = "kubernetes:core/v1:Namespace"
COMPUTE = "azure-native:machinelearningservices:Compute"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _sdk_class(type_token: str) -> type:
    _, module, name = type_token.split(":")
    return getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)


def _has_tags_argument(type_token: str) -> bool:
    cls = _sdk_class(type_token)
    for overload in typing.get_overloads(cls.__init__):
        if "tags" in inspect.signature(overload).parameters:
            return True
    return False


def test_taggable_list_matches_the_sdk(recordings: dict[str, RecordedStack]) -> None:
    types = {
        r.type
        for recorded in recordings.values()
        for r in recorded
        if r.custom and r.type.startswith("azure-native:")
    }
    assert types, "nothing recorded"
    for type_token in sorted(types):
        assert _has_tags_argument(type_token) == (type_token in TAGGABLE), type_token


def test_everything_taggable_is_tagged(recorded: RecordedStack) -> None:
    environment = recorded.settings.environment
    for resource in recorded:
        if resource.type not in TAGGABLE:
            continue
        tags = resource.inputs.get("tags") or {}
        for tag in REQUIRED_TAGS:
            assert tags.get(tag), f"{resource.name} lacks tag {tag}"
        assert tags["environment"] in (environment, "shared")
        assert tags["owner"] == "ml-platform"  # user tags from the stack file


def test_names_are_explicit_and_valid_for_azure(recorded: RecordedStack) -> None:
    checked = 0
    for resource in recorded:
        for path, rule in EXPLICIT_NAMES.get(resource.type, ()):
            name = resource.get(path)
            assert isinstance(name, str), f"{resource.name} relies on auto-naming ({path})"
            assert name_problem(rule, name) is None, name_problem(rule, name)
            checked += 1
    assert checked >= 12


def test_every_child_is_parented_to_its_component(recorded: RecordedStack) -> None:
    by_urn = recorded.by_urn
    for resource in recorded:
        if resource.is_component:
            assert resource.type.startswith("mlops:"), resource.type
            assert len(resource.type.split(":")) == 3
            continue
        if resource.type == "azure-native:resources:ResourceGroup":
            continue  # the stack's own resource group sits at the top
        parent = by_urn.get(resource.parent)
        assert parent is not None and parent.is_component, f"{resource.name} has no component"


def test_instance_types_wait_for_the_extension(recorded: RecordedStack) -> None:
    instance_types = recorded.of_type(INSTANCE_TYPE)
    if not recorded.settings.aks.enabled:
        assert instance_types == []
        return
    extension = recorded.one(EXTENSION)
    assert {r.get("metadata.name") for r in instance_types} == {
        i.name for i in recorded.settings.inference.instance_types
    }
    for instance_type in instance_types:
        assert extension.urn in instance_type.dependencies
        spec = instance_type.get("spec")
        assert spec["nodeSelector"] == {"mlops.azure.com/workload": "azureml"}


def test_compute_attach_waits_for_namespaces_and_extension(recorded: RecordedStack) -> None:
    attaches = [
        c for c in recorded.of_type(COMPUTE) if c.get("properties.computeType") == "Kubernetes"
    ]
    if not recorded.settings.aks.enabled:
        assert attaches == []
        return
    extension = recorded.one(EXTENSION)
    namespaces = {n.get("metadata.name"): n for n in recorded.of_type(NAMESPACE)}
    assert len(attaches) == 1 + len(recorded.settings.inference.team_namespaces)
    for attach in attaches:
        namespace = attach.get("properties.properties.namespace")
        assert recorded.depends_on(attach, namespaces[namespace])
        assert recorded.depends_on(attach, extension)
        for instance_type in recorded.of_type(INSTANCE_TYPE):
            assert recorded.depends_on(attach, instance_type)
        cluster = recorded.one("azure-native:containerservice:ManagedCluster")
        assert attach.get("properties.resourceId").endswith(cluster.get("resourceName"))


def test_kubernetes_objects_use_the_admin_provider(recorded: RecordedStack) -> None:
    kube = [r for r in recorded if r.type.startswith("kubernetes:")]
    if not recorded.settings.aks.enabled:
        assert kube == []
        return
    provider = recorded.one("pulumi:providers:kubernetes")
    assert "kubeconfig" in provider.secret_inputs
    assert "clusterAdmin" in provider.inputs["kubeconfig"]  # from the admin credentials
    for resource in kube:
        assert resource.provider.startswith(provider.urn), resource.name


def test_secrets_are_secret(recorded: RecordedStack) -> None:
    secrets = recorded.of_type("azure-native:keyvault:Secret")
    assert secrets, "no Key Vault secrets"
    for secret in secrets:
        assert "properties" in secret.secret_inputs
        assert secret.get("properties.value").startswith("offline-placeholder-")
        assert secret.get("properties.contentType")
        assert secret.get("properties.attributes.expires") > 1.7e9
    for tls in recorded.of_type("kubernetes:core/v1:Secret"):
        assert "stringData" in tls.secret_inputs
    for group in recorded.of_type("azure-native:containerinstance:ContainerGroup"):
        assert "containers" in group.secret_inputs
        assert "diagnostics" in group.secret_inputs  # the Log Analytics shared key
        variables = {v["name"]: v for v in group.inputs["containers"][0]["environmentVariables"]}
        assert "value" not in variables["SCORING_API_KEY"]
        assert variables["SCORING_API_KEY"]["secureValue"].startswith("offline-placeholder-")
    assert recorded.secret_outputs == {"app_insights_connection_string"}


def _role(resource: RecordedResource) -> str:
    return ALLOWED_ROLES[str(resource.inputs["roleDefinitionId"]).rsplit("/", 1)[-1]]


def test_role_assignments_are_least_privilege(recorded: RecordedStack) -> None:
    assignments = recorded.of_type(ROLE_ASSIGNMENT)
    assert assignments
    for assignment in assignments:
        inputs = assignment.inputs
        role = _role(assignment)  # KeyError for anything off the list (Owner, Contributor...)
        assert inputs["principalType"] == "ServicePrincipal"
        scope = inputs["scope"]
        assert any(f"/providers/{kind}/" in scope for kind in ROLE_SCOPES[role]), (role, scope)
        assert inputs["roleDefinitionId"].startswith("/subscriptions/")
        assert len(inputs["roleAssignmentName"]) == 36  # a stable GUID


def test_acr_pull_for_training_endpoints_kubelet_and_aci(recorded: RecordedStack) -> None:
    pulls = {a.name for a in recorded.of_type(ROLE_ASSIGNMENT) if _role(a) == "AcrPull"}
    assert {"training-identity-acr-pull", "endpoints-identity-acr-pull"} <= pulls
    assert ("access-kubelet-acr-pull" in pulls) == recorded.settings.aks.enabled
    assert ("qa-scoring-acr-pull" in pulls) == recorded.settings.aci.enabled
    roles = {_role(a) for a in recorded.of_type(ROLE_ASSIGNMENT)}
    assert {"Key Vault Administrator", "Storage Blob Data Contributor"} <= roles
    assert {"Storage Blob Data Reader", "AzureML Registry User"} <= roles


def test_kubelet_pull_uses_the_kubelet_identity(recorded: RecordedStack) -> None:
    if not recorded.settings.aks.enabled:
        pytest.skip("no AKS in this stack")
    grant = recorded.one(ROLE_ASSIGNMENT, "access-kubelet-acr-pull")
    cluster = recorded.one("azure-native:containerservice:ManagedCluster")
    kubelet = cluster.outputs["identityProfile"]["kubeletidentity"]["objectId"]
    assert grant.inputs["principalId"] == kubelet


def test_aci_pulls_only_after_its_grant(recorded: RecordedStack) -> None:
    if not recorded.settings.aci.enabled:
        pytest.skip("no ACI in this stack")
    group = recorded.one("azure-native:containerinstance:ContainerGroup")
    grant = recorded.one(ROLE_ASSIGNMENT, "qa-scoring-acr-pull")
    assert grant.urn in group.dependencies
    credentials = group.inputs["imageRegistryCredentials"]
    assert credentials[0]["identity"].endswith("id-mlops-qa-aci")
    assert "password" not in credentials[0]
    container = group.inputs["containers"][0]
    assert container["image"] == "crmlopsqat3mpl.azurecr.io/diabetes-scoring:latest"
    assert container["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.5}
    assert group.inputs["restartPolicy"] == "Always"
    assert "containers[0].image" in group.ignore_changes  # the release rolls the tag


def test_endpoints_leave_traffic_to_the_release(recorded: RecordedStack) -> None:
    online = recorded.one("azure-native:machinelearningservices:OnlineEndpoint")
    batch = recorded.one("azure-native:machinelearningservices:BatchEndpoint")
    assert "properties.traffic" in online.ignore_changes
    assert "properties.defaults" in batch.ignore_changes
    assert online.get("properties.authMode") == "Key"
    if recorded.settings.aks.enabled:
        assert online.get("kind") == "Kubernetes"
        attach = recorded.one(
            COMPUTE, "azureml-k8s-attach-" + recorded.settings.inference.namespace
        )
        assert online.get("properties.compute") == attach.outputs["id"]
    else:
        assert online.get("kind") == "Managed"


def test_training_cluster_scales_to_zero(recorded: RecordedStack) -> None:
    cluster = recorded.one(COMPUTE, "training-cluster")
    assert cluster.get("properties.computeType") == "AmlCompute"
    assert cluster.get("properties.disableLocalAuth") is True
    assert cluster.get("identity.type") == "UserAssigned"
    scale = cluster.get("properties.properties.scaleSettings")
    assert scale["minNodeCount"] == 0
    assert scale["nodeIdleTimeBeforeScaleDown"].startswith("PT")


def test_workspace_basics(recorded: RecordedStack) -> None:
    workspace = recorded.one("azure-native:machinelearningservices:Workspace")
    assert workspace.get("v1LegacyMode") is False
    assert workspace.get("identity.type") == "UserAssigned"
    for key in ("storageAccount", "keyVault", "applicationInsights", "containerRegistry"):
        assert workspace.get(key).startswith("/subscriptions/")
    insights = recorded.one("azure-native:applicationinsights:Component")
    assert insights.get("workspaceResourceId").endswith(recorded.settings.names.log_analytics)
    diagnostics = {
        d.get("resourceUri").rsplit("/", 1)[-1]
        for d in recorded.of_type("azure-native:monitor:DiagnosticSetting")
    }
    assert recorded.settings.names.ml_workspace in diagnostics


def test_aks_baseline(recorded: RecordedStack) -> None:
    if not recorded.settings.aks.enabled:
        assert not recorded.of_type("azure-native:containerservice:ManagedCluster")
        return
    cluster = recorded.one("azure-native:containerservice:ManagedCluster")
    assert cluster.get("identity.type") == "UserAssigned"
    assert cluster.get("aadProfile.enableAzureRBAC") is True
    assert cluster.get("enableRBAC") is True
    assert cluster.get("disableLocalAccounts") is False  # the Azure ML extension needs them
    assert cluster.get("addonProfiles.kubeDashboard.enabled") is False
    assert cluster.get("addonProfiles.omsagent.enabled") is True
    assert cluster.get("networkProfile.networkPolicy") == "cilium"
    assert cluster.get("autoUpgradeProfile.upgradeChannel") == "stable"
    pools = {p["name"]: p for p in cluster.get("agentPoolProfiles")}
    assert pools["system"]["mode"] == "System"
    assert pools["azureml"]["nodeLabels"] == {"mlops.azure.com/workload": "azureml"}
    for pool in pools.values():
        assert pool["enableAutoScaling"] is True
        assert pool["minCount"] <= pool["maxCount"]
        assert pool["maxPods"] >= 50
    assert "agentPoolProfiles[*].count" in cluster.ignore_changes


def test_invokes_are_the_documented_ones(recorded: RecordedStack) -> None:
    expected = {"azure-native:authorization:getClientConfig"}
    if recorded.settings.aks.enabled:
        expected.add("azure-native:containerservice:listManagedClusterAdminCredentials")
    if recorded.settings.aci.enabled:
        expected.add("azure-native:operationalinsights:getSharedKeys")
    if not recorded.settings.model_registry.create:
        expected.add("azure-native:machinelearningservices:getRegistry")
    assert set(recorded.invokes) == expected


def test_recording_is_repeatable(recordings: dict[str, RecordedStack]) -> None:
    """A second recording in the same process sees the same graph (no import-time state)."""
    from infra.tooling.recording import record_stack

    again = record_stack("qa")
    # Registration order varies (the mock engine runs on threads); the graph does not.
    assert sorted((r.type, r.name) for r in again) == sorted(
        (r.type, r.name) for r in recordings["qa"]
    )
    assert again.outputs == recordings["qa"].outputs
