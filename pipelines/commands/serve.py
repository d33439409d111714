"""`mlops serve`: one inference server in the foreground, its log followed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from pipelines import connect, lifecycle
from pipelines.commands.options import ModelName, ModelRef, Target, TargetName
from pipelines.console import console, display_path
from pipelines.datastore.layout import deployment_prefix
from pipelines.errors import MlopsError


def serve_command(
    model: ModelRef = None,
    port: Annotated[int, typer.Option("--port", help="Loopback port.", min=1, max=65535)] = 8123,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="SCORING_API_KEY",
            help="Require 'Authorization: Bearer KEY' (default: no auth, for debugging).",
        ),
    ] = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Run one inference server in the foreground (Ctrl-C stops it)."""
    from pipelines import scoring_env
    from pipelines.targets.local import HEALTH_TIMEOUT_S
    from scoring.settings import SettingsError
    from scoring.settings import load_settings as scoring_settings

    settings, local = connect.serving_target(target, model_name)
    try:  # the scoring service's own rules, checked before anything starts
        scoring_settings({"SCORING_API_KEY": api_key} if api_key else {})
    except SettingsError as error:
        raise MlopsError(f"--api-key is not usable: {error}") from error
    version = lifecycle.resolve(local.registry, model)
    folder = settings.state_dir / "serve" / str(port)
    bundle = local.registry.download(version, folder / "model")
    venv = scoring_env.ensure_scoring_env()
    log_file = settings.logs_dir / f"serve-{port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    process = scoring_env.start_inference_server(
        bundle,
        port,
        api_key=api_key,
        model_sha256=version.digest,
        collect_dir=settings.collected_dir / deployment_prefix("serve", str(port)),
        log_file=log_file,
        venv=venv,
    )
    # `kill` (SIGTERM) stops the server as cleanly as Ctrl-C does: never leave it orphaned.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with console.status(f"Starting the inference server for {version.ref}…"):
            scoring_env.wait_healthy(process.url, HEALTH_TIMEOUT_S, process)
        console.print(
            f"Serving {version.ref} on {process.url}/score "
            f"({'key required' if api_key else 'no auth'}); server log follows "
            f"({display_path(log_file)}); Ctrl-C to stop"
        )
        follow(log_file, process)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        scoring_env.stop_process(process)


def follow(log_file: Path, process: subprocess.Popen[bytes]) -> None:
    """Print the server log as it grows, until the server exits."""
    with log_file.open("r", encoding="utf-8", errors="replace") as stream:
        stream.seek(0, 2)  # what came before health is startup noise
        while process.poll() is None:
            line = stream.readline()
            if line:
                console.out(line.rstrip("\n"), highlight=False)
            else:
                time.sleep(0.2)
        console.out(stream.read(), highlight=False)
    raise MlopsError(
        f"the inference server exited with code {process.returncode}; see {display_path(log_file)}"
    )
