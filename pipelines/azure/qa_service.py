"""The QA scoring service on Azure Container Instances: roll its image, wait until it serves.

The infrastructure creates the container group (identity, AcrPull, probes, log shipping) and
ignores later image changes; the release rolls the image with the Azure SDK: read the group,
set the container's image to `diabetes-scoring:<model version>`, write it back. ACI never
returns secure environment values, so they are supplied again from their sources (the scoring
key from Key Vault, the Application Insights connection string from the stack outputs); a
secure value with no known source stops the update rather than blanking it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from infra.outputs import StackOutputs
from pipelines.azure.client import AzureClients
from pipelines.errors import MlopsError
from pipelines.release.smoke import ScoringClient

SCORING_CONTAINER = "scoring"
SCORING_KEY_VARIABLE = "SCORING_API_KEY"
APP_INSIGHTS_VARIABLE = "APPLICATIONINSIGHTS_CONNECTION_STRING"
HEALTH_TIMEOUT_S = 600.0


def _require(outputs: StackOutputs) -> tuple[str, str]:
    if not outputs.qa_aci_name or not outputs.qa_scoring_url:
        raise MlopsError(
            f"the {outputs.environment} stack has no QA scoring service; set aci.enabled in its "
            "stack file and run `pulumi up`, or release QA from the qa stack"
        )
    return outputs.qa_aci_name, outputs.qa_scoring_url


def scoring_key(clients: AzureClients, outputs: StackOutputs) -> str:
    """The QA service's API key, from the stack's Key Vault."""
    return clients.secret(outputs.key_vault_uri, outputs.scoring_key_secret_name)


def qa_client(clients: AzureClients, outputs: StackOutputs) -> ScoringClient:
    """How to call the QA service: its URL from the outputs, its key from Key Vault."""
    _, url = _require(outputs)
    base = url.removesuffix("/score")
    return ScoringClient(base_url=base, key=scoring_key(clients, outputs), timeout_s=30.0)


def _container(group: Any, name: str) -> Any:
    for container in group.containers or []:
        if container.name == SCORING_CONTAINER:
            return container
    raise MlopsError(
        f"container group {name} has no '{SCORING_CONTAINER}' container; run `pulumi up` for "
        "the qa stack"
    )


def update_image(clients: AzureClients, outputs: StackOutputs, image: str) -> None:
    """Point the QA container group at `image`, re-supplying its secure values."""
    name, _ = _require(outputs)
    aci = clients.container_instances(outputs)
    group = aci.container_groups.get(outputs.resource_group, name)
    container = _container(group, name)
    known = {
        SCORING_KEY_VARIABLE: lambda: scoring_key(clients, outputs),
        APP_INSIGHTS_VARIABLE: lambda: outputs.app_insights_connection_string,
    }
    for variable in container.environment_variables or []:
        if variable.value is not None or variable.secure_value is not None:
            continue
        source: Callable[[], str] | None = known.get(variable.name)
        if source is None:
            raise MlopsError(
                f"container group {name} has a secure variable {variable.name} whose value "
                "Azure does not return and this release cannot restore; run `pulumi up` "
                "for the qa stack instead"
            )
        variable.secure_value = source()
    container.image = image
    poller = aci.container_groups.begin_create_or_update(outputs.resource_group, name, group)
    result = poller.result()
    state = getattr(result, "provisioning_state", None)
    if state not in (None, "Succeeded"):
        raise MlopsError(f"container group {name} ended in state {state} after the update")


def wait_healthy(
    client: ScoringClient,
    timeout_s: float = HEALTH_TIMEOUT_S,
    interval_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll the health route until it answers 200 (the container restarts after an update)."""
    deadline = clock() + timeout_s
    last = "no answer"
    while True:
        try:
            response = httpx.get(
                client.base_url + client.health_path,
                headers=client.auth_headers(),
                timeout=client.timeout_s,
            )
            if response.status_code == 200:
                return
            last = f"status {response.status_code}"
        except httpx.HTTPError as error:
            last = type(error).__name__
        if clock() >= deadline:
            raise MlopsError(
                f"{client.base_url} did not become healthy within {timeout_s:.0f} s ({last}); "
                "check the container group's logs in Log Analytics"
            )
        sleep(interval_s)
