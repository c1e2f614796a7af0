"""relcal reproduces the published figures of ../shared/real/README.md."""

from __future__ import annotations

import pytest

import relcal
from relcal.metrics import evaluate_predictions

from .conftest import need_shared_real

# (file, accuracy in %, 15-bin ECE, 15-bin MCE) -- markus93/NN_calibration's
# saved notebook outputs, via hollance/reliability-diagrams' CSVs (to 1e-6)
TOPLABEL_15 = [
    ("resnet110_cifar10_test_toplabel.csv", 93.56, 0.047503518641, 0.295798957348),
    ("resnet110_cifar100_test_toplabel.csv", 71.48, 0.184804543945, 0.398817125148),
    ("densenet40_cifar10_test_toplabel.csv", 92.42, 0.055002704373, 0.333955179269),
    ("densenet40_cifar100_test_toplabel.csv", 70.00, 0.211562852757, 0.45400331452),
    (
        "resnet50_cub200_test_toplabel.csv",
        73.1446323783,
        0.0235349822251,
        0.27288242057,
    ),
]

# long-tailed CIFAR-10 test logits (SCTL log): accuracy and ECE15 in %, 2 decimals
CIFAR10LT = [
    ("densenet40_cifar10lt_test.npz", 72.11, 21.08),
    ("resnet110_cifar10lt_test.npz", 75.97, 19.14),
    ("resnet110sd_cifar10lt_test.npz", 64.90, 14.43),
    ("wrn28_cifar10lt_test.npz", 85.38, 9.11),
]


def _load(name: str, **kw: object) -> relcal.Results:
    path = need_shared_real() / name
    return evaluate_predictions(relcal.load(path), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name, acc, ece, mce", TOPLABEL_15)
def test_toplabel_csv_15_bins(name: str, acc: float, ece: float, mce: float) -> None:
    r = _load(name)
    assert r.kind == "toplabel"
    assert r.accuracy * 100 == pytest.approx(acc, abs=1e-6)
    assert r.ece == pytest.approx(ece, abs=1e-6)
    assert r.mce == pytest.approx(mce, abs=1e-6)
    assert r.nll is None and "nll" in r.unavailable


def test_resnext101_imagenet_20_bins_to_1e8() -> None:
    r = _load("resnext101_32x8d_imagenet_val_toplabel.csv", n_bins=20)
    assert r.n == 50000
    assert r.accuracy * 100 == pytest.approx(79.312, abs=1e-9)
    assert r.ece == pytest.approx(0.08073629151433703, abs=1e-8)
    assert r.mce == pytest.approx(0.1919470946617725, abs=1e-8)
    assert r.mean_confidence == pytest.approx(0.8737401799026132, abs=1e-8)


def test_resnet101_imagenet_accuracy() -> None:
    r = _load("resnet101_imagenet_val_toplabel.csv")
    assert r.accuracy * 100 == pytest.approx(77.374, abs=1e-9)


@pytest.mark.parametrize("name, acc, ece", CIFAR10LT)
def test_cifar10lt_logits(name: str, acc: float, ece: float) -> None:
    r = _load(name)
    assert r.kind == "logits" and r.n == 10000 and r.n_classes == 10
    assert round(r.accuracy * 100, 2) == pytest.approx(acc, abs=1e-9)
    assert round(r.ece * 100, 2) == pytest.approx(ece, abs=1e-9)


@pytest.mark.parametrize(
    "name, acc, ece",
    [
        ("wrn16-4_cifar10_test_probs.npz", 91.09, 5.37),
        ("wrn16-4_cifar100_test_probs.npz", 75.43, 5.81),
    ],
)
def test_netcal_probability_records(name: str, acc: float, ece: float) -> None:
    """Not published; the figures shared/real/README.md computed with plain numpy."""
    r = _load(name)
    assert r.kind == "probs"  # detected: these files hold softmax outputs
    assert round(r.accuracy * 100, 2) == pytest.approx(acc, abs=1e-9)
    assert round(r.ece * 100, 2) == pytest.approx(ece, abs=1e-9)
