"""Fixtures of the Azure DevOps tests: the recorded devops stack and one checkov run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.tooling.devops_recording import RecordedDevops, record_devops
from tests.devops.pipeline_files import PIPELINES_DIR


@pytest.fixture(scope="session")
def devops() -> RecordedDevops:
    """The devops stack recorded offline, once per session."""
    return record_devops()


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    """`checkov --framework azure_pipelines` over .azure-pipelines, once per session."""
    checkov = Path(sys.executable).parent / "checkov"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    completed = subprocess.run(
        [
            str(checkov), "--framework", "azure_pipelines", "--directory", str(PIPELINES_DIR),
            "--output", "json", "--skip-download",
        ],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    report = json.loads(completed.stdout)
    return report[0] if isinstance(report, list) else report
