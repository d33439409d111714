"""Where collected data lives: Azure ML's data collector layout, for both targets.

`modelDataCollector/<endpoint>/<deployment>/<collection>/<yyyy>/<MM>/<dd>/<HH>/<instance_id>.jsonl`
in the workspace's default blob datastore, with the hourly rolling rate (Learn,
"how-to-collect-production-data", "Store collected data in Blob Storage"). Pure functions only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

ROOT = "modelDataCollector"
INPUTS = "model_inputs"
OUTPUTS = "model_outputs"

_HOUR = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.jsonl$")


def deployment_prefix(endpoint: str, deployment: str) -> str:
    """`modelDataCollector/<endpoint>/<deployment>/`."""
    return f"{ROOT}/{endpoint}/{deployment}/"


def collection_prefix(endpoint: str, deployment: str, collection: str) -> str:
    """`modelDataCollector/<endpoint>/<deployment>/<collection>/`."""
    return f"{deployment_prefix(endpoint, deployment)}{collection}/"


def blob_hour(name: str) -> datetime | None:
    """The UTC hour a collected file belongs to, from its path; None if it is not one."""
    match = _HOUR.search(name)
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def day_prefixes(collection: str, start: datetime, end: datetime) -> list[str]:
    """The `<collection>/<yyyy>/<MM>/<dd>/` prefixes that cover [start, end] (UTC)."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC)
    prefixes = []
    while day <= last:
        prefixes.append(f"{collection}{day:%Y/%m/%d}/")
        day += timedelta(days=1)
    return prefixes


def in_window(hour: datetime, start: datetime, end: datetime) -> bool:
    """Whether an hour folder may hold rows of [start, end]."""
    return hour + timedelta(hours=1) > start and hour <= end
