"""The Azure DevOps setup: `build(settings)` creates it, `main()` is what `pulumi up` runs.

Components (type tokens `mlops:devops:<Type>`):

- `PipelineIdentity`: a user-assigned managed identity for the pipelines, its subscription
  roles and its data-plane roles on the state backend and the pipelines' Key Vault;
- `ServiceConnection`: the Azure Resource Manager service connection with workload identity
  federation (no secret) and the federated credential that trusts it;
- `VariableGroups`: `mlops-secrets` (linked to the Key Vault) and `mlops-settings` (plain);
- `Environments`: qa, prod and the infrastructure's environments with approval, branch
  control and exclusive lock checks;
- `Pipelines`: the four YAML pipeline definitions, authorized for the service connection,
  the variable groups and the environments they use.

The names below are the contract with `.azure-pipelines/` (tests check both sides agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azuredevops as ado
from pulumi_azure_native import authorization, managedidentity, resources

from infra.components.common import ROLES, assignment_guid, child
from infra.devops.settings import (
    CONFIG_KEYS,
    NAMESPACE,
    SUBSCRIPTION_ROLES,
    DevopsSettings,
    settings_from_config,
)

SECRETS_GROUP = "mlops-secrets"
SETTINGS_GROUP = "mlops-settings"
PIPELINES_FOLDER = "\\mlops"
# Pipeline definition name -> YAML file. The release pipeline's resource names mlops-retrain.
PIPELINES: dict[str, str] = {
    "mlops-build": ".azure-pipelines/build.azure-pipelines.yml",
    "mlops-retrain": ".azure-pipelines/retrain.azure-pipelines.yml",
    "mlops-release": ".azure-pipelines/release.azure-pipelines.yml",
    "mlops-infra": ".azure-pipelines/infra.azure-pipelines.yml",
}
# Environments each pipeline deploys through (authorized up front, so a first run never waits
# for a permission prompt).
PIPELINE_ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    "mlops-release": ("qa", "prod"),
    "mlops-infra": ("infra-dev", "infra-qa", "infra-prod"),
}
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
"""Lets Pulumi's azurekeyvault secrets provider encrypt and decrypt with a vault key."""
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"


def _role_id(subscription_id: str, guid: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    )


