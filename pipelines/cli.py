"""The `mlops` command line: every lifecycle step, on the local target or Azure."""

from __future__ import annotations

import sys

import typer

from pipelines.console import err_console
from pipelines.errors import MlopsError
from pipelines.infra_commands import infra_app

app = typer.Typer(
    name="mlops",
    help="Train, gate, register, release and operate the diabetes model, locally or on Azure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(infra_app, name="infra")


def main() -> None:
    """Console entry point: turn MlopsError into one red sentence and an exit code."""
    try:
        app()
    except MlopsError as error:
        err_console.print(f"[bold red]error:[/] {error}")
        sys.exit(error.exit_code)
