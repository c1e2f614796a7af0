"""relcal metrics, report and check stream their input (relcal.pipeline):
everything they print or write equals the in-memory results on the loaded
arrays to 1e-12 relative, in every format, for any chunk size
(RELCAL_CHUNK_ROWS) and any --jobs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import relcal
import relcal.io
from relcal.cli import main
from relcal.summary import BootstrapPlan, Plan, array_chunks, reduce_chunks

# run before tests that leave threads behind, so that these read .npy files
# in worker processes as the CLI does (relcal.forked refuses to fork beside
# a foreign thread)
pytestmark = pytest.mark.forks

RTOL = 1e-12


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def close(a: Any, b: Any, where: str = "") -> None:
    """Equal documents: numbers to RTOL relative, everything else exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, (int, float)), where
        assert math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-15), (where, a, b)
    else:
        assert a == b, (where, a, b)


# --------------------------------------------------------------------------
# the inputs: one dataset in every format


def _logits(rng: np.random.Generator, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, c)).astype(np.float32) * 2.0
    y = np.where(rng.random(n) < 0.7, z.argmax(axis=1), rng.integers(0, c, n))
    return z, y


def make_input(tmp_path: Path, fmt: str) -> tuple[list[str], dict[str, Any]]:
    """(the CLI's arguments, io.load's options) of one dataset in ``fmt``."""
    rng = np.random.default_rng(20261205)
    z, y = _logits(rng, 403, 5)
    if fmt == "npz":
        np.savez(tmp_path / "p.npz", logits=z, labels=y)
        return [str(tmp_path / "p.npz")], {}
    if fmt == "npy":
        np.save(tmp_path / "s.npy", z)
        np.save(tmp_path / "l.npy", y)
        return [str(tmp_path / "s.npy"), "--labels", str(tmp_path / "l.npy")], {
            "labels": str(tmp_path / "l.npy")
        }
    if fmt == "binary":
        p1 = 1.0 / (1.0 + np.exp(-z[:, 0].astype(np.float64)))
        yb = (rng.random(len(p1)) < p1 * 0.9).astype(np.int64)
        np.savez(tmp_path / "b.npz", probs=p1, labels=yb)
        return [str(tmp_path / "b.npz")], {}
    if fmt == "segmentation":
        s = rng.normal(size=(7, 4, 6, 5)).astype(np.float32)
        lab = rng.integers(0, 4, (7, 6, 5))
        lab[rng.random(lab.shape) < 0.2] = 255
        lab[3] = 255  # one image all ignored
        np.savez(tmp_path / "seg.npz", logits=s, labels=lab)
        return [str(tmp_path / "seg.npz"), "--ignore-index", "255"], {
            "ignore_index": 255
        }
    if fmt in ("csv", "parquet"):
        import pandas as pd

        df = pd.DataFrame(
            z.astype(np.float64), columns=[f"logit_{i}" for i in range(5)]
        )
        df["label"] = y
        f = tmp_path / f"t.{fmt}"
        df.to_csv(f, index=False) if fmt == "csv" else df.to_parquet(f)
        return [str(f)], {}
    if fmt == "directory":
        (tmp_path / "d" / "logits").mkdir(parents=True)
        (tmp_path / "d" / "labels").mkdir()
        for i, (lo, hi) in enumerate([(0, 150), (150, 151), (151, 403)]):
            np.save(tmp_path / "d" / "logits" / f"part{i}.npy", z[lo:hi])
            np.save(tmp_path / "d" / "labels" / f"part{i}.npy", y[lo:hi])
        np.savez(tmp_path / "whole.npz", logits=z, labels=y)  # io.load's
        return [str(tmp_path / "d")], {}
    raise AssertionError(fmt)


FORMATS = ["npz", "npy", "binary", "segmentation", "csv", "parquet", "directory"]


def in_memory_doc(path: str, options: dict[str, Any], n_bins: int, binning: str):
    """What the in-memory path gives: relcal.evaluate on io.load's arrays,
    as the document ``relcal metrics --json`` prints."""
    from relcal.render import results_to_dict, source_info

    p = relcal.io.load(path, **options)
    r = relcal.evaluate(
        p.scores,
        p.labels,
        kind=p.kind,
        n_bins=n_bins,
        binning=binning,
        ignore_index=p.ignore_index,
    )
    r = relcal.metrics.Results(**{**r.__dict__, "class_names": p.class_names})
    return results_to_dict(r, source_info(p, r))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binning", ["width", "mass"])
