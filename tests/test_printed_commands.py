"""Every command the README, the docs and the summaries print works as printed.

After `make demo` a fresh machine has `.venv/` but not necessarily `uv` on PATH: `make`
installs uv into `.tools/` when it is missing, and `.tools/` is not on PATH. So the docs print
`.venv/bin/…` commands, and the summaries print `uv run mlops …` only where uv is on PATH.
Each printed command is checked as a shell would run it, with a PATH that holds no uv: the
program exists, a `make` target exists (`make -n`), the `mlops` arguments parse with the real
CLI (Azure commands included: parsing needs no subscription), and the local read-only ones run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from pipelines import demo
from pipelines.cli import app
from pipelines.console import mlops_command
from pipelines.lifecycle import invoke_example
from pipelines.registry import RegisteredVersion

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^[ \t]*```\w*\n(.*?)^[ \t]*```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")  # inline code may wrap across lines
# What starts a command this project prints; other lines of a code block are output, HTTP or
# JSON, or commands of tools the Azure setup installs (pulumi, az, curl): not ours to run.
OURS = re.compile(r"^(\.venv/bin/\S+|uv|make|mlops|python3?)(\s|$)")
# What a CI template runs after installing uv itself: described, not for you to type.
CI_ONLY = {("azure-devops.md", "uv sync --frozen")}
# Read-only local commands, cheap enough to run for real (the rest are parsed).
RUN = [("models", "list"), ("endpoints", "list"), ("infra", "size"), ("--help",)]


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for every command line of the README's and the docs' code."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in FENCE.findall(text):
            for line in block.replace("\\\n", " ").splitlines():
                if OURS.match(line.strip()):
                    found.append((doc.name, line.strip()))
        for span in (" ".join(span.split()) for span in INLINE.findall(FENCE.sub("", text))):
            # `mlops X` in prose names a command; a lone word (`uv`, `make`) names a tool, and
            # `.venv/bin/mlops …` the form of every command
            names = span.startswith(("mlops ", "python")) or span.split()[1:] in ([], ["…"])
            if OURS.match(span) and not names and (doc.name, span) not in CI_ONLY:
                found.append((doc.name, span))
    return found


def split(command: str) -> list[list[str]]:
    """The simple commands of a command line (`a && b`), comments dropped."""
    words = shlex.split(command, comments=True)
    parts: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", "||", ";"):
            parts.append([])
        else:
            parts[-1].append(word)
    return [part for part in parts if part]


def parse_mlops(arguments: list[str]) -> None:
    """Parse with the real CLI, as `mlops` would before running anything."""
    command = typer.main.get_command(app)
    rest = list(arguments)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"no command {name!r}"
        command = command.commands[name]
    if "--help" not in rest:
        command.make_context("mlops", rest)


def no_uv_path(tmp_path: Path) -> str:
    """A PATH with make and the shell but without uv, as after make installed uv into .tools/."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("make", "bash", "sh", "env", "python3", "rm", "grep", "awk"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def check(command: str, tmp_path: Path) -> None:
    """One printed command line, checked as a shell without uv would run it."""
    for words in split(command):
        program, arguments = words[0], words[1:]
        assert program not in ("uv", "mlops"), (
            f"`{command}` needs {program} on PATH, which make does not provide; print "
            "`.venv/bin/mlops …`"
        )
        if program == "make":
            targets = [word for word in arguments if "=" not in word]
            result = subprocess.run(
                ["make", "-n", "-C", str(ROOT), *targets],
                capture_output=True,
                text=True,
                env={**os.environ, "PATH": no_uv_path(tmp_path)},
                check=False,
            )
            assert result.returncode == 0, f"`{command}`: {result.stderr}"
            continue
        assert (ROOT / program).exists(), f"`{command}`: {program} does not exist after make"
        if program == ".venv/bin/mlops":
            parse_mlops(arguments)
        elif program == ".venv/bin/python" and arguments[:1] == ["-m"]:
            module = arguments[1]
            assert (ROOT / module.replace(".", "/")).with_suffix(".py").exists(), command
        elif program == ".venv/bin/python":
            assert (ROOT / arguments[0]).exists(), command


