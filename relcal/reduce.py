"""One vectorised pass over the scores to what every metric needs.

:func:`reduce_scores` reads logits or probabilities once, chunk by chunk
(chunks of 4 MB of float64 work, so the temporaries stay in the L3 cache,
spread over two threads: numpy releases the GIL), and returns a :class:`Reduced`:

- per sample: top-label confidence, predicted class, label, correct, and,
  when asked, the NLL and the Brier term, and for binary problems the
  probability of class 1;
- class-wise bin accumulators (count, sum of p_c, sum of [y == c] per class
  and equal-width bin) that add up across chunks.

Layout: a chunk of segmentation scores is a (C, pixels) slab, reduced over
its first axis.  (N, C) scores with few classes are copied into the same
class-first layout chunk by chunk (numpy reduces a short last axis row by row,
~10x slower); with many classes a chunk stays (rows, C).

Numerics: on logits, ``exp(z - max)`` is taken in float64 (through
:mod:`relcal.kernel`: glibc's vector ``exp`` where it was built, else numpy's),
or in the input's float32 (float16 widened) when only top-label quantities
are asked for; probabilities stay in their dtype.  Every per-sample result and
every accumulator is float64.  When Brier or class-wise sums are asked for, once
the row sums ``s`` are known ``exp(z - m)`` is turned into probabilities in
place (times ``1/s``, ignored samples times 0), so those read them with no
further division or mask.  NLL is ``log(sum_j exp(z_j - m)) - (z_y - m)`` with
``m`` the row maximum (a log-softmax, never the log of a rounded probability).
For probabilities, NLL is ``-log(max(p_y, eps))`` with ``eps`` the machine
epsilon of the input dtype, as scikit-learn's ``log_loss``.  The Brier term
is ``sum_c (p_c - [y == c])^2``.  Two-class problems take a dedicated path on
the logit difference ``d = z_1 - z_0`` in float64 (no row-wise reductions).

Ties: the predicted class is the first maximal one (``argmax``).

Non-finite scores: NaN and +inf are errors.  A logit of -inf is a class of
probability 0 (a masked class) and is allowed, except for the true class,
whose NLL would be infinite.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np

from relcal import kernel
from relcal.binning import BinTable, assign_bins
from relcal.errors import InputError
from relcal.validate import MAX_SUM_TOLERANCE, nonfinite_error

_T = TypeVar("_T")

CHUNK_BYTES = 1 << 22  # 4 MB of float64 work per chunk (see _chunk_elements)
# (N, C) scores with at most this many classes are reduced class axis first
# (measured: 10x faster at C = 10, even at C = 64, slower from C = 128)
TRANSPOSE_MAX_CLASSES = 64
# class-wise accumulators hold n_classes x n_bins cells (3 arrays, per thread)
MAX_CLASSWISE_CELLS = 1 << 24


_jobs: int | None = None


def set_jobs(jobs: int | None) -> None:
    """Set the number of worker threads for this process (``None``: every core
    this process may use).  The CLI's ``--jobs``."""
    global _jobs
    _jobs = None if jobs is None else max(1, int(jobs))


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    return _jobs if _jobs is not None else available_cores()


@dataclass(frozen=True)
class ClasswiseBins:
    """Per-class equal-width bin accumulators, arrays of shape (n_classes, n_bins).

    For class c and bin b: ``count`` samples had ``p_c`` in the bin, ``sum_p`` is
    the sum of those ``p_c``, and ``sum_y`` how many of them had label c.
    """

    edges: np.ndarray
    count: np.ndarray
    sum_p: np.ndarray
    sum_y: np.ndarray

    def table(self, c: int) -> BinTable:
        return BinTable(self.edges, self.count[c], self.sum_y[c], self.sum_p[c])

    def merge(self, other: ClasswiseBins) -> ClasswiseBins:
        return ClasswiseBins(
            self.edges,
            self.count + other.count,
            self.sum_p + other.sum_p,
            self.sum_y + other.sum_y,
        )


@dataclass(frozen=True)
class Totals:
    """Sums over the kept samples (what the means need, without per-sample arrays)."""

    n: int
    sum_confidence: float
    n_correct: int
    sum_nll: float | None
    sum_brier: float | None


@dataclass(frozen=True)
class Reduced:
    """What one pass over the scores leaves behind (ignored samples removed).

    With ``per_sample=False`` the per-sample arrays are None and ``totals`` and
    ``table`` carry what the metrics need."""

    n_classes: int
    confidence: np.ndarray | None  # (n,) float64, top-label probability
    correct: np.ndarray | None  # (n,) bool, first maximal class == label
    labels: np.ndarray | None  # (n,) int64
    nll: np.ndarray | None  # (n,) float64
    brier: np.ndarray | None  # (n,) float64
    positive: np.ndarray | None  # (n,) float64, P(class 1) for binary problems
    classwise: ClasswiseBins | None
    table: BinTable | None = None  # top-label bins, when edges were given
    totals: Totals | None = None  # when the per-sample arrays were not kept

    @property
    def n(self) -> int:
        if self.labels is None:
            assert self.totals is not None
            return self.totals.n
        return len(self.labels)


def reduce_toplabel(
    confidence: np.ndarray,
    predicted: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
) -> Reduced:
    """The reduction of top-label-only data (no full class scores)."""
    conf = np.asarray(confidence, dtype=np.float64)
    bad = ~np.isfinite(conf)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"confidence: {int(bad.sum())} values are NaN or infinite"
            f" (first: {conf[first]} at row {first})"
        )
    out = (conf < 0) | (conf > 1)
    if out.any():
        first = int(np.flatnonzero(out)[0])
        raise InputError(
            f"confidence: {int(out.sum())} values outside [0, 1]"
            f" (first: {conf[first]:.6g} at row {first})"
        )
    labels = np.asarray(labels, dtype=np.int64)
    return Reduced(
        n_classes=n_classes,
        confidence=conf,
        correct=np.asarray(predicted, dtype=np.int64) == labels,
        labels=labels,
        nll=None,
        brier=None,
        positive=None,
        classwise=None,
    )


def reduce_scores(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    kind: str,
    n_classes: int,
    ignore_index: int | None = None,
    classwise_edges: np.ndarray | None = None,
    brier: bool = True,
    nll: bool = True,
    toplabel_edges: np.ndarray | None = None,
    threads: int | None = None,
    per_sample: bool = True,
) -> Reduced:
    """One pass over ``scores`` (validated labels assumed; finiteness checked here).

    Parameters
    ----------
    scores : ndarray of shape (N,), (N, C) or (N, C, *spatial)
        Logits or probabilities, class axis 1.  One-dimensional scores are the
        positive-class logit or probability of a binary problem.
    labels : ndarray of int64, shape (N,) or (N, *spatial)
        Class indices; entries equal to ``ignore_index`` are dropped.
    kind : {"logits", "probs"}
    n_classes : int
    ignore_index : int, optional
    classwise_edges : ndarray, optional
        Equal-width edges for the class-wise accumulators; None skips them.
    brier : bool, default=True
        Whether to compute the per-sample Brier term (one extra pass).
    nll : bool, default=True
        Whether to compute the per-sample NLL.  For C > 2 logits this selects
        float64 ``exp(z - m)`` (NLL exact to ~1e-12); without it the softmax is
        computed in float32 with float64 sums, which is faster and enough for
        confidences (relative error ~1e-7).
    toplabel_edges : ndarray, optional
        Fixed edges (equal-width) for the top-label bin table, accumulated chunk
        by chunk in the pass itself; None leaves the table to the caller.
    threads : int, optional
        Worker threads (default: up to 2).
    per_sample : bool, default=True
        Whether to keep the per-sample arrays.  False (with ``toplabel_edges``,
        more than two classes) keeps only :class:`Totals` and the bin sums,
        which is all the metrics need, without writing ~33 bytes per sample.
    """
    threads = None if threads is None else max(1, int(threads))
    if classwise_edges is not None:
        check_classwise_size(n_classes, len(classwise_edges) - 1)
    valid = None
    if ignore_index is not None:
        mask = labels != ignore_index
        if not mask.all():
            valid = mask
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1 or scores.shape[1] == 2 and scores.ndim == 2:
        if valid is not None:
            valid = valid.ravel()
        return _reduce_binary(
            scores,
            labels.ravel(),
            valid,
            kind,
            classwise_edges,
            brier,
            threads,
            toplabel_edges,
        )
    return _reduce_multiclass(
        scores,
        labels,
        valid,
        kind,
        n_classes,
        classwise_edges,
        brier,
        nll,
        threads,
        toplabel_edges,
        per_sample or toplabel_edges is None,
    )


def check_classwise_size(n_classes: int, n_bins: int) -> None:
    """Refuse class-wise accumulators too large to hold (classes x bins, per
    worker thread) before any memory is taken."""
    if n_classes * n_bins > MAX_CLASSWISE_CELLS:
        raise InputError(
            f"class-wise bins: {n_classes} classes x {n_bins} bins is more than"
            f" {MAX_CLASSWISE_CELLS:,} bins in all; use fewer bins (n_bins=)"
        )


# --------------------------------------------------------------------------
# chunked execution


_local = threading.local()


def scratch(shape: tuple[int, ...], dtype: np.dtype, slot: str = "t") -> np.ndarray:
    """A per-thread work buffer (no page faults from a fresh allocation per
    chunk, which would also serialise the threads on the kernel's mm lock).
    ``slot`` names buffers that are alive at the same time."""
    size = math.prod(shape)
    key = f"buf_{slot}_{dtype.str}"
    buf = getattr(_local, key, None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, CHUNK_BYTES // dtype.itemsize), dtype=dtype)
        setattr(_local, key, buf)
    return buf[:size].reshape(shape)


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads, started on first use.

    Kept between calls so that its threads' scratch buffers (up to ~30 MB each)
    are reused rather than faulted in afresh, which on a virtual machine can
    cost more than the work.  Tasks must not wait on other tasks of the pool.
    A forked child starts without it."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != workers:
            if _pool is not None:
                _pool[1].shutdown(wait=False)
            _pool = (workers, ThreadPoolExecutor(workers, "relcal"))
        return _pool[1]


def _forget_pool() -> None:
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


class _NonFinite(Exception):
    """Raised inside a chunk; turned into a located InputError by :func:`_run`."""


def _run(
    tasks: Sequence[Callable[[], _T]],
    threads: int | None,
    scores: np.ndarray,
    labels: np.ndarray,
) -> list[_T]:
    try:
        if len(tasks) <= 1:  # small input: no pool (and no os.cpu_count() call)
            return [t() for t in tasks]
        if threads is None:
            threads = default_threads()
        if threads <= 1:
            return [t() for t in tasks]
        pool = shared_pool(threads)
        futures = [pool.submit(t) for t in tasks]
        return [f.result() for f in futures]
    except _NonFinite:
        raise nonfinite_error(scores, labels) from None


# --------------------------------------------------------------------------
# two classes


def _reduce_binary(
    scores: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray | None,
    kind: str,
    classwise_edges: np.ndarray | None,
    brier: bool,
    threads: int | None,
    toplabel_edges: np.ndarray | None,
) -> Reduced:
    """Two classes: work on the logit difference d = z1 - z0 (or on p1, p0) in
    float64, with every per-bin sum accumulated chunk by chunk."""
    n = scores.shape[0]
    conf = np.empty(n, dtype=np.float64)
    pos = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=bool)
    nll = np.empty(n, dtype=np.float64)
    brier_terms = np.empty(n, dtype=np.float64) if brier else None
    eps = float(np.finfo(scores.dtype).eps)

    def work(lo: int, hi: int) -> tuple[Any, Any, Any]:
        y1 = labels[lo:hi] == 1
        v = None if valid is None else valid[lo:hi]
        if kind == "logits":
            if scores.ndim == 1:
                d = scores[lo:hi].astype(np.float64)
            else:
                d = scores[lo:hi, 1].astype(np.float64)
                with np.errstate(over="ignore", invalid="ignore"):  # checked next
                    d -= scores[lo:hi, 0]
            if not np.isfinite(d).all() and _bad_binary_logits(scores[lo:hi]):
                raise _NonFinite
            a = np.abs(d)
            q = kernel.exp(np.negative(a))
            c = 1.0 / (1.0 + q)
            up = d > 0
            right = up == y1
            p1 = np.where(up, c, q * c)
            p0 = 1.0 - p1
            nl = np.log1p(q)
            nl += np.where(right, 0.0, a)
        else:
            if scores.ndim == 1:
                p1 = scores[lo:hi].astype(np.float64)
                p0 = 1.0 - p1
            else:
                p0 = scores[lo:hi, 0].astype(np.float64)
                p1 = scores[lo:hi, 1].astype(np.float64)
            if not (np.isfinite(p0).all() and np.isfinite(p1).all()):
                raise _NonFinite
            up = p1 > p0
            right = up == y1
            c = np.maximum(p0, p1)
            nl = -np.log(np.maximum(np.where(y1, p1, p0), eps))
        if not np.isfinite(nl).all():
            # -inf at the true class: probability 0 (ignored samples aside)
            if v is None or (~np.isfinite(nl) & v).any():
                raise _NonFinite
        conf[lo:hi] = c
        pos[lo:hi] = p1
        correct[lo:hi] = right
        nll[lo:hi] = nl
        if brier_terms is not None:
            r1 = p1 - y1
            r0 = p0 - ~y1
            brier_terms[lo:hi] = r1 * r1 + r0 * r0
        top = cls = None
        if v is not None:
            c, right, p0, p1, y1 = c[v], right[v], p0[v], p1[v], y1[v]
        if toplabel_edges is not None:
            top = _bin_sums(c, right, toplabel_edges)
        if classwise_edges is not None:
            cls = (
                _bin_sums(p0, ~y1, classwise_edges),
                _bin_sums(p1, y1, classwise_edges),
            )
        return top, cls, None

    step = max(1, CHUNK_BYTES // 64)
    tasks = [partial(work, lo, min(lo + step, n)) for lo in range(0, n, step)]
    parts = _run(tasks, threads, scores, labels)

    y = labels
    if valid is not None:
        conf, pos, correct, nll, y = (a[valid] for a in (conf, pos, correct, nll, y))
        if brier_terms is not None:
            brier_terms = brier_terms[valid]
    classwise = table = None
    if classwise_edges is not None:
        c0 = _add_parts([part[1][0] for part in parts])
        c1 = _add_parts([part[1][1] for part in parts])
        classwise = ClasswiseBins(
            classwise_edges,
            np.stack([c0[0], c1[0]]),
            np.stack([c0[1], c1[1]]),
            np.stack([c0[2], c1[2]]),
        )
    if toplabel_edges is not None:
        sums = _add_parts([part[0] for part in parts])
        table = BinTable(toplabel_edges, sums[0], sums[2], sums[1])
    return Reduced(2, conf, correct, y, nll, brier_terms, pos, classwise, table)


def _bad_binary_logits(z: np.ndarray) -> bool:
    """NaN or +inf among binary logits (-inf, probability 0, is allowed)."""
    return bool(np.isnan(z).any() or np.isposinf(z).any())


# --------------------------------------------------------------------------
# C classes, (N, C) or (N, C, *spatial)


def _chunks(
    shape: tuple[int, ...], elements: int
) -> Iterator[tuple[tuple[int | slice, ...], int, int]]:
    """Chunks of a (N, C) array (row blocks) or of a (N, C, P) array (blocks of
    one image's pixels, the class axis first), with the flat sample range of each."""
    if len(shape) == 2:
        n, c = shape
        rows = max(1, elements // c)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            yield (slice(lo, hi),), lo, hi
    else:
        n, c, p = shape
        cols = max(1, elements // c)
        for i in range(n):
            for lo in range(0, p, cols):
                hi = min(lo + cols, p)
                yield (i, slice(None), slice(lo, hi)), i * p + lo, i * p + hi


def _reduce_multiclass(
    scores: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray | None,
    kind: str,
    n_classes: int,
    classwise_edges: np.ndarray | None,
    brier: bool,
    want_nll: bool,
    threads: int | None,
    toplabel_edges: np.ndarray | None,
    per_sample: bool,
) -> Reduced:
    n = scores.shape[0]
    if scores.ndim > 2:
        p_pix = int(np.prod(scores.shape[2:]))
        z_all = scores.reshape(n, n_classes, p_pix)
        y_flat = labels.reshape(-1)
        axis = 0  # a chunk is (C, pixels)
    elif n_classes <= TRANSPOSE_MAX_CLASSES:
        # Few classes: reductions along a short last axis cost a call per row
        # (max, argmax and sum over 10 classes are ~10x slower per element
        # than over the class axis of a (C, rows) slab).  Each (rows, C) chunk
        # is copied transposed into a scratch buffer and goes the (C, pixels)
        # way of segmentation.
        z_all, y_flat = scores, labels
        axis = 0
    else:
        z_all, y_flat = scores, labels
        axis = 1  # a chunk is (rows, C)
    transpose = scores.ndim == 2 and axis == 0
    v_flat = None if valid is None else valid.reshape(-1)
    total = labels.size
    # logits: exp(z - m) in float64, so the NLL matches a float64 log-softmax to
    # ~1e-12 (float32 exp and sums drift by 1e-8 over 1000 classes); in the
    # input's float32 only when just top-label quantities are asked for.
    in_dtype = np.dtype(np.float32 if scores.dtype.itemsize < 4 else scores.dtype)
    if kind == "logits":
        top_only = not (want_nll or brier or classwise_edges is not None)
        work_dtype = in_dtype if top_only else np.dtype(np.float64)
    else:
        work_dtype = in_dtype
    chunks = list(_chunks(z_all.shape, _chunk_elements(work_dtype)))
    # ignored samples are dropped chunk by chunk: each chunk writes its kept
    # samples at its own offset, so no serial pass filters the outputs after
    if v_flat is None or not per_sample:  # (offsets only place per-sample outputs)
        offsets = [lo for _, lo, _ in chunks]
        n_keep = total
    else:
        kept = np.add.reduceat(v_flat, [lo for _, lo, _ in chunks], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(kept)[:-1]]).tolist()
        n_keep = int(kept.sum())
    conf = correct = y_out = nll = brier_terms = None
    if per_sample:
        conf = np.empty(n_keep, dtype=np.float64)
        correct = np.empty(n_keep, dtype=bool)
        y_out = y_flat if v_flat is None else np.empty(n_keep, dtype=y_flat.dtype)
        nll = np.empty(n_keep, dtype=np.float64) if want_nll else None
        brier_terms = np.empty(n_keep, dtype=np.float64) if brier else None
    eps = float(np.finfo(in_dtype).eps)
    n_bins = 0 if classwise_edges is None else len(classwise_edges) - 1
    # select p > edges[1] slightly generously; the exact rule is applied after
    threshold = (
        0.0 if classwise_edges is None else float(classwise_edges[1]) * (1 - 1e-6)
    )
    need_py = brier or want_nll
    # a tie for the maximum needs a top probability of at most 1/2: exactly, for
    # logits (two entries exp(0) = 1); for probabilities, whose rows sum to 1
    # within validate.sum_tolerance, at most (1 + MAX_SUM_TOLERANCE) / 2
    tie_max = 0.5 if kind == "logits" else 0.5 * (1 + 2 * MAX_SUM_TOLERANCE)

    def work(
        sl: tuple[int | slice, ...], lo: int, hi: int, off: int
    ) -> tuple[Any, Any, Any]:
        z = z_all[sl]
        if transpose:
            zt = scratch(z.shape[::-1], in_dtype, "z")
            np.copyto(zt, z.T)  # float16 is widened here too
            z = zt
        y = y_flat[lo:hi]
        v = None if v_flat is None else v_flat[lo:hi]
        if z.dtype != in_dtype:
            z = z.astype(in_dtype)
        ysafe = y if v is None else np.where(v, y, 0)
        ar = np.arange(hi - lo)
        m = np.max(z, axis=axis, keepdims=True)
        if not np.isfinite(m).all():  # NaN or +inf somewhere (or a row of -inf)
            raise _NonFinite
        # the true class's entry: one flat index serves every contiguous slab
        flat_y = ar * n_classes + ysafe if axis == 1 else ysafe * (hi - lo) + ar
        m1 = m.reshape(-1)
        shifted = None  # z_y − m (logits)
        hit: np.ndarray  # whether the label's entry is a maximum
        s: np.ndarray | None  # row sums of exp(z − m) (logits)
        if kind == "logits":
            t = scratch(z.shape, work_dtype)
            # z − m may overflow to -inf (z near -1e308, m near 1e308): a -inf
            # at the label is refused below, elsewhere it is probability 0
            with np.errstate(over="ignore"):
                if z.dtype == work_dtype:
                    np.subtract(z, m, out=t)
                else:  # widen first: faster than a mixed-dtype subtract
                    np.copyto(t, z)
                    np.subtract(t, m.astype(work_dtype), out=t)
            # z_y − m, exact (0 exactly when z_y is a maximum), before the exp
            shifted = np.take(t.reshape(-1), flat_y)
            if np.isneginf(shifted).any():
                # -inf at the true class: probability 0, infinite NLL (an
                # ignored sample's stand-in label 0 may be a masked class)
                if v is None or (np.isneginf(shifted) & v).any():
                    raise _NonFinite
            hit = shifted == 0
            # exp(z - m), never exp(z) with exp(m) divided out: the top entry is
            # exactly 1, so p_top = 1/s is the correctly rounded softmax maximum
            # (exactly 1.0 where the others are below 2^-53 of it, as in torch
            # and numpy); exp(m) / sum(exp(z)) moves such confidences by an ulp,
            # and with them the count of confidences == 1.0 that bin rules
            # disagree on (tests/test_reduce_paths.py, test_references.py)
            kernel.exp(t)  # libmvec's AVX2 exp where built, else numpy's
            if transpose:
                s = np.asarray(np.sum(t, axis=0, dtype=np.float64))
            else:
                s = np.asarray(np.sum(t, axis=axis), dtype=np.float64)
            p_top = scale = np.reciprocal(s)
        else:
            if z.flags.c_contiguous:
                zy = np.take(z.reshape(-1), flat_y)
            else:
                zy = z[ar, ysafe] if axis == 1 else z[ysafe, ar]
            hit = zy == m1
            t = z
            s = None
            p_top = m1.astype(np.float64)
        if axis == 1:
            # the label is first maximal if its entry is a maximum, unless a
            # tie (possible only when p_top <= 1/2) puts an earlier class first
            right = hit
            maybe = np.flatnonzero(hit & (p_top <= tie_max))
            if len(maybe):
                right[maybe] = np.argmax(z[maybe], axis=1) == ysafe[maybe]
        else:
            top = 1.0 if s is not None else m1  # the entries of t at a maximum
            right = _correct_slab(z, t, top, hit, ysafe, p_top <= tie_max)
        if s is not None and (brier or classwise_edges is not None):
            # probabilities in place, ignored samples zeroed: nothing below
            # divides by s or masks them again
            w = scale if v is None else np.where(v, scale, 0.0)
            t *= w[:, None] if axis == 1 else w
        nl = py = None
        if need_py:
            if kind == "logits":
                assert s is not None and shifted is not None
                shifted = shifted.astype(np.float64, copy=False)
                if per_sample:  # else only its sum, from the kept samples below
                    nl = np.log(s) - shifted
                if brier:  # exp(shifted) / s is already in t (same float64 inputs)
                    py = np.take(t.reshape(-1), flat_y)
            else:
                py = zy.astype(np.float64)
                nl = -np.log(np.maximum(py, eps))
        sq = sq_total = None
        if brier:
            assert py is not None
            if per_sample or s is None:
                sub = "ij,ij->i" if axis == 1 else "ij,ij->j"
                # squares summed in float64 even for float32 probabilities
                sq = np.einsum(sub, t, t, dtype=np.float64)
                sq += 1.0 - 2.0 * py
            else:  # only the sum over kept samples (the others are 0 in t)
                sq_total = _sum_squares(t)
        # per-sample outputs (or their sums), ignored samples left out; the
        # kept samples' places are not needed for sums over logits
        gather = per_sample or s is None
        kept = None if v is None or not gather else np.flatnonzero(v)
        totals = ignored = None
        if per_sample:
            assert conf is not None and correct is not None and y_out is not None
            out = slice(off, off + (hi - lo if kept is None else len(kept)))

            def put(dst: np.ndarray, a: np.ndarray) -> None:
                # one index of the kept samples serves every output (a boolean
                # mask would be re-scanned per array), gathered into place
                if kept is None:
                    dst[out] = a
                else:
                    np.take(a, kept, out=dst[out])

            put(conf, p_top)
            put(correct, right)
            p_top, right = conf[out], correct[out]  # ignored samples dropped
            if kept is not None:
                put(y_out, y)
            y_kept = y_out[out]
            label_count = np.bincount(y_kept, minlength=n_classes)
            if nll is not None:
                assert nl is not None
                put(nll, nl)
            if brier_terms is not None:
                assert sq is not None
                put(brier_terms, sq)
        elif s is not None:
            # logits: sums over the kept samples without gathering them (the
            # ignored ones masked: their p_y is already 0, their s counts as 1)
            n_kept = hi - lo if v is None else int(np.count_nonzero(v))
            label_count = np.bincount(ysafe, minlength=n_classes)
            label_count[0] -= hi - lo - n_kept  # the ignored samples' stand-in
            if sq_total is not None:
                assert py is not None
                sq_total += n_kept - 2.0 * float(py.sum())
            nll_sum = None
            if want_nll:
                assert shifted is not None
                s_k = s if v is None else np.where(v, s, 1.0)
                d_k = shifted if v is None else np.where(v, shifted, 0.0)
                with np.errstate(over="ignore"):  # inf: summarize refuses it
                    nll_sum = _sum_log(s_k, n_classes) - float(d_k.sum())
            totals = (
                n_kept,
                float((p_top if v is None else np.where(v, p_top, 0.0)).sum()),
                int(np.count_nonzero(right if v is None else right & v)),
                nll_sum,
                sq_total,
            )
            if v is not None:
                ignored = ~v  # into the top-label table's dropped bin
        else:
            y_kept = y
            if kept is not None:
                p_top, right, y_kept = p_top[kept], right[kept], y[kept]
                nl = None if nl is None else nl[kept]
                sq = None if sq is None else sq[kept]
            assert nl is not None or not want_nll
            label_count = np.bincount(y_kept, minlength=n_classes)
            totals = (
                len(p_top),
                float(p_top.sum()),
                int(np.count_nonzero(right)),
                None if nl is None else float(nl.sum()),
                None if sq is None else float(sq.sum()),
            )
        top = None
        if toplabel_edges is not None:
            top = _bin_sums(p_top, right, toplabel_edges, ignored)
        if classwise_edges is None:
            return top, None, totals
        return (
            top,
            _classwise_chunk(
                t,
                axis,
                ysafe,
                flat_y,
                py if s is not None else None,
                v,
                s is not None,
                label_count,
                threshold,
                classwise_edges,
                n_classes,
                n_bins,
            ),
            totals,
        )

    tasks = [
        partial(work, sl, lo, hi, off)
        for (sl, lo, hi), off in zip(chunks, offsets, strict=True)
    ]
    parts = _run(tasks, threads, scores, labels)

    classwise = None
    if classwise_edges is not None:
        sums = _add_parts([part[1] for part in parts])
        classwise = ClasswiseBins(classwise_edges, *sums)
    table = None
    if toplabel_edges is not None:
        sums = _add_parts([part[0] for part in parts])
        table = BinTable(toplabel_edges, sums[0], sums[2], sums[1])
    totals = None
    if not per_sample:
        chunk_totals = [part[2] for part in parts]
        nlls = [t[3] for t in chunk_totals]
        briers = [t[4] for t in chunk_totals]
        totals = Totals(
            n=sum(t[0] for t in chunk_totals),
            sum_confidence=_fsum([t[1] for t in chunk_totals]),
            n_correct=sum(t[2] for t in chunk_totals),
            sum_nll=None if None in nlls else _fsum(nlls),
            sum_brier=None if None in briers else _fsum(briers),
        )
    return Reduced(
        n_classes,
        conf,
        correct,
        y_out,
        nll,
        brier_terms,
        None,
        classwise,
        table,
        totals,
    )


def _sum_log(s: np.ndarray, n_classes: int) -> float:
    """``np.log(s).sum()`` for row sums ``1 <= s <= n_classes``, as the logs of
    products of blocks of s (small enough not to overflow): one log per block,
    each product good to ~1e-14 relative."""
    block = max(1, int(700 // math.log(max(n_classes, 2))))
    rows = len(s) // block
    whole = rows * block
    # products down the columns of a (block, rows) view: one SIMD multiply per
    # row, 2x faster than products along short rows
    products = np.multiply.reduce(s[:whole].reshape(block, rows), axis=0)
    return float(np.log(products).sum()) + float(np.log(np.prod(s[whole:])))


def _chunk_elements(dtype: np.dtype) -> int:
    """Elements per chunk: fewer, larger chunks cost less Python (and GIL) time per
    byte; measured best on 2 cores at 2 MB of float64 or 4 MB of float32 work."""
    return CHUNK_BYTES // 8 if dtype.itemsize >= 8 else CHUNK_BYTES // 2


def _fsum(values: Sequence[float]) -> float:
    """``math.fsum``, or inf where its partial sums overflow (chunk sums of
    logits near 1e308); the caller refuses an infinite metric."""
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf


def _add_parts(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Sum per-chunk accumulators (count, sum of p, sum of correct)."""
    first = parts[0]
    out = tuple(a.copy() for a in first)
    for part in parts[1:]:
        for acc, a in zip(out, part, strict=True):
            acc += a
    return out


def _bin_sums(
    conf: np.ndarray,
    correct: np.ndarray,
    edges: np.ndarray,
    ignored: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-label (count, sum of confidence, correct) per bin of one chunk; the
    samples marked in ``ignored`` go to an extra bin that is dropped."""
    n_bins = len(edges) - 1
    idx = assign_bins(conf, edges)
    if ignored is not None:
        idx[ignored] = n_bins
    # count and correct from one integer bincount over (bin, correct) pairs
    # float64 also for a chunk with no sample (every one ignored): an empty
    # bincount is int64 whatever the weights
    sum_conf = np.bincount(idx, weights=conf, minlength=n_bins + 1)[:n_bins]
    sum_conf = sum_conf.astype(np.float64, copy=False)
    idx *= 2
    idx += correct
    pairs = np.bincount(idx, minlength=2 * n_bins + 2)[: 2 * n_bins]
    hits = pairs[1::2]
    return pairs[0::2] + hits, sum_conf, hits.astype(np.float64)


def _correct_slab(
    z: np.ndarray,
    t: np.ndarray,
    top: float | np.ndarray,
    hit: np.ndarray,
    y: np.ndarray,
    may_tie: np.ndarray,
) -> np.ndarray:
    """Whether the first maximal class is the label, for a (C, pixels) slab,
    given ``hit``: whether the label's entry is a maximum (overwritten).

    numpy's argmax along a non-last axis transposes the slab, so the label is
    tested directly.  A tie for the maximum means two entries of ``t`` equal to
    ``top`` (``exp(0) = 1`` for logits, the maximum itself for probabilities),
    possible only where ``may_tie`` (a top probability of at most about 1/2):
    only those pixels are counted, and only the ones with two such entries are
    looked at class by class.
    """
    maybe = np.flatnonzero(hit & may_tie)
    if len(maybe):
        at_top = np.take(t, maybe, axis=1) == (
            top if isinstance(top, float) else top[maybe]
        )
        maybe = maybe[np.count_nonzero(at_top, axis=0) > 1]
    if len(maybe):
        first = np.argmax(z[:, maybe], axis=0)
        hit[maybe] = first == y[maybe]
    return hit


def _sum_squares(t: np.ndarray) -> float:
    """Sum of the squares of a contiguous float64 array, as dot products of 8192
    elements (2.5x faster than einsum; OpenBLAS threads longer ones itself)."""
    flat = t.reshape(-1)
    whole = flat.size - flat.size % 8192
    rows = flat[:whole].reshape(-1, 8192)
    rest = flat[whole:]
    return float(np.vecdot(rows, rows).sum()) + float(np.vecdot(rest, rest))


def _classwise_chunk(
    t: np.ndarray,
    axis: int,
    y: np.ndarray,
    flat_y: np.ndarray,
    py: np.ndarray | None,
    v: np.ndarray | None,
    zeroed: bool,
    label_count: np.ndarray,
    threshold: float,
    edges: np.ndarray,
    n_classes: int,
    n_bins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-wise bin sums of one chunk.

    ``t`` is (rows, C) (axis 1) or (C, pixels) (axis 0) probabilities; with
    ``zeroed``, the ignored samples' entries are all 0 (else ``v`` masks them).
    Most class probabilities fall in the first bin (at most ``n_bins - 1`` per
    sample can exceed ``edges[1]``), so only those above it are binned one by
    one; the first bin is the class total minus the rest.  The label's own
    entries above it are binned once more, for the hits.  ``y`` has a label
    for every sample of the chunk (0 for the ignored ones), ``flat_y`` the flat
    index of its entry in ``t`` and ``py`` its value (None: gathered here);
    ``label_count`` the kept samples per label.
    """
    sample_axis = 1 - axis
    masked = v is not None and not zeroed and not v.all()
    n_valid = int(label_count.sum())
    # class totals of p, in float64
    col_sum = np.asarray(np.sum(t, axis=sample_axis, dtype=np.float64))
    high = t > threshold  # a 0 (an ignored sample's) is never above it
    if masked:
        assert v is not None
        dropped = t[~v] if axis == 1 else t[:, ~v]
        col_sum -= np.sum(dropped, axis=sample_axis, dtype=np.float64)
        high &= v[:, None] if axis == 1 else v
    flat = np.flatnonzero(high)
    contiguous = t.flags.c_contiguous
    if axis == 0 and contiguous:
        # flat = cls * width + sample, sorted by class: the class enters the
        # key slice by slice, and no sample index is needed
        starts = np.searchsorted(flat, np.arange(n_classes + 1) * t.shape[1])
        vals = t.reshape(-1)[flat].astype(np.float64, copy=False)
        key = assign_bins(vals, edges)
        for c in range(1, n_classes):
            key[starts[c] : starts[c + 1]] += c * n_bins
    else:
        if axis == 1:
            sample, cls = np.divmod(flat, n_classes)
        else:
            width = t.shape[1]
            starts = np.searchsorted(flat, np.arange(n_classes + 1) * width)
            cls = np.repeat(np.arange(n_classes), np.diff(starts))
            sample = flat - cls * width
        vals = (
            t.reshape(-1)[flat]
            if contiguous
            else t[(sample, cls) if axis == 1 else (cls, sample)]
        )
        vals = vals.astype(np.float64, copy=False)
        key = cls * n_bins + assign_bins(vals, edges)
    size = n_classes * n_bins
    # float64 even when no entry is above the threshold: bincount of an empty
    # key is int64 whatever the weights, and would truncate the class totals
    sum_p = np.bincount(key, weights=vals, minlength=size).astype(np.float64)
    sum_p = sum_p.reshape(n_classes, n_bins)
    count = np.bincount(key, minlength=size).reshape(n_classes, n_bins)
    # hits: the label's entries among those above the threshold (the same
    # values, compared and binned the same way)
    if py is None:
        if contiguous:
            py = t.reshape(-1)[flat_y]
        else:
            ar = np.arange(y.size)
            py = t[ar, y] if axis == 1 else t[y, ar]
    at_y = py > threshold
    if masked:
        assert v is not None
        at_y &= v
    sel = np.flatnonzero(at_y)
    hit_key = y[sel] * n_bins + assign_bins(py[sel].astype(np.float64), edges)
    sum_y = np.bincount(hit_key, minlength=size).reshape(n_classes, n_bins)
    sum_y = sum_y.astype(np.float64)
    count[:, 0] = n_valid - count[:, 1:].sum(axis=1)
    sum_p[:, 0] = col_sum - sum_p[:, 1:].sum(axis=1)
    sum_y[:, 0] = label_count - sum_y[:, 1:].sum(axis=1)
    return count, sum_p, sum_y
