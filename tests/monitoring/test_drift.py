"""Drift metrics: equal to scipy's functions and to hand-computed cases; no false alarm on
in-distribution windows, a breach on a shifted one; the thresholds are Azure ML's defaults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from pipelines.monitoring import drift
from pipelines.monitoring.thresholds import THRESHOLDS, DriftMetric, Thresholds, breaches
from tests.bundles import DIABETES_FEATURES as FEATURES
from tests.bundles import diabetes_data as bundled_diabetes

REF = np.array([0.0, 0.0, 1.0, 1.0])
PROD = np.array([0.0, 0.0, 0.0, 0.0])


def test_normalized_wasserstein_is_scipy_over_the_reference_sample_std() -> None:
    reference, production = np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4])
    assert drift.normalized_wasserstein(reference, production) == pytest.approx(1 / 1.2909944)
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 2, 300), rng.normal(0.5, 2, 200)
    assert drift.normalized_wasserstein(a, b) == pytest.approx(
        wasserstein_distance(a, b) / np.std(a, ddof=1)
    )
    # A constant reference: divided by the 0.001 floor, not by zero.
    assert drift.normalized_wasserstein(np.ones(5), np.full(5, 1.01)) == pytest.approx(10.0)


def test_binning_follows_sturges_over_both_ranges() -> None:
    assert drift.sturges_bins(4) == 3
    assert drift.sturges_bins(1000) == 11
    assert drift.shared_edges(REF, PROD).tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    ref_counts, prod_counts = drift.histograms(REF, PROD)
    assert ref_counts.tolist() == [2, 0, 2]  # the last bin holds its right edge
    assert prod_counts.tolist() == [4, 0, 0]


def test_jensen_shannon_by_hand_and_by_scipy() -> None:
    # p = [.5, 0, .5], q = [1, 0, 0], m = [.75, 0, .25]:
    # JS = ½·(½·log2(⅔) + ½·log2(2)) + ½·log2(4/3) = 0.311278; distance = its square root.
    assert drift.jensen_shannon(REF, PROD) == pytest.approx(0.5579230)
    assert drift.jensen_shannon(REF, PROD) == pytest.approx(
        jensenshannon([0.5, 0, 0.5], [1, 0, 0], base=2)
    )
    assert drift.jensen_shannon(REF, REF) == pytest.approx(0.0)


def test_population_stability_index_by_hand() -> None:
    # Add-one smoothing: r = [3, 1, 3]/7, p = [5, 1, 1]/7.
    expected = (2 / 7) * np.log(5 / 3) + (-2 / 7) * np.log(1 / 3)
    assert drift.population_stability_index(REF, PROD) == pytest.approx(expected)
    assert expected == pytest.approx(0.4598, abs=1e-4)
    assert drift.population_stability_index(REF, REF) == pytest.approx(0.0)


def test_ks_is_scipys_p_value() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=200), rng.normal(0.3, size=150)
    assert drift.ks_pvalue(a, b) == ks_2samp(a, b).pvalue
    assert drift.ks_pvalue(a, a) == pytest.approx(1.0)


def test_quality_counts_nulls_type_errors_and_out_of_bounds() -> None:
    values = pd.Series([0.1, None, "x", 5.0, True, 0.5, float("nan"), -1.0, 1.0, 0.0], dtype=object)
    result = drift.quality(values, 0.0, 1.0)
    assert result == drift.Quality(
        null_value_rate=0.2, data_type_error_rate=0.2, out_of_bounds_rate=0.2
    )
    assert drift.numbers(values).tolist() == [0.1, 5.0, 0.5, -1.0, 1.0, 0.0]
    # The collector's JSON keeps 10 decimals: the reference's extremes, rounded, are in bounds.
    rounded = pd.Series([round(1 / 3, 10), round(2 / 3, 10)])
    assert drift.quality(rounded, 1 / 3 + 1e-12, 2 / 3 - 1e-12).out_of_bounds_rate == 0.0
    assert drift.quality(pd.Series([0.6667]), 1 / 3, 2 / 3).out_of_bounds_rate == 1.0


def test_breach_direction() -> None:
    assert breaches(DriftMetric.NORMALIZED_WASSERSTEIN, 0.11, 0.1)
    assert not breaches(DriftMetric.NORMALIZED_WASSERSTEIN, 0.1, 0.1)
    assert breaches(DriftMetric.KOLMOGOROV_SMIRNOV, 0.01, 0.05)  # a p-value: low is drift
    assert not breaches(DriftMetric.KOLMOGOROV_SMIRNOV, 0.5, 0.05)


def test_default_thresholds_are_azure_ml_model_monitorings() -> None:
    from azure.ai.ml.entities import DataDriftMetricThreshold, DataQualityMetricThreshold

    drift_defaults = DataDriftMetricThreshold._get_default_thresholds()
    assert drift_defaults.numerical.normalized_wasserstein_distance == THRESHOLDS.data_drift
    assert THRESHOLDS.data_drift_metric is DriftMetric.NORMALIZED_WASSERSTEIN
    quality_defaults = DataQualityMetricThreshold._get_default_thresholds().numerical
    assert quality_defaults.null_value_rate == THRESHOLDS.null_value_rate
    assert quality_defaults.data_type_error_rate == THRESHOLDS.data_type_error_rate
    assert quality_defaults.out_of_bounds_rate == THRESHOLDS.out_of_bounds_rate


COEFFICIENTS = np.linspace(-300, 500, len(FEATURES))


def frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Features plus a linear model's predictions (the prediction drift column)."""
    out = rows.loc[:, list(FEATURES)].reset_index(drop=True)
    return out.assign(prediction=out.to_numpy() @ COEFFICIENTS + 150)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return frame(bundled_diabetes())


