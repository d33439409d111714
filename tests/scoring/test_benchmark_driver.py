"""The instruction benchmark's driver still drives the real server's app (bench_instructions.py)."""

from __future__ import annotations

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
