"""The monitor's report: `monitor.json` (for machines), `monitor.md` (for people) and `drift.png`
(reference against production for each drifted column, drawn with matplotlib's Agg backend)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.atomic import write_text_atomically
from pipelines.monitoring.drift import (
    OUTCOME_DRIFT,
    OUTCOME_TOO_LITTLE,
    ColumnResult,
    Evaluation,
    numbers,
)
from pipelines.monitoring.thresholds import DriftMetric, Thresholds

JSON_FILE = "monitor.json"
MARKDOWN_FILE = "monitor.md"
PLOT_FILE = "drift.png"


@dataclass(frozen=True)
class Context:
    """What was monitored against what."""

    endpoint: str
    deployment: str
    model: str
    reference: str
    window: dict[str, str]
    window_label: str


def report_folder(state_dir: Path, endpoint: str, deployment: str) -> Path:
    """Where a deployment's report goes by default: `<state>/monitoring/<endpoint>-<deployment>`."""
    return state_dir / "monitoring" / f"{endpoint}-{deployment}"


def headline(evaluation: Evaluation, thresholds: Thresholds) -> str:
    """The verdict in one sentence."""
    if evaluation.outcome == OUTCOME_TOO_LITTLE:
        return (
            f"too little data: {evaluation.rows} row(s) in the window, a verdict needs at least "
            f"{thresholds.min_rows}; widen --window or wait for more traffic"
        )
    if evaluation.outcome == OUTCOME_DRIFT:
        names = ", ".join(column.name for column in evaluation.breached)
        return f"drift: {len(evaluation.breached)} column(s) breached their thresholds ({names})"
    return f"no drift: {evaluation.rows} rows, every column within its thresholds"


def as_dict(evaluation: Evaluation, context: Context, thresholds: Thresholds) -> dict[str, Any]:
    """monitor.json."""
    return {
        "outcome": evaluation.outcome,
        "summary": headline(evaluation, thresholds),
        "endpoint": context.endpoint,
        "deployment": context.deployment,
        "model": context.model,
        "reference": context.reference,
        "window": context.window,
        "rows": evaluation.rows,
        "reference_rows": evaluation.reference_rows,
        "thresholds": {
            "data_drift": {str(thresholds.data_drift_metric): thresholds.data_drift},
            "prediction_drift": {
                str(thresholds.prediction_drift_metric): thresholds.prediction_drift
            },
            "data_quality": thresholds.quality_thresholds(),
            "min_rows": thresholds.min_rows,
        },
        "columns": [
            {
                "name": column.name,
                "signal": column.signal,
                "metric": column.metric,
                "value": column.metrics.get(column.metric),
                "threshold": column.threshold,
                "breached": column.breached,
                "metrics": column.metrics,
                "data_quality": column.quality.as_dict() if column.quality else None,
            }
            for column in evaluation.columns
        ],
    }


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def table_rows(evaluation: Evaluation) -> list[list[str]]:
    """One row per column: name, signal, the four metrics, nulls/types/bounds, verdict."""
    rows = []
    for column in evaluation.columns:
        quality = column.quality.as_dict() if column.quality else {}
        rows.append(
            [
                column.name,
                column.signal.replace("_", " "),
                *(_number(column.metrics.get(str(metric))) for metric in DriftMetric),
                " / ".join(f"{quality[key]:.0%}" for key in quality) if quality else "-",
                ", ".join(_short(name) for name in column.breached) or "ok",
            ]
        )
    return rows


TABLE_HEADER = ["column", "signal", *(metric.short for metric in DriftMetric),
                "nulls / types / bounds", "breached"]  # fmt: skip


def _short(name: str) -> str:
    try:
        return DriftMetric(name).short
    except ValueError:
        return name.replace("_", " ")


def markdown(evaluation: Evaluation, context: Context, thresholds: Thresholds) -> str:
    """monitor.md."""
    lines = [
        f"# Monitor: {context.endpoint}/{context.deployment}",
        "",
        f"**{headline(evaluation, thresholds)}**",
        "",
        f"- window: {context.window_label}",
        f"- model: {context.model}",
        f"- reference: {context.reference} ({evaluation.reference_rows} rows)",
        f"- production rows: {evaluation.rows}",
        f"- thresholds: data drift {thresholds.data_drift_metric.short} > "
        f"{thresholds.data_drift:g}, prediction drift {thresholds.prediction_drift_metric.short} "
        f"> {thresholds.prediction_drift:g}, data quality rates > "
        f"{thresholds.null_value_rate:g} (pipelines/monitoring/thresholds.py)",
    ]
    if evaluation.columns:
        lines += ["", "| " + " | ".join(TABLE_HEADER) + " |",
                  "|" + "---|" * len(TABLE_HEADER)]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(evaluation)]
    if any(column.drifted for column in evaluation.columns):
        lines += ["", f"![reference against production]({PLOT_FILE})"]
    return "\n".join(lines) + "\n"


def plot(
    columns: list[ColumnResult], reference: pd.DataFrame, production: pd.DataFrame, path: Path
) -> None:
    """Overlaid histograms, reference against production, one panel per drifted column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(columns)
    width = min(count, 3)
    height = (count + width - 1) // width
    figure, axes = plt.subplots(height, width, figsize=(4.2 * width, 3.2 * height), squeeze=False)
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    for axis, column in zip(axes.flat, columns, strict=False):
        ref, prod = numbers(reference[column.name]), numbers(production[column.name])
        edges = np.histogram_bin_edges(np.concatenate([ref, prod]), bins=20)
        axis.hist(ref, edges, density=True, alpha=0.55, label=f"reference ({len(ref)})")
        axis.hist(prod, edges, density=True, alpha=0.55, label=f"production ({len(prod)})")
        axis.set_title(f"{column.name}: {_short(column.metric)} {column.value:.3g}", fontsize=10)
        axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=90)
    plt.close(figure)
    temporary.replace(path)


def write_report(
    folder: Path,
    evaluation: Evaluation,
    context: Context,
    thresholds: Thresholds,
    reference: pd.DataFrame,
    production: pd.DataFrame,
) -> list[Path]:
    """Write the report files (each atomically); returns them. Stale plots are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    drifted = [column for column in evaluation.columns if column.drifted]
    plot_path = folder / PLOT_FILE
    if drifted:
        plot(drifted, reference, production, plot_path)
        written.append(plot_path)
    elif plot_path.exists():
        plot_path.unlink()  # never leave last run's plot beside this run's verdict
    json_path = folder / JSON_FILE
    write_text_atomically(
        json_path, json.dumps(as_dict(evaluation, context, thresholds), indent=2) + "\n"
    )
    markdown_path = folder / MARKDOWN_FILE
    write_text_atomically(markdown_path, markdown(evaluation, context, thresholds))
    return [json_path, markdown_path, *written]
