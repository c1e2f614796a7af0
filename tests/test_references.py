"""relcal against the reference libraries, through golden values.

``tests/golden/references.json`` holds what netcal, relplot, scikit-learn and
torchmetrics return on generated data, written by ``scripts/make_golden.py``
(run it with those libraries installed: ``pip install '.[bench]'``;
``--check`` compares a fresh run with the stored file).  These tests need none
of them: they regenerate the data with :mod:`relcal.synth`, check it is the
data the golden file was made from (digest), and compare.

Where a library follows a different bin-edge rule, the "edges" dataset shows
the rows it bins differently, and the numpy re-implementations of its rule
below reproduce its counts: the difference is the rule, not an error.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import relcal
from relcal.metrics import reduce_arrays
from relcal.synth import array_digest, make_logits

GOLDEN = Path(__file__).parent / "golden" / "references.json"
LOGIT_SETS = ["c10", "c1000", "binary", "overconfident"]


@cache
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


@cache
def dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The arrays the golden file was made from, rebuilt and checked."""
    ref = golden()["datasets"][name]
    if name == "edges":
        scores = np.array(ref["probs"], dtype=np.float32)
        labels = np.array(ref["labels"], dtype=np.int64)
    else:
        recipe = ref["recipe"]
        assert recipe["function"] == "relcal.synth.make_logits"
        scores, labels = make_logits(*recipe["args"], **recipe["kwargs"])
    assert array_digest(scores, labels) == ref["digest"], (
        f"{name}: relcal.synth no longer makes the data of the golden file; "
        "rerun scripts/make_golden.py"
    )
    return scores, labels


def entry(name: str, n_bins: int = 15) -> dict[str, Any]:
    return golden()["datasets"][name]["toplabel"][str(n_bins)]


@pytest.mark.parametrize("name", [*LOGIT_SETS, "edges"])
def test_data_matches_golden(name: str) -> None:
    scores, labels = dataset(name)
    ref = golden()["datasets"][name]
    assert scores.dtype == np.float32
    assert scores.shape == (ref["n"], ref["n_classes"])


# -- relcal's own rule, recomputed in float64 numpy by the golden script -----


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_toplabel_equals_float64_recomputation(name: str) -> None:
    scores, labels = dataset(name)
    own = entry(name)["own"]
    r = relcal.evaluate(scores, labels, n_bins=15)
    assert r.ece == pytest.approx(own["ece"], abs=1e-12)
    assert r.mce == pytest.approx(own["mce"], abs=1e-12)
    assert r.rms_ce == pytest.approx(own["rms"], abs=1e-12)
    np.testing.assert_array_equal(r.table.count, own["count"])
    np.testing.assert_array_equal(r.table.correct, own["correct"])
    np.testing.assert_allclose(r.table.sum_conf, own["sum_conf"], rtol=1e-12, atol=1e-9)
    assert r.accuracy == golden()["datasets"][name]["accuracy"]


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_nll_and_brier_equal_float64_reference(name: str) -> None:
    scores, labels = dataset(name)
    ref = golden()["datasets"][name]
    assert relcal.nll(scores, labels) == pytest.approx(ref["nll_float64"], abs=1e-9)
    assert relcal.brier_score(scores, labels) == pytest.approx(
        ref["brier_float64"], abs=1e-9
    )


def test_nll_and_brier_on_float32_probabilities() -> None:
    probs, labels = dataset("edges")
    ref = golden()["datasets"]["edges"]
    # probabilities: -log(max(p_y, float32 eps)), as documented
    assert relcal.nll(probs, labels) == pytest.approx(
        ref["nll_float64_clip_eps"], abs=1e-9
    )
    assert relcal.brier_score(probs, labels) == pytest.approx(
        ref["brier_float64"], abs=1e-9
    )


# -- the libraries, where their convention matches ----------------------------


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_netcal_ece_and_mce(name: str) -> None:
    scores, labels = dataset(name)
    net = entry(name)["netcal"]
    assert relcal.ece(scores, labels, n_bins=15) == pytest.approx(net["ece"], abs=1e-6)
    assert relcal.mce(scores, labels, n_bins=15) == pytest.approx(net["mce"], abs=1e-6)


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_relplot_binned_ece(name: str) -> None:
    scores, labels = dataset(name)
    rp = entry(name)["relplot"]
    assert relcal.ece(scores, labels, n_bins=15) == pytest.approx(rp["ece"], abs=1e-6)


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_sklearn_calibration_curve_bins(name: str) -> None:
    """Top-label: calibration_curve(correct, confidence) gives our non-empty bins."""
    scores, labels = dataset(name)
    sk = entry(name)["sklearn"]
    table = relcal.reliability_table(scores, labels, n_bins=15)
    nonempty = np.flatnonzero(table.count)
    np.testing.assert_array_equal(nonempty, sk["bins_nonempty"])
    np.testing.assert_array_equal(table.count[nonempty], sk["count"])
    np.testing.assert_allclose(table.accuracy[nonempty], sk["prob_true"], atol=1e-6)
    np.testing.assert_allclose(table.mean_conf[nonempty], sk["prob_pred"], atol=1e-6)


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_torchmetrics_float32_drift(name: str) -> None:
    """torchmetrics sums its bins in float32; its own convention in float64 is
    what we compare with, and its drift from that is recorded, not hidden."""
    scores, labels = dataset(name)
    tm, tm64 = entry(name)["torchmetrics"], entry(name)["torchmetrics_float64"]
    ece = relcal.ece(scores, labels, n_bins=15)
    # ECE: its extra bin for 1.0 does not change ECE on these sets (see
    # CONVENTIONS.md, trap 6), so its convention in float64 agrees with ours
    assert ece == pytest.approx(tm64["ece"], abs=1e-6)
    assert relcal.mce(scores, labels, n_bins=15) == pytest.approx(tm64["mce"], abs=1e-6)
    drift = abs(tm["ece_l1"] - tm64["ece"])
    assert drift < 5e-5  # float32 sums, ~1e-5 at 20,000 rows


