"""Project settings for the ops side: where state lives and what the model is called.

One place for each setting. Defaults here; environment variables override them
(documented in the README); command-line options override both where a command offers them.
The model itself (its name, hyperparameters, metrics and gate metric) is the model definition
MLOPS_MODEL_SPEC selects (`training.spec`); split defaults live in
`training.model.TrainingConfig`, gate defaults in `pipelines.gate.GateConfig`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from training.spec import DEFAULT_SPEC, current_spec

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_ALIAS = "production"


def default_model_name() -> str:
    """The registered model's default name: the selected definition's."""
    return current_spec().model_name


def default_state_dir() -> Path:
    """`.mlops` for the default definition, `.mlops/<name>` for another one: each definition
    keeps its own runs, models and endpoints, so `make demo MODEL=...` never mixes two models."""
    name = current_spec().name
    root = PROJECT_ROOT / ".mlops"
    return root if name == DEFAULT_SPEC else root / name


def experiment_name() -> str:
    """The MLflow experiment training runs go to: one per model definition."""
    return current_spec().model_name


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
    """Settings from the environment (MLOPS_STATE_DIR, MLOPS_MODEL_NAME, MLOPS_TRACKING_URI,
    and MLOPS_MODEL_SPEC for the defaults of the first two)."""
    state_dir = Path(os.environ.get("MLOPS_STATE_DIR") or default_state_dir()).resolve()
    name = model_name or os.environ.get("MLOPS_MODEL_NAME") or default_model_name()
    tracking_uri = os.environ.get("MLOPS_TRACKING_URI") or f"sqlite:///{state_dir / 'mlflow.db'}"
    return Settings(state_dir=state_dir, model_name=name, tracking_uri=tracking_uri)
