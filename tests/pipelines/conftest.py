"""Fixtures for the lifecycle tests: a tracking server on a temporary SQLite store."""

import sys
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import pytest

from pipelines.cli import main
from pipelines.console import console, err_console
from pipelines.settings import load_settings
from pipelines.steps import Tracking


@pytest.fixture
def tracking(state_dir: Path) -> Tracking:
    return Tracking(load_settings())


@pytest.fixture
def mlops(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run the real CLI entry point in-process; returns (exit code, stdout + stderr)."""

    def invoke(*args: str) -> tuple[int, str]:
        console.width = err_console.width = 200  # no wrapping inside asserted sentences
        capsys.readouterr()
        with patch.object(sys, "argv", ["mlops", *args]):
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return invoke
