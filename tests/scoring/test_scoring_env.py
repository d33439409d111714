"""The scoring environment and the process layer the local target runs servers with."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pipelines import scoring_env
from pipelines.errors import MlopsError
from pipelines.scoring_env import (
    REPO_ROOT,
    REQUIREMENTS,
    InferenceServer,
    ensure_scoring_env,
    free_port,
    is_fresh,
    requirements_fingerprint,
    start_inference_server,
    stop_process,
    venv_python,
    wait_healthy,
)
from tests.scoring.conftest import TrainedBundle


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def locked_version(name: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    versions = [package["version"] for package in lock["package"] if package["name"] == name]
    assert len(versions) == 1, versions
    return str(versions[0])


def test_scoring_pins_the_training_scikit_learn() -> None:
    assert requirement_pins()["scikit-learn"] == locked_version("scikit-learn")


def test_server_and_collector_are_pinned() -> None:
    pins = requirement_pins()
    assert "azureml-inference-server-http" in pins
    assert "azureml-ai-monitoring" in pins


@pytest.fixture(scope="session")
def scoring_venv() -> Path:
    return ensure_scoring_env()


def test_pickle_from_training_loads_and_predicts_in_the_scoring_env(
    scoring_venv: Path, bundle: TrainedBundle
) -> None:
    rows = bundle.rows[:5]
    script = (
        "import json, pickle, sys, warnings, numpy as np, sklearn\n"
        "warnings.simplefilter('error')\n"  # an InconsistentVersionWarning fails the test
        f"model = pickle.load(open({str(bundle.path / 'model.pkl')!r}, 'rb'))\n"
        "import pandas as pd\n"
        "rows = pd.DataFrame(json.loads(sys.argv[1]), columns=list(model.feature_names_in_))\n"
        "print(json.dumps({'version': sklearn.__version__, "
        f"'predictions': model.{bundle.spec.predict_method}(rows).tolist()}}))\n"
    )
    result = subprocess.run(
        [str(venv_python(scoring_venv)), "-c", script, json_rows(rows)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    payload = __import__("json").loads(result.stdout)
    assert payload["version"] == locked_version("scikit-learn")
    np.testing.assert_allclose(payload["predictions"], bundle.expected(rows), atol=1e-9)


def json_rows(rows: np.ndarray) -> str:
    import json

    return json.dumps(rows.tolist())


def test_environment_is_stamped_with_its_requirements(scoring_venv: Path, tmp_path: Path) -> None:
    assert is_fresh(scoring_venv)
    changed = tmp_path / "requirements.txt"
    changed.write_text(REQUIREMENTS.read_text() + "rich==13.9.4\n")
    assert requirements_fingerprint(changed) != requirements_fingerprint(REQUIREMENTS)
    assert not is_fresh(scoring_venv, changed)
    commented = tmp_path / "commented.txt"
    commented.write_text("# a note\n\n" + REQUIREMENTS.read_text() + "  # trailing\n")
    assert requirements_fingerprint(commented) == requirements_fingerprint(REQUIREMENTS)


def test_missing_uv_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scoring").mkdir()
    shutil.copy(REQUIREMENTS, tmp_path / "scoring" / "requirements.txt")
    monkeypatch.setattr(scoring_env.shutil, "which", lambda name: None)
    monkeypatch.delenv("UV", raising=False)  # `uv run` exports its own path
    with pytest.raises(MlopsError, match="uv is not installed"):
        ensure_scoring_env(tmp_path)
    assert not (tmp_path / ".venv-scoring").exists()


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def _group_of_two(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A session leader with a child, like the gunicorn master and its worker."""
    pid_file = tmp_path / "child.pid"
    process = subprocess.Popen(
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], start_new_session=True
    )
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process, int(pid_file.read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state != "Z"


@pytest.mark.parametrize("by_pid", [False, True], ids=["popen", "pid"])
def test_stop_process_ends_the_whole_group(tmp_path: Path, by_pid: bool) -> None:
    process, child = _group_of_two(tmp_path)
    assert _alive(child)
    stop_process(process.pid if by_pid else process, grace_s=5)
    process.wait(timeout=5)
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the child of the group survived"
        time.sleep(0.02)


IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def test_stop_process_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", IGNORE_SIGTERM],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.readline() == b"up\n"
    started = time.monotonic()
    stop_process(process, grace_s=0.5)
    assert process.returncode == -9
    assert time.monotonic() - started < 5


def test_stop_process_of_a_gone_process_is_quiet() -> None:
    process = subprocess.Popen(["true"], start_new_session=True)
    process.wait()
    stop_process(process)
    stop_process(process.pid)


def _fake_server(tmp_path: Path, code: str) -> InferenceServer:
    log_file = tmp_path / "server.log"
    with log_file.open("wb") as log:
        process = InferenceServer(
            [sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT
        )
    process.log_file = log_file
    return process


def test_wait_healthy_fails_fast_with_the_reason_when_the_server_dies(tmp_path: Path) -> None:
    process = _fake_server(
        tmp_path,
        "import time, sys; time.sleep(0.2); "
        "print('C azmlinfsrv.score - scoring init failed, refusing to serve: model bundle failed "
        "its integrity check: model file model.pkl does not match'); sys.exit(3)",
    )
    started = time.monotonic()
    with pytest.raises(MlopsError) as error:
        wait_healthy(f"http://127.0.0.1:{free_port()}", 60, process)
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "exited with code 3 before it became healthy" in message
    assert "model file model.pkl does not match" in message
    assert str(tmp_path / "server.log") in message


def test_wait_healthy_times_out(tmp_path: Path) -> None:
    process = _fake_server(tmp_path, "import time; time.sleep(30)")
    try:
        with pytest.raises(MlopsError, match="not healthy after 1 s"):
            wait_healthy(f"http://127.0.0.1:{free_port()}", 1, process)
    finally:
        stop_process(process, grace_s=1)


def test_start_refuses_a_busy_port_and_a_missing_model(
    bundle: TrainedBundle, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(MlopsError, match=f"port {port} on 127.0.0.1 is in use"):
            start_inference_server(bundle.path, port)
    with pytest.raises(MlopsError, match="does not exist"):
        start_inference_server(tmp_path / "absent", free_port())


def test_uv_is_found_where_make_bootstrap_puts_it(tmp_path, monkeypatch) -> None:
    from pipelines.scoring_env import find_uv

    monkeypatch.delenv("UV", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_uv(tmp_path) is None
    tools = tmp_path / ".tools" / "bin"
    tools.mkdir(parents=True)
    (tools / "uv").write_text("#!/bin/sh\n")
    (tools / "uv").chmod(0o755)
    assert find_uv(tmp_path) == str(tools / "uv")
    monkeypatch.setenv("UV", str(tools / "uv"))
    assert find_uv(tmp_path / "elsewhere") == str(tools / "uv")
