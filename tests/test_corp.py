"""relcal.corp: CORP reliability curve, score decomposition, consistency bands.

Golden values come from ``scripts/make_golden_corp.py`` (scikit-learn's
IsotonicRegression and model-diagnostics' ``decompose``), stored in
``tests/golden/corp.json``; the published reference is reliabilitydiag's
``summary()`` of its ``precip_Niamey_2016`` example.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from relcal import corp
from relcal.errors import InputError, ShapeError

from .conftest import REPO, load_script, need_shared_real

GOLDEN = json.loads((REPO / "tests" / "golden" / "corp.json").read_text())
CASES: dict[str, Any] = GOLDEN["cases"]
G = load_script("make_golden_corp")  # the generators and loaders of the golden
KEYS = ("score", "miscalibration", "discrimination", "uncertainty")
FIELD = {
    "score": "mean_score",
    "miscalibration": "miscalibration",
    "discrimination": "discrimination",
    "uncertainty": "uncertainty",
}


def _case_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    kind, _, rest = name.partition("/")
    if kind == "gen":
        return G.generate(**CASES[name]["generator"])
    if kind == "precip":
        return G.precip()[rest]
    return G.load_real(need_shared_real() / rest)


def _check_against_golden(name: str) -> None:
    ref = CASES[name]
    x, y = _case_data(name)
    v, c, s = corp.group_samples(x, y)
    assert v.size == ref["n_distinct"] and int(c.sum()) == ref["n_samples"]
    idx = np.asarray(ref["pav_index"])
    np.testing.assert_array_equal(v[idx], ref["pav_value"])
    r = corp.pav(v, c, s)
    np.testing.assert_allclose(r[idx], ref["pav"], rtol=0, atol=1e-10)
    assert float(np.sum(r * c)) == pytest.approx(ref["pav_sum"], rel=1e-12, abs=1e-10)
    assert float(np.sum(r * r * c)) == pytest.approx(
        ref["pav_sumsq"], rel=1e-12, abs=1e-10
    )
    for score in corp.SCORES:
        d = corp.score_decomposition(v, c, s, score=score, recalibrated=r)
        for key in KEYS:
            got, want = getattr(d, FIELD[key]), float(ref[score][key])
            if math.isinf(want):
                assert got == want, (score, key)
            else:
                assert got == pytest.approx(want, abs=1e-10), (score, key)


@pytest.mark.parametrize("name", [k for k in CASES if not k.startswith("real/")])
def test_golden_generated_and_precip(name: str) -> None:
    _check_against_golden(name)


@pytest.mark.parametrize("name", [k for k in CASES if k.startswith("real/")])
def test_golden_real(name: str) -> None:
    _check_against_golden(name)


def test_golden_covers_every_real_file() -> None:
    files = {f"real/{f.name}" for f in G.real_files()}
    if not files:
        need_shared_real()
    assert files <= set(CASES)


# --- reliabilitydiag's published decomposition --------------------------------


@pytest.mark.parametrize("forecast", list(G.PRECIP_PUBLISHED))
def test_reliabilitydiag_published_precip_niamey(forecast: str) -> None:
    """summary(reliabilitydiag(precip_Niamey_2016[...], y = obs)) as printed
    (3 significant digits): e.g. EMOS 0.232 = 0.0183 - 0.0305 + 0.244."""
    x, y = G.precip()[forecast]
    d = corp.score_decomposition_from_samples(x, y, score="brier")
    got = (d.mean_score, d.miscalibration, d.discrimination, d.uncertainty)
    for g, printed in zip(got, G.PRECIP_PUBLISHED[forecast], strict=True):
        digits = 3 - math.floor(math.log10(abs(printed))) - 1
        assert round(g, digits) == pytest.approx(printed, abs=1e-12)


# --- the identity, exactly, on every real file --------------------------------


def _real_names() -> list[str]:
    return sorted(f.name for f in G.real_files()) or ["<no real data>"]


@pytest.mark.parametrize("fname", _real_names())
def test_identity_on_real_files(fname: str) -> None:
    x, y = G.load_real(need_shared_real() / fname)
    d = corp.corp_from_samples(x, y, level=None)
    for score, dec in d.decompositions.items():
        assert dec.miscalibration >= 0 and dec.discrimination >= 0
        assert math.isfinite(dec.discrimination) and math.isfinite(dec.uncertainty)
        total = dec.miscalibration - dec.discrimination + dec.uncertainty
        if math.isinf(dec.mean_score):
            assert score == "log" and total == dec.mean_score
            # only a wrong forecast of exactly 1.0 makes the log score infinite
            assert np.any((x == 1.0) & (y == 0)) or np.any((x == 0.0) & (y == 1))
            continue
        scale = max(dec.mean_score, dec.uncertainty, dec.recalibrated_score)
        assert abs(total - dec.mean_score) <= 8 * np.finfo(float).eps * scale


# --- properties ----------------------------------------------------------------


def _rounded_data(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(0, 1, n), 2)
    y = (rng.uniform(0, 1, n) < x**1.5).astype(float)
    return x, y


def test_grouping_invariance() -> None:
    x, y = _rounded_data(1)
    a = corp.corp_from_samples(x, y, seed=3)
    # every sample three times, shuffled: the same values, counts times 3
    rng = np.random.default_rng(0)
    order = rng.permutation(3 * x.size)
    b = corp.corp_from_samples(np.tile(x, 3)[order], np.tile(y, 3)[order], seed=3)
    v, c, s = corp.group_samples(x, y)
    grouped = corp.corp_diagram(v, 3 * c, 3 * s, seed=3)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_allclose(b.recalibrated, a.recalibrated, rtol=0, atol=1e-15)
    np.testing.assert_allclose(grouped.recalibrated, b.recalibrated, atol=1e-15)
    np.testing.assert_array_equal(grouped.count, b.count)
    for score in corp.SCORES:
        da, db, dg = (d.decompositions[score] for d in (a, b, grouped))
        for f in ("mean_score", "miscalibration", "discrimination", "uncertainty"):
            assert getattr(db, f) == pytest.approx(getattr(da, f), abs=1e-14)
            assert getattr(dg, f) == pytest.approx(getattr(db, f), abs=1e-14)
    # grouped input and raw input with the same counts: identical bands
    np.testing.assert_array_equal(grouped.bands.lower, b.bands.lower)  # type: ignore[union-attr]


def test_sample_order_invariance() -> None:
    x, y = _rounded_data(2)
    order = np.random.default_rng(1).permutation(x.size)
    a = corp.corp_from_samples(x, y, seed=0)
    b = corp.corp_from_samples(x[order], y[order], seed=0)
    assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recalibrated_forecast_has_no_miscalibration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, 4000)
    y = (rng.uniform(0, 1, x.size) < x**2).astype(float)
    v, r = corp.pav_from_samples(x, y)
    recal = r[np.searchsorted(v, x)]
    d = corp.corp_from_samples(recal, y, level=None)
    np.testing.assert_allclose(d.recalibrated, d.value, atol=1e-15)
    for dec in d.decompositions.values():
        assert dec.miscalibration <= 1e-15
    before = corp.score_decomposition_from_samples(x, y)
    after = d.decompositions["brier"]
    assert after.discrimination == pytest.approx(before.discrimination, abs=1e-14)


def test_pav_is_isotonic_and_pools_block_means() -> None:
    x, y = _rounded_data(4)
    d = corp.corp_from_samples(x, y, level=None)
    assert np.all(np.diff(d.recalibrated) >= 0)
    x_min, x_max, cep, n = d.blocks()
    assert n.sum() == x.size
    for lo, hi, c in zip(x_min, x_max, cep, strict=True):
        inside = (x >= lo) & (x <= hi)
        assert y[inside].mean() == pytest.approx(c, abs=1e-14)


def test_log_score_edges() -> None:
    # forecasts 0 and 1 that are right: finite log score, no warnings
    x = np.array([0.0, 0.0, 0.3, 0.6, 1.0, 1.0])
    y = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    with np.errstate(all="raise"):
        d = corp.score_decomposition_from_samples(x, y, score="log")
    assert all(
        math.isfinite(v) and v >= 0
        for v in (d.mean_score, d.miscalibration, d.discrimination, d.uncertainty)
    )
    # a forecast of 1 that was wrong: S and MCB infinite, DSC and UNC finite
    y2 = y.copy()
    y2[-1] = 0.0
    d2 = corp.score_decomposition_from_samples(x, y2, score="log")
    assert d2.mean_score == math.inf and d2.miscalibration == math.inf
    assert math.isfinite(d2.discrimination) and math.isfinite(d2.uncertainty)
    # constant outcome: UNC = DSC = 0 exactly, climatology 0 or 1 is finite
    for const in (0.0, 1.0):
        d3 = corp.score_decomposition_from_samples(
            [0.2, 0.5, 0.9], [const] * 3, score="log"
        )
        assert d3.uncertainty == 0.0 and d3.discrimination == 0.0
        assert d3.miscalibration == d3.mean_score > 0
    diagram = corp.corp_from_samples(x, y2, level=None)
    text = json.dumps(diagram.as_dict(), allow_nan=False)
    assert json.loads(text)["decomposition"]["log"]["mean_score"] == "inf"


def test_brier_is_binary_mean_squared_error() -> None:
    x, y = _rounded_data(5)
    d = corp.score_decomposition_from_samples(x, y)
    assert d.mean_score == pytest.approx(np.mean((x - y) ** 2), abs=1e-15)
    assert d.uncertainty == pytest.approx(y.mean() * (1 - y.mean()), abs=1e-15)


# --- consistency bands ----------------------------------------------------------


def test_band_covers_calibrated_forecast() -> None:
    inside = []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        x = rng.uniform(0, 1, 1500)
        y = (rng.uniform(0, 1, x.size) < x).astype(float)
        d = corp.corp_from_samples(x, y, seed=seed)
        b = d.bands
        assert b is not None and not b.coarsened
        lo, hi = b.lower, b.upper
        inside.append(np.mean((d.recalibrated >= lo) & (d.recalibrated <= hi)))
    # pointwise 90% band: about 90% of the points, never a collapse
    assert np.mean(inside) >= 0.8 and min(inside) >= 0.5


def test_band_flags_a_miscalibrated_forecast() -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, 3000)
    y = (rng.uniform(0, 1, x.size) < 0.5 + 0.4 * (x - 0.5)).astype(float)
    d = corp.corp_from_samples(x, y)
    b = d.bands
    assert b is not None
    lo, hi = b.at(d.value)
    outside = (d.recalibrated < lo) | (d.recalibrated > hi)
    assert outside.mean() > 0.5


def test_band_is_reproducible_and_monotone() -> None:
    x, y = _rounded_data(6)
    v, c, s = corp.group_samples(x, y)
    a = corp.consistency_bands(v, c, s, seed=11)
    b = corp.consistency_bands(v, c, s, seed=11)
    other = corp.consistency_bands(v, c, s, seed=12)
    np.testing.assert_array_equal(a.lower, b.lower)
    np.testing.assert_array_equal(a.upper, b.upper)
    assert not np.array_equal(a.upper, other.upper)
    assert np.all(a.lower <= a.upper)
    assert np.all(np.diff(a.lower) >= 0) and np.all(np.diff(a.upper) >= 0)
    assert a.level == 0.9 and a.n_boot == 100


def test_band_coarsens_many_distinct_values() -> None:
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, 60000)
    y = (rng.uniform(0, 1, x.size) < x).astype(float)
    d = corp.corp_from_samples(x, y, max_groups=500)
    b = d.bands
    assert b is not None and b.coarsened and b.n_groups <= 500
    assert np.all(np.diff(b.x) > 0)
    lo, hi = b.at(d.value)
    assert np.mean((d.recalibrated >= lo) & (d.recalibrated <= hi)) >= 0.6
    # the band narrows like n^(-1/3) away from the ends: sane width at 0.5
    lo5, hi5 = b.at(0.5)
    assert 0.005 < float(hi5 - lo5) < 0.1


def test_heavy_value_stays_one_group() -> None:
    value = np.linspace(0.01, 0.99, 5000)
    count = np.ones_like(value)
    count[2500] = 100000  # one value holds most of the samples
    b = corp.consistency_bands(value, count, max_groups=100)
    assert b.coarsened and b.n_groups <= 100 + 2
    assert value[2500] in b.x
    # the light values keep their share of groups
    assert np.sum(b.x < value[2500]) >= 35


def test_band_needs_whole_counts() -> None:
    with pytest.raises(InputError, match="count: must be whole numbers"):
        corp.consistency_bands([0.2, 0.4], [1.5, 2.0])
    d = corp.corp_diagram([0.2, 0.4], [1.5, 2.0], [0.5, 1.0], level=None)
    assert d.bands is None


# --- output for plotting --------------------------------------------------------


def test_as_dict_is_small_json_and_keeps_the_shape() -> None:
    rng = np.random.default_rng(9)
    x = rng.beta(0.5, 0.5, 200000)
    y = (rng.uniform(0, 1, x.size) < x**0.8).astype(float)
    d = corp.corp_from_samples(x, y, max_points=300)
    out = json.loads(json.dumps(d.as_dict(), allow_nan=False))
    assert len(out["curve"]["x"]) <= 300 and len(out["band"]["x"]) <= 300
    assert out["n_samples"] == x.size and out["band"]["coarsened"]
    # the thinned polyline stays within the stated bound of the full one
    x_min, x_max, cep, _ = d.blocks()
    full_x = np.column_stack((x_min, x_max)).ravel()
    full_y = np.repeat(cep, 2)
    thin_y = np.interp(full_x, out["curve"]["x"], out["curve"]["y"])
    path = np.sum(np.abs(np.diff(full_x))) + np.sum(np.abs(np.diff(full_y)))
    assert np.max(np.abs(thin_y - full_y)) <= path / ((300 - 2) // 2) + 1e-12


def test_thin_monotone_keeps_ends_and_jumps() -> None:
    x = np.linspace(0, 1, 1001)
    y = np.where(x < 0.5, 0.1, 0.9)  # one big jump
    i = corp.thin_monotone(x, [y], 20)
    assert i[0] == 0 and i[-1] == 1000 and i.size <= 20
    assert 500 in i or 499 in i


# --- top-label and raw-array wrappers ------------------------------------------


def test_toplabel_is_the_correct_event() -> None:
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(2000, 5)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 5, 2000)
    d = corp.corp_toplabel(probs, labels, seed=1)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    ref = corp.corp_from_samples(conf, correct, seed=1)
    assert d.event == "top-label correct"
    assert d.as_dict()["curve"] == ref.as_dict()["curve"]
    assert d.decompositions == ref.decompositions


# --- input checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, exc, msg",
    [
        (([0.5, 0.2], [1, 1], [0, 1]), InputError, "value: must be strictly ascending"),
        (([0.2, 0.2], [1, 1], [0, 1]), InputError, "strictly ascending"),
        (([0.2, 1.5], [1, 1], [0, 1]), InputError, r"value: 1 values outside \[0, 1\]"),
        (([0.2, 0.5], [1, 0], [0, 0]), InputError, "count: 1 values not > 0"),
        (([0.2, 0.5], [1, 1], [0, 2]), InputError, "sum_y: 1 values outside"),
        (([0.2, np.nan], [1, 1], [0, 1]), InputError, "value: 1 values are NaN"),
        (([0.2, 0.5], [1, 1], [0]), ShapeError, "same length"),
        (([], [], []), ShapeError, "value: empty array"),
    ],
)
def test_grouped_input_errors(args: tuple[Any, ...], exc: type, msg: str) -> None:
    with pytest.raises(exc, match=msg):
        corp.pav(*args)


def test_sample_input_errors() -> None:
    with pytest.raises(InputError, match="labels: 1 values not 0 or 1"):
        corp.group_samples([0.1, 0.2], [0, 2])
    with pytest.raises(InputError, match=r"probs: 1 values outside \[0, 1\]"):
        corp.group_samples([0.1, -0.2], [0, 1])
    with pytest.raises(ShapeError):
        corp.group_samples([0.1, 0.2], [0])
    with pytest.raises(InputError, match="score: must be one of"):
        corp.score_decomposition([0.5], [1], [1], score="crps")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="level: must be in"):
        corp.consistency_bands([0.5], [3], level=1.0)


def test_single_value_and_tiny_inputs() -> None:
    d = corp.corp_diagram([0.3], [10], [3], n_boot=5)
    assert d.recalibrated.tolist() == [0.3]
    assert d.decompositions["brier"].miscalibration == 0.0
    assert d.decompositions["brier"].discrimination == 0.0
    assert json.dumps(d.as_dict(), allow_nan=False)


# --- live references (when installed) ------------------------------------------


def test_live_sklearn_isotonic() -> None:
    isotonic = pytest.importorskip(
        "sklearn.isotonic", reason="scikit-learn not installed (refenv has it)"
    )
    x, y = G.generate(**G.GENERATED["overconfident"])
    v, r = corp.pav_from_samples(x, y)
    want = isotonic.IsotonicRegression().fit(x, y).predict(v)
    np.testing.assert_allclose(r, want, rtol=0, atol=1e-12)


def test_live_model_diagnostics_decompose() -> None:
    scoring = pytest.importorskip(
        "model_diagnostics.scoring",
        reason="model-diagnostics not installed (refenv has it)",
    )
    for name in ("calibrated_beta", "edges_0_1", "discrete_10"):
        x, y = G.generate(**G.GENERATED[name])
        for score, fn in (
            ("brier", scoring.SquaredError()),
            ("log", scoring.LogLoss()),
        ):
            want = scoring.decompose(y, x, scoring_function=fn).row(0, named=True)
            got = corp.score_decomposition_from_samples(x, y, score=score)
            for key in KEYS:
                assert getattr(got, FIELD[key]) == pytest.approx(want[key], abs=1e-12)


def test_golden_file_is_strict_json_with_versions() -> None:
    text = (REPO / "tests" / "golden" / "corp.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert GOLDEN["format"] == 1 and "model-diagnostics" in GOLDEN["versions"]
    assert Path(G.__file__).name == "make_golden_corp.py"
