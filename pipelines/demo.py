"""`mlops demo` (what `make demo` runs): the whole local lifecycle as a short story.

1. Production as it stands: if a model is in production but not serving (a previous demo
   stopped it), it is brought back, so the new candidate has something to beat and to stand
   beside.
2. Retrain with the project defaults: data tests → train → gate → register → QA → smoke →
   production blue/green → smoke → alias.
3. If that was not yet a blue/green rollout beside a live model, retrain with the definition's
   tuned settings (diabetes: alpha 0.1):
   a genuinely better candidate goes green beside blue and blue retires. On a re-run the
   tuned model is already in production: the candidate is that model again (same data,
   parameters and code), and the gate does not register it twice.
4. A clearly worse model (the definition's `worse` settings; diabetes: alpha 1000) meets the
   gate: rejected, production unchanged.
5. The loop (pipelines/demo_loop.py): heavier patients' traffic reaches production,
   `mlops monitor` finds the drift and writes its report, their true targets arrive as labels,
   `mlops feedback` makes a training data set of them, and the chain retrains on it: gate,
   register, release. Only for definitions that name a drift feature (diabetes: BMI).
Then every server stops unless `--keep-serving`, and a summary says what happened, how to get
production serving (or call it, when it still serves) and, on a re-run, how to replay the
story from scratch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.rule import Rule
from rich.table import Table

from pipelines.configs import gate_config
from pipelines.connect import serving_target, tracking_for
from pipelines.console import console, display_path, make_demo_command, mlops_command
from pipelines.demo_loop import LoopResult, loop_text, run_loop
from pipelines.gate import is_identical
from pipelines.lifecycle import (
    LifecycleResult,
    describe_endpoints,
    invoke_example,
    lifecycle,
    metrics_text,
    run_release,
)
from pipelines.release.plan import PROD_ENDPOINT, live_slot
from pipelines.settings import TargetName
from pipelines.targets.local import LocalTarget
from training.model import TrainingConfig

if TYPE_CHECKING:
    from pipelines.registry import RegisteredVersion


def run_demo(keep_serving: bool) -> None:
    """Run the story; stop every local server at the end unless asked to keep serving."""
    tracking = tracking_for(TargetName.local, None)
    settings, local = serving_target(TargetName.local, None)
    registry = tracking.registry
    gate = gate_config(None, None)
    results: list[tuple[str, LifecycleResult]] = []
    keep_line = (
        f"Endpoints keep serving: `{mlops_command('endpoints list')}`; "
        f"stop them with `{mlops_command('teardown')}`."
    )
    finished = False
    try:
        console.print(Rule("1 · Production as it stands"))
        before = registry.production()
        if before is None:
            console.print(
                "No model in production yet: the first candidate must beat the naive baseline."
            )
        elif live_slot(local.traffic(PROD_ENDPOINT)) is None:
            console.print(f"{before.ref} is in production but not serving: restoring it.")
            run_release(settings, local, before, stage="prod")
        else:
            console.print(f"{before.ref} is serving production.")

        def chapter(title: str, config: TrainingConfig) -> LifecycleResult:
            console.print(Rule(title))
            result = lifecycle(tracking, config, gate, None, serving=lambda: local)
            results.append((short_label(config), result))
            return result

        defaults = TrainingConfig()
        spec = defaults.spec
        tuned = defaults.with_params(spec.tuned)
        first = chapter("2 · Retrain with the project defaults", defaults)
        if not first.blue_green:
            chapter("3 · Retrain with tuned settings", tuned)
        chapter("4 · A clearly worse model meets the gate", defaults.with_params(spec.worse))
        console.print(Rule("5 · The loop: production data drifts, labels arrive, retrain"))
        assert isinstance(local, LocalTarget)
        loop: LoopResult | None = None
        if spec.demo_drift_feature is None or spec.task != "regression":
            # The monitor compares one prediction column; a classifier's probabilities are not
            # monitored yet.
            console.print(f"Skipped for model {spec.name!r}: it names no drift to demonstrate.")
        else:
            loop = run_loop(settings, tracking, local, gate, tuned)
            if loop.retrain is not None:
                results.append((f"{short_label(tuned)} + {loop.data_set}", loop.retrain))
        endpoints = describe_endpoints(local)
        production = registry.production()
        finished = True
    finally:
        if not keep_serving:
            stopped = local.teardown()
            keep = make_demo_command(KEEP_SERVING)
            console.print(f"Stopped {len(stopped)} local server(s); `{keep}` leaves them serving.")
        elif not finished:
            console.print(keep_line)
    rerun = before is not None and all(result.version is None for _, result in results)
    replay = make_demo_command(REPLAY) if rerun else None
    print_summary(
        results, endpoints, production, keep_serving=keep_serving, replay=replay, loop=loop
    )
    if keep_serving:
        console.print(keep_line)


# `make reset` stops the servers and removes the state directory in use (MLOPS_STATE_DIR).
REPLAY = "make reset && make demo"
KEEP_SERVING = "make demo KEEP_SERVING=1"


def follow_ups(
    production: RegisteredVersion | None,
    *,
    keep_serving: bool,
    replay: str | None = None,
    loop: LoopResult | None = None,
) -> list[tuple[str, str, tuple[str, ...]]]:
    """The summary's rows that say what to run next: (label, text, the commands in the text).

    Every command is printed as it runs on this machine (`mlops_command`); tests run or parse
    each one as printed.
    """
    invoke = mlops_command(invoke_example())
    keep = make_demo_command(KEEP_SERVING)
    rows: list[tuple[str, str, tuple[str, ...]]] = []
    if loop is not None:
        again = mlops_command("monitor")
        if keep_serving:
            rows.append(("monitor again", again, (again,)))
        else:
            rows.append(("monitor again", f"{keep}, then {again}", (keep, again)))
    if keep_serving:
        rows.append(("call it", invoke, (invoke,)))
    elif production is not None:
        serve = mlops_command(f"release --stage prod --model {production.name}@production")
        rows.append(("serve production", f"{keep}, or {serve}", (keep, serve)))
        rows.append(("then call it", invoke, (invoke,)))
    if replay is not None:
        rows.append(("replay from scratch", replay, (replay,)))
    models = mlops_command("models list")
    rows.append(("models", models, (models,)))
    rows.append(
        ("MLflow UI", "make mlflow-ui, then open http://127.0.0.1:5000", ("make mlflow-ui",))
    )
    return rows


def short_label(config: TrainingConfig) -> str:
    """A candidate's name in the summary: its hyperparameters (`alpha=0.1`)."""
    return config.describe().removesuffix(f", seed={config.seed}")


