"""Selective prediction: the risk-coverage curve, AURC, E-AURC and AUROC.

Pure numpy functions of *weighted distinct values*, O(n) after sorting.

Input convention
----------------
``value`` float64 ``(n,)`` sorted ascending (the top-label confidence of a
group), ``count`` float64 ``(n,)`` > 0 (how many samples share it; 1.0 for a raw
sample) and ``sum_y`` float64 ``(n,)`` in ``[0, count]`` (how many of them are
correct).  A group may also stand for a bin of close values (a coarsened
histogram); :func:`aurc_bounds` then says how exact the AURC is.  Equal
neighbouring values are merged into one group.  The ``*_of_samples`` wrappers
take raw ``confidence`` ``(N,)`` and ``correct`` ``(N,)`` (bool or 0/1) and
group them with :func:`group_samples`.

Conventions
-----------
- Predictions are **accepted in decreasing confidence**; a group is accepted
  all-or-nothing, so the risk-coverage curve has one point per group: coverage
  ``C_g / N`` and risk ``E_g / C_g`` (errors among the accepted).
- **AURC** is torch-uncertainty's definition
  (``torch_uncertainty/metrics/classification/risk_coverage.py``, class
  ``AURC``, torch-uncertainty 0.13.0; repository ENSTA-U2IS-AI/torch-uncertainty,
  commit 7df97be235f3b9c29aeac7e7e17fd8ed5e4e11a9): with the N samples in
  decreasing confidence and ``r_k`` the error rate of the first k, the
  trapezoid area of ``r_k`` against coverage ``k / N`` for k = 1..N (there is
  no point at coverage 0), divided by the support length ``1 - 1/N``::

      AURC = (sum_{k=1}^{N} r_k - (r_1 + r_N) / 2) / (N - 1)

  It is NaN for N < 2 (as torch-uncertainty).  torch-uncertainty orders tied
  confidences arbitrarily (``argsort``); relcal defines the **tie rule**: the
  expected AURC over uniformly random orderings within each tie group, in
  closed form (see :func:`aurc`).  Without ties the two are the same number.
- **AURC bounds**: the smallest and largest AURC over all orderings within the
  groups (correct-first / errors-first); equal to each other, and to the AURC,
  when no group mixes correct and wrong samples.
- **Oracle AURC**: the AURC (same normalisation) of the ranking that accepts
  all correct samples first; **E-AURC** = AURC - oracle AURC (Geifman et al.
  2019, who use the continuous approximation ``r + (1 - r) ln(1 - r)`` of the
  oracle; relcal uses the exact discrete value).
- **AUROC** of the confidence for telling correct from wrong samples:
  Mann-Whitney, P(conf of a correct > conf of a wrong) + 1/2 P(equal), equal to
  ``sklearn.metrics.roc_auc_score(correct, confidence)``; ``None`` when all
  samples are correct or all are wrong.

References
----------
Y. Geifman and R. El-Yaniv, "Selective classification for deep neural
networks", NeurIPS 2017.
Y. Geifman, G. Uziel and R. El-Yaniv, "Bias-reduced uncertainty estimation for
deep neural classifiers", ICLR 2019 (E-AURC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from relcal import values
from relcal.errors import InputError
from relcal.values import Grouped, check_grouped

__all__ = [
    "RiskCoverage",
    "SelectiveSummary",
    "aurc",
    "aurc_bounds",
    "aurc_of_samples",
    "auroc",
    "auroc_of_samples",
    "e_aurc",
    "group_samples",
    "oracle_aurc",
    "risk_coverage",
    "risk_coverage_of_samples",
    "selective_summary",
    "selective_summary_of_samples",
]

# below this, harmonic-number differences are shifted up before the
# asymptotic series (its first omitted term is < 1e-15 there)
_SHIFT = 20


# --------------------------------------------------------------------- input


def _check_groups(value: Any, count: Any, sum_y: Any) -> Grouped:
    """Validated float64 groups, equal neighbouring values merged (any finite
    real confidence)."""
    return check_grouped(value, count, sum_y, order="ascending", unit_interval=False)


def group_samples(confidence: Any, correct: Any) -> Grouped:
    """Group raw samples into weighted distinct values.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Top-label confidence of each sample (any finite real score).
    correct : array-like of shape (n_samples,)
        Whether each prediction is correct: bool, or numbers 0/1.

    Returns
    -------
    Grouped
        ``(value, count, sum_y)``: the distinct confidences ascending, how many
        samples have each and how many of those are correct (float64).

    Examples
    --------
    >>> v, c, s = group_samples([0.9, 0.6, 0.9], [True, False, False])
    >>> v.tolist(), c.tolist(), s.tolist()
    ([0.6, 0.9], [1.0, 2.0], [0.0, 1.0])
    """
    return values.group_samples(
        confidence,
        correct,
        name_f="confidence",
        name_y="correct",
        unit_interval=False,
    )


# ------------------------------------------------------------------- kernels


def _psi1_minus_log(x: np.ndarray) -> np.ndarray:
    """digamma(x + 1) - ln(x) for x >= _SHIFT (asymptotic series)."""
    # inv/2 - inv2 (1/12 - inv2 (1/120 - inv2 (1/252 - inv2 (1/240 - inv2/132)))),
    # the same operations in the same order, into two arrays (0-d ones too)
    x = np.asarray(x, dtype=np.float64)
    inv = np.divide(1.0, x, out=np.empty_like(x))
    inv2 = np.multiply(inv, inv, out=np.empty_like(x))
    t = np.divide(inv2, 132, out=np.empty_like(x))
    for c in (1 / 240, 1 / 252, 1 / 120, 1 / 12):
        np.subtract(c, t, out=t)
        np.multiply(t, inv2, out=t)
    np.multiply(inv, 0.5, out=inv)
    return np.subtract(inv, t, out=t)


def _harmonic_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """H(b) - H(a) for 0 <= a <= b, H(x) = digamma(x + 1) + Euler's gamma.

    For integers, sum_{j=a+1}^{b} 1/j; computed without cancellation (the
    difference of logs as ``log1p``), to ~1e-16 relative.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.zeros(np.broadcast(a, b).shape)
    a, b = np.broadcast_arrays(a, b)
    small = a < _SHIFT
    if small.any():
        a_s, b_s = a[small], b[small]
        acc = np.zeros(a_s.shape)
        for i in range(1, _SHIFT + 1):  # a fixed 20 steps, not a loop over data
            acc += 1.0 / (a_s + i) - 1.0 / (b_s + i)
        out[small] = acc
        a = np.where(small, a + _SHIFT, a)
        b = np.where(small, b + _SHIFT, b)
    # out + (log1p((b - a) / a) + (psi1(b) - psi1(a))), in place
    series = _psi1_minus_log(b)
    np.subtract(series, _psi1_minus_log(a), out=series)
    logs = np.subtract(b, a, out=np.empty_like(out))
    np.divide(logs, a, out=logs)
    np.log1p(logs, out=logs)
    np.add(logs, series, out=logs)
    np.add(out, logs, out=out)
    return out


