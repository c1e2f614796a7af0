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
move β by less than 1e-8 relative and |dL/dT| ≤ 5e-9 already (issue #4 asks
for 1e-6 and 1e-8); the reported gradient is always the one measured
(float64) at the returned T.  On small inputs the steps are Halley steps (L'''
comes from the same pass).

Large inputs (≥ 2**20 logits) are steered to the optimum first, so that
usually a single exact pass is needed (3 passes over all the logits in all,
plus about a quarter of a pass over a subsample):

1. a float32 pass at T = 1 (float32 exp, products and row sums, float64
   per-row arithmetic) gives the NLL before scaling (to ~1e-7), and L', L''
   and L''' (to ~1e-8).  β is rounded to float32 before every float32 pass,
   so that the pass evaluates exactly that β;
2. a seeded random 1/32 of the rows (at least 2000), copied once, is steered by
   Halley steps on float32 passes over that subsample alone, its derivatives
   offset by their difference from the full data's at T = 1: this removes
   most of the sampling error (measured on 50,000×1000: 1e-3 to 4e-3
   relative in β);
3. one float32 pass over every row there, and one over the subsample, give
   the difference again, now used as a Taylor expansion about that point
   (in L', L'' and L''').  Float64 passes over the subsample plus that
   expansion are a model of the full data's exact L': equal to it in value
   and two derivatives at that point (float32's own bias, ~5e-9 relative in
   exp, cancels between the two float32 passes up to sampling noise), and
   beyond that off only by sampling noise in higher orders.  Halley steps on
   the model (two or three subsample passes) land within ~1e-9 of the
   optimum (measured);
4. float64 passes over every row finish with Newton steps, under the
   stopping rule above.

Float32 and the subsample only choose where the exact passes start: the answer
and the reported gradient come from float64 passes over every row either way.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from relcal import kernel
from relcal.errors import InputError, UnsupportedMetricError
from relcal.progress import advance
from relcal.reduce import default_threads, scratch, shared_pool
from relcal.validate import nonfinite_error, prepare

T_BOUNDS = (1e-4, 1e4)
MAX_FOLDS = 100  # cross-fitting: one fit per fold
# temperatures float32 logits can be divided by (normal float32 numbers)
T32_RANGE = (float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))
# larger logits leave float32's range (3.4e38) in the steering passes, and
# their squares soon overflow the float64 sums
MAX_LOGIT = 1e30
GRAD_TOL = 1e-12
STEP_TOL = 1e-8  # stop once a Newton step would change β by less than this ...
DT_TOL = 5e-9  # ... and |dL/dT| is at most this
MAX_ITER = 100
_CHUNK = 1 << 19  # elements per chunk (4 MiB of float64 scratch: few numpy calls)
_FLOOR = -1e150  # stands for -inf: exp(β·_FLOOR) = 0 and _FLOOR² is finite
_FLOOR32 = -1e15  # the same in float32
COARSE_TOL = 1e-3  # float32 steering stops after a step that moves β less than this
COARSE_MAX = 6  # float32 passes over every row, at most
SUB_FRACTION = 32  # steering subsample: a random 1/32 of the rows ...
SUB_MIN_ROWS = 2000  # ... but not fewer rows than this
SUB_MAX = 30  # subsample passes, at most
SUB_TOL = 1e-4  # the subsample's steering stops after a step smaller than this
MODEL_TOL = 1e-10  # the same, once offset by a Taylor expansion (see _fit)
MODEL_RANGE = 1e-2  # re-centre that expansion when the model moves β further
COARSE_MIN_SIZE = 1 << 20  # below ~1M logits, exact passes are cheap enough


