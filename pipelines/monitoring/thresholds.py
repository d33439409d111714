"""Monitoring thresholds: the one place both `mlops monitor` and the Azure MonitorSchedule read.

The defaults are Azure ML model monitoring's own: azure-ai-ml
`azure/ai/ml/entities/_monitoring/thresholds.py` sets numerical drift to normalized
Wasserstein distance 0.1 (`NumericalDriftMetrics._get_default_thresholds`), categorical drift to
Jensen-Shannon distance 0.1, and the data quality rates (null value, data type error, out of
bounds) to 0.0 (`DataQualityMetricsNumerical._get_default_thresholds`); a test holds them equal.
A breach is a value above its threshold, except for the two-sample Kolmogorov-Smirnov test, whose
value is a p-value and breaches below it (Azure/azureml-assets,
`assets/model_monitoring/components/src/model_monitor_evaluate_metrics_threshold/
evaluate_metrics_threshold.py`, `Metric_Value_Should_Greater_Than_Threshold`).

To change them, edit `THRESHOLDS` below: the local monitor and the schedule the release creates on
Azure both follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DriftMetric(StrEnum):
    """Numerical drift metrics of Azure ML model monitoring, named as azure-ai-ml names them."""

    NORMALIZED_WASSERSTEIN = "normalized_wasserstein_distance"
    JENSEN_SHANNON = "jensen_shannon_distance"
    POPULATION_STABILITY_INDEX = "population_stability_index"
    KOLMOGOROV_SMIRNOV = "two_sample_kolmogorov_smirnov_test"

    @property
    def short(self) -> str:
        """The column heading in tables: NWD, JSD, PSI, KS p."""
        return _SHORT[self]


_SHORT = {
    DriftMetric.NORMALIZED_WASSERSTEIN: "NWD",
    DriftMetric.JENSEN_SHANNON: "JSD",
    DriftMetric.POPULATION_STABILITY_INDEX: "PSI",
    DriftMetric.KOLMOGOROV_SMIRNOV: "KS p",
}

# Learn "concept-model-monitoring": data quality metrics of numerical features.
QUALITY_METRICS: tuple[str, ...] = ("null_value_rate", "data_type_error_rate", "out_of_bounds_rate")


def breaches(metric: DriftMetric | str, value: float, threshold: float) -> bool:
    """Whether a metric value breaches its threshold (a p-value breaches below it)."""
    if metric == DriftMetric.KOLMOGOROV_SMIRNOV:
        return value < threshold
    return value > threshold


@dataclass(frozen=True)
class Thresholds:
    """What counts as drift or bad data, and how much data a verdict needs."""

    data_drift_metric: DriftMetric = DriftMetric.NORMALIZED_WASSERSTEIN
    data_drift: float = 0.1
    prediction_drift_metric: DriftMetric = DriftMetric.NORMALIZED_WASSERSTEIN
    prediction_drift: float = 0.1
    null_value_rate: float = 0.0
    data_type_error_rate: float = 0.0
    out_of_bounds_rate: float = 0.0
    # Fewer rows give no verdict. The sampling noise of the normalized Wasserstein distance alone
    # reaches 0.1 on small windows: measured on the bundled data, windows drawn from the training
    # data itself exceed 0.1 on some feature in over half the draws at 200 rows, but stay below
    # 0.09 at 1000 rows (100 seeds). Lower it only together with a looser drift threshold.
    min_rows: int = 1000

    def quality_thresholds(self) -> dict[str, float]:
        """The data quality rates by metric name."""
        return {name: getattr(self, name) for name in QUALITY_METRICS}


THRESHOLDS = Thresholds()
