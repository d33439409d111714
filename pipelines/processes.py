"""Local processes: free loopback ports, liveness, stopping. Standard library only.

Kept apart from the serving helpers so that modules a job's code snapshot reaches (the local
data-set store starts Azurite) import without the CLI's dependencies (rich, httpx).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie we already reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, IndexError):
        return True
    return status != "Z"


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process remains in the group.

    Orphaned zombies wait for PID 1 to reap them, which in containers may take long; they hold
    no resources, so they do not count.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_process(target: int | subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Stop a server: SIGTERM to its whole process group, SIGKILL after `grace_s`.

    Only a process that leads its own group (as start_inference_server makes it) has its group
    signalled; any other pid is signalled alone, so this never hits the caller's own group.
    """
    pid = target.pid if isinstance(target, subprocess.Popen) else target
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        if isinstance(target, subprocess.Popen):
            target.wait()
        return
    own_group = pgid == pid and pgid != os.getpgid(0)

    def signal_all(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if own_group:
                os.killpg(pgid, signum)
            else:
                os.kill(pid, signum)

    def alive() -> bool:
        if isinstance(target, subprocess.Popen):
            if target.poll() is None:
                return True
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.kill(pid, 0)
                return True
            except ProcessLookupError:
                pass
        # The master is gone; its workers may linger a moment.
        return own_group and _group_alive(pgid)

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        signal_all(signal.SIGKILL)
        while alive() and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    if isinstance(target, subprocess.Popen):
        with contextlib.suppress(subprocess.TimeoutExpired):
            target.wait(timeout=1)
