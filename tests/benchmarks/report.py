"""What the benchmarks share: the result row and table (one line per figure, its limit, the
verdict) and the model bundle they score with.

Every figure is compared with a baseline or limit measured in the same run (never a number
remembered from another machine): `ratio = value / reference`, and a target is a bound on that
ratio (or, where the issue says so, on the value itself).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass(frozen=True)
class Row:
    """One measured figure against its reference."""

    area: str  # batch, collection, scoring, start-up
    metric: str
    value: float
    unit: str
    reference: float | None = None  # the baseline or limit measured in the same run
    reference_name: str = ""
    target: str = ""  # a bound on the ratio or on the value, as printed
    passed: bool | None = None  # None: a figure without a target
    # The median of per-round ratios, where the two sides ran back to back in every round:
    # steadier than the ratio of the two medians when the machine's speed drifts.
    paired_ratio: float | None = None
    # For a target on value - reference ("≤ floor + 0.15 s"): the median of per-run differences.
    paired_difference: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference


def ratio_row(
    area: str,
    metric: str,
    value: float,
    unit: str,
    reference: float,
    reference_name: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
) -> Row:
    """A row whose target bounds value / reference."""
    ratio = value / reference if reference else float("nan")
    target, passed = _ratio_target(ratio, at_most, at_least)
    return Row(area, metric, value, unit, reference, reference_name, target, passed)


def _ratio_target(
    ratio: float, at_most: float | None, at_least: float | None
) -> tuple[str, bool | None]:
    """The target as printed and whether the ratio meets it (None: no target)."""
    if at_most is not None:
        return f"≤ {at_most}×", ratio <= at_most
    if at_least is not None:
        return f"≥ {at_least}×", ratio >= at_least
    return "", None


def paired_row(
    area: str,
    metric: str,
    values: list[float],
    unit: str,
    references: list[float],
    reference_name: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
) -> Row:
    """A row whose target bounds the median of value_i / reference_i over paired rounds.

    Value and reference shown are each side's median; the ratio is the median of the rounds'
    own ratios (each round ran both sides back to back).
    """
    ratio = statistics.median(v / r for v, r in zip(values, references, strict=True) if r)
    target, passed = _ratio_target(ratio, at_most, at_least)
    return Row(area, metric, statistics.median(values), unit, statistics.median(references),
               f"{reference_name} (paired rounds)", target, passed, ratio)  # fmt: skip


def paired_margin_row(
    area: str,
    metric: str,
    values: list[float],
    unit: str,
    references: list[float],
    reference_name: str,
    margin: float,
) -> Row:
    """A row whose target bounds the median of value_i - reference_i over paired runs."""
    difference = statistics.median(v - r for v, r in zip(values, references, strict=True))
    return Row(area, metric, statistics.median(values), unit, statistics.median(references),
               f"{reference_name} (paired runs)", f"≤ reference + {margin} {unit}",
               difference <= margin, paired_difference=difference)  # fmt: skip


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def print_table(rows: list[Row], title: str) -> None:
    """One table: area, metric, value, reference, ratio, target, verdict."""
    print(f"\n{title}")
    header = (
        f"{'area':<10} {'metric':<46} {'value':>12} {'reference':>12} {'ratio':>7}  "
        f"{'target':<16} pass  reference is"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}×"
        if row.paired_difference is not None:
            ratio = f"{row.paired_difference:+.2f}"
        verdict = {True: "yes", False: "NO", None: ""}[row.passed]
        print(
            f"{row.area:<10} {row.metric:<46} {_number(row.value) + ' ' + row.unit:>12} "
            f"{_number(row.reference):>12} {ratio:>7}  {row.target:<16} {verdict:<4}  "
            f"{row.reference_name}"
        )


def write_json(rows: list[Row], path: Path, **context: object) -> None:
    """The rows (with ratios) and the run's context as JSON."""
    document = {
        **context,
        "rows": [asdict(row) | {"ratio": row.ratio} for row in rows],
        "missed": missed(rows),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def build_bundle(dest: Path) -> str:
    """Train the model on the bundled data and write its bundle, as the training step does;
    returns the bundle digest."""
    from training.bundle import write_bundle
    from training.data import bundled_data
    from training.model import TrainingConfig, golden_sample, split_data, train_model
    from training.spec import load_spec

    spec = load_spec("diabetes")  # the benchmarks serve the diabetes example
    config = TrainingConfig(spec=spec)
    split = split_data(bundled_data(spec), config)
    model = train_model(split.x_train, split.y_train, config)
    return write_bundle(model, dest, golden_sample(model, split, config), spec)


def ensure_debian_tool(command: str) -> str:
    """Path of a command from the Debian package of the same name, installed if needed.

    apt-get runs only as root; otherwise the message says what to install.
    """
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"{command} is missing: install it (apt-get install {command}) and run again")
    print(f"installing {command} (apt-get) …", flush=True)
    install = ["apt-get", "install", "-y", "-q", command]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    found = shutil.which(command)
    if not found:
        sys.exit(f"{command} could not be installed")
    return found


def missed(rows: list[Row]) -> list[str]:
    return [f"{row.area}: {row.metric}" for row in rows if row.passed is False]


def finish(rows: list[Row], title: str, json_path: Path | None, **context: object) -> int:
    """A benchmark script's end: the table, the JSON file if asked, exit 1 if a target missed."""
    print_table(rows, title)
    if json_path:
        write_json(rows, json_path, **context)
    return 1 if missed(rows) else 0
