"""Benchmark: streaming batch scoring against the raw pyarrow/numpy pipeline, and its memory.

    uv run python tests/benchmarks/bench_batch.py [--sizes 100000,1000000,10000000] [--json F]

The data is generated here (diabetes-like scaled features, one Parquet file per size, written
with pyarrow's default row groups) into a temporary folder and deleted afterwards; nothing is
committed. Each run is its own process, so its peak memory is its own:

- ours: `scoring.batch_driver.score_sources` (the code behind `mlops batch-score` and the
  Azure ML driver): validation, the bundle's predict, CSV written as it goes;
Peak memory is the child's VmHWM (/proc/self/status): rusage's ru_maxrss would also count the
parent's size at fork time.

- raw: the limit, what the issue calls the raw pipeline: `pyarrow.parquet.read_table`, the
  coefficients applied with numpy, pyarrow's CSV writer; no validation, everything in memory.

Targets: at 1,000,000 rows ours at most 2 times raw's time (median of interleaved runs; CPU
seconds are shown too, the figure least disturbed by other load); peak memory at most 300 MB at
every size, and the 10,000,000-row peak at most 1.1 times the 1,000,000-row peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO_ROOT, Row, build_bundle, finish, ratio_row

DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
TARGET_ROWS = 1_000_000
MAX_PEAK_MB = 300.0
GENERATE_CHUNK = 1_000_000
REPEATS = 3  # runs of each side at TARGET_ROWS


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def generate(path: Path, rows: int) -> None:
    """Random scaled features like the diabetes set's, written chunk by chunk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.spec import load_spec

    # The benchmark scores the diabetes example: its features, from its definition.
    FEATURES = load_spec("diabetes").feature_names
    rng = np.random.default_rng(15)
    schema = pa.schema([(name, pa.float64()) for name in FEATURES])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, GENERATE_CHUNK):
            count = min(GENERATE_CHUNK, rows - start)
            matrix = rng.normal(scale=0.05, size=(count, len(FEATURES)))
            writer.write_table(pa.table(dict(zip(FEATURES, matrix.T, strict=True)), schema=schema))


def child_ours(bundle: Path, source: Path, output: Path) -> dict[str, float]:
    from scoring.batch_driver import score_sources
    from scoring.runtime import load_model

    model = load_model(bundle, None)
    started, cpu = time.perf_counter(), time.process_time()
    summary = score_sources(model, [(source, source.name)], output)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "rows": summary.rows,
    }


def child_raw(bundle: Path, source: Path, output: Path) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from scoring.model_bundle import FAST_PATH
    from training.spec import load_spec

    # The verified fast path of the diabetes ridge model: an affine map, identity link.
    fast_path = json.loads((bundle / FAST_PATH).read_text())
    coef, intercept = np.asarray(fast_path["coef"]), float(fast_path["intercept"])
    features = load_spec("diabetes").feature_names
    started, cpu = time.perf_counter(), time.process_time()
    table = pq.read_table(source)
    matrix = np.column_stack([table.column(name).to_numpy() for name in features])
    table = table.append_column("prediction", pa.array(matrix @ coef + intercept))
    pa_csv.write_csv(table, output)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "rows": table.num_rows,
    }


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure(kind: str, bundle: Path, source: Path, output: Path) -> dict[str, float]:
    """Run one side in its own process; its time, rows and peak memory (MB)."""
    command = [sys.executable, __file__, "--child", kind, str(bundle), str(source), str(output)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    if done.returncode != 0:
        sys.exit(f"{kind} on {source.name} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    output.unlink(missing_ok=True)
    return result


def run(sizes: tuple[int, ...] = DEFAULT_SIZES) -> list[Row]:
    rows: list[Row] = []
    peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        folder = Path(scratch)
        bundle = folder / "model"
        build_bundle(bundle)
        for size in sizes:
            source = folder / f"rows-{size}.parquet"
            started = time.perf_counter()
            generate(source, size)
            print(
                f"  {size:,} rows generated ({source.stat().st_size / 1e6:.0f} MB Parquet) in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            repeats = REPEATS if size == TARGET_ROWS else 1
            ours_runs, raw_runs = [], []
            for _ in range(repeats):  # interleaved: background load hits both sides alike
                ours_runs.append(measure("ours", bundle, source, folder / "ours.csv"))
                print(f"  ours {size:,}: {ours_runs[-1]}", flush=True)
                if size <= TARGET_ROWS:  # raw holds the whole table in memory: not at 10M
                    raw_runs.append(measure("raw", bundle, source, folder / "raw.csv"))
                    print(f"  raw  {size:,}: {raw_runs[-1]}", flush=True)
            ours = median_run(ours_runs)
            raw = median_run(raw_runs) if raw_runs else None
            source.unlink()
            label = f"{size:,} rows"
            if raw is not None:
                rows.append(
                    ratio_row(
                        "batch", f"time, {label} (Parquet → CSV)", ours["seconds"], "s",
                        raw["seconds"], "raw pyarrow/numpy pipeline",
                        at_most=2.0 if size == TARGET_ROWS else None,
                    )
                )  # fmt: skip
                rows.append(
                    ratio_row(
                        "batch", f"CPU, {label}", ours["cpu_s"], "s", raw["cpu_s"],
                        "raw pyarrow/numpy pipeline",
                    )
                )  # fmt: skip
            else:
                rows.append(Row("batch", f"time, {label} (Parquet → CSV)", ours["seconds"], "s"))
            rows.append(Row("batch", f"rows/s, {label}", size / ours["seconds"], "rows/s"))
            rows.append(
                Row(
                    "batch", f"peak memory, {label}", ours["peak_mb"], "MB", MAX_PEAK_MB,
                    "limit", f"≤ {MAX_PEAK_MB:.0f} MB", ours["peak_mb"] <= MAX_PEAK_MB,
                )
            )  # fmt: skip
            if raw is not None:
                rows.append(Row("batch", f"peak memory, {label}: raw", raw["peak_mb"], "MB"))
            peaks[size] = ours["peak_mb"]
    big, base = max(peaks), TARGET_ROWS
    if big > base and base in peaks:
        rows.append(
            ratio_row(
                "batch", f"peak memory, {big:,} vs {base:,} rows", peaks[big], "MB",
                peaks[base], f"peak at {base:,} rows", at_most=1.1,
            )
        )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "BUNDLE", "INPUT", "OUTPUT"))
    args = parser.parse_args(argv)
    if args.child:
        kind, bundle, source, output = args.child
        side = child_ours if kind == "ours" else child_raw
        print(json.dumps(side(Path(bundle), Path(source), Path(output)) | {"peak_mb": peak_mb()}))
        return 0
    sizes = tuple(int(size) for size in args.sizes.split(","))
    rows = run(sizes)
    return finish(rows, "Batch scoring benchmark", args.json, benchmark="batch", sizes=list(sizes))


if __name__ == "__main__":
    sys.exit(main())
