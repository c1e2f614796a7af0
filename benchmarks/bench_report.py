#!/usr/bin/env python
"""Whole-process time and size of ``relcal report`` on 50,000×1000 float32 logits.

Targets (issue 3): at most 3 s median as a whole process on a 2-core machine,
and a report file of at most 2 MB.  Usage::

    python benchmarks/bench_report.py [--n 50000] [--classes 1000] [--repeat 5]

The data comes from ``relcal.synth.make_logits`` (seed 0), saved to a
temporary ``.npz``; each run is ``python -m relcal report FILE -o OUT`` in a
fresh interpreter, so imports, loading, hashing, metrics, figures and writing
are all counted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from relcal.synth import make_logits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "preds.npz"
        out = Path(d) / "report.html"
        logits, labels = make_logits(a.n, a.classes, seed=0)
        np.savez(src, logits=logits, labels=labels)
        cmd = [sys.executable, "-m", "relcal", "report", str(src), "-o", str(out)]
        subprocess.run(cmd, check=True, capture_output=True)  # warm the page cache
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        size = out.stat().st_size
        med = statistics.median(times)
        print(
            f"relcal report, {a.n}×{a.classes} float32 logits "
            f"({src.stat().st_size / 2**20:.0f} MiB .npz), {a.repeat} runs"
        )
        print(
            f"  median {med:.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
            f"  (target ≤ 3 s: {'met' if med <= 3 else 'NOT MET'})"
        )
        print(
            f"  report {size / 1024:.0f} KiB"
            f"  (target ≤ 2 MB: {'met' if size <= 2_000_000 else 'NOT MET'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
