"""relcal's positive-class errors against torchmetrics' binary_calibration_error.

``tests/golden/binary_calibration.json`` is written by
``scripts/make_golden_binary.py`` (run it where torch and torchmetrics are
installed).  For every case it holds torchmetrics' output, torchmetrics'
convention recomputed in float64 numpy, relcal's rule in float64 numpy, and the
rows the two rules bin differently.  The tests here need neither torch nor
torchmetrics (the last one runs torchmetrics itself, and is skipped without it).

The two conventions differ in the bin rule only: torchmetrics bins ``[lo, hi)``
on ``torch.linspace`` edges (in the input's dtype) and puts P(class 1) = 1.0 in
an extra bin; relcal bins ``(lo, hi]`` on ``np.linspace`` edges, 1.0 in the last
bin.  Where no row moves, the numbers are the same.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import relcal
from relcal.synth import array_digest, make_binary

GOLDEN = Path(__file__).parent / "golden" / "binary_calibration.json"
NAMES = {"ece": "positive_class_ece", "rms": "positive_class_rms_ce"}
NAMES["mce"] = "positive_class_mce"
# torchmetrics sums float32 input in float32: measured at most 3.3e-7 from its
# convention in float64 on these cases (make_golden_binary.py prints them)
FLOAT32_TOL = 1e-6


@cache
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def cases() -> list[dict[str, Any]]:
    return golden()["cases"]


def ids() -> list[str]:
    return [c["name"] for c in cases()]


@cache
def data(name: str) -> tuple[np.ndarray, np.ndarray]:
    case = next(c for c in cases() if c["name"] == name)
    r = dict(case["recipe"])
    assert r.pop("function") == "relcal.synth.make_binary"
    n, seed = r.pop("n_samples"), r.pop("seed")
    r["dtype"] = np.dtype(r.get("dtype", "float32")).type
    if "edge_bins" in r:
        r["edge_bins"] = tuple(r["edge_bins"])
    p1, y = make_binary(n, seed=seed, **r)
    assert array_digest(p1, y) == case["digest"], (
        f"{name}: relcal.synth.make_binary no longer makes the golden data; "
        "rerun scripts/make_golden_binary.py"
    )
    return p1, y


def measured(case: dict[str, Any]) -> dict[str, float]:
    p1, y = data(case["name"])
    r = relcal.evaluate(p1, y, n_bins=case["n_bins"])
    return {k: getattr(r, name) for k, name in NAMES.items()}


def torchmetrics_rule(p1: np.ndarray, y: np.ndarray, edges: np.ndarray) -> dict:
    """torchmetrics' rule, re-implemented: bucketize(right=True) - 1 over the
    n + 1 edges ([lo, hi), 1.0 alone in bin n), empty bins 0 also in the max."""
    p = p1.astype(np.float64)
    idx = np.searchsorted(edges, p, side="right") - 1
    k = len(edges)
    count = np.bincount(idx, minlength=k)
    hits = np.bincount(idx, weights=y.astype(np.float64), minlength=k)
    sump = np.bincount(idx, weights=p, minlength=k)
    gap = np.zeros(k)
    ne = count > 0
    gap[ne] = np.abs(hits[ne] - sump[ne]) / count[ne]
    w = count / count.sum()
    return {
        "ece": float(np.sum(w * gap)),
        "rms": float(np.sqrt(np.sum(w * gap * gap))),
        "mce": float(gap.max()),
        "count": count.tolist(),
    }


@pytest.mark.parametrize("case", cases(), ids=ids())
def test_relcal_equals_its_rule_in_float64(case: dict[str, Any]) -> None:
    got = measured(case)
    own = case["relcal_rule_float64"]
    for key in NAMES:
        assert got[key] == pytest.approx(own[key], abs=1e-12), key
    p1, y = data(case["name"])
    table = relcal.positive_class_table(p1, y, n_bins=case["n_bins"])
    assert table.count.tolist() == own["count"]


@pytest.mark.parametrize("case", cases(), ids=ids())
def test_torchmetrics_convention_reproduced(case: dict[str, Any]) -> None:
    """The golden float64 recomputation is torchmetrics' rule, and torchmetrics'
    own output is it up to float32 sums (exact for float64 input)."""
    p1, y = data(case["name"])
    rule = torchmetrics_rule(p1, y, np.array(case["torchmetrics_edges"]))
    tm64, tm = case["torchmetrics_float64"], case["torchmetrics"]
    assert rule["count"] == tm64["count"]
    tol = FLOAT32_TOL if case["dtype"] == "float32" else 1e-12
    for key in NAMES:
        assert rule[key] == pytest.approx(tm64[key], abs=1e-12), key
        assert tm[key] == pytest.approx(tm64[key], abs=tol), key


SAME_BINS = [c for c in cases() if not c["moved"]]


@pytest.mark.parametrize("case", SAME_BINS, ids=[c["name"] for c in SAME_BINS])
def test_relcal_equals_torchmetrics_where_no_row_moves(case: dict[str, Any]) -> None:
    got = measured(case)
    tm64, tm = case["torchmetrics_float64"], case["torchmetrics"]
    tol = FLOAT32_TOL if case["dtype"] == "float32" else 1e-12
    for key in NAMES:
        assert got[key] == pytest.approx(tm64[key], abs=1e-12), key
        assert got[key] == pytest.approx(tm[key], abs=tol), key


@pytest.mark.parametrize("case", cases(), ids=ids())
def test_moved_rows_are_the_rule_difference(case: dict[str, Any]) -> None:
    """Rows the rules bin differently are on an edge (or next to a float32
    edge of torch.linspace) or exactly 1.0; moving them is the whole
    difference: with relcal's bins, torchmetrics' formula gives relcal's value."""
    p1, y = data(case["name"])
    n_bins = case["n_bins"]
    moved = sum(m[2] for m in case["moved"])
    ours = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p1.astype(float))
    theirs = np.searchsorted(case["torchmetrics_edges"], p1.astype(float), "right") - 1
    diff = ours != theirs
    assert int(diff.sum()) == moved
    ones = p1[diff] == 1.0
    assert (theirs[diff][ones] == n_bins).all()  # 1.0: torchmetrics' extra bin
    # the others sit on (or within an ulp of) an edge
    d = np.abs(
        np.subtract.outer(p1[diff][~ones].astype(float), case["torchmetrics_edges"])
    )
    assert (d.min(axis=1) <= 2 * np.finfo(p1.dtype).eps).all()


