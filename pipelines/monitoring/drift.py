"""Drift and data quality metrics, computed as Azure ML model monitoring computes them.

The reference is Azure ML's own signal code (Azure/azureml-assets,
`assets/model_monitoring/components/src/data_drift_compute_metrics/numerical_data_drift_metrics.py`
and `shared_utilities/histogram_utils.py`):
- normalized Wasserstein distance: `scipy.stats.wasserstein_distance` divided by the reference's
  sample standard deviation, floored at 0.001;
- Jensen-Shannon distance: `scipy.spatial.distance.jensenshannon(base=2)` of the two histograms
  over shared equal-width bins (Sturges' rule on the smaller sample, over both samples' range);
- population stability index: the same bins, each count plus one (Laplace smoothing), scipy has
  no PSI, so it is written out here;
- two-sample Kolmogorov-Smirnov test: the p-value of `scipy.stats.ks_2samp`.
Data quality (Learn, "concept-model-monitoring"): the rates of null values, of values that are
not numbers, and of numbers outside the reference's [min, max].

Pure functions on arrays and frames; nothing here reads or writes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from pipelines.monitoring.thresholds import DriftMetric, Thresholds, breaches

_STD_FLOOR = 0.001  # azureml-assets: norm = max(std_dev, 0.001)
_ROUNDING = 1e-9


def sturges_bins(smaller_count: int) -> int:
    """Number of histogram bins: ceil(log2(n) + 1) of the smaller sample."""
    return math.ceil(math.log2(max(smaller_count, 1)) + 1)


def shared_edges(reference: np.ndarray, production: np.ndarray) -> np.ndarray:
    """Equal-width bin edges over both samples' range (one bin when they are one value)."""
    low = float(min(reference.min(), production.min()))
    high = float(max(reference.max(), production.max()))
    if low == high:
        return np.array([low, low + max(abs(low) * 0.01, 1e-12)])
    return np.linspace(low, high, sturges_bins(min(len(reference), len(production))) + 1)


