"""The Azure ML training pipeline: data tests → train → gate → register, on the AML cluster.

Four command components, each a thin `python -m pipelines.azure.entrypoints <step>` over the
same `pipelines.steps` code that `mlops run` uses locally; `@dsl.pipeline` wires them by data:
training only sees data that passed its tests, the gate reads the training run, registration
reads the gate's decision. MLflow tracking goes to the workspace (Azure ML sets the job's
tracking URI), the production model and the registration live in the shared registry.

The compute is the pipeline's `default_compute` setting, so `jobs.validate` checks the whole
wiring without a network call (a named compute would be looked up).
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.ai.ml import Input, Output, dsl
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    CommandComponent,
    Environment,
    ManagedIdentityConfiguration,
    PipelineJob,
)

from pipelines.azure.snapshot import tree_digest
from pipelines.gate import GateConfig
from pipelines.settings import experiment_name
from pipelines.tags import checked_tags
from training.model import TrainingConfig
from training.spec import SPEC_VARIABLE, ModelSpec, current_spec

if TYPE_CHECKING:
    # Type-only: infra/ is not in a job's code snapshot (CODE_PACKAGES).
    from infra.outputs import StackOutputs

COMPONENT_VERSION = "1"
ENTRYPOINT = "python -m pipelines.azure.entrypoints"


def pipeline_name(spec: ModelSpec) -> str:
    """The pipeline's (and its components') name, after the model definition: a fork's
    pipeline is its own (`diabetes_training`; Azure ML names nodes and components with
    identifiers, so underscores)."""
    return spec.asset_name("training", separator="_")


@dataclass(frozen=True)
class TrainingComponents:
    """The four steps of the training pipeline."""

    validate: CommandComponent
    train: CommandComponent
    gate: CommandComponent
    register: CommandComponent

    def all(self) -> tuple[CommandComponent, ...]:
        """In pipeline order, for `mlops pipeline publish`."""
        return (self.validate, self.train, self.gate, self.register)


def component_version(code_dir: Path, environment: Environment) -> str:
    """A version that changes with the code snapshot or the environment, never otherwise.

    The component commands live in this module, which is part of the snapshot.
    """
    digest = hashlib.sha256(str(environment_reference(environment)).encode())
    digest.update(tree_digest(code_dir).encode())
    return digest.hexdigest()[:12]


def environment_reference(environment: Environment) -> str:
    """`azureml:<name>:<version>`: components use the registered environment, not a copy."""
    return f"azureml:{environment.name}:{environment.version}"


def build_components(
    code_dir: Path, environment: Environment | str, version: str = COMPONENT_VERSION
) -> TrainingComponents:
    """The command components, sharing one code snapshot and one environment.

    Pass the registered environment's reference (`environment_reference`) when submitting;
    azure-ai-ml would register an inline Environment anonymously under another name.
    """
    code = str(code_dir)
    spec = current_spec()  # components are named after the definition, like the pipeline
    registry_inputs = {
        "model_name": Input(type="string"),
        "registry_name": Input(type="string", optional=True),
        "registry_subscription": Input(type="string", optional=True),
        "registry_resource_group": Input(type="string", optional=True),
    }
    registry_args = (
        "--model-name ${{inputs.model_name}} "
        "$[[--registry-name ${{inputs.registry_name}}]] "
        "$[[--registry-subscription ${{inputs.registry_subscription}}]] "
        "$[[--registry-resource-group ${{inputs.registry_resource_group}}]]"
    )
    # Registration shares the workspace's version into the registry: it names the workspace.
    workspace_inputs = {
        "workspace_name": Input(type="string", optional=True),
        "workspace_subscription": Input(type="string", optional=True),
        "workspace_resource_group": Input(type="string", optional=True),
    }
    workspace_args = (
        "$[[--workspace-name ${{inputs.workspace_name}}]] "
        "$[[--workspace-subscription ${{inputs.workspace_subscription}}]] "
        "$[[--workspace-resource-group ${{inputs.workspace_resource_group}}]]"
    )
    validate = CommandComponent(
        name=spec.asset_name("validate_data", separator="_"),
        version=version,
        display_name="Data tests",
        description="Schema, missing values, ranges and distribution; the validated table is "
        "the only input training sees.",
        inputs={"data": Input(type=AssetTypes.URI_FILE, optional=True)},
        outputs={"validated": Output(type=AssetTypes.URI_FOLDER)},
        code=code,
        environment=environment,
        command=f"{ENTRYPOINT} validate $[[--data ${{{{inputs.data}}}}]] "
        "--output ${{outputs.validated}}",
    )
    train = CommandComponent(
        name=spec.asset_name("train", separator="_"),
        version=version,
        display_name="Train",
        description="Trains the model definition (MLOPS_MODEL_SPEC); logs params, metrics, "
        "lineage and the model bundle to the workspace's MLflow.",
        inputs={
            "validated": Input(type=AssetTypes.URI_FOLDER),
            # The definition's hyperparameters as NAME=VALUE[,NAME=VALUE...] (training.spec).
            "params": Input(type="string"),
            "seed": Input(type="integer"),
            "test_size": Input(type="number"),
            "model_name": Input(type="string"),
            # The data input as given (an asset reference, a URI, or "bundled"): the lineage a
            # release reads, where the mounted path of the validated copy says nothing.
            "data_source": Input(type="string"),
        },
        outputs={"run": Output(type=AssetTypes.URI_FOLDER)},
        code=code,
        environment=environment,
        command=f"{ENTRYPOINT} train --validated ${{{{inputs.validated}}}} "
        "--params ${{inputs.params}} --seed ${{inputs.seed}} --test-size ${{inputs.test_size}} "
        "--model-name ${{inputs.model_name}} --data-source ${{inputs.data_source}} "
        "--output ${{outputs.run}}",
    )
    gate = CommandComponent(
        name=spec.asset_name("gate", separator="_"),
        version=version,
        display_name="Gate",
        description="Scores the candidate and the production model on the same holdout; a "
        "rejection is an outcome (recorded), not a failure.",
        inputs={
            "run": Input(type=AssetTypes.URI_FOLDER),
            "metric": Input(type="string"),
            "min_improvement": Input(type="number"),
            **registry_inputs,
        },
        outputs={"decision": Output(type=AssetTypes.URI_FOLDER)},
        code=code,
        environment=environment,
        command=f"{ENTRYPOINT} gate --run ${{{{inputs.run}}}} --metric ${{{{inputs.metric}}}} "
        f"--min-improvement ${{{{inputs.min_improvement}}}} {registry_args} "
        "--output ${{outputs.decision}}",
    )
    register = CommandComponent(
        name=spec.asset_name("register", separator="_"),
        version=version,
        display_name="Register",
        description="Registers a gated model with every lineage tag and publishes it to the "
        "shared registry; a rejected candidate is never registered.",
        inputs={
            "run": Input(type=AssetTypes.URI_FOLDER),
            "decision": Input(type=AssetTypes.URI_FOLDER),
            **registry_inputs,
            **workspace_inputs,
        },
        outputs={"registered": Output(type=AssetTypes.URI_FOLDER)},
        code=code,
        environment=environment,
        command=f"{ENTRYPOINT} register --run ${{{{inputs.run}}}} "
        f"--decision ${{{{inputs.decision}}}} {registry_args} {workspace_args} "
        "--output ${{outputs.registered}}",
    )
    return TrainingComponents(validate, train, gate, register)


def _with_variables(nodes: tuple[Any, ...], variables: Mapping[str, str]) -> None:
    for node in nodes:
        node.environment_variables = {**(node.environment_variables or {}), **variables}


def _with_spec(nodes: tuple[Any, ...], spec_name: str) -> None:
    """Hand the model definition's name to every step (MLOPS_MODEL_SPEC)."""
    _with_variables(nodes, {SPEC_VARIABLE: spec_name})


