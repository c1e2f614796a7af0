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

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

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


# --------------------------------------------------------------------------
# equal-mass edges from mergeable passes
#
# ``np.quantile(p, q)`` (linear) needs, for each q, two order statistics of p.
# A pass histograms p into FINE_BINS bins (counts, and each bin's smallest and
# largest value: all mergeable); the bin holding an order statistic is then
# known from the cumulative counts.  The statistic is the bin's minimum or
# maximum when it is the bin's first or last value (or all its values are
# equal); otherwise the next pass collects that bin's values (a bounded number,
# at most COLLECT_MAX) or, when there are more, histograms the bin's range
# [min, max] again.  Bins are intervals of values, so a value's bin, and its
# rank among the values, do not depend on the chunking.  The edges are then
# computed from the order statistics with numpy's own formula: bit-identical
# to :func:`mass_edges` on all the values at once.

FINE_BINS = 1 << 14
COLLECT_MAX = 1 << 16
# histogram cells per pass (ranges x bins) at most this many
PROBE_CELLS = 1 << 20


@dataclass(frozen=True, eq=False)
class Probe:
    """What one pass looks at: disjoint value ranges ``[lo_k, hi_k]`` (sorted),
    each histogrammed into ``bins`` bins or (``collect``) its values kept.
    ``first``: one range, all values, binned on [0, 1]."""

    lo: np.ndarray
    hi: np.ndarray
    collect: np.ndarray
    bins: int
    first: bool = False

    @cached_property
    def rows(self) -> np.ndarray:
        """The histogram row of each range (-1: collected)."""
        return np.where(self.collect, -1, np.cumsum(~self.collect) - 1)

    @cached_property
    def near(self) -> Near:
        return Near(self.lo, self.hi)

    def measure(self, values: np.ndarray, hits: object = None) -> ProbeResult:
        """The mergeable result of this probe on some values (float64); the
        ``hits`` (of :meth:`PendingBins.measure`) are not needed."""
        v = np.asarray(values, dtype=np.float64)
        if self.first:
            which = np.zeros(len(v), dtype=np.intp)
            pos = v * self.bins
        else:
            v = v[self.near.candidates(v)]
            which = np.searchsorted(self.lo, v, side="right") - 1
            inside = which >= 0
            inside[inside] = v[inside] <= self.hi[which[inside]]
            v, which = v[inside], which[inside]
            lo, hi = self.lo[which], self.hi[which]
            with np.errstate(invalid="ignore", divide="ignore"):
                pos = (v - lo) / (hi - lo) * self.bins
        kept = self.collect[which]
        values_out, which_out = v[kept], which[kept]
        hist = ~kept
        v, which, pos = v[hist], which[hist], pos[hist]
        sub = np.clip(np.nan_to_num(np.floor(pos), nan=0.0), 0, self.bins - 1)
        flat = self.rows[which] * self.bins + sub.astype(np.intp)
        size = int(np.count_nonzero(~self.collect)) * self.bins
        count = np.bincount(flat, minlength=size).astype(np.int64)
        vmin = np.full(size, np.inf)
        vmax = np.full(size, -np.inf)
        np.minimum.at(vmin, flat, v)
        np.maximum.at(vmax, flat, v)
        return ProbeResult(count, vmin, vmax, values_out, which_out.astype(np.int64))


