"""Streaming readers: the chunks of a Stream put together equal what
relcal.io.load reads, whatever the chunk size, and its errors are io.load's."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import relcal.io
import relcal.stream
from relcal.errors import RelcalError
from relcal.stream import iter_npy_pair, iter_npz, open_stream


def _cat(chunks):
    pairs = [(s.copy(), y.copy()) for s, y in chunks]
    return np.concatenate([s for s, _ in pairs]), np.concatenate([y for _, y in pairs])


def _cat3(stream, rows=None):
    """Scores and labels of every chunk, and the starts, checked to follow
    one another."""
    got = [(s.copy(), y.copy(), start) for s, y, start in stream.chunks(rows)]
    starts = [start for _, _, start in got]
    lengths = [len(s) for s, _, _ in got]
    assert starts == list(np.cumsum([0, *lengths[:-1]]))
    return np.concatenate([s for s, _, _ in got]), np.concatenate(
        [y for _, y, _ in got]
    )


def _same(stream, pred, rows=None):
    s, y = _cat3(stream, rows)
    assert s.dtype == pred.scores.dtype
    np.testing.assert_array_equal(s, pred.scores)
    np.testing.assert_array_equal(y, pred.labels)
    m = stream.meta
    assert (m.kind, m.n_classes, m.class_names) == (
        pred.kind,
        pred.n_classes,
        pred.class_names,
    )
    assert m.n_rows == len(pred.scores) and m.shape == pred.scores.shape


def _message(call):
    with pytest.raises(RelcalError) as exc:
        call()
    return str(exc.value)


def _load_and_stream_fail_alike(path, rows, **options):
    """io.load and a full pass of open_stream (chunks of ``rows``) raise the
    same message; returns it."""
    want = _message(lambda: relcal.io.load(path, **options))
    got = _message(lambda: list(open_stream(path, **options).chunks(rows)))
    assert got == want
    return want


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 7, 1000])
@pytest.mark.parametrize("probs", [False, True])
def test_npy_pair_stream_equals_load(tmp_path, dtype, rows, probs):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 4))
    scores = (rng.dirichlet(np.ones(4), size=50) if probs else z).astype(dtype)
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", rng.integers(0, 4, size=50).astype(np.uint8))
    pred = relcal.io.load(tmp_path / "s.npy", labels=tmp_path / "y.npy")
    stream = open_stream(tmp_path / "s.npy", labels=tmp_path / "y.npy")
    _same(stream, pred, rows)
    _same(stream, pred, rows)  # a second pass reads the file again
    assert stream.meta.first_pass is probs  # probabilities: all rows read first
    assert stream.meta.n_bytes == scores.nbytes
    assert stream.meta.origin == {"scores": "s.npy", "labels": "y.npy"}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_npz_stream_equals_load(tmp_path, save, rows):
    rng = np.random.default_rng(2)
    names = np.array(["cat", "dog", "eel", "fox", "gnu"])
    save(
        tmp_path / "p.npz",
        probs=rng.dirichlet(np.ones(5), size=60),
        y=names[rng.integers(0, 5, size=60)],  # labels as class names
        class_names=names,
    )
    pred = relcal.io.load(tmp_path / "p.npz")
    stream = open_stream(tmp_path / "p.npz")
    _same(stream, pred, rows)
    assert stream.meta.kind == "probs" and stream.meta.class_names == tuple(names)
    assert stream.meta.origin == {"scores": "probs", "labels": "y"}


@pytest.mark.parametrize("rows", [1, 2, 5])
@pytest.mark.parametrize("layout", ["first", "first-1", "last", "last-1"])
def test_segmentation_stream_equals_load(tmp_path, rows, layout):
    """Whole images per chunk; ignore label; (N, 1, H, W) label maps;
    channels_last maps become rows of pixels as in io.load."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 3, 4, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=(5, 4, 6)).astype(np.uint8)
    y[0, 0, :] = 255
    last = layout.startswith("last")
    if last:
        z = np.moveaxis(z, 1, -1).copy()
    if layout.endswith("-1"):
        y = y[..., None] if last else y[:, None]
    np.save(tmp_path / "s.npy", z)
    np.save(tmp_path / "y.npy", y)
    opts = {"labels": tmp_path / "y.npy", "ignore_index": 255, "channels_last": last}
    pred = relcal.io.load(tmp_path / "s.npy", **opts)
    stream = open_stream(tmp_path / "s.npy", **opts)
    _same(stream, pred, rows)
    per_image = 24 if last else 1  # rows of pixels, or images
    assert all(len(s) <= rows * per_image for s, _, _ in stream.chunks(rows))


