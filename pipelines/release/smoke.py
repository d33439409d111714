"""Smoke tests of a scoring service: they assert, they don't just echo.

Health, the OpenAPI spec, the registered golden sample (the served predictions must equal the
golden predictions: proof that the right model is serving), a bad request (must be a 4xx with a
JSON body) and, when a key is configured, a request without it (must be a 401).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

GOLDEN_TOLERANCE = 1e-6  # relative; the served model must reproduce training's predictions


@dataclass(frozen=True)
class ScoringClient:
    """How to reach one scoring service (a deployment, or an endpoint's router)."""

    base_url: str
    key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    score_path: str = "/score"
    health_path: str = "/"
    swagger_path: str = "/swagger.json"
    timeout_s: float = 10.0

    def auth_headers(self) -> dict[str, str]:
        """Routing headers plus the bearer key."""
        auth = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return self.headers | auth

    def score(self, payload: object, *, authenticated: bool = True) -> httpx.Response:
        """POST a JSON body to the scoring route."""
        headers = self.auth_headers() if authenticated else dict(self.headers)
        return httpx.post(
            self.base_url + self.score_path, json=payload, headers=headers, timeout=self.timeout_s
        )


@dataclass(frozen=True)
class Check:
    """The outcome of one smoke check."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class SmokeReport:
    """All checks of one smoke test."""

    target: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def first_failure(self) -> Check | None:
        """The first failed check, for the error message."""
        return next((check for check in self.checks if not check.passed), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, published as a pipeline artifact."""
        return {
            "target": self.target,
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
        }


def predictions_match(served: list[float], golden: list[float]) -> bool:
    """Same length and every value within the relative tolerance."""
    return len(served) == len(golden) and all(
        math.isclose(s, g, rel_tol=GOLDEN_TOLERANCE, abs_tol=GOLDEN_TOLERANCE)
        for s, g in zip(served, golden, strict=True)
    )


def _check_health(client: ScoringClient) -> Check:
    response = httpx.get(
        client.base_url + client.health_path,
        headers=client.auth_headers(),
        timeout=client.timeout_s,
    )
    return Check(
        "health", response.status_code == 200, f"GET {client.health_path} → {response.status_code}"
    )


def _check_openapi(client: ScoringClient) -> Check:
    response = httpx.get(
        client.base_url + client.swagger_path,
        headers=client.auth_headers(),
        timeout=client.timeout_s,
    )
    try:
        spec = response.json()
    except ValueError:
        return Check(
            "openapi", False, f"GET {client.swagger_path} → {response.status_code}, not JSON"
        )
    has_score = isinstance(spec, dict) and client.score_path in spec.get("paths", {})
    return Check(
        "openapi",
        response.status_code == 200 and has_score,
        f"GET {client.swagger_path} → {response.status_code}, "
        + ("documents " if has_score else "does not document ")
        + client.score_path,
    )


def _golden_check(golden: dict[str, Any]) -> Callable[[ScoringClient], Check]:
    def check(client: ScoringClient) -> Check:
        response = client.score({"data": golden["rows"]})
        try:
            served = response.json()["result"]
        except (ValueError, KeyError, TypeError):
            return Check(
                "golden",
                False,
                f"POST {client.score_path} → {response.status_code}: {response.text[:200]}",
            )
        ok = response.status_code == 200 and predictions_match(served, golden["predictions"])
        detail = (
            f"{len(served)} predictions equal the golden ones (±{GOLDEN_TOLERANCE:g})"
            if ok
            else f"served {served}, but the golden predictions are {golden['predictions']}"
        )
        return Check("golden", ok, detail)

    return check


def _check_bad_request(client: ScoringClient) -> Check:
    response = client.score({"data": [[1.0, 2.0]]})
    try:
        body_ok = isinstance(response.json(), dict)
    except ValueError:
        body_ok = False
    ok = 400 <= response.status_code < 500 and body_ok
    return Check(
        "bad-request",
        ok,
        f"a 2-feature row → {response.status_code}" + ("" if body_ok else " without a JSON body"),
    )


def _check_auth(client: ScoringClient) -> Check:
    response = client.score({"data": [[0.0] * 10]}, authenticated=False)
    return Check("auth", response.status_code == 401, f"no key → {response.status_code}")


def smoke_test(target: str, client: ScoringClient, golden: dict[str, Any]) -> SmokeReport:
    """Run every check; a connection failure fails that check, it doesn't crash the release."""
    checks: list[Callable[[ScoringClient], Check]] = [
        _check_health,
        _check_openapi,
        _golden_check(golden),
        _check_bad_request,
    ]
    if client.key:
        checks.append(_check_auth)
    results = []
    for check in checks:
        try:
            results.append(check(client))
        except httpx.HTTPError as error:
            name = getattr(check, "__name__", "check").removeprefix("_check_")
            results.append(
                Check(name, False, f"request failed: {error.__class__.__name__}: {error}")
            )
    return SmokeReport(target, tuple(results))