@dataclass(frozen=True)
class _Desc:
    """Groups in decreasing confidence with their running sums."""

    c: np.ndarray  # count
    e: np.ndarray  # errors
    cum_c: np.ndarray  # C_g, accepted up to and including group g
    cum_e: np.ndarray  # E_g
    n: float
    n_err: float

    @cached_property
    def h_group(self) -> np.ndarray:
        """H(C_g) - H(C_{g-1}) of each group (used twice: computed once)."""
        return _harmonic_diff(self.cum_c - self.c, self.cum_c)


def _descending(count: np.ndarray, sum_y: np.ndarray) -> _Desc:
    c = count[::-1]
    e = c - sum_y[::-1]
    cum_c = np.cumsum(c)
    cum_e = np.cumsum(e)
    return _Desc(c, e, cum_c, cum_e, float(cum_c[-1]), float(cum_e[-1]))


def _normalise(d: _Desc, sum_r: float, r_first: float) -> float:
    """torch-uncertainty's trapezoid over k/N, k = 1..N, / (1 - 1/N)."""
    if d.n < 2:
        return math.nan
    r_last = d.n_err / d.n
    return (sum_r - 0.5 * (r_first + r_last)) / (d.n - 1.0)


def _expected_terms(d: _Desc) -> np.ndarray:
    """Each group's contribution to E[sum_k r_k] (see :func:`_aurc`)."""
    a = d.cum_c - d.c
    e_prev = d.cum_e - d.e
    p = d.e / d.c
    term: np.ndarray = np.where(
        d.c == 1.0,
        d.cum_e / d.cum_c,
        d.e + (e_prev - p * a) * d.h_group,
    )
    return term


