"""A mergeable histogram of forecast values: what smooth ECE, CORP and the
risk–coverage curve are functions of.

Binned metrics need only bin sums; smooth ECE (:mod:`relcal.smooth`), the CORP
reliability diagram (:mod:`relcal.corp`) and selective prediction
(:mod:`relcal.selective`) need the forecasts themselves.  They need them only
through *weighted distinct values*: for each distinct forecast value v, how
many samples had it (``count``) and how many of those had the outcome
(``sum_y``: top-label correct, or label = 1).  :class:`ValueCounts` holds that,
sorted by value, and two of them merge by adding the counts of equal values,
so the same "reduce chunks, merge summaries" flow as the binned metrics
computes it in bounded memory, on any number of workers.

Convention
----------
- **Key**: a value v in [0, 1] (float64) is keyed by ``floor(v * 2**60)``, an
  exact operation: distinct values at least 2**-8 get distinct keys, so below
  the cap the histogram is exact (smaller values 2**-60 apart share a key).
- **Cap**: at most ``cap`` distinct keys are kept (:data:`DEFAULT_CAP`,
  2**20: at most 32 MB).  Past it, keys are shifted right, by the fewest bits
  that bring the number of distinct keys within the cap: values within
  ``2**(shift - 60)`` of each other are grouped, and a group stands for its
  samples by their mean value (``sum_value / count``) — the sums of values and
  of outcomes stay exact, only the order inside a group is lost.  The shift is
  the fewest bits for the whole data, whatever the chunking and the order of
  merges: a part of the data never needs more bits than the whole.
- **Merging**: a histogram is a few sorted runs (sizes decreasing by at least
  half, as in a binomial heap), so merging N block histograms costs
  O(n log n) in all, not O(N n); :meth:`ValueCounts.compact` merges the runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from relcal.errors import InputError, ShapeError

KEY_BITS = 60
KEY_SCALE = float(2**KEY_BITS)
DEFAULT_CAP = 1 << 20
# runs are merged once the smaller ones hold this many keys (or the largest's)
MIN_MERGE = 1 << 16


AUTO_MAX = 1 << 22
"""``values=None`` (auto) keeps the histograms of inputs of up to this many
samples: classification files, where they cost nothing.  A segmentation map
has many more pixels, and its histogram costs about as much as the rest of
the pass (32x19x512x512 logits: 1.4 s -> 2.6 s at one job)."""


def wanted(values: bool | None, n_samples: int | None) -> bool:
    """Whether to keep the value histograms: ``values``, or when None (auto)
    whether ``n_samples`` (None: not known before reading) is at most
    :data:`AUTO_MAX`."""
    if values is not None:
        return bool(values)
    return n_samples is None or n_samples <= AUTO_MAX


class Grouped(NamedTuple):
    """Weighted distinct values, sorted ascending: the input of
    :mod:`relcal.smooth`, :mod:`relcal.corp` and :mod:`relcal.selective`."""

    value: np.ndarray  # float64: a group's mean value
    count: np.ndarray  # float64: samples in the group
    sum_y: np.ndarray  # float64: outcomes (correct, or label 1) among them


Order = Literal["ascending", "strict", "any"]
"""What :func:`check_grouped` requires of ``value``: ``"ascending"`` sorted,
equal neighbours merged into one group (their counts and outcomes added);
``"strict"`` strictly ascending; ``"any"`` no order at all."""


def _require(arr: np.ndarray, name: str, ok: np.ndarray, rule: str) -> None:
    """InputError naming ``name``, how many rows break ``rule`` and the first."""
    if not ok.all():
        bad = np.flatnonzero(~ok)
        i = int(bad[0])
        raise InputError(
            f"{name}: {bad.size} values {rule} (first: {arr[i].item()!r} at row {i})"
        )


def _same_length(**arrays: np.ndarray) -> None:
    sizes = [a.size for a in arrays.values()]
    if len(set(sizes)) > 1:
        raise ShapeError(
            f"{', '.join(arrays)}: must have the same length. "
            f"Got {', '.join(map(str, sizes))} instead"
        )


def _nonempty(arr: np.ndarray, name: str) -> None:
    if arr.size == 0:
        raise ShapeError(f"{name}: empty array of shape {arr.shape}")


def as_float_1d(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D float64 array of finite numbers (bool and integers too).

    Raises :class:`~relcal.errors.InputError` for a non-numeric dtype or a NaN
    or infinity, :class:`~relcal.errors.ShapeError` for another shape; the
    message names ``name``.  An empty array passes.

    >>> as_float_1d([True, 2], "count")
    array([1., 2.])
    """
    arr = np.asarray(x)
    if arr.dtype.hasobject or arr.dtype.kind not in "fiub":
        raise InputError(f"{name}: must be numeric. Got dtype {arr.dtype} instead")
    if arr.ndim != 1:
        raise ShapeError(f"{name}: must be 1-D. Got shape {arr.shape} instead")
    arr = arr.astype(np.float64, copy=False)
    _require(arr, name, np.isfinite(arr), "are NaN or infinite")
    return arr


