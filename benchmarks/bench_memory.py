#!/usr/bin/env python
"""Peak memory of every command on a large segmentation file (issue #13).

Generates, seeded and one image at a time (never the whole array in memory),
a 56x19x1024x1024 float32 ``.npy`` of logits (4.46 GB) and a 56x1024x1024
uint8 ``.npy`` label map with 5% of its pixels 255 (ignored), warms the page
cache by reading both files once, then runs each command as a fresh process
under GNU time (``/usr/bin/time -v``)::

    relcal metrics         SCORES --labels LABELS --ignore-index 255
    relcal report          SCORES --labels LABELS --ignore-index 255 -o DIR/report.html
    relcal check           SCORES --labels LABELS --ignore-index 255
                           --confidence 0.95 --max-ece 0.5
    relcal fit-temperature SCORES --labels LABELS --ignore-index 255 -o DIR/t.json

and prints a table: exit status, peak resident memory (time's "Maximum
resident set size", of the largest single process), the peak over time of
the summed proportional set size (PSS) of the whole process tree (relcal
and its worker processes, sampled every 20 ms), the most processes seen,
wall time, GB/s of scores (bytes of the scores file / wall time; 1 GB = 1e9
bytes), CPU seconds (user + system, the worker processes included) and CPU
seconds per wall second (below the number of cores used when the machine is
shared: the wall time and GB/s are then pessimistic).  Exits 1 if any command
failed (exit status not 0), 2 when GNU time is missing (``apt-get install -y time``).

The goal of #13: each below 1 GiB on the 2-core development machine, and
metrics at >= 0.5 GB/s with a warm page cache.

Run from the repository::

    python benchmarks/bench_memory.py                  # full size: ~9 GB free disk
    python benchmarks/bench_memory.py --scale 0.05     # 3 images: a quick check
    python benchmarks/bench_memory.py --dir /data/bench --keep   # reuse the files
    python benchmarks/bench_memory.py --jobs 16        # 16 workers' memory

The files go to ``--dir`` (default: a temporary directory, deleted at the end
unless ``--keep``); files already there with the right size and header are
reused, not generated again.  Generation takes ~1 GB of disk per 12 images
and about a minute at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from child_env import child_env

REPO = Path(__file__).resolve().parents[1]
N_IMAGES, N_CLASSES, SIDE = 56, 19, 1024
IGNORE, IGNORED_FRACTION = 255, 0.05
SEED = 13
GNU_TIME = "/usr/bin/time"


def shape(scale: float, side: int) -> tuple[int, int, int, int]:
    return (max(1, round(N_IMAGES * scale)), N_CLASSES, side, side)


def _image(seed: int, i: int, c: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Image ``i``: (c, side, side) float32 logits and its uint8 label map,
    drawn from its own seeded stream (the same whatever the number of images).
    About 80% of the pixels have their true class on top."""
    rng = np.random.default_rng([seed, i])
    y = rng.integers(0, c, size=(side, side), dtype=np.uint8)
    z = rng.standard_normal((c, side, side), dtype=np.float32)
    z *= np.float32(1.5)
    rows, cols = np.indices((side, side), sparse=True)
    z[y, rows, cols] += rng.normal(3.0, 1.5, size=(side, side)).astype(np.float32)
    y[rng.random((side, side)) < IGNORED_FRACTION] = IGNORE
    return z, y


def _header_ok(path: Path, want: tuple[int, ...], dtype: str) -> bool:
    """Whether ``path`` is a complete .npy of this shape and dtype."""
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return arr.shape == want and arr.dtype == np.dtype(dtype)


def _open_npy(path: Path, want: tuple[int, ...], dtype: str) -> object:
    f = open(path, "wb")  # noqa: SIM115 (closed by the caller)
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": want}
    np.lib.format.write_array_header_1_0(f, header)
    return f


