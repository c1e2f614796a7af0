"""Bad input through the real command line: exit 2, one line, nothing written.

One table of cases.  Each case writes a bad file (or names a missing one) in
``tmp_path`` and gives the command-line arguments and a part of the error
message.  Every case is run through ``relcal.cli.main`` (and a handful through
``python -m relcal`` in a subprocess) and must:

- exit with code 2, print nothing on stdout;
- print exactly one line on stderr, ``Error: ...``, that names the file and
  the problem, and no traceback;
- leave ``tmp_path`` as it was (names, sizes, modification times).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relcal.cli import main

MARKER = "UNPICKLED"  # written by Bomb if relcal ever unpickles it


class Bomb:
    """Unpickling this calls ``open(<dir>/UNPICKLED, "w")``: a visible side effect."""

    def __init__(self, directory: Path) -> None:
        self.target = str(directory / MARKER)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.target, "w"))


def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


def logits(n: int = 12, c: int = 3) -> np.ndarray:
    return rng().normal(size=(n, c))


def labels(n: int = 12, c: int = 3) -> np.ndarray:
    return rng().integers(0, c, n)


def npz(tmp: Path, name: str, **arrays: object) -> list[str]:
    np.savez(tmp / name, **arrays)  # type: ignore[arg-type]
    return ["metrics", str(tmp / name)]


def text(tmp: Path, name: str, content: str) -> list[str]:
    (tmp / name).write_text(content)
    return ["metrics", str(tmp / name)]


# --------------------------------------------------------------------------
# the cases: each writes its input and returns the arguments


def nan_scores(tmp: Path) -> list[str]:
    z = logits()
    z[4, 1] = np.nan
    return npz(tmp, "nan_scores.npz", logits=z, labels=labels())


def posinf_scores(tmp: Path) -> list[str]:
    z = logits()
    z[2, 0] = np.inf
    return npz(tmp, "posinf.npz", logits=z, labels=labels())


def neginf_true_class(tmp: Path) -> list[str]:
    z, y = logits(), labels()
    z[5, y[5]] = -np.inf  # -inf elsewhere is a masked class; at the label, NLL = inf
    return npz(tmp, "neginf.npz", logits=z, labels=y)


def inf_in_csv(tmp: Path) -> list[str]:
    return text(tmp, "inf.csv", "label,a,b\n0,0.5,inf\n1,0.2,0.3\n")


def label_too_large(tmp: Path) -> list[str]:
    y = labels()
    y[7] = 3
    return npz(tmp, "big_label.npz", logits=logits(), labels=y)


def negative_label(tmp: Path) -> list[str]:
    y = labels()
    y[3] = -1
    return npz(tmp, "neg_label.npz", logits=logits(), labels=y)


def fractional_label(tmp: Path) -> list[str]:
    y = labels().astype(np.float64)
    y[6] = 1.5
    return npz(tmp, "frac_label.npz", logits=logits(), labels=y)


def nan_label(tmp: Path) -> list[str]:
    y = labels().astype(np.float64)
    y[2] = np.nan
    return npz(tmp, "nan_label.npz", logits=logits(), labels=y)


def string_labels(tmp: Path) -> list[str]:
    return npz(tmp, "str_label.npz", logits=logits(), labels=np.array(["a"] * 12))


def length_mismatch(tmp: Path) -> list[str]:
    return npz(tmp, "mismatch.npz", logits=logits(12), labels=labels(10))


def empty_arrays(tmp: Path) -> list[str]:
    return npz(tmp, "empty.npz", logits=np.zeros((0, 3)), labels=np.zeros(0, np.int64))


def zero_classes(tmp: Path) -> list[str]:
    return npz(tmp, "zero_cols.npz", logits=np.zeros((6, 0)), labels=np.zeros(6, int))


def one_class_segmentation(tmp: Path) -> list[str]:
    return npz(
        tmp,
        "one_class.npz",
        logits=np.zeros((2, 1, 3, 3)),
        labels=np.zeros((2, 3, 3), int),
    )


def scalar_scores(tmp: Path) -> list[str]:
    return npz(tmp, "scalar.npz", logits=np.float64(0.3), labels=np.int64(1))


def object_array(tmp: Path) -> list[str]:
    bombs = np.empty(12, dtype=object)
    bombs[:] = [Bomb(tmp) for _ in range(12)]
    path = tmp / "pickled.npz"
    np.savez(path, logits=logits(), labels=bombs, allow_pickle=True)
    return ["metrics", str(path)]


def object_npy_labels(tmp: Path) -> list[str]:
    bombs = np.empty(12, dtype=object)
    bombs[:] = [Bomb(tmp) for _ in range(12)]
    np.save(tmp / "scores.npy", logits())
    np.save(tmp / "pickled_labels.npy", bombs, allow_pickle=True)
    return [
        "metrics",
        str(tmp / "scores.npy"),
        "--labels",
        str(tmp / "pickled_labels.npy"),
    ]


def truncated_npz(tmp: Path) -> list[str]:
    path = tmp / "truncated.npz"
    np.savez(path, logits=logits(200), labels=labels(200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ["metrics", str(path)]


def corrupt_member(tmp: Path) -> list[str]:
    path = tmp / "corrupt.npz"
    np.savez(path, logits=logits(200), labels=labels(200))
    data = bytearray(path.read_bytes())
    data[200:600] = b"\x00" * 400  # inside the first member; the zip index survives
    path.write_bytes(bytes(data))
    return ["metrics", str(path)]


def not_a_zip(tmp: Path) -> list[str]:
    (tmp / "not_zip.npz").write_bytes(b"these are not the bytes of a zip archive\n" * 8)
    return ["metrics", str(tmp / "not_zip.npz")]


def empty_npz_file(tmp: Path) -> list[str]:
    (tmp / "zero_bytes.npz").write_bytes(b"")
    return ["metrics", str(tmp / "zero_bytes.npz")]


def missing_key(tmp: Path) -> list[str]:
    return npz(tmp, "no_scores.npz", outputs=logits(), labels=labels())


def missing_labels_key_override(tmp: Path) -> list[str]:
    return npz(tmp, "keys.npz", logits=logits(), labels=labels()) + [
        "--labels-key",
        "gt",
    ]


def ambiguous_keys(tmp: Path) -> list[str]:
    z = logits()
    probs = np.exp(z) / np.exp(z).sum(1)[:, None]
    return npz(tmp, "ambiguous.npz", logits=z, probs=probs, labels=labels())


def declared_probs_not_summing(tmp: Path) -> list[str]:
    return npz(tmp, "not_probs.npz", scores=np.full((12, 3), 0.3), labels=labels()) + [
        "--scores",
        "probs",
    ]


def probs_key_negative(tmp: Path) -> list[str]:
    return npz(tmp, "neg_probs.npz", probs=logits(), labels=labels())


def class_names_length(tmp: Path) -> list[str]:
    return npz(
        tmp,
        "names.npz",
        logits=logits(),
        labels=labels(),
        class_names=np.array(["cat", "dog"]),
    )


def onehot_two_ones(tmp: Path) -> list[str]:
    onehot = np.eye(3)[labels()]
    onehot[4] = [1, 1, 0]
    return npz(tmp, "onehot.npz", logits=logits(), labels=onehot)


def segmentation_label_shape(tmp: Path) -> list[str]:
    return npz(
        tmp, "seg.npz", logits=np.zeros((2, 3, 4, 5)), labels=np.zeros((2, 5, 4), int)
    )


def channels_last_label_shape(tmp: Path) -> list[str]:
    return npz(
        tmp,
        "seg_nhwc.npz",
        logits=np.zeros((2, 4, 5, 3)),
        labels=np.zeros((2, 5, 4), int),
    ) + ["--channels-last"]


def all_labels_ignored(tmp: Path) -> list[str]:
    return npz(
        tmp,
        "all_ignored.npz",
        logits=np.zeros((2, 3, 4, 4)),
        labels=np.full((2, 4, 4), 255),
    ) + ["--ignore-index", "255"]


def csv_non_numeric(tmp: Path) -> list[str]:
    return text(tmp, "words.csv", "label,a,b,c\n0,0.1,0.2,0.7\n2,0.3,abc,0.4\n")


def csv_missing_value(tmp: Path) -> list[str]:
    return text(tmp, "holes.csv", "label,a,b,c\n0,0.1,0.2,0.7\n2,0.3,,0.4\n")


def csv_unknown_class(tmp: Path) -> list[str]:
    return text(tmp, "names.csv", "label,p_cat,p_dog\ncat,0.9,0.1\nemu,0.4,0.6\n")


def csv_ragged(tmp: Path) -> list[str]:
    return text(tmp, "ragged.csv", "label,a,b\n0,0.1,0.9\n1,0.2,0.5,0.3\n")


def csv_header_only(tmp: Path) -> list[str]:
    return text(tmp, "header.csv", "label,a,b\n")


def parquet_no_label_column(tmp: Path) -> list[str]:
    path = tmp / "no_label.parquet"
    pd.DataFrame({"a": [0.2, 0.7], "b": [0.8, 0.3]}).to_parquet(path)
    return ["metrics", str(path)]


def parquet_garbage(tmp: Path) -> list[str]:
    (tmp / "garbage.parquet").write_bytes(b"PAR1 and nothing parquet can read")
    return ["metrics", str(tmp / "garbage.parquet")]


def toplabel_confidence_above_one(tmp: Path) -> list[str]:
    return text(
        tmp, "top.csv", "true_label,pred_label,confidence\n0,0,0.9\n1,2,1.3\n2,2,0.6\n"
    )


def toplabel_negative_label(tmp: Path) -> list[str]:
    return text(
        tmp,
        "top_neg.csv",
        "true_label,pred_label,confidence\n0,0,0.9\n-1,2,0.3\n2,2,0.6\n",
    )


def no_such_file(tmp: Path) -> list[str]:
    return ["metrics", str(tmp / "missing.npz")]


def a_directory(tmp: Path) -> list[str]:
    (tmp / "preds_dir").mkdir()
    return ["metrics", str(tmp / "preds_dir")]


def unknown_extension(tmp: Path) -> list[str]:
    return text(tmp, "preds.txt", "0.1 0.9\n")


def npy_without_labels(tmp: Path) -> list[str]:
    np.save(tmp / "alone.npy", logits())
    return ["metrics", str(tmp / "alone.npy")]


def npy_labels_missing(tmp: Path) -> list[str]:
    np.save(tmp / "scores.npy", logits())
    return ["metrics", str(tmp / "scores.npy"), "--labels", str(tmp / "nolabels.npy")]


def npy_not_numpy(tmp: Path) -> list[str]:
    (tmp / "fake.npy").write_bytes(b"not a numpy file at all" * 4)
    np.save(tmp / "y.npy", labels())
    return ["metrics", str(tmp / "fake.npy"), "--labels", str(tmp / "y.npy")]


def npy_labels_out_of_range(tmp: Path) -> list[str]:
    y = labels()
    y[1] = 9
    np.save(tmp / "scores.npy", logits())
    np.save(tmp / "bad_y.npy", y)
    return ["metrics", str(tmp / "scores.npy"), "--labels", str(tmp / "bad_y.npy")]


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], list[str]]
    expect: str  # part of the message
    file: str | None = None  # the file the message names (default: the FILE argument)


CASES = [
    Case("nan-scores", nan_scores, "1 values are NaN or +inf"),
    Case("posinf-scores", posinf_scores, "NaN or +inf (first: inf"),
    Case("neginf-true-class", neginf_true_class, "the true class has a logit of -inf"),
    Case("inf-in-csv", inf_in_csv, "NaN or +inf"),
    Case("label-too-large", label_too_large, "labels: 1 values outside [0, 2]"),
    Case("negative-label", negative_label, "outside [0, 2] (first: -1 at row 3)"),
    Case(
        "fractional-label", fractional_label, "not whole numbers (first: 1.5 at row 6)"
    ),
    Case("nan-label", nan_label, "labels: 1 values are NaN or infinite"),
    Case(
        "string-labels",
        string_labels,
        "array 'labels' holds strings (first: 'a'), not class indices, and the"
        " file has no 'class_names' array to match them against",
    ),
    Case("length-mismatch", length_mismatch, "length mismatch: 12 score rows but 10"),
    Case("empty-arrays", empty_arrays, "empty array of shape (0, 3)"),
    Case("zero-classes", zero_classes, "empty array of shape (6, 0)"),
    Case("one-class", one_class_segmentation, "need at least 2 classes"),
    Case("scalar-scores", scalar_scores, "a single number"),
    Case("object-array", object_array, "holds Python objects; relcal never unpickles"),
    Case(
        "object-npy-labels",
        object_npy_labels,
        "never unpickles",
        file="pickled_labels.npy",
    ),
    Case("truncated-npz", truncated_npz, "not a readable .npz file"),
    Case("corrupt-member", corrupt_member, "cannot read array 'logits'"),
    Case("not-a-zip", not_a_zip, "not a .npz file (not a zip archive)"),
    Case("zero-byte-npz", empty_npz_file, "the file is empty"),
    Case("missing-key", missing_key, "the file has: outputs, labels"),
    Case(
        "missing-labels-key",
        missing_labels_key_override,
        "no array 'gt' for the labels; the file has: logits, labels",
    ),
    Case(
        "ambiguous-keys",
        ambiguous_keys,
        "ambiguous scores (logits, probs); the file has: logits, probs, labels",
    ),
    Case("declared-probs-not-summing", declared_probs_not_summing, "do not sum to 1"),
    Case("probs-key-negative", probs_key_negative, "negative values"),
    Case("class-names-length", class_names_length, "class_names has 2 names"),
    Case("onehot-two-ones", onehot_two_ones, "one-hot rows do not hold exactly one 1"),
    Case(
        "segmentation-label-shape",
        segmentation_label_shape,
        "expected labels of shape (2, 4, 5)",
    ),
    Case(
        "channels-last-label-shape",
        channels_last_label_shape,
        "expected labels of shape (2, 4, 5)",
    ),
    Case(
        "all-labels-ignored", all_labels_ignored, "every label equals ignore_index 255"
    ),
    Case(
        "csv-non-numeric",
        csv_non_numeric,
        "column 'b': non-numeric value 'abc' at row 1",
    ),
    Case("csv-missing-value", csv_missing_value, "column 'b': missing value at row 1"),
    Case("csv-unknown-class", csv_unknown_class, "unknown class name 'emu' at row 1"),
    Case("csv-ragged", csv_ragged, "cannot read the .csv file"),
    Case("csv-header-only", csv_header_only, "no rows"),
    Case("parquet-no-label-column", parquet_no_label_column, "no label column 'label'"),
    Case("parquet-garbage", parquet_garbage, "cannot read the .parquet file"),
    Case(
        "toplabel-confidence-above-1",
        toplabel_confidence_above_one,
        "column 'confidence': 1 values outside [0, 1]",
    ),
    Case(
        "toplabel-negative-label",
        toplabel_negative_label,
        "true_label: 1 values outside",
    ),
    Case("no-such-file", no_such_file, "no such file"),
    Case("directory", a_directory, "is a directory"),
    Case("unknown-extension", unknown_extension, "unknown file type '.txt'"),
    Case("npy-without-labels", npy_without_labels, "needs its labels"),
    Case("npy-labels-missing", npy_labels_missing, "no such file", file="nolabels.npy"),
    Case("npy-not-numpy", npy_not_numpy, "not a .npy file"),
    Case(
        "npy-labels-out-of-range",
        npy_labels_out_of_range,
        "outside [0, 2]",
        file="bad_y.npy",
    ),
]

# run through `python -m relcal` as well
SUBPROCESS = (
    "nan-scores",
    "object-array",
    "truncated-npz",
    "csv-non-numeric",
    "no-such-file",
    "npy-labels-missing",
    "parquet-no-label-column",
)


def params(cases: list[Case]) -> list[object]:
    return [pytest.param(c, id=c.id) for c in cases]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (and root itself): size and mtime in ns."""
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.stat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def check(case: Case, args: list[str], code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, err
    assert code == 2, (code, err)
    assert out == "", out
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    line = lines[0]
    assert line.startswith("Error: "), line
    assert case.expect in line, line
    name = case.file or Path(args[1]).name
    if name not in line:
        raise AssertionError(f"{name!r} not in {line!r}")


def test_enough_distinct_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    assert set(SUBPROCESS) <= {c.id for c in CASES}


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input_main(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = case.make(tmp_path)
    capsys.readouterr()
    before = snapshot(tmp_path)
    code = main(args)
    out, err = capsys.readouterr()
    assert snapshot(tmp_path) == before, "something was written"
    assert not (tmp_path / MARKER).exists(), "an object array was unpickled"
    check(case, args, code, out, err)


@pytest.mark.parametrize("case", params([c for c in CASES if c.id in SUBPROCESS]))
def test_bad_input_subprocess(case: Case, tmp_path: Path) -> None:
    args = case.make(tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "relcal", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert snapshot(tmp_path) == before, "something was written"
    assert not (tmp_path / MARKER).exists(), "an object array was unpickled"
    check(case, args, proc.returncode, proc.stdout, proc.stderr)


def test_the_bomb_goes_off_when_unpickled(tmp_path: Path) -> None:
    """The object-array cases would notice an unpickling: the marker appears."""
    object_array(tmp_path)
    with np.load(tmp_path / "pickled.npz", allow_pickle=True) as f:
        f["labels"]
    assert (tmp_path / MARKER).exists()


BAD_OPTIONS = [
    pytest.param(["--bins", "0"], "--bins", id="bins-0"),
    pytest.param(["--bins", "many"], "--bins", id="bins-not-int"),
    pytest.param(["--binning", "foo"], "--binning", id="binning-foo"),
    pytest.param(["--scores", "odds"], "--scores", id="scores-odds"),
    pytest.param(["--ignore-index", "x"], "--ignore-index", id="ignore-index-not-int"),
    pytest.param(["--no-such-option"], "--no-such-option", id="unknown-option"),
]


def good_file(tmp: Path) -> str:
    np.savez(tmp / "good.npz", logits=logits(), labels=labels())
    return str(tmp / "good.npz")


@pytest.mark.parametrize(("extra", "option"), BAD_OPTIONS)
def test_bad_option_main(
    extra: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = good_file(tmp_path)
    before = snapshot(tmp_path)
    code = main(["metrics", path, *extra])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err and out == ""
    assert option in err and "Error:" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("extra", "option"), BAD_OPTIONS[:3])
def test_bad_option_subprocess(extra: list[str], option: str, tmp_path: Path) -> None:
    path = good_file(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "relcal", "metrics", path, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout == ""
    assert option in proc.stderr and "Error:" in proc.stderr


# The other commands read input through the same loader and checks: every case
# above must fail the same way for them (temperature scaling and the report
# need every class's scores, so a valid top-label file is not a case here).
OTHER_COMMANDS = ["fit-temperature", "report"]


@pytest.mark.parametrize("command", OTHER_COMMANDS)
@pytest.mark.parametrize("case", params(CASES))
def test_bad_input_other_commands(
    case: Case, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = case.make(tmp_path)
    assert args[0] == "metrics"
    args = [command, *args[1:], "-o", str(tmp_path / "out.file")]
    capsys.readouterr()
    before = snapshot(tmp_path)
    code = main(args)
    out, err = capsys.readouterr()
    assert snapshot(tmp_path) == before, "something was written"
    assert not (tmp_path / MARKER).exists(), "an object array was unpickled"
    check(case, args, code, out, err)
