"""The positive-class calibration error of two-class data (P(class 1) against
the frequency of class 1): library, ``relcal metrics`` text and JSON, the
report, and ``relcal check``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.cli import cli
from relcal.metrics import positive_class_ece
from relcal.synth import make_logits

KEYS = ("positive_class_ece", "positive_class_rms_ce", "positive_class_mce")


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, args, catch_exceptions=False, env={"GITHUB_STEP_SUMMARY": ""}
    )
    return result.exit_code, result.stdout, result.stderr


def reference(p1: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[float, ...]:
    """relcal's rule in float64 numpy, written out: (lo, hi] bins, 0 in the
    first and 1.0 in the last; L1, L2 and max of |freq(1) - mean P(1)|."""
    p1 = np.asarray(p1, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], p1, side="left")
    count = np.bincount(idx, minlength=n_bins)
    pos = np.bincount(idx, weights=(y == 1).astype(np.float64), minlength=n_bins)
    sump = np.bincount(idx, weights=p1, minlength=n_bins)
    ne = count > 0
    gap = np.abs(pos[ne] - sump[ne]) / count[ne]
    w = count[ne] / count.sum()
    return (
        float(np.sum(w * gap)),
        float(np.sqrt(np.sum(w * gap**2))),
        float(gap.max()),
    )


@pytest.fixture
def binary(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    logits, labels = make_logits(3000, 2, seed=11, temperature=2.0)
    path = tmp_path / "bin.npz"
    np.savez(path, logits=logits, labels=labels)
    return path, logits, labels


def p1_of(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    return 1.0 / (1.0 + np.exp(z[:, 0] - z[:, 1]))


@pytest.mark.parametrize("n_bins", [1, 4, 15, 33])
def test_equals_float64_reference_on_probabilities(n_bins: int) -> None:
    rng = np.random.default_rng(n_bins)
    p1 = rng.uniform(size=5000)
    y = (rng.uniform(size=5000) < p1**1.5).astype(np.int64)
    want = reference(p1, y, n_bins)
    got = relcal.evaluate(p1, y, n_bins=n_bins)
    assert got.positive_class_ece == pytest.approx(want[0], abs=1e-12)
    assert got.positive_class_rms_ce == pytest.approx(want[1], abs=1e-12)
    assert got.positive_class_mce == pytest.approx(want[2], abs=1e-12)
    for norm, value in zip(("l1", "l2", "max"), want, strict=True):
        got_norm = positive_class_ece(p1, y, n_bins=n_bins, norm=norm)
        assert got_norm == pytest.approx(value, abs=1e-12)


def test_logits_and_two_columns_give_the_same_value(binary) -> None:
    _, logits, labels = binary
    p1 = p1_of(logits)
    want = reference(p1, labels, 15)
    two = relcal.evaluate(logits, labels)
    assert (two.positive_class_ece, two.positive_class_rms_ce) == pytest.approx(
        want[:2], abs=1e-12
    )
    assert two.positive_class_mce == pytest.approx(want[2], abs=1e-12)
    # the top-label ECE of the same binary data is another quantity
    assert abs(two.ece - two.positive_class_ece) > 1e-4


def test_torchmetrics_docstring_example() -> None:
    """torchmetrics' binary_calibration_error docstring: 0.2900, 0.2918, 0.3167."""
    p1 = [0.25, 0.25, 0.55, 0.75, 0.75]
    y = [0, 0, 1, 1, 1]
    r = relcal.evaluate(np.array(p1), y, n_bins=2)
    assert round(r.positive_class_ece, 4) == 0.29
    assert round(r.positive_class_rms_ce, 4) == 0.2918
    assert round(r.positive_class_mce, 4) == 0.3167


def test_more_classes_are_none_with_the_reason() -> None:
    logits, labels = make_logits(500, 3, seed=1)
    r = relcal.evaluate(logits, labels)
    assert [getattr(r, k) for k in KEYS] == [None, None, None]
    assert {k: r.unavailable[k] for k in KEYS} == dict.fromkeys(
        KEYS, "needs two classes; the input has 3"
    )
    with pytest.raises(relcal.RelcalError) as err:
        positive_class_ece(logits, labels)
    assert str(err.value) == (
        "the positive-class curve needs two classes. Got 3 instead"
    )


def test_unknown_norm_is_an_error() -> None:
    with pytest.raises(relcal.RelcalError) as err:
        positive_class_ece([0.2, 0.9], [0, 1], norm="l3")
    assert str(err.value) == "norm must be one of l1, l2, max. Got 'l3' instead"


