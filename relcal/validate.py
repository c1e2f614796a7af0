"""Checks on scores and labels, shared by the loaders and the public metric functions.

Every check raises :class:`relcal.errors.RelcalError` with a one-line message
that names the input, the rule and the offending value.  The checks are
vectorised and cheap: labels are O(N); the scores are looked at only where a
decision needs them (logits vs probabilities), and their finiteness is checked
inside the reduction pass (:mod:`relcal.reduce`), not in a pass of its own.

Conventions
-----------
- Scores have the class axis at position 1: ``(N, C)`` or, for segmentation,
  ``(N, C, *spatial)`` with labels ``(N, *spatial)``.  One-dimensional scores
  ``(N,)`` are the score of the positive class of a binary problem (C = 2).
- Probabilities are non-negative rows summing to 1 within
  :func:`sum_tolerance` (1e-4 for float32/float64 with up to 100 classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from relcal.errors import InputError, ScoresKindError, ShapeError

ScoresKind = Literal["logits", "probs"]
KINDS = ("auto", "logits", "probs")

# rows inspected first when guessing logits vs probabilities: a negative value
# or a value above 1 in them settles it without reading the whole array
_PEEK_ROWS = 256
_PEEK_PIXELS = 16  # per spatial axis, for (N, C, *spatial) scores


MAX_SUM_TOLERANCE = 1e-2


def sum_tolerance(dtype: np.dtype, n_classes: int) -> float:
    """How far a probability row's sum may stray from 1 (dtype- and C-aware),
    at most :data:`MAX_SUM_TOLERANCE`."""
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0.0
    return float(min(MAX_SUM_TOLERANCE, max(1e-4, 2.0 * n_classes * eps)))


def check_float_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    """Check the scores' dtype and size; integer scores become float64."""
    check_scores_layout(scores.dtype, scores.shape, name)
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    return scores


def check_scores_layout(
    dtype: np.dtype, shape: tuple[int, ...], name: str = "scores"
) -> None:
    """The checks of :func:`check_float_scores` that need no value."""
    if dtype.hasobject or dtype.kind not in "fiub":
        raise InputError(f"{name}: must be numeric. Got dtype {dtype} instead")
    if not shape:
        raise ShapeError(f"{name}: a single number, not an array of scores")
    if math.prod(shape) == 0:
        raise ShapeError(f"{name}: empty array of shape {shape}")


def check_labels(
    labels: np.ndarray,
    n_classes: int,
    *,
    ignore_index: int | None = None,
    name: str = "labels",
) -> np.ndarray:
    """Return integer class labels in [0, n_classes) (or ``ignore_index``).

    Accepts integers, booleans and floats holding whole numbers.

    Examples
    --------
    >>> check_labels(np.array([0.0, 2.0]), 3)
    array([0, 2])
    """
    labels = np.asarray(labels)
    if labels.dtype == object or labels.dtype.kind not in "fiub":
        raise InputError(
            f"{name}: must be integer class indices. Got dtype {labels.dtype} instead"
        )
    if labels.size == 0:
        raise ShapeError(f"{name}: empty array of shape {labels.shape}")
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels)
        if bad.any():
            first = int(np.flatnonzero(bad.ravel())[0])
            raise InputError(
                f"{name}: {int(bad.sum())} values are NaN or infinite"
                f" (first at {_where(labels.shape, first)})"
            )
        frac = labels != np.round(labels)
        if frac.any():
            first = int(np.flatnonzero(frac.ravel())[0])
            value = labels.ravel()[first].item()
            raise InputError(
                f"{name}: {int(frac.sum())} values are not whole numbers"
                f" (first: {value!r} at {_where(labels.shape, first)})"
            )
    if labels.dtype.kind in "fu":
        # compared as they are: 1e308 or 2**64 - 1 have no int64 value
        valid = (labels >= 0) & (labels < n_classes)
    else:
        # one comparison for both bounds: negative labels wrap to huge unsigned
        valid = labels.astype(np.int64, copy=False).view(np.uint64) < n_classes
    if ignore_index is not None:
        with np.errstate(over="ignore"):  # beyond float16's range: never equal
            valid |= labels == ignore_index
    if not valid.all():
        bad_idx = np.flatnonzero(~valid.ravel())
        first = int(bad_idx[0])
        value = _label_text(labels.ravel()[first].item())
        raise InputError(
            f"{name}: {len(bad_idx)} values outside [0, {n_classes - 1}]"
            f" (first: {value} at {_where(labels.shape, first)})"
            + _ignore_hint(labels, valid, ignore_index)
        )
    return labels.astype(np.int64, copy=False)


def _label_text(value: float) -> str:
    """A whole-number label as written: 12, not 12.0; 1e+308, not 309 digits."""
    if isinstance(value, float):
        return str(int(value)) if abs(value) < 2**53 else f"{value:.6g}"
    return str(value)


