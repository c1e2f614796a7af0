#!/usr/bin/env python
"""Speed of relcal's CORP diagram beside scikit-learn and model-diagnostics.

For n = 50,000 and 1,000,000 continuous binary forecasts (seeded; almost all
values distinct) it times, best of ``--repeat`` runs:

  relcal pav+dec   group_samples + pav + Brier and log decompositions
  relcal bands     consistency_bands (level 0.9, n_boot 100, coarsened to
                   max_groups = 2000 groups)
  relcal all       corp_from_samples (all of the above + the JSON dict)
  sklearn pav      IsotonicRegression().fit(x, y).predict(x)
  md decompose     model_diagnostics decompose, Brier + log (both refit PAV)

and prints the ratio reference / relcal for the PAV + decomposition.  The
references are optional (skipped when not importable).  Run, e.g.::

    /work/refenv/bin/python benchmarks/bench_corp.py     # with references
    python benchmarks/bench_corp.py --sizes 50000        # relcal only
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from relcal import corp


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.beta(2.0, 2.0, n)
    y = (rng.uniform(0, 1, n) < 0.5 + 0.7 * (x - 0.5)).astype(np.float64)
    return x, y


def pav_and_decomposition(x: np.ndarray, y: np.ndarray) -> None:
    v, c, s = corp.group_samples(x, y)
    r = corp.pav(v, c, s)
    for score in corp.SCORES:
        corp.score_decomposition(v, c, s, score=score, recalibrated=r)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        from sklearn.isotonic import IsotonicRegression
    except ImportError:
        IsotonicRegression = None  # noqa: N806
    try:
        from model_diagnostics.scoring import decompose
    except ImportError:
        decompose = None
    print(f"{'n':>9} {'what':<16} {'seconds':>9} {'ratio':>7}")
    for n in args.sizes:
        run_size(n, args.repeat, IsotonicRegression, decompose)
    print("ratio = reference time / relcal pav+dec time (higher: relcal faster)")
    return 0


def run_size(n: int, repeat: int, IsotonicRegression: Any, decompose: Any) -> None:  # noqa: N803
    x, y = data(n)
    v, c, s = corp.group_samples(x, y)
    rows: list[tuple[str, float, str]] = []
    t_pd = best(lambda: pav_and_decomposition(x, y), repeat)
    rows.append(("relcal pav+dec", t_pd, ""))
    rows.append(
        (
            "relcal bands",
            best(lambda: corp.consistency_bands(v, c, s), repeat),
            "",
        )
    )
    rows.append(
        (
            "relcal all",
            best(lambda: corp.corp_from_samples(x, y).as_dict(), repeat),
            "",
        )
    )
    if IsotonicRegression is not None:
        t = best(lambda: IsotonicRegression().fit(x, y).predict(x), repeat)
        rows.append(("sklearn pav", t, f"{t / t_pd:.1f}x"))
    if decompose is not None:

        def md() -> None:
            from model_diagnostics.scoring import LogLoss, SquaredError

            decompose(y, x, scoring_function=SquaredError())
            decompose(y, x, scoring_function=LogLoss())

        t = best(md, repeat)
        rows.append(("md decompose", t, f"{t / t_pd:.1f}x"))
    for what, sec, ratio in rows:
        print(f"{n:>9} {what:<16} {sec:>9.4f} {ratio:>7}")


if __name__ == "__main__":
    raise SystemExit(main())
