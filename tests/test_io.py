"""Loading every input format into one ``relcal.io.Predictions`` (``relcal.load``).

Small arrays are written to ``tmp_path``; the real saved predictions in
``../shared/real`` are loaded at the end (skipped locally when absent, an error
in CI).
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import relcal
from relcal.errors import RelcalError
from relcal.io import Predictions
from relcal.metrics import evaluate_predictions

from .conftest import need_shared_real

METRICS = (
    "accuracy",
    "mean_confidence",
    "ece",
    "rms_ce",
    "mce",
    "classwise_ece",
    "nll",
    "brier",
)


def softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def make(n: int = 60, c: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, c) with a spread wide enough to leave [0, 1], and labels."""
    rng = np.random.default_rng(seed)
    return 2.0 * rng.normal(size=(n, c)), rng.integers(0, c, n)


def is_memory_mapped(a: np.ndarray) -> bool:
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def assert_same_results(a: relcal.Results, b: relcal.Results) -> None:
    assert a.n == b.n and a.n_classes == b.n_classes
    for key in METRICS:
        expected = pytest.approx(getattr(b, key), rel=1e-9, abs=1e-12)
        assert getattr(a, key) == expected, key
    np.testing.assert_array_equal(a.table.count, b.table.count)


# --------------------------------------------------------------------------
# .npz


@pytest.mark.parametrize("key", ["logits", "probs", "probabilities", "scores"])
def test_npz_each_scores_key(tmp_path: Path, key: str) -> None:
    logits, labels = make()
    scores = softmax(logits) if key in ("probs", "probabilities") else logits
    path = tmp_path / "p.npz"
    np.savez(path, **{key: scores}, labels=labels)
    p = relcal.load(path)
    assert isinstance(p, Predictions)
    assert p.origin == {"scores": key, "labels": "labels"}
    assert p.kind == ("probs" if key in ("probs", "probabilities") else "logits")
    assert p.n_classes == 4 and p.n_samples == 60 and p.class_names is None
    np.testing.assert_array_equal(p.scores, scores)
    np.testing.assert_array_equal(p.labels, labels)
    assert p.labels.dtype == np.int64
    assert "p.npz" in p.source


@pytest.mark.parametrize("key", ["labels", "targets", "y", "y_true"])
def test_npz_each_labels_key(tmp_path: Path, key: str) -> None:
    logits, labels = make()
    path = tmp_path / "p.npz"
    np.savez(path, logits=logits, **{key: labels})
    p = relcal.load(path)
    assert p.origin["labels"] == key
    np.testing.assert_array_equal(p.labels, labels)


def test_npz_key_overrides(tmp_path: Path) -> None:
    logits, labels = make()
    other = logits[:, ::-1].copy()
    path = tmp_path / "p.npz"
    # standard keys present too: the override wins over them
    np.savez(path, logits=logits, labels=labels, out=other, gt=labels[::-1])
    p = relcal.load(path, scores_key="out", labels_key="gt")
    assert p.origin == {"scores": "out", "labels": "gt"}
    np.testing.assert_array_equal(p.scores, other)
    np.testing.assert_array_equal(p.labels, labels[::-1])
    # only non-standard names: loadable with the overrides alone
    np.savez(path, out=other, gt=labels)
    p = relcal.load(path, scores_key="out", labels_key="gt")
    assert p.kind == "logits" and p.n_classes == 4


def test_npz_class_names(tmp_path: Path) -> None:
    logits, labels = make()
    path = tmp_path / "p.npz"
    np.savez(
        path,
        logits=logits,
        labels=labels,
        class_names=np.array(["cat", "dog", "emu", "yak"]),
    )
    assert relcal.load(path).class_names == ("cat", "dog", "emu", "yak")