@pytest.mark.parametrize("rows", [None, "1", "17"])
def test_metrics_json_streamed_equals_in_memory(
    tmp_path, capsys, monkeypatch, fmt, binning, rows
):
    args, options = make_input(tmp_path, fmt)
    if rows is not None:
        monkeypatch.setenv("RELCAL_CHUNK_ROWS", rows)
    code, out, err = run(["metrics", *args, "--json", "--binning", binning], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    if fmt == "directory":  # io.load reads one file: the same arrays in one
        expected = in_memory_doc(str(tmp_path / "whole.npz"), options, 15, binning)
        assert doc["input"]["path"] == args[0]
        assert doc["input"]["shape"] == expected["input"]["shape"]
        assert doc["input"]["labels_from"] == "3 files"
        doc["input"] = expected["input"]
    else:
        expected = in_memory_doc(args[0], options, 15, binning)
    close(doc, expected)


@pytest.mark.parametrize("fmt", ["npz", "segmentation"])
def test_metrics_text_same_for_any_chunks_and_jobs(tmp_path, capsys, monkeypatch, fmt):
    args, _ = make_input(tmp_path, fmt)
    outs = set()
    for rows, jobs in [(None, "1"), ("3", "2"), ("1", "1"), ("50", "2")]:
        if rows is None:
            monkeypatch.delenv("RELCAL_CHUNK_ROWS", raising=False)
        else:
            monkeypatch.setenv("RELCAL_CHUNK_ROWS", rows)
        code, out, _ = run(["metrics", *args, "--jobs", jobs], capsys)
        assert code == 0
        outs.add(out)
    assert len(outs) == 1  # the text rounds to 4 digits: exactly the same


def test_chunk_rows_hook_is_checked(tmp_path, capsys, monkeypatch):
    args, _ = make_input(tmp_path, "npz")
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "0")
    code, out, err = run(["metrics", *args], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"Error: {args[0]}: RELCAL_CHUNK_ROWS must be a positive integer."
        " Got '0' instead\n"
    )


# --------------------------------------------------------------------------
# the bootstrap in the summary


@pytest.mark.parametrize("n_classes", [2, 6])
def test_replicates_do_not_depend_on_chunks_or_jobs(n_classes):
    rng = np.random.default_rng(7)
    z, y = _logits(rng, 3000, n_classes)
    edges = np.linspace(0.0, 1.0, 11)
    plan = Plan(
        n_classes,
        "logits",
        toplabel_edges=edges,
        positive_edges=edges if n_classes == 2 else None,
        bootstrap=BootstrapPlan(n_replicates=300, seed=4),
    )
    whole = dict(reduce_chunks([(z, y, 0)], plan, jobs=1).replicates)
    assert set(whole) == ({"top", "positive"} if n_classes == 2 else {"top"})
    for rows, jobs in [(1000, 2), (7, 1), (1, 2)]:
        got = dict(reduce_chunks(array_chunks(z, y, rows), plan, jobs=jobs).replicates)
        for key, sums in whole.items():
            for name in ("count", "confidence", "correct", "nll", "brier"):
                a, b = getattr(sums, name), getattr(got[key], name)
                if a is None:
                    assert b is None
                else:
                    np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-12)
    assert whole["top"].count.sum(axis=1).mean() == pytest.approx(3000, rel=0.01)


# --------------------------------------------------------------------------
# relcal check: the gate's numbers, bootstrap included


def in_memory_check(
    path: str, options: dict[str, Any], args: dict[str, Any], baseline: str | None
) -> dict[str, Any]:
    """The check document of the in-memory path: relcal.gate.measure on
    io.load's arrays (per-sample values, resampled in memory)."""
    from dataclasses import replace

    from relcal.cli import cli_message
    from relcal.gate import check, measure, settings_from
    from relcal.render_check import checks_to_dict

    settings = settings_from({}, args, source="")
    bins = {"n_bins": settings.n_bins, "binning": settings.binning}
    new = measure(relcal.io.load(path, **options), **bins)
    old = (
        None
        if baseline is None
        else measure(relcal.io.load(baseline, **options), **bins)
    )
    g = check(new, settings, baseline=old)
    g = replace(g, warnings=tuple(map(cli_message, g.warnings)))
    return checks_to_dict([g], None)


