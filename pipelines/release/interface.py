"""The interface the release runner drives; each target in `pipelines.targets` adapts to it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pipelines.registry import ModelRegistry, RegisteredVersion
from pipelines.release.smoke import ScoringClient


class DeploymentTarget(Protocol):
    """Endpoints with named deployments and a traffic split."""

    name: str

    def traffic(self, endpoint: str) -> dict[str, int]:
        """Current traffic shares per deployment (empty when the endpoint has none)."""
        ...

    def deploy(self, endpoint: str, deployment: str, version: RegisteredVersion) -> str | None:
        """Create or replace a deployment serving this model version; returns once healthy.

        Returns what now serves there when the target deploys an artifact of its own (Azure:
        the image reference, tagged by its digest), for the release report; else None.
        """
        ...

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        """Route the endpoint's traffic (shares sum to 100)."""
        ...

    def delete(self, endpoint: str, deployment: str) -> None:
        """Remove a deployment (no error if it is already gone)."""
        ...

    def client(self, endpoint: str, deployment: str | None = None) -> ScoringClient:
        """How to call the endpoint, or one deployment directly."""
        ...


class DeploymentSummary(Protocol):
    """One deployment as listings and summaries show it."""

    @property
    def model(self) -> str:
        """The model reference it serves (`name:version`)."""
        ...

    @property
    def url(self) -> str:
        """Where it answers."""
        ...


class EndpointSummary(Protocol):
    """One endpoint as listings and summaries show it."""

    @property
    def name(self) -> str:
        """Logical endpoint name (qa, prod)."""
        ...

    @property
    def traffic(self) -> Mapping[str, int]:
        """Traffic share per deployment."""
        ...

    @property
    def deployments(self) -> Mapping[str, DeploymentSummary]:
        """Deployments by name."""
        ...


class ServingTarget(DeploymentTarget, Protocol):
    """What the serving commands use: deployments plus the registry, listings and teardown."""

    @property
    def registry(self) -> ModelRegistry:
        """The registry this target deploys from (and whose production pointer it moves)."""
        ...

    def endpoints(self) -> Sequence[EndpointSummary]:
        """Every endpoint of the target."""
        ...

    def teardown(self) -> list[str]:
        """Remove what can be removed safely; returns what was stopped."""
        ...

    def watch(self, version: RegisteredVersion) -> str | None:
        """After a production release: monitor the live deployment; returns what was set up,
        or None when the target monitors on demand instead (locally, `mlops monitor`)."""
        ...
