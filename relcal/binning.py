"""The one bin-edge rule, and the per-bin table built on it.

Convention (used by every metric, table and diagram in relcal)
---------------------------------------------------------------
Bins are **right-closed**: bin ``b`` holds the confidences ``p`` with
``edges[b] < p <= edges[b + 1]``, except that the first bin also holds
``p == edges[0]`` (so 0 is counted, in the first bin).  A confidence of exactly 1.0
falls in the last bin.  Comparisons are made in float64 against float64 edges,
so a float32 confidence is compared exactly as stored.

This is the rule of Guo et al. (2017) and of the published numbers relcal is
checked against, and it equals scikit-learn's ``calibration_curve``
(``np.searchsorted(edges[1:-1], p)``).  The other tools differ only for a
confidence on (or, in float32, next to) an edge:

- netcal clips probabilities to ``[eps, 1 - eps]`` of their dtype, then uses
  numpy-histogram ``[lo, hi)`` bins with the last bin closed;
- relplot computes ``int(p / (1 / n_bins))`` in the input's dtype (float32
  rounding can put ``float32(7/15)`` one bin low) and usually gives p == 1.0 an
  extra, (n_bins + 1)-th bin;
- torchmetrics uses ``[lo, hi)`` on float32 ``torch.linspace`` edges, gives
  p == 1.0 an extra bin, and sums its bins in float32.

``tests/golden/CONVENTIONS.md`` has the source lines and measured differences.

Equal-width edges are ``np.linspace(0, 1, n_bins + 1)``.  Equal-mass edges are
``np.quantile(p, np.linspace(0, 1, n_bins + 1))`` (linear interpolation, as
scikit-learn's ``strategy="quantile"``), with the outer edges then set to 0
and 1 so the bins cover [0, 1]; ties can leave an equal-mass bin empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from relcal.errors import InputError

BINNINGS = ("width", "mass")
# more bins than this is refused: 1e-4 of confidence per bin is finer than any
# data set measures, and bins cost memory (class-wise: classes x bins)
MAX_BINS = 10_000


def check_n_bins(n_bins: int) -> int:
    """Return ``n_bins`` as an int, or raise if it is not a positive integer."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise InputError(f"n_bins must be a positive integer. Got {n_bins!r} instead")
    if n_bins < 1:
        raise InputError(f"n_bins must be a positive integer. Got {n_bins} instead")
    if n_bins > MAX_BINS:
        raise InputError(f"n_bins must be at most {MAX_BINS}. Got {n_bins} instead")
    return int(n_bins)


def check_binning(binning: str) -> str:
    if binning not in BINNINGS:
        raise InputError(
            f"binning must be one of {', '.join(BINNINGS)}. Got {binning!r} instead"
        )
    return binning


def uniform_edges(n_bins: int) -> np.ndarray:
    """Equal-width edges ``linspace(0, 1, n_bins + 1)`` (float64)."""
    return np.linspace(0.0, 1.0, check_n_bins(n_bins) + 1)


