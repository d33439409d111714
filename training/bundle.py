"""Writing the model bundle (layout and verification: `scoring.model_bundle`).

The bundle carries its contract: the MLflow model signature (feature names and types, the
outputs) in `MLmodel` and, with the task and the serving path, in `contract.json`, which the
scoring side reads without MLflow. A signature that does not match the definition fails here,
at training, never at deploy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scoring.model_bundle import (
    CONTRACT,
    FAST_PATH,
    GOLDEN_SAMPLE,
    SERVING_ESTIMATOR,
    SERVING_NUMPY,
    write_manifest,
)
from scoring.schema import CONTRACT_FORMAT, ModelContract
from training.fast_path import verified_fast_path
from training.model import GoldenSample, predict
from training.spec import ModelSpec, SpecError

if TYPE_CHECKING:
    from mlflow.models import ModelSignature


def model_signature(model: Any, spec: ModelSpec, rows: np.ndarray) -> ModelSignature:
    """The MLflow signature inferred from the model's real inputs and outputs, checked.

    `infer_signature` reads the types from the data (MLflow docs, "Model Signatures and Input
    Examples"); the check makes sure they are the definition's names and types.
    """
    from mlflow.models import infer_signature

    inputs = pd.DataFrame(rows, columns=list(spec.feature_names))
    outputs = pd.DataFrame(
        predict(model, rows, spec).reshape(len(rows), -1), columns=list(spec.output_names)
    )
    signature = infer_signature(inputs, outputs)
    declared = [(column.name, column.type) for column in spec.features]
    inferred = [(column.name, column.type.name) for column in signature.inputs.inputs]
    if inferred != declared:
        mismatched = [
            f"{name} ({kind})" for (name, kind) in inferred if (name, kind) not in declared
        ]
        raise SpecError(
            f"the model's inputs do not match definition {spec.name!r}: "
            f"{', '.join(mismatched) or 'different order'}; features are numbers (double)"
        )
    return signature


def contract_document(spec: ModelSpec, signature: ModelSignature, serving: str) -> dict[str, Any]:
    """contract.json: the signature plus what serving needs to know (read back to check it)."""
    document = {
        "format": CONTRACT_FORMAT,
        "model": spec.name,
        "title": spec.title,
        "task": spec.task,
        "serving": serving,
        "signature": signature.to_dict(),
    }
    ModelContract.from_dict(document)  # what the scoring side will parse
    return document


@contextmanager
def pins_from_this_environment() -> Iterator[None]:
    """Skip MLflow's check that the model's pinned requirements match this environment.

    `mlflow.utils.environment._process_pip_requirements` calls
    `warn_dependency_requirement_mismatches` (mlflow/utils/requirements_utils.py), which maps
    every installed distribution to its modules (`importlib_metadata.packages_distributions()`,
    reading each one's file list: ~0.5 s in the ops environment, a fifth of `mlops train`'s own
    time) only to warn when a pin differs from the installed version. Our pins are read from
    this very environment (scikit-learn's `__version__`, MLflow's own pin), so they cannot
    differ; the check is swapped out for the save and restored after it.
    """
    from mlflow.utils import environment

    check = environment.warn_dependency_requirement_mismatches
    environment.warn_dependency_requirement_mismatches = _pins_match
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = check


def _pins_match(model_requirements: list[str]) -> None:
    """The check's stand-in: nothing to warn about (see pins_from_this_environment)."""


def write_bundle(model: Any, dest: Path, golden: GoldenSample, spec: ModelSpec) -> str:
    """Save the model as an MLflow sklearn model with its signature, the contract, the golden
    sample, a verified fast path when one reproduces the estimator, and a manifest.

    Returns the bundle digest that registration records and every load verifies.
    """
    import mlflow.sklearn  # heavy import, only where a bundle is written
    import sklearn

    # MLflow warns about pickle on every save; our bundles are verified against the registered
    # digest before anything unpickles them.
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)

    rows = np.asarray(golden.rows, dtype=np.float64)
    signature = model_signature(model, spec, rows)
    with pins_from_this_environment():
        mlflow.sklearn.save_model(
            model,
            str(dest),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
            signature=signature,
            # Pinned explicitly: inference would load the model in a subprocess, slowly.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    fast = verified_fast_path(model, spec, rows, np.asarray(golden.predictions, dtype=np.float64))
    if fast is not None:
        (dest / FAST_PATH).write_text(json.dumps(fast, indent=2))
    serving = SERVING_NUMPY if fast is not None else SERVING_ESTIMATOR
    (dest / CONTRACT).write_text(json.dumps(contract_document(spec, signature, serving), indent=2))
    (dest / GOLDEN_SAMPLE).write_text(json.dumps(golden.to_dict(), indent=2))
    return write_manifest(dest)
