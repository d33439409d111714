"""Run `azmlinfsrv` bound to loopback: the local target's inference server.

`azmlinfsrv` always binds 0.0.0.0 (`DEFAULT_HOST` in its constants; no option changes it), which
would expose a laptop's model to its network. This launcher takes the same arguments
(`--entry_script`, `--port`, ...), sets the bind host, and runs the server's own `run()`.
It runs in the scoring environment: `.venv-scoring/bin/python scoring/local_server.py ...`.
"""

from __future__ import annotations

import os

BIND_HOST_VARIABLE = "SCORING_BIND_HOST"
LOOPBACK = "127.0.0.1"


def main() -> None:
    """Start the inference server on SCORING_BIND_HOST (default 127.0.0.1)."""
    from azureml_inference_server_http import amlserver

    # amlserver.run() passes its module-level DEFAULT_HOST to gunicorn's -b option.
    amlserver.DEFAULT_HOST = os.environ.get(BIND_HOST_VARIABLE, LOOPBACK)
    _disable_control_socket()
    amlserver.run()


def _disable_control_socket() -> None:
    """Gunicorn >= 25.1 opens a control socket at one fixed path per user (~/.gunicorn).

    Two local servers (a deployment and a test, blue and green) would fight over it, and nothing
    here uses it: switch it off where this gunicorn has the option.
    """
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        args = os.environ.get("GUNICORN_CMD_ARGS", "")
        if "--no-control-socket" not in args:
            os.environ["GUNICORN_CMD_ARGS"] = f"{args} --no-control-socket".strip()


if __name__ == "__main__":
    main()