def mass_edges(confidences: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass edges: quantiles of ``confidences``, outer edges set to 0 and 1."""
    n_bins = check_n_bins(n_bins)
    conf = np.asarray(confidences, dtype=np.float64)
    if conf.size == 0:
        return uniform_edges(n_bins)
    edges = np.quantile(conf, np.linspace(0.0, 1.0, n_bins + 1))
    edges[0] = 0.0
    edges[-1] = 1.0
    return np.maximum.accumulate(edges)


def make_edges(confidences: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    """Bin edges for ``binning`` ("width" or "mass")."""
    if check_binning(binning) == "width":
        return uniform_edges(n_bins)
    return mass_edges(confidences, n_bins)


def assign_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value under relcal's rule (see module docstring).

    Equivalent to ``np.searchsorted(edges[1:-1], values, side="left")`` for values
    in [0, 1].  For equal-width edges it computes ``ceil(p * n_bins) - 1`` and
    places the values within rounding of an edge by a binary search on the
    float64 edges, which is several times faster than searching for every value
    and gives the same result (tested on every edge and its neighbours).

    Parameters
    ----------
    values : ndarray of shape (n,)
        Probabilities in [0, 1], any float dtype.
    edges : ndarray of shape (n_bins + 1,)
        Increasing float64 edges, ``edges[0] == 0`` and ``edges[-1] == 1``.

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> assign_bins(np.array([0.0, 0.25, 0.2500001, 1.0]), uniform_edges(4))
    array([0, 0, 1, 3])
    """
    n_bins = len(edges) - 1
    values = np.asarray(values)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    if n_bins == 1:
        return np.zeros(values.shape, dtype=np.int64)
    if not _is_uniform(edges):
        return np.searchsorted(edges[1:-1], values, side="left").astype(np.int64)
    x = values * n_bins
    # out-of-range values land on 0 or n_bins, next to an edge: searched below
    np.clip(x, 0, n_bins, out=x)
    # Values within rounding of an edge (|x - k| < tol) are placed by the edges
    # themselves.  The others are in bin floor(x).  Both come from two
    # truncations: with x > -1 + tol, int(x + 1 - tol) == int(x + 1 + tol)
    # exactly when no integer k is within tol of x, and then it is floor(x) + 1.
    tol = max(1e-9, 8.0 * float(np.finfo(x.dtype).eps) * n_bins)
    # truncated to int32 where the bins allow (AVX2 converts float64 to int32
    # in SIMD, not to int64: 25% faster for the whole function)
    itype = np.int32 if n_bins < 2**30 else np.int64
    u = np.add(x, 1.0 - tol)
    lo = u.astype(itype)
    np.add(x, 1.0 + tol, out=u)
    near = np.flatnonzero(lo != u.astype(itype))
    idx = lo.astype(np.int64)
    idx -= 1
    if near.size:
        idx[near] = np.searchsorted(edges[1:-1], values[near], side="left")
    return idx


@lru_cache(maxsize=32)
def _uniform(n_bins: int) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    edges.flags.writeable = False
    return edges


def _is_uniform(edges: np.ndarray) -> bool:
    return bool(np.array_equal(edges, _uniform(len(edges) - 1)))


@dataclass(frozen=True)
class BinTable:
    """Per-bin sufficient statistics of top-label (or one-class) calibration.

    ``count``, ``correct`` and ``sum_conf`` add up across chunks of data, so two
    tables over the same edges can be merged with :meth:`merge`.  "Correct" is
    the top-label correctness for the top-label table and "label == class" for a
    one-class (class-wise or positive-class) table.
    """

    edges: np.ndarray  # (n_bins + 1,) float64
    count: np.ndarray  # (n_bins,) int64
    correct: np.ndarray  # (n_bins,) float64 (a count, float for weighted sums)
    sum_conf: np.ndarray  # (n_bins,) float64

    @property
    def n_bins(self) -> int:
        return len(self.count)

    @property
    def n(self) -> int:
        return int(self.count.sum())

    @property
    def incorrect(self) -> np.ndarray:
        return self.count - self.correct

    @property
    def mean_conf(self) -> np.ndarray:
        """Mean confidence per bin (NaN for an empty bin)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum_conf / self.count, np.nan)

    @property
    def accuracy(self) -> np.ndarray:
        """Fraction correct per bin, the correctness ratio (NaN for an empty bin)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.correct / self.count, np.nan)

    @property
    def gap(self) -> np.ndarray:
        """Mean confidence minus accuracy per bin: positive means over-confident."""
        return self.mean_conf - self.accuracy

    def merge(self, other: BinTable) -> BinTable:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge bin tables with different edges")
        return BinTable(
            self.edges,
            self.count + other.count,
            self.correct + other.correct,
            self.sum_conf + other.sum_conf,
        )


def bin_table(
    confidences: np.ndarray, correct: np.ndarray, edges: np.ndarray
) -> BinTable:
    """Count, correct and summed confidence per bin (float64 accumulators).

    Parameters
    ----------
    confidences : ndarray of shape (n,)
        Confidences in [0, 1].
    correct : ndarray of shape (n,)
        1 where the prediction was right (or the event happened), else 0.
    edges : ndarray of shape (n_bins + 1,)
        Bin edges, see :func:`make_edges`.
    """
    n_bins = len(edges) - 1
    idx = assign_bins(confidences, edges)
    return bin_table_from_index(idx, confidences, correct, edges, n_bins)


def bin_table_from_index(
    idx: np.ndarray,
    confidences: np.ndarray,
    correct: np.ndarray,
    edges: np.ndarray,
    n_bins: int,
) -> BinTable:
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    sum_conf = np.bincount(idx, weights=confidences, minlength=n_bins)
    n_correct = np.bincount(idx, weights=correct, minlength=n_bins)
    return BinTable(np.asarray(edges, dtype=np.float64), count, n_correct, sum_conf)


def calibration_errors(table: BinTable) -> tuple[float, float, float]:
    """ECE (L1), RMS calibration error (L2) and MCE (max) of a bin table.

    ECE = sum_b (n_b / N) |acc_b - conf_b|, RMS-CE = sqrt(sum_b (n_b / N) (acc_b -
    conf_b)^2), MCE = max over non-empty bins of |acc_b - conf_b|.  Empty bins
    carry no weight.  Returns NaN for all three when the table is empty.
    """
    n = table.count.sum()
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    nonempty = table.count > 0
    gap = (
        np.abs(table.sum_conf[nonempty] - table.correct[nonempty])
        / table.count[nonempty]
    )
    w = table.count[nonempty] / n
    ece = float(np.sum(w * gap))
    rms = float(np.sqrt(np.sum(w * gap * gap)))
    mce = float(np.max(gap))
    return ece, rms, mce
