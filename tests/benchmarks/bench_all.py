"""`make bench`: every benchmark in one run, one table of ratios, one JSON file.

    uv run python tests/benchmarks/bench_all.py [--json FILE] [--quick]

Runs, in order: command start-up (bench_startup.py), batch scoring at 100k, 1M and 10M rows
(bench_batch.py), the scoring service with and without data collection (bench_scoring.py), and
the instructions a request costs in process, counted by callgrind (bench_instructions.py).
Each figure is compared with a baseline or limit measured in the same run (see each script's
docstring). `--quick` runs shorter load points and smaller batch sizes, to check the
benchmarks themselves; its figures are not the ones to report. Exit code 1 when a target is
missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_batch
import bench_instructions
import bench_scoring
import bench_startup
from report import REPO_ROOT, Row, missed, print_table, write_json

DEFAULT_JSON = REPO_ROOT / ".mlops" / "benchmarks.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--quick", action="store_true", help="a short run, to check the scripts")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    durations: dict[str, float] = {}

    quick = args.quick
    parts: tuple[tuple[str, str, Callable[[], list[Row]]], ...] = (
        ("start-up", "command start-up", lambda: bench_startup.run(runs=2 if quick else 5)),
        (
            "batch",
            "batch scoring",
            lambda: bench_batch.run((10_000, 100_000) if quick else bench_batch.DEFAULT_SIZES),
        ),
        (
            "scoring",
            "scoring service and data collection",
            lambda: (
                bench_scoring.run(duration=1, rounds=1, cold_runs=1)
                if quick
                else bench_scoring.run()
            )[0],
        ),
        (
            "instructions",
            "instructions per request (callgrind)",
            lambda: (
                bench_instructions.run(requests=20, cpu_runs=1)
                if quick
                else bench_instructions.run()
            ),
        ),
    )
    rows: list[Row] = []
    for key, title, run in parts:
        print(title, flush=True)
        mark = time.perf_counter()
        rows += run()
        durations[key] = time.perf_counter() - mark

    total = time.perf_counter() - started
    print_table(rows, f"make bench: every benchmark ({total / 60:.1f} min, {platform.node()})")
    write_json(
        rows,
        args.json,
        benchmark="all",
        quick=args.quick,
        seconds=round(total, 1),
        seconds_per_benchmark={key: round(value, 1) for key, value in durations.items()},
        cpus=os.cpu_count(),
        python=platform.python_version(),
    )
    shown = args.json.relative_to(REPO_ROOT) if args.json.is_relative_to(REPO_ROOT) else args.json
    print(f"\nresults: {shown}")
    failures = missed(rows)
    if failures:
        print(f"targets missed: {'; '.join(failures)}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
