"""The gate outcome files for CI: Markdown for the run summary, JSON beside it for pipelines."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from pipelines.gate import GateConfig, GateDecision, decide
from pipelines.gate_summary import (
    SCHEMA_VERSION,
    GateFileError,
    gate_record,
    json_sibling,
    main,
    registered_in,
    write_gate_summary,
)

PASSED = decide(GateConfig(), candidate_score=53.1, reference_score=54.0,
                reference_kind="production", reference_version="3")  # fmt: skip
REJECTED = decide(GateConfig(min_improvement=5), candidate_score=60.2, reference_score=55.5,
                  reference_kind="baseline")  # fmt: skip


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _decision_from(record: dict[str, Any]) -> GateDecision:
    return GateDecision(**{field.name: record[field.name] for field in fields(GateDecision)})


@pytest.mark.parametrize(
    ("decision", "registered"),
    [(PASSED, "diabetes-ridge:7"), (REJECTED, None), (PASSED, None)],
    ids=["registered", "rejected", "passed-not-registered-yet"],
)
def test_the_json_round_trips(tmp_path: Path, decision: GateDecision, registered: str) -> None:
    summary = tmp_path / "ci" / "gate.md"
    write_gate_summary(summary, decision, registered)
    record = _strict_json((tmp_path / "ci" / "gate.json").read_text())
    assert record["schema"] == SCHEMA_VERSION == 1
    assert record["passed"] is decision.passed
    assert record["registered"] == registered
    assert _decision_from(record) == decision
    assert set(record) == {"schema", "registered"} | {f.name for f in fields(GateDecision)}
    assert record == gate_record(decision, registered)
    # The Markdown is written from the same decision.
    markdown = summary.read_text()
    assert markdown.startswith(f"## Gate: {decision.label}\n")
    assert decision.reason in markdown
    assert sorted(p.name for p in summary.parent.iterdir()) == ["gate.json", "gate.md"]


def test_a_registered_outcome(tmp_path: Path) -> None:
    write_gate_summary(tmp_path / "gate.md", PASSED, "diabetes-ridge:7")
    record = json.loads((tmp_path / "gate.json").read_text())
    assert record["passed"] is True and record["registered"] == "diabetes-ridge:7"
    assert record["reference_kind"] == "production" and record["reference_version"] == "3"
    assert math.isclose(record["candidate_score"], 53.1)
    assert math.isclose(record["improvement"], 0.9)
    assert "Outcome: registered as `diabetes-ridge:7`." in (tmp_path / "gate.md").read_text()


def test_a_rejected_outcome(tmp_path: Path) -> None:
    write_gate_summary(tmp_path / "gate.md", REJECTED, None)
    record = json.loads((tmp_path / "gate.json").read_text())
    assert record["passed"] is False and record["registered"] is None
    assert record["reference_kind"] == "baseline" and record["reference_version"] is None
    assert record["min_improvement"] == 5
    assert record["reason"] == REJECTED.reason
    assert "Outcome: nothing registered." in (tmp_path / "gate.md").read_text()


def test_the_sibling_has_the_same_stem() -> None:
    assert json_sibling(Path("out/gate.md")) == Path("out/gate.json")
    assert json_sibling(Path("out/summary")) == Path("out/summary.json")
    assert json_sibling(Path("out/gate.json")) == Path("out/gate.json")  # refused by the CLI


def test_a_rewrite_replaces_both_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    summary = tmp_path / "gate.md"
    write_gate_summary(summary, PASSED, "diabetes-ridge:7")
    write_gate_summary(summary, REJECTED, None)
    assert json.loads(json_sibling(summary).read_text())["registered"] is None
    assert summary.read_text().startswith("## Gate: rejected")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.json", "gate.md"]


def test_a_failed_write_leaves_the_previous_outcome_whole(tmp_path: Path) -> None:
    summary = tmp_path / "gate.md"
    write_gate_summary(summary, PASSED, "diabetes-ridge:7")
    before = summary.read_text(), json_sibling(summary).read_text()
    broken = replace(REJECTED, improvement=math.nan)  # never valid JSON
    with pytest.raises(ValueError, match="JSON"):
        write_gate_summary(summary, broken, None)
    assert (summary.read_text(), json_sibling(summary).read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.json", "gate.md"]


def test_an_interrupted_rename_leaves_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "gate.md"
    write_gate_summary(summary, PASSED, "diabetes-ridge:7")
    before = json_sibling(summary).read_text()

    def interrupted(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("pipelines.atomic.os.replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        write_gate_summary(summary, REJECTED, None)
    assert json_sibling(summary).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.json", "gate.md"]


@pytest.mark.parametrize("registered", ["diabetes-ridge:7", None])
def test_the_reader_returns_what_the_writer_recorded(
    tmp_path: Path, registered: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_gate_summary(tmp_path / "gate.md", PASSED, registered)
    assert registered_in(tmp_path / "gate.json") == registered
    assert main(["registered", str(tmp_path / "gate.json")]) == 0
    assert capsys.readouterr().out == f"{registered or ''}\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1]", "schema None"),
        ('{"schema": 1, "registered": 7}', "neither NAME:VERSION nor null"),
    ],
)
def test_the_reader_refuses_what_it_cannot_trust(
    tmp_path: Path, content: str, problem: str
) -> None:
    gate = tmp_path / "gate.json"
    gate.write_text(content)
    with pytest.raises(GateFileError, match=problem):
        registered_in(gate)


def test_the_reader_needs_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err
