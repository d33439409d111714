"""Real bundles for tests: trained by the training code for a given model definition."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scoring.model_bundle import read_contract
from scoring.schema import ModelContract
from training.bundle import write_bundle
from training.data import bundled_data
from training.model import TrainingConfig, golden_sample, predict, split_data, train_model
from training.spec import DEFINITIONS, ModelSpec, load_spec

SPEC_NAMES = tuple(DEFINITIONS)  # every example definition: template tests run against each


@dataclass(frozen=True)
class TrainedBundle:
    """A bundle written by the training code, and the scikit-learn model it holds."""

    path: Path
    digest: str
    model: Any
    spec: ModelSpec
    rows: np.ndarray  # held-out rows, to score

    @property
    def contract(self) -> ModelContract:
        """The contract stored in the bundle."""
        return read_contract(self.path)

    @property
    def n_features(self) -> int:
        """How many values a row holds."""
        return len(self.spec.features)

    def expected(self, rows: np.ndarray) -> np.ndarray:
        """What scikit-learn itself serves for these rows."""
        return predict(self.model, rows, self.spec)

    def copy_to(self, dest: Path) -> Path:
        """An independent copy (to tamper with)."""
        shutil.copytree(self.path, dest)
        return dest


def train_bundle(
    spec: ModelSpec | str,
    dest: Path,
    params: Mapping[str, float] | None = None,
    estimator: Any = None,
) -> TrainedBundle:
    """Train the definition (optionally with another estimator) and write its bundle to dest."""
    spec = load_spec(spec) if isinstance(spec, str) else spec
    config = TrainingConfig(dict(params or {}), spec=spec)
    split = split_data(bundled_data(spec), config)
    if estimator is None:
        model = train_model(split.x_train, split.y_train, config)
    else:
        import pandas as pd

        model = estimator.fit(
            pd.DataFrame(split.x_train, columns=list(spec.feature_names)), split.y_train
        )
    digest = write_bundle(model, dest, golden_sample(model, split, config), spec)
    return TrainedBundle(path=dest, digest=digest, model=model, spec=spec, rows=split.x_test)


# The default example, for the lifecycle tests that run the CLI with its defaults (diabetes).
DIABETES = load_spec("diabetes")
DIABETES_FEATURES = DIABETES.feature_names
DIABETES_TARGET = DIABETES.target.name


def diabetes_data() -> Any:
    """The diabetes example's bundled data (features and target)."""
    return bundled_data(DIABETES)
