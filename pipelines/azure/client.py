"""Credentials and clients: one factory, so tests swap every Azure call for a recording fake.

The credential is `DefaultAzureCredential` (`az login` on a laptop, a managed identity or a
service principal's environment variables elsewhere), except inside an Azure DevOps task that
exposes a workload-identity-federation service connection (AzureCLI@2 and friends set
AZURESUBSCRIPTION_* and the pipeline maps System.AccessToken): then `AzurePipelinesCredential`,
which needs no secret at all. Before the first call the credential is asked for a token once,
so a missing login fails in one sentence instead of a stack trace ten calls later.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential

    # Type-only: infra/ is not in a job's code snapshot (CODE_PACKAGES).
    from infra.outputs import StackOutputs

ARM_SCOPE = "https://management.azure.com/.default"
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
PIPELINES_VARIABLES = (
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_TENANT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "SYSTEM_ACCESSTOKEN",
)
NO_CREDENTIAL = (
    "no Azure credential is available ({detail}); run `az login` on a laptop, or in Azure "
    "DevOps run the step in an AzureCLI@2 task with a workload identity federation service "
    "connection"
)


def default_credential() -> TokenCredential:
    """Workload identity federation in Azure DevOps when available, else DefaultAzureCredential."""
    from azure.identity import AzurePipelinesCredential, DefaultAzureCredential

    values = [os.environ.get(name, "").strip() for name in PIPELINES_VARIABLES]
    if all(values):
        client_id, tenant_id, connection_id, token = values
        return AzurePipelinesCredential(
            tenant_id=tenant_id,
            client_id=client_id,
            service_connection_id=connection_id,
            system_access_token=token,
        )
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def check_credential(credential: TokenCredential) -> None:
    """Ask for one ARM token; turn every failure into one sentence."""
    from azure.core.exceptions import ClientAuthenticationError

    try:
        credential.get_token(ARM_SCOPE)
    except ClientAuthenticationError as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise MlopsError(NO_CREDENTIAL.format(detail=first_line[:160])) from error


T = TypeVar("T")


def azure_call(what: str, action: Callable[[], T]) -> T:
    """Run one Azure call; an Azure error becomes one sentence naming what failed."""
    from azure.core.exceptions import AzureError

    try:
        return action()
    except AzureError as error:
        text = str(error).strip()
        first = text.splitlines()[0] if text else type(error).__name__
        raise MlopsError(f"{what} failed: {first[:300]}") from error


Runner = Callable[[Sequence[str], bool], int]


def run_command(argv: Sequence[str], quiet: bool = False) -> int:
    """Run a command, its output streaming to the terminal unless quiet; returns the exit code."""
    sink = subprocess.DEVNULL if quiet else None
    return subprocess.run(list(argv), check=False, stdout=sink, stderr=sink).returncode


@dataclass
class AzureClients:
    """Factory of every client the Azure target uses; one credential, checked once.

    Tests replace it with a subclass whose methods return recording fakes.
    """

    credential_factory: Callable[[], TokenCredential] = default_credential
    runner: Runner = run_command
    _credential: TokenCredential | None = field(default=None, init=False, repr=False)
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def credential(self) -> TokenCredential:
        """The credential, checked with one token request the first time it is used."""
        if self._credential is None:
            credential = self.credential_factory()
            check_credential(credential)
            self._credential = credential
        return self._credential

    def _cached(self, kind: str, key: str, build: Callable[[], Any]) -> Any:
        if (kind, key) not in self._cache:
            self._cache[(kind, key)] = build()
        return self._cache[(kind, key)]

    def workspace(self, outputs: StackOutputs) -> MLClient:
        """MLClient of the stack's Azure ML workspace."""
        from azure.ai.ml import MLClient

        return self._cached(
            "workspace",
            outputs.workspace_id or outputs.workspace_name,
            lambda: MLClient(
                self.credential,
                subscription_id=outputs.subscription_id,
                resource_group_name=outputs.resource_group,
                workspace_name=outputs.workspace_name,
            ),
        )

    def registry(self, outputs: StackOutputs) -> MLClient:
        """MLClient of the shared Azure ML registry that models are promoted through."""
        from azure.ai.ml import MLClient

        return self._cached(
            "registry",
            outputs.registry_name,
            lambda: MLClient(
                self.credential,
                subscription_id=outputs.subscription_id,
                resource_group_name=outputs.registry_resource_group,
                registry_name=outputs.registry_name,
            ),
        )

    def container_instances(self, outputs: StackOutputs) -> Any:
        """ContainerInstanceManagementClient of the stack's subscription."""
        try:
            from azure.mgmt.containerinstance import ContainerInstanceManagementClient
        except ImportError as error:
            raise MlopsError(
                "updating the QA service needs the azure-mgmt-containerinstance package; run "
                "`uv sync` to install the ops environment"
            ) from error
        return self._cached(
            "aci",
            outputs.subscription_id,
            lambda: ContainerInstanceManagementClient(self.credential, outputs.subscription_id),
        )

    def secret(self, vault_uri: str, name: str) -> str:
        """A Key Vault secret's value (the scoring key of the QA service)."""
        try:
            from azure.keyvault.secrets import SecretClient
        except ImportError as error:
            raise MlopsError(
                "reading the scoring key needs the azure-keyvault-secrets package; run `uv sync` "
                "to install the ops environment"
            ) from error
        from azure.core.exceptions import HttpResponseError

        client = self._cached("vault", vault_uri, lambda: SecretClient(vault_uri, self.credential))
        try:
            value = client.get_secret(name).value
        except HttpResponseError as error:
            raise MlopsError(
                f"cannot read secret {name} from {vault_uri} "
                f"({error.reason or error.status_code}); grant the identity 'Key Vault Secrets "
                "User' on the vault"
            ) from error
        if not value:
            raise MlopsError(f"secret {name} in {vault_uri} is empty; set it with `pulumi up`")
        return str(value)

    def az(self, *args: str, quiet: bool = False) -> int:
        """Run the Azure CLI (ACR builds); returns its exit code."""
        if shutil.which("az") is None:
            raise MlopsError(
                "the Azure CLI (`az`) is not on PATH; install it (it runs the ACR build task), "
                "or run this step in an AzureCLI@2 task"
            )
        return self.runner(["az", *args], quiet)