IDENTITY_VARIABLE = "MLOPS_IDENTITY_CLIENT_ID"


def job_identity(outputs: "StackOutputs") -> ManagedIdentityConfiguration:
    """The identity the job runs as: the training cluster's user-assigned identity, by name.

    Without one a job runs with the AML token of the submitter ("Defaults to AmlToken if null":
    the REST API's JobProperties.identity, Learn's MachineLearningJobProperties.Identity); a
    ManagedIdentity naming a client id is that user-assigned identity (Learn,
    MachineLearningManagedIdentity: "Specifies a user-assigned identity by client ID"; azure-ai-ml
    `entities/_credentials.py`, ManagedIdentityConfiguration). It is the identity granted read and
    write on the shared registry (infra), so the gate and registration reach the registry
    whoever submitted the run.
    """
    return ManagedIdentityConfiguration(
        client_id=outputs.training_identity_client_id, resource_id=outputs.training_identity_id
    )


def identity_variables(outputs: "StackOutputs") -> dict[str, str]:
    """The job identity's client id for the steps' credential (`entrypoints._job_credential`)."""
    return {IDENTITY_VARIABLE: outputs.training_identity_client_id}


def format_params(values: Mapping[str, float]) -> str:
    """Hyperparameters as the train step's `--params` reads them: `alpha=0.5,l1=0.1`."""
    return ",".join(f"{name}={value!r}" for name, value in values.items())


