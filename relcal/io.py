"""Every file format relcal reads, in one place, returning one :class:`Predictions`.

Formats
-------
``.npz``
    Scores and labels under one of the keys :data:`SCORE_KEYS` and
    :data:`LABEL_KEYS` (netcal's ``predictions`` / ``ground_truth`` among them;
    ``scores_key`` / ``labels_key`` override); optional ``class_names`` (a
    unicode array), against which labels stored as strings are matched.
    Scores stored under :data:`PROB_KEYS` are declared probabilities and must
    be ones.  Loaded with ``allow_pickle=False``: an object array is
    refused, never unpickled.
``.npy`` + ``labels=`` ``.npy``
    Memory-mapped (``mmap_mode="r"``), not copied.
``.csv``, ``.parquet``
    A label column (``label_col``, default ``label``) and score columns
    (``score_cols``: a list of names, or one prefix such as ``logit_``; default:
    every other numeric column; columns none of whose values is a number, such
    as dates or ids, are left out, with a note in ``Predictions.notes``).
    Labels are class indices or class names that match the score columns'
    names (prefix removed); the names become the class names.  A table with
    columns ``true_label, pred_label, confidence`` (or the columns named by
    ``label_col``, ``pred_col`` and ``confidence_col``) is a *top-label* file:
    it gives accuracy, top-label ECE/RMS-CE/MCE and the bin table, but not
    class-wise ECE, NLL or Brier.  ``models=["a", "b"]`` reads each named
    column as one binary model's P(class 1) (or logit) against the label
    column, and gives one :class:`Predictions` per model.  A missing label or
    score (an empty cell, NaN) is an error, or with ``missing="drop"`` its row
    is dropped and counted (``Predictions.n_dropped``); missing values in other
    columns do not matter.  pandas (and pyarrow for parquet) are imported only
    here, and only for these formats.

Shapes: scores ``(N,)`` or ``(N, 1)`` are the positive-class score of a binary
problem; ``(N, C)`` (labels ``(N,)`` or ``(N, 1)``); or segmentation maps
``(N, C, H, W)`` with labels ``(N, H, W)`` or ``(N, 1, H, W)``
(``channels_last=True`` for ``(N, H, W, C)``, labels ``(N, H, W)`` or
``(N, H, W, 1)``), where labels equal to ``ignore_index`` are dropped.
Labels may be one-hot rows for ``(N, C)`` scores.  Scores keep their dtype
(float16, float32, float64).
"""

from __future__ import annotations

import json
import math
import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard, overload

import numpy as np

from relcal.errors import FormatError, RelcalError, ScoresKindError, ShapeError
from relcal.validate import (
    _where,
    check_labels,
    class_axis_last,
    detect_kind,
    misfit_error,
    prepare,
)

SCORE_KEYS = (
    "logits",
    "probs",
    "probabilities",
    "scores",
    "predictions",
    "y_prob",
    "y_proba",
    "y_pred_proba",
)
# keys that declare probabilities (an array under them must be one)
PROB_KEYS = ("probs", "probabilities", "y_prob", "y_proba", "y_pred_proba")
LABEL_KEYS = (
    "labels",
    "label",
    "targets",
    "target",
    "y",
    "y_true",
    "y_test",
    "ground_truth",
)
TOPLABEL_COLUMNS = ("true_label", "pred_label", "confidence")
FORMATS = (".npz", ".npy", ".csv", ".parquet", ".pq")
TABLES = (".csv", ".parquet", ".pq")
MISSING = ("error", "drop")


@dataclass(frozen=True)
class Predictions:
    """Saved predictions, validated.

    Attributes
    ----------
    scores : ndarray or None
        ``(N,)``, ``(N, C)`` or ``(N, C, *spatial)``, class axis 1, in the
        file's dtype (possibly memory-mapped).  None for top-label files.
    labels : ndarray of int64
        ``(N,)`` or ``(N, *spatial)``.
    kind : {"logits", "probs", "toplabel"}
    n_classes : int
    class_names : tuple of str, or None
    source : str
        Where the data came from (the file name, and the labels file).
    confidence, predicted : ndarray or None
        Top-label files only: the top confidence and the predicted class.
    ignore_index : int or None
    origin : dict
        Which keys or columns held the scores and labels.
    model : str or None
        The column holding this model's scores, when the table was loaded with
        ``models=`` (one binary model per column); None otherwise.
    n_dropped : int
        Rows of the file left out because their label or a score was missing
        (``missing="drop"``); 0 otherwise.
    notes : tuple of str
        What the loader decided without being told (e.g. non-numeric columns
        left out of the default score columns), one line each, for the user.
    """

    scores: np.ndarray | None
    labels: np.ndarray
    kind: str
    n_classes: int
    class_names: tuple[str, ...] | None
    source: str
    confidence: np.ndarray | None = None
    predicted: np.ndarray | None = None
    ignore_index: int | None = None
    origin: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    n_dropped: int = 0
    notes: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        """Number of samples (pixels for segmentation), ignored ones included."""
        return int(self.labels.size)


@overload
def load(
    path: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = ...,
    scores_key: str | None = ...,
    labels_key: str | None = ...,
    label_col: str = ...,
    score_cols: list[str] | str | None = ...,
    pred_col: str | None = ...,
    confidence_col: str | None = ...,
    kind: str = ...,
    ignore_index: int | None = ...,
    channels_last: bool = ...,
    models: None = ...,
    missing: str = ...,
) -> Predictions: ...


@overload
def load(
    path: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = ...,
    scores_key: str | None = ...,
    labels_key: str | None = ...,
    label_col: str = ...,
    score_cols: list[str] | str | None = ...,
    pred_col: str | None = ...,
    confidence_col: str | None = ...,
    kind: str = ...,
    ignore_index: int | None = ...,
    channels_last: bool = ...,
    models: Sequence[str] | str,
    missing: str = ...,
) -> list[Predictions]: ...


