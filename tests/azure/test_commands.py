"""`--target azure` on the command line, the pipeline commands, package and batch scoring."""

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.ai.ml.entities import BatchEndpoint, ModelBatchDeployment
from azure.core.exceptions import ClientAuthenticationError

from infra.outputs import StackOutputs
from pipelines.azure import commands
from pipelines.azure.pipeline_job import PipelineSettings
from pipelines.commands.endpoints import azure_endpoints_list
from pipelines.commands.pipeline import follow, submit
from pipelines.errors import MlopsError
from scoring.batch_driver import score_files
from scoring.model_bundle import find_bundle
from scoring.schema import InputError
from tests.azure.conftest import MODEL, World
from tests.azure.fakes import not_found, write_outputs

Mlops = Callable[..., tuple[int, str]]

AZURE_COMMANDS = [
    ("train",),
    ("evaluate",),
    ("register",),
    ("run",),
    ("release",),
    ("teardown",),
    ("package",),
    ("models", "list"),
    ("endpoints", "list"),
    ("endpoints", "invoke", "prod", "--data", "[[0,0,0,0,0,0,0,0,0,0]]"),
]


@pytest.mark.parametrize("command", [*AZURE_COMMANDS, ("batch-score",), ("serve",)])
def test_help_documents_the_azure_target(mlops: Mlops, command: tuple[str, ...]) -> None:
    code, out = mlops(*command[:2] if command[0] in ("models", "endpoints") else command[:1],
                      "--help")  # fmt: skip
    assert code == 0
    assert "--target" in out and "azure" in out


@pytest.mark.parametrize("command", AZURE_COMMANDS)
def test_no_stack_outputs_fails_fast(mlops: Mlops, command: tuple[str, ...]) -> None:
    code, out = mlops(*command, "--target", "azure")
    assert code == 2
    assert "--target azure needs the infrastructure's stack outputs" in out
    assert "Traceback" not in out


class NoLogin:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.")


@pytest.mark.parametrize("command", [("train",), ("release",), ("models", "list"), ("package",)])
def test_no_credential_fails_fast(
    mlops: Mlops,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    dev: StackOutputs,
    command: tuple[str, ...],
) -> None:
    write_outputs(state_dir / "stacks", [dev])
    monkeypatch.setattr("pipelines.azure.client.default_credential", NoLogin)
    code, out = mlops(*command, "--target", "azure")
    assert code == 2
    assert "no Azure credential is available" in out and "az login" in out
    assert "Traceback" not in out


def test_pipeline_validate_offline(mlops: Mlops) -> None:
    code, out = mlops("pipeline", "validate")
    assert code == 0
    assert "is valid: validated → trained → decided → registered on cpu-cluster" in out


def test_pipeline_validate_with_saved_outputs(
    mlops: Mlops, tmp_path: Path, prod: StackOutputs
) -> None:
    write_outputs(tmp_path, [prod])
    code, out = mlops("pipeline", "validate", "--outputs", str(tmp_path / "prod.json"))
    assert code == 0 and "prod.json" in out


def downloads(files: dict[str, dict[str, Any] | str]) -> Callable[..., None]:
    """A jobs.download that writes a named output like Azure ML does."""

    def download(name: str, download_path: str, output_name: str) -> None:
        folder = Path(download_path) / "named-outputs" / output_name
        folder.mkdir(parents=True)
        content = files[output_name]
        filename = {"decision": "decision.json", "registered": "registered.json"}.get(
            output_name, "predictions.csv"
        )
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / filename).write_text(text)

    return download


