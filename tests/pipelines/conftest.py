"""Fixtures for the lifecycle tests: a tracking server on a temporary SQLite store."""

from pathlib import Path

import pytest

from pipelines.settings import load_settings
from pipelines.steps import Tracking


@pytest.fixture
def tracking(state_dir: Path) -> Tracking:
    return Tracking(load_settings())
