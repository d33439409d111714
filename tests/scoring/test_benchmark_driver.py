"""The instruction benchmark's driver still drives the real server's app (bench_instructions.py).

It counts under callgrind, and with --time-batches reports the least CPU time per request.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from pipelines.scoring_env import REPO_ROOT, ensure_scoring_env, venv_python
from tests.bundles import TrainedBundle

pytestmark = pytest.mark.integration

DRIVER = REPO_ROOT / "tests" / "benchmarks" / "wsgi_driver.py"


@pytest.mark.parametrize(
    ("script", "options"),
    [
        ("tests/benchmarks/floor/score.py", []),
        ("scoring/score.py", ["--api-key", "benchmark-key-0123456789abcdef", "--write-from", "1"]),
        ("scoring/score.py", ["--simdjson-from", "0", "--time-batches"]),
    ],
)
def test_the_driver_gets_200s_from_the_servers_app(
    diabetes_bundle: TrainedBundle, script: str, options: list[str]
) -> None:
    python = venv_python(ensure_scoring_env())
    done = subprocess.run(
        [str(python), str(DRIVER), str(REPO_ROOT / script), str(diabetes_bundle.path), "3", "5",
         "--warm-up", "2", "--digest", diabetes_bundle.digest, *options],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    timed = re.search(r"CPU per request: ([\d.]+) us", done.stderr)
    assert (timed is not None) is ("--time-batches" in options)
    if timed:
        assert float(timed.group(1)) > 0
