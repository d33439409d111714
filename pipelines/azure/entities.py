"""Pure builders: settings and stack outputs in, azure-ai-ml v2 entities out.

Nothing here calls Azure; every entity serializes offline (design note §5), and the tests
assert the fields that matter. Orchestration (`pipelines.targets.azure`, `registry`, `batch`)
sends what these functions build.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.ai.ml.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    DataCollector,
    DefaultScaleSettings,
    DeploymentCollection,
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    OnlineEndpoint,
    OnlineRequestSettings,
    ProbeSettings,
    ResourceRequirementsSettings,
    ResourceSettings,
    TargetUtilizationScaleSettings,
)

from pipelines.azure.invariants import (
    InvariantError,
    check_managed_instances,
    check_managed_scale,
    check_mirror,
    check_name,
    check_traffic,
)
from pipelines.locks import BATCH as BATCH_LOCK
from pipelines.locks import TRAINING as TRAINING_LOCK
from pipelines.locks import LockSpec, pip_lines
from pipelines.registry import TAG_DIGEST, RegisteredVersion
from pipelines.settings import PROJECT_ROOT
from pipelines.tags import checked_tags
from training.spec import current_spec

if TYPE_CHECKING:
    # Type-only: infra/ is not in a job's code snapshot (CODE_PACKAGES).
    from infra.outputs import StackOutputs


def scoring_image_repository() -> str:
    """Repository of the scoring image in each environment's ACR (tag: the image digest),
    named after the model definition: `diabetes-scoring`."""
    return current_spec().asset_name("scoring")


# Ubuntu 22.04 (glibc 2.35) on x86_64: the platform the locks are resolved for (pipelines.locks);
# conda installs the lock's Python (3.11) and pins over it.
TRAINING_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
BATCH_BASE_IMAGE = TRAINING_BASE_IMAGE

CODE_PACKAGES = ("training", "pipelines", "scoring")
SCORING_PACKAGES = ("scoring",)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")

DATA_COLLECTIONS = ("model_inputs", "model_outputs")


# -- code and environments --------------------------------------------------------------------


def code_snapshot(dest: Path, packages: Iterable[str] = CODE_PACKAGES) -> Path:
    """Copy the project's packages into `dest`, the folder Azure ML uploads as the job's code.

    Only these packages: never the virtual environments, state or git metadata of the checkout.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for package in packages:
        shutil.copytree(PROJECT_ROOT / package, dest / package, ignore=_IGNORED)
    return dest


def _short_hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def conda_spec(name: str, lock: LockSpec, lock_text: str | None = None) -> dict[str, Any]:
    """A conda file: the lock's Python, and its pins with their hashes as the pip section.

    conda writes the pip section to a requirements file and runs `pip install -U -r` on it
    (conda/conda, `conda/env/installers/pip.py`, `_pip_install_via_requirements`), and Azure ML
    builds a conda environment by running conda on this file over the image (Learn, "Deploy
    models for scoring in batch endpoints": "the conda_file dependencies will be installed on
    top of the image"). A `--hash` option is valid on a requirements-file line, and "specifying
    --hash against any requirement will activate this mode globally" (pip's docs, "Secure
    installs", hash-checking mode), so Azure ML's pip installs exactly the locked files.
    """
    text = lock.lock_path(PROJECT_ROOT).read_text() if lock_text is None else lock_text
    return {
        "name": name,
        "channels": ["conda-forge"],
        "dependencies": [f"python={lock.python}", "pip", {"pip": pip_lines(text)}],
    }


def _locked_environment(
    name: str, image: str, lock: LockSpec, lock_text: str | None, description: str
) -> Environment:
    # Versioned by the hash of the image and the conda file: a new lock is a new version.
    spec = conda_spec(name, lock, lock_text)
    return Environment(
        name=name,
        version=_short_hash([image, spec]),
        description=description,
        image=image,
        conda_file=spec,
        tags=checked_tags({"lock": lock.lock}, f"environment {name}"),
    )


def training_environment(lock_text: str | None = None) -> Environment:
    """The training components' environment, from training/requirements.txt (or `lock_text`)."""
    return _locked_environment(
        current_spec().asset_name("training"),
        TRAINING_BASE_IMAGE,
        TRAINING_LOCK,
        lock_text,
        "Training, gate and registration (locked: training/requirements.txt).",
    )


def batch_environment(lock_text: str | None = None) -> Environment:
    """The batch deployment's environment, from scoring/batch-requirements.txt (or `lock_text`):
    the online scoring packages plus Azure ML's batch driver runtime."""
    return _locked_environment(
        current_spec().asset_name("batch"),
        BATCH_BASE_IMAGE,
        BATCH_LOCK,
        lock_text,
        "Batch scoring (locked: scoring/batch-requirements.txt).",
    )


