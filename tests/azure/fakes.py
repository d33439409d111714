"""Recording fakes of every Azure client the target uses, and a fake of the endpoints' HTTP.

Each fake keeps the state the real service would (endpoints, deployments, traffic, models,
the container group) and appends every call to one shared log, so tests assert the calls in
order. The HTTP fake answers like the Azure ML router and the QA service: golden predictions
of the model a deployment serves, 400 for a malformed row, 401 without the key.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError

from infra.outputs import StackOutputs
from pipelines.azure.client import AzureClients

ENDPOINT_KEY = "endpoint-key-0123456789abcdef"
QA_KEY = "qa-key-0123456789abcdef"


@dataclass
class Call:
    """One recorded call."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def arg(self) -> Any:
        """The first argument (the entity sent, usually)."""
        return self.args[0] if self.args else next(iter(self.kwargs.values()), None)


@dataclass
class Log:
    """Every call of every fake, in order."""

    calls: list[Call] = field(default_factory=list)

    def add(self, call: str, /, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(call, args, kwargs))

    def names(self, prefix: str = "") -> list[str]:
        return [c.name for c in self.calls if c.name.startswith(prefix)]

    def of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]


class Poller:
    def __init__(self, value: Any = None) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


def not_found(what: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"{what} not found")


# -- workspace --------------------------------------------------------------------------------


class OnlineEndpoints:
    def __init__(self, ws: FakeWorkspace) -> None:
        self.ws = ws

    def get(self, name: str) -> Any:
        self.ws.log.add("online_endpoints.get", name)
        if self.ws.endpoint is None or self.ws.endpoint.name != name:
            raise not_found(name)
        return copy.deepcopy(self.ws.endpoint)

    def begin_create_or_update(self, endpoint: Any) -> Poller:
        self.ws.log.add("online_endpoints.begin_create_or_update", copy.deepcopy(endpoint))
        self.ws.traffic_history.append(dict(endpoint.traffic or {}))
        self.ws.mirror_history.append(dict(getattr(endpoint, "mirror_traffic", None) or {}))
        self.ws.endpoint = copy.deepcopy(endpoint)
        return Poller(endpoint)

    def get_keys(self, name: str) -> Any:
        self.ws.log.add("online_endpoints.get_keys", name)
        return SimpleNamespace(primary_key=ENDPOINT_KEY, secondary_key="other")


class OnlineDeployments:
    def __init__(self, ws: FakeWorkspace) -> None:
        self.ws = ws

    def begin_create_or_update(self, deployment: Any) -> Poller:
        self.ws.log.add("online_deployments.begin_create_or_update", deployment)
        if self.ws.fail_deployment:
            from azure.core.exceptions import HttpResponseError

            raise HttpResponseError("Deployment failed: the container crashed at startup")
        self.ws.deployments[deployment.name] = deployment
        return Poller(deployment)

    def begin_delete(self, name: str, endpoint_name: str) -> Poller:
        self.ws.log.add("online_deployments.begin_delete", name=name, endpoint_name=endpoint_name)
        if name not in self.ws.deployments:
            raise not_found(name)
        if (self.ws.endpoint.traffic or {}).get(name):
            raise AssertionError(f"Azure refuses to delete {name}: it still takes traffic")
        del self.ws.deployments[name]
        return Poller()

    def list(self, endpoint_name: str) -> list[Any]:
        self.ws.log.add("online_deployments.list", endpoint_name=endpoint_name)
        return list(self.ws.deployments.values())

    def get_logs(
        self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None
    ) -> str:
        # As azure-ai-ml's OnlineDeploymentOperations.get_logs: the inference server's log
        # unless container_type names another ("storage-initializer", "inference-server").
        if container_type not in (None, "storage-initializer", "inference-server"):
            raise ValueError(f"unknown container type {container_type}")
        self.ws.log.add(
            "online_deployments.get_logs",
            name=name,
            endpoint_name=endpoint_name,
            container_type=container_type,
        )
        if container_type == "storage-initializer":
            return self.ws.deployment_logs.get(f"{name}/storage-initializer", "model mounted\n")
        return self.ws.deployment_logs.get(name, "score abc status=200 rows=1 ms=0.4\n")


