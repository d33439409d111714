"""`python -m training.train`: the thin entry point an Azure ML command job runs.

Validates the data, trains the model definition MLOPS_MODEL_SPEC selects, and writes the model
bundle plus `metrics.json` (holdout and baseline metrics, data fingerprint, golden sample) to
`--output`. Tracking and registration are separate steps (`pipelines.steps`), so the same job
works with or without MLflow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.bundle import write_bundle
from training.data import DataError, fingerprint, load_data
from training.model import TrainingConfig, fit_and_evaluate
from training.spec import current_spec, parse_param
from training.validation import load_profile, validate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Split settings with TrainingConfig's defaults; hyperparameters as --param NAME=VALUE."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="CSV/Parquet; default: bundled")
    parser.add_argument("--output", type=Path, required=True, help="folder for bundle and metrics")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a hyperparameter of the model definition (repeatable)",
    )
    defaults = TrainingConfig()
    parser.add_argument("--test-size", type=float, default=defaults.test_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--golden-rows", type=int, default=defaults.golden_rows)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    args = parse_args(argv)
    try:
        spec = current_spec()
        config = TrainingConfig(
            dict(parse_param(text) for text in args.param),
            test_size=args.test_size,
            seed=args.seed,
            golden_rows=args.golden_rows,
            spec=spec,
        )
        frame = load_data(args.data, spec)
        findings = validate(frame, load_profile(spec), spec)
    except (ValueError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if findings:
        for finding in findings:
            print(f"data test failed: {finding}", file=sys.stderr)
        return 2
    result = fit_and_evaluate(frame, config)
    args.output.mkdir(parents=True, exist_ok=True)
    digest = write_bundle(result.model, args.output / "model", result.golden, spec)
    report = {
        "params": config.params(),
        "metrics": result.metrics,
        "baseline_metrics": result.baseline_metrics,
        "data_sha256": fingerprint(frame),
        "model_sha256": digest,
        "golden": result.golden.to_dict(),
    }
    (args.output / "metrics.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({"metrics": report["metrics"], "model_sha256": digest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
