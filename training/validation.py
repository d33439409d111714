"""Data validation ("data tests"): schema, missing values, ranges and distribution.

Every rule returns findings that name the column and the rule, so a bad file fails with a
message a person can act on. The columns and their order come from the model definition
(`training.spec`); each definition's reference profile lives in `training/profiles/<name>.json`
and is written from known-good data with `mlops profile [--data FILE]` (or
`python -m training.validation --write-profile [--data FILE]`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.data import DataError, load_data
from training.spec import ModelSpec, current_spec

PROFILES_DIR = Path(__file__).with_name("profiles")


def profile_path(spec: ModelSpec) -> Path:
    """Where a definition's reference profile is kept."""
    return PROFILES_DIR / f"{spec.name}.json"


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


def build_profile(frame: pd.DataFrame, spec: ModelSpec) -> Profile:
    """Compute the reference profile of a known-good table; DataError if it is not the schema.

    The schema is checked first, so a table with other columns is one sentence naming them.
    """
    findings = check_schema(frame, spec)
    if findings:
        raise DataError(
            f"the data does not match model definition {spec.name!r}: "
            + "; ".join(str(finding) for finding in findings)
        )
    return Profile(
        columns={
            name: ColumnProfile(
                minimum=float(frame[name].min()),
                maximum=float(frame[name].max()),
                mean=float(frame[name].mean()),
                std=float(frame[name].std()),
            )
            for name in spec.columns
        }
    )


def load_profile(spec: ModelSpec) -> Profile:
    """Read the definition's reference profile; DataError (with the fix) if it is missing,
    unreadable, or profiles other columns than the definition has."""
    path = profile_path(spec)
    try:
        profile = Profile.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise DataError(
            f"model definition {spec.name!r} has no reference profile ({path.name}); "
            "write one from known-good data with `mlops profile --data FILE`"
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"reference profile {path.name} is unreadable: {error!r}") from None
    if set(profile.columns) != set(spec.columns):
        stale = sorted(set(profile.columns) ^ set(spec.columns))
        raise DataError(
            f"reference profile {path.name} does not match model definition {spec.name!r} "
            f"(columns {', '.join(stale)} differ); write it again with `mlops profile`"
        )
    return profile


def write_profile(frame: pd.DataFrame, spec: ModelSpec) -> Path:
    """Profile a known-good table and store it as the definition's reference profile."""
    profile = build_profile(frame, spec)
    path = profile_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_dict(), indent=2) + "\n")
    return path


def check_schema(frame: pd.DataFrame, spec: ModelSpec) -> list[Finding]:
    """Exactly the definition's features and target, all numeric (booleans are not numbers)."""
    columns = spec.columns
    findings = [
        Finding(name, "schema.required", "column is missing")
        for name in columns
        if name not in frame.columns
    ]
    findings += [
        Finding(
            str(name),
            "schema.unexpected",
            f"column is not one of the {len(columns)} columns of model definition {spec.name!r}",
        )
        for name in frame.columns
        if name not in columns
    ]
    findings += [
        Finding(name, "schema.numeric", f"dtype is {frame[name].dtype}, expected a number")
        for name in columns
        if name in frame.columns
        and (
            not pd.api.types.is_numeric_dtype(frame[name])
            or pd.api.types.is_bool_dtype(frame[name])
        )
    ]
    return findings


def check_missing(frame: pd.DataFrame, spec: ModelSpec) -> list[Finding]:
    """No missing (NaN/empty) and no infinite values."""
    findings = []
    for name in spec.columns:
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


def check_classes(frame: pd.DataFrame, spec: ModelSpec) -> list[Finding]:
    """A classifier's target holds class indices 0..k-1, one per output column."""
    if spec.task != "classification":
        return []
    target = frame[spec.target.name]
    classes = len(spec.outputs)
    bad = target[(target != target.round()) | (target < 0) | (target >= classes)]
    if len(bad):
        return [
            Finding(
                spec.target.name,
                "target.classes",
                f"{len(bad)} value(s) are not a class index 0..{classes - 1}, "
                f"e.g. {bad.iloc[0]!r} at row {int(bad.index[0])}",
            )
        ]
    return []


def validate(frame: pd.DataFrame, profile: Profile, spec: ModelSpec) -> list[Finding]:
    """Run every rule; an empty list means the data passed.

    Later rules need a sound schema, so a schema failure stops there.
    """
    findings = check_schema(frame, spec)
    if findings:
        return findings
    findings = check_rows(frame, profile) + check_missing(frame, spec)
    if findings:
        return findings
    return (
        check_classes(frame, spec)
        + check_ranges(frame, profile)
        + check_distribution(frame, profile)
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m training.validation --write-profile [--data FILE]`: write the profile."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-profile", action="store_true", help="rewrite the profile file")
    parser.add_argument("--data", type=Path, default=None, help="CSV/Parquet; default: bundled")
    args = parser.parse_args(argv)
    if args.write_profile:
        spec = current_spec()
        try:
            path = write_profile(load_data(args.data, spec), spec)
        except DataError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"wrote {path.parent.name}/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
