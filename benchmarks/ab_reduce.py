#!/usr/bin/env python
"""A/B: ``relcal.evaluate`` with ``relcal/reduce.py`` of another revision against
the working tree's, interleaved in one process on the same arrays, beside the
numpy pass of ``bench_metrics.py``.

Only the reduce module is swapped (the rest of relcal is the working tree's,
for both sides); the results of both must agree.  Rounds alternate the three
calls, so drifts of a noisy machine hit all of them alike.

Run from the repository:
    PYTHONPATH=. python benchmarks/ab_reduce.py --rev HEAD~3 --dataset seg_like
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_metrics import make_dataset, numpy_pass  # noqa: E402

import relcal  # noqa: E402
import relcal.metrics  # noqa: E402
import relcal.reduce  # noqa: E402


def load_reduce(rev: str) -> object:
    """relcal/reduce.py at ``rev``, imported as a module of its own."""
    src = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:relcal/reduce.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "reduce_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("reduce_rev", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["reduce_rev"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="HEAD", help="git revision of the old side")
    ap.add_argument(
        "--dataset",
        default="seg_like",
        choices=["imagenet_like", "seg_like", "big_binary", "cifar_like"],
    )
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)

    old = load_reduce(args.rev)
    logits, labels, ignore = make_dataset(args.dataset, quick=False)

    def evaluate(mod: object) -> object:
        relcal.metrics.reduce_scores = mod.reduce_scores  # type: ignore[attr-defined]
        return relcal.evaluate(logits, labels, ignore_index=ignore)

    calls = {
        "numpy_pass": lambda: numpy_pass(logits),
        "old": lambda: evaluate(old),
        "new": lambda: evaluate(relcal.reduce),
    }
    out = {name: fn() for name, fn in calls.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"{args.dataset}, old = {args.rev}, {args.rounds} rounds (medians, minimums):"
    )
    for name in calls:
        print(
            f"  {name:10s} {1e3 * med[name]:7.1f} ms  {1e3 * min(times[name]):7.1f} ms"
        )
    print(
        f"  new / old {med['new'] / med['old']:.3f};"
        f" old / numpy_pass {med['old'] / med['numpy_pass']:.2f},"
        f" new / numpy_pass {med['new'] / med['numpy_pass']:.2f}"
    )
    worst = 0.0
    for key in ("ece", "mce", "rms_ce", "accuracy", "classwise_ece", "nll", "brier"):
        a, b = getattr(out["old"], key, None), getattr(out["new"], key, None)
        if a is not None and b is not None:
            worst = max(worst, abs(a - b))
    print(f"  largest metric difference between the two: {worst:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
