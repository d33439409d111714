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


def _flat(values: Any) -> list[Any] | None:
    """A regressor's values, or a classifier's rows of probabilities, as one flat list."""
    if not isinstance(values, list):
        return None
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def predictions_match(served: Any, golden: Any) -> bool:
    """Same shape (a value, or a list of class probabilities, per row) and every value within
    the relative tolerance."""
    flat_served, flat_golden = _flat(served), _flat(golden)
    if flat_served is None or flat_golden is None or len(served) != len(golden):
        return False
    return len(flat_served) == len(flat_golden) and all(
        isinstance(s, int | float)
        and math.isclose(s, g, rel_tol=GOLDEN_TOLERANCE, abs_tol=GOLDEN_TOLERANCE)
        for s, g in zip(flat_served, flat_golden, strict=True)
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


def _spec_features(spec: dict[str, Any]) -> list[Any] | None:
    """The `x-features` the served spec declares (Swagger 2 or OpenAPI 3 layout)."""
    definitions = spec.get("definitions") or spec.get("components", {}).get("schemas", {})
    try:
        features = definitions["ServiceInput"]["properties"]["data"]["items"]["x-features"]
    except (KeyError, TypeError):
        return None
    return features if isinstance(features, list) else None


def _openapi_check(golden: dict[str, Any]) -> Callable[[ScoringClient], Check]:
    width = len(golden["rows"][0]) if golden.get("rows") else None

    def check(client: ScoringClient) -> Check:
        return _check_openapi(client, width)

    return check


def _check_openapi(client: ScoringClient, width: int | None = None) -> Check:
    """The spec is served, documents /score and, given the model's row width, declares as
    many features as the registered model takes (the spec is written from its bundle)."""
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
    detail = (
        f"GET {client.swagger_path} → {response.status_code}, "
        + ("documents " if has_score else "does not document ")
        + client.score_path
    )
    features = _spec_features(spec) if has_score else None
    ok = response.status_code == 200 and has_score
    if ok and width is not None:
        ok = features is not None and len(features) == width
        detail += (
            f" with the model's {width} features"
            if ok
            else f", but declares {len(features) if features else 'no'} features; the model "
            f"takes {width}"
        )
    return Check("openapi", ok, detail)


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


def _auth_check(golden: dict[str, Any]) -> Callable[[ScoringClient], Check]:
    def check(client: ScoringClient) -> Check:
        # A valid body (the model's own golden rows): only the missing key is wrong.
        response = client.score({"data": golden["rows"][:1]}, authenticated=False)
        return Check("auth", response.status_code == 401, f"no key → {response.status_code}")

    return check


def smoke_test(target: str, client: ScoringClient, golden: dict[str, Any]) -> SmokeReport:
    """Run every check; a connection failure fails that check, it doesn't crash the release."""
    checks: list[Callable[[ScoringClient], Check]] = [
        _check_health,
        _openapi_check(golden),
        _golden_check(golden),
        _check_bad_request,
    ]
    if client.key:
        checks.append(_auth_check(golden))
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
