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
plus a few over a subsample of about a 32nd of a pass each):

1. a float32 pass at T = 1 (float32 exp, products and row sums, float64
   per-row arithmetic) gives the NLL before scaling (to ~1e-7), and L', L''
   and L''' (to ~1e-8).  β is rounded to float32 before every float32 pass,
   so that the pass evaluates exactly that β.  The same pass draws the
   steering subsample: the 1/32 of the rows (at least 2000, at most
   ``SUB_MAX_BYTES`` of logits) of smallest :func:`row_hash` of their global
   index, a set that depends neither on the chunking nor on the threads;
2. the subsample is steered by Halley steps on float32 passes over it alone,
   its derivatives offset by their difference from the full data's at T = 1:
   this removes most of the sampling error (measured on 50,000×1000: 1e-3 to
   4e-3 relative in β);
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

Streaming: a pass reads the rows chunk by chunk (:func:`fit_chunks` takes a
re-readable source of chunks, such as :meth:`relcal.stream.Stream.chunks`),
cuts each chunk into cache-sized blocks on the shared thread pool (the next
chunk is read while the blocks of the one before are computed) and keeps only
the sums of the per-row terms: memory does not grow with the data, and the
blocks (hence the sums, bit for bit) do not depend on the number of threads.
Another chunking changes the sums by float64 rounding only.  Cross-fitting
(``k`` folds) puts row i in fold :func:`fold_of` (a hash of the row's global
index and the seed) and steps the k fits that each leave one fold out
together with the fit on every row: every pass over the rows serves them all.

References: Guo, Pleiss, Sun, Weinberger (2017), "On Calibration of Modern
Neural Networks", section 4.2.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any

import numpy as np

from relcal import kernel
from relcal.errors import InputError, RelcalError, UnsupportedMetricError
from relcal.progress import advance
from relcal.reduce import default_threads, scratch, shared_pool, stop_pool
from relcal.summary import FORK_MAX_CLASSES, is_pieces
from relcal.validate import nonfinite_error, prepare

Chunk = tuple[np.ndarray, np.ndarray, int]  # (scores, labels, start), as a Stream's

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


# --------------------------------------------------------------------------
# rows of logits, and the row hash that draws subsamples and folds


@dataclass(frozen=True, eq=False)
class LogitRows:
    """``(r, C)`` logits (float32 or float64; -inf for a masked class), their
    int labels, and ``ids``: each row's global index (a pixel's index among
    every pixel of the leading-axis rows before it, ignored ones included).
    The subsample and the folds are drawn from ``ids`` alone, so they do not
    depend on how the rows were chunked.  ``neginf``: whether any logit is
    -inf (known for checked rows; later passes use the first pass's).
    ``class_major``: ``z`` is ``(C, r)`` (the pixels of a segmentation map as
    stored: no transposing copy), summed over its axis 0."""

    z: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    neginf: bool = False
    class_major: bool = False

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: Any) -> LogitRows:
        z = self.z[:, rows] if self.class_major else self.z[rows]
        return LogitRows(z, self.y[rows], self.ids[rows], self.neginf, self.class_major)

    def row_major(self) -> LogitRows:
        if not self.class_major:
            return self
        return LogitRows(np.ascontiguousarray(self.z.T), self.y, self.ids, self.neginf)


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
    rows = _prepared_rows(scores, labels, kind, ignore_index)
    return rows.z, rows.y


def _prepared_rows(
    scores: object, labels: object, kind: str, ignore_index: int | None
) -> LogitRows:
    s, y, skind, _ = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    return logit_rows(s, y, kind=skind, ignore_index=ignore_index)


def logit_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    kind: str,
    ignore_index: int | None = None,
    start: int = 0,
    check: bool = True,
) -> LogitRows:
    """The logit rows of one validated chunk (``kind`` "logits" or "probs";
    ``start``: the global index of its first leading-axis row).  ``check``
    refuses NaN, +inf, logits beyond :data:`MAX_LOGIT` and a -inf logit at
    the true class (located in the chunk's own shape, rows offset by
    ``start``), and finds out whether any logit is -inf."""
    s0, y0 = np.asarray(scores), np.asarray(labels)
    neginf = _check_values(s0, y0, kind, start) if check else False
    z = _logits_layout(s0, kind)
    z, y, ids = _kept_rows(z, y0, ignore_index, start)
    if check and np.isneginf(z[np.arange(len(y)), y]).any():
        # -inf is allowed for a masked class, never for the true one
        raise nonfinite_error(s0, y0, offset=start)
    return LogitRows(z, y, ids, neginf)


def _check_values(s0: np.ndarray, y0: np.ndarray, kind: str, start: int) -> bool:
    """Refuse NaN, +inf and logits beyond :data:`MAX_LOGIT`; whether any
    logit is -inf."""
    if not np.isfinite(np.max(s0)):  # NaN and +inf show in the maximum
        raise nonfinite_error(s0, y0, offset=start)
    return _check_magnitude(s0) if kind == "logits" else False


def _pass_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    start: int,
    check: bool,
    first: int | None = None,
    **how: Any,
) -> list[LogitRows]:
    """:func:`logit_rows` for the fit's passes: segmentation maps become
    class-major rows image by image (the stored layout, without a
    transposing copy), other scores one :class:`LogitRows`.  ``first``: for
    a part of one image (:meth:`relcal.stream.Pieces.parts`), the index of
    its first pixel among all pixels (the rows' ids)."""
    s0 = np.asarray(scores)
    if s0.ndim <= 2:
        return [logit_rows(s0, labels, start=start, check=check, **how)]
    kind, ignore_index = how["kind"], how["ignore_index"]
    y0 = np.asarray(labels)
    neginf = _check_values(s0, y0, kind, start) if check else False
    z = _logits_layout(s0, kind)
    c, hw = z.shape[1], math.prod(z.shape[2:])
    out = []
    for i in range(len(z)):
        zi, yi = z[i].reshape(c, hw), y0[i].reshape(hw)
        base = (start + i) * hw if first is None else first
        ids = np.arange(base, base + hw, dtype=np.int64)
        if ignore_index is not None:
            keep = yi != ignore_index
            if not keep.all():
                zi, yi, ids = zi[:, keep], yi[keep], ids[keep]
        if check and np.isneginf(zi[yi, np.arange(len(yi))]).any():
            raise nonfinite_error(s0, y0, offset=start)
        if len(yi):
            out.append(LogitRows(zi, yi, ids, neginf, class_major=True))
    return out


def _logits_layout(z: np.ndarray, kind: str) -> np.ndarray:
    """Logits in the chunk's own layout (class axis 1): log-probabilities
    for probabilities, (0, z) for one binary column; float32 or float64."""
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float32)
    if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1):  # binary: P or logit of 1
        z = z.reshape(-1)
        if kind == "probs":
            tiny = np.finfo(z.dtype).tiny
            return np.stack(
                [np.log(np.maximum(1 - z, tiny)), np.log(np.maximum(z, tiny))], axis=1
            )
        return np.stack([np.zeros_like(z), z], axis=1)
    if kind == "probs":
        return np.log(np.maximum(z, np.finfo(z.dtype).tiny))
    return z


def _kept_rows(
    z: np.ndarray, y: np.ndarray, ignore_index: int | None, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, C) logits, labels and global row ids of the kept rows (pixels
    of maps: one gather from the class-last view, not a copy and a gather)."""
    per_row = math.prod(z.shape[2:]) if z.ndim > 2 else 1
    base = start * per_row
    keep = None if ignore_index is None else y != ignore_index
    if keep is not None and keep.all():
        keep = None
    if z.ndim > 2:
        z = np.moveaxis(z, 1, -1)
        if keep is None:
            z, y = z.reshape(-1, z.shape[-1]), y.reshape(-1)
    if keep is None:
        return z, y, np.arange(base, base + len(y), dtype=np.int64)
    return z[keep], y[keep], base + np.flatnonzero(keep)


def _check_magnitude(z: np.ndarray) -> bool:
    """Refuse logits beyond :data:`MAX_LOGIT`, whose float32 steering passes
    and float64 sums (of z², over every row, at β up to 1/T_BOUNDS[0]) would
    overflow.  -inf (a masked class) is allowed: returns whether there is one."""
    hi = float(np.max(z))
    lo = float(np.min(z))
    neginf = math.isinf(lo)
    if neginf:
        lo = float(np.min(z, where=np.isfinite(z), initial=0.0))
    if max(hi, -lo) > MAX_LOGIT:
        big = hi if hi > -lo else lo
        raise InputError(
            f"scores: a logit of {big:.6g}; temperature scaling takes logits of"
            f" magnitude up to {MAX_LOGIT:g}"
        )
    return neginf


FOLD_RULE = "row-hash"
"""How cross-fitting assigns rows to folds (the temperature file's
``cross_fitted.folds``): row i (its global index; a pixel's among every pixel)
is in fold floor(k · u) where u is the top 53 bits of SplitMix64(i + (2 + 2 ·
seed) · 0x9E3779B97F4A7C15) over 2**53 (:func:`fold_of`).  Files without the
field (relcal before it) split a seeded permutation into k equal parts."""

_M64 = (1 << 64) - 1
SUB_SALT = 1  # the steering subsample's hash
FOLD_SALT = 2  # cross-fitting's folds (plus 2 x seed)


def row_hash(ids: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64 of ``ids + salt·γ`` (uint64): a bijection of the row index,
    so distinct rows never share a key."""
    x = ids.astype(np.uint64)
    x += np.uint64((salt * 0x9E3779B97F4A7C15) & _M64)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def fold_of(ids: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The cross-fitting fold (0 … k−1) of each global row index: the top
    bits of a hash of (seed, row), so each row falls in any fold with
    probability 1/k, whatever the chunking or the threads."""
    h = row_hash(ids, FOLD_SALT + 2 * seed) >> np.uint64(11)  # 53 bits
    return ((h * np.uint64(k)) >> np.uint64(53)).astype(np.intp)


# --------------------------------------------------------------------------
# a pass: L and its derivatives at several β, summed per fold


@lru_cache(maxsize=8)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    return np.ones(n, dtype=dtype)


Request = tuple[float, bool, bool]  # β, coarse (float32), third (L''')