class Near:
    """Which values may lie in some interval [lo_k, hi_k] of [0, 1]: a table of
    FINE_BINS cells marks the cells the intervals touch, so a pass looks up
    each value's cell (a multiply and a gather) and searches only the few
    values in marked cells."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        f = FINE_BINS
        a = np.clip(np.floor(lo * f), 0, f).astype(np.intp)
        b = np.clip(np.floor(hi * f), 0, f).astype(np.intp)
        steps = np.zeros(f + 2, dtype=np.int64)
        np.add.at(steps, a, 1)
        np.add.at(steps, b + 1, -1)
        self.table = np.cumsum(steps)[: f + 1] > 0

    def candidates(self, v: np.ndarray) -> np.ndarray:
        cell = np.clip(v * FINE_BINS, 0, FINE_BINS).astype(np.intp)
        return np.flatnonzero(self.table[cell])


@dataclass(frozen=True, eq=False)
class ProbeResult:
    """Per range and bin (flat, range-major): count, min, max; and the values
    collected, with the range each came from."""

    count: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    values: np.ndarray
    which: np.ndarray

    def merge(self, other: ProbeResult) -> ProbeResult:
        return ProbeResult(
            self.count + other.count,
            np.minimum(self.vmin, other.vmin),
            np.maximum(self.vmax, other.vmax),
            np.concatenate([self.values, other.values]),
            np.concatenate([self.which, other.which]),
        )


def _quantile_indexes(n: int, n_bins: int) -> tuple[np.ndarray, ...]:
    """numpy's linear-quantile indexes and weights for q = linspace(0, 1,
    n_bins + 1) over n values: (previous, next, gamma), as ``np.quantile``
    computes them (an index past the end is -1, the last value)."""
    q = np.linspace(0.0, 1.0, n_bins + 1)
    h = (n - 1) * q
    prev = np.floor(h)
    nxt = prev + 1
    above = h >= n - 1
    prev[above] = -1
    nxt[above] = -1
    prev_i = prev.astype(np.intp)
    return prev_i, nxt.astype(np.intp), h - prev_i


class QuantileSearch:
    """The order statistics behind equal-mass edges, found pass by pass.

    ``next_probe()`` says what the next pass must measure; ``update(n,
    result)`` reads its merged result (``n``: how many values in all);
    ``done`` once every statistic is known; ``edges()`` then equals
    ``mass_edges(values, n_bins)`` bit for bit.
    """

    def __init__(self, n_bins: int) -> None:
        self.n_bins = check_n_bins(n_bins)
        self.n: int | None = None
        self.known: dict[int, float] = {}
        self.pending: dict[int, tuple[int, int]] = {}  # rank -> (range, local)
        self.probe = Probe(
            np.array([-np.inf]), np.array([np.inf]), np.array([False]), FINE_BINS, True
        )

    @property
    def done(self) -> bool:
        return self.n is not None and not self.pending

    @property
    def ready(self) -> bool:
        """Every statistic known, or in a range whose values the next pass
        collects: that pass can bin too (:meth:`pending_bins`)."""
        return self.n is not None and all(
            bool(self.probe.collect[k]) for k, _ in self.pending.values()
        )

    def pending_bins(self) -> PendingBins:
        """What the last pass (collecting the values left) bins, see
        :class:`PendingBins`."""
        assert self.ready and self.n is not None
        if self.n == 0:
            return PendingBins(uniform_edges(self.n_bins), np.empty(0), np.empty(0))
        lo = {r: v for r, v in self.known.items()}
        hi = dict(lo)
        for rank, (k, _) in self.pending.items():
            lo[rank], hi[rank] = float(self.probe.lo[k]), float(self.probe.hi[k])
        # an edge lies between the interpolations of its statistics' bounds
        # (exact where both are known); the final edges are a running maximum
        low, high = self._raw(lo.__getitem__, hi.__getitem__)
        low = np.maximum.accumulate(np.concatenate([[0.0], low[1:-1]]))[1:]
        high = np.maximum.accumulate(np.concatenate([[0.0], high[1:-1]]))[1:]
        open_ = low < high
        provisional = np.concatenate([[0.0], low, [1.0]])
        return PendingBins(provisional, *_union(low[open_], high[open_]))

    def next_probe(self) -> Probe:
        return self.probe

    def update(self, n: int, result: ProbeResult) -> None:
        if self.n is None:
            self.n = n
            prev, nxt, _ = _quantile_indexes(n, self.n_bins)
            ranks = np.concatenate([prev[1:-1], nxt[1:-1]]) % max(n, 1)
            self.pending = {int(r): (0, int(r)) for r in np.unique(ranks)} if n else {}
        ranges: dict[tuple[float, float], tuple[int, bool]] = {}
        pending: dict[int, tuple[float, float, int]] = {}
        collected: dict[int, np.ndarray] = {}
        bins = self.probe.bins
        for rank, (k, local) in self.pending.items():
            if self.probe.collect[k]:
                if k not in collected:
                    collected[k] = np.sort(result.values[result.which == k])
                self.known[rank] = float(collected[k][local])
                continue
            h = int(self.probe.rows[k])
            row = slice(h * bins, (h + 1) * bins)
            cum = np.cumsum(result.count[row])
            b = int(np.searchsorted(cum, local, side="right"))
            within = local - (int(cum[b - 1]) if b else 0)
            lo, hi = float(result.vmin[row][b]), float(result.vmax[row][b])
            count = int(result.count[row][b])
            if lo == hi or within == 0:
                self.known[rank] = lo
            elif within == count - 1:
                self.known[rank] = hi
            else:
                ranges[(lo, hi)] = (0, count <= COLLECT_MAX)
                pending[rank] = (lo, hi, within)
        self._next(ranges, pending)

    def _next(
        self,
        ranges: dict[tuple[float, float], tuple[int, bool]],
        pending: dict[int, tuple[float, float, int]],
    ) -> None:
        keys = sorted(ranges)
        index = {key: i for i, key in enumerate(keys)}
        self.pending = {r: (index[(lo, hi)], w) for r, (lo, hi, w) in pending.items()}
        n_hist = sum(not ranges[k][1] for k in keys)
        bins = max(16, min(FINE_BINS, PROBE_CELLS // max(n_hist, 1)))
        self.probe = Probe(
            np.array([k[0] for k in keys], dtype=np.float64),
            np.array([k[1] for k in keys], dtype=np.float64),
            np.array([ranges[k][1] for k in keys], dtype=bool),
            bins,
        )

    def edges(self) -> np.ndarray:
        """The equal-mass edges (``mass_edges`` of the values searched)."""
        assert self.done and self.n is not None
        if self.n == 0:
            return uniform_edges(self.n_bins)
        out = self._raw(lambda r: self.known[r])[0]
        out[0] = 0.0
        out[-1] = 1.0
        return np.maximum.accumulate(out)

    def _raw(
        self, value: Callable[[int], float], upper: Callable[[int], float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """np.quantile's interpolation of the order statistics ``value(rank)``
        (with ``upper``: also the largest each edge can be, interpolating
        ``upper(rank)``; NaN at the two outer edges, which are set apart)."""
        assert self.n is not None
        n = self.n
        prev, nxt, gamma = _quantile_indexes(n, self.n_bins)
        inner = range(1, len(prev) - 1)

        def lerp(f: Callable[[int], float]) -> np.ndarray:
            a = np.full(len(prev), np.nan)
            b = np.full(len(prev), np.nan)
            for j in inner:
                a[j], b[j] = f(int(prev[j]) % n), f(int(nxt[j]) % n)
            diff = b - a
            out = a + diff * gamma
            late = gamma >= 0.5
            out[late] = (b - diff * (1 - gamma))[late]
            return out

        low = lerp(value)
        return low, low if upper is None else lerp(upper)


@dataclass(frozen=True, eq=False)
class PendingBins:
    """Binned sums before every edge is known exactly.

    An edge not yet known lies in a known interval ``(lo, hi]`` (the
    interpolations of its two order statistics' bounds).  A value outside
    every such interval falls in the same bin whatever the edge is, so it is
    binned now (against ``provisional`` edges, which use ``lo``); the values
    inside one are summed per distinct value (at most the values of the
    ranges being collected, and the ties at their ends) and binned once the
    edges are known (:meth:`table`).
    """

    provisional: np.ndarray  # (n_bins + 1,)
    lo: np.ndarray  # disjoint, sorted intervals (lo, hi] holding unknown edges
    hi: np.ndarray

    def measure(self, values: np.ndarray, hits: np.ndarray) -> PendingResult:
        v = np.asarray(values, dtype=np.float64)
        h = np.asarray(hits, dtype=np.float64)
        near = self.near.candidates(v)
        k = np.searchsorted(self.lo, v[near], side="left") - 1
        inside = k >= 0
        inside[inside] = v[near][inside] <= self.hi[k[inside]]
        held = near[inside]
        free = np.ones(len(v), dtype=bool)
        free[held] = False
        vf, hf = (v, h) if not len(held) else (v[free], h[free])
        n_bins = len(self.provisional) - 1
        idx = np.searchsorted(self.provisional[1:-1], vf, side="left")
        sums = bin_table_from_index(idx, vf, hf, self.provisional, n_bins)
        return PendingResult.of(sums, v[held], np.ones(len(held)), h[held])

    @cached_property
    def near(self) -> Near:
        return Near(self.lo, self.hi)

    def table(self, result: PendingResult, edges: np.ndarray) -> BinTable:
        """The bin table over the exact ``edges``."""
        idx = assign_bins(result.values, edges)
        n_bins = len(edges) - 1
        count = np.bincount(idx, weights=result.count, minlength=n_bins)
        held = BinTable(
            edges,
            count.astype(np.int64),
            np.bincount(idx, weights=result.hits, minlength=n_bins),
            np.bincount(idx, weights=result.values * result.count, minlength=n_bins),
        )
        done = result.sums
        return BinTable(
            edges,
            done.count + held.count,
            done.correct + held.correct,
            done.sum_conf + held.sum_conf,
        )


@dataclass(frozen=True, eq=False)
class PendingResult:
    """Sums binned already, and per distinct value held back: its count and
    hits (a value's samples all fall in one bin)."""

    sums: BinTable
    values: np.ndarray
    count: np.ndarray
    hits: np.ndarray

    @staticmethod
    def of(
        sums: BinTable, values: np.ndarray, count: np.ndarray, hits: np.ndarray
    ) -> PendingResult:
        distinct, inverse = np.unique(values, return_inverse=True)
        return PendingResult(
            sums,
            distinct,
            np.bincount(inverse, weights=count, minlength=len(distinct)),
            np.bincount(inverse, weights=hits, minlength=len(distinct)),
        )

    def merge(self, other: PendingResult) -> PendingResult:
        return PendingResult.of(
            self.sums.merge(other.sums),
            np.concatenate([self.values, other.values]),
            np.concatenate([self.count, other.count]),
            np.concatenate([self.hits, other.hits]),
        )


def _union(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intervals (lo, hi] (sorted by lo) merged into disjoint ones."""
    out_lo: list[float] = []
    out_hi: list[float] = []
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        if out_hi and a <= out_hi[-1]:
            out_hi[-1] = max(out_hi[-1], b)
        else:
            out_lo.append(a)
            out_hi.append(b)
    return np.array(out_lo, dtype=np.float64), np.array(out_hi, dtype=np.float64)
