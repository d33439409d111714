"""The Azure DevOps stack keeps production out of reach of pull-request code: every check and
authorization it creates, the branch policies that validate pull requests on Azure Repos, the
GitHub pull-request trigger, the read-only preview identity, the conditioned RBAC administrator,
and the offline plan that lists them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.devops import program
from infra.devops.settings import (
    NAMESPACE,
    SUBSCRIPTION_ROLES,
    DevopsSettingsError,
    read_stack_config,
    settings_from_config,
)
from infra.settings import available_stacks
from infra.tooling.devops_recording import REPOSITORY_ID, RecordedDevops, record_devops
from infra.tooling.recording import RecordedResource, record_stack
from pipelines.cli import app

BRANCH = "azuredevops:index/checkBranchControl:CheckBranchControl"
APPROVAL = "azuredevops:index/checkApproval:CheckApproval"
LOCK = "azuredevops:index/checkExclusiveLock:CheckExclusiveLock"
ENDPOINT = "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM"
AUTHORIZATION = "azuredevops:index/pipelineAuthorization:PipelineAuthorization"
DEFINITION = "azuredevops:index/buildDefinition:BuildDefinition"
VALIDATION = "azuredevops:index/branchPolicyBuildValidation:BranchPolicyBuildValidation"
REVIEWERS = "azuredevops:index/branchPolicyMinReviewers:BranchPolicyMinReviewers"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
GITHUB_CONNECTION = "00000000-0000-0000-0000-0000000000c1"


def names_by_id(devops: RecordedDevops) -> dict[str, str]:
    """What each Azure DevOps id stands for: `endpoint:mlops-azure`, `environment:prod`, …"""
    kinds = {
        ENDPOINT: ("endpoint", "serviceEndpointName"),
        "azuredevops:index/serviceendpointIncomingwebhook:ServiceendpointIncomingwebhook": (
            "endpoint",
            "serviceEndpointName",
        ),
        "azuredevops:index/variableGroup:VariableGroup": ("variablegroup", "name"),
        "azuredevops:index/environment:Environment": ("environment", "name"),
        DEFINITION: ("pipeline", "name"),
    }
    found = {}
    for resource in devops.resources:
        if resource.type in kinds:
            kind, key = kinds[resource.type]
            found[str(resource.outputs["id"])] = f"{kind}:{resource.inputs[key]}"
    return found


def test_every_check_the_stack_creates(devops: RecordedDevops) -> None:
    named = names_by_id(devops)
    branch = {
        named[r.inputs["targetResourceId"]]: r.inputs["targetResourceType"]
        for r in devops.of_type(BRANCH)
    }
    assert branch == {
        "endpoint:mlops-azure": "endpoint",
        "variablegroup:mlops-secrets": "variablegroup",
        **{f"environment:{e}": "environment" for e in ("qa", "prod", "infra-dev", "infra-qa")},
        "environment:infra-prod": "environment",
    }
    for check in devops.of_type(BRANCH):
        assert check.inputs["allowedBranches"] == "refs/heads/main"
        assert check.inputs["verifyBranchProtection"] is True
        assert check.inputs["ignoreUnknownProtectionStatus"] is False
    approvals = {named[r.inputs["targetResourceId"]]: r.inputs for r in devops.of_type(APPROVAL)}
    assert set(approvals) == {f"environment:{e}" for e in ("qa", "prod", "infra-qa", "infra-prod")}
    for target, inputs in approvals.items():
        environment = target.split(":")[1]
        assert inputs["instructions"] == program.approval_instructions(environment)
        assert inputs["requesterCanApprove"] is False
    locks = {named[r.inputs["targetResourceId"]] for r in devops.of_type(LOCK)}
    assert locks == {f"environment:{e}" for e in ("qa", "prod", "infra-dev", "infra-qa")} | {
        "environment:infra-prod"
    }
    # The read-only preview connection carries no check: pull requests must be able to use it.
    preview = devops.settings.preview_connection.name
    assert f"endpoint:{preview}" not in {
        named.get(r.inputs["targetResourceId"])
        for r in devops.resources
        if "targetResourceId" in r.inputs
    }


def test_every_authorization_the_stack_creates(devops: RecordedDevops) -> None:
    named = names_by_id(devops)
    by_pipeline: dict[str, set[str]] = {}
    for grant in devops.of_type(AUTHORIZATION):
        pipeline = named[str(int(grant.inputs["pipelineId"]))]
        resource = named[grant.inputs["resourceId"]]
        assert resource.split(":")[0] == grant.inputs["type"]
        by_pipeline.setdefault(pipeline, set()).add(resource)
    common = {"endpoint:mlops-azure", "variablegroup:mlops-secrets", "variablegroup:mlops-settings"}
    assert by_pipeline == {
        "pipeline:mlops-build": common,
        "pipeline:mlops-retrain": common | {"endpoint:mlops-retrain-events"},
        "pipeline:mlops-release": common | {"environment:qa", "environment:prod"},
        "pipeline:mlops-infra": common
        | {"endpoint:mlops-azure-preview"}
        | {f"environment:infra-{s}" for s in ("dev", "qa", "prod")},
    }


def test_pull_requests_into_main_are_validated_on_azure_repos(devops: RecordedDevops) -> None:
    named = names_by_id(devops)
    policies = {
        named[str(int(p.inputs["settings"]["buildDefinitionId"]))]: p.inputs
        for p in devops.of_type(VALIDATION)
    }
    assert set(policies) == {"pipeline:mlops-build", "pipeline:mlops-infra"}
    scope = [
        {"repositoryId": REPOSITORY_ID, "repositoryRef": "refs/heads/main", "matchType": "Exact"}
    ]
    for inputs in policies.values():
        assert inputs["enabled"] is True and inputs["blocking"] is True
        assert inputs["settings"]["scopes"] == scope
    # The infra pipeline's path filter is its YAML's pr.paths, which Azure Repos would ignore.
    infra_paths = program.pr_paths("mlops-infra")
    assert infra_paths is not None
    patterns = policies["pipeline:mlops-infra"]["settings"]["filenamePatterns"]
    assert patterns == program.policy_path_filters(infra_paths)
    assert "/infra/*" in patterns and "/Pulumi.prod.yaml" in patterns
    assert "filenamePatterns" not in policies["pipeline:mlops-build"]["settings"]
    [reviewers] = devops.of_type(REVIEWERS)
    settings = reviewers.inputs["settings"]
    assert settings["reviewerCount"] == devops.settings.branch_policies.min_reviewers
    assert settings["submitterCanVote"] is False and settings["lastPusherCannotApprove"] is True
    assert settings["scopes"] == scope
    for definition in devops.of_type(DEFINITION):
        assert "pullRequestTrigger" not in definition.inputs


def test_path_filters_follow_the_policy_format() -> None:
    assert program.policy_path_filters(
        {"include": ["infra/*", "/Pulumi.yaml"], "exclude": ["infra/devops/*"]}
    ) == ["/infra/*", "/Pulumi.yaml", "!/infra/devops/*"]
    assert program.policy_path_filters(None) == []


@pytest.fixture(scope="module")
def github() -> RecordedDevops:
    raw = copy.deepcopy(read_stack_config())
    raw[f"{NAMESPACE}:repository"] = {
        "type": "GitHub",
        "name": "contoso/mlops",
        "branch": "main",
        "githubServiceConnectionId": GITHUB_CONNECTION,
        "ignoreUnknownProtectionStatus": True,
    }
    return record_devops(raw)


def test_github_repositories_use_the_yaml_pr_trigger(github: RecordedDevops) -> None:
    assert github.of_type(VALIDATION) == [] and github.of_type(REVIEWERS) == []
    assert "mlops:devops:BranchPolicies" not in {r.type for r in github.resources}
    definitions = github.of_type(DEFINITION)
    assert len(definitions) == 4
    for definition in definitions:
        assert definition.inputs["pullRequestTrigger"] == {
            "useYaml": True,
            "initialBranch": "main",
            "forks": {"enabled": False, "shareSecrets": False},
        }
        assert definition.inputs["repository"]["serviceConnectionId"] == GITHUB_CONNECTION
        grants = {
            g.inputs["resourceId"]
            for g in github.of_type(AUTHORIZATION)
            if str(int(g.inputs["pipelineId"])) == str(definition.outputs["id"])
        }
        assert GITHUB_CONNECTION in grants
    # The documented GitHub choice reaches every branch-control check.
    assert {c.inputs["ignoreUnknownProtectionStatus"] for c in github.of_type(BRANCH)} == {True}


def grants_of(devops: RecordedDevops, prefix: str) -> dict[str, RecordedResource]:
    return {r.name: r for r in devops.of_type(ASSIGNMENT) if r.name.startswith(f"{prefix}-")}


def test_the_preview_identity_can_only_read(devops: RecordedDevops) -> None:
    settings = devops.settings
    roles = {
        r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]: r.inputs["scope"]
        for r in grants_of(devops, "preview").values()
    }
    sub = f"/subscriptions/{settings.service_connection.subscription_id}"
    assert roles == {
        SUBSCRIPTION_ROLES["Reader"]: sub,
        program.ROLES["Storage Blob Data Reader"]: program._state_account(settings),
        program.KEY_VAULT_CRYPTO_USER: program._vault(settings),
    }
    writers = {
        SUBSCRIPTION_ROLES["Contributor"],
        SUBSCRIPTION_ROLES["Role Based Access Control Administrator"],
        program.ROLES["Storage Blob Data Contributor"],
        program.ROLES["Key Vault Secrets User"],
    }
    assert not writers & set(roles)


def test_the_rbac_administrator_may_assign_only_the_platforms_roles(
    devops: RecordedDevops,
) -> None:
    grants = grants_of(devops, "pipelines")
    admin = grants["pipelines-sub-role-based-access-control-administrator"].inputs
    assert admin["roleDefinitionId"].endswith(
        SUBSCRIPTION_ROLES["Role Based Access Control Administrator"]
    )
    assert admin["condition"] == program.rbac_admin_condition(program.PLATFORM_ROLES)
    assert admin["conditionVersion"] == "2.0"
    for name, grant in grants.items():
        if name != "pipelines-sub-role-based-access-control-administrator":
            assert "condition" not in grant.inputs, name


@pytest.mark.parametrize("stack", available_stacks())
def test_every_role_a_platform_stack_assigns_is_allowed(stack: str) -> None:
    assigned = {
        r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
        for r in record_stack(stack).of_type(ASSIGNMENT)
    }
    assert assigned and assigned <= set(program.PLATFORM_ROLES)


def test_the_condition_is_the_documented_constrain_roles_template() -> None:
    # Learn, "Examples to delegate Azure role assignment management with conditions",
    # "Example: Constrain roles" (Azure PowerShell tab), verbatim.
    documented = (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
        "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        "ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, "
        "a795c7a0-d4a2-40c1-ae25-d81f01202912})) AND "
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
        "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        "ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, "
        "a795c7a0-d4a2-40c1-ae25-d81f01202912}))"
    )
    roles = ["a795c7a0-d4a2-40c1-ae25-d81f01202912", "5e467623-bb1f-42f4-a55d-6e525e11384b"]
    assert program.rbac_admin_condition(roles + roles[:1]) == documented
    with pytest.raises(ValueError, match="at least one role"):
        program.rbac_admin_condition([])


def test_each_approval_says_what_to_check() -> None:
    qa, prod = program.approval_instructions("qa"), program.approval_instructions("prod")
    assert "gate outcome" in qa and "smoke" not in qa  # QA is approved before its smoke tests
    assert "release-qa" in prod
    assert "qa stack" in program.approval_instructions("infra-qa")


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(read_stack_config())


@pytest.mark.parametrize(
    ("key", "change", "problem"),
    [
        ("previewConnection", {"name": "mlops-azure"}, "previewConnection.name"),
        ("previewConnection", {"identityName": "id-mlops-pipelines"}, "identityName"),
        ("branchPolicies", {"minReviewers": 0}, "branchPolicies.minReviewers"),
        ("branchPolicies", {"minReviewers": "2"}, "branchPolicies.minReviewers"),
        ("branchPolicies", {"minReviewers": True}, "branchPolicies.minReviewers"),
        ("repository", {"ignoreUnknownProtectionStatus": True}, "Azure Repos"),
    ],
)
def test_unsafe_settings_are_refused(
    raw: dict[str, Any], key: str, change: dict[str, Any], problem: str
) -> None:
    raw[f"{NAMESPACE}:{key}"].update(change)
    with pytest.raises(DevopsSettingsError, match=problem):
        settings_from_config(raw)


def test_a_missing_preview_connection_is_refused(raw: dict[str, Any]) -> None:
    del raw[f"{NAMESPACE}:previewConnection"]
    with pytest.raises(DevopsSettingsError, match="previewConnection is missing"):
        settings_from_config(raw)


def test_whole_numbers_from_pulumi_are_accepted(raw: dict[str, Any]) -> None:
    raw[f"{NAMESPACE}:branchPolicies"]["minReviewers"] = 2.0  # the engine passes floats
    assert settings_from_config(raw).branch_policies.min_reviewers == 2


def test_the_offline_plan_lists_the_devops_stack() -> None:
    result = CliRunner().invoke(app, ["infra", "plan", "--stack", "devops", "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert set(plan) == {"stack", "environment", "resource_count", "resources", "outputs"}
    assert plan["stack"] == "devops"
    resources = plan["resources"]
    assert plan["resource_count"] == sum(1 for r in resources if r["kind"] == "resource")
    assert {tuple(sorted(r)) for r in resources} == {
        ("azure_name", "component", "depends_on", "inputs", "kind", "name", "secret_inputs", "type")
    }
    names = {r["azure_name"] for r in resources if r["type"] == VALIDATION}
    assert names == {
        "mlops-build validates the pull request",
        "mlops-infra validates the pull request",
    }
    branch_targets = {r["inputs"]["targetResourceType"] for r in resources if r["type"] == BRANCH}
    assert {"endpoint", "variablegroup", "environment"} == branch_targets
    endpoints = {r["azure_name"] for r in resources if r["type"] == ENDPOINT}
    assert endpoints == {"mlops-azure", "mlops-azure-preview"}
    assert plan["outputs"]["preview_service_connection_name"] == "mlops-azure-preview"


def test_the_offline_plan_tree_names_every_role_and_check() -> None:
    result = CliRunner().invoke(app, ["infra", "plan", "--stack", "devops"], terminal_width=400)
    assert result.exit_code == 0, result.output
    sub = read_stack_config()[f"{NAMESPACE}:serviceConnection"]["subscriptionId"]
    for shown in (
        f"Reader on {sub}",
        f"Role Based Access Control Administrator on {sub}",
        "Key Vault Crypto User on",
        "Only main uses service connection mlops-azure (branches=refs/heads/main, verify",
        "mlops-infra validates the pull request (blocking=True, paths=/infra/*",
    ):
        assert shown in result.output
    assert "None on" not in result.output
