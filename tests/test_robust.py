"""Inputs that used to break relcal (found by scripts/fuzz.py), one test each.

Every case must end in exactly one line ``Error: ...`` (asserted whole), exit
code 2, nothing on stdout, and no file written or changed: a FIFO that would
block, a device that never ends, bins or bootstrap sizes that would take all
memory, numbers that overflow, a JSON file nested too deeply, a damaged .npy
header, a newline in a file name.  Then the output side: a terminal that
cannot encode a class name, glyphs matplotlib lacks, -inf logits written by
calibrate.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import relcal
from relcal.cli import main
from relcal.io import load, read_temperature
from relcal.temperature import calibrated_arrays, scale_logits
from relcal.validate import check_labels

from .test_bad_input import snapshot


def rng() -> np.random.Generator:
    return np.random.default_rng(5)


def good_npz(tmp: Path, name: str = "ok.npz", **extra: object) -> Path:
    r = rng()
    arrays = {"logits": r.normal(size=(30, 3)), "labels": r.integers(0, 3, 30)}
    arrays.update(extra)  # type: ignore[arg-type]
    np.savez(tmp / name, **arrays)  # type: ignore[arg-type]
    return tmp / name


def temperature_json(tmp: Path, text: str) -> Path:
    (tmp / "t.json").write_text(text)
    return tmp / "t.json"


def t_doc(t: object) -> str:
    doc = {"format": 1, "kind": "relcal.temperature", "fitted_on": {"n_classes": 3}}
    return json.dumps({**doc, "temperature": t})


def fifo_input(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.npz")
    return ["metrics", str(tmp / "pipe.npz")]


def device_labels(tmp: Path) -> list[str]:
    np.save(tmp / "s.npy", rng().normal(size=(30, 3)))
    (tmp / "zero.npy").symlink_to("/dev/zero")
    return ["metrics", str(tmp / "s.npy"), "--labels", str(tmp / "zero.npy")]


def fifo_temperature(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "t.json")
    return ["calibrate", str(good_npz(tmp)), "--temperature", str(tmp / "t.json")]


def fifo_config(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "relcal.toml")
    return ["check", str(good_npz(tmp)), "--config", str(tmp / "relcal.toml")]


def fifo_output(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "out.html")
    return ["report", str(good_npz(tmp)), "-o", str(tmp / "out.html")]


def deep_temperature(tmp: Path) -> list[str]:
    deep = "[" * 100_000 + "]" * 100_000
    t = temperature_json(tmp, '{"kind": "relcal.temperature", "temperature": ' + deep)
    return ["calibrate", str(good_npz(tmp)), "--temperature", str(t)]


def huge_int_temperature(tmp: Path) -> list[str]:
    t = temperature_json(tmp, t_doc(10**400))
    return ["calibrate", str(good_npz(tmp)), "--temperature", str(t)]


def nan_temperature(tmp: Path) -> list[str]:
    t = temperature_json(tmp, t_doc(1.5).replace("1.5", "NaN"))
    return ["report", str(good_npz(tmp)), "--temperature", str(t)]


def tiny_temperature(tmp: Path) -> list[str]:
    t = temperature_json(tmp, t_doc(5e-324))
    return ["calibrate", str(good_npz(tmp)), "--temperature", str(t)]


def deep_baseline(tmp: Path) -> list[str]:
    (tmp / "base.json").write_text('{"kind": ' + "[" * 50_000 + "]" * 50_000 + "}")
    return ["check", str(good_npz(tmp)), "--baseline", str(tmp / "base.json")]


def huge_logits_fit(tmp: Path) -> list[str]:
    z = rng().normal(size=(30, 3))
    z[3, 2] = 1e300
    path = good_npz(tmp, "huge.npz", logits=z)
    return ["fit-temperature", str(path), "-o", str(tmp / "t.json")]


def nll_overflow(tmp: Path) -> list[str]:
    z = rng().normal(size=(30, 3)) * 1e307
    return ["metrics", "--json", str(good_npz(tmp, "huge.npz", logits=z))]


def label_1e308(tmp: Path) -> list[str]:
    y = rng().integers(0, 3, 30).astype(float)
    y[4] = 1e308
    return ["metrics", str(good_npz(tmp, "labels.npz", labels=y))]


def label_uint64_max(tmp: Path) -> list[str]:
    y = rng().integers(0, 3, 30).astype(np.uint64)
    y[6] = np.iinfo(np.uint64).max
    return ["metrics", str(good_npz(tmp, "labels.npz", labels=y))]


def ignore_index_beyond_int64(tmp: Path) -> list[str]:
    return ["metrics", str(good_npz(tmp)), "--ignore-index", str(2**70)]


def npy_header_unterminated(tmp: Path) -> list[str]:
    buf = io.BytesIO()
    np.save(buf, rng().normal(size=(30, 3)))
    data = buf.getvalue()
    start, end = data.index(b"{"), data.index(b"}")
    fake = b"{'descr': '<f8', 'fortran_order': False, 'shape': ("
    (tmp / "s.npy").write_bytes(
        data[:start] + fake.ljust(end + 1 - start) + data[end + 1 :]
    )
    np.save(tmp / "y.npy", rng().integers(0, 3, 30))
    return ["metrics", str(tmp / "s.npy"), "--labels", str(tmp / "y.npy")]


def npz_header_claims_terabytes(tmp: Path) -> list[str]:
    import zipfile

    member = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 3)}
    np.lib.format.write_array_header_1_0(member, header)
    member.write(bytes(720))
    labels = io.BytesIO()
    np.save(labels, rng().integers(0, 3, 30))
    path = tmp / "claims.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("logits.npy", member.getvalue())
        z.writestr("labels.npy", labels.getvalue())
    return ["metrics", str(path)]


def report_too_many_bins(tmp: Path) -> list[str]:
    return ["report", str(good_npz(tmp)), "--bins", "5000", "-o", str(tmp / "r.html")]


def classwise_too_large(tmp: Path) -> list[str]:
    r = rng()
    path = tmp / "wide.npz"
    np.savez(path, logits=r.normal(size=(4, 5000)), labels=r.integers(0, 5000, 4))
    return ["metrics", str(path), "--bins", "10000"]


def newline_in_file_name(tmp: Path) -> list[str]:
    return ["metrics", str(tmp / "no\nsuch\x1b[31m.npz")]


def config_bins_too_many(tmp: Path) -> list[str]:
    (tmp / "relcal.toml").write_text("[check]\nmax-ece = 0.1\nbins = 1000000000\n")
    return ["check", str(good_npz(tmp)), "--config", str(tmp / "relcal.toml")]


def config_confidence_huge_int(tmp: Path) -> list[str]:
    text = f"[check]\nmax-ece = 0.1\nconfidence = {10**30}\n"
    (tmp / "relcal.toml").write_text(text)
    return ["check", str(good_npz(tmp)), "--config", str(tmp / "relcal.toml")]


def too_many_folds(tmp: Path) -> list[str]:
    r = rng()
    path = good_npz(tmp, logits=r.normal(size=(300, 3)), labels=r.integers(0, 3, 300))
    return ["fit-temperature", str(path), "--cv", "101", "-o", str(tmp / "t.json")]


def opposite_huge_logits(tmp: Path) -> list[str]:
    z = rng().normal(size=(30, 3))
    z[2] = [-1.5e308, 1.5e308, 0.0]  # z - max overflows to -inf
    y = rng().integers(0, 3, 30)
    y[2] = 0
    return ["metrics", str(good_npz(tmp, "huge.npz", logits=z, labels=y))]


def binary_logits_both_neginf(tmp: Path) -> list[str]:
    z = rng().normal(size=(30, 2))
    z[5] = -np.inf  # -inf - -inf: NaN
    y = rng().integers(0, 2, 30)
    return ["metrics", str(good_npz(tmp, "binary.npz", logits=z, labels=y))]


def binary_table_label_out_of_range(tmp: Path) -> list[str]:
    (tmp / "binary.csv").write_text("label,p1\n0,0.2\n1,0.7\n2,0.4\n")
    return ["metrics", str(tmp / "binary.csv")]


def unwritable_output(tmp: Path) -> list[str]:
    return ["report", str(good_npz(tmp)), "-o", "/proc/relcal-test.html"]


def float32_tiny_temperature(tmp: Path) -> list[str]:
    z = rng().normal(size=(30, 3)).astype(np.float32)
    t = temperature_json(tmp, t_doc(1e-308))
    return ["calibrate", str(good_npz(tmp, logits=z)), "--temperature", str(t)]


def segmentation_nll_sum_overflow(tmp: Path) -> list[str]:
    r = rng()
    z = r.normal(size=(2, 3, 2, 2))
    y = r.integers(0, 3, (2, 2, 2))
    z[:, 0, 0, 0] = -1e308  # the label's logit: an NLL near 1e308 per image
    y[:, 0, 0] = 0
    path = good_npz(tmp, "seg.npz", logits=z, labels=y)
    return ["metrics", str(path)]


def deep_config(tmp: Path) -> list[str]:
    text = "[check]\nmax-ece = " + "[" * 5000 + "]" * 5000 + "\n"
    (tmp / "relcal.toml").write_text(text)
    return ["check", str(good_npz(tmp)), "--config", str(tmp / "relcal.toml")]


CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    (
        "fifo-input",
        fifo_input,
        "{d}/pipe.npz: is a FIFO (named pipe), not a regular file",
    ),
    (
        "device-labels",
        device_labels,
        "{d}/zero.npy: is a character device, not a regular file",
    ),
    (
        "fifo-temperature",
        fifo_temperature,
        "{d}/t.json: is a FIFO (named pipe), not a regular file",
    ),
    (
        "fifo-config",
        fifo_config,
        "{d}/relcal.toml: is a FIFO (named pipe), not a regular file",
    ),
    (
        "fifo-output",
        fifo_output,
        "{d}/out.html: is a FIFO (named pipe), not a regular file;"
        " give a file name to write",
    ),
    (
        "deep-temperature",
        deep_temperature,
        "{d}/t.json: not a JSON file relcal reads (nested too deeply)",
    ),
    (
        "huge-int-temperature",
        huge_int_temperature,
        "{d}/t.json: temperature must be a positive number."
        " Got 1000000000000000000000000000000000000...",
    ),
    (
        "nan-temperature",
        nan_temperature,
        "{d}/t.json: not a JSON file (NaN is not a number relcal reads)",
    ),
    (
        "tiny-temperature",
        tiny_temperature,
        "{d}/t.json: temperature 4.94066e-324 scales the logits beyond the range"
        " of float64",
    ),
    (
        "deep-baseline",
        deep_baseline,
        "{d}/base.json: not a JSON file relcal reads (nested too deeply)",
    ),
    (
        "huge-logits-fit",
        huge_logits_fit,
        "{d}/huge.npz: scores: a logit of 1e+300; temperature scaling takes logits"
        " of magnitude up to 1e+30",
    ),
    (
        "nll-overflow",
        nll_overflow,
        "{d}/huge.npz: scores: the mean NLL overflows float64 (logits near the"
        " float range, e.g. 1e308)",
    ),
    (
        "label-1e308",
        label_1e308,
        "{d}/labels.npz: labels: 1 values outside [0, 2] (first: 1e+308 at row 4)",
    ),
    (
        "label-uint64-max",
        label_uint64_max,
        "{d}/labels.npz: labels: 1 values outside [0, 2]"
        " (first: 18446744073709551615 at row 6)",
    ),
    (
        "ignore-index-beyond-int64",
        ignore_index_beyond_int64,
        "{d}/ok.npz: --ignore-index 1180591620717411303424 is not a label:"
        " labels are int64 values",
    ),
    (
        "npy-header-unterminated",
        npy_header_unterminated,
        "{d}/s.npy: not a readable .npy file (('EOF in multi-line statement', (2, 0)))",
    ),
    (
        "npz-header-claims-terabytes",
        npz_header_claims_terabytes,
        "{d}/claims.npz: array 'logits': its header claims shape"
        " (1000000000000, 3) (24,000,000,000,000 bytes) but the file holds 720 bytes",
    ),
    (
        "report-too-many-bins",
        report_too_many_bins,
        "the report draws one bar per bin: --bins 5000 is more than 1000 bins",
    ),
    (
        "classwise-too-large",
        classwise_too_large,
        "{d}/wide.npz: class-wise bins: 5000 classes x 10000 bins is more than"
        " 16,777,216 bins in all; use fewer bins (--bins)",
    ),
    (
        "newline-in-file-name",
        newline_in_file_name,
        # "[31m" makes the name a glob pattern (a dataset of several files)
        "{d}/no\\nsuch\\x1b[31m.npz: matches no file",
    ),
    (
        "too-many-folds",
        too_many_folds,
        "{d}/ok.npz: --cv 101: more folds than 100 (one fit per fold)",
    ),
    (
        "opposite-huge-logits",
        opposite_huge_logits,
        "{d}/huge.npz: scores: values too large to exponentiate safely",
    ),
    (
        "binary-logits-both-neginf",
        binary_logits_both_neginf,
        "{d}/binary.npz: scores: the true class has a logit of -inf (probability"
        " 0, infinite NLL) at row 5",
    ),
    (
        "binary-table-label-out-of-range",
        binary_table_label_out_of_range,
        "{d}/binary.csv: labels: 1 values outside [0, 1] (first: 2 at row 2)",
    ),
    (
        "unwritable-output",  # named as given, not as its temporary file
        unwritable_output,
        "/proc/relcal-test.html: cannot write (No such file or directory)",
    ),
    (
        "float32-tiny-temperature",
        float32_tiny_temperature,
        "{d}/t.json: temperature 1e-308 is outside the range of the logits'"
        " dtype float32",
    ),
    (
        "segmentation-nll-sum-overflow",
        segmentation_nll_sum_overflow,
        "{d}/seg.npz: scores: the mean NLL overflows float64 (logits near the"
        " float range, e.g. 1e308)",
    ),
    (
        "deep-config",
        deep_config,
        "{d}/relcal.toml: not valid TOML (nested too deeply)",
    ),
    (
        "config-bins-too-many",
        config_bins_too_many,
        "{d}/relcal.toml: bins must be at most 10000. Got 1000000000 instead",
    ),
    (
        "config-confidence-huge-int",
        config_confidence_huge_int,
        "{d}/relcal.toml: confidence must be in [0.5, 1)."
        " Got 1000000000000000000000000000000",
    ),
]


@pytest.mark.parametrize(
    ("make", "expected"), [pytest.param(m, e, id=i) for i, m, e in CASES]
)
def test_refused_in_one_line(
    make: Callable[[Path], list[str]],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = make(tmp_path)
    before = snapshot(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may reach the user either
        code = main(args)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == "Error: " + expected.replace("{d}", str(tmp_path)) + "\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("option", "value", "limit"),
    [
        ("--bins", "10000000", "1<=x<=10000"),
        ("--bootstrap", "1000000", "100<=x<=100000"),
    ],
)
def test_sizes_bounded_by_the_options(
    option: str,
    value: str,
    limit: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["check", str(good_npz(tmp_path)), "--confidence", "0.9", option, value]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': {value} is not in the range {limit}."
    )


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_terminal_that_cannot_encode_names(encoding: str, tmp_path: Path) -> None:
    path = good_npz(tmp_path, "日本.npz")
    env = {**os.environ, "PYTHONIOENCODING": encoding, "LC_ALL": "C"}
    proc = subprocess.run(
        [sys.executable, "-m", "relcal", "metrics", path.name],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == b""
    first = proc.stdout.splitlines()[0]
    # click writes UTF-8 to an ASCII terminal; Latin-1 gets backslash escapes
    shown = "日本".encode() if encoding == "ascii" else b"\\u65e5\\u672c"
    assert first == b"relcal 0.1.0: " + shown + b".npz"


def test_report_odd_class_names_draw_without_warnings(tmp_path: Path) -> None:
    names = np.array(["日本語", "\x00nul", "a\nb"])
    path = good_npz(tmp_path, class_names=names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["report", str(path), "-o", str(tmp_path / "r.html")])
    html = (tmp_path / "r.html").read_text()
    assert code == 0
    # the diagrams' titles show the NUL escaped (no font has a glyph for it)
    assert "日本語" in html and ">\\x00nul<" in html and "\x00" not in html


def test_calibrate_writes_no_infinity(tmp_path: Path) -> None:
    z = rng().normal(size=(30, 3))
    y = rng().integers(1, 3, 30)
    z[:, 0] = -np.inf  # class 0 masked, never the label
    (tmp_path / "t.json").write_text(t_doc(2.0))
    path = good_npz(tmp_path, logits=z, labels=y)
    assert (
        main(
            [
                "calibrate",
                str(path),
                "--temperature",
                str(tmp_path / "t.json"),
                "-o",
                str(tmp_path / "c.npz"),
            ]
        )
        == 0
    )
    with np.load(tmp_path / "c.npz") as f:
        logits, probs = f["logits"], f["calibrated_probs"]
    assert np.isfinite(logits).all() and np.isfinite(probs).all()
    assert (logits[:, 0] == np.finfo(np.float64).min).all()
    assert (probs[:, 0] == 0).all()
    np.testing.assert_array_equal(logits[:, 1:], z[:, 1:] / 2.0)


def test_library_side_of_the_bounds() -> None:
    with pytest.raises(Exception, match=r"^temperature 4.94066e-324 scales the logit"):
        scale_logits(np.array([[1.0, 2.0]]), 5e-324)
    logits, probs = calibrated_arrays(np.array([[0.0, -np.inf]]), 1.0)
    assert logits.tolist() == [[0.0, np.finfo(np.float64).min]]
    assert probs.tolist() == [[1.0, 0.0]]
    with pytest.raises(Exception, match=r"first: 1e\+308 at row 1"):
        check_labels(np.array([0.0, 1e308]), 2)


def test_readers_refuse_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "t.json")
    with pytest.raises(Exception, match=r"t\.json: is a FIFO \(named pipe\)"):
        read_temperature(tmp_path / "t.json")
    with pytest.raises(Exception, match=r"^/dev/zero: is a character device"):
        load("/dev/zero")


def test_classwise_ece_when_no_probability_leaves_the_first_bin() -> None:
    """Every probability of 20 classes is near 0.05, below the first bin's upper
    edge 1/15: the class totals must stay float64 (an empty bincount is int64
    and used to truncate them)."""
    r = rng()
    p = 0.05 + r.uniform(-0.004, 0.004, (1000, 20))
    p /= p.sum(axis=1, keepdims=True)
    y = r.integers(0, 20, 1000)
    freq = np.bincount(y, minlength=20) / 1000
    expected = np.mean(np.abs(freq - p.mean(axis=0)))  # one bin per class
    got = relcal.evaluate(p, y, kind="probs").classwise_ece
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_out_of_memory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last resort, for data larger than the machine: every size an option
    or a header asks for is checked before, so the fuzz run never gets here."""

    def evaluate(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 80.0 GiB")

    monkeypatch.setattr("relcal.pipeline.measure", evaluate)
    assert main(["metrics", str(good_npz(tmp_path))]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        "Error: out of memory: the input needs more memory than this machine has\n",
    )


def test_segmentation_with_a_whole_image_ignored(tmp_path: Path) -> None:
    """An image whose every pixel is ignored gives its chunk no sample: the
    chunk's bin sums must still add up (float64) with the others' (relcal
    check's pass, which keeps per-sample arrays and the equal-width table)."""
    from relcal.metrics import reduce_predictions

    r = rng()
    z = r.normal(size=(3, 4, 5, 5))
    y = r.integers(1, 4, (3, 5, 5))
    y[0] = 0  # the whole first image: the first chunk has no sample
    path = good_npz(tmp_path, "seg.npz", logits=z, labels=y)
    _, res = reduce_predictions(load(path, ignore_index=0))
    keep = y.reshape(-1) != 0
    rows = np.moveaxis(z, 1, -1).reshape(-1, 4)[keep]
    ref = relcal.evaluate(rows, y.reshape(-1)[keep])
    assert res.n == ref.n == 50
    for name in ("ece", "classwise_ece", "nll", "brier", "accuracy"):
        assert getattr(res, name) == pytest.approx(getattr(ref, name), rel=1e-12)


def test_calibrate_tiny_temperature_float64(tmp_path: Path) -> None:
    """z / T near the float range: softmax's z - max overflows to -inf, which
    is a probability of 0, with no warning."""
    z = np.array([[-1.0, 1.0, 0.0], [0.5, -0.5, 0.25]])
    path = good_npz(tmp_path, logits=z, labels=np.array([1, 0]))
    (tmp_path / "t.json").write_text(t_doc(1e-308))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(
            [
                "calibrate",
                str(path),
                "--temperature",
                str(tmp_path / "t.json"),
                "-o",
                str(tmp_path / "c.npz"),
            ]
        )
    assert code == 0
    with np.load(tmp_path / "c.npz") as f:
        assert f["calibrated_probs"].tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
        assert np.isfinite(f["logits"]).all()
