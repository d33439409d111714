"""`mlops endpoints list|invoke`: the endpoints of a target, and calling them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pipelines import connect
from pipelines.commands.options import ModelName, Target, TargetName
from pipelines.console import console
from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from pipelines.azure.client import AzureClients

endpoints_app = typer.Typer(
    help="Local or Azure endpoints: list and call them.", no_args_is_help=True
)


@endpoints_app.command("list")
def endpoints_list(model_name: ModelName = None, target: Target = TargetName.local) -> None:
    """Endpoints, their deployments (model version, port, pid, health) and traffic."""
    if target is TargetName.azure:
        azure_endpoints_list(model_name)
        return
    from pipelines.processes import process_alive
    from pipelines.targets.local import LocalTarget

    _, local = connect.serving_target(target, model_name)
    assert isinstance(local, LocalTarget)  # azure returned above
    records = local.endpoints()
    if not records:
        console.print("No endpoints are deployed; run `mlops release` (or `make demo`).")
        return
    table = Table(title="Local endpoints")
    for column in ("endpoint", "deployment", "model", "traffic", "url", "pid", "state"):
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts, a URL
    for record in records:
        for name, deployed in record.deployments.items():
            alive = process_alive(deployed.pid)
            table.add_row(
                record.name,
                name,
                deployed.model,
                f"{record.traffic.get(name, 0)}%",
                deployed.url,
                str(deployed.pid),
                "[green]running[/]" if alive else "[red]stopped[/]",
            )
    console.print(table)


def azure_endpoints_list(model_name: str | None, clients: AzureClients | None = None) -> None:
    """The qa and prod endpoints of the saved stacks: deployments, models, traffic."""
    from pipelines.targets.azure import from_environment

    _, azure = from_environment(model_name, clients)
    views = azure.endpoints()
    if not views:
        console.print("No qa or prod stack outputs are saved; see docs/azure.md.")
        return
    table = Table(title="Azure endpoints")
    for column in ("endpoint", "deployment", "model", "traffic", "url"):
        table.add_column(column, no_wrap=True)
    for view in views:
        if not view.deployments:
            table.add_row(view.name, "-", "-", "-", "no deployment yet")
        for name, deployed in view.deployments.items():
            table.add_row(
                view.name, name, deployed.model, f"{view.traffic.get(name, 0)}%", deployed.url
            )
    console.print(table)


def request_payload(data: str | None, file: Path | None) -> object:
    """The request body from --data (rows) or --file (a whole body), read and parsed."""
    if (data is None) == (file is None):
        raise MlopsError("pass exactly one of --data '[[...10 numbers...]]' or --file request.json")
    if data is not None:
        try:
            return {"data": json.loads(data)}
        except ValueError as error:
            raise MlopsError(
                f"--data is not valid JSON ({error}); pass rows like '[[0.03, 0.05, ...]]'"
            ) from error
    assert file is not None  # exactly one of the two, checked above
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise MlopsError(f"cannot read {file}: {reason}") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise MlopsError(
            f'{file} is not valid JSON ({error}); it must hold a request body like {{"data": '
            "[[...]]}"
        ) from error


@endpoints_app.command("invoke")
def endpoints_invoke(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name: qa or prod.")] = "prod",
    data: Annotated[
        str | None, typer.Option("--data", help='Rows as JSON, e.g. "[[0.03, 0.05, ...]]".')
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help='A JSON request body file ({"data": [...]}).')
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="Call one deployment directly.")
    ] = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Score rows on an endpoint (the key is sent for you and never printed)."""
    import httpx

    from pipelines.release.plan import check_endpoint
    from pipelines.targets.local import LocalTarget

    check_endpoint(endpoint)
    payload = request_payload(data, file)
    _, serving = connect.serving_target(target, model_name)
    if isinstance(serving, LocalTarget):  # a stopped server is named, not a refused connection
        client = serving.running_client(endpoint, deployment)
    else:
        client = serving.client(endpoint, deployment)
    try:
        response = client.score(payload)
    except httpx.HTTPError as error:
        raise MlopsError(
            f"endpoint {endpoint} did not answer ({error}); check `mlops endpoints list`"
        ) from error
    console.print_json(response.text) if _is_json(response.text) else console.print(response.text)
    if response.status_code >= 400:
        raise MlopsError(f"endpoint {endpoint} answered {response.status_code}", exit_code=1)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