def check_args(fmt: str, binning: str) -> tuple[list[str], dict[str, Any]]:
    thresholds = {
        "max-ece": 0.02,
        "max-nll": 1.0,
        "min-accuracy": 0.5,
        "max-brier": 0.6,
    }
    if fmt == "binary":
        thresholds["max-positive-class-ece"] = 0.03
    settings = {**thresholds, "confidence": 0.95, "bootstrap": 300, "seed": 5}
    settings.update({"bins": None, "binning": binning, "min-samples": None})
    cli = [f"--{k}={v}" for k, v in thresholds.items()]
    cli += ["--confidence", "0.95", "--bootstrap", "300", "--seed", "5"]
    return [*cli, "--binning", binning], settings


@pytest.mark.parametrize("fmt", ["npz", "binary", "segmentation", "parquet"])
@pytest.mark.parametrize("binning", ["width", "mass"])
@pytest.mark.parametrize(("rows", "jobs"), [(None, "2"), ("3", "1"), ("1", "2")])
def test_check_json_streamed_equals_in_memory(
    tmp_path, capsys, monkeypatch, fmt, binning, rows, jobs
):
    args, options = make_input(tmp_path, fmt)
    flags, settings = check_args(fmt, binning)
    if rows is not None:
        monkeypatch.setenv("RELCAL_CHUNK_ROWS", rows)
    code, out, _ = run(["check", *args, *flags, "--json", "--jobs", jobs], capsys)
    expected = in_memory_check(args[0], options, settings, None)
    assert code == expected["exit_code"]
    doc = json.loads(out)
    close(doc, expected)
    assert all(c["interval"] is not None for c in doc["checks"])


@pytest.mark.parametrize("fmt", ["npz", "segmentation"])
def test_check_paired_baseline_streamed_equals_in_memory(
    tmp_path, capsys, monkeypatch, fmt
):
    args, options = make_input(tmp_path, fmt)
    with np.load(args[0]) as f:
        arrays = dict(f)
    rng = np.random.default_rng(3)
    arrays["logits"] = arrays["logits"] * 0.7 + rng.normal(size=arrays["logits"].shape)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    flags = ["--max-ece-increase=0.001", "--max-nll-increase=0.01", "--confidence=0.9"]
    flags += ["--bootstrap=200", "--seed=1"]
    settings = {
        "max-ece-increase": 0.001,
        "max-nll-increase": 0.01,
        "confidence": 0.9,
        "bootstrap": 200,
        "seed": 1,
        "bins": None,
        "binning": None,
        "min-samples": None,
    }
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "2")
    code, out, _ = run(
        ["check", *args, "--baseline", str(old), *flags, "--json"], capsys
    )
    expected = in_memory_check(args[0], options, settings, str(old))
    doc = json.loads(out)
    assert doc["baseline"]["paired"] is True
    assert doc["baseline"]["from"] == "predictions"
    assert code == expected["exit_code"]
    close(doc, expected)


def test_check_baseline_with_other_labels_streamed(tmp_path, capsys):
    args, _ = make_input(tmp_path, "npz")
    with np.load(args[0]) as f:
        arrays = dict(f)
    arrays["labels"] = arrays["labels"].copy()
    arrays["labels"][[5, 9]] = (arrays["labels"][[5, 9]] + 1) % 5
    np.savez(tmp_path / "old.npz", **arrays)
    old = str(tmp_path / "old.npz")
    code, out, err = run(
        ["check", *args, "--baseline", old, "--max-ece-increase", "0.01"], capsys
    )
    assert (code, out) == (2, "")
    a, b = np.load(args[0])["labels"][5], arrays["labels"][5]
    assert err == (
        f"Error: {old}: the baseline's labels differ from {args[0]}'s at 2 of 403"
        f" samples (first: row 5, {b} vs {a}): a baseline must hold the same"
        " samples in the same order\n"
    )


# --------------------------------------------------------------------------
# relcal report: figures and tables from the summary


def in_memory_report(
    paths: list[str], options: dict[str, Any], binning: str, *, preview: bool = True
):
    from relcal.report import build_report, file_sha256

    preds = [relcal.io.load(p, **options) for p in paths]
    return build_report(
        preds,
        binning=binning,
        preview=preview,
        sha256=[file_sha256(p) for p in paths],
        labels_sha256=[options.get("labels") and file_sha256(options["labels"])]
        * len(paths),
    )


