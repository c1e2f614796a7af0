"""The streamed flows behind ``relcal metrics``, ``report`` and ``check``.

A command opens its input as one or more :class:`Input` (a
:class:`relcal.stream.Stream` per model, never the whole file in memory) and
:func:`measure` reduces each to one :class:`relcal.summary.Summary` by
``reduce_chunks`` over ``stream.chunks()`` on the shared pool: one pass for
equal-width bins, the equal-mass edge search's passes for equal-mass bins,
and, for ``relcal check --confidence``, the Poisson bootstrap's replicate sums
added to the summary (one more pass for equal-mass bins, whose edges must be
known first).  Every figure, table and number the commands print or write is
a function of that summary; nothing per sample outlives its chunk (except, for
a baseline given as predictions, the labels in their smallest integer type,
to check that the baseline holds the same samples).

Test hook: the environment variable ``RELCAL_CHUNK_ROWS`` (a positive
integer) sets the leading-axis rows of every chunk read (default: about 32 MB
of scores, :data:`relcal.stream.CHUNK_BYTES`); the results do not depend on
it beyond float64 rounding.

Arrays stored in Fortran order are not streamed by :mod:`relcal.stream`: they
are loaded whole by :func:`relcal.io.load` and handed on as one chunk (as were
top-label tables before the stream read them).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from relcal.errors import FormatError, InputError, RelcalError
from relcal.metrics import Results, _results_of, plan_for, summarize_chunks
from relcal.summary import BootstrapPlan, Chunk, Summary, is_pieces

CHUNK_ROWS_ENV = "RELCAL_CHUNK_ROWS"
# what relcal.stream does not read (yet): such inputs are loaded whole
_NOT_STREAMED = re.compile(r"^top-label tables|is stored in Fortran order")


def chunk_rows() -> int | None:
    """Rows per chunk from :data:`CHUNK_ROWS_ENV` (None: the stream's default)."""
    raw = os.environ.get(CHUNK_ROWS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(
            f"{CHUNK_ROWS_ENV} must be a positive integer. Got {raw!r} instead"
        )
    return int(raw)


@dataclass(frozen=True)
class ScoresInfo:
    """The shape, dtype and size of an input's scores (not the scores)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


@dataclass(frozen=True, eq=False)
class Input:
    """One model's input: what the outputs say about it (the attributes of
    :class:`relcal.io.Predictions` they read) and its chunks.

    ``scores`` is a :class:`ScoresInfo` (None for a top-label file) and
    ``n_samples`` counts every sample, ignored ones included (pixels for
    segmentation maps).
    """

    source: str
    kind: str
    n_classes: int
    class_names: tuple[str, ...] | None
    scores: ScoresInfo | None
    n_samples: int
    label_shape: tuple[int, ...]
    ignore_index: int | None = None
    origin: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    n_dropped: int = 0
    notes: tuple[str, ...] = ()
    stream: Any = None  # relcal.stream.Stream, or None with ``arrays``
    arrays: Chunk | None = None  # a top-label file, loaded whole

    def chunks(self) -> Iterator[Chunk]:
        """``(scores, labels, start)`` of the input, read anew each call."""
        if self.arrays is not None:
            yield self.arrays
            return
        yield from self.stream.chunks(chunk_rows(), reuse=True)

    def chunk_source(self) -> Iterable[Chunk]:
        """The chunks of :meth:`chunks`, as pieces any worker process can
        read itself where the files allow (:meth:`relcal.stream.Stream.pieces`)."""
        of_stream = getattr(self.stream, "pieces", None)  # an ensemble has none
        if of_stream is not None:
            pieces = of_stream(chunk_rows())
            if pieces is not None:
                return pieces
        return self.chunks()


def open_inputs(path: str, options: dict[str, Any]) -> list[Input]:
    """Every model of ``path`` (one, or one per ``models=`` column) as an
    :class:`Input`; ``options`` are :func:`relcal.io.load`'s."""
    from relcal.stream import open_stream

    try:
        got = open_stream(path, **options)
    except FormatError as err:
        if not _NOT_STREAMED.search(err.message):
            raise
        return _loaded_inputs(path, options)
    streams = got if isinstance(got, list) else [got]
    return [_stream_input(s) for s in streams]


def _stream_input(stream: Any) -> Input:
    m = stream.meta
    shape = tuple(int(d) for d in m.shape)
    label_shape = (shape[0], *shape[2:])
    return Input(
        source=m.source,
        kind=m.kind,
        n_classes=m.n_classes,
        class_names=m.class_names,
        scores=ScoresInfo(shape, np.dtype(m.dtype), int(m.n_bytes)),
        n_samples=math.prod(label_shape),
        label_shape=label_shape,
        ignore_index=m.ignore_index,
        origin=dict(m.origin),
        model=m.model,
        n_dropped=int(m.n_dropped),
        notes=tuple(m.notes),
        stream=stream,
    )


def _loaded_inputs(path: str, options: dict[str, Any]) -> list[Input]:
    """Inputs :mod:`relcal.stream` does not read: loaded whole."""
    from relcal.io import load
    from relcal.metrics import _predictions_chunk

    loaded = load(path, **options)
    preds = loaded if isinstance(loaded, list) else [loaded]
    return [
        Input(
            source=p.source,
            kind=p.kind,
            n_classes=p.n_classes,
            class_names=p.class_names,
            scores=None,
            n_samples=p.n_samples,
            label_shape=tuple(p.labels.shape),
            ignore_index=p.ignore_index,
            origin=dict(p.origin),
            model=p.model,
            n_dropped=p.n_dropped,
            notes=p.notes,
            arrays=_predictions_chunk(p),
        )
        for p in preds
    ]


# --------------------------------------------------------------------------
# measuring


@dataclass(frozen=True, eq=False)
class Measurement:
    """An input measured: every metric, the summary behind them and, when
    asked for, how many units (rows, or images) hold a kept sample and the
    labels as in the file, in their smallest integer dtype."""

    results: Results
    summary: Summary
    n_units: int | None = None
    labels: np.ndarray | None = None


class _Rows:
    """Counts the units holding a kept sample (and keeps the labels) of the
    chunks of one pass."""

    def __init__(self, inp: Input, keep_labels: bool) -> None:
        self.inp = inp
        self.n_units = 0
        self.keep = keep_labels
        self.parts: list[np.ndarray] = []

    def watch(self, chunks: Iterable[Chunk]) -> Iterable[Chunk]:
        """``chunks``, watched: each chunk's labels counted (and kept)."""
        if is_pieces(chunks):  # counted in the worker processes
            return chunks.watched(self.of_chunk, self.add)  # type: ignore[attr-defined]
        return self._watch(chunks)

    def _watch(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        for scores, labels, start in chunks:
            self.add(self.of_chunk(labels))
            yield scores, labels, start

    def of_chunk(self, labels: np.ndarray) -> tuple[int, np.ndarray | None]:
        """The units of a chunk holding a kept sample, and its labels as kept."""
        ignore = self.inp.ignore_index
        per_row = labels.reshape(len(labels), -1)
        if ignore is None:
            n_units = len(labels) if per_row.shape[1] else 0
        else:
            n_units = int(np.count_nonzero((per_row != ignore).any(axis=1)))
        if not self.keep:
            return n_units, None
        return n_units, labels.astype(_label_dtype(self.inp.n_classes, ignore))

    def add(self, counted: tuple[int, np.ndarray | None]) -> None:
        n_units, labels = counted
        self.n_units += n_units
        if labels is not None:
            self.parts.append(labels)

    def labels(self) -> np.ndarray | None:
        if not self.keep:
            return None
        flat = np.concatenate(self.parts) if self.parts else np.zeros(0, np.int64)
        return flat.reshape(self.inp.label_shape)


def _label_dtype(n_classes: int, ignore: int | None) -> np.dtype:
    values = [0, n_classes - 1, *([] if ignore is None else [ignore])]
    return np.result_type(
        np.min_scalar_type(min(values)), np.min_scalar_type(max(values))
    )


def measure(
    inp: Input,
    *,
    n_bins: int = 15,
    binning: str = "width",
    bootstrap: BootstrapPlan | None = None,
    keep_labels: bool = False,
    count_units: bool = False,
    values: bool = False,
    ci: float = 0.95,
    corp: bool = False,
) -> Measurement:
    """Every metric of one input from its chunks (see the module docstring),
    with the bootstrap's replicate sums in the summary, and the intervals at
    level ``ci`` in the results, when ``bootstrap``; ``count_units``: count
    the units holding a kept sample; ``keep_labels``: keep the labels;
    ``values``: the histograms of the forecast values (:mod:`relcal.values`);
    ``corp``: with them, the CORP decompositions."""
    try:
        rows = _Rows(inp, keep_labels) if keep_labels or count_units else None
        return _measure(inp, n_bins, binning, bootstrap, rows, values, ci, corp)
    except RelcalError as err:
        raise err.with_source(inp.source) from None


def _measure(
    inp: Input,
    n_bins: int,
    binning: str,
    boot: BootstrapPlan | None,
    rows: _Rows | None,
    values: bool,
    ci: float,
    corp: bool = False,
) -> Measurement:
    plan = plan_for(
        inp.kind, inp.n_classes, inp.ignore_index, n_bins=n_bins, values=values
    )
    passes = itertools.count()

    def source() -> Iterator[Chunk]:  # the first pass counts the units
        first = next(passes) == 0 and rows is not None
        return rows.watch(inp.chunk_source()) if first else inp.chunk_source()  # type: ignore[union-attr]

    summary = summarize_chunks(
        source, replace(plan, bootstrap=boot), n_bins=n_bins, binning=binning
    )
    results = _results_of(inp, summary, n_bins, binning, ci=ci, corp=corp)
    if rows is None:
        return Measurement(results, summary)
    return Measurement(results, summary, rows.n_units, rows.labels())


def bootstrap_plan(
    inp: Input, n_replicates: int, seed: int, *, n_bins: int
) -> BootstrapPlan:
    """The bootstrap of an input (its leading-axis rows resampled), its size
    checked before any reading: an error names the input."""
    from relcal.bootstrap import check_replicates, check_size

    try:
        check_replicates(n_replicates, n_bins=n_bins)
        unit = "images" if len(inp.label_shape) > 1 else "samples"
        check_size(inp.label_shape[0], n_replicates, unit=unit)
    except RelcalError as err:
        raise err.with_source(inp.source) from None
    return BootstrapPlan(n_replicates, seed, images=len(inp.label_shape) > 1)


def measure_for_report(
    inp: Input,
    *,
    n_bins: int = 15,
    binning: str = "width",
    ci: float | None = 0.95,
    n_replicates: int = 1000,
    seed: int = 0,
    values: bool | None = None,
    corp: bool = True,
) -> Results:
    """The results a report shows of a streamed input: as
    :func:`relcal.metrics.evaluate_predictions` of the loaded file (the
    bootstrap intervals at ``ci``, the unbinned metrics when ``values`` says
    so, auto by default), streamed."""
    from relcal.values import wanted

    boot = (
        None if ci is None else bootstrap_plan(inp, n_replicates, seed, n_bins=n_bins)
    )
    return measure(
        inp,
        n_bins=n_bins,
        binning=binning,
        bootstrap=boot,
        ci=ci or 0.95,
        values=wanted(values, math.prod(inp.label_shape)),
        corp=corp,
    ).results


# --------------------------------------------------------------------------
# relcal check


def measure_for_gate(inp: Input, settings: Any, *, keep_labels: bool = False) -> Any:
    """The :class:`relcal.gate.Measured` of one input under the gate's
    ``settings`` (:class:`relcal.gate.Settings`): with a confidence level,
    the Poisson bootstrap's replicate sums are summed while streaming (the
    same numbers as :func:`relcal.gate.measure` on the loaded arrays).
    ``keep_labels``: keep the labels, to compare a baseline's."""
    from relcal.gate import measured_from_summary

    images = len(inp.label_shape) > 1
    boot = None
    if settings.confidence is not None:
        boot = bootstrap_plan(
            inp, settings.n_replicates, settings.seed, n_bins=settings.n_bins
        )
        # the class-wise sums cost a matrix product of the scores per
        # replicate block: only when a check needs them
        cw = any(t.metric == "classwise_ece" for t in settings.thresholds)
        boot = replace(boot, classwise=cw)
    m = measure(
        inp,
        n_bins=settings.n_bins,
        binning=settings.binning,
        bootstrap=boot,
        keep_labels=keep_labels,
        count_units=boot is not None,
    )
    measured = measured_from_summary(
        m.results,
        m.summary,
        inp.source,
        n_units=m.n_units,
        images=images,
        labels=m.labels,
    )
    return replace(measured, model=inp.model, n_dropped=inp.n_dropped)


# --------------------------------------------------------------------------
# relcal report: before / after temperature scaling


def add_scaling(
    model: Any,
    inp: Input,
    *,
    t_doc: dict[str, Any] | None = None,
    t_path: str | None = None,
    n_bins: int = 15,
    binning: str = "width",
    ci: float | None = 0.95,
    n_replicates: int = 1000,
    seed: int = 0,
) -> None:
    """:func:`relcal.report.add_scaling` of a streamed input: T fitted on
    its chunks (:func:`relcal.temperature.fit_chunks`) or read from
    ``t_doc``, and the metrics after scaling from the scaled chunks (with
    their bootstrap intervals at ``ci`` when the rows are the samples)."""
    from relcal.errors import UnsupportedMetricError
    from relcal.report import scaling_temperature, set_scaling
    from relcal.temperature import _scaled_chunks, fit_chunks

    if inp.kind == "toplabel" or inp.scores is None:
        raise UnsupportedMetricError(
            f"{inp.source}: temperature scaling needs every class's scores; "
            "a top-label file has only the top one"
        )
    where = {"kind": inp.kind, "ignore_index": inp.ignore_index}
    try:
        fit = None
        if t_doc is None:
            fit = fit_chunks(inp.chunk_source, shape=inp.scores.shape, **where)[0]
        t = scaling_temperature(fit, t_doc)
        # the scaled chunks keep their layout and ignored pixels: the plan drops them
        plan = plan_for("logits", inp.n_classes, inp.ignore_index, n_bins=n_bins)
        if ci is not None and len(inp.label_shape) == 1:
            boot = bootstrap_plan(inp, n_replicates, seed, n_bins=n_bins)
            plan = replace(plan, bootstrap=boot)
        summary = summarize_chunks(
            lambda: _scaled_chunks(
                inp.chunk_source, inp.kind, inp.ignore_index, [t], None, 0
            ),
            plan,
            n_bins=n_bins,
            binning=binning,
        )
    except RelcalError as err:
        raise err.with_source(inp.source) from None
    from relcal.metrics import summarize

    after = summarize(
        summary, n_bins=n_bins, binning=binning, kind="logits", ci=ci or 0.95
    )
    set_scaling(model, t, after, fit=fit, t_doc=t_doc, t_path=t_path)


# --------------------------------------------------------------------------
# relcal report --ensemble: the mean of the models' probabilities, streamed


def _ensemble_error(text: str) -> RelcalError:
    from relcal.errors import ShapeError

    # source="": the message names both files itself (as the in-memory one)
    return ShapeError(f"with_ensemble=True: {text}", source="")


def _probs_shape(inp: Input) -> tuple[int, ...]:
    if inp.kind == "toplabel" or inp.scores is None:
        raise InputError(
            f"{inp.source}: a top-label file has only the top class's "
            "confidence; averaging models needs every class's scores"
        )
    shape = inp.scores.shape
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return (shape[0], 2)
    return shape


def ensemble_input(inputs: list[Input], names: list[str]) -> Input:
    """The mean of several streamed models' probabilities as one more input
    (:func:`relcal.report.ensemble`, chunk by chunk: equal numbers); the
    models' chunks are read side by side and cut to common rows."""
    from relcal.report import check_same_classes

    first = inputs[0]
    shape = _probs_shape(first)
    for other in inputs[1:]:
        check_same_classes(other, first, source="")
        if other.label_shape != first.label_shape:
            raise _ensemble_error(_labels_differ(other, first))
        if _probs_shape(other) != shape:
            raise _ensemble_error(
                f"{other.source} has scores of shape {_probs_shape(other)}, "
                f"{first.source} {shape}"
            )
    return replace(
        first,
        source="ensemble of " + ", ".join(names),
        kind="probs",
        scores=ScoresInfo(shape, np.dtype(np.float64), math.prod(shape) * 8),
        origin={"scores": "mean of the models' probabilities"},
        model=None,
        notes=(),
        stream=_Mean(inputs),
        arrays=None,
    )


def _labels_differ(other: Input, first: Input) -> str:
    return (
        f"{other.source} and {first.source} do not hold the same samples in the"
        " same order (their labels differ)"
    )


class _Mean:
    """The chunks of the mean of several inputs' probabilities."""

    def __init__(self, inputs: list[Input]) -> None:
        self.inputs = inputs

    def chunks(self, rows: int | None = None, **_: Any) -> Iterator[Chunk]:
        from relcal.report import scores_probabilities

        its = [inp.chunks() for inp in self.inputs]
        held: list[list[Any]] = [[None, None, 0] for _ in its]  # scores, labels, at
        start = 0
        while True:
            for h, it in zip(held, its, strict=True):
                if h[0] is None or h[2] == len(h[0]):
                    s, y, _ = next(it, (None, None, 0))
                    h[:] = [s, y, 0]
            if held[0][0] is None:
                return
            n = min(len(h[0]) - h[2] for h in held)
            total, y0 = None, held[0][1][held[0][2] : held[0][2] + n].copy()
            for inp, h in zip(self.inputs, held, strict=True):
                s, y, at = h
                if not np.array_equal(y[at : at + n], y0):
                    raise _ensemble_error(_labels_differ(inp, self.inputs[0]))
                p = scores_probabilities(s[at : at + n], inp.kind)
                total = p if total is None else total + p
                h[2] = at + n
            assert total is not None
            total /= len(self.inputs)
            yield total, y0, start
            start += n
