"""Commands import only what they use: no SDK on `--help`, none on `mlops infra size`.

A test on imported modules, not on time (the time is `make bench`'s): each case runs in a fresh
interpreter through the installed `mlops` entry point and reports which heavy packages it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pipelines.scoring_env import REPO_ROOT

# numpy too: every command reads the model definition for its help texts, and numpy costs about
# 0.1 s of the 0.5 s start-up budget (training/metrics.py imports it when a metric is computed).
SDKS = ("pulumi", "azure.ai.ml", "mlflow", "sklearn", "pandas", "numpy")

PROBE = textwrap.dedent(
    """
    import json, sys
    from importlib.metadata import entry_points
    from unittest.mock import patch

    import typer.main

    main = entry_points(group="console_scripts")["mlops"].load()
    SDKS = {sdks!r}

    def run(args):
        with patch.object(sys, "argv", ["mlops", *args]):
            try:
                main()
            except SystemExit:
                pass

    def walk(command, path):
        yield path
        for name, sub in sorted(getattr(command, "commands", {{}}).items()):
            yield from walk(sub, [*path, name])

    first = {{}}  # SDK -> the first command that imported it
    if {every_help!r}:
        from pipelines import cli

        cases = [[*path, "--help"] for path in walk(typer.main.get_command(cli.app), [])]
    else:
        cases = [{args!r}]
    for args in cases:
        run(args)
        for sdk in SDKS:
            if sdk in sys.modules and sdk not in first:
                first[sdk] = " ".join(args)
    print(json.dumps({{"cases": len(cases), "imported": first}}))
    """
)


def probe(args: list[str] | None, tmp_path) -> dict[str, object]:
    script = PROBE.format(sdks=SDKS, every_help=args is None, args=args or [])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "MLOPS_STATE_DIR": str(tmp_path / "state")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_help_of_every_command_imports_no_sdk(tmp_path) -> None:
    report = probe(None, tmp_path)
    assert report["cases"] > 20  # mlops --help and every command's and group's --help
    assert report["imported"] == {}


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["infra", "size", "--rps", "100", "--latency-ms", "20"],
        ["batch-score", "--input", "missing-folder", "--output", "out.csv"],
    ],
    ids=["help", "infra size", "batch-score usage error"],
)
def test_commands_that_need_no_sdk_import_none(args: list[str], tmp_path) -> None:
    assert probe(args, tmp_path)["imported"] == {}


def test_the_probe_sees_an_sdk_import(tmp_path) -> None:
    """The check can fail: `mlops validate` reads the bundled data with pandas and sklearn."""
    imported = probe(["validate"], tmp_path)["imported"]
    assert set(imported) >= {"pandas", "sklearn"}  # type: ignore[arg-type]


GC_CHECK = textwrap.dedent(
    """
    import gc

    from pipelines.cli import defer_cycle_collection

    assert gc.isenabled()
    timer = defer_cycle_collection(0.05)
    assert timer is not None and not gc.isenabled()
    timer.join(10)
    assert gc.isenabled()
    gc.disable()  # a collector someone switched off stays off
    assert defer_cycle_collection(0.05) is None
    assert not gc.isenabled()
    print("checked")
    """
)


def test_the_cycle_collector_is_off_while_a_command_starts_and_on_again_after() -> None:
    # A fresh interpreter: the test process's collector is whatever earlier tests' libraries
    # left it (some switch it off for a while), which this check must not depend on.
    result = subprocess.run(
        [sys.executable, "-c", GC_CHECK], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "checked"
