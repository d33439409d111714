"""Fixtures for the Azure target: saved stack outputs, recording fakes, two real model versions.

No test here touches the network: every Azure client is a fake from `fakes.py`, the scoring
endpoints are answered by `FakeHttp`, and MLflow runs on a temporary SQLite store.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from infra.outputs import StackOutputs
from pipelines.azure.image import ScoringImage, scoring_image
from pipelines.azure.outputs import StackFiles, example_outputs
from pipelines.azure.registry import AzureModelRegistry, AzureTracking
from pipelines.gate import GateConfig
from pipelines.registry import RegisteredVersion
from pipelines.settings import Settings
from pipelines.steps import evaluate, register, train
from pipelines.targets.azure import AzureTarget, RolloutSettings
from tests.azure.fakes import (
    FakeClients,
    FakeHttp,
    FakeRegistry,
    FakeWorkspaceModels,
    Log,
    write_outputs,
)
from training.model import TrainingConfig

MODEL = "diabetes-ridge"
REGISTRY = "mlops-registry-t3mpl"


def pytest_configure(config: pytest.Config) -> None:
    # azure-ai-ml's own schema classes trip marshmallow deprecations at import; not ours to fix.
    for line in (
        "ignore::Warning:azure.ai.ml",
        "ignore::marshmallow.warnings.RemovedInMarshmallow4Warning",
        "ignore::marshmallow.warnings.ChangedInMarshmallow4Warning",
    ):
        config.addinivalue_line("filterwarnings", line)


@pytest.fixture(autouse=True)
def _no_stack_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MLOPS_STACK_OUTPUTS",
        "MLOPS_STACK",
        "MLOPS_STACK_OUTPUTS_DIR",
        "MLOPS_TRAFFIC_STAGES",
        "MLOPS_MIRROR_PERCENT",
        "MLOPS_PROBE_REQUESTS",
        "MLOPS_MAX_ERROR_RATE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def dev() -> StackOutputs:
    return example_outputs("dev")


@pytest.fixture
def qa() -> StackOutputs:
    return example_outputs("qa", aks=False, aci=True)


@pytest.fixture
def prod() -> StackOutputs:
    return example_outputs("prod")


@pytest.fixture
def prod_managed() -> StackOutputs:
    return example_outputs("prod", aks=False)


@dataclass
class Store:
    """Two versions trained and registered through the Azure registry adapter."""

    settings: Settings
    shared: FakeRegistry
    v1: RegisteredVersion
    v2: RegisteredVersion
    log: Log
    goldens: dict[str, dict[str, Any]]  # model ref → the golden sample in its bundle


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Train v1 and v2 on SQLite MLflow; registration promotes them to a fake shared registry."""
    root = tmp_path_factory.mktemp("azure-store")
    state = root / "state"
    settings = Settings(state, MODEL, f"sqlite:///{state / 'mlflow.db'}")
    log = Log()
    shared = FakeRegistry(root / "shared", log)
    workspace = SimpleNamespace(
        models=FakeWorkspaceModels(settings.tracking_uri, {REGISTRY: shared}, log)
    )
    tracking = AzureTracking(
        settings,
        shared,  # type: ignore[arg-type]
        REGISTRY,
        source="dev/test",
        workspace=workspace,  # type: ignore[arg-type]
    )
    versions = []
    for alpha in (0.5, 0.1):
        run_id = train(tracking, TrainingConfig({"alpha": alpha}), None).run_id
        evaluate(tracking, run_id, GateConfig(min_improvement=-1e9))
        versions.append(register(tracking, run_id))
    goldens = {v.ref: tracking.registry.golden(v) for v in versions}
    return Store(settings, shared, versions[0], versions[1], log, goldens)


@pytest.fixture
def stacks_dir(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dev: StackOutputs,
    qa: StackOutputs,
    prod: StackOutputs,
) -> Path:
    folder = tmp_path / "stacks"
    write_outputs(folder, [dev, qa, prod])
    monkeypatch.setenv("MLOPS_STACK_OUTPUTS_DIR", str(folder))
    return folder


@dataclass
class World:
    """Fakes of every Azure service, the two versions, and a target factory."""

    clients: FakeClients
    http: FakeHttp
    store: Store
    settings: Settings
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> Log:
        return self.clients.log

    def workspace(self, outputs: StackOutputs) -> Any:
        return self.clients.workspace(outputs)

    def registry(self) -> AzureModelRegistry:
        return AzureModelRegistry(None, MODEL, self.clients.shared, REGISTRY)  # type: ignore[arg-type]

    def target(self, **rollout: Any) -> AzureTarget:
        settings = replace(RolloutSettings(), settle_s=0.0, probe_requests=20, **rollout)
        return AzureTarget(
            self.settings,
            StackFiles.from_environment(self.settings),
            self.clients,
            self.registry(),
            rollout=settings,
            progress=self.lines.append,
            sleep=lambda _: None,
        )

    def version(self, which: RegisteredVersion) -> RegisteredVersion:
        return self.registry().get(which.ref)

    def image_in(self, outputs: StackOutputs, which: RegisteredVersion) -> ScoringImage:
        """Put the image of a version into a stack's ACR, as an earlier build would have."""
        with tempfile.TemporaryDirectory() as scratch:
            image = scoring_image(self.version(which), Path(scratch))
        self.clients.acr.images.setdefault(outputs.acr_name, {})[image.tag] = which.ref
        return image


@pytest.fixture
def world(store: Store, stacks_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    clients = FakeClients(tmp_path)
    # Each test starts from the session's registry: same bundles on disk, its own tags.
    clients.shared.root = store.shared.root
    clients.shared.versions = copy.deepcopy(store.shared.versions)
    http = FakeHttp(clients, store.goldens)
    monkeypatch.setattr(httpx, "get", http.get)
    monkeypatch.setattr(httpx, "post", http.post)
    settings = replace(store.settings, state_dir=tmp_path / "state")
    return World(clients, http, store, settings)


Factory = Callable[..., AzureTarget]
