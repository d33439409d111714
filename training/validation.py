"""Data validation ("data tests"): schema, missing values, ranges and distribution.

Every rule returns findings that name the column and the rule, so a bad file fails with a
message a person can act on. The reference profile lives in `training/reference_profile.json`
and is regenerated from the bundled data with `python -m training.validation --write-profile`.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.data import COLUMNS, bundled_diabetes

PROFILE_PATH = Path(__file__).with_name("reference_profile.json")


@dataclass(frozen=True)
class ColumnProfile:
    """Reference statistics of one column."""

    minimum: float
    maximum: float
    mean: float
    std: float


@dataclass(frozen=True)
class Profile:
    """The reference profile new data is checked against, with the rule thresholds."""

    columns: dict[str, ColumnProfile]
    min_rows: int = 50
    range_margin: float = 0.25  # allowed overshoot of the observed range, as a share of its span
    max_mean_shift: float = 0.5  # allowed |mean - reference mean|, in reference standard deviations
    std_ratio_bounds: tuple[float, float] = (0.5, 2.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the profile."""
        return {
            "min_rows": self.min_rows,
            "range_margin": self.range_margin,
            "max_mean_shift": self.max_mean_shift,
            "std_ratio_bounds": list(self.std_ratio_bounds),
            "columns": {name: vars(col) for name, col in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Profile:
        """Build a profile from its JSON form."""
        low, high = raw["std_ratio_bounds"]
        return cls(
            columns={name: ColumnProfile(**col) for name, col in raw["columns"].items()},
            min_rows=int(raw["min_rows"]),
            range_margin=float(raw["range_margin"]),
            max_mean_shift=float(raw["max_mean_shift"]),
            std_ratio_bounds=(float(low), float(high)),
        )


@dataclass(frozen=True)
class Finding:
    """One failed rule."""

    column: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"column '{self.column}' fails rule '{self.rule}': {self.message}"


def build_profile(frame: pd.DataFrame) -> Profile:
    """Compute the reference profile of a known-good table."""
    return Profile(
        columns={
            name: ColumnProfile(
                minimum=float(frame[name].min()),
                maximum=float(frame[name].max()),
                mean=float(frame[name].mean()),
                std=float(frame[name].std()),
            )
            for name in COLUMNS
        }
    )


def load_profile(path: Path = PROFILE_PATH) -> Profile:
    """Read the reference profile stored in the repository."""
    return Profile.from_dict(json.loads(path.read_text()))


def check_schema(frame: pd.DataFrame) -> list[Finding]:
    """Exactly the 10 features and the target, all numeric (booleans are not numbers here)."""
    findings = [
        Finding(name, "schema.required", "column is missing")
        for name in COLUMNS
        if name not in frame.columns
    ]
    findings += [
        Finding(str(name), "schema.unexpected", f"column is not part of the schema {list(COLUMNS)}")
        for name in frame.columns
        if name not in COLUMNS
    ]
    findings += [
        Finding(name, "schema.numeric", f"dtype is {frame[name].dtype}, expected a number")
        for name in COLUMNS
        if name in frame.columns
        and (
            not pd.api.types.is_numeric_dtype(frame[name])
            or pd.api.types.is_bool_dtype(frame[name])
        )
    ]
    return findings


def check_missing(frame: pd.DataFrame) -> list[Finding]:
    """No missing (NaN/empty) and no infinite values."""
    findings = []
    for name in COLUMNS:
        column = frame[name]
        missing = int(column.isna().sum())
        if missing:
            first = int(column[column.isna()].index[0])
            findings.append(
                Finding(name, "missing", f"{missing} missing value(s), first at row {first}")
            )
        infinite = int(column.isin([math.inf, -math.inf]).sum())
        if infinite:
            findings.append(Finding(name, "missing", f"{infinite} infinite value(s)"))
    return findings


def check_rows(frame: pd.DataFrame, profile: Profile) -> list[Finding]:
    """Enough rows to split into a training set and a meaningful holdout."""
    if len(frame) < profile.min_rows:
        return [
            Finding("*", "rows.minimum", f"{len(frame)} rows, at least {profile.min_rows} needed")
        ]
    return []


def check_ranges(frame: pd.DataFrame, profile: Profile) -> list[Finding]:
    """Values inside the reference range, widened by the profile's margin."""
    findings = []
    for name, ref in profile.columns.items():
        margin = (ref.maximum - ref.minimum) * profile.range_margin
        low, high = ref.minimum - margin, ref.maximum + margin
        column = frame[name].dropna()
        outside = column[(column < low) | (column > high)]
        if len(outside):
            row = int(outside.index[0])
            findings.append(
                Finding(
                    name,
                    "range",
                    f"{len(outside)} value(s) outside [{low:.6g}, {high:.6g}], "
                    f"e.g. {outside.iloc[0]:.6g} at row {row}",
                )
            )
    return findings


def check_distribution(frame: pd.DataFrame, profile: Profile) -> list[Finding]:
    """Mean and spread close to the reference (catches unit changes and broken scaling)."""
    findings = []
    low, high = profile.std_ratio_bounds
    for name, ref in profile.columns.items():
        column = frame[name].dropna()
        shift = abs(float(column.mean()) - ref.mean) / ref.std
        if shift > profile.max_mean_shift:
            findings.append(
                Finding(
                    name,
                    "distribution.mean",
                    f"mean {column.mean():.6g} is {shift:.2f} reference standard deviations from "
                    f"{ref.mean:.6g} (limit {profile.max_mean_shift})",
                )
            )
        ratio = float(column.std()) / ref.std
        if not low <= ratio <= high:
            findings.append(
                Finding(
                    name,
                    "distribution.std",
                    f"standard deviation {column.std():.6g} is {ratio:.2f}x the reference "
                    f"{ref.std:.6g} (allowed {low}x to {high}x)",
                )
            )
    return findings


def validate(frame: pd.DataFrame, profile: Profile) -> list[Finding]:
    """Run every rule; an empty list means the data passed.

    Later rules need a sound schema, so a schema failure stops there.
    """
    findings = check_schema(frame)
    if findings:
        return findings
    findings = check_rows(frame, profile) + check_missing(frame)
    if findings:
        return findings
    return check_ranges(frame, profile) + check_distribution(frame, profile)


def main() -> None:
    """`python -m training.validation --write-profile`: regenerate the reference profile."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-profile", action="store_true", help="rewrite the profile file")
    args = parser.parse_args()
    if args.write_profile:
        PROFILE_PATH.write_text(json.dumps(build_profile(bundled_diabetes()).to_dict(), indent=2))
        print(f"wrote {PROFILE_PATH.name}")


if __name__ == "__main__":
    main()
