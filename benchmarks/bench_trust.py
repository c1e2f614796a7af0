#!/usr/bin/env python
"""How long the "how much to trust it" numbers take (issue #14's targets).

Each line prints relcal's time and, where the reference library is
importable (the ``bench`` extra, or /work/refenv here), the reference's time
on the same data, measured in the same run, and their ratio.

- ``bootstrap``: 1,000 Poisson bootstrap replicates of every binned metric
  (accuracy, ECE, RMS-CE, MCE, NLL, Brier, the debiased errors) on 50,000 x
  1000 float32 logits, in process: ``relcal.evaluate(z, y, ci=0.95)`` against
  ``relcal.evaluate(z, y)`` (the difference is the bootstrap); target <= 2 s.
  Reference: uncertainty-calibration's ``get_calibration_error_uncertainties``
  (100 resamples of one metric: its default), scaled to 1,000.
- ``smece``: smooth ECE of 1,000,000 binary predictions; target <= 2 s.
  Reference: ``relplot.smECE``.
- ``report``: ``relcal report`` on the 50,000 x 1000 ``.npy`` pair, whole
  process (intervals, bands, smooth ECE, CORP, selective prediction and the
  cross-fitted temperature preview); target <= 4 s.
- ``metrics --ci``: ``relcal metrics --ci 0.95`` on the same pair, whole
  process.

Data: logits = 2.5 * z, labels drawn from softmax(z) (the true temperature is
2.5), as in ../shared/REFERENCES.md.  Median of ``--repeat`` runs.

Run:  python benchmarks/bench_trust.py [--repeat 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import relcal  # noqa: E402


def make_logits(n: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c), dtype=np.float32) * 2.0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random((n, 1))
    y = (p.cumsum(axis=1) < u).sum(axis=1).clip(0, c - 1)
    return (2.5 * z).astype(np.float32), y.astype(np.int64)


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def row(
    name: str, ours: float, target: float | None, ref: float | None, ref_name: str
) -> None:
    line = f"{name:<34} relcal {ours:7.3f} s"
    if target is not None:
        line += f"  (target <= {target:g} s: {'met' if ours <= target else 'NOT met'})"
    if ref is not None:
        line += f"  {ref_name} {ref:7.3f} s  ratio {ref / ours:5.1f}x"
    print(line, flush=True)


def bench_bootstrap(z: np.ndarray, y: np.ndarray, repeat: int) -> None:
    plain = timed(lambda: relcal.evaluate(z, y, values=False), repeat)
    with_ci = timed(lambda: relcal.evaluate(z, y, values=False, ci=0.95), repeat)
    ref = None
    try:
        import calibration as cal  # uncertainty-calibration

        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        t = time.perf_counter()
        cal.get_calibration_error_uncertainties(p, y, p=1, mode="top-label")
        ref = (time.perf_counter() - t) * 10.0  # its 100 resamples -> 1,000
    except ImportError:
        print("  (uncertainty-calibration not importable: no reference time)")
    row("evaluate, no intervals", plain, None, None, "")
    row(
        "bootstrap, 1,000 replicates (extra)",
        with_ci - plain,
        2.0,
        ref,
        "uncertainty-calibration x10",
    )
    row("evaluate with ci=0.95 (total)", with_ci, None, None, "")


def bench_smece(repeat: int) -> None:
    from relcal.smooth import smece

    rng = np.random.default_rng(1)
    f = rng.random(1_000_000)
    y = (rng.random(1_000_000) < f**1.3).astype(np.float64)
    ours = timed(lambda: smece(f, y), repeat)
    ref = None
    try:
        import relplot

        ref = timed(lambda: relplot.smECE(f, y), 1)
    except ImportError:
        print("  (relplot not importable: no reference time)")
    row("smooth ECE, 1,000,000 binary", ours, 2.0, ref, "relplot.smECE")


def bench_commands(zp: Path, yp: Path, repeat: int, out: Path) -> None:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(out / "pycache"))
    base = [sys.executable, "-m", "relcal"]
    cmds = {
        "relcal report (whole process)": (
            [*base, "report", str(zp), "--labels", str(yp), "-o", str(out / "r.html")],
            4.0,
        ),
        "relcal metrics --ci 0.95 (whole)": (
            [*base, "metrics", str(zp), "--labels", str(yp), "--ci", "0.95"],
            None,
        ),
        "relcal metrics (whole process)": (
            [*base, "metrics", str(zp), "--labels", str(yp)],
            None,
        ),
    }
    for name, (cmd, target) in cmds.items():

        def run(cmd: list[str] = cmd) -> None:
            subprocess.run(
                cmd,
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        row(name, timed(run, repeat), target, None, "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the data")
    opts = parser.parse_args()
    z, y = make_logits(50_000, 1000)
    print(
        f"50,000 x 1000 float32 logits; median of {opts.repeat}; {os.cpu_count()} cores"
    )
    bench_bootstrap(z, y, opts.repeat)
    bench_smece(opts.repeat)
    with tempfile.TemporaryDirectory(dir=opts.dir) as tmp:
        zp, yp = Path(tmp) / "z.npy", Path(tmp) / "y.npy"
        np.save(zp, z)
        np.save(yp, y)
        bench_commands(zp, yp, opts.repeat, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
