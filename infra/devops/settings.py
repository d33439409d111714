"""Typed, validated settings of the Azure DevOps stack, read from `Pulumi.devops.yaml`.

Each error is one sentence naming the key, the problem and the fix. Importing this module
needs only PyYAML.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "mlops-devops"
"""Config namespace: the project name in infra/devops/Pulumi.yaml."""
STACK = "devops"
STACK_FILE = Path(__file__).resolve().parent / f"Pulumi.{STACK}.yaml"

REPOSITORY_TYPES = ("TfsGit", "GitHub")
# Built-in roles the pipelines' identity may get on the subscription (ids are tenant-independent).
SUBSCRIPTION_ROLES: dict[str, str] = {
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
}
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
"""Lets Pulumi's azurekeyvault secrets provider encrypt and decrypt with a vault key."""
ROLE_NAMES: dict[str, str] = {
    guid: name
    for name, guid in {**SUBSCRIPTION_ROLES, "Key Vault Crypto User": KEY_VAULT_CRYPTO_USER}.items()
}
"""Names of the roles only this stack assigns (the plan shows them by name)."""
CHECK_FLAGS = ("approval", "branchControl", "exclusiveLock")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_STORAGE = re.compile(r"[a-z0-9]{3,24}")
_VAULT = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]")
_SECRET = re.compile(r"[0-9a-zA-Z-]{1,127}")
CONFIG_KEYS = (
    "project",
    "repository",
    "serviceConnection",
    "stateBackend",
    "keyVault",
    "approvers",
    "environments",
    "previewConnection",
    "branchPolicies",
)


class DevopsSettingsError(ValueError):
    """A setting of the Azure DevOps stack is missing or invalid."""


@dataclass(frozen=True)
class Repository:
    type: str
    name: str
    branch: str
    github_service_connection_id: str | None
    # Branch-control checks verify that the branch is protected. Azure DevOps reads that from
    # the branch policies of an Azure Repos repository (this stack creates them); for GitHub it
    # may not know, and this says whether "unknown" passes (CheckBranchControl,
    # ignore_unknown_protection_status, pulumi-azuredevops docs). Refused for TfsGit.
    ignore_unknown_protection_status: bool

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"


@dataclass(frozen=True)
class ServiceConnection:
    name: str
    subscription_id: str
    subscription_name: str
    resource_group: str
    identity_name: str
    subscription_roles: tuple[str, ...]


@dataclass(frozen=True)
class PreviewConnection:
    """The read-only connection of pull-request previews, and the identity behind it."""

    name: str
    identity_name: str


@dataclass(frozen=True)
class BranchPolicies:
    """Policies on the main branch of an Azure Repos repository."""

    min_reviewers: int


@dataclass(frozen=True)
class StateBackend:
    resource_group: str
    storage_account: str
    container: str


@dataclass(frozen=True)
class KeyVault:
    resource_group: str
    name: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class EnvironmentChecks:
    name: str
    approval: bool
    branch_control: bool
    exclusive_lock: bool


@dataclass(frozen=True)
class DevopsSettings:
    location: str
    project: str
    repository: Repository
    service_connection: ServiceConnection
    state_backend: StateBackend
    key_vault: KeyVault
    approvers: tuple[str, ...]
    environments: tuple[EnvironmentChecks, ...]
    preview_connection: PreviewConnection
    branch_policies: BranchPolicies

    def environment(self, name: str) -> EnvironmentChecks:
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise KeyError(name)


def read_stack_config(path: Path = STACK_FILE) -> dict[str, Any]:
    """The raw `config:` mapping of the stack file."""
    data = yaml.safe_load(path.read_text()) or {}
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise DevopsSettingsError(f"{path.name}: `config` must be a mapping of settings")
    return config


def _fail(key: str, problem: str, fix: str) -> DevopsSettingsError:
    return DevopsSettingsError(f"{NAMESPACE}:{key} {problem}; {fix}.")


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(f"{NAMESPACE}:{key}")
    if not isinstance(value, Mapping):
        raise _fail(key, "is missing or not a mapping", f"set it in {STACK_FILE.name}")
    return value


def _text(section: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str]) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(
            f"{path}.{key}" if path else key,
            f"is {value!r}, which is not valid",
            f"use a value matching {pattern.pattern}",
        )
    return value