class PipelineIdentity(pulumi.ComponentResource):
    """The identity the pipelines act as: a managed identity with only the roles they need."""

    def __init__(
        self, name: str, settings: DevopsSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:devops:PipelineIdentity", name, None, opts)
        sc = settings.service_connection
        sub = sc.subscription_id
        self.resource_group = resources.ResourceGroup(
            "devops",
            resource_group_name=sc.resource_group,
            location=settings.location,
            tags={"managed-by": "pulumi", "project": "mlops", "purpose": "azure-devops"},
            opts=child(self),
        )
        self.identity = managedidentity.UserAssignedIdentity(
            "pipelines",
            resource_name_=sc.identity_name,
            resource_group_name=self.resource_group.name,
            location=settings.location,
            tags={"managed-by": "pulumi", "project": "mlops"},
            opts=child(self),
        )
        state_account = (
            f"/subscriptions/{sub}/resourceGroups/{settings.state_backend.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{settings.state_backend.storage_account}"
        )
        vault = (
            f"/subscriptions/{sub}/resourceGroups/{settings.key_vault.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{settings.key_vault.name}"
        )
        grants: list[tuple[str, str, str]] = [
            (
                f"sub-{role.lower().replace(' ', '-')}",
                SUBSCRIPTION_ROLES[role],
                f"/subscriptions/{sub}",
            )
            for role in sc.subscription_roles
        ]
        grants += [
            ("state-blob", ROLES["Storage Blob Data Contributor"], state_account),
            ("vault-secrets", ROLES["Key Vault Secrets User"], vault),
            ("vault-crypto", KEY_VAULT_CRYPTO_USER, vault),
        ]
        self.role_assignments = [
            authorization.RoleAssignment(
                f"pipelines-{label}",
                role_assignment_name=assignment_guid(f"pipelines-{label}"),
                role_definition_id=_role_id(sub, guid),
                scope=scope,
                principal_id=self.identity.principal_id,
                principal_type="ServicePrincipal",
                description="Azure DevOps pipelines (workload identity federation)",
                opts=child(self),
            )
            for label, guid, scope in grants
        ]
        self.register_outputs(
            {"client_id": self.identity.client_id, "principal_id": self.identity.principal_id}
        )


class ServiceConnection(pulumi.ComponentResource):
    """ARM service connection through workload identity federation, and the trust behind it."""

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        identity: PipelineIdentity,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:ServiceConnection", name, None, opts)
        sc = settings.service_connection
        self.endpoint = ado.ServiceEndpointAzureRM(
            "azure",
            project_id=project_id,
            service_endpoint_name=sc.name,
            description="Azure Resource Manager, workload identity federation (no secret)",
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
            "azure-devops",
            federated_identity_credential_resource_name="azure-devops",
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
                    instructions=f"Approve the deployment to {env.name}: read the run summary "
                    "(gate outcome, QA smoke tests) first.",
                    timeout=4320,
                    opts=child(self),
                    project_id=project_id,
                    target_resource_id=environment.id,
                    target_resource_type="environment",
                )
            if env.branch_control:
                ado.CheckBranchControl(
                    f"{env.name}-branch",
                    display_name=f"Only {settings.repository.branch} deploys to {env.name}",
                    allowed_branches=settings.repository.ref,
                    verify_branch_protection=True,
                    ignore_unknown_protection_status=False,
                    opts=child(self),
                    project_id=project_id,
                    target_resource_id=environment.id,
                    target_resource_type="environment",
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


class Pipelines(pulumi.ComponentResource):
    """The four YAML pipelines, authorized for what they use."""

    def __init__(
        self,
        name: str,
        settings: DevopsSettings,
        project_id: pulumi.Input[str],
        repository_id: pulumi.Input[str],
        connection: ServiceConnection,
        groups: VariableGroups,
        environments: Environments,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:devops:Pipelines", name, None, opts)
        repo = settings.repository
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
                opts=child(self),
            )
            self.definitions[pipeline] = definition
            resources_used: list[tuple[str, str, pulumi.Input[str]]] = [
                ("endpoint", "endpoint", connection.endpoint.id),
                ("secrets", "variablegroup", groups.secrets.id),
                ("settings", "variablegroup", groups.settings.id),
            ]
            resources_used += [
                (f"env-{env}", "environment", environments.environments[env].id)
                for env in PIPELINE_ENVIRONMENTS.get(pipeline, ())
            ]
            for label, kind, resource_id in resources_used:
                ado.PipelineAuthorization(
                    f"{pipeline}-{label}",
                    project_id=project_id,
                    resource_id=resource_id,
                    type=kind,
                    pipeline_id=definition.id.apply(int),
                    opts=child(self),
                )
        self.register_outputs({k: v.id for k, v in self.definitions.items()})


@dataclass(frozen=True)
class DevopsStack:
    identity: PipelineIdentity
    connection: ServiceConnection
    groups: VariableGroups
    environments: Environments
    pipelines: Pipelines


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
    identity = PipelineIdentity("pipeline-identity", settings)
    connection = ServiceConnection("service-connection", settings, project_id, identity)
    groups = VariableGroups("variable-groups", settings, project_id, connection, identity)
    environments = Environments("environments", settings, project_id)
    pipelines = Pipelines(
        "pipelines", settings, project_id, repository_id, connection, groups, environments
    )
    pulumi.export("service_connection_id", connection.endpoint.id)
    pulumi.export("service_connection_name", settings.service_connection.name)
    pulumi.export("pipeline_identity_client_id", identity.identity.client_id)
    pulumi.export("variable_groups", [SECRETS_GROUP, SETTINGS_GROUP])
    pulumi.export("environments", sorted(environments.environments))
    pulumi.export("pipelines", {k: v.id for k, v in pipelines.definitions.items()})
    return DevopsStack(identity, connection, groups, environments, pipelines)


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
