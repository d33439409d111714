"""Fixtures of the infrastructure tests.

Recording a stack under Pulumi mocks takes seconds and checkov takes seconds to start, so
each stack is recorded once per session and checkov runs once over all three templates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.settings import read_stack_config
from infra.tooling.recording import RecordedStack, record_stack

STACKS = ("dev", "qa", "prod")


@pytest.fixture(scope="session")
def recordings() -> dict[str, RecordedStack]:
    """dev, qa and prod recorded offline, once per session."""
    return {stack: record_stack(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def recorded(request: pytest.FixtureRequest, recordings: dict[str, RecordedStack]) -> RecordedStack:
    """Each stack in turn."""
    return recordings[request.param]


@pytest.fixture(scope="session")
def check_reports(
    recordings: dict[str, RecordedStack], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """`infra.tooling.checks` (checkov for real) over the three stacks, once per session."""
    from infra.tooling.checks import check_stacks

    workdir = tmp_path_factory.mktemp("arm")
    reports = check_stacks(list(STACKS), workdir, recordings)
    return {report.stack: report for report in reports}


@pytest.fixture
def stack_config() -> Callable[[str], dict[str, Any]]:
    """A fresh, mutable copy of a stack file's raw config."""
    import copy

    def load(stack: str) -> dict[str, Any]:
        return copy.deepcopy(read_stack_config(stack))

    return load


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[2]
