"""Each data-validation rule, triggered by a small bad fixture and named in the finding.

Template tests run against every example definition; the profile tests at the end cover
`mlops profile`'s building block (a profile from any data).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.bundles import SPEC_NAMES
from training import validation
from training.data import DataError, bundled_data, read_table
from training.spec import ModelSpec, load_spec
from training.validation import Profile, build_profile, load_profile, validate, write_profile


@pytest.fixture(scope="module", params=SPEC_NAMES)
def spec(request: pytest.FixtureRequest) -> ModelSpec:
    return load_spec(request.param)


@pytest.fixture(scope="module")
def profile(spec: ModelSpec) -> Profile:
    return load_profile(spec)


@pytest.fixture
def good(spec: ModelSpec) -> pd.DataFrame:
    return bundled_data(spec)


def rules(findings: list) -> set[tuple[str, str]]:
    return {(f.column, f.rule) for f in findings}


def feature(spec: ModelSpec, index: int) -> str:
    return spec.feature_names[index]


def test_bundled_data_passes(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    assert validate(good, profile, spec) == []


def test_stored_profile_matches_bundled_data(
    good: pd.DataFrame, profile: Profile, spec: ModelSpec
) -> None:
    # The committed profile is the bundled data's: `mlops profile` rewrites it.
    assert profile.columns == build_profile(good, spec).columns
    assert list(profile.columns) == list(spec.columns)


def test_missing_column(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 2)
    findings = validate(good.drop(columns=[name]), profile, spec)
    assert rules(findings) == {(name, "schema.required")}
    assert f"column '{name}' fails rule 'schema.required'" in str(findings[0])


def test_unexpected_column(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    found = rules(validate(good.assign(extra=1.0), profile, spec))
    assert found == {("extra", "schema.unexpected")}


def test_non_numeric_column(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 3)
    bad = good.assign(**{name: good[name].astype(str)})
    assert rules(validate(bad, profile, spec)) == {(name, "schema.numeric")}


def test_boolean_column_is_not_numeric(
    good: pd.DataFrame, profile: Profile, spec: ModelSpec
) -> None:
    name = feature(spec, 1)
    bad = good.assign(**{name: good[name] > good[name].median()})
    assert rules(validate(bad, profile, spec)) == {(name, "schema.numeric")}


def test_missing_values(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 6)
    bad = good.copy()
    bad.loc[7, name] = np.nan
    findings = validate(bad, profile, spec)
    assert rules(findings) == {(name, "missing")}
    assert "first at row 7" in findings[0].message


def test_infinite_values(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 4)
    bad = good.copy()
    bad.loc[3, name] = np.inf
    assert (name, "missing") in rules(validate(bad, profile, spec))


def test_too_few_rows(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    assert rules(validate(good.head(10), profile, spec)) == {("*", "rows.minimum")}


def test_value_out_of_range(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 2)
    ref = profile.columns[name]
    bad = good.copy()
    bad.loc[12, name] = ref.maximum + (ref.maximum - ref.minimum)
    findings = [f for f in validate(bad, profile, spec) if f.rule == "range"]
    assert [(f.column, f.rule) for f in findings] == [(name, "range")]
    assert "at row 12" in findings[0].message


def test_mean_shift(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 0)
    ref = profile.columns[name]
    bad = good.assign(**{name: good[name] + 0.2 * (ref.maximum - ref.minimum)})
    assert (name, "distribution.mean") in rules(validate(bad, profile, spec))


def test_spread_change(good: pd.DataFrame, profile: Profile, spec: ModelSpec) -> None:
    name = feature(spec, 0)
    column = good[name]
    bad = good.assign(**{name: (column - column.mean()) * 0.2 + column.mean()})  # broken scaling
    found = rules(validate(bad, profile, spec))
    assert (name, "distribution.std") in found
    assert (name, "distribution.mean") not in found


def test_csv_and_parquet_round_trip(
    tmp_path: Path, good: pd.DataFrame, profile: Profile, spec: ModelSpec
) -> None:
    good.to_csv(tmp_path / "d.csv", index=False)
    good.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        assert validate(read_table(tmp_path / name), profile, spec) == []


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported type"):
        read_table(tmp_path / "d.txt")
    (tmp_path / "d.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="could not be read"):
        read_table(tmp_path / "d.parquet")


# -- profiles from any data -------------------------------------------------------------------


@pytest.fixture
def profiles_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(validation, "PROFILES_DIR", tmp_path / "profiles")
    return tmp_path / "profiles"


def test_a_profile_is_written_from_any_matching_data(
    good: pd.DataFrame, spec: ModelSpec, profiles_dir: Path
) -> None:
    half = good.sample(frac=0.6, random_state=1).reset_index(drop=True)
    path = write_profile(half, spec)
    assert path == profiles_dir / f"{spec.name}.json"
    written = load_profile(spec)
    assert written.columns == build_profile(half, spec).columns
    assert validate(half, written, spec) == []


def test_data_with_other_columns_is_one_sentence_naming_them(
    good: pd.DataFrame, spec: ModelSpec, profiles_dir: Path
) -> None:
    other = good.drop(columns=[feature(spec, 0)]).rename(columns={feature(spec, 1): "weight"})
    with pytest.raises(DataError) as error:
        write_profile(other, spec)
    message = str(error.value)
    assert f"does not match model definition {spec.name!r}" in message
    for name in (feature(spec, 0), feature(spec, 1), "weight"):
        assert f"'{name}'" in message
    assert "\n" not in message
    assert not profiles_dir.exists()


def test_a_stale_or_missing_profile_says_how_to_fix_it(
    good: pd.DataFrame, spec: ModelSpec, profiles_dir: Path
) -> None:
    with pytest.raises(DataError, match="write one from known-good data with `mlops profile"):
        load_profile(spec)
    write_profile(good, spec)
    path = profiles_dir / f"{spec.name}.json"
    path.write_text(path.read_text().replace(f'"{feature(spec, 0)}"', '"renamed"'))
    with pytest.raises(DataError, match=r"does not match model definition.*mlops profile"):
        load_profile(spec)


def test_the_module_writes_the_profile_of_a_file(
    good: pd.DataFrame,
    spec: ModelSpec,
    profiles_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLOPS_MODEL_SPEC", spec.name)
    good.to_csv(tmp_path / "data.csv", index=False)
    assert validation.main(["--write-profile", "--data", str(tmp_path / "data.csv")]) == 0
    assert (profiles_dir / f"{spec.name}.json").is_file()
    good.drop(columns=[spec.target.name]).to_csv(tmp_path / "bad.csv", index=False)
    assert validation.main(["--write-profile", "--data", str(tmp_path / "bad.csv")]) == 2
    assert f"column '{spec.target.name}' fails rule 'schema.required'" in capsys.readouterr().err


# -- breast-cancer example only ---------------------------------------------------------------


def test_breast_cancer_target_must_be_a_class_index() -> None:
    spec = load_spec("breast-cancer")
    good = bundled_data(spec)
    bad = good.copy()
    bad.loc[5, "target"] = 2
    findings = validate(bad, load_profile(spec), spec)
    assert ("target", "target.classes") in rules(findings)
    assert "not a class index 0..1" in str(findings[0])
