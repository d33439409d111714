"""Project settings for the ops side: where state lives and what the model is called.

One place for each setting. Defaults here; environment variables override them
(documented in the README); command-line options override both where a command offers them.
Hyperparameter defaults live in `training.model.TrainingConfig`, gate defaults in
`pipelines.gate.GateConfig`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_NAME = "diabetes-ridge"
PRODUCTION_ALIAS = "production"
EXPERIMENT_NAME = "diabetes-ridge"


class TargetName(StrEnum):
    """Where a command runs."""

    local = "local"
    azure = "azure"


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one invocation."""

    state_dir: Path
    model_name: str
    tracking_uri: str

    @property
    def artifact_root(self) -> Path:
        """Where the local MLflow server keeps run artifacts and model files."""
        return self.state_dir / "mlartifacts"

    @property
    def deployments_dir(self) -> Path:
        """Local deployment records (one JSON file per endpoint)."""
        return self.state_dir / "deployments"

    @property
    def logs_dir(self) -> Path:
        """Logs of local inference servers."""
        return self.state_dir / "logs"

    @property
    def collected_dir(self) -> Path:
        """Model inputs and outputs captured by the data collector, per deployment."""
        return self.state_dir / "collected"


def load_settings(model_name: str | None = None) -> Settings:
    """Settings from the environment (MLOPS_STATE_DIR, MLOPS_MODEL_NAME, MLOPS_TRACKING_URI)."""
    state_dir = Path(os.environ.get("MLOPS_STATE_DIR") or PROJECT_ROOT / ".mlops").resolve()
    name = model_name or os.environ.get("MLOPS_MODEL_NAME") or DEFAULT_MODEL_NAME
    tracking_uri = os.environ.get("MLOPS_TRACKING_URI") or f"sqlite:///{state_dir / 'mlflow.db'}"
    return Settings(state_dir=state_dir, model_name=name, tracking_uri=tracking_uri)
