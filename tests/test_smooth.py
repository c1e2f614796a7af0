"""relcal.smooth: smooth ECE equals relplot's, and its properties.

The golden values come from ``scripts/make_golden_smooth.py`` (relplot, run in
the reference environment); the data are rebuilt here with that script's
functions, from the shared real files and from seeded generators.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relcal.errors import InputError, ShapeError
from relcal.smooth import (
    SmoothDiagram,
    group_samples,
    smece,
    smece_and_sigma,
    smece_sigma,
    smece_weighted,
    smooth_diagram,
)

from .conftest import load_script, need_shared_real

golden_script = load_script("make_golden_smooth")
GOLDEN: dict[str, Any] = json.loads(
    (Path(__file__).parent / "golden" / "smooth.json").read_text()
)
TOL = 1e-6  # the agreement promised; observed is ~1e-15


def _ones(f: np.ndarray) -> np.ndarray:
    return np.ones_like(f)


# --------------------------------------------------------------------------
# golden: relplot 1.0.3 on shared real files and generated data


@pytest.mark.parametrize("name", sorted(GOLDEN["real"]))
def test_golden_real(name: str) -> None:
    path = need_shared_real() / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    want = GOLDEN["real"][name]
    f, y = golden_script.top_label(path)
    assert len(f) == want["n"]
    assert f.sum() == pytest.approx(want["sum_f"], abs=1e-9)
    assert y.sum() == want["sum_y"]
    got = smece_and_sigma(*group_samples(f, y))
    assert got.sigma == want["sigma"]
    assert abs(got.smece - want["smece"]) < TOL
    assert abs(smece(f, y) - want["smece"]) < TOL


@pytest.mark.parametrize("name", sorted(GOLDEN["generated"]))
def test_golden_generated(name: str) -> None:
    want = GOLDEN["generated"][name]
    f, y = golden_script.make_binary(**want["params"])
    got = smece_and_sigma(f, _ones(f), y)
    assert got.sigma == want["sigma"]
    assert abs(got.smece - want["smece"]) < TOL
    assert abs(smece_weighted(*group_samples(f, y)) - want["smece"]) < TOL


@pytest.mark.parametrize(
    "case", GOLDEN["fixed_sigma"], ids=lambda c: f"{c['case']}-{c['sigma']}"
)
def test_golden_fixed_sigma(case: dict[str, Any]) -> None:
    f, y = golden_script.make_binary(**GOLDEN["generated"][case["case"]]["params"])
    got = smece_sigma(f, _ones(f), y, case["sigma"])
    assert abs(got - case["smece"]) < TOL


def test_golden_diagram() -> None:
    want = GOLDEN["diagram"]
    f, y = golden_script.make_binary(**GOLDEN["generated"][want["case"]]["params"])
    d = smooth_diagram(*group_samples(f, y))
    assert d.sigma == want["sigma"]
    assert abs(d.smece - want["ce"]) < TOL
    np.testing.assert_allclose(d.mesh, want["mesh"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(d.mu, want["mu"], rtol=0, atol=TOL)
    np.testing.assert_allclose(d.density, want["density"], rtol=1e-9)


def test_golden_records_relplot_version() -> None:
    assert GOLDEN["format"] == 1
    assert GOLDEN["versions"]["relplot"] not in ("", "unknown")


# --------------------------------------------------------------------------
# live relplot, when it is installed (the reference environment)


def test_live_relplot() -> None:
    relplot = pytest.importorskip(
        "relplot", reason="relplot not installed (only the reference venv has it)"
    )
    from relplot.diagrams import prepare_rel_diagram

    rng = np.random.default_rng(2024)
    for n, temper in ((300, 2.0), (3000, 0.6), (20_000, 1.0)):
        f, y = golden_script.make_binary(
            int(rng.integers(1 << 30)), n, temper=temper, a=1.5, b=1.0
        )
        want_ce, want_sigma = relplot.smECE(f, y, return_width=True)
        got = smece_and_sigma(*group_samples(f, y))
        assert got.sigma == want_sigma
        assert abs(got.smece - want_ce) < 1e-12
        for sigma in (0.003, 0.01, 0.07, 0.6):
            want = relplot.smECE_sigma(f, y, sigma)
            assert abs(smece_sigma(f, _ones(f), y, sigma) - want) < 1e-12
        diagram = prepare_rel_diagram(
            f, y, plot_confidence_band=False, report_CE_std=False
        )
        d = smooth_diagram(f, _ones(f), y)
        np.testing.assert_allclose(d.mu, diagram["mu"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            d.density, diagram["density"], rtol=1e-10, atol=1e-12
        )


# --------------------------------------------------------------------------
# properties


def test_calibrated_large_sample_is_small() -> None:
    f, y = golden_script.make_binary(3, 200_000, temper=1.0, a=1.0, b=1.0)
    assert smece(f, y) < 0.01
    over, y2 = golden_script.make_binary(3, 200_000, temper=3.0, a=1.0, b=1.0)
    assert smece(over, y2) > 0.1


def test_grouping_duplicates_matches_raw() -> None:
    f, y = golden_script.make_binary(11, 50_000, temper=1.7, a=1.0, b=2.0, decimals=2)
    raw = smece_and_sigma(f, _ones(f), y)
    value, count, sum_y = group_samples(f, y)
    assert len(value) <= 101
    grouped = smece_and_sigma(value, count, sum_y)
    assert grouped.sigma == raw.sigma
    assert abs(grouped.smece - raw.smece) < 1e-12
    assert abs(smece(f, y) - raw.smece) < 1e-12
    # a group split in two (same value twice) changes nothing either
    split = smece_weighted(
        np.repeat(value, 2), np.repeat(count / 2, 2), np.repeat(sum_y / 2, 2)
    )
    assert abs(split - raw.smece) < 1e-12


def test_sample_order_invariance() -> None:
    f, y = golden_script.make_binary(12, 20_000, temper=0.6, a=2.0, b=1.0)
    perm = np.random.default_rng(0).permutation(len(f))
    assert abs(smece(f, y) - smece(f[perm], y[perm])) < 1e-12
    d1 = smooth_diagram(f, _ones(f), y)
    d2 = smooth_diagram(f[perm], _ones(f), y[perm])
    np.testing.assert_allclose(d1.mu, d2.mu, rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 20).map(lambda k: k / 20),  # many ties, 0 and 1
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_any_sample_is_in_range_and_grouping_invariant(
    rows: list[tuple[float, bool]],
) -> None:
    f = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=np.float64)
    raw = smece_and_sigma(f, _ones(f), y)
    assert 0.0 <= raw.smece <= 1.0
    assert 2 / 1024 <= raw.sigma <= 1.0 and (raw.sigma * 1024).is_integer()
    grouped = smece_and_sigma(*group_samples(f, y))
    assert grouped.sigma == raw.sigma
    assert abs(grouped.smece - raw.smece) < 1e-12


def test_edge_cases_match_relplot() -> None:
    # values relplot 1.0.3 returns (smECE, sigma*); sigma* = 1 when smECE_1 > 1
    cases = [
        (([0.5], [1], [1]), 0.49992718067855363, 0.5),
        (([1.0], [1], [1]), 0.0, 2 / 1024),
        (([0.0], [1], [1]), 0.9994780866168999, 1.0),
        (([0.0, 1.0], [3, 4], [3, 0]), 0.9999254075760275, 1.0),
        (([0.3], [5], [2]), 0.09999799045691996, 0.1005859375),
    ]
    for args, want_ce, want_sigma in cases:
        got = smece_and_sigma(*args)
        assert got.sigma == want_sigma
        assert got.smece == pytest.approx(want_ce, abs=1e-12)


def test_float32_and_int_inputs() -> None:
    f, y = golden_script.make_binary(13, 1000, temper=2.0, a=1.0, b=1.0)
    f32 = f.astype(np.float32)
    want = smece(f32.astype(np.float64), y)
    assert smece(f32, y.astype(np.int64)) == want
    assert smece(f32, y.astype(bool)) == want


def test_range_and_endpoints() -> None:
    # all mass at the ends: f in {0, 1}
    f = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 1.0, 0.0])
    value = smece(f, y)
    assert 0.0 <= value <= 1.0
    # maximally wrong forecasts: smECE near 1 and sigma at its top
    f = np.r_[np.zeros(50), np.ones(50)]
    y = 1.0 - f
    assert smece(f, y) > 0.45


def test_smece_sigma_is_continuous_across_grid_change() -> None:
    # the grid refines below sigma = 0.01: the value should barely move
    f, y = golden_script.make_binary(14, 5000, temper=1.5, a=1.0, b=1.0)
    above = smece_sigma(f, _ones(f), y, 0.01)
    below = smece_sigma(f, _ones(f), y, 0.00999)
    assert abs(above - below) < 1e-3


def test_diagram_is_json_friendly() -> None:
    f, y = golden_script.make_binary(15, 4000, temper=1.2, a=1.0, b=1.0)
    d = smooth_diagram(*group_samples(f, y), n_mesh=101)
    assert isinstance(d, SmoothDiagram)
    data = json.loads(json.dumps(d.to_dict()))
    assert len(data["mesh"]) == len(data["mu"]) == len(data["density"]) == 101
    assert data["total"] == 4000
    assert np.all((d.mu >= 0) & (d.mu <= 1))
    # the density integrates to about 1 over [0, 1]
    assert np.trapezoid(d.density, d.mesh) == pytest.approx(1.0, abs=0.02)
    fixed = smooth_diagram(*group_samples(f, y), sigma=0.05)
    assert fixed.sigma == 0.05
    assert fixed.smece == smece_sigma(*group_samples(f, y), 0.05)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (([], []), ShapeError, "f: empty array of shape (0,)"),
        (([0.5, 1.2], [0, 1]), InputError, "f: 1 values outside [0, 1]"),
        (([0.5, np.nan], [0, 1]), InputError, "f: 1 values are NaN or infinite"),
        (([0.5, 0.2], [0, 2]), InputError, "y: 1 values not 0 or 1"),
        (([0.5, 0.2], [0]), ShapeError, "f, y: must have the same length. Got 2, 1"),
        (([[0.5]], [0]), ShapeError, "f: must be 1-D. Got shape (1, 1) instead"),
        ((["a"], [0]), InputError, "f: must be numeric. Got dtype <U1 instead"),
    ],
)
def test_bad_raw_input(
    args: tuple[Any, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        smece(*args)
    assert str(info.value).startswith(message)


def test_bad_weighted_input() -> None:
    with pytest.raises(InputError, match=r"^count: 1 values not > 0"):
        smece_weighted([0.1, 0.2], [1.0, 0.0], [0.0, 0.0])
    with pytest.raises(InputError, match=r"^sum_y: 1 values outside \[0, count\]"):
        smece_weighted([0.1, 0.2], [1.0, 2.0], [0.0, 3.0])
    with pytest.raises(InputError, match=r"^sigma: must be finite and >= 0.0001"):
        smece_sigma([0.1], [1.0], [0.0], 0.0)
    with pytest.raises(InputError, match=r"^n_mesh: must be >= 2"):
        smooth_diagram([0.1], [1.0], [0.0], n_mesh=1)
