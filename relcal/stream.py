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


def _chunks(
    f: BinaryIO, shape: tuple[int, ...], dtype: np.dtype, rows: int, name: str
) -> Iterator[np.ndarray]:
    row_shape = shape[1:]
    buf = np.empty((min(rows, shape[0]), *row_shape), dtype=dtype)
    for start in range(0, shape[0], rows):
        n = min(rows, shape[0] - start)
        view = buf[:n]
        got = f.readinto(memoryview(view).cast("B"))
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
        len(sshape) == 2 and len(lshape) == 1
        or len(sshape) > 2 and lshape == (sshape[0], *sshape[2:])
        or len(sshape) == 1 and len(lshape) == 1
    )
    if not ok:
        raise ShapeError(
            f"labels of shape {lshape} do not fit scores of shape {sshape}"
            f" (labels: {lp})",
            source=str(sp),
        )
