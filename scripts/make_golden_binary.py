#!/usr/bin/env python
"""Golden values of torchmetrics' binary calibration error, for relcal's
positive-class ECE / RMS-CE / MCE.

What it computes
----------------
For each case (data from ``relcal.synth.make_binary``: P(class 1) in float32 or
float64, labels 0/1; several seeds, sizes and bin counts, some with values
exactly on bin edges, on their neighbours, and exactly 0.0 and 1.0) it writes:

  torchmetrics         binary_calibration_error(torch.tensor(p1),
                       torch.tensor(labels), n_bins=n, norm="l1" | "l2" |
                       "max"): what a user gets (float32 sums for float32
                       input; float64 input is computed in float64, the binary
                       path has no ``.float()`` cast).
  torchmetrics_float64 torchmetrics' convention recomputed in float64 numpy on
                       the same values: edges torch.linspace(0, 1, n + 1) in
                       the input's dtype, bin = bucketize(p, edges, right=True)
                       - 1, i.e. [lo, hi) bins and p == 1.0 alone in an extra
                       (n+1)-th bin; empty bins count as 0 (nan_to_num), also
                       in the max; l2 = sqrt(sum_b prop_b (acc_b - conf_b)^2).
  relcal_rule_float64  relcal's rule in float64 numpy: (lo, hi] bins on
                       np.linspace(0, 1, n + 1), 0 in the first bin and 1.0 in
                       the last (searchsorted(edges[1:-1], p, side="left")).
  moved                rows the two rules bin differently, as
                       [relcal_bin, torchmetrics_bin, count].

Where ``moved`` is empty the two conventions are the same numbers, and relcal's
``positive_class_ece`` / ``_rms_ce`` / ``_mce`` must equal
``torchmetrics_float64`` to 1e-12 (``tests/test_positive_class_golden.py``).

How to run (from the repository root, in an environment with torch and
torchmetrics; torch runs with one thread):

    /path/to/venv/bin/python scripts/make_golden_binary.py [--check]

With netcal, relplot and uncertainty-calibration installed too, it also records
what they report on two of the cases ("other_tools"): each of them measures
the positive-class error of 1-D input.

``--check`` compares a fresh run with the stored file instead of writing it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "golden" / "binary_calibration.json"
FORMAT = 1
NORMS = (("ece", "l1"), ("rms", "l2"), ("mce", "max"))

# (name, n_samples, seed, n_bins, recipe keywords of make_binary)
CASES: list[tuple[str, int, int, int, dict[str, Any]]] = [
    ("smooth-200-s1-b15", 200, 1, 15, {}),
    ("smooth-2000-s2-b15", 2000, 2, 15, {}),
    ("smooth-20000-s3-b15", 20000, 3, 15, {}),
    ("smooth-2000-s4-b10", 2000, 4, 10, {}),
    ("smooth-5000-s5-b7", 5000, 5, 7, {"power": 0.8}),
    ("smooth-5000-s6-b1", 5000, 6, 1, {}),
    ("smooth-10000-s10-b15", 10000, 10, 15, {}),
    ("smooth-10000-s13-b20", 10000, 13, 20, {"power": 2.0}),
    ("smooth-5000-s7-b20-f64", 5000, 7, 20, {"dtype": "float64"}),
    ("smooth-50000-s8-b15-f64", 50000, 8, 15, {"dtype": "float64"}),
    (
        "edges-2000-s11-b4",
        2000,
        11,
        4,
        {"edge_bins": [4], "edge_fraction": 0.3, "ends_fraction": 0.05},
    ),
    (
        "edges-2000-s12-b8",
        2000,
        12,
        8,
        {"edge_bins": [8], "edge_fraction": 0.3, "ends_fraction": 0.05},
    ),
    (
        "edges-5000-s13-b15",
        5000,
        13,
        15,
        {"edge_bins": [15], "edge_fraction": 0.3, "ends_fraction": 0.05},
    ),
    (
        "edges-5000-s14-b10",
        5000,
        14,
        10,
        {"edge_bins": [10, 5], "edge_fraction": 0.2, "ends_fraction": 0.02},
    ),
    (
        "edges-3000-s15-b15-f64",
        3000,
        15,
        15,
        {
            "edge_bins": [15, 5],
            "edge_fraction": 0.3,
            "ends_fraction": 0.05,
            "dtype": "float64",
        },
    ),
    ("ends-1000-s16-b15", 1000, 16, 15, {"ends_fraction": 0.3}),
    ("ends-only-ones-s17-b15", 500, 17, 15, {"ends_fraction": 1.0}),
]


def load_synth() -> Any:
    sys.path.insert(0, str(REPO))
    try:
        import relcal.synth as synth

        return synth
    finally:
        sys.path.remove(str(REPO))


def make_case(synth: Any, n: int, seed: int, recipe: dict[str, Any]) -> tuple:
    kw = dict(recipe)
    kw["dtype"] = np.dtype(kw.get("dtype", "float32")).type
    if "edge_bins" in kw:
        kw["edge_bins"] = tuple(kw["edge_bins"])
    return synth.make_binary(n, seed=seed, **kw)


def fl(x: Any) -> float:
    v = float(x)
    if not np.isfinite(v):
        raise ValueError(f"non-finite value {v!r}")
    return v


def errors(count: np.ndarray, hits: np.ndarray, sump: np.ndarray, empty_as_zero: bool):
    """ECE, RMS-CE, MCE from per-bin sums."""
    n = count.sum()
    ne = count > 0
    gap = np.zeros(len(count))
    gap[ne] = np.abs(hits[ne] - sump[ne]) / count[ne]
    w = count / n
    mce = gap.max() if empty_as_zero else gap[ne].max()
    return {
        "ece": fl(np.sum(w * gap)),
        "rms": fl(np.sqrt(np.sum(w * gap * gap))),
        "mce": fl(mce),
    }


def binned(p: np.ndarray, y: np.ndarray, idx: np.ndarray, k: int, empty_zero: bool):
    """The three errors and the counts of k bins, given each row's bin."""
    p64 = p.astype(np.float64)
    count = np.bincount(idx, minlength=k)
    hits = np.bincount(idx, weights=y.astype(np.float64), minlength=k)
    sump = np.bincount(idx, weights=p64, minlength=k)
    out = errors(count, hits, sump, empty_as_zero=empty_zero)
    out["count"] = [int(c) for c in count]
    return out, idx