def check_grouped(
    value: Any, count: Any, sum_y: Any, *, order: Order, unit_interval: bool = True
) -> Grouped:
    """Validated weighted distinct values, as float64 arrays.

    Rules: 1-D arrays of one length, at least one value, all finite,
    ``count > 0``, ``0 <= sum_y <= count``, ``value`` within [0, 1] (unless
    ``unit_interval`` is False: any real score) and in the ``order`` asked
    for (:data:`Order`; ``"ascending"`` merges equal neighbours).

    >>> check_grouped([0.2, 0.2, 0.7], [2, 1, 1], [1, 0, 1], order="ascending")
    Grouped(value=array([0.2, 0.7]), count=array([3., 1.]), sum_y=array([1., 1.]))
    """
    v = as_float_1d(value, "value")
    c = as_float_1d(count, "count")
    s = as_float_1d(sum_y, "sum_y")
    _same_length(value=v, count=c, sum_y=s)
    _nonempty(v, "value")
    if unit_interval:
        _require(v, "value", (v >= 0.0) & (v <= 1.0), "outside [0, 1]")
    _require(c, "count", c > 0.0, "not > 0")
    _require(s, "sum_y", (s >= 0.0) & (s <= c), "outside [0, count]")
    if order == "any":
        return Grouped(v, c, s)
    step = np.diff(v)
    bad = step <= 0.0 if order == "strict" else step < 0.0
    if bad.any():
        i = int(np.argmax(bad)) + 1
        how = "strictly" if order == "strict" else "sorted"
        raise InputError(
            f"value: must be {how} ascending "
            f"(first: {v[i].item()!r} after {v[i - 1].item()!r} at row {i})"
        )
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    if starts.size < v.size:  # equal neighbours: one group
        v, c, s = v[starts], np.add.reduceat(c, starts), np.add.reduceat(s, starts)
    return Grouped(v, c, s)