@dataclass(frozen=True)
class PipelineSettings:
    """What one pipeline run trains and how the gate decides."""

    model_name: str
    data: str | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    # The commit being built (steps.git_commit() at submission): the code snapshot on the
    # cluster has no .git, and the gate needs the commit to tell a re-run from new code.
    commit: str = ""
    # False for `mlops pipeline run --local`: the steps use the tracking server's own registry.
    shared_registry: bool = True


def build_pipeline(
    components: TrainingComponents, outputs: "StackOutputs", settings: PipelineSettings
) -> PipelineJob:
    """The pipeline job on the stack's training cluster, in the project's MLflow experiment."""
    validate, train, gate, register = components.all()
    registry: dict[str, Any] = (
        {
            "registry_name": outputs.registry_name,
            "registry_subscription": outputs.subscription_id,
            "registry_resource_group": outputs.registry_resource_group,
        }
        if settings.shared_registry
        else {}
    )
    workspace: dict[str, Any] = (
        {
            "workspace_name": outputs.workspace_name,
            "workspace_subscription": outputs.subscription_id,
            "workspace_resource_group": outputs.resource_group,
        }
        if settings.shared_registry
        else {}
    )

    @dsl.pipeline(
        None,
        name=pipeline_name(settings.training.spec),
        display_name=f"{settings.training.spec.title}: data tests, train, gate, register",
        experiment_name=experiment_name(),
        default_compute=outputs.training_compute_name,
    )
    def training_pipeline(  # dsl reads these annotations: plain types only
        data: Input = None,  # type: ignore[assignment]
        params: str = "",
        seed: int = TrainingConfig.seed,
        test_size: float = TrainingConfig.test_size,
        metric: str = "",
        min_improvement: float = GateConfig.min_improvement,
        model_name: str = "",
        data_source: str = "bundled",
    ) -> dict[str, Any]:
        validated = validate(data=data)
        trained = train(
            validated=validated.outputs.validated,
            params=params,
            seed=seed,
            test_size=test_size,
            model_name=model_name,
            data_source=data_source,
        )
        if settings.commit:
            trained.environment_variables = {"GIT_COMMIT": settings.commit}
        decided = gate(
            run=trained.outputs.run,
            metric=metric,
            min_improvement=min_improvement,
            model_name=model_name,
            **registry,
        )
        registered = register(
            run=trained.outputs.run,
            decision=decided.outputs.decision,
            model_name=model_name,
            **registry,
            **workspace,
        )
        # Every step reads the same model definition (features, metrics, gate metric). No loop
        # variable here: the dsl names each node after the local that holds it.
        _with_spec((validated, trained, decided, registered), settings.training.spec.name)
        # The steps that read and write the shared registry authenticate as the job's identity.
        _with_variables((decided, registered), identity_variables(outputs))
        return {
            "run": trained.outputs.run,
            "decision": decided.outputs.decision,
            "registered": registered.outputs.registered,
        }

    # Without --data the training step uses the bundled data set: the input stays unset.
    data: dict[str, Any] = (
        {"data": Input(type=AssetTypes.URI_FILE, path=settings.data)} if settings.data else {}
    )
    job: PipelineJob = training_pipeline(
        **data,
        params=format_params(settings.training.hyperparameters),
        seed=settings.training.seed,
        test_size=settings.training.test_size,
        metric=settings.gate.metric,
        min_improvement=settings.gate.min_improvement,
        model_name=settings.model_name,
        data_source=settings.data or "bundled",
    )
    name = pipeline_name(settings.training.spec)
    job.tags = checked_tags({"model_name": settings.model_name}, f"pipeline job {name}")
    job.identity = job_identity(outputs)
    return job
