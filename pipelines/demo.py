"""`mlops demo` (what `make demo` runs): the whole local lifecycle as a short story.

1. Production as it stands: if a model is in production but not serving (a previous demo
   stopped it), it is brought back, so the new candidate has something to beat and to stand
   beside.
2. Retrain with the project defaults: data tests → train → gate → register → QA → smoke →
   production blue/green → smoke → alias.
3. If that was not yet a blue/green rollout beside a live model, retrain with a tuned alpha:
   a genuinely better candidate goes green beside blue and blue retires.
4. A clearly worse model (alpha 1000) meets the gate: rejected, production unchanged.
Then a summary, and every server stops unless `--keep-serving`.
"""

from __future__ import annotations

from dataclasses import replace

from rich.rule import Rule
from rich.table import Table

from pipelines.cli import LifecycleResult, gate_config, lifecycle, metrics_text, tracking_for
from pipelines.console import console
from pipelines.options import TargetName
from pipelines.release.plan import PROD_ENDPOINT, live_slot
from pipelines.release_commands import describe_endpoints, run_release, serving_target
from training.model import TrainingConfig

TUNED_ALPHA = 0.1  # better than the default 0.5 on the bundled data's seeded holdout
WORSE_ALPHA = 1000.0  # shrinks every coefficient to ~0: barely better than the mean


def run_demo(keep_serving: bool) -> None:
    """Run the story; stop every local server at the end unless asked to keep serving."""
    tracking = tracking_for(TargetName.local, None)
    settings, local = serving_target(TargetName.local, None)
    registry = tracking.registry
    gate = gate_config(None, None)
    results: list[tuple[str, LifecycleResult]] = []
    try:
        console.print(Rule("1 · Production as it stands"))
        production = registry.production()
        if production is None:
            console.print("No model in production yet: the first candidate must beat the mean.")
        elif live_slot(local.traffic(PROD_ENDPOINT)) is None:
            console.print(f"{production.ref} is in production but not serving: restoring it.")
            run_release(settings, local, production, stage="prod")
        else:
            console.print(f"{production.ref} is serving production.")

        def chapter(title: str, config: TrainingConfig) -> LifecycleResult:
            console.print(Rule(title))
            result = lifecycle(tracking, config, gate, None, release=True, target=TargetName.local)
            results.append((f"alpha {config.alpha:g}", result))
            return result

        defaults = TrainingConfig()
        first = chapter("2 · Retrain with the project defaults", defaults)
        if not first.blue_green:
            chapter(
                "3 · Retrain with a tuned alpha: green beside blue",
                replace(defaults, alpha=TUNED_ALPHA),
            )
        chapter("4 · A clearly worse model meets the gate", replace(defaults, alpha=WORSE_ALPHA))
        print_summary(results, describe_endpoints(local), registry.production())
    finally:
        if keep_serving:
            console.print(
                "Endpoints keep serving: `uv run mlops endpoints list`; "
                "stop them with `uv run mlops teardown`."
            )
        else:
            stopped = local.teardown()
            console.print(
                f"Stopped {len(stopped)} local server(s); `make demo KEEP_SERVING=1` "
                "leaves them serving."
            )


def print_summary(
    results: list[tuple[str, LifecycleResult]], endpoints: dict[str, str], production: object
) -> None:
    """One row per candidate, then where production stands and how to look further."""
    table = Table(title="Demo summary", title_justify="left")
    for column in ("candidate", "holdout", "gate", "outcome"):
        table.add_column(column)
    for name, result in results:
        decision = result.decision
        if result.version is None:
            outcome = "not registered, not deployed"
        else:
            how = "green beside blue, then blue retired" if result.blue_green else "first slot"
            outcome = f"{result.version.ref} released ({how})"
        versus = f"v{decision.reference_version}" if decision.reference_version else "mean baseline"
        table.add_row(name, metrics_text(result.metrics), f"{decision.label} vs {versus}", outcome)
    console.print(table)
    facts = Table(show_header=False, box=None)
    facts.add_row("production alias", getattr(production, "ref", "none"))
    for endpoint, description in endpoints.items():
        facts.add_row(f"endpoint {endpoint}", description)
    facts.add_row(
        "call it",
        "uv run mlops endpoints invoke prod --data "
        "'[[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.00, 0.02, -0.02]]'",
    )
    facts.add_row("models", "uv run mlops models list")
    facts.add_row("MLflow UI", "make mlflow-ui, then open http://127.0.0.1:5000")
    console.print(facts)
