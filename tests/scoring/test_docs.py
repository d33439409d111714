"""docs/scoring.md keeps up with the code it documents."""

from __future__ import annotations

import re

from pipelines.scoring_env import REPO_ROOT
from scoring import settings
from scoring.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, ERROR_STATUSES

DOC = (REPO_ROOT / "docs" / "scoring.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    for name, default, _ in settings.VARIABLES:
        row = re.search(rf"^\| `{name}` \| ([^|]+) \|", DOC, re.MULTILINE)
        assert row, f"{name} is not in the settings table"
        assert row.group(1).strip() == default


def test_every_error_status_is_in_the_error_table() -> None:
    table = DOC.split("## Errors", 1)[1].split("\n## ", 1)[0]
    statuses = {int(match) for match in re.findall(r"^\| [^|]+ \| (\d{3}) \|", table, re.M)}
    assert statuses == set(ERROR_STATUSES)


def test_documented_limits_and_commands_are_current() -> None:
    assert f"1 to {DEFAULT_MAX_ROWS} rows" in DOC
    assert f"{DEFAULT_MAX_BODY_BYTES:,} bytes" in DOC
    assert ".venv/bin/python -m scoring.openapi --bundle MODEL_DIR --dir OUT --check" in DOC
    assert ".venv/bin/python tests/benchmarks/bench_scoring.py" in DOC
