"""Loading the verified model, shared by the online script and the batch driver.

Standard library and numpy only (plus the bundle module): this is on the cold-start path.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scoring.model_bundle import (
    IntegrityError,
    Predictor,
    find_bundle,
    load_predictor,
    verify_bundle,
)
from scoring.schema import BAD_REQUEST, ContractError, InputError, ModelContract

MODEL_DIR_VARIABLE = "AZUREML_MODEL_DIR"
# Up to this many outputs, summing their Python floats is cheaper than ndarray.sum().
_SUMMED_AS_FLOATS = 32


def quiet_numpy() -> contextlib.AbstractContextManager[Any]:
    """numpy's floating-point warnings off: overflow is what LoadedModel.score checks for."""
    return np.errstate(all="ignore")


class ModelLoadError(Exception):
    """The model cannot be served: missing, tampered with, or not matching the API contract."""


@dataclass(frozen=True)
class LoadedModel:
    """A bundle that passed its integrity check, ready to predict, with its contract."""

    predict: Predictor
    digest: str
    bundle: Path
    contract: ModelContract

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Outputs for validated rows; InputError if one is not finite.

        One value per row for a regressor, a (rows, classes) matrix of probabilities for a
        classifier. Finite inputs of absurd magnitude (1e300) can overflow a linear model: that
        is a client mistake, answered with 400, never an "Infinity" (invalid JSON) or a 500.
        The overflow is expected, so callers silence numpy's floating-point warnings around
        this call (`quiet_numpy`), once per process where they can: entering np.errstate on
        every call costs a one-row request ~1% of the server's own CPU.
        """
        outputs = np.asarray(self.predict(matrix), dtype=np.float64)
        width = len(self.contract.outputs)
        if outputs.ndim != (1 if width == 1 else 2):
            outputs = outputs.reshape(-1) if width == 1 else outputs.reshape(-1, width)
        # One test on the common path: the sum of finite outputs is finite unless it overflows
        # (then the full test decides). A few outputs are summed as Python floats, ~7 times
        # cheaper than the reduction ndarray.sum() starts for any size.
        flat = outputs if outputs.ndim == 1 else outputs.reshape(-1)
        total = sum(flat.tolist()) if flat.size <= _SUMMED_AS_FLOATS else float(flat.sum())
        if not math.isfinite(total) and not np.isfinite(outputs).all():
            finite = np.isfinite(outputs).reshape(len(outputs), -1).all(axis=1)
            row = int(np.argmin(finite))
            raise InputError(
                BAD_REQUEST,
                f"the prediction for row {row} is not a finite number; its inputs are far "
                "outside the range the model was trained on",
            )
        return outputs


def model_dir_from_env() -> Path:
    """The model folder Azure ML (or the local target) mounts, from AZUREML_MODEL_DIR."""
    value = os.environ.get(MODEL_DIR_VARIABLE, "").strip()
    if not value:
        raise ModelLoadError(f"{MODEL_DIR_VARIABLE} is not set; it must point at the model folder")
    path = Path(value)
    if not path.is_dir():
        raise ModelLoadError(f"{MODEL_DIR_VARIABLE}={value} is not a directory")
    return path


def load_model(model_dir: Path, expected_digest: str | None) -> LoadedModel:
    """Find the bundle, verify it against its manifest (and the registered digest), load it.

    Raises ModelLoadError with one sentence naming the problem.
    """
    try:
        bundle = find_bundle(model_dir)
        digest = verify_bundle(bundle, expected_digest)
        predict, contract = load_predictor(bundle)
    except IntegrityError as error:
        raise ModelLoadError(f"model bundle failed its integrity check: {error}") from error
    except ContractError as error:
        raise ModelLoadError(f"model bundle has no usable contract: {error}") from error
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"model bundle in {model_dir} cannot be loaded: {error}") from error
    model = LoadedModel(predict=predict, digest=digest, bundle=bundle, contract=contract)
    try:
        # One prediction now: a broken model fails init, not the first request.
        with quiet_numpy():
            model.score(np.zeros((1, contract.n_features)))
    except Exception as error:
        raise ModelLoadError(f"model bundle {bundle} cannot predict: {error}") from error
    return model
