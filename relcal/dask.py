"""Dask: the summaries of :mod:`relcal.summary` computed on a cluster's workers.

The flow is the one of every other path ("reduce chunks, merge summaries"):
a dataset is cut into blocks of whole leading-axis rows; each block is read,
checked and reduced **on a worker** (:func:`relcal.summary.reduce_chunk` with
``start`` = the block's first row among all rows); the block summaries are
merged pairwise in a fixed tree (block order kept), so a result does not
depend on which worker ran what.  Only summaries (bin sums, totals) travel
back to the client, never scores.

Where the blocks come from:

- dask arrays (or dask series) given to :func:`relcal.evaluate` and the
  other metric functions: rechunked so that only the leading axis is split,
  scores and labels alike (:func:`summarize_arrays`);
- a ``.npy`` pair, or a directory or glob of them (:func:`evaluate_file`):
  the client reads the headers only (:func:`relcal.stream.open_stream`), each
  worker reads its block of rows from the file itself (a seek and a read: no
  memory map is ever pickled), so **the workers must see the same path**;
- ``.parquet`` files: ``dask.dataframe.read_parquet`` partitions, each read
  on a worker.

Checks are those of the in-memory path, in the same order: labels (the
error of the whole input, with its counts and first position), then the
ignore label removing everything, then the kind (logits or probabilities,
decided as :func:`relcal.validate.detect_kind` decides: mergeable
:class:`relcal.validate.ProbStats` of every block, after a look at the first
block).  Equal-mass bins take the same passes as in memory
(:func:`relcal.metrics.summarize_with`), each a pass over the cluster.

dask is imported only by the functions here, never when relcal starts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from relcal import validate
from relcal.errors import FormatError, RelcalError
from relcal.summary import Plan, Summary, reduce_chunk

INSTALL = "pip install 'relcal[dask]'"
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a scheduler before giving up."""

BLOCK_BYTES = 16 << 20
"""Bytes of scores in a block at least: smaller leading-axis chunks are
joined (a task costs the scheduler milliseconds, whatever its size)."""


def is_dask(x: object) -> bool:
    """A Dask collection (array, series, data frame), told without importing dask."""
    return type(x).__module__.startswith("dask.")


def require_dask() -> Any:
    """``dask.array``, or an error saying how to install it."""
    try:
        import dask.array as da
    except ImportError:
        raise RelcalError(f"this needs dask: {INSTALL}") from None
    return da


