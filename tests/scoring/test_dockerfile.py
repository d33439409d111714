"""The scoring image definition: checkov-clean, pinned, non-root, precompiled, self-checking."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pipelines.scoring_env import PYTHON_VERSION, REPO_ROOT

DOCKERFILE = REPO_ROOT / "scoring" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_checkov_finds_no_failure() -> None:
    checkov = Path(sys.executable).parent / "checkov"
    result = subprocess.run(
        [str(checkov), "--framework", "dockerfile", "-f", str(DOCKERFILE), "--skip-download",
         "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0, report.get("results", {}).get("failed_checks")
    assert report["summary"]["passed"] >= 20
    assert result.returncode == 0


def test_base_image_is_the_pinned_azure_ml_inference_image_for_our_python() -> None:
    bases = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(bases) == 1
    image, _, tag = bases[0].partition(":")
    assert image.startswith("mcr.microsoft.com/azureml/")
    assert "inference" in image
    assert f"py{PYTHON_VERSION.replace('.', '')}" in image  # same Python as the local venv
    assert tag and tag != "latest"


def test_image_installs_the_requirements_runs_as_non_root_and_checks_itself() -> None:
    steps = instructions()
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert "pip install" in runs
    # Exactly the locked files: every pin hashed (tests/pipelines/test_locks.py), pip checks them.
    assert "pip install --no-cache-dir --require-hashes" in runs
    assert "-r /tmp/scoring-requirements.txt" in runs
    assert "COPY scoring/requirements.txt /tmp/scoring-requirements.txt" in " ".join(
        f"{k} {a}" for k, a in steps
    )
    assert "-m compileall" in runs
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users[-1] not in ("root", "0", "root:root")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in steps)
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert "AZUREML_ENTRY_SCRIPT=/var/azureml-app/scoring/score.py" in env
    assert "AML_APP_ROOT=/var/azureml-app/scoring" in env
    assert any(k == "COPY" and a == "scoring/ /var/azureml-app/scoring/" for k, a in steps)


def test_everything_the_image_serves_is_in_the_copied_folder() -> None:
    # The API specs are not committed: `mlops package` writes them from the bundle's contract
    # (tests/azure/test_commands.py checks the context).
    scoring = REPO_ROOT / "scoring"
    for name in ("score.py", "requirements.txt", "openapi.py"):
        assert (scoring / name).is_file()