@pytest.mark.parametrize("key", ["probs", "probabilities"])
def test_npz_probs_key_declares_probabilities(tmp_path: Path, key: str) -> None:
    logits, labels = make()
    path = tmp_path / "p.npz"
    # values in [0, 1] that do not sum to 1: logits under "scores"...
    almost = softmax(logits) * 0.9
    np.savez(path, scores=almost, labels=labels)
    assert relcal.load(path).kind == "logits"
    # ...but an error under a probabilities key, which declares them
    np.savez(path, **{key: almost}, labels=labels)
    with pytest.raises(
        RelcalError,
        match=r"p\.npz: scores declared as probabilities.*"
        r"do not sum to 1",
    ):
        relcal.load(path)
    # an explicit kind still wins over the key
    assert relcal.load(path, kind="logits").kind == "logits"


# --------------------------------------------------------------------------
# .npy pair


def test_npy_pair_is_memory_mapped(tmp_path: Path) -> None:
    logits, labels = make()
    logits = logits.astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    p = relcal.load(tmp_path / "logits.npy", labels=tmp_path / "labels.npy")
    assert is_memory_mapped(p.scores), type(p.scores)
    assert p.scores.dtype == np.float32 and not p.scores.flags.writeable
    np.testing.assert_array_equal(p.scores, logits)
    np.testing.assert_array_equal(p.labels, labels)
    assert p.origin == {"scores": "logits.npy", "labels": "labels.npy"}
    assert "logits.npy" in p.source and "labels.npy" in p.source
    r = evaluate_predictions(p)
    assert_same_results(r, relcal.evaluate(logits, labels))


# --------------------------------------------------------------------------
# tables