def relcal_rule(p: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[dict, np.ndarray]:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], p.astype(np.float64), side="left")
    return binned(p, y, idx, n_bins, empty_zero=False)


def torchmetrics_rule(
    p: np.ndarray, y: np.ndarray, edges: np.ndarray
) -> tuple[dict, np.ndarray]:
    """torchmetrics' _binning_bucketize and _ce_compute, in float64 numpy:
    bucketize(right=True) - 1 over n_bins + 1 accumulators."""
    idx = np.searchsorted(edges, p.astype(np.float64), side="right") - 1
    return binned(p, y, idx, len(edges), empty_zero=True)


def run_torchmetrics(p: np.ndarray, y: np.ndarray, n_bins: int) -> dict:
    import torch
    from torchmetrics.functional.classification import binary_calibration_error

    pt, yt = torch.tensor(p), torch.tensor(y)
    return {
        key: fl(binary_calibration_error(pt, yt, n_bins=n_bins, norm=norm))
        for key, norm in NORMS
    }


def moves(ours: np.ndarray, theirs: np.ndarray) -> list[list[int]]:
    diff = ours != theirs
    pairs, counts = np.unique(
        np.stack([ours[diff], theirs[diff]], axis=1), axis=0, return_counts=True
    )
    return [[int(a), int(b), int(c)] for (a, b), c in zip(pairs, counts, strict=True)]


def one_case(synth: Any, name: str, n: int, seed: int, n_bins: int, recipe: dict):
    import torch

    p, y = make_case(synth, n, seed, recipe)
    edges_t = torch.linspace(0, 1, n_bins + 1, dtype=torch.tensor(p).dtype)
    edges = edges_t.numpy().astype(np.float64)
    own, own_idx = relcal_rule(p, y, n_bins)
    tm64, tm_idx = torchmetrics_rule(p, y, edges)
    tm = run_torchmetrics(p, y, n_bins)
    on_edges = np.isin(p.astype(np.float64), np.linspace(0, 1, n_bins + 1))
    return {
        "name": name,
        "recipe": {
            "function": "relcal.synth.make_binary",
            "n_samples": n,
            "seed": seed,
            **recipe,
        },
        "digest": synth.array_digest(p, y),
        "dtype": str(p.dtype),
        "n_bins": n_bins,
        "n_exactly_0": int((p == 0).sum()),
        "n_exactly_1": int((p == 1).sum()),
        "n_on_float64_edges": int(on_edges.sum()),
        "torchmetrics_edges": [fl(e) for e in edges],
        "relcal_rule_float64": own,
        "torchmetrics_float64": tm64,
        "torchmetrics": tm,
        "moved": moves(own_idx, tm_idx),
        "torchmetrics_minus_float64": {k: fl(tm[k] - tm64[k]) for k in tm},
        "torchmetrics_float64_minus_relcal": {
            k: fl(tm64[k] - own[k]) for k in ("ece", "rms", "mce")
        },
    }


OTHER_CASES = ("smooth-10000-s10-b15", "smooth-5000-s7-b20-f64")


