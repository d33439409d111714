"""The Azure target: QA on Container Instances, production on the stack's online endpoint.

The release runner drives it through the same `DeploymentTarget` interface as the local
target. Endpoint names are the plan's logical ones: `qa` is the QA stack's ACI scoring service,
`prod` the prod stack's online endpoint (Kubernetes where the stack has AKS, else managed).

Production rollout, step by step (the plan comes from `pipelines.release.plan`):
- `deploy` imports the image QA served (tagged by its digest, `pipelines.azure.image`) into the
  prod ACR if missing, then creates the `blue` or `green` deployment of that image alone (no
  code or model mount; instance type, resources, autoscale from the capacity plan, request
  settings, probes, App Insights, data collection) and waits until Azure reports it healthy; on a
  managed endpoint it can first shadow live traffic (MLOPS_MIRROR_PERCENT) and check the new
  deployment's log for server errors;
- the runner smoke-tests the new deployment directly (`azureml-model-deployment` header);
- `set_traffic` shifts traffic in stages (MLOPS_TRAFFIC_STAGES, default 10,50,100): each
  split is checked (sums to 100, no mirror on Kubernetes), applied, and followed by an error-rate
  probe through the endpoint before the runner's smoke test; a probe over the budget fails the
  step, and the runner routes everything back and deletes the new deployment;
- the production pointer moves after the last smoke test; then the old deployment is deleted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from infra.outputs import StackOutputs
from pipelines.azure.client import AzureClients, azure_call
from pipelines.azure.outputs import StackFiles
from pipelines.azure.registry import AzureModelRegistry
from pipelines.errors import MlopsError
from pipelines.registry import RegisteredVersion
from pipelines.release.plan import PROD_ENDPOINT, QA_DEPLOYMENT, QA_ENDPOINT, validate_stages
from pipelines.release.smoke import ScoringClient
from pipelines.settings import Settings

DEPLOYMENT_HEADER = "azureml-model-deployment"
_SERVER_ERROR_MARKERS = ("Traceback (most recent call last)", " status=5")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RolloutSettings:
    """How cautiously production traffic moves (environment variables in parentheses)."""

    traffic_stages: tuple[int, ...] = (10, 50, 100)  # MLOPS_TRAFFIC_STAGES
    probe_requests: int = 40  # MLOPS_PROBE_REQUESTS
    max_error_rate: float = 0.02  # MLOPS_MAX_ERROR_RATE
    mirror_percent: int = 0  # MLOPS_MIRROR_PERCENT (managed endpoints only)
    settle_s: float = 15.0  # MLOPS_SETTLE_SECONDS: wait after a routing change

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RolloutSettings:
        """Read the MLOPS_* overrides; each bad value is one sentence."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def read(name: str, parse: Callable[[str], Any], default: Any) -> Any:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError:
                raise MlopsError(f"{name}={raw!r} is not valid; see docs/azure.md") from None

        stages = read(
            "MLOPS_TRAFFIC_STAGES",
            lambda raw: tuple(int(part) for part in raw.split(",")),
            defaults.traffic_stages,
        )
        try:
            validate_stages(stages)
        except ValueError as error:
            raise MlopsError(f"MLOPS_TRAFFIC_STAGES: {error}") from error
        settings = cls(
            traffic_stages=stages,
            probe_requests=read("MLOPS_PROBE_REQUESTS", int, defaults.probe_requests),
            max_error_rate=read("MLOPS_MAX_ERROR_RATE", float, defaults.max_error_rate),
            mirror_percent=read("MLOPS_MIRROR_PERCENT", int, defaults.mirror_percent),
            settle_s=read("MLOPS_SETTLE_SECONDS", float, defaults.settle_s),
        )
        if not 0 <= settings.max_error_rate < 1:
            raise MlopsError(
                "MLOPS_MAX_ERROR_RATE must be at least 0 and below 1, got "
                f"{settings.max_error_rate}"
            )
        if settings.probe_requests < 1:
            raise MlopsError(
                f"MLOPS_PROBE_REQUESTS must be at least 1, got {settings.probe_requests}"
            )
        return settings


