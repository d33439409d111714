"""The gate outcome as files for CI: Markdown for people, JSON beside it for the next pipeline.

`--summary-file gate.md` writes `gate.md` (the run summary page) and `gate.json` (same stem):
the retrain pipeline tags its run from the JSON and the release pipeline reads the registered
version from it, so nothing downstream parses Markdown. The JSON object:

    {
      "schema": 1,                       # bumped on any incompatible change
      "passed": true,                    # the gate's decision
      "registered": "diabetes-ridge:7",  # NAME:VERSION registered by this run, else null
      "metric": "rmse",
      "candidate_score": 53.1,
      "reference_score": 54.0,
      "reference_kind": "production",    # or "baseline" (the mean predictor)
      "reference_version": "3",          # the production version compared with, else null
      "improvement": 0.9,                # positive = better, in the metric's units
      "min_improvement": 0.0,
      "reason": "candidate rmse 53.1000 beats production model v3 …"
    }

The fields after `registered` are GateDecision's, under the names of its `gate.*` tags.

The pipelines read it with `python3 -m pipelines.gate_summary registered gate.json` (standard
library only, so the agent's own python3 runs it before any environment is set up): it prints
the registered NAME:VERSION, or an empty line, and exits 1 with the reason when the file is
missing, not JSON, of another schema or incomplete.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.atomic import write_text_atomically

if TYPE_CHECKING:
    from pipelines.gate import GateDecision

SCHEMA_VERSION = 1


def json_sibling(summary_file: Path) -> Path:
    """Where the JSON twin of a Markdown summary goes: same directory and stem, `.json`."""
    return summary_file.with_suffix(".json")


def gate_record(decision: GateDecision, registered: str | None) -> dict[str, Any]:
    """The gate outcome as the JSON object described in this module's docstring."""
    fields = asdict(decision)
    return {
        "schema": SCHEMA_VERSION,
        "passed": fields.pop("passed"),
        "registered": registered,
        **fields,
    }


def gate_markdown(decision: GateDecision, registered: str | None) -> str:
    """The gate outcome as Markdown, for a CI run summary."""
    outcome = (
        f"registered as `{registered}`"
        if registered
        else ("nothing registered" if not decision.passed else "not registered yet")
    )
    return (
        f"## Gate: {decision.label}\n\n{decision.reason}.\n\n"
        f"| metric | candidate | {decision.reference_kind} | change | required |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"| {decision.metric} | {decision.candidate_score:.4f} | "
        f"{decision.reference_score:.4f} | {decision.improvement:+.4f} | "
        f"{decision.min_improvement:+g} |\n\nOutcome: {outcome}.\n"
    )


def write_gate_summary(path: Path, decision: GateDecision, registered: str | None) -> None:
    """Write the gate outcome to `path` (Markdown) and to its JSON sibling, from one decision.

    `registered` is the NAME:VERSION this run registered, or None. Each file is replaced
    atomically: a reader (or a re-run) never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: strict JSON every reader accepts (the gate never passes a NaN anyway).
    record = json.dumps(gate_record(decision, registered), indent=2, allow_nan=False)
    write_text_atomically(json_sibling(path), record + "\n")
    write_text_atomically(path, gate_markdown(decision, registered))


class GateFileError(Exception):
    """A gate.json that cannot be read as this schema."""


def registered_in(gate_json: Path) -> str | None:
    """The NAME:VERSION a gate.json records as registered by its run, or None."""
    try:
        record = json.loads(gate_json.read_text(encoding="utf-8"))
    except OSError as error:
        raise GateFileError(f"{gate_json} cannot be read: {error.strerror}") from error
    except ValueError as error:
        raise GateFileError(f"{gate_json} is not JSON ({error})") from error
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION:
        schema = record.get("schema") if isinstance(record, dict) else None
        raise GateFileError(f"{gate_json} has schema {schema}; this reader knows {SCHEMA_VERSION}")
    if "registered" not in record:
        raise GateFileError(f"{gate_json} has no 'registered' field")
    registered = record["registered"]
    if registered is not None and not isinstance(registered, str):
        raise GateFileError(f"{gate_json}: 'registered' is neither NAME:VERSION nor null")
    return registered


def main(argv: list[str] | None = None) -> int:
    """`python3 -m pipelines.gate_summary registered FILE`, for the Azure DevOps templates."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "registered":
        print("usage: python3 -m pipelines.gate_summary registered GATE_JSON", file=sys.stderr)
        return 2
    try:
        print(registered_in(Path(args[1])) or "")
    except GateFileError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
