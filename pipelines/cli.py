"""The `mlops` command line: the root group, its error style, and where each command hangs.

The commands themselves are thin modules in `pipelines.commands`, one per group, over the
lifecycle (`pipelines.lifecycle`).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Sequence
from typing import Any

import typer
import typer.core
from rich.markup import escape

from pipelines.commands import (
    batch,
    endpoints,
    infra,
    models,
    monitor,
    package,
    pipeline,
    training,
)
from pipelines.commands import demo as demo_command
from pipelines.commands import release as release_commands
from pipelines.commands import serve as serve_commands
from pipelines.console import err_console
from pipelines.errors import MlopsError

# Click's exceptions, from the Click that Typer uses (recent Typers ship their own copy).
_click_errors = sys.modules[typer.BadParameter.__module__]


def print_error(message: str, details: Sequence[str] = (), hint: str | None = None) -> None:
    """The CLI's error style on stderr: the details, then `error: <one sentence>` on one line."""
    for detail in details:
        err_console.print(f"  [red]✗[/] {escape(detail)}", soft_wrap=True)
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"  [dim]{escape(hint)}[/]", soft_wrap=True)


def _sentence(message: str) -> str:
    """Click's message as one line in the CLI's style: lower-case start, no final period."""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text.removesuffix(".")


def _plain_help(command: Any) -> None:
    """Help text is plain text: escape what Rich markup would swallow, e.g. `[default: …]`."""
    if typer.core.HAS_RICH and getattr(command, "rich_markup_mode", None) == "rich":
        for name in ("help", "short_help", "epilog"):
            if getattr(command, name, None):
                setattr(command, name, escape(getattr(command, name)))
        for param in command.params:
            if getattr(param, "help", None):
                param.help = escape(param.help)
    for subcommand in getattr(command, "commands", {}).values():
        _plain_help(subcommand)


class MlopsGroup(typer.core.TyperGroup):
    """The `mlops` command: literal help text everywhere, usage errors on one line.

    Every command and sub-app hangs below this group, so one pass over the tree covers all
    of them, including the options defined in other modules.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_help(self)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main; in standalone mode a usage error is `error: …` instead of a panel."""
        arguments: dict[str, Any] = {
            "args": args,
            "prog_name": prog_name,
            "complete_var": complete_var,
            "standalone_mode": False,
            "windows_expand_args": windows_expand_args,
            **extra,
        }
        if not standalone_mode:
            return super().main(**arguments)
        try:
            code = super().main(**arguments)
        except _click_errors.ClickException as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # `mlops` alone: the help, shown
                if error.format_message():  # already, unless Rich is off
                    error.show()
                sys.exit(error.exit_code)
            context = getattr(error, "ctx", None)
            hint = f"see `{context.command_path} --help`" if context is not None else None
            print_error(_sentence(error.format_message()), hint=hint)
            sys.exit(error.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="mlops",
    help="Train, gate, register, release and operate the model (MLOPS_MODEL_SPEC selects its "
    "definition), locally or on Azure.",
    cls=MlopsGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Python's cyclic garbage collector runs a young-generation pass every 700 new container
# objects (the default of gc.set_threshold, docs.python.org/3/library/gc.html). Importing MLflow,
# scikit-learn and SQLAlchemy creates millions of them, none garbage: at the default, those
# passes cost ~10% of `mlops train`. A young generation of 10,000 objects keeps collecting
# cycles, with a few MB more held at most.
GC_YOUNG_THRESHOLD = 10_000
# Even so, the full collections that the growing heap triggers scan everything imported so far,
# again and again while a command imports its SDKs: ~0.35 s of `mlops train`, a quarter of
# what it spends over its import floor (docs/performance.md). So the collector is off for a
# command's first seconds, the imports, and back on after GC_DEFERRED_S for commands that run
# longer; a short command ends before then.
GC_DEFERRED_S = 5.0


def defer_cycle_collection(seconds: float = GC_DEFERRED_S) -> threading.Timer | None:
    """Switch the cyclic collector off now and back on after `seconds` (if it was on)."""
    if not gc.isenabled():
        return None
    gc.disable()
    timer = threading.Timer(seconds, gc.enable)
    timer.daemon = True  # never keeps a finished command alive
    timer.start()
    return timer


def main() -> None:
    """Console entry point: turn MlopsError into one red sentence and an exit code."""
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    defer_cycle_collection()
    from training.spec import SpecError

    try:
        app()
    except MlopsError as error:
        print_error(str(error), error.details)
        sys.exit(error.exit_code)
    except SpecError as error:  # MLOPS_MODEL_SPEC or a definition is not usable
        print_error(str(error))
        sys.exit(2)


# The order of `mlops --help`: the lifecycle steps, then serving and operations.
app.command("validate")(training.validate)
app.command("profile")(training.profile)
app.command("train")(training.train)
app.command("evaluate")(training.evaluate)
app.command("register")(training.register)
app.command("run")(training.run)
app.command("demo")(demo_command.demo)
app.command("package")(package.package_command)
app.command("release")(release_commands.release_command)
app.command("serve")(serve_commands.serve_command)
app.add_typer(endpoints.endpoints_app, name="endpoints")
app.command("batch-score")(batch.batch_score_command)
app.command("teardown")(release_commands.teardown_command)
app.command("monitor")(monitor.monitor_command)
app.command("feedback")(monitor.feedback_command)
app.command("event")(monitor.event_command)
app.add_typer(models.models_app, name="models")
app.add_typer(infra.infra_app, name="infra")
app.add_typer(pipeline.pipeline_app, name="pipeline")
