"""Every entity the Azure target builds, serialized offline with its key fields asserted."""

import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from azure.ai.ml.entities import (
    DefaultScaleSettings,
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    TargetUtilizationScaleSettings,
)

from infra.outputs import StackOutputs
from pipelines.azure import entities
from pipelines.azure.capacity import Load, load_from_environment, plan_capacity
from pipelines.azure.invariants import InvariantError
from pipelines.errors import MlopsError
from pipelines.locks import BATCH, ONLINE, TRAINING, LockError, parse_lock, pip_lines
from pipelines.registry import TAG_GOLDEN, RegisteredVersion
from pipelines.settings import PROJECT_ROOT

DIGEST = "ab" * 32
VERSION = RegisteredVersion(
    name="diabetes-ridge",
    version="7",
    run_id="run-7",
    digest=DIGEST,
    source="azureml://registries/r/models/diabetes-ridge/versions/7",
    aliases=(),
    tags={"model_sha256": DIGEST, "run_id": "run-7", TAG_GOLDEN: "cd" * 32},
)


IMAGE = "ef" * 32  # an image digest (pipelines.azure.image.image_digest)


def test_code_snapshot_holds_the_packages_and_nothing_else(tmp_path: Path) -> None:
    snapshot = entities.code_snapshot(tmp_path / "code")
    assert sorted(p.name for p in snapshot.iterdir()) == ["pipelines", "scoring", "training"]
    assert (snapshot / "pipelines" / "azure" / "entrypoints.py").is_file()
    assert not list(snapshot.rglob("__pycache__"))


def _conda_pip(env: Environment) -> list[str]:
    """The pip section of the conda file azure-ai-ml sends (the REST object's YAML string)."""
    rest = env._to_rest_object()
    conda = yaml.safe_load(rest.properties.conda_file)
    return next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))


@pytest.mark.parametrize(
    ("build", "lock"),
    [(entities.training_environment, TRAINING), (entities.batch_environment, BATCH)],
)
def test_environments_install_their_lock_with_hashes(build, lock) -> None:
    env = build()
    pip = _conda_pip(env)
    assert pip == pip_lines(lock.lock_path().read_text())
    pins = {line.split("==")[0]: line.split()[0].split("==")[1] for line in pip}
    assert all(" --hash=sha256:" in line for line in pip)
    # The versions the ops venv (uv.lock) runs: a model trained there loads here.
    for package in ("numpy", "pandas", "pyarrow", "scikit-learn"):
        assert pins[package] == metadata.version(package)
    assert env._to_dict()["conda_file"]["dependencies"][0] == f"python={lock.python}"
    assert env.tags == {"lock": lock.lock}
    assert env.version == build().version  # stable for an unchanged lock
    changed = lock.lock_path().read_text().replace("--hash=sha256:", "--hash=sha256:0", 1)
    assert build(changed).version != env.version


def test_batch_environment_adds_the_batch_driver_runtime() -> None:
    pip = _conda_pip(entities.batch_environment())
    names = {line.split("==")[0] for line in pip}
    assert {"azureml-core", "azureml-dataset-runtime", "fusepy"} <= names  # [fuse] resolved
    online = parse_lock(ONLINE.lock_path().read_text())
    for name in ("numpy", "pandas", "pyarrow", "scikit-learn", "azureml-inference-server-http"):
        assert any(line.startswith(f"{online[name].requirement} ") for line in pip)


def test_an_unhashed_lock_builds_no_environment() -> None:
    with pytest.raises(LockError, match="has no --hash"):
        entities.training_environment("numpy==2.3.2\n")


