"""Temperature scaling: exact optimum, properties, published figures, CLI, bad input.

The reference optimum here is independent of relcal's Newton iteration: a
plain float64 log-softmax gradient, bisected in log T to machine precision.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relcal
from relcal.cli import main
from relcal.errors import RelcalError
from relcal.synth import make_logits
from relcal.temperature import (
    T_BOUNDS,
    TemperatureScaler,
    cross_fit,
    fit_temperature,
    fold_of,
    scale_logits,
)

from .conftest import SAMPLE_DATA, need_shared_real


def reference_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """argmin_T NLL(softmax(z / T)) by bisection of the float64 gradient."""
    z = np.asarray(z, dtype=np.float64)
    zy = z[np.arange(len(y)), y]

    def grad_beta(beta: float) -> float:
        a = beta * z
        a -= a.max(axis=1, keepdims=True)
        p = np.exp(a)
        p /= p.sum(axis=1, keepdims=True)
        pz = np.where(p > 0, p * np.where(np.isinf(z), 0.0, z), 0.0)  # -inf: p = 0
        return float(np.mean(pz.sum(axis=1) - zy))

    lo, hi = 1e-4, 1e4  # in β
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if grad_beta(mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi / lo - 1 < 1e-15:
            break
    return float(1 / np.sqrt(lo * hi))


def nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
    a = np.asarray(z, dtype=np.float64) / t
    a -= a.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(a).sum(axis=1)) - a[np.arange(len(y)), y]))


# -- exactness -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "temperature"), [(5000, 10, 2.0), (3000, 100, 0.5), (2000, 2, 1.5)]
)
def test_matches_reference_optimum(n: int, c: int, temperature: float) -> None:
    z, y = make_logits(n, c, seed=n + c, temperature=temperature)
    fit = fit_temperature(z, y)
    ref = reference_temperature(z, y)
    assert fit.status == "converged"
    assert fit.temperature == pytest.approx(ref, rel=1e-6)
    assert abs(fit.gradient) <= 1e-8
    assert fit.passes <= 8
    assert fit.nll_after == pytest.approx(nll(z, y, fit.temperature), abs=1e-12)
    assert fit.nll_before == pytest.approx(nll(z, y, 1.0), abs=1e-12)


def test_large_input_steered_in_float32_is_still_exact() -> None:
    """≥ 2**20 logits: float32 passes steer, exact passes finish."""
    z, y = make_logits(20000, 64, seed=11, temperature=2.2)
    assert z.size >= relcal.temperature.COARSE_MIN_SIZE
    z[::97, 5] = -np.inf  # masked classes (never the true one here)
    y[::97] = np.where(y[::97] == 5, 4, y[::97])
    fit = fit_temperature(z, y)
    assert fit.status == "converged"
    assert fit.temperature == pytest.approx(reference_temperature(z, y), rel=1e-6)
    assert abs(fit.gradient) <= 1e-8
    assert fit.nll_after == pytest.approx(nll(z, y, fit.temperature), abs=1e-12)
    assert fit.passes <= 8


def grad_t(z: np.ndarray, y: np.ndarray, t: float) -> float:
    """dNLL/dT at T, in float64 (independent of relcal's passes)."""
    a = np.asarray(z, dtype=np.float64) / t
    a -= a.max(axis=1, keepdims=True)
    p = np.exp(a)
    p /= p.sum(axis=1, keepdims=True)
    zz = np.asarray(z, dtype=np.float64)
    g_beta = np.mean((p * zz).sum(axis=1) - zz[np.arange(len(y)), y])
    return float(-g_beta / (t * t))


@pytest.mark.parametrize(
    ("n", "c", "temperature", "subsample"),
    [
        (30000, 40, 0.3, True),  # T* < 1: under-confident logits
        (24000, 50, 6.0, True),  # T* far above 1
        (5000, 256, 2.5, False),  # too few rows for a steering subsample
    ],
)
def test_large_inputs_are_exact(
    n: int, c: int, temperature: float, subsample: bool
) -> None:
    """The steered path (float32 passes, a subsample offset to the full data)
    lands on the exact optimum; the gradient it reports is the float64 one."""
    z, y = make_logits(n, c, seed=n + c, temperature=temperature)
    assert z.size >= relcal.temperature.COARSE_MIN_SIZE
    fit = fit_temperature(z, y)
    assert fit.status == "converged"
    assert (fit.subsample_rows > 0) is subsample
    assert fit.temperature == pytest.approx(reference_temperature(z, y), rel=1e-7)
    assert abs(fit.gradient) <= 1e-8
    assert fit.gradient == pytest.approx(grad_t(z, y, fit.temperature), abs=1e-12)
    assert fit.nll_after == pytest.approx(nll(z, y, fit.temperature), abs=1e-12)
    assert fit.nll_before == pytest.approx(nll(z, y, 1.0), abs=1e-6)
    assert fit.passes + fit.subsample_passes * fit.subsample_rows / n <= 8


REAL_LT = ["densenet40", "resnet110", "resnet110sd", "wrn28"]
# ../shared/real/README.md: ECE15 after TS on test, published and "ours"
PUBLISHED_AFTER = {
    "densenet40": 6.16,
    "resnet110": 5.94,
    "resnet110sd": 6.84,
    "wrn28": 4.47,
}
OUR_T = {
    "densenet40": 3.0900,
    "resnet110": 3.4452,
    "resnet110sd": 1.3833,
    "wrn28": 1.6648,
}


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return f["logits"], f["labels"]


@pytest.mark.parametrize("model", REAL_LT)
def test_real_long_tailed_cifar10(model: str) -> None:
    real = need_shared_real()
    z_val, y_val = _npz(real / f"{model}_cifar10lt_val.npz")
    fit = fit_temperature(z_val, y_val)
    assert fit.temperature == pytest.approx(
        reference_temperature(z_val, y_val), rel=1e-6
    )
    assert fit.temperature == pytest.approx(OUR_T[model], abs=5e-5)
    assert abs(fit.gradient) <= 1e-8
    z_test, y_test = _npz(real / f"{model}_cifar10lt_test.npz")
    after = 100 * relcal.ece(scale_logits(z_test, fit.temperature), y_test, n_bins=15)
    # the published fits stopped slightly short of the optimum: ours is a bit lower
    assert after == pytest.approx(PUBLISHED_AFTER[model], abs=0.1)
    assert after <= PUBLISHED_AFTER[model]


# -- properties ------------------------------------------------------------------


@st.composite
def logits_and_labels(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(20, 300))
    c = draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.floats(0.3, 8.0))
    temperature = draw(st.floats(0.3, 4.0))
    return make_logits(n, c, seed=seed, scale=scale, temperature=temperature)