@pytest.mark.parametrize(
    ("fmt", "binning", "rows"),
    [
        ("npz", "width", None),
        ("npy", "mass", "2"),
        ("binary", "width", "2"),
        ("binary", "mass", None),
        ("segmentation", "width", "1"),
        ("segmentation", "mass", None),
        ("csv", "width", "5"),
    ],
)
def test_report_streamed_equals_in_memory(
    tmp_path, capsys, monkeypatch, fmt, binning, rows
):
    from relcal.report import render_html, report_to_dict

    args, options = make_input(tmp_path, fmt)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    if rows is not None:
        monkeypatch.setenv("RELCAL_CHUNK_ROWS", rows)
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    code, _, err = run(
        ["report", *args, "-o", str(html), "--json", str(js), "--binning", binning],
        capsys,
    )
    assert code == 0, err
    data = in_memory_report([args[0]], options, binning)
    close(json.loads(js.read_text()), report_to_dict(data))
    if rows is None:  # one chunk: the same sums, the same figures
        assert html.read_text() == render_html(data)


# --------------------------------------------------------------------------
# bad input found while streaming: one line, exit 2, nothing written


def _dataset(
    tmp_path: Path, *, nan_at: int | None = None, bad_label_at: int | None = None
):
    """A directory of three .npy pairs (30 rows each), maybe spoiled late."""
    rng = np.random.default_rng(11)
    d = tmp_path / "data"
    d.mkdir()
    for i in range(3):
        z, y = _logits(rng, 30, 4)
        if nan_at is not None and i == 2:
            z[nan_at, 1] = np.nan
        if bad_label_at is not None and i == 2:
            y[bad_label_at] = 7
        np.save(d / f"p{i}_logits.npy", z)
        np.save(d / f"p{i}_labels.npy", y)
    return d


COMMANDS = {
    "metrics": lambda d, out: ["metrics", str(d), "--json"],
    "metrics-mass": lambda d, out: ["metrics", str(d), "--binning", "mass"],
    "report": lambda d, out: [
        "report",
        str(d),
        "-o",
        str(out / "r.html"),
        "--json",
        str(out / "r.json"),
    ],
    "check": lambda d, out: [
        "check",
        str(d),
        "--max-ece",
        "0.5",
        "--confidence",
        "0.95",
        "--junit-xml",
        str(out / "j.xml"),
        "--markdown",
        str(out / "m.md"),
    ],
}


def _fails_alike(tmp_path, capsys, monkeypatch, command, data, message):
    from tests.test_bad_input import snapshot

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "4")  # the error comes late
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = snapshot(out_dir)
    code, out, err = run(COMMANDS[command](data, out_dir), capsys)
    assert (code, out) == (2, "")
    assert err == f"Error: {message}\n"
    assert snapshot(out_dir) == before  # nothing written, no temporary file


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_file_gone_mid_run(tmp_path, capsys, monkeypatch, command):
    import relcal.stream

    data = _dataset(tmp_path)
    gone = data / "p2_logits.npy"
    chunks = relcal.stream.Stream.chunks

    def chunks_then_remove(self, *args, **kwargs):
        for i, chunk in enumerate(chunks(self, *args, **kwargs)):
            if i == 2 and gone.exists():
                gone.unlink()  # after some chunks were reduced
            yield chunk

    read = relcal.stream.Pieces.read

    def read_then_remove(self, k):  # the pieces worker processes read
        if k == 2 and gone.exists():
            gone.unlink()
        return read(self, k)

    monkeypatch.setattr(relcal.stream.Stream, "chunks", chunks_then_remove)
    monkeypatch.setattr(relcal.stream.Pieces, "read", read_then_remove)
    message = f"{gone}: no such file (it was there when relcal started reading)"
    _fails_alike(tmp_path, capsys, monkeypatch, command, data, message)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_nan_in_a_late_chunk(tmp_path, capsys, monkeypatch, command):
    data = _dataset(tmp_path, nan_at=17)
    message = relcal.io.load(data / "p2_logits.npy", labels=data / "p2_labels.npy")
    with pytest.raises(relcal.errors.RelcalError) as info:
        relcal.evaluate(message.scores, message.labels)
    # the same words as the in-memory path, at the row among all the files
    expected = f"{data}: {info.value.message}".replace("row 17", "row 77")
    _fails_alike(tmp_path, capsys, monkeypatch, command, data, expected)


@pytest.mark.parametrize("command", ["metrics", "check"])
def test_label_out_of_range_in_a_late_chunk(tmp_path, capsys, monkeypatch, command):
    data = _dataset(tmp_path, bad_label_at=20)
    with pytest.raises(relcal.errors.RelcalError) as info:
        list(relcal.stream.open_stream(data).chunks(90))
    _fails_alike(tmp_path, capsys, monkeypatch, command, data, str(info.value))