@contextmanager
def connect(address: str, timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address`` (the default
    scheduler inside the ``with``), closed after it; a one-line error when
    the scheduler cannot be reached within ``timeout`` seconds."""
    require_dask()
    try:
        from distributed import Client
    except ImportError:
        raise RelcalError(
            f"dask_scheduler= needs dask.distributed: {INSTALL}"
        ) from None
    wait = CONNECT_TIMEOUT if timeout is None else timeout
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its retries would print lines of their own
    try:
        client = Client(address, timeout=wait, set_as_default=True)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        why = _short(exc)
        raise RelcalError(
            f"cannot reach the Dask scheduler at {address!r} within {wait:g} s ({why})"
        ) from None
    finally:
        quiet.setLevel(level)
    try:
        yield client
    finally:
        client.close()


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------
# what a worker does with one block


@dataclass(frozen=True)
class _Failed:
    """A RelcalError raised on a worker, carried back as a value: ``rank`` 0
    for the checks of the input (reported first, as the in-memory path
    checks everything before reducing), 1 for the reduction."""

    rank: int
    error: RelcalError


@dataclass(frozen=True)
class _Count:
    """What the first pass learns of some blocks: rows, score vectors, kept
    samples, rows dropped (tables) and the probability stats."""

    rows: int
    vectors: int
    kept: int
    dropped: int
    stats: validate.ProbStats | None
    dtype: str

    def merge(self, later: _Count) -> _Count:
        stats = self.stats
        if stats is None:
            stats = later.stats
        elif later.stats is not None:
            stats = stats.merge(later.stats, self.vectors)
        return _Count(
            self.rows + later.rows,
            self.vectors + later.vectors,
            self.kept + later.kept,
            self.dropped + later.dropped,
            stats,
            self.dtype if self.rows else later.dtype,
        )


def _load(load: Any, raw: Any) -> tuple[np.ndarray, np.ndarray, int] | _Failed:
    try:
        return load(raw)  # type: ignore[no-any-return]
    except RelcalError as err:
        return _Failed(0, load.exact(raw, err))


def _count_task(load: Any, raw: Any, stats: bool) -> _Count | _Failed:
    got = _load(load, raw)
    if isinstance(got, _Failed):
        return got
    s, y, dropped = got
    ignore = load.ignore_index
    kept = y.size if ignore is None else int(np.count_nonzero(y != ignore))
    vectors = len(s) * math.prod(s.shape[2:])
    probs = validate.probability_stats(s) if stats and len(s) else None
    return _Count(len(s), vectors, kept, dropped, probs, str(s.dtype))


def _reduce_task(load: Any, raw: Any, start: int, plan: Plan) -> Summary | Any:
    got = _load(load, raw)
    if isinstance(got, _Failed):
        return got
    s, y, _ = got
    if not len(s):
        return None  # a partition whose rows were all dropped
    try:
        return reduce_chunk(s, y, plan, start=start)
    except RelcalError as err:
        return _Failed(1, err)


def _merge(a: Any, b: Any) -> Any:
    """Two results in order: the first error of the lowest rank, else the merge."""
    if isinstance(a, _Failed) or isinstance(b, _Failed):
        failed = [x for x in (a, b) if isinstance(x, _Failed)]
        return min(failed, key=lambda f: f.rank)
    if a is None or b is None:
        return b if a is None else a
    return a.merge(b)


# --------------------------------------------------------------------------
# how a block is read and checked (on the worker)


@dataclass(frozen=True)
class _ArrayLoad:
    """Blocks of arrays: checked as :func:`relcal.validate.prepare` checks them."""

    ignore_index: int | None

    def __call__(self, raw: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray, int]:
        s = validate.check_float_scores(np.asarray(raw[0]))
        y, _ = validate.prepare_labels(
            s, np.asarray(raw[1]), ignore_index=self.ignore_index
        )
        return s, y, 0

    def exact(self, raw: Any, err: RelcalError) -> RelcalError:
        return err  # the client finds the whole input's error (_Dataset.exact)


@dataclass(frozen=True)
class _Rows:
    """Rows ``lo:hi`` of one part (a .npy pair) of a dataset."""

    part: Any  # relcal.stream._Part
    lo: int
    hi: int


def read_rows(arr: Any, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` of a .npy file (``relcal.stream._Array.read_rows``)."""
    return arr.read_rows(lo, hi)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _NpyLoad:
    """Blocks of .npy pairs: read on the worker, checked as the stream checks."""

    ignore_index: int | None

    def __call__(self, raw: _Rows) -> tuple[np.ndarray, np.ndarray, int]:
        p = raw.part
        s = read_rows(p.scores, raw.lo, raw.hi)
        y = read_rows(p.labels, raw.lo, raw.hi)
        return (*p.checked(s, y), 0)

    def exact(self, raw: _Rows, err: RelcalError) -> RelcalError:
        if err.source is not None:
            return err  # a file that changed or ended: already named
        return raw.part.exact(err)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _TableLoad:
    """Partitions of .parquet files: checked as the stream checks a table."""

    spec: Any  # relcal.stream._TableSpec
    files: tuple[Any, ...]  # relcal.stream._TableFile
    options: dict[str, Any]

    @property
    def ignore_index(self) -> int | None:
        return self.options["ignore_index"]  # type: ignore[no-any-return]

    def __call__(self, df: Any) -> tuple[np.ndarray, np.ndarray, int]:
        from relcal.stream import _columns

        df = df.reset_index(drop=True)
        df.columns = [str(c) for c in df.columns]
        return self.spec.arrays(df[_columns(self.spec)])  # type: ignore[no-any-return]

    def exact(self, raw: Any, err: RelcalError) -> RelcalError:
        from relcal.stream import _table_exact

        return _table_exact(self.files, self.options, err)


# --------------------------------------------------------------------------
# a dataset as blocks, and its summary


@dataclass
class _Dataset:
    """Blocks of leading-axis rows to read and reduce on the workers.

    ``raws[i]`` is what block i's task reads (a tuple of two dask blocks, a
    :class:`_Rows`, a data frame partition); ``starts`` the first row of each
    block among all (None: counted in the first pass, as for tables);
    ``n_rows``/``row_shape``/``dtype`` those of the checked scores (None:
    counted).
    """

    load: Any
    raws: list[Any]
    starts: list[int] | None
    n_classes: int
    declared: str
    n_rows: int | None
    row_shape: tuple[int, ...]
    dtype: np.dtype | None
    source: str | None = None
    exact: Callable[[RelcalError], RelcalError] | None = None
    count: _Count | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        rows = self.n_rows if self.count is None else self.count.rows
        assert rows is not None
        return (rows, *self.row_shape)

    def fail(self, failed: _Failed) -> RelcalError:
        err = failed.error
        if failed.rank == 0 and self.exact is not None:
            err = self.exact(err)
        return err.with_source(self.source) if self.source else err


def _compute(tasks: list[Any]) -> list[Any]:
    import dask

    return list(dask.compute(*tasks))


def _tree(parts: Sequence[Any]) -> Any:
    """The merge of ``parts`` (delayed), pairwise in a fixed order."""
    from dask import delayed

    level = list(parts)
    while len(level) > 1:
        level = [
            delayed(_merge)(*level[i : i + 2]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def _counted(data: _Dataset, stats: bool) -> _Count:
    """The first pass: every block checked and counted (and its stats)."""
    from dask import delayed

    results = _compute(
        [delayed(_count_task)(data.load, raw, stats) for raw in data.raws]
    )
    total = results[0]
    for r in results[1:]:
        total = _merge(total, r)
    if isinstance(total, _Failed):
        raise data.fail(total)
    counts = [r.rows for r in results]
    data.starts = [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])]
    data.count = total
    return total  # type: ignore[no-any-return]


def _kind(data: _Dataset) -> str:
    """The kind of the scores, as :func:`relcal.validate.detect_kind` decides
    it on all of them (a first pass unless declared or clear from block 0)."""
    from dask import delayed

    declared = data.declared
    if declared == "logits" and data.starts is not None:
        return "logits"
    if declared == "auto" and data.starts is not None:
        first = delayed(_count_task)(data.load, data.raws[0], True).compute()
        if isinstance(first, _Count) and first.stats and not first.stats.in_range:
            return "logits"
    count = _counted(data, stats=declared != "logits")
    ignore = data.load.ignore_index
    if not count.kept:
        if ignore is not None and count.rows:
            raise _sourced(validate.all_ignored_error(ignore), data)
        raise _sourced(FormatError("no rows left"), data)  # every row dropped
    if declared == "logits":
        return "logits"
    assert count.stats is not None
    dtype = np.dtype(count.dtype) if data.dtype is None else data.dtype
    try:
        return validate.kind_from_stats(count.stats, declared, dtype, data.shape)
    except RelcalError as err:
        raise _sourced(err, data) from None


def _sourced(err: RelcalError, data: _Dataset) -> RelcalError:
    if data.exact is not None and err.source is None and data.source is None:
        return data.exact(err)
    return err.with_source(data.source) if data.source else err


def _reducer(data: _Dataset) -> Callable[[Plan], Summary]:
    """One pass of ``plan`` over the cluster: its merged summary."""
    from dask import delayed

    def run(plan: Plan) -> Summary:
        assert data.starts is not None
        tasks = [
            delayed(_reduce_task)(data.load, raw, start, plan)
            for raw, start in zip(data.raws, data.starts, strict=True)
        ]
        total = _compute([_tree(tasks)])[0]
        if isinstance(total, _Failed):
            raise data.fail(total)
        if total is None:
            raise _sourced(FormatError("no rows left"), data)
        return total  # type: ignore[no-any-return]

    return run


def summarize_dataset(
    data: _Dataset,
    *,
    n_bins: int = 15,
    binning: str = "width",
    bootstrap: Any = None,
    **asked: bool,
) -> tuple[Summary, str]:
    """The summary of every metric (or those ``asked`` for, as
    :func:`relcal.metrics.plan_for` takes them) and the kind of the scores;
    with the replicate sums of ``bootstrap`` (a
    :class:`relcal.summary.BootstrapPlan`) when given."""
    from dataclasses import replace

    from relcal.metrics import plan_for, summarize_with

    kind = _kind(data)
    ignore = data.load.ignore_index
    plan = plan_for(kind, data.n_classes, ignore, n_bins=n_bins, **asked)
    plan = replace(plan, bootstrap=bootstrap)
    summary = summarize_with(_reducer(data), plan, n_bins=n_bins, binning=binning)
    if summary.n == 0 and ignore is not None:
        raise _sourced(validate.all_ignored_error(ignore), data)
    return summary, kind


# --------------------------------------------------------------------------
# dask arrays


def summarize_arrays(
    scores: Any,
    labels: Any,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
    n_bins: int = 15,
    binning: str = "width",
    bootstrap: Any = None,
    **asked: bool,
) -> tuple[Summary, str]:
    """The summary of dask arrays (or series; one may be a numpy array) and
    the kind of the scores: what :func:`relcal.evaluate` computes in memory,
    computed on the scheduler's workers (the current ``distributed.Client``,
    or dask's default scheduler)."""
    return summarize_dataset(
        array_dataset(scores, labels, kind=kind, ignore_index=ignore_index),
        n_bins=n_bins,
        binning=binning,
        bootstrap=bootstrap,
        **asked,
    )


def _as_dask(x: Any) -> Any:
    """A dask array of ``x``: series and frames with known lengths, an array
    of numpy (one chunk: the other input's chunks cut it)."""
    da = require_dask()
    if not is_dask(x):
        return da.from_array(np.asarray(x), chunks=-1)
    if not isinstance(x, da.Array):
        x = x.to_dask_array(lengths=True)
    if any(math.isnan(c) for c in x.chunks[0] if c is not None):
        x = x.compute_chunk_sizes()
    return x


def array_dataset(
    scores: Any, labels: Any, *, kind: str = "auto", ignore_index: int | None = None
) -> _Dataset:
    """Dask arrays as a dataset of blocks of leading-axis rows."""
    if kind not in validate.KINDS:
        raise RelcalError(
            f"scores kind must be one of {', '.join(validate.KINDS)}. Got {kind!r}"
        )
    validate.check_ignore_index(ignore_index)
    s, y = _as_dask(scores), _as_dask(labels)
    validate.check_scores_layout(s.dtype, s.shape)
    dtype = s.dtype if s.dtype.kind == "f" else np.dtype(np.float64)
    stand_in = np.broadcast_to(np.zeros((), dtype), s.shape)
    _, n_classes = validate.prepare_labels(
        stand_in, np.broadcast_to(np.zeros((), y.dtype), y.shape), values=False
    )
    rows: Any = (s if is_dask(scores) else y).chunks[0]
    row_bytes = math.prod(s.shape[1:]) * s.dtype.itemsize
    if max(rows) * row_bytes < BLOCK_BYTES:
        rows = max(1, BLOCK_BYTES // max(1, row_bytes))
    s = s.rechunk((rows, *(-1 for _ in s.shape[1:])))
    y = y.rechunk((rows, *(-1 for _ in y.shape[1:])))
    raws = list(zip(s.to_delayed().ravel(), y.to_delayed().ravel(), strict=True))
    starts = [int(x) for x in np.concatenate([[0], np.cumsum(s.chunks[0])[:-1]])]

    def exact(err: RelcalError) -> RelcalError:
        # the error of the whole input (counts, first position): the labels
        # are gathered for this message only
        try:
            validate.prepare(
                stand_in, y.compute(), kind="logits", ignore_index=ignore_index
            )
        except RelcalError as whole:
            return whole
        return err

    return _Dataset(
        _ArrayLoad(ignore_index),
        raws,
        starts,
        n_classes,
        kind,
        s.shape[0],
        s.shape[1:],
        dtype,
        exact=exact,
    )


class _NpyArray:
    """A .npy file as an array-like for ``dask.array.from_array``: slicing
    reads the rows from the file (on whichever worker computes the block);
    pickling it sends the path and header, never the data."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr
        self.shape = tuple(arr.shape)
        self.dtype = arr.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        lead = key[0] if key else slice(None)
        lo, hi, step = lead.indices(self.shape[0])
        rows = read_rows(self.arr, lo, max(lo, hi))
        return rows[(slice(None, None, step), *key[1:])]


def read_npy(path: str, *, rows: int | None = None) -> Any:
    """A dask array over a .npy file whose blocks of ``rows`` leading-axis
    rows (default: about 32 MB) are read by the workers from the file itself
    (the path must be the same on every worker).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "s.npy")
    >>> np.save(p, np.arange(12.0).reshape(6, 2))
    >>> x = read_npy(p, rows=4)
    >>> x.chunks, float(x.sum().compute())
    (((4, 2), (2,)), 66.0)
    """
    da = require_dask()
    from pathlib import Path

    from relcal.stream import CHUNK_BYTES, _array

    try:
        arr = _array(Path(path))
    except RelcalError as err:
        raise err.with_source(str(path)) from None
    row = max(1, math.prod(arr.shape[1:]) * arr.dtype.itemsize)
    step = rows or max(1, CHUNK_BYTES // row)
    chunks = (step, *(-1 for _ in arr.shape[1:]))
    meta = np.empty((0,) * len(arr.shape), dtype=arr.dtype)
    return da.from_array(_NpyArray(arr), chunks=chunks, meta=meta, name=False)


# --------------------------------------------------------------------------
# files: .npy pairs and .parquet tables, read by the workers


def file_dataset(path: str, options: dict[str, Any]) -> tuple[_Dataset, Any]:
    """A file (or a directory or glob) as a dataset read by the workers, and
    what the loader knows of it (a namespace as :class:`relcal.io.Predictions`
    for the ``"input"`` block of the results)."""
    from relcal import io
    from relcal.pipeline import _stream_input
    from relcal.stream import dataset_files, open_stream

    try:
        pairs = dataset_files(path, options.get("labels"))
    except RelcalError as err:
        raise err.with_source(str(path)) from None
    if all(p.suffix.lower() in io.TABLES for p, _ in pairs):
        return _table_dataset(path, [p for p, _ in pairs], options)
    stream = open_stream(path, **{**options, "kind": "logits"})
    parts = stream._parts
    npz = next((p for p in parts if p.scores.key is not None), None)
    if npz is not None:
        raise FormatError(
            "dask_scheduler= reads .npy pairs and .parquet files; save the"
            " arrays of an .npz with np.save (the workers read their rows)",
            source=npz.source,
        )
    return _npy_dataset(stream, options), _stream_input(stream)


def _npy_dataset(stream: Any, options: dict[str, Any]) -> _Dataset:
    meta = stream.meta
    raw_rows = sum(p.scores.shape[0] for p in stream._parts)
    factor = meta.shape[0] // raw_rows  # pixel rows of channels_last maps
    step = stream.default_rows()
    raws, starts, first = [], [], 0
    for part in stream._parts:
        n = part.scores.shape[0]
        for lo in range(0, n, step):
            raws.append(_Rows(part, lo, min(n, lo + step)))
            starts.append((first + lo) * factor)
        first += n
    return _Dataset(
        _NpyLoad(meta.ignore_index),
        raws,
        starts,
        meta.n_classes,
        options.get("kind", "auto"),
        meta.shape[0],
        meta.shape[1:],
        meta.dtype,
        source=meta.source,
    )


def _table_dataset(
    path: str, paths: list[Any], options: dict[str, Any]
) -> tuple[_Dataset, Any]:
    from relcal import io
    from relcal.stream import _table_exact, _TableFile, _TableSpec

    name = str(path)
    csv = next((p for p in paths if p.suffix.lower() != ".parquet"), None)
    if csv is not None:
        raise FormatError(
            "dask_scheduler= reads .parquet tables (and .npy pairs), not .csv",
            source=str(csv),
        )
    for option in ("models", "pred_col", "confidence_col"):
        if options.get(option) is not None:
            raise FormatError(
                f"dask_scheduler= does not take {option}= yet", source=name
            )
    opts = {k: v for k, v in options.items() if k != "labels"}
    try:
        files = tuple(_TableFile.open(p) for p in paths)
    except RelcalError as err:
        raise err.with_source(name) from None
    read = io.TableRead(
        opts["label_col"],
        opts["score_cols"],
        opts["kind"],
        opts["ignore_index"],
        opts["missing"],
    )
    columns = list(files[0].columns)
    frame = _read_parquet(files)
    try:
        io._need_label(columns, read.label_col)
        named = io.named_score_columns(columns, read.label_col, read.score_cols)
        cols, prefix, notes = named or _default_columns(frame, columns, read.label_col)
    except RelcalError as err:
        raise _table_exact(files, opts, err) from None
    spec = _TableSpec(cols, prefix, [*cols, read.label_col], read)
    data = _Dataset(
        _TableLoad(spec, files, opts),
        list(frame.to_delayed()),
        None,
        2 if len(cols) == 1 else len(cols),
        read.kind,
        None,
        () if len(cols) == 1 else (len(cols),),
        None,
        source=name,
    )
    info = SimpleNamespace(
        scores=None,
        source=name,
        origin={"scores": ",".join(cols), "labels": read.label_col},
        class_names=None if len(cols) == 1 else tuple(c[len(prefix) :] for c in cols),
        ignore_index=read.ignore_index,
        n_samples=0,
        model=None,
        n_dropped=0,
        notes=notes,
    )
    return data, info


def _read_parquet(files: Sequence[Any]) -> Any:
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):
        return dd.read_parquet([str(f.path) for f in files])


def _default_columns(
    frame: Any, columns: list[str], label_col: str
) -> tuple[list[str], str, tuple[str, ...]]:
    """io.load's default score columns, from the profiles of every partition
    (computed on the workers)."""
    from dask import delayed

    from relcal import io

    profiles = _compute([delayed(io.column_profile)(p) for p in frame.to_delayed()])
    profile = profiles[0]
    for later in profiles[1:]:
        profile = {c: profile[c].then(later[c]) for c in profile}

    def mixed(col: str) -> None:
        raise FormatError(f"column {col!r}: a non-numeric value")

    label = profile.get(label_col)
    if label is not None and not label.empty and not label.numeric and label.numbers:
        raise FormatError(f"column {label_col!r}: class names and numbers")
    return io.default_score_columns(profile, columns, label_col, mixed)


def evaluate_file(
    path: str,
    *,
    n_bins: int = 15,
    binning: str = "width",
    values: bool | None = None,
    **options: Any,
) -> tuple[Any, Any]:
    """Every metric of a file read by the workers of the current client:
    ``(Results, info)``, ``info`` standing in for the loaded predictions in
    :func:`relcal.render.source_info`.  ``options`` are those of
    :func:`relcal.io.load`; ``values``: the value histograms (None: auto,
    :func:`relcal.values.wanted`)."""
    from relcal.metrics import summarize
    from relcal.values import wanted

    data, info = file_dataset(path, options)
    n = None
    if data.n_rows is not None:
        n = data.n_rows * math.prod(data.row_shape[1:] if data.row_shape else ())
    summary, kind = summarize_dataset(
        data, n_bins=n_bins, binning=binning, values=wanted(values, n)
    )
    if info.scores is None:  # a table: its rows are counted now
        assert data.count is not None
        dtype = np.dtype(data.count.dtype)
        info.scores = SimpleNamespace(shape=data.shape, dtype=dtype)
        info.n_samples = data.count.rows
        info.n_dropped = data.count.dropped
    results = summarize(
        summary,
        n_bins=n_bins,
        binning=binning,
        kind=kind,
        class_names=info.class_names,
    )
    return results, info
