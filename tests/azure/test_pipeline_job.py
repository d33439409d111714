"""The training pipeline: components and wiring serialized, and the SDK's offline validation."""

from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import dsl
from azure.ai.ml._utils.utils import is_valid_node_name

from infra.outputs import StackOutputs
from pipelines.azure.entities import code_snapshot, scoring_image_repository, training_environment
from pipelines.azure.pipeline_job import (
    PipelineSettings,
    TrainingComponents,
    build_components,
    build_pipeline,
    component_version,
    environment_reference,
)
from pipelines.commands.pipeline import build_job, validation_errors
from pipelines.datastore.datasets import feedback_name
from pipelines.gate import GateConfig
from pipelines.settings import experiment_name
from training.model import TrainingConfig
from training.spec import DEFINITIONS, SPEC_VARIABLE, load_spec


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return code_snapshot(tmp_path_factory.mktemp("pipeline") / "code")


@pytest.fixture(scope="module")
def components(code: Path) -> TrainingComponents:
    env = training_environment()
    return build_components(code, environment_reference(env), component_version(code, env))


def test_components(components: TrainingComponents, code: Path) -> None:
    env = training_environment()
    for component in components.all():
        data = component._to_dict()
        assert data["environment"] == f"azureml:diabetes-training:{env.version}"
        assert data["code"] == str(code)
        assert data["command"].startswith("python -m pipelines.azure.entrypoints ")
    validate = components.validate._to_dict()
    assert validate["inputs"]["data"] == {"type": "uri_file", "optional": True}
    assert "$[[--data ${{inputs.data}}]]" in validate["command"]
    train = components.train._to_dict()
    assert set(train["inputs"]) == {
        "validated", "params", "seed", "test_size", "model_name", "data_source"
    }  # fmt: skip
    assert train["outputs"]["run"]["type"] == "uri_folder"
    gate = components.gate._to_dict()
    assert "--min-improvement ${{inputs.min_improvement}}" in gate["command"]
    assert "$[[--registry-name ${{inputs.registry_name}}]]" in gate["command"]
    register = components.register._to_dict()
    assert set(register["inputs"]) >= {"run", "decision", "model_name"}


def test_component_version_follows_the_code(tmp_path: Path, code: Path) -> None:
    env = training_environment()
    other = code_snapshot(tmp_path / "other")
    assert component_version(code, env) == component_version(other, env)
    (other / "training" / "extra.py").write_text("x = 1\n")
    assert component_version(code, env) != component_version(other, env)


def test_pipeline_wiring(components: TrainingComponents, dev: StackOutputs) -> None:
    settings = PipelineSettings(
        model_name="diabetes-ridge",
        data="azureml:diabetes:3",
        training=TrainingConfig({"alpha": 0.3}, seed=7),
        gate=GateConfig(metric="mae", min_improvement=0.5),
        commit="0123abc",
    )
    job = build_pipeline(components, dev, settings)
    data = job._to_dict()
    assert data["experiment_name"] == experiment_name() == "diabetes-ridge"
    assert data["settings"]["default_compute"] == "azureml:cpu-cluster"
    assert data["inputs"]["data"] == {"type": "uri_file", "path": "azureml:diabetes:3"}
    assert data["inputs"]["params"] == "alpha=0.3" and data["inputs"]["metric"] == "mae"
    jobs = data["jobs"]
    assert list(jobs) == ["validated", "trained", "decided", "registered"]
    assert jobs["validated"]["inputs"]["data"]["path"] == "${{parent.inputs.data}}"
    # The data as given reaches training for its lineage (the mounted copy's path says nothing).
    assert data["inputs"]["data_source"] == "azureml:diabetes:3"
    assert jobs["trained"]["inputs"]["data_source"]["path"] == "${{parent.inputs.data_source}}"
    assert jobs["trained"]["inputs"]["validated"]["path"] == (
        "${{parent.jobs.validated.outputs.validated}}"
    )
    assert jobs["decided"]["inputs"]["run"]["path"] == "${{parent.jobs.trained.outputs.run}}"
    assert jobs["registered"]["inputs"]["decision"]["path"] == (
        "${{parent.jobs.decided.outputs.decision}}"
    )
    assert jobs["decided"]["inputs"]["registry_name"] == "mlops-registry-t3mpl"
    # Registration shares the workspace's version: only it names the workspace.
    assert jobs["registered"]["inputs"]["workspace_name"] == dev.workspace_name
    assert jobs["registered"]["inputs"]["workspace_resource_group"] == dev.resource_group
    assert "workspace_name" not in jobs["decided"]["inputs"]
    # An explicit identity: the training cluster's user-assigned identity, also for the steps.
    assert data["identity"]["type"] == "managed_identity"
    assert data["identity"]["client_id"] == dev.training_identity_client_id
    rest_identity = job._to_rest_object().properties.identity
    assert rest_identity.identity_type == "Managed"
    assert rest_identity.client_id == dev.training_identity_client_id
    assert rest_identity.resource_id == dev.training_identity_id
    for name in ("decided", "registered"):
        variables = jobs[name]["environment_variables"]
        assert variables["MLOPS_IDENTITY_CLIENT_ID"] == dev.training_identity_client_id
    # The cluster's code snapshot has no .git: the commit travels to the training step.
    assert jobs["trained"]["environment_variables"] == {
        "GIT_COMMIT": "0123abc",
        "MLOPS_MODEL_SPEC": "diabetes",
    }
    # Every step reads the same model definition.
    for name in ("validated", "decided", "registered"):
        assert jobs[name]["environment_variables"]["MLOPS_MODEL_SPEC"] == "diabetes"
    assert jobs["validated"]["environment_variables"] == {"MLOPS_MODEL_SPEC": "diabetes"}
    assert set(data["outputs"]) == {"run", "decision", "registered"}
    rest = job._to_rest_object()
    assert rest.properties.experiment_name == experiment_name()


