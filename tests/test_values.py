"""The mergeable value histogram (relcal.values) and what rides on it: the
unbinned metrics and the intervals of ``relcal metrics --ci``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal import selective, smooth
from relcal.cli import cli
from relcal.errors import InputError, ShapeError
from relcal.values import (
    ValueCounts,
    as_float_1d,
    check_grouped,
    check_samples,
    group_samples,
    wanted,
)


def _blocks(v: np.ndarray, y: np.ndarray, size: int, cap: int) -> ValueCounts:
    acc = None
    for lo in range(0, len(v), size):
        part = ValueCounts.of(v[lo : lo + size], y[lo : lo + size], cap=cap)
        acc = part if acc is None else acc.merge(part)
    assert acc is not None
    return acc


def test_exact_below_the_cap() -> None:
    rng = np.random.default_rng(0)
    v = np.round(rng.random(5000), 3)  # ties
    y = rng.random(5000) < v
    g = _blocks(v, y, 333, cap=1 << 20).grouped()
    uniq, inv = np.unique(v, return_inverse=True)
    # exact from 2**-8 up; smaller values within 2**-60
    np.testing.assert_allclose(g.value, uniq, rtol=0, atol=2.0**-60)
    assert np.array_equal(g.value[uniq >= 2**-8], uniq[uniq >= 2**-8])
    assert np.array_equal(g.count, np.bincount(inv).astype(float))
    assert np.array_equal(g.sum_y, np.bincount(inv, weights=y))


@pytest.mark.parametrize("size", [13, 97, 4096, 100_000])
def test_coarsening_does_not_depend_on_the_chunking(size: int) -> None:
    rng = np.random.default_rng(1)
    v = rng.random(20_000)
    y = rng.random(20_000) < v
    whole = ValueCounts.of(v, y, cap=1000)
    parts = _blocks(v, y, size, cap=1000)
    a, b = whole.grouped(), parts.grouped()
    assert whole.shift == parts.shift > 0
    assert len(a.value) <= 1000
    assert np.array_equal(a.count, b.count) and np.array_equal(a.sum_y, b.sum_y)
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12)
    # a group's mean value is exact: the sums of values survive grouping
    assert abs(float(np.sum(a.value * a.count)) - float(v.sum())) < 1e-9


def test_order_of_merges_does_not_matter() -> None:
    rng = np.random.default_rng(2)
    v = rng.random(9000)
    y = rng.random(9000) < 0.5
    parts = [ValueCounts.of(v[i::7], y[i::7], cap=500) for i in range(7)]
    fwd = parts[0]
    for p in parts[1:]:
        fwd = fwd.merge(p)
    back = parts[-1]
    for p in reversed(parts[:-1]):
        back = back.merge(p)
    assert fwd.shift == back.shift
    assert np.array_equal(fwd.grouped().count, back.grouped().count)


def test_empty_and_auto() -> None:
    empty = ValueCounts.of(np.zeros(0), np.zeros(0, bool))
    assert empty.n == 0 and len(empty.grouped().value) == 0
    assert wanted(None, 100) and not wanted(None, 1 << 23) and wanted(True, 1 << 23)
    assert not wanted(False, 5)


def test_evaluate_unbinned_metrics_match_the_modules() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(3000, 4)) * 2
    y = rng.integers(0, 4, 3000)
    r = relcal.evaluate(z, y)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, right = p.max(1), p.argmax(1) == y
    assert r.smooth_ece == pytest.approx(smooth.smece(conf, right), abs=1e-12)
    assert r.aurc == pytest.approx(selective.aurc_of_samples(conf, right), abs=1e-12)
    assert r.auroc == pytest.approx(selective.auroc_of_samples(conf, right), abs=1e-12)
    assert relcal.evaluate(z, y, values=False).smooth_ece is None


def _run(args: list[str], env: dict[str, str] | None = None) -> dict:
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_metrics_ci_does_not_depend_on_chunks_or_jobs(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(700, 5)).astype(np.float32) * 3
    y = rng.integers(0, 5, 700)
    f = tmp_path / "p.npz"
    np.savez(f, logits=z, labels=y)
    base = _run(["metrics", str(f), "--ci", "0.9", "--json", "--jobs", "1"])
    tiny = _run(
        ["metrics", str(f), "--ci", "0.9", "--json", "--jobs", "2"],
        env={"RELCAL_CHUNK_ROWS": "13"},
    )
    a, b = base["intervals"]["metrics"], tiny["intervals"]["metrics"]
    assert set(a) >= {"accuracy", "ece", "nll", "brier", "sq_ce_debiased"}
    for name in a:
        for end in ("low", "high"):
            assert a[name][end] == pytest.approx(b[name][end], rel=1e-12, abs=1e-15)
    assert base["intervals"]["level"] == 0.9
    assert a["ece"]["low"] <= base["metrics"]["ece"] + 0.05
    other_seed = _run(["metrics", str(f), "--ci", "0.9", "--json", "--seed", "5"])
    assert other_seed["intervals"]["metrics"]["ece"] != a["ece"]
    plain = _run(["metrics", str(f), "--json"])
    assert plain["intervals"] is None
    assert plain["metrics"]["smooth_ece"] == pytest.approx(
        base["metrics"]["smooth_ece"]
    )
    off = _run(["metrics", str(f), "--json", "--unbinned", "off"])
    assert off["metrics"]["aurc"] is None and off["selective"] is None


def test_metrics_ci_text(tmp_path: Path) -> None:
    f = tmp_path / "p.npz"
    rng = np.random.default_rng(5)
    np.savez(f, logits=rng.normal(size=(300, 3)), labels=rng.integers(0, 3, 300))
    res = CliRunner().invoke(cli, ["metrics", str(f), "--ci", "0.95"])
    assert res.exit_code == 0
    assert "intervals: 95% bootstrap, 1000 replicates, seed 0" in res.output
    line = next(x for x in res.output.splitlines() if x.strip().startswith("ECE (L1)"))
    low, high = (float(t) for t in line.split("[")[1].rstrip("]").split(","))
    assert low <= high


# --- the one validator of weighted distinct values (smooth, corp, selective) ----


def test_check_grouped_orders() -> None:
    args = ([0.2, 0.2, 0.7], [1, 2, 1], [0, 1, 1])
    v, c, s = check_grouped(*args, order="ascending")
    assert (v.tolist(), c.tolist(), s.tolist()) == ([0.2, 0.7], [3.0, 1.0], [1.0, 1.0])
    assert check_grouped(*args, order="any").count.tolist() == [1.0, 2.0, 1.0]
    with pytest.raises(InputError, match=r"^value: must be strictly ascending"):
        check_grouped(*args, order="strict")
    with pytest.raises(InputError, match=r"^value: must be sorted ascending"):
        check_grouped([0.7, 0.2], [1, 1], [0, 0], order="ascending")
    assert check_grouped([0.7, 0.2], [1, 1], [0, 0], order="any").value[0] == 0.7


def test_check_grouped_range_and_errors() -> None:
    with pytest.raises(
        InputError, match=r"^value: 2 values outside \[0, 1\] \(first: -1.0 at row 0\)"
    ):
        check_grouped([-1.0, 2.0], [1, 1], [0, 0], order="any", unit_interval=True)
    g = check_grouped([-1.0, 2.0], [1, 1], [0, 0], order="strict", unit_interval=False)
    assert g.value.tolist() == [-1.0, 2.0]
    with pytest.raises(ShapeError, match=r"^value, count, sum_y: must have the same"):
        check_grouped([0.1], [1, 1], [0], order="any")
    with pytest.raises(ShapeError, match=r"^value: empty array of shape \(0,\)"):
        check_grouped([], [], [], order="any")
    with pytest.raises(InputError, match=r"^count: 1 values are NaN or infinite"):
        check_grouped([0.1], [np.inf], [0], order="any")


def test_samples_and_as_float_1d() -> None:
    assert as_float_1d(np.array([True, False]), "y").tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match=r"^x: must be numeric"):
        as_float_1d(["a"], "x")
    with pytest.raises(ShapeError, match=r"^x: must be 1-D"):
        as_float_1d([[1.0]], "x")
    with pytest.raises(InputError, match=r"^conf: 1 values outside \[0, 1\]"):
        check_samples([0.5, 3.0], [0, 1], name_f="conf")
    with pytest.raises(InputError, match=r"^ok: 1 values not 0 or 1"):
        check_samples([0.5, 0.2], [0, 2], name_y="ok")
    with pytest.raises(ShapeError, match=r"^f, y: must have the same length"):
        check_samples([0.5, 0.2], [0])
    g = group_samples([3.0, -1.0, 3.0], [1, 0, 1], unit_interval=False)
    assert g.value.tolist() == [-1.0, 3.0] and g.sum_y.tolist() == [0.0, 2.0]


def test_unbinned_intervals_for_samples_not_pixels() -> None:
    rng = np.random.default_rng(6)
    z = rng.normal(size=(800, 3)) * 2
    y = rng.integers(0, 3, 800)
    r = relcal.evaluate(z, y, ci=0.9)
    for name in ("smooth_ece", "aurc", "auroc"):
        iv = r.intervals[name]
        assert iv.low <= r.metric(name) <= iv.high
    assert r.ci["n_replicates_unbinned"] == 200
    again = relcal.evaluate(z, y, ci=0.9)
    assert again.intervals["aurc"] == r.intervals["aurc"]
    # segmentation: whole images are the units (tests/test_unitgrid.py)
    seg = rng.normal(size=(4, 3, 6, 6))
    labels = rng.integers(0, 3, (4, 6, 6))
    rs = relcal.evaluate(seg, labels, ci=0.9)
    assert "ece" in rs.intervals and "aurc" in rs.intervals
    assert rs.ci["unbinned_units"] == "images" and r.ci["unbinned_units"] == "samples"


def test_corp_parts_get_intervals() -> None:
    from relcal.metrics import evaluate_predictions

    preds = relcal.load(
        Path(__file__).parents[1] / "sample_data" / "digits_mlp_test.npz"
    )
    r = evaluate_predictions(preds, ci=0.95, corp=True)
    d = r.corp["brier"]
    for short, value in (
        ("score", d.mean_score),
        ("mcb", d.miscalibration),
        ("dsc", d.discrimination),
        ("unc", d.uncertainty),
    ):
        iv = r.intervals[f"corp_brier_{short}"]
        assert iv.low <= value <= iv.high
    assert "corp_log_unc" in r.intervals
    assert "corp_brier_mcb" not in evaluate_predictions(preds, ci=0.95).intervals


def test_one_sample_has_no_aurc_and_no_nan(tmp_path: Path) -> None:
    # found by scripts/fuzz.py (seed 4244, cases 221 and 290): AURC is NaN for
    # fewer than two samples, and "nan" reached the text and the report
    f = tmp_path / "one.npz"
    np.savez(f, probs=np.array([[0.33, 0.2, 0.2, 0.27]]), labels=np.array([0]))
    res = CliRunner().invoke(cli, ["metrics", str(f)])
    assert res.exit_code == 0 and "nan" not in res.output.lower()
    assert "AURC             n/a (needs at least two samples)" in res.output
    doc = _run(["metrics", str(f), "--json"])
    assert doc["metrics"]["aurc"] is None and doc["metrics"]["smooth_ece"] is not None
    html = tmp_path / "r.html"
    res = CliRunner().invoke(cli, ["report", str(f), "-o", str(html)])
    assert res.exit_code == 0, res.output
    assert "nan" not in html.read_text().lower()
