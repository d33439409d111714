"""`mlops pipeline run --local`: the Azure ML pipeline, each step from its snapshot in its env."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.ai.ml import Input, Output
from azure.ai.ml.entities import CommandComponent, Environment

from pipelines.azure import local_run
from pipelines.azure.entities import code_snapshot, training_environment
from pipelines.azure.local_run import (
    Upstream,
    conda_python_and_pins,
    entry_module,
    environment_fingerprint,
    pipeline_nodes,
    render_command,
    snapshot_files,
)
from pipelines.azure.outputs import example_outputs
from pipelines.azure.pipeline_job import PipelineSettings, build_components, build_pipeline
from pipelines.errors import MlopsError
from pipelines.gate_summary import registered_in
from pipelines.registry import ModelRegistry
from pipelines.settings import load_settings
from tests.azure.test_snapshot import SHARED_ENVS

TEMPLATE = (
    "python -m pkg.main run $[[--data ${{inputs.data}}]] --alpha ${{inputs.alpha}} "
    "--output ${{outputs.out}}"
)


def test_optional_blocks_are_dropped_when_their_input_is_unset() -> None:
    rendered = render_command(TEMPLATE, {"data": None, "alpha": "0.5"}, {"out": "/o"})
    assert rendered == "python -m pkg.main run  --alpha 0.5 --output /o"


def test_placeholders_are_bound_and_quoted() -> None:
    rendered = render_command(TEMPLATE, {"data": "/in/a b.csv", "alpha": "1"}, {"out": "/o"})
    assert rendered == "python -m pkg.main run --data '/in/a b.csv' --alpha 1 --output /o"


def test_a_required_input_left_unset_or_undeclared_is_an_error() -> None:
    with pytest.raises(MlopsError, match="input alpha is required"):
        render_command(TEMPLATE, {"data": None, "alpha": None}, {"out": "/o"})
    with pytest.raises(MlopsError, match=r"names inputs\.data, which the component does not"):
        render_command(TEMPLATE, {"alpha": "1"}, {"out": "/o"})


def test_entry_module_of_a_command() -> None:
    assert entry_module(TEMPLATE) == "pkg.main"
    assert entry_module("bash run.sh") is None


@pytest.fixture
def job(tmp_path: Path):
    environment = training_environment()
    components = build_components(code_snapshot(tmp_path / "code"), environment)
    settings = PipelineSettings(model_name="m", commit="abc", shared_registry=False)
    return build_pipeline(components, example_outputs(), settings)


def test_nodes_run_after_what_they_read_with_the_pipeline_inputs_bound(job) -> None:
    nodes = pipeline_nodes(job)
    assert [n.name for n in nodes] == ["validated", "trained", "decided", "registered"]
    trained, decided, registered = nodes[1], nodes[2], nodes[3]
    assert trained.inputs["validated"] == Upstream("validated", "validated")
    assert trained.inputs["params"] == "alpha=0.5" and trained.inputs["model_name"] == "m"
    assert trained.environment_variables == {"GIT_COMMIT": "abc", "MLOPS_MODEL_SPEC": "diabetes"}
    assert registered.inputs["decision"] == Upstream("decided", "decision")
    assert nodes[0].inputs["data"] is None  # no --data: the bundled data set
    # The local run binds no shared registry: the steps use the tracking server's own.
    assert decided.inputs["registry_name"] is None


def test_shared_registry_inputs_are_bound_for_azure(tmp_path: Path) -> None:
    components = build_components(code_snapshot(tmp_path / "code"), training_environment())
    job = build_pipeline(components, example_outputs(), PipelineSettings(model_name="m"))
    decided = next(n for n in pipeline_nodes(job) if n.name == "decided")
    assert decided.inputs["registry_name"] == example_outputs().registry_name


def test_the_snapshot_is_what_azure_ai_ml_uploads(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "pkg" / "__pycache__").mkdir(parents=True)
    (code / "pkg" / "main.py").write_text("")
    (code / "pkg" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"")
    (code / "notes.tmp").write_text("")
    (code / ".amlignore").write_text("*.tmp\n")
    component = CommandComponent(
        name="c", command="python -m pkg.main", code=str(code), environment="azureml:e:1"
    )
    names = sorted(relative for _, relative in snapshot_files(component))
    # .amlignore rules apply and __pycache__ is always left out (ComponentIgnoreFile).
    assert names == [".amlignore", "pkg/main.py"]


LOCK = (
    "numpy==2.3.0 \\\n    --hash=sha256:aa\n    # via -r training/requirements.in\n"
    "pandas==2.3.1 --hash=sha256:bb --hash=sha256:cc\n"
)


def test_environment_pins_and_their_hash() -> None:
    environment = training_environment(LOCK)
    python, pins = conda_python_and_pins(environment)
    assert python == "3.11"  # the lock's Python, not the interpreter running this
    assert pins == [
        "numpy==2.3.0 --hash=sha256:aa",
        "pandas==2.3.1 --hash=sha256:bb --hash=sha256:cc",
    ]
    same = training_environment("# a note\n" + LOCK)
    other = training_environment(LOCK.replace("2.3.1", "2.3.2"))
    assert environment_fingerprint(same) == environment_fingerprint(environment)
    assert environment_fingerprint(other) != environment_fingerprint(environment)
    empty = Environment(name="e", image="i", conda_file={"dependencies": ["python=3.11"]})
    with pytest.raises(MlopsError, match="names no Python version or no pip packages"):
        conda_python_and_pins(empty)


def test_an_environment_without_hashes_is_not_built(tmp_path: Path) -> None:
    unlocked = Environment(
        name="e",
        image="i",
        conda_file={"dependencies": ["python=3.11", "pip", {"pip": ["numpy==2.3.0"]}]},
    )
    with pytest.raises(MlopsError, match=r"installs numpy==2\.3\.0 without a hash"):
        local_run.ensure_environment(unlocked, tmp_path)
    assert not list(tmp_path.glob("*/bin/python"))


def test_a_component_with_an_unknown_environment_is_refused() -> None:
    component = CommandComponent(
        name="c",
        command="true",
        environment="azureml:other:1",
        inputs={"a": Input(type="string")},
        outputs={"o": Output(type="uri_folder")},
    )
    with pytest.raises(MlopsError, match="uses environment azureml:other:1, which this project"):
        local_run.resolve_environment(component, {})


@pytest.fixture
def shared_envs(monkeypatch: pytest.MonkeyPatch) -> None:
    """One venv cache for every test session: a rerun builds nothing."""
    monkeypatch.setenv("MLOPS_PIPELINE_ENVS", str(SHARED_ENVS))


def test_pipeline_run_local_runs_every_step_from_its_snapshot_and_registers(
    mlops: Callable[..., tuple[int, str]], state_dir: Path, tmp_path: Path, shared_envs: None
) -> None:
    summary = tmp_path / "gate.md"
    code, out = mlops("pipeline", "run", "--local", "--summary-file", str(summary))
    assert code == 0, out
    assert "→ validated: Data tests" in out and "→ registered: Register" in out
    assert "✓ gate passed" in out
    assert "registered diabetes-ridge:1; next: " in out
    assert "mlops release --model diabetes-ridge:1" in out
    # gate.json beside gate.md, as `mlops pipeline run` writes them, for the release to read.
    assert registered_in(summary.with_suffix(".json")) == "diabetes-ridge:1"
    settings = load_settings()
    [version] = ModelRegistry(settings.tracking_uri, settings.model_name).versions()
    assert version.tags["gate.decision"] == "passed"
    # Each step ran in the Azure ML layout: code in exe/wd, mounts under cap/data-capability/wd.
    [run_dir] = (state_dir / "pipeline-runs").iterdir()
    trained = run_dir / "trained"
    assert (trained / "exe" / "wd" / "pipelines" / "azure" / "entrypoints.py").is_file()
    assert not (trained / "exe" / "wd" / "infra").exists()
    mounts = trained / "cap" / "data-capability" / "wd"
    assert (mounts / "INPUT_validated").resolve() == (
        run_dir / "validated" / "cap" / "data-capability" / "wd" / "validated"
    )
    assert json.loads((mounts / "run" / "run.json").read_text())["run_id"] == version.run_id
