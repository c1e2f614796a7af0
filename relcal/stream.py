"""Streaming readers: a dataset handed to the reduction in chunks of whole
leading-axis rows, in memory that does not grow with the file (issue #13).

``open_stream(path, **the options of relcal.io.load) -> Stream``.  A
:class:`Stream` has ``.meta`` (:class:`StreamMeta`: kind, class count and
names, rows, bytes of scores, sources) and ``.chunks(rows=None)``, which
yields ``(scores, labels, start)``: scores of at most ``rows`` rows of the
file(s) (whole images for segmentation maps), their labels mapped to int64
class indices and checked exactly as :func:`relcal.io.load` checks them (the
same functions), and ``start``, the index of the chunk's first row among all
rows of the dataset.  ``chunks()`` may be called again: each call reads the
files again, and a file that changed or disappeared in between is an error.

What is decided before the first chunk, and how:

- the class count and names: from the headers (.npy/.npz) or the columns
  (tables), never from the values;
- the kind (logits or probabilities): ``kind="logits"`` is taken as stated;
  otherwise, as :func:`relcal.validate.detect_kind` does on all rows: a value
  outside [0, 1] (or NaN) anywhere means logits, found in the first chunk
  for almost every file of logits.  When the first chunk holds none,
  ``open_stream`` reads the scores once (stopping at the first such value):
  only then are they probabilities, or rows in [0, 1] not summing to 1 (an
  error).  ``StreamMeta.first_pass`` says whether it did.

Labels are checked chunk by chunk; when a chunk holds a bad one, the error is
the one :func:`relcal.io.load` gives on the whole file (its counts and first
position), found by checking every label again (the labels only, without the
scores).

A directory or glob is one dataset (see :func:`dataset_files`).

Worker processes read a piece of a .npy pair that is one image of more than
:data:`PART_BYTES` of scores a pixel range at a time (:meth:`Pieces.parts`),
so that their memory does not grow with the images either.
"""

from __future__ import annotations

import glob
import inspect
import math
import os
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from io import FileIO
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from . import io
from .errors import FormatError, RelcalError
from .validate import (
    KINDS,
    ProbStats,
    all_ignored_error,
    check_float_scores,
    check_ignore_index,
    check_scores_layout,
    kind_from_stats,
    prepare_labels,
    probability_stats,
)

CHUNK_BYTES = 32 << 20
"""Bytes of scores in a chunk by default (at least one row)."""

PART_BYTES = 8 << 20
"""A worker process reads an image of more scores than this in parts of
about this size (:meth:`Pieces.parts`)."""

READ_BYTES = 4 << 20
"""Bytes asked of a file in one ``readinto`` call."""

SCORE_DIRS = ("scores", "logits", "probs")
"""Sub-directories of a dataset directory that hold the scores' .npy files."""


# --------------------------------------------------------------------------
# one array: a .npy file or a member of an .npz archive


@dataclass(frozen=True)
class _Array:
    """A .npy file, or one member of an .npz archive (``key``): its header
    and the file's size and modification time when it was first opened."""

    path: Path
    key: str | None
    shape: tuple[int, ...]
    dtype: np.dtype
    stamp: tuple[int, int]
    fortran: bool = False  # a 2-D .npy stored column by column

    @property
    def what(self) -> str:
        return "" if self.key is None else f"array {self.key!r}: "

    def read(self, rows: int) -> Iterator[np.ndarray]:
        with _open_array(self.path, self.key, self.stamp) as (f, *_):
            if self.fortran:
                yield from _fortran_rows(f, self, rows)
            else:
                yield from _rows(f, self, rows)

    @property
    def seekable(self) -> bool:
        """Whether any rows can be read without the ones before: a .npy
        file (C order, or 2-D in Fortran order), not an .npz member."""
        return self.key is None

    def read_rows(self, lo: int, hi: int, pool: _Buffers | None = None) -> np.ndarray:
        """Rows ``lo:hi`` of a :attr:`seekable` array: a seek and a read (one
        per column for a 2-D Fortran-order file), into a buffer of ``pool``
        (C order) or a new array; the file must be as it was when first
        opened (its stamp), and long enough."""
        with _open_array(self.path, self.key, self.stamp) as (f, shape, dtype, *_):
            data, size = f.tell(), dtype.itemsize
            if pool is not None and not self.fortran:
                out = pool.take()[: hi - lo]
            else:
                out = np.empty((hi - lo, *shape[1:]), dtype=dtype)
            # C order: one run of bytes; Fortran order (2-D): one run per column
            runs = [(data + lo * out[:1].nbytes, out.reshape(-1))]
            if self.fortran:
                out = np.empty(out.shape[::-1], dtype=dtype).T
                runs = [
                    (data + (j * shape[0] + lo) * size, out[:, j])
                    for j in range(shape[1])
                ]
            for j, (offset, target) in enumerate(runs):
                try:
                    f.seek(offset)
                    got = _read_full(f, memoryview(target.view(np.uint8)))
                except OSError as exc:
                    raise _read_error(self, exc) from None
                if got != target.nbytes:  # in the words of _rows, _fortran_rows
                    row = lo + got // max(1, out[:1].nbytes)
                    where = (
                        f"in column {j} of {shape[1]}"
                        if self.fortran
                        else f"at row {row} of {shape[0]}"
                    )
                    raise FormatError(
                        f"the file ended {where} (truncated while reading)",
                        source=str(self.path),
                    )
        return out if not self.fortran else np.ascontiguousarray(out)

    def read_span(
        self, row: int, lead: int, lo: int, hi: int, pool: _Buffers
    ) -> np.ndarray:
        """Of row ``row`` of a C-order :attr:`seekable` array of scores, seen
        as ``(lead, n)`` (``lead`` its classes), columns ``lo:hi`` of each
        class: an array ``(1, lead, hi - lo)`` in a buffer of ``pool``, read
        a class at a time."""
        width = math.prod(self.shape[1:]) // lead
        size = self.dtype.itemsize
        out = pool.take()[:, :, : hi - lo]
        with _open_array(self.path, self.key, self.stamp) as (f, *_):
            data = f.tell()
            for j in range(lead):
                target = out[0, j]
                try:
                    f.seek(data + ((row * lead + j) * width + lo) * size)
                    got = _read_full(f, memoryview(target.view(np.uint8)))
                except OSError as exc:
                    raise _read_error(self, exc) from None
                if got != target.nbytes:
                    raise FormatError(
                        f"the file ended at row {row} of {self.shape[0]}"
                        " (truncated while reading)",
                        source=str(self.path),
                    )
        return out

    def whole(self) -> np.ndarray:
        """The whole array (memory-mapped for a .npy): for error messages."""
        if self.key is None:
            return io._load_npy(self.path)
        with open(self.path, "rb") as f, io._open_npz(f) as npz:
            return io._read_npy_member(npz, self.key)


