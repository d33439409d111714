"""The local target: each deployment is the real Azure ML inference server on a loopback port.

State lives in `<state>/deployments/<endpoint>.json` (deployment → model version, port, pid,
traffic, and the endpoint key, so the file is private to the user). The endpoint's traffic is
switched all at once: the endpoint URL is the deployment holding 100 percent.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.atomic import write_text_atomically
from pipelines.datastore.layout import deployment_prefix
from pipelines.errors import MlopsError
from pipelines.processes import process_alive
from pipelines.registry import ModelRegistry, RegisteredVersion
from pipelines.release.plan import PROD_ENDPOINT, check_endpoint, live_slot, validate_traffic
from pipelines.release.smoke import ScoringClient
from pipelines.settings import Settings

HEALTH_TIMEOUT_S = 90.0


@dataclass
class DeploymentRecord:
    """One running inference server."""

    model: str
    version: str
    digest: str
    port: int
    pid: int
    log_file: str
    started_at: float

    @property
    def url(self) -> str:
        """Loopback base URL."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class EndpointRecord:
    """An endpoint: its key, deployments and traffic."""

    name: str
    key: str
    deployments: dict[str, DeploymentRecord] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EndpointRecord:
        """Parse the state file."""
        return cls(
            name=raw["name"],
            key=raw["key"],
            deployments={k: DeploymentRecord(**v) for k, v in raw["deployments"].items()},
            traffic={k: int(v) for k, v in raw["traffic"].items()},
        )


def serving_advice(endpoint: str, production: str | None, model_name: str) -> str:
    """How to get a stopped endpoint serving again, given what is in production."""
    demo = "run `make demo KEEP_SERVING=1`"
    if endpoint == PROD_ENDPOINT and production is not None:
        return (
            f"serve {production} again with `mlops release --stage prod --model "
            f"{model_name}@production`, or {demo}"
        )
    if endpoint == PROD_ENDPOINT:
        return f"no model is in production yet: release one with `mlops run`, or {demo}"
    return f"deploy to it with `mlops release --stage qa`, or {demo}"


