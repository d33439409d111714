"""Writing the model bundle (layout and verification: `scoring.model_bundle`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import sklearn
from sklearn.linear_model import Ridge

from scoring.model_bundle import GOLDEN_SAMPLE, LINEAR_MODEL, write_manifest
from training.model import GoldenSample, linear_spec


def write_bundle(model: Ridge, dest: Path, golden: GoldenSample) -> str:
    """Save the model as an MLflow sklearn model, linear coefficients, the golden sample and a
    manifest covering them all.

    Returns the bundle digest that registration records and every load verifies.
    """
    import mlflow.sklearn  # heavy import, only where a bundle is written

    # MLflow warns about pickle on every save; our bundles are verified against the registered
    # digest before anything unpickles them.
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)

    mlflow.sklearn.save_model(
        model,
        str(dest),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
        # Pinned explicitly: inference would load the model in a subprocess, slowly.
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    (dest / LINEAR_MODEL).write_text(json.dumps(linear_spec(model), indent=2))
    (dest / GOLDEN_SAMPLE).write_text(json.dumps(golden.to_dict(), indent=2))
    return write_manifest(dest)
