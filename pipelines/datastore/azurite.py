"""Azurite, the Azure Storage emulator: the local stand-in for the workspace's blob storage.

Installed by `npm ci` from package.json/package-lock.json into node_modules/ (the Makefile does
it; `ensure_installed` does it on first use otherwise). It is started on demand by the local
target, like the inference servers: loopback only, on a port free at start, its data under
`<state>/azurite/`, its pid and port in `<state>/azurite/server.json`, stopped by
`mlops teardown` (and `make reset`).

The account is not Azurite's published development account: each state directory gets its own
account key, generated at first start and kept in a file only the user can read, handed to
Azurite through AZURITE_ACCOUNTS (Azurite README, "Customized Storage Accounts & Keys").
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.atomic import write_text_atomically
from pipelines.errors import MlopsError
from pipelines.settings import PROJECT_ROOT, Settings

ACCOUNT = "mlopslocal"
START_TIMEOUT_S = 60.0
_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class AzuriteServer:
    """A running Azurite blob service."""

    pid: int
    port: int
    account: str
    key: str

    @property
    def blob_endpoint(self) -> str:
        """Path-style endpoint of the account (Azurite's URL layout)."""
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        """Connection string for `BlobServiceClient.from_connection_string`."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};"
            f"AccountKey={self.key};BlobEndpoint={self.blob_endpoint};"
        )


def state_dir(settings: Settings) -> Path:
    """Azurite's folder under the state directory."""
    return settings.state_dir / "azurite"


def _record_path(settings: Settings) -> Path:
    return state_dir(settings) / "server.json"


def ensure_installed() -> Path:
    """The azurite-blob executable, installed with `npm ci` when it is missing."""
    if _BIN.exists():
        return _BIN
    npm = shutil.which("npm")
    if npm is None:
        raise MlopsError(
            "Azurite (the local blob storage) needs Node.js and npm; install them "
            "(e.g. `apt-get install nodejs npm`) and run `make azurite`"
        )
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not _BIN.exists():
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MlopsError(f"installing Azurite with `npm ci` failed ({tail[0]}); run `make azurite`")
    return _BIN


def _account_key(settings: Settings) -> str:
    """This state directory's account key: random, created once, readable by the user only."""
    path = state_dir(settings) / "account.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    write_text_atomically(path, key, mode=0o600)
    return key


def running(settings: Settings) -> AzuriteServer | None:
    """The Azurite server of this state directory, if it runs."""
    from pipelines.processes import process_alive

    path = _record_path(settings)
    if not path.exists():
        return None
    try:
        server = AzuriteServer(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    return server if process_alive(server.pid) and _answers(server) else None


def _answers(server: AzuriteServer) -> bool:
    """Whether the blob service answers HTTP (any status: unauthenticated calls get 403)."""
    try:
        with _NO_PROXY.open(f"{server.blob_endpoint}?comp=list", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def ensure_running(settings: Settings) -> AzuriteServer:
    """Start Azurite for this state directory unless it already runs; wait until it answers."""
    from pipelines import processes

    found = running(settings)
    if found is not None:
        return found
    executable = ensure_installed()
    folder = state_dir(settings)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    key = _account_key(settings)
    port = processes.free_port()
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{key}"}
    with (folder / "azurite.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(executable),
                *("--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data)),
                "--disableProductStyleUrl",
                # The SDK may speak a newer API version than this Azurite release knows.
                "--skipApiVersionCheck",
                "--silent",
            ],
            cwd=str(folder),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AzuriteServer(pid=process.pid, port=port, account=ACCOUNT, key=key)
    write_text_atomically(_record_path(settings), json.dumps(asdict(server)), mode=0o600)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(server):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(settings)
            raise MlopsError(
                f"Azurite did not start on 127.0.0.1:{port}; see its log "
                f"{folder / 'azurite.log'} and run `mlops teardown` before trying again"
            )
        time.sleep(0.1)
    return server


def is_azurite(pid: int) -> bool:
    """Whether the process runs Azurite (its command line, as /proc shows it)."""
    try:
        return b"azurite" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop(settings: Settings) -> bool:
    """Stop this state directory's Azurite; True if one was running."""
    from pipelines import processes

    path = _record_path(settings)
    if not path.exists():
        return False
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (ValueError, KeyError, TypeError):
        pid = 0
    # A stale record's pid may belong to another process by now: only ever signal Azurite.
    was_running = pid > 0 and processes.process_alive(pid) and is_azurite(pid)
    if was_running:
        processes.stop_process(pid)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return was_running
