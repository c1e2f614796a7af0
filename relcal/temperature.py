"""Temperature scaling (Guo et al. 2017), fitted exactly.

Convention
----------
The temperature T > 0 minimises the mean negative log-likelihood of
``softmax(z / T)`` over the fitting data.  With β = 1/T the mean NLL

    L(β) = mean_i [ logsumexp(β z_i) − β z_{i,y_i} ]

is convex in β, with derivatives

    L'(β)  = mean_i ( E_p[z_i] − z_{i,y_i} )        (p = softmax(β z_i))
    L''(β) = mean_i Var_p[z_i]  ≥ 0.

:func:`fit_temperature` runs a safeguarded Newton iteration on β: every
iteration is one pass over the logits that gives L, L' and L'' exactly (float64
throughout), the root of L' is kept bracketed, a Newton step in β that would
leave the bracket is replaced by one in log β, and failing that by a bisection
in log β.  It stops when |L'(β)| ≤ 1e-12, or when the next Newton step would
move β by less than 1e-10 relative and |dL/dT| ≤ 1e-10 already (or the
bracket is narrower than 1e-14 relative); the reported gradient is the one
at the returned T.

On large inputs (≥ 2**20 logits) the first steps are steered by float32 passes
(float32 exp, float64 row sums, about 3x cheaper, accurate to ~1e-7) until a
step would move β by less than 1e-5; the exact float64 passes then finish
from there, usually two of them.  The answer is the exact optimum either way:
float32 only chooses where the exact passes start.

Edge cases, stated rather than hidden:

- every prediction right (and no ties): L keeps falling as T → 0, so T is
  capped at ``T_BOUNDS[0]`` and ``status`` says ``"capped"``; likewise a
  capped T at ``T_BOUNDS[1]`` when the model is hopelessly over-confident;
- logits constant within every row: T changes nothing; T = 1 and
  ``status = "no effect"``;
- probabilities as input: ``log(max(p, tiny))`` serves as logits (tiny is the
  dtype's smallest normal number), so a probability of 0 stays finite;
- one binary column (P or logit of class 1): logits ``(0, z)``;
- ``-inf`` logits (masked classes) have probability 0 at every T.

References: Guo, Pleiss, Sun, Weinberger (2017), "On Calibration of Modern
Neural Networks", section 4.2.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from relcal.errors import InputError, UnsupportedMetricError
from relcal.validate import nonfinite_error, prepare

T_BOUNDS = (1e-4, 1e4)
GRAD_TOL = 1e-12
STEP_TOL = 1e-10  # stop once a Newton step would change β by less than this
MAX_ITER = 100
_CHUNK = 1 << 21  # elements per chunk: 16 MiB of float64 scratch
_FLOOR = -1e150  # stands for -inf: exp(β·_FLOOR) = 0 and _FLOOR² is finite
_FLOOR32 = -1e15  # the same in float32
COARSE_TOL = 1e-5  # float32 steering stops once a step moves β less than this
COARSE_MAX = 8
COARSE_MIN_SIZE = 1 << 20  # below ~1M logits, exact passes are cheap enough


@dataclass(frozen=True)
class TemperatureFit:
    """The result of :func:`fit_temperature`."""

    temperature: float
    nll_before: float  # at T = 1 (float32 exp, ~1e-7, for inputs of ≥ 2**20 logits)
    nll_after: float  # at the fitted T
    gradient: float  # dL/dT at the fitted T
    gradient_beta: float  # dL/dβ at the fitted β = 1/T
    iterations: int
    passes: int  # passes over the logits
    status: str  # "converged", "capped" or "no effect"
    n: int
    n_classes: int


def as_logits(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(N, C)`` logits (float32 or float64) and int labels.

    Probabilities become log-probabilities; one binary column becomes two;
    segmentation maps ``(N, C, H, W)`` become one row per kept pixel.
    """
    s, y, skind, n_classes = prepare(
        scores, labels, kind=kind, ignore_index=ignore_index
    )
    s0, y0 = np.asarray(s), y
    if not np.isfinite(np.max(s0)):  # NaN and +inf show in the maximum
        raise nonfinite_error(s0, y0)
    z = s0
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float32)
    if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1 and n_classes == 2):
        z = z.reshape(-1)
        if skind == "probs":
            tiny = np.finfo(z.dtype).tiny
            z = np.stack(
                [np.log(np.maximum(1 - z, tiny)), np.log(np.maximum(z, tiny))], axis=1
            )
        else:
            z = np.stack([np.zeros_like(z), z], axis=1)
    elif skind == "probs":
        z = np.log(np.maximum(z, np.finfo(z.dtype).tiny))
    if z.ndim > 2:
        z = np.moveaxis(z, 1, -1).reshape(-1, z.shape[1])
        y = y.reshape(-1)
    if ignore_index is not None:
        keep = y != ignore_index
        if not keep.all():
            z, y = z[keep], y[keep]
    if np.isneginf(z[np.arange(len(y)), y]).any():
        # -inf is allowed for a masked class, never for the true one
        raise nonfinite_error(s0, y0)
    return z, y