@settings(max_examples=40, deadline=None)
@given(logits_and_labels())
def test_properties(data: tuple[np.ndarray, np.ndarray]) -> None:
    z, y = data
    fit = fit_temperature(z, y)
    if fit.status != "converged":
        return  # capped (e.g. every prediction right): checked separately
    t = fit.temperature
    # accuracy unchanged
    assert relcal.accuracy(scale_logits(z, t), y) == relcal.accuracy(z, y)
    # NLL after <= NLL before on the fitting data
    assert fit.nll_after <= fit.nll_before + 1e-12
    # invariant to a constant added to each row
    shift = np.random.default_rng(0).normal(0, 50, size=(len(y), 1))
    assert fit_temperature(
        z.astype(np.float64) + shift, y
    ).temperature == pytest.approx(t, rel=1e-6)
    # T for k·z is k·T
    for k in (0.5, 3.0):
        assert fit_temperature(
            k * z.astype(np.float64), y
        ).temperature == pytest.approx(k * t, rel=1e-6)


def test_every_prediction_right_is_capped() -> None:
    z = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.5, 4.0]] * 10)
    y = np.array([0, 1, 2] * 10)
    fit = fit_temperature(z, y)
    assert fit.status == "capped"
    assert fit.temperature == pytest.approx(T_BOUNDS[0])


def test_labels_unrelated_to_large_logits_cap_t_at_its_upper_bound() -> None:
    """Uniform predictions are best: the NLL falls as T grows, T is capped at
    its upper bound, and the steering goes straight there (a pass or two at
    the bound, not a bisection towards it)."""
    z, _ = make_logits(30000, 40, seed=1, temperature=50.0)
    y = np.random.default_rng(0).integers(0, 40, len(z))
    fit = fit_temperature(z, y)
    assert fit.status == "capped"
    assert fit.temperature == pytest.approx(T_BOUNDS[1])
    assert fit.gradient < 0  # the NLL still falls there
    assert fit.passes <= 4


def test_constant_logits_have_no_effect() -> None:
    z = np.zeros((50, 4))
    y = np.arange(50) % 4
    fit = fit_temperature(z, y, kind="logits")
    assert fit.status == "no effect"
    assert fit.temperature == 1.0