def test_onehot_and_column_labels(tmp_path):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(30, 3))
    y = rng.integers(0, 3, size=30)
    for labels in (np.eye(3)[y], y[:, None]):
        np.savez(tmp_path / "p.npz", logits=z, labels=labels)
        pred = relcal.io.load(tmp_path / "p.npz")
        _same(open_stream(tmp_path / "p.npz"), pred, 4)
        np.testing.assert_array_equal(pred.labels, y)


def test_integer_and_binary_scores(tmp_path):
    np.save(tmp_path / "s.npy", np.array([3, -1, 2, 0, 5]))
    np.save(tmp_path / "p.npy", np.array([0.1, 0.9, 0.5, 0.2, 1.0]))
    np.save(tmp_path / "y.npy", np.array([1, 0, 1, 0, 1]))
    for f in ("s.npy", "p.npy"):
        pred = relcal.io.load(tmp_path / f, labels=tmp_path / "y.npy")
        _same(open_stream(tmp_path / f, labels=tmp_path / "y.npy"), pred, 2)


@pytest.mark.parametrize("at, first_pass", [(5, False), (33, True)])
def test_logits_found_in_a_later_chunk(tmp_path, monkeypatch, at, first_pass):
    """Rows in [0, 1], a logit at row ``at``: logits, as io.load decides; in
    chunks of 10 rows, found in the first chunk or after a partial pass."""
    monkeypatch.setattr(relcal.stream, "CHUNK_BYTES", 10 * 3 * 8)
    rng = np.random.default_rng(5)
    z = rng.dirichlet(np.ones(3), size=40)
    z[at, 1] = 1.5
    np.savez(tmp_path / "p.npz", scores=z, labels=rng.integers(0, 3, 40))
    pred = relcal.io.load(tmp_path / "p.npz")
    stream = open_stream(tmp_path / "p.npz")
    assert stream.default_rows() == 10
    _same(stream, pred)
    assert stream.meta.kind == "logits" and stream.meta.first_pass is first_pass


@pytest.mark.parametrize("rows", [1, 3, 100])
def test_rows_in_range_not_summing_to_one_same_error(tmp_path, rows):
    """The count and first row of io.load's message cover every chunk."""
    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(3), size=20)
    p[[4, 11, 17]] *= 0.5
    np.savez(tmp_path / "p.npz", scores=p, labels=rng.integers(0, 3, 20))
    msg = _load_and_stream_fail_alike(tmp_path / "p.npz", rows)
    assert "3 of 20 rows do not sum to 1" in msg and "at row 4)" in msg


@pytest.mark.parametrize("rows", [1, 4])
def test_declared_probs_same_error(tmp_path, rows):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(3), size=12)
    p[9, 0] = -0.25
    np.savez(tmp_path / "p.npz", scores=p, labels=rng.integers(0, 3, 12))
    msg = _load_and_stream_fail_alike(tmp_path / "p.npz", rows, kind="probs")
    assert msg.endswith("but they hold negative values (min -0.25)")