@dataclass(frozen=True)
class _Spec:
    """What a pass computes on each block of rows: the sums of L, L', L''
    and L''' terms at each of ``requests``, per fold (``k`` folds of
    ``seed``; k = 1: none); on the first pass also the rows and wrong rows
    per fold and the subsample's candidates (keys up to ``sub_max``);
    ``ties``: count, per fold, the rows whose true class is not the only
    maximal one (a pass of its own, rarely needed)."""

    requests: tuple[Request, ...]
    k: int = 1
    seed: int = 0
    floor: bool = False  # some logit is -inf (from the first pass)
    first: bool = False
    sub_max: int | None = None  # the largest key of a candidate (None: none)
    ties: bool = False


@dataclass(frozen=True, eq=False)
class _BlockOut:
    sums: np.ndarray  # (len(requests), 4, k) float64
    n: np.ndarray  # (k,) rows per fold (first pass)
    bad: np.ndarray  # (k,) wrong (first pass) or tied (ties pass) rows per fold
    neginf: bool
    keys: np.ndarray | None = None  # the subsample's candidates
    candidates: LogitRows | None = None


def _fold_sums(values: np.ndarray, fold: np.ndarray | None, k: int) -> np.ndarray:
    """Sums of ``values`` (…, r) per fold: (…, k)."""
    if fold is None:
        return values.sum(axis=-1)[..., None]
    if values.ndim == 1:
        return np.bincount(fold, weights=values, minlength=k)
    return np.stack([np.bincount(fold, weights=v, minlength=k) for v in values])