def scoring_image(outputs: StackOutputs, tag: str) -> str:
    """`<acr>/<definition>-scoring:<tag>` in the stack's own registry (tag: the image digest)."""
    return f"{outputs.acr_login_server}/{scoring_image_repository()}:{tag}"


# Where the image runs the Azure ML inference server: azmlinfsrv listens on 5001 by default
# (azureml-inference-server-http, `azureml_inference_server_http/constants.py`, DEFAULT_PORT),
# the port the Azure ML examples route to for images built on the minimal inference image
# (Azure/azureml-examples, cli/endpoints/online/custom-container/minimal/single-model/
# pip-in-dockerfile/minimal-single-model-pip-in-dockerfile-deployment.yml) and the port of the
# QA container group (infra aci.port).
SERVER_PORT = 5001
# The image's code and entry script (scoring/Dockerfile ENV; tests/azure check they agree): a
# deployment without code_configuration gets no code mount, so nothing else sets them.
IMAGE_APP_ROOT = "/var/azureml-app/scoring"
IMAGE_ENTRY_SCRIPT = f"{IMAGE_APP_ROOT}/score.py"


def inference_config() -> dict[str, dict[str, Any]]:
    """Routes of a custom container (`Environment(inference_config=...)`, azure-ai-ml
    `entities/_assets/environment.py`; the REST API's InferenceContainerProperties): Azure ML
    probes liveness and readiness and forwards scoring requests to these instead of expecting
    its own code mount. `/` is the server's health route, `/score` the scoring route.
    """
    return {
        "liveness_route": {"port": SERVER_PORT, "path": "/"},
        "readiness_route": {"port": SERVER_PORT, "path": "/"},
        "scoring_route": {"port": SERVER_PORT, "path": "/score"},
    }


def scoring_environment(
    outputs: StackOutputs, version: RegisteredVersion, image_digest: str
) -> Environment:
    """The scoring image (`pipelines.azure.image`) as a custom-container environment.

    Versioned by the image digest: the same name and version always mean the same image, so
    registering it again is a no-op, never a conflicting change to an immutable asset.
    """
    return Environment(
        name=scoring_image_repository(),
        version=image_digest,
        description=f"Scoring image for {version.ref} (scoring/Dockerfile, model baked in).",
        image=scoring_image(outputs, image_digest),
        inference_config=inference_config(),
        tags=checked_tags(
            {"model": version.ref, TAG_DIGEST: version.digest},
            f"environment {scoring_image_repository()}",
        ),
    )


# -- models -----------------------------------------------------------------------------------


def registry_model_id(registry_name: str, name: str, version: str) -> str:
    """The asset id that deployments in any workspace use to reference a registry model."""
    return f"azureml://registries/{registry_name}/models/{name}/versions/{version}"


# -- online deployments -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScalePlan:
    """Replicas and target utilisation (`pipelines.azure.capacity.plan_capacity` sizes it)."""

    min_instances: int = 2
    max_instances: int = 4
    target_utilization_percentage: int = 70
    polling_interval_s: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.min_instances <= self.max_instances:
            raise InvariantError(
                f"scale plan needs 1 <= min_instances <= max_instances, got "
                f"{self.min_instances} and {self.max_instances}"
            )
        if not 1 <= self.target_utilization_percentage <= 100:
            raise InvariantError(
                "target_utilization_percentage must be between 1 and 100, got "
                f"{self.target_utilization_percentage}"
            )


@dataclass(frozen=True)
class ServingSettings:
    """How one deployment serves: timeouts, concurrency, probes, resources, collection."""

    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 2
    workers: int = 2
    cpu_request: str = "100m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    managed_instance_type: str = "Standard_DS2_v2"
    # Managed deployments serve production only (QA runs on ACI): three instances, the count
    # Microsoft recommends for production high availability (issue 10 desk review; see
    # invariants.MIN_MANAGED_PRODUCTION_INSTANCES).
    managed_instance_count: int = 3
    sampling_rate: float = 1.0
    extra_environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def scoring_timeout_ms(self) -> int:
        """The scoring server's own timeout, below the endpoint's (design note §6)."""
        return max(self.request_timeout_ms - 500, 1000)


def _environment_variables(version: RegisteredVersion, serving: ServingSettings) -> dict[str, str]:
    return {
        "AML_APP_ROOT": IMAGE_APP_ROOT,
        "AZUREML_ENTRY_SCRIPT": IMAGE_ENTRY_SCRIPT,
        "MODEL_SHA256": version.digest,
        "SCORING_TIMEOUT_MS": str(serving.scoring_timeout_ms),
        "WORKER_COUNT": str(serving.workers),
        **serving.extra_environment,
    }


