"""Bootstrap intervals for the metrics: a mergeable Poisson bootstrap, pure numpy.

Convention
----------
- **Resampling unit**: the leading-axis row of the scores.  For (N, C) scores
  a unit is one sample; for segmentation, (N, C, H, W), a unit is one whole
  image with all its kept pixels (a cluster bootstrap).  Pixels of one image
  are strongly correlated, so resampling pixels one by one would treat a
  handful of images as millions of independent draws and give intervals far
  too narrow; resampling images is the statistically right unit.
- **Weights**: replicate ``r`` weighs unit ``u`` by ``w[u, r] ~ Poisson(1)``,
  independently for every unit and replicate (the Poisson bootstrap: the
  number of times a unit is drawn when about N draws are made).  ``w[u, r]``
  is a function of ``(seed, u, r)`` only: units are cut into fixed global
  blocks of :data:`UNIT_BLOCK` and replicates into blocks of
  :data:`REPLICATE_BLOCK`; the weights of one (unit block, replicate block)
  come from ``numpy.random.default_rng(SeedSequence([seed, unit_block,
  replicate_block]))`` (:func:`block_weights`).  A chunk of the data generates
  the blocks its units fall in and takes their rows, so the result does not
  depend on how the data is cut into chunks, on their order or on the number
  of jobs; a paired baseline (or the positive-class set) with the same seed
  and units gets the same weights.
- **What is summed**: per replicate and bin, the weighted count, the weighted
  sum of top-label confidence and of correct; per replicate the weighted sums
  of the NLL and Brier terms (:class:`ReplicateSums`).  First per unit and bin
  (a ``bincount``), then ``weights @ per-unit sums``, one block at a time, so
  memory stays bounded whatever N.  Sums of two chunks merge by addition.
  The bin edges are those of the full sample and stay fixed (for equal-mass
  bins too): the intervals are conditional on the edges.
- **Metrics of a replicate**: a Poisson replicate's total weight varies, so
  every metric is a ratio of its sums: accuracy = weighted correct / total
  weight, ECE = sum over bins of |weighted confidence - weighted correct| /
  total weight, and so on.  A replicate whose total weight is 0 (possible only
  with very few units) has no value and is left out of the interval.
- **Interval**: percentile interval, bias-corrected for the binned metrics.
  Binned calibration errors (ECE, RMS-CE, MCE) are biased upward on finite
  samples: a bin's |accuracy - confidence| is never below zero, so noise adds
  to it.  The bootstrap estimates that bias as ``b = mean(theta*) - theta``
  (``theta*`` the replicates, ``theta`` the plug-in estimate); the debiased
  estimate is ``theta - b = 2 theta - mean(theta*)`` (the resampling correction
  of Kumar, Liang & Ma 2019 for the L1 error, with bootstrap replicates), and
  the interval is the percentile interval of ``theta*`` shifted by ``-2 b`` so
  it is centred on the debiased estimate.  Sample means (accuracy, NLL, Brier)
  get the plain percentile interval.

References
----------
Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 10 and 13.
Hanley & MacGibbon (2006), Creating non-parametric bootstrap samples using
Poisson frequencies, Computer Methods and Programs in Biomedicine 83.
Kumar, Liang, Ma (2019), Verified Uncertainty Calibration (NeurIPS).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from relcal.binning import assign_bins
from relcal.errors import InputError
from relcal.reduce import Reduced

POSITIVE = {  # the positive-class metrics: the binned ones of P(class 1)'s set
    "positive_class_ece": "ece",
    "positive_class_rms_ce": "rms_ce",
    "positive_class_mce": "mce",
}
BOOTSTRAP_METRICS = ("accuracy", "ece", "rms_ce", "mce", "nll", "brier", *POSITIVE)
BINNED = frozenset({"ece", "rms_ce", "mce", "classwise_ece", *POSITIVE})
# the value of "resampling" in relcal check --json (a versioned name: the
# multinomial bootstrap of relcal 0.1 was "multinomial: N samples drawn with
# replacement")
RESAMPLING = "poisson: Poisson(1) weight per unit (sample, or image) and replicate"
# the fixed global blocks the weights are generated in (see the module
# docstring): changing either changes every replicate
UNIT_BLOCK = 1024
REPLICATE_BLOCK = 256
# units x replicates above this is refused (about a minute of work)
MAX_RESAMPLES = 10_000_000_000
# replicates x bins above this is refused: the sums would take over 100 MB
MAX_REPLICATE_BINS = 1 << 22
# more replicates than this is refused: the interval's end points no longer move
MAX_REPLICATES = 100_000
# samples handed to replicate_sums at a time by the in-memory path
CHUNK_SAMPLES = 1 << 22


@dataclass(frozen=True)
class Samples:
    """The per-sample quantities the bootstrap resamples (arrays of shape (n,))."""

    bin_index: np.ndarray  # int64, under the one bin rule
    confidence: np.ndarray  # float64
    correct: np.ndarray  # float64, 1.0 or 0.0
    nll: np.ndarray | None  # float64
    brier: np.ndarray | None  # float64
    n_bins: int
    unit: np.ndarray | None = None  # int64: the leading-axis row; None: arange(n)

    @property
    def n(self) -> int:
        return len(self.confidence)

    @property
    def units(self) -> np.ndarray:
        return np.arange(self.n, dtype=np.int64) if self.unit is None else self.unit


def samples_from_reduced(
    reduced: Reduced, edges: np.ndarray, unit: np.ndarray | None = None
) -> Samples:
    """What the bootstrap needs from a reduction, binned with ``edges``."""
    conf = np.asarray(reduced.confidence, dtype=np.float64)
    return Samples(
        bin_index=assign_bins(conf, edges),
        confidence=conf,
        correct=np.asarray(reduced.correct, dtype=np.float64),
        nll=None if reduced.nll is None else np.asarray(reduced.nll, np.float64),
        brier=None if reduced.brier is None else np.asarray(reduced.brier, np.float64),
        n_bins=len(edges) - 1,
        unit=unit,
    )


def positive_samples(
    reduced: Reduced, edges: np.ndarray, unit: np.ndarray | None = None
) -> Samples | None:
    """Two classes: P(class 1) and "label == 1" per sample, binned with
    ``edges`` (the positive-class table's), resampled like a top-label set;
    its ECE, RMS-CE and MCE are the positive-class ones.  None otherwise."""
    if reduced.positive is None or reduced.labels is None:
        return None
    pos = np.asarray(reduced.positive, dtype=np.float64)
    return Samples(
        bin_index=assign_bins(pos, edges),
        confidence=pos,
        correct=(np.asarray(reduced.labels) == 1).astype(np.float64),
        nll=None,
        brier=None,
        n_bins=len(edges) - 1,
        unit=unit,
    )


def sample_units(labels: np.ndarray, ignore_index: int | None = None) -> np.ndarray:
    """The unit of each kept sample: its leading-axis row (an image for
    labels of shape (N, H, W)), in the order the reduction keeps them.

    Examples
    --------
    >>> sample_units(np.array([[0, 255], [255, 255], [1, 2]]), 255)
    array([0, 2, 2])
    """
    labels = np.asarray(labels)
    n = labels.shape[0] if labels.ndim else 0
    if ignore_index is None:
        per_row = np.full(n, labels[0].size if n else 0, dtype=np.int64)
    else:
        per_row = np.count_nonzero(labels.reshape(n, -1) != ignore_index, axis=1)
    return np.repeat(np.arange(n, dtype=np.int64), per_row)


# --------------------------------------------------------------------------
# the weights


@functools.lru_cache(maxsize=1)
def _poisson_table() -> tuple[np.ndarray, np.ndarray]:
    """Inversion of the Poisson(1) CDF at 32-bit resolution.

    ``thresholds[k] = floor(2**32 P(X <= k))``: a uniform 32-bit integer ``u``
    gives ``X = #{k: thresholds[k] <= u}``.  ``table`` holds that value for
    each of the 2**16 ranges of ``u``'s top 16 bits, or -1 for the few ranges
    that hold a threshold (resolved with the thresholds themselves).
    """
    pmf = np.array([math.exp(-1.0) / math.factorial(k) for k in range(40)])
    cut = np.floor(np.cumsum(pmf) * 2.0**32)
    thresholds = cut[cut < 2.0**32].astype(np.uint64)
    low = np.arange(1 << 16, dtype=np.uint64) << np.uint64(16)
    first = np.searchsorted(thresholds, low, side="right")
    last = np.searchsorted(thresholds, low + np.uint64(0xFFFF), side="right")
    return thresholds, np.where(first == last, first, -1).astype(np.float64)


@functools.lru_cache(maxsize=8)  # 16 MB: small chunks reuse their blocks
def block_weights(seed: int, unit_block: int, replicate_block: int) -> np.ndarray:
    """The Poisson(1) weights of one block of units in one block of replicates.

    Returns read-only float64 of shape (UNIT_BLOCK, REPLICATE_BLOCK): row
    ``i`` is unit ``unit_block * UNIT_BLOCK + i``, column ``j`` replicate
    ``replicate_block * REPLICATE_BLOCK + j``.

    Examples
    --------
    >>> w = block_weights(0, 0, 0)
    >>> w.shape, bool(np.array_equal(w, block_weights(0, 0, 0)))
    ((1024, 256), True)
    >>> bool(abs(w.mean() - 1) < 0.01 and abs(w.var() - 1) < 0.01)
    True
    """
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, unit_block, replicate_block])
    )
    draws = rng.integers(
        0, 1 << 32, size=(UNIT_BLOCK, REPLICATE_BLOCK), dtype=np.uint32
    )
    thresholds, table = _poisson_table()
    weights = table[draws >> np.uint32(16)]
    split = np.flatnonzero(weights < 0)
    weights.flat[split] = np.searchsorted(thresholds, draws.flat[split], side="right")
    weights.flags.writeable = False
    return weights


def unit_weights(units: np.ndarray, n_replicates: int, *, seed: int) -> np.ndarray:
    """The weights of ``units`` in replicates 0 .. n_replicates - 1, shape
    (len(units), n_replicates): what :func:`replicate_sums` multiplies by.

    Examples
    --------
    >>> w = unit_weights(np.array([5, 2000]), 300, seed=1)
    >>> bool(np.array_equal(w[1], unit_weights(np.array([2000]), 300, seed=1)[0]))
    True
    """
    units = np.asarray(units, dtype=np.int64)
    out = np.empty((len(units), n_replicates))
    blocks = units // UNIT_BLOCK
    for b in np.unique(blocks).tolist():
        at = np.flatnonzero(blocks == b)
        rows = units[at] - b * UNIT_BLOCK
        for q, lo, hi in _replicate_blocks(n_replicates):
            out[at, lo:hi] = block_weights(seed, b, q)[rows, : hi - lo]
    return out


def _replicate_blocks(n_replicates: int) -> list[tuple[int, int, int]]:
    """(block, first replicate, end) of every replicate block."""
    return [
        (q, lo, min(lo + REPLICATE_BLOCK, n_replicates))
        for q, lo in enumerate(range(0, n_replicates, REPLICATE_BLOCK))
    ]


# --------------------------------------------------------------------------
# the replicate sums


@dataclass(frozen=True)
class ReplicateSums:
    """Per replicate, the weighted sums every bootstrapped metric is a ratio of.

    ``count``, ``confidence`` and ``correct`` have shape (n_replicates,
    n_bins): the weighted number of samples in each bin, and the weighted sums
    of their top-label confidence and of correct.  ``nll`` and ``brier`` have
    shape (n_replicates,) (None when not computed).  Sums of disjoint parts of
    the data, under the same seed, add up (:meth:`merge`).
    """

    n_bins: int
    seed: int
    count: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    nll: np.ndarray | None = None
    brier: np.ndarray | None = None

    @property
    def n_replicates(self) -> int:
        return int(self.count.shape[0])

    def merge(self, other: ReplicateSums) -> ReplicateSums:
        """The sums of both parts (same seed, replicates, bins and quantities).

        Examples
        --------
        >>> a = replicate_sums(np.array([0, 1]), np.array([0, 1]), np.array([.2, .7]),
        ...                    np.array([0., 1.]), None, None, n_bins=2,
        ...                    n_replicates=100, seed=3)
        >>> b = replicate_sums(np.array([2]), np.array([1]), np.array([.9]),
        ...                    np.array([1.]), None, None, n_bins=2,
        ...                    n_replicates=100, seed=3)
        >>> whole = replicate_sums(np.array([0, 1, 2]), np.array([0, 1, 1]),
        ...                        np.array([.2, .7, .9]), np.array([0., 1., 1.]),
        ...                        None, None, n_bins=2, n_replicates=100, seed=3)
        >>> bool(np.allclose(a.merge(b).confidence, whole.confidence, rtol=1e-12))
        True
        """
        mine = (self.n_bins, self.seed, self.n_replicates)
        theirs = (other.n_bins, other.seed, other.n_replicates)
        both = (self.nll is None, self.brier is None)
        if mine != theirs or both != (other.nll is None, other.brier is None):
            raise InputError(
                "replicate sums of other settings cannot be merged: (n_bins, seed,"
                f" n_replicates) {mine} and {theirs}, NLL/Brier missing {both} and"
                f" {(other.nll is None, other.brier is None)}"
            )
        # NLL sums near the float range (logits of 1e308) overflow to inf, as
        # in replicate_sums: such a replicate has no value (left out of the
        # interval), and the warning would only leak to stderr
        with np.errstate(over="ignore"):
            return ReplicateSums(
                self.n_bins,
                self.seed,
                self.count + other.count,
                self.confidence + other.confidence,
                self.correct + other.correct,
                None if self.nll is None else self.nll + other.nll,  # type: ignore[operator]
                None if self.brier is None else self.brier + other.brier,  # type: ignore[operator]
            )


def replicate_sums(
    unit: np.ndarray,
    bin_index: np.ndarray,
    confidence: np.ndarray,
    correct: np.ndarray,
    nll: np.ndarray | None,
    brier: np.ndarray | None,
    *,
    n_bins: int,
    n_replicates: int,
    seed: int,
) -> ReplicateSums:
    """The Poisson bootstrap's replicate sums of one chunk of samples.

    Parameters
    ----------
    unit : array-like of int, shape (n,)
        The global leading-axis row each sample came from (a classification
        row, or a segmentation image): the resampling unit.
    bin_index : array-like of int, shape (n,)
        Each sample's top-label bin (under the full sample's edges).
    confidence, correct : array-like of shape (n,)
        Top-label confidence, and 1.0 / 0.0 for a correct prediction.
    nll, brier : array-like of shape (n,), or None
        Per-sample NLL and Brier terms, when they are bootstrapped.
    n_bins : int
    n_replicates : int
    seed : int
        Non-negative; the weights of unit ``u`` in replicate ``r`` depend on
        ``(seed, u, r)`` only (:func:`block_weights`).

    Returns
    -------
    ReplicateSums
        Chunks of the same data give, merged, the sums of the whole to
        rounding (~1e-15 relative), however the data is cut.

    Examples
    --------
    >>> s = replicate_sums(np.arange(4), np.array([0, 0, 1, 1]),
    ...                    np.array([.2, .3, .8, .9]), np.array([0., 1., 1., 1.]),
    ...                    None, None, n_bins=2, n_replicates=200, seed=1)
    >>> total = s.count.sum(axis=1)  # each replicate's total weight: about 4
    >>> s.count.shape, bool(abs(total.mean() - 4) < 0.5), int(total.min())
    ((200, 2), True, 0)
    """
    n_replicates = check_replicates(n_replicates, n_bins=n_bins)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0. Got {seed!r} instead")
    columns = [confidence, correct, *(c for c in (nll, brier) if c is not None)]
    cell_unit, cell_bin, values = _cells(unit, bin_index, columns, n_bins)
    sums = np.zeros((n_bins, len(values), n_replicates))
    for b, lo, hi in _runs(cell_unit // UNIT_BLOCK):
        _add_block(
            sums,
            seed,
            b,
            cell_unit[lo:hi] - b * UNIT_BLOCK,
            cell_bin[lo:hi],
            values[:, lo:hi],
        )
    with np.errstate(over="ignore", invalid="ignore"):
        # NLL terms near the float range (logits of 1e308) overflow: an
        # infinite replicate has no value (left out of the interval)
        total = sums.sum(axis=0)  # (columns, replicates)
    return ReplicateSums(
        n_bins,
        int(seed),
        np.ascontiguousarray(sums[:, 0].T),
        np.ascontiguousarray(sums[:, 1].T),
        np.ascontiguousarray(sums[:, 2].T),
        None if nll is None else total[3],
        None if brier is None else total[-1],
    )


def _cells(
    unit: np.ndarray, bin_index: np.ndarray, columns: list[np.ndarray], n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples summed per (unit, bin) cell: the cells' units and bins, and
    their sums (row 0 the sample count, then one row per column), the cells
    sorted by unit block and, within a block, by bin."""
    unit = np.asarray(unit, dtype=np.int64)
    bins = np.asarray(bin_index, dtype=np.int64)
    if unit.shape != bins.shape or any(np.shape(c) != unit.shape for c in columns):
        raise InputError(
            "unit, bin_index and the per-sample values must have one shape"
        )
    if unit.size == 0:
        return unit, bins, np.zeros((len(columns) + 1, 0))
    first, last = int(unit.min()), int(unit.max())
    if first < 0 or int(bins.min()) < 0 or int(bins.max()) >= n_bins:
        raise InputError(
            f"unit must be >= 0 and bin_index in [0, n_bins={n_bins}). Got units"
            f" {first}..{last}, bins {int(bins.min())}..{int(bins.max())}"
        )
    # one unit (a segmentation image): the bins are the cells
    key = bins if first == last else (unit - first) * n_bins + bins
    size = (last - first + 1) * n_bins
    if size <= max(4 * unit.size, 1 << 16):  # a dense grid of units x bins
        count = np.bincount(key, minlength=size)
        keep = np.flatnonzero(count)
        sums = [count[keep]] + [
            np.bincount(key, weights=c, minlength=size)[keep] for c in columns
        ]
    else:  # units far apart, or very many bins: the cells that occur
        keep, inverse = np.unique(key, return_inverse=True)
        sums = [np.bincount(inverse)] + [
            np.bincount(inverse, weights=c) for c in columns
        ]
    cell_unit = keep // n_bins + first
    cell_bin = keep % n_bins
    order = np.lexsort((cell_bin, cell_unit // UNIT_BLOCK))
    values = np.stack(sums).astype(np.float64)[:, order]
    return cell_unit[order], cell_bin[order], np.ascontiguousarray(values)


def _runs(sorted_keys: np.ndarray) -> list[tuple[int, int, int]]:
    """(key, start, end) of each run of equal values in a sorted array."""
    if sorted_keys.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], sorted_keys.size]
    keys = sorted_keys[starts].tolist()
    return list(zip(keys, starts.tolist(), ends.tolist(), strict=True))


