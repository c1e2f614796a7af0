"""Progress of long work (issue #13, item 4).

The hook the reduction loops call: ``advance(n)`` reports ``n`` more units of
work (bytes of scores) done to the task open in this process, if any.  With no
task open it does nothing, so library callers see no output.  ``task(label,
total)`` opens one; the command layer decides whether a bar is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_active: list[object] = []


def advance(n: int) -> None:
    """Report ``n`` more units done (thread-safe, cheap; a no-op without a task)."""
    if _active:
        bar = _active[-1]
        update = getattr(bar, "update", None)
        if update is not None:
            update(n)


@contextmanager
def task(label: str, total: int | None) -> Iterator[None]:
    """Open a task of ``total`` units (None: unknown).  This placeholder draws
    nothing; the bar itself is drawn by the command layer."""
    _active.append(object())
    try:
        yield
    finally:
        _active.pop()