@pytest.mark.parametrize(("where", "command"), documented_commands())
def test_documented_command_works_as_printed(where: str, command: str, tmp_path: Path) -> None:
    check(command, tmp_path)


def test_the_docs_print_commands() -> None:
    """The extraction finds what it should: a check over nothing would pass for nothing."""
    commands = [command for _, command in documented_commands()]
    assert len(commands) > 20
    assert any(command.startswith(".venv/bin/mlops infra plan") for command in commands)
    assert "make demo" in commands


def test_a_uv_command_in_the_docs_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="needs uv on PATH"):
        check("uv run mlops models list", tmp_path)
    with pytest.raises(AssertionError, match="no command 'modles'"):
        check(".venv/bin/mlops modles list", tmp_path)
    with pytest.raises(typer.BadParameter.__mro__[1]):  # click's UsageError
        check(".venv/bin/mlops run --alpah 1", tmp_path)
    with pytest.raises(AssertionError, match="make"):
        check("make no-such-target", tmp_path)


V2 = RegisteredVersion("diabetes-ridge", "2", "r2", "0" * 64, "runs:/r2/model", ("production",))


def summary_commands(monkeypatch: pytest.MonkeyPatch, path: str) -> list[str]:
    """Every command the demo's and `mlops run`'s summaries print, with this PATH."""
    monkeypatch.setenv("PATH", path)
    commands = [mlops_command(invoke_example())]
    for keep_serving in (True, False):
        for _, text, runnable in demo.follow_ups(V2, keep_serving=keep_serving, replay=demo.REPLAY):
            assert all(command in text for command in runnable)
            commands.extend(runnable)
    return commands


def test_summaries_print_the_venv_form_without_uv(monkeypatch, tmp_path: Path) -> None:
    commands = summary_commands(monkeypatch, no_uv_path(tmp_path))
    assert not any(command.startswith("uv ") for command in commands)
    for command in commands:
        check(command, tmp_path)


def test_summaries_print_uv_run_where_uv_is_on_path(monkeypatch, tmp_path: Path) -> None:
    fake_uv = tmp_path / "with-uv" / "uv"
    fake_uv.parent.mkdir()
    fake_uv.write_text("#!/bin/sh\n")
    fake_uv.chmod(0o755)
    commands = summary_commands(monkeypatch, f"{fake_uv.parent}:{no_uv_path(tmp_path)}")
    assert mlops_command("models list") == "uv run mlops models list"
    assert f"uv run mlops {invoke_example()}" in commands


@pytest.mark.parametrize("arguments", RUN, ids=" ".join)
def test_read_only_printed_commands_run(arguments: tuple[str, ...], tmp_path: Path) -> None:
    printed = [
        words
        for _, command in documented_commands()
        for words in split(command)
        if words[0] == ".venv/bin/mlops" and tuple(words[1 : 1 + len(arguments)]) == arguments
    ] or [[".venv/bin/mlops", *arguments]]
    for words in printed:
        result = subprocess.run(
            words,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PATH": no_uv_path(tmp_path), "MLOPS_STATE_DIR": str(tmp_path)},
            check=False,
        )
        assert result.returncode == 0, f"{shlex.join(words)}: {result.stderr}"


def test_summaries_of_another_definition_name_it(monkeypatch, tmp_path: Path) -> None:
    """`make demo MODEL=breast-cancer` prints commands that reach that model, not the default."""
    monkeypatch.setenv("PATH", no_uv_path(tmp_path))
    monkeypatch.setenv("MLOPS_MODEL_SPEC", "breast-cancer")
    rows = demo.follow_ups(V2, keep_serving=False, replay=demo.REPLAY)
    commands = [command for _, _, runnable in rows for command in runnable]
    mlops = [c for c in commands if "mlops " in c]
    assert mlops and all(c.startswith("MLOPS_MODEL_SPEC=breast-cancer ") for c in mlops)
    assert "make demo KEEP_SERVING=1 MODEL=breast-cancer" in commands
    monkeypatch.setenv("MLOPS_MODEL_SPEC", "diabetes")  # the default needs no setting
    assert mlops_command("models list").endswith("/mlops models list")
    assert "MLOPS_MODEL_SPEC" not in mlops_command("models list")
