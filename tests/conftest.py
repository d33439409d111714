"""Fixtures shared by the whole suite: an isolated state directory, the CLI in-process."""

import sys
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import pytest

from pipelines.cli import main
from pipelines.console import console, err_console


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MLOPS_STATE_DIR: MLflow store, artifacts and deployments all live under it."""
    state = tmp_path / "state"
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    monkeypatch.delenv("MLOPS_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_MODEL_NAME", raising=False)
    monkeypatch.delenv("MLOPS_TARGET", raising=False)
    monkeypatch.delenv("MLOPS_MODEL_SPEC", raising=False)
    return state


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real CLI entry point in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    # main() tunes the process's cyclic collector for a short-lived command (pipelines/cli.py);
    # the test process keeps its own settings, so no test depends on which tests ran before.
    with (
        patch.object(sys, "argv", ["mlops", *args]),
        patch("pipelines.cli.defer_cycle_collection"),
        patch("pipelines.cli.gc.set_threshold"),
    ):
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def mlops(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run the real CLI entry point in-process; returns (exit code, stdout + stderr)."""

    def invoke(*args: str) -> tuple[int, str]:
        console.width = err_console.width = 300  # no wrapping inside asserted sentences
        code, out, err = run_cli(capsys, *args)
        return code, out + err

    return invoke