def _aurc(d: _Desc, term: np.ndarray | None = None) -> float:
    """Expected AURC over random orderings within each group.

    Within group g (a = C_{g-1} accepted before it, E_{g-1} errors, error rate
    p = e_g / c_g), the expected errors among its first j samples are j p, so
    E[r_{a+j}] = (E_{g-1} + j p) / (a + j) and the group contributes
    sum_{j=1}^{c} (E_{g-1} + j p) / (a + j)
        = e_g + (E_{g-1} - p a) (H(a + c) - H(a)),
    which is E_g / C_g when c = 1; E[r_1] = p of the first group.
    """
    if term is None:
        term = _expected_terms(d)
    return _normalise(d, float(term.sum()), float(d.e[0] / d.c[0]))


def _aurc_bounds(d: _Desc, term: np.ndarray | None = None) -> tuple[float, float]:
    """AURC of correct-first and of errors-first orderings within groups.

    Correct-first: sum_{j=1}^{c} (E + max(0, j - s)) / (a + j)
        = E (H(a+c) - H(a)) + e - (a + s) (H(a+c) - H(a+s)).
    Errors-first: sum_{j=1}^{c} (E + min(j, e)) / (a + j)
        = E (H(a+c) - H(a)) + e - a (H(a+e) - H(a)) + e (H(a+c) - H(a+e)).
    Each puts every running error count at its least (most), so they are the
    minimum and maximum over orderings.
    """
    a = d.cum_c - d.c
    e_prev = d.cum_e - d.e
    s = d.c - d.e
    base = e_prev * d.h_group + d.e
    lo = base - (a + s) * _harmonic_diff(a + s, d.cum_c)
    hi = base - a * _harmonic_diff(a, a + d.e) + d.e * _harmonic_diff(a + d.e, d.cum_c)
    # a group of one outcome has one curve: use the same numbers as the AURC
    pure = (d.e == 0.0) | (s == 0.0)
    if pure.any():
        if term is None:
            term = _expected_terms(d)
        lo = np.where(pure, term, lo)
        hi = np.where(pure, term, hi)
    c0, e0 = float(d.c[0]), float(d.e[0])
    s0 = c0 - e0
    r1_lo = 0.0 if s0 >= 1.0 else e0 / c0
    r1_hi = 1.0 if e0 >= 1.0 else e0 / c0
    return _normalise(d, float(lo.sum()), r1_lo), _normalise(d, float(hi.sum()), r1_hi)


def _oracle_aurc(d: _Desc) -> float:
    """AURC when all correct samples come first: sum_k r_k = e - s (H(N) - H(s))."""
    s = d.n - d.n_err
    sum_r = d.n_err - s * float(_harmonic_diff(np.array([s]), np.array([d.n]))[0])
    r1 = 0.0 if s >= 1.0 else d.n_err / d.n
    return _normalise(d, sum_r, r1)


