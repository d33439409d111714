"""Fixtures shared by the whole suite: an isolated state directory per test."""

from pathlib import Path

import pytest


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MLOPS_STATE_DIR: MLflow store, artifacts and deployments all live under it."""
    state = tmp_path / "state"
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    monkeypatch.delenv("MLOPS_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_MODEL_NAME", raising=False)
    monkeypatch.delenv("MLOPS_TARGET", raising=False)
    return state