class _Pass:
    """Chunked, two-threaded evaluation of L, L' and L'' at a given β."""

    def __init__(self, z: np.ndarray, y: np.ndarray) -> None:
        self.z, self.y = z, y
        n, c = z.shape
        rows = max(1, _CHUNK // max(c, 1))
        self.chunks = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
        self.m = np.empty(n)  # row maxima, float64
        self.m32 = np.empty(n, dtype=np.float32)  # the same, for float32 passes
        self.dy = np.empty(n)  # z_y − m
        self.strict = np.empty(n, dtype=bool)  # the true class alone at the max
        self.n = n
        self.passes = 0
        self._first = True
        self.neginf = False  # any -inf logit (a masked class) anywhere
        self.workers = min(2, os.cpu_count() or 1, len(self.chunks))

    def _chunk(self, lo: int, hi: int, beta: float) -> tuple[float, float, float]:
        z = self.z[lo:hi]
        if self._first:
            self._rows(lo, hi)
        d = np.subtract(z, self.m[lo:hi, None], dtype=np.float64)  # exact in float64
        if self.neginf:
            np.maximum(d, _FLOOR, out=d)
        e = np.multiply(d, beta)
        np.exp(e, out=e)
        s = e.sum(axis=1)
        e *= d  # e·d
        s1 = e.sum(axis=1)
        s2 = np.einsum("ij,ij->i", e, d)
        mean_d = s1 / s
        var_d = np.maximum(s2 / s - mean_d * mean_d, 0.0)
        dy = self.dy[lo:hi]
        nll = np.log(s) - beta * dy
        return float(nll.sum()), float((mean_d - dy).sum()), float(var_d.sum())

    def _rows(self, lo: int, hi: int) -> None:
        """Row maxima, the true class's logit and -inf logits, once (exact)."""
        z = self.z[lo:hi]
        top = z.max(axis=1, keepdims=True)
        m = top[:, 0].astype(np.float64)
        self.m[lo:hi] = m
        self.m32[lo:hi] = top[:, 0]  # exact: a maximum is an element
        zy = z[np.arange(hi - lo), self.y[lo:hi]].astype(np.float64)
        self.dy[lo:hi] = zy - m
        self.strict[lo:hi] = (self.dy[lo:hi] == 0) & (
            np.count_nonzero(z == top, axis=1) == 1
        )
        if np.isneginf(z).any():
            self.neginf = True

    def _chunk32(self, lo: int, hi: int, beta: float) -> tuple[float, float, float]:
        """The same sums with float32 exp (row sums in float64): about 3x
        faster, good to ~1e-6 relative -- enough to steer, never to finish."""
        if self._first:
            self._rows(lo, hi)
        d = np.subtract(self.z[lo:hi], self.m32[lo:hi, None], dtype=np.float32)
        np.maximum(d, _FLOOR32, out=d)
        e = np.multiply(d, np.float32(beta))
        np.exp(e, out=e)
        s = e.sum(axis=1, dtype=np.float64)
        e *= d
        s1 = e.sum(axis=1, dtype=np.float64)
        s2 = np.einsum("ij,ij->i", e, d).astype(np.float64)
        mean_d = s1 / s
        var_d = np.maximum(s2 / s - mean_d * mean_d, 0.0)
        dy = self.dy[lo:hi]
        nll = np.log(s) - beta * dy
        return float(nll.sum()), float((mean_d - dy).sum()), float(var_d.sum())

    def __call__(self, beta: float, coarse: bool = False) -> tuple[float, float, float]:
        work = self._chunk32 if coarse else self._chunk
        if self.workers > 1:
            with ThreadPoolExecutor(self.workers) as ex:
                parts = list(ex.map(lambda c: work(c[0], c[1], beta), self.chunks))
        else:
            parts = [work(lo, hi, beta) for lo, hi in self.chunks]
        self._first = False
        self.passes += 1
        tot = np.sum(parts, axis=0)  # chunk sums, then one division
        return float(tot[0] / self.n), float(tot[1] / self.n), float(tot[2] / self.n)


def fit_temperature(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> TemperatureFit:
    """The temperature minimising the NLL of ``softmax(z / T)``.

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_classes), (n_samples,) or
        (n_samples, n_classes, *spatial)
        Logits, or probabilities (their logs are used).
    labels : array-like of int of shape (n_samples,) or (n_samples, *spatial)
    kind : {"auto", "logits", "probs"}
    ignore_index : int, optional
        Label of samples (pixels) to leave out.

    Returns
    -------
    TemperatureFit

    Examples
    --------
    >>> from relcal.synth import make_logits
    >>> z, y = make_logits(5000, 10, seed=0, temperature=2.0)
    >>> fit = fit_temperature(z, y)
    >>> fit.status, fit.nll_after < fit.nll_before, abs(fit.gradient) < 1e-8
    ('converged', True, True)
    """
    z, y = as_logits(scores, labels, kind=kind, ignore_index=ignore_index)
    return _fit(z, y)


def fit_prepared(z: np.ndarray, y: np.ndarray) -> TemperatureFit:
    """:func:`fit_temperature` on the output of :func:`as_logits` (no checks)."""
    return _fit(z, y)


def _newton_step(beta: float, g: float, h: float, lo: float, hi: float) -> float:
    """The next β: Newton in β, else Newton in log β, else a bisection in log β
    (moving at most a factor of 4 while an end of [lo, hi] is at its bound)."""
    step = beta - g / h if h > 0 else math.nan
    if not (lo < step < hi):
        # Newton in β overshoots (typically below 0 when T* >> 1): Newton in
        # u = log β, where L is flatter, d²L/du² = h β² + g β
        curv = h * beta * beta + g * beta
        step = beta * math.exp(-g * beta / curv) if curv > 0 else math.nan
    if not (lo < step < hi):
        step = min(max(math.sqrt(lo * hi), beta / 4, lo), beta * 4, hi)
    return step


def _fit(z: np.ndarray, y: np.ndarray) -> TemperatureFit:
    if len(y) == 0:
        raise InputError("no samples to fit a temperature on")
    evaluate = _Pass(z, y)
    b_min, b_max = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]
    beta = 1.0
    steer = z.size >= COARSE_MIN_SIZE  # large: steer with float32 passes
    nll0, g, h = evaluate(beta, coarse=steer)
    nll = nll0
    lo, hi = b_min, b_max  # the root of L' lies in [lo, hi] (exact passes only)
    status = "converged"
    it = 0
    if evaluate.strict.all():
        # every prediction right: L falls all the way to T -> 0
        beta, status = b_max, "capped"
        nll, g, h = evaluate(beta)
    elif h <= 0.0 and abs(g) <= GRAD_TOL:
        status = "no effect"  # constant logits: every T gives the same NLL
    if status == "converged" and abs(g) > GRAD_TOL and steer:
        # Steer with cheap float32 passes (their own bracket: a float32
        # gradient's sign is not trusted for the exact one), then finish with
        # exact passes from there.
        b, gc, hc, clo, chi = beta, g, h, lo, hi
        for _ in range(COARSE_MAX):
            if gc > 0:
                chi = b
            else:
                clo = b
            nb = _newton_step(b, gc, hc, clo, chi)
            it += 1
            if abs(nb - b) <= COARSE_TOL * b:
                b = nb  # close enough: the exact passes take it from here
                break
            b = nb
            _, gc, hc = evaluate(b, coarse=True)
            if not (math.isfinite(gc) and math.isfinite(hc)):
                break
        if b_min < b < b_max and math.isfinite(gc):
            beta = b
            nll, g, h = evaluate(beta)
    while status == "converged" and abs(g) > GRAD_TOL and it < MAX_ITER:
        if g > 0:
            hi = beta
        else:
            lo = beta
        if (g < 0 and beta >= b_max) or (g > 0 and beta <= b_min):
            status = "capped"
            break
        if hi / lo - 1.0 < 1e-14:
            break
        if h > 0 and abs(g / h) <= STEP_TOL * beta and abs(g) * beta * beta <= 1e-10:
            break  # the next Newton step would move T by less than 1e-10
        it += 1
        beta = _newton_step(beta, g, h, lo, hi)
        nll, g, h = evaluate(beta)
    near = 1e-9  # the bracket may close on a bound without landing on it
    if status == "converged" and (
        (g > GRAD_TOL and beta <= b_min * (1 + near))
        or (g < -GRAD_TOL and beta >= b_max * (1 - near))
    ):
        status = "capped"
    return TemperatureFit(
        temperature=1.0 / beta,
        nll_before=nll0,
        nll_after=nll,
        gradient=-g * beta * beta,  # dL/dT = L'(β) · dβ/dT, dβ/dT = −β²
        gradient_beta=g,
        iterations=it,
        passes=evaluate.passes,
        status=status,
        n=len(y),
        n_classes=z.shape[1],
    )


def scale_logits(z: np.ndarray, temperature: float) -> np.ndarray:
    """``z / T`` in z's floating dtype (float32 stays float32)."""
    t = check_temperature(temperature)
    z = np.asarray(z)
    if z.dtype == np.float32:
        return z / np.float32(t)
    return np.asarray(z, dtype=np.float64) / t


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (class axis 1)."""
    z = np.asarray(z, dtype=np.float64)
    e = z - np.max(z, axis=1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return e


def check_temperature(temperature: Any) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InputError(
            f"temperature must be a positive number. Got {temperature!r} instead"
        ) from None
    if not (math.isfinite(t) and t > 0):
        raise InputError(f"temperature must be a positive number. Got {t!r} instead")
    return t


class TemperatureScaler:
    """scikit-learn-style temperature scaling.

    Examples
    --------
    >>> from relcal.synth import make_logits
    >>> z, y = make_logits(3000, 5, seed=1, temperature=3.0)
    >>> ts = TemperatureScaler().fit(z, y)
    >>> round(ts.temperature_, 1) > 1.0
    True
    >>> ts.predict_proba(z).shape
    (3000, 5)
    """

    def __init__(self, *, kind: str = "auto", ignore_index: int | None = None) -> None:
        self.kind = kind
        self.ignore_index = ignore_index

    def fit(self, logits: object, labels: object) -> TemperatureScaler:
        fit = fit_temperature(
            logits, labels, kind=self.kind, ignore_index=self.ignore_index
        )
        self.fit_ = fit
        self.temperature_ = fit.temperature
        self.n_iter_ = fit.iterations
        return self

    def _check_fitted(self) -> float:
        if not hasattr(self, "temperature_"):
            raise UnsupportedMetricError(
                "TemperatureScaler is not fitted: call fit first"
            )
        return float(self.temperature_)

    def transform(self, logits: object) -> np.ndarray:
        """Scaled logits ``z / T``."""
        return scale_logits(np.asarray(logits), self._check_fitted())

    def predict_proba(self, logits: object) -> np.ndarray:
        """Calibrated probabilities ``softmax(z / T)`` (float64)."""
        return softmax(self.transform(logits))


def cross_fit(
    z: np.ndarray, y: np.ndarray, k: int, *, seed: int = 0
) -> tuple[np.ndarray, list[float]]:
    """Cross-fitted scaled logits: each of ``k`` folds is scaled by a T fitted
    on the other folds.  Folds are a random permutation (``seed``) split into
    ``k`` near-equal parts.  Returns the scaled logits (in z's row order) and
    the k temperatures."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InputError(f"--cv needs an integer of at least 2. Got {k!r} instead")
    if k > len(y):
        raise InputError(f"--cv {k}: more folds than the {len(y)} samples")
    order = np.random.default_rng(seed).permutation(len(y))
    folds = np.array_split(order, k)
    out = np.empty(z.shape, dtype=z.dtype if z.dtype == np.float32 else np.float64)
    temps = []
    for i, held in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        fit = _fit(z[train], y[train])
        temps.append(fit.temperature)
        out[held] = scale_logits(z[held], fit.temperature)
    return out, temps
