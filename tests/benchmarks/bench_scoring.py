"""Benchmark: scoring/score.py against a reference-style script, on the same inference server.

    uv run python tests/benchmarks/bench_scoring.py [--duration 4] [--rounds 3] [--cold-runs 5]
        [--workers 1] [--gunicorn-args ARGS] [--json FILE]

Every side runs under the real `azmlinfsrv` from the scoring venv, bound to 127.0.0.1, with the
same server settings (WORKER_COUNT, timeouts, bytecode precompiled); only the entry script
differs. Measured:

- cold start: process start -> first 200 on POST /score (median of --cold-runs starts);
- requests/s, p50/p99 latency and worker CPU per request, one-row requests at concurrency
  1, 8 and 32 (wrk);
- rows/s with 100-row requests at concurrency 8.

"ours" runs as it would be deployed (key check on, bundle digest verified) with collection off;
"ours + collection" adds local data collection; "floor" is a script that does nothing, i.e. the
server's own cost (both variants: cold start and concurrency 8 only). Sides are interleaved
(cold starts alternate, load points run side after side, round after round) and medians are
reported, so background load on a shared machine hits every side alike.
Load comes from `wrk` (Debian package; installed with apt-get when missing and running as
root). Every run is bounded in time; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from pipelines.scoring_env import (  # noqa: E402
    InferenceServer,
    ensure_scoring_env,
    free_port,
    start_inference_server,
    stop_process,
    wait_healthy,
)
from scoring.schema import EXAMPLE_ROW  # noqa: E402

BASELINE_SCRIPT = REPO_ROOT / "tests" / "benchmarks" / "baseline" / "score.py"
OUR_SCRIPT = REPO_ROOT / "scoring" / "score.py"
FLOOR_SCRIPT = REPO_ROOT / "tests" / "benchmarks" / "floor" / "score.py"
API_KEY = "benchmark-key-0123456789abcdef"
CONCURRENCY = (1, 8, 32)
BIG_BATCH = 100


@dataclass
class Side:
    """One configuration under test."""

    name: str
    entry_script: Path
    api_key: str | None = None
    digest: str | None = None
    collect: bool = False
    only_c8: bool = False  # a variant measured at concurrency 8 only
    cold_starts_s: list[float] = field(default_factory=list)
    load: dict[str, dict[str, float]] = field(default_factory=dict)


def ensure_wrk() -> str:
    """Path of wrk, installing the Debian package if needed (and allowed)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("wrk is missing: install it (apt-get install wrk) and run the benchmark again")
    print("installing wrk (apt-get) …", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk could not be installed")
    return found


def build_bundle(dest: Path) -> str:
    """Train the model and write its bundle, as the training step does."""
    from training.bundle import write_bundle
    from training.data import bundled_diabetes
    from training.model import TrainingConfig, golden_sample, split_data, train_model

    config = TrainingConfig()
    split = split_data(bundled_diabetes(), config)
    model = train_model(split.x_train, split.y_train, config)
    return write_bundle(model, dest, golden_sample(model, split, config))


def body(rows: int) -> bytes:
    return json.dumps({"data": [list(EXAMPLE_ROW)] * rows}).encode()


def headers(side: Side) -> dict[str, str]:
    result = {"Content-Type": "application/json"}
    if side.api_key:
        result["Authorization"] = f"Bearer {side.api_key}"
    return result


@dataclass(frozen=True)
class ServerSettings:
    """Deployment settings of the inference server, applied to every side alike."""

    workers: int = 1
    gunicorn_args: str = ""  # GUNICORN_CMD_ARGS, e.g. "--worker-class gthread --keep-alive 5"

    def describe(self) -> str:
        extra = f", GUNICORN_CMD_ARGS={self.gunicorn_args!r}" if self.gunicorn_args else ""
        return f"WORKER_COUNT={self.workers}{extra}"


def start(
    side: Side, bundle: Path, state: Path, server: ServerSettings, tag: str
) -> InferenceServer:
    port = free_port()
    return start_inference_server(
        bundle,
        port,
        api_key=side.api_key,
        model_sha256=side.digest,
        collect_dir=(state / f"collected-{tag}") if side.collect else None,
        log_file=state / f"{side.name.replace(' ', '_')}-{tag}.log",
        workers=server.workers,
        extra_env={"GUNICORN_CMD_ARGS": server.gunicorn_args} if server.gunicorn_args else None,
        entry_script=side.entry_script,
    )


def cold_start(side: Side, bundle: Path, state: Path, server: ServerSettings, run: int) -> float:
    """Seconds from process start to the first 200 on POST /score."""
    payload, request_headers = body(1), headers(side)
    started = time.perf_counter()
    process = start(side, bundle, state, server, f"cold{run}")
    try:
        deadline = started + 120
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                sys.exit(f"{side.name}: server exited during start; see {process.log_file}")
            connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=5)
            try:
                connection.request("POST", "/score", body=payload, headers=request_headers)
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    return time.perf_counter() - started
                sys.exit(f"{side.name}: /score answered {response.status} during start")
            except OSError:
                time.sleep(0.01)
            finally:
                connection.close()
        sys.exit(f"{side.name}: no 200 within 120 s; see {process.log_file}")
    finally:
        stop_process(process)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def worker_cpu_s(server: InferenceServer) -> float:
    """CPU seconds used so far by the server's gunicorn workers (children of the master)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def wrk_run(
    wrk: str,
    server: InferenceServer,
    side: Side,
    rows: int,
    connections: int,
    duration: int,
    scratch: Path,
) -> dict[str, float]:
    """One bounded wrk run: requests/s, p50/p99 (ms), worker CPU per request, error counts.

    CPU per request (from /proc) is the figure least disturbed by other load on the machine.
    """
    script = scratch / f"post-{rows}.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body(rows).decode())}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers(side).items()]
    script.write_text("\n".join(lines) + "\n")
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
        "--latency", "-s", str(script), f"{server.url}/score",
    ]  # fmt: skip
    cpu_before = worker_cpu_s(server)
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    cpu_used = worker_cpu_s(server) - cpu_before
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    result = {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _millis(re.search(r"\s50%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        "p99_ms": _millis(re.search(r"\s99%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        "cpu_ms_per_request": 1000 * cpu_used / max(requests, 1),
        "non_2xx": 0.0,
        "socket_errors": 0.0,
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        result["non_2xx"] = float(non_2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        result["socket_errors"] = float(sum(int(value) for value in errors.groups()))
    result["rows_per_s"] = result["requests_per_s"] * rows
    return result


POINTS: tuple[tuple[str, int, int], ...] = (
    ("c1", 1, 1),
    ("c8", 1, 8),
    ("c32", 1, 32),
    ("rows100_c8", BIG_BATCH, 8),
)


def load_tests(
    sides: list[Side],
    bundle: Path,
    state: Path,
    settings: ServerSettings,
    wrk: str,
    duration: int,
    rounds: int,
) -> None:
    """All servers up at once; each load point runs side after side, round after round.

    The machine may be shared: interleaving spreads any background noise over both sides, and
    the median over rounds discards a disturbed run.
    """
    servers = [start(side, bundle, state, settings, "load") for side in sides]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for side, server in zip(sides, servers, strict=True):
            wait_healthy(server.url, 120, server)
            wrk_run(wrk, server, side, 1, 8, 1, state)  # warm-up, discarded
        for round_ in range(rounds):
            for point, rows, connections in POINTS:
                for side, server in zip(sides, servers, strict=True):
                    if side.only_c8 and point != "c8":
                        continue
                    result = wrk_run(wrk, server, side, rows, connections, duration, state)
                    samples.setdefault((side.name, point), []).append(result)
                    print(
                        f"  round {round_ + 1} {point:<11} {side.name:<18} "
                        f"{result['requests_per_s']:8.1f} req/s  p50 {result['p50_ms']:6.2f} ms"
                        f"  p99 {result['p99_ms']:6.2f} ms"
                        f"  cpu {result['cpu_ms_per_request']:.3f} ms/req",
                        flush=True,
                    )
    finally:
        for server in servers:
            stop_process(server)
    for (name, point), results in samples.items():
        side = next(side for side in sides if side.name == name)
        side.load[point] = {
            key: statistics.median(result[key] for result in results) for key in results[0]
        }
        side.load[point]["non_2xx"] = sum(result["non_2xx"] for result in results)
        side.load[point]["socket_errors"] = sum(result["socket_errors"] for result in results)


def ratio(ours: float, base: float) -> float:
    return ours / base if base else float("nan")


def report(
    sides: list[Side], settings: ServerSettings, duration: int, rounds: int
) -> list[dict[str, object]]:
    base, ours = sides[0], sides[1]
    rows: list[dict[str, object]] = []

    def add(metric: str, b: float, o: float, target: str, passed: bool | None, unit: str) -> None:
        rows.append(
            {
                "metric": metric,
                "baseline": round(b, 3),
                "ours": round(o, 3),
                "ratio": round(ratio(o, b), 3),
                "unit": unit,
                "target": target,
                "pass": passed,
            }
        )

    cold_b = statistics.median(base.cold_starts_s)
    cold_o = statistics.median(ours.cold_starts_s)
    add("cold start (median)", cold_b, cold_o, "≤ 0.5×", cold_o <= 0.5 * cold_b, "s")
    for c in CONCURRENCY:
        key = f"c{c}"
        b, o = base.load[key], ours.load[key]
        rps_target = c == 8
        add(
            f"requests/s, 1 row, c={c}",
            b["requests_per_s"],
            o["requests_per_s"],
            "≥ 1.5×" if rps_target else "",
            o["requests_per_s"] >= 1.5 * b["requests_per_s"] if rps_target else None,
            "req/s",
        )
        add(f"p50, 1 row, c={c}", b["p50_ms"], o["p50_ms"], "", None, "ms")
        add(
            f"p99, 1 row, c={c}",
            b["p99_ms"],
            o["p99_ms"],
            "≤ 0.5×" if c == 8 else "",
            o["p99_ms"] <= 0.5 * b["p99_ms"] if c == 8 else None,
            "ms",
        )
    for key, label in (("c8", "1 row, c=8"), ("rows100_c8", "100 rows, c=8")):
        add(
            f"worker CPU per request, {label}",
            base.load[key]["cpu_ms_per_request"],
            ours.load[key]["cpu_ms_per_request"],
            "",
            None,
            "ms",
        )
    b, o = base.load["rows100_c8"], ours.load["rows100_c8"]
    add("rows/s, 100 rows, c=8", b["rows_per_s"], o["rows_per_s"], "", None, "rows/s")
    add("p99, 100 rows, c=8", b["p99_ms"], o["p99_ms"], "", None, "ms")
    # Variants, each against the same baseline figures.
    for side in sides[2:]:
        add(
            f"cold start: {side.name}", cold_b, statistics.median(side.cold_starts_s), "", None, "s"
        )
        for key, unit, metric in (
            ("requests_per_s", "req/s", "requests/s"),
            ("p99_ms", "ms", "p99"),
            ("cpu_ms_per_request", "ms", "worker CPU/request"),
        ):
            add(
                f"{metric}, c=8: {side.name}",
                base.load["c8"][key],
                side.load["c8"][key],
                "",
                None,
                unit,
            )

    print()
    print(
        f"Scoring benchmark: {settings.describe()}, medians of {rounds} rounds of {duration} s "
        "per load point, loopback"
    )
    header = f"{'metric':<52} {'baseline':>10} {'ours':>10} {'ratio':>7}  {'target':<7} pass"
    print(header)
    print("-" * len(header))
    for row in rows:
        verdict = {True: "yes", False: "NO", None: ""}[row["pass"]]  # type: ignore[index]
        print(
            f"{row['metric']:<52} {row['baseline']:>10} {row['ours']:>10} "
            f"{row['ratio']:>6}×  {row['target']:<7} {verdict}"
        )
    errors = {
        side.name: {k: v["non_2xx"] + v["socket_errors"] for k, v in side.load.items()}
        for side in sides
    }
    print(f"\nnon-2xx responses + socket errors per run: {errors}")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per load point")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every load point")
    parser.add_argument("--cold-runs", type=int, default=5, help="server starts per side")
    parser.add_argument("--workers", type=int, default=1, help="WORKER_COUNT for every side")
    parser.add_argument(
        "--gunicorn-args", default="", help="GUNICORN_CMD_ARGS for every side (server settings)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--no-collection", action="store_true", help="skip the 'ours + collection' variant"
    )
    args = parser.parse_args(argv)
    settings = ServerSettings(args.workers, args.gunicorn_args)

    wrk = ensure_wrk()
    ensure_scoring_env()
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as scratch:
        state = Path(scratch)
        bundle = state / "model"
        digest = build_bundle(bundle)
        sides = [
            Side("baseline", BASELINE_SCRIPT),
            Side("ours", OUR_SCRIPT, api_key=API_KEY, digest=digest),
        ]
        if not args.no_collection:
            sides.append(
                Side(
                    "ours + collection",
                    OUR_SCRIPT,
                    api_key=API_KEY,
                    digest=digest,
                    collect=True,
                    only_c8=True,
                )
            )
        sides.append(Side("floor (do-nothing script)", FLOOR_SCRIPT, only_c8=True))
        print("cold starts (interleaved; the first round warms the page cache)", flush=True)
        for run in range(args.cold_runs + 1):
            for side in sides:
                elapsed = cold_start(side, bundle, state, settings, run)
                if run:
                    side.cold_starts_s.append(elapsed)
        for side in sides:
            print(f"  {side.name}: {[round(value, 3) for value in side.cold_starts_s]}")
        print("load (wrk, interleaved rounds)", flush=True)
        load_tests(sides, bundle, state, settings, wrk, args.duration, args.rounds)
        rows = report(sides, settings, args.duration, args.rounds)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "workers": settings.workers,
                    "gunicorn_args": settings.gunicorn_args,
                    "duration_s": args.duration,
                    "rounds": args.rounds,
                    "cold_runs": args.cold_runs,
                    "rows": rows,
                    "sides": [
                        asdict(side)
                        | {"entry_script": str(side.entry_script.relative_to(REPO_ROOT))}
                        for side in sides
                    ],
                },
                indent=2,
            )
        )
    missed = [row["metric"] for row in rows if row["pass"] is False]
    if missed:
        print(f"\ntargets missed: {', '.join(map(str, missed))}")
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
