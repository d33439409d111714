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


def describe(outputs: StackOutputs) -> str:
    """One line naming the stack's workspace, for progress output."""
    return f"{outputs.environment} (workspace {outputs.workspace_name}, {outputs.resource_group})"


def redacted(outputs: StackOutputs) -> str:
    """The outputs as JSON with the secret values masked, for diagnostics."""
    from dataclasses import asdict

    from infra.outputs import SECRET_KEYS

    data = {k: ("***" if k in SECRET_KEYS and v else v) for k, v in asdict(outputs).items()}
    return json.dumps(data, indent=2, sort_keys=True)