def test_mass_binning_uses_the_positive_class_table() -> None:
    rng = np.random.default_rng(5)
    p1 = rng.beta(0.5, 0.5, size=4000)
    y = (rng.uniform(size=4000) < p1).astype(np.int64)
    r = relcal.evaluate(p1, y, n_bins=10, binning="mass")
    t = relcal.positive_class_table(p1, y, n_bins=10, binning="mass")
    assert r.positive_class_ece == pytest.approx(
        relcal.calibration_errors(t)[0], abs=1e-15
    )
    assert r.positive_class_ece == positive_class_ece(p1, y, n_bins=10, binning="mass")


# -- relcal metrics -----------------------------------------------------------


def test_metrics_text_shows_them_for_two_classes(binary) -> None:
    path, logits, labels = binary
    code, out, _ = run(["metrics", str(path)])
    assert code == 0
    ece, rms, mce = reference(p1_of(logits), labels, 15)
    lines = out.splitlines()
    assert f"  P(1) ECE (L1)    {ece:.4f}" in lines
    assert f"  P(1) RMS-CE (L2) {rms:.4f}" in lines
    assert f"  P(1) MCE (max)   {mce:.4f}" in lines


def test_metrics_text_leaves_them_out_for_more_classes(tmp_path: Path) -> None:
    logits, labels = make_logits(500, 3, seed=2)
    path = tmp_path / "three.npz"
    np.savez(path, logits=logits, labels=labels)
    code, out, _ = run(["metrics", str(path)])
    assert code == 0 and "P(1)" not in out


def test_metrics_json(binary) -> None:
    path, logits, labels = binary
    doc = json.loads(run(["metrics", str(path), "--json", "--bins", "10"])[1])
    want = reference(p1_of(logits), labels, 10)
    got = tuple(doc["metrics"][k] for k in KEYS)
    assert got == pytest.approx(want, abs=1e-12)
    assert not set(KEYS) & set(doc["unavailable"])
    assert "torchmetrics" in doc["conventions"]["positive_class_ece"]


def test_toplabel_file_says_why(tmp_path: Path) -> None:
    path = tmp_path / "top.csv"
    path.write_text("true_label,pred_label,confidence\n0,0,0.9\n1,0,0.8\n1,1,0.55\n")
    code, out, _ = run(["metrics", str(path)])
    assert code == 0
    why = "needs P(class 1); a top-label file has only the top class's score"
    assert f"  P(1) ECE (L1)    n/a ({why})" in out.splitlines()
    doc = json.loads(run(["metrics", str(path), "--json"])[1])
    assert doc["metrics"]["positive_class_ece"] is None
    assert doc["unavailable"]["positive_class_ece"] == why


# -- report -------------------------------------------------------------------


def test_report_metrics_table_and_json(binary, tmp_path: Path) -> None:
    path, logits, labels = binary
    out = tmp_path / "r.html"
    js = tmp_path / "r.json"
    code, _, _ = run(["report", str(path), "-o", str(out), "--json", str(js)])
    assert code == 0
    ece, _, _ = reference(p1_of(logits), labels, 15)
    html = out.read_text()
    assert f"<tr><th>P(1) ECE (L1)</th><td>{ece:.4f}</td>" in html
    doc = json.loads(js.read_text())
    assert doc["models"][0]["metrics"]["positive_class_ece"] == pytest.approx(
        ece, abs=1e-12
    )


def test_report_of_binary_and_multiclass_models_keeps_columns(
    binary, tmp_path: Path
) -> None:
    path, _, _ = binary
    logits, labels = make_logits(500, 3, seed=2)
    three = tmp_path / "three.npz"
    np.savez(three, logits=logits, labels=labels)
    out = tmp_path / "r.html"
    code, _, _ = run(["report", str(path), str(three), "-o", str(out)])
    assert code == 0
    from relcal.io import load
    from relcal.report import build_report

    data = build_report([load(str(path)), load(str(three))])
    keys = [[r.key for r in m.metrics] for m in data.models]
    assert keys[0] == keys[1] and keys[0][-3:] == list(KEYS)
    row = data.models[1].metrics[-3]
    assert row.value is None
    assert row.text == "n/a: needs two classes; the input has 3"


# -- relcal check -------------------------------------------------------------


