#!/usr/bin/env python
"""Golden values of relplot's smooth ECE, for relcal.smooth.

What it computes
----------------
For every file of the shared real-data folder and for a few seeded generated
binary datasets, it writes ``relplot.smECE(f, y, return_width=True)`` (smECE
and the bandwidth sigma*) to ``tests/golden/smooth.json``; further
``relplot.smECE_sigma`` at fixed bandwidths (on both sides of sigma = 0.01,
where relplot's grid gets finer) and the deterministic part of one
``relplot.prepare_rel_diagram`` (mesh, main curve, density; no bootstrap).

The data are not stored, only how to rebuild them, and
``tests/test_smooth.py`` rebuilds them with the functions of this file:

- real files (:func:`top_label`): the top-label confidence and whether the
  top label is correct.  ``*.npz`` with ``logits``: float64 softmax of the
  float32 logits (max of ``exp(z - max z) / sum``), correct = ``argmax z ==
  label``; ``*.npz`` with ``probs``: the float32 max probability as float64,
  correct = ``argmax == label``; ``*_toplabel.csv``: the ``confidence``
  column and ``true_label == pred_label``.  Both tools get the same float64
  arrays (relplot computes grid positions in the input's dtype, so float32
  input would move its numbers by ~1e-7).
- generated data (:func:`make_binary`): ``p ~ Beta(a, b)``, ``y ~
  Bernoulli(p)``, forecast ``f = sigmoid(temper * logit p)`` (temper > 1:
  over-confident, < 1: under-confident), optionally rounded to ``decimals``
  (ties and exact 0 and 1), from ``np.random.default_rng(seed)``.

Each real entry also records ``n``, ``sum_f`` and ``sum_y`` of the arrays, so
a test can tell a changed loader from a changed metric.

How to run (from the repository root, in an environment with relplot; the
real folder is ``$RELCAL_SHARED_REAL`` or ``../shared/real``):

    /work/refenv/bin/python scripts/make_golden_smooth.py [--check]

``--check`` compares a fresh run with the stored file instead of writing it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "golden" / "smooth.json"
FORMAT = 1
SHARED_REAL = Path(
    os.environ.get("RELCAL_SHARED_REAL", REPO.parent / "shared" / "real")
)

#: generated datasets: name -> make_binary keyword arguments
GENERATED: dict[str, dict[str, Any]] = {
    "calibrated_n100_s1": dict(seed=1, n=100, temper=1.0, a=2.0, b=2.0),
    "over_n100_s2": dict(seed=2, n=100, temper=2.5, a=2.0, b=2.0),
    "under_n1000_s3": dict(seed=3, n=1000, temper=0.5, a=1.0, b=1.0),
    "over_n1000_s4": dict(seed=4, n=1000, temper=2.0, a=3.0, b=1.5),
    "calibrated_n10000_s5": dict(seed=5, n=10_000, temper=1.0, a=1.0, b=1.0),
    "over_n10000_s6": dict(seed=6, n=10_000, temper=1.5, a=0.8, b=1.2),
    "under_n10000_s7": dict(seed=7, n=10_000, temper=0.7, a=2.0, b=5.0),
    "rounded_n10000_s8": dict(seed=8, n=10_000, temper=1.8, a=0.5, b=0.5, decimals=1),
    "calibrated_n100000_s9": dict(seed=9, n=100_000, temper=1.0, a=2.0, b=2.0),
    "over_n100000_s10": dict(seed=10, n=100_000, temper=1.3, a=1.0, b=1.0),
    "under_n100000_s11": dict(seed=11, n=100_000, temper=0.8, a=5.0, b=1.0),
    # sigma* = 7/1024: relplot's grid has an even number of points (1464)
    "calibrated_n150000_s21": dict(seed=21, n=150_000, temper=1.0, a=2.0, b=2.0),
}
#: fixed-bandwidth cases: (generated dataset, sigma); the grid refines below 0.01
FIXED_SIGMA = [
    ("over_n1000_s4", 0.05),
    ("over_n1000_s4", 0.3),
    ("over_n1000_s4", 0.9),
    ("calibrated_n10000_s5", 0.004),
    ("rounded_n10000_s8", 0.0071),
    ("over_n100000_s10", 0.02),
    # even grids (3334 and 1464 points): relplot's kernel is off-centre
    ("over_n1000_s4", 0.003),
    ("under_n10000_s7", 7 / 1024),
]
DIAGRAM_CASE = "over_n1000_s4"


def make_binary(
    seed: int,
    n: int,
    *,
    temper: float,
    a: float,
    b: float,
    decimals: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded binary forecasts ``f`` (float64) and outcomes ``y`` (0.0/1.0)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=n)
    y = (rng.random(n) < p).astype(np.float64)
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)
    f = 1.0 / (1.0 + np.exp(-temper * logit))
    if decimals is not None:
        f = np.round(f, decimals)
    return f, y


def top_label(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence (float64) and correctness (0.0/1.0) of a real file."""
    if path.suffix == ".csv":
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
        return table[:, 2].copy(), (table[:, 0] == table[:, 1]).astype(np.float64)
    with np.load(path) as data:
        labels = data["labels"]
        if "logits" in data.files:
            z = data["logits"].astype(np.float64)
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            conf = (e / e.sum(axis=1, keepdims=True)).max(axis=1)
            pred = z.argmax(axis=1)
        else:
            probs = data["probs"]
            conf = probs.max(axis=1).astype(np.float64)
            pred = probs.argmax(axis=1)
    return conf, (pred == labels).astype(np.float64)


