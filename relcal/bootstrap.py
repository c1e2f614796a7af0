"""Bootstrap intervals for the metrics, vectorised: pure numpy, seeded.

Convention
----------
- **Resampling**: the ordinary (multinomial) bootstrap over samples: each
  replicate draws N samples with replacement, so every replicate has exactly
  N samples.  Replicate ``r`` is a vector of counts ``c_r`` (how often each
  sample was drawn); with a seed (``numpy.random.default_rng(seed)``) the
  replicates are reproducible.
- **What is resampled**: the per-sample quantities of one reduction (top-label
  confidence, correct, NLL, Brier term) and the bin of each sample.  The bin
  edges are those of the full sample and stay fixed (for equal-mass bins too):
  the intervals are conditional on the edges.  Nothing is recomputed from the
  scores: a replicate's per-bin sums are ``c_r @ x`` over the samples of each
  bin, computed for a block of replicates at once as a matrix product.
- **Paired**: several sets of predictions on the same N samples (a model and
  its baseline) share the count vectors, so a difference between them is
  bootstrapped as a difference on the same resampled data.
- **Interval**: percentile interval, bias-corrected for the binned metrics.
  Binned calibration errors (ECE, RMS-CE, MCE) are biased upward on finite
  samples: a bin's |accuracy - confidence| is never below zero, so noise adds
  to it.  The bootstrap estimates that bias as ``b = mean(theta*) - theta``
  (``theta*`` the replicates, ``theta`` the plug-in estimate); the debiased
  estimate is ``theta - b = 2 theta - mean(theta*)`` (the resampling correction
  of Kumar, Liang & Ma 2019 for the L1 error, with bootstrap replicates), and
  the interval is the percentile interval of ``theta*`` shifted by ``-2 b`` so
  it is centred on the debiased estimate.  Sample means (accuracy, NLL, Brier)
  are unbiased and get the plain percentile interval.

References
----------
Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 10 and 13.
Kumar, Liang, Ma (2019), Verified Uncertainty Calibration (NeurIPS).
"""

from __future__ import annotations

from dataclasses import dataclass

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
BINNED = frozenset({"ece", "rms_ce", "mce", *POSITIVE})
# counts matrix of one block of replicates: about 32 MB of float64
BLOCK_ELEMENTS = 1 << 22
# N x replicates above this is refused (tens of seconds of work)
MAX_RESAMPLES = 2_000_000_000
# more replicates than this is refused: the interval's end points no longer move
MAX_REPLICATES = 100_000


@dataclass(frozen=True)
class Samples:
    """The per-sample quantities the bootstrap resamples (arrays of shape (n,))."""

    bin_index: np.ndarray  # int64, under the one bin rule
    confidence: np.ndarray  # float64
    correct: np.ndarray  # float64, 1.0 or 0.0
    nll: np.ndarray | None  # float64
    brier: np.ndarray | None  # float64
    n_bins: int

    @property
    def n(self) -> int:
        return len(self.confidence)


def samples_from_reduced(reduced: Reduced, edges: np.ndarray) -> Samples:
    """What the bootstrap needs from a reduction, binned with ``edges``."""
    conf = np.asarray(reduced.confidence, dtype=np.float64)
    return Samples(
        bin_index=assign_bins(conf, edges),
        confidence=conf,
        correct=np.asarray(reduced.correct, dtype=np.float64),
        nll=None if reduced.nll is None else np.asarray(reduced.nll, np.float64),
        brier=None if reduced.brier is None else np.asarray(reduced.brier, np.float64),
        n_bins=len(edges) - 1,
    )