@dataclass(frozen=True)
class TemperatureFit:
    """The result of :func:`fit_temperature`."""

    temperature: float
    nll_before: float  # at T = 1 (float32 exp, ~1e-7, for inputs of ≥ 2**20 logits)
    nll_after: float  # at the fitted T
    gradient: float  # dL/dT at the fitted T
    gradient_beta: float  # dL/dβ at the fitted β = 1/T
    iterations: int  # Newton/Halley steps, on the subsample included
    passes: int  # passes over all the logits
    status: str  # "converged", "capped" or "no effect"
    n: int
    n_classes: int
    subsample_rows: int = 0  # rows of the steering subsample (0: none)
    subsample_passes: int = 0  # passes over the subsample


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
    if skind == "logits":
        _check_magnitude(s0)
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


def _check_magnitude(z: np.ndarray) -> None:
    """Refuse logits beyond :data:`MAX_LOGIT`, whose float32 steering passes
    and float64 sums (of z², over every row, at β up to 1/T_BOUNDS[0]) would
    overflow.  -inf (a masked class) is allowed."""
    hi = float(np.max(z))
    lo = float(np.min(z))
    if math.isinf(lo):
        lo = float(np.min(z, where=np.isfinite(z), initial=0.0))
    if max(hi, -lo) > MAX_LOGIT:
        big = hi if hi > -lo else lo
        raise InputError(
            f"scores: a logit of {big:.6g}; temperature scaling takes logits of"
            f" magnitude up to {MAX_LOGIT:g}"
        )


@lru_cache(maxsize=8)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    return np.ones(n, dtype=dtype)