def _e_aurc(a: float, oracle: float) -> float:
    """a - oracle, clipped at 0 against rounding (the oracle is the minimum)."""
    return max(0.0, a - oracle) if not math.isnan(a) else math.nan


def _auroc(count: np.ndarray, sum_y: np.ndarray) -> float | None:
    """Mann-Whitney over ascending groups, ties 1/2."""
    neg = count - sum_y
    n_pos = float(sum_y.sum())
    n_neg = float(neg.sum())
    if n_pos <= 0 or n_neg <= 0:
        return None
    below = np.cumsum(neg) - neg
    # not np.dot: OpenBLAS threads it, and its threads then spin for a while
    # on the other cores (a quarter of relcal.evaluate's CPU samples on
    # 50,000x1000 logits at one job)
    u = float(np.einsum("i,i->", sum_y, below + 0.5 * neg))
    return u / (n_pos * n_neg)


def batch_metrics(count: np.ndarray, sum_y: np.ndarray) -> dict[str, np.ndarray]:
    """AURC, E-AURC and AUROC of many histograms on the same ascending
    values at once (bootstrap replicates): ``count`` and ``sum_y`` of shape
    (n_histograms, n_groups), groups of count 0 allowed (they hold no
    sample).  The formulas of :func:`aurc`, :func:`e_aurc` and :func:`auroc`,
    row by row; NaN where a row's metric is undefined (fewer than two
    samples; one outcome only, for the AUROC).

    Examples
    --------
    >>> c = np.array([[1.0, 0.0, 1.0, 1.0], [2.0, 1.0, 0.0, 1.0]])
    >>> y = np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0]])
    >>> out = batch_metrics(c, y)
    >>> bool(np.isclose(out["aurc"][0], aurc([0.6, 0.7, 0.8], [1, 1, 1], [0, 1, 1])))
    True
    >>> bool(np.isclose(out["auroc"][1], auroc([.1, .2, .4], [2, 1, 1], [1, 1, 1])))
    True
    """
    count = np.asarray(count, dtype=np.float64)
    sum_y = np.asarray(sum_y, dtype=np.float64)
    c = count[:, ::-1]
    e = c - sum_y[:, ::-1]
    cum_c, cum_e = np.cumsum(c, axis=1), np.cumsum(e, axis=1)
    n, n_err = cum_c[:, -1], cum_e[:, -1]
    some = c > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        a = cum_c - c
        p = np.where(some, e / c, 0.0)
        term = np.where(
            c == 1.0,
            cum_e / cum_c,
            e + (cum_e - e - p * a) * _harmonic_diff(a, cum_c),
        )
        term = np.where(some, term, 0.0)
        # the first group with samples gives r_1
        first = np.argmax(some, axis=1)
        r_first = p[np.arange(len(c)), first]
        area = (term.sum(axis=1) - 0.5 * (r_first + n_err / n)) / (n - 1.0)
        right = n - n_err
        oracle_sum = n_err - right * _harmonic_diff(right, n)
        oracle_r1 = np.where(right >= 1.0, 0.0, n_err / n)
        oracle = (oracle_sum - 0.5 * (oracle_r1 + n_err / n)) / (n - 1.0)
        neg = count - sum_y
        below = np.cumsum(neg, axis=1) - neg
        u = np.sum(sum_y * (below + 0.5 * neg), axis=1)
        auc = u / (right * n_err)
    few = n < 2
    area = np.where(few, np.nan, area)
    return {
        "aurc": area,
        "e_aurc": np.where(few, np.nan, np.maximum(0.0, area - oracle)),
        "auroc": np.where((right > 0) & (n_err > 0), auc, np.nan),
    }


# ---------------------------------------------------------- risk-coverage


