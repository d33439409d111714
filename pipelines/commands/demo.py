"""`mlops demo`: the guided local lifecycle that `make demo` runs (`pipelines.demo`)."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    keep_serving: Annotated[
        bool, typer.Option("--keep-serving", help="Leave the local endpoints running at the end.")
    ] = False,
) -> None:
    """The guided local lifecycle `make demo` runs: gate, register, QA, blue/green, a rejection."""
    from pipelines.demo import run_demo

    run_demo(keep_serving)