def run_others(synth: Any, name: str, n: int, seed: int, n_bins: int, recipe: dict):
    """What netcal, relplot and uncertainty-calibration report on the same
    P(class 1) (1-D input): each is a positive-class error."""
    import calibration  # uncertainty-calibration
    import relplot
    import relplot.metrics
    from netcal.metrics import ECE

    p, y = make_case(synth, n, seed, recipe)
    two = np.stack([1 - p, p], axis=1)
    return {
        "name": name,
        "netcal_ECE_1d": fl(ECE(bins=n_bins).measure(p, y)),
        "netcal_ECE_2col": fl(ECE(bins=n_bins).measure(two, y)),
        "relplot_binnedECE": fl(relplot.metrics.binnedECE(p, y, nbins=n_bins)),
        "relplot_smECE": fl(relplot.smECE(p.astype(np.float64), y)),
        "uncertainty_calibration_get_ece": fl(
            calibration.get_ece(p, y, num_bins=n_bins)
        ),
        "uncertainty_calibration_default": fl(calibration.get_calibration_error(p, y)),
        "uncertainty_calibration_l1_plugin": fl(
            calibration.get_calibration_error(p, y, p=1, debias=False)
        ),
        "calls": {
            "netcal_ECE_1d": "netcal.metrics.ECE(bins=n).measure(p1, labels)",
            "netcal_ECE_2col": "ECE(bins=n).measure(stack([1 - p1, p1], 1), labels)",
            "relplot_binnedECE": "relplot.metrics.binnedECE(p1, labels, nbins=n)",
            "relplot_smECE": "relplot.smECE(p1 as float64, labels): smoothed",
            "uncertainty_calibration_get_ece": "calibration.get_ece(p1, labels, "
            "num_bins=n): L1, equal-width bins (lo, hi]",
            "uncertainty_calibration_default": "calibration.get_calibration_error("
            "p1, labels): L2, debiased, its own equal-mass bins (15)",
            "uncertainty_calibration_l1_plugin": "get_calibration_error(p1, "
            "labels, p=1, debias=False): L1, its own equal-mass bins",
        },
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in (
        "numpy",
        "torch",
        "torchmetrics",
        "netcal",
        "relplot",
        "uncertainty-calibration",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def build() -> dict:
    import torch

    torch.set_num_threads(1)
    synth = load_synth()
    cases = [one_case(synth, *c) for c in CASES]
    others = None
    if all(importlib.util.find_spec(m) for m in ("netcal", "relplot", "calibration")):
        others = [run_others(synth, *c) for c in CASES if c[0] in OTHER_CASES]
    return {
        "format": FORMAT,
        "generated_by": "scripts/make_golden_binary.py",
        "versions": versions(),
        "torch_threads": 1,
        "conventions": {
            "torchmetrics": "binary_calibration_error(preds, target): preds binned "
            "as given (sigmoid only if some value is outside [0, 1]) against "
            "target: positive-class; edges torch.linspace(0, 1, n + 1) in the "
            "input dtype; bucketize(right=True) - 1: [lo, hi) bins and p == 1.0 "
            "in an extra (n+1)-th bin; scatter_add sums in the input dtype; empty "
            "bins 0 (nan_to_num), counted in max; l2 = sqrt(sum prop (acc - "
            "conf)^2), returned as tensor(0) when the sum is 0",
            "relcal": "(lo, hi] bins on np.linspace(0, 1, n + 1), 0 in the first "
            "bin, 1.0 in the last; float64 sums; empty bins carry no weight and "
            "are left out of the max",
        },
        "cases": cases,
        "other_tools": others,
    }


def summary(ref: dict) -> str:
    lines = []
    for c in ref["cases"]:
        d = c["torchmetrics_minus_float64"]
        e = c["torchmetrics_float64_minus_relcal"]
        lines.append(
            f"{c['name']:26s} moved {sum(m[2] for m in c['moved']):5d} | tm - tm64 "
            f"{d['ece']:+.1e} {d['rms']:+.1e} {d['mce']:+.1e} | tm64 - relcal "
            f"{e['ece']:+.1e} {e['rms']:+.1e} {e['mce']:+.1e}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the libraries' deprecation warnings
        ref = build()
    text = json.dumps(ref, indent=1, allow_nan=False) + "\n"
    print(summary(ref), file=sys.stderr)
    if a.check:
        # make_golden's comparison: floats within 1e-12 relative agree, and
        # torch-derived values may move with the CPU (its float32 kernels)
        sys.path.insert(0, str(REPO / "scripts"))
        from make_golden import compare

        hard, machine = compare(json.loads(a.out.read_text()), ref)
        for p, was, now in machine:
            print(f"  machine-dependent (torch): {p}: {was} -> {now}", file=sys.stderr)
        for p, was, now in hard:
            print(f"  DIFFERS: {p}: {was} -> {now}", file=sys.stderr)
        print(f"{a.out}: {'DIFFERS' if hard else 'agrees'}", file=sys.stderr)
        return 1 if hard else 0
    a.out.write_text(text)
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