def test_both_kinds_of_case_are_in_the_file() -> None:
    """Edges, exact 0 and 1, float32 and float64, several sizes and bins."""
    moved = [c for c in cases() if c["moved"]]
    same = [c for c in cases() if not c["moved"]]
    assert len(same) >= 6 and len(moved) >= 6
    assert {c["dtype"] for c in same} == {"float32", "float64"}
    assert {c["dtype"] for c in moved} == {"float32", "float64"}
    assert {c["n_bins"] for c in cases()} >= {1, 4, 8, 10, 15, 20}
    assert any(c["n_exactly_0"] and c["n_exactly_1"] for c in cases())
    assert max(c["recipe"]["n_samples"] for c in cases()) >= 20000
    # on the edge cases the rules give visibly different numbers
    gaps = [
        max(abs(v) for v in c["torchmetrics_float64_minus_relcal"].values())
        for c in moved
    ]
    assert max(gaps) > 1e-3


@pytest.mark.skipif(
    importlib.util.find_spec("torchmetrics") is None
    or importlib.util.find_spec("torch") is None,
    reason="torch and torchmetrics not installed (they make the golden file: "
    "scripts/make_golden_binary.py)",
)
@pytest.mark.parametrize("case", cases(), ids=ids())
def test_torchmetrics_live(case: dict[str, Any]) -> None:
    import torch
    from torchmetrics.functional.classification import binary_calibration_error

    p1, y = data(case["name"])
    got = measured(case)
    tol = FLOAT32_TOL if case["dtype"] == "float32" else 1e-12
    for key, norm in (("ece", "l1"), ("rms", "l2"), ("mce", "max")):
        tm = float(
            binary_calibration_error(
                torch.tensor(p1), torch.tensor(y), n_bins=case["n_bins"], norm=norm
            )
        )
        # torch's float32 sums may vary with the CPU's vector width
        assert tm == pytest.approx(case["torchmetrics"][key], abs=tol)
        if not case["moved"]:
            assert got[key] == pytest.approx(tm, abs=tol)


@pytest.mark.parametrize(
    "other", golden()["other_tools"] or [], ids=lambda o: o["name"]
)
def test_other_tools_report_the_positive_class_error(other: dict[str, Any]) -> None:
    """netcal (1-D and 2-column input), relplot's binnedECE and
    uncertainty-calibration's get_ece all give relcal's positive_class_ece on
    these cases, and none gives the top-label ECE."""
    case = next(c for c in cases() if c["name"] == other["name"])
    p1, y = data(case["name"])
    r = relcal.evaluate(p1, y, n_bins=case["n_bins"])
    # netcal clips to [eps, 1 - eps] of the dtype: ~1e-8 in float32
    tol = 1e-7 if case["dtype"] == "float32" else 1e-12
    for key in (
        "netcal_ECE_1d",
        "netcal_ECE_2col",
        "relplot_binnedECE",
        "uncertainty_calibration_get_ece",
    ):
        assert other[key] == pytest.approx(r.positive_class_ece, abs=tol), key
        assert abs(other[key] - r.ece) > 0.01, key
    # relplot's smECE is smoothed and uncertainty-calibration's default is a
    # debiased L2 error on equal-mass bins: other quantities
    assert abs(other["relplot_smECE"] - r.positive_class_ece) > 1e-4
    assert abs(other["uncertainty_calibration_default"] - r.positive_class_ece) > 1e-3
