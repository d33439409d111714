"""`mlops release`, `serve`, `endpoints`, `teardown`, `batch-score`: serving on a target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipelines.console import console, display_path
from pipelines.errors import MlopsError
from pipelines.monitoring.layout import deployment_prefix
from pipelines.options import ModelName, Target, TargetName

if TYPE_CHECKING:
    from pipelines.registry import ModelRegistry, RegisteredVersion
    from pipelines.release.runner import ReleaseLog
    from pipelines.settings import Settings
    from pipelines.targets.base import ServingTarget

endpoints_app = typer.Typer(
    help="Local or Azure endpoints: list and call them.", no_args_is_help=True
)

ModelRef = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model reference: NAME@ALIAS or NAME:VERSION, e.g. diabetes-ridge@production "
        "[default: the newest registered version].",
    ),
]
BatchModelRef = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model reference: NAME@ALIAS or NAME:VERSION, e.g. diabetes-ridge:3 "
        "[default: NAME@production].",
    ),
]


def serving_target(target: TargetName, model_name: str | None) -> tuple[Settings, ServingTarget]:
    """Settings and the deployment target for a command."""
    if target is TargetName.azure:
        from pipelines.azure import commands

        return commands.target(model_name)
    from pipelines.registry import ModelRegistry
    from pipelines.settings import load_settings
    from pipelines.targets.local import LocalTarget

    settings = load_settings(model_name)
    return settings, LocalTarget(
        settings, ModelRegistry(settings.tracking_uri, settings.model_name)
    )


def resolve(registry: ModelRegistry, reference: str | None) -> RegisteredVersion:
    """The referenced version, or the newest one."""
    if reference:
        return registry.get(reference)
    versions = registry.versions()
    if not versions:
        raise MlopsError(
            f"no version of {registry.model_name} is registered; run `mlops run` first"
        )
    return versions[0]


def run_release(
    settings: Settings,
    target: ServingTarget,
    version: RegisteredVersion,
    report_dir: Path | None = None,
    stage: str = "all",
) -> ReleaseLog:
    """QA → smoke → production blue/green → smoke, with progress.

    Everything that can be checked is checked before anything is printed or deployed. The
    report (`release.json`) is written whatever the outcome, then a failure propagates as is.
    """
    from pipelines.release.runner import (
        REPORT_FILE,
        ReleaseLog,
        check_releasable,
        check_stage,
        outcome,
        release,
    )

    check_stage(stage)
    golden = check_releasable(target.registry, version)
    reports = report_folder(report_dir or settings.state_dir / "reports")
    what = {"all": "QA, then production blue/green", "qa": "QA only", "prod": "production only"}
    console.print(f"[bold]Releasing {version.ref}[/] ({what[stage]})")
    log = ReleaseLog(version=version.ref, stage=stage)
    try:
        release(
            target,
            target.registry,
            version,
            lambda line: console.print(f"  → {line}"),
            stage=stage,
            log=log,
            golden=golden,
        )
    except BaseException:
        try:
            log.write(reports)
            console.print(
                f"  release report ({outcome(log)}): {display_path(reports / REPORT_FILE)}"
            )
        except OSError as problem:  # never hide the release's own error behind this one
            console.print(
                f"  [red]the release report could not be written:[/] {escape(str(problem))}"
            )
        raise
    try:
        log.write(reports)
    except OSError as error:
        raise MlopsError(
            f"{version.ref} was released, but its report could not be written to {reports} "
            f"({error.strerror or error}); check the folder's permissions"
        ) from error
    where = "QA passed its smoke test" if stage == "qa" else "is in production"
    console.print(f"[green]✓[/] {version.ref} {where}; smoke reports in {display_path(reports)}")
    return log


def report_folder(folder: Path) -> Path:
    """The report folder, created now: a release never starts without a place for its report."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MlopsError(
            f"cannot create the report folder {folder} ({error.strerror or error}); "
            "pass another --report-dir"
        ) from error
    if not os.access(folder, os.W_OK):
        raise MlopsError(f"the report folder {folder} is not writable; pass another --report-dir")
    return folder


def describe_endpoints(target: ServingTarget) -> dict[str, str]:
    """One line per endpoint: which model serves where, with what traffic."""
    return {
        record.name: ", ".join(
            f"{name}: {deployed.model} at {deployed.url} ({record.traffic.get(name, 0)}%)"
            for name, deployed in record.deployments.items()
        )
        for record in target.endpoints()
    }


