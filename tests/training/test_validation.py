"""Each data-validation rule, triggered by a small bad fixture and named in the finding."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import COLUMNS, DataError, bundled_diabetes, read_table
from training.validation import Profile, build_profile, load_profile, validate


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile()


@pytest.fixture
def good() -> pd.DataFrame:
    return bundled_diabetes()


def rules(findings: list) -> set[tuple[str, str]]:
    return {(f.column, f.rule) for f in findings}


def test_bundled_data_passes(good: pd.DataFrame, profile: Profile) -> None:
    assert validate(good, profile) == []


def test_stored_profile_matches_bundled_data(good: pd.DataFrame, profile: Profile) -> None:
    # The committed profile is the bundled data's: regenerate it when the reference changes.
    assert profile.columns == build_profile(good).columns
    assert list(profile.columns) == list(COLUMNS)


def test_missing_column(good: pd.DataFrame, profile: Profile) -> None:
    findings = validate(good.drop(columns=["bmi"]), profile)
    assert rules(findings) == {("bmi", "schema.required")}
    assert "column 'bmi' fails rule 'schema.required'" in str(findings[0])


def test_unexpected_column(good: pd.DataFrame, profile: Profile) -> None:
    assert rules(validate(good.assign(extra=1.0), profile)) == {("extra", "schema.unexpected")}


def test_non_numeric_column(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.assign(bp=good["bp"].astype(str))
    assert rules(validate(bad, profile)) == {("bp", "schema.numeric")}


def test_boolean_column_is_not_numeric(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.assign(sex=good["sex"] > 0)
    assert rules(validate(bad, profile)) == {("sex", "schema.numeric")}


def test_missing_values(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.copy()
    bad.loc[7, "s3"] = np.nan
    findings = validate(bad, profile)
    assert rules(findings) == {("s3", "missing")}
    assert "first at row 7" in findings[0].message


def test_infinite_values(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.copy()
    bad.loc[3, "s1"] = np.inf
    assert ("s1", "missing") in rules(validate(bad, profile))


def test_too_few_rows(good: pd.DataFrame, profile: Profile) -> None:
    assert rules(validate(good.head(10), profile)) == {("*", "rows.minimum")}


def test_value_out_of_range(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.copy()
    bad.loc[12, "bmi"] = 5.0
    findings = [f for f in validate(bad, profile) if f.rule == "range"]
    assert [(f.column, f.rule) for f in findings] == [("bmi", "range")]
    assert "5 at row 12" in findings[0].message


def test_mean_shift(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.assign(target=good["target"] + 60)  # within range margin, but the mean moved
    assert ("target", "distribution.mean") in rules(validate(bad, profile))


def test_spread_change(good: pd.DataFrame, profile: Profile) -> None:
    bad = good.assign(age=good["age"] * 0.2)  # e.g. a broken scaling step
    found = rules(validate(bad, profile))
    assert ("age", "distribution.std") in found
    assert ("age", "distribution.mean") not in found


def test_csv_and_parquet_round_trip(tmp_path: Path, good: pd.DataFrame, profile: Profile) -> None:
    good.to_csv(tmp_path / "d.csv", index=False)
    good.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        assert validate(read_table(tmp_path / name), profile) == []


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported type"):
        read_table(tmp_path / "d.txt")
    (tmp_path / "d.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="could not be read"):
        read_table(tmp_path / "d.parquet")
