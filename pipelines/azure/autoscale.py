"""Autoscale of a managed online deployment: an Azure Monitor autoscale setting on it.

Managed deployments take `DefaultScaleSettings` only (design note §5); their autoscale is
Azure Monitor's (Learn, "Autoscale an online endpoint", how-to-autoscale-endpoints: the
setting's `target_resource_uri` is the deployment's ARM id, rules on its
`CpuUtilizationPercentage`). The release creates the blue/green deployments, so the release
owns their autoscale settings too: one per deployment, written right after the deployment is
healthy and deleted with it. Infra cannot own them (Pulumi never sees the deployments).

The setting is sent as the REST body of "Autoscale Settings - Create Or Update" (Learn REST
reference, Microsoft.Insights/autoscalesettings, api-version 2022-10-01) with `az rest`: a PUT,
so applying it again is an update, never a duplicate. The caller needs
`microsoft.insights/autoscalesettings/write` (the page's prerequisites).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from infra.outputs import StackOutputs
    from pipelines.azure.client import AzureClients
    from pipelines.azure.entities import ScalePlan

API_VERSION = "2022-10-01"
CPU_METRIC = "CpuUtilizationPercentage"  # a deployment metric (how-to-monitor-online-endpoints)
# Learn's worked example: out by 2 above 70 % for 5 minutes, in by 1 below 30 %.
SCALE_IN_BELOW_PERCENT = 30


def check_plan(plan: ScalePlan) -> ScalePlan:
    """A scale plan usable as an autoscale setting: its scale-out threshold above the scale-in
    one (the floor, ceiling and target are `ScalePlan`'s own checks)."""
    if plan.target_utilization_percentage <= SCALE_IN_BELOW_PERCENT:
        raise MlopsError(
            f"the scale-out threshold must be above {SCALE_IN_BELOW_PERCENT} %, got "
            f"{plan.target_utilization_percentage}"
        )
    return plan


def deployment_id(outputs: StackOutputs, deployment: str) -> str:
    """ARM id of a deployment of the stack's online endpoint."""
    return (
        f"/subscriptions/{outputs.subscription_id}/resourceGroups/{outputs.resource_group}"
        "/providers/Microsoft.MachineLearningServices/workspaces/"
        f"{outputs.workspace_name}/onlineEndpoints/{outputs.online_endpoint_name}"
        f"/deployments/{deployment}"
    )


def setting_name(outputs: StackOutputs, deployment: str) -> str:
    """One setting per deployment, named after it (Learn names it autoscale-<endpoint>-<slot>)."""
    return f"autoscale-{outputs.online_endpoint_name}-{deployment}"


def setting_url(outputs: StackOutputs, deployment: str) -> str:
    """The setting's ARM URL, with the API version."""
    return (
        f"https://management.azure.com/subscriptions/{outputs.subscription_id}/resourceGroups/"
        f"{outputs.resource_group}/providers/Microsoft.Insights/autoscalesettings/"
        f"{setting_name(outputs, deployment)}?api-version={API_VERSION}"
    )


def _cpu_rule(target: str, operator: str, threshold: int, direction: str, by: int) -> Any:
    return {
        "metricTrigger": {
            "metricName": CPU_METRIC,
            "metricResourceUri": target,
            "timeGrain": "PT1M",
            "statistic": "Average",
            "timeWindow": "PT5M",
            "timeAggregation": "Average",
            "operator": operator,
            "threshold": threshold,
        },
        "scaleAction": {
            "direction": direction,
            "type": "ChangeCount",
            "value": str(by),
            "cooldown": "PT5M",
        },
    }


def setting_body(
    outputs: StackOutputs, deployment: str, plan: ScalePlan, tags: dict[str, str]
) -> dict[str, Any]:
    """The autoscale setting's REST body: capacity from the plan, CPU rules out and in."""
    check_plan(plan)
    target = deployment_id(outputs, deployment)
    name = setting_name(outputs, deployment)
    return {
        "location": outputs.location,
        "tags": tags,
        "properties": {
            "name": name,
            "enabled": True,
            "targetResourceUri": target,
            "profiles": [
                {
                    "name": "cpu",
                    "capacity": {
                        "minimum": str(plan.min_instances),
                        "maximum": str(plan.max_instances),
                        "default": str(plan.min_instances),
                    },
                    "rules": [
                        _cpu_rule(
                            target, "GreaterThan", plan.target_utilization_percentage, "Increase", 2
                        ),
                        _cpu_rule(target, "LessThan", SCALE_IN_BELOW_PERCENT, "Decrease", 1),
                    ],
                }
            ],
        },
    }


def apply(
    clients: AzureClients, outputs: StackOutputs, deployment: str, body: dict[str, Any]
) -> None:
    """Create or update the deployment's autoscale setting."""
    import json

    status = clients.az(
        "rest", "--method", "put",
        "--url", setting_url(outputs, deployment),
        "--body", json.dumps(body),
        "--output", "none",
    )  # fmt: skip
    if status != 0:
        raise MlopsError(
            f"the autoscale setting {setting_name(outputs, deployment)} could not be written "
            f"(exit code {status}); the identity needs microsoft.insights/autoscalesettings/write "
            f"on resource group {outputs.resource_group}"
        )


def delete(clients: AzureClients, outputs: StackOutputs, deployment: str) -> None:
    """Delete the deployment's autoscale setting (a missing one is fine: ARM answers 204)."""
    status = clients.az(
        "rest", "--method", "delete",
        "--url", setting_url(outputs, deployment),
        "--output", "none",
    )  # fmt: skip
    if status != 0:
        raise MlopsError(
            f"the autoscale setting {setting_name(outputs, deployment)} could not be deleted "
            f"(exit code {status}); delete it in the portal (Monitor, Autoscale)"
        )
