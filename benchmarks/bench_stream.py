"""Throughput and resident memory of ``relcal.stream.open_stream(...).chunks()``.

For each format, writes a file of about ``--mb`` MB of float32 scores (-1.0:
logits, decided from the first chunk) in pieces, reads it once to warm the
page cache, then in a fresh process opens it as a stream and runs
``--repeat`` full passes of ``.chunks()`` (default chunk size), printing the
GB/s of scores of the fastest and how much the peak resident memory (VmHWM)
grew over them all::

    python benchmarks/bench_stream.py --mb 2048 --formats npy
    python benchmarks/bench_stream.py --mb 256 --formats npy,npz,parquet,csv

The files are written under ``--dir`` (default: a temporary directory,
removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

C = 1000  # classes: a 4 kB row of float32 scores
PIECE = 8192  # rows written at a time

_PASS = r"""
import json, sys, time
from relcal.stream import open_stream

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

path, opts = sys.argv[1], json.loads(sys.argv[2])
if path.endswith((".csv", ".parquet")):  # their libraries' own memory is not the pass's
    import pandas, pyarrow.parquet
before = hwm()
t0 = time.perf_counter()
stream = open_stream(path, **opts)
opened = time.perf_counter() - t0
best = float("inf")
for _ in range(int(sys.argv[3])):
    t1 = time.perf_counter()
    rows = 0
    for s, y, start in stream.chunks():
        rows += len(s)
    best = min(best, time.perf_counter() - t1)
print(json.dumps({"rows": rows, "bytes": stream.meta.n_bytes, "open_s": opened,
                  "pass_s": best, "rss_growth": hwm() - before,
                  "first_pass": stream.meta.first_pass}))
"""


def _header(f, shape, dtype):
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )


def _pieces(n):
    rng = np.random.default_rng(0)
    for start in range(0, n, PIECE):
        k = min(PIECE, n - start)
        yield np.full((k, C), -1.0, np.float32), rng.integers(0, C, k)


def write_npy(d: Path, n: int) -> tuple[Path, dict]:
    with open(d / "s.npy", "wb") as fs, open(d / "y.npy", "wb") as fy:
        _header(fs, (n, C), np.float32)
        _header(fy, (n,), np.int64)
        for s, y in _pieces(n):
            fs.write(s.tobytes())
            fy.write(y.tobytes())
    return d / "s.npy", {"labels": str(d / "y.npy")}


def write_npz(d: Path, n: int) -> tuple[Path, dict]:
    with zipfile.ZipFile(d / "p.npz", "w", zipfile.ZIP_DEFLATED) as z:
        for name, shape, dt, i in (
            ("logits", (n, C), np.float32, 0),
            ("labels", (n,), np.int64, 1),
        ):
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                _header(f, shape, dt)
                for piece in _pieces(n):
                    f.write(piece[i].tobytes())
    return d / "p.npz", {}


def _frames(n, cols):
    import pandas as pd

    for s, y in _pieces(n):
        df = pd.DataFrame(s[:, :cols], columns=[f"z{i}" for i in range(cols)])
        df["label"] = y % cols
        yield df


def write_parquet(d: Path, n: int) -> tuple[Path, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = 100  # a table of 100 score columns
    n = n * C // cols
    writer = None
    for df in _frames(n, cols):
        table = pa.Table.from_pandas(df, preserve_index=False)
        writer = writer or pq.ParquetWriter(d / "t.parquet", table.schema)
        writer.write_table(table)  # one row group per piece
    assert writer is not None
    writer.close()
    return d / "t.parquet", {}


def write_csv(d: Path, n: int) -> tuple[Path, dict]:
    cols = 10
    n = n * C // cols
    with open(d / "t.csv", "w") as f:
        for i, df in enumerate(_frames(n, cols)):
            df.to_csv(f, index=False, header=i == 0)
    return d / "t.csv", {}


WRITERS = {
    "npy": write_npy,
    "npz": write_npz,
    "parquet": write_parquet,
    "csv": write_csv,
}


def run(fmt: str, d: Path, mb: int, repeat: int) -> dict:
    n = max(1, mb * 2**20 // (C * 4))
    path, opts = WRITERS[fmt](d, n)
    for f in d.iterdir():  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _PASS,
            str(path),
            json.dumps(opts),
            str(repeat),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    res = json.loads(out.stdout)
    res.update(
        format=fmt,
        file_mb=sum(f.stat().st_size for f in d.iterdir()) / 2**20,
    )
    for f in d.iterdir():
        f.unlink()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=256, help="MB of float32 scores")
    ap.add_argument("--formats", default="npy,npz,parquet,csv")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeat", type=int, default=3, help="passes (the best is shown)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print("format  file_MB  scores_GB  open_s  pass_s  GB/s  RSS_growth_MB")
        for fmt in args.formats.split(","):
            r = run(fmt, Path(tmp), args.mb, args.repeat)
            gb = r["bytes"] / 1e9
            print(
                f"{fmt:8s}{r['file_mb']:8.0f}{gb:11.3f}"
                f"{r['open_s']:8.2f}{r['pass_s']:8.2f}{gb / r['pass_s']:6.2f}"
                f"{r['rss_growth'] / 2**20:15.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
