"""Debiased calibration errors and consistency bands, from bin sums alone.

The plug-in binned errors (:func:`relcal.binning.calibration_errors`) are biased
upward on finite samples: a bin's |accuracy - confidence| is never below zero,
so sampling noise adds to it.  Two corrections that need only the bin table
(so they merge, stream and bootstrap like the plug-in values):

- **Debiased squared calibration error** (Kumar, Liang & Ma 2019,
  ``unbiased_square_ce`` of ``p-lambda/verified_calibration``; Bröcker 2012;
  Ferro & Fricker 2012): per bin, subtract the sampling variance of the bin's
  accuracy, ``acc_b (1 - acc_b) / (n_b - 1)``, from its squared gap:
  ``CE2 = sum_b (n_b / N) [(acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1)]``
  (bins of fewer than 2 samples count 0).  Unbiased for the squared binned
  error when each bin's outcomes are independent; it can be negative (a
  calibrated model's is about 0, either side).  The debiased RMS-CE is
  ``sqrt(max(CE2, 0))`` (``unbiased_l2_ce``).
- **Bias-corrected ECE** (Kumar et al.'s ``normal_debiased_ce`` for p = 1):
  ``2 ECE - E[ECE*]``, where ECE* replaces each bin's accuracy by a draw
  from ``Normal(acc_b, acc_b (1 - acc_b) / n_b)``.  Kumar et al. average 1,000
  random draws; relcal takes the expectation in closed form
  (``E|X| = s sqrt(2/pi) exp(-m^2 / 2s^2) + m (1 - 2 Phi(-m/s))`` for
  ``X ~ Normal(m, s^2)``), the limit of infinitely many draws: the same
  estimator without its Monte Carlo noise, deterministic.  Empty bins count 0;
  a bin of one sample, or of accuracy 0 or 1, has no spread and no correction.

Consistency bands (Bröcker & Smith 2007, in the binomial form): where a bin's
accuracy would fall, at ``level``, if the model were calibrated: the central
interval of ``Binomial(n_b, conf_b) / n_b`` (``conf_b`` the bin's mean
confidence).  A bin's outcomes under calibration are a Poisson-binomial of
its samples' confidences, whose variance is at most the binomial's of their
mean: the band is a little wide (conservative), never narrow.  It assumes
independent samples: pixels of one image are not, and their bands are too
narrow (the report says so for segmentation).
"""

from __future__ import annotations

import math

import numpy as np

from relcal.binning import BinTable


