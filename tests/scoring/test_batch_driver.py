"""The batch driver: Azure ML init()/run(mini_batch) and the local score_files()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import batch_driver
from scoring.batch_driver import OUTPUT_COLUMNS, score_files
from scoring.runtime import ModelLoadError
from scoring.schema import FEATURES, InputError
from tests.scoring.conftest import TrainedBundle


def frame(bundle: TrainedBundle, rows: int = 5, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(bundle.rows[start : start + rows], columns=list(FEATURES))


@pytest.fixture
def azure_driver(bundle: TrainedBundle, clean_env: pytest.MonkeyPatch):
    clean_env.setenv("AZUREML_MODEL_DIR", str(bundle.path))
    clean_env.setenv("MODEL_SHA256", bundle.digest)
    batch_driver.init()
    yield batch_driver
    batch_driver._model = None


def test_run_appends_predictions_to_csv_and_parquet_rows(
    azure_driver, bundle: TrainedBundle, tmp_path: Path
) -> None:
    first = frame(bundle, 4)
    second = frame(bundle, 3, start=4)[list(reversed(FEATURES))]  # column order is free
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_parquet(tmp_path / "b.parquet", index=False)
    result = azure_driver.run([str(tmp_path / "a.csv"), str(tmp_path / "b.parquet")])
    assert tuple(result.columns) == OUTPUT_COLUMNS
    assert list(result["source_file"]) == ["a.csv"] * 4 + ["b.parquet"] * 3
    np.testing.assert_allclose(result[list(FEATURES)].to_numpy(), bundle.rows[:7])
    np.testing.assert_allclose(result["prediction"], bundle.expected(bundle.rows[:7]), atol=1e-6)


def test_run_of_an_empty_mini_batch_returns_no_rows(azure_driver) -> None:
    result = azure_driver.run([])
    assert result.empty
    assert tuple(result.columns) == OUTPUT_COLUMNS


def test_init_refuses_a_wrong_digest(bundle: TrainedBundle, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZUREML_MODEL_DIR", str(bundle.path))
    clean_env.setenv("MODEL_SHA256", "f" * 64)
    with pytest.raises(ModelLoadError, match="integrity check"):
        batch_driver.init()


def test_run_before_init_is_an_error() -> None:
    batch_driver._model = None
    with pytest.raises(RuntimeError, match="init"):
        batch_driver.run(["x.csv"])


def _csv(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = ",".join(FEATURES)
GOOD = ",".join(["0.01"] * 10)

# (id, file content, file name, fragment of the message)
BAD_FILES = [
    (
        "missing column",
        ",".join(FEATURES[:9]) + "\n" + ",".join(["0.1"] * 9) + "\n",
        "bad.csv",
        "missing s6",
    ),
    ("extra column", HEADER + ",target\n" + GOOD + ",151\n", "bad.csv", "unexpected target"),
    ("ragged row", HEADER + "\n" + GOOD + "\n" + GOOD + ",0.5\n", "bad.csv", "cannot be read"),
    (
        "short row",
        HEADER + "\n" + GOOD + "\n" + ",".join(["0.1"] * 8) + "\n",
        "bad.csv",
        "bad.csv row 2, column s5 is missing",
    ),
    (
        "empty cell",
        HEADER + "\n" + GOOD.replace("0.01", "", 1) + "\n",
        "bad.csv",
        "row 1, column age is missing",
    ),
    (
        "text value",
        HEADER + "\n" + GOOD + "\n" + "abc," + ",".join(["0.1"] * 9) + "\n",
        "bad.csv",
        "bad.csv row 1, column age is a string",
    ),
    (
        "boolean column",
        HEADER + "\n" + "true," + ",".join(["0.1"] * 9) + "\n",
        "bad.csv",
        "row 1, column age is a boolean",
    ),
    (
        "infinity",
        HEADER + "\n" + "inf," + ",".join(["0.1"] * 9) + "\n",
        "bad.csv",
        "row 1, column age is too large",
    ),
    ("header only", HEADER + "\n", "bad.csv", "'bad.csv' is empty"),
    ("empty file", "", "bad.csv", "the file is empty"),
    ("not a table", "garbage", "bad.json", "unsupported file type '.json'"),
    ("not parquet", "garbage", "bad.parquet", "cannot be read"),
]


@pytest.mark.parametrize(
    ("content", "name", "fragment"), [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_invalid_files_are_rejected_with_file_row_and_column(
    azure_driver, tmp_path: Path, content: str, name: str, fragment: str
) -> None:
    path = _csv(tmp_path, content, name)
    with pytest.raises(InputError) as error:
        azure_driver.run([str(path)])
    assert error.value.status == 400
    assert fragment in error.value.message


def test_parquet_nulls_and_booleans_are_rejected(
    azure_driver, bundle: TrainedBundle, tmp_path: Path
) -> None:
    nulls = frame(bundle, 3).astype(object)
    nulls.iloc[2, 4] = None
    nulls.to_parquet(tmp_path / "nulls.parquet", index=False)
    with pytest.raises(InputError, match=r"nulls.parquet row 3, column s1 is missing"):
        azure_driver.run([str(tmp_path / "nulls.parquet")])
    flags = frame(bundle, 2)
    flags["sex"] = [True, False]
    flags.to_parquet(tmp_path / "flags.parquet", index=False)
    with pytest.raises(InputError, match=r"flags.parquet row 1, column sex is a boolean"):
        azure_driver.run([str(tmp_path / "flags.parquet")])


def test_score_files_writes_one_csv_with_a_header(bundle: TrainedBundle, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    frame(bundle, 6).to_csv(inputs / "one.csv", index=False)
    frame(bundle, 2, start=6).to_parquet(inputs / "nested" / "two.parquet", index=False)
    (inputs / ".hidden").write_text("ignored")
    output = tmp_path / "out" / "predictions.csv"
    assert score_files(bundle.path, inputs, output, bundle.digest) == 8
    written = pd.read_csv(output)
    assert tuple(written.columns) == OUTPUT_COLUMNS
    assert list(written["source_file"]) == ["nested/two.parquet"] * 2 + ["one.csv"] * 6
    expected = bundle.expected(np.vstack([bundle.rows[6:8], bundle.rows[:6]]))
    np.testing.assert_allclose(written["prediction"], expected, atol=1e-6)


def test_score_files_writes_parquet_when_asked(bundle: TrainedBundle, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 3).to_csv(inputs / "one.csv", index=False)
    output = tmp_path / "predictions.parquet"
    assert score_files(bundle.path, inputs, output) == 3
    assert len(pd.read_parquet(output)) == 3


def test_score_files_writes_nothing_when_a_file_is_invalid(
    bundle: TrainedBundle, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 3).to_csv(inputs / "a.csv", index=False)
    _csv(inputs, HEADER + "\n" + "null," + ",".join(["0.1"] * 9) + "\n", "b.csv")
    output = tmp_path / "predictions.csv"
    with pytest.raises(InputError, match=r"b\.csv row 1, column age is missing"):
        score_files(bundle.path, inputs, output)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [inputs]


def test_score_files_verifies_the_bundle(bundle: TrainedBundle, tmp_path: Path) -> None:
    copy = bundle.copy_to(tmp_path / "model")
    spec = json.loads((copy / "linear_model.json").read_text())
    spec["coef"][0] *= 2
    (copy / "linear_model.json").write_text(json.dumps(spec))
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 1).to_csv(inputs / "a.csv", index=False)
    with pytest.raises(ModelLoadError, match=r"linear_model\.json"):
        score_files(copy, inputs, tmp_path / "out.csv")
    with pytest.raises(ModelLoadError, match="registry recorded"):
        score_files(bundle.path, inputs, tmp_path / "out.csv", "0" * 64)


def test_score_files_needs_input_files(bundle: TrainedBundle, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no files"):
        score_files(bundle.path, tmp_path, tmp_path / "out.csv")


def test_cli_helper_turns_errors_into_one_sentence(bundle: TrainedBundle, tmp_path: Path) -> None:
    from pipelines.batch_commands import score_folder
    from pipelines.errors import MlopsError

    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 2).to_csv(inputs / "a.csv", index=False)
    assert score_folder(bundle.path, inputs, tmp_path / "out.csv", bundle.digest) == 2
    _csv(inputs, HEADER + "\n" + "x," + ",".join(["0.1"] * 9) + "\n", "b.csv")
    with pytest.raises(MlopsError, match=r"b.csv row 1, column age is a string .*run batch-score"):
        score_folder(bundle.path, inputs, tmp_path / "out.csv")
    with pytest.raises(MlopsError, match="registry recorded"):
        score_folder(bundle.path, inputs, tmp_path / "out.csv", "0" * 64)