def test_validate_passes_offline(dev: StackOutputs, tmp_path: Path) -> None:
    settings = PipelineSettings(model_name="diabetes-ridge")
    job = build_job(dev, settings, tmp_path)
    assert job.component.name == "diabetes_training"  # named after the model definition
    assert {c.name for c in build_components(tmp_path, "azureml:env:1").all()} == {
        "diabetes_validate_data",
        "diabetes_train",
        "diabetes_gate",
        "diabetes_register",
    }
    # OfflineCredential raises on any token request: validation must not need one.
    assert validation_errors(job, dev) == {}
    assert "data" not in job._to_dict()["inputs"]  # unset: the bundled data set


def test_broken_wiring_fails_validation(components: TrainingComponents, dev: StackOutputs) -> None:
    validate, train, _, register = components.all()

    @dsl.pipeline(None, name="broken", default_compute=dev.training_compute_name)
    def broken() -> dict[str, Any]:
        validated = validate()
        trained = train(validated=validated.outputs.validated, params="alpha=0.5", seed=1,
                        test_size=0.2, model_name="m", data_source="bundled")  # fmt: skip
        # The decision is never passed to registration.
        registered = register(run=trained.outputs.run, model_name="m")
        return {"registered": registered.outputs.registered}

    errors = validation_errors(broken(), dev)
    assert any("decision" in key or "decision" in message for key, message in errors.items())


@pytest.mark.parametrize("definition", sorted(DEFINITIONS))
def test_azure_names_follow_the_model_definition(
    definition: str, dev: StackOutputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork renames its pipeline, components and environments by its definition's `name`."""
    monkeypatch.setenv(SPEC_VARIABLE, definition)
    spec = load_spec(definition)
    settings = PipelineSettings(model_name=spec.registered_name, training=TrainingConfig(spec=spec))
    job = build_job(dev, settings, tmp_path)
    prefix = definition.replace("-", "_")
    assert job.component.name == f"{prefix}_training"
    # azure-ai-ml's own rule for node and component names (_utils/utils.py is_valid_node_name)
    components = build_components(tmp_path, "azureml:env:1").all()
    assert [c.name for c in components] == [
        f"{prefix}_{step}" for step in ("validate_data", "train", "gate", "register")
    ]
    assert all(is_valid_node_name(str(c.name)) for c in components)
    assert training_environment().name == f"{definition}-training"
    assert scoring_image_repository() == f"{definition}-scoring"
    assert feedback_name() == f"{definition}-feedback"
    assert validation_errors(job, dev) == {}
