"""Which stack a command runs against: the infrastructure's outputs, never hand-copied names.

Each environment (dev, qa, prod) is one Pulumi stack; its outputs are saved as JSON with

    pulumi stack output --json --show-secrets --stack <env> > .mlops/stacks/<env>.json

(the file holds secrets, such as the Application Insights connection string: it stays under the
git-ignored state directory, or in the CI agent's temporary directory). Commands find it:

- `MLOPS_STACK_OUTPUTS=<file>`: the stack of this command (what a CI stage sets);
- otherwise `MLOPS_STACK=<env>`: the file `<env>.json` in `MLOPS_STACK_OUTPUTS_DIR`
  (default `<state dir>/stacks`);
- otherwise the only file in that folder.

A release needs two stacks, qa and prod; `outputs_for(env)` finds each by its `environment`
output: the `MLOPS_STACK_OUTPUTS` file when it is that environment's, else `<env>.json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from infra.outputs import StackOutputs, StackOutputsError
from pipelines.errors import MlopsError
from pipelines.settings import Settings

OUTPUTS_VARIABLE = "MLOPS_STACK_OUTPUTS"
STACK_VARIABLE = "MLOPS_STACK"
DIR_VARIABLE = "MLOPS_STACK_OUTPUTS_DIR"
ENVIRONMENTS = ("dev", "qa", "prod")


def _save_hint(environment: str) -> str:
    return (
        f"save them with `pulumi stack output --json --show-secrets --stack {environment} > "
        f".mlops/stacks/{environment}.json` or point {OUTPUTS_VARIABLE} at such a file"
    )


def read_outputs(path: Path) -> StackOutputs:
    """Parse one saved `pulumi stack output --json --show-secrets` file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise MlopsError(
            f"cannot read the stack outputs file {path} ({error.strerror}); {_save_hint('<env>')}"
        ) from error
    try:
        return StackOutputs.from_json(text)
    except StackOutputsError as error:
        message = str(error).rstrip(".")
        raise MlopsError(f"{message} (in {path})") from error


@dataclass(frozen=True)
class StackFiles:
    """Where the saved stack outputs are, as the environment variables say."""

    explicit: Path | None
    directory: Path
    stack: str | None

    @classmethod
    def from_environment(cls, settings: Settings) -> StackFiles:
        """Read MLOPS_STACK_OUTPUTS, MLOPS_STACK and MLOPS_STACK_OUTPUTS_DIR."""
        explicit = os.environ.get(OUTPUTS_VARIABLE, "").strip()
        directory = os.environ.get(DIR_VARIABLE, "").strip()
        stack = os.environ.get(STACK_VARIABLE, "").strip() or None
        return cls(
            explicit=Path(explicit) if explicit else None,
            directory=Path(directory) if directory else settings.state_dir / "stacks",
            stack=stack,
        )

    def current(self) -> StackOutputs:
        """The outputs of the stack this command runs against."""
        if self.explicit is not None:
            return read_outputs(self.explicit)
        if self.stack is not None:
            return self.outputs_for(self.stack)
        found = sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []
        if len(found) == 1:
            return read_outputs(found[0])
        if not found:
            raise MlopsError(
                "--target azure needs the infrastructure's stack outputs and none were found; "
                + _save_hint("dev")
            )
        names = ", ".join(path.stem for path in found)
        raise MlopsError(
            f"several stacks' outputs were found ({names}); choose one with "
            f"{STACK_VARIABLE}=<env> or {OUTPUTS_VARIABLE}=<file>"
        )

    def any(self) -> StackOutputs:
        """The current stack if one is chosen, else any saved one (for shared settings such
        as the registry, which every stack exports alike)."""
        if self.explicit is not None or self.stack is not None:
            return self.current()
        for environment in ("prod", "qa", "dev"):
            if (self.directory / f"{environment}.json").is_file():
                return self.outputs_for(environment)
        return self.current()

    def outputs_for(self, environment: str) -> StackOutputs:
        """The outputs of the stack of one environment (qa or prod in a release)."""
        if self.explicit is not None:
            outputs = read_outputs(self.explicit)
            if outputs.environment == environment:
                return outputs
        path = self.directory / f"{environment}.json"
        if path.is_file():
            outputs = read_outputs(path)
            if outputs.environment != environment:
                raise MlopsError(
                    f"{path} holds the outputs of the {outputs.environment} stack, not "
                    f"{environment}; " + _save_hint(environment)
                )
            return outputs
        raise MlopsError(
            f"no stack outputs for the {environment} environment; " + _save_hint(environment)
        )