def load(
    path: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    scores_key: str | None = None,
    labels_key: str | None = None,
    label_col: str = "label",
    score_cols: list[str] | str | None = None,
    pred_col: str | None = None,
    confidence_col: str | None = None,
    kind: str = "auto",
    ignore_index: int | None = None,
    channels_last: bool = False,
    models: Sequence[str] | str | None = None,
    missing: str = "error",
) -> Predictions | list[Predictions]:
    """Load and validate saved predictions.

    Every problem with the file raises :class:`relcal.errors.RelcalError` whose
    message starts with the file name.

    With ``models`` (a list of column names of a .csv/.parquet table, or one
    comma-separated string), each column is one binary model's probability
    (or logit) of class 1 against ``label_col``, and a list of
    :class:`Predictions` is returned, one per column in that order, named by
    ``Predictions.model``.  ``missing="drop"`` (tables only) drops the rows
    whose label or score is missing (with ``models``, a row missing any of
    them, so that every model holds the same rows) and counts them in
    ``Predictions.n_dropped``; the default ``"error"`` refuses them.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> logits = [[2.0, 0.5, -1.0], [0.1, 1.2, 0.3], [0.0, 0.4, 2.2]]
    >>> np.savez(os.path.join(d, "p.npz"), logits=logits, labels=[0, 1, 1])
    >>> p = load(os.path.join(d, "p.npz"))
    >>> p.kind, p.n_classes, p.origin["scores"]
    ('logits', 3, 'logits')

    Several forecasters in one table, one column each:

    >>> with open(os.path.join(d, "f.csv"), "w") as f:
    ...     _ = f.write("day,a,b,y\\nmon,0.9,0.6,1\\ntue,,0.3,0\\nwed,0.2,0.4,0\\n")
    >>> a, b = load(os.path.join(d, "f.csv"), models=["a", "b"], label_col="y",
    ...             missing="drop")
    >>> a.model, b.model, a.n_samples, a.n_dropped
    ('a', 'b', 2, 1)
    """
    p = Path(path)
    name = str(path)
    try:
        suffix = check_request(p, labels, models, missing)
        if suffix == ".npz":
            return _load_npz(
                p, name, scores_key, labels_key, kind, ignore_index, channels_last
            )
        if suffix == ".npy":
            return _load_npy_pair(p, name, labels, kind, ignore_index, channels_last)
        df = _read_table(p, suffix)
        read = TableRead(label_col, score_cols, kind, ignore_index, missing)
        if models is not None:
            if pred_col is not None or confidence_col is not None:
                raise FormatError(
                    "give models= or pred_col= and confidence_col=, not both"
                )
            return _load_models(df, name, read, models)
        if pred_col is not None or confidence_col is not None:
            if score_cols is not None:
                raise FormatError(
                    "give score_cols= or pred_col= and confidence_col=, not both"
                )
            return _load_toplabel(
                df, name, label_col, pred_col, confidence_col, missing
            )
        return _load_table(df, name, read)
    except RelcalError as err:
        raise err.with_source(name) from None


def check_request(
    p: Path,
    labels: str | os.PathLike[str] | None,
    models: object,
    missing: str,
) -> str:
    """The checks of :func:`load` before it opens the file; its suffix."""
    if missing not in MISSING:
        raise FormatError(
            f'missing= must be "error" or "drop". Got {missing!r} instead'
        )
    check_regular(p)
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise FormatError(
            f"unknown file type {suffix or '(none)'!r};"
            f" relcal reads {', '.join(FORMATS)}"
        )
    if labels is not None and suffix != ".npy":
        raise FormatError("a separate labels file goes with a .npy scores file only")
    if suffix not in TABLES:
        _table_only(models, missing)
    return suffix


def _table_only(models: object, missing: str) -> None:
    if models is not None:
        raise FormatError(
            "models= names columns of a table; this file is not a .csv/.parquet"
        )
    if missing != "error":
        raise FormatError(
            f"missing={json.dumps(missing)} applies to .csv/.parquet tables; an"
            " array file holds no missing values (NaN scores are an error)"
        )


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular(p: Path) -> None:
    """Refuse, before opening it, what is not a regular file: reading a FIFO
    blocks until someone writes to it, and a device such as /dev/zero never
    ends.  Symbolic links are followed."""
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise FormatError("no such file") from None
    except OSError as exc:
        raise FormatError(f"cannot read the file ({_short(exc)})") from None
    if stat.S_ISDIR(mode):
        raise FormatError("is a directory, not a file")
    if not stat.S_ISREG(mode):
        what = next((w for test, w in _NOT_REGULAR if test(mode)), "a special file")
        raise FormatError(f"is {what}, not a regular file")


# --------------------------------------------------------------------------
# numpy formats


