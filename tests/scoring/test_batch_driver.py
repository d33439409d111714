"""The streaming batch driver: Azure ML init()/run(mini_batch), score_files() and merge_parts()."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from scoring import batch_driver
from scoring.batch_driver import (
    PART_SUFFIX,
    Progress,
    csv_lines,
    merge_parts,
    output_columns,
    part_name,
    score_files,
)
from scoring.runtime import ModelLoadError, load_model
from scoring.schema import InputError
from tests.bundles import TrainedBundle
from training.data import bundled_data


def frame(bundle: TrainedBundle, rows: int = 5, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(bundle.rows[start : start + rows], columns=list(bundle.spec.feature_names))


def demo_features(bundle: TrainedBundle) -> pd.DataFrame:
    """The definition's bundled data without its target: what the demo scores in batch."""
    return bundled_data(bundle.spec).drop(columns=[bundle.spec.target.name])


def columns_of(bundle: TrainedBundle) -> tuple[str, ...]:
    return output_columns(bundle.contract)


def outputs_of(table: pd.DataFrame, bundle: TrainedBundle) -> np.ndarray:
    """The output columns of a scored table, shaped as the model serves them."""
    values = table[list(bundle.spec.output_names)].to_numpy(dtype=float)
    return values.reshape(-1) if values.shape[1] == 1 else values


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few rows, so that small files cross many chunk boundaries."""
    monkeypatch.setattr(batch_driver, "CHUNK_ROWS", 7)
    monkeypatch.setattr(batch_driver, "CSV_BLOCK_BYTES", 512)


@pytest.fixture
def job_output(tmp_path: Path) -> Path:
    return tmp_path / "job-output"


@pytest.fixture
def azure_driver(bundle: TrainedBundle, clean_env: pytest.MonkeyPatch, job_output: Path):
    clean_env.setenv("AZUREML_MODEL_DIR", str(bundle.path))
    clean_env.setenv("MODEL_SHA256", bundle.digest)
    clean_env.setenv("AZUREML_BI_OUTPUT_PATH", str(job_output))
    batch_driver.init()
    yield batch_driver
    batch_driver._model = None
    batch_driver._output_dir = None


def old_driver_csv(frame_in: pd.DataFrame, source: str, bundle: TrainedBundle) -> str:
    """What the previous driver wrote for one file: pandas in, the bundle's predict on the whole
    file, pandas `to_csv` out."""
    features = list(bundle.spec.feature_names)
    matrix = np.array(frame_in.loc[:, features].to_numpy().tolist(), dtype=np.float64)
    scored = pd.DataFrame(matrix, columns=features)
    scored.insert(0, "source_file", source)
    outputs = load_model(bundle.path, bundle.digest).score(matrix).reshape(len(matrix), -1)
    for index, name in enumerate(bundle.spec.output_names):
        scored[name] = outputs[:, index]
    return scored.to_csv(index=False)


# -- Azure ML: run() writes one part per file into AZUREML_BI_OUTPUT_PATH ----------------------


def test_run_writes_a_part_per_file_and_returns_the_files(
    azure_driver, bundle: TrainedBundle, tmp_path: Path, job_output: Path
) -> None:
    features = list(bundle.spec.feature_names)
    first = frame(bundle, 4)
    second = frame(bundle, 3, start=4)[list(reversed(features))]  # column order is free
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_parquet(tmp_path / "b.parquet", index=False)
    done = azure_driver.run([str(tmp_path / "a.csv"), str(tmp_path / "b.parquet")])
    assert done == ["a.csv", "b.parquet"]
    parts = sorted(path.name for path in job_output.iterdir())
    assert parts == sorted([part_name(tmp_path / "a.csv"), part_name(tmp_path / "b.parquet")])
    table = pq.read_table(job_output / part_name(tmp_path / "b.parquet"))
    assert tuple(table.column_names) == columns_of(bundle)
    assert table.column("source_file").to_pylist() == ["b.parquet"] * 3
    np.testing.assert_array_equal(
        np.column_stack([table.column(f).to_numpy() for f in features]), bundle.rows[4:7]
    )
    np.testing.assert_allclose(
        outputs_of(table.to_pandas(), bundle), bundle.expected(bundle.rows[4:7]), atol=1e-9
    )


def test_part_names_are_unique_per_path_and_keep_spaces() -> None:
    one, other = part_name(Path("/mnt/in/x/my file.csv")), part_name(Path("/mnt/in/y/my file.csv"))
    assert one != other
    assert one.startswith("my file.csv.") and one.endswith(PART_SUFFIX)
    assert part_name(Path("/mnt/in/x/my file.csv")) == one  # a retried mini-batch rewrites it


def test_run_of_an_empty_mini_batch_writes_nothing(azure_driver, job_output: Path) -> None:
    assert azure_driver.run([]) == []
    assert list(job_output.iterdir()) == []


def test_init_refuses_a_wrong_digest(bundle: TrainedBundle, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZUREML_MODEL_DIR", str(bundle.path))
    clean_env.setenv("MODEL_SHA256", "f" * 64)
    with pytest.raises(ModelLoadError, match="integrity check"):
        batch_driver.init()


def test_init_needs_the_job_output_folder(
    bundle: TrainedBundle, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("AZUREML_MODEL_DIR", str(bundle.path))
    clean_env.delenv("AZUREML_BI_OUTPUT_PATH", raising=False)
    with pytest.raises(RuntimeError, match=r"AZUREML_BI_OUTPUT_PATH is not set.*summary_only"):
        batch_driver.init()
    batch_driver._model = None


def test_run_before_init_is_an_error() -> None:
    batch_driver._model = None
    with pytest.raises(RuntimeError, match="init"):
        batch_driver.run(["x.csv"])


def test_the_job_output_merges_into_the_local_format(
    azure_driver, bundle: TrainedBundle, tmp_path: Path, job_output: Path
) -> None:
    """Exactly what the `score` output holds (parts + Azure ML's summary) becomes one file."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 5).to_csv(inputs / "with space.csv", index=False)
    frame(bundle, 2, start=5).to_parquet(inputs / "b,comma.parquet", index=False)
    files = batch_driver.input_files(inputs)
    azure_driver.run([str(path) for path in files])
    (job_output / "predictions.csv").write_text("b,comma.parquet\nwith space.csv\n")  # summary
    merged = tmp_path / "merged.csv"
    summary = merge_parts(job_output, merged)
    assert (summary.files, summary.rows) == (2, 7)
    local = tmp_path / "local.csv"
    score_files(bundle.path, inputs, local, bundle.digest)
    assert merged.read_bytes() == local.read_bytes()
    assert (
        pd.read_csv(merged)["source_file"].tolist()
        == ["b,comma.parquet"] * 2 + ["with space.csv"] * 5
    )


def test_merge_refuses_a_foreign_part(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / f"x.csv.abc{PART_SUFFIX}")
    with pytest.raises(InputError, match="not a part written by"):
        merge_parts(tmp_path, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


# -- validation: the online API's rules, with file and row ------------------------------------


def _csv(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bad_files(features: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    """(id, file content, file name, fragment of the message) for a model's features."""
    n = len(features)
    header = ",".join(features)
    good = ",".join(["0.01"] * n)
    first = features[0]

    def row(first_value: str) -> str:
        return first_value + "," + ",".join(["0.1"] * (n - 1))

    return [
        (
            "missing column",
            ",".join(features[:-1]) + "\n" + ",".join(["0.1"] * (n - 1)) + "\n",
            "bad.csv",
            f"missing {features[-1]}",
        ),
        ("extra column", header + ",target\n" + good + ",151\n", "bad.csv", "unexpected target"),
        ("duplicated column", header + f",{first}\n" + good + ",1\n", "bad.csv", "duplicated"),
        (
            "ragged row",
            header + "\n" + good + "\n" + good + ",0.5\n",
            "bad.csv",
            f"bad.csv row 2 has {n + 1} values but the header has {n} columns",
        ),
        (
            "short row",
            header + "\n" + good + "\n" + ",".join(["0.1"] * (n - 2)) + "\n",
            "bad.csv",
            f"bad.csv row 2 has {n - 2} values but the header has {n} columns",
        ),
        (
            "empty cell",
            header + "\n" + good.replace("0.01", "", 1) + "\n",
            "bad.csv",
            f"row 1, column {first} is missing",
        ),
        (
            "text value",
            header + "\n" + good + "\n" + row("abc") + "\n",
            "bad.csv",
            f"bad.csv row 2, column {first} is a string ('abc'); expected a number",
        ),
        (
            "boolean column",
            header + "\n" + row("true") + "\n",
            "bad.csv",
            f"row 1, column {first} is a boolean",
        ),
        (
            "infinity",
            header + "\n" + row("inf") + "\n",
            "bad.csv",
            f"row 1, column {first} is too large",
        ),
        ("header only", header + "\n", "bad.csv", "'bad.csv' is empty"),
        ("empty file", "", "bad.csv", "the file is empty"),
        ("not a table", "garbage", "bad.json", "unsupported file type '.json'"),
        ("not parquet", "garbage", "bad.parquet", "cannot be read"),
    ]


CASES = [case[0] for case in bad_files(("a", "b", "c", "d"))]


def header_and(bundle: TrainedBundle, first_value: str) -> str:
    """A CSV with one row whose first value is `first_value`."""
    n = len(bundle.spec.features)
    header = ",".join(bundle.spec.feature_names)
    return header + "\n" + first_value + "," + ",".join(["0.1"] * (n - 1)) + "\n"


@pytest.mark.parametrize("case", CASES)
def test_invalid_files_are_rejected_with_file_row_and_column(
    azure_driver, bundle: TrainedBundle, tmp_path: Path, job_output: Path, case: str
) -> None:
    _, content, name, fragment = next(
        c for c in bad_files(bundle.spec.feature_names) if c[0] == case
    )
    path = _csv(tmp_path, content, name)
    with pytest.raises(InputError) as error:
        azure_driver.run([str(path)])
    assert error.value.status == 400
    assert fragment in error.value.message
    assert list(job_output.iterdir()) == []  # no part, not even a temporary one


def test_parquet_nulls_booleans_strings_and_empty_files_are_rejected(
    azure_driver, bundle: TrainedBundle, tmp_path: Path
) -> None:
    f = bundle.spec.feature_names
    nulls = frame(bundle, 3).astype(object)
    nulls.iloc[2, 4] = None
    nulls.to_parquet(tmp_path / "nulls.parquet", index=False)
    with pytest.raises(InputError, match=rf"nulls.parquet row 3, column {f[4]} is missing"):
        azure_driver.run([str(tmp_path / "nulls.parquet")])
    flags = frame(bundle, 2)
    flags[f[1]] = [True, False]
    flags.to_parquet(tmp_path / "flags.parquet", index=False)
    with pytest.raises(InputError, match=rf"flags.parquet row 1, column {f[1]} is a boolean"):
        azure_driver.run([str(tmp_path / "flags.parquet")])
    text = frame(bundle, 2)
    text[f[2]] = ["0.1", "x"]
    text.to_parquet(tmp_path / "text.parquet", index=False)
    with pytest.raises(
        InputError, match=rf"text.parquet row 1, column {f[2]} is a string \('0.1'\)"
    ):
        azure_driver.run([str(tmp_path / "text.parquet")])
    frame(bundle, 0).to_parquet(tmp_path / "empty.parquet", index=False)
    with pytest.raises(InputError, match=r"'empty.parquet' is empty"):
        azure_driver.run([str(tmp_path / "empty.parquet")])


def test_diabetes_a_prediction_that_overflows_names_its_row(
    diabetes_bundle: TrainedBundle, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Diabetes example: a linear regressor overflows on absurd inputs (a classifier's
    probabilities stay finite)."""
    clean_env.setenv("AZUREML_MODEL_DIR", str(diabetes_bundle.path))
    clean_env.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "job-output"))
    batch_driver.init()
    azure_driver = batch_driver
    n = diabetes_bundle.n_features
    rows = [[0.01] * n] * 3 + [[1.5e308] * n]
    columns = list(diabetes_bundle.spec.feature_names)
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "huge.csv", index=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy's overflow warnings are silenced
            with pytest.raises(InputError, match=r"huge.csv row 4: the prediction is not a finite"):
                azure_driver.run([str(tmp_path / "huge.csv")])
    finally:
        batch_driver._model = None
        batch_driver._output_dir = None


# -- chunk boundaries -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunked_output_equals_one_chunk(
    bundle: TrainedBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    data = demo_features(bundle)
    if suffix == ".csv":
        data.to_csv(inputs / "demo.csv", index=False)
    else:
        data.to_parquet(inputs / "demo.parquet", index=False)
    whole = tmp_path / "whole.csv"
    score_files(bundle.path, inputs, whole)
    monkeypatch.setattr(batch_driver, "CHUNK_ROWS", 7)
    monkeypatch.setattr(batch_driver, "CSV_BLOCK_BYTES", 512)
    seen: list[Progress] = []
    chunked = tmp_path / "chunked.csv"
    assert score_files(bundle.path, inputs, chunked, progress=seen.append).rows == len(data)
    one, many = pd.read_csv(whole, dtype=str), pd.read_csv(chunked, dtype=str)
    # Sources and features byte for byte. Outputs to the last bits only: numpy's `rows @
    # coef` rounds differently with the number of rows it is given (BLAS blocking).
    outputs = list(bundle.spec.output_names)
    pd.testing.assert_frame_equal(one.drop(columns=outputs), many.drop(columns=outputs))
    np.testing.assert_allclose(
        one[outputs].astype(float), many[outputs].astype(float), rtol=1e-12, atol=1e-15
    )
    assert len(seen) > 20  # many chunks
    assert [p.rows for p in seen] == sorted(p.rows for p in seen)
    assert seen[-1] == Progress(1, 1, len(data), seen[-1].bytes_total, seen[-1].bytes_total)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    ("suffix", "bad", "problem"),
    [(".csv", "oops", "is a string ('oops')"), (".parquet", None, "is missing")],
)
def test_a_bad_row_in_the_last_chunk_writes_nothing(
    bundle: TrainedBundle, tmp_path: Path, suffix: str, bad: str | None, problem: str
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    data = demo_features(bundle).astype(object)
    data.iloc[len(data) - 1, 3] = bad
    demo_features(bundle).head(20).to_csv(inputs / "a.csv", index=False)
    name = f"z{suffix}"
    if suffix == ".csv":
        data.to_csv(inputs / name, index=False)
    else:
        data.astype(float).to_parquet(inputs / name, index=False)
    for output in (tmp_path / "out" / "predictions.csv", tmp_path / "out" / "p.parquet"):
        with pytest.raises(InputError) as error:
            score_files(bundle.path, inputs, output)
        column = bundle.spec.feature_names[3]
        assert error.value.message.startswith(f"{name} row {len(data)}, column {column} {problem}")
        assert not output.parent.exists() or list(output.parent.iterdir()) == []


@pytest.mark.usefixtures("small_chunks")
def test_missing_value_row_numbers_count_across_chunks(
    bundle: TrainedBundle, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    data = demo_features(bundle)
    data.iloc[300, 9] = np.nan
    data.to_csv(inputs / "holes.csv", index=False)
    column = bundle.spec.feature_names[9]
    with pytest.raises(InputError, match=rf"holes.csv row 301, column {column} is missing"):
        score_files(bundle.path, inputs, tmp_path / "out.csv")


# -- the same output as the previous driver on the demo data ----------------------------------


def test_output_is_identical_to_the_previous_driver_on_the_demo_data(
    bundle: TrainedBundle, tmp_path: Path
) -> None:
    """Parquet in: byte for byte. CSV in: the same bytes as the previous driver with exact
    parsing; pandas' default CSV parser (the previous driver's) is off by one ulp on some
    demo values, pyarrow's is exact, so every feature is written back as it was read."""
    data = demo_features(bundle)
    inputs = tmp_path / "in"
    inputs.mkdir()
    data.to_parquet(inputs / "demo.parquet", index=False)
    data.to_csv(inputs / "demo.csv", index=False)
    output = tmp_path / "out.csv"
    assert score_files(bundle.path, inputs, output, bundle.digest).rows == 2 * len(data)
    from_csv = pd.read_csv(inputs / "demo.csv", float_precision="round_trip")
    expected = old_driver_csv(from_csv, "demo.csv", bundle)
    expected += old_driver_csv(pd.read_parquet(inputs / "demo.parquet"), "demo.parquet", bundle)
    header = ",".join(columns_of(bundle)) + "\n"
    expected = expected.replace(header, "")
    assert output.read_text() == header + expected
    # The features are written exactly as the input file holds them.
    n = bundle.n_features
    lines = output.read_text().splitlines()[1 : len(data) + 1]
    written = [line.split(",")[1 : n + 1] for line in lines]
    held = [line.split(",") for line in (inputs / "demo.csv").read_text().splitlines()[1:]]
    assert written == held

    parquet_out = tmp_path / "out.parquet"
    score_files(bundle.path, inputs, parquet_out, bundle.digest)
    previous = pd.read_csv(io.StringIO(header + expected), float_precision="round_trip")
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_out), previous)


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, -3.0, 151.0, 1e-4, 9.99e-5, 1e-5, -6.128357906057276e-05, 5e-324, 0.1,
     0.30000000000000004, 45419699185.48361, 1879335851662944.2, 1e15, 1e16,
     1.2345678901234568e17, 1e22, 123456.789, 2.0**53],
)  # fmt: skip
def test_floats_are_written_as_python_writes_them(value: float) -> None:
    assert csv_lines("a", np.array([[value, 0.5]])).to_pylist() == [f"a,{value!r},0.5"]