def sample(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    picked = np.random.default_rng(seed).integers(0, len(rows), size)
    return rows.iloc[picked].reset_index(drop=True)


@pytest.mark.parametrize("seed", range(6))
def test_a_window_drawn_from_the_training_data_does_not_breach(
    reference: pd.DataFrame, seed: int
) -> None:
    window = sample(reference, THRESHOLDS.min_rows, seed)
    result = drift.evaluate(reference, window, list(FEATURES), "prediction", THRESHOLDS)
    assert result.outcome == drift.OUTCOME_OK, [(c.name, c.value) for c in result.columns]
    assert len(result.columns) == len(FEATURES) + 1


def test_a_shifted_window_breaches_on_the_shifted_features(reference: pd.DataFrame) -> None:
    data = bundled_diabetes()
    heavy = frame(data[data["bmi"] > data["bmi"].median()])
    result = drift.evaluate(
        reference, sample(heavy, THRESHOLDS.min_rows, 0), list(FEATURES), "prediction", THRESHOLDS
    )
    assert result.outcome == drift.OUTCOME_DRIFT
    drifted = {column.name for column in result.columns if column.drifted}
    assert {"bmi", "prediction"} <= drifted
    assert "sex" not in drifted  # unrelated to BMI: no false alarm beside the real one
    bmi = next(column for column in result.columns if column.name == "bmi")
    assert bmi.value > 0.5 and bmi.metrics[DriftMetric.KOLMOGOROV_SMIRNOV] < 1e-6
    assert bmi.quality == drift.Quality(0.0, 0.0, 0.0)


def test_too_little_data_is_no_verdict(reference: pd.DataFrame) -> None:
    data = bundled_diabetes()
    heavy = frame(data[data["bmi"] > data["bmi"].median()])
    window = sample(heavy, THRESHOLDS.min_rows - 1, 0)
    result = drift.evaluate(reference, window, list(FEATURES), "prediction", THRESHOLDS)
    assert result.outcome == drift.OUTCOME_TOO_LITTLE
    assert result.columns == [] and result.rows == THRESHOLDS.min_rows - 1


def test_bad_values_breach_data_quality(reference: pd.DataFrame) -> None:
    window = sample(reference, 1000, 1).astype(object)
    window.loc[3, "bmi"] = None
    window.loc[4, "bp"] = "high"
    window.loc[5, "s1"] = 0.2  # just above the largest s1 of the data
    result = drift.evaluate(reference, window, list(FEATURES), "prediction", Thresholds())
    breached = {column.name: column.breached for column in result.breached}
    assert breached["bmi"] == ["null_value_rate"]
    assert breached["bp"] == ["data_type_error_rate"]
    assert breached["s1"] == ["out_of_bounds_rate"]
    assert result.outcome == drift.OUTCOME_DRIFT
