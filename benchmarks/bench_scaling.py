#!/usr/bin/env python
"""How relcal scales with the number of jobs (issue #13, "Every core").

For jobs = 1, 2, 4, ... up to the cores this process may use
(``relcal.reduce.available_cores()``, which is always included), times every
default metric two ways on the same files:

- in process: ``relcal.reduce.set_jobs(n)`` then ``relcal.evaluate(scores,
  labels)`` on the memory-mapped ``.npy`` files (page cache warm; each timed
  run follows an untimed one with the same n, which warms the new pool);
- whole process: ``relcal metrics SCORES --labels LABELS --jobs n --quiet``
  as a fresh process (start-up and loading included).

Both are timed in ``--repeat`` rounds (n = 1, 2, 4, ..., then again) so that
the drift of a shared machine hits every n alike; medians are printed.

Datasets, generated seeded and chunk-wise into a temporary directory (each
image or block of rows is written as it is drawn; the array is never held
whole):

- ``seg``: 32x19x512x512 float32 segmentation logits (637 MB), uint8 labels;
- ``cls``: 50,000x1000 float32 logits (200 MB), int64 labels.

Prints, per dataset, seconds, GB/s of scores (1 GB = 1e9 bytes), the
speed-up over one job and CPU seconds per wall second (the cores kept busy,
relcal's worker processes included: on a machine shared with other work the
speed-up understates the parallelism, and this column shows it); then the
machine's own ceiling: n processes each running the same numpy loop over
a block-sized array, against one, and the same over an array that stays in
each core's cache (:func:`ceiling`); and the start-up of a
``relcal metrics`` process on a tiny input, with the most a whole process
could then gain from n jobs (:func:`bound`).  Issue #13 asks for
>= 1.8x from 1 to 2 jobs on two cores and aims at >= 6x from 1 to 16 on
larger machines (on ``seg``).

    python benchmarks/bench_scaling.py          # both datasets, ~2 min on 2 cores
    python benchmarks/bench_scaling.py --datasets seg --repeat 5 --max-jobs 8
    python benchmarks/bench_scaling.py --datasets seg-large   # 2.55 GB, ~3 min
    python benchmarks/bench_scaling.py --json scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from child_env import child_env  # noqa: E402

import relcal  # noqa: E402
from relcal.reduce import available_cores, set_jobs  # noqa: E402

SEED = 13


def _write_npy(path: Path, shape: tuple[int, ...], dtype: str, blocks) -> None:
    """Write a .npy of ``shape`` from ``blocks`` (arrays along axis 0)."""
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    rows = 0
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for block in blocks:
            f.write(np.ascontiguousarray(block, dtype=dtype).tobytes())
            rows += len(block)
    assert rows == shape[0], (path, rows, shape)


def make_seg(
    folder: Path, n: int = 32, c: int = 19, side: int = 512
) -> tuple[Path, Path]:
    """(n, c, side, side) float32 logits and (n, side, side) uint8 labels,
    one image at a time (each image from its own seeded stream)."""

    def images():
        for i in range(n):
            rng = np.random.default_rng([SEED, i])
            y = rng.integers(0, c, size=(side, side), dtype=np.uint8)
            z = rng.standard_normal((c, side, side), dtype=np.float32)
            z *= np.float32(1.5)
            r, k = np.indices((side, side), sparse=True)
            z[y, r, k] += rng.normal(3.0, 1.5, (side, side)).astype(np.float32)
            yield z[None], y[None]

    return _pair(folder, "seg", images(), (n, c, side, side), (n, side, side), "|u1")


def make_seg_large(folder: Path) -> tuple[Path, Path]:
    """``seg`` with 128 images (2.55 GB): long enough that the whole
    process's serial start-up (~0.2 s) weighs little in its scaling."""
    return make_seg(folder, n=128)


def make_cls(folder: Path, n: int = 50_000, c: int = 1000) -> tuple[Path, Path]:
    """(n, c) float32 logits and int64 labels, 5,000 rows at a time."""

    def blocks():
        for b, lo in enumerate(range(0, n, 5000)):
            rng = np.random.default_rng([SEED, b])
            m = min(5000, n - lo)
            y = rng.integers(0, c, m)
            z = rng.standard_normal((m, c), dtype=np.float32)
            z *= np.float32(2.0)
            z[np.arange(m), y] += rng.normal(4.0, 2.0, m).astype(np.float32)
            yield z, y

    return _pair(folder, "cls", blocks(), (n, c), (n,), "<i8")


def _pair(folder, name, blocks, zshape, yshape, ydtype) -> tuple[Path, Path]:
    zp, yp = folder / f"{name}_scores.npy", folder / f"{name}_labels.npy"
    ys: list[np.ndarray] = []  # labels are small (1/76 of the scores at most)

    def scores():
        for z, y in blocks:
            ys.append(y)
            yield z

    _write_npy(zp, zshape, "<f4", scores())
    _write_npy(yp, yshape, ydtype, ys)
    return zp, yp


