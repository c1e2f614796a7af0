"""The numerics of the reduction: one block of scores to a :class:`Summary`.

:mod:`relcal.summary` cuts chunks into blocks (:func:`blocks`) of about 4 MB
of float64 work, so the temporaries stay in the L3 cache, runs them on a pool
of threads (numpy releases the GIL) and merges their summaries in order.  A
block is reduced in a few named steps: the softmax's top entry
(:func:`_softmax_top`), whether the first maximal class is the label
(:func:`_first_maximal`), the true class's probability and the NLL and Brier
terms, then the sums of the kept samples (:func:`_masked_sums` for logits,
:func:`_kept_sums` otherwise) and the class-wise bins (:func:`_classwise_chunk`).

Layout: a block of segmentation scores is a (C, pixels) slab, reduced over
its first axis.  (N, C) scores with few classes are copied into the same
class-first layout block by block (numpy reduces a short last axis row by row,
~10x slower); with many classes a block stays (rows, C).

Numerics: on logits, ``exp(z - max)`` is taken in float64 (through
:mod:`relcal.kernel`: glibc's vector ``exp`` where it was built, else numpy's),
or, without the kernel and when only top-label quantities are asked for, in
the input's float32 (float16 widened), its row sums then taken in float64;
probabilities stay in their dtype.  Every per-sample result and every
accumulator is float64.  When Brier or class-wise sums are asked for, once the
row sums ``s`` are known
``exp(z - m)`` is turned into probabilities in place (times ``1/s``, ignored
samples times 0), so those read them with no further division or mask.  NLL is
``log(sum_j exp(z_j - m)) - (z_y - m)`` with ``m`` the row maximum (a
log-softmax, never the log of a rounded probability).  For probabilities, NLL
is ``-log(max(p_y, eps))`` with ``eps`` the machine epsilon of the input
dtype, as scikit-learn's ``log_loss``.  The Brier term is ``sum_c (p_c - [y ==
c])^2``.  Two-class problems take a dedicated path on the logit difference
``d = z_1 - z_0`` in float64 (no row-wise reductions).

Ties: the predicted class is the first maximal one (``argmax``).

Non-finite scores: NaN and +inf are errors.  A logit of -inf is a class of
probability 0 (a masked class) and is allowed, except for the true class,
whose NLL would be infinite.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from relcal import forked, kernel
from relcal import summary as sm
from relcal.binning import BinTable, assign_bins
from relcal.errors import InputError
from relcal.validate import MAX_SUM_TOLERANCE, nonfinite_error

CHUNK_BYTES = 1 << 23  # 8 MB of float64 work per block (see _chunk_elements)
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


def check_classwise_size(n_classes: int, n_bins: int) -> None:
    """Refuse class-wise accumulators too large to hold (classes x bins, per
    worker thread) before any memory is taken."""
    if n_classes * n_bins > MAX_CLASSWISE_CELLS:
        raise InputError(
            f"class-wise bins: {n_classes} classes x {n_bins} bins is more than"
            f" {MAX_CLASSWISE_CELLS:,} bins in all; use fewer bins (n_bins=)"
        )


# --------------------------------------------------------------------------
# threads and their buffers


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


def stop_pool() -> None:
    """Stop the shared pool's threads (they are idle between calls), before
    a fork: the next threaded call starts a new pool."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool[1].shutdown(wait=True)
            _pool = None


def _forget_pool() -> None:
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def __getattr__(name: str) -> object:
    """``Reduced``: the old name of the per-sample output (bootstrap, gate)."""
    if name == "Reduced":
        return sm.SampleValues
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _NonFinite(Exception):
    """Raised inside a block; turned into a located InputError by :func:`_located`."""


# --------------------------------------------------------------------------
# blocks of a chunk


@dataclass(frozen=True, eq=False)
class BlockOut:
    """What a block leaves: its summary, its samples (when asked), its bytes."""

    summary: sm.Summary
    samples: sm.SampleValues | None
    nbytes: int


Task = Callable[[], BlockOut]