@dataclass(frozen=True)
class RiskCoverage:
    """The risk-coverage curve, one point per accepted group.

    Attributes
    ----------
    threshold : ndarray of shape (n_points,)
        Accept every prediction with confidence >= threshold (descending).
    coverage : ndarray of shape (n_points,)
        Fraction of the samples accepted (ascending, ends at 1).
    risk : ndarray of shape (n_points,)
        Error rate among the accepted.
    n : float
        Number of samples (the sum of the counts).
    """

    threshold: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray
    n: float

    def thinned(self, max_points: int = 200) -> dict[str, Any]:
        """A JSON-friendly copy with at most ``max_points`` points.

        Points are picked nearest to ``max_points`` evenly spaced coverages;
        the first and last points are always kept.

        Returns
        -------
        dict
            ``{"threshold": [...], "coverage": [...], "risk": [...], "n": n}``
            as Python floats.
        """
        if max_points < 2:
            raise InputError(f"max_points: must be >= 2. Got {max_points} instead")
        m = self.coverage.size
        if m <= max_points:
            idx = np.arange(m)
        else:
            grid = np.linspace(self.coverage[0], 1.0, max_points)
            idx = np.searchsorted(self.coverage, grid, side="left")
            idx = np.unique(np.clip(idx, 0, m - 1))
            idx[0], idx[-1] = 0, m - 1
            idx = np.unique(idx)
        return {
            "threshold": self.threshold[idx].tolist(),
            "coverage": self.coverage[idx].tolist(),
            "risk": self.risk[idx].tolist(),
            "n": self.n,
        }


def _risk_coverage(value: np.ndarray, d: _Desc) -> RiskCoverage:
    return RiskCoverage(
        threshold=value[::-1].copy(),
        coverage=d.cum_c / d.n,
        risk=d.cum_e / d.cum_c,
        n=d.n,
    )


def risk_coverage(value: Any, count: Any, sum_y: Any) -> RiskCoverage:
    """Risk-coverage curve of predictions accepted in decreasing confidence.

    At each distinct confidence t (descending), every prediction with
    confidence >= t is accepted: coverage = accepted / N, risk = errors among
    the accepted / accepted.  Tied predictions are accepted together.

    Parameters
    ----------
    value : array-like of shape (n_groups,)
        Distinct confidences, ascending.
    count : array-like of shape (n_groups,)
        Samples per value, > 0.
    sum_y : array-like of shape (n_groups,)
        Correct samples per value, in [0, count].

    Returns
    -------
    RiskCoverage
        Use ``.thinned()`` for a figure or JSON.

    References
    ----------
    Geifman & El-Yaniv, NeurIPS 2017.

    Examples
    --------
    >>> rc = risk_coverage([0.6, 0.7, 0.8], [1, 1, 1], [0, 1, 1])
    >>> rc.coverage.tolist(), rc.risk.tolist()
    ([0.3333333333333333, 0.6666666666666666, 1.0], [0.0, 0.0, 0.3333333333333333])
    """
    v, c, s = _check_groups(value, count, sum_y)
    return _risk_coverage(v, _descending(c, s))


def risk_coverage_of_samples(confidence: Any, correct: Any) -> RiskCoverage:
    """:func:`risk_coverage` of raw samples (see :func:`group_samples`)."""
    v, c, s = group_samples(confidence, correct)
    return _risk_coverage(v, _descending(c, s))


# ------------------------------------------------------------------- metrics


