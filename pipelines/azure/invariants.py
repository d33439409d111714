"""Rules Azure enforces only server-side (or not at all), checked before any call.

Design note §5: azure-ai-ml does not check these client-side, so a violation would surface
minutes later as a failed deployment, or not at all (a mirror on a Kubernetes endpoint). Each
failure is one sentence naming the value and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipelines.errors import MlopsError

NAME_MIN, NAME_MAX = 3, 32
MAX_MIRROR_PERCENT = 50
# Endpoint and deployment names: letters, digits and dashes, starting with a letter.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


class InvariantError(MlopsError):
    """A value that Azure would reject (or silently mishandle)."""


def check_name(kind: str, name: str) -> str:
    """Endpoint and deployment names are 3 to 32 letters, digits or dashes, letter first."""
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvariantError(
            f"{kind} name '{name}' is {len(name)} characters long; Azure ML allows "
            f"{NAME_MIN} to {NAME_MAX}"
        )
    if not _NAME.match(name) or name.endswith("-"):
        raise InvariantError(
            f"{kind} name '{name}' must start with a letter and hold only letters, digits and "
            "dashes (not at the end)"
        )
    return name


def check_traffic(endpoint: str, traffic: Mapping[str, int]) -> None:
    """Whole percents from 0 to 100, summing to exactly 100, for named deployments."""
    for deployment, share in traffic.items():
        check_name("deployment", deployment)
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
            raise InvariantError(
                f"traffic for {endpoint}/{deployment} must be a whole percent from 0 to 100, "
                f"got {share!r}"
            )
    total = sum(traffic.values())
    if total != 100:
        raise InvariantError(
            f"traffic on {endpoint} must sum to 100, got {dict(traffic)} (= {total})"
        )


def check_mirror(
    endpoint: str,
    mirror: Mapping[str, int],
    traffic: Mapping[str, int],
    *,
    kubernetes: bool,
) -> None:
    """At most one mirrored deployment, at most 50%, never live, never on Kubernetes."""
    active = {name: share for name, share in mirror.items() if share}
    if not active:
        return
    if kubernetes:
        raise InvariantError(
            f"endpoint {endpoint} runs on Kubernetes, which does not support mirrored traffic; "
            "unset the mirror (it is for managed online endpoints only)"
        )
    if len(active) > 1:
        raise InvariantError(
            f"only one deployment of {endpoint} may receive mirrored traffic, got {active}"
        )
    ((deployment, share),) = active.items()
    check_name("deployment", deployment)
    if isinstance(share, bool) or not isinstance(share, int) or not 0 < share <= MAX_MIRROR_PERCENT:
        raise InvariantError(
            f"mirrored traffic to {endpoint}/{deployment} must be a whole percent from 1 to "
            f"{MAX_MIRROR_PERCENT}, got {share!r}"
        )
    if traffic.get(deployment, 0) > 0:
        raise InvariantError(
            f"{endpoint}/{deployment} already receives live traffic; mirror only to a deployment "
            "with 0% live traffic"
        )


def check_managed_scale(deployment: str, scale_settings: object) -> None:
    """Managed online deployments take DefaultScaleSettings only (autoscale is Azure Monitor's)."""
    from azure.ai.ml.entities import DefaultScaleSettings

    if scale_settings is not None and not isinstance(scale_settings, DefaultScaleSettings):
        raise InvariantError(
            f"managed deployment {deployment} must use default scale settings, got "
            f"{type(scale_settings).__name__}; scale managed deployments with Azure Monitor "
            "autoscale instead"
        )


MIN_MANAGED_PRODUCTION_INSTANCES = 3
"""Instances of a managed production deployment: Microsoft recommends at least three for high
availability (Learn, "how-to-deploy-online-endpoints"/"concept-endpoints-online", as the issue 10
desk review found it; not re-read here)."""


def check_managed_instances(deployment: str, instance_count: int | None) -> None:
    """A managed production deployment runs at least MIN_MANAGED_PRODUCTION_INSTANCES."""
    if (instance_count or 0) < MIN_MANAGED_PRODUCTION_INSTANCES:
        raise InvariantError(
            f"managed deployment {deployment} would run {instance_count} instance(s); production "
            f"needs at least {MIN_MANAGED_PRODUCTION_INSTANCES} for high availability"
        )