def test_random_floats_are_written_as_python_writes_them() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.normal(size=20_000),
            rng.normal(scale=1e-6, size=5_000),
            rng.normal(scale=1e18, size=5_000),
            np.round(rng.normal(scale=1000, size=5_000)),
            rng.uniform(-1, 1, size=5_000) * 10.0 ** rng.integers(-300, 300, size=5_000),
        ]
    )
    rows = values.reshape(-1, 8)
    expected = [",".join(["x", *map(repr, row)]) for row in rows.tolist()]
    assert csv_lines("x", rows).to_pylist() == expected
    assert all(math.isfinite(v) for v in values)


# -- local folders ----------------------------------------------------------------------------


def test_score_files_writes_one_csv_with_a_header(bundle: TrainedBundle, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    frame(bundle, 6).to_csv(inputs / "one.csv", index=False)
    frame(bundle, 2, start=6).to_parquet(inputs / "nested" / "two.parquet", index=False)
    (inputs / ".hidden").write_text("ignored")
    output = tmp_path / "out" / "predictions.csv"
    summary = score_files(bundle.path, inputs, output, bundle.digest)
    assert (summary.files, summary.rows) == (2, 8)
    written = pd.read_csv(output)
    assert tuple(written.columns) == columns_of(bundle)
    assert list(written["source_file"]) == ["nested/two.parquet"] * 2 + ["one.csv"] * 6
    expected = bundle.expected(np.vstack([bundle.rows[6:8], bundle.rows[:6]]))
    np.testing.assert_allclose(outputs_of(written, bundle), expected, atol=1e-6)
    assert pa_csv.read_csv(output).num_rows == 8  # pyarrow reads it too


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".PARQUET"])
def test_score_files_writes_parquet_by_suffix(
    bundle: TrainedBundle, tmp_path: Path, suffix: str
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 3).to_csv(inputs / "one.csv", index=False)
    output = tmp_path / f"predictions{suffix}"
    assert score_files(bundle.path, inputs, output).rows == 3
    table = pq.read_table(output)
    assert tuple(table.column_names) == columns_of(bundle)
    for name in bundle.spec.output_names:
        assert table.schema.field(name).type == pa.float64()