def _add_block(
    sums: np.ndarray,
    seed: int,
    block: int,
    rows: np.ndarray,
    bins: np.ndarray,
    values: np.ndarray,
) -> None:
    """Add the replicate sums of the cells of one unit block (sorted by bin)
    to ``sums`` (bins x columns x replicates): per replicate block, the
    block's weights of the cells' units times the cells' sums, one matrix
    product per bin."""
    groups = _runs(bins)
    for q, r0, r1 in _replicate_blocks(sums.shape[2]):
        weights = block_weights(seed, block, q)[rows, : r1 - r0]
        # an infinite value (an NLL of a probability 0) times a weight 0 is
        # NaN: such sums are refused where a metric is read from them, as the
        # infinite total itself is; the warning would only leak to stderr
        with np.errstate(invalid="ignore", over="ignore"):
            for b, lo, hi in groups:
                sums[b, :, r0:r1] += values[:, lo:hi] @ weights[lo:hi]


# --------------------------------------------------------------------------
# the class-wise ECE's replicates

MIN_CLASSWISE_REPLICATES = 100
"""Fewer class-wise replicates than this give no class-wise interval."""


def classwise_replicates(n_replicates: int, n_classes: int, n_bins: int) -> int:
    """How many replicates the class-wise ECE's interval is drawn from: the
    first ``n_replicates``, at most :data:`MAX_REPLICATE_BINS` sums of
    ``n_classes x n_bins`` cells in all (1000 classes, 15 bins: 279); 0 (no
    interval) when that leaves fewer than :data:`MIN_CLASSWISE_REPLICATES`.

    Examples
    --------
    >>> classwise_replicates(1000, 10, 15), classwise_replicates(1000, 1000, 15)
    (1000, 279)
    >>> classwise_replicates(1000, 10_000, 15)
    0
    """
    count = min(int(n_replicates), MAX_REPLICATE_BINS // max(n_classes * n_bins, 1))
    return count if count >= MIN_CLASSWISE_REPLICATES else 0


def weighted_rows(
    units: np.ndarray, x: np.ndarray, *, n_replicates: int, seed: int
) -> np.ndarray:
    """``sum_i w[units[i], r] * x[i]`` for every replicate ``r``: shape
    (n_replicates, x.shape[1]).  ``units`` nondecreasing (a block's rows, or
    the pixels of one image); one matrix product per block of units and of
    replicates.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> out = weighted_rows(np.array([3, 3]), x, n_replicates=5, seed=0)
    >>> w = unit_weights(np.array([3]), 5, seed=0)[0]
    >>> bool(np.allclose(out, np.outer(w, [1.0, 2.0])))
    True
    """
    units = np.asarray(units, dtype=np.int64)
    out = np.zeros((n_replicates, x.shape[1]))
    if units.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    if len(starts) < len(units):  # equal units: their rows summed first
        x = np.add.reduceat(np.asarray(x, dtype=np.float64), starts, axis=0)
        units = units[starts]
    for b, lo, hi in _runs(units // UNIT_BLOCK):
        rows = units[lo:hi] - b * UNIT_BLOCK
        part = x[lo:hi]
        for q, r0, r1 in _replicate_blocks(n_replicates):
            out[r0:r1] += block_weights(seed, b, q)[rows, : r1 - r0].T @ part
    return out


def weighted_entries(
    units: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray,
    *,
    n_replicates: int,
    seed: int,
    n_keys: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse entries ``(unit, key, value)`` summed per key with the weight of
    their unit in each replicate: the distinct keys, and their sums of shape
    (n_keys, n_replicates): per block of units, a sparse (keys x units)
    matrix of the entries times the block's weights (scipy.sparse).
    ``n_keys``: every key is below it (the distinct keys are then found
    without a sort).

    Examples
    --------
    >>> keys, sums = weighted_entries(np.array([0, 1, 1]), np.array([7, 7, 2]),
    ...                               np.array([1.0, 2.0, 3.0]),
    ...                               n_replicates=4, seed=0)
    >>> w = unit_weights(np.array([0, 1]), 4, seed=0)
    >>> keys.tolist(), bool(np.allclose(sums[1], w[0] + 2 * w[1]))
    ([2, 7], True)
    """
    units = np.asarray(units, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    uniq, inverse = _distinct(np.asarray(keys, dtype=np.int64), n_keys)
    out = np.zeros((len(uniq), n_replicates))
    if units.size == 0:
        return uniq, out
    if units.min() == units.max():  # one unit: sum first, one outer product
        sums = np.bincount(inverse, weights=values, minlength=len(uniq))
        w = unit_weights(units[:1], n_replicates, seed=seed)[0]
        return uniq, np.outer(sums, w)
    from scipy.sparse import csr_matrix  # a sparse product: 10x numpy's gathers

    order = np.argsort(units // UNIT_BLOCK, kind="stable")
    units, inverse, values = units[order], inverse[order], values[order]
    for b, lo, hi in _runs(units // UNIT_BLOCK):
        entries = csr_matrix(
            (values[lo:hi], (inverse[lo:hi], units[lo:hi] - b * UNIT_BLOCK)),
            shape=(len(uniq), UNIT_BLOCK),
        )
        for q, r0, r1 in _replicate_blocks(n_replicates):
            out[:, r0:r1] += entries @ block_weights(seed, b, q)[:, : r1 - r0]
    return uniq, out


def _distinct(keys: np.ndarray, n_keys: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)``; with every key below
    ``n_keys``, by a table of the keys present instead of a sort."""
    if n_keys is None or n_keys > max(4 * keys.size, 1 << 16):
        return np.unique(keys, return_inverse=True)
    present = np.zeros(n_keys, dtype=bool)
    present[keys] = True
    uniq = np.flatnonzero(present)
    position = np.cumsum(present) - 1
    return uniq, position[keys]


# unweighed units a summary holds before it weighs them (UnitRows)
FLUSH_UNITS = 256


@dataclass(frozen=True, eq=False)
class UnitRows:
    """Sums of whole units (segmentation images) not yet weighed by their
    bootstrap weights: ``rows[i]`` belongs to ``units[i]``.  Mergeable: two
    concatenate, the last row of one and the first of the other added when
    they are one unit (slabs of one image).  :meth:`weigh` gives each
    replicate's weighted sum of the rows, one matrix product for all; a
    summary holding them weighs them once more than :data:`FLUSH_UNITS` are
    held, so memory stays bounded (a slab's weighed sums would be
    n_replicates times larger than the slab's own)."""

    units: np.ndarray  # (n,) int64
    rows: np.ndarray  # (n, k) float64

    @staticmethod
    def one(unit: int, row: np.ndarray) -> UnitRows:
        return UnitRows(np.array([unit], dtype=np.int64), row[None, :])

    def __len__(self) -> int:
        return len(self.units)

    def merge(self, other: UnitRows) -> UnitRows:
        if len(self) and len(other) and self.units[-1] == other.units[0]:
            joined = self.rows[-1:] + other.rows[:1]
            rows = np.concatenate([self.rows[:-1], joined, other.rows[1:]])
            return UnitRows(np.concatenate([self.units, other.units[1:]]), rows)
        return UnitRows(
            np.concatenate([self.units, other.units]),
            np.concatenate([self.rows, other.rows]),
        )

    def weigh(self, *, n_replicates: int, seed: int) -> np.ndarray:
        """``sum_i w[units[i], r] * rows[i]``, shape (n_replicates, k)."""
        order = np.argsort(self.units, kind="stable")
        return weighted_rows(
            self.units[order], self.rows[order], n_replicates=n_replicates, seed=seed
        )


# parts of ClasswiseReplicates held before they are added up (floats)
CLASSWISE_PENDING = 1 << 22
# at most this many floats of class-wise sums, a block holds every cell
# (segmentation's 19 classes x 15 bins x 1000 replicates: 285,000)
CLASSWISE_DENSE = 1 << 20


@dataclass(frozen=True, eq=False)
class ClasswiseReplicates:
    """The class-wise ECE's replicate sums (:func:`classwise_replicates` of
    them), a mergeable part of :class:`relcal.summary.ClasswiseBins`.

    Per replicate ``r``, class ``c`` and class-wise bin ``b``, the weighted sum
    of ``p_c - [label == c]`` over the samples whose ``p_c`` is in bin ``b``:
    ``total`` (n_replicates, n_classes, or None for zeros) over all of a
    class's samples, and ``parts``, sparse sums of the cells ``c * n_bins +
    b`` that were summed one entry at a time (``(keys, sums (n_keys,
    n_replicates))``, the first part the largest: the others are added into
    it once they hold twice as many floats, or :data:`CLASSWISE_PENDING`).
    Most probabilities fall in the first bin, so a class's first bin is its
    total minus its other bins (:meth:`gaps`), as in the class-wise bins.

    A block of one unit (a slab of a segmentation image) is kept unweighed
    (``pending``, :class:`UnitRows`: per unit its class totals, then its
    cells).
    """

    n_classes: int
    n_bins: int
    seed: int
    n_replicates: int
    total: np.ndarray | None
    parts: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    pending: UnitRows | None = None

    @staticmethod
    def of(
        n_classes: int,
        n_bins: int,
        seed: int,
        total: np.ndarray,
        part: tuple[np.ndarray, np.ndarray],
    ) -> ClasswiseReplicates:
        """One block's weighed sums; with few cells (classes x bins x
        replicates at most :data:`CLASSWISE_DENSE`), every cell is held, and
        two such merge by one addition."""
        cells = n_classes * n_bins
        n_reps = total.shape[0]
        if cells * n_reps <= CLASSWISE_DENSE and len(part[0]) < cells:
            dense = np.zeros((cells, n_reps))
            dense[part[0]] = part[1]
            part = (np.arange(cells), dense)
        return ClasswiseReplicates(n_classes, n_bins, seed, n_reps, total, (part,))

    @staticmethod
    def of_unit(
        n_classes: int,
        n_bins: int,
        seed: int,
        n_replicates: int,
        unit: int,
        total: np.ndarray,
        cells: np.ndarray,
    ) -> ClasswiseReplicates:
        """The unweighed sums of one unit's samples: ``total`` per class,
        ``cells`` per class-wise cell."""
        row = UnitRows.one(unit, np.concatenate([total, cells]))
        return ClasswiseReplicates(
            n_classes, n_bins, seed, n_replicates, None, pending=row
        )

    def merge(self, other: ClasswiseReplicates) -> ClasswiseReplicates:
        mine = (self.n_classes, self.n_bins, self.seed, self.n_replicates)
        if mine != (other.n_classes, other.n_bins, other.seed, other.n_replicates):
            raise InputError("class-wise replicates of other settings cannot be merged")
        total = _add_opt(self.total, other.total)
        out = replace(self, total=total, parts=self._merged_parts(other))
        if self.pending is None or other.pending is None:
            pending = self.pending if other.pending is None else other.pending
            return replace(out, pending=pending)
        out = replace(out, pending=self.pending.merge(other.pending))
        return out._weighed() if len(out.pending) > FLUSH_UNITS else out

    def _merged_parts(
        self, other: ClasswiseReplicates
    ) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        cells = self.n_classes * self.n_bins
        if not self.parts or not other.parts:
            return self.parts or other.parts
        if len(self.parts) == len(other.parts) == 1 and all(
            len(p[0][0]) == cells for p in (self.parts, other.parts)
        ):  # both dense: one addition
            return ((self.parts[0][0], self.parts[0][1] + other.parts[0][1]),)
        parts = self.parts + other.parts
        pending = sum(s.size for _, s in parts[1:])
        if pending > max(CLASSWISE_PENDING, 2 * parts[0][1].size):
            parts = (_add_parts(parts, self.n_replicates, cells),)
        return parts

    def _weighed(self) -> ClasswiseReplicates:
        """The unweighed rows weighed into ``total`` and a dense part."""
        if self.pending is None:
            return self
        c, cells = self.n_classes, self.n_classes * self.n_bins
        sums = self.pending.weigh(n_replicates=self.n_replicates, seed=self.seed)
        weighed = ClasswiseReplicates(
            self.n_classes,
            self.n_bins,
            self.seed,
            self.n_replicates,
            sums[:, :c],
            ((np.arange(cells), np.ascontiguousarray(sums[:, c:].T)),),
        )
        return replace(self, pending=None).merge(weighed)

    def gaps(self) -> np.ndarray:
        """The signed sums, shape (n_replicates, n_classes, n_bins)."""
        done = self._weighed()
        r, c, b = self.n_replicates, self.n_classes, self.n_bins
        keys, sums = _add_parts(done.parts, r, c * b)
        cells = np.zeros((c * b, r))
        cells[keys] = sums
        out = cells.reshape(c, b, r).transpose(2, 0, 1)
        total = np.zeros((r, c)) if done.total is None else done.total
        out[:, :, 0] = total - out[:, :, 1:].sum(axis=2)
        return out

    def eces(self, total_weight: np.ndarray) -> np.ndarray:
        """The class-wise ECE of each replicate (the mean over classes of
        sum_b |gap| / total weight), NaN for a replicate of weight 0."""
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.abs(self.gaps()).sum(axis=2)
            return per_class.mean(axis=1) / total_weight[: self.n_replicates]


def _add_opt(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a + b


def _add_parts(
    parts: tuple[tuple[np.ndarray, np.ndarray], ...], n_replicates: int, n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse parts added up: their distinct keys and summed rows (all
    ``n_cells`` cells, dense, once a quarter of them occur)."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, n_replicates))
    if len(parts) == 1:
        return parts[0]
    every = np.concatenate([k for k, _ in parts])
    if len(every) > n_cells // 4:
        keys, at = np.arange(n_cells), None
    else:
        keys, at = np.unique(every, return_inverse=True)
    dense = at is None and len(parts[0][0]) == n_cells
    out = parts[0][1].copy() if dense else np.zeros((len(keys), n_replicates))
    start = 0
    for i, (k, s) in enumerate(parts):  # keys are distinct within a part
        if i > 0 or not dense:
            out[k if at is None else at[start : start + len(k)]] += s
        start += len(k)
    return keys, out


def check_replicates(n_replicates: object, *, n_bins: int) -> int:
    """``n_replicates`` as an int, refused when not positive, above
    :data:`MAX_REPLICATES`, or when the sums of ``n_bins`` bins would be too
    large to hold."""
    if (
        isinstance(n_replicates, bool)
        or not isinstance(n_replicates, (int, np.integer))
        or n_replicates < 1
    ):
        raise InputError(
            f"bootstrap replicates must be a positive integer. Got {n_replicates!r}"
        )
    count = int(n_replicates)
    if count > MAX_REPLICATES:
        raise InputError(
            f"bootstrap replicates must be at most {MAX_REPLICATES}."
            f" Got {count} instead"
        )
    if count * n_bins > MAX_REPLICATE_BINS:
        raise InputError(
            f"a bootstrap of {count} replicates x {n_bins} bins is too large"
            f" (limit {MAX_REPLICATE_BINS} sums of each quantity); lower"
            " n_replicates= or n_bins="
        )
    return count


def check_size(n_units: int, n_replicates: int, *, unit: str = "samples") -> None:
    """Refuse a bootstrap of more than :data:`MAX_RESAMPLES` weights."""
    if n_units * n_replicates > MAX_RESAMPLES:
        raise InputError(
            f"a bootstrap of {n_units} {unit} x {n_replicates} replicates is too"
            f" large (limit {MAX_RESAMPLES:.0e} weights); use fewer replicates, or"
            " gate on the point estimate (its sampling noise is small at this N)"
        )


def samples_sums(samples: Samples, *, n_replicates: int, seed: int) -> ReplicateSums:
    """:func:`replicate_sums` of per-sample arrays held in memory, fed in
    chunks of :data:`CHUNK_SAMPLES` samples and merged (as a stream would)."""
    s = samples
    units = s.units
    parts = [
        replicate_sums(
            units[lo:hi],
            s.bin_index[lo:hi],
            s.confidence[lo:hi],
            s.correct[lo:hi],
            None if s.nll is None else s.nll[lo:hi],
            None if s.brier is None else s.brier[lo:hi],
            n_bins=s.n_bins,
            n_replicates=n_replicates,
            seed=seed,
        )
        for lo, hi in _spans(s.n, CHUNK_SAMPLES)
    ]
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total


def _spans(n: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) spans of at most ``size`` covering range(n) (one when n == 0)."""
    return [(lo, min(lo + size, n)) for lo in range(0, max(n, 1), size)]


def replicate_metrics(sums: ReplicateSums) -> dict[str, np.ndarray]:
    """Every bootstrapped metric of each replicate, from its sums.

    Returns ``{metric: ndarray of shape (n_replicates,)}`` for accuracy, ECE,
    RMS-CE and MCE, NLL and Brier when summed, and the debiased errors
    (:mod:`relcal.estimators`: "ece_debiased", "sq_ce_debiased"); NaN for a
    replicate of total weight 0.
    """
    count, conf, hits = sums.count, sums.confidence, sums.correct
    total = count.sum(axis=1)
    diff = np.abs(conf - hits)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(count > 0, diff / count, 0.0)
        res = {
            "accuracy": hits.sum(axis=1) / total,
            "mean_confidence": conf.sum(axis=1) / total,
            "ece": diff.sum(axis=1) / total,
            "rms_ce": np.sqrt((gap * diff).sum(axis=1) / total),
            "mce": np.where(total > 0, gap.max(axis=1), np.nan),
        }
        for name in ("nll", "brier"):
            value = getattr(sums, name)
            if value is not None:
                res[name] = value / total
    from relcal.estimators import bias_corrected_eces, debiased_squared_errors

    res["ece_debiased"] = bias_corrected_eces(count, conf, hits)
    res["sq_ce_debiased"] = debiased_squared_errors(count, conf, hits)
    return res


def bootstrap(
    sets: list[Samples],
    *,
    n_replicates: int = 1000,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Replicates of every metric of one or several paired sets of predictions.

    Parameters
    ----------
    sets : list of Samples
        One set, or several sets on the same units (a model and its baseline,
        a set and its positive-class set): the same seed gives them the same
        weights (a paired bootstrap).
    n_replicates : int, default=1000
    seed : int, default=0

    Returns
    -------
    list of dict
        Per set, ``{metric: ndarray of shape (n_replicates,)}`` for accuracy,
        ECE, RMS-CE and MCE, and NLL and Brier when the set has them.

    Examples
    --------
    >>> s = Samples(np.array([0, 0, 1, 1]), np.array([.2, .3, .8, .9]),
    ...             np.array([0., 1., 1., 1.]), None, None, 2)
    >>> reps = bootstrap([s], n_replicates=200, seed=1)[0]
    >>> reps["ece"].shape, bool(np.all(reps["ece"][np.isfinite(reps["ece"])] >= 0))
    ((200,), True)
    """
    if not sets:
        raise InputError("bootstrap: no predictions given")
    n = sets[0].n
    if any(s.n != n for s in sets):
        raise InputError("bootstrap: paired sets must hold the same samples")
    return [
        replicate_metrics(samples_sums(s, n_replicates=n_replicates, seed=seed))
        for s in sets
    ]


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval of one quantity.

    ``point`` is the plug-in value, ``estimate`` the bias-corrected one (equal
    to ``point`` for a sample mean), ``low``/``high`` the interval's ends and
    ``bias`` the bootstrap estimate of the plug-in's bias.
    """

    point: float
    estimate: float
    low: float
    high: float
    bias: float
    confidence: float


def interval(
    point: float, replicates: np.ndarray, *, confidence: float, debias: bool
) -> Interval:
    """Percentile interval of ``replicates``, shifted by ``-2 b`` when ``debias``.

    Examples
    --------
    >>> reps = np.array([0.11, 0.12, 0.13, 0.14, 0.15])
    >>> iv = interval(0.12, reps, confidence=0.5, debias=True)
    >>> round(iv.bias, 6), round(iv.estimate, 6), round(iv.low, 6), round(iv.high, 6)
    (0.01, 0.11, 0.1, 0.12)
    """
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    alpha = (1.0 - confidence) / 2.0
    if reps.size == 0:
        nan = float("nan")
        return Interval(point, point, nan, nan, nan, confidence)
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    bias = float(np.mean(reps) - point) if debias else 0.0
    shift = 2.0 * bias
    return Interval(
        float(point),
        float(point - bias),
        float(lo - shift),
        float(hi - shift),
        bias,
        confidence,
    )


# --------------------------------------------------------------------------
# the unbinned metrics (smooth ECE, AURC, AUROC) of a value histogram

UNBINNED_REPLICATES = 200
"""Replicates of the unbinned metrics: each is a full computation on the
histogram (not a sum), so fewer than the binned metrics' 1,000."""
UNBINNED_GROUPS = 4096
"""The histogram is coarsened to this many groups for the replicates (each
then takes about half a millisecond); the interval is that of the coarse
replicates, moved by the difference between the full and the coarse point
estimates."""


CORP_PARTS = {
    "mean_score": "score",
    "miscalibration": "mcb",
    "discrimination": "dsc",
    "uncertainty": "unc",
}
"""The CORP decomposition's parts and their short names in interval keys
("corp_brier_mcb", ...)."""


def unbinned_replicates(
    grouped: Any, *, n_replicates: int, seed: int, sigma: float, corp: bool = False
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of smooth ECE (at the bandwidth ``sigma`` of the
    full sample), AURC, E-AURC and AUROC, from the histogram of distinct confidences
    (:class:`relcal.values.Grouped`).

    The histogram is first coarsened to :data:`UNBINNED_GROUPS` groups; the
    returned ``"point"`` holds each metric of the coarse histogram, so that
    the caller can move the interval onto the full sample's estimate.

    A Poisson bootstrap of independent samples puts Poisson(1) weight on each
    sample, so the replicate count of the samples sharing a value and an
    outcome is Poisson(their number), independently across cells: the
    replicate histogram is drawn cell by cell, with no need for the samples.
    Valid when the samples are the units (classification rows); pixels of an
    image are not independent: segmentation's come from
    :func:`grid_replicates`.
    ``numpy.random.default_rng(SeedSequence([seed, 1]))`` draws the counts,
    so the replicates depend on the seed and the histogram only.
    """
    from relcal.values import coarsened

    grouped = coarsened(grouped, UNBINNED_GROUPS)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    pos = np.asarray(grouped.sum_y, dtype=np.float64)
    neg = np.asarray(grouped.count, dtype=np.float64) - pos
    hits = np.empty((n_replicates, len(pos)))
    count = np.empty_like(hits)
    for r in range(n_replicates):  # the draws in the order of relcal 0.1
        hits[r] = rng.poisson(pos)
        count[r] = hits[r] + rng.poisson(neg)
    out = _histogram_metrics(grouped.value, count, hits, sigma, corp)
    return _with_point(out, *grouped, sigma=sigma, corp=corp)


def grid_replicates(
    grid: Any, *, sigma: float, corp: bool = False
) -> dict[str, np.ndarray]:
    """As :func:`unbinned_replicates`, with whole images as the units: the
    replicates of :class:`relcal.unitgrid.UnitGrid` (per-image histograms on
    a fixed grid of confidences, weighed by each image's Poisson weight); a
    cell stands for its samples by their mean confidence.  ``"point"`` holds
    the metrics of the unweighted grid."""
    reps = grid.replicates()
    seen = np.flatnonzero(grid.whole[0] > 0)  # cells no image has stay empty
    count, hits, conf = reps[:, 0, seen], reps[:, 1, seen], reps[:, 2, seen]
    whole = grid.whole[:, seen]
    # a cell's value: its pixels' mean confidence (each replicate's own)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(count > 0, conf / count, whole[2] / whole[0])
    out = _histogram_metrics(value, count, hits, sigma, corp)
    return _with_point(
        out, whole[2] / whole[0], whole[0], whole[1], sigma=sigma, corp=corp
    )


def _unbinned_arrays(n: int, corp: bool) -> dict[str, np.ndarray]:
    names = ["smooth_ece", "aurc", "e_aurc", "auroc"]
    if corp:
        names += [
            f"corp_{k}_{v}" for k in ("brier", "log") for v in CORP_PARTS.values()
        ]
    return {name: np.full(n, np.nan) for name in names}


def _histogram_metrics(
    value: np.ndarray, count: np.ndarray, hits: np.ndarray, sigma: float, corp: bool
) -> dict[str, np.ndarray]:
    """The unbinned metrics of histograms (rows of ``count`` and ``hits``,
    groups of count 0 allowed) on ascending ``value`` (one row for all, or one
    per histogram): smooth ECE, AURC, E-AURC and AUROC of all at once, CORP
    (a PAV fit each) one histogram at a time; NaN for a histogram of fewer
    than two groups."""
    from relcal import selective, smooth

    out = _unbinned_arrays(len(count), corp)
    out.update(selective.batch_metrics(count, hits))
    out["smooth_ece"] = smooth.smece_sigma_many(value, count, hits, sigma)
    few = np.count_nonzero(count > 0, axis=1) < 2
    for name in out:
        out[name][few] = np.nan
    if corp:
        for r in np.flatnonzero(~few).tolist():
            keep = count[r] > 0
            v = (value if value.ndim == 1 else value[r])[keep]
            _corp_parts(out, r, v, count[r, keep], hits[r, keep])
    return out


def _with_point(
    out: dict[str, np.ndarray],
    value: np.ndarray,
    count: np.ndarray,
    sum_y: np.ndarray,
    *,
    sigma: float,
    corp: bool,
) -> dict[str, np.ndarray]:
    """``out`` with ``"point"``: the metrics of the one histogram given."""
    whole = _histogram_metrics(
        np.asarray(value, dtype=np.float64),
        np.asarray(count, dtype=np.float64)[None, :],
        np.asarray(sum_y, dtype=np.float64)[None, :],
        sigma,
        corp,
    )
    out["point"] = np.array([whole[k][0] for k in out])
    return out


def _corp_parts(
    out: dict[str, np.ndarray], r: int, v: np.ndarray, c: np.ndarray, h: np.ndarray
) -> None:
    """The CORP decompositions of one (replicate) histogram into ``out[...][r]``
    (an infinite log score: NaN, left out of the interval)."""
    from relcal import corp

    fit = corp.pav(v, c, h)
    for score in ("brier", "log"):
        d = corp.score_decomposition(v, c, h, score=score, recalibrated=fit)  # type: ignore[arg-type]
        for part, short in CORP_PARTS.items():
            value = float(getattr(d, part))
            out[f"corp_{score}_{short}"][r] = value if math.isfinite(value) else np.nan