def write_table(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


@pytest.fixture(params=[".csv", ".parquet"])
def suffix(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_table_default_score_columns(tmp_path: Path, suffix: str) -> None:
    logits, labels = make()
    df = pd.DataFrame(
        {
            "a": logits[:, 0],
            "label": labels,
            "b": logits[:, 1],
            "c": logits[:, 2],
            "d": logits[:, 3],
        }
    )
    p = relcal.load(write_table(df, tmp_path / f"t{suffix}"))
    assert p.origin == {"scores": "a,b,c,d", "labels": "label"}
    assert p.n_classes == 4 and p.kind == "logits"
    assert p.class_names == ("a", "b", "c", "d")
    np.testing.assert_allclose(p.scores, logits, rtol=1e-15)
    np.testing.assert_array_equal(p.labels, labels)


@pytest.mark.parametrize("how", ["list", "comma", "prefix"])
def test_table_score_cols(tmp_path: Path, suffix: str, how: str) -> None:
    logits, labels = make()
    df = pd.DataFrame(
        {
            "label": labels,
            "weight": np.arange(60.0),
            **{f"logit_{k}": logits[:, k] for k in range(4)},
        }
    )
    path = write_table(df, tmp_path / f"t{suffix}")
    cols = [f"logit_{k}" for k in range(4)]
    score_cols = {"list": cols, "comma": ",".join(cols), "prefix": "logit_"}[how]
    p = relcal.load(path, score_cols=score_cols)
    assert p.origin["scores"] == ",".join(cols)  # "weight" is not a score
    np.testing.assert_allclose(p.scores, logits, rtol=1e-15)
    expected = ("0", "1", "2", "3") if how == "prefix" else tuple(cols)
    assert p.class_names == expected


def test_table_labels_as_class_names(tmp_path: Path, suffix: str) -> None:
    logits, labels = make(c=3)
    names = np.array(["cat", "dog", "emu"])
    df = pd.DataFrame(
        {
            "label": names[labels],
            **{f"logit_{n}": logits[:, k] for k, n in enumerate(names)},
        }
    )
    path = write_table(df, tmp_path / f"t{suffix}")
    for score_cols in ("logit_", None):  # the prefix given, or found
        p = relcal.load(path, score_cols=score_cols)
        assert p.class_names == ("cat", "dog", "emu")
        np.testing.assert_array_equal(p.labels, labels)
        assert p.labels.dtype == np.int64


def test_table_label_col(tmp_path: Path, suffix: str) -> None:
    logits, labels = make()
    df = pd.DataFrame({"target": labels, **{f"p{k}": logits[:, k] for k in range(4)}})
    path = write_table(df, tmp_path / f"t{suffix}")
    p = relcal.load(path, label_col="target")
    assert p.origin == {"scores": "p0,p1,p2,p3", "labels": "target"}
    np.testing.assert_array_equal(p.labels, labels)
    with pytest.raises(RelcalError, match="no label column 'label'"):
        relcal.load(path)


def test_parquet_keeps_float32(tmp_path: Path) -> None:
    logits, labels = make()
    df = pd.DataFrame(
        {
            "label": labels,
            **{f"z{k}": logits[:, k].astype(np.float32) for k in range(4)},
        }
    )
    p = relcal.load(write_table(df, tmp_path / "t.parquet"))
    assert p.scores.dtype == np.float32


@pytest.mark.parametrize("suffix_", [".csv", ".parquet"])
def test_toplabel_table(tmp_path: Path, suffix_: str) -> None:
    rng = np.random.default_rng(7)
    true = rng.integers(0, 5, 200)
    pred = np.where(rng.random(200) < 0.7, true, rng.integers(0, 5, 200))
    conf = rng.uniform(0.2, 1.0, 200)
    df = pd.DataFrame({"true_label": true, "pred_label": pred, "confidence": conf})
    p = relcal.load(write_table(df, tmp_path / f"top{suffix_}"))
    assert p.kind == "toplabel" and p.scores is None
    assert p.n_classes == 5
    np.testing.assert_array_equal(p.labels, true)
    np.testing.assert_array_equal(p.predicted, pred)
    np.testing.assert_allclose(p.confidence, conf, rtol=1e-15)
    r = evaluate_predictions(p, n_bins=10)
    assert {"nll", "brier", "classwise_ece"} <= set(r.unavailable)
    assert r.nll is None and r.brier is None and r.classwise_ece is None
    assert r.accuracy == pytest.approx(np.mean(true == pred))
    assert r.mean_confidence == pytest.approx(conf.mean())
    # the ECE of (lo, hi] equal-width bins, recomputed here
    edges = np.linspace(0, 1, 11)
    b = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, 9)
    ece = sum(
        abs(np.mean(true[b == k] == pred[b == k]) - conf[b == k].mean())
        * np.mean(b == k)
        for k in range(10)
        if (b == k).any()
    )
    assert r.ece == pytest.approx(ece, rel=1e-12)


# --------------------------------------------------------------------------
# logits or probabilities; dtypes


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_detection_and_dtype_kept(tmp_path: Path, dtype: type) -> None:
    logits, labels = make(c=10)
    probs = softmax(logits).astype(dtype)  # float16 rows sum to 1 within ~1e-3
    for name, scores, kind in (
        ("z", logits.astype(dtype), "logits"),
        ("p", probs, "probs"),
    ):
        np.savez(tmp_path / f"{name}.npz", scores=scores, labels=labels)
        np.save(tmp_path / f"{name}.npy", scores)
        np.save(tmp_path / "y.npy", labels)
        for p in (
            relcal.load(tmp_path / f"{name}.npz"),
            relcal.load(tmp_path / f"{name}.npy", labels=tmp_path / "y.npy"),
        ):
            assert p.kind == kind
            assert p.scores.dtype == dtype
            np.testing.assert_array_equal(p.scores, scores)


def test_kind_overrides(tmp_path: Path) -> None:
    logits, labels = make()
    probs = softmax(logits)
    np.savez(tmp_path / "p.npz", scores=probs, labels=labels)
    np.savez(tmp_path / "z.npz", scores=logits, labels=labels)
    assert relcal.load(tmp_path / "p.npz").kind == "probs"
    assert relcal.load(tmp_path / "p.npz", kind="probs").kind == "probs"
    assert relcal.load(tmp_path / "p.npz", kind="logits").kind == "logits"
    assert relcal.load(tmp_path / "z.npz", kind="logits").kind == "logits"
    with pytest.raises(
        RelcalError, match="declared as probabilities, but they hold negative values"
    ):
        relcal.load(tmp_path / "z.npz", kind="probs")
    # probabilities read as logits are a different model: the metrics change
    as_logits = evaluate_predictions(relcal.load(tmp_path / "p.npz", kind="logits"))
    assert (
        as_logits.mean_confidence
        < evaluate_predictions(relcal.load(tmp_path / "p.npz")).mean_confidence
    )


def test_values_in_unit_interval_not_summing_to_one_are_logits(tmp_path: Path) -> None:
    _, labels = make()
    scores = np.random.default_rng(1).random((60, 4))
    np.savez(tmp_path / "s.npz", scores=scores, labels=labels)
    assert relcal.load(tmp_path / "s.npz").kind == "logits"


# --------------------------------------------------------------------------
# binary


@pytest.mark.parametrize("shape", ["(N,)", "(N,1)"])
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_binary_single_column(tmp_path: Path, shape: str, kind: str) -> None:
    rng = np.random.default_rng(3)
    z = 2.5 * rng.normal(size=500)
    y = (rng.random(500) < 1 / (1 + np.exp(-0.7 * z))).astype(np.int64)
    score = 1 / (1 + np.exp(-z)) if kind == "probs" else z
    two = np.column_stack(
        [1 - score, score] if kind == "probs" else [np.zeros_like(z), z]
    )
    stored = score if shape == "(N,)" else score[:, None]
    np.savez(tmp_path / "b.npz", scores=stored, labels=y)
    p = relcal.load(tmp_path / "b.npz")
    assert p.n_classes == 2 and p.kind == kind
    r = evaluate_predictions(p)
    assert r.n_classes == 2 and r.positive_table is not None
    explicit = relcal.evaluate(two, y)
    assert explicit.kind == kind
    assert r.ece == pytest.approx(explicit.ece, rel=1e-12, abs=1e-15)
    assert_same_results(r, explicit)


def test_binary_single_score_column_in_a_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    prob = rng.random(100)
    y = rng.integers(0, 2, 100)
    pd.DataFrame({"label": y, "p_pos": prob}).to_csv(tmp_path / "b.csv", index=False)
    p = relcal.load(tmp_path / "b.csv")
    assert p.n_classes == 2 and p.kind == "probs" and p.scores.shape == (100,)
    assert evaluate_predictions(p).ece == pytest.approx(
        relcal.evaluate(np.column_stack([1 - prob, prob]), y).ece, rel=1e-12
    )


# --------------------------------------------------------------------------
# labels


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.float32, bool])
def test_onehot_labels_become_indices(tmp_path: Path, dtype: type) -> None:
    logits, labels = make()
    np.savez(tmp_path / "p.npz", logits=logits, labels=np.eye(4, dtype=dtype)[labels])
    p = relcal.load(tmp_path / "p.npz")
    assert p.labels.shape == (60,) and p.labels.dtype == np.int64
    np.testing.assert_array_equal(p.labels, labels)


