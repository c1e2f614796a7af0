"""One mergeable summary of predictions: what every metric is a function of.

The flow (DESIGN.md): scores are split into chunks, each chunk is reduced to a
:class:`Summary` by :func:`reduce_chunk`, and the summaries are merged in a
fixed order (:func:`reduce_chunks`).  Every path runs this: the in-memory
:func:`relcal.evaluate` (the arrays are one chunk, cut into cache-sized
blocks), a stream of chunks read from disk, a Dask cluster; the blocks run in
forked worker processes (:mod:`relcal.forked`: few classes, on Linux; a
stream's chunks are then :class:`relcal.stream.Pieces`, each read by a
worker) or on the thread pool.

A :class:`Plan` says what is asked for (the bins, NLL, Brier, per-sample
values); a :class:`Summary` holds only sums that add up across chunks: the
counts and sums behind accuracy, mean confidence, NLL and Brier, the top-label
bin table, the class-wise bins and (two classes) the bins of P(class 1).
Per-sample values, which only the bootstrap of ``relcal check`` needs, are a
separate opt-in output (:class:`SampleValues`, from
:func:`reduce_chunks_with_samples`).

Equal-mass bins need the quantiles of the confidences before the binned sums:
:func:`mass_summary` finds them exactly (bit-identical to ``np.quantile``)
from mergeable histograms over a re-readable source of chunks (see
:mod:`relcal.binning`), and bins in the same passes: usually two in all.

Numerics are those of :mod:`relcal.reduce`: the merge adds float64 sums in the
order of the blocks, in two levels (the blocks of a group, then the groups: a
piece of files, a streamed chunk, or one of ~128 runs of an in-memory input's
blocks, :data:`RUNS`), so a different chunking changes a metric by float64
rounding only (~1e-15 relative), and the number of workers (threads or
processes) not at all.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from relcal import forked, progress
from relcal import reduce as _rd
from relcal.binning import BinTable, QuantileSearch
from relcal.errors import RelcalError

Chunk = tuple[np.ndarray, np.ndarray, int]


@dataclass(frozen=True)
class BootstrapPlan:
    """The Poisson bootstrap a reduction adds (:mod:`relcal.bootstrap`):
    ``n_replicates`` replicates of ``seed``.  Each chunk's samples are
    resampled by unit (``start`` + the row within the chunk), so the merged
    replicate sums do not depend on the chunking or the jobs."""

    n_replicates: int
    seed: int
    # the class-wise ECE's replicate sums too (relcal check asks for them
    # only when it gates on the class-wise ECE)
    classwise: bool = True
    # the units are segmentation images: the unbinned metrics' replicates
    # come from per-image grid histograms (relcal.unitgrid), with the values
    images: bool = False


@dataclass(frozen=True, eq=False)
class ClasswiseBins:
    """Per-class equal-width bin accumulators, arrays of shape (n_classes, n_bins).

    For class c and bin b: ``count`` samples had ``p_c`` in the bin, ``sum_p`` is
    the sum of those ``p_c``, and ``sum_y`` how many of them had label c.
    """

    edges: np.ndarray
    count: np.ndarray
    sum_p: np.ndarray
    sum_y: np.ndarray
    # the bootstrap's class-wise sums (relcal.bootstrap.ClasswiseReplicates),
    # when the plan asked for a bootstrap and the classes x bins allow one
    replicates: Any = None

    def table(self, c: int) -> BinTable:
        return BinTable(self.edges, self.count[c], self.sum_y[c], self.sum_p[c])

    def merge(self, other: ClasswiseBins) -> ClasswiseBins:
        return ClasswiseBins(
            self.edges,
            self.count + other.count,
            self.sum_p + other.sum_p,
            self.sum_y + other.sum_y,
            _merge_opt(self.replicates, other.replicates),
        )


@dataclass(frozen=True, eq=False)
class Plan:
    """What a reduction is asked for.

    ``kind`` is "logits", "probs" or "toplabel" (scores of shape (n, 2): the
    top-label confidence and the predicted class).  Edges left None skip
    those bins.  ``positive_edges`` (two classes) bins P(class 1).
    ``float64`` computes ``exp`` in float64 even when only top-label
    quantities are asked for, so that a pass for equal-mass edges sees the
    same confidences as the pass with NLL and Brier.  ``probes`` are
    the searches of equal-mass edges (:class:`relcal.binning.Probe`, one per
    variable: "confidence", "positive").
    """

    n_classes: int
    kind: str
    ignore_index: int | None = None
    toplabel_edges: np.ndarray | None = None
    classwise_edges: np.ndarray | None = None
    positive_edges: np.ndarray | None = None
    nll: bool = True
    brier: bool = True
    per_sample: bool = False
    float64: bool = False
    probes: tuple[tuple[str, Any], ...] = ()  # binning.Probe, PendingBins
    bootstrap: BootstrapPlan | None = None

    @property
    def top_only(self) -> bool:
        """Only top-label quantities: a float32 ``exp`` will do."""
        return not (
            self.nll or self.brier or self.classwise_edges is not None or self.float64
        )


def _add(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    with np.errstate(over="ignore"):  # inf: the metric refuses it
        return float(np.float64(a) + np.float64(b))


def _merge_opt(a: object, b: object) -> object:
    if a is None or b is None:
        return None
    return a.merge(b)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class Summary:
    """Sums over the kept samples of some chunks; :meth:`merge` adds two.

    ``n`` samples, ``n_correct`` of them top-label correct, ``sum_confidence``
    their top-label confidences; ``sum_nll`` and ``sum_brier`` (None when not
    asked for or not available); the top-label bin ``table``; the
    ``classwise`` bins; the ``positive`` bins of P(class 1) (two classes);
    ``probes``: the histograms or values of an equal-mass edge search;
    ``replicates``: the bootstrap's :class:`relcal.bootstrap.ReplicateSums`
    ("top", and "positive" for two classes) when the plan asked for them.
    """

    n_classes: int
    n: int
    n_correct: int
    sum_confidence: float
    sum_nll: float | None = None
    sum_brier: float | None = None
    table: BinTable | None = None
    classwise: ClasswiseBins | None = None
    positive: BinTable | None = None
    probes: tuple[tuple[str, Any], ...] = ()  # their mergeable results
    replicates: tuple[tuple[str, Any], ...] = ()  # bootstrap.ReplicateSums

    def merge(self, other: Summary) -> Summary:
        if self.n_classes != other.n_classes:
            raise ValueError("cannot merge summaries of different numbers of classes")
        return Summary(
            n_classes=self.n_classes,
            n=self.n + other.n,
            n_correct=self.n_correct + other.n_correct,
            sum_confidence=float(self.sum_confidence + other.sum_confidence),
            sum_nll=_add(self.sum_nll, other.sum_nll),
            sum_brier=_add(self.sum_brier, other.sum_brier),
            table=_merge_opt(self.table, other.table),  # type: ignore[arg-type]
            classwise=_merge_opt(self.classwise, other.classwise),  # type: ignore[arg-type]
            positive=_merge_opt(self.positive, other.positive),  # type: ignore[arg-type]
            probes=tuple(
                (name, a.merge(b))
                for (name, a), (_, b) in zip(self.probes, other.probes, strict=True)
            ),
            replicates=tuple(
                (name, a.merge(b))
                for (name, a), (_, b) in zip(
                    self.replicates, other.replicates, strict=True
                )
            ),
        )

    def probe(self, name: str) -> Any:
        return dict(self.probes)[name]


@dataclass(frozen=True, eq=False)
class SampleValues:
    """Per-sample values of the kept samples (the opt-in output), in order.

    ``unit`` is the global leading-axis row each sample came from (a row of
    (N, C) scores, or the image of a segmentation pixel): what a bootstrap
    resamples.  ``positive`` is P(class 1) for two classes, else None.
    """

    n_classes: int
    confidence: np.ndarray  # (n,) float64, top-label probability
    correct: np.ndarray  # (n,) bool, first maximal class == label
    labels: np.ndarray  # (n,) int64
    nll: np.ndarray | None  # (n,) float64
    brier: np.ndarray | None  # (n,) float64
    positive: np.ndarray | None  # (n,) float64
    unit: np.ndarray  # (n,) int64

    @property
    def n(self) -> int:
        return len(self.labels)

    @staticmethod
    def concatenate(parts: Sequence[SampleValues]) -> SampleValues:
        first = parts[0]

        def cat(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            if arrays[0] is None:
                return None
            return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

        return SampleValues(
            first.n_classes,
            *(cat(f) for f in ("confidence", "correct", "labels")),  # type: ignore[arg-type]
            cat("nll"),
            cat("brier"),
            cat("positive"),
            cat("unit"),  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------
# reducing chunks


def reduce_chunk(
    scores: np.ndarray, labels: np.ndarray, plan: Plan, *, start: int = 0
) -> Summary:
    """The summary of one chunk (serially, in this thread).

    ``scores``: (rows, C), (rows, C, *spatial), (rows,) binary scores, or for
    ``plan.kind == "toplabel"`` (rows, 2) [confidence, predicted class];
    ``labels``: validated int labels of the leading shape; ``start``: the
    global index of the chunk's first leading-axis row (located errors, units).
    """
    return reduce_chunks([(scores, labels, start)], plan, jobs=1)


def reduce_chunks(
    chunks: Iterable[Chunk], plan: Plan, *, jobs: int | None = None
) -> Summary:
    """Reduce every chunk on the thread pool and merge in the chunks' order.

    The chunks are cut into the same cache-sized blocks whatever ``jobs`` is,
    so the result does not depend on it.  A chunk is finished before the next
    is asked for (a streamed chunk may be overwritten by the next one).
    """
    return _drive(chunks, replace(plan, per_sample=False), jobs)[0]


def reduce_chunks_with_samples(
    chunks: Iterable[Chunk], plan: Plan, *, jobs: int | None = None
) -> tuple[Summary, SampleValues]:
    """:func:`reduce_chunks`, with the per-sample values of the kept samples."""
    summary, samples = _drive(chunks, replace(plan, per_sample=True), jobs)
    assert samples is not None
    return summary, samples


FORK_MAX_CLASSES = 64
"""Worker processes reduce inputs of at most this many classes; threads, the
others.  A block holds ~1M scores: with few classes, that is many samples,
and the per-sample numpy calls (some, like ``bincount``, holding the GIL)
serialise threads (jobs 1 -> 2 on 32x19x512x512 segmentation logits: 1.64x in
threads, 1.75-1.85x in processes); with 1000 classes a block is 1000 rows,
threads scale (1.82x on 50,000x1000) and processes pay more to start and to
send their class-wise sums back (1.5x)."""


def _drive(
    chunks: Iterable[Chunk], plan: Plan, jobs: int | None
) -> tuple[Summary, SampleValues | None]:
    """Merge the blocks' summaries in two levels, the same on every path:
    the blocks of a group in order into the group's summary, the groups in
    order into the total (a worker process merges its group itself and
    sends one summary: see :func:`_outputs`)."""
    total: Summary | None = None
    group: Summary | None = None
    parts: list[SampleValues] = []
    workers = _rd.default_threads() if jobs is None else max(1, int(jobs))
    with _one_blas_thread(plan, workers):
        for out, last in _outputs(chunks, plan, jobs):
            group = out.summary if group is None else group.merge(out.summary)
            if out.samples is not None:
                parts.append(out.samples)
            progress.advance(out.nbytes)
            if last:
                total = group if total is None else total.merge(group)
                group = None
    assert group is None, "every path ends its last group"
    if total is None:
        raise ValueError("no chunks to reduce")
    return total, SampleValues.concatenate(parts) if parts else None


def _one_blas_thread(
    plan: Plan, workers: int
) -> contextlib.AbstractContextManager[object]:
    """With a bootstrap and several workers, one BLAS thread while they run: its matrix
    products (class-wise sums: 1000 rows x 1000 classes x 279 replicates a
    block) run in every worker at once, and BLAS threads of their own on top
    of them made the pass 1.8x slower on 2 cores (50,000 x 1000 logits,
    ``ci=0.95``: 2.43 s against 1.36 s)."""
    if plan.bootstrap is None or workers < 2:
        return contextlib.nullcontext()
    return one_blas_thread()


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """numpy's BLAS limited to one thread while relcal's own workers run
    (nothing to do where ``OPENBLAS_NUM_THREADS=1``, as the ``relcal``
    command sets it).  Without it ``relcal.evaluate`` of 50,000x1000 logits
    on 2 threads took 0.239 s against 0.204 s (best of 5), its one-thread
    time unchanged."""
    if os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


if TYPE_CHECKING:  # (relcal.reduce imports this module)
    Out = tuple[_rd.BlockOut, bool]
    """A block's output (or a group's, merged in a worker process) and
    whether it ends its group."""


def _outputs(chunks: Iterable[Chunk], plan: Plan, jobs: int | None) -> Iterator[Out]:
    """Every block's output, in order, each with whether it ends its group
    (a piece of files, a run of an in-memory input's blocks, a streamed
    chunk): in forked worker processes where they may run
    (:mod:`relcal.forked`) and the whole input is known now (a list of
    in-memory chunks, or pieces of files any process can read), each merging
    a group's blocks into one output, else on the thread pool."""
    workers = _rd.default_threads() if jobs is None else max(1, int(jobs))
    processes = not plan.per_sample and plan.n_classes <= FORK_MAX_CLASSES
    if is_pieces(chunks):
        if processes and forked.usable(len(chunks), workers):  # type: ignore[arg-type]
            _rd.stop_pool()
            return _forked_pieces(chunks, plan, workers)
        return _in_order(_task_stream(chunks, plan), workers)
    if isinstance(chunks, (list, tuple)):
        tasks = list(_task_stream(chunks, plan))
        size = run_size(len(tasks))
        runs = [
            [t for t, _ in tasks[lo : lo + size]] for lo in range(0, len(tasks), size)
        ]
        if processes and forked.usable(len(runs), workers):
            _rd.stop_pool()
            return (
                (out, True)
                for out in forked.run([partial(_run_all, r) for r in runs], workers)
            )
        ends = ((t, i == len(r) - 1) for r in runs for i, t in enumerate(r))
        return _in_order(ends, workers)
    return _in_order(_task_stream(chunks, plan), workers)


