"""Metrics against an independent float64 reference, common properties, and small
published unit values (torchmetrics' and scikit-learn's doctests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relcal
from relcal.errors import RelcalError
from relcal.synth import make_logits, make_segmentation


def softmax64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference(logits: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict:
    """Plain float64 numpy, written from the definitions (not from relcal's code)."""
    p = softmax64(logits)
    n, c = p.shape
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = pred == labels
    edges = np.linspace(0, 1, n_bins + 1)
    ece = rms = mce = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        m = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if m.any():
            gap = abs(conf[m].mean() - correct[m].mean())
            ece += m.mean() * gap
            rms += m.mean() * gap**2
            mce = max(mce, gap)
    cw = []
    onehot = np.eye(c)[labels]
    for k in range(c):
        total = 0.0
        for b in range(n_bins):
            lo, hi = edges[b], edges[b + 1]
            pk = p[:, k]
            m = (pk > lo) & (pk <= hi) if b else (pk >= lo) & (pk <= hi)
            if m.any():
                total += m.sum() / n * abs(pk[m].mean() - onehot[m, k].mean())
        cw.append(total)
    z = np.asarray(logits, dtype=np.float64)
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    return {
        "accuracy": correct.mean(),
        "ece": ece,
        "rms_ce": np.sqrt(rms),
        "mce": mce,
        "classwise_ece": np.mean(cw),
        "nll": np.mean(lse - z[np.arange(n), labels]),
        "brier": np.mean(((p - onehot) ** 2).sum(axis=1)),
    }


# the public metric functions, each with the Results field it must agree with
METRICS: dict[str, Callable[..., float]] = {
    "accuracy": relcal.accuracy,
    "ece": relcal.ece,
    "rms_ce": relcal.rms_calibration_error,
    "mce": relcal.mce,
    "classwise_ece": relcal.classwise_ece,
    "nll": relcal.nll,
    "brier": relcal.brier_score,
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_logits(3000, 7, seed=5)


@pytest.mark.parametrize(
    "n, c, seed", [(4000, 10, 1), (600, 1000, 2), (5000, 2, 3), (3000, 3, 4)]
)
def test_evaluate_equals_float64_reference(n: int, c: int, seed: int) -> None:
    logits, labels = make_logits(n, c, seed=seed)
    r = relcal.evaluate(logits, labels)
    ref = reference(logits, labels)
    for name, value in ref.items():
        assert getattr(r, name) == pytest.approx(value, abs=1e-9), name


@pytest.mark.parametrize("name", METRICS)
def test_function_equals_evaluate(name: str, data: tuple) -> None:
    # top-label-only functions take a float32 softmax of float32 logits (float64
    # sums); evaluate() a float64 one: confidences differ by ~1e-7 relative
    logits, labels = data
    assert METRICS[name](logits, labels) == pytest.approx(
        getattr(relcal.evaluate(logits, labels), name), abs=1e-8
    )


@pytest.mark.parametrize("name", METRICS)
def test_sample_order_invariance(name: str, data: tuple) -> None:
    logits, labels = data
    perm = np.random.default_rng(0).permutation(len(labels))
    assert METRICS[name](logits[perm], labels[perm]) == pytest.approx(
        METRICS[name](logits, labels), abs=1e-12
    )


@pytest.mark.parametrize("name", METRICS)
def test_float32_equals_float64(name: str, data: tuple) -> None:
    logits, labels = data
    assert METRICS[name](logits, labels) == pytest.approx(
        METRICS[name](logits.astype(np.float64), labels), abs=1e-8
    )


@pytest.mark.parametrize("name", METRICS)
def test_logits_and_probabilities_agree(name: str, data: tuple) -> None:
    logits, labels = data
    probs = softmax64(logits)
    assert METRICS[name](probs, labels) == pytest.approx(
        METRICS[name](logits, labels), abs=1e-8
    )


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nonfinite_scores_raise(name: str, bad: str, data: tuple) -> None:
    logits, labels = data
    logits = logits.copy()
    logits[17, 3] = float(bad)
    with pytest.raises(RelcalError, match=r"NaN or \+inf.*row 17"):
        METRICS[name](logits, labels)


@pytest.mark.parametrize("name", METRICS)
def test_minus_inf_logit_is_a_masked_class(name: str, data: tuple) -> None:
    """-inf means probability 0: fine for another class, an error for the label."""
    logits, labels = data
    masked = logits.astype(np.float64)
    row = 17
    other = (labels[row] + 1) % masked.shape[1]
    masked[row, other] = -np.inf
    finite = masked.copy()
    finite[row, other] = -1e4  # exp underflows to 0 as well
    assert METRICS[name](masked, labels) == pytest.approx(
        METRICS[name](finite, labels), abs=1e-12
    )
    masked[row, labels[row]] = -np.inf
    with pytest.raises(RelcalError, match=r"true class.*-inf.*row 17"):
        METRICS[name](masked, labels)


@pytest.mark.parametrize("name", METRICS)
def test_empty_input_raises(name: str) -> None:
    with pytest.raises(RelcalError, match="empty"):
        METRICS[name](np.zeros((0, 3), np.float32), np.zeros(0, np.int64))


@pytest.mark.parametrize("name", METRICS)
def test_labels_out_of_range_raise(name: str, data: tuple) -> None:
    logits, labels = data
    labels = labels.copy()
    labels[40] = 12
    with pytest.raises(RelcalError, match=r"outside \[0, 6\] \(first: 12 at row 40\)"):
        METRICS[name](logits, labels)


def test_one_hot_labels(data: tuple) -> None:
    logits, labels = data
    onehot = np.eye(7)[labels]
    assert relcal.ece(logits, onehot) == relcal.ece(logits, labels)


def test_torchmetrics_doctest_values() -> None:
    # torchmetrics' documented examples (REFERENCES.md section 7)
    probs = np.array(
        [[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]]
    )
    target = np.array([0, 1, 2, 0])
    assert relcal.ece(probs, target, n_bins=3) == pytest.approx(0.2000, abs=5e-5)
    assert relcal.rms_calibration_error(probs, target, n_bins=3) == pytest.approx(
        0.2082, abs=5e-5
    )
    assert relcal.mce(probs, target, n_bins=3) == pytest.approx(0.2333, abs=5e-5)
    # binary: torchmetrics calibrates P(class 1), relcal's positive-class table
    t = relcal.positive_class_table(
        np.array([0.25, 0.25, 0.55, 0.75, 0.75]), np.array([0, 0, 1, 1, 1]), n_bins=2
    )
    ece, rms, mce = relcal.calibration_errors(t)
    assert (ece, rms, mce) == pytest.approx((0.2900, 0.2918, 0.3167), abs=5e-5)


def test_sklearn_calibration_curve_doctest() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    y_prob = np.array([0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1.0])
    t = relcal.positive_class_table(y_prob, y_true, n_bins=3)
    nonempty = t.count > 0
    assert t.accuracy[nonempty] == pytest.approx([0, 0.5, 1])
    assert t.mean_conf[nonempty] == pytest.approx([0.2, 0.525, 0.85])


def test_binary_one_column_equals_two_columns() -> None:
    logits, labels = make_logits(5000, 2, seed=9)
    d = (logits[:, 1] - logits[:, 0]).astype(np.float64)
    two = relcal.evaluate(logits, labels)
    one = relcal.evaluate(d, labels, kind="logits")
    for name in METRICS:
        assert getattr(one, name) == pytest.approx(getattr(two, name), abs=1e-9), name
    p1 = softmax64(logits)[:, 1]
    prob = relcal.evaluate(p1, labels)
    assert prob.kind == "probs"
    assert prob.ece == pytest.approx(two.ece, abs=1e-9)


def test_binary_positive_class_curve() -> None:
    logits, labels = make_logits(5000, 2, seed=9)
    r = relcal.evaluate(logits, labels)
    assert r.positive_table is not None
    p1 = softmax64(logits)[:, 1]
    edges = np.linspace(0, 1, 16)
    idx = np.searchsorted(edges[1:-1], p1)
    counts = np.bincount(idx, minlength=15)
    assert np.array_equal(r.positive_table.count, counts)
    freq = np.bincount(idx, labels == 1, 15)[counts > 0] / counts[counts > 0]
    assert np.allclose(r.positive_table.accuracy[counts > 0], freq, atol=1e-12)


def test_segmentation_equals_flattened_pixels() -> None:
    logits, labels = make_segmentation(2, 5, 24, 20, seed=4)
    r = relcal.evaluate(logits, labels, ignore_index=255)
    rows = logits.transpose(0, 2, 3, 1).reshape(-1, 5)
    flat = labels.reshape(-1)
    keep = flat != 255
    ref = relcal.evaluate(rows[keep], flat[keep])
    assert r.n == int(keep.sum())
    for name in METRICS:
        assert getattr(r, name) == pytest.approx(getattr(ref, name), abs=1e-12), name
    assert np.array_equal(r.table.count, ref.table.count)


def test_ties_go_to_the_first_class() -> None:
    probs = np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    assert relcal.accuracy(probs, [0, 0]) == 1.0
    assert relcal.accuracy(probs, [1, 0]) == 0.5
    seg = np.array([[[[0.5]], [[0.5]], [[0.0]]]])  # (1, 3, 1, 1), a tie
    assert relcal.accuracy(seg, np.array([[[1]]])) == 0.0
    assert relcal.accuracy(seg, np.array([[[0]]])) == 1.0


def test_mass_binning_balances_counts(data: tuple) -> None:
    logits, labels = data
    t = relcal.reliability_table(logits, labels, n_bins=10, binning="mass")
    assert t.count.min() >= 299 and t.count.max() <= 301


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 12), st.integers(1, 300), st.integers(0, 10**6), st.floats(0.1, 20)
)
def test_properties(c: int, n: int, seed: int, scale: float) -> None:
    logits, labels = make_logits(n, c, seed=seed, scale=scale)
    # logits, said so: small logits may all lie in [0, 1], which kind="auto"
    # refuses to guess about (validate's ScoresKindError)
    r = relcal.evaluate(logits, labels, kind="logits")
    assert 0 <= r.ece <= r.rms_ce + 1e-12 <= r.mce + 2e-12 <= 1 + 1e-12
    assert 0 <= r.classwise_ece <= 1
    assert r.nll >= 0 and 0 <= r.brier <= 2
    assert r.table.count.sum() == n
    # ECE is invariant to adding a constant to every logit of a row
    shifted = logits.astype(np.float64) + np.arange(n)[:, None]
    assert relcal.ece(shifted, labels, kind="logits") == pytest.approx(r.ece, abs=1e-9)


@pytest.mark.parametrize("n_classes", [3, 100])  # class-first slabs; rows
@pytest.mark.parametrize("seg", [False, True])
def test_ties_above_one_half_in_probabilities_within_the_sum_tolerance(
    n_classes: int, seg: bool
) -> None:
    # float16 rows may sum to 1 + 2 C eps (at most 1 + 1e-2): two tied maxima
    # just above 1/2 are still a tie, and the first class is the prediction
    top = 0.5024 if n_classes == 3 else 0.504
    probs = np.zeros((40, n_classes), dtype=np.float16)
    probs[:, 1] = probs[:, 2] = top
    labels = np.tile([1, 2], 20)
    if seg:
        probs = probs.T.reshape(1, n_classes, 5, 8)
        labels = labels.reshape(1, 5, 8)
    assert relcal.evaluate(probs, labels, kind="probs").accuracy == 0.5