def generate(folder: Path, dims: tuple[int, int, int, int]) -> tuple[Path, Path]:
    """Write scores.npy and labels.npy into ``folder``, one image at a time
    (reused when they are already there with this shape)."""
    n, c, side, _ = dims
    scores, labels = folder / "scores.npy", folder / "labels.npy"
    if _header_ok(scores, dims, "<f4") and _header_ok(labels, (n, side, side), "|u1"):
        print(f"reusing {scores} and {labels}", flush=True)
        return scores, labels
    t0 = time.perf_counter()
    fz = _open_npy(scores, dims, "<f4")
    fy = _open_npy(labels, (n, side, side), "|u1")
    try:
        for i in range(n):
            z, y = _image(SEED, i, c, side)
            fz.write(z.tobytes())  # type: ignore[attr-defined]
            fy.write(y.tobytes())  # type: ignore[attr-defined]
    finally:
        fz.close()  # type: ignore[attr-defined]
        fy.close()  # type: ignore[attr-defined]
    size = scores.stat().st_size / 1e9
    print(
        f"generated {scores} ({size:.2f} GB) in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return scores, labels


def warm(*paths: Path) -> None:
    """Read the files once so that the commands find them in the page cache."""
    block = bytearray(1 << 24)
    view = memoryview(block)
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(view):
                pass


def commands(
    scores: Path, labels: Path, out: Path, jobs: int | None = None
) -> dict[str, list[str]]:
    common = [str(scores), "--labels", str(labels), "--ignore-index", str(IGNORE)]
    if jobs is not None:
        common += ["--jobs", str(jobs)]
    return {
        "metrics": ["metrics", *common],
        "report": ["report", *common, "-o", str(out / "report.html")],
        "check": ["check", *common, "--confidence", "0.95", "--max-ece", "0.5"],
        "fit-temperature": ["fit-temperature", *common, "-o", str(out / "t.json")],
    }


_TIME_FIELDS = {
    "rss_kb": re.compile(r"Maximum resident set size \(kbytes\): (\d+)"),
    "wall": re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)"),
    "status": re.compile(r"Exit status: (\d+)"),
    "user": re.compile(r"User time \(seconds\): ([\d.]+)"),
    "system": re.compile(r"System time \(seconds\): ([\d.]+)"),
}


