"""Debiased errors and consistency bands (relcal.estimators)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from relcal.binning import BinTable, bin_table, uniform_edges
from relcal.estimators import (
    bias_corrected_ece,
    bias_corrected_eces,
    binomial_quantile,
    consistency_band,
    debiased_squared_error,
    outside_band,
)


def test_binomial_quantile_is_scipys() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 5000, 3000).astype(float)
    p = rng.random(3000)
    p[:4] = [0.0, 1.0, 1e-9, 1 - 1e-9]
    for q in (0.005, 0.025, 0.05, 0.5, 0.95, 0.975):
        assert np.array_equal(binomial_quantile(q, n, p), binom.ppf(q, n, p))


def test_debiased_squared_error_by_hand() -> None:
    # bin 0: 4 samples, acc 1/4, conf .3: gap^2 .0025, var (1/4)(3/4)/3 = 1/16
    # bin 1: 2 samples, acc 1, conf .9: gap^2 .01, var 0; bin 2: 1 sample: 0
    t = BinTable(
        np.array([0.0, 0.5, 0.95, 1.0]),
        np.array([4, 2, 1]),
        np.array([1.0, 2.0, 1.0]),
        np.array([1.2, 1.8, 0.97]),
    )
    expected = (4 * (0.0025 - 1 / 16) + 2 * 0.01) / 7
    assert debiased_squared_error(t) == pytest.approx(expected, abs=1e-15)


def test_bias_corrected_ece_is_the_limit_of_resampling() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.4, 1.0, 600)
    t = bin_table(conf, rng.random(600) < conf - 0.03, uniform_edges(10))
    count, acc = t.count.astype(float), t.accuracy
    keep = count > 0
    mean_conf = t.mean_conf[keep]
    draws = rng.normal(
        acc[keep],
        np.sqrt(acc[keep] * (1 - acc[keep]) / count[keep]),
        (200_000, keep.sum()),
    )
    resampled = (np.abs(draws - mean_conf) * count[keep]).sum(1) / count.sum()
    plug = float(np.sum(np.abs(acc[keep] - mean_conf) * count[keep]) / count.sum())
    monte_carlo = 2 * plug - resampled.mean()
    assert bias_corrected_ece(t) == pytest.approx(monte_carlo, abs=3e-5)


def test_vectorised_over_replicates() -> None:
    rng = np.random.default_rng(2)
    count = rng.integers(0, 50, (7, 5)).astype(float)
    correct = np.floor(count * rng.random((7, 5)))
    conf = count * rng.uniform(0.5, 1, (7, 5))
    many = bias_corrected_eces(count, conf, correct)
    edges = np.linspace(0, 1, 6)
    one = [
        bias_corrected_ece(BinTable(edges, count[r], correct[r], conf[r]))
        for r in range(7)
    ]
    np.testing.assert_allclose(many, one, rtol=1e-13)


def test_band_holds_a_calibrated_model() -> None:
    rng = np.random.default_rng(3)
    outside = 0
    bins = 0
    for _ in range(200):
        conf = rng.uniform(0.5, 1.0, 2000)
        t = bin_table(conf, rng.random(2000) < conf, uniform_edges(15))
        outside += int(outside_band(t, 0.95).sum())
        bins += int((t.count > 0).sum())
    # conservative (binomial of the mean confidence): at most ~5% outside
    assert outside / bins < 0.06
    lo, hi = consistency_band(t, 0.95)
    assert np.all(np.isnan(lo[t.count == 0])) and np.all(
        lo[t.count > 0] <= hi[t.count > 0]
    )


def test_band_flags_a_miscalibrated_bin() -> None:
    conf = np.full(1000, 0.9)
    t = bin_table(conf, np.arange(1000) < 700, uniform_edges(10))
    assert outside_band(t, 0.95)[8] and outside_band(t, 0.95).sum() == 1
