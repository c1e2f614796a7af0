#!/usr/bin/env python
"""Whole-process speed of ``relcal check`` (what a CI step pays).

Two targets, each timed as a fresh ``python -m relcal check ...`` process
(start-up, loading the .npz, the reduction, the bootstrap, the output),
median of several runs after one untimed warm-up:

  small     10,000 x 10 logits (.npz), point-estimate gate     target <= 0.5 s
  bootstrap 50,000 x 1000 float32 logits (.npz), --confidence 0.95
            with 1,000 bootstrap replicates                     target <= 5 s

Run from the repository:  python benchmarks/bench_check.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from relcal.synth import make_logits  # noqa: E402

TARGETS = {"small": 0.5, "bootstrap": 5.0}


def timed(args: list[str], repeat: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GITHUB_STEP_SUMMARY": ""}
    cmd = [sys.executable, "-m", "relcal", "check", *args]
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t0
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
        if i:  # the first run warms the page cache and the bytecode
            times.append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case")
    opts = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.npz"
        z, y = make_logits(10_000, 10, seed=0)
        np.savez(small, logits=z, labels=y)
        big = Path(tmp) / "big.npz"
        z, y = make_logits(50_000, 1000, seed=1)
        np.savez(big, logits=z, labels=y)
        del z, y
        cases = {
            "small": [str(small), "--max-ece", "0.5", "--max-nll", "5"],
            "bootstrap": [
                str(big),
                "--max-ece",
                "0.5",
                "--max-nll",
                "5",
                "--max-brier",
                "2",
                "--confidence",
                "0.95",
                "--bootstrap",
                "1000",
            ],
        }
        print(
            f"python {sys.version.split()[0]}, numpy {np.__version__}, "
            f"{os.cpu_count()} CPUs; median of {opts.repeat} runs"
        )
        for name, args in cases.items():
            times = timed(args, opts.repeat)
            med = statistics.median(times)
            met = med <= TARGETS[name]
            ok &= met
            print(
                f"  {name:<10} median {med:6.3f} s  (min {min(times):.3f}, "
                f"max {max(times):.3f})  target <= {TARGETS[name]:g} s: "
                f"{'met' if met else 'NOT MET'}"
            )
            shown = [Path(a).name if a.endswith(".npz") else a for a in args]
            print(f"             relcal check {' '.join(shown)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
