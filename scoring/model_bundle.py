"""The model bundle: the folder that is registered, deployed and served.

Layout (written by `training.bundle.write_bundle`)::

    MLmodel, model.pkl, ...   the MLflow scikit-learn flavour (the canonical model), with the
                              model signature (feature names and types, outputs)
    contract.json             the same signature plus task, serving path and title: what the
                              scoring service, batch driver, smoke tests and OpenAPI files read
    fast_path.json            only when verified: coefficients that reproduce the estimator's
                              outputs on the golden rows, so serving needs numpy only
    golden.json               holdout rows and the outputs the served model must give
    manifest.json             sha256 of every other file and one digest over them all

Only the standard library and numpy are imported here: this module runs inside the scoring
image, where importing scikit-learn would cost more than a second of cold start. A bundle with
no fast path serves through its pickled estimator, which needs scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scoring.schema import ContractError, ModelContract

MANIFEST = "manifest.json"
CONTRACT = "contract.json"
FAST_PATH = "fast_path.json"
GOLDEN_SAMPLE = "golden.json"
PICKLED_MODEL = "model.pkl"
BUNDLE_FORMAT = 1
# Serving paths, as contract.json, the server log and `mlops models list` name them.
SERVING_NUMPY = "numpy"
SERVING_ESTIMATOR = "estimator"
LINKS = ("identity", "logistic")

Predictor = Callable[[np.ndarray], np.ndarray]


class IntegrityError(Exception):
    """The bundle on disk is not the bundle that was registered."""


def file_sha256(path: Path) -> str:
    """sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_files(bundle: Path) -> list[Path]:
    return sorted(
        path
        for path in bundle.rglob("*")
        if path.is_file() and path.relative_to(bundle).as_posix() != MANIFEST
    )


def combined_digest(file_hashes: dict[str, str]) -> str:
    """One digest over all files: sha256 of the sorted `path<TAB>sha256` lines."""
    lines = "".join(f"{name}\t{file_hashes[name]}\n" for name in sorted(file_hashes))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_manifest(bundle: Path) -> str:
    """Hash every file of the bundle into manifest.json and return the bundle digest."""
    hashes = {
        path.relative_to(bundle).as_posix(): file_sha256(path) for path in _content_files(bundle)
    }
    digest = combined_digest(hashes)
    manifest = {"format": BUNDLE_FORMAT, "digest": digest, "files": hashes}
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return digest