def _probes() -> tuple[ProbeSettings, ProbeSettings]:
    # Liveness tolerates a slow cold start; readiness takes a pod out of rotation quickly.
    liveness = ProbeSettings(
        initial_delay=10, period=10, timeout=2, failure_threshold=3, success_threshold=1
    )
    readiness = ProbeSettings(
        initial_delay=5, period=5, timeout=2, failure_threshold=3, success_threshold=1
    )
    return liveness, readiness


def _request_settings(serving: ServingSettings) -> OnlineRequestSettings:
    # No max_queue_wait: "deprecated for managed online endpoints; increase request_timeout_ms
    # to account for any networking/queue delays" (the REST API's OnlineRequestSettings, e.g.
    # Learn's @azure/arm-machinelearning OnlineRequestSettings reference).
    return OnlineRequestSettings(
        request_timeout_ms=serving.request_timeout_ms,
        max_concurrent_requests_per_instance=serving.max_concurrent_requests_per_instance,
    )


def data_collector(serving: ServingSettings) -> DataCollector:
    """Model inputs and outputs, the names `scoring/collection.py` collects under."""
    return DataCollector(
        collections={name: DeploymentCollection(enabled="true") for name in DATA_COLLECTIONS},
        sampling_rate=serving.sampling_rate,
    )


IMAGE_TAG = "image_digest"


def _common(
    outputs: StackOutputs,
    endpoint: str,
    deployment: str,
    version: RegisteredVersion,
    image_digest: str,
) -> dict[str, Any]:
    """What both kinds of deployment share: exactly the image QA served, nothing added.

    No `code_configuration` and no `model`: the entry script and the verified bundle are baked
    into the image, so a code or model mount would make production serve something QA's smoke
    test did not see. The deployment's tags name the model and the image digest.
    """
    check_name("endpoint", endpoint)
    check_name("deployment", deployment)
    return {
        "name": deployment,
        "endpoint_name": endpoint,
        "environment": scoring_environment(outputs, version, image_digest),
        "app_insights_enabled": True,
        "tags": checked_tags(
            {"model": version.ref, TAG_DIGEST: version.digest, IMAGE_TAG: image_digest},
            f"deployment {deployment}",
        ),
        "description": f"{version.ref} (blue/green slot {deployment})",
    }


def kubernetes_deployment(
    outputs: StackOutputs,
    endpoint: str,
    deployment: str,
    version: RegisteredVersion,
    image_digest: str,
    plan: ScalePlan,
    serving: ServingSettings,
) -> KubernetesOnlineDeployment:
    """A blue/green slot on the AKS compute: instance type, resources, autoscale, probes."""
    if not outputs.inference_instance_type:
        raise InvariantError(
            f"the {outputs.environment} stack has no Kubernetes compute; deploy to its managed "
            "online endpoint instead"
        )
    liveness, readiness = _probes()
    return KubernetesOnlineDeployment(
        **_common(outputs, endpoint, deployment, version, image_digest),
        instance_type=outputs.inference_instance_type,
        instance_count=plan.min_instances,
        resources=ResourceRequirementsSettings(
            requests=ResourceSettings(cpu=serving.cpu_request, memory=serving.memory_request),
            limits=ResourceSettings(cpu=serving.cpu_limit, memory=serving.memory_limit),
        ),
        scale_settings=TargetUtilizationScaleSettings(
            min_instances=plan.min_instances,
            max_instances=plan.max_instances,
            target_utilization_percentage=plan.target_utilization_percentage,
            polling_interval=plan.polling_interval_s,
        ),
        request_settings=_request_settings(serving),
        liveness_probe=liveness,
        readiness_probe=readiness,
        environment_variables=_environment_variables(version, serving),
        data_collector=data_collector(serving),
    )


def managed_deployment(
    outputs: StackOutputs,
    endpoint: str,
    deployment: str,
    version: RegisteredVersion,
    image_digest: str,
    serving: ServingSettings,
) -> ManagedOnlineDeployment:
    """A blue/green slot on a managed online endpoint (default scale settings only)."""
    liveness, readiness = _probes()
    built = ManagedOnlineDeployment(
        **_common(outputs, endpoint, deployment, version, image_digest),
        instance_type=serving.managed_instance_type,
        instance_count=serving.managed_instance_count,
        scale_settings=DefaultScaleSettings(),
        request_settings=_request_settings(serving),
        liveness_probe=liveness,
        readiness_probe=readiness,
        environment_variables=_environment_variables(version, serving),
        data_collector=data_collector(serving),
    )
    check_managed_scale(deployment, built.scale_settings)
    check_managed_instances(deployment, built.instance_count)
    return built


