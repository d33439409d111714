"""Every module a training step can reach imports from its code snapshot alone (issue 10)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipelines.azure import entities
from pipelines.azure.pipeline_job import ENTRYPOINT
from pipelines.azure.snapshot import import_failures, reachable_modules
from pipelines.settings import PROJECT_ROOT

ENTRY_MODULE = ENTRYPOINT.split()[-1]
SHARED_ENVS = PROJECT_ROOT / ".mlops" / "pipeline-envs"  # as tests/azure/test_local_run.py


@pytest.fixture(scope="module")
def training_python() -> Path:
    """The training components' environment, built from their pins (cached across sessions)."""
    from pipelines.azure.local_run import ensure_environment

    return ensure_environment(entities.training_environment(), SHARED_ENVS)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return entities.code_snapshot(tmp_path_factory.mktemp("snapshot") / "code")


def test_the_entry_point_reaches_every_step_module(snapshot: Path) -> None:
    modules = reachable_modules(snapshot, ENTRY_MODULE)
    # Imports inside functions count: the steps import lazily.
    for name in ("pipelines.steps", "pipelines.azure.registry", "pipelines.azure.client"):
        assert name in modules
    assert "pipelines.azure.pipeline_job" not in modules  # submission only, not the steps
    assert not [m for m in modules if m.split(".")[0] not in entities.CODE_PACKAGES]


def test_every_reachable_module_imports_from_the_snapshot_alone_in_its_environment(
    snapshot: Path, training_python: Path
) -> None:
    modules = reachable_modules(snapshot, ENTRY_MODULE)
    assert import_failures(training_python, snapshot, modules, [PROJECT_ROOT]) == {}


def test_a_module_needing_a_package_the_environment_lacks_fails_the_check(
    snapshot: Path, training_python: Path
) -> None:
    """The ops environment has rich; the training environment does not, nor does Azure ML's."""
    broken = snapshot.parent / "needs-rich"
    entities.code_snapshot(broken)
    steps = broken / "pipelines" / "steps.py"
    steps.write_text(steps.read_text() + "\n\ndef _report():\n    from pipelines import console\n")
    modules = reachable_modules(broken, ENTRY_MODULE)
    assert import_failures(Path(sys.executable), broken, modules, [PROJECT_ROOT]) == {}
    failures = import_failures(training_python, broken, modules, [PROJECT_ROOT])
    assert failures["pipelines.console"] == "ModuleNotFoundError: No module named 'rich'"


def test_a_module_importing_outside_the_snapshot_fails_the_check(snapshot: Path) -> None:
    """The defect of issue 10: `infra.outputs` imported at module level by a step's module."""
    broken = snapshot.parent / "broken"
    entities.code_snapshot(broken)
    client = broken / "pipelines" / "azure" / "client.py"
    source = client.read_text()
    marker = "from pipelines.errors import MlopsError\n"
    client.write_text(source.replace(marker, marker + "from infra.outputs import StackOutputs\n"))
    modules = reachable_modules(broken, ENTRY_MODULE)
    failures = import_failures(Path(sys.executable), broken, modules, [PROJECT_ROOT])
    assert failures["pipelines.azure.client"] == "ModuleNotFoundError: No module named 'infra'"


def test_type_only_imports_are_not_followed(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import typed\n"
        "def run():\n    from pkg import lazy\n"
    )
    for name in ("typed", "lazy"):
        (package / f"{name}.py").write_text("")
    assert reachable_modules(tmp_path, "pkg.main") == ["pkg", "pkg.lazy", "pkg.main"]
