"""Run a list of tasks in forked worker processes, results in order.

Threads share one interpreter: every numpy call holds the GIL for its Python
overhead, and a block of the reduction makes a few hundred of them, so two
threads reduce a segmentation file only ~1.65x faster than one (issue #13's
profile: the GIL was held in ~16% of a block's time) and many threads
serialise.  Forked processes hold no common lock.  A child inherits the
parent's memory as it was at the fork (copy-on-write: the arrays, a stream's
open parts, the tasks), so nothing is copied to it; each child takes the next
task index from a shared counter (dynamic balance on a busy machine) and
sends back only the task's small result, pickled.  The parent yields the
results in task order, so a merge of them is the same, bit for bit, as a
serial run's.

Used where it is safe and pays (:func:`usable`): on Linux, from the main
thread of a process running no other Python thread but relcal's idle pool,
which the caller stops first (a fork copies one thread; a lock another thread
held would stay locked in the child), for inputs of many tasks.  An
exception a task raises is raised again in the parent (relcal's errors pickle
with their message and source); a child that dies is an error, not a hang.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

T = TypeVar("T")

OWN_THREADS = "relcal"
"""Threads of this name prefix are relcal's own pool (stopped before a fork
by the caller); any other thread forbids forking."""

PLATFORM = sys.platform.startswith("linux")
"""Whether this platform runs worker processes at all (where :func:`usable`
may say yes): blocks are sized for them here (:func:`relcal.reduce.block_bytes`)."""

MIN_TASKS = 4
"""Fewer tasks than this run in threads (a fork costs a few milliseconds)."""

_enabled = os.environ.get("RELCAL_PROCESSES", "1") != "0"


def set_enabled(enabled: bool) -> None:
    """Allow (the default) or forbid worker processes in this process
    (``RELCAL_PROCESSES=0`` in the environment forbids them)."""
    global _enabled
    _enabled = bool(enabled)


MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20


def tune_malloc() -> bool:
    """Keep glibc's malloc from handing the blocks' temporaries back to the
    kernel after each block, for this process (relcal's CLI, a worker).

    glibc serves allocations above a threshold that starts at 128 kB with
    fresh mmaps and returns freed memory at the top of its heap above twice
    that; a block's temporaries (a few MB each) then fault in anew every
    block.  Measured on ``relcal metrics`` of 32x19x512x512 logits: 293,000
    page faults and 0.6 s of system time in a 2.2 s run, against 17,000 and
    0.16 s with these settings (the process's peak RSS unchanged).  Nothing
    is changed where ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` are
    set (the user's choice) or the C library is not glibc.  Returns whether
    the settings were applied."""
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(
        mallopt(m_mmap_threshold, MMAP_THRESHOLD)
        and mallopt(m_trim_threshold, TRIM_THRESHOLD)
    )


def usable(n_tasks: int, workers: int) -> bool:
    """Whether :func:`run` may fork here for ``n_tasks`` tasks."""
    main = threading.main_thread()
    others = (t for t in threading.enumerate() if t is not main)
    return (
        _enabled
        and workers > 1
        and n_tasks >= MIN_TASKS
        and PLATFORM
        and threading.current_thread() is main
        and all(t.name.startswith(OWN_THREADS) for t in others)
    )


class WorkerDied(RuntimeError):
    """A worker process ended without sending its results (killed, out of
    memory): the CLI's one-line error, exit 1."""


def run(tasks: Sequence[Callable[[], T]], workers: int) -> Iterator[T]:
    """``task()`` of every task, in order, computed by ``workers`` forked
    processes (each task runs in a child; in this process only when not one
    fork succeeds).  A task's exception is raised here, the earliest task's
    first, as a serial run would raise it."""
    from multiprocessing import get_context

    ctx = get_context("fork")
    counter = ctx.Value("q", 0)  # the next task to take, with its own lock
    n = len(tasks)
    children: dict[Connection, int] = {}
    try:
        for _ in range(min(workers, n)):
            reader, writer = ctx.Pipe(duplex=False)
            try:
                pid = os.fork()
            except OSError:  # no memory or no process left: fewer workers
                reader.close()
                writer.close()
                break
            if pid == 0:  # the child: never returns
                reader.close()
                _child(tasks, counter, writer)
            writer.close()
            children[reader] = pid
        if not children:
            yield from (task() for task in tasks)
            return
        yield from _collect(children, n)
    finally:
        for conn, pid in children.items():
            conn.close()
            _stop(pid)


class Later:
    """``fn()`` computed beside this process's work, in a forked child,
    where :func:`usable` allows (else here, when :meth:`result` is asked
    for): for serial work the workers cannot share, such as the sha256 of
    an input file.  A context manager: leaving it stops the child."""

    def __init__(self, fn: Callable[[], Any], workers: int) -> None:
        self._fn = fn
        self._child: tuple[Connection, int] | None = None
        self._counter: Any = None
        self._done = False
        self._value: Any = None
        if not usable(MIN_TASKS, workers):
            return
        from multiprocessing import get_context

        ctx = get_context("fork")
        # kept until the child is stopped: freed, its shared memory would be
        # handed to the next run's counter while the child still counts on it
        self._counter = ctx.Value("q", 0)
        reader, writer = ctx.Pipe(duplex=False)
        try:
            pid = os.fork()
        except OSError:
            reader.close()
            writer.close()
            return
        if pid == 0:  # the child: never returns
            reader.close()
            _child([fn], self._counter, writer)
        writer.close()
        self._child = (reader, pid)

    def result(self) -> Any:
        if not self._done:
            if self._child is None:
                self._value = self._fn()
            else:
                conn, pid = self._child
                try:
                    self._value = next(_collect({conn: pid}, 1))
                finally:
                    self.close()
            self._done = True
        return self._value

    def close(self) -> None:
        if self._child is not None:
            conn, pid = self._child
            self._child = None
            conn.close()
            _stop(pid)
            self._counter = None

    def __enter__(self) -> Later:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _collect(children: dict[Connection, int], n: int) -> Iterator[Any]:
    from multiprocessing.connection import wait

    done: dict[int, Any] = {}
    errors: dict[int, Exception] = {}
    live = list(children)
    for want in range(n):
        while want not in done:
            if want in errors:
                raise errors[want]
            if not live:
                raise (
                    errors[min(errors)]
                    if errors
                    else WorkerDied("a worker process ended before the work was done")
                )
            for conn in wait(live):
                try:
                    msg = conn.recv()
                except EOFError:
                    raise WorkerDied(_death(children[conn])) from None  # type: ignore[index]
                if msg is None:
                    live.remove(conn)  # type: ignore[arg-type]
                    continue
                i, ok, value = msg
                (done if ok else errors)[i] = value
        yield done.pop(want)


def _death(pid: int) -> str:
    """Why a worker process ended, in words."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = 0
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else sig
        how = f"killed by {name}" + (
            ", likely for want of memory" if sig == signal.SIGKILL else ""
        )
    else:
        how = f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else "?"
    return (
        f"a worker process died before sending its results ({how});"
        " --jobs 1 runs without worker processes"
    )


def _child(tasks: Sequence[Callable[[], Any]], counter: Any, conn: Connection) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent reports ^C
        tune_malloc()
        from relcal import progress

        progress.forget()  # the parent counts the work done
        while True:
            with counter.get_lock():
                i = counter.value
                counter.value = i + 1
            if i >= len(tasks):
                break
            try:
                msg = (i, True, tasks[i]())
            except Exception as exc:  # noqa: BLE001 - raised again in the parent
                msg = (i, False, _picklable(exc))
                conn.send(msg)
                break
            conn.send(msg)
        conn.send(None)
    except BaseException:  # noqa: BLE001 - the parent sees EOF
        code = 1
    finally:
        os._exit(code)  # no atexit, no flush of the parent's buffers


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001
        return RuntimeError(f"relcal: a worker process failed: {exc!r}")
    return exc


def _stop(pid: int) -> None:
    """Reap a child, killing it first if it is still at work."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass
