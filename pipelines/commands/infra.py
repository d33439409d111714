"""`mlops infra …`: offline plan, security check and capacity sizing of the Pulumi stacks.

Everything here runs without Azure and without the Pulumi CLI: the Pulumi program runs
under Pulumi's unit-test mocks (`infra.tooling.recording`). The live equivalents are
`pulumi preview` (plan) and `pulumi preview --policy-pack infra/policy_pack` (policies).
Heavy imports (Pulumi, the Azure SDK, checkov) happen inside the commands so that
`mlops --help` stays fast.
"""

from __future__ import annotations

import json
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from pipelines.console import console, err_console
from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from infra.settings import Settings
    from infra.tooling.devops_recording import RecordedDevops
    from infra.tooling.plan import RecordedGraph
    from infra.tooling.recording import RecordedStack

infra_app = typer.Typer(
    help="Offline plan, security check and capacity sizing of the Pulumi stacks.",
    no_args_is_help=True,
)


class PlanFormat(StrEnum):
    """Output formats of `mlops infra plan`."""

    table = "table"
    json = "json"


def _settings(stack: str) -> Settings:
    from infra.settings import SettingsError, load_stack_settings

    try:
        return load_stack_settings(stack)
    except SettingsError as error:
        raise MlopsError(str(error)) from None


def _record(stack: str) -> RecordedStack:
    """Validate the stack file, then record the program offline."""
    _settings(stack)  # clear settings errors before Pulumi starts
    from infra.settings import SettingsError
    from infra.tooling.recording import record_stack

    try:
        return record_stack(stack)
    except SettingsError as error:
        raise MlopsError(str(error)) from None


DEVOPS_STACK = "devops"
"""The Azure DevOps stack (infra/devops): `mlops infra plan --stack devops` records it too."""


def _record_devops() -> RecordedDevops:
    """Validate the Azure DevOps stack file, then record its program offline."""
    from infra.devops.settings import DevopsSettingsError
    from infra.tooling.devops_recording import record_devops

    try:
        return record_devops()
    except DevopsSettingsError as error:
        raise MlopsError(str(error)) from None


def _stacks(stack: str | None) -> list[str]:
    from infra.settings import available_stacks

    known = available_stacks()
    if stack is None:
        return known
    if stack not in known:
        raise MlopsError(f"There is no stack '{stack}'; use one of: {', '.join(known)}.")
    return [stack]


@infra_app.command()
def plan(
    stack: str = typer.Option(
        "dev", "--stack", "-s", help="Stack to plan (dev, qa, prod, or devops: infra/devops)."
    ),
    output_format: PlanFormat = typer.Option(
        PlanFormat.table, "--format", "-f", help="table: a tree; json: type, name, inputs."
    ),
) -> None:
    """Show every resource the stack would create, offline (`pulumi preview` is the live one)."""
    from infra.tooling.plan import azure_name, key_settings, plan_json, short_type, tree_rows

    recorded: RecordedGraph
    if stack == DEVOPS_STACK:
        recorded = _record_devops()
    else:
        _stacks(stack)
        recorded = _record(stack)
    if output_format is PlanFormat.json:
        print(json.dumps(plan_json(recorded), indent=2, default=str))
        return
    root = Tree(
        f"[bold]stack {stack}[/] ({recorded.environment}, "
        f"{recorded.settings.location}): "
        f"{sum(1 for r in recorded.resources if r.custom)} resources"
    )
    branches: dict[int, Tree] = {-1: root}
    for depth, resource in tree_rows(recorded):
        if resource.is_component:
            label = f"[bold cyan]{resource.type}[/] {resource.name}"
        else:
            settings = escape(", ".join(f"{k}={v}" for k, v in key_settings(resource)))
            label = f"{short_type(resource.type)} [green]{escape(azure_name(resource))}[/]"
            if settings:
                label += f" [dim]({settings})[/]"
        branches[depth] = branches[depth - 1].add(label)
    console.print(root)
    console.print(
        "[dim]Offline plan from the Pulumi program under mocks; "
        "`pulumi preview --stack "
        f"{stack}` is the live equivalent.[/]"
    )


