"""Benchmark: instructions per request through the inference server's app, counted by callgrind.

    uv run python tests/benchmarks/bench_instructions.py [--requests 200] [--cpu-runs 3]
        [--json FILE]

CPU time on this shared machine varies by ±10-15% between identical runs; an instruction count
does not: valgrind's callgrind counts what a process executes, the same for the same binary and
inputs whatever else the machine does. So this is the figure to judge a small change to the
scoring path by. Each configuration runs `wsgi_driver.py` (the real server's Flask app in
process, the same request as the load benchmark, no sockets, no gunicorn) under callgrind twice,
with the same warm-up and 0 or --requests requests after it; the difference, divided by
--requests, is the instructions one request costs. Compared in the same run:

- scoring/score.py (key check on, digest verified) against the do-nothing floor script, at 1
  and 100 rows: the instructions the script adds to the server's own work;
- answers of 4 and 16 values written by orjson and returned as a Response against the same
  answers returned as a dict for the server's json.dumps: where `_WRITE_RESULT_FROM` lies;
- requests of 1 and 100 rows read by the other parser than the one their size takes (orjson
  below `scoring.schema._SIMDJSON_FROM_BYTES`, simdjson from there): where that threshold lies,
  in instructions and in CPU time.

Instructions are not CPU time: the script's numpy and parser calls run with cold caches after
the server's own work, so their share of the CPU (bench_scoring.py) is larger than their share
of the instructions. So the parser comparison also times the same driver without valgrind
(`--time-batches`: the least CPU time per request over batches of 100 requests; each side
runs --cpu-runs times, alternating, and the least is kept), after the callgrind runs. No targets
here; the figures are for comparing versions of the script.
valgrind comes from Debian (installed with apt-get when missing and running as root).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import (
    REPO_ROOT,
    Row,
    build_bundle,
    ensure_debian_tool,
    finish,
    ratio_row,
)

from pipelines.scoring_env import ensure_scoring_env, venv_python

DRIVER = REPO_ROOT / "tests" / "benchmarks" / "wsgi_driver.py"
OUR_SCRIPT = REPO_ROOT / "scoring" / "score.py"
FLOOR_SCRIPT = REPO_ROOT / "tests" / "benchmarks" / "floor" / "score.py"
API_KEY = "benchmark-key-0123456789abcdef"
REQUESTS = 200


@dataclass(frozen=True)
class Config:
    """One way of serving a request: which script, how many rows, which answer path."""

    name: str
    script: Path
    rows: int
    write_from: int | None = None  # the script's _WRITE_RESULT_FROM, overridden
    simdjson_from: int | None = None  # scoring.schema's _SIMDJSON_FROM_BYTES, overridden

    @property
    def ours(self) -> bool:
        return self.script == OUR_SCRIPT


CONFIGS = (
    Config("floor, 1 row", FLOOR_SCRIPT, 1),
    Config("ours, 1 row", OUR_SCRIPT, 1),
    Config("floor, 100 rows", FLOOR_SCRIPT, 100),
    Config("ours, 100 rows", OUR_SCRIPT, 100),
    Config("ours, 4 values as a dict", OUR_SCRIPT, 4, write_from=10**9),
    Config("ours, 4 values written", OUR_SCRIPT, 4, write_from=1),
    Config("ours, 16 values as a dict", OUR_SCRIPT, 16, write_from=10**9),
    Config("ours, 16 values written", OUR_SCRIPT, 16, write_from=1),
    Config("ours, 1 row read by simdjson", OUR_SCRIPT, 1, simdjson_from=0),
    Config("ours, 100 rows read by orjson", OUR_SCRIPT, 100, simdjson_from=2**62),
)
# Each parser at each size, timed without valgrind: (the other parser, the one the size takes).
PARSER_PAIRS = (
    ("ours, 1 row read by simdjson", "ours, 1 row"),
    ("ours, 100 rows read by orjson", "ours, 100 rows"),
)
CPU_REQUESTS = 6000  # timed in batches of 100
CPU_RUNS = 3


def driver_command(
    python: Path, config: Config, bundle: Path, digest: str, requests: int
) -> list[str]:
    """The driver serving `requests` requests of this configuration."""
    command = [
        str(python), str(DRIVER), str(config.script), str(bundle), str(config.rows),
        str(requests),
    ]  # fmt: skip
    if config.ours:
        command += ["--digest", digest, "--api-key", API_KEY]
    if config.write_from is not None:
        command += ["--write-from", str(config.write_from)]
    if config.simdjson_from is not None:
        command += ["--simdjson-from", str(config.simdjson_from)]
    return command


def _drive(command: list[str], name: str, pattern: str) -> float:
    """Run the driver; the number its output reports (`pattern`'s group), or exit naming why."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    match = re.search(pattern, done.stderr)
    if done.returncode != 0 or not match:
        sys.exit(f"{name}: the driver failed:\n{done.stderr[-2000:]}")
    return float(match.group(1))


def instructions(
    valgrind: str, python: Path, config: Config, bundle: Path, digest: str, requests: int
) -> int:
    """Instructions the whole driver run executed (callgrind's total)."""
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += driver_command(python, config, bundle, digest, requests)
    return int(_drive(command, config.name, r"Collected : (\d+)"))


def cpu_per_request(python: Path, config: Config, bundle: Path, digest: str) -> float:
    """The least CPU time (µs) a request of this configuration took, over batches of 100."""
    command = [*driver_command(python, config, bundle, digest, CPU_REQUESTS), "--time-batches"]
    return _drive(command, config.name, r"CPU per request: ([\d.]+) us")


def run(requests: int = REQUESTS, cpu_runs: int = CPU_RUNS) -> list[Row]:
    """Instructions per request of every configuration, and the parsers' CPU; the table's rows."""
    valgrind = ensure_debian_tool("valgrind")
    python = venv_python(ensure_scoring_env())
    configs = {config.name: config for config in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as scratch:
        bundle = Path(scratch) / "model"
        digest = build_bundle(bundle)
        jobs = [(config, count) for config in CONFIGS for count in (0, requests)]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            totals = list(
                pool.map(
                    lambda job: instructions(valgrind, python, job[0], bundle, digest, job[1]),
                    jobs,
                )
            )
        # One process at a time, the sides of a pair alternating: timings, not counts.
        cpu: dict[str, float] = {}
        for _ in range(cpu_runs):
            for name in (name for pair in PARSER_PAIRS for name in pair):
                least = cpu_per_request(python, configs[name], bundle, digest)
                cpu[name] = min(cpu.get(name, least), least)
    for name, least in cpu.items():
        print(f"  {name}: {least:.1f} µs of CPU per request at least", flush=True)
    per_request = {
        config.name: (totals[2 * index + 1] - totals[2 * index]) / requests
        for index, config in enumerate(CONFIGS)
    }
    for name, value in per_request.items():
        print(f"  {name}: {value:,.0f} instructions per request", flush=True)

    def row(metric: str, value: str, reference: str, reference_name: str) -> Row:
        return ratio_row(
            "scoring", metric, per_request[value], "instr", per_request[reference], reference_name
        )

    return [
        row("instructions per request in process, 1 row", "ours, 1 row", "floor, 1 row",
            "do-nothing floor script"),
        row("instructions per request in process, 100 rows", "ours, 100 rows",
            "floor, 100 rows", "do-nothing floor script"),
        row("answer of 4 values written by orjson", "ours, 4 values written",
            "ours, 4 values as a dict", "the same answer as a dict"),
        row("answer of 16 values written by orjson", "ours, 16 values written",
            "ours, 16 values as a dict", "the same answer as a dict"),
        row("1 row read by simdjson", "ours, 1 row read by simdjson", "ours, 1 row",
            "orjson, the parser at this size"),
        row("100 rows read by orjson", "ours, 100 rows read by orjson", "ours, 100 rows",
            "simdjson, the parser at this size"),
        *(
            ratio_row("scoring", f"CPU per request in process, {other.removeprefix('ours, ')}",
                      cpu[other], "µs", cpu[taken], "the parser at this size")
            for other, taken in PARSER_PAIRS
        ),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests counted")
    parser.add_argument(
        "--cpu-runs", type=int, default=CPU_RUNS, help="timed runs of each parser at each size"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows = run(args.requests, args.cpu_runs)
    title = f"Instructions per request (callgrind, {args.requests} requests)"
    return finish(rows, title, args.json, benchmark="instructions", requests=args.requests)


if __name__ == "__main__":
    sys.exit(main())