def probe(client: ScoringClient, rows: list[list[float]], requests: int) -> tuple[int, str]:
    """Send `requests` scoring requests; returns (failures, first failure's description).

    A failure is anything but a 200 with one prediction per row: with traffic split between two
    model versions, answers differ by version, so only the shape is asserted here (the smoke
    tests assert the golden predictions).
    """
    failures = 0
    first = ""
    for _ in range(requests):
        try:
            response = client.score({"data": rows})
            result = response.json().get("result") if response.status_code == 200 else None
            ok = isinstance(result, list) and len(result) == len(rows)
            detail = f"status {response.status_code}"
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            ok, detail = False, type(error).__name__
        if not ok:
            failures += 1
            first = first or detail
    return failures, first


def endpoint_routes(scoring_uri: str, openapi_uri: str | None) -> dict[str, str]:
    """Base URL and routes of an online endpoint, from the URIs Azure ML reports for it.

    `OnlineEndpoint.scoring_uri` and `.openapi_uri` (azure-ai-ml `entities/_endpoint/
    online_endpoint.py`); the router serves the deployment's OpenAPI document, not the server's
    `/` route, so it is also the health route. Without an `openapi_uri`, `/swagger.json`.
    """
    from urllib.parse import urlsplit

    scoring = urlsplit(scoring_uri)
    base = f"{scoring.scheme}://{scoring.netloc}"
    spec = urlsplit(openapi_uri) if openapi_uri else None
    if spec is not None and f"{spec.scheme}://{spec.netloc}" != base:
        raise MlopsError(
            f"the endpoint's OpenAPI URI {openapi_uri} is on another host than its scoring URI "
            f"{scoring_uri}; check the endpoint in Azure ML studio"
        )
    swagger = (spec.path + (f"?{spec.query}" if spec.query else "")) if spec else "/swagger.json"
    return {
        "base_url": base,
        "score_path": scoring.path or "/score",
        "swagger_path": swagger,
        "health_path": swagger,
    }


DEPLOYMENT_LOG_LINES = 20