def test_kubernetes_deployment(prod: StackOutputs) -> None:
    plan = plan_capacity(Load(peak_rps=40, latency_ms=100), max_concurrent_per_replica=2)
    built = entities.kubernetes_deployment(
        prod, prod.online_endpoint_name, "green", VERSION, IMAGE, plan, entities.ServingSettings()
    )
    assert isinstance(built, KubernetesOnlineDeployment)
    assert isinstance(built.scale_settings, TargetUtilizationScaleSettings)
    data = built._to_dict()
    assert data["name"] == "green"
    assert data["endpoint_name"] == prod.online_endpoint_name
    assert data["instance_type"] == "defaultinstancetype"
    # Exactly the image QA served: no code or model mounted beside it, its routes declared.
    assert data["environment"]["image"] == f"{prod.acr_login_server}/diabetes-scoring:{IMAGE}"
    assert data["environment"]["version"] == IMAGE
    assert "code_configuration" not in data and "model" not in data
    routes = data["environment"]["inference_config"]
    assert routes["scoring_route"] == {"port": 5001, "path": "/score"}
    assert routes["readiness_route"] == routes["liveness_route"] == {"port": 5001, "path": "/"}
    assert data["tags"]["image_digest"] == IMAGE
    assert data["resources"] == {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert data["scale_settings"] == {
        "type": "target_utilization",
        "min_instances": 2,
        "max_instances": 3,  # ceil(40 rps x 0.1 s / 0.7 / 2) = 3
        "polling_interval": 10,
        "target_utilization_percentage": 70,
    }
    assert data["request_settings"]["request_timeout_ms"] == 5000
    assert data["liveness_probe"]["failure_threshold"] == 3
    assert data["readiness_probe"]["period"] == 5
    assert data["app_insights_enabled"] is True
    assert data["environment_variables"]["MODEL_SHA256"] == DIGEST
    assert int(data["environment_variables"]["SCORING_TIMEOUT_MS"]) < 5000
    rest = built._to_rest_object(location="westeurope")
    collections = rest.properties.data_collector.collections
    assert collections["model_inputs"].data_collection_mode.lower() == "enabled"
    assert set(rest.properties.data_collector.collections) == {"model_inputs", "model_outputs"}
    assert rest.sku.capacity == 2


def test_managed_deployment_uses_default_scale(prod_managed: StackOutputs) -> None:
    built = entities.managed_deployment(
        prod_managed, prod_managed.online_endpoint_name, "blue", VERSION, IMAGE,
        entities.ServingSettings(),
    )  # fmt: skip
    assert isinstance(built, ManagedOnlineDeployment)
    assert isinstance(built.scale_settings, DefaultScaleSettings)
    data = built._to_dict()
    assert data["instance_type"] == "Standard_DS2_v2"
    assert data["instance_count"] == 3  # production high availability
    assert data["data_collector"]["collections"]["model_outputs"]["enabled"] == "true"
    # max_queue_wait is deprecated for managed endpoints: never sent.
    assert "max_queue_wait" not in data["request_settings"]
    assert (
        built._to_rest_object(location="westeurope").properties.request_settings.max_queue_wait
        is None
    )


def test_a_managed_production_deployment_below_three_instances_is_refused(
    prod_managed: StackOutputs,
) -> None:
    with pytest.raises(InvariantError, match=r"would run 2 instance.*at least 3"):
        entities.managed_deployment(
            prod_managed, prod_managed.online_endpoint_name, "blue", VERSION, IMAGE,
            entities.ServingSettings(managed_instance_count=2),
        )  # fmt: skip


def test_kubernetes_deployment_needs_a_kubernetes_stack(prod_managed: StackOutputs) -> None:
    with pytest.raises(InvariantError, match="no Kubernetes compute"):
        entities.kubernetes_deployment(
            prod_managed, "diabetes-prod", "green", VERSION, IMAGE, entities.ScalePlan(),
            entities.ServingSettings(),
        )  # fmt: skip


def test_names_are_checked_before_building(prod: StackOutputs) -> None:
    with pytest.raises(InvariantError, match="33 characters"):
        entities.kubernetes_deployment(
            prod, "x" * 33, "green", VERSION, IMAGE, entities.ScalePlan(),
            entities.ServingSettings(),
        )  # fmt: skip


def test_endpoints_as_the_infrastructure_creates_them(
    prod: StackOutputs, prod_managed: StackOutputs
) -> None:
    kubernetes = entities.online_endpoint(prod)
    assert isinstance(kubernetes, KubernetesOnlineEndpoint)
    assert kubernetes._to_dict()["compute"] == "azureml:aks-inference"
    managed = entities.online_endpoint(prod_managed)
    assert isinstance(managed, ManagedOnlineEndpoint)
    assert managed._to_dict()["auth_mode"] == "key"


def test_traffic_updates(prod: StackOutputs, prod_managed: StackOutputs) -> None:
    kubernetes = entities.online_endpoint(prod)
    shifted = entities.with_traffic(kubernetes, {"blue": 90, "green": 10})
    assert shifted._to_dict()["traffic"] == {"blue": 90, "green": 10}
    assert kubernetes.traffic == {}  # a copy; the original is untouched
    with pytest.raises(InvariantError, match="sum to 100"):
        entities.with_traffic(kubernetes, {"blue": 90, "green": 20})
    with pytest.raises(InvariantError, match="Kubernetes"):
        entities.with_traffic(kubernetes, {"blue": 100}, {"green": 10})
    managed = entities.online_endpoint(prod_managed)
    mirrored = entities.with_traffic(managed, {"blue": 100}, {"green": 20})
    assert mirrored._to_dict()["mirror_traffic"] == {"green": 20}
    rest = mirrored._to_rest_online_endpoint(location="westeurope")  # what the SDK sends
    assert rest.properties.mirror_traffic == {"green": 20}
    emptied = entities.without_traffic(entities.with_traffic(managed, {"blue": 100}))
    assert emptied.traffic == {"blue": 0}


def test_batch_deployment(prod: StackOutputs) -> None:
    env = entities.batch_environment("numpy==2.0 --hash=sha256:aa\n")
    built = entities.batch_deployment(prod, VERSION, IMAGE, env, entities.BatchSettings())
    data = built._to_dict()
    assert data["name"] == "ridge-v7"
    assert data["endpoint_name"] == prod.batch_endpoint_name
    assert data["compute"] == "azureml:cpu-cluster"
    assert data["model"].endswith("/models/diabetes-ridge/versions/7")
    assert data["code_configuration"]["scoring_script"] == "scoring/batch_driver.py"
    assert data["settings"]["output_action"] == "summary_only"
    assert data["settings"]["mini_batch_size"] == 10
    assert data["settings"]["environment_variables"] == {"MODEL_SHA256": DIGEST}
    assert data["settings"]["retry_settings"] == {"max_retries": 2, "timeout": 300}
    endpoint = entities.with_default_deployment(
        __import__("azure.ai.ml.entities", fromlist=["BatchEndpoint"]).BatchEndpoint(
            name=prod.batch_endpoint_name
        ),
        "ridge-v7",
    )
    assert endpoint._to_dict()["defaults"] == {"deployment_name": "ridge-v7"}


def test_capacity_plan_from_the_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_PEAK_RPS", "20")
    monkeypatch.setenv("MLOPS_LATENCY_MS", "10000")
    plan = plan_capacity(load_from_environment(), max_concurrent_per_replica=1)
    assert plan.max_instances == 286  # the worked example of Azure ML's documentation
    assert plan.min_instances == 2
    monkeypatch.setenv("MLOPS_TARGET_UTILIZATION", "1.5")
    with pytest.raises(MlopsError, match="target-utilization"):
        plan_capacity(load_from_environment(), 1)
    monkeypatch.setenv("MLOPS_PEAK_RPS", "lots")
    with pytest.raises(MlopsError, match="MLOPS_PEAK_RPS='lots' is not a number"):
        load_from_environment()


def test_image_is_named_by_its_digest(prod: StackOutputs) -> None:
    assert re.fullmatch(
        rf"acrmlopsprodt3mpl\.azurecr\.io/diabetes-scoring:{IMAGE}",
        entities.scoring_image(prod, IMAGE),
    )


def test_the_deployment_points_the_server_where_the_image_put_the_code(prod: StackOutputs) -> None:
    """Without a code mount, AML_APP_ROOT and the entry script are the Dockerfile's own paths."""
    dockerfile = (PROJECT_ROOT / "scoring" / "Dockerfile").read_text()
    built = entities.kubernetes_deployment(
        prod, prod.online_endpoint_name, "green", VERSION, IMAGE, entities.ScalePlan(),
        entities.ServingSettings(),
    )  # fmt: skip
    variables = built.environment_variables
    for name in ("AML_APP_ROOT", "AZUREML_ENTRY_SCRIPT"):
        assert re.search(rf"\b{name}={re.escape(variables[name])}\s", dockerfile), name
    # The API specs are served from AML_APP_ROOT: the image's scoring folder holds them.
    assert "COPY scoring/ /var/azureml-app/scoring/" in dockerfile
