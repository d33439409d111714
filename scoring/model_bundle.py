"""The model bundle: the folder that is registered, deployed and served.

Layout (written by `training.bundle.write_bundle`)::

    MLmodel, model.pkl, ...   the MLflow scikit-learn flavour (the canonical model)
    linear_model.json         coefficients of a linear model, so serving needs numpy only
    golden.json               holdout rows and the predictions the served model must give
                              (smoke tests; too large for a registry tag, design note §9)
    manifest.json             sha256 of every other file and one digest over them all

Only the standard library and numpy are imported here: this module runs inside the scoring
image, where importing scikit-learn would cost more than a second of cold start.
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

MANIFEST = "manifest.json"
LINEAR_MODEL = "linear_model.json"
GOLDEN_SAMPLE = "golden.json"
PICKLED_MODEL = "model.pkl"
BUNDLE_FORMAT = 1

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


def linear_predictor(spec: dict[str, Any]) -> Predictor:
    """A numpy predictor from exported linear coefficients."""
    coef = np.asarray(spec["coef"], dtype=np.float64)
    intercept = float(spec["intercept"])

    def predict(rows: np.ndarray) -> np.ndarray:
        result: np.ndarray = rows @ coef + intercept
        return result

    return predict


def load_predictor(bundle: Path) -> tuple[Predictor, list[str]]:
    """Load a verified bundle as (predict function, feature names).

    Linear models are served from their coefficients with numpy alone; any other model falls
    back to its pickle, which needs scikit-learn (same version as training) in the environment.
    """
    linear = bundle / LINEAR_MODEL
    if linear.is_file():
        spec = json.loads(linear.read_text())
        return linear_predictor(spec), list(spec["features"])
    with (bundle / PICKLED_MODEL).open("rb") as stream:
        # The bundle was verified against its registered digest before this point.
        model = pickle.load(stream)  # noqa: S301
    features = [str(name) for name in getattr(model, "feature_names_in_", [])]
    return (lambda rows: np.asarray(model.predict(rows), dtype=np.float64)), features


def expected_digest_from_env() -> str | None:
    """The registered digest handed to a deployment in MODEL_SHA256 (unset: manifest only)."""
    value = os.environ.get("MODEL_SHA256", "").strip()
    return value or None
