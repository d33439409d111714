"""`python -m training.train`: the thin entry point an Azure ML command job runs.

Validates the data, trains, and writes the model bundle plus `metrics.json` (holdout and
baseline metrics, data fingerprint, golden sample) to `--output`. Tracking and registration
are separate steps (`pipelines.steps`), so the same job works with or without MLflow.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from training.bundle import write_bundle
from training.data import DataError, fingerprint, load_data
from training.model import TrainingConfig, fit_and_evaluate
from training.validation import load_profile, validate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options mirror TrainingConfig's fields, with its defaults."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="CSV/Parquet; default: bundled")
    parser.add_argument("--output", type=Path, required=True, help="folder for bundle and metrics")
    defaults = TrainingConfig()
    for item in fields(TrainingConfig):
        default = getattr(defaults, item.name)
        parser.add_argument(
            f"--{item.name.replace('_', '-')}",
            type=(lambda v: v.lower() in ("1", "true", "yes"))
            if isinstance(default, bool)
            else type(default),
            default=default,
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    args = parse_args(argv)
    try:
        config = TrainingConfig(**{f.name: getattr(args, f.name) for f in fields(TrainingConfig)})
        frame = load_data(args.data)
    except (ValueError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    findings = validate(frame, load_profile())
    if findings:
        for finding in findings:
            print(f"data test failed: {finding}", file=sys.stderr)
        return 2
    result = fit_and_evaluate(frame, config)
    args.output.mkdir(parents=True, exist_ok=True)
    digest = write_bundle(result.model, args.output / "model", result.golden)
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
