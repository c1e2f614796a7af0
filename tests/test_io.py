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
from relcal.errors import RelcalError, ScoresKindError
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
    # values in [0, 1] that do not sum to 1: logits only when declared so
    # under "scores"...
    almost = softmax(logits) * 0.9
    np.savez(path, scores=almost, labels=labels)
    assert relcal.load(path, kind="logits").kind == "logits"
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


def test_values_in_unit_interval_not_summing_to_one_are_refused(tmp_path: Path) -> None:
    # neither probabilities nor clearly logits: never silently read as logits
    _, labels = make()
    scores = np.random.default_rng(1).random((60, 4))
    np.savez(tmp_path / "s.npz", scores=scores, labels=labels)
    sums = scores.sum(axis=1)
    with pytest.raises(ScoresKindError) as info:
        relcal.load(tmp_path / "s.npz")
    assert str(info.value) == (
        f"{tmp_path / 's.npz'}: scores: every value is in [0, 1] but 60 of 60 rows"
        f" do not sum to 1 within 0.0001 (first: {sums[0]:.6g} at row 0): not"
        ' probabilities of 4 classes; to read them as logits, give kind="logits"'
    )
    assert relcal.load(tmp_path / "s.npz", kind="logits").kind == "logits"


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


# --------------------------------------------------------------------------
# inputs as users have them: keys, (N, 1) labels, names, renamed top-label
# columns, and messages that name the fix (Python spelling through the
# library, flag spelling through the CLI)