def startup(folder: Path, repeat: int) -> float:
    """Seconds of a whole ``relcal metrics --unbinned off`` process on a
    1x19x16x16 input (median of ``repeat``, after an untimed run): the serial
    start-up (interpreter, imports, reading the headers, printing) that no
    number of jobs shortens.  (``--unbinned off`` as the segmentation runs,
    above its automatic limit, are; the unbinned metrics of ``cls`` add
    serial work after its pass, which this leaves out.)"""
    tiny = folder / "tiny"
    tiny.mkdir(exist_ok=True)
    run = whole_process_run(*make_seg(tiny, n=1, side=16), 1, "--unbinned", "off")
    run()
    return statistics.median(_timed(run)[0] for _ in range(repeat))


def bound(whole_1: float, start: float, jobs: int) -> float:
    """The most a whole process can gain from ``jobs`` over one (Amdahl):
    everything but the start-up perfectly parallel."""
    return whole_1 / (start + max(0.0, whole_1 - start) / jobs)


def job_counts(most: int) -> list[int]:
    counts, n = [], 1
    while n < most:
        counts.append(n)
        n *= 2
    return [*counts, most]


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its children so far
    (relcal's worker processes are children; so is a timed ``relcal``)."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in map(
            resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
    )


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    c0 = _cpu()
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    return wall, _cpu() - c0


def _rounds(
    runs: dict[int, Callable[[], object]], repeat: int, warm_each: bool
) -> dict[int, tuple[float, float]]:
    """Median (wall, CPU) seconds per job count, timed in rounds (1, 2, 4, 1,
    2, 4, ...) so that a drift of a shared machine hits every count alike.
    ``warm_each``: an untimed run before each timed one (in process, where a
    new job count starts a new pool whose buffers are faulted in afresh)."""
    for run in runs.values():
        run()  # untimed: the page cache, the bytecode
    got: dict[int, list[tuple[float, float]]] = {j: [] for j in runs}
    for _ in range(repeat):
        for jobs, run in runs.items():
            if warm_each:
                run()
            got[jobs].append(_timed(run))
    return {
        j: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for j, t in got.items()
    }


def in_process(zp: Path, yp: Path, counts: list[int], repeat: int) -> dict:
    z = np.load(zp, mmap_mode="r")
    y = np.load(yp, mmap_mode="r")

    def run(jobs: int) -> Callable[[], object]:
        def go() -> object:
            set_jobs(jobs)
            return relcal.evaluate(z, y)

        return go

    try:
        runs = {j: run(j) for j in counts}
        return _rounds(runs, repeat, warm_each=True)
    finally:
        set_jobs(None)


def whole_process_run(
    zp: Path, yp: Path, jobs: int, *more: str
) -> Callable[[], object]:
    """A run of ``relcal metrics`` on the pair as a fresh process."""
    env = child_env(zp.parent / "pycache")
    cmd = [sys.executable, "-m", "relcal", "metrics", str(zp), "--labels", str(yp)]
    cmd += ["--jobs", str(jobs), "--quiet", *more]

    def go() -> object:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
        return p

    return go


def whole_process(zp: Path, yp: Path, counts: list[int], repeat: int) -> dict:
    runs = {j: whole_process_run(zp, yp, j) for j in counts}
    return _rounds(runs, repeat, warm_each=False)


def measure(
    name: str, zp: Path, yp: Path, counts: list[int], repeat: int
) -> list[dict]:
    n_bytes = np.load(zp, mmap_mode="r").nbytes
    inside = in_process(zp, yp, counts, repeat)
    whole = whole_process(zp, yp, counts, repeat)
    rows = [
        {
            "dataset": name,
            "jobs": jobs,
            "bytes": int(n_bytes),
            "in_process_s": inside[jobs][0],
            "in_process_cpu_s": inside[jobs][1],
            "whole_process_s": whole[jobs][0],
            "whole_process_cpu_s": whole[jobs][1],
        }
        for jobs in counts
    ]
    for r in rows:
        print(
            f"  {name} jobs={r['jobs']}: {r['in_process_s']:.3f} s in process,"
            f" {r['whole_process_s']:.3f} s whole",
            flush=True,
        )
    return rows