def blocks(
    scores: np.ndarray, labels: np.ndarray, plan: sm.Plan, start: int = 0
) -> list[Task]:
    """The blocks of one chunk, as tasks to run in any thread (see module doc)."""
    if plan.classwise_edges is not None:
        check_classwise_size(plan.n_classes, len(plan.classwise_edges) - 1)
    if plan.kind == "toplabel":
        return _toplabel_blocks(scores, labels, plan, start)
    valid = None
    if plan.ignore_index is not None:
        mask = labels != plan.ignore_index
        if not mask.all():
            valid = mask.reshape(-1)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1 or scores.ndim == 2 and scores.shape[1] == 2:
        info = _Binary(scores, labels.reshape(-1), valid, plan, start)
        step = max(1, CHUNK_BYTES // 64)
        n = scores.shape[0]
        tasks = [
            partial(_binary_block, info, lo, min(lo + step, n))
            for lo in range(0, n, step)
        ]
    else:
        multi = _multiclass_info(scores, labels, valid, plan, start)
        size = _chunk_elements(multi.work_dtype, plan.n_classes)
        tasks = [
            partial(_multiclass_block, multi, *b) for b in _slabs(multi.z.shape, size)
        ]
    return [partial(_located, t, scores, labels, start) for t in tasks]


def _located(
    task: Task, scores: np.ndarray, labels: np.ndarray, start: int
) -> BlockOut:
    try:
        return task()
    except _NonFinite:
        raise nonfinite_error(scores, labels, offset=start) from None


def _kept_sums(
    plan: sm.Plan,
    conf: np.ndarray,
    right: np.ndarray,
    nl: np.ndarray | None,
    sq: np.ndarray | None,
    positive: np.ndarray | None = None,
    positive_hits: np.ndarray | None = None,
) -> sm.Summary:
    """The summary of kept samples' per-sample values (no class-wise bins)."""
    table = None
    if plan.toplabel_edges is not None:
        table = _table(
            *_bin_sums(conf, right, plan.toplabel_edges), plan.toplabel_edges
        )
    return sm.Summary(
        n_classes=plan.n_classes,
        n=len(conf),
        n_correct=int(np.count_nonzero(right)),
        sum_confidence=float(conf.sum()),
        sum_nll=None if nl is None or not plan.nll else _fsum_array(nl),
        sum_brier=None if sq is None or not plan.brier else float(sq.sum()),
        table=table,
        probes=_measure(plan, conf, right, positive, positive_hits),
    )


def _fsum_array(a: np.ndarray) -> float:
    with np.errstate(over="ignore"):  # inf: the metric refuses it
        return float(a.sum())


def _table(
    count: np.ndarray, sum_conf: np.ndarray, hits: np.ndarray, edges: np.ndarray
) -> BinTable:
    return BinTable(edges, count, hits, sum_conf)


def _samples(
    plan: sm.Plan,
    conf: np.ndarray,
    right: np.ndarray,
    labels: np.ndarray,
    nl: np.ndarray | None,
    sq: np.ndarray | None,
    positive: np.ndarray | None,
    unit: np.ndarray,
) -> sm.SampleValues | None:
    if not plan.per_sample:
        return None
    return sm.SampleValues(
        plan.n_classes,
        conf,
        right,
        labels.astype(np.int64, copy=False),
        nl if plan.nll else None,
        sq if plan.brier else None,
        positive,
        unit,
    )


# --------------------------------------------------------------------------
# top-label data: (confidence, predicted class) per sample


def reduce_toplabel(
    confidence: np.ndarray,
    predicted: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
) -> sm.SampleValues:
    """The per-sample values of top-label-only data (no full class scores)."""
    chunk = toplabel_scores(confidence, predicted)
    plan = sm.Plan(n_classes, "toplabel", nll=False, brier=False)
    return sm.reduce_chunks_with_samples([(chunk, np.asarray(labels), 0)], plan)[1]


def toplabel_scores(confidence: object, predicted: object) -> np.ndarray:
    """Top-label data as the scores of a chunk, shape (n, 2): the confidence
    and the predicted class."""
    conf = np.asarray(confidence, dtype=np.float64)
    return np.stack([conf, np.asarray(predicted, dtype=np.float64)], axis=1)


def _toplabel_blocks(
    scores: np.ndarray, labels: np.ndarray, plan: sm.Plan, start: int
) -> list[Task]:
    conf = np.asarray(scores[:, 0], dtype=np.float64)
    # NaN first: it is neither below 0 nor above 1
    for bad, what in (
        (~np.isfinite(conf), "are NaN or infinite"),
        ((conf < 0) | (conf > 1), "outside [0, 1]"),
    ):
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            value = conf[first] if what[0] == "a" else f"{conf[first]:.6g}"
            raise InputError(
                f"confidence: {int(bad.sum())} values {what}"
                f" (first: {value} at row {start + first})"
            )
    y = np.asarray(labels, dtype=np.int64)
    right = scores[:, 1].astype(np.int64) == y
    step = max(1, CHUNK_BYTES // 16)
    return [
        partial(
            _toplabel_block, plan, conf, right, y, start, lo, min(lo + step, len(y))
        )
        for lo in range(0, len(y), step)
    ]


def _toplabel_block(
    plan: sm.Plan,
    conf: np.ndarray,
    right: np.ndarray,
    y: np.ndarray,
    start: int,
    lo: int,
    hi: int,
) -> BlockOut:
    c, r = conf[lo:hi], right[lo:hi]
    unit = np.arange(start + lo, start + hi, dtype=np.int64)
    samples = _samples(plan, c, r, y[lo:hi], None, None, None, unit)
    return BlockOut(_kept_sums(plan, c, r, None, None), samples, 16 * (hi - lo))


# --------------------------------------------------------------------------
# two classes


@dataclass(frozen=True, eq=False)
class _Binary:
    scores: np.ndarray  # (N,) P(class 1) or its logit, or (N, 2)
    labels: np.ndarray  # (N,)
    valid: np.ndarray | None
    plan: sm.Plan
    start: int


@dataclass(frozen=True, eq=False)
class _BinaryValues:
    p0: np.ndarray
    p1: np.ndarray
    conf: np.ndarray
    right: np.ndarray
    nll: np.ndarray


def _binary_values(
    z: np.ndarray, y1: np.ndarray, kind: str, eps: float
) -> _BinaryValues:
    """Two classes: the logit difference d = z1 - z0 (or p1, p0) in float64."""
    if kind == "logits":
        if z.ndim == 1:
            d = z.astype(np.float64)
        else:
            d = z[:, 1].astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):  # checked next
                d -= z[:, 0]
        if not np.isfinite(d).all() and _bad_binary_logits(z):
            raise _NonFinite
        a = np.abs(d)
        q = kernel.exp(np.negative(a))
        c = 1.0 / (1.0 + q)
        up = d > 0
        right = up == y1
        p1 = np.where(up, c, q * c)
        nl = np.log1p(q)
        nl += np.where(right, 0.0, a)
        return _BinaryValues(1.0 - p1, p1, c, right, nl)
    if z.ndim == 1:
        p1 = z.astype(np.float64)
        p0 = 1.0 - p1
    else:
        p0 = z[:, 0].astype(np.float64)
        p1 = z[:, 1].astype(np.float64)
    if not (np.isfinite(p0).all() and np.isfinite(p1).all()):
        raise _NonFinite
    up = p1 > p0
    right = up == y1
    nl = -np.log(np.maximum(np.where(y1, p1, p0), eps))
    return _BinaryValues(p0, p1, np.maximum(p0, p1), right, nl)


def _binary_block(b: _Binary, lo: int, hi: int) -> BlockOut:
    plan = b.plan
    y = b.labels[lo:hi]
    y1 = y == 1
    v = None if b.valid is None else b.valid[lo:hi]
    eps = float(np.finfo(b.scores.dtype).eps)
    bv = _binary_values(b.scores[lo:hi], y1, plan.kind, eps)
    nl = bv.nll
    if not np.isfinite(nl).all():
        # -inf at the true class: probability 0 (ignored samples aside)
        if v is None or (~np.isfinite(nl) & v).any():
            raise _NonFinite
    r1 = bv.p1 - y1
    r0 = bv.p0 - ~y1
    sq = r1 * r1 + r0 * r0 if plan.brier else None
    c, right, p0, p1 = bv.conf, bv.right, bv.p0, bv.p1
    unit = np.arange(b.start + lo, b.start + hi, dtype=np.int64)
    if v is not None:
        c, right, p0, p1, y1, y, nl, unit = (
            a[v] for a in (c, right, p0, p1, y1, y, nl, unit)
        )
        sq = None if sq is None else sq[v]
    summary = _kept_sums(plan, c, right, nl, sq, p1, y1)
    summary = _binary_bins(summary, plan, p0, p1, y1, unit)
    samples = _samples(plan, c, right, y, nl, sq, p1, unit)
    return BlockOut(summary, samples, b.scores[lo:hi].nbytes)


def _binary_bins(
    summary: sm.Summary,
    plan: sm.Plan,
    p0: np.ndarray,
    p1: np.ndarray,
    y1: np.ndarray,
    unit: np.ndarray,
) -> sm.Summary:
    """Class-wise bins (P(class 0), P(class 1)) and the positive-class bins."""
    classwise = positive = None
    edges = plan.classwise_edges
    if edges is not None:
        c0 = _bin_sums(p0, ~y1, edges)
        c1 = _bin_sums(p1, y1, edges)
        classwise = sm.ClasswiseBins(
            edges,
            *(np.stack([a, b]) for a, b in zip(c0, c1, strict=True)),
            _binary_boot(plan, p0, p1, y1, unit),
        )
    pe = plan.positive_edges
    if pe is not None:
        if classwise is not None and np.array_equal(pe, classwise.edges):
            positive = classwise.table(1)
        else:
            positive = _table(*_bin_sums(p1, y1, pe), pe)
    return replace(summary, classwise=classwise, positive=positive)


def _binary_boot(
    plan: sm.Plan, p0: np.ndarray, p1: np.ndarray, y1: np.ndarray, unit: np.ndarray
) -> object:
    """Two classes: the class-wise replicate sums (as :func:`_classwise_boot`)
    of P(class 0) against label 0 and P(class 1) against label 1."""
    if plan.bootstrap is None or not plan.bootstrap.classwise:
        return None
    if plan.classwise_edges is None:
        return None
    from relcal import bootstrap as bs

    edges = plan.classwise_edges
    n_bins = len(edges) - 1
    n_reps = bs.classwise_replicates(plan.bootstrap.n_replicates, 2, n_bins)
    if n_reps == 0:
        return None
    opts = {"n_replicates": n_reps, "seed": plan.bootstrap.seed}
    gap1 = p1 - y1
    gap0 = p0 - ~y1
    total = bs.weighted_rows(unit, np.stack([gap0, gap1], axis=1), **opts)
    b0, b1 = assign_bins(p0, edges), assign_bins(p1, edges)
    high0, high1 = np.flatnonzero(b0 > 0), np.flatnonzero(b1 > 0)
    keys, sums = bs.weighted_entries(
        np.concatenate([unit[high0], unit[high1]]),
        np.concatenate([b0[high0], n_bins + b1[high1]]),
        np.concatenate([gap0[high0], gap1[high1]]),
        n_keys=2 * n_bins,
        **opts,
    )
    return bs.ClasswiseReplicates.of(
        2, n_bins, plan.bootstrap.seed, total, (keys, sums)
    )


def _bad_binary_logits(z: np.ndarray) -> bool:
    """NaN or +inf among binary logits (-inf, probability 0, is allowed)."""
    return bool(np.isnan(z).any() or np.isposinf(z).any())


# --------------------------------------------------------------------------
# C classes, (N, C) or (N, C, *spatial)


@dataclass(frozen=True, eq=False)
class _Multi:
    """How the blocks of one (N, C[, pixels]) chunk are read."""

    z: np.ndarray  # (N, C) or (N, C, pixels)
    y: np.ndarray  # flat labels
    valid: np.ndarray | None  # flat, None: every sample kept
    plan: sm.Plan
    start: int
    axis: int  # 0: a block is (C, pixels); 1: (rows, C)
    transpose: bool  # (rows, C) blocks copied class-first
    in_dtype: np.dtype
    work_dtype: np.dtype
    eps: float
    tie_max: float
    threshold: float  # class-wise: entries above it are binned one by one


def _multiclass_info(
    scores: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray | None,
    plan: sm.Plan,
    start: int,
) -> _Multi:
    n, c = scores.shape[:2]
    if scores.ndim > 2:
        z = scores.reshape(n, c, -1)
        axis = 0  # a block is (C, pixels)
    else:
        # Few classes: reductions along a short last axis cost a call per row
        # (~10x slower per element than over the class axis of a (C, rows)
        # slab): each (rows, C) block is copied transposed into a scratch
        # buffer and goes the (C, pixels) way of segmentation.
        z = scores
        axis = 0 if c <= TRANSPOSE_MAX_CLASSES else 1
    # logits: exp(z - m) in float64, so the NLL matches a float64 log-softmax to
    # ~1e-12 (float32 exp and sums drift by 1e-8 over 1000 classes).  The
    # kernel's float64 exp, or numpy's on AVX-512, is as fast as numpy's float32
    # one: in the input's float32 (the row sums still in float64) only where
    # neither is (kernel.fast_f64), when just top-label quantities are asked for
    # (confidences then ~1e-9 off).
    in_dtype, work_dtype = _dtypes(scores.dtype, plan)
    edges = plan.classwise_edges
    return _Multi(
        z=z,
        y=labels.reshape(-1),
        valid=valid,
        plan=plan,
        start=start,
        axis=axis,
        transpose=scores.ndim == 2 and axis == 0,
        in_dtype=in_dtype,
        work_dtype=work_dtype,
        eps=float(np.finfo(in_dtype).eps),
        # a tie for the maximum needs a top probability of at most 1/2: exactly,
        # for logits (two entries exp(0) = 1); for probabilities, whose rows sum
        # to 1 within validate.sum_tolerance, at most (1 + MAX_SUM_TOLERANCE) / 2
        tie_max=0.5 if plan.kind == "logits" else 0.5 * (1 + 2 * MAX_SUM_TOLERANCE),
        # select p > edges[1] slightly generously; the exact rule is applied after
        threshold=0.0 if edges is None else float(edges[1]) * (1 - 1e-6),
    )


def _dtypes(dtype: np.dtype, plan: sm.Plan) -> tuple[np.dtype, np.dtype]:
    """The dtype a block of scores of ``dtype`` is read in, and the one its
    softmax is worked in (see :func:`_multiclass_info`)."""
    in_dtype = np.dtype(np.float32 if dtype.itemsize < 4 else dtype)
    fast32 = plan.top_only and not kernel.fast_f64()
    use_in = plan.kind != "logits" or fast32
    return in_dtype, in_dtype if use_in else np.dtype(np.float64)


def slab_pixels(dtype: np.dtype, plan: sm.Plan) -> int | None:
    """Pixels in a block of a ``(1, C, pixels)`` chunk of float scores of
    ``dtype`` (C = ``plan.n_classes`` >= 2): a chunk that is a pixel range of
    an image starting at a multiple of this has the image's own blocks there
    (:func:`_slabs`), so its summaries are those of the whole image's blocks.
    None where the blocks are not pixel slabs."""
    if plan.kind not in ("logits", "probs") or plan.n_classes < 2:
        return None
    size = _chunk_elements(_dtypes(dtype, plan)[1], plan.n_classes)
    return max(1, size // plan.n_classes)


def _slabs(
    shape: tuple[int, ...], elements: int
) -> Iterator[tuple[tuple[int | slice, ...], int, int, int]]:
    """Blocks of a (N, C) array (row blocks) or of a (N, C, P) array (blocks of
    one image's pixels, the class axis first): (slice, flat sample range, row)."""
    if len(shape) == 2:
        n, c = shape
        rows = max(1, elements // c)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            yield (slice(lo, hi),), lo, hi, lo
    else:
        n, c, p = shape
        cols = max(1, elements // c)
        for i in range(n):
            for lo in range(0, p, cols):
                hi = min(lo + cols, p)
                yield (i, slice(None), slice(lo, hi)), i * p + lo, i * p + hi, i


@dataclass(eq=False)
class _Top:
    """A block's softmax, as far as the top label needs it."""

    t: np.ndarray  # exp(z - m) (logits, a scratch buffer) or the probabilities
    s: np.ndarray | None  # row sums of exp(z - m) (logits)
    p_top: np.ndarray  # float64 top-label confidence
    hit: np.ndarray  # whether the label's entry is a maximum
    flat_y: np.ndarray  # flat index of the label's entry in t
    shifted: np.ndarray | None  # z_y - m (logits)
    zy: np.ndarray | None  # the label's probability (probabilities)
    right: np.ndarray | None = None  # the first maximal class is the label
    py: np.ndarray | None = None  # the label's probability, float64 (when needed)


def _load(m: _Multi, sl: tuple[int | slice, ...]) -> np.ndarray:
    z = m.z[sl]
    if m.transpose:
        zt = scratch(z.shape[::-1], m.in_dtype, "z")
        np.copyto(zt, z.T)  # float16 is widened here too
        z = zt
    if z.dtype != m.in_dtype:
        z = z.astype(m.in_dtype)
    return z


def _softmax_top(
    m: _Multi, z: np.ndarray, ysafe: np.ndarray, v: np.ndarray | None
) -> _Top:
    n_classes = m.plan.n_classes
    width = len(ysafe)
    ar = np.arange(width)
    mx = np.max(z, axis=m.axis, keepdims=True)
    if not np.isfinite(mx).all():  # NaN or +inf somewhere (or a row of -inf)
        raise _NonFinite
    # the true class's entry: one flat index serves every contiguous slab
    flat_y = ar * n_classes + ysafe if m.axis == 1 else ysafe * width + ar
    m1 = mx.reshape(-1)
    if m.plan.kind != "logits":
        if z.flags.c_contiguous:
            zy = np.take(z.reshape(-1), flat_y)
        else:
            zy = z[ar, ysafe] if m.axis == 1 else z[ysafe, ar]
        return _Top(z, None, m1.astype(np.float64), zy == m1, flat_y, None, zy)
    t = scratch(z.shape, m.work_dtype)
    # z − m may overflow to -inf (z near -1e308, m near 1e308): a -inf at the
    # label is refused below, elsewhere it is probability 0
    with np.errstate(over="ignore"):
        if z.dtype == m.work_dtype:
            np.subtract(z, mx, out=t)
        else:  # widen first: faster than a mixed-dtype subtract
            np.copyto(t, z)
            np.subtract(t, mx.astype(m.work_dtype), out=t)
    # z_y − m, exact (0 exactly when z_y is a maximum), before the exp
    shifted = np.take(t.reshape(-1), flat_y)
    if np.isneginf(shifted).any():
        # -inf at the true class: probability 0, infinite NLL (an ignored
        # sample's stand-in label 0 may be a masked class)
        if v is None or (np.isneginf(shifted) & v).any():
            raise _NonFinite
    # exp(z - m), never exp(z) with exp(m) divided out: the top entry is exactly
    # 1, so p_top = 1/s is the correctly rounded softmax maximum (exactly 1.0
    # where the others are below 2^-53 of it, as in torch and numpy);
    # exp(m) / sum(exp(z)) moves such confidences by an ulp, and with them the
    # count of confidences == 1.0 that bin rules disagree on
    # (tests/test_reduce_paths.py, test_references.py)
    kernel.exp(t)  # libmvec's AVX2 exp where built, else numpy's
    # row sums in float64 whatever the work dtype
    s = np.asarray(np.sum(t, axis=m.axis, dtype=np.float64))
    return _Top(t, s, np.reciprocal(s), shifted == 0, flat_y, shifted, None)


def _first_maximal(
    m: _Multi, z: np.ndarray, top: _Top, ysafe: np.ndarray
) -> np.ndarray:
    """Whether the first maximal class is the label (``top.hit`` is reused)."""
    if m.axis == 1:
        # the label is first maximal if its entry is a maximum, unless a tie
        # (possible only when p_top <= 1/2) puts an earlier class first
        right = top.hit
        maybe = np.flatnonzero(right & (top.p_top <= m.tie_max))
        if len(maybe):
            right[maybe] = np.argmax(z[maybe], axis=1) == ysafe[maybe]
        return right
    at_max = 1.0 if top.s is not None else top.p_top  # the entries of t at a maximum
    return _correct_slab(z, top.t, at_max, top.hit, ysafe, top.p_top <= m.tie_max)


def _true_class(m: _Multi, top: _Top, v: np.ndarray | None) -> np.ndarray | None:
    """The label's probability (float64), when NLL or Brier need it.  Turns
    ``exp(z - m)`` into probabilities in place first when Brier or class-wise
    bins read them (ignored samples zeroed: nothing after divides by s or masks
    them again)."""
    plan = m.plan
    if top.s is not None and (plan.brier or plan.classwise_edges is not None):
        w = top.p_top if v is None else np.where(v, top.p_top, 0.0)
        top.t *= w[:, None] if m.axis == 1 else w
        if plan.brier:  # exp(shifted) / s is already in t (same float64 inputs)
            return np.take(top.t.reshape(-1), top.flat_y)
        return None
    if top.zy is not None and (plan.brier or plan.nll):
        return top.zy.astype(np.float64)
    return None


def _multiclass_block(
    m: _Multi, sl: tuple[int | slice, ...], lo: int, hi: int, row: int
) -> BlockOut:
    z = _load(m, sl)
    y = m.y[lo:hi]
    v = None if m.valid is None else m.valid[lo:hi]
    ysafe = y if v is None else np.where(v, y, 0)
    top = _softmax_top(m, z, ysafe, v)
    top.right = _first_maximal(m, z, top, ysafe)
    top.py = _true_class(m, top, v)
    if top.s is not None and not m.plan.per_sample:
        summary, label_count = _masked_sums(m, top, ysafe, v)
        samples = None
    else:
        summary, samples, label_count = _gathered(m, top, y, v, (lo, hi, row))
    if m.plan.classwise_edges is not None:
        classwise = _classwise_chunk(m, top, ysafe, v, label_count, (lo, hi, row))
        summary = replace(summary, classwise=classwise)
    return BlockOut(summary, samples, z.size * m.z.dtype.itemsize)


def _masked_sums(
    m: _Multi, top: _Top, ysafe: np.ndarray, v: np.ndarray | None
) -> tuple[sm.Summary, np.ndarray]:
    """Logits: sums over the kept samples without gathering them (the ignored
    ones masked: their p_y is already 0, their s counts as 1)."""
    plan, s, right, py = m.plan, top.s, top.right, top.py
    assert s is not None and top.shifted is not None and right is not None
    width = len(ysafe)
    n_kept = width if v is None else int(np.count_nonzero(v))
    label_count = np.bincount(ysafe, minlength=plan.n_classes)
    label_count[0] -= width - n_kept  # the ignored samples' stand-in
    sum_brier = sum_nll = None
    if plan.brier:
        assert py is not None
        sum_brier = _sum_squares(top.t) + n_kept - 2.0 * float(py.sum())
    if plan.nll:
        shifted = top.shifted.astype(np.float64, copy=False)
        s_k = s if v is None else np.where(v, s, 1.0)
        d_k = shifted if v is None else np.where(v, shifted, 0.0)
        with np.errstate(over="ignore"):  # inf: the metric refuses it
            sum_nll = _sum_log(s_k, plan.n_classes) - float(d_k.sum())
    table = None
    if plan.toplabel_edges is not None:
        ignored = None if v is None else ~v  # into the table's dropped bin
        sums = _bin_sums(top.p_top, right, plan.toplabel_edges, ignored)
        table = _table(*sums, plan.toplabel_edges)
    summary = sm.Summary(
        n_classes=plan.n_classes,
        n=n_kept,
        n_correct=int(np.count_nonzero(right if v is None else right & v)),
        sum_confidence=float(
            (top.p_top if v is None else np.where(v, top.p_top, 0.0)).sum()
        ),
        sum_nll=sum_nll,
        sum_brier=sum_brier,
        table=table,
        probes=_measure(plan, *_kept(v, top.p_top, right)) if plan.probes else (),
    )
    return summary, label_count


def _kept(v: np.ndarray | None, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return arrays if v is None else tuple(a[v] for a in arrays)


def _measure(
    plan: sm.Plan,
    conf: np.ndarray,
    right: np.ndarray,
    positive: np.ndarray | None = None,
    positive_hits: np.ndarray | None = None,
) -> tuple[tuple[str, object], ...]:
    """The equal-mass edge searches' results (``plan.probes``) on the kept
    samples: "confidence" probes on the top label, "positive" on P(class 1)."""
    out = []
    for name, probe in plan.probes:
        top = name.startswith("confidence")
        values, hits = (conf, right) if top else (positive, positive_hits)
        if values is None:  # no P(class 1) here (a two-class segmentation map):
            continue  # no positive-class bins, as with equal-width bins
        out.append((name, probe.measure(values, hits)))
    return tuple(out)


def _gathered(
    m: _Multi,
    top: _Top,
    y: np.ndarray,
    v: np.ndarray | None,
    where: tuple[int, int, int],
) -> tuple[sm.Summary, sm.SampleValues | None, np.ndarray]:
    """The kept samples' per-sample values (gathered by one index), their sums
    and, when asked, the values themselves."""
    plan, right, py = m.plan, top.right, top.py
    assert right is not None
    nl = sq = None
    if plan.nll:
        if top.s is not None:
            assert top.shifted is not None
            nl = np.log(top.s) - top.shifted.astype(np.float64, copy=False)
        else:
            assert py is not None
            nl = -np.log(np.maximum(py, m.eps))
    if plan.brier:
        assert py is not None
        sub = "ij,ij->i" if m.axis == 1 else "ij,ij->j"
        # squares summed in float64 even for float32 probabilities
        sq = np.einsum(sub, top.t, top.t, dtype=np.float64)
        sq += 1.0 - 2.0 * py
    conf = top.p_top
    if v is not None:
        kept = np.flatnonzero(v)
        conf, right, y = conf[kept], right[kept], y[kept]
        nl = None if nl is None else nl[kept]
        sq = None if sq is None else sq[kept]
    summary = _kept_sums(plan, conf, right, nl, sq)
    samples = None
    if plan.per_sample:
        if m.z.ndim == 3:
            unit = np.full(len(y), m.start + where[2], dtype=np.int64)
        else:
            unit = m.start + np.arange(where[0], where[1], dtype=np.int64)
            unit = unit if v is None else unit[kept]
        samples = _samples(plan, conf, right, y, nl, sq, None, unit)
    return summary, samples, np.bincount(y, minlength=plan.n_classes)


def _classwise_chunk(
    m: _Multi,
    top: _Top,
    y: np.ndarray,
    v: np.ndarray | None,
    label_count: np.ndarray,
    where: tuple[int, int, int],
) -> sm.ClasswiseBins:
    """Class-wise bin sums of one block (and, with a bootstrap, their
    replicates: :func:`_classwise_boot`).

    ``top.t`` is (rows, C) (axis 1) or (C, pixels) (axis 0) probabilities; for
    logits the ignored samples' entries are all 0 (else ``v`` masks them).
    Most class probabilities fall in the first bin (at most ``n_bins - 1`` per
    sample can exceed ``edges[1]``), so only those above it are binned one by
    one; the first bin is the class total minus the rest.  The label's own
    entries above it are binned once more, for the hits.  ``y`` has a label
    for every sample of the block (0 for the ignored ones) and ``top.py`` its
    probability (None: gathered here); ``label_count`` the kept samples per label.
    """
    t, axis, n_classes = top.t, m.axis, m.plan.n_classes
    edges = m.plan.classwise_edges
    assert edges is not None
    n_bins = len(edges) - 1
    masked = v is not None and top.s is None and not v.all()
    sample_axis = 1 - axis
    # class totals of p, in float64
    col_sum = np.asarray(np.sum(t, axis=sample_axis, dtype=np.float64))
    high = t > m.threshold  # a 0 (an ignored sample's) is never above it
    if masked:
        assert v is not None
        dropped = t[~v] if axis == 1 else t[:, ~v]
        col_sum -= np.sum(dropped, axis=sample_axis, dtype=np.float64)
        high &= v[:, None] if axis == 1 else v
    flat = np.flatnonzero(high)
    key, vals = _classwise_keys(t, axis, flat, edges, n_classes)
    size = n_classes * n_bins
    # float64 even when no entry is above the threshold: bincount of an empty
    # key is int64 whatever the weights, and would truncate the class totals
    sum_p = np.bincount(key, weights=vals, minlength=size).astype(np.float64)
    sum_p = sum_p.reshape(n_classes, n_bins)
    count = np.bincount(key, minlength=size).reshape(n_classes, n_bins)
    sum_y = _classwise_hits(m, top, y, v if masked else None)
    count[:, 0] = int(label_count.sum()) - count[:, 1:].sum(axis=1)
    sum_p[:, 0] = col_sum - sum_p[:, 1:].sum(axis=1)
    sum_y[:, 0] = label_count - sum_y[:, 1:].sum(axis=1)
    reps = None
    if m.plan.bootstrap is not None and m.plan.bootstrap.classwise:
        gap_total = col_sum - label_count
        reps = _classwise_boot(m, t, y, v, gap_total, (flat, key, vals), where)
    return sm.ClasswiseBins(edges, count, sum_p, sum_y, reps)


def _classwise_hits(
    m: _Multi, top: _Top, y: np.ndarray, v: np.ndarray | None
) -> np.ndarray:
    """Per class and bin, the samples of that label whose own probability is
    above the threshold (those below are the first bin's, found by
    difference): the label's entries compared and binned as every entry is.
    ``v``: the kept samples, when some are masked."""
    t, axis, edges, py = top.t, m.axis, m.plan.classwise_edges, top.py
    assert edges is not None
    n_bins = len(edges) - 1
    if py is None or top.s is None:
        if t.flags.c_contiguous:
            py = t.reshape(-1)[top.flat_y]
        else:
            ar = np.arange(y.size)
            py = t[ar, y] if axis == 1 else t[y, ar]
    at_y = py > m.threshold
    if v is not None:
        at_y &= v
    sel = np.flatnonzero(at_y)
    hit_key = y[sel] * n_bins + assign_bins(py[sel].astype(np.float64), edges)
    sum_y = np.bincount(hit_key, minlength=m.plan.n_classes * n_bins)
    return sum_y.reshape(m.plan.n_classes, n_bins).astype(np.float64)


def _classwise_boot(
    m: _Multi,
    t: np.ndarray,
    y: np.ndarray,
    v: np.ndarray | None,
    gap_total: np.ndarray,
    entries: tuple[np.ndarray, np.ndarray, np.ndarray],
    where: tuple[int, int, int],
) -> object:
    """The class-wise replicate sums of one block
    (:class:`relcal.bootstrap.ClasswiseReplicates`), or None when there are
    too many classes x bins for them.  ``gap_total`` is the block's sum of
    ``p_c - [y == c]`` per class; ``entries`` the entries above the first
    bin's edge (flat index in ``t``, cell key, value), the label's among them
    the hits (``p_y - 1``)."""
    from relcal import bootstrap as bs

    boot, n_classes = m.plan.bootstrap, m.plan.n_classes
    assert boot is not None and m.plan.classwise_edges is not None
    n_bins = len(m.plan.classwise_edges) - 1
    n_reps = bs.classwise_replicates(boot.n_replicates, n_classes, n_bins)
    if n_reps == 0:
        return None
    opts = {"n_replicates": n_reps, "seed": boot.seed}
    flat, key, vals = entries
    lo, hi, row = where
    sample = flat // n_classes if m.axis == 1 else flat % t.shape[1]
    gaps = vals - (key // n_bins == y[sample])
    if m.z.ndim == 3:  # one image: one unit, weighed later with its other slabs
        cells = np.bincount(key, weights=gaps, minlength=n_classes * n_bins)
        return bs.ClasswiseReplicates.of_unit(
            n_classes, n_bins, boot.seed, n_reps, m.start + row, gap_total, cells
        )
    rows = m.start + np.arange(lo, hi, dtype=np.int64)
    total = _weighted_gaps(m, t, y, v, rows, opts)
    cells = bs.weighted_entries(
        rows[sample], key, gaps, n_keys=n_classes * n_bins, **opts
    )
    return bs.ClasswiseReplicates.of(n_classes, n_bins, boot.seed, total, cells)


def _weighted_gaps(
    m: _Multi,
    t: np.ndarray,
    y: np.ndarray,
    v: np.ndarray | None,
    rows: np.ndarray,
    opts: dict[str, int],
) -> np.ndarray:
    """Rows of (N, C) scores: per replicate and class, the weighted sum of
    ``p_c - [y == c]`` over the kept rows, one matrix product of the weights
    and ``t`` with 1 taken off at each label (in place in relcal's own
    buffer, restored after; on a copy of the caller's probabilities)."""
    from relcal import bootstrap as bs

    x = t if m.axis == 1 else t.T  # (rows, C); ignored rows are 0 for logits
    if v is not None and not v.all():
        kept = np.flatnonzero(v)
        x, rows, y = x[kept], rows[kept], y[kept]  # a copy
    elif np.may_share_memory(x, m.z) or not x.flags.writeable:
        x = x.copy()
    at = (np.arange(len(y)), y)
    saved = x[at]
    x[at] -= 1.0
    try:
        return bs.weighted_rows(rows, x, **opts)
    finally:
        x[at] = saved


def _classwise_keys(
    t: np.ndarray, axis: int, flat: np.ndarray, edges: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (class, bin) key and the value of the entries of ``t`` at ``flat``."""
    n_bins = len(edges) - 1
    contiguous = t.flags.c_contiguous
    if axis == 0 and contiguous:
        # flat = cls * width + sample, sorted by class: the class enters the
        # key slice by slice, and no sample index is needed
        starts = np.searchsorted(flat, np.arange(n_classes + 1) * t.shape[1])
        vals = t.reshape(-1)[flat].astype(np.float64, copy=False)
        key = assign_bins(vals, edges)
        for c in range(1, n_classes):
            key[starts[c] : starts[c + 1]] += c * n_bins
        return key, vals
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
    return cls * n_bins + assign_bins(vals, edges), vals


# --------------------------------------------------------------------------
# helpers


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


def _chunk_elements(dtype: np.dtype, n_classes: int = 0) -> int:
    """Elements per block (:func:`block_bytes` of work, float64 or the
    input's float32)."""
    size = block_bytes(n_classes)
    return size // 8 if dtype.itemsize >= 8 else size // 2


def block_bytes(n_classes: int) -> int:
    """Bytes of float64 work in a block of scores of ``n_classes`` classes.

    Fewer, larger blocks cost less Python per byte: in threads, whose numpy
    calls take the GIL for that Python, 8 MB blocks scale best (measured on 2
    cores, 32x19x512x512 logits, two threads against one: 4 MB 1.47x, 8 MB
    1.67x, 1 MB 0.83x; measured again in 2026-12: 2 MB 0.98x, 8 MB 1.24x).
    Worker processes (few classes, on Linux: :data:`relcal.summary.FORK_MAX_CLASSES`)
    hold no common lock, and there a block's temporaries (the float64 work
    array and a few more of its size) are better kept small enough that two
    workers' fit the shared last-level cache together: on this machine's
    32 MB L3, 2 MB blocks against 8 MB, 6 alternating rounds, median: in
    process, CPU time at 2 jobs 1.09x that at one (1.21-1.24x with 8 MB) and
    1.77x faster (1.58x), one job as fast (1.08 s, 1.09-1.16 s); the
    ``relcal metrics`` pass, 1.80x (1.57x).  The size depends on the platform
    and the classes, never on the jobs, so the blocks and the result are the
    same at any ``--jobs``."""
    if n_classes <= sm.FORK_MAX_CLASSES and forked.PLATFORM:
        return max(1, CHUNK_BYTES // 4)
    return CHUNK_BYTES


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
    elements by ``einsum``, which releases the GIL (``np.vecdot`` holds it:
    measured 1.07x on two threads against einsum's 1.84x, the same speed on
    one; ``np.dot`` is as fast but OpenBLAS threads it, oversubscribing the
    worker threads)."""
    flat = t.reshape(-1)
    whole = flat.size - flat.size % 8192
    rows = flat[:whole].reshape(-1, 8192)
    rest = flat[whole:]
    return float(np.einsum("ij,ij->i", rows, rows).sum()) + float(
        np.einsum("i,i->", rest, rest)
    )
