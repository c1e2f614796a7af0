"""Streaming readers: the chunks put together equal what relcal.io.load reads."""

from __future__ import annotations

import numpy as np
import pytest

import relcal.io
from relcal.errors import RelcalError
from relcal.stream import iter_npy_pair, iter_npz, iter_table


def _cat(chunks):
    pairs = [(s.copy(), y.copy()) for s, y in chunks]
    return np.concatenate([s for s, _ in pairs]), np.concatenate([y for _, y in pairs])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_npy_pair_chunks_equal_load(tmp_path, dtype, rows):
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(4), size=50).astype(dtype)
    labels = rng.integers(0, 4, size=50)
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", labels)
    pred = relcal.io.load(tmp_path / "s.npy", labels=tmp_path / "y.npy")
    s, y = _cat(iter_npy_pair(tmp_path / "s.npy", tmp_path / "y.npy", rows=rows))
    assert s.dtype == dtype
    np.testing.assert_array_equal(s, pred.scores)
    np.testing.assert_array_equal(y, pred.labels)


@pytest.mark.parametrize("rows", [1, 3])
def test_npy_pair_segmentation_whole_images(tmp_path, rows):
    rng = np.random.default_rng(1)
    scores = rng.random((5, 3, 4, 6)).astype(np.float32)
    labels = rng.integers(0, 3, size=(5, 4, 6)).astype(np.uint8)
    labels[0, 0, :] = 255
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", labels)
    chunks = [(s.copy(), y.copy()) for s, y in
              iter_npy_pair(tmp_path / "s.npy", tmp_path / "y.npy", rows=rows)]
    assert all(s.shape[1:] == (3, 4, 6) and len(s) <= rows for s, _ in chunks)
    s, y = _cat(chunks)
    np.testing.assert_array_equal(s, scores)
    np.testing.assert_array_equal(y, labels)


def test_npy_truncated_names_file(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((10, 3)))
    np.save(tmp_path / "y.npy", np.zeros(10, dtype=np.int64))
    data = (tmp_path / "s.npy").read_bytes()
    (tmp_path / "s.npy").write_bytes(data[:-8])
    with pytest.raises(RelcalError) as exc:
        list(iter_npy_pair(tmp_path / "s.npy", tmp_path / "y.npy", rows=4))
    assert str(exc.value) == (
        f"{tmp_path / 's.npy'}: its header claims shape (10, 3) (240 bytes)"
        " but the file holds 232 bytes"
    )


def test_npy_labels_of_another_shape(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((10, 3)))
    np.save(tmp_path / "y.npy", np.zeros(9, dtype=np.int64))
    with pytest.raises(RelcalError) as exc:
        list(iter_npy_pair(tmp_path / "s.npy", tmp_path / "y.npy"))
    assert str(exc.value) == (
        f"{tmp_path / 's.npy'}: labels of shape (9,) do not fit scores of shape"
        f" (10, 3) (labels: {tmp_path / 'y.npy'})"
    )


def test_rows_must_be_positive(tmp_path):
    with pytest.raises(RelcalError, match=r"^rows= must be at least 1, got 0$"):
        list(iter_npy_pair(tmp_path / "s.npy", tmp_path / "y.npy", rows=0))


_MEMORY_SCRIPT = r"""
import sys, numpy as np
from pathlib import Path
from relcal.stream import iter_npy_pair, iter_npz, iter_table

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

d, n, c = Path(sys.argv[1]), int(sys.argv[2]), 100
for name, shape, dt in (("s.npy", (n, c), "<f4"), ("y.npy", (n,), "<i8")):
    with open(d / name, "wb") as f:   # a sparse file: no memory used to write it
        np.lib.format.write_array_header_1_0(
            f, {"descr": dt, "fortran_order": False, "shape": shape})
        f.truncate(f.tell() + int(np.prod(shape)) * np.dtype(dt).itemsize)
before = hwm()
rows = total = 0
for s, y in iter_npy_pair(d / "s.npy", d / "y.npy", rows=(1 << 20) // (4 * c)):
    rows += len(s)
    total += float(s.sum()) + int(y.sum())
print(rows, total, hwm() - before)
"""


def test_npy_streaming_memory_does_not_grow_with_the_file(tmp_path):
    """~200 MB of scores (and 40 MB of labels) in 1 MB chunks: the peak
    resident memory grows by far less than the file."""
    import subprocess
    import sys

    n = 500_000  # 500,000 x 100 float32 = 200 MB
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(tmp_path), str(n)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert int(out[0]) == n
    assert float(out[1]) == 0.0
    assert int(out[2]) < 64 * 2**20, f"peak RSS grew by {int(out[2]) / 2**20:.0f} MB"


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_npz_members_chunks_equal_load(tmp_path, save, rows):
    rng = np.random.default_rng(2)
    scores = rng.dirichlet(np.ones(5), size=60)
    labels = rng.integers(0, 5, size=60)
    save(tmp_path / "p.npz", scores=scores, labels=labels)
    pred = relcal.io.load(tmp_path / "p.npz")
    s, y = _cat(iter_npz(tmp_path / "p.npz", rows=rows))
    np.testing.assert_array_equal(s, pred.scores)
    np.testing.assert_array_equal(y, pred.labels)


def test_npz_missing_member(tmp_path):
    np.savez(tmp_path / "p.npz", scores=np.zeros((3, 2)), y=np.zeros(3))
    with pytest.raises(RelcalError) as exc:
        list(iter_npz(tmp_path / "p.npz"))
    assert str(exc.value) == f"{tmp_path / 'p.npz'}: no array 'labels' in the archive"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_table_chunks_equal_load(tmp_path, suffix, rows):
    import pandas as pd

    rng = np.random.default_rng(3)
    scores = rng.dirichlet(np.ones(3), size=40)
    df = pd.DataFrame(scores, columns=["a", "b", "c"])
    df["label"] = rng.integers(0, 3, size=40)
    f = tmp_path / f"t{suffix}"
    df.to_csv(f, index=False) if suffix == ".csv" else df.to_parquet(f)
    pred = relcal.io.load(f, score_cols=["a", "b", "c"])
    s, y = _cat(iter_table(f, score_cols=["a", "b", "c"], rows=rows))
    np.testing.assert_array_equal(s, pred.scores)
    np.testing.assert_array_equal(y, pred.labels)