def _normal_abs_mean(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """E|X| for X ~ Normal(m, s^2), elementwise (s >= 0; s = 0 gives |m|)."""
    m = np.asarray(m, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    out = np.abs(m)
    spread = s > 0
    ms, ss = m[spread], s[spread]
    z = ms / ss
    # 1 - 2 Phi(-z) = erf(z / sqrt 2) = 1 - erfc(z / sqrt 2)
    erf = 1.0 - _ERFC(z / math.sqrt(2.0)).astype(np.float64)
    out[spread] = ss * math.sqrt(2.0 / math.pi) * np.exp(-0.5 * z * z) + ms * erf
    return out


# math.erfc on arrays (a bin table's or a bootstrap's few thousand values),
# without importing scipy on the path of every command
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _sums(table: BinTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.asarray(table.count, dtype=np.float64),
        np.asarray(table.sum_conf, dtype=np.float64),
        np.asarray(table.correct, dtype=np.float64),
    )


def debiased_squared_errors(
    count: np.ndarray, sum_conf: np.ndarray, correct: np.ndarray
) -> np.ndarray:
    """Kumar et al.'s debiased squared error of bin sums of shape (..., n_bins)
    (weighted counts allowed: a bootstrap replicate's); NaN where the total
    count is 0."""
    count = np.asarray(count, dtype=np.float64)
    total = count.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(count > 0, correct / count, 0.0)
        gap = np.where(count > 0, (sum_conf - correct) / count, 0.0)
        var = np.where(count > 1, acc * (1.0 - acc) / (count - 1.0), 0.0)
        per_bin = np.where(count >= 2, gap * gap - var, 0.0)
        return (count * per_bin).sum(axis=-1) / total


def bias_corrected_eces(
    count: np.ndarray, sum_conf: np.ndarray, correct: np.ndarray
) -> np.ndarray:
    """The bias-corrected ECE of bin sums of shape (..., n_bins) (see the
    module docstring); NaN where the total count is 0."""
    count = np.asarray(count, dtype=np.float64)
    total = count.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(count > 0, count, 1.0)
        acc = np.where(count > 0, correct / safe, 0.0)
        conf = np.where(count > 0, sum_conf / safe, 0.0)
        plug = np.abs(acc - conf)
        spread = np.sqrt(np.clip(acc * (1.0 - acc), 0.0, None) / safe)
        spread = np.where(count > 0, spread, 0.0)
        expected = _normal_abs_mean(acc - conf, spread)
        w = count / total[..., None]
        return (w * (2.0 * plug - expected)).sum(axis=-1)


def debiased_squared_error(table: BinTable) -> float:
    """Kumar et al.'s debiased squared calibration error of a bin table.

    Examples
    --------
    >>> t = BinTable(np.array([0., .5, 1.]), np.array([4, 4]),
    ...              np.array([1., 3.]), np.array([1.2, 3.2]))
    >>> round(debiased_squared_error(t), 6)   # gaps .05 and .05, var 1/16 each
    -0.06
    """
    return float(debiased_squared_errors(*_sums(table)))


def debiased_rms_error(table: BinTable) -> float:
    """``sqrt(max(debiased squared error, 0))`` (Kumar et al.'s ``unbiased_l2_ce``)."""
    return math.sqrt(max(debiased_squared_error(table), 0.0))


def bias_corrected_ece(table: BinTable) -> float:
    """The bias-corrected ECE of a bin table (Kumar et al.'s normal debiasing,
    in its closed form).

    Examples
    --------
    >>> t = BinTable(np.array([0., 1.]), np.array([100]), np.array([70.]),
    ...              np.array([90.]))
    >>> round(bias_corrected_ece(t), 4)     # far from 0: almost no correction
    0.2
    """
    return float(bias_corrected_eces(*_sums(table)))


def consistency_band(
    table: BinTable, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Per bin, the central ``level`` interval of the accuracy a calibrated
    model would show: quantiles of ``Binomial(n_b, conf_b) / n_b`` (NaN for an
    empty bin).  See the module docstring."""
    count = np.asarray(table.count, dtype=np.float64)
    conf = np.clip(np.nan_to_num(table.mean_conf, nan=0.0), 0.0, 1.0)
    alpha = (1.0 - level) / 2.0
    n = np.maximum(count, 1.0)
    lo = binomial_quantile(alpha, n, conf) / n
    hi = binomial_quantile(1.0 - alpha, n, conf) / n
    empty = count == 0
    lo[empty] = np.nan
    hi[empty] = np.nan
    return lo, hi


def binomial_quantile(q: float, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The smallest k with P(Binomial(n, p) <= k) >= q, elementwise (scipy's
    ``binom.ppf``, from ``scipy.special`` alone: ``scipy.stats`` takes half a
    second to import)."""
    from scipy.special import bdtr, bdtrik

    n = np.asarray(n, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        guess = np.nan_to_num(np.ceil(bdtrik(q, n, p)), nan=0.0)
    whole = n.astype(np.int64)  # bdtr wants integer k and n

    def cdf(k: np.ndarray) -> np.ndarray:
        return bdtr(k.astype(np.int64), whole, p)  # type: ignore[no-any-return]

    k = np.clip(guess - 1.0, 0.0, n)
    for _ in range(3):  # bdtrik is continuous in k: settle on the integer
        below = cdf(k) < q
        k = np.where(below, np.minimum(k + 1.0, n), k)
    down = (k > 0) & (cdf(np.maximum(k - 1.0, 0.0)) >= q)
    k = np.where(down, k - 1.0, k)
    k = np.where(p <= 0.0, 0.0, np.where(p >= 1.0, n, k))
    return k


def outside_band(table: BinTable, level: float = 0.95) -> np.ndarray:
    """Whether each bin's accuracy is outside its consistency band (False for
    an empty bin)."""
    lo, hi = consistency_band(table, level)
    acc = table.accuracy
    with np.errstate(invalid="ignore"):
        return np.nan_to_num((acc < lo) | (acc > hi), nan=False).astype(bool)
