"""Command-line options shared by several commands (one definition each).

Every option shows its default in `--help`: Typer adds `[default: …]` for a value in the
signature; where the default is decided at run time (the parameter is None), the help string
ends with its own `[default: …]`. Help strings are plain text, never Rich markup (the `mlops`
group escapes them). The training and gate defaults are repeated here as text so that `--help`
need not import scikit-learn; tests/pipelines/test_cli_output.py checks them against
TrainingConfig and GateConfig.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.gate_summary import json_sibling
from pipelines.settings import TargetName
from training.spec import DEFAULT_SPEC, ModelSpec, SpecError, current_spec, load_spec


def _help_spec() -> ModelSpec:
    """The definition the help describes (the default one if MLOPS_MODEL_SPEC is invalid: the
    command itself then says so in one sentence)."""
    try:
        return current_spec()
    except SpecError:
        return load_spec(DEFAULT_SPEC)


SPEC = _help_spec()


Target = Annotated[
    TargetName,
    typer.Option(
        "--target",
        envvar="MLOPS_TARGET",
        help="local: MLflow on SQLite and the Azure ML inference server on this machine. "
        "azure: an Azure ML workspace named by the infrastructure's stack outputs.",
    ),
]
DataPath = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help=f"CSV or Parquet file with the columns of model {SPEC.name!r} "
        f"({len(SPEC.features)} features and {SPEC.target.name!r}). "
        f"[default: {SPEC.data_description}]",
        dir_okay=False,
    ),
]
RunId = Annotated[
    str | None,
    typer.Option("--run-id", help="MLflow run id. [default: the latest training run]"),
]
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model-name",
        envvar="MLOPS_MODEL_NAME",
        help=f"Registered model name. [default: {SPEC.model_name}]",
    ),
]
# Defaults of training.model.TrainingConfig and pipelines.gate.GateConfig, shown in --help;
# the hyperparameters and the gate metric are the model definition's (training.spec).
DEFAULT_SEED, DEFAULT_TEST_SIZE = "42", "0.2"
DEFAULT_MIN_IMPROVEMENT = "0"


def _params_help(spec: ModelSpec) -> str:
    listed = "; ".join(
        f"{param.name}: {param.help} [default: {param.default:g}]" for param in spec.params
    )
    return f"A hyperparameter of model {spec.name!r} as NAME=VALUE, repeatable. {listed or 'none'}."


Params = Annotated[
    list[str] | None,
    typer.Option("--param", metavar="NAME=VALUE", help=_params_help(SPEC)),
]
Alpha = Annotated[
    float | None,
    typer.Option(
        "--alpha",
        help="The diabetes example's Ridge regularisation strength: the same as "
        f"--param alpha=A. [default: {load_spec(DEFAULT_SPEC).default_params()['alpha']:g}]",
    ),
]
Seed = Annotated[
    int | None,
    typer.Option("--seed", help=f"Seed of the train/holdout split. [default: {DEFAULT_SEED}]"),
]
TestSize = Annotated[
    float | None,
    typer.Option(
        "--test-size",
        help=f"Share of rows held out for evaluation. [default: {DEFAULT_TEST_SIZE}]",
    ),
]
Metric = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help=f"Gate metric: {', '.join(SPEC.metric_names)}. [default: {SPEC.gate_metric}]",
    ),
]
MinImprovement = Annotated[
    float | None,
    typer.Option(
        "--min-improvement",
        help="How much better the candidate must be, in metric units; negative = tolerance. "
        f"[default: {DEFAULT_MIN_IMPROVEMENT}, a tie passes]",
    ),
]
FailOnReject = Annotated[
    bool,
    typer.Option("--fail-on-reject", help="Exit with code 3 when the gate rejects the candidate."),
]


def _markdown_summary_file(path: Path | None) -> Path | None:
    """Refuse a summary file its own JSON twin would overwrite (one named *.json)."""
    if path is not None and json_sibling(path) == path:
        raise typer.BadParameter(
            f"{path.name} would be overwritten by the gate's JSON, which goes beside the "
            f"Markdown summary with a .json suffix; name it e.g. {path.with_suffix('.md').name}"
        )
    return path


SummaryFile = Annotated[
    Path | None,
    typer.Option(
        "--summary-file",
        help="Also write the gate outcome as Markdown here (for a CI run summary) and as JSON "
        "beside it, same name with .json (gate.md → gate.json), for the next pipeline: "
        '{"schema": 1, "passed": bool, "registered": "NAME:VERSION" or null, "metric", '
        '"candidate_score", "reference_score", "reference_kind", "reference_version", '
        '"improvement", "min_improvement", "reason"}.',
        dir_okay=False,
        callback=_markdown_summary_file,
    ),
]

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