def test_pipeline_run_submits_streams_and_reports(
    world: World, dev: StackOutputs, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = world.workspace(dev)
    ws.handlers["jobs.create_or_update"] = lambda job: SimpleNamespace(
        name="job-7", studio_url="https://ml.azure.com/runs/job-7"
    )
    ws.handlers["jobs.get"] = lambda name: SimpleNamespace(status="Completed")
    decision = {
        "run_id": "run-7",
        "gate.passed": "True",
        "gate.decision": "passed",
        "gate.metric": "rmse",
        "gate.candidate_score": "53.1",
        "gate.reference_score": "54.0",
        "gate.reference_kind": "production",
        "gate.reference_version": "1",
        "gate.improvement": "0.9",
        "gate.min_improvement": "0.0",
        "gate.reason": "candidate rmse 53.1000 beats production model v1",
    }
    registered = {"registered": True, "name": MODEL, "version": "3"}
    ws.handlers["jobs.download"] = downloads({"decision": decision, "registered": registered})
    name = submit(world.clients, dev, PipelineSettings(model_name=MODEL))
    assert name == "job-7"
    got, reg = follow(world.clients, dev, name)
    assert got.passed and got.reference_version == "1" and reg["version"] == "3"
    assert world.log.names("environments") == ["environments.create_or_update"]
    job = world.log.of("jobs.create_or_update")[0].arg
    assert job.settings.default_compute == "cpu-cluster"
    assert [n for n in world.log.names("jobs.") if n != "jobs.download"] == [
        "jobs.create_or_update",
        "jobs.stream",
        "jobs.get",
    ]
    ws.handlers["jobs.get"] = lambda name: SimpleNamespace(status="Failed")
    with pytest.raises(Exception, match="ended Failed"):
        follow(world.clients, dev, name)


def run_batch_job(
    bundle: Path, digest: str, inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., None]:
    """A jobs.download that runs the deployed driver as the job does and writes its `score`
    output: the driver's own parts in AZUREML_BI_OUTPUT_PATH plus Azure ML's summary file
    (output_action summary_only; Learn, how-to-deploy-model-custom-output)."""
    from scoring import batch_driver

    def download(name: str, download_path: str, output_name: str) -> None:
        folder = Path(download_path) / "named-outputs" / output_name
        monkeypatch.setenv("AZUREML_MODEL_DIR", str(bundle))
        monkeypatch.setenv("MODEL_SHA256", digest)
        monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(folder))
        batch_driver.init()
        done = []
        for path in batch_driver.input_files(inputs):
            # error_threshold -1: a rejected file fails its mini-batch, the job goes on.
            with contextlib.suppress(InputError):
                done += batch_driver.run([str(path)])  # mini_batch_size 1
        (folder / "predictions.csv").write_text("\n".join(done) + "\n")

    return download