def check_ignore_index(ignore_index: object) -> None:
    """``ignore_index`` is None or an integer that int64 labels can hold."""
    if ignore_index is None:
        return
    if (
        isinstance(ignore_index, bool)
        or not isinstance(ignore_index, (int, np.integer))
        or not -(2**63) <= int(ignore_index) < 2**63
    ):
        raise InputError(
            f"ignore_index={ignore_index!r} is not a label: labels are int64 values"
        )


def _ignore_hint(
    labels: np.ndarray, valid: np.ndarray, ignore_index: int | None
) -> str:
    """For segmentation-shaped labels whose out-of-range values are all one
    value (255, -1, -100: an "ignore" label), the option that drops them."""
    if ignore_index is not None or labels.ndim < 2:
        return ""
    bad = labels[~valid]
    if not (bad == bad[0]).all():
        return ""
    value = _label_text(bad[0].item())
    return f"; if {value} marks labels to ignore, give ignore_index={value}"


def _where(shape: tuple[int, ...], flat_index: int, offset: int = 0) -> str:
    """Where a flat index is, ``offset`` added to the leading axis (a chunk's
    first row)."""
    if len(shape) <= 1:
        return f"row {offset + flat_index}"
    pos = [int(p) for p in np.unravel_index(flat_index, shape)]
    pos[0] += offset
    if len(shape) == 2:
        return f"row {pos[0]}, column {pos[1]}"
    return "index (" + ", ".join(map(str, pos)) + ")"


def check_shapes(scores: np.ndarray, labels: np.ndarray) -> int:
    """Check that scores and labels fit together; return the number of classes."""
    if scores.ndim == 1:
        if labels.shape != scores.shape:
            raise ShapeError(
                f"length mismatch: {scores.shape[0]} scores but {_describe(labels)}"
            )
        return 2
    if scores.ndim == 2 and scores.shape[1] == 1:
        if labels.shape != scores.shape[:1]:
            raise ShapeError(
                f"length mismatch: {scores.shape[0]} score rows but {_describe(labels)}"
            )
        return 2
    expected = (scores.shape[0],) + scores.shape[2:]
    if labels.shape != expected:
        if labels.shape[:1] != scores.shape[:1]:
            raise ShapeError(
                f"length mismatch: {scores.shape[0]} score rows but {_describe(labels)}"
            )
        raise misfit_error(scores, labels)
    if scores.shape[1] < 2:
        raise ShapeError(f"scores: need at least 2 classes, got shape {scores.shape}")
    return int(scores.shape[1])


def class_axis_last(scores: np.ndarray, labels: np.ndarray) -> bool:
    """Whether labels fit ``(N, *spatial, C)`` scores but not ``(N, C, *spatial)``."""
    if scores.ndim < 3 or labels.shape != scores.shape[:-1]:
        return False
    return labels.shape != (scores.shape[0],) + scores.shape[2:]


def misfit_error(
    scores: np.ndarray,
    labels: np.ndarray,
    fix: str = "move it to axis 1 (np.moveaxis(scores, -1, 1))",
) -> ShapeError:
    """Labels that do not fit ``(N, C, *spatial)`` scores; when the class axis
    looks last, the message says ``fix``."""
    expected = (scores.shape[0],) + scores.shape[2:]
    hint = (
        f"; the class axis looks last: {fix}" if class_axis_last(scores, labels) else ""
    )
    return ShapeError(
        f"labels of shape {labels.shape} do not fit scores of shape {scores.shape}"
        f" (expected labels of shape {expected}){hint}"
    )


def _describe(labels: np.ndarray) -> str:
    if labels.ndim == 1:
        return f"{labels.shape[0]} labels"
    return f"labels of shape {labels.shape}"


def labels_from_onehot(onehot: np.ndarray, name: str = "labels") -> np.ndarray:
    """Class indices from one-hot rows ``(N, C)``; each row must hold one 1."""
    if onehot.dtype.kind not in "fiub":
        raise InputError(
            f"{name}: one-hot labels must be numeric. Got dtype {onehot.dtype}"
        )
    ones = onehot == 1
    zeros = onehot == 0
    ok = (ones | zeros).all(axis=1) & (ones.sum(axis=1) == 1)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise InputError(
            f"{name}: {len(bad)} one-hot rows do not hold exactly one 1 and zeros"
            f" elsewhere (first at row {int(bad[0])})"
        )
    return np.argmax(ones, axis=1).astype(np.int64)