class _Pass:
    """Chunked, two-threaded evaluation of L and its first three derivatives.

    ``__call__(beta)`` is an exact pass (float64 exp of the float64 differences
    ``d = z − max``); ``__call__(beta, coarse=True)`` a float32 one (float32 exp,
    products and row sums).  Each chunk only fills the row sums
    ``Σ e, Σ e d, Σ e d², Σ e d³`` (``e = exp(β d)``) with a few large numpy
    calls (the threads then rarely wait for each other's GIL); the per-row
    arithmetic is done once per pass, in float64.
    """

    def __init__(
        self, z: np.ndarray, y: np.ndarray, pool: ThreadPoolExecutor | None = None
    ) -> None:
        self.z, self.y = z, y
        self.pool = pool
        n, c = z.shape
        rows = max(1, _CHUNK // max(c, 1))
        self.chunks = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
        self.m = np.empty(n)  # row maxima, float64
        self.m32 = np.empty(n, dtype=np.float32)  # the same, for float32 passes
        self.dy = np.empty(n)  # z_y − m
        self.n = n
        self.passes = 0
        self._first = True
        self.neginf = False  # any -inf logit (a masked class) anywhere
        self.third = True  # whether passes give L''' (else NaN: Newton steps)
        self.workers = min(default_threads(), len(self.chunks))

    def _chunk(self, lo: int, hi: int, beta: float, sums: np.ndarray) -> None:
        z = self.z[lo:hi]
        if self._first:
            self._rows(lo, hi)
        d = scratch(z.shape, np.dtype(np.float64), "d")
        np.copyto(d, z)  # widened first: faster than a mixed-dtype subtract
        d -= self.m[lo:hi, None]  # exact in float64
        if self.neginf:
            np.maximum(d, _FLOOR, out=d)
        e = scratch(z.shape, np.dtype(np.float64), "e")
        np.multiply(d, beta, out=e)
        kernel.exp(e)
        self._sums(e, d, sums[:, lo:hi])
        advance(z.nbytes)

    def _chunk32(self, lo: int, hi: int, beta: float, sums: np.ndarray) -> None:
        z = self.z[lo:hi]
        if self._first:
            self._rows(lo, hi)
        d = scratch(z.shape, np.dtype(np.float32), "d")
        np.subtract(z, self.m32[lo:hi, None], out=d, dtype=np.float32)
        if self.neginf:
            np.maximum(d, _FLOOR32, out=d)
        e = scratch(z.shape, np.dtype(np.float32), "e")
        np.multiply(d, np.float32(beta), out=e)
        np.exp(e, out=e)
        self._sums(e, d, sums[:, lo:hi])
        advance(z.nbytes)

    def _sums(self, e: np.ndarray, d: np.ndarray, out: np.ndarray) -> None:
        """Row sums Σ e, Σ e d, Σ e d² (and Σ e d³) into ``out``; ``e`` is
        overwritten.  Dot products in e's dtype (float32 ones are good to
        ~1e-7 relative, enough to steer)."""
        np.vecdot(e, _ones(e.shape[1], e.dtype), out=out[0])
        np.vecdot(e, d, out=out[1])
        e *= d
        np.vecdot(e, d, out=out[2])
        if self.third:
            e *= d
            np.vecdot(e, d, out=out[3])

    def _rows(self, lo: int, hi: int) -> None:
        """Row maxima, the true class's logit and -inf logits, once (exact)."""
        z = self.z[lo:hi]
        top = z.max(axis=1)
        self.m[lo:hi] = top
        self.m32[lo:hi] = top  # exact for float32 input
        zy = z[np.arange(hi - lo), self.y[lo:hi]]
        np.subtract(zy, self.m[lo:hi], out=self.dy[lo:hi], dtype=np.float64)
        if np.isneginf(z.min()):
            self.neginf = True

    def all_right(self) -> bool:
        """Whether every true class is the only maximal one (after a pass)."""
        if np.any(self.dy != 0):
            return False
        # the true class is maximal everywhere: look for ties (chunk by chunk)
        for lo, hi in self.chunks:
            z = self.z[lo:hi]
            if np.any(np.count_nonzero(z == self.m[lo:hi, None], axis=1) > 1):
                return False
        return True

    def __call__(
        self, beta: float, coarse: bool = False
    ) -> tuple[float, float, float, float]:
        """Mean L, L', L'' and L''' at β (L''' is NaN unless ``self.third``)."""
        work = self._chunk32 if coarse else self._chunk
        sums = np.zeros((4, self.n), dtype=np.float32 if coarse else np.float64)
        if self.workers > 1 and self.pool is not None:
            list(self.pool.map(lambda c: work(c[0], c[1], beta, sums), self.chunks))
        else:
            for lo, hi in self.chunks:
                work(lo, hi, beta, sums)
        self._first = False
        self.passes += 1
        s, s1, s2, s3 = sums.astype(np.float64, copy=False)
        mu = s1 / s  # E_p[d]
        m2 = s2 / s
        var = np.maximum(m2 - mu * mu, 0.0)
        nll = np.log(s) - beta * self.dy
        k3 = math.nan
        if self.third:  # the third cumulant, E_p[(d − mu)³]
            k3 = float(np.mean(s3 / s - 3.0 * mu * m2 + 2.0 * mu * mu * mu))
        return (
            float(np.mean(nll)),
            float(np.mean(mu - self.dy)),
            float(np.mean(var)),
            k3,
        )


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


def _newton_step(
    beta: float, g: float, h: float, lo: float, hi: float, k3: float = math.nan
) -> float:
    """The next β: Halley in β (when L''' is given), else Newton in β, else
    Newton in log β; a step out of [lo, hi] past an end that is a bound of T
    goes to that bound, any other a bisection in log β (moving at most a
    factor of 4 while an end of [lo, hi] is at its bound)."""
    step = math.nan
    if h > 0 and math.isfinite(k3):
        denom = 2.0 * h * h - g * k3
        if denom > 0:
            step = beta - 2.0 * g * h / denom
    if not (lo < step < hi):
        step = beta - g / h if h > 0 else math.nan
    if not (lo < step < hi):
        # Newton in β overshoots (typically below 0 when T* >> 1): Newton in
        # u = log β, where L is flatter, d²L/du² = h β² + g β
        curv = h * beta * beta + g * beta
        step = beta * math.exp(-g * beta / curv) if curv > 0 else math.nan
    if not (lo < step < hi):
        # a step out of a bracket whose end is a bound of T goes to the bound
        # itself: one pass there says whether T is capped (bisecting towards
        # it would take ~30 passes)
        if step <= lo == 1.0 / T_BOUNDS[1]:
            return lo
        if step >= hi == 1.0 / T_BOUNDS[0]:
            return hi
        step = min(max(math.sqrt(lo * hi), beta / 4, lo), beta * 4, hi)
    return step


def _f32(beta: float) -> float:
    """β rounded to float32: a float32 pass multiplies by exactly this β (an
    unrepresentable β would be rounded inside the pass, off by up to 6e-8)."""
    return float(np.float32(beta))


def _steer(
    evaluate: _Pass,
    beta: float,
    derivs: tuple[float, float, float] | None,
    tol: float,
    max_passes: int,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    at: float | None = None,
    coarse: bool = True,
) -> tuple[float, int]:
    """Halley steps on float32 (``coarse``) or float64 passes from β (where
    L', L'', L''' are ``derivs``, or a first pass gives them) until a step
    moves β by less than ``tol`` relative, or ``evaluate`` has made
    ``max_passes`` passes; the last step is taken.  ``offset`` (og, oh, ok) is
    added to the derivatives of every pass made here: as constants, or, given
    ``at``, as the Taylor expansion og + oh x + ok x²/2 of L' about β = at
    (x = β − at), and its derivatives.  Returns β and the number of steps."""
    lo, hi = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]

    def corrected(b: float) -> tuple[float, float, float]:
        _, g, h, k3 = evaluate(b, coarse=coarse)
        og, oh, ok = offset
        x = 0.0 if at is None else b - at
        return g + og + x * (oh + x * ok / 2), h + oh + x * ok, k3 + ok

    if derivs is None:
        beta = _f32(beta) if coarse else beta
        derivs = corrected(beta)
    g, h, k3 = derivs
    steps = 0
    while math.isfinite(g) and math.isfinite(h):
        if h > 0 and abs(g) <= tol * beta * h:
            # converged: a last Newton step (the bracket below could reject
            # a step this small, ending up on the wrong side by rounding)
            return beta - g / h, steps + 1
        if g > 0:
            hi = beta
        else:
            lo = beta
        nb = _newton_step(beta, g, h, lo, hi, k3)
        steps += 1
        if abs(nb - beta) <= tol * beta or evaluate.passes >= max_passes:
            return nb, steps
        beta = _f32(nb) if coarse else nb
        g, h, k3 = corrected(beta)
    return beta, steps