def test_torchmetrics_extra_bin_moves_rms_on_overconfident_data() -> None:
    """5841 float32 confidences are exactly 1.0; torchmetrics gives them an
    (n+1)-th bin, which leaves ECE alone but moves RMS-CE by 0.0156."""
    scores, labels = dataset("overconfident")
    e = entry("overconfident")
    moved = e["torchmetrics_float64"]["moves"]
    assert moved == [[14, 15, 5841]]
    assert (
        golden()["datasets"]["overconfident"]["top_conf_exactly_1"][
            "float32_torch_softmax"
        ]
        == 5841
    )
    rms = relcal.rms_calibration_error(scores, labels, n_bins=15)
    assert e["torchmetrics_float64"]["rms"] - rms == pytest.approx(0.0156, abs=5e-4)
    # ... and its rule on float64 confidences, recomputed here, is the golden one
    # (float64 confidences: the NLL asks for the float64 pass)
    red = reduce_arrays(scores, labels, classwise_bins=None, brier=False, nll=True)
    tm_rule = lo_hi_extra_bin(red.confidence, red.correct, np.linspace(0, 1, 16))
    ref = e["torchmetrics_rule_float64"]
    np.testing.assert_array_equal(tm_rule["count"], ref["count"])
    assert tm_rule["rms"] == pytest.approx(ref["rms"], abs=1e-12)
    assert tm_rule["rms"] - rms == pytest.approx(0.0019, abs=1e-4)


# -- the binary positive-class view -------------------------------------------


def test_positive_class_curve_equals_sklearn_calibration_curve() -> None:
    scores, labels = dataset("binary")
    ref = golden()["datasets"]["binary"]["positive_class"]["n_bins"]["15"]
    table = relcal.positive_class_table(scores, labels, n_bins=15)
    nonempty = table.count > 0
    np.testing.assert_array_equal(table.count, ref["own"]["count"])
    np.testing.assert_allclose(
        table.accuracy[nonempty], ref["sklearn"]["prob_true"], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        table.mean_conf[nonempty], ref["sklearn"]["prob_pred"], rtol=0, atol=1e-12
    )
    # netcal reads an (N, 2) input as positive-class calibration
    assert relcal.calibration_errors(table)[0] == pytest.approx(
        ref["netcal_2col"]["ece"], abs=1e-6
    )


# -- where the edge rules differ: the hand-built "edges" set ------------------


def relcal_rule(conf: np.ndarray, n_bins: int) -> np.ndarray:
    return np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], conf, side="left")


def netcal_rule(conf32: np.ndarray, n_bins: int) -> np.ndarray:
    """netcal: clip to [eps, 1 - eps] of the dtype, then [lo, hi) bins."""
    eps = np.finfo(conf32.dtype).eps
    c = np.clip(conf32, eps, 1 - eps).astype(np.float64)
    return np.minimum(
        np.searchsorted(np.linspace(0, 1, n_bins + 1), c, "right") - 1, n_bins - 1
    )


def relplot_rule(conf32: np.ndarray, n_bins: int) -> np.ndarray:
    """relplot: int(f / (1 / n)) in the input's dtype; 1.0 may get bin n."""
    return (conf32 / conf32.dtype.type(1.0 / n_bins)).astype(np.int64)


def lo_hi_extra_bin(
    conf: np.ndarray, correct: np.ndarray, edges: np.ndarray
) -> dict[str, Any]:
    """torchmetrics' rule: [lo, hi) bins and an (n+1)-th bin for 1.0."""
    idx = np.searchsorted(edges, conf, side="right") - 1
    n = len(edges)
    count = np.bincount(idx, minlength=n)
    corr = np.bincount(idx, weights=correct, minlength=n)
    sconf = np.bincount(idx, weights=conf, minlength=n)
    with np.errstate(invalid="ignore"):
        gap = np.where(count > 0, (sconf - corr) / np.maximum(count, 1), 0.0)
    prop = count / count.sum()
    return {
        "count": count,
        "ece": float(np.sum(prop * np.abs(gap))),
        "rms": float(np.sqrt(np.sum(prop * gap**2))),
    }


