"""`mlops demo` (what `make demo` runs): the whole local lifecycle as a short story.

1. Production as it stands: if a model is in production but not serving (a previous demo
   stopped it), it is brought back, so the new candidate has something to beat and to stand
   beside.
2. Retrain with the project defaults: data tests → train → gate → register → QA → smoke →
   production blue/green → smoke → alias.
3. If that was not yet a blue/green rollout beside a live model, retrain with a tuned alpha:
   a genuinely better candidate goes green beside blue and blue retires. On a re-run the
   tuned model is already in production: the candidate is that model again (same data,
   parameters and code), and the gate does not register it twice.
4. A clearly worse model (alpha 1000) meets the gate: rejected, production unchanged.
5. The loop (pipelines/monitoring/demo_loop.py): heavier patients' traffic reaches production,
   `mlops monitor` finds the drift and writes its report, their true targets arrive as labels,
   `mlops feedback` makes a training data set of them, and the chain retrains on it: gate,
   register, release.
Then every server stops unless `--keep-serving`, and a summary says what happened, how to get
production serving (or call it, when it still serves) and, on a re-run, how to replay the
story from scratch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rich.rule import Rule
from rich.table import Table

from pipelines.console import console, display_path
from pipelines.gate import is_identical
from pipelines.lifecycle import (
    LifecycleResult,
    describe_endpoints,
    gate_config,
    lifecycle,
    metrics_text,
    run_release,
    serving_target,
    tracking_for,
)
from pipelines.monitoring.demo_loop import LoopResult, loop_text, run_loop
from pipelines.release.plan import PROD_ENDPOINT, live_slot
from pipelines.settings import TargetName
from pipelines.targets.local import LocalTarget
from training.model import TrainingConfig

if TYPE_CHECKING:
    from pipelines.registry import RegisteredVersion

TUNED_ALPHA = 0.1  # better than the default 0.5 on the bundled data's seeded holdout
WORSE_ALPHA = 1000.0  # shrinks every coefficient to ~0: barely better than the mean


def run_demo(keep_serving: bool) -> None:
    """Run the story; stop every local server at the end unless asked to keep serving."""
    tracking = tracking_for(TargetName.local, None)
    settings, local = serving_target(TargetName.local, None)
    registry = tracking.registry
    gate = gate_config(None, None)
    results: list[tuple[str, LifecycleResult]] = []
    keep_line = (
        "Endpoints keep serving: `uv run mlops endpoints list`; "
        "stop them with `uv run mlops teardown`."
    )
    finished = False
    try:
        console.print(Rule("1 · Production as it stands"))
        before = registry.production()
        if before is None:
            console.print("No model in production yet: the first candidate must beat the mean.")
        elif live_slot(local.traffic(PROD_ENDPOINT)) is None:
            console.print(f"{before.ref} is in production but not serving: restoring it.")
            run_release(settings, local, before, stage="prod")
        else:
            console.print(f"{before.ref} is serving production.")

        def chapter(title: str, config: TrainingConfig) -> LifecycleResult:
            console.print(Rule(title))
            result = lifecycle(tracking, config, gate, None, release=True, target=TargetName.local)
            results.append((f"alpha {config.alpha:g}", result))
            return result

        defaults = TrainingConfig()
        first = chapter("2 · Retrain with the project defaults", defaults)
        if not first.blue_green:
            chapter("3 · Retrain with a tuned alpha", replace(defaults, alpha=TUNED_ALPHA))
        chapter("4 · A clearly worse model meets the gate", replace(defaults, alpha=WORSE_ALPHA))
        console.print(Rule("5 · The loop: production data drifts, labels arrive, retrain"))
        tuned = replace(defaults, alpha=TUNED_ALPHA)
        assert isinstance(local, LocalTarget)
        loop = run_loop(settings, tracking, local, gate, tuned)
        if loop.retrain is not None:
            results.append((f"alpha {tuned.alpha:g} + {loop.data_set}", loop.retrain))
        endpoints = describe_endpoints(local)
        production = registry.production()
        finished = True
    finally:
        if not keep_serving:
            stopped = local.teardown()
            console.print(
                f"Stopped {len(stopped)} local server(s); `make demo KEEP_SERVING=1` "
                "leaves them serving."
            )
        elif not finished:
            console.print(keep_line)
    rerun = before is not None and all(result.version is None for _, result in results)
    replay = REPLAY if rerun else None
    print_summary(
        results, endpoints, production, keep_serving=keep_serving, replay=replay, loop=loop
    )
    if keep_serving:
        console.print(keep_line)


# `make reset` stops the servers and removes the state directory in use (MLOPS_STATE_DIR).
REPLAY = "make reset && make demo"
INVOKE = (
    "uv run mlops endpoints invoke prod --data "
    "'[[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.00, 0.02, -0.02]]'"
)


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
        versus = f"v{decision.reference_version}" if decision.reference_version else "mean baseline"
        table.add_row(
            name,
            metrics_text(result.metrics),
            f"{decision.label} vs {versus}",
            outcome_text(result),
        )
    console.print(table)
    facts = Table(show_header=False, box=None)
    if loop is not None:
        facts.add_row("the loop", loop_text(loop))
        facts.add_row("monitor report", display_path(loop.monitor.files[0].parent))
        again = "uv run mlops monitor"
        facts.add_row(
            "monitor again", again if keep_serving else f"make demo KEEP_SERVING=1, then {again}"
        )
    facts.add_row("production alias", production.ref if production else "none")
    if keep_serving:
        for endpoint, description in endpoints.items():
            facts.add_row(f"endpoint {endpoint}", description)
        facts.add_row("call it", INVOKE)
    elif production is not None:
        facts.add_row("endpoints", "stopped at the end of the demo")
        facts.add_row(
            "serve production",
            f"make demo KEEP_SERVING=1, or uv run mlops release --stage prod --model "
            f"{production.name}@production",
        )
        facts.add_row("then call it", INVOKE)
    if replay is not None:
        facts.add_row(
            "this re-run",
            f"{production.ref if production else 'a model'} was already in production and no "
            "candidate replaced it",
        )
        facts.add_row("replay from scratch", replay)
    facts.add_row("models", "uv run mlops models list")
    facts.add_row("MLflow UI", "make mlflow-ui, then open http://127.0.0.1:5000")
    console.print(facts)
