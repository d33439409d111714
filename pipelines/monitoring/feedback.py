"""`mlops feedback --labels FILE`: ground truth, arriving after the predictions, joined with the
collected inputs into a new versioned training data set.

The labels file is a CSV with an id column (`correlationid`, or `request_id`) and `target`. The
id is the row's correlation id as collected (scoring/collection.py): the request id of a one-row
request, `<request id>:<row>` for a request with several rows. Every row is checked before
anything is written: an unknown id, a repeated id or a target that is not a finite number stops
the command with one sentence naming the first bad line, and nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.datastore import layout
from pipelines.datastore.collected import Window
from pipelines.datastore.datasets import DataSetRef, feedback_name, write_version
from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from pipelines.monitoring.monitor import ProductionData

ID_COLUMNS = ("correlationid", "request_id")
TARGET = "target"  # training.data.TARGET


@dataclass(frozen=True)
class Feedback:
    """What `mlops feedback` wrote."""

    ref: DataSetRef
    lineage: dict[str, Any]


def read_labels(path: Path) -> pd.DataFrame:
    """The labels file as (id, target) strings, exactly as written."""
    if not path.is_file():
        raise MlopsError(f"labels file {path} does not exist; pass a CSV with correlationid,target")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        first = str(error).strip().splitlines()[0]
        raise MlopsError(f"labels file {path} is not a readable CSV ({first})") from error
    id_column = next((name for name in ID_COLUMNS if name in table.columns), None)
    if id_column is None or TARGET not in table.columns:
        raise MlopsError(
            f"labels file {path} has columns {', '.join(table.columns) or '(none)'}; it needs an "
            f"id column ({' or '.join(ID_COLUMNS)}) and {TARGET}"
        )
    if table.empty:
        raise MlopsError(f"labels file {path} has no rows; nothing was written")
    return table.rename(columns={id_column: "correlationid"})[["correlationid", TARGET]]


def check_labels(labels: pd.DataFrame, known: pd.Series, path: Path) -> pd.DataFrame:
    """Labels with float targets; the first bad line (unknown, repeated, not a number) raises.

    `known` counts the collected rows per correlation id in the window. Line numbers count the
    header as line 1, as an editor shows them.
    """
    first_seen: dict[str, int] = {}
    targets = []
    for index, (raw_id, raw_target) in enumerate(labels.itertuples(index=False, name=None)):
        line = index + 2
        row_id = str(raw_id).strip()
        where = f"labels file {path} line {line}"
        if row_id in first_seen:
            raise MlopsError(
                f"{where}: id {row_id!r} repeats line {first_seen[row_id]}; give each collected "
                "row one label; nothing was written"
            )
        first_seen[row_id] = line
        matches = int(known.get(row_id, 0))
        if matches == 0:
            raise MlopsError(
                f"{where}: id {row_id!r} matches no collected row in the window; check the id "
                "(the x-request-id, with :<row> for multi-row requests) or widen --window; "
                "nothing was written"
            )
        if matches > 1:
            raise MlopsError(
                f"{where}: id {row_id!r} matches {matches} collected rows (a reused request id), "
                "so the label cannot be placed; nothing was written"
            )
        try:
            target = float(str(raw_target))
        except ValueError:
            target = math.nan
        if not math.isfinite(target):
            raise MlopsError(
                f"{where}: target {raw_target!r} is not a finite number; nothing was written"
            )
        targets.append(target)
    return pd.DataFrame({"correlationid": [str(i).strip() for i in labels["correlationid"]],
                         TARGET: targets})  # fmt: skip


def feedback(
    data: ProductionData,
    *,
    labels_path: Path,
    deployment: str | None,
    window: Window,
    register: Callable[[DataSetRef, dict[str, Any]], None] | None = None,
) -> Feedback:
    """Join the labels with the window's inputs; store the serving model's data plus the rows.

    `register` runs once the table is stored and before the version is completed (Azure: the
    data asset, so that the BlobCreated event of the lineage record finds it).
    """
    from pipelines.monitoring.monitor import reference_data, served, window_frame
    from training.spec import current_spec

    spec = current_spec()

    labels = read_labels(labels_path)  # a malformed file fails before any blob is touched
    data.mirror()
    target = served(data, deployment)
    inputs = window_frame(target, layout.INPUTS, window, list(spec.feature_names))
    checked = check_labels(labels, inputs["correlationid"].value_counts(), labels_path)
    rows = checked.merge(inputs, on="correlationid", how="left")
    base, source = reference_data(target.version, lambda: data.store, data.tracking)
    columns = list(spec.columns)
    table = pd.concat([base.loc[:, columns], rows.loc[:, columns]], ignore_index=True)
    lineage = {
        "created": datetime.now(UTC).isoformat(),
        "base": source,
        "serving_model": target.version.ref,
        "endpoint": target.endpoint,
        "deployment": target.deployment,
        "window": window.as_dict(),
        "labels_file": labels_path.name,
        "rows": {
            "base": len(base),
            "labels": len(checked),
            "collected_in_window": len(inputs),
            "total": len(table),
        },
    }
    ref = write_version(data.store, feedback_name(), table, lineage, before_complete=register)
    return Feedback(ref, {"data_set": str(ref), **lineage})
