"""The `mlops` command line: every lifecycle step, on the local target or Azure."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
from rich.markup import escape
from rich.table import Table

from pipelines.console import console, err_console
from pipelines.errors import MlopsError
from pipelines.gate_summary import write_gate_summary
from pipelines.infra_commands import infra_app
from pipelines.monitoring.commands import feedback_command, monitor_command
from pipelines.options import (
    Alpha,
    DataPath,
    FailOnReject,
    Metric,
    MinImprovement,
    ModelName,
    RunId,
    Seed,
    SummaryFile,
    Target,
    TargetName,
    TestSize,
)
from pipelines.pipeline_commands import package_command, pipeline_app
from pipelines.release_commands import (
    batch_score_command,
    endpoints_app,
    release_command,
    serve_command,
    teardown_command,
)

if TYPE_CHECKING:
    from pipelines.gate import GateConfig, GateDecision
    from pipelines.registry import RegisteredVersion
    from pipelines.steps import Tracking, TrainOutcome
    from training.model import TrainingConfig

REJECTED_EXIT_CODE = 3

# Click's exceptions, from the Click that Typer uses (recent Typers ship their own copy).
_click_errors = sys.modules[typer.BadParameter.__module__]


def print_error(message: str, details: Sequence[str] = (), hint: str | None = None) -> None:
    """The CLI's error style on stderr: the details, then `error: <one sentence>` on one line."""
    for detail in details:
        err_console.print(f"  [red]✗[/] {escape(detail)}", soft_wrap=True)
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"  [dim]{escape(hint)}[/]", soft_wrap=True)


def _sentence(message: str) -> str:
    """Click's message as one line in the CLI's style: lower-case start, no final period."""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text.removesuffix(".")


def _plain_help(command: Any) -> None:
    """Help text is plain text: escape what Rich markup would swallow, e.g. `[default: …]`."""
    if typer.core.HAS_RICH and getattr(command, "rich_markup_mode", None) == "rich":
        for name in ("help", "short_help", "epilog"):
            if getattr(command, name, None):
                setattr(command, name, escape(getattr(command, name)))
        for param in command.params:
            if getattr(param, "help", None):
                param.help = escape(param.help)
    for subcommand in getattr(command, "commands", {}).values():
        _plain_help(subcommand)