def positive_samples(reduced: Reduced, edges: np.ndarray) -> Samples | None:
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
    )


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
        One set, or several sets on the same samples (same N, same order): they
        share the resampling (a paired bootstrap).
    n_replicates : int, default=1000
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.

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
    >>> reps["ece"].shape, bool(np.all(reps["ece"] >= 0))
    ((200,), True)
    """
    if not sets:
        raise InputError("bootstrap: no predictions given")
    n = sets[0].n
    if any(s.n != n for s in sets):
        raise InputError("bootstrap: paired sets must hold the same samples")
    if isinstance(n_replicates, bool) or int(n_replicates) < 1:
        raise InputError(
            f"bootstrap replicates must be a positive integer. Got {n_replicates!r}"
        )
    n_replicates = int(n_replicates)
    if n_replicates > MAX_REPLICATES:
        raise InputError(
            f"bootstrap replicates must be at most {MAX_REPLICATES}."
            f" Got {n_replicates} instead"
        )
    if n * n_replicates > MAX_RESAMPLES:
        raise InputError(
            f"a bootstrap of {n} samples x {n_replicates} replicates is too large"
            f" (limit {MAX_RESAMPLES:.0e} resampled values); use fewer replicates,"
            " or gate on the point estimate (its sampling noise is small at this N)"
        )
    groups = _Groups(sets)
    rng = np.random.default_rng(seed)
    # a block's arrays: counts (block, n), and per group and per bin one row
    # of columns per replicate
    width = max(n, groups.cells)
    block = max(1, min(n_replicates, BLOCK_ELEMENTS // width))
    parts: list[list[dict[str, np.ndarray]]] = []
    for start in range(0, n_replicates, block):
        r = min(block, n_replicates - start)
        parts.append(groups.metrics(_counts(rng, n, r)))
    return [
        {key: np.concatenate([p[i][key] for p in parts]) for key in parts[0][i]}
        for i in range(len(sets))
    ]


def _counts(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """(r, n) float64: how often each sample is drawn in each of r replicates."""
    draws = rng.integers(0, n, size=(r, n))
    draws += (np.arange(r, dtype=np.int64) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=r * n).reshape(r, n).astype(np.float64)


class _Groups:
    """Samples grouped by their bin in every set, with the per-sample columns
    each group's sums need.  One replicate block's sums are, per group, a
    matrix product of the counts of the group's samples with its columns."""

    def __init__(self, sets: list[Samples]) -> None:
        self.sets = sets
        self.n = sets[0].n
        key = np.zeros(self.n, dtype=np.int64)
        for s in sets:
            key = key * s.n_bins + s.bin_index
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = [*starts[1:].tolist(), self.n]
        self.bounds = list(zip(starts.tolist(), ends, strict=True))
        # the bin of each group in each set
        self.group_bins = [s.bin_index[order][starts] for s in sets]
        # columns: per set, confidence, correct, then NLL and Brier if present
        cols: list[np.ndarray] = [np.ones(self.n)]
        self.layout: list[dict[str, int]] = []
        for s in sets:
            where = {"confidence": len(cols), "correct": len(cols) + 1}
            cols += [s.confidence, s.correct]
            for name in ("nll", "brier"):
                values = getattr(s, name)
                if values is not None:
                    where[name] = len(cols)
                    cols.append(values)
            self.layout.append(where)
        self.columns = np.asfortranarray(np.stack(cols, axis=1)[order])
        # per replicate, the sums of every group and of every bin
        n_bins = max(s.n_bins for s in sets)
        self.cells = (len(self.bounds) + n_bins) * self.columns.shape[1]

    def metrics(self, counts: np.ndarray) -> list[dict[str, np.ndarray]]:
        r = counts.shape[0]
        sums = np.empty((len(self.bounds), r, self.columns.shape[1]))
        # one matrix-vector product per group and column, by numpy's own
        # einsum loop: multi-threaded BLAS (gemv, or a skinny gemm) was
        # measured up to 50x slower on these shapes on a busy 2-core machine
        for g, (lo, hi) in enumerate(self.bounds):
            block = counts[:, lo:hi]
            for j in range(self.columns.shape[1]):
                np.einsum("ij,j->i", block, self.columns[lo:hi, j], out=sums[g, :, j])
        out = []
        for s, bins, where in zip(self.sets, self.group_bins, self.layout, strict=True):
            per_bin = np.zeros((s.n_bins, r, sums.shape[2]))
            np.add.at(per_bin, bins, sums)
            count = per_bin[:, :, 0].T
            conf = per_bin[:, :, where["confidence"]].T
            hits = per_bin[:, :, where["correct"]].T
            out.append(_from_sums(count, conf, hits, per_bin, where, self.n))
        return out


def _from_sums(
    count: np.ndarray,
    conf: np.ndarray,
    hits: np.ndarray,
    per_bin: np.ndarray,
    where: dict[str, int],
    n: int,
) -> dict[str, np.ndarray]:
    """Metrics of r replicates from their (r, n_bins) bin sums."""
    diff = np.abs(conf - hits)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(count > 0, diff / count, 0.0)
    res = {
        "accuracy": hits.sum(axis=1) / n,
        "ece": diff.sum(axis=1) / n,
        "rms_ce": np.sqrt((gap * diff).sum(axis=1) / n),
        "mce": gap.max(axis=1),
    }
    for name in ("nll", "brier"):
        if name in where:
            res[name] = per_bin[:, :, where[name]].sum(axis=0) / n
    return res
