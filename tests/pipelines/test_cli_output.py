"""What the CLI prints: defaults in --help, whole table cells in pipes, one-line usage errors."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.commands import options
from pipelines.console import PIPE_WIDTH, _Console
from tests.conftest import run_cli

Mlops = Callable[..., tuple[int, str]]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Options with no default to show: absent means "not used", and the help says what it does.
NO_DEFAULT = {
    ("evaluate", "--summary-file"),
    ("run", "--summary-file"),
    ("pipeline run", "--summary-file"),
    ("serve", "--api-key"),  # "(default: no auth, for debugging)" in its help
    ("endpoints invoke", "--data"),
    ("endpoints invoke", "--file"),
    ("endpoints invoke", "--deployment"),
    ("infra check", "--output-dir"),
}


def commands(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf command of `mlops`, as its words."""
    command = command or typer.main.get_command(app)
    children = getattr(command, "commands", None)
    if children is None:
        yield path
        return
    for name, child in children.items():
        yield from commands(child, (*path, name))


def click_command(path: tuple[str, ...]) -> Any:
    command = typer.main.get_command(app)
    for word in path:
        command = command.commands[word]  # type: ignore[attr-defined]
    return command


def help_options(path: tuple[str, ...]) -> dict[str, str]:
    """`mlops … --help` rendered 200 columns wide: each option's help text, lines joined."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    found: dict[str, str] = {}
    current = None
    for line in ANSI.sub("", result.output).splitlines():
        if not line.startswith("│"):
            current = None
            continue
        text = line.strip("│ ")
        if text.startswith("-"):
            current = text.split()[0]
            found[current] = ""
        if current:
            found[current] = " ".join((found[current] + " " + text).split())
    return found


@pytest.mark.parametrize("path", list(commands()), ids=" ".join)
def test_help_shows_every_default(path: tuple[str, ...]) -> None:
    shown = help_options(path)
    for param in click_command(path).params:
        if param.param_type_name != "option" or param.is_flag or param.required:
            continue
        name = max(param.opts, key=len)
        if (" ".join(path), name) in NO_DEFAULT:
            continue
        assert "[default: " in shown[name], f"mlops {' '.join(path)} {name}: {shown[name]}"
        assert not re.search(r" \.( |$)", shown[name])  # a swallowed `[default: …]`


@pytest.mark.parametrize(
    ("path", "defaults"),
    [
        (("train",), ["0.5", "42", "0.2", "the bundled diabetes data", "diabetes-ridge"]),
        (("evaluate",), ["the latest training run", "rmse", "0, a tie passes", "local"]),
        (("run",), ["rmse", "0, a tie passes", "0.5", "release"]),
        (("serve",), ["8123"]),
        (("package",), ["the newest registered version", ".mlops/package/NAME-VERSION"]),
        (("infra", "check"), ["every stack"]),
    ],
)
def test_help_names_the_defaults(path: tuple[str, ...], defaults: list[str]) -> None:
    text = " ".join(help_options(path).values())
    for default in defaults:
        assert f"[default: {default}]" in text


def test_release_help_keeps_literal_brackets_from_other_modules() -> None:
    """`[default: …]` written into a help string (commands/options.py) survives Rich."""
    shown = help_options(("release",))
    assert re.search(r"diabetes-ridge@production \[default: [^\]]+\]", shown["--model"])
    assert "[default: " in shown["--report-dir"]


def test_help_defaults_are_the_real_ones() -> None:
    from pipelines.gate import GateConfig
    from training.model import TrainingConfig

    training, gate = TrainingConfig(), GateConfig()
    assert int(options.DEFAULT_SEED) == training.seed
    assert float(options.DEFAULT_TEST_SIZE) == training.test_size
    assert float(options.DEFAULT_MIN_IMPROVEMENT) == gate.min_improvement
    # The hyperparameters and the gate metric are the definition's, named in the help.
    shown = help_options(("run",))
    assert f"[default: {gate.metric}]" in shown["--metric"]
    for name, value in training.hyperparameters.items():
        assert f"{name}: " in shown["--param"] and f"[default: {value:g}]" in shown["--param"]


# -- output that is not a terminal ---------------------------------------------------------


def test_a_console_writing_to_a_pipe_is_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    assert _Console(file=io.StringIO()).width == PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "90")
    assert _Console(file=io.StringIO()).width == 90  # an explicit width is respected
    console = _Console(file=io.StringIO())
    console.width = 120
    assert console.width == 120


def piped(state_dir: Path, *args: str, columns: str | None = None) -> str:
    """`mlops …` in a child process whose stdout is a pipe, as in CI logs."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env.update({"MLOPS_STATE_DIR": str(state_dir), "TTY_COMPATIBLE": ""})
    if columns:
        env["COLUMNS"] = columns
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_tables_in_a_pipe_show_whole_values(mlops: Mlops, state_dir: Path) -> None:
    from pipelines.registry import ModelRegistry
    from pipelines.settings import load_settings

    assert mlops("run", "--no-release")[0] == 0
    settings = load_settings()
    registry = ModelRegistry(settings.tracking_uri, settings.model_name)
    version = registry.get("diabetes-ridge:1")
    registry.set_production(version)
    deployed = {
        "model": "diabetes-ridge:1", "version": "1", "digest": version.digest, "port": 54321,
        "pid": 2**22 + 1, "log_file": "serve.log", "started_at": 0.0,
    }  # fmt: skip
    settings.deployments_dir.mkdir(parents=True)
    (settings.deployments_dir / "prod.json").write_text(
        json.dumps({"name": "prod", "key": "k", "deployments": {"blue": deployed},
                    "traffic": {"blue": 100}})
    )  # fmt: skip

    models = piped(state_dir, "models", "list")
    assert "…" not in models
    assert "production" in models
    assert version.run_id[:8] in models
    assert f"{version.metrics['mae']:.4g}" in models

    endpoints = piped(state_dir, "endpoints", "list")
    assert "…" not in endpoints
    assert "http://127.0.0.1:54321" in endpoints
    assert "diabetes-ridge:1" in endpoints

    narrow = piped(state_dir, "models", "list", columns="60")  # COLUMNS is respected: folded
    assert "…" not in narrow


