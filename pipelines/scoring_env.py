"""The scoring environment and the local inference-server processes.

The scoring environment (`.venv-scoring`, installed with --require-hashes from the online lock
scoring/requirements.txt, the same file the image installs; `make locks` generates it from
scoring/requirements.in, see pipelines.locks) is kept apart from the ops environment: the
inference server pins an OpenTelemetry stack that azure-ai-ml cannot share (design note §3).
This module creates it on demand and runs the real Azure ML inference server from it, bound to
loopback, for the local target, the integration tests and the benchmark.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from rich.markup import escape

from pipelines.console import display_path, err_console
from pipelines.errors import MlopsError
from pipelines.locks import ONLINE, PYTHON, requirement_lines
from pipelines.processes import LOOPBACK, free_port, stop_process  # noqa: F401  (re-exported)

REPO_ROOT = Path(__file__).resolve().parent.parent
SCORING_DIR = REPO_ROOT / "scoring"
SCORING_LOCK = REPO_ROOT / ONLINE.lock
"""The online scoring lock: what the image and `.venv-scoring` install (hashes included)."""
REQUIREMENTS = SCORING_LOCK
ENTRY_SCRIPT = SCORING_DIR / "score.py"
LAUNCHER = SCORING_DIR / "local_server.py"
VENV_NAME = ".venv-scoring"
PYTHON_VERSION = PYTHON  # the Dockerfile's base image runs Python 3.11
STAMP_FILE = ".mlops-requirements.sha256"
# Below any endpoint request timeout; the server's own default is one hour.
DEFAULT_SCORING_TIMEOUT_MS = "10000"
# Lines of uv's output shown when it fails.
OUTPUT_TAIL_LINES = 15
# Inherited variables that would silently change the server's behaviour: the arguments of
# start_inference_server() are the whole configuration.
_SCRUBBED_PREFIXES = ("SCORING_", "AZUREML_", "AML_", "MODEL_SHA256", "WORKER_", "GUNICORN_")


class InferenceServer(subprocess.Popen[bytes]):
    """A running `azmlinfsrv` process (a Popen) with its address and log file."""

    url: str
    port: int
    log_file: Path


def scoring_venv(root: Path = REPO_ROOT) -> Path:
    """Where the scoring environment lives (git-ignored)."""
    return root / VENV_NAME


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / "bin" / "python"


def requirements_fingerprint(requirements: Path = REQUIREMENTS) -> str:
    """What the environment was built from: the Python version and the requirement lines.

    Comments and blank lines are left out, so editing a comment does not rebuild the venv.
    """
    lines = [f"python{PYTHON_VERSION}", *requirement_lines(requirements.read_text())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def is_fresh(venv: Path, requirements: Path = REQUIREMENTS) -> bool:
    """True when the environment exists and was built from the current requirements."""
    return stamp_matches(venv, requirements_fingerprint(requirements))


@contextlib.contextmanager
def env_lock(lock_file: Path) -> Iterator[None]:
    # Two commands (or test workers) creating an environment at once would corrupt it.
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    """Run uv quietly: its output (a line per installed package) is shown only if it fails."""
    result = subprocess.run(
        command,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-OUTPUT_TAIL_LINES:])
        if tail:
            err_console.print(escape(tail), style="dim", soft_wrap=True)
        raise MlopsError(
            f"{what} failed (exit code {result.returncode}); "
            + ("uv's last lines are above; " if tail else "")
            + "fix the cause, then run the command again"
        )


def _precompile(venv: Path, paths: list[Path]) -> None:
    # PYTHONDONTWRITEBYTECODE may be set (it is in CI): without .pyc files every server start
    # compiles its imports again, ~3x slower (design note §2). Some test files inside packages
    # do not compile; compileall reports them and that is harmless, so its exit code is ignored.
    subprocess.run(
        [str(venv_python(venv)), "-m", "compileall", "-q", "-j", "0", *map(str, paths)],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def find_uv(root: Path = REPO_ROOT) -> str | None:
    """uv: the one running us (`uv run` exports UV), on PATH, or the Makefile's `.tools/` copy."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(root / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_scoring_env(root: Path = REPO_ROOT, *, force: bool = False) -> Path:
    """Create or refresh `.venv-scoring` from the scoring lock; return the venv path.

    Fast when the environment is current (a stamp file holds the lock's hash); otherwise
    rebuilds it with uv (--require-hashes: exactly the locked files) and precompiles its
    bytecode. Raises MlopsError if uv is missing or the installation fails.
    """
    venv = scoring_venv(root)
    requirements = root / ONLINE.lock
    with env_lock(root / ".mlops" / "scoring-env.lock"):
        if not force and is_fresh(venv, requirements):
            _precompile(venv, [root / "scoring"])  # our own sources change between runs
            return venv
        build_venv(
            venv,
            PYTHON_VERSION,
            ["--require-hashes", "-r", str(requirements)],
            requirements_fingerprint(requirements),
            what="the scoring environment",
            root=root,
        )
        _precompile(venv, [root / "scoring"])
    return venv


def build_venv(
    venv: Path,
    python_version: str,
    install_args: list[str],
    fingerprint: str,
    *,
    what: str,
    root: Path = REPO_ROOT,
) -> Path:
    """(Re)create `venv` with uv, install `install_args`, precompile, then stamp `fingerprint`.

    The stamp is written last: an interrupted build is rebuilt next time, never used half-made.
    Callers hold a lock and check the stamp first.
    """
    uv = find_uv(root)
    if uv is None:
        raise MlopsError(
            f"uv is not installed, and {what} needs it; run `make bootstrap` (it installs uv) "
            "or `pip install uv`, then run the command again"
        )
    err_console.print(f"[bold]Creating {what}[/] in {escape(display_path(venv))} …")
    (venv / STAMP_FILE).unlink(missing_ok=True)
    _run([uv, "venv", "--clear", "--python", python_version, str(venv)], "creating the venv")
    err_console.print("Installing its packages …")
    _run(
        [uv, "pip", "install", "--python", str(venv_python(venv)), *install_args],
        f"installing the packages of {what}",
    )
    err_console.print("Precompiling bytecode (faster starts) …")
    _precompile(venv, [venv / "lib"])
    (venv / STAMP_FILE).write_text(fingerprint + "\n")
    err_console.print(f"[green]{what[0].upper()}{what[1:]} is ready.[/]")
    return venv