class Operations:
    """A group of operations whose calls are recorded and answered by `handlers`."""

    def __init__(self, ws: FakeWorkspace, group: str) -> None:
        self.ws = ws
        self.group = group

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            name = f"{self.group}.{method}"
            self.ws.log.add(name, *args, **kwargs)
            handler = self.ws.handlers.get(name)
            if handler is None:
                return Poller(args[0] if args else None) if method.startswith("begin_") else None
            return handler(*args, **kwargs)

        return call


class FakeWorkspace:
    """MLClient of one workspace."""

    def __init__(self, outputs: StackOutputs, log: Log) -> None:
        self.outputs = outputs
        self.log = log
        self.endpoint: Any = None
        self.deployments: dict[str, Any] = {}
        self.traffic_history: list[dict[str, int]] = []
        self.mirror_history: list[dict[str, int]] = []
        self.deployment_logs: dict[str, str] = {}
        self.fail_deployment = False
        self.handlers: dict[str, Callable[..., Any]] = {}
        self.online_endpoints = OnlineEndpoints(self)
        self.online_deployments = OnlineDeployments(self)
        for group in (
            "batch_endpoints",
            "batch_deployments",
            "data",
            "jobs",
            "environments",
            "components",
            "workspaces",
            "schedules",
            "datastores",
        ):
            setattr(self, group, Operations(self, group))

    def with_endpoint(self, traffic: dict[str, int] | None = None) -> FakeWorkspace:
        """The endpoint shell as Pulumi creates it, with a scoring URI."""
        from pipelines.azure.entities import online_endpoint

        endpoint = online_endpoint(self.outputs)
        # Read-only in the SDK; Azure fills it in. The fake does what the service would.
        endpoint._scoring_uri = f"https://{self.outputs.online_endpoint_name}.example/score"
        endpoint.traffic = dict(traffic or {})
        self.endpoint = endpoint
        return self


# -- shared registry --------------------------------------------------------------------------


