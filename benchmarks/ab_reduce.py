#!/usr/bin/env python
"""A/B: ``relcal.evaluate`` (or another call) of another git revision of relcal
against the working tree's, in alternating rounds on the same arrays, beside
the numpy pass of ``bench_metrics.py``.

Each side runs in a worker process of its own (two versions of one package do
not import side by side), which builds the dataset once and then times one
call per request; the rounds alternate between the sides, so drifts of a
noisy machine hit all of them alike.  The metrics of both sides must agree.

Run from the repository:
    PYTHONPATH=. python benchmarks/ab_reduce.py --rev HEAD~3 --dataset seg_like
    PYTHONPATH=. python benchmarks/ab_reduce.py --rev main --call evaluate_mass
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CALLS = ("evaluate", "evaluate_mass", "table", "numpy_pass")


def export(rev: str) -> Path:
    """The tree of ``rev`` (relcal/ and benchmarks/), in a temporary folder."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "relcal", "benchmarks"],
        check=True,
        capture_output=True,
    ).stdout
    out = Path(tempfile.mkdtemp(prefix="relcal-ab-"))
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(out, filter="data")
    kernel = REPO / "relcal" / "libvexp.so.1"  # built, not tracked
    if kernel.exists() and not (out / "relcal" / kernel.name).exists():
        (out / "relcal" / kernel.name).symlink_to(kernel)
    return out


def worker(dataset: str) -> None:
    """Serve timed calls: one line in (a call's name), one JSON line out."""
    import time

    sys.path.insert(0, str(Path.cwd() / "benchmarks"))
    from bench_metrics import make_dataset, numpy_pass  # type: ignore[import-not-found]

    import relcal

    x, y, ignore = make_dataset(dataset, quick=False)
    calls = {
        "evaluate": lambda: relcal.evaluate(x, y, ignore_index=ignore),
        "evaluate_mass": lambda: relcal.evaluate(
            x, y, ignore_index=ignore, binning="mass"
        ),
        "table": lambda: relcal.reliability_table(x, y, ignore_index=ignore),
        "numpy_pass": lambda: numpy_pass(x),
    }
    for line in sys.stdin:
        name = line.strip()
        t0 = time.perf_counter()
        out = calls[name]()
        seconds = time.perf_counter() - t0
        metrics = out.to_dict()["metrics"] if hasattr(out, "to_dict") else None
        print(json.dumps({"seconds": seconds, "metrics": metrics}), flush=True)


def start(tree: Path, dataset: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", "--dataset", dataset],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def ask(proc: subprocess.Popen[str], name: str) -> dict[str, object]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(name + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="HEAD", help="git revision of the old side")
    ap.add_argument(
        "--dataset",
        default="seg_like",
        choices=["imagenet_like", "seg_like", "big_binary", "cifar_like"],
    )
    ap.add_argument("--call", default="evaluate", choices=CALLS[:-1])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.dataset)
        return 0
    sides = {"old": start(export(args.rev), args.dataset)}
    sides["new"] = start(REPO, args.dataset)
    steps = [("numpy_pass", "new", "numpy_pass"), ("old", "old", args.call)]
    steps.append(("new", "new", args.call))
    out = {label: ask(sides[side], call) for label, side, call in steps}  # warm-up
    times: dict[str, list[float]] = {label: [] for label, _, _ in steps}
    for _ in range(args.rounds):
        for label, side, call in steps:
            times[label].append(float(ask(sides[side], call)["seconds"]))  # type: ignore[arg-type]
    for proc in sides.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    med = {label: statistics.median(t) for label, t in times.items()}
    print(
        f"{args.dataset}, {args.call}, old = {args.rev},"
        f" {args.rounds} rounds (medians, minimums):"
    )
    for label in times:
        print(
            f"  {label:10s} {1e3 * med[label]:7.1f} ms"
            f"  {1e3 * min(times[label]):7.1f} ms"
        )
    print(
        f"  new / old {med['new'] / med['old']:.3f};"
        f" old / numpy_pass {med['old'] / med['numpy_pass']:.2f},"
        f" new / numpy_pass {med['new'] / med['numpy_pass']:.2f}"
    )
    old, new = out["old"]["metrics"], out["new"]["metrics"]
    if isinstance(old, dict) and isinstance(new, dict):
        worst = max(
            (
                abs(old[k] - new[k])
                for k in old
                if isinstance(old[k], float) and isinstance(new.get(k), float)
            ),
            default=0.0,
        )
        print(f"  largest metric difference between the two: {worst:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