def stamp_matches(venv: Path, fingerprint: str) -> bool:
    """Whether `venv` was completely built from `fingerprint`."""
    stamp = venv / STAMP_FILE
    return (
        venv_python(venv).is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: connections lingering in TIME_WAIT don't make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def write_api_specs(model_dir: Path, dest: Path) -> Path:
    """The served API specs of the bundle under `model_dir`, written into `dest` (returned)."""
    from scoring.model_bundle import IntegrityError
    from scoring.openapi import api_model, write_specs

    try:
        write_specs(dest, api_model(model_dir))
    except (IntegrityError, OSError, ValueError, KeyError, IndexError) as error:
        raise MlopsError(
            f"the model in {display_path(model_dir)} has no readable contract ({error}); "
            "train and register it again"
        ) from error
    return dest


def server_url(port: int) -> str:
    """Base URL of a local inference server."""
    return f"http://{LOOPBACK}:{port}"


def start_inference_server(
    bundle_dir: Path,
    port: int,
    *,
    api_key: str | None = None,
    model_sha256: str | None = None,
    collect_dir: Path | None = None,
    log_file: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
    entry_script: Path = ENTRY_SCRIPT,
    venv: Path | None = None,
) -> InferenceServer:
    """Start `azmlinfsrv` from the scoring environment on 127.0.0.1:port; return at once.

    The process leads its own process group (stop_process ends the gunicorn master and its
    workers together). The API key travels in the environment only, never in argv, so `ps`
    does not show it. Output goes to `log_file` (a temporary file when not given). Call
    wait_healthy() next.
    """
    if not bundle_dir.is_dir():
        raise MlopsError(
            f"model folder {display_path(bundle_dir)} does not exist; register or pull it first"
        )
    if not _port_is_free(port):
        raise MlopsError(f"port {port} on {LOOPBACK} is in use; stop what holds it or pick another")
    venv = venv or ensure_scoring_env()
    python = venv_python(venv)
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(_SCRUBBED_PREFIXES)
    }
    if log_file is None:
        handle, name = tempfile.mkstemp(prefix="azmlinfsrv-", suffix=".log")
        os.close(handle)
        log_file = Path(name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    api_dir = write_api_specs(bundle_dir, log_file.with_name(f"{log_file.stem}-api"))
    env.update(
        {
            "AZUREML_MODEL_DIR": str(bundle_dir.resolve()),
            # The server reads swagger*.json from AML_APP_ROOT, written from the bundle's
            # contract; the entry script is given by path, so the code stays where it is.
            "AML_APP_ROOT": str(api_dir.resolve()),
            "WORKER_COUNT": str(workers),
            "SCORING_TIMEOUT_MS": DEFAULT_SCORING_TIMEOUT_MS,
        }
    )
    if api_key:
        env["SCORING_API_KEY"] = api_key
    if model_sha256:
        env["MODEL_SHA256"] = model_sha256
    if collect_dir is not None:
        collect_dir.mkdir(parents=True, exist_ok=True)
        env["SCORING_COLLECT_DIR"] = str(collect_dir.resolve())
    env.update(extra_env or {})
    command = [
        str(python),
        str(LAUNCHER),
        "--entry_script",
        str(entry_script.resolve()),
        "--port",
        str(port),
    ]
    with log_file.open("ab") as log:
        process = InferenceServer(
            command,
            cwd=str(entry_script.resolve().parent),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process.url = server_url(port)
    process.port = port
    process.log_file = log_file
    return process


def log_tail(log_file: Path, lines: int = 20) -> str:
    """The last lines of a server log."""
    try:
        with log_file.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 16_384))
            text = stream.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _failure_reason(log_file: Path) -> str:
    """The clearest line of a failed start: score.py logs 'refusing to serve: <why>'."""
    tail = log_tail(log_file, lines=400).splitlines()
    for line in reversed(tail):
        if "refusing to serve:" in line:
            return line.split("refusing to serve:", 1)[1].strip()
    for line in reversed(tail):
        if "Error" in line or "error" in line:
            return line.strip()
    return "no reason in the log"


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_healthy(
    url: str, timeout_s: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> float:
    """Poll the server's health route until it answers 200; return the seconds it took.

    Fails fast, with the log tail, if `process` exits first (a bundle that fails its
    integrity check makes the server exit); raises MlopsError on timeout.
    """
    started = time.monotonic()
    probe = url.rstrip("/") + "/"
    log_file = getattr(process, "log_file", None)
    while True:
        if process is not None and process.poll() is not None:
            reason = _failure_reason(log_file) if log_file else "no log file"
            if log_file:
                err_console.print(escape(log_tail(log_file)), style="dim", highlight=False)
            raise MlopsError(
                f"the inference server exited with code {process.returncode} before it became "
                f"healthy: {reason}"
                + (f" (full log: {display_path(log_file)})" if log_file else "")
            )
        try:
            with _NO_PROXY.open(probe, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - started > timeout_s:
            raise MlopsError(
                f"the inference server at {url} is not healthy after {timeout_s:.0f} s"
                + (f"; read {display_path(log_file)}" if log_file else "")
            )
        time.sleep(0.05)