@pytest.mark.parametrize("rows", [1, 3, 100])
def test_labels_out_of_range_in_later_chunks_same_error(tmp_path, rows):
    """Bad labels in two chunks: the message counts both, as io.load's."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, size=(6, 4, 4)).astype(np.uint8)
    y[3, 1, 2] = y[5, 0, 0] = 7
    np.save(tmp_path / "s.npy", rng.normal(size=(6, 3, 4, 4)))
    np.save(tmp_path / "y.npy", y)
    msg = _load_and_stream_fail_alike(
        tmp_path / "s.npy", rows, labels=tmp_path / "y.npy"
    )
    assert "2 values outside [0, 2] (first: 7 at index (3, 1, 2))" in msg


def test_unknown_class_name_same_error(tmp_path):
    names = np.array(["a", "b"])
    y = np.array(["a", "b", "a", "zz", "b", "zz", "q"])
    np.savez(tmp_path / "p.npz", logits=np.zeros((7, 2)), labels=y, class_names=names)
    msg = _load_and_stream_fail_alike(tmp_path / "p.npz", 2)
    assert "unknown class names 'q', 'zz' (first: 'zz' at row 3" in msg


def test_every_label_ignored_after_a_full_pass(tmp_path):
    np.save(tmp_path / "s.npy", np.ones((3, 2, 2, 2)))
    np.save(tmp_path / "y.npy", np.full((3, 2, 2), 255, dtype=np.uint8))
    msg = _load_and_stream_fail_alike(
        tmp_path / "s.npy", 1, labels=tmp_path / "y.npy", ignore_index=255
    )
    assert msg.endswith("labels: every label equals ignore_index 255")


def test_rows_must_be_positive(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((10, 3)))
    np.save(tmp_path / "y.npy", np.zeros(10, dtype=np.int64))
    stream = open_stream(tmp_path / "s.npy", labels=tmp_path / "y.npy", kind="logits")
    assert _message(lambda: list(stream.chunks(0))) == (
        "rows= must be an integer of at least 1, got 0"
    )


def test_default_chunk_is_whole_rows_of_about_32_mb(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((3, 3, 1024, 1024), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.zeros((3, 1024, 1024), dtype=np.uint8))
    stream = open_stream(tmp_path / "s.npy", labels=tmp_path / "y.npy", kind="logits")
    assert stream.default_rows() == 2  # 12 MB images: 2 in 32 MB
    assert [len(s) for s, _, _ in stream.chunks()] == [2, 1]


# --------------------------------------------------------------------------
# a directory or glob as one dataset


def _shards(tmp_path, layout):
    rng = np.random.default_rng(9)
    sizes = [5, 1, 8]
    arrays = [
        (rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 4, n))
        for n in sizes
    ]
    for i, (z, y) in enumerate(arrays):
        if layout == "subdirs":
            (tmp_path / "logits").mkdir(exist_ok=True)
            (tmp_path / "labels").mkdir(exist_ok=True)
            np.save(tmp_path / "logits" / f"part{i}.npy", z)
            np.save(tmp_path / "labels" / f"part{i}.npy", y)
        else:
            np.save(tmp_path / f"part{i}_logits.npy", z)
            np.save(tmp_path / f"part{i}_labels.npy", y)
    return np.concatenate([z for z, _ in arrays]), np.concatenate(
        [y for _, y in arrays]
    )


@pytest.mark.parametrize("layout", ["subdirs", "suffixes"])
@pytest.mark.parametrize("rows", [1, 3, 100])
def test_directory_is_one_dataset(tmp_path, layout, rows):
    z, y = _shards(tmp_path, layout)
    stream = open_stream(tmp_path)
    s, labels = _cat3(stream, rows)
    np.testing.assert_array_equal(s, z)
    np.testing.assert_array_equal(labels, y)
    assert stream.meta.n_rows == 14 and len(stream.meta.sources) == 3
    assert stream.meta.kind == "logits" and stream.meta.source == str(tmp_path)


def test_glob_of_npy_pairs_matched_by_name(tmp_path):
    z, y = _shards(tmp_path, "subdirs")
    stream = open_stream(
        tmp_path / "logits" / "*.npy", labels=tmp_path / "labels" / "*.npy"
    )
    s, labels = _cat3(stream, 2)
    np.testing.assert_array_equal(s, z)
    np.testing.assert_array_equal(labels, y)
    by_dir = open_stream(tmp_path / "logits" / "*.npy", labels=tmp_path / "labels")
    np.testing.assert_array_equal(_cat3(by_dir)[0], z)


def test_dataset_probabilities_decided_over_every_file(tmp_path):
    """Files of probabilities but one whose rows do not sum to 1: the
    message counts rows across the dataset."""
    rng = np.random.default_rng(10)
    for i in range(3):
        p = rng.dirichlet(np.ones(3), size=4)
        if i == 2:
            p[1] *= 0.5
        np.save(tmp_path / f"s{i}_probs.npy", p)
        np.save(tmp_path / f"s{i}_labels.npy", rng.integers(0, 3, 4))
    msg = _message(lambda: open_stream(tmp_path))
    assert msg.startswith(f"{tmp_path}: scores: every value is in [0, 1] but 1 of 12")
    assert "at row 9)" in msg


# --------------------------------------------------------------------------
# the raw readers


@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_raw_readers_equal_load(tmp_path, rows):
    rng = np.random.default_rng(3)
    scores = rng.dirichlet(np.ones(4), size=50).astype(np.float32)
    labels = rng.integers(0, 4, size=50)
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", labels)
    np.savez_compressed(tmp_path / "p.npz", scores=scores, labels=labels)
    for chunks in (
        iter_npy_pair(tmp_path / "s.npy", tmp_path / "y.npy", rows=rows),
        iter_npz(tmp_path / "p.npz", rows=rows),
    ):
        s, y = _cat(chunks)
        np.testing.assert_array_equal(s, scores)
        np.testing.assert_array_equal(y, labels)


# --------------------------------------------------------------------------
# memory

_MEMORY_SCRIPT = r"""
import sys, zipfile, numpy as np
from pathlib import Path
from relcal.stream import open_stream

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

