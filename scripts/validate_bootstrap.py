#!/usr/bin/env python
"""Re-validate the bootstrap of ``relcal check --confidence`` on known truths.

Data (``relcal.synth.make_toplabel``): a binary model whose top-label
confidence X has density 4 (2x - 1) on [0.5, 1] and is correct with
probability g(X) = X - gap(X); its population accuracy, NLL, Brier score and
15-bin ECE are integrals computed here by quadrature (to ~1e-10).  Per sample,
NLL = -log X when correct, -log(1 - X) when not; Brier = 2 (1 - X)^2 or 2 X^2
(the two-class score).

Studies, each over seeded independent draws at the default settings (1000
replicates, 15 equal-width bins, the gate's 95% two-sided interval; ECE
bias-corrected):

  coverage   share of draws whose interval holds the true accuracy, NLL,
             Brier and ECE (nominal 0.95), samples as units
  gate       fail rate of --max-ece 0.05 for a calibrated model (true ECE 0)
             and for a model exactly at the limit (true ECE 0.05), and of
             --min-accuracy at the true accuracy (nominal at most 0.025)
  images     segmentation-like data: images of many pixels, each image's
             pixels correct with probability g(X) +/- tau (one sign per
             image), so pixels of an image are correlated; coverage with
             images as units (relcal now) and with pixels as units (relcal
             0.1.0)
  units      the same with 3, 5, 10, 20 images of 200 pixels, images as
             units: how many images the cluster bootstrap needs
             (relcal.gate.MIN_IMAGES)

Run:  python scripts/validate_bootstrap.py [--draws 400] [--study all]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relcal.binning import assign_bins, uniform_edges  # noqa: E402
from relcal.bootstrap import Samples, bootstrap, interval  # noqa: E402
from relcal.gate import Settings, check, make_threshold, measured_from_reduced  # noqa: E402
from relcal.metrics import summarize  # noqa: E402
from relcal.reduce import reduce_toplabel  # noqa: E402
from relcal.synth import make_toplabel, population_ece, toplabel_gap  # noqa: E402

METRICS = ("accuracy", "nll", "brier", "ece")
CONFIDENCE = 0.95
N_REPLICATES = 1000
N_BINS = 15


def integral(fn: Callable[[np.ndarray], np.ndarray]) -> float:
    """The integral of ``fn(x) * 4 (2x - 1)`` over [0.5, 1]: Gauss-Legendre on
    pieces graded towards 1, where -log(1 - x) is singular."""
    ends = np.r_[0.5, 1.0 - 0.5 ** np.arange(2, 41)]  # [1 - 2**-40, 1]: ~1e-10
    nodes, weights = np.polynomial.legendre.leggauss(30)
    total = 0.0
    for lo, hi in zip(ends[:-1], ends[1:], strict=True):
        x = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
        total += 0.5 * (hi - lo) * float(np.sum(weights * fn(x) * 4 * (2 * x - 1)))
    return total


def truth(amplitude: float) -> dict[str, float]:
    """Population accuracy, NLL, Brier and 15-bin ECE of the model."""

    def g(x: np.ndarray) -> np.ndarray:
        return x - toplabel_gap(x, amplitude)

    return {
        "accuracy": integral(g),
        "nll": integral(lambda x: -g(x) * np.log(x) - (1 - g(x)) * np.log1p(-x)),
        "brier": integral(lambda x: 2 * g(x) * (1 - x) ** 2 + 2 * (1 - g(x)) * x**2),
        "ece": population_ece(amplitude, n_bins=N_BINS),
    }


def samples(conf: np.ndarray, correct: np.ndarray, unit: np.ndarray | None) -> Samples:
    right = correct.astype(np.float64)
    nll = np.where(correct, -np.log(conf), -np.log1p(-conf))
    brier = np.where(correct, 2 * (1 - conf) ** 2, 2 * conf**2)
    bins = assign_bins(conf, uniform_edges(N_BINS))
    return Samples(bins, conf, right, nll, brier, N_BINS, unit)


def point(s: Samples) -> dict[str, float]:
    count = np.bincount(s.bin_index, minlength=N_BINS)
    gap = np.bincount(s.bin_index, weights=s.confidence - s.correct, minlength=N_BINS)
    assert s.nll is not None and s.brier is not None and count.sum() == s.n
    return {
        "accuracy": float(s.correct.mean()),
        "nll": float(s.nll.mean()),
        "brier": float(s.brier.mean()),
        "ece": float(np.abs(gap).sum() / s.n),
    }


def covered(s: Samples, true: dict[str, float], seed: int) -> dict[str, bool]:
    """Whether each metric's 95% interval holds its true value."""
    reps = bootstrap([s], n_replicates=N_REPLICATES, seed=seed)[0]
    plug = point(s)
    out = {}
    for m in METRICS:
        iv = interval(plug[m], reps[m], confidence=CONFIDENCE, debias=m == "ece")
        out[m] = iv.low <= true[m] <= iv.high
    return out