def example_outputs(
    environment: str = "dev", *, aks: bool = True, aci: bool = False
) -> StackOutputs:
    """Placeholder outputs with the template's default names, for offline validation only."""
    suffix = "t3mpl"
    values: dict[str, str] = {
        "environment": environment,
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "tenant_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": f"rg-mlops-{environment}",
        "location": "westeurope",
        "workspace_name": f"mlw-mlops-{environment}",
        "workspace_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
        f"rg-mlops-{environment}/providers/Microsoft.MachineLearningServices/workspaces/"
        f"mlw-mlops-{environment}",
        "registry_name": f"mlops-registry-{suffix}",
        "registry_resource_group": "rg-mlops-shared",
        "acr_name": f"acrmlops{environment}{suffix}",
        "acr_login_server": f"acrmlops{environment}{suffix}.azurecr.io",
        "storage_account_name": f"stmlops{environment}{suffix}",
        "batch_scoring_container": "batch-scoring",
        "key_vault_name": f"kv-mlops-{environment}-{suffix}",
        "key_vault_uri": f"https://kv-mlops-{environment}-{suffix}.vault.azure.net/",
        "scoring_key_secret_name": "scoring-api-key",
        "app_insights_name": f"appi-mlops-{environment}",
        "app_insights_connection_string": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "log_analytics_workspace_id": "/subscriptions/00000000-0000-0000-0000-000000000000/"
        f"resourceGroups/rg-mlops-{environment}/providers/Microsoft.OperationalInsights/"
        f"workspaces/log-mlops-{environment}",
        "training_compute_name": "cpu-cluster",
        "training_identity_client_id": "00000000-0000-0000-0000-000000000000",
        "training_identity_id": "/subscriptions/00000000-0000-0000-0000-000000000000/"
        f"resourceGroups/rg-mlops-{environment}/providers/Microsoft.ManagedIdentity/"
        f"userAssignedIdentities/id-mlops-{environment}-training",
        "online_endpoint_name": f"diabetes-{environment}-{suffix}",
        "online_endpoint_auth_mode": "key",
        "batch_endpoint_name": f"diabetes-batch-{environment}-{suffix}",
    }
    if aks:
        values |= {
            "aks_cluster_name": f"aks-mlops-{environment}",
            "kubernetes_compute_name": "aks-inference",
            "kubernetes_namespace": f"mlops-{environment}",
            "inference_instance_type": "defaultinstancetype",
            "inference_instance_types": "defaultinstancetype",
            "inference_router_scheme": "http",
        }
    if aci:
        values |= {
            "qa_aci_name": f"aci-mlops-{environment}",
            "qa_scoring_url": f"http://aci-mlops-{environment}.westeurope.azurecontainer.io:5001/score",
            "qa_aci_identity_id": "/subscriptions/00000000-0000-0000-0000-000000000000/"
            f"resourceGroups/rg-mlops-{environment}/providers/Microsoft.ManagedIdentity/"
            f"userAssignedIdentities/id-aci-{environment}",
        }
    return StackOutputs.from_mapping(values)


def describe(outputs: StackOutputs) -> str:
    """One line naming the stack's workspace, for progress output."""
    return f"{outputs.environment} (workspace {outputs.workspace_name}, {outputs.resource_group})"


def redacted(outputs: StackOutputs) -> str:
    """The outputs as JSON with the secret values masked, for diagnostics."""
    from dataclasses import asdict

    from infra.outputs import SECRET_KEYS

    data = {k: ("***" if k in SECRET_KEYS and v else v) for k, v in asdict(outputs).items()}
    return json.dumps(data, indent=2, sort_keys=True)
