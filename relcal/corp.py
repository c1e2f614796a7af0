"""CORP reliability diagrams: PAV recalibration, score decomposition, bands.

CORP (Consistent, Optimally binned, Reproducible, PAV-based; Dimitriadis,
Gneiting & Jordan 2021) replaces the bins of a classical reliability diagram
by isotonic regression: the reliability curve is the pool-adjacent-violators
(PAV) fit of the binary outcome ``y`` on the forecast ``x``, a nondecreasing
step function of ``x`` with no tuning parameter.

Conventions
-----------
- **Binary events only.**  CORP is defined for a forecast ``x`` in [0, 1] of
  a binary event ``y`` in {0, 1}.  For a binary classifier ``x`` is P(class
  1) and ``y`` the label; for a multi-class classifier relcal uses the
  *top-label* event: ``x`` is the top-label confidence (the largest class
  probability) and ``y = 1`` when the predicted class (first argmax) is the
  true one (:func:`toplabel_events`).
- **Input: weighted distinct values.**  The kernels take ``value`` (n,)
  strictly ascending, ``count`` (n,) > 0 (samples sharing that value) and
  ``sum_y`` (n,) in [0, count] (number of outcomes 1 among them).  Raw
  arrays go through :func:`group_samples` first (``*_from_samples`` wrappers
  do this for you).  Grouping does not change any result: PAV, the scores and
  the decomposition only depend on per-value sums.
- **PAV** (:func:`pav`) is weighted least squares isotonic regression of
  ``sum_y / count`` on ``value`` with weights ``count`` (scipy's C++ PAVA,
  ``scipy.optimize.isotonic_regression``, scipy >= 1.12).  Ties in the
  forecast are pooled first (sklearn's and R ``isoreg``'s behaviour on
  grouped data), which the distinct-value input does by construction.
- **Decomposition** (:func:`score_decomposition`), exactly as
  reliabilitydiag's ``summary()`` (R/summary.R): ``S`` is the mean score of
  ``x``, ``S_C`` the mean score of the PAV-recalibrated forecast, ``S_R`` the
  mean score of the climatology ``mean(y)``; ``MCB = S - S_C``,
  ``DSC = S_R - S_C``, ``UNC = S_R``, so ``S = MCB - DSC + UNC``.  Brier
  score: binary ``(x - y)**2`` (one term, range [0, 1]; *half* relcal's
  multi-class Brier for C = 2).  Log score: ``-y log x - (1-y) log(1-x)`` in
  nats with ``0 log 0 = 0``: x = 1 with y = 1 scores 0, x = 0 with y = 1 scores
  ``inf`` (then ``S`` and ``MCB`` are ``inf``, while ``DSC`` and ``UNC`` stay
  finite: PAV never gives 0 to a block holding an event).
- **Consistency bands** (:func:`consistency_bands`): reliabilitydiag's
  ``region.position = "diagonal"``; see that function for the resampling
  scheme and the coarsening rule for many distinct values.

References
----------
T. Dimitriadis, T. Gneiting and A. I. Jordan, "Stable reliability diagrams for
probabilistic classifiers", PNAS 118 (8), e2016191118, 2021,
doi:10.1073/pnas.2016191118.  R package reliabilitydiag
(github.com/aijordan/reliabilitydiag).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from . import values
from .errors import InputError, ShapeError
from .values import Grouped

Score = Literal["brier", "log"]
SCORES: tuple[Score, ...] = ("brier", "log")

#: default bound on the points of the thinned curve and band (JSON/plotting)
MAX_POINTS = 300
#: default bound on the number of forecast groups the band resampling works on
MAX_GROUPS = 2000


# --------------------------------------------------------------------------
# input


def check_grouped(value: Any, count: Any, sum_y: Any) -> Grouped:
    """Validate weighted distinct values and return them as float64 arrays.

    Rules: equal 1-D shapes, at least one value, everything finite,
    ``value`` strictly ascending within [0, 1], ``count > 0`` and
    ``0 <= sum_y <= count`` (:func:`relcal.values.check_grouped`).

    >>> v, c, s = check_grouped([0.2, 0.7], [2, 1], [1, 1])
    >>> v.dtype, float(c.sum())
    (dtype('float64'), 3.0)
    """
    return values.check_grouped(value, count, sum_y, order="strict")


def group_samples(probs: Any, labels: Any) -> Grouped:
    """Group raw binary forecasts ``probs`` in [0, 1] and 0/1 (or bool)
    ``labels`` into weighted distinct values: the distinct forecasts
    (ascending), how many samples share each and how many of those have
    outcome 1 (:func:`relcal.values.group_samples`).

    >>> group_samples([0.3, 0.1, 0.3], [1, 0, 0])
    Grouped(value=array([0.1, 0.3]), count=array([1., 2.]), sum_y=array([0., 1.]))
    """
    return values.group_samples(probs, labels, name_f="probs", name_y="labels")


def toplabel_events(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """The top-label binary event of a multi-class forecast.

    Parameters
    ----------
    probs : array-like of shape (n_samples, n_classes)
        Class probabilities (rows are not renormalised).
    labels : array-like of shape (n_samples,)
        True class indices.

    Returns
    -------
    confidence : ndarray of shape (n_samples,)
        The largest probability of each row (float64).
    correct : ndarray of shape (n_samples,)
        1.0 where the first argmax equals the label, else 0.0.

    >>> toplabel_events([[0.2, 0.8], [0.6, 0.4]], [1, 1])
    (array([0.8, 0.6]), array([1., 0.]))
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ShapeError(f"probs: must be 2-D (n_samples, n_classes), got {p.shape}")
    lab = np.asarray(labels)
    if lab.shape != (p.shape[0],):
        raise ShapeError(
            f"labels: must have shape ({p.shape[0]},) to match probs, got {lab.shape}"
        )
    pred = np.argmax(p, axis=1)
    conf = p[np.arange(p.shape[0]), pred]
    return conf, (pred == lab).astype(np.float64)