def header(f, shape, dt):
    np.lib.format.write_array_header_1_0(
        f, {"descr": dt, "fortran_order": False, "shape": shape})

d, n, fmt, c = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], 100
arrays = (("s", (n, c), "<f4"), ("y", (n,), "<i8"))
if fmt == "npy":
    for name, shape, dt in arrays:
        with open(d / f"{name}.npy", "wb") as f:   # sparse: no memory to write
            header(f, shape, dt)
            f.truncate(f.tell() + int(np.prod(shape)) * np.dtype(dt).itemsize)
    path, opts = d / "s.npy", {"labels": d / "y.npy"}
else:  # a deflated .npz of zeros, written in pieces
    with zipfile.ZipFile(d / "p.npz", "w", zipfile.ZIP_DEFLATED) as z:
        for name, shape, dt in arrays:
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                header(f, shape, dt)
                block = np.zeros(1 << 20, dtype=np.uint8).tobytes()
                left = int(np.prod(shape)) * np.dtype(dt).itemsize
                while left:
                    f.write(block[: min(left, len(block))])
                    left -= min(left, len(block))
    path, opts = d / "p.npz", {"scores_key": "s", "labels_key": "y"}
before = hwm()
stream = open_stream(path, kind="logits", **opts)
rows = total = 0
for s, y, start in stream.chunks(20_000):  # 8 MB of scores
    rows += len(s)
    total += float(s.sum()) + int(y.sum())
