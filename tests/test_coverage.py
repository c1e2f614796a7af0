"""Coverage of relcal's bootstrap intervals on data whose truth is known.

Seeded, so the shares are fixed numbers; the bounds are those the intervals
must meet (95% nominal, 400 draws: a share's standard error is about 0.011).
The data and the truths are those of ``scripts/validate_bootstrap.py``
(``relcal.synth.make_toplabel``: population values by quadrature), which
prints the same table for more cases.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from relcal.binning import bin_table, uniform_edges
from relcal.bootstrap import bootstrap, interval
from relcal.estimators import bias_corrected_ece, debiased_squared_error
from relcal.synth import make_toplabel, population_sq_ce

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import validate_bootstrap as vb  # noqa: E402

DRAWS = 400


def _coverage(n: int, ece: float) -> dict[str, float]:
    amplitude = vb.amplitude_for_ece(ece)
    true = vb.truth(amplitude)
    true["sq_ce"] = population_sq_ce(amplitude)
    conf, correct = make_toplabel(
        n, amplitude=amplitude, draws=DRAWS, seed=n + int(ece * 1000)
    )
    hits: dict[str, list[bool]] = {}

    def hit(name: str, iv: object, truth: float) -> None:
        hits.setdefault(name, []).append(iv.low <= truth <= iv.high)  # type: ignore[attr-defined]

    for d in range(DRAWS):
        s = vb.samples(conf[d], correct[d], None)
        reps = bootstrap([s], n_replicates=1000, seed=d)[0]
        plug = vb.point(s)
        for m in ("accuracy", "nll", "brier"):
            hit(m, interval(plug[m], reps[m], confidence=0.95, debias=False), true[m])
        ece_iv = interval(plug["ece"], reps["ece"], confidence=0.95, debias=True)
        hit("ece", ece_iv, true["ece"])
        plain = interval(plug["ece"], reps["ece"], confidence=0.95, debias=False)
        hit("ece_plain", plain, true["ece"])
        table = bin_table(conf[d], correct[d], uniform_edges(15))
        db = bias_corrected_ece(table)
        hit(
            "ece_debiased",
            interval(db, reps["ece_debiased"], confidence=0.95, debias=False),
            true["ece"],
        )
        sq = debiased_squared_error(table)
        hit(
            "sq_ce",
            interval(sq, reps["sq_ce_debiased"], confidence=0.95, debias=False),
            true["sq_ce"],
        )
    return {k: float(np.mean(v)) for k, v in hits.items()}


@pytest.fixture(scope="module")
def miscalibrated() -> dict[str, float]:
    return _coverage(2000, 0.04)


@pytest.mark.parametrize("metric", ["accuracy", "nll", "brier"])
def test_means_cover_at_their_level(
    miscalibrated: dict[str, float], metric: str
) -> None:
    # measured: accuracy 0.940, NLL 0.943, Brier 0.943
    assert 0.93 <= miscalibrated[metric] <= 0.97


def test_calibration_error_intervals_cover(miscalibrated: dict[str, float]) -> None:
    # measured: bias-corrected ECE 0.938, debiased ECE 0.935, debiased CE^2 0.943
    assert miscalibrated["ece"] >= 0.90
    assert miscalibrated["ece_debiased"] >= 0.90
    assert miscalibrated["sq_ce"] >= 0.90


def test_plain_plug_in_interval_undercovers(miscalibrated: dict[str, float]) -> None:
    # why relcal never reports it: the plug-in ECE is biased upward, and its
    # plain percentile interval misses the truth (measured 0.752 at N = 2,000,
    # 0.465 at N = 500: scripts/validate_bootstrap.py)
    assert miscalibrated["ece_plain"] < 0.85


def test_debiased_squared_error_covers_a_calibrated_model() -> None:
    # the truth is 0: an interval of a non-negative plug-in error cannot
    # hold it, the debiased squared error's can (measured 0.917)
    cov = _coverage(2000, 0.0)
    assert cov["sq_ce"] >= 0.90
    assert cov["ece_plain"] <= 0.05


def test_debiased_beats_plug_in_on_small_samples() -> None:
    """500 samples, 15 bins: the debiased errors are closer to the truth than
    the plug-in ones, over 400 draws (mean absolute error)."""
    amplitude = vb.amplitude_for_ece(0.04)
    true_ece = vb.truth(amplitude)["ece"]
    true_sq = population_sq_ce(amplitude)
    conf, correct = make_toplabel(500, amplitude=amplitude, draws=DRAWS, seed=11)
    err = {"plug": [], "debiased": [], "plug_sq": [], "debiased_sq": []}
    for d in range(DRAWS):
        t = bin_table(conf[d], correct[d], uniform_edges(15))
        gap = np.abs(t.sum_conf - t.correct)
        plug = float(gap.sum() / t.n)
        plug_sq = float(
            np.sum(np.where(t.count > 0, gap**2 / np.maximum(t.count, 1), 0)) / t.n
        )
        err["plug"].append(abs(plug - true_ece))
        err["debiased"].append(abs(bias_corrected_ece(t) - true_ece))
        err["plug_sq"].append(abs(plug_sq - true_sq))
        err["debiased_sq"].append(abs(debiased_squared_error(t) - true_sq))
    mean = {k: float(np.mean(v)) for k, v in err.items()}
    assert mean["debiased"] < 0.8 * mean["plug"], mean
    assert mean["debiased_sq"] < 0.8 * mean["plug_sq"], mean
