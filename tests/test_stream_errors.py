"""Bad input while streaming: one-line messages naming the user's file.

Three groups:
- every bad-input case of tests/test_bad_input.py that relcal.io.load
  refuses is refused by ``open_stream`` and a full pass of ``.chunks()`` with
  the same message (in chunks of one row, so that the counts and first
  positions of the whole file are proven chunk-independent);
- the streaming cases the loader of the commands already sees, through the
  command line (exit 2, one line, nothing written);
- the cases only a stream meets (a file changing or disappearing between or
  during passes, a dataset's file of another schema, Fortran order, a damaged
  member found while reading), through ``open_stream(...).chunks()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import relcal.io
from relcal.cli import main
from relcal.errors import RelcalError
from relcal.stream import open_stream
from tests.test_bad_input import CASES, MARKER, Case, snapshot

# run before tests that leave threads behind, so that these read .npy files
# in worker processes as the CLI does (relcal.forked refuses to fork beside
# a foreign thread)
pytestmark = pytest.mark.forks

FLAGS = {
    "--labels": ("labels", str),
    "--labels-key": ("labels_key", str),
    "--scores-key": ("scores_key", str),
    "--scores": ("kind", str),
    "--ignore-index": ("ignore_index", int),
    "--label-col": ("label_col", str),
    "--score-cols": ("score_cols", str),
    "--pred-col": ("pred_col", str),
    "--confidence-col": ("confidence_col", str),
    "--models": ("models", str),
    "--missing": ("missing", str),
}


def _options(args: list[str]) -> dict[str, object] | None:
    """io.load's options for a case's command line; None when it has an
    option the loader does not take (--bins, say)."""
    out: dict[str, object] = {}
    rest = iter(args[2:])
    for flag in rest:
        if flag == "--channels-last":
            out["channels_last"] = True
        elif flag in FLAGS:
            key, convert = FLAGS[flag]
            try:
                out[key] = convert(next(rest))
            except ValueError:
                return None
        else:
            return None
    return out


def _outcome(call) -> str | None:
    try:
        call()
    except RelcalError as err:
        return str(err)
    return None


def _full_pass(path: str, options: dict[str, object]) -> None:
    stream = open_stream(path, **options)
    for s in stream if isinstance(stream, list) else [stream]:
        for _ in s.chunks(1):
            pass


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_every_bad_input_case_streams_to_the_loaders_message(
    case: Case, tmp_path: Path
) -> None:
    args = case.make(tmp_path)
    options = _options(args)
    if options is None:
        pytest.skip("a case of an option the loader does not take")
    want = _outcome(lambda: relcal.io.load(args[1], **options))
    got = _outcome(lambda: _full_pass(args[1], options))
    assert not (tmp_path / MARKER).exists(), "an object array was unpickled"
    if want is None:  # a problem the reduction finds (NaN scores, say)
        assert got is None
        return
    if "top-label" in (got or ""):
        pytest.skip("top-label tables are not streamed yet")
    if case.id == "directory":  # not a dataset either, the stream says
        assert got is not None and got.startswith(want)
        return
    assert got == want


# --------------------------------------------------------------------------
# through the command line (the loader of the commands sees these already)


def _cli(args: list[str], tmp: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    before = snapshot(tmp)
    code = main(args)
    out, err = capsys.readouterr()
    assert snapshot(tmp) == before, "something was written"
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    return err.removeprefix("Error: ").rstrip("\n")


def _pair(tmp: Path, scores: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    np.save(tmp / "s.npy", scores)
    np.save(tmp / "y.npy", labels)
    return tmp / "s.npy", tmp / "y.npy"


def _both(
    tmp: Path, capsys: pytest.CaptureFixture[str], path: Path, *flags: str, **options
) -> str:
    """The CLI's message (exit 2, nothing written; report writes nothing
    either) and the stream's, which must be the same."""
    msg = _cli(["metrics", str(path), *flags], tmp, capsys)
    out = tmp / "r.html"
    assert _cli(["report", str(path), *flags, "-o", str(out)], tmp, capsys) == msg
    assert not out.exists()
    assert _outcome(lambda: _full_pass(str(path), options)) == msg
    return msg