def moves(ours: np.ndarray, theirs: np.ndarray) -> list[list[int]]:
    pairs, counts = np.unique(
        np.stack([ours, theirs])[:, ours != theirs], axis=1, return_counts=True
    )
    return [[int(a), int(b), int(c)] for (a, b), c in zip(pairs.T, counts, strict=True)]


@pytest.mark.parametrize("n_bins", [4, 8, 15])
def test_edges_relcal_follows_its_rule_and_sklearn(n_bins: int) -> None:
    probs, labels = dataset("edges")
    e = entry("edges", n_bins)
    table = relcal.reliability_table(probs, labels, n_bins=n_bins)
    np.testing.assert_array_equal(table.count, e["own"]["count"])
    np.testing.assert_array_equal(table.correct, e["own"]["correct"])
    ece = relcal.calibration_errors(table)[0]
    assert ece == pytest.approx(e["own"]["ece"], abs=1e-12)
    # sklearn's calibration_curve uses the same (lo, hi] rule: nothing moves
    assert e["sklearn"]["moves"] == []
    np.testing.assert_array_equal(table.count[table.count > 0], e["sklearn"]["count"])
    assert ece == pytest.approx(e["sklearn"]["ece"], abs=1e-12)


@pytest.mark.parametrize("n_bins", [4, 8, 15])
def test_edges_other_rules_reproduced(n_bins: int) -> None:
    """netcal, relplot and torchmetrics bin edge values differently from us;
    their rules, re-implemented here, give exactly the counts they gave."""
    probs, labels = dataset("edges")
    e = entry("edges", n_bins)
    conf32 = probs.max(axis=1)
    ours = relcal_rule(conf32.astype(np.float64), n_bins)

    net = netcal_rule(conf32, n_bins)
    np.testing.assert_array_equal(
        np.bincount(net, minlength=n_bins), e["netcal"]["count"]
    )
    assert moves(ours, net) == e["netcal"]["moves"]

    rp = relplot_rule(conf32, n_bins)
    np.testing.assert_array_equal(
        np.bincount(rp, minlength=len(e["relplot"]["count"])), e["relplot"]["count"]
    )
    assert moves(ours, rp) == e["relplot"]["moves"]

    tm_edges = np.linspace(0, 1, n_bins + 1, dtype=np.float32).astype(np.float64)
    if n_bins == 15:
        # torch.linspace's float32 edges are not numpy's; use the golden counts
        assert e["torchmetrics_float64"]["moves"] == e["torchmetrics"]["moves"]
    else:  # k/4 and k/8 are exact in float32, both linspaces agree
        correct = probs.argmax(axis=1) == labels
        tm = lo_hi_extra_bin(conf32.astype(np.float64), correct, tm_edges)
        np.testing.assert_array_equal(tm["count"], e["torchmetrics_float64"]["count"])
        assert tm["ece"] == pytest.approx(e["torchmetrics_float64"]["ece"], abs=1e-12)


def test_edges_rules_change_the_numbers() -> None:
    """At 4 bins the rule alone moves ECE by 0.06 on these 39 rows: the case a
    user comparing tools would hit, with confidences exactly on edges."""
    probs, labels = dataset("edges")
    e = entry("edges", 4)
    ours = relcal.ece(probs, labels, n_bins=4)
    for lib, key in [("netcal", "ece"), ("relplot", "ece"), ("torchmetrics", "ece_l1")]:
        assert e[lib][key] - ours == pytest.approx(0.0603, abs=1e-3), lib
        assert e[lib]["rows_binned_unlike_relcal"] >= 8


def test_golden_file_records_its_making() -> None:
    g = golden()
    assert g["generated_by"] == "scripts/make_golden.py"
    assert (Path(__file__).parents[1] / g["generated_by"]).is_file()
    assert set(g["versions"]) >= {"netcal", "relplot", "scikit-learn", "torchmetrics"}


@pytest.mark.parametrize("name", LOGIT_SETS)
def test_single_metric_functions_agree_with_evaluate(name: str) -> None:
    """relcal.ece & co. on float32 logits take the float32 softmax (top-label
    only, the fast path); evaluate() takes the float64 one. Same bins, and
    the numbers agree far inside any tolerance a user compares with."""
    scores, labels = dataset(name)
    r = relcal.evaluate(scores, labels, n_bins=15)
    table = relcal.reliability_table(scores, labels, n_bins=15)
    np.testing.assert_array_equal(table.count, r.table.count)
    np.testing.assert_array_equal(table.correct, r.table.correct)
    assert relcal.ece(scores, labels) == pytest.approx(r.ece, abs=1e-7)
    assert relcal.mce(scores, labels) == pytest.approx(r.mce, abs=1e-7)
    assert relcal.rms_calibration_error(scores, labels) == pytest.approx(
        r.rms_ce, abs=1e-7
    )
