"""fit-temperature and calibrate stream their input (issue #13, item 6).

Streamed (forced tiny chunks, one or two threads) equals in memory: the same
temperature (1e-9) and the same metrics (1e-12 relative) in every format,
segmentation with an ignore label included; the subsample and the folds are
drawn by row, so they do not depend on the chunking or the threads.
calibrate writes its .npz member by member into a temporary file that is
renamed at the end: an error mid-run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import relcal
from relcal.cli import main
from relcal.io import load
from relcal.summary import array_chunks
from relcal.synth import make_logits, make_segmentation
from relcal.temperature import (
    as_logits,
    calibrated_arrays,
    fit_chunks,
    fit_temperature,
    fold_of,
    measure_scaling,
    scale_folds,
    scale_logits,
)

from .test_streaming_commands import FORMATS, make_input

METRICS = ("accuracy", "ece", "rms_ce", "mce", "classwise_ece", "nll", "brier")


def _segmentation(tmp: Path) -> tuple[list[str], dict]:
    scores, labels = make_segmentation(6, 4, 12, 12, seed=5)
    labels = labels.astype(np.uint8)
    rng = np.random.default_rng(3)
    labels[rng.random(labels.shape) < 0.1] = 255  # 10% ignored
    np.save(tmp / "seg.npy", scores.astype(np.float32))
    np.save(tmp / "lab.npy", labels)
    args = [str(tmp / "seg.npy"), "--labels", str(tmp / "lab.npy")]
    return [*args, "--ignore-index", "255"], {
        "labels": tmp / "lab.npy",
        "ignore_index": 255,
    }


INPUTS = [*FORMATS, "segmentation_npy"]


def _input(tmp: Path, fmt: str) -> tuple[list[str], dict, str]:
    """The CLI's arguments and io.load's options of the dataset ``fmt``, and
    the file io.load reads (for a directory, an .npz of the same arrays)."""
    args, options = (
        _segmentation(tmp) if fmt == "segmentation_npy" else (make_input(tmp, fmt))
    )
    whole = str(tmp / "whole.npz") if fmt == "directory" else args[0]
    return args, options, whole


def _in_memory(path: str, options: dict, k: int | None) -> relcal.temperature.Scaling:
    """The same workflow on the file loaded whole, as one chunk."""
    p = load(path, **options)
    return measure_scaling(
        lambda: [(p.scores, p.labels, 0)],
        kind=p.kind,
        shape=p.scores.shape,
        n_classes=p.n_classes,
        ignore_index=p.ignore_index,
        class_names=p.class_names,
        k=k,
    )


def _close(a: float | None, b: float | None, rel: float) -> bool:
    if a is None or b is None:
        return a is b
    return a == pytest.approx(b, rel=rel, abs=1e-15)


@pytest.mark.parametrize("fmt", INPUTS)
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_streamed_fit_equals_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, jobs: str
) -> None:
    args, options, whole = _input(tmp_path, fmt)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "7")  # 7 rows (images) a chunk
    out = tmp_path / "t.json"
    assert (
        main(["fit-temperature", *args, "--cv", "3", "-o", str(out), "-j", jobs, "-q"])
        == 0
    )
    doc = json.loads(out.read_text())
    mem = _in_memory(whole, options, 3)
    assert doc["temperature"] == pytest.approx(mem.fit.temperature, rel=1e-9)
    assert doc["passes"] == mem.fit.passes
    assert doc["fitted_on"]["n_samples"] == mem.fit.n
    for key in METRICS:
        assert _close(doc["in_sample"]["before"][key], getattr(mem.before, key), 1e-12)
        assert _close(doc["in_sample"]["after"][key], getattr(mem.after, key), 1e-12)
        assert _close(
            doc["cross_fitted"]["after"][key], getattr(mem.cross[3], key), 1e-12
        )
    np.testing.assert_allclose(
        doc["cross_fitted"]["temperatures"], mem.cross[2], rtol=1e-9
    )
    # and the in-memory workflow is relcal.evaluate of the scaled logits
    p = load(whole, **options)
    z, y = as_logits(p.scores, p.labels, kind=p.kind, ignore_index=p.ignore_index)
    after = relcal.evaluate(scale_logits(z, doc["temperature"]), y, kind="logits")
    assert doc["temperature"] == pytest.approx(
        fit_temperature(
            p.scores, p.labels, kind=p.kind, ignore_index=p.ignore_index
        ).temperature,
        rel=1e-9,
    )
    for key in METRICS:
        assert _close(doc["in_sample"]["after"][key], getattr(after, key), 1e-12)
    before = relcal.evaluate(
        p.scores, p.labels, kind=p.kind, ignore_index=p.ignore_index
    )
    assert _close(doc["in_sample"]["before"]["ece"], before.ece, 1e-12)


def test_cross_fitted_metrics_scale_each_fold_by_its_temperature(
    tmp_path: Path,
) -> None:
    """The cross-fitted block: each row scaled by the T fitted without its
    fold (fold = fold_of(global row, k, 0)), then every metric."""
    args, options = _segmentation(tmp_path)
    out = tmp_path / "t.json"
    assert main(["fit-temperature", *args, "--cv", "4", "-o", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    p = load(args[0], **options)
    flat = np.moveaxis(p.scores, 1, -1).reshape(-1, p.scores.shape[1])
    rows = np.flatnonzero(p.labels.reshape(-1) != 255)  # global pixel ids
    z, y = flat[rows], p.labels.reshape(-1)[rows].astype(np.int64)
    folds = fold_of(rows, 4, 0)
    temps = doc["cross_fitted"]["temperatures"]
    for i in range(4):  # each T is the optimum without its fold
        keep = folds != i
        ref = fit_temperature(z[keep], y[keep]).temperature
        assert temps[i] == pytest.approx(ref, rel=1e-7)
    cross = relcal.evaluate(scale_folds(z, temps, folds), y, kind="logits")
    for key in METRICS:
        assert _close(doc["cross_fitted"]["after"][key], getattr(cross, key), 1e-12)
    assert doc["cross_fitted"]["folds"] == "row-hash"


def test_fit_does_not_depend_on_chunks_or_jobs() -> None:
    """≥ 2**20 logits (the steered path with its subsample): one chunk, 1 row
    chunks, 333-row chunks, on one or two threads: the same fits (bit for bit
    across threads), the same subsample, folds and passes."""
    z, y = make_logits(20000, 64, seed=21, temperature=1.7)
    fits = {}
    for rows in (20000, 333, 1):
        for jobs in (1, 2):
            if rows == 1 and jobs == 2:
                continue  # slow and adds nothing: 1-row chunks on one thread
            fits[rows, jobs] = fit_chunks(
                lambda r=rows: array_chunks(z, y, r),
                kind="logits",
                shape=z.shape,
                k=3,
                jobs=jobs,
            )
    ref = fits[20000, 1]
    assert ref[0].subsample_rows == 2000 and ref[0].subsample_passes >= 2
    for key, got in fits.items():
        for a, b in zip(got, ref, strict=True):
            assert a.temperature == pytest.approx(b.temperature, rel=1e-12), key
            assert (a.passes, a.subsample_rows, a.n) == (
                b.passes,
                b.subsample_rows,
                b.n,
            )
    for rows in (20000, 333):
        assert [f.temperature for f in fits[rows, 2]] == [
            f.temperature for f in fits[rows, 1]
        ]


def _calibrate(
    tmp: Path, args: list[str], t: float, n_classes: int
) -> tuple[int, Path]:
    tfile = tmp / "t.json"
    tfile.write_text(
        json.dumps(
            {
                "format": 1,
                "kind": "relcal.temperature",
                "temperature": t,
                "fitted_on": {"n_classes": n_classes},
            }
        )
    )
    out = tmp / "out" / "cal.npz"
    out.parent.mkdir(exist_ok=True)
    code = main(["calibrate", *args, "--temperature", str(tfile), "-o", str(out), "-q"])
    return code, out


@pytest.mark.parametrize("fmt", INPUTS)
def test_calibrate_streamed_equals_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    args, options, whole = _input(tmp_path, fmt)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "5")
    p = load(whole, **options)
    code, out = _calibrate(tmp_path, args, 1.7, p.n_classes)
    assert code == 0
    z, y = as_logits(p.scores, p.labels, kind=p.kind, ignore_index=p.ignore_index)
    scaled, probs = calibrated_arrays(z, 1.7)
    with np.load(out) as got:
        assert sorted(got.files) == [
            "calibrated_probs",
            "labels",
            "logits",
            "temperature",
        ]
        np.testing.assert_array_equal(got["logits"], scaled)
        np.testing.assert_array_equal(got["calibrated_probs"], probs)
        np.testing.assert_array_equal(got["labels"], y)
        assert got["logits"].dtype == scaled.dtype and got["labels"].dtype == np.int64
        assert float(got["temperature"]) == 1.7
    assert os.listdir(out.parent) == ["cal.npz"]  # no temporary file left


def _nan_at_the_end(tmp: Path) -> list[str]:
    z, y = make_logits(100, 3, seed=2)
    z[97, 1] = np.nan
    np.save(tmp / "s.npy", z)
    np.save(tmp / "y.npy", y)
    return [str(tmp / "s.npy"), "--labels", str(tmp / "y.npy")]


def test_calibrate_error_mid_run_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NaN in the last chunk: found after 9 chunks of logits were written;
    one line naming the file, exit 2, no output and no temporary file."""
    args = _nan_at_the_end(tmp_path)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "10")
    code, out = _calibrate(tmp_path, args, 2.0, 3)
    assert code == 2
    assert capsys.readouterr().err == (
        f"Error: {args[0]} (labels: {args[2]}): scores: 1 values are NaN or +inf"
        " (first: nan at row 97, column 1)\n"
    )
    assert os.listdir(out.parent) == []


def test_calibrate_input_truncated_mid_run_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scores file loses its end while the logits are being written
    (after two chunks): the read fails, and nothing is left behind."""
    import relcal.temperature as temperature

    z, y = make_logits(100, 3, seed=2)
    np.save(tmp_path / "s.npy", z)
    np.save(tmp_path / "y.npy", y)
    real = temperature.calibrated_rows

    def truncating(*a: object, **kw: object):
        for i, chunk in enumerate(real(*a, **kw)):
            yield chunk
            if i == 1:
                with open(tmp_path / "s.npy", "r+b") as f:
                    f.truncate(128 + 50 * 3 * z.itemsize)  # header and 50 rows

    monkeypatch.setattr(temperature, "calibrated_rows", truncating)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "10")
    args = [str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")]
    code, out = _calibrate(tmp_path, args, 2.0, 3)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {tmp_path / 's.npy'}: ") and err.count("\n") == 1
    assert "truncated" in err or "changed" in err
    assert os.listdir(out.parent) == []
