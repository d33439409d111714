"""Reading collected production data: one reader for Azurite and the workspace storage.

Each line of a collected file is one payload in the data collector's schema (Learn,
"how-to-collect-production-data": `time`, `correlationid`, and the logged DataFrame's rows
under `data`). Rows are joined across `model_inputs` and `model_outputs` by their per-row
`correlationid` column (scoring/collection.py); payloads without that column get
`<payload correlationid>` or `<payload correlationid>:<row>` ids, as the scoring script makes them.

Locally the data collector's upload is played by `mirror_local_capture`: the inference servers
write the layout under `<state>/collected/`, and the files are copied to Azurite under the same
names before anything reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.datastore import layout
from pipelines.errors import MlopsError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.datastore.store import BlobStore

CORRELATION_COLUMN = "correlationid"  # as scoring.collection.CORRELATION_COLUMN
TIME_COLUMN = "time"
_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Window:
    """A time range of production data, in UTC."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """`2026-12-01 20:00 → 2026-12-01 21:00 UTC`."""
        return f"{self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M} UTC"

    def as_dict(self) -> dict[str, str]:
        """ISO 8601 start and end."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def parse_window(text: str, now: datetime | None = None) -> Window:
    """`90m`, `24h` or `7d`: that much time up to now."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise MlopsError(
            f"--window {text!r} is not a duration; use a positive number of minutes, hours or "
            "days, e.g. 90m, 24h or 7d"
        )
    end = (now or datetime.now(UTC)).astimezone(UTC)
    span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return Window(end - span, end)


def payload_rows(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rows of one collected payload, each with its correlation id and the payload's time."""
    rows = line.get("data")
    if not isinstance(rows, list):
        return
    payload_id = str(line.get("correlationid", ""))
    stamp = str(line.get("time", ""))
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        fallback = payload_id if len(rows) == 1 else f"{payload_id}:{index}"
        yield {**row, CORRELATION_COLUMN: str(row.get(CORRELATION_COLUMN) or fallback),
               TIME_COLUMN: stamp}  # fmt: skip


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def read_collection(
    store: BlobStore, endpoint: str, deployment: str, collection: str, window: Window
) -> list[dict[str, Any]]:
    """Every row of one collection logged within the window."""
    base = layout.collection_prefix(endpoint, deployment, collection)
    rows: list[dict[str, Any]] = []
    for prefix in layout.day_prefixes(base, window.start, window.end):
        for blob in store.list(prefix):
            hour = layout.blob_hour(blob.name)
            if hour is None or not layout.in_window(hour, window.start, window.end):
                continue
            for text in store.read(blob.name).decode("utf-8", "replace").splitlines():
                try:
                    line = json.loads(text)
                except ValueError:
                    continue  # a torn last line of a file still being written
                stamp = _parse_time(str(line.get("time", "")))
                if stamp is None or not window.start <= stamp <= window.end:
                    continue
                rows.extend(payload_rows(line))
    return rows


def collection_frame(
    store: BlobStore,
    endpoint: str,
    deployment: str,
    collection: str,
    window: Window,
    columns: list[str],
) -> pd.DataFrame:
    """One collection's rows in the window: correlation id, time, then `columns`.

    A column missing from a row is NaN; a value that is not a number stays as logged (the data
    quality check counts both).
    """
    import pandas as pd

    rows = read_collection(store, endpoint, deployment, collection, window)
    return pd.DataFrame(rows).reindex(columns=[CORRELATION_COLUMN, TIME_COLUMN, *columns])


def mirror_local_capture(root: Path, store: BlobStore) -> int:
    """Copy the local capture files (the collector layout under `root`) to the blob store.

    What the data collector does on Azure: a file is uploaded when the store lacks it or holds a
    shorter copy (files grow while a server appends). Returns how many files were copied.
    """
    base = root / layout.ROOT
    if not base.is_dir():
        return 0
    known = {blob.name: blob.size for blob in store.list(f"{layout.ROOT}/")}
    copied = 0
    for path in sorted(base.rglob("*.jsonl")):
        name = path.relative_to(root).as_posix()
        content = path.read_bytes()
        # Only whole lines: a server may be appending the last one right now.
        content = content[: content.rfind(b"\n") + 1]
        if content and known.get(name) != len(content):
            store.write(name, content, overwrite=True)
            copied += 1
    return copied