@infra_app.command()
def check(
    stack: str | None = typer.Option(
        None, "--stack", "-s", help="Stack to check. [default: every stack]"
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="Keep the ARM templates checkov scanned in this directory."
    ),
    show_passed: bool = typer.Option(
        False, "--show-passed", help="List passed checks too, not only the other outcomes."
    ),
) -> None:
    """Security posture: checkov on an ARM export of the graph, plus the project's policies."""
    from infra.tooling.checks import CheckovError, check_stacks

    stacks = _stacks(stack)
    recordings = {name: _record(name) for name in stacks}
    with tempfile.TemporaryDirectory(prefix="mlops-infra-check-") as scratch:
        workdir = output_dir or Path(scratch)
        try:
            reports = check_stacks(stacks, workdir, recordings)
        except CheckovError as error:
            raise MlopsError(str(error)) from None

    table = Table(title="Security checks", show_lines=False)
    for column in ("stack", "check", "resource", "result", "documented exception / note"):
        table.add_column(column)
    style = {
        "passed": "green",
        "failed": "bold red",
        "exception": "yellow",
        "not required": "dim",
    }
    for report in reports:
        for result in sorted(
            report.results, key=lambda r: (r.outcome != "failed", r.check_id, r.resource)
        ):
            if result.outcome == "passed" and not show_passed:
                continue
            note = result.note or (result.title if result.outcome == "failed" else "")
            table.add_row(
                report.stack,
                result.check_id,
                result.resource,
                f"[{style[result.outcome]}]{result.outcome}[/]",
                note,
            )
    console.print(table)
    failed = 0
    for report in reports:
        counts = report.checkov_counts()
        failed += report.count("failed")
        console.print(
            f"[bold]{report.stack}[/]: checkov passed {counts['passed']}, "
            f"failed {counts['failed']} ({counts['exceptions']} documented exceptions, "
            f"{counts['not required']} prod-only); all checks: "
            f"{report.count('passed')} passed, {report.count('failed')} failed, "
            f"{report.count('exception')} exceptions, "
            f"{report.count('not required')} not required"
        )
    if output_dir:
        console.print(f"ARM templates kept in {output_dir}")
    if failed:
        err_console.print(
            f"[bold red]{failed} check(s) failed outside the documented exceptions.[/]"
        )
        raise typer.Exit(code=1)


@infra_app.command()
def size(
    rps: float = typer.Option(..., "--rps", help="Peak requests per second to serve."),
    latency_ms: float = typer.Option(..., "--latency-ms", help="Time one request takes (ms)."),
    target_utilization: float = typer.Option(
        0.7, "--target-utilization", help="Share of capacity to use at peak, in (0, 1]."
    ),
    max_concurrent: int = typer.Option(
        1, "--max-concurrent", help="Concurrent requests one replica handles."
    ),
    stack: str = typer.Option("prod", "--stack", "-s", help="Stack whose AKS pool to size."),
    instance_type: str | None = typer.Option(
        None,
        "--instance-type",
        help="InstanceType of the deployment. "
        "[default: the stack's mlops:inference.defaultInstanceType]",
    ),
    node_vcpus: int | None = typer.Option(
        None,
        "--node-vcpus",
        help="vCPUs of a node VM. [default: from the user pool's VM size]",
    ),
    node_memory_gib: int | None = typer.Option(
        None,
        "--node-memory-gib",
        help="Memory of a node VM (GiB). [default: from the user pool's VM size]",
    ),
) -> None:
    """Replicas and nodes for a load, using Azure ML's formula, mapped onto the stack settings."""
    from infra.tooling.sizing import SizingError, SizingPlan, node_capacity, replicas

    settings = _settings(stack)
    try:
        count = replicas(rps, latency_ms, target_utilization, max_concurrent)
    except SizingError as error:
        raise MlopsError(str(error)) from None
    if not settings.aks.enabled:
        console.print(f"replicas: {count}")
        raise MlopsError(
            f"Stack {stack} has no AKS cluster to size; use --stack with an AKS stack (prod)."
        )
    inference = settings.inference
    wanted = instance_type or inference.default_instance_type
    match = [i for i in inference.instance_types if i.name == wanted]
    if not match:
        known = ", ".join(i.name for i in inference.instance_types)
        raise MlopsError(f"Stack {stack} has no instance type '{wanted}'; use one of: {known}.")
    pool = settings.aks.user_pool
    try:
        capacity = node_capacity(
            pool.vm_size,
            match[0].cpu_request,
            match[0].memory_request,
            settings.aks.max_pods,
            vcpus=node_vcpus,
            memory_gib=node_memory_gib,
        )
        sizing = SizingPlan(
            rps, latency_ms, target_utilization, max_concurrent, count, wanted, capacity,
            pool.max_count,
        )  # fmt: skip
        nodes = sizing.nodes
    except SizingError as error:
        raise MlopsError(str(error)) from None

    concurrent = rps * latency_ms / 1000
    console.print(
        f"concurrent requests = {rps:g} rps x {latency_ms / 1000:g} s = {concurrent:g}; "
        f"replicas = ceil({concurrent:g} / {target_utilization:g} / {max_concurrent}) = "
        f"[bold]{count}[/]"
    )
    console.print(f"replicas: {count}")
    console.print(
        f"one {pool.vm_size} node ({capacity.vcpus} vCPU, {capacity.memory_gib} GiB; "
        f"allocatable {capacity.allocatable_millicores}m CPU, {capacity.allocatable_mib} MiB) "
        f"holds {capacity.pods_per_node} '{wanted}' replicas "
        f"(by CPU {capacity.pods_by_cpu}, memory {capacity.pods_by_memory}, "
        f"pod limit {capacity.pods_by_limit})"
    )
    console.print(f"nodes: {nodes}")
    table = Table(title=f"Maps onto the {stack} stack and the deployment")
    for column in ("setting", "current", "suggested"):
        table.add_column(column)
    table.add_row(
        f"{settings.source}: mlops:aks.userPool.maxCount",
        str(pool.max_count),
        str(max(nodes, pool.max_count)) if not sizing.fits else f"{pool.max_count} (fits)",
    )
    table.add_row(
        f"{settings.source}: mlops:inference.defaultInstanceType",
        inference.default_instance_type,
        wanted,
    )
    table.add_row("deployment scale_settings.max_instances", "-", str(count))
    table.add_row(
        "deployment scale_settings.target_utilization_percentage",
        "-",
        str(round(target_utilization * 100)),
    )
    table.add_row(
        "deployment request_settings.max_concurrent_requests_per_instance",
        "-",
        str(max_concurrent),
    )
    console.print(table)
    if not sizing.fits:
        console.print(
            f"[yellow]{nodes} nodes exceed userPool.maxCount {pool.max_count}: raise it in "
            f"{settings.source} before releasing this load.[/]"
        )