def cli_json(args: list[str], capsys: pytest.CaptureFixture) -> dict:
    import json

    from relcal.cli import main

    assert main(["metrics", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def cli_error(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """The one stderr line of a failing `relcal metrics`, exit code 2."""
    from relcal.cli import main

    assert main(["metrics", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("Error: ")
    return err[len("Error: ") : -1]


def library_error(path: Path, **options: object) -> str:
    with pytest.raises(RelcalError) as info:
        relcal.load(path, **options)
    return str(info.value)


def assert_reference(r: relcal.Results, logits: np.ndarray, labels: np.ndarray) -> None:
    """Every metric equals the float64 numpy reference of test_metrics."""
    from .test_metrics import reference

    ref = reference(logits, labels)
    for key, value in ref.items():
        assert getattr(r, key) == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize(
    ("skey", "lkey"),
    [
        ("predictions", "ground_truth"),  # netcal's example records
        ("y_prob", "y_true"),
        ("y_pred_proba", "targets"),
        ("y_proba", "y_test"),
        ("scores", "target"),
        ("probs", "label"),
    ],
)
def test_npz_more_keys_load_with_no_option(
    tmp_path: Path, skey: str, lkey: str, capsys: pytest.CaptureFixture
) -> None:
    logits, labels = make(400, 5, seed=11)
    probs = softmax(logits)
    path = tmp_path / "records.npz"
    np.savez(path, **{skey: probs, lkey: labels})
    p = relcal.load(path)
    assert p.origin == {"scores": skey, "labels": lkey} and p.kind == "probs"
    r = evaluate_predictions(p)
    assert_reference(r, np.log(probs), labels)
    np.savez(tmp_path / "canonical.npz", probs=probs, labels=labels)
    assert_same_results(
        r, evaluate_predictions(relcal.load(tmp_path / "canonical.npz"))
    )
    doc = cli_json([str(path)], capsys)
    assert doc["input"]["scores_from"] == skey and doc["input"]["labels_from"] == lkey
    assert doc["metrics"]["ece"] == pytest.approx(r.ece, rel=1e-12)
    assert doc["metrics"]["accuracy"] == pytest.approx(
        np.mean(probs.argmax(1) == labels)
    )


LOOKED_FOR_SCORES = (
    "logits, probs, probabilities, scores, predictions, y_prob, y_proba, y_pred_proba"
)
LOOKED_FOR_LABELS = "labels, label, targets, target, y, y_true, y_test, ground_truth"


def test_npz_missing_keys_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Both keys missing: one message with every key and both options."""
    logits, labels = make()
    path = tmp_path / "odd.npz"
    np.savez(path, out=logits, gt=labels, ids=np.arange(60))
    message = (
        f"{path}: no scores array (looked for {LOOKED_FOR_SCORES}) and no labels"
        f" array (looked for {LOOKED_FOR_LABELS}); the file has: out, gt, ids;"
        " name the arrays with {} and {}"
    )
    assert library_error(path) == message.format("scores_key=", "labels_key=")
    assert cli_error([str(path)], capsys) == message.format(
        "--scores-key", "--labels-key"
    )
    # one run with both options then works
    p = relcal.load(path, scores_key="out", labels_key="gt")
    assert_reference(evaluate_predictions(p), logits, labels)
    # one key found, the other not: still both options in the one message
    np.savez(path, predictions=logits, truth=labels)
    assert library_error(path) == (
        f"{path}: no labels array (looked for {LOOKED_FOR_LABELS}); the file has:"
        " predictions, truth; name the arrays with scores_key= and labels_key="
    )


@pytest.mark.parametrize(
    "case", ["multiclass", "binary-1d", "binary-n1", "segmentation"]
)
def test_labels_with_a_class_axis_of_one(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture
) -> None:
    """Labels (N, 1) (and (N, 1, H, W)) read as (N,) (and (N, H, W))."""
    rng = np.random.default_rng(21)
    if case == "segmentation":
        scores = rng.normal(size=(3, 4, 5, 6))
        labels = rng.integers(0, 4, (3, 5, 6))
        column = labels[:, None]
    else:
        c = 5 if case == "multiclass" else 2
        logits, labels = make(300, c, seed=21)
        scores = {
            "multiclass": logits,
            "binary-1d": softmax(logits)[:, 1],
            "binary-n1": softmax(logits)[:, 1:],
        }[case]
        column = labels[:, None]
    np.savez(tmp_path / "flat.npz", scores=scores, labels=labels)
    np.savez(tmp_path / "column.npz", scores=scores, labels=column)
    p = relcal.load(tmp_path / "column.npz")
    np.testing.assert_array_equal(p.labels, labels)
    r = evaluate_predictions(p)
    assert_same_results(r, evaluate_predictions(relcal.load(tmp_path / "flat.npz")))
    assert_same_results(relcal.evaluate(scores, column), r)
    if case == "multiclass":
        assert_reference(r, scores, labels)
    doc = cli_json([str(tmp_path / "column.npz")], capsys)
    assert doc["metrics"]["ece"] == pytest.approx(r.ece, rel=1e-12)
    assert doc["n_samples"] == labels.size


def test_npz_string_labels_matched_against_class_names(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    logits, labels = make(200, 4, seed=3)
    names = np.array(["cat", "dog", "emu", "yak"])
    path = tmp_path / "named.npz"
    np.savez(path, logits=logits, labels=names[labels], class_names=names)
    p = relcal.load(path)
    np.testing.assert_array_equal(p.labels, labels)
    assert p.class_names == ("cat", "dog", "emu", "yak")
    assert_reference(evaluate_predictions(p), logits, labels)
    # bytes (dtype S), as numpy saves ASCII strings from some pipelines
    np.savez(
        path,
        logits=logits,
        labels=names[labels].astype("S"),
        class_names=names.astype("S"),
    )
    q = relcal.load(path)
    assert q.class_names == ("cat", "dog", "emu", "yak")
    np.testing.assert_array_equal(q.labels, labels)
    # unknown names: listed, with the first one's row and the classes
    bad = names[labels].astype("<U4")
    bad[[5, 9, 40]] = ["gnu", "ant", "gnu"]
    np.savez(path, logits=logits, labels=bad, class_names=names)
    message = (
        f"{path}: array 'labels': unknown class names 'ant', 'gnu' (first: 'gnu'"
        " at row 5; classes: cat, dog, emu, yak)"
    )
    assert library_error(path) == message
    assert cli_error([str(path)], capsys) == message
    # strings without class_names
    np.savez(path, logits=logits, labels=names[labels])
    message = (
        f"{path}: array 'labels' holds strings (first: '{names[labels[0]]}'), not"
        " class indices, and the file has no 'class_names' array to match them"
        " against"
    )
    assert library_error(path) == message
    assert cli_error([str(path)], capsys) == message
    # class_names that do not fit the scores: said before any name is matched
    np.savez(path, logits=logits, labels=names[labels], class_names=names[:3])
    assert library_error(path) == (
        f"{path}: class_names has 3 names but the scores have 4 classes"
    )
    np.savez(path, logits=logits[:0], labels=names[:0])
    assert library_error(path) == (
        f"{path}: array 'labels' holds strings, not class indices, and the file"
        " has no 'class_names' array to match them against"
    )


def toplabel_data(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A top-label table with other column names: y_true, y_pred, conf."""
    rng = np.random.default_rng(8)
    true = rng.integers(0, 6, 852)
    pred = np.where(rng.random(852) < 0.6, true, rng.integers(0, 6, 852))
    conf = rng.uniform(0.3, 1.0, 852)
    path = tmp / "top.csv"
    pd.DataFrame({"y_true": true, "y_pred": pred, "conf": conf}).to_csv(
        path, index=False
    )
    return path, true, pred, conf


def test_toplabel_table_with_other_column_names(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    renamed, true, pred, conf = toplabel_data(tmp_path)
    p = relcal.load(
        renamed, label_col="y_true", pred_col="y_pred", confidence_col="conf"
    )
    assert p.kind == "toplabel" and p.n_classes == 6
    assert p.origin == {"scores": "y_pred,conf", "labels": "y_true"}
    r = evaluate_predictions(p, n_bins=15)
    # float64 numpy: accuracy, and the ECE of (lo, hi] equal-width bins
    b = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
    ece = sum(
        abs(np.mean(true[b == k] == pred[b == k]) - conf[b == k].mean())
        * np.mean(b == k)
        for k in range(15)
        if (b == k).any()
    )
    assert r.accuracy == pytest.approx(np.mean(true == pred), rel=1e-15)
    assert r.ece == pytest.approx(ece, rel=1e-12)
    canonical = tmp_path / "canonical.csv"
    pd.DataFrame({"true_label": true, "pred_label": pred, "confidence": conf}).to_csv(
        canonical, index=False
    )
    assert r.ece == evaluate_predictions(relcal.load(canonical), n_bins=15).ece
    flags = [
        "--label-col",
        "y_true",
        "--pred-col",
        "y_pred",
        "--confidence-col",
        "conf",
    ]
    doc = cli_json([str(renamed), *flags], capsys)
    assert doc["scores"] == "toplabel"
    assert doc["metrics"]["ece"] == pytest.approx(ece, rel=1e-12)


def test_toplabel_table_read_the_usual_way_names_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path, true, _, _ = toplabel_data(tmp_path)
    bad = np.flatnonzero(true > 1)
    message = (
        f"{path}: labels: {len(bad)} values outside [0, 1] (first: {true[bad[0]]} at"
        f" row {bad[0]}); if the table is top-label (true class, predicted class,"
        " confidence), read it with {}"
    )
    assert library_error(path, label_col="y_true") == message.format(
        "pred_col='y_pred' and confidence_col='conf'"
    )
    assert cli_error([str(path), "--label-col", "y_true"], capsys) == message.format(
        "--pred-col y_pred and --confidence-col conf"
    )
    message = (
        f"{path}: no label column 'label'; the columns are: y_true, y_pred, conf;"
        " name it with {} (and, for a top-label table, {} and {})"
    )
    assert library_error(path) == message.format(
        "label_col=", "pred_col=", "confidence_col="
    )
    assert cli_error([str(path)], capsys) == message.format(
        "--label-col", "--pred-col", "--confidence-col"
    )
    # one of the two options alone; a column that is not there
    assert library_error(path, pred_col="y_pred") == (
        f"{path}: pred_col= makes a top-label table, which needs confidence_col= too"
    )
    assert cli_error([str(path), "--confidence-col", "conf"], capsys) == (
        f"{path}: --confidence-col makes a top-label table, which needs --pred-col too"
    )
    assert library_error(
        path, label_col="y_true", pred_col="p", confidence_col="conf"
    ) == (f"{path}: no column 'p' for pred_col=; the columns are: y_true, y_pred, conf")


def test_segmentation_255_without_ignore_index_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    logits, labels = seg_data(9)  # (3, 5, 6, 7), about 20 % of labels 255
    n_bad = int((labels == 255).sum())
    first = np.argwhere(labels == 255)[0]
    where = f"index ({first[0]}, {first[1]}, {first[2]})"
    path = tmp_path / "seg.npz"
    message = (
        f"{path}: labels: {n_bad} values outside [0, 4] (first: 255 at {where});"
        " if 255 marks labels to ignore, give {}"
    )
    np.savez(path, logits=logits, labels=labels)
    assert library_error(path) == message.format("ignore_index=255")
    assert cli_error([str(path)], capsys) == message.format("--ignore-index 255")
    # the same map channels-last (checked before its pixels become rows)
    np.savez(path, logits=np.moveaxis(logits, 1, -1), labels=labels)
    assert library_error(path, channels_last=True) == message.format("ignore_index=255")
    assert cli_error([str(path), "--channels-last"], capsys) == message.format(
        "--ignore-index 255"
    )
    # the option named makes it load, with the float64 reference numbers
    p = relcal.load(path, channels_last=True, ignore_index=255)
    keep = labels.reshape(-1) != 255
    rows = np.moveaxis(logits, 1, -1).reshape(-1, 5)
    assert_reference(evaluate_predictions(p), rows[keep], labels.reshape(-1)[keep])
    # two different values out of range, or a classification file: no guess
    labels[0, 0, 0], labels[0, 0, 1] = 7, 255
    np.savez(path, logits=logits, labels=labels)
    assert "ignore_index" not in library_error(path)
    z, y = make()
    y[3] = 255
    np.savez(path, logits=z, labels=y)
    assert (
        library_error(path)
        == f"{path}: labels: 1 values outside [0, 3] (first: 255 at row 3)"
    )


def test_channels_last_map_without_the_option_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rng = np.random.default_rng(4)
    nhwc = rng.normal(size=(2, 6, 7, 5)).astype(np.float32)
    labels = rng.integers(0, 5, (2, 6, 7))
    path = tmp_path / "seg.npz"
    np.savez(path, logits=nhwc, labels=labels)
    message = (
        f"{path}: labels of shape (2, 6, 7) do not fit scores of shape (2, 6, 7, 5)"
        " (expected labels of shape (2, 7, 5)); the class axis looks last: give {}"
    )
    assert library_error(path) == message.format("channels_last=True")
    assert cli_error([str(path)], capsys) == message.format("--channels-last")
    # arrays in memory: the message says how to move the axis
    with pytest.raises(RelcalError) as info:
        relcal.evaluate(nhwc, labels)
    assert str(info.value) == (
        "labels of shape (2, 6, 7) do not fit scores of shape (2, 6, 7, 5)"
        " (expected labels of shape (2, 7, 5)); the class axis looks last: move it"
        " to axis 1 (np.moveaxis(scores, -1, 1))"
    )
    p = relcal.load(path, channels_last=True)
    # masks with a trailing axis of one, as TensorFlow keeps them: the same
    np.savez(tmp_path / "masks.npz", logits=nhwc, labels=labels[..., None])
    q = relcal.load(tmp_path / "masks.npz", channels_last=True)
    np.testing.assert_array_equal(q.labels, p.labels)
    assert_reference(
        evaluate_predictions(p),
        nhwc.reshape(-1, 5).astype(np.float64),
        labels.reshape(-1),
    )