# --------------------------------------------------------------------------
# PAV


def _pav(value_count: np.ndarray, sum_y: np.ndarray) -> np.ndarray:
    from scipy.optimize import isotonic_regression  # type: ignore[import-untyped,unused-ignore]

    return np.asarray(
        isotonic_regression(sum_y / value_count, weights=value_count).x,
        dtype=np.float64,
    )


def pav(value: Any, count: Any, sum_y: Any) -> np.ndarray:
    """CORP reliability curve: PAV (isotonic) recalibration of y on x.

    Parameters
    ----------
    value : array-like of shape (n,)
        Distinct forecast values, strictly ascending, in [0, 1].
    count : array-like of shape (n,)
        Weight of each value (number of samples), > 0.
    sum_y : array-like of shape (n,)
        Sum of the outcomes among them, in [0, count].

    Returns
    -------
    recalibrated : ndarray of shape (n,)
        The conditional event probability estimate (CEP) at each value: the
        nondecreasing sequence minimising ``sum(count * (sum_y/count - r)**2)``.
        It is a step function of ``value``; each step is a PAV block whose
        value is the block's observed event frequency.

    Notes
    -----
    Uses ``scipy.optimize.isotonic_regression`` (scipy >= 1.12, imported
    lazily), an O(n) C++ PAVA.  The same fit minimises every Bregman loss
    (Brier, log), which is what makes MCB >= 0 for any proper score.

    >>> pav([0.1, 0.4, 0.6, 0.9], [1, 1, 1, 1], [0, 1, 0, 1]).tolist()
    [0.0, 0.5, 0.5, 1.0]
    """
    _, c, s = check_grouped(value, count, sum_y)
    return _pav(c, s)