@endpoints_app.command("list")
def endpoints_list(model_name: ModelName = None, target: Target = TargetName.local) -> None:
    """Endpoints, their deployments (model version, port, pid, health) and traffic."""
    if target is TargetName.azure:
        from pipelines.azure import commands

        commands.endpoints_list(model_name)
        return
    from pipelines.targets.local import LocalTarget, process_alive

    _, local = serving_target(target, model_name)
    assert isinstance(local, LocalTarget)  # azure returned above
    records = local.endpoints()
    if not records:
        console.print("No endpoints are deployed; run `mlops release` (or `make demo`).")
        return
    table = Table(title="Local endpoints")
    for column in ("endpoint", "deployment", "model", "traffic", "url", "pid", "state"):
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts, a URL
    for record in records:
        for name, deployed in record.deployments.items():
            alive = process_alive(deployed.pid)
            table.add_row(
                record.name,
                name,
                deployed.model,
                f"{record.traffic.get(name, 0)}%",
                deployed.url,
                str(deployed.pid),
                "[green]running[/]" if alive else "[red]stopped[/]",
            )
    console.print(table)


def request_payload(data: str | None, file: Path | None) -> object:
    """The request body from --data (rows) or --file (a whole body), read and parsed."""
    if (data is None) == (file is None):
        raise MlopsError("pass exactly one of --data '[[...10 numbers...]]' or --file request.json")
    if data is not None:
        try:
            return {"data": json.loads(data)}
        except ValueError as error:
            raise MlopsError(
                f"--data is not valid JSON ({error}); pass rows like '[[0.03, 0.05, ...]]'"
            ) from error
    assert file is not None  # exactly one of the two, checked above
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise MlopsError(f"cannot read {file}: {reason}") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise MlopsError(
            f'{file} is not valid JSON ({error}); it must hold a request body like {{"data": '
            "[[...]]}"
        ) from error


@endpoints_app.command("invoke")
def endpoints_invoke(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name: qa or prod.")] = "prod",
    data: Annotated[
        str | None, typer.Option("--data", help='Rows as JSON, e.g. "[[0.03, 0.05, ...]]".')
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help='A JSON request body file ({"data": [...]}).')
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="Call one deployment directly.")
    ] = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Score rows on an endpoint (the key is sent for you and never printed)."""
    import httpx

    from pipelines.release.plan import check_endpoint
    from pipelines.targets.local import LocalTarget

    check_endpoint(endpoint)
    payload = request_payload(data, file)
    _, serving = serving_target(target, model_name)
    if isinstance(serving, LocalTarget):  # a stopped server is named, not a refused connection
        client = serving.running_client(endpoint, deployment)
    else:
        client = serving.client(endpoint, deployment)
    try:
        response = client.score(payload)
    except httpx.HTTPError as error:
        raise MlopsError(
            f"endpoint {endpoint} did not answer ({error}); check `mlops endpoints list`"
        ) from error
    console.print_json(response.text) if _is_json(response.text) else console.print(response.text)
    if response.status_code >= 400:
        raise MlopsError(f"endpoint {endpoint} answered {response.status_code}", exit_code=1)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def release_command(
    model: ModelRef = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Where release.json (outcome, steps, smoke-test reports) goes, also when the "
            "release fails [default: .mlops/reports].",
            file_okay=False,
        ),
    ] = None,
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            help="all: QA then production; qa or prod: one half (CI runs them with an approval "
            "between).",
        ),
    ] = "all",
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Deploy to QA, smoke test, then production blue/green with rollback; the alias moves last."""
    from pipelines.release.runner import check_stage

    check_stage(stage)  # before the target is even looked up
    settings, serving = serving_target(target, model_name)
    run_release(settings, serving, resolve(serving.registry, model), report_dir, stage)


def teardown_command(model_name: ModelName = None, target: Target = TargetName.local) -> None:
    """Stop every local deployment and the local blob storage (models and data stay)."""
    _, local = serving_target(target, model_name)
    stopped = local.teardown()
    console.print(
        f"Stopped {len(stopped)} local server(s){': ' + ', '.join(stopped) if stopped else ''}."
    )


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

    settings, local = serving_target(target, model_name)
    try:  # the scoring service's own rules, checked before anything starts
        scoring_settings({"SCORING_API_KEY": api_key} if api_key else {})
    except SettingsError as error:
        raise MlopsError(f"--api-key is not usable: {error}") from error
    version = resolve(local.registry, model)
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


def batch_score_command(
    input_dir: Annotated[
        Path,
        typer.Option(
            "--input", help="Folder of CSV or Parquet files.", file_okay=False, exists=True
        ),
    ],
    output: Annotated[Path, typer.Option("--output", help="File the predictions are written to.")],
    model: BatchModelRef = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Score every CSV/Parquet file of a folder with the batch driver (on Azure: a batch job)."""
    if target is TargetName.azure:
        from pipelines.azure import commands

        commands.batch_score(input_dir, output, model, model_name)
        return
    from pipelines.batch_commands import progress_bar, score_folder, summary_line

    _, local = serving_target(target, model_name)
    version = resolve(local.registry, model or f"{local.registry.model_name}@production")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = local.registry.download(version, Path(scratch) / "model")
        with progress_bar(f"Scoring {display_path(input_dir)}") as progress:
            summary = score_folder(
                bundle, input_dir, output, version.digest, model_ref=version.ref, progress=progress
            )
    console.print(f"[green]✓[/] {summary_line(summary, version.ref, display_path(output))}")
