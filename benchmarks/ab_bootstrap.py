#!/usr/bin/env python
"""In-process A/B: relcal 0.1.0's multinomial bootstrap against the Poisson one.

The multinomial bootstrap is read from git history (``git show
3be6a3d:relcal/bootstrap.py``, the last commit that had it); both run on the
same per-sample arrays (50,000 samples, 15 bins, NLL and Brier; 1,000
replicates), interleaved, 7 times each; prints min and median seconds.

Run from the repository:  python benchmarks/ab_bootstrap.py [--n 50000]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from relcal.bootstrap import Samples, bootstrap  # noqa: E402

MULTINOMIAL_COMMIT = "3be6a3d"


def multinomial_module(tmp: Path):  # type: ignore[no-untyped-def]
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{MULTINOMIAL_COMMIT}:relcal/bootstrap.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp / "multinomial_bootstrap.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("multinomial_bootstrap", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["multinomial_bootstrap"] = module  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="samples")
    parser.add_argument("--replicates", type=int, default=1000)
    opts = parser.parse_args()
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, opts.n)
    correct = (rng.random(opts.n) < conf).astype(np.float64)
    nll, brier = rng.random(opts.n), rng.random(opts.n)
    bins = np.minimum((conf * 15).astype(np.int64), 14)
    with tempfile.TemporaryDirectory() as tmp:
        old = multinomial_module(Path(tmp))
    before = old.Samples(bins, conf, correct, nll, brier, 15)
    after = Samples(bins, conf, correct, nll, brier, 15)
    runs = {
        "multinomial (0.1.0)": lambda seed: old.bootstrap(
            [before], n_replicates=opts.replicates, seed=seed
        ),
        "poisson (now)": lambda seed: bootstrap(
            [after], n_replicates=opts.replicates, seed=seed
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for seed in range(7):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(seed)
            times[name].append(time.perf_counter() - t0)
    print(f"{opts.n} samples x {opts.replicates} replicates, 7 interleaved runs")
    for name, ts in times.items():
        print(f"  {name:<20} min {min(ts):.3f} s  median {statistics.median(ts):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
