"""Identities: user-assigned everywhere Azure ML would otherwise manage grants itself.

Sources: Learn "how-to-identity-based-service-authentication" (the roles a user-assigned
workspace identity needs) and "concept-endpoints-online-auth" (Azure ML grants AcrPull and
Storage Blob Data Reader to a *system-assigned* endpoint identity itself; a user-assigned
one gets nothing and must hold its roles before the endpoint is created).
"""

from __future__ import annotations

import dataclasses

import pytest

from infra.policies import ALLOWED_ROLES, PolicyResource, evaluate
from infra.tooling.checks import policy_resources
from infra.tooling.recording import RecordedResource, RecordedStack

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"


def _role(resource: RecordedResource) -> str:
    return ALLOWED_ROLES[str(resource.inputs["roleDefinitionId"]).rsplit("/", 1)[-1]]


def _grants_of(recorded: RecordedStack, identity_name: str) -> dict[str, set[str]]:
    """Role -> ARM types of the scopes granted to one user-assigned identity."""
    identity = recorded.one(IDENTITY, identity_name)
    result: dict[str, set[str]] = {}
    for grant in recorded.of_type(ROLE_ASSIGNMENT):
        if grant.inputs["principalId"] == identity.outputs["principalId"]:
            scope_type = grant.inputs["scope"].split("/providers/")[-1].rsplit("/", 1)[0]
            result.setdefault(_role(grant), set()).add(scope_type)
    return result


def test_azureml_resources_run_as_user_assigned_identities(recorded: RecordedStack) -> None:
    workspace = recorded.one("azure-native:machinelearningservices:Workspace")
    identity = recorded.one(IDENTITY, "workspace-identity")
    assert workspace.inputs["identity"]["type"] == "UserAssigned"
    assert workspace.inputs["primaryUserAssignedIdentity"] == identity.outputs["id"]
    training = recorded.one("azure-native:machinelearningservices:Compute", "training-cluster")
    for resource in [
        training,
        recorded.one("azure-native:machinelearningservices:OnlineEndpoint"),
        recorded.one("azure-native:machinelearningservices:BatchEndpoint"),
    ]:
        assert resource.inputs["identity"]["type"] == "UserAssigned", resource.name


def test_workspace_identity_holds_exactly_the_documented_roles(recorded: RecordedStack) -> None:
    assert _grants_of(recorded, "workspace-identity") == {
        "Contributor": {
            "Microsoft.Storage/storageAccounts",
            "Microsoft.KeyVault/vaults",
            "Microsoft.ContainerRegistry/registries",
            "Microsoft.Insights/components",
            "Microsoft.MachineLearningServices/workspaces",
        },
        "Storage Blob Data Contributor": {"Microsoft.Storage/storageAccounts"},
        "Key Vault Administrator": {"Microsoft.KeyVault/vaults"},
    }


def test_workspace_waits_for_its_identity_grants(recorded: RecordedStack) -> None:
    workspace = recorded.one("azure-native:machinelearningservices:Workspace")
    before = [
        g for g in recorded.of_type(ROLE_ASSIGNMENT) if g.name.startswith("workspace-identity-")
    ]
    assert len(before) == 7
    for grant in before:
        if grant.name == "workspace-identity-workspace-contributor":
            assert grant.inputs["scope"] == workspace.outputs["id"]
        else:
            assert recorded.depends_on(workspace, grant), grant.name


def test_endpoint_and_training_identities(recorded: RecordedStack) -> None:
    assert _grants_of(recorded, "endpoints-identity") == {
        "AcrPull": {"Microsoft.ContainerRegistry/registries"},
        "Storage Blob Data Reader": {"Microsoft.Storage/storageAccounts"},
        "AzureML Registry User": {"Microsoft.MachineLearningServices/registries"},
    }
    assert _grants_of(recorded, "training-identity") == {
        "AcrPull": {"Microsoft.ContainerRegistry/registries"},
        "Storage Blob Data Contributor": {"Microsoft.Storage/storageAccounts"},
    }
    online = recorded.one("azure-native:machinelearningservices:OnlineEndpoint")
    batch = recorded.one("azure-native:machinelearningservices:BatchEndpoint")
    training = recorded.one("azure-native:machinelearningservices:Compute", "training-cluster")
    for grant in recorded.of_type(ROLE_ASSIGNMENT):
        if grant.name.startswith("endpoints-identity-"):
            assert recorded.depends_on(online, grant) and recorded.depends_on(batch, grant)
        if grant.name.startswith("training-identity-"):
            assert recorded.depends_on(training, grant)


def test_no_two_grants_share_principal_role_and_scope(recorded: RecordedStack) -> None:
    keys = [
        (g.inputs["principalId"], g.inputs["roleDefinitionId"], g.inputs["scope"])
        for g in recorded.of_type(ROLE_ASSIGNMENT)
    ]
    assert len(keys) == len(set(keys))
    report = evaluate(policy_resources(recorded), recorded.settings.environment)
    assert {"mlops-unique-grants", "mlops-no-grants-to-azureml-managed"} <= set(report.evaluated)


def _violations(resources: list[PolicyResource], policy: str) -> list[str]:
    return [v.message for v in evaluate(resources, "dev").violations if v.policy == policy]


def test_a_repeated_grant_is_caught(recordings: dict[str, RecordedStack]) -> None:
    resources = policy_resources(recordings["dev"])
    grant = next(r for r in resources if r.resource_type == ROLE_ASSIGNMENT)
    copy = dataclasses.replace(grant, urn=grant.urn + "-copy", name=grant.name + "-copy")
    messages = _violations([*resources, copy], "mlops-unique-grants")
    assert messages == [f"repeats the grant of {grant.name} (409 RoleAssignmentExists)"]


def test_a_grant_to_a_system_assigned_azureml_identity_is_caught(
    recordings: dict[str, RecordedStack],
) -> None:
    resources = policy_resources(recordings["dev"])
    grant = next(r for r in resources if r.resource_type == ROLE_ASSIGNMENT)
    for index, resource in enumerate(resources):
        if resource.resource_type.endswith(":OnlineEndpoint"):
            outputs = {
                **resource.outputs,
                "identity": {"type": "SystemAssigned", "principalId": grant.props["principalId"]},
            }
            resources[index] = dataclasses.replace(resource, outputs=outputs)
    messages = _violations(resources, "mlops-no-grants-to-azureml-managed")
    assert messages and "whose roles Azure ML manages" in messages[0]


@pytest.mark.parametrize("role", ["Contributor", "Key Vault Administrator"])
def test_workspace_only_roles_to_another_identity_are_caught(
    recordings: dict[str, RecordedStack], role: str
) -> None:
    resources = policy_resources(recordings["dev"])
    guid = {name: guid for guid, name in ALLOWED_ROLES.items()}[role]
    for index, resource in enumerate(resources):
        if resource.resource_type == ROLE_ASSIGNMENT and resource.name.startswith(
            "training-identity-"
        ):
            props = dict(resource.props)
            props["roleDefinitionId"] = props["roleDefinitionId"].rsplit("/", 1)[0] + "/" + guid
            props["scope"] = next(
                r.props["scope"] for r in resources if r.name == "workspace-identity-keyvault-admin"
            )
            resources[index] = dataclasses.replace(resource, props=props)
            break
    assert _violations(resources, "mlops-workspace-only-roles") == [
        f"grants {role} to an identity other than the workspace's"
    ]