class LocalTarget:
    """Deployments as inference-server processes on this machine."""

    name = "local"

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.root = settings.deployments_dir

    # -- state -----------------------------------------------------------------------------
    def _path(self, endpoint: str) -> Path:
        return self.root / f"{endpoint}.json"

    def endpoint(self, endpoint: str) -> EndpointRecord:
        """The endpoint's record, created (with a fresh key) on first use."""
        path = self._path(endpoint)
        if path.exists():
            return EndpointRecord.from_dict(json.loads(path.read_text()))
        return EndpointRecord(name=endpoint, key=secrets.token_urlsafe(32))

    def _save(self, record: EndpointRecord) -> None:
        # Never half-written; it holds the endpoint key, so only the owner may read it.
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomically(
            self._path(record.name), json.dumps(asdict(record), indent=2), mode=0o600
        )

    def endpoints(self) -> list[EndpointRecord]:
        """Every endpoint with a state file."""
        if not self.root.exists():
            return []
        return [self.endpoint(path.stem) for path in sorted(self.root.glob("*.json"))]

    # -- DeploymentTarget ------------------------------------------------------------------
    def traffic(self, endpoint: str) -> dict[str, int]:
        """Current traffic shares."""
        return dict(self.endpoint(endpoint).traffic)

    def deploy(self, endpoint: str, deployment: str, version: RegisteredVersion) -> None:
        """Download and verify the model, start its server, wait until it is healthy.

        No artifact of its own (None): every local deployment serves the scoring venv.
        """
        from pipelines import scoring_env

        record = self.endpoint(endpoint)
        self._save(record)  # the key exists before any server is started with it
        if deployment in record.deployments:
            self.delete(endpoint, deployment)
            record = self.endpoint(endpoint)
        folder = self.root / endpoint / deployment
        bundle = self.registry.download(version, folder / "model")
        self.prepare_bundle(bundle)
        venv = scoring_env.ensure_scoring_env()
        port = scoring_env.free_port()
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.settings.logs_dir / f"{endpoint}-{deployment}.log"
        process = scoring_env.start_inference_server(
            bundle,
            port,
            api_key=record.key,
            model_sha256=version.digest,
            collect_dir=self.settings.collected_dir / deployment_prefix(endpoint, deployment),
            log_file=log_file,
            venv=venv,
        )
        deployed = DeploymentRecord(
            model=version.ref,
            version=version.version,
            digest=version.digest,
            port=port,
            pid=process.pid,
            log_file=str(log_file),
            started_at=time.time(),
        )
        record.deployments[deployment] = deployed
        record.traffic.setdefault(deployment, 0)
        self._save(record)
        try:
            scoring_env.wait_healthy(deployed.url, HEALTH_TIMEOUT_S, process)
        except MlopsError:
            self.delete(endpoint, deployment)
            raise

    def prepare_bundle(self, bundle: Path) -> None:
        """Hook between download and start (tests use it to inject a corrupted artifact)."""

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        """Switch traffic (all at once locally)."""
        validate_traffic(traffic)
        record = self.endpoint(endpoint)
        unknown = set(traffic) - set(record.deployments)
        if unknown:
            raise MlopsError(f"endpoint {endpoint} has no deployment {', '.join(sorted(unknown))}")
        record.traffic = {name: traffic.get(name, 0) for name in record.deployments}
        self._save(record)

    def delete(self, endpoint: str, deployment: str) -> None:
        """Stop the server and forget the deployment (its traffic share goes with it)."""
        from pipelines import scoring_env

        record = self.endpoint(endpoint)
        deployed = record.deployments.pop(deployment, None)
        if deployed is not None and process_alive(deployed.pid):
            scoring_env.stop_process(deployed.pid)
        record.traffic.pop(deployment, None)
        shutil.rmtree(self.root / endpoint / deployment, ignore_errors=True)
        if record.deployments:
            self._save(record)
        elif self._path(endpoint).exists():
            self._path(endpoint).unlink()

    def client(self, endpoint: str, deployment: str | None = None) -> ScoringClient:
        """A deployment directly, or the endpoint (the deployment holding the traffic)."""
        record, name = self._serving(endpoint, deployment)
        return ScoringClient(base_url=record.deployments[name].url, key=record.key)

    def running_client(self, endpoint: str, deployment: str | None = None) -> ScoringClient:
        """`client()`, once the server behind it is known to be running (for calls by hand)."""
        record, name = self._serving(endpoint, deployment)
        deployed = record.deployments[name]
        if not process_alive(deployed.pid):
            raise self._not_serving(
                endpoint,
                f"the server of {endpoint}/{name} ({deployed.model}, pid {deployed.pid}) has "
                f"stopped (its log: {deployed.log_file})",
            )
        return ScoringClient(base_url=deployed.url, key=record.key)

    def _serving(self, endpoint: str, deployment: str | None) -> tuple[EndpointRecord, str]:
        check_endpoint(endpoint)
        record = self.endpoint(endpoint)
        if deployment is not None and record.deployments and deployment not in record.deployments:
            raise MlopsError(
                f"endpoint {endpoint} has no deployment {deployment}; its deployments are "
                f"{', '.join(sorted(record.deployments))}"
            )
        name = deployment or live_slot(record.traffic)
        if name is None or name not in record.deployments:
            raise self._not_serving(
                endpoint,
                "no server runs it (never released, or stopped as at the end of `make demo`)",
            )
        return record, name

    def _not_serving(self, endpoint: str, why: str) -> MlopsError:
        production = self.registry.production()
        advice = serving_advice(
            endpoint, production.ref if production else None, self.registry.model_name
        )
        return MlopsError(f"endpoint {endpoint} is not serving: {why}; {advice}")

    # -- operations ------------------------------------------------------------------------
    def watch(self, version: RegisteredVersion) -> str | None:
        """Nothing to schedule: locally `mlops monitor` reads the collected data when asked."""
        return None

    def teardown(self) -> list[str]:
        """Stop every local deployment and the local blob storage; returns what was stopped."""
        from pipelines.datastore import azurite

        stopped = []
        for record in self.endpoints():
            for deployment in list(record.deployments):
                self.delete(record.name, deployment)
                stopped.append(f"{record.name}/{deployment}")
        shutil.rmtree(self.root, ignore_errors=True)
        if azurite.stop(self.settings):
            stopped.append("azurite (local blob storage)")
        return stopped