def test_probabilities_and_binary_column() -> None:
    z, y = make_logits(3000, 5, seed=4, temperature=2.0)
    p = relcal.temperature.softmax(z)
    t_logits = fit_temperature(z, y).temperature
    # log-softmax differs from z by a per-row constant: the same T
    assert fit_temperature(p, y, kind="probs").temperature == pytest.approx(
        t_logits, rel=1e-5
    )
    zb, yb = make_logits(3000, 2, seed=5, temperature=2.0)
    diff = (zb[:, 1] - zb[:, 0]).astype(np.float64)
    assert fit_temperature(diff, yb, kind="logits").temperature == pytest.approx(
        fit_temperature(zb, yb).temperature, rel=1e-6
    )


def test_segmentation_with_ignored_pixels() -> None:
    from relcal.synth import make_segmentation

    scores, labels = make_segmentation(2, 4, 16, 16, seed=3)
    labels = labels.copy()
    labels[:, :3] = 255
    fit = fit_temperature(scores, labels, ignore_index=255)
    flat = np.moveaxis(scores, 1, -1).reshape(-1, scores.shape[1])
    keep = labels.reshape(-1) != 255
    assert fit.n == int(keep.sum())
    assert fit.temperature == pytest.approx(
        reference_temperature(flat[keep], labels.reshape(-1)[keep]), rel=1e-6
    )


def test_cross_fit_scales_each_fold_by_the_others() -> None:
    z, y = make_logits(1000, 4, seed=9, temperature=2.0)
    scaled, temps = cross_fit(z, y, 4)
    assert len(temps) == 4
    assert len(set(temps)) == 4
    folds = fold_of(np.arange(len(y)), 4, 0)  # a hash of the row: ~n/4 each
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3]
    assert 200 <= np.count_nonzero(folds == 0) <= 300
    fold0 = np.flatnonzero(folds == 0)
    rest = np.flatnonzero(folds != 0)
    assert temps[0] == pytest.approx(reference_temperature(z[rest], y[rest]), rel=1e-6)
    np.testing.assert_allclose(
        scaled[fold0], z[fold0] / np.float32(temps[0]), rtol=1e-6
    )


