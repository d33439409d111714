"""The Azure DevOps stack under Pulumi mocks: what it creates and what its settings refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.devops.settings import (
    NAMESPACE,
    DevopsSettingsError,
    read_stack_config,
    settings_from_config,
)
from infra.tooling.devops_recording import RecordedDevops
from infra.tooling.recording import RecordedResource

ENV = "azuredevops:index/environment:Environment"
APPROVAL = "azuredevops:index/checkApproval:CheckApproval"
BRANCH = "azuredevops:index/checkBranchControl:CheckBranchControl"
LOCK = "azuredevops:index/checkExclusiveLock:CheckExclusiveLock"
ENDPOINT = "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM"
FEDERATION = "azure-native:managedidentity:FederatedIdentityCredential"


def checks_of(devops: RecordedDevops, environment: str) -> set[str]:
    env_id = devops.named(environment).outputs["id"]
    kinds = {APPROVAL: "approval", BRANCH: "branch", LOCK: "lock"}
    return {
        kinds[r.type]
        for r in devops.resources
        if r.type in kinds and r.inputs["targetResourceId"] == env_id
    }


def test_components_parent_every_resource(devops: RecordedDevops) -> None:
    components = {r.urn: r for r in devops.resources if r.is_component}
    assert {r.type for r in components.values()} == {
        f"mlops:devops:{name}"
        for name in (
            "PipelineIdentity",
            "ServiceConnection",
            "VariableGroups",
            "Environments",
            "BranchChecks",
            "BranchPolicies",
            "Pipelines",
            "RetrainWebhook",
        )
    }
    for resource in devops.resources:
        if resource.custom:
            assert resource.parent in components, resource.name


def test_qa_and_prod_have_approval_branch_control_and_lock(devops: RecordedDevops) -> None:
    assert {r.inputs["name"] for r in devops.of_type(ENV)} >= {"qa", "prod"}
    for environment in ("qa", "prod", "infra-prod"):
        assert checks_of(devops, environment) == {"approval", "branch", "lock"}
    approval = next(
        r
        for r in devops.of_type(APPROVAL)
        if r.inputs["targetResourceId"] == devops.named("prod").outputs["id"]
    )
    assert approval.inputs["approvers"] == list(devops.settings.approvers)
    assert approval.inputs["requesterCanApprove"] is False
    branch = devops.named("prod-branch")
    assert branch.inputs["allowedBranches"] == "refs/heads/main"
    assert branch.inputs["verifyBranchProtection"] is True


def endpoint(devops: RecordedDevops, name: str) -> RecordedResource:
    [found] = [r for r in devops.of_type(ENDPOINT) if r.inputs["serviceEndpointName"] == name]
    return found


def test_both_service_connections_are_secretless_and_federated(devops: RecordedDevops) -> None:
    identities = {
        r.outputs["clientId"]: r.inputs["resourceName"]
        for r in devops.of_type("azure-native:managedidentity:UserAssignedIdentity")
    }
    federations = devops.of_type(FEDERATION)
    settings = devops.settings
    expected = {
        settings.service_connection.name: settings.service_connection.identity_name,
        settings.preview_connection.name: settings.preview_connection.identity_name,
    }
    assert {e.inputs["serviceEndpointName"] for e in devops.of_type(ENDPOINT)} == set(expected)
    for name, identity_name in expected.items():
        connection = endpoint(devops, name)
        inputs = connection.inputs
        assert inputs["serviceEndpointAuthenticationScheme"] == "WorkloadIdentityFederation"
        assert set(inputs["credentials"]) == {"serviceprincipalid"}
        assert not connection.secret_inputs
        assert identities[inputs["credentials"]["serviceprincipalid"]] == identity_name
        [federation] = [
            f
            for f in federations
            if f.inputs["subject"] == connection.outputs["workloadIdentityFederationSubject"]
        ]
        assert federation.inputs["issuer"] == connection.outputs["workloadIdentityFederationIssuer"]
        assert federation.inputs["audiences"] == ["api://AzureADTokenExchange"]
        assert federation.inputs["resourceName"] == identity_name


def test_secrets_group_is_linked_to_key_vault(devops: RecordedDevops) -> None:
    secrets = devops.named("secrets")
    deploying = endpoint(devops, devops.settings.service_connection.name)
    assert secrets.inputs["keyVault"] == {
        "name": devops.settings.key_vault.name,
        "serviceEndpointId": deploying.outputs["id"],
    }
    assert all("value" not in v for v in secrets.inputs["variables"])
    assert secrets.inputs["allowAccess"] is False
    # Linking reads the vault: it waits for the identity's role and the federation.
    assert devops.named("pipelines-vault-secrets").urn in secrets.dependencies


def test_role_assignments_are_scoped_and_typed(devops: RecordedDevops) -> None:
    sub = devops.settings.service_connection.subscription_id
    scopes = {
        r.name: r.inputs["scope"]
        for r in devops.of_type("azure-native:authorization:RoleAssignment")
    }
    assert scopes["pipelines-state-blob"].endswith(
        f"storageAccounts/{devops.settings.state_backend.storage_account}"
    )
    assert scopes["pipelines-sub-contributor"] == f"/subscriptions/{sub}"
    for r in devops.of_type("azure-native:authorization:RoleAssignment"):
        assert r.inputs["principalType"] == "ServicePrincipal"


def test_four_pipelines_authorized_for_what_they_use(devops: RecordedDevops) -> None:
    definitions = devops.of_type("azuredevops:index/buildDefinition:BuildDefinition")
    assert {d.inputs["name"] for d in definitions} == {
        "mlops-build",
        "mlops-retrain",
        "mlops-release",
        "mlops-infra",
    }
    for d in definitions:
        assert d.inputs["repository"]["ymlPath"].startswith(".azure-pipelines/")
        assert d.inputs["ciTrigger"] == {"useYaml": True}
    release_id = int(devops.named("mlops-release").outputs["id"])
    release_auth = {
        r.inputs["resourceId"]
        for r in devops.of_type("azuredevops:index/pipelineAuthorization:PipelineAuthorization")
        if r.inputs["pipelineId"] == release_id
    }
    assert devops.named("prod").outputs["id"] in release_auth
    assert devops.outputs["service_connection_name"] == "mlops-azure"


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(read_stack_config())


def test_the_stack_file_is_valid(raw: dict[str, Any]) -> None:
    settings = settings_from_config(raw)
    assert settings.repository.ref == "refs/heads/main"


def test_unknown_key_gets_a_suggestion(raw: dict[str, Any]) -> None:
    raw[f"{NAMESPACE}:aprovers"] = raw.pop(f"{NAMESPACE}:approvers")
    with pytest.raises(DevopsSettingsError, match="did you mean mlops-devops:approvers"):
        settings_from_config(raw)


def test_prod_cannot_drop_a_check(raw: dict[str, Any]) -> None:
    raw[f"{NAMESPACE}:environments"]["prod"]["exclusiveLock"] = False
    with pytest.raises(DevopsSettingsError, match=r"environments\.prod"):
        settings_from_config(raw)


def test_approval_needs_approvers(raw: dict[str, Any]) -> None:
    raw[f"{NAMESPACE}:approvers"] = []
    with pytest.raises(DevopsSettingsError, match="approvers"):
        settings_from_config(raw)


def test_github_needs_a_service_connection(raw: dict[str, Any]) -> None:
    raw[f"{NAMESPACE}:repository"] = {"type": "GitHub", "name": "contoso/mlops", "branch": "main"}
    with pytest.raises(DevopsSettingsError, match="githubServiceConnectionId"):
        settings_from_config(raw)


def test_unknown_subscription_role_is_refused(raw: dict[str, Any]) -> None:
    raw[f"{NAMESPACE}:serviceConnection"]["subscriptionRoles"] = ["Owner"]
    with pytest.raises(DevopsSettingsError, match="Owner"):
        settings_from_config(raw)


def test_retrain_pipeline_may_use_the_incoming_webhook(devops: RecordedDevops) -> None:
    from infra.devops.program import RETRAIN_WEBHOOK, RETRAIN_WEBHOOK_CONNECTION

    (webhook,) = devops.of_type(
        "azuredevops:index/serviceendpointIncomingwebhook:ServiceendpointIncomingwebhook"
    )
    assert webhook.inputs["serviceEndpointName"] == RETRAIN_WEBHOOK_CONNECTION
    assert webhook.inputs["webhookName"] == RETRAIN_WEBHOOK
    assert "secret" not in webhook.inputs  # Event Grid cannot sign its deliveries
    retrain_id = int(devops.named("mlops-retrain").outputs["id"])
    authorized = {
        r.inputs["resourceId"]
        for r in devops.of_type("azuredevops:index/pipelineAuthorization:PipelineAuthorization")
        if r.inputs["pipelineId"] == retrain_id and r.inputs["type"] == "endpoint"
    }
    assert webhook.outputs["id"] in authorized
    assert devops.outputs["retrain_webhook_connection"] == RETRAIN_WEBHOOK_CONNECTION


def test_the_webhook_authorization_keeps_its_urn(devops: RecordedDevops) -> None:
    """Folded into authorizations(), it aliases its old parent: no delete and recreate."""
    (component,) = devops.of_type("mlops:devops:RetrainWebhook")
    (webhook,) = devops.of_type(
        "azuredevops:index/serviceendpointIncomingwebhook:ServiceendpointIncomingwebhook"
    )
    (grant,) = [
        r
        for r in devops.of_type("azuredevops:index/pipelineAuthorization:PipelineAuthorization")
        if r.inputs["resourceId"] == webhook.outputs["id"]
    ]
    assert devops.by_urn[grant.parent].type == "mlops:devops:Pipelines"
    # The URN it had as RetrainWebhook's child: same name and type under that parent.
    assert grant.name == "mlops-retrain-webhook"
    assert grant.alias_parents == (component.urn,)
    assert [r.name for r in devops.resources if r.alias_parents] == [grant.name]