def test_check_gates_on_it(binary, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path, logits, labels = binary
    ece, rms, mce = reference(p1_of(logits), labels, 15)
    code, out, _ = run(
        [
            "check",
            str(path),
            "--max-positive-class-ece",
            "0.01",
            "--max-positive-class-rms-ce",
            "1",
            "--max-positive-class-mce",
            "1",
        ]
    )
    assert code == 1
    lines = out.splitlines()
    assert f"FAIL positive-class-ece {ece:.4f} > 0.0100" in lines
    assert f"ok   positive-class-rms-ce {rms:.4f} <= 1.0000" in lines
    assert f"ok   positive-class-mce {mce:.4f} <= 1.0000" in lines
    (tmp_path / "relcal.toml").write_text("[check]\nmax-positive-class-ece = 0.5\n")
    code, out, _ = run(["check", str(path), "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["checks"][0]["metric"] == "positive_class_ece"
    assert doc["checks"][0]["value"] == pytest.approx(ece, abs=1e-12)


def test_check_on_more_classes_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    logits, labels = make_logits(500, 3, seed=2)
    path = tmp_path / "three.npz"
    np.savez(path, logits=logits, labels=labels)
    code, out, err = run(["check", str(path), "--max-positive-class-ece", "0.1"])
    assert code == 2 and out == ""
    assert err == (
        f"Error: {path}: --max-positive-class-ece: positive_class_ece needs two "
        "classes; the input has 3\n"
    )


def test_check_increase_against_a_baseline(binary, tmp_path: Path) -> None:
    path, logits, labels = binary
    base = tmp_path / "base.npz"
    np.savez(base, logits=logits / 2.0, labels=labels)
    new = reference(p1_of(logits), labels, 15)[0]
    old = reference(p1_of(logits / 2.0), labels, 15)[0]
    code, out, _ = run(
        [
            "check",
            str(path),
            "--baseline",
            str(base),
            "--max-positive-class-ece-increase",
            "0",
        ]
    )
    diff = new - old
    assert code == (1 if diff > 0 else 0)
    assert f"positive-class-ece increase {diff:+.4f}" in out


def test_check_bootstrap_interval_of_the_positive_class_error(binary) -> None:
    """With --confidence the positive-class checks get bias-corrected bootstrap
    intervals: (P(class 1), label == 1) resampled with the same weights as the
    top-label quantities (one bootstrap over both sets, as the gate runs it)."""
    from relcal.bootstrap import Samples, bootstrap, interval

    path, logits, labels = binary
    code, out, _ = run(
        [
            "check",
            str(path),
            "--max-positive-class-ece",
            "0.5",
            "--max-positive-class-mce",
            "0.5",
            "--max-ece",
            "0.5",
            "--confidence",
            "0.9",
            "--bootstrap",
            "300",
            "--seed",
            "4",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(out)
    # the two sets, written out in numpy
    p1 = p1_of(logits)
    inner = np.linspace(0.0, 1.0, 16)[1:-1]
    pred1 = logits[:, 1] > logits[:, 0]  # a tie goes to class 0
    conf = np.where(pred1, p1, 1.0 - p1)
    right = (pred1 == (labels == 1)).astype(np.float64)
    z = logits.astype(np.float64)
    nll = np.logaddexp(z[:, 0], z[:, 1]) - z[np.arange(len(labels)), labels]
    brier = 2.0 * (p1 - (labels == 1)) ** 2
    top = Samples(np.searchsorted(inner, conf), conf, right, nll, brier, 15)
    y1 = (labels == 1).astype(np.float64)
    pos = Samples(np.searchsorted(inner, p1), p1, y1, None, None, 15)
    reps = bootstrap([top, pos], n_replicates=300, seed=4)
    ece, _, mce = reference(p1, labels, 15)
    for check, key, point in ((0, "ece", ece), (1, "mce", mce)):
        iv = doc["checks"][check]["interval"]
        want = interval(point, reps[1][key], confidence=0.9, debias=True)
        assert doc["checks"][check]["note"] is None
        assert iv["low"] == pytest.approx(want.low, abs=1e-9)
        assert iv["high"] == pytest.approx(want.high, abs=1e-9)
        assert iv["estimate"] == pytest.approx(want.estimate, abs=1e-9)
        assert iv["low"] < iv["estimate"] < iv["high"]
    top_ece = interval(
        doc["metrics"]["ece"], reps[0]["ece"], confidence=0.9, debias=True
    )
    assert doc["checks"][2]["interval"]["low"] == pytest.approx(top_ece.low, abs=1e-9)