# -- usage errors ----------------------------------------------------------------------------


@pytest.fixture
def cli(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """The real entry point in-process: (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, *args)

    return invoke


@pytest.mark.parametrize(
    ("args", "error", "command"),
    [
        (("serve", "--port", "0"), "invalid value for '--port': ", "mlops serve"),
        (
            ("batch-score", "--input", "/missing", "--output", "out.csv"),
            "invalid value for '--input': ",
            "mlops batch-score",
        ),
        (("infra", "size", "--latency-ms", "10"), "missing option '--rps'", "mlops infra size"),
        (
            ("evaluate", "--summary-file", "x.json"),
            "invalid value for '--summary-file': x.json would be overwritten by the gate's JSON",
            "mlops evaluate",
        ),
        (("run", "--alpah", "1"), "no such option: --alpah", "mlops run"),
        (("nonsense",), "no such command 'nonsense'", "mlops"),
    ],
)
def test_usage_errors_are_one_line(
    cli: Callable[..., tuple[int, str, str]], args: tuple[str, ...], error: str, command: str
) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert out == ""
    first, hint = err.splitlines()  # no panel, no usage block
    assert first.startswith(f"error: {error}")
    assert hint == f"  see `{command} --help`"


def test_usage_error_in_a_real_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "infra", "size"],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: missing option '--rps'",
        "  see `python -m pipelines infra size --help`",
    ]


def test_no_arguments_still_show_the_help(cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = cli()
    assert code == 2
    assert "Usage: mlops" in out and "Commands" in out


def test_help_and_rejections_keep_their_exit_codes(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    assert cli("--help")[0] == 0
    assert cli("validate")[0] == 0
    assert cli("run", "--no-release")[0] == 0
    assert cli("run", "--no-release", "--min-improvement", "1000", "--fail-on-reject")[0] == 3