# -- endpoints --------------------------------------------------------------------------------


def online_endpoint(outputs: StackOutputs) -> OnlineEndpoint:
    """The endpoint shell as the infrastructure creates it (Kubernetes where AKS exists)."""
    name = check_name("endpoint", outputs.online_endpoint_name)
    auth_mode = outputs.online_endpoint_auth_mode
    if outputs.kubernetes_compute_name:
        return KubernetesOnlineEndpoint(
            name=name, auth_mode=auth_mode, compute=outputs.kubernetes_compute_name
        )
    return ManagedOnlineEndpoint(name=name, auth_mode=auth_mode)


def is_kubernetes(endpoint: OnlineEndpoint) -> bool:
    """Whether the endpoint runs on an attached Kubernetes compute."""
    return isinstance(endpoint, KubernetesOnlineEndpoint) or bool(
        getattr(endpoint, "compute", None)
    )


def with_traffic(
    endpoint: OnlineEndpoint,
    traffic: Mapping[str, int],
    mirror: Mapping[str, int] | None = None,
) -> OnlineEndpoint:
    """A copy of the endpoint with a new traffic split (and mirror), checked first."""
    name = endpoint.name or ""
    check_traffic(name, traffic)
    kubernetes = is_kubernetes(endpoint)
    check_mirror(name, mirror or {}, traffic, kubernetes=kubernetes)
    updated = copy.deepcopy(endpoint)
    updated.traffic = dict(traffic)
    if not kubernetes:
        updated.mirror_traffic = {k: v for k, v in (mirror or {}).items() if v}
    return updated


def without_traffic(endpoint: OnlineEndpoint) -> OnlineEndpoint:
    """A copy of the endpoint routing nothing anywhere (before its deployments are removed)."""
    updated = copy.deepcopy(endpoint)
    updated.traffic = dict.fromkeys(endpoint.traffic or {}, 0)
    if not is_kubernetes(endpoint):
        updated.mirror_traffic = {}
    return updated


# -- batch ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSettings:
    """How batch jobs run on the training cluster."""

    instance_count: int = 1
    max_concurrency_per_instance: int = 2
    mini_batch_size: int = 10
    output_file_name: str = "predictions.csv"
    max_retries: int = 2
    timeout_s: int = 300
    error_threshold: int = -1


def batch_deployment_name(version: RegisteredVersion) -> str:
    """`ridge-v3`: one batch deployment per model version."""
    return check_name("deployment", f"ridge-v{version.version}")


def batch_deployment(
    outputs: StackOutputs,
    version: RegisteredVersion,
    code_dir: Path,
    environment: Environment,
    settings: BatchSettings,
) -> ModelBatchDeployment:
    """The batch driver (`scoring/batch_driver.py`) over the registry model, on the cluster."""
    endpoint = check_name("endpoint", outputs.batch_endpoint_name)
    return ModelBatchDeployment(
        name=batch_deployment_name(version),
        endpoint_name=endpoint,
        description=f"Batch scoring with {version.ref}",
        model=registry_model_id(outputs.registry_name, version.name, version.version),
        environment=environment,
        code_configuration=CodeConfiguration(
            code=str(code_dir), scoring_script="scoring/batch_driver.py"
        ),
        compute=outputs.training_compute_name,
        settings=ModelBatchDeploymentSettings(
            instance_count=settings.instance_count,
            max_concurrency_per_instance=settings.max_concurrency_per_instance,
            mini_batch_size=settings.mini_batch_size,
            # The driver writes its own output files (scoring/batch_driver.py); Azure ML only
            # writes its summary to output_file_name (Learn, how-to-deploy-model-custom-output).
            output_action="summary_only",
            output_file_name=settings.output_file_name,
            retry_settings=BatchRetrySettings(
                max_retries=settings.max_retries, timeout=settings.timeout_s
            ),
            error_threshold=settings.error_threshold,
            logging_level="info",
            environment_variables={"MODEL_SHA256": version.digest},
        ),
        tags={"model": version.ref, TAG_DIGEST: version.digest},
    )


def with_default_deployment(endpoint: BatchEndpoint, deployment: str) -> BatchEndpoint:
    """A copy of the batch endpoint whose jobs go to `deployment` unless told otherwise."""
    check_name("deployment", deployment)
    updated = copy.deepcopy(endpoint)
    updated.defaults = {"deployment_name": deployment}
    return updated