def _fit(z: np.ndarray, y: np.ndarray) -> TemperatureFit:
    if len(y) == 0:
        raise InputError("no samples to fit a temperature on")
    workers = default_threads()
    pool = shared_pool(workers) if workers > 1 and z.size >= _CHUNK else None
    evaluate = _Pass(z, y, pool)
    b_min, b_max = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]
    beta = 1.0
    steer = z.size >= COARSE_MIN_SIZE  # large: steer with float32 passes
    nll0, g, h, k3 = evaluate(beta, coarse=steer)
    nll = nll0
    lo, hi = b_min, b_max  # the root of L' lies in [lo, hi] (exact passes only)
    status = "converged"
    it = 0
    sub_rows = sub_passes = 0
    if evaluate.all_right():
        # every prediction right: L falls all the way to T -> 0
        beta, status = b_max, "capped"
        nll, g, h, _ = evaluate(beta)
    elif h <= 0.0 and abs(g) <= GRAD_TOL:
        status = "no effect"  # constant logits: every T gives the same NLL
    if status == "converged" and abs(g) > GRAD_TOL and steer:
        b = beta
        m = max(SUB_MIN_ROWS, len(y) // SUB_FRACTION)
        if 4 * m <= len(y):
            # 1. A random 1/k of the rows (seeded: the same file gives the same
            # steps) steers β near the optimum; its derivatives are offset by
            # their difference from the full data's at β = 1, which removes
            # most of the sampling error.
            rows = np.random.default_rng(0).choice(len(y), size=m, replace=False)
            rows.sort()
            sub = _Pass(z[rows], y[rows], pool)
            _, gs, hs, k3s = sub(b, coarse=True)
            off = (g - gs, h - hs, k3 - k3s)
            b, steps = _steer(sub, b, (g, h, k3), SUB_TOL, SUB_MAX, off)
            it += steps
            # 2. A float32 pass over every row there, and the subsample's
            # derivatives offset again, now by the Taylor expansion of the
            # difference about that point, measured in float32 on both sides
            # (float32's bias then cancels, up to sampling noise).  Float64
            # passes over the subsample so offset are a model of the full
            # data's exact L' that agrees with it in L', L'' and L''' there,
            # and beyond that errs only by sampling noise.  Repeated if the
            # model moves β far.
            for _ in range(COARSE_MAX - 1):
                b = _f32(b)
                _, g, h, k3 = evaluate(b, coarse=True)
                _, gs, hs, k3s = sub(b, coarse=True)
                off = (g - gs, h - hs, k3 - k3s)
                nb, steps = _steer(
                    sub,
                    b,
                    None,
                    MODEL_TOL,
                    sub.passes + SUB_MAX,
                    off,
                    at=b,
                    coarse=False,
                )
                it += steps
                moved = abs(nb - b) / b
                b = nb
                if moved <= MODEL_RANGE or not math.isfinite(moved):
                    break
            sub_rows, sub_passes = sub.n, sub.passes
        else:  # too few rows to subsample: float32 passes over every row
            b, steps = _steer(evaluate, b, (g, h, k3), COARSE_TOL, COARSE_MAX)
            it += steps
        # 3. exact passes (Newton steps: L''' no longer pays) from there, or
        # from the bound the steering ran into (the exact passes then decide
        # whether T is capped there)
        evaluate.third = False
        beta = min(max(b, b_min), b_max) if math.isfinite(b) else 1.0
        nll, g, h, k3 = evaluate(beta)
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
        if h > 0 and abs(g / h) <= STEP_TOL * beta and abs(g) * beta * beta <= DT_TOL:
            break  # the next Newton step would move T by less than STEP_TOL
        it += 1
        beta = _newton_step(beta, g, h, lo, hi, k3)
        nll, g, h, k3 = evaluate(beta)
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
        subsample_rows=sub_rows,
        subsample_passes=sub_passes,
    )