def test_score_files_writes_nothing_when_a_file_is_invalid(
    bundle: TrainedBundle, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 3).to_csv(inputs / "a.csv", index=False)
    _csv(inputs, header_and(bundle, "null"), "b.csv")
    output = tmp_path / "predictions.csv"
    output.write_text("the previous run\n")
    first = bundle.spec.feature_names[0]
    with pytest.raises(InputError, match=rf"b\.csv row 1, column {first} is missing"):
        score_files(bundle.path, inputs, output)
    assert output.read_text() == "the previous run\n"  # untouched
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in", "predictions.csv"]


def test_score_files_verifies_the_bundle(bundle: TrainedBundle, tmp_path: Path) -> None:
    copy = bundle.copy_to(tmp_path / "model")
    fast = json.loads((copy / "fast_path.json").read_text())
    fast["coef"][0] *= 2
    (copy / "fast_path.json").write_text(json.dumps(fast))
    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 1).to_csv(inputs / "a.csv", index=False)
    with pytest.raises(ModelLoadError, match=r"fast_path\.json"):
        score_files(copy, inputs, tmp_path / "out.csv")
    with pytest.raises(ModelLoadError, match="registry recorded"):
        score_files(bundle.path, inputs, tmp_path / "out.csv", "0" * 64)


def test_score_files_needs_input_files(bundle: TrainedBundle, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no files"):
        score_files(bundle.path, tmp_path, tmp_path / "out.csv")


def test_cli_helper_turns_errors_into_one_sentence(bundle: TrainedBundle, tmp_path: Path) -> None:
    from pipelines.batch import score_folder, summary_line
    from pipelines.errors import MlopsError

    inputs = tmp_path / "in"
    inputs.mkdir()
    frame(bundle, 2).to_csv(inputs / "a.csv", index=False)
    summary = score_folder(bundle.path, inputs, tmp_path / "out.csv", bundle.digest)
    assert summary.rows == 2
    assert summary_line(summary, "m:1", "out.csv").startswith("2 rows from 1 file scored with m:1")
    _csv(inputs, header_and(bundle, "x"), "b.csv")
    first = bundle.spec.feature_names[0]
    with pytest.raises(
        MlopsError, match=rf"b.csv row 1, column {first} is a string .*run batch-score"
    ):
        score_folder(bundle.path, inputs, tmp_path / "out.csv")
    with pytest.raises(MlopsError, match="registry recorded"):
        score_folder(bundle.path, inputs, tmp_path / "out.csv", "0" * 64)


def test_batch_scoring_allocates_from_jemalloc() -> None:
    # The pool whose footprint does not grow with the file (steady_memory_pool's docstring).
    if "jemalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow build has no jemalloc")
    batch_driver.steady_memory_pool()
    assert pa.default_memory_pool().backend_name == "jemalloc"
