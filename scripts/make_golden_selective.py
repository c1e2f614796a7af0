#!/usr/bin/env python
"""Golden values for relcal.selective: torch-uncertainty's AURC and
scikit-learn's roc_auc_score.

What it computes
----------------
For each generated case (``make_data(seed, n, n_classes, scale, decimals)``:
numpy ``default_rng(seed)``, logits ``scale * normal(n, C)``, float64
softmax, labels drawn from ``softmax(logits / 2.5)`` by the Gumbel-max trick,
so the model is over-confident; ``decimals`` rounds the top-label confidence
to make ties) and for torch-uncertainty's doctest, it writes:

  tu_aurc           ``torch_uncertainty.metrics.classification.risk_coverage
                    .AURC``: ``update(probs, targets)`` then ``compute()``,
                    with float64 tensors and torch's default dtype float64 (its
                    coverage grid ``arange(1, N + 1) / N`` is otherwise
                    float32).  Cases with ties (``decimals``) and the real
                    files feed the metric's ``scores``/``errors`` states
                    directly (the top-label confidence and 1 - correct), the
                    very states ``update`` fills; torch-uncertainty orders
                    ties by ``argsort``, so there the value is one ordering's.
  tu_aurc_float32   the same with float32 probabilities and torch's default
                    dtype (what a user gets); informative only.
  tu_oracle_aurc    ``AURC`` fed scores = correct, errors = 1 - correct: the
                    oracle ranking (all correct first; any order within the
                    correct and the wrong samples gives the same curve).
  sklearn_auroc     ``sklearn.metrics.roc_auc_score(correct, confidence)``
                    (float64 confidence).
  n_distinct        number of distinct confidences (== n: no ties).

Real files: the ``*_toplabel.csv`` of ``../shared/real`` (or
``$RELCAL_SHARED_REAL``), ``correct = true_label == pred_label``, confidence
parsed as float64; their confidences have many ties (float32 values near 1).

Data are not stored: the test regenerates them with ``make_data`` from this
file (numpy only at import time).

How to run (from the repository root, in an environment with torch,
torchmetrics, torch-uncertainty, scikit-learn; torch-uncertainty's package
``__init__`` needs lightning, so its ``risk_coverage.py`` module is loaded by
file path, which needs only torch, torchmetrics and matplotlib):

    /work/refenv/bin/python scripts/make_golden_selective.py [--check]

``--check`` compares a fresh run with the stored file instead of writing it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "golden" / "selective.json"
SHARED_REAL = Path(
    os.environ.get("RELCAL_SHARED_REAL", REPO.parent / "shared" / "real")
)
FORMAT = 1
LABEL_TEMPERATURE = 2.5

# (name, seed, n, n_classes, scale, decimals or None)
CASES: list[tuple[str, int, int, int, float, int | None]] = [
    ("gen-50000-c10", 20261201, 50_000, 10, 3.0, None),
    ("gen-1000-c10", 7, 1_000, 10, 3.0, None),
    ("gen-1000-c2", 11, 1_000, 2, 2.0, None),
    ("gen-5000-c100", 13, 5_000, 100, 4.0, None),
    ("ties-3000-c10-d2", 5, 3_000, 10, 3.0, 2),
    ("ties-2000-c10-d1", 6, 2_000, 10, 1.0, 1),
]

DOCTEST = {
    "probs": [[0.7, 0.3], [0.6, 0.4], [0.8, 0.2]],
    "targets": [0, 1, 0],
    "published": 0.0833,
}

REAL_FILES = [
    "resnet110_cifar10_test_toplabel.csv",
    "resnet110_cifar100_test_toplabel.csv",
    "densenet40_cifar10_test_toplabel.csv",
    "densenet40_cifar100_test_toplabel.csv",
    "resnet50_cub200_test_toplabel.csv",
    "resnext101_32x8d_imagenet_val_toplabel.csv",
    "resnet101_imagenet_val_toplabel.csv",
]


# ------------------------------------------------------- data (numpy only)


def make_data(
    seed: int, n: int, n_classes: int, scale: float, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(probs (n, C) float64, labels (n,) int64, confidence (n,) float64)``.

    ``confidence`` is the top-label probability, rounded to ``decimals`` when
    given (then ties are common).
    """
    rng = np.random.default_rng(seed)
    logits = scale * rng.standard_normal((n, n_classes))
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    gumbel = -np.log(-np.log(rng.random((n, n_classes))))
    labels = np.argmax(logits / LABEL_TEMPERATURE + gumbel, axis=1)
    confidence = probs.max(axis=1)
    if decimals is not None:
        confidence = np.round(confidence, decimals)
    return probs, labels, confidence


def correct_of(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.argmax(probs, axis=1) == labels


def read_toplabel_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence float64, correct bool)`` of a ``true_label,pred_label,
    confidence`` file."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    conf = np.array([float(r["confidence"]) for r in rows])
    correct = np.array([r["true_label"] == r["pred_label"] for r in rows])
    return conf, correct


# --------------------------------------------------------------- references


def load_tu_risk_coverage() -> ModuleType:
    """torch-uncertainty's ``risk_coverage.py``, loaded by path."""
    spec = importlib.util.find_spec("torch_uncertainty")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torch_uncertainty is not installed")
    path = (
        Path(list(spec.submodule_search_locations)[0])
        / "metrics"
        / "classification"
        / "risk_coverage.py"
    )
    mspec = importlib.util.spec_from_file_location("tu_risk_coverage", path)
    assert mspec is not None and mspec.loader is not None
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module