def scale_logits(z: np.ndarray, temperature: float) -> np.ndarray:
    """``z / T`` in z's floating dtype (float32 stays float32)."""
    t = check_temperature(temperature)
    z = np.asarray(z)
    if z.dtype == np.float32 and not T32_RANGE[0] <= t <= T32_RANGE[1]:
        raise InputError(
            f"temperature {t:g} is outside the range of the logits' dtype float32"
        )
    with np.errstate(over="ignore"):  # checked below
        out = (
            z / np.float32(t)
            if z.dtype == np.float32
            else np.asarray(z, np.float64) / t
        )
    if (np.isinf(out) & np.isfinite(z)).any():
        raise InputError(
            f"temperature {t:g} scales the logits beyond the range of {out.dtype}"
        )
    return out


def calibrated_arrays(
    z: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """What ``relcal calibrate`` writes: the scaled logits, with -inf (a
    masked class) as the dtype's lowest finite number (its probability is 0
    either way; no file relcal writes holds an infinity), and their softmax in
    the same dtype."""
    scaled = scale_logits(z, temperature)
    probs = softmax(scaled).astype(scaled.dtype)
    np.maximum(scaled, np.finfo(scaled.dtype).min, out=scaled)
    return scaled, probs


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (class axis 1)."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore"):  # -inf: a probability of 0, as it is
        e = z - np.max(z, axis=1, keepdims=True)
    kernel.exp(e)
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
        raise InputError(f"k= needs an integer of at least 2. Got {k!r} instead")
    if k > MAX_FOLDS:
        raise InputError(f"k={k}: more folds than {MAX_FOLDS} (one fit per fold)")
    if k > len(y):
        raise InputError(f"k={k}: more folds than the {len(y)} samples")
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