def test_truncated_npy(tmp_path, capsys):
    s, y = _pair(tmp_path, np.zeros((10, 3)), np.zeros(10, dtype=np.int64))
    s.write_bytes(s.read_bytes()[:-8])
    msg = _both(tmp_path, capsys, s, "--labels", str(y), labels=y)
    assert msg == (
        f"{s}: its header claims shape (10, 3) (240 bytes) but the file holds 232 bytes"
    )


def test_header_promising_more_rows_than_the_file_holds(tmp_path, capsys):
    s, y = _pair(tmp_path, np.zeros((10, 3)), np.zeros(10, dtype=np.int64))
    data = s.read_bytes().replace(b"(10, 3)", b"(90, 3)")
    s.write_bytes(data)
    msg = _both(tmp_path, capsys, s, "--labels", str(y), labels=y)
    assert msg == (
        f"{s}: its header claims shape (90, 3) (2,160 bytes) but the file holds"
        " 240 bytes"
    )


def test_label_map_of_another_shape(tmp_path, capsys):
    s, y = _pair(
        tmp_path, np.zeros((2, 3, 4, 4), np.float32), np.zeros((2, 4, 5), np.uint8)
    )
    msg = _both(tmp_path, capsys, s, "--labels", str(y), labels=y)
    assert msg == (
        f"{s} (labels: {y}): labels of shape (2, 4, 5) do not fit scores of shape"
        " (2, 3, 4, 4) (expected labels of shape (2, 4, 4))"
    )


def test_ignore_label_removing_every_pixel(tmp_path, capsys):
    rng = np.random.default_rng(0)
    s, y = _pair(
        tmp_path,
        rng.normal(size=(3, 2, 4, 4)).astype(np.float32),
        np.full((3, 4, 4), 255, np.uint8),
    )
    msg = _both(
        tmp_path,
        capsys,
        s,
        "--labels",
        str(y),
        "--ignore-index",
        "255",
        labels=y,
        ignore_index=255,
    )
    assert msg == f"{s} (labels: {y}): labels: every label equals ignore_index 255"


def test_object_array_labels(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.zeros((4, 2)))
    np.save(
        tmp_path / "y.npy", np.array([None, 1, 0, 1], dtype=object), allow_pickle=True
    )
    y = tmp_path / "y.npy"
    msg = _both(tmp_path, capsys, tmp_path / "s.npy", "--labels", str(y), labels=y)
    assert (
        msg == f"{y}: holds Python objects; relcal never unpickles (allow_pickle=False)"
    )


