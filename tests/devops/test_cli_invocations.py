"""Every `mlops …` line of the pipelines parses with the real CLI: no unknown command or option."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from pipelines.cli import app
from tests.devops.pipeline_files import Invocation, invocations


class InvocationError(Exception):
    """The CLI refused an invocation (unknown command or option, bad value)."""


def parse(argv: list[str]) -> list[str]:
    """Parse like `mlops` would, through every group, without running anything.

    Returns the command path, e.g. ["pipeline", "run"]. Typer may bundle its own copy of
    click, so groups and errors are recognised by behaviour, not by click's classes."""
    command: Any = typer.main.get_command(app)
    try:
        context = command.make_context("mlops", list(argv), resilient_parsing=False)
        path: list[str] = []
        while hasattr(command, "resolve_command"):
            protected = getattr(context, "_protected_args", None)
            if protected is None:
                protected = context.protected_args
            args = [*protected, *context.args]
            if not args:
                raise InvocationError(f"`mlops {' '.join(path)}` needs a command")
            name, command, rest = command.resolve_command(context, args)
            path.append(name)
            context = command.make_context(name, rest, parent=context)
    except InvocationError:
        raise
    except Exception as error:
        if not hasattr(error, "format_message"):
            raise
        raise InvocationError(error.format_message()) from error
    return path


ALL = invocations()


def test_the_pipelines_call_mlops() -> None:
    commands = {" ".join(parse(i.argv)) for i in ALL}
    assert {
        "validate",
        "infra check",
        "infra plan",
        "pipeline validate",
        "pipeline publish",
        "pipeline run",
        "package",
        "release",
    } <= commands


@pytest.mark.parametrize("invocation", ALL, ids=lambda i: f"{i.file}: {i.line[:70]}")
def test_invocation_parses(invocation: Invocation) -> None:
    parse(invocation.argv)


def test_release_stages_pin_a_model_and_target_azure() -> None:
    releases = [i.argv for i in ALL if i.argv[:1] == ["release"]]
    assert sorted(argv[argv.index("--stage") + 1] for argv in releases) == ["prod", "qa"]
    for argv in releases + [i.argv for i in ALL if i.argv[:1] == ["package"]]:
        assert argv[argv.index("--target") + 1] == "azure"
        assert "--model" in argv


def test_an_unknown_option_fails() -> None:
    with pytest.raises(InvocationError, match="--canary-percent"):
        parse(["release", "--target", "azure", "--stage", "qa", "--canary-percent", "10"])


def test_an_unknown_command_fails() -> None:
    with pytest.raises(InvocationError, match="deploy"):
        parse(["pipeline", "deploy"])


def test_a_bad_choice_fails() -> None:
    with pytest.raises(InvocationError, match="cloud"):
        parse(["train", "--target", "cloud"])


def test_an_option_of_another_command_fails() -> None:
    # `pipeline publish` runs on the current stack and has no --target.
    with pytest.raises(InvocationError, match="--target"):
        parse(["pipeline", "publish", "--target", "azure"])


def test_a_missing_subcommand_fails() -> None:
    with pytest.raises(InvocationError):
        parse(["pipeline"])