@dataclass
class AzureTarget:
    """QA (ACI) and production (online endpoint) of the Azure stacks."""

    settings: Settings
    stacks: StackFiles
    clients: AzureClients
    registry: AzureModelRegistry
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    progress: Progress = lambda _: None
    sleep: Callable[[float], None] = time.sleep
    name: str = "azure"
    # The rows of the version being rolled out (its golden sample: rows the model's contract
    # accepts), sent by the error-rate probe; set by deploy().
    _golden_rows: list[list[float]] = field(default_factory=list)
    _rolling: str | None = None  # the deployment this release is rolling out
    _split: dict[str, int] = field(default_factory=dict)  # the split set last

    @property
    def traffic_stages(self) -> tuple[int, ...]:
        """The staged shift the runner plans with."""
        return self.rollout.traffic_stages

    # -- stacks and clients -----------------------------------------------------------------
    def outputs(self, endpoint: str) -> StackOutputs:
        """The stack behind a logical endpoint: qa → the qa stack, prod → the prod stack."""
        if endpoint == QA_ENDPOINT:
            return self.stacks.outputs_for("qa")
        if endpoint == PROD_ENDPOINT:
            return self.stacks.outputs_for("prod")
        raise MlopsError(f"unknown endpoint '{endpoint}'; on Azure the endpoints are qa and prod")

    def _ml(self, outputs: StackOutputs) -> Any:
        return self.clients.workspace(outputs)

    def _endpoint(self, outputs: StackOutputs) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._ml(outputs).online_endpoints.get(outputs.online_endpoint_name)
        except ResourceNotFoundError as error:
            raise MlopsError(
                f"online endpoint {outputs.online_endpoint_name} does not exist in workspace "
                f"{outputs.workspace_name}; run `pulumi up` for the {outputs.environment} stack"
            ) from error

    def _update_endpoint(self, outputs: StackOutputs, endpoint: Any) -> None:
        azure_call(
            f"update endpoint {outputs.online_endpoint_name}",
            lambda: self._ml(outputs).online_endpoints.begin_create_or_update(endpoint).result(),
        )

    # -- DeploymentTarget ------------------------------------------------------------------
    def traffic(self, endpoint: str) -> dict[str, int]:
        """Live traffic per deployment of the endpoint (QA has one deployment, always live)."""
        if endpoint == QA_ENDPOINT:
            return {QA_DEPLOYMENT: 100}
        found = self._endpoint(self.outputs(endpoint))
        return {name: int(share) for name, share in (found.traffic or {}).items()}

    def deploy(self, endpoint: str, deployment: str, version: RegisteredVersion) -> str:
        """QA: roll the container group's image. Production: a blue/green deployment of it.

        One image for both: tagged by its digest, built in (or found in) the QA registry, and
        imported unchanged into the production registry. Returns the image reference.
        """
        from pipelines.azure.image import ensure_image, scoring_image

        self._golden_rows = list(self.registry.golden(version)["rows"])
        outputs = self.outputs(endpoint)
        with tempfile.TemporaryDirectory() as scratch:
            image = scoring_image(version, Path(scratch))
            self.progress(f"image {image.tag} for {version.ref} in {outputs.acr_name}")
            qa = None if endpoint == QA_ENDPOINT else self.outputs(QA_ENDPOINT)
            reference = ensure_image(
                self.clients, outputs, self.registry, image, Path(scratch), source=qa
            )
        if endpoint == QA_ENDPOINT:
            self._deploy_qa(outputs, reference)
        else:
            self._rolling = deployment
            self._deploy_online(outputs, deployment, version, image.digest)
        return reference

    def _deploy_qa(self, outputs: StackOutputs, image: str) -> None:
        from pipelines.azure.qa_service import qa_client, update_image, wait_healthy

        self.progress(f"container group {outputs.qa_aci_name} → {image}")
        azure_call(
            "the QA container group update", lambda: update_image(self.clients, outputs, image)
        )
        wait_healthy(qa_client(self.clients, outputs), sleep=self.sleep)

    def _deploy_online(
        self, outputs: StackOutputs, deployment: str, version: RegisteredVersion, image_digest: str
    ) -> None:
        from pipelines.azure.capacity import load_from_environment, plan_capacity
        from pipelines.azure.entities import (
            ServingSettings,
            is_kubernetes,
            kubernetes_deployment,
            managed_deployment,
        )

        endpoint = self._endpoint(outputs)
        serving = ServingSettings()
        if is_kubernetes(endpoint):
            if self.rollout.mirror_percent:
                raise MlopsError(
                    f"endpoint {outputs.online_endpoint_name} runs on Kubernetes, which does not "
                    "support mirrored traffic; unset MLOPS_MIRROR_PERCENT"
                )
            plan = plan_capacity(
                load_from_environment(), serving.max_concurrent_requests_per_instance
            )
            built: Any = kubernetes_deployment(
                outputs,
                outputs.online_endpoint_name,
                deployment,
                version,
                image_digest,
                plan,
                serving,
            )
            self.progress(
                f"{deployment} on {outputs.kubernetes_compute_name} ({built.instance_type}, "
                f"{plan.min_instances}-{plan.max_instances} replicas at "
                f"{plan.target_utilization_percentage}% target)"
            )
        else:
            built = managed_deployment(
                outputs, outputs.online_endpoint_name, deployment, version, image_digest, serving
            )
            self.progress(f"{deployment} on managed compute ({built.instance_type})")
        try:
            azure_call(
                f"deployment {deployment} of {version.ref}",
                lambda: self._ml(outputs).online_deployments.begin_create_or_update(built).result(),
            )
        except MlopsError as error:
            tails = self._deployment_logs(outputs, deployment)
            for container, tail in tails.items():
                self.progress(f"{deployment} {container} log (last lines):\n{tail}")
            last = "; ".join(
                f"{container}: {tail.splitlines()[-1].strip()[:200]}"
                for container, tail in tails.items()
                if tail.strip()
            )
            raise MlopsError(f"{error}" + (f" (last log lines, {last})" if last else "")) from error
        if not is_kubernetes(endpoint):
            self._autoscale(outputs, deployment, serving, built.tags)
        live = {name: share for name, share in (endpoint.traffic or {}).items() if share}
        if self.rollout.mirror_percent and live:
            self._shadow(outputs, deployment)

    def _autoscale(
        self, outputs: StackOutputs, deployment: str, serving: Any, tags: dict[str, str]
    ) -> None:
        """A managed deployment's Azure Monitor autoscale: from its instance count (the floor)
        to the capacity plan's ceiling (`pipelines.azure.autoscale`)."""
        from pipelines.azure import autoscale
        from pipelines.azure.capacity import load_from_environment, plan_capacity
        from pipelines.azure.entities import ScalePlan

        sized = plan_capacity(load_from_environment(), serving.max_concurrent_requests_per_instance)
        plan = ScalePlan(
            min_instances=serving.managed_instance_count,
            max_instances=max(sized.max_instances, serving.managed_instance_count),
            target_utilization_percentage=sized.target_utilization_percentage,
        )
        self.progress(
            f"autoscale {autoscale.setting_name(outputs, deployment)}: {plan.min_instances}-"
            f"{plan.max_instances} instances, out above {plan.target_utilization_percentage}% CPU"
        )
        autoscale.apply(
            self.clients,
            outputs,
            deployment,
            autoscale.setting_body(outputs, deployment, plan, dict(tags)),
        )

    def _deployment_logs(self, outputs: StackOutputs, deployment: str) -> dict[str, str]:
        """The tails of a deployment's two containers' logs, for a failure message.

        `online_deployments.get_logs(container_type=...)` (azure-ai-ml `operations/
        _online_deployment_operations.py`; "storage-initializer" is what downloads the model, the
        first suspect when a deployment never starts). A log that cannot be read is left out:
        the deployment's own error is what the message must carry.
        """
        from azure.core.exceptions import AzureError

        tails = {}
        for container in ("storage-initializer", "inference-server"):
            try:
                text = self._ml(outputs).online_deployments.get_logs(
                    name=deployment,
                    endpoint_name=outputs.online_endpoint_name,
                    lines=DEPLOYMENT_LOG_LINES,
                    container_type=container,
                )
            except AzureError:
                continue
            tails[container] = "\n".join(str(text).strip().splitlines()[-DEPLOYMENT_LOG_LINES:])
        return tails

    def _shadow(self, outputs: StackOutputs, deployment: str) -> None:
        """Mirror a share of live traffic to the new deployment and read its log for errors."""
        from pipelines.azure.entities import with_traffic

        percent = self.rollout.mirror_percent
        endpoint = self._endpoint(outputs)
        traffic = {name: int(share) for name, share in (endpoint.traffic or {}).items()}
        self.progress(f"mirror {percent}% of live traffic to {deployment}")
        self._update_endpoint(outputs, with_traffic(endpoint, traffic, {deployment: percent}))
        try:
            self.sleep(self.rollout.settle_s)
            self._check_error_rate(PROD_ENDPOINT)
            logs = azure_call(
                f"reading the log of {deployment}",
                lambda: self._ml(outputs).online_deployments.get_logs(
                    name=deployment, endpoint_name=outputs.online_endpoint_name, lines=1000
                ),
            )
            errors = [
                line for line in str(logs).splitlines()
                if any(marker in line for marker in _SERVER_ERROR_MARKERS)
            ]  # fmt: skip
            if errors:
                raise MlopsError(
                    f"{deployment} answered mirrored requests with server errors "
                    f"({len(errors)} in its log, first: {errors[0].strip()[:160]})"
                )
        finally:
            self.progress(f"mirror to {deployment} off")
            self._update_endpoint(outputs, with_traffic(self._endpoint(outputs), traffic, {}))

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        """Apply a checked split, let it settle, then probe the error rate through the endpoint."""
        from pipelines.azure.entities import with_traffic

        if endpoint == QA_ENDPOINT:
            return  # one deployment, always live
        outputs = self.outputs(endpoint)
        current = self._endpoint(outputs)
        self._update_endpoint(outputs, with_traffic(current, traffic, {}))
        self._split = dict(traffic)
        self.sleep(self.rollout.settle_s)
        self._check_error_rate(endpoint)

    def _check_error_rate(self, endpoint: str) -> None:
        if not self._golden_rows:
            raise MlopsError(
                f"no golden rows to probe endpoint {endpoint} with; deploy a version before "
                "shifting traffic to it"
            )
        requests = self.rollout.probe_requests
        # Unpinned: the router spreads these over the split, old and new deployment alike.
        failures, first = probe(self._online_client(endpoint), self._golden_rows, requests)
        rate = failures / requests
        self.progress(f"error rate {rate:.1%} over {requests} requests")
        if rate > self.rollout.max_error_rate:
            raise MlopsError(
                f"error rate {rate:.1%} through endpoint {endpoint} is over the budget of "
                f"{self.rollout.max_error_rate:.1%} ({failures} of {requests} failed, first: "
                f"{first})"
            )

    def delete(self, endpoint: str, deployment: str) -> None:
        """Delete a production deployment (gone already is fine). QA's container group stays."""
        if endpoint != QA_ENDPOINT:
            self.delete_in(self.outputs(endpoint), deployment)

    def client(self, endpoint: str, deployment: str | None = None) -> ScoringClient:
        """The QA service, the production endpoint, or one deployment behind it (by header).

        While a staged shift splits traffic, the endpoint's smoke test asserts the new model's
        golden predictions, which only the new deployment gives: the client then goes through
        the endpoint (router, key) pinned to it; the error-rate probe covers the split itself.
        """
        if endpoint == QA_ENDPOINT:
            from pipelines.azure.qa_service import qa_client

            return qa_client(self.clients, self.outputs(endpoint))
        rolling = self._rolling
        if deployment is None and rolling and 0 < self._split.get(rolling, 0) < 100:
            deployment = rolling
        return self._online_client(endpoint, deployment)

    def _online_client(self, endpoint: str, deployment: str | None = None) -> ScoringClient:
        outputs = self.outputs(endpoint)
        found = self._endpoint(outputs)
        scoring_uri = str(found.scoring_uri or "")
        if not scoring_uri:
            raise MlopsError(
                f"endpoint {outputs.online_endpoint_name} has no scoring URI yet; wait for its "
                "provisioning to finish"
            )
        keys = azure_call(
            f"reading the keys of {outputs.online_endpoint_name}",
            lambda: self._ml(outputs).online_endpoints.get_keys(outputs.online_endpoint_name),
        )
        key = getattr(keys, "primary_key", None) or getattr(keys, "access_token", None)
        return ScoringClient(
            **endpoint_routes(scoring_uri, getattr(found, "openapi_uri", None)),
            key=str(key) if key else None,
            headers={DEPLOYMENT_HEADER: deployment} if deployment else {},
            timeout_s=30.0,
        )

    # -- operations ------------------------------------------------------------------------
    def endpoints(self) -> list[EndpointView]:
        """What serves where, for summaries (stacks without saved outputs are skipped)."""
        views = []
        for endpoint in (QA_ENDPOINT, PROD_ENDPOINT):
            try:
                outputs = self.outputs(endpoint)
            except MlopsError:
                continue
            views.append(self.describe(endpoint, outputs))
        return views

    def describe(self, endpoint: str, outputs: StackOutputs) -> EndpointView:
        """One endpoint's deployments, models and traffic."""
        if endpoint == QA_ENDPOINT:
            url = outputs.qa_scoring_url or ""
            return EndpointView(
                endpoint,
                {QA_DEPLOYMENT: 100},
                {QA_DEPLOYMENT: DeploymentView(f"container group {outputs.qa_aci_name}", url)},
            )
        found = self._endpoint(outputs)
        deployments = {
            str(d.name): DeploymentView(
                str((d.tags or {}).get("model", "?")), str(found.scoring_uri or "")
            )
            for d in self._ml(outputs).online_deployments.list(
                endpoint_name=outputs.online_endpoint_name
            )
        }
        traffic = {name: int(share) for name, share in (found.traffic or {}).items()}
        return EndpointView(outputs.online_endpoint_name, traffic, deployments)

    def watch(self, version: RegisteredVersion) -> str | None:
        """The Azure ML MonitorSchedule on the live production deployment (after promotion)."""
        from pipelines.azure.monitoring import watch_production
        from pipelines.datastore.store import azure_store
        from pipelines.release.plan import live_slot

        outputs = self.outputs(PROD_ENDPOINT)
        ml_client = self._ml(outputs)
        live = live_slot(self.traffic(PROD_ENDPOINT))
        if live is None:
            raise MlopsError(f"{outputs.online_endpoint_name} has no live deployment to monitor")
        return azure_call(
            "setting up the production monitor",
            lambda: watch_production(
                ml_client, outputs.online_endpoint_name, live, version,
                lambda: azure_store(ml_client),
            ),
        )  # fmt: skip

    def teardown(self) -> list[str]:
        """Delete every deployment of the current (non-production) stack's online endpoint."""
        from pipelines.azure.entities import without_traffic

        outputs = self.stacks.current()
        if outputs.environment == "prod":
            raise MlopsError(
                "teardown refuses to remove production deployments; release a model instead, or "
                "delete them deliberately in Azure ML studio"
            )
        found = self._endpoint(outputs)
        names = [
            str(d.name)
            for d in self._ml(outputs).online_deployments.list(
                endpoint_name=outputs.online_endpoint_name
            )
        ]
        if found.traffic and any(found.traffic.values()):
            self._update_endpoint(outputs, without_traffic(found))
        for name in names:
            self.delete_in(outputs, name)
        return [f"{outputs.online_endpoint_name}/{name}" for name in names]

    def delete_in(self, outputs: StackOutputs, deployment: str) -> None:
        """Delete one deployment of a stack's online endpoint."""
        from azure.core.exceptions import ResourceNotFoundError

        def remove() -> None:
            with contextlib.suppress(ResourceNotFoundError):
                self._ml(outputs).online_deployments.begin_delete(
                    name=deployment, endpoint_name=outputs.online_endpoint_name
                ).result()

        from pipelines.azure import autoscale
        from pipelines.azure.entities import is_kubernetes, without_traffic

        found = self._endpoint(outputs)
        traffic = dict(found.traffic or {})
        if traffic.get(deployment) and sum(traffic.values()) == traffic[deployment]:
            # A first release rolled back: there is no old slot to send traffic to, and Azure ML
            # refuses to delete a deployment that still takes traffic (teardown does the same).
            self._update_endpoint(outputs, without_traffic(found))
        azure_call(f"deleting deployment {deployment}", remove)
        if not is_kubernetes(found):
            autoscale.delete(self.clients, outputs, deployment)  # it scaled that deployment


def from_environment(
    model_name: str | None, clients: AzureClients | None = None
) -> tuple[Settings, AzureTarget]:
    """Settings and the Azure deployment target of the saved stacks (registry checked first)."""
    from pipelines.azure.commands import progress_line, release_context

    context = release_context(model_name, clients)
    return context.settings, AzureTarget(
        context.settings,
        context.stacks,
        context.clients,
        context.registry,
        rollout=RolloutSettings.from_environment(),
        progress=progress_line,
    )


@dataclass(frozen=True)
class DeploymentView:
    """One deployment as summaries show it."""

    model: str
    url: str


@dataclass(frozen=True)
class EndpointView:
    """One endpoint as summaries show it (the shape `describe_endpoints` reads)."""

    name: str
    traffic: dict[str, int]
    deployments: dict[str, DeploymentView]