RUNS = 128
"""An in-memory input's blocks are merged in about this many runs of
consecutive ones (their number depends on the input only, never on the jobs):
a worker process takes a run at a time and sends back its merged summary,
which the parent merges in turn.  On 32x19x512x512 logits at 2 jobs (608
blocks) the parent received and merged a summary a block, ~0.09 s of CPU a
pass taken from the two workers.  Runs of 1/128 of the work still leave 8 a
worker at 16 jobs, so that the workers wait little for each other at the
end."""


def run_size(n_tasks: int) -> int:
    """Blocks in a run of an input of ``n_tasks`` blocks (:data:`RUNS`)."""
    return max(1, -(-n_tasks // RUNS))


def _run_all(tasks: Sequence[Callable[[], _rd.BlockOut]]) -> _rd.BlockOut:
    return merged([task() for task in tasks])


def merged(outs: Sequence[_rd.BlockOut]) -> _rd.BlockOut:
    """Blocks' outputs as one: their summaries merged in order (as
    :func:`_drive` merges a group's), their samples joined, their bytes."""
    summary = outs[0].summary
    for out in outs[1:]:
        summary = summary.merge(out.summary)
    samples = [o.samples for o in outs if o.samples is not None]
    return _rd.BlockOut(
        summary,
        SampleValues.concatenate(samples) if samples else None,
        sum(o.nbytes for o in outs),
    )


def is_pieces(chunks: object) -> bool:
    """Whether ``chunks`` are :class:`relcal.stream.Pieces` (told without
    importing the stream module): chunks a worker process can read itself."""
    return getattr(chunks, "pieces_of_files", False) is True


def _task_stream(
    chunks: Iterable[Chunk], plan: Plan
) -> Iterator[tuple[Callable[[], _rd.BlockOut], bool]]:
    """Every chunk's block tasks, each with whether it ends its chunk (a
    group, as it is where a worker process reduces a piece)."""
    for s, y, start in chunks:
        tasks = _tasks(s, y, plan, start)
        yield from ((t, i == len(tasks) - 1) for i, t in enumerate(tasks))


def _forked_pieces(pieces: Any, plan: Plan, workers: int) -> Iterator[Out]:
    """Every piece read and reduced by a worker process, its blocks merged
    there; the pass's all-ignored check as :meth:`Stream.chunks` makes it."""
    tasks = [partial(_piece_outputs, pieces, k, plan) for k in range(len(pieces))]
    kept = False
    for out, piece_kept, noticed in forked.run(tasks, workers):
        kept = kept or piece_kept
        pieces.notice(noticed)
        if out is not None:  # a piece of no blocks
            yield out, True
    pieces.finish(kept)


def _piece_outputs(
    pieces: Any, k: int, plan: Plan
) -> tuple[_rd.BlockOut | None, bool, Any]:
    """A worker process's piece: its blocks merged.  An image larger than
    :data:`relcal.stream.PART_BYTES` is read a pixel range at a time
    (:meth:`relcal.stream.Pieces.parts`), its blocks the same as read whole;
    where a part holds an error, the piece is read whole to raise it exactly."""
    outs = None
    split = pieces.parts(k, partial(_rd.slab_pixels, plan=plan))
    if split is not None:
        labels, parts = split
        outs = _parts_outputs(parts, plan)
    if outs is None:
        scores, labels, start = pieces.read(k)
        outs = [task() for task in _tasks(scores, labels, plan, start)]
    return merged(outs) if outs else None, pieces.kept(labels), pieces.noticed(labels)


def _parts_outputs(
    parts: Iterator[tuple[np.ndarray, np.ndarray, int, int]], plan: Plan
) -> list[_rd.BlockOut] | None:
    """The blocks of an image's parts, or None where a part holds an error or
    the blocks are not the image's (a part after one that is not a whole
    number of blocks: scores :meth:`relcal.stream.Pieces.mapped` to another
    dtype, say)."""
    outs: list[_rd.BlockOut] = []
    ragged = False
    try:
        for s, y, start, _ in parts:
            if ragged:
                return None
            ragged = s.shape[-1] % (_rd.slab_pixels(s.dtype, plan) or 1) != 0
            tasks = _tasks(s, y, plan, start)
            del s, y  # the tasks' alone: the next part reuses the buffer
            outs += [task() for task in tasks]
            del tasks
    except RelcalError:
        return None
    return outs


def _tasks(
    scores: np.ndarray, labels: np.ndarray, plan: Plan, start: int
) -> list[Callable[[], _rd.BlockOut]]:
    """The chunk's block tasks; with a bootstrap, each also adds its
    samples' replicate sums (computed in the block's thread)."""
    if plan.bootstrap is None:
        return _rd.blocks(scores, labels, plan, start)
    tasks = _rd.blocks(scores, labels, replace(plan, per_sample=True), start)
    return [partial(_with_replicates, t, plan) for t in tasks]


def _with_replicates(task: Callable[[], _rd.BlockOut], plan: Plan) -> _rd.BlockOut:
    out = task()
    assert out.samples is not None
    summary = replace(out.summary, replicates=replicates_of(out.samples, plan))
    return replace(
        out, summary=summary, samples=out.samples if plan.per_sample else None
    )


def replicates_of(samples: SampleValues, plan: Plan) -> tuple[tuple[str, Any], ...]:
    """The bootstrap's replicate sums of some samples (``plan.bootstrap``):
    the top-label set binned by ``plan.toplabel_edges`` and, with
    ``plan.positive_edges``, the positive-class set (P(class 1) against
    label == 1), each resampled by ``samples.unit``."""
    from relcal.binning import assign_bins
    from relcal.bootstrap import replicate_sums

    boot, edges = plan.bootstrap, plan.toplabel_edges
    assert boot is not None and edges is not None
    options = {
        "n_bins": len(edges) - 1,
        "n_replicates": boot.n_replicates,
        "seed": boot.seed,
    }
    conf = samples.confidence
    top = replicate_sums(
        samples.unit,
        assign_bins(conf, edges),
        conf,
        samples.correct.astype(np.float64),
        samples.nll if plan.nll else None,
        samples.brier if plan.brier else None,
        **options,
    )
    out: list[tuple[str, Any]] = [("top", top)]
    if boot.images and any(name == "confidence values" for name, _ in plan.probes):
        from relcal.bootstrap import UNBINNED_REPLICATES
        from relcal.unitgrid import UnitGrid

        grid = UnitGrid.of(
            samples.unit,
            conf,
            samples.correct,
            n_replicates=min(UNBINNED_REPLICATES, boot.n_replicates),
            seed=boot.seed,
        )
        out.append(("grid", grid))
    pos_edges = plan.positive_edges
    if pos_edges is not None and samples.positive is not None:
        p1 = samples.positive
        positive = replicate_sums(
            samples.unit,
            assign_bins(p1, pos_edges),
            p1,
            (samples.labels == 1).astype(np.float64),
            None,
            None,
            **{**options, "n_bins": len(pos_edges) - 1},
        )
        out.append(("positive", positive))
    return tuple(out)


def _in_order(
    tasks: Iterator[tuple[Callable[[], _rd.BlockOut], bool]], workers: int
) -> Iterator[Out]:
    """The blocks' results in order, each with its end-of-group flag, on the
    shared pool when there are several: at most two blocks a worker in
    flight, so the next chunk is read while the last blocks of this one run
    (and no more chunks are held than that)."""
    first = list(itertools.islice(tasks, 2))
    if len(first) <= 1 or workers <= 1:  # small input: no pool
        for t, last in itertools.chain(first, tasks):
            yield t(), last
        return
    with one_blas_thread():
        yield from _windowed(itertools.chain(first, tasks), workers)


def _windowed(
    tasks: Iterator[tuple[Callable[[], _rd.BlockOut], bool]], workers: int
) -> Iterator[Out]:
    pool = _rd.shared_pool(workers)
    window: deque[tuple[Future[_rd.BlockOut], bool]] = deque()
    try:
        for t, last in tasks:
            window.append((pool.submit(t), last))
            if len(window) > 2 * workers:
                f, end = window.popleft()
                yield f.result(), end
        while window:
            f, end = window.popleft()
            yield f.result(), end
    finally:
        for f, _ in window:
            f.cancel()


def array_chunks(scores: np.ndarray, labels: np.ndarray, rows: int) -> Iterator[Chunk]:
    """In-memory arrays as chunks of ``rows`` leading-axis rows (views)."""
    n = scores.shape[0]
    for lo in range(0, n, max(1, int(rows))):
        hi = min(n, lo + max(1, int(rows)))
        yield scores[lo:hi], labels[lo:hi], lo


# --------------------------------------------------------------------------
# equal-mass edges


Source = Callable[[], Iterable[Chunk]]


def mass_summary(
    source: Source | None,
    plan: Plan,
    n_bins: int,
    names: Sequence[str],
    *,
    jobs: int | None = None,
    reducer: Callable[[Plan], Summary] | None = None,
) -> Summary:
    """The summary of ``plan`` with equal-mass bins of the variables ``names``
    ("confidence", and "positive" for two classes): their edges exactly
    ``binning.mass_edges`` of them.

    ``source()`` yields the chunks anew for each pass.  The first pass is
    ``plan``'s own (every sum but the binned ones) with a histogram of each
    variable.  Its ranges holding an order statistic are histogrammed again
    while they hold more than ``binning.COLLECT_MAX`` values (rarely), and the
    last pass collects their values and bins the others (:class:`PendingBins`):
    usually two passes in all.  The passes compute the confidences exactly as
    ``plan``'s own does (``float64`` unless it is top-label only).
    ``reducer(plan)``, when given, makes the passes instead of
    :func:`reduce_chunks` over ``source()`` (a Dask cluster, :mod:`relcal.dask`).
    """
    if reducer is None:
        assert source is not None
        reducer = lambda p: reduce_chunks(source(), p, jobs=jobs)  # noqa: E731
    searches = {name: QuantileSearch(n_bins) for name in names}
    own = plan.probes  # the plan's own probes (value histograms) ride along
    first = reducer(
        replace(
            plan,
            toplabel_edges=None,
            positive_edges=None,
            probes=own + _probes(searches),
        )
    )
    # a variable the reduction does not measure (P(class 1) of a two-class
    # segmentation map) has no equal-mass bins, as it has no equal-width ones
    searches = {k: s for k, s in searches.items() if k in dict(first.probes)}
    _update(searches, first)
    values_only = replace(
        plan,
        toplabel_edges=None,
        classwise_edges=None,
        positive_edges=None,
        nll=False,
        brier=False,
        float64=not plan.top_only,
    )
    while not all(s.ready for s in searches.values()):
        more = reducer(replace(values_only, probes=_probes(searches)))
        _update(searches, more)
    bins = {f"{name} bins": s.pending_bins() for name, s in searches.items()}
    probes = _probes(searches) + tuple(bins.items())
    last = reducer(replace(values_only, probes=probes))
    _update(searches, last)
    tables = {
        name: bins[f"{name} bins"].table(last.probe(f"{name} bins"), s.edges())
        for name, s in searches.items()
    }
    mine = {name for name, _ in own}
    return replace(
        first,
        table=tables["confidence"],
        positive=tables.get("positive"),
        probes=tuple((k, v) for k, v in first.probes if k in mine),
    )


def _probes(searches: dict[str, QuantileSearch]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, s.next_probe()) for k, s in searches.items() if not s.done)


def _update(searches: dict[str, QuantileSearch], summary: Summary) -> None:
    got = dict(summary.probes)
    for name, search in searches.items():
        if name in got:
            search.update(summary.n, got[name])