def _open(path: Path, stamp: tuple[int, int] | None) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        gone = " (it was there when relcal started reading)" if stamp else ""
        raise FormatError(f"no such file{gone}") from None
    except OSError as exc:
        raise FormatError(f"cannot read the file ({io._short(exc)})") from None


def _check_stamp(f: BinaryIO, stamp: tuple[int, int] | None) -> tuple[int, int]:
    st = os.fstat(f.fileno())
    now = (st.st_size, st.st_mtime_ns)
    if stamp is not None and now != stamp:
        change = (
            f"{stamp[0]:,} bytes, now {now[0]:,}"
            if now[0] != stamp[0]
            else "modified again"
        )
        raise FormatError(f"the file changed while relcal was reading it ({change})")
    return now


@contextmanager
def _open_array(
    path: Path, key: str | None, stamp: tuple[int, int] | None = None
) -> Iterator[tuple[BinaryIO, tuple[int, ...], np.dtype, tuple[int, int], bool]]:
    """``(stream at the first byte of the data, shape, dtype, stamp,
    Fortran order)``."""
    with ExitStack() as stack:
        try:
            raw = stack.enter_context(_open(path, stamp))
            now = _check_stamp(raw, stamp)
            if key is None:
                f, size = raw, now[0]
            else:
                z = stack.enter_context(_zip(raw))
                member = f"{key}.npy" if f"{key}.npy" in z.namelist() else key
                try:
                    f = stack.enter_context(z.open(member))
                except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
                    # a damaged member header: io.load's words
                    raise FormatError(
                        f"cannot read array {key!r}: {io._short(exc)}"
                    ) from None
                except NotImplementedError:  # a compression method zipfile lacks
                    raise FormatError(
                        f"cannot read array {key!r}: its compression method is"
                        " not one Python's zipfile can read (a damaged archive,"
                        " or one not written by numpy.savez)"
                    ) from None
                size = z.getinfo(member).file_size
            shape, dtype, fortran = _header(f, size, key)
        except RelcalError as err:
            raise err.with_source(str(path)) from None
        yield f, shape, dtype, now, fortran


