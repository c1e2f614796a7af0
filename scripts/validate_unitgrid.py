#!/usr/bin/env python
"""Coverage of the unbinned metrics' 95% intervals on segmentation-like data.

Images whose pixels share a per-image calibration offset (pixels are not
independent; images are), as in tests/test_unitgrid.py.  Per draw, the 95%
interval of smooth ECE, AURC and AUROC with whole images as units (relcal's
rule for segmentation maps) and, for comparison, with every pixel its own
unit (what a pixel-level bootstrap would give).  The truth is each metric on
one large draw of --truth-images images.

Run:  python scripts/validate_unitgrid.py [--draws 200] [--images 30] [--pixels 200]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_unitgrid import _clustered  # noqa: E402

import relcal  # noqa: E402

NAMES = ("smooth_ece", "aurc", "auroc")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--pixels", type=int, default=200)
    ap.add_argument("--truth-images", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    opts = ap.parse_args()
    rng = np.random.default_rng(opts.seed)
    z, y = _clustered(rng, opts.truth_images, opts.pixels)
    truth = relcal.evaluate(z, y, values=True)
    want = {n: truth.metric(n) for n in NAMES}
    hits = {("images", n): 0 for n in NAMES} | {("pixels", n): 0 for n in NAMES}
    width = {k: 0.0 for k in hits}
    for d in range(opts.draws):
        z, y = _clustered(rng, opts.images, opts.pixels)
        seg = relcal.evaluate(z, y, ci=0.95, seed=d)
        rows = relcal.evaluate(
            np.moveaxis(z, 1, -1).reshape(-1, 3), y.reshape(-1), ci=0.95, seed=d
        )
        for units, r in (("images", seg), ("pixels", rows)):
            for n in NAMES:
                iv = r.intervals[n]
                hits[units, n] += iv.low <= want[n] <= iv.high
                width[units, n] += (iv.high - iv.low) / opts.draws
    print(
        f"{opts.draws} draws of {opts.images} images x {opts.pixels} pixels;"
        f" truth from {opts.truth_images} images: "
        + ", ".join(f"{n} {v:.4f}" for n, v in want.items())
    )
    print("| units | " + " | ".join(NAMES) + " |")
    print("|---|" + "---|" * len(NAMES))
    for units in ("images", "pixels"):
        cells = [
            f"{hits[units, n] / opts.draws:.3f} (width {width[units, n]:.4f})"
            for n in NAMES
        ]
        print(f"| {units} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