def test_scaler_api() -> None:
    z, y = make_logits(2000, 6, seed=2, temperature=2.5)
    ts = TemperatureScaler().fit(z, y)
    assert ts.temperature_ == pytest.approx(reference_temperature(z, y), rel=1e-6)
    p = ts.predict_proba(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(ts.transform(z), z / np.float32(ts.temperature_))
    with pytest.raises(RelcalError, match="not fitted"):
        TemperatureScaler().transform(z)


# -- the commands -----------------------------------------------------------------


def test_fit_temperature_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.json"
    src = SAMPLE_DATA / "digits_mlp_val.npz"
    assert main(["fit-temperature", str(src), "-o", str(out), "--cv", "3"]) == 0
    text = capsys.readouterr().out
    assert "T = " in text and "in-sample" in text and "3-fold cross-fitted" in text
    doc = json.loads(out.read_text())
    z, y = _npz(src)
    assert doc["format"] == 1 and doc["kind"] == "relcal.temperature"
    assert doc["temperature"] == pytest.approx(reference_temperature(z, y), rel=1e-6)
    assert abs(doc["gradient"]) <= 1e-8
    assert doc["fitted_on"]["n_classes"] == 10
    assert len(doc["fitted_on"]["sha256"]) == 64
    assert doc["in_sample"]["after"]["nll"] < doc["in_sample"]["before"]["nll"]
    assert len(doc["cross_fitted"]["temperatures"]) == 3


def test_fit_temperature_command_on_a_large_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """≥ 2**20 logits: the file records the steering subsample, the summary
    says so, and T is still the exact optimum."""
    z, y = make_logits(20000, 64, seed=4, temperature=1.8)
    src = tmp_path / "big.npz"
    np.savez(src, logits=z, labels=y)
    out = tmp_path / "t.json"
    assert main(["fit-temperature", str(src), "-o", str(out)]) == 0
    assert "passes over a subsample of" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["subsample"]["rows"] == 2000 and doc["subsample"]["passes"] >= 2
    assert doc["passes"] <= 8
    assert doc["temperature"] == pytest.approx(reference_temperature(z, y), rel=1e-7)
    assert abs(doc["gradient"]) <= 1e-8


def test_report_and_calibrate_with_a_temperature(tmp_path: Path) -> None:
    t_file = tmp_path / "t.json"
    assert (
        main(
            [
                "fit-temperature",
                str(SAMPLE_DATA / "digits_mlp_val.npz"),
                "-o",
                str(t_file),
            ]
        )
        == 0
    )
    test = SAMPLE_DATA / "digits_mlp_test.npz"
    html = tmp_path / "r.html"
    assert (
        main(
            [
                "report",
                str(test),
                "--temperature",
                str(t_file),
                "-o",
                str(html),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    page = html.read_text()
    assert 'id="model-1-scaling-compare"' in page
    assert "(in-sample)" not in page  # fitted on other data
    doc = json.loads((tmp_path / "r.json").read_text())
    ts = doc["models"][0]["temperature_scaling"]
    assert ts["in_sample"] is False
    t = json.loads(t_file.read_text())["temperature"]
    z, y = _npz(test)
    assert ts["after"]["ece"] == pytest.approx(relcal.ece(z / t, y), abs=1e-7)
    # in-sample when fitted on the same file
    assert main(["report", str(test), "--fit-temperature", "-o", str(html)]) == 0
    assert "the data shown" in html.read_text()
    # calibrate writes what relcal reads back
    cal = tmp_path / "cal.npz"
    assert (
        main(["calibrate", str(test), "--temperature", str(t_file), "-o", str(cal)])
        == 0
    )
    with np.load(cal, allow_pickle=False) as f:
        np.testing.assert_allclose(f["logits"], z / np.float32(t), rtol=1e-6)
        np.testing.assert_allclose(f["calibrated_probs"].sum(axis=1), 1, atol=1e-5)
    preds = relcal.load(cal)
    assert preds.kind == "logits"


def _temperature_file(tmp_path: Path, **changes: object) -> Path:
    doc = {
        "format": 1,
        "kind": "relcal.temperature",
        "temperature": 2.0,
        "fitted_on": {"n_classes": 10, "sha256": None, "path": "v.npz"},
    }
    doc.update(changes)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc))
    return p


BAD = [
    (
        "toplabel",
        lambda t: ["fit-temperature", "TOPLABEL"],
        "temperature scaling needs every class's scores",
    ),
    (
        "not-json",
        lambda t: [
            "report",
            "DIGITS",
            "--temperature",
            str(_write(t, "t.json", "{oops")),
        ],
        "not a JSON file",
    ),
    (
        "not-ours",
        lambda t: [
            "report",
            "DIGITS",
            "--temperature",
            str(_write(t, "t.json", '{"temperature": 2}')),
        ],
        "not a relcal temperature file",
    ),
    (
        "zero-T",
        lambda t: [
            "calibrate",
            "DIGITS",
            "--temperature",
            str(_temperature_file(t, temperature=0)),
        ],
        "temperature must be a positive number",
    ),
    (
        "negative-T",
        lambda t: [
            "report",
            "DIGITS",
            "--temperature",
            str(_temperature_file(t, temperature=-1.5)),
        ],
        "temperature must be a positive number",
    ),
    (
        "wrong-classes",
        lambda t: [
            "calibrate",
            "DIGITS",
            "--temperature",
            str(_temperature_file(t, fitted_on={"n_classes": 3})),
        ],
        "fitted for 3 classes",
    ),
    (
        "missing-T-file",
        lambda t: ["report", "DIGITS", "--temperature", str(t / "nope.json")],
        "no such file",
    ),
    (
        "cv-too-many-folds",
        lambda t: ["fit-temperature", "XOR_SMALL", "--cv", "50"],
        "more folds than",
    ),
]


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(("case", "make", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_input(
    case: str,
    make,
    expect: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    z, y = make_logits(20, 2, seed=1)
    np.savez(tmp_path / "xor_small.npz", logits=z, labels=y)
    (tmp_path / "top.csv").write_text(
        "true_label,pred_label,confidence\n0,0,0.9\n1,0,0.6\n"
    )
    args = [
        {
            "DIGITS": str(SAMPLE_DATA / "digits_mlp_test.npz"),
            "TOPLABEL": str(tmp_path / "top.csv"),
            "XOR_SMALL": str(tmp_path / "xor_small.npz"),
        }.get(a, a)
        for a in make(tmp_path)
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    args += ["-o", str(tmp_path / "out.file")]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expect in err
    assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
