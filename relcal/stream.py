"""Streaming readers: hand an input to the reduction in chunks of rows,
without holding the file in memory (issue #13, item 2).

``iter_npy_pair(scores, labels, rows=)`` yields ``(scores_chunk,
labels_chunk)`` views of at most ``rows`` leading-axis rows (for
segmentation ``(N, C, H, W)`` a chunk is a block of whole images).  Each
chunk is read with ``readinto`` into two buffers allocated once and reused,
so resident memory does not grow with the file: a chunk is only valid until
the next one is requested (copy it to keep it).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import FormatError, RelcalError, ShapeError
from .io import _check_size, check_regular


def _open_npy(p: Path) -> tuple[BinaryIO, tuple[int, ...], np.dtype]:
    """Open a .npy file positioned at its data; its shape and dtype."""
    check_regular(p)
    f = open(p, "rb")  # noqa: SIM115 - closed by the caller
    try:
        if f.read(6) != b"\x93NUMPY":
            raise FormatError("not a .npy file (no .npy header)")
        f.seek(0)
        _check_size(f, os.fstat(f.fileno()).st_size)
        f.seek(0)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if dtype.hasobject:
            raise FormatError(
                "holds Python objects; relcal never unpickles (allow_pickle=False)"
            )
        if fortran and len(shape) > 1:
            raise FormatError("is stored in Fortran order; streaming needs C order")
        if not shape:
            raise FormatError("holds a single number, not an array")
    except RelcalError:
        f.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged header
        f.close()
        raise FormatError(f"not a readable .npy file ({exc})") from None
    return f, tuple(shape), dtype


def _read_full(f: BinaryIO, mem: memoryview) -> int:
    """readinto until ``mem`` is full or the stream ends (a zip member
    stream returns short reads)."""
    got = 0
    while got < len(mem):
        n = f.readinto(mem[got:])
        if not n:
            break
        got += n
    return got


def _npz_member(
    z: zipfile.ZipFile, key: str
) -> tuple[BinaryIO, tuple[int, ...], np.dtype]:
    member = f"{key}.npy" if f"{key}.npy" in z.namelist() else key
    if member not in z.namelist():
        raise FormatError(f"no array {key!r} in the archive")
    f = z.open(member)
    try:
        _check_size(f, z.getinfo(member).file_size, f"array {key!r}: ")
        f.close()
        f = z.open(member)
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(f)
        if dtype.hasobject or (fortran and len(shape) > 1) or not shape:
            raise FormatError(
                f"array {key!r} cannot be streamed (objects, Fortran order or a scalar)"
            )
    except RelcalError:
        f.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged member
        f.close()
        raise FormatError(f"cannot read array {key!r}: {exc}") from None
    return f, tuple(shape), dtype  # type: ignore[return-value]


def iter_npz(
    path: str | os.PathLike[str],
    *,
    scores_key: str = "scores",
    labels_key: str = "labels",
    rows: int = 65536,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Like :func:`iter_npy_pair`, for two members of a .npz archive, stored
    or deflated: each member is decompressed as a stream, chunk by chunk."""
    if rows < 1:
        raise RelcalError(f"rows= must be at least 1, got {rows}")
    p = Path(path)
    try:
        check_regular(p)
        z = zipfile.ZipFile(p)
    except RelcalError as err:
        raise err.with_source(str(p)) from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise FormatError(f"not a .npz archive ({exc})", source=str(p)) from None
    with z:
        try:
            sf, sshape, sdt = _npz_member(z, scores_key)
            lf, lshape, ldt = _npz_member(z, labels_key)
        except RelcalError as err:
            raise err.with_source(str(p)) from None
        with sf, lf:
            _check_pair(sshape, lshape, p, p)
            yield from zip(
                _chunks(sf, sshape, sdt, rows, str(p)),
                _chunks(lf, lshape, ldt, rows, str(p)),
                strict=True,
            )


def _chunks(
    f: BinaryIO, shape: tuple[int, ...], dtype: np.dtype, rows: int, name: str
) -> Iterator[np.ndarray]:
    row_shape = shape[1:]
    buf = np.empty((min(rows, shape[0]), *row_shape), dtype=dtype)
    for start in range(0, shape[0], rows):
        n = min(rows, shape[0] - start)
        view = buf[:n]
        got = _read_full(f, memoryview(view).cast("B"))
        if got != view.nbytes:
            raise FormatError(
                f"the file ended at row {start + got // max(1, view[0].nbytes)}"
                f" of {shape[0]} (truncated while reading)",
                source=name,
            )
        yield view


def iter_npy_pair(
    scores: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    *,
    rows: int = 65536,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(scores_chunk, labels_chunk)`` of at most ``rows`` rows from a
    pair of .npy files whose leading axes have the same length.  The chunks
    are reused buffers: valid until the next one is requested."""
    if rows < 1:
        raise RelcalError(f"rows= must be at least 1, got {rows}")
    sp, lp = Path(scores), Path(labels)
    opened: list[BinaryIO] = []
    try:
        for p in (sp, lp):
            try:
                opened.append(_open_npy(p))  # type: ignore[arg-type]
            except RelcalError as err:
                raise err.with_source(str(p)) from None
        (sf, sshape, sdt), (lf, lshape, ldt) = opened  # type: ignore[misc]
        _check_pair(sshape, lshape, sp, lp)
        yield from zip(
            _chunks(sf, sshape, sdt, rows, str(sp)),
            _chunks(lf, lshape, ldt, rows, str(lp)),
            strict=True,
        )
    finally:
        for o in opened:
            o[0].close()  # type: ignore[index]


def _check_pair(
    sshape: tuple[int, ...], lshape: tuple[int, ...], sp: Path, lp: Path
) -> None:
    ok = lshape[0] == sshape[0] and (
        len(sshape) == 2
        and len(lshape) == 1
        or len(sshape) > 2
        and lshape == (sshape[0], *sshape[2:])
        or len(sshape) == 1
        and len(lshape) == 1
    )
    if not ok:
        raise ShapeError(
            f"labels of shape {lshape} do not fit scores of shape {sshape}"
            f" (labels: {lp})",
            source=str(sp),
        )


def iter_table(
    path: str | os.PathLike[str],
    *,
    score_cols: list[str],
    label_col: str = "label",
    rows: int = 65536,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(scores_chunk, labels_chunk)`` from a .csv (pandas ``chunksize=``)
    or .parquet file (pyarrow record batches).  Only explicit ``score_cols=``
    and ``label_col=`` for now: io.load's column inference is not reused yet,
    nor its checks of missing or non-numeric values."""
    if rows < 1:
        raise RelcalError(f"rows= must be at least 1, got {rows}")
    p = Path(path)
    try:
        check_regular(p)
    except RelcalError as err:
        raise err.with_source(str(p)) from None
    cols = [*score_cols, label_col]
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        batches = (
            b.to_pandas() for b in pq.ParquetFile(p).iter_batches(rows, columns=cols)
        )
    else:
        import pandas as pd

        batches = pd.read_csv(p, usecols=cols, chunksize=rows)
    for df in batches:
        yield (
            df[score_cols].to_numpy(dtype=np.float64),
            df[label_col].to_numpy(),
        )
