"""The demo's closing summary: it never tells you to call a server it has just stopped."""

import pytest

from pipelines.console import console
from pipelines.demo import REPLAY, print_summary
from pipelines.gate import GateConfig, decide, reject_identical
from pipelines.lifecycle import LifecycleResult, invoke_example
from pipelines.registry import RegisteredVersion

V2 = RegisteredVersion(
    name="diabetes-ridge",
    version="2",
    run_id="r2",
    digest="0" * 64,
    source="runs:/r2/model",
    aliases=("production",),
)
ENDPOINTS = {"prod": "green: diabetes-ridge:2 at http://127.0.0.1:41315 (100%)"}
TIE = decide(GateConfig(), 53.45, 53.45, "production", "2")
IDENTICAL = LifecycleResult("run3", {"rmse": 53.45}, reject_identical(TIE, V2.ref), None, {}, False)


@pytest.fixture(autouse=True)
def uv_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the `uv run` form; tests/test_printed_commands.py covers both forms."""
    monkeypatch.setattr("pipelines.console.shutil.which", lambda name: f"/usr/bin/{name}")


def summary(capsys: pytest.CaptureFixture[str], **options) -> list[str]:
    console.width = 300
    capsys.readouterr()
    print_summary([("alpha 0.1", IDENTICAL)], ENDPOINTS, V2, **options)
    out = capsys.readouterr().out
    return [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]


def row(lines: list[str], label: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(label))


def test_stopped_endpoints_are_served_again_before_they_are_called(capsys) -> None:
    lines = summary(capsys, keep_serving=False)
    text = "\n".join(lines)
    assert "endpoints stopped at the end of the demo" in lines
    serve = row(lines, "serve production")
    assert lines[serve] == (
        "serve production make demo KEEP_SERVING=1, or uv run mlops release --stage prod "
        "--model diabetes-ridge@production"
    )
    call = row(lines, "then call it")
    assert serve < call
    assert text.count("endpoints invoke") == 1
    assert "http://127.0.0.1:41315" not in text  # a stopped server's URL is no address
    assert (
        "rejected vs v2 (rmse 53.45 on this holdout) not registered: identical to v2 (same data, "
        "parameters, code)"
    ) in text


def test_kept_endpoints_show_where_they_serve_and_how_to_call_them(capsys) -> None:
    lines = summary(capsys, keep_serving=True)
    text = "\n".join(lines)
    assert "endpoint prod green: diabetes-ridge:2 at http://127.0.0.1:41315 (100%)" in lines
    invoke = " ".join(invoke_example().split())
    assert lines[row(lines, "call it")] == f"call it uv run mlops {invoke}"
    assert "stopped" not in text and "serve production" not in text
    assert "replay from scratch" not in text


def test_a_rerun_says_how_to_replay_the_story(capsys) -> None:
    lines = summary(capsys, keep_serving=False, replay=REPLAY)
    assert (
        "this re-run diabetes-ridge:2 was already in production and no candidate replaced it"
        in (lines)
    )
    assert "replay from scratch make reset && make demo" in lines