def test_float_labels_holding_whole_numbers(tmp_path: Path) -> None:
    logits, labels = make()
    np.savez(tmp_path / "p.npz", logits=logits, labels=labels.astype(np.float32))
    p = relcal.load(tmp_path / "p.npz")
    assert p.labels.dtype == np.int64
    np.testing.assert_array_equal(p.labels, labels)


# --------------------------------------------------------------------------
# segmentation


def seg_data(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, c, h, w = 3, 5, 6, 7
    logits = (2.0 * rng.normal(size=(n, c, h, w))).astype(np.float32)
    labels = rng.integers(0, c, (n, h, w))
    labels[rng.random((n, h, w)) < 0.2] = 255
    return logits, labels


def flat_reference(logits_nchw: np.ndarray, labels: np.ndarray) -> relcal.Results:
    c = logits_nchw.shape[1]
    rows = np.moveaxis(logits_nchw, 1, -1).reshape(-1, c)
    y = labels.reshape(-1)
    keep = y != 255
    return relcal.evaluate(rows[keep], y[keep])


def test_segmentation_nchw(tmp_path: Path) -> None:
    logits, labels = seg_data()
    np.savez(tmp_path / "seg.npz", logits=logits, labels=labels)
    p = relcal.load(tmp_path / "seg.npz", ignore_index=255)
    assert p.n_classes == 5 and p.ignore_index == 255
    assert p.scores.shape == logits.shape and p.n_samples == labels.size
    r = evaluate_predictions(p)
    assert r.n == int((labels != 255).sum())
    assert_same_results(r, flat_reference(logits, labels))
    # without --ignore-index, 255 is a label out of range
    with pytest.raises(RelcalError, match=r"seg\.npz: labels: \d+ values outside"):
        relcal.load(tmp_path / "seg.npz")


def test_segmentation_channels_last(tmp_path: Path) -> None:
    logits, labels = seg_data(6)
    nhwc = np.ascontiguousarray(np.moveaxis(logits, 1, -1))
    np.savez(tmp_path / "seg.npz", logits=nhwc, labels=labels)
    p = relcal.load(tmp_path / "seg.npz", ignore_index=255, channels_last=True)
    assert p.n_classes == 5 and p.scores.dtype == np.float32
    assert_same_results(evaluate_predictions(p), flat_reference(logits, labels))
    # memory-mapped (N, H, W, C) stays memory-mapped
    np.save(tmp_path / "s.npy", nhwc)
    np.save(tmp_path / "y.npy", labels)
    q = relcal.load(
        tmp_path / "s.npy",
        labels=tmp_path / "y.npy",
        ignore_index=255,
        channels_last=True,
    )
    assert is_memory_mapped(q.scores)
    assert_same_results(evaluate_predictions(q), flat_reference(logits, labels))


def test_channels_last_checks_label_shape(tmp_path: Path) -> None:
    logits, labels = seg_data(7)
    nhwc = np.moveaxis(logits, 1, -1)  # (3, 6, 7, 5)
    # same number of pixels, transposed: must not be silently reshaped
    np.savez(tmp_path / "seg.npz", logits=nhwc, labels=labels.transpose(0, 2, 1))
    with pytest.raises(RelcalError, match=r"expected labels of shape \(3, 6, 7\)"):
        relcal.load(tmp_path / "seg.npz", ignore_index=255, channels_last=True)


# --------------------------------------------------------------------------
# the real files


def test_real_logits_npz() -> None:
    real = need_shared_real()
    files = sorted(real.glob("*_cifar10lt_test.npz"))
    assert files, f"no *_cifar10lt_test.npz in {real}"
    for path in files:
        p = relcal.load(path)
        assert p.kind == "logits", path.name
        assert p.origin == {"scores": "logits", "labels": "labels"}
        assert p.n_classes == 10 and p.n_samples == 10000
        assert p.scores.dtype == np.float32


def test_real_probs_npz() -> None:
    path = need_shared_real() / "wrn16-4_cifar10_test_probs.npz"
    p = relcal.load(path)
    assert p.kind == "probs" and p.origin["scores"] == "probs"
    assert p.n_classes == 10 and p.scores.dtype == np.float32
    # the same array under a neutral key is detected as probabilities too
    with np.load(path) as f:
        probs, labels = f["probs"], f["labels"]
    assert relcal.evaluate(probs, labels).kind == "probs"


def test_real_toplabel_csv() -> None:
    path = need_shared_real() / "resnet110_cifar10_test_toplabel.csv"
    p = relcal.load(path)
    assert p.kind == "toplabel" and p.scores is None
    assert p.n_classes == 10 and p.n_samples == 10000
    assert p.confidence.min() >= 0 and p.confidence.max() <= 1
    r = evaluate_predictions(p)
    assert {"nll", "brier", "classwise_ece"} <= set(r.unavailable)