def aurc(value: Any, count: Any, sum_y: Any) -> float:
    """Area under the risk-coverage curve, torch-uncertainty's normalisation.

    With the N samples in decreasing confidence and r_k the error rate of the
    first k::

        AURC = (sum_{k=1}^{N} r_k - (r_1 + r_N) / 2) / (N - 1)

    i.e. the trapezoid area of r_k over coverage k/N, k = 1..N, divided by
    1 - 1/N (torch-uncertainty 0.13.0,
    ``torch_uncertainty/metrics/classification/risk_coverage.py``, ``AURC``).
    NaN when N < 2.

    Tie rule: samples sharing a confidence (one group) are ordered uniformly
    at random and the AURC is the expected value, in closed form: a group of c
    samples with e errors, after a samples with E errors, adds
    ``e + (E - a e / c) (H(a + c) - H(a))`` to the sum of r_k, H being the
    harmonic number (digamma(x + 1) + gamma for non-integer counts), and
    E[r_1] is the error rate of the top group.  Without ties this is the
    AURC of the one ordering.  :func:`aurc_bounds` gives the range over
    orderings.

    Parameters
    ----------
    value, count, sum_y : array-like of shape (n_groups,)
        Weighted distinct values, as for :func:`risk_coverage`.

    Returns
    -------
    float
        In [0, 1]; lower is better.

    References
    ----------
    Geifman & El-Yaniv, "Selective classification for deep neural networks",
    NeurIPS 2017; torch-uncertainty (ENSTA-U2IS-AI/torch-uncertainty).

    Examples
    --------
    torch-uncertainty's doctest: probs [[.7, .3], [.6, .4], [.8, .2]], targets
    [0, 1, 0], i.e. confidences .6 (wrong), .7, .8 (correct):

    >>> round(aurc([0.6, 0.7, 0.8], [1, 1, 1], [0, 1, 1]), 4)
    0.0833
    """
    _, c, s = _check_groups(value, count, sum_y)
    return _aurc(_descending(c, s))


def aurc_of_samples(confidence: Any, correct: Any) -> float:
    """:func:`aurc` of raw samples (ties by the same rule)."""
    _, c, s = group_samples(confidence, correct)
    return _aurc(_descending(c, s))


def aurc_bounds(value: Any, count: Any, sum_y: Any) -> tuple[float, float]:
    """Smallest and largest AURC over the orderings within groups.

    The smallest puts each group's correct samples first, the largest its
    errors first.  For a coarsened histogram whose groups are bins of
    contiguous confidences, the AURC of the raw samples lies in this range
    (whatever the raw ties); the range is zero when no group mixes correct and
    wrong samples.

    Returns
    -------
    (float, float)
        ``(aurc_min, aurc_max)``; NaN when N < 2.

    Examples
    --------
    >>> lo, hi = aurc_bounds([0.5, 0.9], [2, 2], [1, 1])
    >>> round(lo, 4), round(hi, 4)
    (0.3611, 0.6389)
    """
    _, c, s = _check_groups(value, count, sum_y)
    return _aurc_bounds(_descending(c, s))


def oracle_aurc(value: Any, count: Any, sum_y: Any) -> float:
    """AURC (torch-uncertainty's normalisation) of the oracle ranking.

    The oracle accepts every correct sample before any wrong one, so
    r_k = max(0, k - S) / k with S correct samples: depends only on the
    accuracy.  NaN when N < 2.
    """
    _, c, s = _check_groups(value, count, sum_y)
    return _oracle_aurc(_descending(c, s))


def e_aurc(value: Any, count: Any, sum_y: Any) -> float:
    """Excess AURC: :func:`aurc` minus :func:`oracle_aurc` (>= 0).

    Geifman et al. (ICLR 2019) subtract the continuous approximation
    ``r + (1 - r) ln(1 - r)`` of the oracle (r = error rate); relcal subtracts
    the exact oracle AURC under the same normalisation as the AURC, so that
    a perfect ranking scores exactly 0 (clipped at 0 against rounding).

    References
    ----------
    Geifman, Uziel & El-Yaniv, "Bias-reduced uncertainty estimation for deep
    neural classifiers", ICLR 2019.

    Examples
    --------
    >>> e_aurc([0.6, 0.7, 0.8], [1, 1, 1], [0, 1, 1])
    0.0
    """
    _, c, s = _check_groups(value, count, sum_y)
    d = _descending(c, s)
    return _e_aurc(_aurc(d), _oracle_aurc(d))


