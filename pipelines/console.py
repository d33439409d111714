"""Shared rich consoles so every command prints the same way (stderr for diagnostics).

On a terminal, output fits the terminal's width. Written to a pipe or a file (CI logs, `| less`,
`> out.txt`) there is no width to fit, and Rich's fallback of 80 columns would cut table cells
short (`producti…`, `http://127.0.0.1:5…`): there the consoles use COLUMNS when it is set,
else PIPE_WIDTH, wide enough for every table the CLI prints.
"""

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console, ConsoleDimensions

PIPE_WIDTH = 200


class _Console(Console):
    """A Console that never narrows output that is not going to a terminal to 80 columns."""

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size; PIPE_WIDTH wide when not a terminal and no width was given."""
        size = super().size
        # `_width` holds COLUMNS (read by Console at start-up) or a width set by the caller.
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console(highlight=False)
err_console = _Console(stderr=True, highlight=False)


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is below it (shorter, machine-neutral)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def other_definition() -> str:
    """The model definition this process runs when it is not the default (`make demo
    MODEL=<name>` sets MLOPS_MODEL_SPEC), else nothing."""
    from training.spec import DEFAULT_SPEC, SPEC_VARIABLE

    name = os.environ.get(SPEC_VARIABLE, "").strip()
    return "" if name == DEFAULT_SPEC else name


def model_setting() -> str:
    """`MLOPS_MODEL_SPEC=<name> ` for another definition, so that a printed command reaches
    that model's registry and endpoints; otherwise nothing."""
    from training.spec import SPEC_VARIABLE

    name = other_definition()
    return f"{SPEC_VARIABLE}={name} " if name else ""


def make_demo_command(line: str) -> str:
    """A `make … demo …` line as it replays this demo: `MODEL=<name>` for another definition."""
    name = other_definition()
    return f"{line} MODEL={name}" if name else line


def mlops_command(arguments: str) -> str:
    """`mlops ARGUMENTS` as it runs on this machine, for the follow-up commands a summary prints.

    `uv run mlops …` where uv is on PATH; otherwise the environment's own script, e.g.
    `.venv/bin/mlops …`: `make` installs uv into .tools/ when it is missing, and .tools/ is
    not on PATH, so `uv run` would fail there with "command not found".
    """
    setting = model_setting()
    if shutil.which("uv"):
        return f"{setting}uv run mlops {arguments}"
    script = Path(sys.executable).parent / "mlops"
    if script.exists():
        return f"{setting}{display_path(script)} {arguments}"
    return f"{setting}{sys.executable} -m pipelines {arguments}"


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while a step runs; a tick when it is done."""
    with console.status(f"{title}…"):
        yield
    console.print(f"[green]✓[/] {title}")