print(rows, total, stream.meta.kind, hwm() - before)
"""


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_streaming_memory_does_not_grow_with_the_file(tmp_path, fmt):
    """~200 MB of scores (and 4 MB of labels) in 8 MB chunks, from a .npy
    pair or a deflated .npz: the peak resident memory grows by far less than
    the file."""
    import subprocess
    import sys

    n = 500_000  # 500,000 x 100 float32 = 200 MB
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(tmp_path), str(n), fmt],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(out[0]) == n
    assert float(out[1]) == 0.0 and out[2] == "logits"
    assert int(out[3]) < 40 * 2**20, f"peak RSS grew by {int(out[3]) / 2**20:.0f} MB"


# --------------------------------------------------------------------------
# tables


def _table(tmp_path, suffix, holes=False):
    import pandas as pd

    rng = np.random.default_rng(11)
    df = pd.DataFrame(rng.dirichlet(np.ones(3), size=45), columns=["p_a", "p_b", "p_c"])
    df["label"] = np.array(["a", "b", "c"])[rng.integers(0, 3, 45)]
    df["id"] = [f"row{i}" for i in range(45)]  # left out, with a note
    if holes:
        df.loc[[3, 30], "p_b"] = np.nan
    f = tmp_path / f"t{suffix}"
    df.to_csv(f, index=False) if suffix == ".csv" else df.to_parquet(f)
    return f


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_table_stream_equals_load(tmp_path, suffix, rows):
    """Default score columns (prefix p_ taken off the class names), labels as
    class names, a text column left out, rows with a hole dropped."""
    f = _table(tmp_path, suffix, holes=True)
    pred = relcal.io.load(f, missing="drop")
    stream = open_stream(f, missing="drop")
    _same(stream, pred, rows)
    m = stream.meta
    assert m.class_names == ("a", "b", "c") and m.n_dropped == pred.n_dropped == 2
    assert (
        m.notes == pred.notes == ("left out non-numeric column 'id' from the scores",)
    )
    assert m.first_pass and m.origin == pred.origin


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_models_stream_equals_load(tmp_path, suffix):
    import pandas as pd

    rng = np.random.default_rng(12)
    df = pd.DataFrame({"a": rng.random(30), "b": rng.normal(size=30)})
    df["y"] = rng.integers(0, 2, 30)
    df.loc[4, "a"] = np.nan
    f = tmp_path / f"m{suffix}"
    df.to_csv(f, index=False) if suffix == ".csv" else df.to_parquet(f)
    preds = relcal.io.load(f, models="a,b", label_col="y", missing="drop")
    streams = open_stream(f, models="a,b", label_col="y", missing="drop")
    assert [s.meta.model for s in streams] == ["a", "b"]
    for stream, pred in zip(streams, preds, strict=True):
        _same(stream, pred, 4)
        assert stream.meta.n_dropped == pred.n_dropped == 1
    assert [s.meta.kind for s in streams] == ["probs", "logits"]


def test_parquet_directory_is_one_dataset(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(13)
    parts = tmp_path / "parts"
    parts.mkdir()
    frames = []
    for i, n in enumerate([6, 1, 9]):
        df = pd.DataFrame(rng.normal(size=(n, 3)), columns=["z0", "z1", "z2"])
        df["label"] = rng.integers(0, 3, n)
        df.to_parquet(parts / f"part{i}.parquet")
        frames.append(df)
    whole = pd.concat(frames, ignore_index=True)
    whole.to_parquet(tmp_path / "whole.parquet")
    pred = relcal.io.load(tmp_path / "whole.parquet")
    for path in (parts, parts / "*.parquet"):
        stream = open_stream(path)
        _same(stream, pred, 4)
        assert len(stream.meta.sources) == 3


def test_kept_chunks_are_not_overwritten_and_buffers_are_reused(tmp_path):
    """Chunks kept without a copy (as a pool of workers keeps them) hold
    their own rows; a consumer that lets them go is served by a few buffers."""
    rng = np.random.default_rng(14)
    z = rng.normal(size=(40, 3))
    np.save(tmp_path / "s.npy", z)
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 40))
    stream = open_stream(tmp_path / "s.npy", labels=tmp_path / "y.npy")
    kept = [s for s, _, _ in stream.chunks(3)]
    np.testing.assert_array_equal(np.concatenate(kept), z)
    refs = []
    for s, _, _ in stream.chunks(3):  # 14 chunks, none kept
        refs.append(weakref.ref(s.base))
        alive = [r() for r in refs]
        assert all(b is not None for b in alive)  # the pool's, none thrown away
        assert len({id(b) for b in alive}) <= 3
        del alive  # (a strong reference: the pool would not reuse them)


_TABLE_MEMORY_SCRIPT = r"""
import sys
import pandas, pyarrow.parquet  # imported before the peak is taken
import relcal.stream
from relcal.stream import open_stream

relcal.stream.CHUNK_BYTES = 1 << 19  # many chunks in a small file

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