def _block(rows: LogitRows, spec: _Spec) -> _BlockOut:
    """One block's share of a pass (run on the pool)."""
    z, y, cm = rows.z, rows.y, rows.class_major
    r = len(y)
    fold = fold_of(rows.ids, spec.k, spec.seed) if spec.k > 1 else None
    m = z.max(axis=0 if cm else 1)
    zy = z[y, np.arange(r)] if cm else z[np.arange(r), y]
    dy = np.subtract(zy, m, dtype=np.float64)  # z_y − max, exact
    floor = spec.floor or rows.neginf
    sums = np.empty((len(spec.requests), 4, spec.k))
    for i, (beta, coarse, third) in enumerate(spec.requests):
        terms = _row_terms(_row_sums(z, m, beta, coarse, third, floor, cm), beta, dy)
        sums[i] = _fold_sums(terms, fold, spec.k)
    advance(z.nbytes)
    no = np.zeros(spec.k)
    if spec.ties:
        tops = z == (m[None, :] if cm else m[:, None])
        tied = np.count_nonzero(tops, axis=0 if cm else 1) > 1
        return _BlockOut(sums, no, _fold_sums((dy != 0) | tied, fold, spec.k), False)
    if not spec.first:
        return _BlockOut(sums, no, no, False)
    n = _fold_sums(np.ones(r), fold, spec.k)
    out = _BlockOut(sums, n, _fold_sums(dy != 0, fold, spec.k), rows.neginf)
    if spec.sub_max is not None:
        keys = row_hash(rows.ids, SUB_SALT)
        pick = np.flatnonzero(keys <= np.uint64(spec.sub_max))
        out = replace(out, keys=keys[pick], candidates=rows.take(pick).row_major())
    return out


def _row_sums(
    z: np.ndarray,
    m: np.ndarray,
    beta: float,
    coarse: bool,
    third: bool,
    floor: bool,
    class_major: bool = False,
) -> np.ndarray:
    """Row sums Σ e, Σ e d, Σ e d² and Σ e d³ (e = exp(β d), d = z − max):
    float64 (exact: the differences are exact in float64), or float32
    (``coarse``: float32 exp, products and row sums, good to ~1e-7 relative,
    enough to steer).  A few large numpy calls per block, so that the
    threads rarely wait for each other's GIL."""
    dt = np.dtype(np.float32 if coarse else np.float64)
    mm = m[None, :] if class_major else m[:, None]
    d = scratch(z.shape, dt, "d")
    if coarse:
        np.subtract(z, mm.astype(np.float32), out=d, dtype=np.float32)
    else:
        np.copyto(d, z)  # widened first: faster than a mixed-dtype subtract
        d -= mm.astype(np.float64)
    if floor:
        np.maximum(d, _FLOOR32 if coarse else _FLOOR, out=d)
    e = scratch(z.shape, dt, "e")
    np.multiply(d, dt.type(beta), out=e)
    if coarse:
        np.exp(e, out=e)
    else:
        kernel.exp(e)
    out = np.full((4, len(m)), np.nan, dtype=dt)
    if class_major:  # sums down the class axis: C vector adds
        np.add.reduce(e, axis=0, out=out[0])
        for j in range(1, 4 if third else 3):
            e *= d
            np.add.reduce(e, axis=0, out=out[j])
        return out
    np.vecdot(e, _ones(e.shape[1], dt), out=out[0])
    np.vecdot(e, d, out=out[1])
    e *= d
    np.vecdot(e, d, out=out[2])
    if third:
        e *= d
        np.vecdot(e, d, out=out[3])
    return out


def _row_terms(sums: np.ndarray, beta: float, dy: np.ndarray) -> np.ndarray:
    """Per row, in float64: the NLL, E_p[d] − d_y, Var_p[d] and the third
    cumulant E_p[(d − μ)³] (NaN when the pass did not sum d³)."""
    s, s1, s2, s3 = sums.astype(np.float64, copy=False)
    mu = s1 / s  # E_p[d]
    m2 = s2 / s
    out = np.empty((4, len(s)))
    np.subtract(np.log(s), beta * dy, out=out[0])
    np.subtract(mu, dy, out=out[1])
    np.maximum(m2 - mu * mu, 0.0, out=out[2])
    out[3] = s3 / s - 3.0 * mu * m2 + 2.0 * mu * mu * mu
    return out


Source = Callable[[], Iterable[LogitRows]]


