"""Writing the model bundle (layout and verification: `scoring.model_bundle`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import sklearn
from sklearn.linear_model import Ridge

from scoring.model_bundle import LINEAR_MODEL, write_manifest
from training.model import linear_spec


def write_bundle(model: Ridge, dest: Path) -> str:
    """Save the model as an MLflow sklearn model plus linear coefficients and a manifest.

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
    return write_manifest(dest)
