"""Benchmark: how fast `mlops` commands start, against the import floor of what they need.

    uv run python tests/benchmarks/bench_startup.py [--runs 5] [--json FILE]

Each command runs as a user runs it (`.venv/bin/mlops ...`, bytecode precompiled by
`make bootstrap`) in a fresh process, on a temporary state directory; the median wall time of
--runs runs is compared with:

- `mlops --help` and `mlops infra size`: an absolute bound of 0.5 s;
- `mlops validate` and `mlops train` on the bundled data: the import floor measured in the
  same run, `python -c "import mlflow, sklearn"` (what training really needs), plus 1.5 s:
  floor and command runs alternate, and the median of the per-run differences is compared.

The interpreter's own start (`python -c pass`) is shown for scale.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO_ROOT, Row, finish, paired_margin_row

VENV_BIN = REPO_ROOT / ".venv" / "bin"
QUICK_LIMIT_S = 0.5
FLOOR_MARGIN_S = 1.5


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def median_time(command: list[str], env: dict[str, str], runs: int) -> float:
    timed(command, env)  # warm the page cache
    return statistics.median(timed(command, env) for _ in range(runs))


def run(runs: int = 5) -> list[Row]:
    python, mlops = str(VENV_BIN / "python"), str(VENV_BIN / "mlops")
    floor_command = [python, "-c", "import mlflow, sklearn"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        env = {**os.environ, "MLOPS_STATE_DIR": str(Path(scratch) / "state"), "NO_COLOR": "1"}
        interpreter = median_time([python, "-c", "pass"], env, runs)
        print(f"  python -c pass: {interpreter:.2f} s", flush=True)
        rows.append(Row("start-up", "python -c pass", interpreter, "s"))
        for label, args in (
            ("mlops --help", ["--help"]),
            ("mlops infra size", ["infra", "size", "--rps", "100", "--latency-ms", "20"]),
        ):
            value = median_time([mlops, *args], env, runs)
            print(f"  {label}: {value:.2f} s", flush=True)
            rows.append(
                Row(
                    "start-up", label, value, "s", QUICK_LIMIT_S, "limit",
                    f"≤ {QUICK_LIMIT_S} s", value <= QUICK_LIMIT_S,
                )
            )  # fmt: skip
        for label, args in (("mlops validate", ["validate"]), ("mlops train", ["train"])):
            # The floor runs alternate with the command, and each run is compared with the floor
            # run beside it: the machine's speed drifts over a minute, and a floor measured
            # before all commands once read 2.8 s against a train measured in a slower minute.
            timed(floor_command, env)
            timed([mlops, *args], env)  # warm the page cache (and create the MLflow store)
            floors, values = [], []
            for _ in range(runs):
                floors.append(timed(floor_command, env))
                values.append(timed([mlops, *args], env))
            print(
                f"  {label}: {statistics.median(values):.2f} s "
                f"(import floor {statistics.median(floors):.2f} s)",
                flush=True,
            )
            rows.append(
                paired_margin_row(
                    "start-up", f"{label} (bundled data)", values, "s", floors,
                    "import floor: mlflow, sklearn", FLOOR_MARGIN_S,
                )
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows = run(args.runs)
    title = f"Command start-up benchmark (median of {args.runs} runs)"
    return finish(rows, title, args.json, benchmark="start-up", runs=args.runs)


if __name__ == "__main__":
    sys.exit(main())