def _blocks(rows: LogitRows) -> list[LogitRows]:
    """Cache-sized blocks of rows (the same whatever the number of threads)."""
    n = len(rows)
    step = max(1, _CHUNK // max(rows.z.size // max(n, 1), 1))
    return [rows.take(slice(lo, lo + step)) for lo in range(0, n, step)]


@dataclass(frozen=True, eq=False)
class _PieceRows:
    """The rows of a pass over :class:`relcal.stream.Pieces`: read, checked
    and turned into rows piece by piece, here or in a worker process."""

    pieces: Any
    check: bool
    how: dict[str, Any]

    def of(self, k: int) -> Iterator[list[LogitRows]]:
        """Piece ``k``'s rows: an image of more than
        :data:`relcal.stream.PART_BYTES` of scores a part at a time
        (:meth:`relcal.stream.Pieces.parts`: a worker holds a part, not an
        image), here as in a worker process, so that the blocks do not
        depend on the jobs.  An error in a part is raised as the whole piece
        raises it (located in the image)."""
        split = self.pieces.parts(k, _any_pixels)
        if split is None:
            s, y, start = self.pieces.read(k)
            yield _pass_rows(s, y, start, self.check, **self.how)
            return
        try:
            for s, y, start, first in split[1]:
                rows = _pass_rows(s, y, start, self.check, first, **self.how)
                del s, y  # the rows' alone: the next part reuses the buffer
                yield rows
                del rows
        except RelcalError as err:
            s, y, start = self.pieces.read(k)
            _pass_rows(s, y, start, self.check, **self.how)  # raises it exactly
            raise err from None

    def __iter__(self) -> Iterator[LogitRows]:
        for k in range(len(self.pieces)):
            for rows in self.of(k):
                yield from rows


def _any_pixels(dtype: np.dtype) -> int:
    """The fit's parts of an image may cut it anywhere."""
    return 1


def _piece_blocks(rows: _PieceRows, k: int, spec: _Spec) -> tuple[list[_BlockOut], int]:
    """A worker process's share of a pass: one piece's blocks, and its bytes."""
    outs, nbytes = [], 0
    for part in rows.of(k):
        outs += [_block(b, spec) for r in part for b in _blocks(r)]
        nbytes += sum(r.z.nbytes for r in part)
        del part  # before the next part is read into the same buffer
    return outs, nbytes


def _forked_pass(rows: _PieceRows, spec: _Spec, workers: int) -> Iterator[_BlockOut]:
    from relcal import forked

    stop_pool()
    tasks = [partial(_piece_blocks, rows, k, spec) for k in range(len(rows.pieces))]
    for outs, nbytes in forked.run(tasks, workers):
        advance(nbytes)
        yield from outs


def _run_pass(source: Source, spec: _Spec, jobs: int | None) -> Iterator[_BlockOut]:
    """Every block's result, in order: in worker processes for pieces of
    files with few classes (as :func:`relcal.summary.reduce_chunks`), else
    on the shared pool, the next chunk read while the blocks of the one
    before are computed."""
    from relcal import forked

    workers = default_threads() if jobs is None else max(1, int(jobs))
    src = source()
    if (
        isinstance(src, _PieceRows)
        and src.pieces.stream.meta.n_classes <= FORK_MAX_CLASSES
        and forked.usable(len(src.pieces), workers)
    ):
        yield from _forked_pass(src, spec, workers)
        return
    if workers <= 1:
        for rows in src:
            for b in _blocks(rows):
                yield _block(b, spec)
        return
    pool = shared_pool(workers)
    inflight: deque[list[Future[_BlockOut]]] = deque()
    try:
        for rows in src:
            inflight.append([pool.submit(_block, b, spec) for b in _blocks(rows)])
            while len(inflight) > 1:
                yield from (f.result() for f in inflight.popleft())
        while inflight:
            yield from (f.result() for f in inflight.popleft())
    finally:
        for futures in inflight:
            for f in futures:
                f.cancel()


@dataclass
class _Totals:
    """A pass's results, added up in the blocks' order."""

    sums: np.ndarray
    n: np.ndarray
    bad: np.ndarray
    neginf: bool = False
    sub: _Bottom | None = None


def _pass(source: Source, spec: _Spec, jobs: int | None, sub_rows: int = 0) -> _Totals:
    k = spec.k
    tot = _Totals(np.zeros((len(spec.requests), 4, k)), np.zeros(k), np.zeros(k))
    if spec.sub_max is not None:
        tot.sub = _Bottom(sub_rows)
    for out in _run_pass(source, spec, jobs):
        tot.sums += out.sums
        tot.n += out.n
        tot.bad += out.bad
        tot.neginf = tot.neginf or out.neginf
        if tot.sub is not None and out.candidates is not None:
            tot.sub.add(out.keys, out.candidates)
    return tot


class _Bottom:
    """The ``m`` rows of smallest key seen (a bottom-m sample: the same set
    whatever the order or chunking of the rows), held in bounded memory."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.keys: list[np.ndarray] = []
        self.rows: list[LogitRows] = []
        self.held = 0

    def add(self, keys: np.ndarray, rows: LogitRows) -> None:
        if len(keys):
            self.keys.append(keys)
            self.rows.append(rows)
            self.held += len(keys)
            if self.held > 2 * self.m:
                self._trim()

    def _trim(self) -> None:
        keys = np.concatenate(self.keys)
        rows = LogitRows(
            np.concatenate([r.z for r in self.rows]),
            np.concatenate([r.y for r in self.rows]),
            np.concatenate([r.ids for r in self.rows]),
        )
        if len(keys) > self.m:
            keep = np.argpartition(keys, self.m - 1)[: self.m]
            keys, rows = keys[keep], rows.take(keep)
        self.keys, self.rows, self.held = [keys], [rows], len(keys)

    def result(self, neginf: bool) -> LogitRows | None:
        """The rows, in the order of their global index."""
        if not self.held:
            return None
        self._trim()
        rows = self.rows[0]
        order = np.argsort(rows.ids, kind="stable")
        return LogitRows(rows.z[order], rows.y[order], rows.ids[order], neginf)


# --------------------------------------------------------------------------
# one fit, as a generator of the passes it asks for

Derivs = tuple[float, float, float, float]  # mean L, L', L'', L''' at β
Ask = tuple[str, float, bool, bool]  # "all" rows or the "sub"sample; Request
Steps = Generator[Ask, Derivs, Any]


@dataclass
class _Count:
    """Passes one fit asked for: over all its rows (the first included), and
    over its steering subsample."""

    all: int = 1
    sub: int = 0
    third: bool = True  # whether passes over all rows give L'''


def _ev(c: _Count, target: str, beta: float, coarse: bool = False) -> Steps:
    """One pass, asked of the driver: ``yield from`` gives L, L', L'', L'''."""
    if target == "all":
        c.all += 1
        third = c.third
    else:
        c.sub += 1
        third = True
    return (yield (target, beta, coarse, third))


@dataclass(frozen=True)
class _Start:
    """What the first pass (at β = 1) told one fit."""

    derivs: Derivs
    n: int
    n_classes: int
    all_right: bool
    steer: bool  # float32 passes and a subsample steer (large inputs)
    sub_rows: int  # rows of its steering subsample (0: none)


def _fit_steps(start: _Start) -> Generator[Ask, Derivs, TemperatureFit]:
    """The safeguarded Newton iteration of the module's docstring: yields
    the passes it needs, receives their L, L', L'', L''', returns the fit."""
    c = _Count()
    b_min, b_max = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]
    beta = 1.0
    nll0, g, h, k3 = start.derivs
    nll, status, it = nll0, "converged", 0
    if start.all_right:
        # every prediction right: L falls all the way to T -> 0
        beta, status = b_max, "capped"
        nll, g, h, _ = yield from _ev(c, "all", beta)
    elif h <= 0.0 and abs(g) <= GRAD_TOL:
        status = "no effect"  # constant logits: every T gives the same NLL
    used_sub = False
    if status == "converged" and abs(g) > GRAD_TOL and start.steer:
        used_sub = 4 * start.sub_rows <= start.n and start.sub_rows > 0
        b, it = yield from _steered(c, (g, h, k3), used_sub)
        # 3. exact passes (Newton steps: L''' no longer pays) from there, or
        # from the bound the steering ran into (the exact passes then decide
        # whether T is capped there)
        c.third = False
        beta = min(max(b, b_min), b_max) if math.isfinite(b) else 1.0
        nll, g, h, k3 = yield from _ev(c, "all", beta)
    if status == "converged":
        beta, nll, g, status, it = yield from _exact(c, beta, (nll, g, h, k3), it)
    return TemperatureFit(
        temperature=1.0 / beta,
        nll_before=nll0,
        nll_after=nll,
        gradient=-g * beta * beta,  # dL/dT = L'(β) · dβ/dT, dβ/dT = −β²
        gradient_beta=g,
        iterations=it,
        passes=c.all,
        status=status,
        n=start.n,
        n_classes=start.n_classes,
        subsample_rows=start.sub_rows if used_sub else 0,
        subsample_passes=c.sub,
    )


def _steered(
    c: _Count, derivs: tuple[float, float, float], use_sub: bool
) -> Generator[Ask, Derivs, tuple[float, int]]:
    """Steps 1 and 2 of the module's docstring: β near the optimum from
    float32 passes over every row and float64 ones over the subsample."""
    b, it = 1.0, 0
    g, h, k3 = derivs
    if not use_sub:  # too few rows to subsample: float32 passes over every row
        b, steps = yield from _steer(c, "all", b, derivs, COARSE_TOL, COARSE_MAX)
        return b, steps
    # 1. A random 1/k of the rows (seeded by row: the same file gives the same
    # steps) steers β near the optimum; its derivatives are offset by their
    # difference from the full data's at β = 1, which removes most of the
    # sampling error.
    _, gs, hs, k3s = yield from _ev(c, "sub", b, True)
    off = (g - gs, h - hs, k3 - k3s)
    b, it = yield from _steer(c, "sub", b, derivs, SUB_TOL, SUB_MAX, off)
    # 2. A float32 pass over every row there, and the subsample's derivatives
    # offset again, now by the Taylor expansion of the difference about that
    # point, measured in float32 on both sides (float32's bias then cancels,
    # up to sampling noise).  Float64 passes over the subsample so offset are
    # a model of the full data's exact L' that agrees with it in L', L'' and
    # L''' there, and beyond that errs only by sampling noise.  Repeated if
    # the model moves β far.
    for _ in range(COARSE_MAX - 1):
        b = _f32(b)
        _, g, h, k3 = yield from _ev(c, "all", b, True)
        _, gs, hs, k3s = yield from _ev(c, "sub", b, True)
        off = (g - gs, h - hs, k3 - k3s)
        nb, steps = yield from _steer(
            c, "sub", b, None, MODEL_TOL, c.sub + SUB_MAX, off, at=b, coarse=False
        )
        it += steps
        moved = abs(nb - b) / b
        b = nb
        if moved <= MODEL_RANGE or not math.isfinite(moved):
            break
    return b, it


def _exact(
    c: _Count, beta: float, derivs: Derivs, it: int
) -> Generator[Ask, Derivs, tuple[float, float, float, str, int]]:
    """Float64 Newton steps over every row under the stopping rule (``it``
    steps taken before); returns β, L and L' there, the status and the
    number of steps in all."""
    b_min, b_max = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]
    lo, hi = b_min, b_max  # the root of L' lies in [lo, hi]
    nll, g, h, k3 = derivs
    status = "converged"
    while abs(g) > GRAD_TOL and it < MAX_ITER:
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
        nll, g, h, k3 = yield from _ev(c, "all", beta)
    near = 1e-9  # the bracket may close on a bound without landing on it
    if status == "converged" and (
        (g > GRAD_TOL and beta <= b_min * (1 + near))
        or (g < -GRAD_TOL and beta >= b_max * (1 - near))
    ):
        status = "capped"
    return beta, nll, g, status, it


def _steer(
    c: _Count,
    target: str,
    beta: float,
    derivs: tuple[float, float, float] | None,
    tol: float,
    max_passes: int,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    at: float | None = None,
    coarse: bool = True,
) -> Generator[Ask, Derivs, tuple[float, int]]:
    """Halley steps on float32 (``coarse``) or float64 passes over ``target``
    from β (where L', L'', L''' are ``derivs``, or a first pass gives them)
    until a step moves β by less than ``tol`` relative, or ``target`` has had
    ``max_passes`` passes; the last step is taken.  ``offset`` (og, oh, ok)
    is added to the derivatives of every pass made here: as constants, or,
    given ``at``, as the Taylor expansion og + oh x + ok x²/2 of L' about
    β = at (x = β − at), and its derivatives.  Returns β and the number of
    steps."""
    lo, hi = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]

    def corrected(b: float) -> Generator[Ask, Derivs, tuple[float, float, float]]:
        _, g, h, k3 = yield from _ev(c, target, b, coarse)
        og, oh, ok = offset
        x = 0.0 if at is None else b - at
        return g + og + x * (oh + x * ok / 2), h + oh + x * ok, k3 + ok

    if derivs is None:
        beta = _f32(beta) if coarse else beta
        derivs = yield from corrected(beta)
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
        passes = c.all if target == "all" else c.sub
        if abs(nb - beta) <= tol * beta or passes >= max_passes:
            return nb, steps
        beta = _f32(nb) if coarse else nb
        g, h, k3 = yield from corrected(beta)
    return beta, steps


# --------------------------------------------------------------------------
# the driver: fits in lockstep, one pass over the rows for all of them

SUB_MAX_BYTES = 64 << 20  # the steering subsample holds at most this much


def _part(values: np.ndarray, leave_out: int | None) -> np.ndarray:
    """Sums over every fold (``leave_out`` None) or every fold but one, in
    the folds' order."""
    if leave_out is None:
        return values.sum(axis=-1)
    return np.delete(values, leave_out, axis=-1).sum(axis=-1)


def _mean(sums: np.ndarray, n: float) -> Derivs:
    nll, g, h, k3 = (float(v) for v in sums / n)
    return nll, g, h, k3


def _fit_many(
    source: Source,
    *,
    n_all: int,
    n_classes: int,
    row_bytes: int,
    k: int | None = None,
    seed: int = 0,
    jobs: int | None = None,
) -> list[TemperatureFit]:
    """The fit on every row of ``source()`` (``n_all`` rows at most, ignored
    pixels included) and, with ``k``, the fit leaving out each of the k folds
    of :func:`fold_of`: all of them stepped together, so that each pass over
    the rows serves every fit (each asks for its own β; equal ones are
    computed once)."""
    folds = 1 if k is None else k
    steer = n_all * n_classes >= COARSE_MIN_SIZE  # large: float32 passes steer
    m = max(SUB_MIN_ROWS, min(n_all // SUB_FRACTION, SUB_MAX_BYTES // row_bytes))
    sub_max = min(_M64, int(2 * m / max(n_all, 1) * 2.0**64)) if steer else None
    first = _Spec(((1.0, steer, True),), folds, seed, first=True, sub_max=sub_max)
    tot = _pass(source, first, jobs, m)
    leave = [None] if k is None else [None, *range(k)]
    n = [_check_rows(int(_part(tot.n, i)), i, k) for i in leave]
    bad = tot.bad
    if any(_part(bad, i) == 0 for i in leave):  # look for ties too
        ties = _Spec((), folds, seed, floor=tot.neginf, ties=True)
        bad = _pass(source, ties, jobs).bad
    sub = None if tot.sub is None else tot.sub.result(tot.neginf)
    sub_n = [0] * len(leave)
    if sub is not None:
        sub_fold = fold_of(sub.ids, folds, seed)
        sub_n = [len(sub) if i is None else int(np.sum(sub_fold != i)) for i in leave]
    starts = [
        _Start(
            _mean(_part(tot.sums[0], i), n[j]),
            n[j],
            n_classes,
            bool(_part(bad, i) == 0),
            steer,
            sub_n[j],
        )
        for j, i in enumerate(leave)
    ]
    lockstep = _Lockstep(source, sub, folds, seed, tot.neginf, jobs)
    return lockstep.run([_fit_steps(s) for s in starts], leave, n, sub_n)


def _check_rows(n: int, leave_out: int | None, k: int | None) -> int:
    if leave_out is None and n == 0:
        raise InputError("no samples to fit a temperature on")
    if leave_out is None and k is not None and k > n:
        raise InputError(f"k={k}: more folds than the {n} samples")
    if n == 0:
        raise InputError(
            f"k={k}: fold {leave_out} holds every sample (folds are drawn row by"
            " row); give fewer folds"
        )
    return n


@dataclass
class _Lockstep:
    """Runs fits (generators of :func:`_fit_steps`) together: their
    subsample passes at once, in memory; their passes over every row as one
    pass of all the β they ask for."""

    source: Source
    sub: LogitRows | None
    folds: int
    seed: int
    neginf: bool
    jobs: int | None

    def run(
        self, fits: list[Steps], leave: list[int | None], n: list[int], sub_n: list[int]
    ) -> list[TemperatureFit]:
        asks: dict[int, Ask] = {}
        done: dict[int, TemperatureFit] = {}

        def send(j: int, value: Derivs | None) -> None:
            try:
                asks[j] = fits[j].send(value)  # type: ignore[arg-type]
            except StopIteration as stop:
                done[j] = stop.value
                asks.pop(j, None)

        for j in range(len(fits)):
            send(j, None)
        while asks:
            while subs := {j: a for j, a in asks.items() if a[0] == "sub"}:
                # the subsample passes the fits ask for: one pass for all
                wanted = tuple(dict.fromkeys(a[1:] for a in subs.values()))
                sums = self._sums(lambda: [self.sub], wanted)
                for j, a in subs.items():
                    got = sums[wanted.index(a[1:])]
                    send(j, _mean(_part(got, leave[j]), sub_n[j]))
            wanted = tuple(dict.fromkeys(a[1:] for a in asks.values()))
            if not wanted:
                break
            sums = self._sums(self.source, wanted)
            for j, a in list(asks.items()):
                send(j, _mean(_part(sums[wanted.index(a[1:])], leave[j]), n[j]))
        return [done[j] for j in range(len(fits))]

    def _sums(self, source: Source, requests: tuple[Request, ...]) -> np.ndarray:
        spec = _Spec(requests, self.folds, self.seed, floor=self.neginf)
        return _pass(source, spec, self.jobs).sums


# --------------------------------------------------------------------------
# the public functions: arrays in memory, or a re-readable source of chunks


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
    s, y, skind, _ = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    return fit_chunks(
        lambda: [(s, y, 0)], kind=skind, shape=s.shape, ignore_index=ignore_index
    )[0]


def fit_prepared(z: np.ndarray, y: np.ndarray) -> TemperatureFit:
    """:func:`fit_temperature` on the output of :func:`as_logits` (no checks)."""
    rows = _rows_of(z, y)
    return _fit_many(lambda: [rows], **_sizes(rows))[0]


def _rows_of(z: np.ndarray, y: np.ndarray) -> LogitRows:
    neginf = bool(len(z)) and bool(np.isneginf(np.min(z)))
    return LogitRows(z, y, np.arange(len(y), dtype=np.int64), neginf)


def _sizes(rows: LogitRows) -> dict[str, int]:
    return {
        "n_all": len(rows),
        "n_classes": rows.z.shape[1],
        "row_bytes": rows.z.shape[1] * rows.z.dtype.itemsize,
    }


def fit_chunks(
    source: Callable[[], Iterable[Chunk]],
    *,
    kind: str,
    shape: tuple[int, ...],
    ignore_index: int | None = None,
    k: int | None = None,
    seed: int = 0,
    jobs: int | None = None,
) -> list[TemperatureFit]:
    """:func:`fit_temperature` streamed: ``source()`` yields the validated
    chunks ``(scores, labels, start)`` of :meth:`relcal.stream.Stream.chunks`
    anew for each pass (``kind``: "logits" or "probs"; ``shape``: of all the
    scores together).  Each pass reads every chunk once, on ``jobs`` threads
    (default: :func:`relcal.reduce.default_threads`), and keeps only sums:
    memory does not grow with the data.  With ``k``, also the k fits that
    each leave out one fold of :func:`fold_of` (seeded by ``seed``), in the
    same passes.  Returns the fit on every row, then the k fits."""
    _check_k(k)
    first = [True]

    def rows() -> Iterable[LogitRows]:
        check, first[0] = first[0], False  # the first pass checks the values
        chunks = source()
        how = {"kind": kind, "ignore_index": ignore_index}
        if is_pieces(chunks):  # maybe read by worker processes
            return _PieceRows(chunks, check, how)
        return (
            r for s, y, start in chunks for r in _pass_rows(s, y, start, check, **how)
        )

    n_classes = 2 if len(shape) == 1 or shape[1] == 1 else int(shape[1])
    per_row = math.prod(shape[2:]) if len(shape) > 2 else 1
    return _fit_many(
        rows,
        n_all=int(shape[0]) * per_row,
        n_classes=n_classes,
        row_bytes=n_classes * 8,
        k=k,
        seed=seed,
        jobs=jobs,
    )


def _check_k(k: object) -> None:
    if k is None:
        return
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InputError(f"k= needs an integer of at least 2. Got {k!r} instead")
    if k > MAX_FOLDS:
        raise InputError(f"k={k}: more folds than {MAX_FOLDS} (one fit per fold)")


def cross_fit(
    z: np.ndarray, y: np.ndarray, k: int, *, seed: int = 0
) -> tuple[np.ndarray, list[float]]:
    """Cross-fitted scaled logits: each of ``k`` folds is scaled by a T fitted
    on the other folds.  Row i is in fold :func:`fold_of` (i, k, seed): a
    hash of the row, so a fold holds about n/k rows, not exactly.  Returns
    the scaled logits (in z's row order) and the k temperatures."""
    _check_k(k)
    if k > len(y):
        raise InputError(f"k={k}: more folds than the {len(y)} samples")
    rows = _rows_of(z, y)
    fits = _fit_many(lambda: [rows], **_sizes(rows), k=k, seed=seed)
    temps = [f.temperature for f in fits[1:]]
    return scale_folds(z, temps, fold_of(rows.ids, k, seed)), temps


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


def scale_logits(z: np.ndarray, temperature: float) -> np.ndarray:
    """``z / T`` in z's floating dtype (float32 stays float32)."""
    t = check_temperature(temperature)
    return _divide(np.asarray(z), np.array([t]), None)


def scale_folds(
    z: np.ndarray, temperatures: Sequence[float], fold: np.ndarray
) -> np.ndarray:
    """Row i of ``z`` divided by ``temperatures[fold[i]]`` (as
    :func:`scale_logits` divides, row by row)."""
    temps = np.array([check_temperature(t) for t in temperatures])
    return _divide(np.asarray(z), temps, fold)


def _divide(z: np.ndarray, temps: np.ndarray, fold: np.ndarray | None) -> np.ndarray:
    if z.dtype == np.float32:
        outside = temps[(temps < T32_RANGE[0]) | (temps > T32_RANGE[1])]
        if len(outside):
            raise InputError(
                f"temperature {outside[0]:g} is outside the range of the logits'"
                " dtype float32"
            )
        t = temps.astype(np.float32)
    else:
        z, t = np.asarray(z, np.float64), temps
    with np.errstate(over="ignore"):  # checked below
        out = z / (t[0] if fold is None else np.expand_dims(t[fold], 1))
    bad = np.isinf(out) & np.isfinite(z)
    if bad.any():  # the smallest temperature that scales a logit too far
        per = None if fold is None else np.expand_dims(temps[fold], 1)
        tb = temps[0] if per is None else np.min(np.broadcast_to(per, bad.shape)[bad])
        raise InputError(
            f"temperature {tb:g} scales the logits beyond the range of {out.dtype}"
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


# --------------------------------------------------------------------------
# fit-temperature's workflow: the fit and the metrics before and after it


@dataclass(frozen=True, eq=False)
class Scaling:
    """What ``relcal fit-temperature`` reports: the fit, the metrics before
    and after (in-sample) and, with k folds, ``cross`` = (k, seed, the k
    temperatures, the cross-fitted metrics)."""

    fit: TemperatureFit
    before: Any  # relcal.metrics.Results
    after: Any
    cross: tuple[int, int, list[float], Any] | None = None


def measure_scaling(
    source: Callable[[], Iterable[Chunk]],
    *,
    kind: str,
    shape: tuple[int, ...],
    n_classes: int,
    ignore_index: int | None = None,
    class_names: Any = None,
    n_bins: int = 15,
    binning: str = "width",
    k: int | None = None,
    seed: int = 0,
    jobs: int | None = None,
) -> Scaling:
    """Fit T on the chunks of ``source()`` (:func:`fit_chunks`) and measure
    every metric before and after scaling by it, each a summary of streamed
    passes (:func:`relcal.metrics.summarize_chunks`) with the temperature
    applied chunk by chunk; with ``k``, the metrics of each fold scaled by
    the T fitted on the others."""
    from relcal.metrics import plan_for, summarize, summarize_chunks

    where = {"kind": kind, "ignore_index": ignore_index}
    fits = fit_chunks(source, shape=shape, k=k, seed=seed, jobs=jobs, **where)

    def measure(
        chunks: Callable[[], Iterable[Chunk]],
        skind: str,
        ignore: int | None,
        names: Any = None,
    ) -> Any:
        plan = plan_for(skind, n_classes, ignore, n_bins=n_bins)
        summary = summarize_chunks(
            chunks, plan, n_bins=n_bins, binning=binning, jobs=jobs
        )
        return summarize(
            summary, n_bins=n_bins, binning=binning, kind=skind, class_names=names
        )

    def scaled(temps: list[float], folds: int | None) -> Callable[[], Iterator[Chunk]]:
        return lambda: _scaled_chunks(source, kind, ignore_index, temps, folds, seed)

    before = measure(source, kind, ignore_index, class_names)
    after = measure(scaled([fits[0].temperature], None), "logits", ignore_index)
    cross = None
    if k is not None:
        temps = [f.temperature for f in fits[1:]]
        cross = (k, seed, temps, measure(scaled(temps, k), "logits", ignore_index))
    return Scaling(fits[0], before, after, cross)


def _scaled_chunks(
    source: Callable[[], Iterable[Chunk]],
    kind: str,
    ignore_index: int | None,
    temps: list[float],
    k: int | None,
    seed: int,
) -> Iterable[Chunk]:
    """The logits of each chunk, in its own layout (ignored pixels kept: the
    plan drops them), divided by T (by the T of each row's fold, given
    ``k``; a pixel's fold is that of its global index).  Pieces of files
    (:class:`relcal.stream.Pieces`) stay pieces, each scaled where it is read
    (a worker process)."""
    scale = partial(_scaled, kind=kind, temps=temps, k=k, seed=seed)
    chunks = source()
    if is_pieces(chunks):
        return chunks.mapped(scale)  # type: ignore[attr-defined, no-any-return]
    return (scale(s, y, start) for s, y, start in chunks)


def _scaled(
    s: np.ndarray,
    y: np.ndarray,
    start: int,
    first: int | None = None,
    *,
    kind: str,
    temps: list[float],
    k: int | None,
    seed: int,
) -> Chunk:
    z = _logits_layout(np.asarray(s), kind)
    if k is None:
        return scale_logits(z, temps[0]), y, start
    per_row = math.prod(z.shape[2:]) if z.ndim > 2 else 1
    base = start * per_row if first is None else first  # first: a part of an image
    ids = np.arange(base, base + len(z) * per_row, dtype=np.int64)
    fold = fold_of(ids, k, seed).reshape((len(z), *z.shape[2:]))
    return scale_folds(z, temps, fold), y, start


# --------------------------------------------------------------------------
# relcal calibrate: the calibrated arrays, chunk by chunk


def calibrated_rows(
    source: Callable[[], Iterable[Chunk]],
    *,
    kind: str,
    temperature: float,
    part: str,
    ignore_index: int | None = None,
) -> Iterator[np.ndarray]:
    """One array of :func:`calibrated_arrays`, for the kept rows of each
    chunk of ``source()`` in turn: ``part`` "logits" (scaled), or
    "calibrated_probs" (their softmax), or "labels"."""
    t = check_temperature(temperature)
    for s, y, start in source():
        advance(np.asarray(s).nbytes)
        if part == "labels":
            kept = np.asarray(y).reshape(-1)
            yield kept if ignore_index is None else kept[kept != ignore_index]
            continue
        rows = logit_rows(s, y, kind=kind, ignore_index=ignore_index, start=start)
        if len(rows):
            scaled = scale_logits(rows.z, t)
            if part == "logits":  # -inf as the lowest finite number
                yield np.maximum(scaled, np.finfo(scaled.dtype).min, out=scaled)
            else:
                yield softmax(scaled).astype(scaled.dtype)


def count_kept(source: Callable[[], Iterable[Chunk]], ignore_index: int | None) -> int:
    """Rows (pixels) of the chunks of ``source()`` whose label is not
    ``ignore_index``."""
    n = 0
    for s, y, _ in source():
        advance(np.asarray(s).nbytes)
        labels = np.asarray(y)
        kept = labels if ignore_index is None else labels != ignore_index
        n += labels.size if ignore_index is None else int(np.count_nonzero(kept))
    return n