def pav_from_samples(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pav` on raw forecasts; returns ``(distinct values, recalibrated)``.

    >>> x, r = pav_from_samples([0.9, 0.1, 0.6, 0.4], [1, 0, 0, 1])
    >>> r.tolist()
    [0.0, 0.5, 0.5, 1.0]
    """
    v, c, s = group_samples(probs, labels)
    return v, _pav(c, s)


# --------------------------------------------------------------------------
# scores and decomposition


@dataclass(frozen=True)
class Decomposition:
    """``mean_score = miscalibration - discrimination + uncertainty``.

    Attributes follow reliabilitydiag's ``summary()`` column names:
    ``mean_score`` (S), ``miscalibration`` (MCB = S - S_C), ``discrimination``
    (DSC = S_R - S_C), ``uncertainty`` (UNC = S_R), and ``recalibrated_score``
    (S_C, the mean score of the PAV-recalibrated forecast).
    """

    score: Score
    mean_score: float
    miscalibration: float
    discrimination: float
    uncertainty: float
    recalibrated_score: float

    def as_dict(self) -> dict[str, float | str]:
        return {
            "score": self.score,
            "mean_score": self.mean_score,
            "miscalibration": self.miscalibration,
            "discrimination": self.discrimination,
            "uncertainty": self.uncertainty,
            "recalibrated_score": self.recalibrated_score,
        }


def _score_sum(
    x: np.ndarray, count: np.ndarray, sum_y: np.ndarray, score: Score
) -> float:
    """Total score of forecasts ``x`` over groups with ``sum_y`` events of ``count``."""
    n0 = count - sum_y
    if score == "brier":
        return float(np.sum(sum_y * (1.0 - x) ** 2 + n0 * x * x))
    # log score with 0 * log(0) = 0: a term only where its coefficient is > 0
    with np.errstate(divide="ignore"):
        t1 = np.where(sum_y > 0, sum_y * -np.log(np.where(sum_y > 0, x, 1.0)), 0.0)
        t0 = np.where(n0 > 0, n0 * -np.log1p(-np.where(n0 > 0, x, 0.0)), 0.0)
    return float(np.sum(t1 + t0))


def _decompose(
    value: np.ndarray,
    count: np.ndarray,
    sum_y: np.ndarray,
    recalibrated: np.ndarray,
    score: Score,
) -> Decomposition:
    n = float(np.sum(count))
    clim = float(np.sum(sum_y)) / n
    s = _score_sum(value, count, sum_y, score) / n
    s_c = _score_sum(recalibrated, count, sum_y, score) / n
    s_r = _score_sum(np.full_like(value, clim), count, sum_y, score) / n
    # MCB, DSC >= 0 hold exactly in real arithmetic (PAV optimality); a
    # rounding residue of a few ulp below 0 is set to 0
    return Decomposition(
        score=score,
        mean_score=s,
        miscalibration=max(s - s_c, 0.0),
        discrimination=max(s_r - s_c, 0.0),
        uncertainty=s_r,
        recalibrated_score=s_c,
    )


def score_decomposition(
    value: Any,
    count: Any,
    sum_y: Any,
    *,
    score: Score = "brier",
    recalibrated: Any | None = None,
) -> Decomposition:
    """CORP score decomposition S = MCB - DSC + UNC (reliabilitydiag's summary).

    Parameters
    ----------
    value, count, sum_y : array-like of shape (n,)
        Weighted distinct forecast values (see the module docstring).
    score : {"brier", "log"}, default "brier"
        Binary Brier score ``(x - y)**2`` or log score
        ``-y log x - (1 - y) log(1 - x)`` (nats, ``0 log 0 = 0``).
    recalibrated : array-like of shape (n,), optional
        The PAV fit from :func:`pav`, to avoid fitting twice.

    Returns
    -------
    Decomposition
        ``mean_score`` S (mean score of x), ``miscalibration`` MCB = S - S_C,
        ``discrimination`` DSC = S_R - S_C, ``uncertainty`` UNC = S_R, with
        S_C the mean score of the PAV-recalibrated forecast and S_R that of
        the climatology ``mean(y)``.  MCB, DSC >= 0; the identity holds to
        float rounding.

    References
    ----------
    Dimitriadis, Gneiting & Jordan (2021), PNAS 118, e2016191118, eq. (2)-(4);
    reliabilitydiag ``R/summary.R``.

    Examples
    --------
    >>> d = score_decomposition([0.2, 0.8], [2, 2], [1, 1])
    >>> round(d.mean_score, 4), round(d.miscalibration, 4), d.discrimination
    (0.34, 0.09, 0.0)
    """
    if score not in SCORES:
        raise InputError(f"score: must be one of {SCORES}, got {score!r}")
    v, c, s = check_grouped(value, count, sum_y)
    if recalibrated is None:
        r = _pav(c, s)
    else:
        r = values.as_float_1d(recalibrated, "recalibrated")
        if r.shape != v.shape:
            raise ShapeError(f"recalibrated: must have length {v.size}, got {r.size}")
    return _decompose(v, c, s, r, score)


def score_decomposition_from_samples(
    probs: Any, labels: Any, *, score: Score = "brier"
) -> Decomposition:
    """:func:`score_decomposition` on raw forecasts ``probs`` and 0/1 ``labels``.

    >>> d = score_decomposition_from_samples([0.2, 0.2, 0.8, 0.8], [0, 1, 0, 1])
    >>> round(d.miscalibration, 4)
    0.09
    """
    v, c, s = group_samples(probs, labels)
    return score_decomposition(v, c, s, score=score)


# --------------------------------------------------------------------------
# consistency bands


@dataclass(frozen=True)
class Bands:
    """Pointwise consistency band of the CORP curve under H0: P(Y=1|x) = x.

    ``x`` holds the positions the band is computed at (the distinct forecast
    values, or group means after coarsening: ``coarsened``), ``lower`` and
    ``upper`` the pointwise quantiles ``(1 -/+ level) / 2`` of the PAV curves
    of the resampled outcomes.  Both bounds are nondecreasing in ``x``.
    """

    x: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    n_boot: int
    seed: int
    coarsened: bool
    n_groups: int

    def at(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bound at ``x``, linear in between band points, with
        reliabilitydiag's anchors (0, 0) and (1, 1) outside them."""
        xs = np.concatenate(([0.0], self.x, [1.0]))
        lo = np.concatenate(([0.0], self.lower, [1.0]))
        hi = np.concatenate(([0.0], self.upper, [1.0]))
        q = np.asarray(x, dtype=np.float64)
        return np.interp(q, xs, lo), np.interp(q, xs, hi)


def _coarsen(
    value: np.ndarray, count: np.ndarray, max_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive distinct values merged into groups; returns (group id per
    value, group count, group mean x).  See :func:`consistency_bands`."""
    size = float(count.sum()) / max_groups
    capped = np.minimum(count, size)
    target = float(capped.sum()) / max_groups  # <= size
    before = np.cumsum(capped) - capped
    bucket = np.minimum(np.floor(before / target), max_groups - 1)
    heavy = count >= target
    start = np.ones(value.size, dtype=bool)
    start[1:] = (np.diff(bucket) != 0) | heavy[1:] | heavy[:-1]
    gid = np.cumsum(start) - 1
    g_count = np.bincount(gid, weights=count)
    g_x = np.bincount(gid, weights=count * value) / g_count
    return gid, g_count, g_x


def _bands(
    value: np.ndarray,
    count: np.ndarray,
    *,
    level: float,
    n_boot: int,
    seed: int,
    max_groups: int,
) -> Bands:
    from scipy.optimize import isotonic_regression  # type: ignore[import-untyped,unused-ignore]

    if value.size > max_groups:
        _, n_g, x_g = _coarsen(value, count, max_groups)
        coarsened = True
    else:
        n_g, x_g = count, value
        coarsened = False
    # clip: a count-weighted mean of values in [0, 1] can round just outside
    p_g = np.clip(x_g, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    k = rng.binomial(n_g.astype(np.int64), p_g, size=(n_boot, n_g.size))
    freq = k / n_g
    curves = np.empty_like(freq)
    for b in range(n_boot):  # one C call per replicate, over <= max_groups values
        curves[b] = isotonic_regression(freq[b], weights=n_g).x
    alpha = (1.0 - level) / 2.0
    lower, upper = np.quantile(curves, [alpha, 1.0 - alpha], axis=0)
    return Bands(
        x=x_g,
        lower=lower,
        upper=upper,
        level=level,
        n_boot=n_boot,
        seed=seed,
        coarsened=coarsened,
        n_groups=int(n_g.size),
    )


def consistency_bands(
    value: Any,
    count: Any,
    sum_y: Any | None = None,
    *,
    level: float = 0.9,
    n_boot: int = 100,
    seed: int = 0,
    max_groups: int = MAX_GROUPS,
) -> Bands:
    """Consistency band of the CORP curve around the diagonal.

    Under H0 (the forecast is calibrated, P(Y=1 | X=x) = x) the outcomes are
    redrawn ``n_boot`` times, the PAV curve is refitted to each draw, and the
    band is the pointwise ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of
    those curves (numpy's default "linear" quantile = R's type 7), as in
    reliabilitydiag's ``region.position = "diagonal"``, ``region.method =
    "resampling"``.  If the observed CORP curve leaves the band, that is
    evidence of miscalibration at that forecast value.

    Parameters
    ----------
    value, count : array-like of shape (n,)
        Weighted distinct forecast values; ``count`` must be whole numbers
        (the outcomes are redrawn as Binomial(count, value)).
    sum_y : array-like of shape (n,), optional
        Only validated: the band does not depend on the outcomes.
    level : float, default 0.9
        Pointwise coverage under H0 (reliabilitydiag's ``region.level``).
    n_boot : int, default 100
        Number of resamples (reliabilitydiag's ``n.boot``).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; same seed, same band.
    max_groups : int, default 2000
        Bound on the work: with more distinct values than this, consecutive
        values are merged into about ``max_groups`` groups of about equal
        count (see Notes), and resampling and PAV run on the groups.

    Returns
    -------
    Bands

    Notes
    -----
    *Resampling scheme.*  relcal keeps the forecast values fixed and draws
    only the outcomes: ``sum_y* ~ Binomial(count, value)``, all replicates in
    one vectorised draw.  reliabilitydiag additionally resamples the
    forecasts with replacement before drawing the outcomes; that adds the
    sampling variability of x and gives slightly wider bands where forecasts
    are sparse.  Under H0 the band is conditional on the observed x here.

    *Many distinct values.*  reliabilitydiag switches to asymptotic bands
    (discrete or Chernoff-based) when n > max(1000, min(5000, 50 n_unique)).
    relcal instead coarsens when there are more than G = ``max_groups``
    distinct values: consecutive values are cut into G buckets of equal
    *capped* count (each value's count capped at N/G, so one heavy value
    cannot swallow the buckets of the light ones), and a value holding a
    bucket's worth of samples or more is a group on its own.  So there are at
    most G + 2H groups (H such heavy values), and no group of several values
    holds more than N/G samples.  Each group is one point at its
    count-weighted mean forecast x_g, redrawn as Binomial(n_g, x_g).
    Effects: (1) PAV cannot split a group, so the resampled curves are a
    little smoother; under H0 a PAV block holds on the order of N^(2/3)
    samples, far more than N/G when G >> N^(1/3) (G = 2000: at N = 10^6 a
    group holds at most 500 samples against ~10^4 in a block), so the band
    barely changes; (2) Binomial(n_g, x_g) overstates the Poisson-binomial
    variance of the group by sum(count (value - x_g)^2) <= n_g w^2 / 4 for a
    group of width w, which can only widen the band (conservative).  The band
    is then reported at the x_g (:meth:`Bands.at` interpolates).  Work is
    O(n_boot * min(n, G + 2H)) plus one pass over the values.

    References
    ----------
    Dimitriadis, Gneiting & Jordan (2021), PNAS, section "Uncertainty
    quantification"; Bröcker & Smith (2007), Weather and Forecasting 22,
    651-661; reliabilitydiag ``R/region_method.R`` (``resampling``).

    Examples
    --------
    >>> b = consistency_bands([0.2, 0.5, 0.8], [50, 50, 50], n_boot=20, seed=1)
    >>> bool(np.all(b.lower <= b.upper)), b.coarsened
    (True, False)
    """
    if sum_y is None:
        sum_y = np.zeros_like(np.asarray(count, dtype=np.float64))
    v, c, _ = check_grouped(value, count, sum_y)
    _check_band_options(c, level, n_boot, max_groups)
    return _bands(v, c, level=level, n_boot=n_boot, seed=seed, max_groups=max_groups)


def _check_band_options(
    count: np.ndarray, level: float, n_boot: int, max_groups: int
) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"level: must be in (0, 1), got {level}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise InputError(f"n_boot: must be a positive integer, got {n_boot}")
    if int(max_groups) != max_groups or max_groups < 1:
        raise InputError(f"max_groups: must be a positive integer, got {max_groups}")
    frac = count != np.round(count)
    if frac.any():
        i = int(np.argmax(frac))
        raise InputError(
            "count: must be whole numbers for the consistency band "
            f"(first: {count[i]} at row {i})"
        )


# --------------------------------------------------------------------------
# the diagram: everything for a plot or a JSON file


def thin_monotone(x: np.ndarray, ys: list[np.ndarray], max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` vertices of monotone polylines.

    ``x`` and every curve in ``ys`` are nondecreasing.  The path length
    ``L = sum(|dx| + max_k |dy_k|)`` is cut into ``P = (max_points - 2) // 2``
    equal pieces and the first and last vertex of each piece are kept, plus
    both ends.  Every dropped vertex then lies between two kept vertices of
    its own piece, and all coordinates are monotone, so the thinned polyline
    differs from the original by at most ``L / P`` in x and in y at any point
    (L <= 2 per curve on [0, 1]^2: 300 points keep the shape to 2/149 =
    0.013; a segment longer than that, e.g. a jump, is kept exactly).

    >>> thin_monotone(np.linspace(0, 1, 11), [np.linspace(0, 1, 11)], 6).tolist()
    [0, 4, 5, 10]
    """
    n = x.size
    if n <= max_points:
        return np.arange(n)
    step = np.abs(np.diff(x))
    dy = np.max(np.abs(np.diff(np.vstack(ys), axis=1)), axis=0)
    s = np.concatenate(([0.0], np.cumsum(step + dy)))
    total = s[-1]
    if total <= 0:
        return np.array([0, n - 1])
    pieces = max((max_points - 2) // 2, 1)
    bucket = np.minimum((s / total * pieces).astype(np.int64), pieces - 1)
    first = np.flatnonzero(np.diff(bucket, prepend=-1) != 0)
    first = np.concatenate((first, first[first > 0] - 1))
    return np.unique(np.concatenate((first, [0, n - 1])))


def _json_num(v: float | str) -> float | str:
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


@dataclass(frozen=True)
class CorpDiagram:
    """A CORP reliability diagram: the PAV curve, its band, and the scores.

    Attributes
    ----------
    value, count, sum_y : ndarray of shape (n,)
        The weighted distinct forecasts it was computed from.
    recalibrated : ndarray of shape (n,)
        The PAV (CEP) value at each forecast value.
    decompositions : dict
        ``{"brier": Decomposition, "log": Decomposition}``.
    bands : Bands or None
        The consistency band (None if ``level`` was None).
    """

    value: np.ndarray
    count: np.ndarray
    sum_y: np.ndarray
    recalibrated: np.ndarray
    decompositions: dict[str, Decomposition]
    bands: Bands | None
    event: str = "binary"
    max_points: int = field(default=MAX_POINTS)

    @property
    def n_samples(self) -> int:
        return int(round(float(self.count.sum())))

    def blocks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """PAV blocks (reliabilitydiag's ``bins``): x_min, x_max, CEP, count."""
        r = self.recalibrated
        start = np.flatnonzero(np.diff(r, prepend=np.nan) != 0)
        end = np.append(start[1:], r.size) - 1
        n = np.add.reduceat(self.count, start)
        return self.value[start], self.value[end], r[start], n

    def curve_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The step curve as a polyline through (x_min, CEP), (x_max, CEP) of
        every block (reliabilitydiag's CEP line), thinned to ``max_points``."""
        x_min, x_max, cep, _ = self.blocks()
        x = np.column_stack((x_min, x_max)).ravel()
        y = np.repeat(cep, 2)
        # a one-value block gives a repeated vertex: drop it
        keep = np.ones(x.size, dtype=bool)
        keep[1:] = (np.diff(x) != 0) | (np.diff(y) != 0)
        x, y = x[keep], y[keep]
        i = thin_monotone(x, [y], self.max_points)
        return x[i], y[i]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: plain floats and lists, at most
        ``max_points`` points per curve; an infinite score (log score of a
        forecast 0 or 1 that was wrong) is the string ``"inf"``, so the result
        passes ``json.dumps(..., allow_nan=False)``."""
        cx, cy = self.curve_points()
        x_min, x_max, cep, n = self.blocks()
        out: dict[str, Any] = {
            "method": "CORP (PAV isotonic regression)",
            "event": self.event,
            "n_samples": self.n_samples,
            "n_distinct": int(self.value.size),
            "n_blocks": int(cep.size),
            "climatology": float(self.sum_y.sum() / self.count.sum()),
            "decomposition": {
                k: {f: _json_num(v) for f, v in d.as_dict().items()}
                for k, d in self.decompositions.items()
            },
            "curve": {"x": cx.tolist(), "y": cy.tolist()},
            "band": None,
        }
        if self.bands is not None:
            b = self.bands
            i = thin_monotone(b.x, [b.lower, b.upper], self.max_points)
            out["band"] = {
                "position": "diagonal",
                "level": b.level,
                "n_boot": b.n_boot,
                "seed": b.seed,
                "coarsened": b.coarsened,
                "n_groups": b.n_groups,
                "x": b.x[i].tolist(),
                "lower": b.lower[i].tolist(),
                "upper": b.upper[i].tolist(),
            }
        return out


def corp_diagram(
    value: Any,
    count: Any,
    sum_y: Any,
    *,
    level: float | None = 0.9,
    n_boot: int = 100,
    seed: int = 0,
    max_groups: int = MAX_GROUPS,
    max_points: int = MAX_POINTS,
    event: str = "binary",
) -> CorpDiagram:
    """PAV curve, Brier and log score decompositions and consistency band.

    Parameters
    ----------
    value, count, sum_y : array-like of shape (n,)
        Weighted distinct forecast values (see the module docstring).
    level : float or None, default 0.9
        Band level; None skips the band (the band needs whole counts).
    n_boot, seed, max_groups
        See :func:`consistency_bands`.
    max_points : int, default 300
        Bound on the points of each curve in :meth:`CorpDiagram.as_dict`.
    event : str, default "binary"
        A label for what ``y`` is ("binary", "top-label correct").

    Returns
    -------
    CorpDiagram

    Examples
    --------
    >>> d = corp_diagram([0.1, 0.5, 0.9], [10, 10, 10], [1, 5, 9], n_boot=10)
    >>> d.recalibrated.tolist(), d.decompositions["brier"].miscalibration
    ([0.1, 0.5, 0.9], 0.0)
    """
    v, c, s = check_grouped(value, count, sum_y)
    if max_points < 3:
        raise InputError(f"max_points: must be at least 3, got {max_points}")
    if level is not None:
        _check_band_options(c, level, n_boot, max_groups)
    r = _pav(c, s)
    dec: dict[str, Decomposition] = {
        score: _decompose(v, c, s, r, score) for score in SCORES
    }
    bands = (
        None
        if level is None
        else _bands(v, c, level=level, n_boot=n_boot, seed=seed, max_groups=max_groups)
    )
    return CorpDiagram(
        value=v,
        count=c,
        sum_y=s,
        recalibrated=r,
        decompositions=dec,
        bands=bands,
        event=event,
        max_points=max_points,
    )


def corp_from_samples(
    probs: Any,
    labels: Any,
    *,
    level: float | None = 0.9,
    n_boot: int = 100,
    seed: int = 0,
    max_groups: int = MAX_GROUPS,
    max_points: int = MAX_POINTS,
) -> CorpDiagram:
    """:func:`corp_diagram` on raw binary forecasts ``probs`` (n,) and 0/1
    ``labels`` (n,).

    >>> d = corp_from_samples([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1], level=None)
    >>> d.recalibrated.tolist()
    [0.5, 1.0]
    """
    return corp_diagram(
        *group_samples(probs, labels),
        level=level,
        n_boot=n_boot,
        seed=seed,
        max_groups=max_groups,
        max_points=max_points,
    )


def corp_toplabel(
    probs: Any,
    labels: Any,
    *,
    level: float | None = 0.9,
    n_boot: int = 100,
    seed: int = 0,
    max_groups: int = MAX_GROUPS,
    max_points: int = MAX_POINTS,
) -> CorpDiagram:
    """CORP diagram of the top-label event of a multi-class forecast.

    x = top-label confidence (row max of ``probs``), y = 1 if the first
    argmax is the true label.  CORP is defined for binary events; this is the
    binary event "prediction correct", so the curve answers "when the model
    says c, how often is it right?" and the decomposition is that of the
    binary Brier / log score of the confidence, not of the multi-class scores.

    Parameters
    ----------
    probs : array-like of shape (n_samples, n_classes)
    labels : array-like of shape (n_samples,)

    >>> d = corp_toplabel([[0.3, 0.7], [0.9, 0.1]], [1, 1], level=None)
    >>> d.event, d.recalibrated.tolist()
    ('top-label correct', [0.5, 0.5])
    """
    conf, correct = toplabel_events(probs, labels)
    d = corp_from_samples(
        conf,
        correct,
        level=level,
        n_boot=n_boot,
        seed=seed,
        max_groups=max_groups,
        max_points=max_points,
    )
    return replace(d, event="top-label correct")