def verify_bundle(bundle: Path, expected_digest: str | None = None) -> str:
    """Check every file against the manifest, and the digest against the registered one.

    Returns the digest. Raises IntegrityError naming the first problem found.
    """
    manifest_path = bundle / MANIFEST
    if not manifest_path.is_file():
        raise IntegrityError(
            f"model bundle {bundle} has no {MANIFEST}; it was not written by this project"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        recorded: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise IntegrityError(f"{MANIFEST} in {bundle} is unreadable: {error}") from error
    actual = {
        path.relative_to(bundle).as_posix(): file_sha256(path) for path in _content_files(bundle)
    }
    for name in sorted(set(recorded) | set(actual)):
        if name not in actual:
            raise IntegrityError(f"model file {name} is missing from {bundle}")
        if name not in recorded:
            raise IntegrityError(f"model file {name} in {bundle} is not in the manifest")
        if actual[name] != recorded[name]:
            raise IntegrityError(
                f"model file {name} in {bundle} does not match its recorded sha256"
            )
    digest = combined_digest(actual)
    if digest != manifest.get("digest"):
        raise IntegrityError(f"{MANIFEST} in {bundle} has a wrong digest")
    if expected_digest is not None and digest != expected_digest:
        raise IntegrityError(
            f"model bundle {bundle} has digest {digest[:12]}…, but the registry recorded "
            f"{expected_digest[:12]}…"
        )
    return digest


def find_bundle(root: Path) -> Path:
    """The bundle folder under an Azure ML model directory.

    The root itself, one level down (a deployment's `<name>/<version>` mount holding the
    registered folder), or two levels down (a models folder holding `<name>/<version>`, as the
    scoring image lays it out).
    """
    if (root / MANIFEST).is_file():
        return root
    patterns = (f"*/{MANIFEST}", f"*/*/{MANIFEST}")
    candidates = sorted(path.parent for pattern in patterns for path in root.glob(pattern))
    if len(candidates) == 1:
        return candidates[0]
    raise IntegrityError(f"expected exactly one model bundle under {root}, found {len(candidates)}")


def fast_predictor(spec: dict[str, Any]) -> Predictor:
    """A numpy predictor from fast_path.json: an affine map and its link.

    `identity` serves X·coef + b (one value per row); `logistic` serves the two class
    probabilities [1 - p, p] with p = 1 / (1 + exp(-(X·coef + b))), as a binary classifier's
    predict_proba does. Training writes the file only after this very function reproduced the
    estimator on the golden rows (training.bundle).
    """
    if spec.get("kind") != "linear" or spec.get("link") not in LINKS:
        raise ValueError(
            f"{FAST_PATH} has an unknown kind/link {spec.get('kind')}/{spec.get('link')}"
        )
    coef = np.asarray(spec["coef"], dtype=np.float64)
    intercept = float(spec["intercept"])
    if spec["link"] == "identity":

        def identity(rows: np.ndarray) -> np.ndarray:
            result: np.ndarray = rows @ coef + intercept
            return result

        return identity

    def logistic(rows: np.ndarray) -> np.ndarray:
        # exp(-logaddexp(0, -z)) is 1/(1+exp(-z)) without overflow for large |z|.
        positive = np.exp(-np.logaddexp(0.0, -(rows @ coef + intercept)))
        return np.column_stack((1.0 - positive, positive))

    return logistic


def read_contract(bundle: Path) -> ModelContract:
    """The model contract stored in the bundle; ContractError if absent or unreadable."""
    path = bundle / CONTRACT
    if not path.is_file():
        raise ContractError(
            f"model bundle {bundle} has no {CONTRACT} (written by an older version of this "
            "project); train and register the model again"
        )
    try:
        raw = json.loads(path.read_text())
    except ValueError as error:
        raise ContractError(f"{CONTRACT} in {bundle} is not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"{CONTRACT} in {bundle} is not a JSON object")
    return ModelContract.from_dict(raw)


def load_predictor(bundle: Path) -> tuple[Predictor, ModelContract]:
    """Load a verified bundle as (predict function, contract).

    A bundle whose contract names the numpy path is served from its verified fast_path.json
    with numpy alone; any other falls back to its pickle, which needs scikit-learn (same version
    as training) in the environment, and serves what the estimator itself predicts.
    """
    contract = read_contract(bundle)
    if contract.serving == SERVING_NUMPY:
        return fast_predictor(json.loads((bundle / FAST_PATH).read_text())), contract
    if contract.serving != SERVING_ESTIMATOR:
        raise ContractError(f"{CONTRACT} in {bundle} names an unknown serving path")
    with (bundle / PICKLED_MODEL).open("rb") as stream:
        # The bundle was verified against its registered digest before this point.
        model = pickle.load(stream)  # noqa: S301
    method = getattr(model, "predict_proba" if contract.probabilities else "predict")
    columns = list(contract.features)

    def estimator(rows: np.ndarray) -> np.ndarray:
        import pandas as pd  # the estimator was fitted with feature names; only on this path

        return np.asarray(method(pd.DataFrame(rows, columns=columns)), dtype=np.float64)

    return estimator, contract


def expected_digest_from_env() -> str | None:
    """The registered digest handed to a deployment in MODEL_SHA256 (unset: manifest only)."""
    value = os.environ.get("MODEL_SHA256", "").strip()
    return value or None
