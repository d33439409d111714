"""The Azure DevOps setup: `build(settings)` creates it, `main()` is what `pulumi up` runs.

Components (type tokens `mlops:devops:<Type>`):

- `PipelineIdentity` (twice): the identity the deploying pipelines act as (Contributor and a
  conditioned Role Based Access Control Administrator on the subscription, data-plane roles on
  the state backend and the Key Vault), and the read-only identity of pull-request previews;
- `ServiceConnection` (twice): an Azure Resource Manager service connection with workload
  identity federation (no secret) for each identity, and the federated credential behind it;
- `VariableGroups`: `mlops-secrets` (linked to the Key Vault) and `mlops-settings` (plain);
- `Environments`: qa, prod and the infrastructure's environments with approval, branch
  control and exclusive lock checks;
- `BranchChecks`: branch control (`refs/heads/main`) on the deploying connection and on the
  secrets group, so that no pull-request run can use them, whatever its YAML says;
- `BranchPolicies` (Azure Repos): build validation of `main` by `mlops-build` and
  `mlops-infra` (with the infra pipeline's path filters) and a minimum number of reviewers;
- `Pipelines`: the four YAML pipeline definitions, each authorized for what it uses and no more.

The names below are the contract with `.azure-pipelines/` (tests check both sides agree).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_azuredevops as ado
import yaml
from pulumi_azure_native import authorization, managedidentity, resources

from infra.components.common import ROLES, assignment_guid, child
from infra.components.loop_events import RETRAIN_WEBHOOK, RETRAIN_WEBHOOK_CONNECTION
from infra.devops.settings import (
    CONFIG_KEYS,
    KEY_VAULT_CRYPTO_USER,
    NAMESPACE,
    SUBSCRIPTION_ROLES,
    DevopsSettings,
    settings_from_config,
)

ROOT = Path(__file__).resolve().parents[2]
SECRETS_GROUP = "mlops-secrets"
SETTINGS_GROUP = "mlops-settings"
PIPELINES_FOLDER = "\\mlops"
# Pipeline definition name -> YAML file. The release pipeline's resource names mlops-retrain.
RETRAIN_PIPELINE = "mlops-retrain"
PIPELINES: dict[str, str] = {
    "mlops-build": ".azure-pipelines/build.azure-pipelines.yml",
    RETRAIN_PIPELINE: ".azure-pipelines/retrain.azure-pipelines.yml",
    "mlops-release": ".azure-pipelines/release.azure-pipelines.yml",
    "mlops-infra": ".azure-pipelines/infra.azure-pipelines.yml",
}
# Environments each pipeline deploys through (authorized up front, so a first run never waits
# for a permission prompt).
PIPELINE_ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    "mlops-release": ("qa", "prod"),
    "mlops-infra": ("infra-dev", "infra-qa", "infra-prod"),
}
# Only the infra pipeline's pull-request stage previews with the read-only connection.
PREVIEW_PIPELINES = ("mlops-infra",)
# Pipelines that validate every pull request into main (Azure Repos: branch policies; YAML `pr:`
# triggers are ignored there, MicrosoftDocs azure-devops-yaml-schema `pr.md`).
VALIDATING_PIPELINES = ("mlops-build", "mlops-infra")
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
RBAC_ADMINISTRATOR = "Role Based Access Control Administrator"
CONDITION_VERSION = "2.0"
"""The only condition version role assignments accept (azure-native RoleAssignment docs)."""


def _role_id(subscription_id: str, guid: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    )


def rbac_admin_condition(role_ids: Iterable[str]) -> str:
    """The ABAC condition that lets an RBAC administrator add or remove only these roles.

    The "Constrain roles" condition of Learn, "Examples to delegate Azure role assignment
    management with conditions" (role-based-access-control/delegate-role-assignments-examples):
    a write must request, and a delete must remove, an assignment of one of the listed roles.
    """
    guids = sorted(set(role_ids))
    if not guids:
        raise ValueError("an RBAC administrator condition needs at least one role")
    listed = ", ".join(guids)
    return (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
        "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        f"ForAnyOfAnyValues:GuidEquals {{{listed}}})) AND "
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
        "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        f"ForAnyOfAnyValues:GuidEquals {{{listed}}}))"
    )


PLATFORM_ROLES = tuple(sorted(ROLES.values()))
"""Every role the platform stacks assign: `ROLES` is the one list they draw from."""


@dataclass(frozen=True)
class RoleGrant:
    """One role on one scope, optionally with an ABAC condition."""

    label: str
    role_id: str
    scope: str
    condition: str | None = None


def _state_account(settings: DevopsSettings) -> str:
    sub, state = settings.service_connection.subscription_id, settings.state_backend
    return (
        f"/subscriptions/{sub}/resourceGroups/{state.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{state.storage_account}"
    )


def _vault(settings: DevopsSettings) -> str:
    sub, vault = settings.service_connection.subscription_id, settings.key_vault
    return (
        f"/subscriptions/{sub}/resourceGroups/{vault.resource_group}"
        f"/providers/Microsoft.KeyVault/vaults/{vault.name}"
    )


def deploy_grants(settings: DevopsSettings) -> list[RoleGrant]:
    """Roles of the deploying identity: the configured subscription roles (RBAC administrator
    constrained to the platform's roles), the state, the vault's secrets and its keys."""
    subscription = f"/subscriptions/{settings.service_connection.subscription_id}"
    grants = [
        RoleGrant(
            f"sub-{role.lower().replace(' ', '-')}",
            SUBSCRIPTION_ROLES[role],
            subscription,
            rbac_admin_condition(PLATFORM_ROLES) if role == RBAC_ADMINISTRATOR else None,
        )
        for role in settings.service_connection.subscription_roles
    ]
    return [
        *grants,
        RoleGrant("state-blob", ROLES["Storage Blob Data Contributor"], _state_account(settings)),
        RoleGrant("vault-secrets", ROLES["Key Vault Secrets User"], _vault(settings)),
        RoleGrant("vault-crypto", KEY_VAULT_CRYPTO_USER, _vault(settings)),
    ]


def preview_grants(settings: DevopsSettings) -> list[RoleGrant]:
    """Roles of the pull-request preview identity: read the platform, read the state, decrypt
    the stacks' secret config; no write anywhere and no Key Vault secret.

    Reader is granted on the subscription: the platform's resource groups do not exist yet when
    this stack is first applied, and a role assignment needs an existing scope. Reader carries
    no data action and no `listKeys`. `pulumi preview` on the DIY (azblob) backend takes no
    lock (pulumi/pulumi `pkg/backend/diy/backend.go`: only update, import, refresh and destroy
    call `Lock`), so reading the state is enough.
    """
    subscription = f"/subscriptions/{settings.service_connection.subscription_id}"
    return [
        RoleGrant("sub-reader", SUBSCRIPTION_ROLES["Reader"], subscription),
        RoleGrant("state-blob-reader", ROLES["Storage Blob Data Reader"], _state_account(settings)),
        RoleGrant("vault-crypto", KEY_VAULT_CRYPTO_USER, _vault(settings)),
    ]


def policy_path_filters(paths: Mapping[str, Any] | None) -> list[str]:
    """A YAML trigger's `paths` as a branch policy's filename patterns: absolute, excludes
    prefixed with `!` (BranchPolicyBuildValidation `filename_patterns`, pulumi-azuredevops)."""
    paths = paths or {}
    include = [f"/{p.lstrip('/')}" for p in paths.get("include") or ()]
    exclude = [f"!/{p.lstrip('/')}" for p in paths.get("exclude") or ()]
    return include + exclude


def pr_paths(pipeline: str, root: Path = ROOT) -> Mapping[str, Any] | None:
    """The `pr.paths` of a pipeline's YAML: one list for GitHub (YAML) and Azure Repos (policy)."""
    tree = yaml.safe_load((root / PIPELINES[pipeline]).read_text())
    pr = tree.get("pr")
    return pr.get("paths") if isinstance(pr, Mapping) else None


APPROVAL_INSTRUCTIONS: dict[str, str] = {
    "qa": "Approve deploying this model version to QA: read the gate outcome on the summary of "
    "the retrain run that registered it.",
    "prod": "Approve the production release: read the QA stage's smoke-test reports "
    "(artifact release-qa) first.",
}


def approval_instructions(environment: str) -> str:
    """What an approver of `environment` is asked to check (the release and infra pipelines)."""
    if environment in APPROVAL_INSTRUCTIONS:
        return APPROVAL_INSTRUCTIONS[environment]
    if environment.startswith("infra-"):
        stack = environment.removeprefix("infra-")
        return (
            f"Approve pulumi up of the {stack} stack: read the previous stage's pulumi up "
            "output and the offline plan of this run first."
        )
    return f"Approve the deployment to {environment}: read this run's summary first."


class PipelineIdentity(pulumi.ComponentResource):
    """A managed identity the pipelines act as, with exactly the roles it is given."""

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        *,
        identity_name: str,
        label: str,
        grants: list[RoleGrant],
        description: str,
        resource_group: resources.ResourceGroup | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:PipelineIdentity", name, None, opts)
        sc = settings.service_connection
        self.resource_group = resource_group or resources.ResourceGroup(
            "devops",
            resource_group_name=sc.resource_group,
            location=settings.location,
            tags={"managed-by": "pulumi", "project": "mlops", "purpose": "azure-devops"},
            opts=child(self),
        )
        self.identity = managedidentity.UserAssignedIdentity(
            label,
            resource_name_=identity_name,
            resource_group_name=self.resource_group.name,
            location=settings.location,
            tags={"managed-by": "pulumi", "project": "mlops"},
            opts=child(self),
        )
        self.role_assignments = [
            authorization.RoleAssignment(
                f"{label}-{grant.label}",
                role_assignment_name=assignment_guid(f"{label}-{grant.label}"),
                role_definition_id=_role_id(sc.subscription_id, grant.role_id),
                scope=grant.scope,
                principal_id=self.identity.principal_id,
                principal_type="ServicePrincipal",
                description=description,
                condition=grant.condition,
                condition_version=CONDITION_VERSION if grant.condition else None,
                opts=child(self),
            )
            for grant in grants
        ]
        self.register_outputs(
            {"client_id": self.identity.client_id, "principal_id": self.identity.principal_id}
        )


class ServiceConnection(pulumi.ComponentResource):
    """ARM service connection through workload identity federation, and the trust behind it.

    The endpoint and the federated credential follow the provider's "Workload Identity
    Federation Manual AzureRM Service Endpoint" example (pulumi-azuredevops,
    ServiceEndpointAzureRM): the endpoint names the identity's client id, the identity trusts
    the endpoint's issuer and subject.
    """

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        identity: PipelineIdentity,
        *,
        connection_name: str,
        label: str,
        federation: str,
        description: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:ServiceConnection", name, None, opts)
        sc = settings.service_connection
        self.name = connection_name
        self.endpoint = ado.ServiceEndpointAzureRM(
            label,
            project_id=project_id,
            service_endpoint_name=connection_name,
            description=description,
            service_endpoint_authentication_scheme="WorkloadIdentityFederation",
            credentials=ado.ServiceEndpointAzureRMCredentialsArgs(
                serviceprincipalid=identity.identity.client_id
            ),
            azurerm_spn_tenantid=identity.identity.tenant_id,
            azurerm_subscription_id=sc.subscription_id,
            azurerm_subscription_name=sc.subscription_name,
            opts=child(self),
        )
        self.federation = managedidentity.FederatedIdentityCredential(
            federation,
            federated_identity_credential_resource_name=federation,
            resource_group_name=identity.resource_group.name,
            resource_name_=identity.identity.name,
            issuer=self.endpoint.workload_identity_federation_issuer,
            subject=self.endpoint.workload_identity_federation_subject,
            audiences=[FEDERATION_AUDIENCE],
            opts=child(self),
        )
        self.register_outputs({"id": self.endpoint.id})


class VariableGroups(pulumi.ComponentResource):
    """`mlops-secrets`: the Key Vault's secrets, never copied; `mlops-settings`: plain values."""

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        connection: ServiceConnection,
        identity: PipelineIdentity,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:VariableGroups", name, None, opts)
        self.secrets = ado.VariableGroup(
            "secrets",
            project_id=project_id,
            name=SECRETS_GROUP,
            description=f"MLOps pipeline secrets, linked to Key Vault {settings.key_vault.name}",
            allow_access=False,
            key_vault=ado.VariableGroupKeyVaultArgs(
                name=settings.key_vault.name, service_endpoint_id=connection.endpoint.id
            ),
            variables=[ado.VariableGroupVariableArgs(name=s) for s in settings.key_vault.secrets],
            # Linking reads the vault: the identity must hold its role and trust the connection.
            opts=child(self, depends_on=[connection.federation, *identity.role_assignments]),
        )
        self.settings = ado.VariableGroup(
            "settings",
            project_id=project_id,
            name=SETTINGS_GROUP,
            description="Non-secret settings of the MLOps pipelines (Pulumi state backend)",
            allow_access=False,
            variables=[
                ado.VariableGroupVariableArgs(
                    name="pulumiStateAccount", value=settings.state_backend.storage_account
                ),
                ado.VariableGroupVariableArgs(
                    name="pulumiStateContainer", value=settings.state_backend.container
                ),
            ],
            opts=child(self),
        )
        self.register_outputs({"secrets": self.secrets.id, "settings": self.settings.id})


def branch_control(
    name: str,
    settings: DevopsSettings,
    project_id: pulumi.Input[str],
    *,
    target_id: pulumi.Input[str],
    target_type: str,
    what: str,
    parent: pulumi.Resource,
) -> ado.CheckBranchControl:
    """Only the main branch may use the target (CheckBranchControl, pulumi-azuredevops: checks
    protect `endpoint`, `environment`, `queue`, `repository`, `securefile`, `variablegroup`).

    `verify_branch_protection` makes the check pass only for a protected branch: on Azure Repos
    the `BranchPolicies` of this stack protect main; on GitHub, where the status may be unknown,
    `ignore_unknown_protection_status` is the documented choice of the stack file.
    """
    repo = settings.repository
    return ado.CheckBranchControl(
        name,
        display_name=f"Only {repo.branch} uses {what}",
        allowed_branches=repo.ref,
        verify_branch_protection=True,
        ignore_unknown_protection_status=repo.ignore_unknown_protection_status,
        project_id=project_id,
        target_resource_id=target_id,
        target_resource_type=target_type,
        opts=child(parent),
    )


class Environments(pulumi.ComponentResource):
    """Deployment environments and their checks (approval, branch control, exclusive lock)."""

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:Environments", name, None, opts)
        self.environments: dict[str, ado.Environment] = {}
        for env in settings.environments:
            environment = ado.Environment(
                env.name,
                project_id=project_id,
                name=env.name,
                description=f"MLOps {env.name}: deployments go through its checks",
                opts=child(self),
            )
            self.environments[env.name] = environment
            if env.approval:
                ado.CheckApproval(
                    f"{env.name}-approval",
                    approvers=list(settings.approvers),
                    minimum_required_approvers=1,
                    requester_can_approve=False,
                    instructions=approval_instructions(env.name),
                    timeout=4320,
                    opts=child(self),
                    project_id=project_id,
                    target_resource_id=environment.id,
                    target_resource_type="environment",
                )
            if env.branch_control:
                branch_control(
                    f"{env.name}-branch",
                    settings,
                    project_id,
                    target_id=environment.id,
                    target_type="environment",
                    what=f"environment {env.name}",
                    parent=self,
                )
            if env.exclusive_lock:
                ado.CheckExclusiveLock(
                    f"{env.name}-lock",
                    timeout=43200,
                    project_id=project_id,
                    target_resource_id=environment.id,
                    target_resource_type="environment",
                    opts=child(self),
                )
        self.register_outputs({k: v.id for k, v in self.environments.items()})


class BranchChecks(pulumi.ComponentResource):
    """Branch control on what only main may use: the deploying connection and the secrets.

    Environment checks alone leave a gap: a pull request's YAML can add a plain job that uses
    the connection or the group. Checks on the resources themselves close it (checks can be put
    on service connections and variable groups, CheckBranchControl `target_resource_type`).
    """

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        connection: ServiceConnection,
        groups: VariableGroups,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:BranchChecks", name, None, opts)
        self.connection = branch_control(
            "endpoint-branch",
            settings,
            project_id,
            target_id=connection.endpoint.id,
            target_type="endpoint",
            what=f"service connection {connection.name}",
            parent=self,
        )
        self.secrets = branch_control(
            "secrets-branch",
            settings,
            project_id,
            target_id=groups.secrets.id,
            target_type="variablegroup",
            what=f"variable group {SECRETS_GROUP}",
            parent=self,
        )
        self.register_outputs({"endpoint": self.connection.id, "secrets": self.secrets.id})


class BranchPolicies(pulumi.ComponentResource):
    """Azure Repos: pull requests into main are validated by builds and reviewed.

    YAML `pr:` triggers are ignored for Azure Repos Git (MicrosoftDocs azure-devops-yaml-schema
    `pr.md`: "YAML PR triggers are supported only in GitHub and Bitbucket Cloud"); build
    validation policies start the pipelines instead, and they carry the path filters, which the
    YAML's `pr.paths` would have held (BranchPolicyBuildValidation, BranchPolicyMinReviewers,
    pulumi-azuredevops). They also make main a protected branch for the branch-control checks.
    """

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        repository_id: pulumi.Input[str],
        pipelines: Pipelines,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:BranchPolicies", name, None, opts)
        scope = {
            "repository_id": repository_id,
            "repository_ref": settings.repository.ref,
            "match_type": "Exact",
        }
        self.build_validation = [
            ado.BranchPolicyBuildValidation(
                f"{pipeline}-validation",
                project_id=project_id,
                enabled=True,
                blocking=True,
                settings=ado.BranchPolicyBuildValidationSettingsArgs(
                    display_name=f"{pipeline} validates the pull request",
                    build_definition_id=pipelines.definitions[pipeline].id.apply(int),
                    queue_on_source_update_only=False,
                    valid_duration=720,
                    filename_patterns=policy_path_filters(pr_paths(pipeline)) or None,
                    scopes=[ado.BranchPolicyBuildValidationSettingsScopeArgs(**scope)],
                ),
                opts=child(self),
            )
            for pipeline in VALIDATING_PIPELINES
        ]
        self.min_reviewers = ado.BranchPolicyMinReviewers(
            "main-reviewers",
            project_id=project_id,
            enabled=True,
            blocking=True,
            settings=ado.BranchPolicyMinReviewersSettingsArgs(
                reviewer_count=settings.branch_policies.min_reviewers,
                submitter_can_vote=False,
                last_pusher_cannot_approve=True,
                on_push_reset_approved_votes=True,
                allow_completion_with_rejects_or_waits=False,
                scopes=[ado.BranchPolicyMinReviewersSettingsScopeArgs(**scope)],
            ),
            opts=child(self),
        )
        self.register_outputs({"reviewers": self.min_reviewers.id})


# The retrain pipeline's event route (docs/monitoring.md): Event Grid posts to the URL of
# infra.components.loop_events.retrain_webhook_url, and `resources.webhooks` in
# retrain.azure-pipelines.yml names the connection. No secret: Event Grid cannot sign its
# deliveries with the HMAC checksum the connection would verify, so the URL alone queues a
# retrain run; that run trains and gates only, and nothing reaches production without the
# release pipeline's approvals.


class RetrainWebhook(pulumi.ComponentResource):
    """The incoming-webhook service connection that lets Event Grid start the retrain pipeline."""

    def __init__(
        self,
        name: str,
        project_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:RetrainWebhook", name, None, opts)
        self.endpoint = ado.ServiceendpointIncomingwebhook(
            "retrain-webhook",
            project_id=project_id,
            service_endpoint_name=RETRAIN_WEBHOOK_CONNECTION,
            webhook_name=RETRAIN_WEBHOOK,
            description="Event Grid: a monitor breach or a new training data set starts a retrain",
            opts=child(self),
        )
        # The retrain pipeline's authorization for it is one of `authorizations()`.
        self.register_outputs({"id": self.endpoint.id})


@dataclass(frozen=True)
class Authorization:
    """One resource a pipeline may use without a permission prompt."""

    label: str
    kind: str
    resource_id: pulumi.Input[str]


def authorizations(
    pipeline: str,
    *,
    deploy: ServiceConnection,
    preview: ServiceConnection,
    groups: VariableGroups,
    environments: Environments,
    github_connection_id: str | None,
    webhook: RetrainWebhook,
) -> list[Authorization]:
    """What `pipeline` is authorized for (PipelineAuthorization, pulumi-azuredevops: types
    `endpoint`, `queue`, `variablegroup`, `environment`, `repository`; always with a pipeline
    id, since without one every pipeline of the project is authorized)."""
    found = [
        Authorization("endpoint", "endpoint", deploy.endpoint.id),
        Authorization("secrets", "variablegroup", groups.secrets.id),
        Authorization("settings", "variablegroup", groups.settings.id),
    ]
    if pipeline in PREVIEW_PIPELINES:
        found.append(Authorization("preview-endpoint", "endpoint", preview.endpoint.id))
    if github_connection_id:
        found.append(Authorization("github", "endpoint", github_connection_id))
    if pipeline == RETRAIN_PIPELINE:
        found.append(Authorization("webhook", "endpoint", webhook.endpoint.id))
    found += [
        Authorization(f"env-{env}", "environment", environments.environments[env].id)
        for env in PIPELINE_ENVIRONMENTS.get(pipeline, ())
    ]
    return found


class Pipelines(pulumi.ComponentResource):
    """The four YAML pipelines, authorized for what they use."""

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        repository_id: pulumi.Input[str],
        connections: tuple[ServiceConnection, ServiceConnection],
        groups: VariableGroups,
        environments: Environments,
        webhook: RetrainWebhook,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:Pipelines", name, None, opts)
        repo = settings.repository
        deploy, preview = connections
        github = repo.type == "GitHub"
        self.definitions: dict[str, ado.BuildDefinition] = {}
        for pipeline, yml_path in PIPELINES.items():
            definition = ado.BuildDefinition(
                pipeline,
                project_id=project_id,
                name=pipeline,
                path=PIPELINES_FOLDER,
                repository=ado.BuildDefinitionRepositoryArgs(
                    repo_type=repo.type,
                    repo_id=repository_id,
                    branch_name=repo.ref,
                    yml_path=yml_path,
                    service_connection_id=repo.github_service_connection_id,
                ),
                ci_trigger=ado.BuildDefinitionCiTriggerArgs(use_yaml=True),
                # GitHub: the YAML `pr:` trigger applies once the definition enables it
                # (BuildDefinition "Pull Request Trigger", pulumi-azuredevops); forks get no
                # build and no secret. Azure Repos ignores it: see BranchPolicies.
                pull_request_trigger=ado.BuildDefinitionPullRequestTriggerArgs(
                    use_yaml=True,
                    initial_branch=repo.branch,
                    forks=ado.BuildDefinitionPullRequestTriggerForksArgs(
                        enabled=False, share_secrets=False
                    ),
                )
                if github
                else None,
                opts=child(self),
            )
            self.definitions[pipeline] = definition
            for grant in authorizations(
                pipeline,
                deploy=deploy,
                preview=preview,
                groups=groups,
                environments=environments,
                github_connection_id=repo.github_service_connection_id if github else None,
                webhook=webhook,
            ):
                # The webhook's authorization was once RetrainWebhook's child: an alias with
                # its old parent keeps its URN (Pulumi docs, "Refactoring with aliases":
                # re-parenting takes `{ parent: oldParent }`), so existing stacks neither
                # delete nor recreate it.
                moved = [pulumi.Alias(parent=webhook)] if grant.label == "webhook" else None
                ado.PipelineAuthorization(
                    f"{pipeline}-{grant.label}",
                    project_id=project_id,
                    resource_id=grant.resource_id,
                    type=grant.kind,
                    pipeline_id=definition.id.apply(int),
                    opts=child(self, aliases=moved),
                )
        self.register_outputs({k: v.id for k, v in self.definitions.items()})


@dataclass(frozen=True)
class DevopsStack:
    identity: PipelineIdentity
    connection: ServiceConnection
    preview_identity: PipelineIdentity
    preview_connection: ServiceConnection
    groups: VariableGroups
    environments: Environments
    checks: BranchChecks
    pipelines: Pipelines
    policies: BranchPolicies | None
    webhook: RetrainWebhook


def build(settings: DevopsSettings) -> DevopsStack:
    """Create the whole Azure DevOps setup and export its ids."""
    project = ado.get_project_output(name=settings.project)
    project_id = project.apply(lambda p: str(p.id))
    repo = settings.repository
    if repo.type == "TfsGit":
        repository_id: pulumi.Input[str] = ado.get_git_repository_output(
            project_id=project_id, name=repo.name
        ).apply(lambda r: str(r.id))
    else:
        repository_id = repo.name
    identity = PipelineIdentity(
        "pipeline-identity",
        settings,
        identity_name=settings.service_connection.identity_name,
        label="pipelines",
        grants=deploy_grants(settings),
        description="Azure DevOps pipelines deploying from main (workload identity federation)",
    )
    preview_identity = PipelineIdentity(
        "preview-identity",
        settings,
        identity_name=settings.preview_connection.identity_name,
        label="preview",
        grants=preview_grants(settings),
        description="Azure DevOps pull-request previews, read-only (workload identity federation)",
        resource_group=identity.resource_group,
    )
    connection = ServiceConnection(
        "service-connection",
        settings,
        project_id,
        identity,
        connection_name=settings.service_connection.name,
        label="azure",
        federation="azure-devops",
        description="Azure Resource Manager, workload identity federation (no secret); "
        f"only {repo.branch} may use it",
    )
    preview_connection = ServiceConnection(
        "preview-connection",
        settings,
        project_id,
        preview_identity,
        connection_name=settings.preview_connection.name,
        label="azure-preview",
        federation="azure-devops-preview",
        description="Read-only Azure Resource Manager connection of pull-request previews "
        "(workload identity federation, no secret)",
    )
    groups = VariableGroups("variable-groups", settings, project_id, connection, identity)
    environments = Environments("environments", settings, project_id)
    checks = BranchChecks("branch-checks", settings, project_id, connection, groups)
    webhook = RetrainWebhook("retrain-webhook", project_id)
    pipelines = Pipelines(
        "pipelines",
        settings,
        project_id,
        repository_id,
        (connection, preview_connection),
        groups,
        environments,
        webhook,
    )
    policies = (
        BranchPolicies("branch-policies", settings, project_id, repository_id, pipelines)
        if repo.type == "TfsGit"
        else None
    )
    pulumi.export("service_connection_id", connection.endpoint.id)
    pulumi.export("service_connection_name", settings.service_connection.name)
    pulumi.export("preview_service_connection_name", settings.preview_connection.name)
    pulumi.export("pipeline_identity_client_id", identity.identity.client_id)
    pulumi.export("preview_identity_principal_id", preview_identity.identity.principal_id)
    pulumi.export("variable_groups", [SECRETS_GROUP, SETTINGS_GROUP])
    pulumi.export("environments", sorted(environments.environments))
    pulumi.export("pipelines", {k: v.id for k, v in pipelines.definitions.items()})
    pulumi.export("retrain_webhook_connection", RETRAIN_WEBHOOK_CONNECTION)
    pulumi.export("retrain_webhook_name", RETRAIN_WEBHOOK)
    return DevopsStack(
        identity,
        connection,
        preview_identity,
        preview_connection,
        groups,
        environments,
        checks,
        pipelines,
        policies,
        webhook,
    )


def settings_from_pulumi_config() -> DevopsSettings:
    """The stack's settings from the Pulumi config the engine passes."""
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, object] = {
        "azure-native:location": pulumi.Config("azure-native").get("location")
    }
    for key in CONFIG_KEYS:
        value = config.get_object(key) if key != "project" else config.get(key)
        if value is not None:
            raw[f"{NAMESPACE}:{key}"] = value
    return settings_from_config(raw)


def main() -> None:
    """`pulumi up`: validate the settings, then build."""
    build(settings_from_pulumi_config())