def squeeze_labels(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels with a class axis of length 1 without it: ``(N, 1)`` for ``(N,)``
    or ``(N, C)`` scores, ``(N, 1, *spatial)`` for ``(N, C, *spatial)``
    scores (a view, no copy)."""
    if labels.ndim < 2 or labels.shape[1] != 1 or labels.shape[0] != scores.shape[0]:
        return labels
    if scores.ndim <= 2 and labels.ndim == 2:
        return labels[:, 0]
    if scores.ndim >= 3 and labels.shape[2:] == scores.shape[2:]:
        return labels[:, 0]
    return labels


def detect_kind(scores: np.ndarray, declared: str = "auto") -> ScoresKind:
    """Decide whether ``scores`` are logits or probabilities.

    With ``declared="auto"``: probabilities when every value is in [0, 1] and,
    for ``(N, C, ...)`` scores, every row sums to 1 within
    :func:`sum_tolerance`; logits when a value is outside [0, 1].  Scores
    ``(N, C, ...)`` whose values are all in [0, 1] but whose rows do not sum
    to 1 are neither (a table of several binary forecasts, one per column,
    looks like this) and raise :class:`relcal.errors.ScoresKindError`: read
    as logits they would give nonsense silently.  One-dimensional scores (the
    positive class of a binary problem) are probabilities when every value is
    in [0, 1].  With ``declared="probs"``, scores that are not probabilities are
    an error; ``declared="logits"`` is taken as stated.

    Examples
    --------
    >>> detect_kind(np.array([[0.2, 0.8], [0.5, 0.5]]))
    'probs'
    >>> try:
    ...     detect_kind(np.array([[0.9, 0.8], [0.1, 0.3]]))
    ... except ScoresKindError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    scores: every value is in [0, 1] but 2 of 2 rows do not sum to 1 within ...
    """
    if declared not in KINDS:
        raise InputError(
            f"scores kind must be one of {', '.join(KINDS)}. Got {declared!r}"
        )
    if declared == "logits":
        return "logits"
    if declared == "auto":
        # a corner of the array, not whole images: scores[:256] of (N, C, H, W)
        # segmentation scores is usually all of them
        corner = (slice(0, _PEEK_ROWS),) + (slice(None),) * min(1, scores.ndim - 1)
        peek = scores[corner + (slice(0, _PEEK_PIXELS),) * (scores.ndim - 2)]
        with np.errstate(invalid="ignore"):
            if peek.min() < 0 or peek.max() > 1:
                return "logits"
        return kind_from_stats(
            probability_stats(scores), "auto", scores.dtype, scores.shape
        )
    return kind_from_stats(
        probability_stats(scores), "probs", scores.dtype, scores.shape
    )


@dataclass(frozen=True)
class ProbStats:
    """What decides whether scores are probabilities, mergeable over chunks of
    leading-axis rows: the extremes (NaN if any value is NaN), and the score
    vectors whose sum is off by more than the tolerance (their count, the
    first one's flat index among all of them and its sum)."""

    lo: float
    hi: float
    n_off: int = 0
    first_off: int = -1
    first_sum: float = 0.0

    @property
    def in_range(self) -> bool:
        """Every value finite and in [0, 1] (NaN compares False)."""
        return bool(0 <= self.lo and self.hi <= 1)

    def merge(self, later: ProbStats, offset: int) -> ProbStats:
        """These stats followed by those of ``later``, whose first score
        vector is number ``offset`` among all of them."""
        first, value = self.first_off, self.first_sum
        if first < 0 and later.first_off >= 0:
            first, value = offset + later.first_off, later.first_sum
        return ProbStats(
            float(np.minimum(self.lo, later.lo)),
            float(np.maximum(self.hi, later.hi)),
            self.n_off + later.n_off,
            first,
            value,
        )


def probability_stats(scores: np.ndarray) -> ProbStats:
    """:class:`ProbStats` of ``scores`` (row sums only when every value is in
    [0, 1]: otherwise they decide nothing)."""
    with np.errstate(invalid="ignore"):
        stats = ProbStats(float(scores.min()), float(scores.max()))
    if not stats.in_range or scores.ndim == 1 or scores.shape[1] == 1:
        return stats
    sums = np.sum(scores, axis=1, dtype=np.float64)
    tol = sum_tolerance(scores.dtype, scores.shape[1])
    flat = np.flatnonzero(np.abs(sums - 1.0) > tol)
    if not len(flat):
        return stats
    first = int(flat[0])
    return ProbStats(stats.lo, stats.hi, len(flat), first, float(sums.flat[first]))


def probability_problem(
    stats: ProbStats, dtype: np.dtype, shape: tuple[int, ...]
) -> str | None:
    """Why scores of ``shape`` with these stats are not probabilities (None if
    they are)."""
    if not np.isfinite(stats.lo) or not np.isfinite(stats.hi):
        return "they hold NaN or infinite values"
    if stats.lo < 0:
        return f"they hold negative values (min {stats.lo:.6g})"
    if stats.hi > 1:
        return f"they hold values above 1 (max {stats.hi:.6g})"
    if not stats.n_off:
        return None
    sums_shape = (shape[0], *shape[2:])
    tol = sum_tolerance(dtype, shape[1])
    where = _where(sums_shape, stats.first_off)
    what = "rows" if len(sums_shape) == 1 else "score vectors"
    return (
        f"{stats.n_off} of {math.prod(sums_shape)} {what} do not sum to 1 within"
        f" {tol:g} (first: {stats.first_sum:.6g} at {where})"
    )


def kind_from_stats(
    stats: ProbStats, declared: str, dtype: np.dtype, shape: tuple[int, ...]
) -> ScoresKind:
    """The kind :func:`detect_kind` decides, from the stats of all the scores
    (``declared`` is "auto" or "probs")."""
    problem = probability_problem(stats, dtype, shape)
    if declared == "probs":
        if problem:
            raise InputError(f"scores declared as probabilities, but {problem}")
        return "probs"
    if problem and stats.in_range:
        raise ScoresKindError(
            f"scores: every value is in [0, 1] but {problem}: not probabilities"
            f" of {shape[1]} classes; to read them as logits, give"
            ' kind="logits"',
            problem=problem,
        )
    return "logits" if problem else "probs"


def nonfinite_error(
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    name: str = "scores",
    *,
    offset: int = 0,
) -> InputError:
    """The error for NaN or +inf scores, or for a -inf logit at the true class
    (``offset``: the leading-axis index of the first row, for a chunk)."""
    bad = np.isnan(scores) | np.isposinf(scores)
    n_bad = int(bad.sum())
    if n_bad:
        first = int(np.flatnonzero(bad.ravel())[0])
        value = scores.ravel()[first]
        return InputError(
            f"{name}: {n_bad} values are NaN or +inf"
            f" (first: {value} at {_where(scores.shape, first, offset)})"
        )
    if labels is not None and scores.ndim >= 2:
        y = np.clip(labels, 0, scores.shape[1] - 1)
        at_label = np.take_along_axis(scores, np.expand_dims(y, 1), axis=1)[:, 0]
        hit = np.isneginf(at_label) & (labels == y)
        if hit.any():
            first = int(np.flatnonzero(hit.ravel())[0])
            return InputError(
                f"{name}: the true class has a logit of -inf (probability 0,"
                f" infinite NLL) at {_where(labels.shape, first, offset)}"
            )
    elif labels is not None:
        # one score column: the logit of class 1; -inf makes class 1 impossible
        hit = np.isneginf(scores) & (labels == 1)
        if hit.any():
            first = int(np.flatnonzero(hit)[0])
            return InputError(
                f"{name}: the true class has a logit of -inf (probability 0,"
                f" infinite NLL) at row {offset + first}"
            )
    if np.isneginf(scores).all(axis=1 if scores.ndim > 1 else 0).any():
        return InputError(f"{name}: a row whose logits are all -inf")
    return InputError(f"{name}: values too large to exponentiate safely")


def prepare(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray, ScoresKind, int]:
    """Validate arrays for the metrics: (scores, int labels, kind, n_classes).

    ``labels`` may be class indices (integers, or floats holding whole numbers),
    with or without a class axis of length 1 (``(N, 1)``), or one-hot rows of
    the same shape as 2-D ``scores``.  The scores are not
    copied (a memory-mapped array stays memory-mapped).
    """
    check_ignore_index(ignore_index)
    s = check_float_scores(np.asarray(scores))
    y, n_classes = prepare_labels(s, np.asarray(labels), ignore_index=ignore_index)
    if ignore_index is not None and not (y != ignore_index).any():
        raise all_ignored_error(ignore_index)
    return s, y, detect_kind(s, kind), n_classes


def prepare_labels(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    ignore_index: int | None = None,
    values: bool = True,
) -> tuple[np.ndarray, int]:
    """The labels of :func:`prepare` (one-hot rows and a class axis of length
    1 taken away, shapes and values checked) and the class count.  With
    ``values=False`` only the shapes are checked: ``labels`` may then be a
    stand-in of the right shape and dtype (``np.broadcast_to``)."""
    y = labels
    if y.ndim == 2 and scores.ndim == 2 and y.shape == scores.shape:
        if scores.shape[1] > 1:
            y = labels_from_onehot(y) if values else y[:, 0]
    y = squeeze_labels(scores, y)
    if y.size == 0:
        raise ShapeError(f"labels: empty array of shape {y.shape}")
    n_classes = check_shapes(scores, y)
    if values:
        y = check_labels(y, n_classes, ignore_index=ignore_index)
    return y, n_classes


def all_ignored_error(ignore_index: int) -> InputError:
    """Every label equals ``ignore_index``: nothing is left to measure."""
    return InputError(f"labels: every label equals ignore_index {ignore_index}")
