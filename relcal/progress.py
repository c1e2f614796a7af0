"""Progress of long work (issue #13, item 4): a bar on standard error.

The reduction loops call ``advance(n)`` with the bytes of scores they have
just reduced; a command opens a ``task(label, total)`` around its work with
``total`` = bytes of scores x passes over them.  With no task open (a library
call from a notebook or a training loop) ``advance`` does nothing.

When a bar is drawn
    Only when the command layer has called :func:`enable` (the CLI does,
    unless ``--quiet``), standard error is a terminal, ``TERM`` is not
    ``dumb`` and ``CI`` is unset (or empty, ``0``, ``false``, ``no``): some CI
    runners give the job a pseudo-terminal and then keep every redraw in the
    log.  And only once the task has run for :data:`DELAY` seconds: short work
    prints nothing.  The bar shows the fraction done, the rate in bytes of
    scores per second and the time left; it is erased when the task ends, so
    the lines the command prints afterwards start at the left margin.

Threads
    ``advance`` is called from the worker threads of the reduction: it adds
    under a lock and redraws at most every :data:`REFRESH` seconds (the other
    calls cost a lock and a clock read).  A task's total may be an estimate
    (fit-temperature does not know its number of passes in advance): when the
    work done passes it, the total grows to match, and the time left is shown
    again once the estimate is right.

Which library
    tqdm, not click's ``progressbar`` (click is already a dependency) nor
    rich.  tqdm does each thing this bar needs by itself: a rate in scaled
    bytes (``1.23GB/s``), the time left from a smoothed rate, redraws limited
    in time (``mininterval``), a bar erased at the end (``leave=False``) and a
    width that follows the terminal.  click's bar has no rate, redraws on
    every update unless the steps are counted, computes its time left from
    the bar's own start (wrong for a bar that appears after a delay) and
    leaves its last line; adding those means reaching into its internals
    (``start``, ``avg``), which are not public API.  rich draws well too, but
    pulls in pygments and markdown-it and takes ~4x tqdm's import time.
    tqdm is pure Python without dependencies and is already installed
    wherever torch or the Hugging Face libraries are.  It is imported only
    when a bar is about to be drawn, never at start-up.

Test hook
    ``RELCAL_PROGRESS_DELAY`` (seconds, a number >= 0) replaces
    :data:`DELAY`, so that tests on a pseudo-terminal can see a bar on small
    inputs.  It is read when a task opens.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

DELAY = 1.0  # seconds of work before a bar appears
REFRESH = 0.2  # seconds between two redraws at most
DELAY_ENV = "RELCAL_PROGRESS_DELAY"  # test hook (see the module docstring)

_lock = threading.Lock()
_tasks: list[_Task] = []
_stream: TextIO | None = None  # where bars go; None: no bars (library use)


def enable(stream: TextIO | None = None) -> None:
    """Draw bars for the tasks opened from now on, on ``stream`` (default:
    standard error), when :func:`wanted` says so for it.  The CLI calls this
    unless ``--quiet``; :func:`disable` undoes it."""
    global _stream
    stream = sys.stderr if stream is None else stream
    _stream = stream if wanted(stream) else None


def disable() -> None:
    """No bars for the tasks opened from now on."""
    global _stream
    _stream = None


def wanted(stream: Any, environ: Any = None) -> bool:
    """Whether a bar may be drawn on ``stream``: a terminal, not ``TERM=dumb``,
    not in CI (``CI`` unset, empty, ``0``, ``false`` or ``no``)."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    if env.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _delay() -> float:
    raw = os.environ.get(DELAY_ENV)
    if raw is None:
        return DELAY
    try:
        value = float(raw)
    except ValueError:
        return DELAY
    return value if value >= 0 else DELAY


class _Task:
    """One task's count; the bar itself is made on the first redraw."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None) -> None:
        self.label = label
        self.total = None if total is None or total <= 0 else int(total)
        self.stream = stream
        self.done = 0
        self.start = time.monotonic()
        self.start_wall = time.time()  # tqdm's clock
        self.delay = _delay()
        self.next_draw = self.start + self.delay
        self.bar: Any = None
        self.shown = 0  # units the bar has been told of

    def add(self, n: int) -> None:
        """Count ``n`` more units; redraw when it is time (call under _lock)."""
        self.done += n
        if self.stream is None:
            return
        now = time.monotonic()
        if now < self.next_draw:
            return
        self.next_draw = now + REFRESH
        if self.bar is None:
            self.bar = _new_bar(self)
        if self.total is not None and self.done > self.bar.total:
            self.bar.total = self.done  # an estimate that was short
        self.bar.update(self.done - self.shown)
        self.shown = self.done

    def expect(self, more: int) -> None:
        """Add ``more`` units to the total: a stage that learns of more work
        (a baseline file loaded after the first one's work)."""
        with _lock:
            if self.total is not None:
                self.total += int(more)
                if self.bar is not None:
                    self.bar.total = self.total

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()  # leave=False: the line is erased
            self.bar = None


def _new_bar(t: _Task) -> Any:
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: redraws come from advance
    bar = tqdm(
        total=t.total,
        desc=t.label,
        file=t.stream,
        unit="B",
        unit_scale=True,
        unit_divisor=1000,
        leave=False,
        dynamic_ncols=True,
        mininterval=0,  # rate-limited here (REFRESH), under our lock
        miniters=0,
        smoothing=0.3,
        delay=0,
        ascii=None,
    )
    # the rate and the time left count from the task's start, not the bar's
    bar.start_t = bar.last_print_t = t.start_wall
    return bar


def forget() -> None:
    """No task in this process (a forked worker: its parent counts)."""
    _tasks.clear()


def advance(n: int) -> None:
    """Report ``n`` more units done (bytes of scores) to the innermost open
    task; a no-op without one.  Thread-safe and cheap: no redraw more often
    than every :data:`REFRESH` seconds."""
    if not _tasks:
        return
    with _lock:
        if _tasks:
            _tasks[-1].add(int(n))


@contextmanager
def task(label: str, total: int | None) -> Iterator[_Task]:
    """Open a task of ``total`` units (bytes of scores x passes; None or 0:
    unknown, then the bar shows the rate but no time left).  Tasks nest: the
    innermost open one counts the work."""
    t = _Task(label, total, _stream)
    with _lock:
        _tasks.append(t)
    try:
        yield t
    finally:
        with _lock:
            _tasks.remove(t)
            t.close()