def _read_npy_member(npz: Any, key: str) -> np.ndarray:
    try:
        member = f"{key}.npy" if f"{key}.npy" in npz.zip.namelist() else key
        with npz.zip.open(member) as f:
            _check_size(f, npz.zip.getinfo(member).file_size, f"array {key!r}: ")
        return np.asarray(npz[key])
    except RelcalError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise FormatError(
                f"array {key!r} holds Python objects; relcal never unpickles"
                " (allow_pickle=False)"
            ) from None
        raise FormatError(f"cannot read array {key!r}: {_short(exc)}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise FormatError(f"cannot read array {key!r}: {_short(exc)}") from None
    except Exception as exc:  # zlib.error and friends from a damaged member
        raise FormatError(f"cannot read array {key!r}: {_short(exc)}") from None


def _check_size(
    f: BinaryIO, file_size: int, what: str = ""
) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Compare the shape a .npy header claims with the bytes the file holds,
    before numpy allocates or maps the array (a damaged header may claim
    terabytes).  The header's shape, Fortran order and dtype; ``f`` is left
    at the first byte of the data."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = fmt.read_array_header_2_0(f)
    size = file_size - f.tell()
    needed = math.prod(shape) * dtype.itemsize
    if dtype.hasobject or needed <= size:
        return tuple(shape), bool(fortran), dtype  # objects are refused when read
    raise FormatError(
        f"{what}its header claims shape {shape} ({needed:,} bytes) but"
        f" the file holds {size:,} bytes"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _head(p: Path) -> bytes:
    """The first bytes of a file: its magic number, or b"" when empty."""
    try:
        with open(p, "rb") as f:
            return f.read(6)
    except OSError as exc:
        raise FormatError(f"cannot read the file ({_short(exc)})") from None


def _pick_keys(
    keys: list[str], scores_key: str | None, labels_key: str | None
) -> tuple[str, str]:
    """The scores' and the labels' keys; when either is missing or ambiguous,
    one message that lists every key of the file and both options."""
    listed = ", ".join(keys[:50]) if keys else "none"
    if len(keys) > 50:
        listed += f", ... ({len(keys) - 50} more)"
    for wanted, what in ((scores_key, "scores"), (labels_key, "labels")):
        if wanted is not None and wanted not in keys:
            raise FormatError(
                f"no array {wanted!r} for the {what}; the file has: {listed}"
            )
    picked, problems = [], []
    for wanted, candidates, what in (
        (scores_key, SCORE_KEYS, "scores"),
        (labels_key, LABEL_KEYS, "labels"),
    ):
        found = [wanted] if wanted is not None else [k for k in candidates if k in keys]
        if not found:
            problems.append(f"no {what} array (looked for {', '.join(candidates)})")
        elif len(found) > 1:
            problems.append(f"ambiguous {what} ({', '.join(found)})")
        picked.append(found[0] if found else "")
    if problems:
        raise FormatError(
            f"{' and '.join(problems)}; the file has: {listed};"
            " name the arrays with scores_key= and labels_key="
        )
    return picked[0], picked[1]


def _load_npz(
    p: Path,
    name: str,
    scores_key: str | None,
    labels_key: str | None,
    kind: str,
    ignore_index: int | None,
    channels_last: bool,
) -> Predictions:
    head = _head(p)
    if not head:
        raise FormatError("the file is empty")
    if not head.startswith((b"PK", b"\x93NUMPY")):
        raise FormatError("not a .npz file (not a zip archive)")
    # opened here, not by np.load: numpy leaves its own handle open when the
    # archive turns out to be damaged
    with open(p, "rb") as f, _open_npz(f) as npz:
        keys = list(npz.files)
        skey, lkey = _pick_keys(keys, scores_key, labels_key)
        scores = _read_npy_member(npz, skey)
        labels = _read_npy_member(npz, lkey)
        names = None
        if "class_names" in keys:
            raw = _read_npy_member(npz, "class_names")
            if raw.dtype.kind not in "US" or raw.ndim != 1:
                raise FormatError("'class_names' must be a 1-D array of strings")
            names = tuple(_text(raw).tolist())
    if labels.dtype.kind in "US":  # class names, matched against class_names
        labels = _named_labels(labels, names, lkey, _n_classes(scores, channels_last))
    if kind == "auto" and skey in PROB_KEYS:
        kind = "probs"
    return _from_arrays(
        scores,
        labels,
        name,
        kind,
        ignore_index,
        channels_last,
        names,
        {"scores": skey, "labels": lkey},
    )


def _named_labels(
    labels: np.ndarray, names: tuple[str, ...] | None, key: str, n_classes: int | None
) -> np.ndarray:
    """Class indices of labels stored as class names in an .npz."""
    text = _text(labels)
    if names is None:
        first = f" (first: {str(text.flat[0])!r})" if text.size else ""
        raise FormatError(
            f"array {key!r} holds strings{first}, not class indices, and the file"
            " has no 'class_names' array to match them against"
        )
    if n_classes is not None and len(names) != n_classes:
        raise FormatError(
            f"class_names has {len(names)} names but the scores have"
            f" {n_classes} classes"
        )
    return names_to_indices(text, names, f"array {key!r}")


def _n_classes(scores: np.ndarray, channels_last: bool) -> int | None:
    """The class count the scores' shape says, or None when it says none."""
    if scores.ndim == 0:
        return None
    if channels_last:
        return int(scores.shape[-1]) if scores.ndim >= 3 else None
    if scores.ndim == 1 or scores.shape[1] == 1:
        return 2
    return int(scores.shape[1])


def _text(arr: np.ndarray) -> np.ndarray:
    """A unicode array of strings; bytes (dtype S) are decoded as UTF-8, an
    undecodable byte becoming U+FFFD."""
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8", errors="replace")
    return arr.astype(str)


def _open_npz(f: BinaryIO) -> Any:
    try:
        npz = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"not a readable .npz file ({_short(exc)})") from None
    except NotImplementedError as exc:  # zipfile: "zip file version 14.7", ...
        raise FormatError(
            f"not a .npz file Python's zipfile can read ({_short(exc)})"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise FormatError("not a .npz archive (a single .npy array?)")
    return npz


def check_npy_head(p: Path) -> None:
    """The first bytes of a .npy file: not empty, not an .npz, a .npy magic."""
    head = _head(p)
    if not head:
        raise FormatError("the file is empty")
    if head.startswith(b"PK"):
        raise FormatError("not a .npy array (a .npz archive?)")
    if head != b"\x93NUMPY":
        raise FormatError("not a .npy file (no .npy header)")


def _load_npy(p: Path) -> np.ndarray:
    check_npy_head(p)
    try:
        with open(p, "rb") as f:
            _check_size(f, os.fstat(f.fileno()).st_size)
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except RelcalError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "object" in str(exc).lower():
            raise FormatError(
                "holds Python objects; relcal never unpickles (allow_pickle=False)"
            ) from None
        raise FormatError(f"not a readable .npy file ({_short(exc)})") from None
    except Exception as exc:  # noqa: BLE001
        # a damaged header reaches numpy's parser (tokenize, ast) and mmap:
        # they raise OSError, EOFError, SyntaxError, TokenError, OverflowError ...
        raise FormatError(f"not a readable .npy file ({_short(exc)})") from None
    if not isinstance(arr, np.ndarray):
        raise FormatError("not a .npy array (a .npz archive?)")
    return arr


def _load_npy_pair(
    p: Path,
    name: str,
    labels: str | os.PathLike[str] | None,
    kind: str,
    ignore_index: int | None,
    channels_last: bool,
) -> Predictions:
    if labels is None:
        raise FormatError('a .npy scores file needs its labels: labels="LABELS.npy"')
    scores = _load_npy(p)
    lp = Path(labels)
    try:
        check_regular(lp)
        if lp.suffix.lower() != ".npy":
            raise FormatError("the labels file must be a .npy file")
        label_arr = np.asarray(_load_npy(lp))
    except RelcalError as err:
        raise err.with_source(str(labels)) from None
    source = f"{name} (labels: {labels})"
    try:
        return _from_arrays(
            scores,
            label_arr,
            source,
            kind,
            ignore_index,
            channels_last,
            None,
            {"scores": p.name, "labels": lp.name},
        )
    except RelcalError as err:  # name both files: the problem may be in either
        raise err.with_source(source) from None


def _from_arrays(
    scores: np.ndarray,
    labels: np.ndarray,
    source: str,
    kind: str,
    ignore_index: int | None,
    channels_last: bool,
    class_names: tuple[str, ...] | None,
    origin: dict[str, str],
) -> Predictions:
    scores, labels = pixel_rows(scores, np.asarray(labels), channels_last, ignore_index)
    s, y, k, c = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    if class_names is not None and len(class_names) != c:
        raise FormatError(
            f"class_names has {len(class_names)} names but the scores have {c} classes"
        )
    return Predictions(
        s, y, k, c, class_names, source, ignore_index=ignore_index, origin=origin
    )


def pixel_rows(
    scores: np.ndarray,
    labels: np.ndarray,
    channels_last: bool,
    ignore_index: int | None,
    *,
    values: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores with the class axis at 1: ``channels_last=True`` maps of shape
    ``(N, *spatial, C)`` become rows of pixels ``(N * H * W, C)`` (a view),
    their labels checked in their own shape first, so that a message names
    the pixel.  ``values=False``: shapes only (see ``prepare_labels``)."""
    if channels_last:
        if scores.ndim < 3:
            raise FormatError(
                "channels_last=True needs scores of shape (N, H, W, C); "
                f"got {scores.shape}"
            )
        if labels.shape == scores.shape[:-1] + (1,):  # (N, H, W, 1) masks
            labels = labels[..., 0]
        if labels.shape != scores.shape[:-1]:
            raise ShapeError(
                f"labels of shape {labels.shape} do not fit channels_last=True"
                f" scores of shape {scores.shape} (expected labels of shape"
                f" {scores.shape[:-1]})"
            )
        # checked in their own shape, so a message names the pixel (and
        # suggests ignore_index= for a 255 map)
        if values:
            labels = check_labels(labels, scores.shape[-1], ignore_index=ignore_index)
        # (N, *spatial, C) -> rows of pixels (N * H * W, C): a view, no copy
        return scores.reshape(-1, scores.shape[-1]), labels.reshape(-1)
    if class_axis_last(scores, labels):
        raise misfit_error(scores, labels, fix="give channels_last=True")
    return scores, labels


# --------------------------------------------------------------------------
# tables


@dataclass(frozen=True)
class TableRead:
    """How to read a .csv/.parquet table: the table options of :func:`load`."""

    label_col: str
    score_cols: list[str] | str | None
    kind: str
    ignore_index: int | None
    missing: str


def _read_table(p: Path, suffix: str) -> Any:
    import pandas as pd

    try:
        if suffix == ".csv":
            df = pd.read_csv(p)
        else:
            df = pd.read_parquet(p)
    except ImportError as exc:
        raise FormatError(f"reading {suffix} needs pyarrow ({_short(exc)})") from None
    except pd.errors.EmptyDataError:
        raise FormatError("the file is empty") from None
    except Exception as exc:  # parser and arrow errors have many types
        raise FormatError(f"cannot read the {suffix} file ({_short(exc)})") from None
    # rows are named by their position in the file, also after dropping some
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise FormatError("the table has no rows")
    return df


def _numeric_column(df: Any, col: str) -> np.ndarray:
    import pandas as pd

    series = df[col]
    if series.isna().any():
        row = int(series.index[np.flatnonzero(series.isna().to_numpy())[0]])
        raise FormatError(
            f'column {col!r}: missing value at row {row} (missing="drop" drops'
            " such rows)"
        )
    values = pd.to_numeric(series, errors="coerce")
    if values.isna().any():
        pos = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise FormatError(
            f"column {col!r}: non-numeric value {series.iloc[pos]!r} at row"
            f" {int(series.index[pos])}"
        )
    arr = values.to_numpy()
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    return arr


def _drop_missing(
    df: Any, cols: list[str], label_col: str, missing: str
) -> tuple[Any, int]:
    """The rows whose label and scores are all present, and how many were not.

    With ``missing="error"`` a missing one is an error naming the first."""
    holes = df[cols].isna().to_numpy()
    rows = holes.any(axis=1)
    n = int(rows.sum())
    if not n:
        return df, 0
    if missing == "error":
        first = int(np.flatnonzero(rows)[0])
        col = cols[int(np.argmax(holes[first]))]
        what = "label" if col == label_col else "value"
        raise FormatError(
            f"column {col!r}: missing {what} at row {int(df.index[first])}"
            f" ({n} {'row has' if n == 1 else 'rows have'} a missing label or score;"
            ' missing="drop" drops them)'
        )
    if n == len(df):
        empty = [c for c, hole in zip(cols, holes.all(axis=0), strict=True) if hole]
        why = f" (column {empty[0]!r} is empty)" if empty else ""
        raise FormatError(
            f"every one of the {n} rows has a missing label or score{why}"
        )
    return df[~rows], n


def _need_label(columns: list[str], label_col: str, hint: str = "") -> None:
    if label_col not in columns:
        raise FormatError(
            f"no label column {label_col!r}; the columns are: {', '.join(columns)};"
            f" name it with label_col={hint}"
        )


def _load_table(df: Any, name: str, read: TableRead) -> Predictions:
    columns = list(df.columns)
    if read.score_cols is None and all(c in columns for c in TOPLABEL_COLUMNS):
        return _load_toplabel(df, name, *TOPLABEL_COLUMNS, read.missing)
    hint = ""
    if read.label_col not in columns and read.score_cols is None:
        if len(columns) == 3 and _toplabel_pair(df, columns):
            hint = " (and, for a top-label table, pred_col= and confidence_col=)"
    _need_label(columns, read.label_col, hint)
    cols, prefix, notes = _score_columns(df, columns, read.label_col, read.score_cols)
    try:
        df, n_dropped = _drop_missing(
            df, [*cols, read.label_col], read.label_col, read.missing
        )
    except FormatError as err:
        raise _also_several_models(err, df, cols, read) from None
    scores, labels, names = table_arrays(df, cols, prefix, read.label_col, n_dropped)
    origin = {"scores": ",".join(cols), "labels": read.label_col}
    try:
        pred = _from_arrays(
            scores, labels, name, read.kind, read.ignore_index, False, names, origin
        )
    except RelcalError as err:
        table_err = _table_error(err, df, cols, read.score_cols)
        raise _renumbered(table_err, n_dropped) from None
    return replace(pred, n_dropped=n_dropped, notes=notes)


def table_arrays(
    df: Any, cols: list[str], prefix: str, label_col: str, n_dropped: int = 0
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """Scores, labels (class indices, or class names matched against the
    score columns' names without ``prefix``) and class names of the rows of
    ``df`` (none missing); one score column is a binary problem's P(1)."""
    class_names = tuple(c[len(prefix) :] for c in cols)
    scores = np.column_stack([_numeric_column(df, c) for c in cols])
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    labels = _table_labels(df[label_col], class_names, label_col, n_dropped)
    if len(cols) == 1:  # the positive-class score of a binary problem
        return scores[:, 0], labels, None
    return scores, labels, class_names


def _also_several_models(
    err: FormatError, df: Any, cols: list[str], read: TableRead
) -> RelcalError:
    """Missing values in a table whose complete rows are not one model's
    probabilities either: one message naming every option the table needs."""
    kept = df.dropna(subset=[*cols, read.label_col])
    if read.kind != "auto" or len(cols) < 2 or kept.empty:
        return err
    try:
        scores = np.column_stack([_numeric_column(kept, c) for c in cols])
        detect_kind(scores.astype(np.float64))
    except ScoresKindError as kind_err:
        several = _several_models_error(kind_err, cols)
        # nothing was dropped (missing="error"): the rows were read among the
        # complete ones only, and the message says so in those words
        return FormatError(
            f"{several.message} (rows counted among the {len(kept)} complete"
            f" ones). Also {err.message}"
        )
    except RelcalError:
        pass
    return err


def _renumbered(err: RelcalError, n_dropped: int) -> RelcalError:
    """An error found in the arrays of the rows kept: its row numbers are not
    the file's when rows were dropped, and it says so."""
    if not n_dropped or " row " not in err.message:
        return err
    return type(err)(
        f"{err.message} (row numbers count the rows kept after dropping {n_dropped})"
    )


def _table_error(
    err: RelcalError, df: Any, cols: list[str], score_cols: object
) -> RelcalError:
    """An error in a table's scores, with the readings that would fit: one
    model per column, or a top-label table."""
    if isinstance(err, ScoresKindError):
        err = _several_models_error(err, cols)
    pair = _toplabel_pair(df, cols) if score_cols is None else None
    if pair is None:
        return err
    return type(err)(
        f"{err.message}; if the table is top-label (true class, predicted"
        f" class, confidence), read it with pred_col={pair[0]!r} and"
        f" confidence_col={pair[1]!r}"
    )


def _several_models_error(err: ScoresKindError, cols: list[str]) -> FormatError:
    """Columns of values in [0, 1] whose rows do not sum to 1: one forecast per
    column, or logits?  Both readings, in the options that choose them."""
    listed = ", ".join(cols)
    return FormatError(
        f"score columns {listed}: every value is in [0, 1] but {err.problem}: not"
        f" probabilities of {len(cols)} classes. One binary model per column:"
        f" models={json.dumps(cols, ensure_ascii=False)}; logits of"
        f' {len(cols)} classes: kind="logits"'
    )


def _load_models(
    df: Any, name: str, read: TableRead, models: Sequence[str] | str
) -> list[Predictions]:
    """One binary model per column: a list of :class:`Predictions`, all on
    the same rows (a row missing any of their scores is dropped for all)."""
    columns = list(df.columns)
    if read.score_cols is not None:
        raise FormatError("give score_cols= or models=, not both")
    cols = _model_columns(models, columns, read.label_col)
    _need_label(columns, read.label_col)
    df, n_dropped = _drop_missing(
        df, [*cols, read.label_col], read.label_col, read.missing
    )
    labels = _binary_labels(df[read.label_col], read, n_dropped)
    out = []
    for col in cols:
        scores = _numeric_column(df, col).astype(np.float64)
        infinite = df.index[np.isinf(scores)]  # the file's rows
        if len(infinite):
            first = infinite[0]
            raise FormatError(
                f"column {col!r}: {len(infinite)} infinite values (first:"
                f" {float(df.at[first, col])} at row {first})"
            )
        origin = {"scores": col, "labels": read.label_col}
        try:
            pred = _from_arrays(
                scores, labels, name, read.kind, read.ignore_index, False, None, origin
            )
        except RelcalError as err:
            named = type(err)(f"column {col!r}: {err.message}")
            raise _renumbered(named, n_dropped) from None
        out.append(replace(pred, model=col, n_dropped=n_dropped))
    return out


def _model_columns(
    models: Sequence[str] | str, columns: list[str], label_col: str
) -> list[str]:
    if isinstance(models, str):
        cols = [c.strip() for c in models.split(",") if c.strip()]
    else:
        cols = [str(c) for c in models]
    if not cols:
        raise FormatError("models= names no column")
    unknown = [c for c in cols if c not in columns]
    if unknown:
        raise FormatError(
            f"models=: no column {unknown[0]!r}; the columns are: {', '.join(columns)}"
        )
    if label_col in cols:
        raise FormatError(
            f"models=: {label_col!r} is the label column; name the labels with"
            " label_col="
        )
    twice = [c for i, c in enumerate(cols) if c in cols[:i]]
    if twice:
        raise FormatError(f"models=: column {twice[0]!r} is named twice")
    return cols


def _toplabel_pair(df: Any, cols: list[str]) -> tuple[str, str] | None:
    """(predicted-class column, confidence column) when ``cols`` look like the
    columns of a top-label table besides the label (or with it, for three
    columns): class indices, and one column of fractions in [0, 1]."""
    import pandas as pd

    whole, fractions = [], []
    for c in cols:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        if not v.size or not np.isfinite(v).all() or v.min() < 0:
            return None
        if (v == np.round(v)).all():
            whole.append(c)
        elif v.max() <= 1:
            fractions.append(c)
    if len(fractions) != 1 or not whole or len(whole) != len(cols) - 1:
        return None  # (one column of fractions alone: a binary problem's P(1))
    return whole[-1], fractions[0]


def _score_columns(
    df: Any, columns: list[str], label_col: str, score_cols: list[str] | str | None
) -> tuple[list[str], str, tuple[str, ...]]:
    """The score columns, the prefix of their names, and notes for the user."""
    named = named_score_columns(columns, label_col, score_cols)
    if named is not None:
        return named
    return default_score_columns(
        column_profile(df), columns, label_col, lambda c: _numeric_column(df, c)
    )


def named_score_columns(
    columns: list[str], label_col: str, score_cols: list[str] | str | None
) -> tuple[list[str], str, tuple[str, ...]] | None:
    """The score columns ``score_cols=`` names (None: it names none)."""
    if isinstance(score_cols, str):
        parts = [c.strip() for c in score_cols.split(",") if c.strip()]
        if len(parts) == 1 and parts[0] not in columns:
            prefix = parts[0]
            cols = [c for c in columns if c.startswith(prefix) and c != label_col]
            if not cols:
                raise FormatError(
                    f"no column named or starting with {prefix!r}; the columns are:"
                    f" {', '.join(columns)}"
                )
            return cols, prefix, ()
        score_cols = parts
    if score_cols is not None:
        missing = [c for c in score_cols if c not in columns]
        if missing:
            raise FormatError(
                f"no score column {missing[0]!r}; the columns are: {', '.join(columns)}"
            )
        if not score_cols:
            raise FormatError("score_cols= names no column")
        return list(score_cols), "", ()
    return None


@dataclass(frozen=True)
class Column:
    """What decides whether a table's column is a score column: all its
    values missing, a numeric dtype, some value a number (as text), the
    dtype's name."""

    empty: bool
    numeric: bool
    numbers: bool
    dtype: str

    def then(self, later: Column) -> Column:
        """This column's profile followed by that of its next rows: numeric
        when every part with a value is."""
        numeric = (self.numeric or self.empty) and (later.numeric or later.empty)
        return Column(
            self.empty and later.empty,
            numeric,
            self.numbers or later.numbers,
            self.dtype if not self.empty else later.dtype,
        )


def column_profile(df: Any) -> dict[str, Column]:
    """The :class:`Column` of every column of ``df``."""
    out = {}
    for c in df.columns:
        series = df[c]
        empty = bool(series.isna().all())
        numeric = series.dtype.kind in "fiub"
        numbers = (numeric and not empty) or _some_numbers(series)
        out[c] = Column(empty, numeric, numbers, str(series.dtype))
    return out


def default_score_columns(
    profile: dict[str, Column],
    columns: list[str],
    label_col: str,
    bad_value: Callable[[str], object],
) -> tuple[list[str], str, tuple[str, ...]]:
    """Every numeric column but the labels.  A column none of whose values is
    a number (dates, ids, names) or that is empty is left out, with a note; one
    where only some are is a score column with a bad value, an error (raised
    by ``bad_value(column)``)."""
    others = [c for c in columns if c != label_col]
    empty = [c for c in others if profile[c].empty]
    others = [c for c in others if c not in empty]
    numeric = [c for c in others if profile[c].numeric]
    text = [c for c in others if c not in numeric and not profile[c].numbers]
    mixed = [c for c in others if c not in numeric and c not in text]
    if mixed:
        bad_value(mixed[0])  # raises with the first bad value
    if not numeric:
        bad = others[0] if others else None
        if bad is None:
            why = f" (empty: {', '.join(repr(c) for c in empty)})" if empty else ""
            raise FormatError(f"the table has no score columns besides the labels{why}")
        raise FormatError(
            f"no numeric score column; column {bad!r} holds"
            f" {profile[bad].dtype} values (name the score columns with score_cols=)"
        )
    notes = tuple(
        f"left out {what} {'column' if len(cols) == 1 else 'columns'}"
        f" {', '.join(repr(c) for c in cols)} from the scores"
        for what, cols in (("non-numeric", text), ("empty", empty))
        if cols
    )
    prefix = os.path.commonprefix(numeric) if len(numeric) > 1 else ""
    if prefix and not prefix.endswith("_"):
        prefix = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
    return numeric, prefix, notes


def _some_numbers(series: Any) -> bool:
    """Whether a non-numeric column holds some numbers (as text)."""
    import pandas as pd

    if series.dtype.kind != "O":  # datetimes, timedeltas: never scores
        return False
    try:
        parsed = pd.to_numeric(series.astype(object), errors="coerce")
    except (TypeError, ValueError):
        return False
    return bool(parsed.notna().any())


def _table_labels(
    series: Any, class_names: tuple[str, ...], col: str, n_dropped: int = 0
) -> np.ndarray:
    if series.dtype.kind in "fiub":
        return series.to_numpy()
    values = np.asarray(series.astype(str).to_numpy(), dtype=str)
    try:
        return names_to_indices(values, class_names, f"column {col!r}")
    except RelcalError as err:
        raise _renumbered(err, n_dropped) from None


def _binary_labels(series: Any, read: TableRead, n_dropped: int) -> np.ndarray:
    """The labels of binary models (``models=``), checked once for them all."""
    labels = _table_labels(series, ("0", "1"), read.label_col, n_dropped)
    try:
        return check_labels(
            labels, 2, ignore_index=read.ignore_index, name=f"column {read.label_col!r}"
        )
    except RelcalError as err:
        raise _renumbered(err, n_dropped) from None


def names_to_indices(
    values: np.ndarray, class_names: Sequence[str], what: str
) -> np.ndarray:
    """Class indices of labels given as class names (vectorised: one sort of
    the names, one binary search per label); an unknown name is an error
    naming it, where it is, and the classes."""
    values = np.asarray(values).astype(str)
    names = np.asarray(class_names, dtype=str)
    order = np.argsort(names, kind="stable")
    ordered = names[order]
    pos = np.searchsorted(ordered, values)
    known = pos < len(names)
    known[known] = ordered[pos[known]] == values[known]
    if not known.all():
        unknown = np.unique(values[~known])
        first = int(np.flatnonzero(~known.ravel())[0])
        shown = ", ".join(repr(str(v)) for v in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        where = _where(values.shape, first)
        classes = ", ".join(class_names[:10]) + (", ..." if len(names) > 10 else "")
        if len(unknown) == 1:
            problem = f"unknown class name {shown} at {where} ("
        else:
            first_name = str(values.flat[first])
            problem = (
                f"unknown class names {shown}{more} (first: {first_name!r} at {where}; "
            )
        raise FormatError(f"{what}: {problem}classes: {classes or 'none'})")
    return order[pos].astype(np.int64)


def _load_toplabel(
    df: Any,
    name: str,
    label_col: str,
    pred_col: str | None,
    confidence_col: str | None,
    missing: str = "error",
) -> Predictions:
    """A top-label table: the true class, the predicted class and its
    confidence, one row per sample."""
    columns = [str(c) for c in df.columns]
    df.columns = columns
    label_col, pred_col, confidence_col = toplabel_columns(
        columns, label_col, pred_col, confidence_col
    )
    if len(df) == 0:
        raise FormatError("the table has no rows")
    df, n_dropped = _drop_missing(
        df, [label_col, pred_col, confidence_col], label_col, missing
    )
    labels, predicted, conf, n_classes = toplabel_arrays(
        df, label_col, pred_col, confidence_col
    )
    return Predictions(
        scores=None,
        labels=labels,
        kind="toplabel",
        n_classes=n_classes,
        class_names=None,
        source=name,
        confidence=conf,
        predicted=predicted,
        origin={"scores": f"{pred_col},{confidence_col}", "labels": label_col},
        n_dropped=n_dropped,
    )


def toplabel_columns(
    columns: list[str], label_col: str, pred_col: str | None, confidence_col: str | None
) -> tuple[str, str, str]:
    """The columns of a top-label table: true class, predicted class and
    confidence (``label_col="label"`` falls back on ``true_label``)."""
    if pred_col is None or confidence_col is None:
        given, other = (
            ("pred_col", "confidence_col")
            if confidence_col is None
            else ("confidence_col", "pred_col")
        )
        raise FormatError(f"{given}= makes a top-label table, which needs {other}= too")
    if label_col == "label" and "label" not in columns and "true_label" in columns:
        label_col = "true_label"
    for col, option in (
        (label_col, "label_col"),
        (pred_col, "pred_col"),
        (confidence_col, "confidence_col"),
    ):
        if col not in columns:
            raise FormatError(
                f"no column {col!r} for {option}=; the columns are: "
                f"{', '.join(columns)}"
            )
    return label_col, pred_col, confidence_col


def toplabel_arrays(
    df: Any,
    label_col: str,
    pred_col: str,
    confidence_col: str,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """True classes, predicted classes, confidences (checked) of the rows of
    a top-label table (none missing), and the class count: ``n_classes``, or
    one more than the largest class in the rows."""
    true = _numeric_column(df, label_col)
    pred = _numeric_column(df, pred_col)
    conf = _numeric_column(df, confidence_col).astype(np.float64)
    if n_classes is None:
        n_classes = int(max(np.max(true), np.max(pred))) + 1 if len(true) else 0
    labels = check_labels(true, max(n_classes, 1), name=label_col)
    predicted = check_labels(pred, max(n_classes, 1), name=pred_col)
    if not np.isfinite(conf).all():
        row = int(np.flatnonzero(~np.isfinite(conf))[0])
        raise FormatError(f"column {confidence_col!r}: non-finite value at row {row}")
    out = (conf < 0) | (conf > 1)
    if out.any():
        row = int(np.flatnonzero(out)[0])
        raise FormatError(
            f"column {confidence_col!r}: {int(out.sum())} values outside [0, 1]"
            f" (first: {conf[row]:.6g} at row {row})"
        )
    return labels, predicted, conf, n_classes


# -- writing -------------------------------------------------------------------


def check_output(
    path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str] | None]
) -> Path:
    """Refuse an output path that is an input, a directory, or in no directory."""
    out = Path(path)
    if out.is_dir():
        raise RelcalError(f"{out}: is a directory; give a file name to write")
    if out.exists() and not out.is_file():
        kind = next(
            (w for test, w in _NOT_REGULAR if test(out.stat().st_mode)),
            "a special file",
        )
        raise RelcalError(
            f"{out}: is {kind}, not a regular file; give a file name to write"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise RelcalError(f"{out}: cannot write, no directory {parent}")
    for p in inputs:
        if p is not None and Path(p).exists() and out.exists():
            if os.path.samefile(out, p):
                raise RelcalError(f"{out}: is an input file; refusing to overwrite it")
    return out


def write_atomic(files: Mapping[Path, str | Callable[[BinaryIO], None]]) -> None:
    """Write files all-or-nothing: each to a temporary file beside it, then
    rename them into place (a rename is atomic on one file system), so a
    reader never sees half a file and a failure leaves the old files intact.

    A value is the text of the file (UTF-8), or a function that writes the
    file's bytes to the binary stream it is given (``np.savez``, say).  If
    that function fails (a chunk of the input found bad half-way, say), the
    temporary files are removed and its error is raised.
    """
    import tempfile

    temps: list[tuple[str, Path]] = []
    path = Path()  # the file being written: errors name it, not its temporary
    try:
        for path, content in files.items():
            fd, tmp = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
            )
            temps.append((tmp, path))
            if isinstance(content, str):
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                    f.write(content)
            else:
                with os.fdopen(fd, "wb") as fb:
                    content(fb)
            os.chmod(tmp, _mode_for(path))
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException as err:  # a chunk that fails mid-file too: none left
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if not isinstance(err, OSError):
            raise
        reason = err.strerror or _short(err)
        raise RelcalError(f"{path}: cannot write ({reason})") from None


def _mode_for(path: Path) -> int:
    """The existing file's permissions, else the usual ones (0o666 minus umask):
    mkstemp's private 0o600 is not what a report needs."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def read_temperature(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A temperature file written by ``relcal fit-temperature`` (format 1),
    checked: a JSON object with a positive finite ``temperature`` and the
    ``n_classes`` it was fitted for."""
    name = str(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("kind") != "relcal.temperature":
        raise FormatError(
            f'{name}: not a relcal temperature file (no "kind": "relcal.temperature")'
        )
    if doc.get("format") != 1:
        raise FormatError(
            f"{name}: temperature file format {doc.get('format')!r}; "
            "this relcal reads format 1"
        )
    t = doc.get("temperature")
    if not _is_number(t) or t <= 0:
        raise FormatError(
            f"{name}: temperature must be a positive number. Got {_clip_repr(t)}"
        )
    doc["temperature"] = float(t)
    fitted = doc.get("fitted_on")
    n_classes = fitted.get("n_classes") if isinstance(fitted, dict) else None
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise FormatError(f"{name}: fitted_on.n_classes missing or not an integer ≥ 2")
    return doc


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file's value: strict (``NaN`` and ``Infinity`` are refused, as
    relcal never writes them) and bounded (nesting too deep for the parser is
    an error, not a crash)."""
    import json

    p = Path(path)
    name = str(path)
    try:
        check_regular(p)
        text = p.read_text(encoding="utf-8")
    except RelcalError as err:
        raise err.with_source(name) from None
    except (OSError, UnicodeDecodeError) as err:
        raise FormatError(f"cannot read ({_short(err)})", source=name) from None

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a number relcal reads")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as err:
        raise FormatError(
            f"not a JSON file ({err.msg}, line {err.lineno})", source=name
        ) from None
    except ValueError as err:
        raise FormatError(f"not a JSON file ({_short(err)})", source=name) from None
    except RecursionError:
        raise FormatError(
            "not a JSON file relcal reads (nested too deeply)", source=name
        ) from None


def _is_number(v: Any) -> TypeGuard[int | float]:
    """A finite JSON number (not a bool, not an integer beyond float's range)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _clip_repr(v: Any, limit: int = 40) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_npz_atomic(path: Path, arrays: dict[str, Any]) -> None:
    """``np.savez`` through :func:`write_atomic`."""
    write_atomic({path: lambda f: np.savez(f, **arrays)})


@dataclass(frozen=True)
class Member:
    """One array of an .npz written by :func:`write_npz_streamed`: its name,
    dtype and shape (known before its first byte: the header comes first),
    and ``chunks``, a function giving its blocks of leading-axis rows."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: Callable[[], Iterable[np.ndarray]]


def write_npz_streamed(path: Path, members: Sequence[Member]) -> None:
    """An .npz written member by member, each one a .npy header
    (``np.lib.format``) and then the raw bytes of its chunks, stored
    uncompressed as ``np.savez`` stores them: only a chunk is in memory at a
    time.  Atomic (:func:`write_atomic`): nothing is left behind when a
    chunk fails."""
    import zipfile

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for m in members:
                with zf.open(f"{m.name}.npy", "w", force_zip64=True) as out:
                    _write_npy(out, m)

    write_atomic({path: write})


def _write_npy(out: BinaryIO, m: Member) -> None:
    header = {
        "descr": np.lib.format.dtype_to_descr(m.dtype),
        "fortran_order": False,
        "shape": m.shape,
    }
    np.lib.format.write_array_header_1_0(out, header)
    rows = 0
    for chunk in m.chunks():
        a = np.ascontiguousarray(chunk, dtype=m.dtype)
        if a.shape[1:] != m.shape[1:]:
            raise ValueError(f"{m.name}: a chunk of shape {a.shape}, not {m.shape}")
        out.write(memoryview(a.reshape(-1).view(np.uint8)))
        rows += a.shape[0] if a.ndim else 1
    if rows != (m.shape[0] if m.shape else 1):
        raise ValueError(f"{m.name}: {rows} rows written, the header says {m.shape}")


# --------------------------------------------------------------------------
# relcal check: its configuration file and a JSON baseline

CONFIG_FILES = ("relcal.toml", "pyproject.toml")


def read_check_config(
    path: str | os.PathLike[str] | None = None,
    *,
    directory: str | os.PathLike[str] = ".",
) -> tuple[dict[str, Any], str | None]:
    """The ``relcal check`` settings of a TOML file, and the file they came from.

    With ``path``, that file (a ``relcal.toml`` holds a ``[check]`` table; any
    other file, e.g. ``pyproject.toml``, a ``[tool.relcal.check]`` table).
    Without it, ``directory`` is searched: ``relcal.toml`` first, then a
    ``pyproject.toml`` that has a ``[tool.relcal.check]`` table.  Returns
    ``({}, None)`` when no file applies.  The values are checked later (by
    :func:`relcal.gate.settings_from`, which knows the keys).
    """
    if path is not None:
        table = _check_table(Path(path), required=True)
        assert table is not None
        return table, str(path)
    base = Path(directory)
    for name in CONFIG_FILES:
        p = base / name
        if p.is_file():
            table = _check_table(p, required=name == "relcal.toml")
            if table is not None:
                return table, str(p) if str(base) != "." else name
    return {}, None


def _check_table(p: Path, *, required: bool) -> dict[str, Any] | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise FormatError(
                "reading a config file needs Python 3.11 (tomllib) or the "
                "tomli package",
                source=str(p),
            ) from None
    name = str(p)
    try:
        check_regular(p)
        with open(p, "rb") as f:
            doc = tomllib.load(f)
    except RelcalError as err:
        raise err.with_source(name) from None
    except OSError as err:
        raise FormatError(f"cannot read ({_short(err)})", source=name) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"not valid TOML ({_short(err)})", source=name) from None
    except RecursionError:
        raise FormatError("not valid TOML (nested too deeply)", source=name) from None
    if p.name == "relcal.toml":
        keys, table = "[check]", doc.get("check")
        if table is None:
            keys, table = "[tool.relcal.check]", _dig(doc, ("tool", "relcal", "check"))
    else:
        keys, table = "[tool.relcal.check]", _dig(doc, ("tool", "relcal", "check"))
    if table is None:
        if required:
            raise FormatError(f"no {keys} table", source=name)
        return None
    if not isinstance(table, dict):
        raise FormatError(f"{keys} must be a table", source=name)
    return dict(table)


def _dig(doc: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def read_metrics_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``relcal metrics --json`` document (format 1), checked: the fields a
    baseline needs (sample and class counts, binning, metrics) are present and
    of the right types.  A document of several models (``"kind":
    "relcal.metrics.models"``, from ``--models``) has each of its models
    checked so."""
    name = str(path)
    doc = read_json(path)
    if isinstance(doc, dict) and doc.get("kind") == "relcal.metrics.models":
        _check_format(doc, name)
        models = doc.get("models")
        if not isinstance(models, list) or not models:
            raise FormatError("models missing or an empty list", source=name)
        for i, model in enumerate(models):
            _check_metrics_doc(model, name, f"models[{i}]: ")
        return doc
    _check_metrics_doc(doc, name)
    return doc


def _check_format(doc: dict[str, Any], name: str) -> None:
    if doc.get("format") != 1:
        raise FormatError(
            f"metrics file format {doc.get('format')!r}; this relcal reads format 1",
            source=name,
        )


def _check_metrics_doc(doc: Any, name: str, where: str = "") -> None:
    """One ``relcal.metrics`` document: the fields a baseline needs."""
    if not isinstance(doc, dict) or doc.get("kind") != "relcal.metrics":
        raise FormatError(
            f'{where}not a relcal metrics file (no "kind": "relcal.metrics"; write'
            " one with relcal metrics FILE --json)",
            source=name,
        )
    _check_format(doc, name)
    for key in ("n_samples", "n_classes"):
        v = doc.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise FormatError(
                f"{where}{key} missing or not a positive integer", source=name
            )
    binning = doc.get("binning")
    if (
        not isinstance(binning, dict)
        or isinstance(binning.get("n_bins"), bool)
        or not isinstance(binning.get("n_bins"), int)
        or binning.get("strategy") not in ("width", "mass")
    ):
        raise FormatError(
            f"{where}binning missing or not {{n_bins: int, strategy: width|mass}}",
            source=name,
        )
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        raise FormatError(f"{where}metrics missing or not an object", source=name)
    for key, v in metrics.items():
        if v is not None and not _is_number(v):
            raise FormatError(
                f"{where}metrics.{key} must be a number or null. Got {_clip_repr(v)}",
                source=name,
            )
