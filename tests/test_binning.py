"""The one bin-edge rule: right-closed (lo, hi], 0 in the first bin, 1.0 in the last."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relcal.binning import (
    BinTable,
    assign_bins,
    bin_table,
    calibration_errors,
    mass_edges,
    uniform_edges,
)
from relcal.errors import RelcalError


def searchsorted_rule(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """scikit-learn's calibration_curve rule, the definition relcal follows."""
    return np.searchsorted(edges[1:-1], values, side="left")


def test_edges_and_endpoints() -> None:
    edges = uniform_edges(4)
    assert edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    idx = assign_bins(np.array([0.0, 0.25, 0.2500001, 0.5, 0.75, 0.99, 1.0]), edges)
    # 0 in the first bin, an edge value in the bin it closes, 1.0 in the last
    assert idx.tolist() == [0, 0, 1, 1, 2, 3, 3]


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 20, 100])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fast_rule_equals_searchsorted(n_bins: int, dtype: type) -> None:
    rng = np.random.default_rng(n_bins)
    edges = uniform_edges(n_bins)
    # random values, every edge itself, and the neighbours of every edge in dtype
    e = edges.astype(dtype)
    near = np.concatenate([e, np.nextafter(e, dtype(0)), np.nextafter(e, dtype(2))])
    values = np.concatenate([rng.random(10000).astype(dtype), near])
    values = np.clip(values, 0, 1).astype(dtype)
    assert np.array_equal(assign_bins(values, edges), searchsorted_rule(values, edges))


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(np.float32, st.integers(1, 200), elements=st.floats(0, 1, width=32)),
    st.integers(1, 40),
)
def test_rule_property(values: np.ndarray, n_bins: int) -> None:
    edges = uniform_edges(n_bins)
    assert np.array_equal(assign_bins(values, edges), searchsorted_rule(values, edges))


def test_mass_edges_cover_unit_interval_and_balance() -> None:
    rng = np.random.default_rng(0)
    conf = rng.beta(5, 1, 10000)
    edges = mass_edges(conf, 10)
    assert edges[0] == 0.0 and edges[-1] == 1.0
    assert np.all(np.diff(edges) >= 0)
    counts = np.bincount(assign_bins(conf, edges), minlength=10)
    assert counts.min() >= 999 and counts.max() <= 1001
    # non-uniform edges go through the same rule
    assert np.array_equal(assign_bins(conf, edges), searchsorted_rule(conf, edges))


def test_bin_table_and_errors_by_hand() -> None:
    conf = np.array([0.1, 0.2, 0.6, 0.9, 1.0])
    correct = np.array([0, 1, 1, 1, 0])
    t = bin_table(conf, correct, uniform_edges(2))
    assert t.count.tolist() == [2, 3]
    assert t.correct.tolist() == [1, 2]
    assert t.incorrect.tolist() == [1, 1]
    assert t.mean_conf.tolist() == pytest.approx([0.15, 2.5 / 3])
    assert t.accuracy.tolist() == pytest.approx([0.5, 2 / 3])
    assert t.gap.tolist() == pytest.approx([0.15 - 0.5, 2.5 / 3 - 2 / 3])
    ece, rms, mce = calibration_errors(t)
    assert ece == pytest.approx(2 / 5 * 0.35 + 3 / 5 * (2.5 / 3 - 2 / 3))
    assert rms == pytest.approx(np.sqrt(2 / 5 * 0.35**2 + 3 / 5 * (1 / 6) ** 2))
    assert mce == pytest.approx(0.35)


def test_empty_bins_are_nan_and_weightless() -> None:
    t = bin_table(np.array([0.95, 0.97]), np.array([1, 1]), uniform_edges(10))
    assert t.count.sum() == 2 and np.isnan(t.accuracy[:9]).all()
    ece, _, mce = calibration_errors(t)
    assert ece == pytest.approx(0.04) and mce == pytest.approx(0.04)


def test_tables_merge() -> None:
    rng = np.random.default_rng(3)
    conf, corr = rng.random(1000), rng.random(1000) < 0.7
    edges = uniform_edges(15)
    whole = bin_table(conf, corr, edges)
    merged = bin_table(conf[:400], corr[:400], edges).merge(
        bin_table(conf[400:], corr[400:], edges)
    )
    assert isinstance(merged, BinTable)
    assert np.array_equal(whole.count, merged.count)
    assert np.allclose(whole.sum_conf, merged.sum_conf)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_bad_n_bins(bad: object) -> None:
    with pytest.raises(RelcalError, match="n_bins must be a positive integer"):
        uniform_edges(bad)  # type: ignore[arg-type]