def check_samples(
    f: Any, y: Any, *, name_f: str = "f", name_y: str = "y", unit_interval: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Validated raw forecasts ``f`` (in [0, 1] unless ``unit_interval`` is
    False) and outcomes ``y`` (0 or 1, bool accepted), as float64 arrays of
    one length, not empty; messages name ``name_f`` and ``name_y``.

    >>> check_samples([0.3, 1], [True, False])
    (array([0.3, 1. ]), array([1., 0.]))
    """
    fa = as_float_1d(f, name_f)
    ya = as_float_1d(y, name_y)
    _same_length(**{name_f: fa, name_y: ya})
    _nonempty(fa, name_f)
    if unit_interval:
        _require(fa, name_f, (fa >= 0.0) & (fa <= 1.0), "outside [0, 1]")
    _require(ya, name_y, (ya == 0.0) | (ya == 1.0), "not 0 or 1")
    return fa, ya


def group_samples(
    f: Any, y: Any, *, name_f: str = "f", name_y: str = "y", unit_interval: bool = True
) -> Grouped:
    """Raw forecasts and 0/1 outcomes as weighted distinct values.

    Parameters
    ----------
    f : array-like of shape (n_samples,)
        Forecasts in [0, 1] (any finite real score if ``unit_interval`` is
        False).
    y : array-like of shape (n_samples,)
        Outcomes, 0 or 1 (bool accepted).
    name_f, name_y : str
        The names error messages give ``f`` and ``y``.

    Returns
    -------
    Grouped
        The distinct forecasts (ascending), how many samples have each and how
        many of those have outcome 1 (float64).

    >>> group_samples([0.3, 0.1, 0.3], [1, 0, 0])
    Grouped(value=array([0.1, 0.3]), count=array([1., 2.]), sum_y=array([0., 1.]))
    """
    fa, ya = check_samples(
        f, y, name_f=name_f, name_y=name_y, unit_interval=unit_interval
    )
    value, inverse = np.unique(fa, return_inverse=True)
    count = np.bincount(inverse, minlength=value.size).astype(np.float64)
    sum_y = np.bincount(inverse, weights=ya, minlength=value.size)
    return Grouped(value, count, sum_y)


@dataclass(frozen=True, eq=False)
class _Run:
    key: np.ndarray  # uint64, sorted, unique
    count: np.ndarray  # int64
    sum_value: np.ndarray  # float64
    sum_y: np.ndarray  # float64
    shift: int

    @property
    def size(self) -> int:
        return len(self.key)


def _reduce_sorted(
    key: np.ndarray, count: np.ndarray, sum_value: np.ndarray, sum_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Adds the entries of equal adjacent keys (``key`` sorted)."""
    if len(key) == 0:
        return key, count, sum_value, sum_y
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if len(starts) == len(key):
        return key, count, sum_value, sum_y
    return (
        key[starts],
        np.add.reduceat(count, starts),
        np.add.reduceat(sum_value, starts),
        np.add.reduceat(sum_y, starts),
    )


def _coarsen(run: _Run, shift: int) -> _Run:
    if shift <= run.shift:
        return run
    key = run.key >> np.uint64(shift - run.shift)
    return _Run(*_reduce_sorted(key, run.count, run.sum_value, run.sum_y), shift)


def _distinct_after(key: np.ndarray, bits: int) -> int:
    k = key >> np.uint64(bits)
    return 1 + int(np.count_nonzero(k[1:] != k[:-1])) if len(k) else 0


def _within_cap(run: _Run, cap: int) -> _Run:
    """``run`` coarsened by the fewest more bits that leave at most ``cap`` keys."""
    if run.size <= cap:
        return run
    lo, hi = 1, KEY_BITS + 1 - run.shift  # hi always fits: one key
    while lo < hi:
        mid = (lo + hi) // 2
        if _distinct_after(run.key, mid) <= cap:
            hi = mid
        else:
            lo = mid + 1
    return _coarsen(run, run.shift + lo)


def _merge_all(runs: list[_Run], cap: int) -> _Run:
    shift = max(r.shift for r in runs)
    runs = [_coarsen(r, shift) for r in runs]
    key = np.concatenate([r.key for r in runs])
    order = np.argsort(key, kind="stable")  # sorted runs: timsort merges them
    run = _Run(
        *_reduce_sorted(
            key[order],
            np.concatenate([r.count for r in runs])[order],
            np.concatenate([r.sum_value for r in runs])[order],
            np.concatenate([r.sum_y for r in runs])[order],
        ),
        shift,
    )
    return _within_cap(run, cap)


@dataclass(frozen=True, eq=False)
class ValueCounts:
    """Counts and outcome sums of forecast values (see the module docstring).

    Build one with :meth:`of` (or a :class:`ValuesProbe` in a reduction), merge
    with :meth:`merge`, read it with :meth:`grouped`.

    Examples
    --------
    >>> a = ValueCounts.of(np.array([0.9, 0.6, 0.9]), np.array([1, 0, 0]))
    >>> b = ValueCounts.of(np.array([0.6, 0.8]), np.array([1, 1]))
    >>> g = a.merge(b).grouped()
    >>> g.value.tolist(), g.count.tolist(), g.sum_y.tolist()
    ([0.6, 0.8, 0.9], [2.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    """

    runs: tuple[_Run, ...]
    cap: int = DEFAULT_CAP

    @staticmethod
    def of(
        values: np.ndarray, outcomes: np.ndarray, *, cap: int = DEFAULT_CAP
    ) -> ValueCounts:
        """The histogram of ``values`` in [0, 1] with outcomes (bool or 0/1)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        y = np.asarray(outcomes).reshape(-1).astype(bool)
        # one sort of key and outcome packed together (key < 2**61)
        packed = (v * KEY_SCALE).astype(np.uint64) << np.uint64(1)
        packed |= y
        if len(packed) == 0:
            return ValueCounts((), cap)
        packed.sort()
        starts = np.flatnonzero(np.r_[True, packed[1:] != packed[:-1]])
        both = packed[starts]
        n_both = np.diff(np.r_[starts, len(packed)])
        key = both >> np.uint64(1)
        hits = np.where(both & np.uint64(1), n_both, 0)
        # a key's value is key / 2**60, exact for values of at least 2**-8
        run = _Run(
            *_reduce_sorted(
                key,
                n_both.astype(np.int64),
                n_both * (key.astype(np.float64) / KEY_SCALE),
                hits.astype(np.float64),
            ),
            0,
        )
        return ValueCounts((_within_cap(run, cap),), cap)

    @property
    def n(self) -> int:
        return int(sum(int(r.count.sum()) for r in self.runs))

    @property
    def shift(self) -> int:
        """Bits dropped from the keys (0: every value of at least 2**-8 is
        its own group)."""
        return self.compact().runs[0].shift if self.runs else 0

    @property
    def resolution(self) -> float:
        """Values closer than this may share a group: ``2**(shift - 60)``."""
        return 2.0 ** (self.shift - KEY_BITS)

    def merge(self, other: ValueCounts) -> ValueCounts:
        """Both histograms: the runs are kept apart until the small ones add
        up to the largest (then all are merged in one sort of sorted runs), so
        merging many block histograms costs O(n log n) in all."""
        runs = sorted(self.runs + other.runs, key=lambda r: -r.size)
        pending = sum(r.size for r in runs[1:])
        if len(runs) > 1 and pending >= max(runs[0].size, MIN_MERGE):
            return ValueCounts((_merge_all(runs, self.cap),), self.cap)
        return ValueCounts(tuple(runs), self.cap)

    def compact(self) -> ValueCounts:
        """The same histogram as a single run."""
        if len(self.runs) <= 1:
            return self
        return ValueCounts((_merge_all(list(self.runs), self.cap),), self.cap)

    def grouped(self) -> Grouped:
        """The weighted distinct values, sorted: each group's mean value, its
        sample count and its outcome sum (float64)."""
        if not self.runs:
            empty = np.zeros(0)
            return Grouped(empty, empty, empty)
        run = self.compact().runs[0]
        count = run.count.astype(np.float64)
        if run.shift == 0:  # one value a key: the key's (exact from 2**-8 up)
            value = run.key.astype(np.float64) / KEY_SCALE
        else:  # a group's mean value; clip the rounding of the division
            value = np.clip(run.sum_value / count, 0.0, 1.0)
        return Grouped(value, count, run.sum_y.copy())


def coarsened(grouped: Grouped, cap: int) -> Grouped:
    """``grouped`` with at most ``cap`` groups: neighbouring values merged by
    the rule of the cap (the fewest key bits dropped), each group at its mean
    value; the counts and outcome sums are kept exactly."""
    if len(grouped.value) <= cap:
        return grouped
    count = np.asarray(grouped.count, dtype=np.float64)
    key = (np.asarray(grouped.value, dtype=np.float64) * KEY_SCALE).astype(np.uint64)
    run = _Run(key, count, grouped.value * count, np.asarray(grouped.sum_y), 0)
    run = _within_cap(run, cap)
    return Grouped(np.clip(run.sum_value / run.count, 0.0, 1.0), run.count, run.sum_y)


@dataclass(frozen=True)
class ValuesProbe:
    """A reduction's request for the :class:`ValueCounts` of a variable (its
    ``measure`` is called on each block's kept values and outcomes, as
    :class:`relcal.binning.Probe`'s)."""

    cap: int = DEFAULT_CAP

    def measure(self, values: np.ndarray, hits: np.ndarray) -> ValueCounts:
        return ValueCounts.of(values, hits, cap=self.cap)