def real_files(folder: Path = SHARED_REAL) -> list[Path]:
    """The real files smECE is recorded for (every .npz and .csv, by name)."""
    return sorted(
        p for p in folder.iterdir() if p.suffix in (".npz", ".csv") and p.is_file()
    )


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def compute() -> dict[str, Any]:
    import relplot  # noqa: PLC0415 - the reference, needed only here
    import relplot.diagrams  # noqa: PLC0415

    def fit(f: np.ndarray, y: np.ndarray) -> dict[str, float]:
        ce, sigma = relplot.smECE(f, y, return_width=True)
        return {"smece": float(ce), "sigma": float(sigma)}

    real = {}
    for path in real_files():
        f, y = top_label(path)
        real[path.name] = {
            "n": len(f),
            "sum_f": float(f.sum()),
            "sum_y": float(y.sum()),
            **fit(f, y),
        }
        print(f"{path.name}: {real[path.name]}", file=sys.stderr)
    generated = {}
    for name, params in GENERATED.items():
        f, y = make_binary(**params)
        generated[name] = {"params": params, **fit(f, y)}
        print(f"{name}: {generated[name]}", file=sys.stderr)
    fixed = []
    for name, sigma in FIXED_SIGMA:
        f, y = make_binary(**GENERATED[name])
        value = float(relplot.smECE_sigma(f, y, sigma))
        fixed.append({"case": name, "sigma": sigma, "smece": value})
    f, y = make_binary(**GENERATED[DIAGRAM_CASE])
    diagram = relplot.diagrams.prepare_rel_diagram(
        f, y, plot_confidence_band=False, report_CE_std=False
    )
    return {
        "format": FORMAT,
        "what": "relplot.smECE(f, y, return_width=True) and smECE_sigma; "
        "see scripts/make_golden_smooth.py",
        "versions": {
            "relplot": _version("relplot"),
            "numpy": np.__version__,
            "scipy": _version("scipy"),
            "python": platform.python_version(),
        },
        "real": real,
        "generated": generated,
        "fixed_sigma": fixed,
        "diagram": {
            "case": DIAGRAM_CASE,
            "note": "prepare_rel_diagram(f, y, plot_confidence_band=False, "
            "report_CE_std=False): the plain kernel smoother, no bagging",
            "sigma": float(diagram["sigma"]),
            "ce": float(diagram["ce"]),
            "mesh": diagram["mesh"].tolist(),
            "mu": diagram["mu"].tolist(),
            "density": diagram["density"].tolist(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the stored file"
    )
    args = parser.parse_args(argv)
    if not SHARED_REAL.is_dir():
        print(f"real data folder {SHARED_REAL} not found", file=sys.stderr)
        return 2
    fresh = compute()
    if args.check:
        stored = json.loads(OUT.read_text())
        fresh.pop("versions")
        stored.pop("versions")
        same = json.dumps(fresh, sort_keys=True) == json.dumps(stored, sort_keys=True)
        print("same as stored" if same else "DIFFERS from stored")
        return 0 if same else 1
    OUT.write_text(json.dumps(fresh, indent=1) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