def tu_aurc_of_probs(
    tu: ModuleType, probs: np.ndarray, labels: np.ndarray, float32: bool = False
) -> float:
    """``AURC().update(probs, targets); compute()`` as a user calls it."""
    import torch

    old = torch.get_default_dtype()
    try:
        if float32:
            p = torch.tensor(probs, dtype=torch.float32)
        else:
            torch.set_default_dtype(torch.float64)
            p = torch.tensor(probs, dtype=torch.float64)
        m = tu.AURC()
        m.update(p, torch.tensor(labels, dtype=torch.int64))
        return float(m.compute().reshape(-1)[0])
    finally:
        torch.set_default_dtype(old)


def tu_aurc_of_states(tu: ModuleType, scores: np.ndarray, errors: np.ndarray) -> float:
    """``AURC.compute()`` on the states ``update`` fills (scores = top-label
    confidence, errors = 1.0 for a wrong prediction), float64 throughout."""
    import torch

    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        m = tu.AURC()
        m.scores.append(torch.tensor(scores, dtype=torch.float64))
        m.errors.append(torch.tensor(errors, dtype=torch.float64))
        with warnings.catch_warnings():  # "compute called before update"
            warnings.simplefilter("ignore", UserWarning)
            return float(m.compute().reshape(-1)[0])
    finally:
        torch.set_default_dtype(old)


def sklearn_auroc(confidence: np.ndarray, correct: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(correct.astype(np.int64), confidence))


def references(
    tu: ModuleType,
    confidence: np.ndarray,
    correct: np.ndarray,
    probs: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    errors = (~correct).astype(np.float64)
    out: dict[str, Any] = {
        "n": int(confidence.size),
        "n_distinct": int(np.unique(confidence).size),
        "accuracy": float(correct.mean()),
    }
    if probs is not None and labels is not None:
        out["tu_aurc"] = tu_aurc_of_probs(tu, probs, labels)
        out["tu_aurc_float32"] = tu_aurc_of_probs(tu, probs, labels, float32=True)
    else:
        out["tu_aurc"] = tu_aurc_of_states(tu, confidence, errors)
    out["tu_oracle_aurc"] = tu_aurc_of_states(tu, correct.astype(np.float64), errors)
    out["sklearn_auroc"] = sklearn_auroc(confidence, correct)
    return out


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "torchmetrics", "torch-uncertainty", "scikit-learn"):
        out[dist] = importlib.metadata.version(dist)
    return out


def build() -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    tu = load_tu_risk_coverage()
    tu_file = Path(tu.__file__ or "")
    doc_probs = np.array(DOCTEST["probs"])
    doc_labels = np.array(DOCTEST["targets"])
    doc = references(
        tu,
        doc_probs.max(axis=1),
        correct_of(doc_probs, doc_labels),
        doc_probs,
        doc_labels,
    )
    cases = []
    for name, seed, n, n_classes, scale, decimals in CASES:
        probs, labels, conf = make_data(seed, n, n_classes, scale, decimals)
        correct = correct_of(probs, labels)
        if decimals is None:
            ref = references(tu, conf, correct, probs, labels)
            assert ref["n_distinct"] == n, f"{name}: unexpected ties"
        else:
            ref = references(tu, conf, correct)
        cases.append(
            {
                "name": name,
                "params": {
                    "seed": seed,
                    "n": n,
                    "n_classes": n_classes,
                    "scale": scale,
                    "decimals": decimals,
                },
                **ref,
            }
        )
    real = []
    for fname in REAL_FILES:
        path = SHARED_REAL / fname
        if not path.is_file():
            print(f"skipping missing real file {path}", file=sys.stderr)
            continue
        conf, correct = read_toplabel_csv(path)
        real.append({"file": fname, **references(tu, conf, correct)})
    return {
        "format": FORMAT,
        "generated_by": "scripts/make_golden_selective.py",
        "versions": versions(),
        "torch_threads": 1,
        "tu_source": {
            "file": "torch_uncertainty/metrics/classification/risk_coverage.py",
            "sha256": hashlib.sha256(tu_file.read_bytes()).hexdigest(),
            "upstream_commit_read": "7df97be235f3b9c29aeac7e7e17fd8ed5e4e11a9",
        },
        "conventions": {
            "tu_aurc": (
                "errors sorted by argsort(confidence, descending=True); "
                "r_k = cumsum(errors)[k] / k, k = 1..N; "
                "trapezoid(x=k/N, y=r_k) / (1 - 1/N); NaN for N < 2"
            ),
            "sklearn_auroc": "roc_auc_score(correct, confidence)",
            "data": (
                "make_data(seed, n, n_classes, scale, decimals): default_rng(seed); "
                "logits = scale * standard_normal((n, C)); probs = softmax(logits) "
                "float64; labels = argmax(logits / 2.5 + Gumbel) with "
                "Gumbel = -log(-log(random((n, C)))); confidence = max prob, "
                "rounded to decimals when given; correct = argmax(probs) == label"
            ),
        },
        "doctest": {**DOCTEST, **doc},
        "cases": cases,
        "real": real,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    data = build()
    if args.check:
        stored = json.loads(OUT.read_text())
        bad = []
        for key in ("doctest", "cases", "real"):
            if json.dumps(stored[key], sort_keys=True) != json.dumps(
                data[key], sort_keys=True
            ):
                bad.append(key)
        print("differs: " + ", ".join(bad) if bad else "same")
        return 1 if bad else 0
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