def _numpy_loop(n: int, nbytes: int) -> None:
    a = np.random.default_rng(0).standard_normal(nbytes // 8)
    out = np.empty_like(a)
    for _ in range(n):
        np.exp(a, out=out)
        out.sum()


CACHED_BYTES = 128 << 10
"""The array of the second ceiling: small enough to stay in a core's own
cache, so that only the cores themselves are measured."""


def ceiling(counts: list[int], repeat: int, nbytes: int = 8 << 20) -> dict[int, float]:
    """What the machine gives: the throughput of n processes, each running
    the same numpy loop (``np.exp`` then a sum over an ``nbytes`` float64
    array, the size of a block's work), over that of one (median of
    ``repeat``).  A reduction cannot scale better than this; on a machine
    whose cores share a cache or memory bandwidth it is below n.  With
    ``nbytes`` = :data:`CACHED_BYTES` it measures the cores alone: where
    that is near n and the 8 MB loop is not, the limit is the memory
    (measured on a 2-core machine, 2026-12-06: 1.96-2.00x with arrays in
    the cache, 1.55-1.67x over 8 MB arrays)."""
    if not hasattr(os, "fork"):
        return {}
    iters = max(1, (2 << 30) // nbytes // 8)  # ~0.3 s for one process here
    got: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(repeat):
        for n in counts:
            t0 = time.perf_counter()
            pids = []
            for _ in range(n):
                pid = os.fork()
                if pid == 0:
                    try:
                        _numpy_loop(iters, nbytes)
                    finally:
                        os._exit(0)
                pids.append(pid)
            for pid in pids:
                os.waitpid(pid, 0)
            got[n].append(time.perf_counter() - t0)
    one = statistics.median(got[counts[0]]) / counts[0]
    return {n: n * one / statistics.median(t) for n, t in got.items()}


def table(rows: list[dict]) -> str:
    """Seconds, GB/s, speed-up over one job and CPU seconds per wall second
    (how many cores were busy: on a shared machine, the parallelism a
    speed-up could not show)."""
    head = f"{'s':>8} {'GB/s':>6} {'speed-up':>8} {'cpu/wall':>8}"
    out = [
        f"{'':<15} | {'in process':^33} | {'whole process':^33}",
        f"{'dataset':<10}{'jobs':>5} | {head} | {head}",
    ]
    base: dict[str, dict] = {}
    for r in rows:
        b = base.setdefault(r["dataset"], r)
        cells = []
        for way in ("in_process", "whole_process"):
            t, cpu, t1 = r[f"{way}_s"], r[f"{way}_cpu_s"], b[f"{way}_s"]
            gbs = r["bytes"] / 1e9 / t
            cells.append(f"{t:>8.3f} {gbs:>6.2f} {t1 / t:>7.2f}x {cpu / t:>8.2f}")
        out.append(f"{r['dataset']:<10}{r['jobs']:>5} | {cells[0]} | {cells[1]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        default="seg,cls",
        help="comma-separated: seg, cls, seg-large (default seg,cls)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per setting")
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=available_cores(),
        help="the most jobs (default: the cores this process may use)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the files go (default: a temporary directory, deleted at the end)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    opts = parser.parse_args(argv)
    makers = {"seg": make_seg, "cls": make_cls, "seg-large": make_seg_large}
    names = opts.datasets.split(",")
    if set(names) - set(makers) or opts.repeat < 1 or opts.max_jobs < 1:
        parser.error("--datasets: seg, cls, seg-large; --repeat and --max-jobs >= 1")
    counts = job_counts(opts.max_jobs)
    print(
        f"cores this process may use: {available_cores()}; jobs: {counts};"
        f" kernel: {os.environ.get('RELCAL_KERNEL', 'default')}",
        flush=True,
    )
    load = os.getloadavg()[0]
    rows = []
    if opts.dir is not None:
        opts.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=opts.dir) as tmp:
        for name in names:
            t0 = time.perf_counter()
            zp, yp = makers[name](Path(tmp))
            print(
                f"generated {name}: {np.load(zp, mmap_mode='r').shape} in"
                f" {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            rows += measure(name, zp, yp, counts, opts.repeat)
        start = startup(Path(tmp), opts.repeat)
    limit = ceiling(counts, opts.repeat)
    cached = ceiling(counts, opts.repeat, CACHED_BYTES)
    print(f"load average: {os.getloadavg()[0]:.2f} (before: {load:.2f})")
    print()
    print(table(rows))
    base = {r["dataset"]: r["whole_process_s"] for r in rows if r["jobs"] == 1}
    most = [
        f"{r['dataset']} {r['jobs']} jobs"
        f" {bound(base[r['dataset']], start, r['jobs']):.2f}x"
        for r in rows
        if r["jobs"] > 1
    ]
    print(
        f"\nstart-up of a relcal metrics process (1x19x16x16 input): {start:.3f} s;"
        " with it serial and the rest perfectly parallel, the whole-process"
        " speed-up could be at most: " + "; ".join(most)
    )
    if limit:
        print(
            "\nthe machine's ceiling (n processes of np.exp + sum over 8 MB arrays,"
            " throughput over one): "
            + ", ".join(f"{n}: {x:.2f}x" for n, x in limit.items())
            + "; over 128 kB arrays, which stay in each core's cache: "
            + ", ".join(f"{n}: {x:.2f}x" for n, x in cached.items())
        )
    if opts.json:
        doc = {
            "rows": rows,
            "ceiling": {str(n): x for n, x in limit.items()},
            "ceiling_cached": {str(n): x for n, x in cached.items()},
            "startup_s": start,
        }
        opts.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