@pytest.mark.parametrize(
    ("fmt", "how", "rows"),
    [
        ("npz", "fit", "3"),
        ("segmentation", "fit", "1"),
        ("binary", "file", "7"),
        ("segmentation", "file", None),
    ],
)
def test_report_scaling_streamed_equals_in_memory(
    tmp_path, capsys, monkeypatch, fmt, how, rows
):
    from relcal.report import add_scaling, report_to_dict
    from relcal.temperature import as_logits

    args, options = make_input(tmp_path, fmt)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    t_doc = None
    flags = ["--fit-temperature"]
    if how == "file":
        t_path = tmp_path / "t.json"
        assert run(["fit-temperature", *args, "-o", str(t_path)], capsys)[0] == 0
        t_doc = json.loads(t_path.read_text())
        flags = ["--temperature", str(t_path)]
    if rows is not None:
        monkeypatch.setenv("RELCAL_CHUNK_ROWS", rows)
    js = tmp_path / "r.json"
    code, _, err = run(
        ["report", *args, *flags, "-o", str(tmp_path / "r.html"), "--json", str(js)],
        capsys,
    )
    assert code == 0, err
    # with a temperature the report shows the scaled model, not the preview
    data = in_memory_report([args[0]], options, "width", preview=False)
    p = relcal.io.load(args[0], **options)
    z, y = as_logits(p.scores, p.labels, kind=p.kind, ignore_index=p.ignore_index)
    t_path_text = None if t_doc is None else flags[1]
    add_scaling(data.models[0], z, y, t_doc=t_doc, t_path=t_path_text)
    doc = json.loads(js.read_text())
    assert doc["models"][0]["temperature_scaling"] is not None
    close(doc, report_to_dict(data))


@pytest.mark.parametrize("rows", [None, "1", "7"])
@pytest.mark.parametrize("fmt", ["npz", "binary", "segmentation"])
def test_report_ensemble_streamed_equals_in_memory(
    tmp_path, capsys, monkeypatch, fmt, rows
):
    """Three models, one as a directory of shards of other lengths: their
    chunks are cut to common rows."""
    from relcal.report import build_report, file_sha256, report_to_dict

    args, options = make_input(tmp_path, fmt)
    with np.load(args[0]) as f:
        arrays = dict(f)
    key = next(k for k in ("logits", "probs") if k in arrays)
    rng = np.random.default_rng(8)
    paths = [args[0]]
    for i in (1, 2):
        other = dict(arrays)
        if key == "logits":
            other[key] = (arrays[key] + rng.normal(size=arrays[key].shape)).astype(
                arrays[key].dtype
            )
        else:
            other[key] = np.clip(
                arrays[key] + rng.normal(0, 0.1, len(arrays[key])), 0, 1
            )
        paths.append(str(tmp_path / f"m{i}.npz"))
        np.savez(paths[-1], **other)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    if rows is not None:
        monkeypatch.setenv("RELCAL_CHUNK_ROWS", rows)
    js = tmp_path / "r.json"
    code, _, err = run(
        [
            "report",
            *paths,
            *args[1:],
            "--ensemble",
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(js),
        ],
        capsys,
    )
    assert code == 0, err
    preds = [relcal.io.load(p, **options) for p in paths]
    data = build_report(
        preds,
        with_ensemble=True,
        sha256=[file_sha256(p) for p in paths],
        labels_sha256=[None] * 3,
    )
    doc = json.loads(js.read_text())
    assert doc["models"][-1]["ensemble_of"] is not None
    close(doc, report_to_dict(data))


def test_report_ensemble_of_other_labels_streamed(tmp_path, capsys):
    args, _ = make_input(tmp_path, "npz")
    with np.load(args[0]) as f:
        arrays = dict(f)
    arrays["labels"] = arrays["labels"].copy()
    arrays["labels"][300] = (arrays["labels"][300] + 1) % 5
    np.savez(tmp_path / "b.npz", **arrays)
    b = str(tmp_path / "b.npz")
    code, out, err = run(
        ["report", args[0], b, "--ensemble", "-o", str(tmp_path / "r.html")], capsys
    )
    assert (code, out) == (2, "")
    assert err == (
        f"Error: --ensemble: {b} and {args[0]} do not hold the same samples"
        " in the same order (their labels differ)\n"
    )
    assert not (tmp_path / "r.html").exists()