def histograms(reference: np.ndarray, production: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples in the shared bins (the last bin includes its right edge)."""
    edges = shared_edges(reference, production)
    return np.histogram(reference, edges)[0], np.histogram(production, edges)[0]


def normalized_wasserstein(reference: np.ndarray, production: np.ndarray) -> float:
    """Wasserstein distance in units of the reference's standard deviation."""
    spread = float(np.std(reference, ddof=1)) if len(reference) > 1 else 0.0
    return float(wasserstein_distance(reference, production)) / max(spread, _STD_FLOOR)


def jensen_shannon(reference: np.ndarray, production: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, so within [0, 1]) of the binned distributions."""
    ref_counts, prod_counts = histograms(reference, production)
    value = jensenshannon(ref_counts / len(reference), prod_counts / len(production), base=2)
    return float(np.nan_to_num(value))  # identical one-bin histograms give 0/0


def population_stability_index(reference: np.ndarray, production: np.ndarray) -> float:
    """PSI = sum((p - r) * ln(p / r)) over the shared bins, with add-one smoothing."""
    ref_counts, prod_counts = histograms(reference, production)
    bins = len(ref_counts)
    ref_share = (ref_counts + 1) / (len(reference) + bins)
    prod_share = (prod_counts + 1) / (len(production) + bins)
    return float(np.sum((prod_share - ref_share) * np.log(prod_share / ref_share)))


def ks_pvalue(reference: np.ndarray, production: np.ndarray) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test (small: the samples differ)."""
    return float(ks_2samp(reference, production).pvalue)


METRICS = {
    DriftMetric.NORMALIZED_WASSERSTEIN: normalized_wasserstein,
    DriftMetric.JENSEN_SHANNON: jensen_shannon,
    DriftMetric.POPULATION_STABILITY_INDEX: population_stability_index,
    DriftMetric.KOLMOGOROV_SMIRNOV: ks_pvalue,
}


def drift_metrics(reference: np.ndarray, production: np.ndarray) -> dict[str, float]:
    """Every drift metric of one numerical column."""
    return {str(metric): compute(reference, production) for metric, compute in METRICS.items()}


@dataclass(frozen=True)
class Quality:
    """Data quality rates of one column of the production window."""

    null_value_rate: float
    data_type_error_rate: float
    out_of_bounds_rate: float

    def as_dict(self) -> dict[str, float]:
        """By metric name."""
        return {
            "null_value_rate": self.null_value_rate,
            "data_type_error_rate": self.data_type_error_rate,
            "out_of_bounds_rate": self.out_of_bounds_rate,
        }


def quality(values: pd.Series, low: float, high: float) -> Quality:
    """Nulls, values that are not numbers (e.g. strings, booleans), numbers outside [low, high]."""
    count = max(len(values), 1)
    nulls = values.isna()
    numeric = pd.to_numeric(values.where(~values.map(_is_bool)), errors="coerce")
    type_errors = ~nulls & numeric.isna()
    # Collected values went through pandas' to_json (10 decimals): the reference's own extremes
    # come back a rounding step away from themselves and are not out of bounds.
    slack = _ROUNDING * max(abs(low), abs(high), 1.0)
    out_of_bounds = numeric.notna() & ((numeric < low - slack) | (numeric > high + slack))
    return Quality(
        float(nulls.sum()) / count,
        float(type_errors.sum()) / count,
        float(out_of_bounds.sum()) / count,
    )


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def numbers(values: pd.Series) -> np.ndarray:
    """The column's finite numbers (what the drift metrics compare)."""
    numeric = pd.to_numeric(values.where(~values.map(_is_bool)), errors="coerce")
    array = numeric.to_numpy(dtype=np.float64)
    return array[np.isfinite(array)]


@dataclass(frozen=True)
class ColumnResult:
    """One feature (or the prediction): its metrics and what breached."""

    name: str
    signal: str  # data_drift or prediction_drift
    metrics: dict[str, float]
    metric: str
    threshold: float
    quality: Quality | None
    breached: list[str] = field(default_factory=list)

    @property
    def value(self) -> float:
        """The value of the metric the threshold applies to."""
        return self.metrics[self.metric]

    @property
    def drifted(self) -> bool:
        """Whether the drift metric breached."""
        return self.metric in self.breached


OUTCOME_OK = "no-drift"
OUTCOME_DRIFT = "drift"
OUTCOME_TOO_LITTLE = "too-little-data"


@dataclass(frozen=True)
class Evaluation:
    """The monitor's verdict on one window."""

    outcome: str
    rows: int
    reference_rows: int
    columns: list[ColumnResult]

    @property
    def breached(self) -> list[ColumnResult]:
        """Columns with any breach."""
        return [column for column in self.columns if column.breached]


def evaluate(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    features: list[str],
    prediction: str,
    thresholds: Thresholds,
) -> Evaluation:
    """Data drift and data quality per feature, prediction drift, against the thresholds.

    `reference` holds the features and the reference predictions (the production model's
    predictions of its own training data); `production` the window's inputs and predictions.
    A window with fewer than `thresholds.min_rows` rows gets no verdict at all.
    """
    rows = len(production)
    if rows < thresholds.min_rows:
        return Evaluation(OUTCOME_TOO_LITTLE, rows, len(reference), [])
    columns = []
    for name in [*features, prediction]:
        is_prediction = name == prediction
        metric = (
            thresholds.prediction_drift_metric if is_prediction else thresholds.data_drift_metric
        )
        threshold = thresholds.prediction_drift if is_prediction else thresholds.data_drift
        ref = numbers(reference[name])
        values = production[name]
        observed = numbers(values)
        metrics = drift_metrics(ref, observed) if len(observed) else {}
        breached = [str(metric)] if metrics and breaches(metric, metrics[metric], threshold) else []
        column_quality = None
        if not is_prediction:
            column_quality = quality(values, float(ref.min()), float(ref.max()))
            breached += [
                key
                for key, limit in thresholds.quality_thresholds().items()
                if column_quality.as_dict()[key] > limit
            ]
        columns.append(
            ColumnResult(
                name=name,
                signal="prediction_drift" if is_prediction else "data_drift",
                metrics=metrics,
                metric=str(metric),
                threshold=threshold,
                quality=column_quality,
                breached=breached,
            )
        )
    outcome = OUTCOME_DRIFT if any(column.breached for column in columns) else OUTCOME_OK
    return Evaluation(outcome, rows, len(reference), columns)