def aurc_and_excess(value: Any, count: Any, sum_y: Any) -> tuple[float, float]:
    """:func:`aurc` and :func:`e_aurc` at once (one pass over the groups).

    Examples
    --------
    >>> aurc_and_excess([0.6, 0.7, 0.8], [1, 1, 1], [0, 1, 1])
    (0.08333333333333333, 0.0)
    """
    _, c, s = _check_groups(value, count, sum_y)
    d = _descending(c, s)
    area = _aurc(d)
    return area, _e_aurc(area, _oracle_aurc(d))


def auroc(value: Any, count: Any, sum_y: Any) -> float | None:
    """AUROC of the confidence for telling correct from wrong predictions.

    Mann-Whitney: the probability that a random correct prediction has a
    higher confidence than a random wrong one, ties counting 1/2; equal to
    ``sklearn.metrics.roc_auc_score(correct, confidence)``.

    Returns
    -------
    float or None
        In [0, 1]; ``None`` when every prediction is correct or every one is
        wrong (the AUROC is undefined; scikit-learn warns and returns NaN).

    Examples
    --------
    >>> auroc([0.6, 0.7, 0.8], [1, 1, 1], [0, 1, 1])
    1.0
    >>> auroc([0.6, 0.7], [2, 2], [1, 2]) is None, auroc([0.6], [2], [2]) is None
    (False, True)
    """
    _, c, s = _check_groups(value, count, sum_y)
    return _auroc(c, s)


def auroc_of_samples(confidence: Any, correct: Any) -> float | None:
    """:func:`auroc` of raw samples."""
    _, c, s = group_samples(confidence, correct)
    return _auroc(c, s)


# ------------------------------------------------------------------- summary


@dataclass(frozen=True)
class SelectiveSummary:
    """All selective-prediction figures of one set of predictions.

    ``aurc_min``/``aurc_max`` bound the AURC over orderings within groups
    (equal when the AURC is exact); ``curve`` is the thinned risk-coverage
    curve (:meth:`RiskCoverage.thinned`).
    """

    n: float
    n_groups: int
    accuracy: float
    aurc: float
    aurc_min: float
    aurc_max: float
    oracle_aurc: float
    e_aurc: float
    auroc: float | None
    curve: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (NaN stays NaN; ``auroc`` may be ``None``)."""
        return {
            "n": self.n,
            "n_groups": self.n_groups,
            "accuracy": self.accuracy,
            "aurc": self.aurc,
            "aurc_min": self.aurc_min,
            "aurc_max": self.aurc_max,
            "oracle_aurc": self.oracle_aurc,
            "e_aurc": self.e_aurc,
            "auroc": self.auroc,
            "curve": self.curve,
        }


def _summary(
    v: np.ndarray, c: np.ndarray, s: np.ndarray, max_points: int
) -> SelectiveSummary:
    d = _descending(c, s)
    term = _expected_terms(d)
    a = _aurc(d, term)
    lo, hi = _aurc_bounds(d, term)
    o = _oracle_aurc(d)
    return SelectiveSummary(
        n=d.n,
        n_groups=int(c.size),
        accuracy=1.0 - d.n_err / d.n,
        aurc=a,
        aurc_min=lo,
        aurc_max=hi,
        oracle_aurc=o,
        e_aurc=_e_aurc(a, o),
        auroc=_auroc(c, s),
        curve=_risk_coverage(v, d).thinned(max_points),
    )


def selective_summary(
    value: Any, count: Any, sum_y: Any, *, max_points: int = 200
) -> SelectiveSummary:
    """AURC (with bounds), oracle AURC, E-AURC, AUROC and the thinned curve.

    One validation and one pass of cumulative sums shared by all figures; see
    the module docstring for the definitions.
    """
    v, c, s = _check_groups(value, count, sum_y)
    return _summary(v, c, s, max_points)


def selective_summary_of_samples(
    confidence: Any, correct: Any, *, max_points: int = 200
) -> SelectiveSummary:
    """:func:`selective_summary` of raw samples."""
    v, c, s = group_samples(confidence, correct)
    return _summary(v, c, s, max_points)
