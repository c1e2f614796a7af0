#!/usr/bin/env python
"""Speed of relcal's smooth ECE beside relplot's, on the same data, in one run.

Two datasets of ``n`` seeded binary predictions: over-confident (sigma* about
0.03, relplot's 1001-point grid) and calibrated (sigma* a few 1/1024ths, a
finer grid and mesh).  Rows (each the best of ``--repeat`` calls, in process,
on in-memory float64 arrays):

  relcal_smece     relcal.smooth.smece(f, y): input checks, bandwidth search,
                   smECE (raw samples, weight 1 each).
  relcal_weighted  relcal.smooth.smece_weighted(value, count, sum_y) on the
                   grouped values (the grouping itself, np.unique, excluded).
  relplot          relplot.smECE(f, y) (skipped with a message if relplot is
                   not importable).

The ratio is relplot's time over relcal's; the last column is the absolute
difference of the two smECE values.

Run from the repository, in the reference environment for the relplot row:

    /work/refenv/bin/python benchmarks/bench_smooth.py            # n = 1,000,000
    /work/refenv/bin/python benchmarks/bench_smooth.py --n 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relcal.smooth import (  # noqa: E402
    group_samples,
    smece,
    smece_and_sigma,
    smece_weighted,
)


def make_data(n: int, seed: int, temper: float) -> tuple[np.ndarray, np.ndarray]:
    """Binary forecasts: p ~ U(0, 1), y ~ Bernoulli(p), f = sigmoid(temper logit p)."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    y = (rng.random(n) < p).astype(np.float64)
    f = 1.0 / (1.0 + np.exp(-temper * (np.log(p) - np.log1p(-p))))
    return f, y


def best_of(fn: Callable[[], float], repeat: int) -> tuple[float, float]:
    """(best wall time in seconds, the value returned)."""
    times = []
    value = float("nan")
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = float(fn())
        times.append(time.perf_counter() - t0)
    return min(times), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="predictions")
    parser.add_argument("--repeat", type=int, default=3, help="calls per row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        import relplot  # noqa: PLC0415 - optional reference
    except ImportError as exc:
        relplot = None
        missing = str(exc)
    for kind, temper in (("over-confident", 1.5), ("calibrated", 1.0)):
        f, y = make_data(args.n, args.seed, temper)
        value, count, sum_y = group_samples(f, y)
        print(
            f"\nsmECE on n = {args.n:,} {kind} float64 binary predictions "
            f"({len(value):,} distinct); best of {args.repeat}; "
            f"numpy {np.__version__}, Python {platform.python_version()}"
        )
        ours, ours_value = best_of(partial(smece, f, y), args.repeat)
        weighted, _ = best_of(partial(smece_weighted, value, count, sum_y), args.repeat)
        sigma = smece_and_sigma(value, count, sum_y).sigma
        print(f"sigma* = {sigma} = {sigma * 1024:g}/1024")
        print(f"{'row':16} {'seconds':>9} {'ratio':>8} {'smECE':>12} {'|diff|':>9}")
        print(f"{'relcal_smece':16} {ours:9.3f} {1.0:8.2f} {ours_value:12.8f}")
        print(f"{'relcal_weighted':16} {weighted:9.3f} {ours / weighted:8.2f}")
        if relplot is None:
            print(f"{'relplot':16} skipped (not importable: {missing})")
            continue
        theirs, theirs_value = best_of(partial(relplot.smECE, f, y), args.repeat)
        print(
            f"{'relplot':16} {theirs:9.3f} {theirs / ours:8.2f} {theirs_value:12.8f}"
            f" {abs(theirs_value - ours_value):9.1e}"
        )
        print(f"relcal is {theirs / ours:.1f}x faster than relplot on this data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