class MlopsGroup(typer.core.TyperGroup):
    """The `mlops` command: literal help text everywhere, usage errors on one line.

    Every command and sub-app hangs below this group, so one pass over the tree covers all
    of them, including the options defined in other modules.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_help(self)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main; in standalone mode a usage error is `error: …` instead of a panel."""
        arguments: dict[str, Any] = {
            "args": args,
            "prog_name": prog_name,
            "complete_var": complete_var,
            "standalone_mode": False,
            "windows_expand_args": windows_expand_args,
            **extra,
        }
        if not standalone_mode:
            return super().main(**arguments)
        try:
            code = super().main(**arguments)
        except _click_errors.ClickException as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # `mlops` alone: the help, shown
                if error.format_message():  # already, unless Rich is off
                    error.show()
                sys.exit(error.exit_code)
            context = getattr(error, "ctx", None)
            hint = f"see `{context.command_path} --help`" if context is not None else None
            print_error(_sentence(error.format_message()), hint=hint)
            sys.exit(error.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="mlops",
    help="Train, gate, register, release and operate the diabetes model, locally or on Azure.",
    cls=MlopsGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Registered model versions.", no_args_is_help=True)


def main() -> None:
    """Console entry point: turn MlopsError into one red sentence and an exit code."""
    try:
        app()
    except MlopsError as error:
        print_error(str(error), error.details)
        sys.exit(error.exit_code)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while a step runs; a tick when it is done."""
    with console.status(f"{title}…"):
        yield
    console.print(f"[green]✓[/] {title}")


def tracking_for(target: TargetName, model_name: str | None) -> Tracking:
    """The MLflow tracking server of the chosen target."""
    if target is TargetName.azure:
        from pipelines.azure import commands

        return commands.tracking(model_name)
    from pipelines.settings import load_settings
    from pipelines.steps import Tracking

    return Tracking(load_settings(model_name))


def training_config(
    alpha: float | None, seed: int | None, test_size: float | None
) -> TrainingConfig:
    """Project defaults with the command-line overrides applied."""
    from training.model import TrainingConfig

    overrides: dict[str, Any] = {"alpha": alpha, "seed": seed, "test_size": test_size}
    try:
        return replace(TrainingConfig(), **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as error:
        raise MlopsError(f"invalid training setting: {error}") from error


def gate_config(metric: str | None, min_improvement: float | None) -> GateConfig:
    """Gate defaults with the command-line overrides applied."""
    from pipelines.gate import GateConfig, GateError

    overrides: dict[str, Any] = {"metric": metric, "min_improvement": min_improvement}
    try:
        return replace(GateConfig(), **{k: v for k, v in overrides.items() if v is not None})
    except GateError as error:
        raise MlopsError(f"invalid gate setting: {error}") from error


def metrics_text(metrics: dict[str, float]) -> str:
    """`rmse 54.01 · mae 44.42 · r2 0.449`."""
    return " · ".join(
        f"{key} {metrics[key]:.4g}" for key in ("rmse", "mae", "r2") if key in metrics
    )


def report_decision(decision: GateDecision) -> None:
    """Print the gate outcome: a rejection is an outcome, explained, not a crash."""
    if decision.passed:
        console.print(f"[green]✓ gate passed:[/] {decision.reason}")
    else:
        console.print(f"[yellow]✗ gate rejected the candidate:[/] {decision.reason}")
        console.print("  Nothing was registered; production is unchanged.")


@app.command()
def validate(data: DataPath = None) -> None:
    """Run the data tests: schema, missing values, ranges and distribution."""
    from pipelines.steps import load_and_validate

    with step("Data tests"):
        frame = load_and_validate(data)
    console.print(f"  {len(frame)} rows passed every rule")


@app.command()
def train(
    data: DataPath = None,
    alpha: Alpha = None,
    seed: Seed = None,
    test_size: TestSize = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Data tests, then train the ridge model and log the run (params, metrics, lineage)."""
    config = training_config(alpha, seed, test_size)
    tracking = tracking_for(target, model_name)
    outcome = _train(tracking, config, data)
    console.print(f"  run id {outcome.run_id}; next: mlops evaluate --run-id {outcome.run_id}")


def _train(tracking: Tracking, config: TrainingConfig, data: DataPath) -> TrainOutcome:
    from pipelines.steps import train as train_step

    with step(f"Data tests and training (alpha={config.alpha:g}, seed={config.seed})"):
        outcome = train_step(tracking, config, data)
    console.print(
        f"  holdout {metrics_text(outcome.metrics)} "
        f"(mean baseline {metrics_text(outcome.baseline_metrics)})"
    )
    return outcome


@app.command()
def evaluate(
    run_id: RunId = None,
    metric: Metric = None,
    min_improvement: MinImprovement = None,
    fail_on_reject: FailOnReject = False,
    summary_file: SummaryFile = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """The gate: compare the run's model with production (or the baseline) on the same holdout."""
    from pipelines.steps import evaluate as evaluate_step

    config = gate_config(metric, min_improvement)
    tracking = tracking_for(target, model_name)
    with step("Gate"):
        _, decision = evaluate_step(tracking, run_id, config)
    report_decision(decision)
    if summary_file is not None:
        write_gate_summary(summary_file, decision, None)
    if not decision.passed and fail_on_reject:
        raise typer.Exit(REJECTED_EXIT_CODE)


@app.command()
def register(
    run_id: RunId = None, model_name: ModelName = None, target: Target = TargetName.local
) -> None:
    """Register the run's model with its lineage tags; refused unless the gate passed it."""
    from pipelines.steps import register as register_step

    tracking = tracking_for(target, model_name)
    with step("Registration"):
        version = register_step(tracking, run_id)
    console.print(f"  registered {version.ref} (sha256 {version.digest[:12]}…)")


@app.command()
def run(
    data: DataPath = None,
    alpha: Alpha = None,
    seed: Seed = None,
    test_size: TestSize = None,
    metric: Metric = None,
    min_improvement: MinImprovement = None,
    fail_on_reject: FailOnReject = False,
    release: Annotated[
        bool,
        typer.Option(
            "--release/--no-release",
            help="After registration, release: QA → smoke → production blue/green → smoke.",
        ),
    ] = True,
    summary_file: SummaryFile = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """The whole chain: data tests → train → gate → register → release, with a summary.

    On `--target azure` the chain is the Azure ML training pipeline on the workspace's cluster
    (`mlops pipeline run`); the release is the release pipeline's job (`mlops release`).
    """
    if target is TargetName.azure:
        from pipelines.pipeline_commands import pipeline_run

        if data is not None and not str(data).startswith("azureml:"):
            raise MlopsError(
                f"on Azure the training data must be a data asset (azureml:NAME:VERSION), not "
                f"{data}; upload it as one, or pass a cloud URI to `mlops pipeline run --data`"
            )
        pipeline_run(
            data=str(data) if data else None, alpha=alpha, seed=seed, test_size=test_size,
            metric=metric, min_improvement=min_improvement, fail_on_reject=fail_on_reject,
            summary_file=summary_file, wait=True, model_name=model_name,
        )  # fmt: skip
        if release:
            console.print("  release it with `mlops release --target azure --model NAME:VERSION`")
        return
    tracking = tracking_for(target, model_name)
    result = lifecycle(
        tracking,
        training_config(alpha, seed, test_size),
        gate_config(metric, min_improvement),
        data,
        release=release,
        target=target,
        summary_file=summary_file,
    )
    summary(tracking, result)
    if not result.decision.passed and fail_on_reject:
        raise typer.Exit(REJECTED_EXIT_CODE)


@dataclass(frozen=True)
class LifecycleResult:
    """What one pass of the lifecycle did."""

    run_id: str
    metrics: dict[str, float]
    decision: GateDecision
    version: RegisteredVersion | None
    deployed: dict[str, str]
    blue_green: bool  # the release put the new model beside a live one


def lifecycle(
    tracking: Tracking,
    config: TrainingConfig,
    gate: GateConfig,
    data: Path | None,
    *,
    release: bool,
    target: TargetName,
    summary_file: Path | None = None,
) -> LifecycleResult:
    """Data tests → train → gate → register → (release); a rejection stops after the gate."""
    from pipelines.steps import evaluate as evaluate_step
    from pipelines.steps import register as register_step

    outcome = _train(tracking, config, data)
    with step("Gate"):
        _, decision = evaluate_step(tracking, outcome.run_id, gate)
    report_decision(decision)
    version = None
    if decision.passed:
        with step("Registration"):
            version = register_step(tracking, outcome.run_id)
    if summary_file is not None:
        write_gate_summary(summary_file, decision, version.ref if version else None)
    deployed: dict[str, str] = {}
    blue_green = False
    if version is not None:
        if release:
            from pipelines.release.plan import PROD_ENDPOINT, live_slot
            from pipelines.release_commands import describe_endpoints, run_release, serving_target

            _, local = serving_target(target, tracking.settings.model_name)
            blue_green = live_slot(local.traffic(PROD_ENDPOINT)) is not None
            run_release(tracking.settings, local, version)
            deployed = describe_endpoints(local)
        else:
            console.print(f"  not released; next: mlops release --model {version.ref}")
    return LifecycleResult(outcome.run_id, outcome.metrics, decision, version, deployed, blue_green)


def summary(tracking: Tracking, result: LifecycleResult) -> None:
    """The closing table of `mlops run`: what happened and what to do next."""
    production = tracking.registry.production()
    decision, version, deployed = result.decision, result.version, result.deployed
    table = Table(title="Summary", show_header=False, title_justify="left")
    table.add_row("run", result.run_id)
    table.add_row("holdout metrics", metrics_text(result.metrics))
    table.add_row("gate", f"{decision.label}: {decision.reason}")
    table.add_row("registered", version.ref if version else "nothing (rejected)")
    table.add_row("production alias", production.ref if production else "none")
    for endpoint, description in (deployed or {}).items():
        table.add_row(f"endpoint {endpoint}", description)
    if deployed:
        table.add_row(
            "call it",
            "uv run mlops endpoints invoke prod --data '[[0.03, 0.05, 0.06, "
            "0.02, -0.04, -0.03, -0.04, -0.00, 0.02, -0.02]]'",
        )
    table.add_row("MLflow UI", "make mlflow-ui  →  http://127.0.0.1:5000")
    console.print(table)


@models_app.command("list")
def models_list(model_name: ModelName = None, target: Target = TargetName.local) -> None:
    """Registered versions with their metrics and which one is in production."""
    registry = tracking_for(target, model_name).registry
    versions = registry.versions()
    if not versions:
        console.print(f"No versions of {registry.model_name} yet; run `mlops run` to train one.")
        return
    table = Table(title=f"{registry.model_name}")
    for column in ("version", "aliases", "rmse", "mae", "r2", "gated vs", "commit", "run"):
        table.add_column(column, overflow="fold")  # never `producti…`, even in 80 columns
    for version in versions:
        metrics = version.metrics
        table.add_row(
            version.version,
            ", ".join(version.aliases) or "-",
            *(f"{metrics[key]:.4g}" if key in metrics else "-" for key in ("rmse", "mae", "r2")),
            version.tags.get("gate.reference_kind", "-"),
            version.tags.get("git_commit", "-")[:8],
            version.run_id[:8],
        )
    console.print(table)


@app.command()
def demo(
    keep_serving: Annotated[
        bool, typer.Option("--keep-serving", help="Leave the local endpoints running at the end.")
    ] = False,
) -> None:
    """The guided local lifecycle `make demo` runs: gate, register, QA, blue/green, a rejection."""
    from pipelines.demo import run_demo

    run_demo(keep_serving)


# Serving and operations come after the lifecycle steps in `mlops --help`.
app.command("package")(package_command)
app.command("release")(release_command)
app.command("serve")(serve_command)
app.add_typer(endpoints_app, name="endpoints")
app.command("batch-score")(batch_score_command)
app.command("teardown")(teardown_command)
app.command("monitor")(monitor_command)
app.command("feedback")(feedback_command)
app.add_typer(models_app, name="models")
app.add_typer(infra_app, name="infra")
app.add_typer(pipeline_app, name="pipeline")