def _seconds(clock: str) -> float:
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/PID/task/TID/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def _pss_bytes(pid: int) -> int:
    """Proportional set size of a process (shared pages split among their
    users, so a sum over processes counts each page once)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeSampler:
    """The peak, over time, of the summed PSS of a process tree (relcal and
    its worker processes), sampled every ``every`` seconds in a thread:
    GNU time's "Maximum resident set size" is that of one process only."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.peak, self.most_processes = 0, 0
        self._pid, self._every = pid, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            pids = _descendants(self._pid)[1:]  # not GNU time itself
            self.peak = max(self.peak, sum(map(_pss_bytes, pids)))
            self.most_processes = max(self.most_processes, len(pids))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run(name: str, args: list[str], folder: Path, n_bytes: int) -> dict[str, object]:
    """One command under ``/usr/bin/time -v``: its peak RSS, wall time, exit,
    and the peak summed PSS of its process tree."""
    report = folder / f"time-{name}.txt"
    cmd = [sys.executable, "-m", "relcal", *args, "--quiet"]
    env = child_env(folder / "pycache", GITHUB_STEP_SUMMARY="")
    with subprocess.Popen(
        [GNU_TIME, "-v", "-o", str(report), *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as popen:
        sampler = TreeSampler(popen.pid)
        _, err = popen.communicate()
        sampler.stop()
    proc = subprocess.CompletedProcess(popen.args, popen.returncode, "", err)
    text = report.read_text()
    got = {k: rx.search(text) for k, rx in _TIME_FIELDS.items()}
    wall = _seconds(got["wall"].group(1)) if got["wall"] else float("nan")
    status = int(got["status"].group(1)) if got["status"] else proc.returncode
    stderr = proc.stderr.strip().splitlines()
    return {
        "command": name,
        "argv": ["relcal", *args[:], "--quiet"],
        "status": status,
        "peak_rss_bytes": int(got["rss_kb"].group(1)) * 1024 if got["rss_kb"] else None,
        "peak_tree_pss_bytes": sampler.peak or None,
        "processes": sampler.most_processes,
        "wall_s": wall,
        "cpu_s": sum(float(got[k].group(1)) for k in ("user", "system") if got[k]),
        "gb_per_s": n_bytes / 1e9 / wall if wall > 0 else None,
        "stderr_last": stderr[-1] if stderr else "",
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        f"{'command':<16} {'exit':>4} {'peak RSS':>10} {'tree PSS':>10} {'procs':>5}"
        f" {'< 1 GiB':>7} {'wall s':>8} {'GB/s':>6} {'cpu s':>7} {'cpu/wall':>8}"
    ]
    for r in rows:
        rss, pss = r["peak_rss_bytes"], r["peak_tree_pss_bytes"]
        rss_text = "?" if rss is None else f"{rss / 2**30:.2f} GiB"
        pss_text = "?" if pss is None else f"{pss / 2**30:.2f} GiB"
        most = max(rss or 0, pss or 0)
        under = "?" if rss is None else ("yes" if most < 2**30 else "no")
        rate = r["gb_per_s"]
        lines.append(
            f"{r['command']:<16} {r['status']:>4} {rss_text:>10} {pss_text:>10}"
            f" {r['processes']:>5} {under:>7}"
            f" {r['wall_s']:>8.2f} {'?' if rate is None else f'{rate:.2f}':>6}"
            f" {r['cpu_s']:>7.2f} {r['cpu_s'] / r['wall_s']:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, help="where the files go (default: a temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the 56 images (at least one; default 1)",
    )
    parser.add_argument(
        "--side", type=int, default=SIDE, help=f"image side in pixels (default {SIDE})"
    )
    parser.add_argument(
        "--only",
        help="comma-separated commands to run"
        " (default: metrics,report,check,fit-temperature)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="pass --jobs N to every command (default: relcal's own, the cores"
        " this process may use); more jobs than cores shows here the memory"
        " a larger machine's workers take",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    opts = parser.parse_args(argv)
    if not (Path(GNU_TIME).exists() and os.access(GNU_TIME, os.X_OK)):
        print(
            f"{GNU_TIME} not found: install GNU time (apt-get install -y time)",
            file=sys.stderr,
        )
        return 2
    if opts.scale <= 0 or opts.side < 1:
        parser.error("--scale must be > 0 and --side >= 1")
    if opts.jobs is not None and opts.jobs < 1:
        parser.error("--jobs must be >= 1")
    dims = shape(opts.scale, opts.side)
    folder = opts.dir or Path(tempfile.mkdtemp(prefix="relcal-bench-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    temporary = opts.dir is None and not opts.keep
    try:
        return _measure(folder, dims, opts)
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        elif opts.dir is None:
            print(f"kept {folder}")


def _measure(
    folder: Path, dims: tuple[int, int, int, int], opts: argparse.Namespace
) -> int:
    need = 1.05 * (np.prod(dims) * 4 + np.prod(dims) // dims[1])
    free = shutil.disk_usage(folder).free
    if not _header_ok(folder / "scores.npy", dims, "<f4") and free < need:
        print(
            f"{folder}: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed"
            " (give --dir, or a smaller --scale)",
            file=sys.stderr,
        )
        return 2
    scores, labels = generate(folder, dims)
    warm(scores, labels)
    n_bytes = scores.stat().st_size
    print(
        f"scores {dims} float32 ({n_bytes / 1e9:.2f} GB), labels uint8, "
        f"{IGNORED_FRACTION:.0%} = {IGNORE}; cores: {len(os.sched_getaffinity(0))}",
        flush=True,
    )
    cmds = commands(scores, labels, folder, opts.jobs)
    if opts.only:
        wanted = opts.only.split(",")
        unknown = sorted(set(wanted) - set(cmds))
        if unknown:
            print(f"--only: unknown command {', '.join(unknown)}", file=sys.stderr)
            return 2
        cmds = {k: v for k, v in cmds.items() if k in wanted}
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for name, args in cmds.items():
        row = run(name, args, folder, n_bytes)
        rows.append(row)
        print(f"  {name}: exit {row['status']}, {row['wall_s']:.1f} s", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    print(table(rows))
    print()
    for r in rows:
        print("  " + " ".join(map(str, r["argv"])))
        if r["status"] != 0:
            print(f"    -> exit {r['status']}: {r['stderr_last']}")
    if opts.json:
        opts.json.write_text(json.dumps({"shape": list(dims), "rows": rows}, indent=1))
    return 0 if all(r["status"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