def coverage(n: int, amplitude: float, draws: int, seed: int) -> dict[str, float]:
    """Share of ``draws`` draws of ``n`` samples covered, per metric."""
    true = truth(amplitude)
    conf, correct = make_toplabel(n, amplitude=amplitude, draws=draws, seed=seed)
    hits = [covered(samples(conf[d], correct[d], None), true, d) for d in range(draws)]
    return {m: float(np.mean([h[m] for h in hits])) for m in METRICS}


def gate_fail_rate(
    n: int, amplitude: float, check_name: str, limit: float, draws: int, seed: int
) -> float:
    """Share of draws the default 95% gate fails (``relcal.gate.check``)."""
    settings = Settings((make_threshold(check_name, limit),), confidence=CONFIDENCE)
    conf, correct = make_toplabel(n, amplitude=amplitude, draws=draws, seed=seed)
    labels = np.zeros(n, dtype=np.int64)
    fails = 0
    for d in range(draws):
        wrong = (~correct[d]).astype(np.int64)
        red = reduce_toplabel(conf[d], wrong, labels, 2)
        fails += check(
            measured_from_reduced(red, summarize(red), "draw"), settings
        ).exit_code
    return fails / draws


def amplitude_for_ece(ece: float) -> float:
    return ece / population_ece(1.0, n_bins=N_BINS)  # the ECE is linear in it


def image_draw(
    rng: np.random.Generator, images: int, pixels: int, amplitude: float, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and correct of ``images`` x ``pixels``: within an image the
    pixels are correct with probability g(X) + tau or g(X) - tau (one sign
    per image; tau <= amplitude keeps it in [0, 1], and the truth is that
    of the model without tau)."""
    conf = 0.5 + 0.5 * np.sqrt(rng.random((images, pixels)))
    shift = tau * rng.choice([-1.0, 1.0], size=(images, 1))
    p = conf - toplabel_gap(conf, amplitude) + shift
    return conf.ravel(), (rng.random((images, pixels)) < p).ravel()


def image_coverage(
    images: int, pixels: int, amplitude: float, tau: float, draws: int, seed: int
) -> dict[str, dict[str, float]]:
    """Coverage with images as units, and with every pixel its own unit."""
    true = truth(amplitude)
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(images), pixels)
    hits: dict[str, list[dict[str, bool]]] = {"images": [], "pixels": []}
    for d in range(draws):
        conf, correct = image_draw(rng, images, pixels, amplitude, tau)
        hits["images"].append(covered(samples(conf, correct, unit), true, d))
        hits["pixels"].append(covered(samples(conf, correct, None), true, d))
    return {
        k: {m: float(np.mean([h[m] for h in v])) for m in METRICS}
        for k, v in hits.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400, help="draws per case")
    parser.add_argument(
        "--study",
        choices=("coverage", "gate", "images", "units", "all"),
        default="all",
    )
    opts = parser.parse_args()
    draws = opts.draws
    t0 = time.perf_counter()
    print(f"{draws} draws per case; {N_REPLICATES} replicates, {N_BINS} bins, 95%")
    if opts.study in ("coverage", "all"):
        print("coverage (nominal 0.95)      " + "  ".join(f"{m:>8}" for m in METRICS))
        for n, ece in ((500, 0.04), (2000, 0.04), (2000, 0.0), (10000, 0.02)):
            cov = coverage(n, amplitude_for_ece(ece), draws, seed=n + int(ece * 1000))
            label = f"  N={n:<6} true ECE {ece:.3f}"
            print(f"{label:<29}" + "  ".join(f"{cov[m]:8.3f}" for m in METRICS))
    if opts.study in ("gate", "all"):
        print("gate fail rate (95% interval)")
        for n, ece, limit in ((500, 0.0, 0.05), (2000, 0.0, 0.05), (2000, 0.05, 0.05)):
            rate = gate_fail_rate(n, amplitude_for_ece(ece), "max-ece", limit, draws, n)
            print(f"  N={n:<6} true ECE {ece:.3f}, max-ece {limit}: {rate:.3f}")
        acc = truth(0.0)["accuracy"]
        rate = gate_fail_rate(2000, 0.0, "min-accuracy", acc, draws, 5)
        print(f"  N=2000   calibrated, min-accuracy = true {acc:.4f}: {rate:.3f}")
    if opts.study in ("images", "all"):
        amp = amplitude_for_ece(0.04)
        print(
            "images: 40 images x 500 pixels, tau 0.05"
            + " " * 4
            + "  ".join(f"{m:>8}" for m in METRICS)
        )
        cov = image_coverage(40, 500, amp, 0.05, draws, seed=40)
        for unit, c in cov.items():
            print(f"  units = {unit:<36}" + "  ".join(f"{c[m]:8.3f}" for m in METRICS))
    if opts.study in ("units", "all"):
        amp = amplitude_for_ece(0.04)
        head = "  ".join(f"{m:>8}" for m in METRICS)
        print(f"{'images as units, 200 pixels each, tau 0.05':<44}{head}")
        for k in (3, 5, 10, 20):
            c = image_coverage(k, 200, amp, 0.05, draws, seed=100 + k)["images"]
            row = "  ".join(f"{c[m]:8.3f}" for m in METRICS)
            print(f"  {f'{k} images':<42}{row}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