# --- subscription prerequisites and teardown for good ---------------------------------------

CREDENTIAL_HINT = (
    "run `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET) and try again"
)


def _subscription(subscription: str | None) -> str:
    import os

    value = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID", "")
    if not value:
        raise MlopsError("No subscription given: pass --subscription or set AZURE_SUBSCRIPTION_ID.")
    return value


def _credential() -> object:
    """Azure CLI login or a service principal from the environment, checked up front."""
    import logging

    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import AzureCliCredential, ChainedTokenCredential, EnvironmentCredential

    credential = ChainedTokenCredential(EnvironmentCredential(), AzureCliCredential())
    identity_log = logging.getLogger("azure.identity")
    level = identity_log.level
    identity_log.setLevel(logging.CRITICAL)  # its multi-line report would bury our sentence
    try:
        credential.get_token("https://management.azure.com/.default")
    except ClientAuthenticationError:
        raise MlopsError(f"No Azure credentials are available: {CREDENTIAL_HINT}.") from None
    finally:
        identity_log.setLevel(level)
    return credential


@infra_app.command()
def prereqs(
    stack: str | None = typer.Option(
        None, "--stack", "-s", help="Stack whose needs to list. [default: every stack]"
    ),
    check_subscription: bool = typer.Option(
        False, "--check", help="Read each registration's state from the subscription."
    ),
    subscription: str | None = typer.Option(
        None, "--subscription", help="Subscription to check. [default: $AZURE_SUBSCRIPTION_ID]"
    ),
) -> None:
    """Resource providers and features the stacks need, and the `az` commands registering them."""
    from infra.tooling.prereqs import requirements

    needed = requirements(_settings(name) for name in _stacks(stack))
    states: dict[str, str] = {}
    if check_subscription:
        credential = _credential()
        states = _registration_states(needed, _subscription(subscription), credential)
    table = Table(title="Subscription prerequisites")
    for column in ("needs", "why", "register with") + (("state",) if states else ()):
        table.add_column(column)
    for requirement in needed:
        row = [requirement.label, requirement.why, requirement.command]
        if states:
            row.append(states[requirement.label])
        table.add_row(*row)
    console.print(table)
    missing = [r for r in needed if states and states[r.label] != "Registered"]
    if missing:
        raise MlopsError(
            f"{len(missing)} prerequisite(s) are not registered: run the commands above "
            "(features also need `az provider register` of their namespace afterwards)."
        )


def _registration_states(needed: list, subscription: str, credential: object) -> dict[str, str]:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resource.resources import ResourceManagementClient

    client = ResourceManagementClient(credential, subscription)  # type: ignore[arg-type]
    states: dict[str, str] = {}
    for requirement in needed:
        try:
            if requirement.kind == "provider":
                state = client.providers.get(requirement.namespace).registration_state
            else:
                feature = client.resources.get_by_id(
                    f"/subscriptions/{subscription}/providers/Microsoft.Features/providers/"
                    f"{requirement.namespace}/features/{requirement.feature}",
                    api_version="2021-07-01",
                )
                state = (feature.properties or {}).get("state")
        except HttpResponseError as error:
            raise MlopsError(
                f"Reading {requirement.label} failed ({error.reason}): check the subscription "
                "id and your access to it."
            ) from None
        states[requirement.label] = str(state or "unknown")
    return states


@infra_app.command()
def purge(
    stack: str = typer.Option(..., "--stack", "-s", help="Stack to tear down for good (not prod)."),
    subscription: str | None = typer.Option(
        None, "--subscription", help="Subscription of the stack. [default: $AZURE_SUBSCRIPTION_ID]"
    ),
) -> None:
    """After `pulumi destroy`: permanently delete the stack's workspace and purge its vault."""
    settings = _settings(_stacks(stack)[0])
    if settings.is_prod:
        raise MlopsError(
            f"Stack {stack} is prod, and purge never deletes prod for good; "
            "remove its locks and delete it by hand if you really mean to."
        )
    credential = _credential()
    subscription_id = _subscription(subscription)
    from infra.tooling.purge import PurgeError, purge_key_vault, purge_workspace

    try:
        console.print(purge_workspace(settings, subscription_id, credential))
        console.print(purge_key_vault(settings, subscription_id, credential))
    except PurgeError as error:
        raise MlopsError(str(error)) from None
