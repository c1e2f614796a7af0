"""relcal.kernel: the libmvec exp agrees with numpy's, and relcal's metrics do
not depend on which of the two ran.

The comparisons run wherever the library is built (Linux x86_64 with AVX2);
CI builds it, and there its absence is a failure, not a skip (unless
RELCAL_KERNEL=0 turns it off: .ci/run runs the numerics tests that way too).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterator

import numpy as np
import pytest

import relcal
from relcal import kernel
from relcal.synth import make_logits, make_segmentation
from relcal.temperature import fit_temperature

ULP_TOLERANCE = 4  # measured: <= 3.1 ulp against long double, ~3.5 against numpy


@pytest.fixture
def active(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    wanted = os.environ.get("RELCAL_KERNEL", "1") != "0"  # not turned off
    if wanted:  # wherever it loads, AVX-512 CPUs included
        monkeypatch.setenv("RELCAL_KERNEL", "1")
    kernel.reset()
    if kernel.status() != "libmvec":
        linux = sys.platform == "linux" and platform.machine() == "x86_64"
        if wanted and linux and os.environ.get("CI"):
            pytest.fail(f"the exp kernel is not in use in CI: {kernel.status()}")
        pytest.skip(f"the exp kernel is not in use: {kernel.status()}")
    yield
    kernel.reset()


def numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELCAL_KERNEL", "0")
    kernel.reset()


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_exp_agrees_with_numpy_within_a_few_ulp(active: None) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            -rng.exponential(5.0, 200_000),  # exp(z - max) of logits
            rng.uniform(-708.0, 709.0, 50_000),  # the whole normal range
            -rng.uniform(0.0, 1e-6, 1000),  # near 0
        ]
    )
    want = np.exp(x)
    got = kernel.exp(x.copy())
    assert ulps(got, want).max() <= ULP_TOLERANCE


def test_exp_special_values(active: None) -> None:
    x = np.array([0.0, -0.0, -np.inf, -800.0, -745.2, -740.0, -1e-300, 710.0])
    got = kernel.exp(x.copy())
    assert got[0] == 1.0 and got[1] == 1.0  # the maximum's exp(0): exactly 1
    assert got[2] == 0.0 and got[3] == 0.0 and got[4] == 0.0
    assert 0 < got[5] < 1e-300 and got[6] == 1.0
    assert got[7] == np.inf


def test_a_value_s_exp_does_not_depend_on_its_place(active: None) -> None:
    """Every value goes through the vector function, the tail ones too."""
    x = np.linspace(-30.0, 0.0, 41)
    whole = kernel.exp(x.copy())
    for n in range(1, 9):  # every tail length, every alignment
        for start in range(4):
            part = kernel.exp(x[start : start + n].copy())
            np.testing.assert_array_equal(part, whole[start : start + n])


def test_only_contiguous_float64_goes_to_the_library(active: None) -> None:
    x = np.linspace(-20.0, 0.0, 101)
    strided = x.copy()[::2]  # not contiguous: numpy's exp, in place all the same
    assert kernel.exp(strided) is strided
    np.testing.assert_array_equal(strided, np.exp(x[::2]))
    f32 = x.astype(np.float32)
    np.testing.assert_array_equal(kernel.exp(f32.copy()), np.exp(f32))


def test_auto_follows_numpys_cpu_features(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELCAL_KERNEL", raising=False)
    kernel.reset()
    if kernel._numpy_vectorised():
        assert kernel.status().startswith("numpy (its float64 exp is vectorised")
    else:
        assert "vectorised" not in kernel.status()
    kernel.reset()


def test_relcal_kernel_0_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    numpy_only(monkeypatch)
    assert kernel.status() == "numpy (RELCAL_KERNEL=0)"
    x = np.linspace(-30.0, 0.0, 1001)
    np.testing.assert_array_equal(kernel.exp(x.copy()), np.exp(x))
    kernel.reset()


@pytest.mark.parametrize(
    "case", ["rows_10", "rows_1000", "seg_19"], ids=lambda c: str(c)
)
def test_metrics_agree_with_and_without_the_kernel(
    case: str, active: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ignore = None
    if case == "seg_19":
        z, y = make_segmentation(2, 19, 64, 64, ignore_index=255, seed=3)
        ignore = 255
    else:
        z, y = make_logits(3000, int(case.split("_")[1]), seed=3)
    fast = relcal.evaluate(z, y, ignore_index=ignore)
    numpy_only(monkeypatch)
    slow = relcal.evaluate(z, y, ignore_index=ignore)
    for key in ("accuracy", "ece", "mce", "rms_ce", "classwise_ece", "nll", "brier"):
        a, b = getattr(fast, key), getattr(slow, key)
        assert a == pytest.approx(b, rel=1e-12, abs=1e-14), key
    np.testing.assert_array_equal(fast.table.count, slow.table.count)
    kernel.reset()


def test_temperature_fit_agrees_with_and_without_the_kernel(
    active: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    z, y = make_logits(4000, 10, seed=5)
    fast = fit_temperature(z, y)
    numpy_only(monkeypatch)
    slow = fit_temperature(z, y)
    assert fast.temperature == pytest.approx(slow.temperature, rel=1e-9)
    kernel.reset()
