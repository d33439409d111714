"""`make reset`: what the demo's re-run summary tells a user to run to replay the story."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.settings import PROJECT_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_reset_removes_the_state_directory_in_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "deployments").mkdir(parents=True)
    (state / "mlflow.db").write_text("")
    default_state_existed = (PROJECT_ROOT / ".mlops").exists()
    result = subprocess.run(
        ["make", "--no-print-directory", "reset"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLOPS_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not state.exists()
    assert (PROJECT_ROOT / ".mlops").exists() == default_state_existed  # only the one in use
