"""`python -m pipelines.azure.entrypoints <step>`: what the pipeline's command components run.

Each step is a thin shell over `pipelines.steps`, the code `mlops run` uses locally, so the
gate and registration rules are the same on both targets. Steps pass small JSON files through
their `uri_folder` outputs (the validated table, the run id, the decision, the version).

Tracking: `--tracking-uri`, else MLOPS_TRACKING_URI, else MLFLOW_TRACKING_URI (which Azure ML
sets in every job to the workspace). The production model and registrations go to the shared
registry when `--registry-name` is given (the job's managed identity needs read and write on
it; registration shares the workspace's version into it, so it also names the workspace with
`--workspace-*`); without it, to the tracking server's own registry (what the offline tests
use).

Exit codes: 0 when the step did its job, including a gate rejection (an outcome, recorded in
decision.json); 2 for bad data or a failed step, with one sentence on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.errors import MlopsError
from pipelines.settings import Settings

VALIDATED_FILE = "data.parquet"
RUN_FILE = "run.json"
DECISION_FILE = "decision.json"
REGISTERED_FILE = "registered.json"


def _tracking_uri(explicit: str | None) -> str:
    uri = explicit or os.environ.get("MLOPS_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise MlopsError(
            "no tracking URI: pass --tracking-uri, or set MLOPS_TRACKING_URI (Azure ML sets "
            "MLFLOW_TRACKING_URI in its jobs)"
        )
    return uri


def _job_credential() -> Any:
    """The job's identity: the user-assigned identity the pipeline names (MLOPS_IDENTITY_CLIENT_ID,
    set by `pipeline_job.identity_variables`), else the one Azure ML names for the compute."""
    from azure.identity import ManagedIdentityCredential

    from pipelines.azure.client import default_credential

    client_id = os.environ.get("MLOPS_IDENTITY_CLIENT_ID") or os.environ.get(
        "DEFAULT_IDENTITY_CLIENT_ID"
    )
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return default_credential()


def tracking(args: argparse.Namespace) -> Any:
    """The tracking server, with the shared registry behind it when one is named."""
    from pipelines.steps import Tracking

    uri = _tracking_uri(args.tracking_uri)
    state = Path(tempfile.mkdtemp(prefix="mlops-step-"))
    settings = Settings(state_dir=state, model_name=args.model_name, tracking_uri=uri)
    registry_name = getattr(args, "registry_name", None)
    if not registry_name:
        return Tracking(settings)
    from azure.ai.ml import MLClient

    from pipelines.azure.registry import AzureTracking

    credential = _job_credential()
    client = MLClient(
        credential,
        subscription_id=args.registry_subscription,
        resource_group_name=args.registry_resource_group,
        registry_name=registry_name,
    )
    # The training workspace shares the registered version into the registry (register only).
    workspace_name = getattr(args, "workspace_name", None)
    workspace = (
        MLClient(
            credential,
            subscription_id=args.workspace_subscription,
            resource_group_name=args.workspace_resource_group,
            workspace_name=workspace_name,
        )
        if workspace_name
        else None
    )
    return AzureTracking(settings, client, registry_name, source=uri, workspace=workspace)


def _write(folder: Path, name: str, payload: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(payload, indent=2))


def _read(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise MlopsError(f"cannot read {path} from the previous step ({error})") from error
    return data


def validate_step(args: argparse.Namespace) -> None:
    """Load and test the data; write the validated table for training."""
    from pipelines.steps import DataValidationError, load_and_validate

    try:
        frame = load_and_validate(args.data)
    except DataValidationError as error:
        for finding in error.findings:
            print(f"data test failed: {finding}", file=sys.stderr)
        raise
    args.output.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.output / VALIDATED_FILE)
    print(json.dumps({"rows": len(frame), "validated": True}))


def train_step(args: argparse.Namespace) -> None:
    """Train on the validated table and log the run; write its id for the gate."""
    from pipelines.configs import training_config
    from pipelines.steps import train

    params = [text for text in args.params.split(",") if text.strip()]
    config = training_config(None, args.seed, args.test_size, params)
    outcome = train(tracking(args), config, args.validated / VALIDATED_FILE, args.data_source)
    payload = {
        "run_id": outcome.run_id,
        "metrics": outcome.metrics,
        "baseline_metrics": outcome.baseline_metrics,
        "model_sha256": outcome.digest,
        "data_sha256": outcome.data_sha256,
    }
    _write(args.output, RUN_FILE, payload)
    print(json.dumps(payload))


def gate_step(args: argparse.Namespace) -> None:
    """The gate; the decision is written whatever it is."""
    from pipelines.configs import gate_config
    from pipelines.steps import evaluate

    run_id = _read(args.run, RUN_FILE)["run_id"]
    config = gate_config(args.metric, args.min_improvement)
    _, decision = evaluate(tracking(args), run_id, config)
    payload = {"run_id": run_id, **decision.as_tags()}
    _write(args.output, DECISION_FILE, payload)
    verdict = "passed" if decision.passed else "rejected the candidate"
    print(f"gate {verdict}: {decision.reason}")


def register_step(args: argparse.Namespace) -> None:
    """Register a gated model; a rejection registers nothing and still succeeds."""
    from pipelines.steps import register

    run_id = _read(args.run, RUN_FILE)["run_id"]
    decision = _read(args.decision, DECISION_FILE)
    if decision.get("run_id") != run_id:
        raise MlopsError(
            f"the gate decided on run {decision.get('run_id')}, not on run {run_id}; "
            "the pipeline is miswired"
        )
    if decision.get("gate.decision") != "passed":
        payload = {"registered": False, "reason": decision.get("gate.reason", "rejected")}
        _write(args.output, REGISTERED_FILE, payload)
        print("nothing registered: the gate rejected the candidate; production is unchanged")
        return
    # register() reads the decision recorded on the run itself, never this file's copy.
    version = register(tracking(args), run_id)
    payload = {
        "registered": True,
        "name": version.name,
        "version": version.version,
        "model_sha256": version.digest,
        "source": version.source,
    }
    _write(args.output, REGISTERED_FILE, payload)
    print(f"registered {version.ref}")


def parser() -> argparse.ArgumentParser:
    """The four steps and their options."""
    root = argparse.ArgumentParser(prog="python -m pipelines.azure.entrypoints")
    steps = root.add_subparsers(dest="step", required=True)

    def add(name: str, helptext: str) -> argparse.ArgumentParser:
        sub = steps.add_parser(name, help=helptext)
        sub.add_argument("--output", type=Path, required=True)
        return sub

    def tracked(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--model-name", required=True)
        sub.add_argument("--tracking-uri", default=None)

    def registry(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--registry-name", default=None)
        sub.add_argument("--registry-subscription", default=None)
        sub.add_argument("--registry-resource-group", default=None)

    validate = add("validate", "data tests")
    validate.add_argument("--data", type=Path, default=None)

    train = add("train", "train and log the run")
    train.add_argument("--validated", type=Path, required=True)
    train.add_argument(
        "--params", default="", help="hyperparameters of the model definition: NAME=VALUE,..."
    )
    train.add_argument("--seed", type=int, required=True)
    train.add_argument("--test-size", type=float, required=True)
    train.add_argument(
        "--data-source", default=None, help="the pipeline's data input as given (or bundled)"
    )
    tracked(train)

    gate = add("gate", "compare with production")
    gate.add_argument("--run", type=Path, required=True)
    gate.add_argument("--metric", required=True)
    gate.add_argument("--min-improvement", type=float, required=True)
    tracked(gate)
    registry(gate)

    register = add("register", "register a gated model")
    register.add_argument("--run", type=Path, required=True)
    register.add_argument("--decision", type=Path, required=True)
    tracked(register)
    registry(register)
    register.add_argument("--workspace-name", default=None)
    register.add_argument("--workspace-subscription", default=None)
    register.add_argument("--workspace-resource-group", default=None)
    return root


STEPS = {
    "validate": validate_step,
    "train": train_step,
    "gate": gate_step,
    "register": register_step,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        STEPS[args.step](args)
    except MlopsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
