"""The interface the release runner drives; each target is a thin adapter behind it."""

from __future__ import annotations

from typing import Protocol

from pipelines.registry import RegisteredVersion
from pipelines.release.smoke import ScoringClient


class DeploymentTarget(Protocol):
    """Endpoints with named deployments and a traffic split."""

    name: str

    def traffic(self, endpoint: str) -> dict[str, int]:
        """Current traffic shares per deployment (empty when the endpoint has none)."""
        ...

    def deploy(self, endpoint: str, deployment: str, version: RegisteredVersion) -> None:
        """Create or replace a deployment serving this model version; returns once healthy."""
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