def _zip(raw: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FormatError(f"not a readable .npz file ({io._short(exc)})") from None
    except NotImplementedError as exc:  # zipfile: "zip file version 14.7", ...
        raise FormatError(
            f"not a .npz file Python's zipfile can read ({io._short(exc)})"
        ) from None


def _header(
    f: BinaryIO, size: int, key: str | None
) -> tuple[tuple[int, ...], np.dtype, bool]:
    """The header of a .npy file or of an .npz's member ``key``, checked:
    shape, dtype, Fortran order."""
    what = "" if key is None else f"array {key!r}: "
    try:
        shape, fortran, dtype = io._check_size(f, size, what)
    except RelcalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged header
        raise FormatError(  # io.load's words
            f"{what}not a readable .npy {'array' if what else 'file'}"
            f" ({io._short(exc)})"
        ) from None
    if any(d < 0 for d in shape):  # in numpy's words, as io.load gives them
        why = "negative dimensions are not allowed"
        raise FormatError(
            f"cannot read array {key!r}: {why}"
            if key
            else f"not a readable .npy file ({why})"
        )
    if dtype.hasobject:  # in io.load's words: "array 'labels' holds ..."
        raise FormatError(
            f"{what[:-2] + ' ' if what else ''}holds Python objects; relcal never"
            " unpickles (allow_pickle=False)"
        )
    if fortran and len(shape) > 1 and (what or len(shape) > 2):
        raise FormatError(
            f"{what}is stored in Fortran order; relcal streams C-order arrays"
            " (and 2-D .npy files in Fortran order: save it with"
            " np.save(path, np.ascontiguousarray(a)))"
        )
    return shape, dtype, bool(fortran and len(shape) > 1)


def _read_full(f: BinaryIO, mem: memoryview) -> int:
    """readinto until ``mem`` is full or the stream ends (a zip member
    stream returns short reads).  A file is read in one call: each call
    returns to a thread that must win the GIL back from the workers (up to the
    5 ms switch interval; with 4 MB calls, reading 200 MB took 0.28 s instead
    of 0.04 s beside two busy threads).  A zip member, at most
    :data:`READ_BYTES` at a time: its ``readinto`` reads into a new bytes
    object first."""
    step = len(mem) if isinstance(f, FileIO) else READ_BYTES
    got = 0
    while got < len(mem):
        n = f.readinto(mem[got : got + step])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


class _Buffers:
    """Buffers for blocks of rows, reused once nothing else refers to them: a
    chunk a consumer still holds (in a list, or a worker of a pool) is never
    overwritten, and a serial consumer is served by two or three buffers,
    whose pages stay mapped (a new array per chunk costs a page fault per
    4 kB: a few times slower than the read itself)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape, self.dtype = shape, dtype
        self._bufs: list[np.ndarray] = []
        self._alone = max(_refcounts([np.empty(0)]))  # a buffer nothing else holds

    def take(self) -> np.ndarray:
        counts = _refcounts(self._bufs)
        for buf, count in zip(self._bufs, counts, strict=True):
            if count <= self._alone:
                return buf
        self._bufs.append(np.empty(self.shape, self.dtype))
        return self._bufs[-1]


def _refcounts(bufs: list[np.ndarray]) -> list[int]:
    return [sys.getrefcount(b) for b in bufs]


def _rows(f: BinaryIO, arr: _Array, rows: int) -> Iterator[np.ndarray]:
    """The array in blocks of ``rows`` rows, read with ``readinto`` into
    :class:`_Buffers`."""
    n, row_shape = arr.shape[0], arr.shape[1:]
    pool = _Buffers((min(rows, n), *row_shape), arr.dtype)
    for start in range(0, n, rows):
        k = min(rows, n - start)
        view = pool.take()[:k]
        try:
            got = _read_full(f, memoryview(view.view(np.uint8)).cast("B"))
        except Exception as exc:  # noqa: BLE001 - zlib.error, BadZipFile, OSError
            raise _read_error(arr, exc) from None
        if got != view.nbytes:
            row = start + got // max(1, view[0].nbytes)
            raise FormatError(
                f"{arr.what}the file ended at row {row} of {n} (truncated while"
                " reading)",
                source=str(arr.path),
            )
        yield view
        del view


def _fortran_rows(f: BinaryIO, arr: _Array, rows: int) -> Iterator[np.ndarray]:
    """Rows of a 2-D .npy stored in Fortran order (``np.save(path, a.T)``
    of a C-order ``a`` writes one): each block of rows is read one column at
    a time (a ``readinto`` per column) and transposed into C order."""
    n, c = arr.shape
    size = arr.dtype.itemsize
    data = f.tell()
    columns = np.empty((c, min(rows, n)), dtype=arr.dtype)
    pool = _Buffers((min(rows, n), c), arr.dtype)
    for start in range(0, n, rows):
        k = min(rows, n - start)
        for j in range(c):
            f.seek(data + (j * n + start) * size)
            mem = memoryview(columns[j, :k].view(np.uint8)).cast("B")
            try:
                got = _read_full(f, mem)
            except OSError as exc:
                raise _read_error(arr, exc) from None
            if got != len(mem):
                raise FormatError(
                    f"the file ended in column {j} of {c} (truncated while reading)",
                    source=str(arr.path),
                )
        view = pool.take()[:k]
        np.copyto(view, columns[:, :k].T)
        yield view
        del view


def _read_error(arr: _Array, exc: BaseException) -> FormatError:
    """A read that failed, in io.load's words."""
    if arr.key is None:
        why = f"cannot read the file ({io._short(exc)})"
    else:
        why = f"cannot read array {arr.key!r}: {io._short(exc)}"
    return FormatError(why, source=str(arr.path))


def iter_npy_pair(
    scores: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    *,
    rows: int = 65536,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Raw ``(scores_chunk, labels_chunk)`` of at most ``rows`` rows of a
    .npy pair (buffers reused once nothing refers to them); no label
    is checked (:func:`open_stream` checks them)."""
    stream = open_stream(scores, labels=labels, kind="logits")
    return _raw(stream, rows)


def iter_npz(
    path: str | os.PathLike[str],
    *,
    scores_key: str | None = None,
    labels_key: str | None = None,
    rows: int = 65536,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Like :func:`iter_npy_pair`, for two members of a .npz archive, stored
    or deflated: each member is decompressed as a stream, chunk by chunk."""
    stream = open_stream(
        path, scores_key=scores_key, labels_key=labels_key, kind="logits"
    )
    return _raw(stream, rows)


def _raw(stream: Stream, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    _check_rows(rows)
    for part in stream._parts:
        assert isinstance(part, _Part)  # the raw readers open arrays only
        yield from part.raw(rows)


def _check_rows(rows: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise RelcalError(f"rows= must be an integer of at least 1, got {rows!r}")


# --------------------------------------------------------------------------
# parts of a dataset, and the checks every chunk goes through


@dataclass(frozen=True)
class _Fit:
    """How raw chunks become checked ones: the options of :func:`io.load`."""

    ignore_index: int | None
    channels_last: bool


@dataclass(frozen=True)
class _Part:
    """One .npy pair or .npz archive of a dataset."""

    source: str  # how the in-memory loader names it in messages
    scores: _Array
    labels: _Array
    fit: _Fit
    names: tuple[str, ...] | None = None  # an .npz's class_names

    @property
    def row_bytes(self) -> int:
        return math.prod(self.scores.shape[1:]) * self.scores.dtype.itemsize

    def raw(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return zip(self.scores.read(rows), self.labels.read(rows), strict=True)

    def checked(
        self, scores: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """What :func:`io.load` makes of these scores and labels (a chunk or,
        for messages, a stand-in of all the scores and every label)."""
        fit = self.fit
        if labels.dtype.kind in "US" and self.labels.key is not None:
            n = io._n_classes(scores, fit.channels_last)
            labels = io._named_labels(labels, self.names, self.labels.key, n)
        scores, labels = io.pixel_rows(
            scores, labels, fit.channels_last, fit.ignore_index
        )
        scores = check_float_scores(scores)
        labels, _ = prepare_labels(scores, labels, ignore_index=fit.ignore_index)
        return scores, labels

    def stand_in(self) -> np.ndarray:
        """All the scores as a zero-stride array of their shape (no memory)."""
        dt = self.scores.dtype
        if dt.kind in "iub":  # made float64 by check_float_scores
            dt = np.dtype(np.float64)
        return np.broadcast_to(np.zeros((), dtype=dt), self.scores.shape)

    def layout(self) -> tuple[tuple[int, ...], int]:
        """Shape of the scores as chunks hold them, and the class count,
        from the headers only."""
        fit = self.fit
        check_scores_layout(self.scores.dtype, self.scores.shape)
        fake_y = np.broadcast_to(np.zeros((), self.labels.dtype), self.labels.shape)
        s, y = io.pixel_rows(
            self.stand_in(), fake_y, fit.channels_last, fit.ignore_index, values=False
        )
        _, n_classes = prepare_labels(s, y, values=False)
        if self.names is not None and len(self.names) != n_classes:
            raise FormatError(
                f"class_names has {len(self.names)} names but the scores have"
                f" {n_classes} classes"
            )
        return s.shape, n_classes

    def exact(self, err: RelcalError) -> RelcalError:
        """The error :func:`io.load` gives on the whole file, where ``err``
        was found in a part of it: every label checked again."""
        try:
            self.checked(self.stand_in(), np.asarray(self.labels.whole()))
        except RelcalError as whole:
            return whole.with_source(self.source)
        return err.with_source(self.source)

    def chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s, y in self.raw(rows):
            try:
                yield self.checked(s, y)
            except RelcalError as err:
                raise self.exact(err) from None


# --------------------------------------------------------------------------
# the stream


@dataclass(frozen=True)
class StreamMeta:
    """What a :class:`Stream` holds, known before its first chunk.

    Attributes
    ----------
    n_classes : int
    kind : {"logits", "probs"}
    class_names : tuple of str, or None
    n_rows : int
        Leading-axis rows of all the chunks together (rows of pixels for
        ``channels_last=True`` maps, as :func:`relcal.io.load` makes them).
    n_bytes : int
        Bytes of scores in the file(s).
    shape : tuple of int
        Shape of all the scores as the chunks hold them, one after the other.
    dtype : numpy dtype
        The scores' dtype in the chunks (integer scores become float64).
    sources : tuple of str
        The files read, in order.
    source : str
        How messages name the dataset (the path as given).
    origin : dict
        Which keys held the scores and labels.
    first_pass : bool
        Whether :func:`open_stream` read the scores once before (to decide
        the kind; for tables, also the rows kept and the default columns).
    model : str or None
        With ``models=``: the column of this stream's binary model.
    n_dropped : int
        Rows of a table dropped for a missing label or score
        (``missing="drop"``).
    notes : tuple of str
        What the loader decided without being told, as
        :attr:`relcal.io.Predictions.notes`.
    """

    n_classes: int
    kind: str
    class_names: tuple[str, ...] | None
    n_rows: int
    n_bytes: int
    shape: tuple[int, ...]
    dtype: np.dtype
    sources: tuple[str, ...]
    source: str
    ignore_index: int | None = None
    origin: dict[str, str] = field(default_factory=dict)
    first_pass: bool = False
    model: str | None = None
    n_dropped: int = 0
    notes: tuple[str, ...] = ()


class _Chunked(Protocol):
    """A part of a dataset: a .npy pair, an .npz, a table."""

    @property
    def row_bytes(self) -> int: ...

    def chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class Stream:
    """A dataset read chunk by chunk; see the module's docstring."""

    def __init__(self, meta: StreamMeta, parts: Sequence[_Chunked]) -> None:
        self.meta = meta
        self._parts = parts

    def default_rows(self) -> int:
        """Rows of the file(s) in a chunk: about :data:`CHUNK_BYTES` of scores."""
        return max(1, CHUNK_BYTES // max(1, self._parts[0].row_bytes))

    def chunks(
        self, rows: int | None = None, *, reuse: bool = True
    ) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """``(scores, labels, start)`` of at most ``rows`` rows of the file(s)
        (default :meth:`default_rows`).  A chunk may be kept (a pool of
        workers, a list): its buffer is reused only once nothing refers to
        it, whatever ``reuse`` says (kept for the callers that pass it).
        Each call reads the file(s) again."""
        rows = self.default_rows() if rows is None else rows
        _check_rows(rows)
        ignore = self.meta.ignore_index
        kept = ignore is None
        start = 0
        for part in self._parts:
            for s, y in part.chunks(rows):
                kept = kept or bool((y != ignore).any())
                yield s, y, start
                start += len(s)
        if not kept:
            assert ignore is not None
            raise all_ignored_error(ignore).with_source(self.meta.source)

    def pieces(self, rows: int | None = None) -> Pieces | None:
        """The chunks of :meth:`chunks` (same ``rows``) as :class:`Pieces`,
        when every part can be read at any row (.npy files in C order, rows
        of the file being rows of the chunks); else None."""
        rows = self.default_rows() if rows is None else rows
        _check_rows(rows)
        for part in self._parts:
            if not (
                isinstance(part, _Part)
                and part.scores.seekable
                and part.labels.seekable
                and not part.fit.channels_last
                and part.labels.shape[:1] == part.scores.shape[:1]
            ):
                return None
        return Pieces(self, rows)


def _part_pixels(part: _Part, width: int | None) -> int | None:
    """Pixels in a part of an image of ``part`` (:meth:`Pieces.parts`): a
    multiple of ``width`` near :data:`PART_BYTES` of scores; None when its
    images are not read in parts (small, or not of shape ``(N, C, *spatial)``
    with labels ``(N, *spatial)`` in C order)."""
    sc, lab = part.scores, part.labels
    if (
        width is None
        or part.row_bytes <= PART_BYTES
        or sc.fortran
        or len(sc.shape) < 3
        or sc.shape[1] < 2
        or lab.shape != (sc.shape[0], *sc.shape[2:])
    ):
        return None
    step = width * max(1, PART_BYTES // (width * sc.shape[1] * sc.dtype.itemsize))
    return step if step < math.prod(sc.shape[2:]) else None


class Pieces:
    """A stream's chunks as pieces that any process can read by itself, in
    any order (:meth:`Stream.pieces`): the same chunks, checked the same way,
    as :meth:`Stream.chunks` gives in order.  Iterating reads them in order
    (in this process); a worker process given :meth:`read` reads one piece,
    into buffers of its own (``Pieces`` is copied into a forked child)."""

    pieces_of_files = True  # relcal.summary.is_pieces

    def __init__(self, stream: Stream, rows: int) -> None:
        self.stream = stream
        self.rows = rows
        self.spans: list[tuple[int, int, int, int]] = []  # part, lo, hi, start
        start = 0
        for i, part in enumerate(stream._parts):
            n = part.scores.shape[0]  # type: ignore[attr-defined]
            for lo in range(0, n, rows):
                hi = min(n, lo + rows)
                self.spans.append((i, lo, hi, start))
                start += hi - lo  # file rows are chunk rows (no channels_last)
        self._pools: dict[tuple[tuple[int, ...], str], _Buffers] = {}
        self._part_pools: dict[tuple[tuple[int, ...], str], _Buffers] = {}
        self.look: Callable[[np.ndarray], Any] | None = None
        self.seen: Callable[[Any], None] | None = None
        self.fn: Callable[..., tuple[np.ndarray, np.ndarray, int]] | None = None

    def watched(
        self, look: Callable[[np.ndarray], Any], seen: Callable[[Any], None]
    ) -> Pieces:
        """These pieces, each piece's labels given to ``look`` where the piece
        is read (a worker process) and what it returns to ``seen`` here, in
        the pieces' order."""
        other = self._copy()
        other.look, other.seen = look, seen
        return other

    def mapped(self, fn: Callable[..., tuple[np.ndarray, np.ndarray, int]]) -> Pieces:
        """These pieces, each ``fn(scores, labels, start)`` of the checked
        piece (scaled by a temperature, say), where it is read; of a part of
        an image (:meth:`parts`), ``fn(scores, labels, start, first)``,
        ``first`` the index of the part's first pixel among all pixels."""
        other = self._copy()
        other.fn = fn
        return other

    def _copy(self) -> Pieces:
        other = Pieces(self.stream, self.rows)
        other.look, other.seen, other.fn = self.look, self.seen, self.fn
        return other

    def noticed(self, labels: np.ndarray) -> Any:
        """What :meth:`watched`'s ``look`` says of a piece's labels (None
        without one)."""
        return None if self.look is None else self.look(labels)

    def notice(self, value: Any) -> None:
        if self.seen is not None:
            self.seen(value)

    def __len__(self) -> int:
        return len(self.spans)

    def read(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Piece ``k``: ``(scores, labels, start)``, checked."""
        i, lo, hi, start = self.spans[k]
        part = self.stream._parts[i]
        assert isinstance(part, _Part)
        s = part.scores.read_rows(lo, hi, self._pool(part.scores))
        y = part.labels.read_rows(lo, hi, self._pool(part.labels))
        try:
            s, y = part.checked(s, y)
        except RelcalError as err:
            raise part.exact(err) from None
        assert len(s) == hi - lo, (len(s), lo, hi)
        return (s, y, start) if self.fn is None else self.fn(s, y, start)

    def parts(
        self, k: int, slab: Callable[[np.dtype], int | None]
    ) -> tuple[np.ndarray, Iterator[tuple[np.ndarray, np.ndarray, int, int]]] | None:
        """Piece ``k`` in parts, when it is one image of more than
        :data:`PART_BYTES` of scores, of shape ``(C, *spatial)``: its checked
        labels (as :meth:`read` gives them) and, read one after another into
        one buffer, its scores' pixel ranges ``(1, C, pixels)`` with their
        labels ``(1, pixels)``, ``start`` and the index of their first pixel
        among all pixels of the dataset.  ``slab(dtype)``: the pixels of
        the reduction's blocks for checked scores of that dtype
        (:func:`relcal.reduce.slab_pixels`); each part's pixels are a multiple
        of it, so that the parts' blocks are the image's own.  None when the
        piece is not split: read it with :meth:`read`.  So a worker process
        holds a part, not an image: with whole images, 16 workers on
        19x1024x1024 float32 logits held 80 MB each.  An error in a part is
        not exact (not located in the image): read the piece whole to raise
        the exact one.  Scores :meth:`mapped` are mapped a part at a time,
        ``fn(scores, labels, start, first)``."""
        i, lo, hi, start = self.spans[k]
        part = self.stream._parts[i]
        assert isinstance(part, _Part)
        sc, lab = part.scores, part.labels
        checked = np.dtype(np.float64) if sc.dtype.kind != "f" else sc.dtype
        step = _part_pixels(part, slab(checked)) if hi - lo == 1 else None
        if step is None:
            return None
        c, n = sc.shape[1], math.prod(sc.shape[2:])
        raw = lab.read_rows(lo, hi, self._pool(lab))
        stand_in = np.broadcast_to(np.zeros((), checked), (1, *sc.shape[1:]))
        try:
            _, labels = part.checked(stand_in, raw)
        except RelcalError as err:
            raise part.exact(err) from None
        flat = labels.reshape(1, -1)
        if flat.shape[1] != n:  # labels of another layout: not split
            return None
        key = ((1, c, step), sc.dtype.str)
        pool = self._part_pools.get(key)
        if pool is None:
            pool = self._part_pools[key] = _Buffers(key[0], sc.dtype)

        def read_part(p: int) -> tuple[np.ndarray, np.ndarray, int, int]:
            s = check_float_scores(sc.read_span(lo, c, p, min(p + step, n), pool))
            y, first = flat[:, p : p + step], start * n + p
            if self.fn is None:
                return s, y, start, first
            return (*self.fn(s, y, start, first), first)

        # the generator keeps no name for a part: once the consumer lets one
        # go, the next is read into the same buffer
        return labels, (read_part(p) for p in range(0, n, step))

    def _pool(self, arr: _Array) -> _Buffers:
        """Buffers for pieces of ``arr``: one pool per row shape and dtype,
        so a directory of many files reuses the same buffers."""
        key = (arr.shape[1:], arr.dtype.str)
        pool = self._pools.get(key)
        if pool is None:
            most = max(hi - lo for _, lo, hi, _ in self.spans)
            pool = _Buffers((most, *arr.shape[1:]), arr.dtype)
            self._pools[key] = pool
        return pool

    def kept(self, labels: np.ndarray) -> bool:
        """Whether a piece's labels keep a sample (not all ignored)."""
        ignore = self.stream.meta.ignore_index
        return ignore is None or bool((labels != ignore).any())

    def finish(self, kept: bool) -> None:
        """The error of a pass in which every label was ignored."""
        if not kept:
            ignore = self.stream.meta.ignore_index
            assert ignore is not None
            raise all_ignored_error(ignore).with_source(self.stream.meta.source)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        kept = False
        for k in range(len(self)):
            s, y, start = self.read(k)
            kept = kept or self.kept(y)
            self.notice(self.noticed(y))
            yield s, y, start
        self.finish(kept)


def open_stream(path: str | os.PathLike[str], **options: Any) -> Any:
    """Open saved predictions (a file, a directory or a glob) as a
    :class:`Stream`.  The options are the keyword options of
    :func:`relcal.io.load`, with its defaults (bound to its signature: a name
    it does not take is a TypeError, as it would be there).  With
    ``models=`` (tables), a list of streams, one per column, as io.load
    returns a list.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> logits = np.arange(12.0).reshape(4, 3)
    >>> np.savez(os.path.join(d, "p.npz"), logits=logits, labels=[0, 1, 2, 2])
    >>> stream = open_stream(os.path.join(d, "p.npz"))
    >>> stream.meta.kind, stream.meta.n_classes, stream.meta.n_rows
    ('logits', 3, 4)
    >>> [(len(s), y.tolist(), start) for s, y, start in stream.chunks(rows=3)]
    [(3, [0, 1, 2], 0), (1, [2], 3)]
    """
    bound = inspect.signature(io.load).bind(path, **options)
    bound.apply_defaults()
    return _open_dataset(**bound.arguments)


def _open_dataset(
    path: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None,
    scores_key: str | None,
    labels_key: str | None,
    kind: str,
    ignore_index: int | None,
    channels_last: bool,
    **table: Any,
) -> Stream | list[Stream]:
    name = str(path)
    try:
        if kind not in KINDS:
            raise FormatError(
                f"kind= must be one of {', '.join(KINDS)}. Got {kind!r} instead"
            )
        check_ignore_index(ignore_index)
        pairs = dataset_files(path, labels)
        if all(p.suffix.lower() in io.TABLES for p, _ in pairs):
            for p, _ in pairs:
                io.check_request(p, labels, table["models"], table["missing"])
            options = {
                "labels": labels,
                "scores_key": scores_key,
                "labels_key": labels_key,
                "kind": kind,
                "ignore_index": ignore_index,
                "channels_last": channels_last,
                **table,
            }
            return _open_tables([p for p, _ in pairs], name, options)
        fit = _Fit(ignore_index, channels_last)
        keys = (scores_key, labels_key)
        parts, origin, declared = _parts(pairs, name, keys, kind, table, fit)
        return _stream(parts, declared, name, origin)
    except RelcalError as err:
        raise err.with_source(name) from None


_NO_TABLES = (
    "streaming .csv/.parquet tables is not ready yet; relcal.io.load reads them"
    " (label_col=, score_cols=, pred_col=, confidence_col=, models=)"
)


def _parts(
    pairs: list[tuple[Path, Path | None]],
    name: str,
    keys: tuple[str | None, str | None],
    kind: str,
    table: dict[str, Any],
    fit: _Fit,
) -> tuple[list[_Part], dict[str, str], str]:
    parts = []
    origin: dict[str, str] = {}
    for scores, labels in pairs:
        try:
            suffix = io.check_request(scores, labels, table["models"], table["missing"])
        except RelcalError as err:
            raise err.with_source(str(scores)) from None
        if suffix in io.TABLES:
            raise FormatError(_NO_TABLES, source=str(scores))
        if suffix == ".npz":
            part, origin, kind = _npz_part(scores, *keys, kind, fit)
        elif labels is None:
            raise FormatError(
                'a .npy scores file needs its labels: labels="LABELS.npy"',
                source=str(scores),
            )
        else:
            part = _npy_part(scores, labels, fit)
            origin = {"scores": scores.name, "labels": labels.name}
        parts.append(part)
    if len(parts) > 1:
        origin = {"scores": name, "labels": f"{len(parts)} files"}
    return parts, origin, kind


def _array(path: Path, key: str | None = None) -> _Array:
    with _open_array(path, key) as (_, shape, dtype, stamp, fortran):
        return _Array(path, key, shape, dtype, stamp, fortran)


def _npy_part(scores: Path, labels: Path, fit: _Fit) -> _Part:
    """A .npy pair, checked as :func:`io.load` checks it."""
    try:
        io.check_npy_head(scores)
    except RelcalError as err:
        raise err.with_source(str(scores)) from None
    s = _array(scores)
    try:
        io.check_regular(labels)
        if labels.suffix.lower() != ".npy":
            raise FormatError("the labels file must be a .npy file")
        io.check_npy_head(labels)
    except RelcalError as err:
        raise err.with_source(str(labels)) from None
    return _Part(f"{scores} (labels: {labels})", s, _array(labels), fit)


def _npz_part(
    p: Path, scores_key: str | None, labels_key: str | None, kind: str, fit: _Fit
) -> tuple[_Part, dict[str, str], str]:
    """An .npz archive: its keys picked as :func:`io.load` picks them."""
    try:
        head = io._head(p)
        if not head:
            raise FormatError("the file is empty")
        if not head.startswith((b"PK", b"\x93NUMPY")):
            raise FormatError("not a .npz file (not a zip archive)")
        with open(p, "rb") as f, io._open_npz(f) as npz:
            keys = list(npz.files)
            skey, lkey = io._pick_keys(keys, scores_key, labels_key)
            names = None
            if "class_names" in keys:
                raw = io._read_npy_member(npz, "class_names")
                if raw.dtype.kind not in "US" or raw.ndim != 1:
                    raise FormatError("'class_names' must be a 1-D array of strings")
                names = tuple(io._text(raw).tolist())
    except RelcalError as err:
        raise err.with_source(str(p)) from None
    if kind == "auto" and skey in io.PROB_KEYS:
        kind = "probs"
    part = _Part(str(p), _array(p, skey), _array(p, lkey), fit, names)
    return part, {"scores": skey, "labels": lkey}, kind


def _stream(
    parts: list[_Part], declared: str, name: str, origin: dict[str, str]
) -> Stream:
    shape, n_classes = _dataset_layout(parts)
    first = parts[0]
    dtype = first.stand_in().dtype
    meta = StreamMeta(
        n_classes=n_classes,
        kind=declared,
        class_names=first.names,
        n_rows=shape[0],
        n_bytes=sum(math.prod(p.scores.shape) * p.scores.dtype.itemsize for p in parts),
        shape=shape,
        dtype=dtype,
        sources=tuple(str(p.scores.path) for p in parts),
        source=name if len(parts) > 1 else first.source,
        ignore_index=first.fit.ignore_index,
        origin=origin,
    )
    stream = Stream(meta, parts)
    kind, first_pass = _decide_kind(stream)
    stream.meta = replace(meta, kind=kind, first_pass=first_pass)
    return stream


def _dataset_layout(parts: list[_Part]) -> tuple[tuple[int, ...], int]:
    """The shape of all the scores and the class count; every part must
    agree with the first on everything but its length."""
    shape, n_classes = None, 0
    rows = 0
    for part in parts:
        try:
            s, n = part.layout()
        except RelcalError as err:
            raise part.exact(err) from None
        if shape is None:
            shape, n_classes = s, n
        elif s[1:] != shape[1:] or part.scores.dtype != parts[0].scores.dtype:
            raise FormatError(
                f"scores of shape {part.scores.shape} ({part.scores.dtype}) do not"
                f" fit those of {parts[0].scores.path} ({parts[0].scores.shape},"
                f" {parts[0].scores.dtype}): a dataset's files differ only in"
                " their number of rows",
                source=str(part.scores.path),
            )
        elif part.names != parts[0].names:
            raise FormatError(
                f"class_names differ from those of {parts[0].scores.path}",
                source=str(part.scores.path),
            )
        rows += s[0]
    assert shape is not None
    return (rows, *shape[1:]), n_classes


def _decide_kind(stream: Stream) -> tuple[str, bool]:
    """The kind :func:`relcal.validate.detect_kind` decides on all the rows,
    and whether a pass over the scores was needed to know it."""
    declared, shape = stream.meta.kind, stream.meta.shape
    if declared == "logits":
        return "logits", False
    if declared == "auto" and _peek_logits(stream._parts[0]):
        return "logits", False
    spatial = math.prod(shape[2:])
    stats: ProbStats | None = None
    for i, (s, _, start) in enumerate(stream.chunks()):
        chunk = probability_stats(s)
        stats = chunk if stats is None else stats.merge(chunk, start * spatial)
        if declared == "auto" and not stats.in_range:
            return "logits", i > 0
    assert stats is not None
    try:
        return kind_from_stats(stats, declared, stream.meta.dtype, shape), True
    except RelcalError as err:
        raise err.with_source(stream.meta.source) from None


PEEK_BYTES = 1 << 16
"""Bytes of scores :func:`_peek_logits` reads."""


def _peek_logits(part: _Chunked) -> bool:
    """Whether the first :data:`PEEK_BYTES` of a .npy's scores already hold a
    value outside [0, 1] (or NaN): the full check's first chunk would, so the
    kind is "logits" without reading a whole chunk (a 19x512x512 image is 20
    MB).  False when unsure."""
    if not isinstance(part, _Part) or not part.scores.seekable:
        return False
    arr = part.scores
    if arr.dtype.kind not in "fiu" or not math.prod(arr.shape):
        return False
    want = min(PEEK_BYTES // arr.dtype.itemsize, math.prod(arr.shape))
    buf = np.empty(want, dtype=arr.dtype)
    try:
        with _open_array(arr.path, None, arr.stamp) as (f, *_):
            got = _read_full(f, memoryview(buf.view(np.uint8)).cast("B"))
    except (RelcalError, OSError):
        return False  # the full check gives the error
    head = buf[: got // arr.dtype.itemsize]
    if not head.size:
        return False
    with np.errstate(invalid="ignore"):
        return not (0 <= head.min() and head.max() <= 1)


# --------------------------------------------------------------------------
# a directory or glob as one dataset


def dataset_files(
    path: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None
) -> list[tuple[Path, Path | None]]:
    """The files of a dataset: ``(scores, labels)`` pairs of .npy files, or
    ``(archive, None)`` for an .npz.

    - a file: itself (with ``labels``, for a .npy);
    - a glob (``"preds/*.npy"``) with ``labels`` a glob or a directory: each
      scores file with the labels file of the same name;
    - a directory with sub-directories ``scores/`` (or ``logits/``,
      ``probs/``) and ``labels/``: each ``scores/NAME.npy`` with
      ``labels/NAME.npy``;
    - a directory of ``NAME_logits.npy`` (or ``_scores``, ``_probs``) with
      ``NAME_labels.npy``.

    Files are taken in sorted order of their names.
    """
    text = str(path)
    p = Path(path)
    if glob.has_magic(text) and not p.exists():  # "a[1].npy" may be a name
        found = sorted(Path(f) for f in glob.glob(text) if Path(f).is_file())
        if not found:
            raise FormatError("matches no file")
        return _pair_up(found, labels, text)
    if p.is_dir():
        return _directory(p, labels)
    return [(p, Path(labels) if labels is not None else None)]


def _pair_up(
    scores: list[Path], labels: str | os.PathLike[str] | None, what: str
) -> list[tuple[Path, Path | None]]:
    alone = (".npz", *io.TABLES)
    if all(f.suffix.lower() in alone for f in scores) and labels is None:
        return [(f, None) for f in scores]
    if labels is None:
        raise FormatError(
            f"{len(scores)} .npy scores files need their labels:"
            ' labels="LABELS/*.npy" (or a directory), matched by file name'
        )
    text = str(labels)
    if glob.has_magic(text):
        by_name = {Path(f).name: Path(f) for f in glob.glob(text)}
    elif Path(labels).is_dir():
        by_name = {f.name: f for f in Path(labels).iterdir()}
    else:
        raise FormatError(
            f"labels= of {len(scores)} scores files is a glob or a directory,"
            f" not {text}"
        )
    pairs: list[tuple[Path, Path | None]] = []
    for f in scores:
        if f.name not in by_name:
            raise FormatError(
                f"no labels file for {f} (looked for {f.name} in {text})",
                source=what,
            )
        pairs.append((f, by_name.pop(f.name)))
    if by_name:
        extra = sorted(by_name)[0]
        raise FormatError(
            f"labels file {by_name[extra]} has no scores file of the same name",
            source=what,
        )
    return pairs


def _directory(
    d: Path, labels: str | os.PathLike[str] | None
) -> list[tuple[Path, Path | None]]:
    if labels is not None:
        raise FormatError(
            "a dataset directory holds its labels (labels/ or NAME_labels.npy);"
            " labels= goes with a .npy file or a glob"
        )
    sub = [d / s for s in SCORE_DIRS if (d / s).is_dir()]
    if len(sub) == 1 and (d / "labels").is_dir():
        return _pair_up(sorted(sub[0].glob("*.npy")), d / "labels", str(d))
    tables = sorted(f for f in d.iterdir() if f.suffix.lower() in (".parquet", ".pq"))
    if tables:
        return [(f, None) for f in tables]
    pairs: list[tuple[Path, Path | None]] = []
    for f in sorted(d.glob("*.npy")):
        stem, _, tail = f.stem.rpartition("_")
        if stem and tail in SCORE_DIRS:
            pairs.append((f, f.with_name(f"{stem}_labels.npy")))
    if not pairs:
        raise FormatError(
            "is a directory, not a file nor a dataset relcal reads: scores/*.npy (or"
            " logits/, probs/) with labels/*.npy, NAME_logits.npy with"
            " NAME_labels.npy, or *.parquet"
        )
    return pairs


# --------------------------------------------------------------------------
# .csv and .parquet tables


@dataclass(frozen=True)
class _TableFile:
    """A .csv or .parquet file: its columns, size and time when opened."""

    path: Path
    stamp: tuple[int, int]
    columns: tuple[str, ...]
    schema: str  # parquet: the arrow schema, for a dataset's files to agree

    @property
    def parquet(self) -> bool:
        return self.path.suffix.lower() != ".csv"

    @classmethod
    def open(cls, path: Path) -> _TableFile:
        with _open(path, None) as f:
            stamp = _check_stamp(f, None)
            try:
                if path.suffix.lower() == ".csv":
                    import pandas as pd

                    names = pd.read_csv(f, nrows=0).columns
                    return cls(path, stamp, tuple(str(c) for c in names), "")
                import pyarrow.parquet as pq

                schema = pq.ParquetFile(f).schema_arrow
            except Exception as exc:  # noqa: BLE001 - parser and arrow errors
                raise _unreadable(path, exc) from None
        text = schema.remove_metadata().to_string()
        return cls(path, stamp, tuple(schema.names), text)

    def frames(self, rows: int, columns: list[str]) -> Iterator[Any]:
        """The table's ``columns`` in data frames of at most ``rows`` rows."""
        with _open(self.path, self.stamp) as f:
            _check_stamp(f, self.stamp)
            try:
                if self.parquet:
                    import pyarrow.parquet as pq

                    # no pre-buffering, no threads: pyarrow would otherwise
                    # read column chunks ahead, in memory growing with the file
                    reader = pq.ParquetFile(f, buffer_size=1 << 20, pre_buffer=False)
                    batches = reader.iter_batches(
                        rows, columns=columns, use_threads=False
                    )
                    frames = (b.to_pandas() for b in batches)
                else:
                    import pandas as pd

                    frames = pd.read_csv(f, chunksize=rows, usecols=columns)
                for df in frames:
                    df.columns = [str(c) for c in df.columns]
                    yield df[columns]
            except (RelcalError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - parser and arrow errors
                raise _unreadable(self.path, exc) from None


def _unreadable(path: Path, exc: BaseException) -> FormatError:
    return FormatError(
        f"cannot read the {path.suffix.lower()} file ({io._short(exc)})",
        source=str(path),
    )


@dataclass(frozen=True)
class _TableSpec:
    """Which columns hold what, and how a frame's rows become checked
    scores and labels (as :func:`io.load` makes them)."""

    cols: list[str]  # the score columns (one binary model's, with models=)
    prefix: str  # taken off the columns' names to give class names
    needed: list[str]  # a row missing any of these is dropped (or an error)
    read: io.TableRead
    binary: bool = False  # one model of models=
    toplabel: bool = False  # cols: predicted class, confidence
    n_classes: int | None = None  # a top-label table's, once known

    def arrays(self, df: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Checked scores and labels of the complete rows, and how many
        rows were dropped."""
        holes = df[self.needed].isna().to_numpy().any(axis=1)
        if holes.any():
            if self.read.missing == "error":
                raise FormatError("a missing value")  # io.load says which
            df = df[~holes]
        label = self.read.label_col
        if self.toplabel:  # scores (rows, 2): confidence, predicted class
            pred_col, conf_col = self.cols
            y, pred, conf, _ = io.toplabel_arrays(
                df, label, pred_col, conf_col, self.n_classes
            )
            return np.column_stack([conf, pred.astype(np.float64)]), y, int(holes.sum())
        if self.binary:
            scores = io._numeric_column(df, self.cols[0]).astype(np.float64)
            if np.isinf(scores).any():
                raise FormatError("infinite values")  # io.load says which
            labels = io._binary_labels(df[label], self.read, 0)
        else:
            scores, labels, _ = io.table_arrays(df, self.cols, self.prefix, label)
        if not len(scores):
            return scores, labels, int(holes.sum())
        s = check_float_scores(scores)
        y, _ = prepare_labels(s, labels, ignore_index=self.read.ignore_index)
        return s, y, int(holes.sum())


@dataclass(frozen=True)
class _TablePart:
    """One table file of a dataset, read with one spec."""

    file: _TableFile
    spec: _TableSpec
    options: dict[str, Any]  # io.load's, for the exact message of an error

    @property
    def row_bytes(self) -> int:
        """A row's share of a chunk's memory: a data frame's column of
        float64, and the copies pandas and the checks make of it."""
        return 32 * len(_columns(self.spec))

    def counted(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        for df in self.file.frames(rows, _columns(self.spec)):
            try:
                yield self.spec.arrays(df)
            except RelcalError as err:
                raise _table_exact([self.file], self.options, err) from None

    def chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s, y, _ in self.counted(rows):
            if len(s):
                yield s, y


def _columns(spec: _TableSpec) -> list[str]:
    return list(dict.fromkeys([*spec.cols, *spec.needed]))


def _table_exact(
    files: Sequence[_TableFile], options: dict[str, Any], err: RelcalError
) -> RelcalError:
    """The error :func:`io.load` gives (on the first file that has one),
    where ``err`` was found in a chunk: its counts and rows cover the whole
    file.  The table is read whole for this message only."""
    for f in files:
        try:
            io.load(f.path, **options)
        except RelcalError as whole:
            return whole
    return err.with_source(str(files[0].path))


def _open_tables(
    paths: list[Path], name: str, options: dict[str, Any]
) -> Stream | list[Stream]:
    """A table, or tables of one schema, as a stream (a list of streams,
    one per column, with ``models=``)."""
    opened = []
    for p in paths:
        try:
            opened.append(_TableFile.open(p))
        except RelcalError as err:
            raise _table_exact([_TableFile(p, (0, 0), (), "")], options, err) from None
    files = opened
    for f in files[1:]:
        if (f.columns, f.schema) != (files[0].columns, files[0].schema):
            raise FormatError(
                f"its columns ({_schema(f)}) differ from those of"
                f" {files[0].path} ({_schema(files[0])}): a dataset's tables"
                " share one schema",
                source=str(f.path),
            )
    try:
        specs, notes = _table_specs(files, options)
        streams = [_table_stream(files, s, name, options, notes) for s in specs]
    except RelcalError as err:
        raise _table_exact(files, options, err) from None
    return streams if options["models"] is not None else streams[0]


def _schema(f: _TableFile) -> str:
    if not f.schema:
        return ", ".join(f.columns)
    return "; ".join(f.schema.splitlines())


def _table_specs(
    files: list[_TableFile], options: dict[str, Any]
) -> tuple[list[_TableSpec], tuple[str, ...]]:
    """The specs of :func:`io.load`'s table options, from the columns (and,
    for the default score columns, a pass over every row)."""
    o = options
    read = io.TableRead(
        o["label_col"], o["score_cols"], o["kind"], o["ignore_index"], o["missing"]
    )
    columns = list(files[0].columns)
    explicit = o["pred_col"] is not None or o["confidence_col"] is not None
    if o["models"] is not None:
        if o["score_cols"] is not None or explicit:
            raise FormatError(
                "models= with score_cols= or pred_col="
            )  # io.load's words
        cols = io._model_columns(o["models"], columns, read.label_col)
        io._need_label(columns, read.label_col)
        needed = [*cols, read.label_col]
        return [_TableSpec([c], "", needed, read, True) for c in cols], ()
    if explicit and o["score_cols"] is not None:
        raise FormatError("score_cols= with pred_col=")  # io.load's words
    default = all(c in columns for c in io.TOPLABEL_COLUMNS)
    if explicit or default and o["score_cols"] is None:
        given = (read.label_col, o["pred_col"], o["confidence_col"])
        label, pred, conf = io.toplabel_columns(
            columns, *(given if explicit else io.TOPLABEL_COLUMNS)
        )
        read = replace(read, label_col=label, ignore_index=None)
        return [
            _TableSpec([pred, conf], "", [label, pred, conf], read, toplabel=True)
        ], ()
    io._need_label(columns, read.label_col)
    named = io.named_score_columns(columns, read.label_col, read.score_cols)
    cols, prefix, notes = named or _default_columns(files, columns, read.label_col)
    return [_TableSpec(cols, prefix, [*cols, read.label_col], read)], notes


def _default_columns(
    files: list[_TableFile], columns: list[str], label_col: str
) -> tuple[list[str], str, tuple[str, ...]]:
    """io.load's default score columns, from the profiles of every chunk."""
    profile: dict[str, io.Column] = {}
    rows = max(1, CHUNK_BYTES // (32 * len(columns)))
    for f in files:
        for df in f.frames(rows, columns):
            chunk = io.column_profile(df)
            profile = {
                c: profile[c].then(chunk[c]) if profile else chunk[c] for c in chunk
            }

    if set(profile) != set(columns):  # no rows (or columns pandas renamed)
        raise FormatError("the table has no rows")  # io.load says which

    def mixed(col: str) -> None:
        raise FormatError(f"column {col!r}: a non-numeric value")  # io.load says which

    label = profile.get(label_col)
    if label is not None and not label.empty and not label.numeric and label.numbers:
        raise FormatError(f"column {label_col!r}: class names and numbers")
    return io.default_score_columns(profile, columns, label_col, mixed)


def _table_stream(
    files: list[_TableFile],
    spec: _TableSpec,
    name: str,
    options: dict[str, Any],
    notes: tuple[str, ...],
) -> Stream:
    """A table's stream, after a pass over every row: the rows kept and
    dropped, the labels checked, the kind (or top-label class count) decided."""
    count = _TableCount(spec)
    for f in files:
        part = _TablePart(f, spec, options)
        for s, y, dropped in part.counted(CHUNK_BYTES // part.row_bytes):
            count.add(s, y, dropped)
    if count.stats is None or not count.kept:
        raise FormatError("no rows left")  # io.load says why
    n, cols = count.n_rows, spec.cols
    shape: tuple[int, ...]
    if spec.toplabel:
        spec = replace(spec, n_classes=count.top + 1)
        kind, n_classes, shape, names = "toplabel", count.top + 1, (n, 2), None
    else:
        n_classes = 2 if len(cols) == 1 else len(cols)
        shape = (n,) if len(cols) == 1 else (n, n_classes)
        kind = spec.read.kind
        if kind != "logits":
            kind = kind_from_stats(count.stats, kind, count.dtype, shape)
        names = None if len(cols) == 1 else tuple(c[len(spec.prefix) :] for c in cols)
    meta = StreamMeta(
        n_classes=n_classes,
        kind=kind,
        class_names=names,
        n_rows=n,
        n_bytes=math.prod(shape) * count.dtype.itemsize,
        shape=shape,
        dtype=count.dtype,
        sources=tuple(str(f.path) for f in files),
        source=name,
        ignore_index=spec.read.ignore_index,
        origin={"scores": ",".join(cols), "labels": spec.read.label_col},
        first_pass=True,
        model=cols[0] if spec.binary else None,
        n_dropped=count.n_dropped,
        notes=notes,
    )
    return Stream(meta, [_TablePart(f, spec, options) for f in files])


class _TableCount:
    """What a pass over a table's chunks finds: rows kept and dropped, the
    stats that decide the kind, whether a label is not ignored, the largest
    class of a top-label table."""

    def __init__(self, spec: _TableSpec) -> None:
        self.spec = spec
        self.n_rows = self.n_dropped = self.top = 0
        self.stats: ProbStats | None = None
        self.kept = spec.read.ignore_index is None
        self.dtype = np.dtype(np.float64)

    def add(self, s: np.ndarray, y: np.ndarray, dropped: int) -> None:
        self.n_dropped += dropped
        if not len(s):
            return
        self.dtype = s.dtype
        chunk = probability_stats(s)
        self.stats = (
            chunk if self.stats is None else self.stats.merge(chunk, self.n_rows)
        )
        self.kept = self.kept or bool((y != self.spec.read.ignore_index).any())
        if self.spec.toplabel:
            self.top = max(self.top, int(y.max()), int(s[:, 1].max()))
        self.n_rows += len(s)