before = hwm()
stream = open_stream(sys.argv[1])
rows = sum(len(s) for s, y, start in stream.chunks())
print(rows, stream.meta.kind, hwm() - before)
"""


def _write_table(path, n):
    """``n`` rows of 20 logit columns and a label, written in pieces (row
    groups of 5,000 rows for parquet)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, n, 5000):
        df = pd.DataFrame(
            rng.normal(size=(5000, 20)), columns=[f"z{i}" for i in range(20)]
        )
        df["label"] = rng.integers(0, 20, 5000)
        if path.suffix == ".csv":
            df.to_csv(path, mode="a", header=start == 0, index=False)
            continue
        table = pa.Table.from_pandas(df, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_streaming_memory_does_not_grow_with_the_file(tmp_path, fmt):
    """The first pass and a pass of chunks over a table of 20,000 rows and
    of 80,000 rows (20 score columns): the peak resident memory grows by
    about as much for both (the chunks, not the file)."""
    import subprocess
    import sys

    growth = []
    for n in (20_000, 80_000):
        path = tmp_path / f"t{n}.{fmt}"
        _write_table(path, n)
        out = subprocess.run(
            [sys.executable, "-c", _TABLE_MEMORY_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert int(out[0]) == n and out[1] == "logits"
        growth.append(int(out[2]))
    # 60,000 more rows are 10 MB of float64 scores (and pandas copies them)
    assert growth[1] < growth[0] + 4 * 2**20, [g / 2**20 for g in growth]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("named", [False, True])
def test_toplabel_table_stream_equals_load(tmp_path, suffix, named):
    """Top-label tables: scores (rows, 2) of confidence and predicted class,
    as the reduction takes them; the class count from every row."""
    import pandas as pd

    rng = np.random.default_rng(15)
    df = pd.DataFrame(
        {
            "true_label": rng.integers(0, 7, 50),
            "pred_label": rng.integers(0, 6, 50),
            "confidence": rng.random(50),
        }
    )
    df.loc[49, "true_label"] = 9  # the largest class, in the last chunk
    opts = {}
    if named:
        df.columns = ["y", "yhat", "p"]
        opts = {"label_col": "y", "pred_col": "yhat", "confidence_col": "p"}
    f = tmp_path / f"t{suffix}"
    df.to_csv(f, index=False) if suffix == ".csv" else df.to_parquet(f)
    pred = relcal.io.load(f, **opts)
    stream = open_stream(f, **opts)
    s, y = _cat3(stream, 7)
    np.testing.assert_array_equal(s[:, 0], pred.confidence)
    np.testing.assert_array_equal(s[:, 1], pred.predicted)
    np.testing.assert_array_equal(y, pred.labels)
    m = stream.meta
    assert (m.kind, m.n_classes, m.shape, m.origin) == (
        "toplabel",
        pred.n_classes,
        (50, 2),
        pred.origin,
    )
    assert pred.n_classes == 10


@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_fortran_order_2d_npy_streams(tmp_path, rows):
    """np.save of a transposed array writes Fortran order: read column by
    column, the chunks are C-order rows equal to io.load's."""
    rng = np.random.default_rng(16)
    z = rng.normal(size=(5, 60)).astype(np.float32)  # classes x samples
    np.save(tmp_path / "s.npy", z.T)  # (60, 5), Fortran order
    np.save(tmp_path / "y.npy", rng.integers(0, 5, 60))
    with open(tmp_path / "s.npy", "rb") as f:
        np.lib.format.read_magic(f)
        assert np.lib.format.read_array_header_1_0(f)[1]  # fortran_order
    pred = relcal.io.load(tmp_path / "s.npy", labels=tmp_path / "y.npy")
    stream = open_stream(tmp_path / "s.npy", labels=tmp_path / "y.npy")
    _same(stream, pred, rows)
    assert all(s.flags.c_contiguous for s, _, _ in stream.chunks(rows))


def test_a_file_whose_name_looks_like_a_glob(tmp_path):
    np.savez(tmp_path / "run[1].npz", logits=np.eye(3), labels=[0, 1, 2])
    stream = open_stream(tmp_path / "run[1].npz")
    assert stream.meta.sources == (str(tmp_path / "run[1].npz"),)
    assert stream.meta.n_rows == 3