def batch_world(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLOPS_STACK", "prod")
    registry = world.registry()
    registry.set_production(registry.get("2"))
    return registry


def rows_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


HEADER = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n"


def test_batch_score_on_a_data_asset(
    world: World, prod: StackOutputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = batch_world(world, tmp_path, monkeypatch)
    ws = world.workspace(prod)

    def missing(**_: Any) -> Any:
        raise not_found("ridge-v2")

    ws.handlers["batch_deployments.get"] = missing
    ws.handlers["batch_endpoints.get"] = lambda name: BatchEndpoint(name=name)
    ws.handlers["data.create_or_update"] = lambda data: SimpleNamespace(
        name=data.name, version=data.version
    )
    ws.handlers["batch_endpoints.invoke"] = lambda **_: SimpleNamespace(name="batch-9")
    ws.handlers["jobs.get"] = lambda name: SimpleNamespace(status="Completed")
    rows_in = rows_folder(
        tmp_path,
        {
            "a file with spaces.csv": HEADER
            + "0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08,0.09,0.1\n" * 3,
            "b.csv": HEADER + "0,0,0,0,0,0,0,0,0,0\n",
        },
    )
    bundle = registry.download(registry.get("2"), tmp_path / "model")
    ws.handlers["jobs.download"] = run_batch_job(
        bundle, world.store.v2.digest, rows_in, monkeypatch
    )
    output = tmp_path / "out" / "predictions.csv"
    rows = commands.batch_score(rows_in, output, None, None, world.clients)
    assert rows == 4
    local = tmp_path / "local.csv"
    score_files(bundle, rows_in, local, world.store.v2.digest)
    assert output.read_bytes() == local.read_bytes()  # the same file as a local run
    assert output.read_text().splitlines()[1].startswith("a file with spaces.csv,0.01,0.02,")
    assert [n for n in world.log.names() if not n.startswith("registry.")] == [
        "batch_deployments.get",
        "batch_deployments.begin_create_or_update",
        "batch_endpoints.get",
        "batch_endpoints.begin_create_or_update",
        "data.create_or_update",
        "batch_endpoints.invoke",
        "jobs.stream",
        "jobs.get",
        "jobs.download",
    ]
    deployment = world.log.of("batch_deployments.begin_create_or_update")[0].arg
    assert isinstance(deployment, ModelBatchDeployment)
    assert deployment.name == "ridge-v2"
    assert deployment.settings.output_action == "summary_only"
    assert deployment.settings.environment_variables["MODEL_SHA256"] == world.store.v2.digest
    endpoint = world.log.of("batch_endpoints.begin_create_or_update")[0].arg
    assert endpoint.defaults == {"deployment_name": "ridge-v2"}
    data = world.log.of("data.create_or_update")[0].arg
    assert data.type == "uri_folder" and Path(data.path) == rows_in
    invoke = world.log.of("batch_endpoints.invoke")[0]
    assert invoke.kwargs["deployment_name"] == "ridge-v2"
    assert invoke.kwargs["inputs"]["input"].path == f"azureml:{data.name}:{data.version}"


def test_batch_score_writes_nothing_when_the_job_skipped_a_file(
    world: World, prod: StackOutputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = batch_world(world, tmp_path, monkeypatch)
    ws = world.workspace(prod)
    ws.handlers["batch_deployments.get"] = lambda **_: SimpleNamespace(name="ridge-v2")
    ws.handlers["batch_endpoints.get"] = lambda name: BatchEndpoint(
        name=name, defaults={"deployment_name": "ridge-v2"}
    )
    ws.handlers["data.create_or_update"] = lambda data: SimpleNamespace(name=data.name, version="1")
    ws.handlers["batch_endpoints.invoke"] = lambda **_: SimpleNamespace(name="batch-10")
    ws.handlers["jobs.get"] = lambda name: SimpleNamespace(status="Completed")
    rows_in = rows_folder(
        tmp_path, {"good.csv": HEADER + "0,0,0,0,0,0,0,0,0,0\n", "bad.csv": HEADER + "x\n"}
    )
    bundle = registry.download(registry.get("2"), tmp_path / "model")
    ws.handlers["jobs.download"] = run_batch_job(
        bundle, world.store.v2.digest, rows_in, monkeypatch
    )
    output = tmp_path / "out" / "predictions.csv"
    with pytest.raises(MlopsError, match="batch job batch-10 scored 1 of 2 input files"):
        commands.batch_score(rows_in, output, None, None, world.clients)
    assert not output.exists()


def test_package_locally_assembles_the_build_context(
    mlops: Mlops,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    monkeypatch.setattr("pipelines.azure.image.DOCKERFILE", dockerfile)
    monkeypatch.setenv("MLOPS_TRACKING_URI", world.store.settings.tracking_uri)
    out = tmp_path / "context"
    code, text = mlops("package", "--model", f"{MODEL}:2", "--output", str(out))
    assert code == 0, text
    assert (out / "Dockerfile").read_text() == "FROM scratch\n"
    assert (out / "scoring" / "score.py").is_file()
    assert (out / "model" / MODEL / "2" / "manifest.json").is_file()
    spec = json.loads((out / "scoring" / "swagger3.json").read_text())
    data = spec["components"]["schemas"]["ServiceInput"]["properties"]["data"]
    assert len(data["items"]["x-features"]) == data["items"]["maxItems"]
    meta = json.loads((out / "model.json").read_text())
    assert meta == {"name": MODEL, "version": "2", "model_sha256": world.store.v2.digest}


def test_endpoints_list_on_azure(
    world: World, prod: StackOutputs, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.console import console

    console.width = 300
    world.workspace(prod).with_endpoint()
    azure_endpoints_list(None, world.clients)
    out = capsys.readouterr().out
    assert prod.online_endpoint_name in out


def test_the_real_dockerfile_builds_from_the_package_context(
    mlops: Mlops, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every COPY source of scoring/Dockerfile exists in what `mlops package` writes."""
    monkeypatch.setenv("MLOPS_TRACKING_URI", world.store.settings.tracking_uri)
    out = tmp_path / "context"
    code, text = mlops("package", "--model", f"{MODEL}:2", "--output", str(out))
    assert code == 0, text
    dockerfile = (out / "Dockerfile").read_text()
    sources = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert "model/" in sources
    # Azure ML's <name>/<version> layout, which the entry script finds under AZUREML_MODEL_DIR.
    assert find_bundle(out / "model") == out / "model" / MODEL / "2"
    for source in sources:
        assert (out / source).exists(), source
    assert "ARG MODEL_SHA256" in dockerfile
    assert "MODEL_SHA256=${MODEL_SHA256}" in dockerfile


def test_run_on_azure_submits_the_training_pipeline(
    mlops: Mlops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(
        "pipelines.commands.pipeline.pipeline_run", lambda **kwargs: calls.append(kwargs)
    )
    summary = tmp_path / "gate.md"
    code, text = mlops(
        "run", "--target", "azure", "--alpha", "0.3", "--data", "azureml:diabetes:2",
        "--fail-on-reject", "--summary-file", str(summary),
    )  # fmt: skip
    assert code == 0, text
    assert calls == [
        {
            "data": "azureml:diabetes:2", "params": None, "alpha": 0.3, "seed": None,
            "test_size": None,
            "metric": None, "min_improvement": None, "fail_on_reject": True,
            "summary_file": summary, "wait": True, "model_name": None,
        }
    ]  # fmt: skip
    assert "mlops release --target azure" in text
    code, text = mlops("run", "--target", "azure", "--data", str(tmp_path / "local.csv"))
    assert code == 2
    assert "must be a data asset (azureml:NAME:VERSION)" in text
    assert len(calls) == 1