def _flag(section: Mapping[str, Any], key: str, path: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise _fail(f"{path}.{key}", f"is {value!r}", "use true or false")
    return value


def settings_from_config(raw: Mapping[str, Any]) -> DevopsSettings:
    """Validate the raw stack config."""
    for full in raw:
        namespace, _, key = str(full).partition(":")
        if namespace == NAMESPACE and key not in CONFIG_KEYS:
            close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
            hint = f"did you mean {NAMESPACE}:{close[0]}" if close else "remove it"
            raise _fail(key, "is not a setting of this stack", hint)
    project = raw.get(f"{NAMESPACE}:project")
    if not isinstance(project, str) or not project.strip():
        raise _fail("project", "is missing", "name the existing Azure DevOps project")

    repo = _mapping(raw, "repository")
    repo_type = repo.get("type")
    if repo_type not in REPOSITORY_TYPES:
        raise _fail("repository.type", f"is {repo_type!r}", f"use one of {REPOSITORY_TYPES}")
    github_connection = repo.get("githubServiceConnectionId") or None
    if repo_type == "GitHub" and not github_connection:
        raise _fail(
            "repository.githubServiceConnectionId",
            "is missing for a GitHub repository",
            "create a GitHub service connection and put its id here",
        )
    name_pattern = re.compile(r"[\w.-]+/[\w.-]+") if repo_type == "GitHub" else _NAME
    ignore_unknown = _flag(repo, "ignoreUnknownProtectionStatus", "repository")
    if ignore_unknown and repo_type != "GitHub":
        raise _fail(
            "repository.ignoreUnknownProtectionStatus",
            "is true for an Azure Repos repository",
            "remove it: this stack's branch policies make main's protection known",
        )
    repository = Repository(
        type=str(repo_type),
        name=_text(repo, "name", "repository", name_pattern),
        branch=_text(repo, "branch", "repository", re.compile(r"[\w./-]+")),
        github_service_connection_id=github_connection,
        ignore_unknown_protection_status=ignore_unknown,
    )

    sc = _mapping(raw, "serviceConnection")
    roles = tuple(sc.get("subscriptionRoles") or ())
    for role in roles:
        if role not in SUBSCRIPTION_ROLES:
            raise _fail(
                "serviceConnection.subscriptionRoles",
                f"names {role!r}",
                f"use built-in roles from {sorted(SUBSCRIPTION_ROLES)}",
            )
    service_connection = ServiceConnection(
        name=_text(sc, "name", "serviceConnection", _NAME),
        subscription_id=_text(sc, "subscriptionId", "serviceConnection", _GUID),
        subscription_name=_text(sc, "subscriptionName", "serviceConnection", re.compile(r".+")),
        resource_group=_text(sc, "resourceGroup", "serviceConnection", _NAME),
        identity_name=_text(sc, "identityName", "serviceConnection", _NAME),
        subscription_roles=roles,
    )

    state = _mapping(raw, "stateBackend")
    state_backend = StateBackend(
        resource_group=_text(state, "resourceGroup", "stateBackend", _NAME),
        storage_account=_text(state, "storageAccount", "stateBackend", _STORAGE),
        container=_text(state, "container", "stateBackend", re.compile(r"[a-z0-9][a-z0-9-]{2,62}")),
    )

    vault = _mapping(raw, "keyVault")
    secrets = tuple(vault.get("secrets") or ())
    if not secrets:
        raise _fail(
            "keyVault.secrets",
            "is empty",
            "list the Key Vault secrets the pipelines read (pulumi-config-passphrase)",
        )
    for secret in secrets:
        if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
            raise _fail("keyVault.secrets", f"names {secret!r}", "use letters, digits and dashes")
    key_vault = KeyVault(
        resource_group=_text(vault, "resourceGroup", "keyVault", _NAME),
        name=_text(vault, "name", "keyVault", _VAULT),
        secrets=secrets,
    )

    approvers = tuple(raw.get(f"{NAMESPACE}:approvers") or ())
    for approver in approvers:
        if not isinstance(approver, str) or not _GUID.fullmatch(approver):
            raise _fail("approvers", f"holds {approver!r}", "use Azure DevOps group or user ids")

    environments: list[EnvironmentChecks] = []
    for name, checks in _mapping(raw, "environments").items():
        if not isinstance(checks, Mapping):
            raise _fail(f"environments.{name}", "is not a mapping", f"set {CHECK_FLAGS}")
        unknown = set(checks) - set(CHECK_FLAGS)
        if unknown:
            raise _fail(f"environments.{name}", f"has {sorted(unknown)}", f"use {CHECK_FLAGS}")
        environment = EnvironmentChecks(
            name=_text({"name": name}, "name", f"environments.{name}", _NAME),
            approval=_flag(checks, "approval", f"environments.{name}"),
            branch_control=_flag(checks, "branchControl", f"environments.{name}"),
            exclusive_lock=_flag(checks, "exclusiveLock", f"environments.{name}"),
        )
        if environment.approval and not approvers:
            raise _fail(
                "approvers",
                f"is empty but environment {name} requires an approval",
                "list at least one approver",
            )
        environments.append(environment)
    if "prod" in {e.name for e in environments}:
        prod = next(e for e in environments if e.name == "prod")
        if not (prod.approval and prod.branch_control and prod.exclusive_lock):
            raise _fail(
                "environments.prod",
                "drops a check",
                "production keeps approval, branch control and the exclusive lock",
            )
    preview = _mapping(raw, "previewConnection")
    preview_connection = PreviewConnection(
        name=_text(preview, "name", "previewConnection", _NAME),
        identity_name=_text(preview, "identityName", "previewConnection", _NAME),
    )
    if preview_connection.name == service_connection.name:
        raise _fail(
            "previewConnection.name",
            f"is {preview_connection.name!r}, the deploying connection's name",
            "give pull-request previews their own connection",
        )
    if preview_connection.identity_name == service_connection.identity_name:
        raise _fail(
            "previewConnection.identityName",
            f"is {preview_connection.identity_name!r}, the deploying identity",
            "give pull-request previews their own read-only identity",
        )
    policies = _mapping(raw, "branchPolicies")
    reviewers = policies.get("minReviewers")
    if isinstance(reviewers, float) and reviewers.is_integer():
        reviewers = int(reviewers)  # Pulumi passes numbers as floats
    if isinstance(reviewers, bool) or not isinstance(reviewers, int) or not 1 <= reviewers <= 10:
        raise _fail(
            "branchPolicies.minReviewers",
            f"is {reviewers!r}",
            "use a whole number of reviewers from 1 to 10",
        )
    location = raw.get("azure-native:location")
    if not isinstance(location, str) or not location:
        raise DevopsSettingsError("azure-native:location is missing; set the identity's region.")
    return DevopsSettings(
        location=location,
        project=project,
        repository=repository,
        service_connection=service_connection,
        state_backend=state_backend,
        key_vault=key_vault,
        approvers=approvers,
        environments=tuple(environments),
        preview_connection=preview_connection,
        branch_policies=BranchPolicies(min_reviewers=reviewers),
    )


def load_settings(path: Path = STACK_FILE) -> DevopsSettings:
    """Read and validate the stack file."""
    return settings_from_config(read_stack_config(path))