def test_damaged_npz_member(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "p.npz"
    np.savez(path, logits=rng.normal(size=(200, 3)), labels=rng.integers(0, 3, 200))
    data = bytearray(path.read_bytes())
    data[1000:1008] = b"\x01" * 8  # inside the logits' data: a bad CRC-32
    path.write_bytes(bytes(data))
    msg = _both(tmp_path, capsys, path)
    assert msg == (
        f"{path}: cannot read array 'logits': Bad CRC-32 for file 'logits.npy'"
    )


# --------------------------------------------------------------------------
# what only a stream meets


def _logits_pair(tmp: Path, n: int = 300) -> tuple[Path, Path]:
    rng = np.random.default_rng(2)
    return _pair(tmp, rng.normal(size=(n, 4)), rng.integers(0, 4, n))


def test_file_disappears_between_passes(tmp_path):
    s, y = _logits_pair(tmp_path)
    stream = open_stream(s, labels=y)
    os.unlink(y)
    assert _outcome(lambda: list(stream.chunks())) == (
        f"{y}: no such file (it was there when relcal started reading)"
    )


def test_file_rewritten_between_passes(tmp_path):
    s, y = _logits_pair(tmp_path)
    stream = open_stream(s, labels=y)
    with open(s, "r+b") as f:
        f.truncate(1000)
    assert _outcome(lambda: list(stream.chunks())) == (
        f"{s}: the file changed while relcal was reading it (9,728 bytes, now 1,000)"
    )


def test_file_shrinks_during_a_pass(tmp_path):
    s, y = _logits_pair(tmp_path)
    stream = open_stream(s, labels=y)

    def shrink_after_two_chunks():
        for i, _ in enumerate(stream.chunks(50)):
            if i == 1:
                with open(s, "r+b") as f:
                    f.truncate(128 + 120 * 32)  # header and 120 rows

    assert _outcome(shrink_after_two_chunks) == (
        f"{s}: the file ended at row 120 of 300 (truncated while reading)"
    )


def test_dataset_file_disappears_mid_run(tmp_path):
    for i in range(3):
        _pair(tmp_path, np.ones((5, 2)) * i - 1, np.zeros(5, np.int64))
        os.rename(tmp_path / "s.npy", tmp_path / f"p{i}_logits.npy")
        os.rename(tmp_path / "y.npy", tmp_path / f"p{i}_labels.npy")
    stream = open_stream(tmp_path)

    def remove_the_last_while_reading_the_first():
        for _s, _, start in stream.chunks(2):
            if start == 0:
                os.unlink(tmp_path / "p2_logits.npy")

    assert _outcome(remove_the_last_while_reading_the_first) == (
        f"{tmp_path / 'p2_logits.npy'}: no such file (it was there when relcal"
        " started reading)"
    )


def test_fortran_order_of_more_than_two_axes(tmp_path):
    rng = np.random.default_rng(3)
    z = np.asfortranarray(rng.normal(size=(2, 3, 4, 4)))
    s, y = _pair(tmp_path, z, np.zeros((2, 4, 4), int))
    assert _outcome(lambda: open_stream(s, labels=y)) == (
        f"{s}: is stored in Fortran order; relcal streams C-order arrays (and 2-D"
        " .npy files in Fortran order: save it with"
        " np.save(path, np.ascontiguousarray(a)))"
    )


def test_damaged_deflated_member_found_while_reading(tmp_path):
    """A deflated member damaged near its end: the header reads, the kind is
    decided from the first chunk, the damage is found in a later one."""
    rng = np.random.default_rng(4)
    path = tmp_path / "p.npz"
    np.savez_compressed(
        path, logits=rng.normal(size=(4000, 8)), labels=np.zeros(4000, int)
    )
    data = bytearray(path.read_bytes())
    data[200_000:200_016] = b"\x00" * 16
    path.write_bytes(bytes(data))
    stream = open_stream(path, kind="logits")
    got = _outcome(lambda: list(stream.chunks(100)))
    assert got is not None and got.startswith(f"{path}: cannot read array 'logits': ")
    assert "\n" not in got


def test_parquet_directory_with_a_file_of_another_schema(tmp_path):
    rng = np.random.default_rng(5)
    df = pd.DataFrame(rng.dirichlet(np.ones(3), size=10), columns=["a", "b", "c"])
    df["label"] = rng.integers(0, 3, 10)
    for i in range(3):
        df.to_parquet(tmp_path / f"part{i}.parquet")
    df.astype({"label": "float64"}).to_parquet(tmp_path / "part1.parquet")
    first, other = tmp_path / "part0.parquet", tmp_path / "part1.parquet"
    assert _outcome(lambda: open_stream(tmp_path)) == (
        f"{other}: its columns (a: double; b: double; c: double; label: double)"
        f" differ from those of {first} (a: double; b: double; c: double; label:"
        " int64): a dataset's tables share one schema"
    )


def test_glob_matching_nothing_and_unpaired_labels(tmp_path):
    s, y = _logits_pair(tmp_path)
    (tmp_path / "labels").mkdir()
    assert _outcome(lambda: open_stream(tmp_path / "nope*.npy", labels=y)) == (
        f"{tmp_path / 'nope*.npy'}: matches no file"
    )
    pattern = str(tmp_path / "s*.npy")
    assert _outcome(lambda: open_stream(pattern, labels=tmp_path / "labels")) == (
        f"{pattern}: no labels file for {s} (looked for s.npy in {tmp_path / 'labels'})"
    )


def test_dataset_errors_through_the_command_line(tmp_path, capsys):
    """`relcal metrics DIR` and a glob go through open_stream: a parquet
    directory with a file of another schema, a glob matching nothing, a
    scores file without labels: exit 2, one line naming the file."""
    rng = np.random.default_rng(6)
    parts = tmp_path / "parts"
    parts.mkdir()
    df = pd.DataFrame(rng.dirichlet(np.ones(3), size=8), columns=["a", "b", "c"])
    df["label"] = rng.integers(0, 3, 8)
    df.to_parquet(parts / "p0.parquet")
    df.rename(columns={"c": "d"}).to_parquet(parts / "p1.parquet")
    msg = _cli(["metrics", str(parts)], tmp_path, capsys)
    assert msg.startswith(f"{parts / 'p1.parquet'}: its columns (a: double; b: double;")
    assert msg.endswith("a dataset's tables share one schema")
    pattern = str(tmp_path / "none" / "*.npy")
    assert _cli(["metrics", pattern, "--labels", pattern], tmp_path, capsys) == (
        f"{pattern}: matches no file"
    )
    (tmp_path / "scores").mkdir()
    (tmp_path / "labels").mkdir()
    np.save(tmp_path / "scores" / "a.npy", np.zeros((3, 2)))
    np.save(tmp_path / "labels" / "b.npy", np.zeros(3, int))
    assert _cli(["metrics", str(tmp_path)], tmp_path, capsys) == (
        f"{tmp_path}: no labels file for {tmp_path / 'scores' / 'a.npy'} (looked for"
        f" a.npy in {tmp_path / 'labels'})"
    )


def test_negative_dimension_in_a_header(tmp_path):
    """(found by scripts/fuzz.py) a header of shape (-3,): io.load's message,
    not a numpy ValueError."""
    np.save(tmp_path / "s.npy", np.zeros((3, 2)))
    y = tmp_path / "y.npy"
    with open(y, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<i8", "fortran_order": False, "shape": (-3,)}
        )
        f.write(bytes(24))
    want = _outcome(lambda: relcal.io.load(tmp_path / "s.npy", labels=y))
    assert (
        want == f"{y}: not a readable .npy file (negative dimensions are not allowed)"
    )
    assert _outcome(lambda: open_stream(tmp_path / "s.npy", labels=y)) == want


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_of_columns_and_no_rows(tmp_path, suffix):
    """(found by scripts/fuzz.py) default score columns of a table without a
    row: io.load's message, not a KeyError."""
    f = tmp_path / f"t{suffix}"
    df = pd.DataFrame(
        {"pclass0": pd.Series([], dtype=float), "label": pd.Series([], dtype=int)}
    )
    df.to_csv(f, index=False) if suffix == ".csv" else df.to_parquet(f)
    want = _outcome(lambda: relcal.io.load(f))
    assert want is not None and want.startswith(str(f))
    assert _outcome(lambda: open_stream(f)) == want


def test_npz_member_of_an_unknown_compression_method(tmp_path, capsys):
    # found by scripts/fuzz.py (seed 77077, case 4189): a flipped byte in a
    # member's compression method made zipfile raise NotImplementedError
    f = tmp_path / "in.npz"
    np.savez(f, logits=np.zeros((10, 3)), labels=np.zeros(10, dtype=np.int64))
    data = bytearray(f.read_bytes())
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local, central
        i = data.find(sig)
        while i != -1:
            data[i + at : i + at + 2] = (99).to_bytes(2, "little")
            i = data.find(sig, i + 4)
    f.write_bytes(bytes(data))
    msg = _cli(["metrics", str(f)], tmp_path, capsys)
    assert msg.startswith(f"{f}: cannot read array")
    assert "compression method" in msg
    out = tmp_path / "t.json"
    fit = _cli(["fit-temperature", str(f), "-o", str(out)], tmp_path, capsys)
    assert "compression method" in fit and not out.exists()


def test_npz_of_an_unknown_zip_version(tmp_path, capsys):
    # found by scripts/fuzz.py (seed 31415, case 62): a flipped byte in the
    # central directory's "version needed" made zipfile.ZipFile raise
    # NotImplementedError ("zip file version 14.7") when opening the archive
    f = tmp_path / "in.npz"
    np.savez(f, logits=np.zeros((10, 3)), labels=np.zeros(10, dtype=np.int64))
    data = bytearray(f.read_bytes())
    i = data.find(b"PK\x01\x02")
    while i != -1:  # central directory: "version needed" (offset 6), 14.7
        data[i + 6] = 147
        i = data.find(b"PK\x01\x02", i + 4)
    f.write_bytes(bytes(data))
    msg = _cli(["metrics", str(f)], tmp_path, capsys)
    assert msg.startswith(f"{f}: not a .npz file Python's zipfile can read")
    out = tmp_path / "r.html"
    rep = _cli(["report", str(f), "-o", str(out)], tmp_path, capsys)
    assert "zipfile can read" in rep and not out.exists()