def outcome_text(result: LifecycleResult) -> str:
    """What became of one candidate, for the summary table."""
    if result.version is not None:
        how = "green beside blue, then blue retired" if result.blue_green else "first slot"
        return f"{result.version.ref} released ({how})"
    if is_identical(result.decision):
        version = result.decision.reference_version
        return f"not registered: identical to v{version} (same data, parameters, code)"
    return "not registered, not deployed"


def print_summary(
    results: list[tuple[str, LifecycleResult]],
    endpoints: dict[str, str],
    production: RegisteredVersion | None,
    *,
    keep_serving: bool,
    replay: str | None = None,
    loop: LoopResult | None = None,
) -> None:
    """One row per candidate, then where production stands and what to do next.

    With `keep_serving` the endpoints still serve: their URLs and how to call them. Otherwise
    they have just stopped: the summary says so and how to get production serving first.
    `replay` (on a re-run that released nothing) is how to replay the story from scratch.
    """
    table = Table(title="Demo summary", title_justify="left")
    for column in ("candidate", "holdout", "gate", "outcome"):
        table.add_column(column)
    for name, result in results:
        decision = result.decision
        versus = f"v{decision.reference_version}" if decision.reference_version else "baseline"
        # The reference's score on the candidate's own holdout: after a retrain on new data the
        # holdout changes, so the candidate's row must not be read against an older row.
        reference = metrics_text({decision.metric: decision.reference_score})
        table.add_row(
            name,
            metrics_text(result.metrics),
            f"{decision.label} vs {versus} ({reference} on this holdout)",
            outcome_text(result),
        )
    console.print(table)
    facts = Table(show_header=False, box=None)
    next_steps = {
        label: text
        for label, text, _ in follow_ups(
            production, keep_serving=keep_serving, replay=replay, loop=loop
        )
    }
    if loop is not None:
        facts.add_row("the loop", loop_text(loop))
        facts.add_row("monitor report", display_path(loop.monitor.files[0].parent))
        facts.add_row("monitor again", next_steps["monitor again"])
    facts.add_row("production alias", production.ref if production else "none")
    if keep_serving:
        for endpoint, description in endpoints.items():
            facts.add_row(f"endpoint {endpoint}", description)
        facts.add_row("call it", next_steps["call it"])
    elif production is not None:
        facts.add_row("endpoints", "stopped at the end of the demo")
        facts.add_row("serve production", next_steps["serve production"])
        facts.add_row("then call it", next_steps["then call it"])
    if replay is not None:
        facts.add_row(
            "this re-run",
            f"{production.ref if production else 'a model'} was already in production and no "
            "candidate replaced it",
        )
        facts.add_row("replay from scratch", next_steps["replay from scratch"])
    facts.add_row("models", next_steps["models"])
    facts.add_row("MLflow UI", next_steps["MLflow UI"])
    console.print(facts)