class FakeModels:
    """`MLClient(registry_name=...).models`, with the bundles kept on disk."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry

    def list(self, name: str) -> list[Any]:
        self.registry.log.add("registry.models.list", name=name)
        stored = sorted(self.registry.versions.items())
        return [copy.deepcopy(model) for (named, _), model in stored if named == name]

    def get(self, name: str, version: str) -> Any:
        self.registry.log.add("registry.models.get", name=name, version=version)
        try:
            return copy.deepcopy(self.registry.versions[(name, str(version))])
        except KeyError:
            raise not_found(f"{name}:{version}") from None

    def create_or_update(self, model: Any) -> Any:
        self.registry.log.add("registry.models.create_or_update", copy.deepcopy(model))
        key = (model.name, str(model.version))
        stored = copy.deepcopy(model)
        if key not in self.registry.versions:
            # A new version uploads its folder; the registry keeps the files.
            folder = self.registry.root / model.name / str(model.version) / Path(model.path).name
            shutil.copytree(model.path, folder)
            stored.path = str(folder)
        else:
            stored.path = self.registry.versions[key].path
        self.registry.versions[key] = stored
        return copy.deepcopy(stored)

    def download(self, name: str, version: str, download_path: str) -> None:
        self.registry.log.add("registry.models.download", name=name, version=version)
        stored = self.registry.versions[(name, str(version))]
        # The SDK's layout: <download_path>/<name>/<folder>/...
        shutil.copytree(stored.path, Path(download_path) / name / Path(stored.path).name)


class FakeWorkspaceModels:
    """`MLClient(workspace_name=...).models` of the training workspace, whose model registry is
    the workspace's MLflow registry (here SQLite): `share` only.

    As azure-ai-ml's `ModelOperations.share` (`operations/_model_operations.py`): it refers to
    the workspace asset by its asset id and imports it into the registry (`create_or_update` of
    a `WorkspaceAssetReference` under the registry's client), refused when the registry holds
    that name and version already. The import copies the asset, so the registry's copy keeps the
    workspace version's tags and its job (the MLflow run that trained it).
    """

    def __init__(self, tracking_uri: str, registries: dict[str, FakeRegistry], log: Log) -> None:
        self.tracking_uri = tracking_uri
        self.registries = registries
        self.log = log

    def share(
        self,
        name: str,
        version: str,
        *,
        share_with_name: str,
        share_with_version: str,
        registry_name: str,
    ) -> Any:
        import mlflow
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model
        from azure.ai.ml.exceptions import ValidationException
        from mlflow.tracking import MlflowClient

        self.log.add(
            "workspace.models.share",
            name=name,
            version=version,
            share_with_name=share_with_name,
            share_with_version=share_with_version,
            registry_name=registry_name,
        )
        registry = self.registries[registry_name]
        key = (share_with_name or name, str(share_with_version or version))
        if key in registry.versions:
            message = "A model with this name and version already exists in registry"
            raise ValidationException(message=message, no_personal_data_message=message)
        # The registry of this workspace, not the process-wide one mlflow.set_registry_uri set.
        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        found = client.get_model_version(name, version)
        staging = registry.root / key[0] / key[1] / ".import"
        staging.mkdir(parents=True)
        mlflow.artifacts.download_artifacts(
            artifact_uri=found.source, dst_path=str(staging), tracking_uri=self.tracking_uri
        )
        # The registry keeps the asset's files: here the bundle folder, as an upload would.
        (manifest,) = staging.rglob("manifest.json")
        folder = registry.root / key[0] / key[1] / "model"
        shutil.move(manifest.parent, folder)
        shutil.rmtree(staging)
        shared = Model(
            name=key[0],
            version=key[1],
            type=AssetTypes.CUSTOM_MODEL,
            path=str(folder),
            tags=dict(found.tags),
            job_name=found.run_id,
        )
        registry.versions[key] = shared
        return copy.deepcopy(shared)


class FakeRegistry:
    """MLClient of the shared Azure ML registry."""

    def __init__(self, root: Path, log: Log) -> None:
        self.root = root
        self.log = log
        self.versions: dict[tuple[str, str], Any] = {}
        self.models = FakeModels(self)


# -- container instances ----------------------------------------------------------------------


class FakeContainerGroups:
    def __init__(self, aci: FakeAci) -> None:
        self.aci = aci

    def get(self, resource_group: str, name: str) -> Any:
        self.aci.log.add("aci.container_groups.get", resource_group, name)
        group = copy.deepcopy(self.aci.group)
        # Like Azure: secure values are never returned.
        for variable in group.containers[0].environment_variables:
            variable.secure_value = None
        return group

    def begin_create_or_update(self, resource_group: str, name: str, group: Any) -> Poller:
        self.aci.log.add("aci.container_groups.begin_create_or_update", copy.deepcopy(group))
        self.aci.group = copy.deepcopy(group)
        return Poller(SimpleNamespace(provisioning_state="Succeeded"))


class FakeAci:
    def __init__(self, log: Log) -> None:
        self.log = log
        env = [
            SimpleNamespace(name="MLOPS_ENVIRONMENT", value="qa", secure_value=None),
            SimpleNamespace(name="SCORING_API_KEY", value=None, secure_value=QA_KEY),
            SimpleNamespace(
                name="APPLICATIONINSIGHTS_CONNECTION_STRING", value=None, secure_value="ai"
            ),
        ]
        self.group = SimpleNamespace(
            containers=[
                SimpleNamespace(
                    name="scoring",
                    image="acr.example/diabetes-scoring:latest",
                    environment_variables=env,
                )
            ]
        )
        self.container_groups = FakeContainerGroups(self)

    @property
    def image(self) -> str:
        return str(self.group.containers[0].image)


# -- container registries --------------------------------------------------------------------


def _option(args: Sequence[str], name: str) -> str:
    return args[list(args).index(name) + 1]


@dataclass
class FakeAcr:
    """The stacks' container registries as `az acr` sees them: tags per registry.

    `repository show` exits non-zero for a tag the registry lacks; `build` adds its tag (with
    the model its build args name); `import --registry <source id> --source <tag>` copies the
    source registry's manifest under the same tag, and fails when the source lacks it.
    """

    images: dict[str, dict[str, str]] = field(default_factory=dict)  # acr → tag → model ref

    def run(self, args: Sequence[str]) -> int:
        if tuple(args[:3]) == ("acr", "repository", "show"):
            found = _option(args, "--image") in self.images.get(_option(args, "--name"), {})
            return 0 if found else 3
        if tuple(args[:2]) == ("acr", "build"):
            build_args = dict(
                arg.split("=", 1)
                for index, arg in enumerate(args)
                if index and args[index - 1] == "--build-arg"
            )
            registry = self.images.setdefault(_option(args, "--registry"), {})
            registry[_option(args, "--image")] = build_args["MODEL_VERSION"]
            return 0
        if tuple(args[:2]) == ("acr", "import"):
            source = _option(args, "--registry").rsplit("/", 1)[1]
            tag = _option(args, "--source")
            if tag not in self.images.get(source, {}):
                return 1
            dest = self.images.setdefault(_option(args, "--name"), {})
            dest[_option(args, "--image")] = self.images[source][tag]
            return 0
        raise AssertionError(f"unexpected az command {' '.join(args)}")

    def model_of(self, reference: str) -> str:
        """The model an image reference (`<login server>/<repo>:<tag>`) was built with."""
        tag = reference.split("/", 1)[1]
        for registry in self.images.values():
            if tag in registry:
                return registry[tag]
        raise AssertionError(f"no registry holds {reference}")


# -- the client factory -----------------------------------------------------------------------


class FakeClients(AzureClients):
    """Every client is a fake; `az acr` runs against `acr`, unless `az_status` forces a failure
    (exit codes by subcommand, such as {"acr build": 1})."""

    def __init__(self, root: Path) -> None:
        super().__init__(credential_factory=lambda: None)  # type: ignore[arg-type, return-value]
        self.log = Log()
        self.workspaces: dict[str, FakeWorkspace] = {}
        self.shared = FakeRegistry(root / "registry", self.log)
        self.aci = FakeAci(self.log)
        self.secrets = {"scoring-api-key": QA_KEY}
        self.acr = FakeAcr()
        self.autoscale: dict[str, Any] = {}  # autoscale settings by ARM URL (az rest)
        self.az_status: dict[str, int] = {}

    def workspace(self, outputs: StackOutputs) -> Any:
        if outputs.workspace_name not in self.workspaces:
            self.workspaces[outputs.workspace_name] = FakeWorkspace(outputs, self.log)
        return self.workspaces[outputs.workspace_name]

    def registry(self, outputs: StackOutputs) -> Any:
        return self.shared

    def container_instances(self, outputs: StackOutputs) -> Any:
        return self.aci

    def secret(self, vault_uri: str, name: str) -> str:
        self.log.add("keyvault.get_secret", vault_uri, name)
        return self.secrets[name]

    def az(self, *args: str, quiet: bool = False) -> int:
        self.log.add("az", *args)
        forced = self.az_status.get(" ".join(args[:3]), self.az_status.get(" ".join(args[:2]), 0))
        if forced:
            return forced
        if args[0] == "rest":
            # ARM: PUT creates or replaces the resource at the URL; DELETE of a missing one is 204.
            url, method = _option(args, "--url"), _option(args, "--method")
            if method == "put":
                self.autoscale[url] = json.loads(_option(args, "--body"))
            elif method == "delete":
                self.autoscale.pop(url, None)
            return 0
        return self.acr.run(args)


# -- the endpoints' HTTP ----------------------------------------------------------------------


@dataclass
class Behaviour:
    """How one deployment answers: normally, or broken in one way."""

    mode: str = "ok"  # ok | wrong | error | error-routed (fails only when reached by traffic)


class FakeHttp:
    """Answers httpx.get/post like the Azure ML router (prod) and the QA container."""

    def __init__(self, clients: FakeClients, goldens: dict[str, dict[str, Any]]) -> None:
        self.clients = clients
        self.goldens = goldens  # model ref → {"rows": ..., "predictions": ...}
        self.behaviour: dict[str, Behaviour] = {}
        self.counter = 0
        self.requests: list[tuple[str, str, str | None]] = []

    # routing ---------------------------------------------------------------------------
    def _prod(self, url: str) -> FakeWorkspace | None:
        for ws in self.clients.workspaces.values():
            if ws.endpoint is None:
                continue
            if url.startswith(ws.endpoint.scoring_uri.removesuffix("/score")):
                return ws
        return None

    def _pick(self, ws: FakeWorkspace, headers: dict[str, str]) -> str | None:
        chosen = headers.get("azureml-model-deployment")
        if chosen:
            return chosen if chosen in ws.deployments else None
        traffic = {k: v for k, v in (ws.endpoint.traffic or {}).items() if v}
        if not traffic:
            return None
        # A stride coprime with 100 spreads even a few requests over the whole split.
        self.counter += 1
        slot = (self.counter * 37) % 100
        for name, share in sorted(traffic.items()):
            if slot < share:
                return name
            slot -= share
        return sorted(traffic)[-1]

    def _serve(
        self, model: str, behaviour: Behaviour, method: str, path: str, body: Any
    ) -> httpx.Response:
        golden = self.goldens[model]
        width = len(golden["rows"][0])
        if path.endswith("/swagger.json"):
            # As the real server serves the spec written from the bundle's contract.
            features = [f"feature_{index}" for index in range(width)]
            data = {"type": "array", "items": {"type": "array", "x-features": features}}
            spec = {
                "paths": {"/score": {}},
                "definitions": {"ServiceInput": {"properties": {"data": data}}},
            }
            return self._json(200, spec)
        if method == "GET":
            return self._json(200, {"status": "Healthy"})
        if behaviour.mode == "error":
            return self._json(500, {"message": "internal error"})
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list) or any(len(row) != width for row in rows):
            return self._json(400, {"message": f"each row needs {width} numbers"})
        known = rows == golden["rows"]
        predictions = list(golden["predictions"]) if known else [0.0] * len(rows)
        if behaviour.mode == "wrong":
            predictions = [p + 1.0 for p in predictions]
        return self._json(200, {"result": predictions})

    @staticmethod
    def _json(status: int, payload: Any) -> httpx.Response:
        return httpx.Response(status, json=payload, request=httpx.Request("GET", "http://fake"))

    def handle(self, method: str, url: str, headers: dict[str, str], body: Any) -> httpx.Response:
        ws = self._prod(url)
        if ws is not None:
            path = url[len(ws.endpoint.scoring_uri) - len("/score") :]
            if headers.get("Authorization") != f"Bearer {ENDPOINT_KEY}":
                return self._json(401, {"message": "unauthorized"})
            name = self._pick(ws, headers)
            self.requests.append((method, path, name))
            if name is None:
                return self._json(404, {"message": "no deployment"})
            model = ws.deployments[name].tags["model"]
            behaviour = self.behaviour.get(name, Behaviour())
            if behaviour.mode == "error-routed":
                routed = "azureml-model-deployment" not in headers
                behaviour = Behaviour("error" if routed else "ok")
            return self._serve(model, behaviour, method, path, body)
        qa_outputs = next(
            (w.outputs for w in self.clients.workspaces.values() if w.outputs.qa_scoring_url),
            None,
        )
        if qa_outputs and url.startswith(qa_outputs.qa_scoring_url.removesuffix("/score")):
            path = url[len(qa_outputs.qa_scoring_url) - len("/score") :]
            if headers.get("Authorization") != f"Bearer {QA_KEY}":
                return self._json(401, {"message": "unauthorized"})
            # The QA container serves the model baked into the image it runs.
            model = self.clients.acr.model_of(self.clients.aci.image)
            self.requests.append((method, path, "qa"))
            return self._serve(model, self.behaviour.get("qa", Behaviour()), method, path, body)
        raise httpx.ConnectError(f"no fake service at {url}")

    def get(self, url: str, headers: dict[str, str] | None = None, **_: Any) -> httpx.Response:
        return self.handle("GET", url, dict(headers or {}), None)

    def post(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **_: Any
    ) -> httpx.Response:
        return self.handle("POST", url, dict(headers or {}), json)


def write_outputs(folder: Path, outputs: Sequence[StackOutputs]) -> None:
    """Save stack outputs as `pulumi stack output --json` would."""
    from dataclasses import asdict

    folder.mkdir(parents=True, exist_ok=True)
    for item in outputs:
        data = {k: v for k, v in asdict(item).items() if v is not None}
        (folder / f"{item.environment}.json").write_text(json.dumps(data))
