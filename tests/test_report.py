"""The HTML report: sections and figures, numbers, escaping, gold file, outputs.

The gold file ``tests/golden/report_digits.html`` is the report of
``sample_data/digits_mlp_test.npz`` with the volatile fields scrubbed (date,
version, the input's absolute path) and each SVG figure replaced by a
placeholder (matplotlib releases change SVG details; the figures are checked
structurally here instead).  After an intended change to the report, update
it with::

    RELCAL_UPDATE_GOLD=1 pytest tests/test_report.py

and review the diff like any other change.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import relcal
from relcal.cli import main
from relcal.synth import make_logits

from .conftest import REPO, SAMPLE_DATA, need_shared_real

GOLD = REPO / "tests" / "golden" / "report_digits.html"


class Page(HTMLParser):
    """Every tag, id, attribute and text of a page, for assertions."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((tag, k, v or ""))
            if k == "id" and v:
                self.ids.add(v)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def make_report(
    tmp_path: Path, *args: str, name: str = "report.html"
) -> tuple[str, Path]:
    out = tmp_path / name
    code = main(["report", *args, "-o", str(out)])
    assert code == 0
    return out.read_text(encoding="utf-8"), out


def assert_safe(page: Page, html: str) -> None:
    """No script, no external resource, no event handler."""
    allowed_links = re.compile(r"^#[A-Za-z0-9_-]+$")
    assert not {"script", "img", "iframe", "object", "embed", "link", "image"} & set(
        page.tags
    )
    for tag, key, value in page.attrs:
        assert not key.startswith("on"), (tag, key)
        assert key != "src", (tag, key, value)
        if key in ("href", "xlink:href"):
            assert allowed_links.match(value), (tag, key, value)
        for target in re.findall(r"url\(\s*['\"]?([^)'\"]*)", value):
            assert target.startswith("#"), (tag, key, value)
    assert "@import" not in html
    for target in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html):
        assert target.startswith("#"), target


def sections(page: Page, m: int = 1) -> set[str]:
    a = f"model-{m}"
    return {
        a,
        f"{a}-metrics",
        f"{a}-reliability",
        f"{a}-histogram",
        f"{a}-bins",
        f"{a}-temperature",
    }


# -- every sample file and the real files -------------------------------------


CASES = [
    ("digits_mlp_test.npz", [], {"per-class"}),
    ("digits_mlp_test.csv", [], {"per-class"}),
    ("xor_binary.npz", [], {"positive-class"}),
    ("segmentation_small.npz", ["--ignore-index", "255"], {"per-class"}),
    ("digits_mlp_val.npz", ["--bins", "10", "--binning", "mass"], {"per-class"}),
]


@pytest.mark.parametrize(("name", "args", "extra"), CASES, ids=[c[0] for c in CASES])
def test_report_of_sample_files(
    tmp_path: Path, name: str, args: list[str], extra: set[str]
) -> None:
    html, _ = make_report(tmp_path, str(SAMPLE_DATA / name), *args)
    page = Page(html)
    expected = sections(page) | {"summary", "conventions", "top"}
    expected |= {f"model-1-{e}" for e in extra}
    assert expected <= page.ids, expected - page.ids
    # the smooth, CORP and risk-coverage figures: every sample file is small
    # enough for the unbinned metrics (auto)
    unbinned = {"model-1-unbinned", "model-1-smooth", "model-1-corp", "model-1-risk"}
    assert unbinned <= page.ids
    assert page.tags.count("svg") == 2 + len(extra) + 3
    assert_safe(page, html)
    assert name in page.all_text


REAL = [
    ("resnet110_cifar10lt_test.npz", {"per-class"}),  # logits
    ("wrn16-4_cifar10_test_probs.npz", {"per-class"}),  # probabilities
    ("densenet40_cifar10_test_toplabel.csv", set()),  # top-label only
]


@pytest.mark.parametrize(("name", "extra"), REAL, ids=[r[0] for r in REAL])
def test_report_of_real_files(tmp_path: Path, name: str, extra: set[str]) -> None:
    real = need_shared_real()
    html, _ = make_report(
        tmp_path, str(real / name), "--json", str(tmp_path / "r.json")
    )
    page = Page(html)
    assert sections(page) | {f"model-1-{e}" for e in extra} <= page.ids
    assert_safe(page, html)
    doc = json.loads((tmp_path / "r.json").read_text())
    model = doc["models"][0]
    # the report's numbers are relcal metrics' numbers
    preds = relcal.load(real / name)
    from relcal.metrics import evaluate_predictions

    r = evaluate_predictions(preds)
    assert model["metrics"]["ece"] == r.ece
    assert [b["count"] for b in model["bins"]] == r.table.count.tolist()
    if name.endswith("_toplabel.csv"):
        # what a top-label file cannot give is marked, not zero
        assert model["metrics"]["nll"] is None
        assert "n/a: needs the probability of the true class" in page.all_text
        assert "model-1-per-class" not in page.ids


def test_bin_table_in_html_matches_metrics_json(tmp_path: Path) -> None:
    path = SAMPLE_DATA / "digits_mlp_test.npz"
    html, _ = make_report(tmp_path, str(path))
    table = relcal.evaluate(*_arrays(path)).table
    cells = re.findall(
        r"<tr(?: class=\"(?:empty|outside)\")?><td>(\d+)</td>\s*"
        r"<td>[\[(][^<]*\]</td>\s*"
        r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>",
        html,
    )
    assert len(cells) == table.n_bins
    for b, count, correct, incorrect in cells:
        i = int(b)  # numbered from 0, as the JSON
        assert int(count) == table.count[i]
        assert int(correct) == table.correct[i]
        assert int(incorrect) == table.incorrect[i]


def _arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return f["logits"], f["labels"]


# -- security: user strings are escaped and inert -----------------------------


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    logits, labels = make_logits(600, 3, seed=5)
    names = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "a$b$c&d"]
    path = tmp_path / '"><i onmouseover=alert(5)>evil.npz'
    np.savez(path, logits=logits, labels=labels, class_names=np.array(names))
    title = '"><img src=x onerror=alert(3)><script>alert(4)</script>'
    html, _ = make_report(tmp_path, str(path), "--title", title)
    page = Page(html)
    assert_safe(page, html)
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "<i " not in html
    text = page.all_text
    for s in [*names, title, path.name]:
        assert s in text  # shown to the reader, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- reproducible, gold file --------------------------------------------------


def scrub(html: str) -> str:
    """Volatile fields out, figures replaced by their ids."""
    html = re.sub(r"relcal \d+\.\d+\.\d+\S*", "relcal VERSION", html)
    html = re.sub(r'content="relcal [^"]*"', 'content="relcal VERSION"', html)
    html = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "DATE", html)
    html = html.replace(str(SAMPLE_DATA), "SAMPLE_DATA")
    return re.sub(r"<svg\b.*?</svg>", "<svg>FIGURE</svg>", html, flags=re.S)


def test_gold_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    html, _ = make_report(tmp_path, str(SAMPLE_DATA / "digits_mlp_test.npz"))
    got = scrub(html)
    if os.environ.get("RELCAL_UPDATE_GOLD"):
        GOLD.write_text(got, encoding="utf-8")
    assert GOLD.is_file(), (
        "no gold file: run RELCAL_UPDATE_GOLD=1 pytest tests/test_report.py"
    )
    assert got == GOLD.read_text(encoding="utf-8")


def test_same_input_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    path = str(SAMPLE_DATA / "xor_binary.npz")
    a, _ = make_report(tmp_path, path, name="a.html")
    b, _ = make_report(tmp_path, path, name="b.html")
    assert a == b
    assert "2023-11-14 22:13 UTC" in a


def test_figures_stay_small(tmp_path: Path) -> None:
    """One element per bin, not per sample: 20,000 rows draw like 600."""
    sizes = []
    for n in (600, 20000):
        logits, labels = make_logits(n, 10, seed=1)
        path = tmp_path / f"p{n}.npz"
        np.savez(path, logits=logits, labels=labels)
        html, _ = make_report(tmp_path, str(path), name=f"r{n}.html")
        sizes.append(len(html))
    assert sizes[1] < 1.3 * sizes[0]
    assert sizes[1] < 400_000


# -- several models, ensemble --------------------------------------------------


def test_several_models_and_ensemble(tmp_path: Path) -> None:
    a = SAMPLE_DATA / "digits_mlp_test.npz"
    b = SAMPLE_DATA / "digits_mlp_test.csv"  # the same samples, as CSV
    html, _ = make_report(
        tmp_path, str(a), str(b), "--ensemble", "--json", str(tmp_path / "r.json")
    )
    page = Page(html)
    assert {"comparison", "model-1", "model-2", "model-3"} <= page.ids
    doc = json.loads((tmp_path / "r.json").read_text())
    names = [m["name"] for m in doc["models"]]
    assert names[:2] == ["digits_mlp_test.npz", "digits_mlp_test.csv"]
    assert doc["models"][2]["ensemble_of"] == names[:2]
    # the CSV holds the same logits rounded: the ensemble's accuracy is theirs
    assert doc["models"][2]["metrics"]["accuracy"] == pytest.approx(
        doc["models"][0]["metrics"]["accuracy"], abs=0.002
    )


def test_ensemble_of_different_samples_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    code = main(
        [
            "report",
            str(SAMPLE_DATA / "digits_mlp_test.npz"),
            str(SAMPLE_DATA / "digits_mlp_val.npz"),
            "--ensemble",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "do not hold the same samples" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


# -- outputs: atomic, never over an input --------------------------------------


def test_refuses_to_overwrite_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "p.npz"
    src.write_bytes((SAMPLE_DATA / "xor_binary.npz").read_bytes())
    before = src.read_bytes()
    code = main(["report", str(src), "-o", str(src)])
    assert code == 2
    assert "is an input file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_bad_input_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "r.html"
    out.write_text("old report")
    code = main(
        ["report", str(bad), "-o", str(out), "--json", str(tmp_path / "r.json")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("Error: ") and "bad.npz" in err
    assert out.read_text() == "old report"
    assert not (tmp_path / "r.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "r.html"]


def test_missing_output_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "report",
            str(SAMPLE_DATA / "xor_binary.npz"),
            "-o",
            str(tmp_path / "no" / "r.html"),
        ]
    )
    assert code == 2
    assert "cannot write" in capsys.readouterr().err


def test_output_is_readable_by_others(tmp_path: Path) -> None:
    _, out = make_report(tmp_path, str(SAMPLE_DATA / "xor_binary.npz"))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_json_document(tmp_path: Path) -> None:
    make_report(
        tmp_path,
        str(SAMPLE_DATA / "xor_binary.npz"),
        "--json",
        str(tmp_path / "r.json"),
    )
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["format"] == 1 and doc["kind"] == "relcal.report"
    m = doc["models"][0]
    assert set(m) >= {
        "name",
        "input",
        "metrics",
        "bins",
        "positive_class",
        "classes_shown",
        "temperature_scaling",
        "unavailable",
    }
    assert len(m["input"]["sha256"]) == 64
    assert m["temperature_scaling"] is None
    assert m["positive_class"] is not None


# -- what next, the verdict after scaling, short names ---------------------------


def test_next_step_is_the_cross_fitted_preview(tmp_path: Path) -> None:
    """For logits: ECE before and after temperature scaling cross-fitted on
    the file (2 folds, as relcal.temperature.cross_fit) and the command."""
    from relcal.temperature import cross_fit

    path = SAMPLE_DATA / "digits_mlp_test.npz"
    html, _ = make_report(tmp_path, str(path), "--json", str(tmp_path / "r.json"))
    step = json.loads((tmp_path / "r.json").read_text())["models"][0]["next_step"]
    assert step["command"] == f"relcal fit-temperature {path} -o temperature.json"
    assert "--temperature temperature.json" in step["then"]
    z, y = _arrays(path)
    _, temps = cross_fit(z, y, 2)
    got = step["cross_fitted"]
    assert got["k"] == 2 and got["temperatures"] == pytest.approx(temps)
    assert got["n_rows"] == got["n_total"] == len(y)
    assert got["ece_before"] == relcal.evaluate(z, y).ece
    assert got["ece_after"] < got["ece_before"]
    assert f"relcal fit-temperature {path}" in Page(html).all_text


def test_preview_reads_the_file_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relcal import pipeline, report

    reads = []
    real = pipeline.Input.chunks

    def counted(self: pipeline.Input) -> object:
        reads.append(self.source)
        return real(self)

    monkeypatch.setattr(pipeline.Input, "chunks", counted)
    (inp,) = pipeline.open_inputs(str(SAMPLE_DATA / "digits_mlp_test.npz"), {})
    report.scaling_preview(inp)
    assert len(reads) == 1


def test_preview_of_probabilities_and_a_sample(tmp_path: Path) -> None:
    from relcal import report
    from relcal.temperature import softmax

    logits, labels = make_logits(3000, 5, seed=2, temperature=2.0)
    path = tmp_path / "p.npz"
    np.savez(path, probs=softmax(logits.astype(np.float64)), labels=labels)
    html, _ = make_report(tmp_path, str(path))
    assert "Probabilities are scaled through their logs" in html
    assert f"relcal fit-temperature {path}" in html
    (inp,) = relcal.pipeline.open_inputs(str(path), {})
    small = report.scaling_preview(inp, max_bytes=3000 * 5 * 8 // 4)
    assert small.n_total == 3000 and 500 < small.n_rows < 1000


def test_top_label_file_never_suggests_a_temperature(tmp_path: Path) -> None:
    from relcal.report import TOPLABEL_NEXT

    path = tmp_path / "top.csv"
    path.write_text(
        "true_label,pred_label,confidence\n1,1,0.9\n0,1,0.8\n2,2,0.7\n1,0,0.6\n"
    )
    html, _ = make_report(tmp_path, str(path))
    assert "--temperature" not in html and "fit-temperature" not in html
    assert TOPLABEL_NEXT.replace("'", "&#39;") in html


def test_verdict_after_scaling_with_before_beside_it(tmp_path: Path) -> None:
    t = tmp_path / "t.json"
    assert (
        main(["fit-temperature", str(SAMPLE_DATA / "digits_mlp_val.npz"), "-o", str(t)])
        == 0
    )
    html, _ = make_report(
        tmp_path, str(SAMPLE_DATA / "digits_mlp_test.npz"), "--temperature", str(t)
    )
    text = Page(html).all_text
    summary = text[text.index("Summary") :]
    assert re.search(r"After temperature scaling \(T = [0-9.]+, from t\.json", summary)
    # the after-scaling verdict follows the rule on its own intervals
    assert re.search(
        r"ECE [0-9.]+ \[[0-9.]+, [0-9.]+\] \(before: [0-9.]+, ", summary
    ), summary[:600]
    assert "relcal calibrate" in text


def test_long_names_shortened_with_the_full_name_in_a_title(tmp_path: Path) -> None:
    logits, labels = make_logits(400, 3, seed=4)
    long = "<b>model&<b>_" + "x" * 60 + ".npz"
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}{long}")
        np.savez(paths[-1], logits=logits / (1 + i), labels=labels)
    html, _ = make_report(tmp_path, *map(str, paths), "--ensemble")
    page = Page(html)
    titles = [v for tag, k, v in page.attrs if tag == "a" and k == "title"]
    assert f"0{long}" in titles  # whole, and escaped in the markup
    assert "&lt;b&gt;model&amp;" in html and "<b>model" not in html
    shown = [t.strip() for t in page.text if "…" in t and "Calibration" not in t]
    assert shown and all(len(t) <= 32 for t in shown)
    assert "ensemble of 2 models" in page.all_text


# -- intervals, the verdict's rule, bands, the figures without bins -------------


def _report_doc(tmp_path: Path, *args: str) -> tuple[str, dict]:
    html, _ = make_report(tmp_path, *args, "--json", str(tmp_path / "r.json"))
    return html, json.loads((tmp_path / "r.json").read_text())


def test_verdict_on_20_rows_of_a_real_model_is_not_enough_data(
    tmp_path: Path,
) -> None:
    real = need_shared_real()
    with np.load(real / "resnet110_cifar10lt_test.npz") as f:
        np.savez(
            tmp_path / "first20.npz", logits=f["logits"][:20], labels=f["labels"][:20]
        )
    html, doc = _report_doc(tmp_path, str(tmp_path / "first20.npz"))
    m = doc["models"][0]
    gap = m["intervals"]["metrics"]["gap"]
    assert gap["low"] < 0 < gap["high"]
    assert m["intervals"]["metrics"]["sq_ce_debiased"]["low"] <= 0
    assert m["verdict"]["call"] == "not enough data to tell"
    assert m["verdict"]["text"].startswith("Not enough data to tell")
    assert "95% interval" in m["verdict"]["text"]
    assert "Verdict rule:" in Page(html).all_text


def test_verdict_on_all_rows_of_a_real_model_is_over_confident(
    tmp_path: Path,
) -> None:
    real = need_shared_real()
    _, doc = _report_doc(tmp_path, str(real / "resnet110_cifar10lt_test.npz"))
    m = doc["models"][0]
    gap = m["intervals"]["metrics"]["gap"]
    assert gap["low"] > 0
    assert m["verdict"]["call"] == "over-confident"
    text = m["verdict"]["text"]
    assert text.startswith("Over-confident:")
    # the gap and its interval, in points
    assert f"{100 * gap['low']:+.1f} to {100 * gap['high']:+.1f}" in text


def test_verdict_rule_cases() -> None:
    """Each branch of the rule, from made-up intervals."""
    from dataclasses import replace as dc_replace

    from relcal.bootstrap import Interval
    from relcal.report import verdict, verdict_call

    logits, labels = make_logits(400, 5, seed=3)
    r = relcal.evaluate(logits, labels, ci=0.95, n_replicates=200)

    def iv(low: float, high: float) -> Interval:
        return Interval((low + high) / 2, (low + high) / 2, low, high, 0.0, 0.95)

    def call(gap: Interval, ece: Interval, sq: Interval) -> str:
        got = dc_replace(
            r, intervals={**r.intervals, "gap": gap, "ece": ece, "sq_ce_debiased": sq}
        )
        assert verdict(got)  # a sentence in every case
        return verdict_call(got)

    assert call(iv(0.01, 0.02), iv(0.0, 0.019), iv(0.0, 1e-3)) == "well calibrated"
    assert call(iv(0.05, 0.1), iv(0.06, 0.09), iv(0.01, 0.02)) == "over-confident"
    assert call(iv(-0.1, -0.05), iv(0.03, 0.045), iv(0.01, 0.02)) == (
        "slightly under-confident"
    )
    assert call(iv(-0.01, 0.01), iv(0.04, 0.09), iv(0.002, 0.01)) == (
        "miscalibrated, no overall direction"
    )
    assert call(iv(-0.02, 0.1), iv(0.01, 0.2), iv(-0.01, 0.05)) == (
        "not enough data to tell"
    )
    # without intervals: the point values decide, and the rule says so
    plain = relcal.evaluate(logits, labels)
    assert verdict_call(plain) in (
        "well calibrated",
        "slightly over-confident",
        "over-confident",
        "slightly under-confident",
        "under-confident",
    )


def test_metric_table_shows_intervals_and_debiased_rows(tmp_path: Path) -> None:
    html, doc = _report_doc(tmp_path, str(SAMPLE_DATA / "digits_mlp_test.npz"))
    ivs = doc["models"][0]["intervals"]["metrics"]
    text = Page(html).all_text
    ece = ivs["ece"]
    assert f"[{ece['low']:.4f}, {ece['high']:.4f}]" in text
    for label in (
        "ECE debiased",
        "RMS-CE debiased",
        "confidence − accuracy",
        "smooth ECE",
        "AURC",
        "E-AURC",
        "AUROC",
        "MCB",
        "DSC",
        "UNC",
    ):
        assert label in text, label
    # the plug-in and the debiased errors side by side, in this order
    start = html.index('<table class="metrics detail')
    table = html[start : html.index("</table>", start)]
    order = ["ECE (L1)", "ECE debiased", "RMS-CE (L2)", "RMS-CE debiased", "MCE (max)"]
    assert [table.index(x) for x in order] == sorted(table.index(x) for x in order)


def test_no_intervals_keeps_the_point_verdict(tmp_path: Path) -> None:
    html, doc = _report_doc(
        tmp_path, str(SAMPLE_DATA / "digits_mlp_test.npz"), "--no-intervals"
    )
    m = doc["models"][0]
    assert m["intervals"] is None
    assert "interval" not in m["verdict"]["text"]
    assert "Verdict rule (no intervals" in Page(html).all_text


def test_consistency_band_in_table_figure_and_json(tmp_path: Path) -> None:
    from relcal.estimators import consistency_band, outside_band
    from relcal.metrics import evaluate_predictions

    path = SAMPLE_DATA / "digits_mlp_test.npz"
    html, doc = _report_doc(tmp_path, str(path))
    m = doc["models"][0]
    band = m["consistency_band"]
    r = evaluate_predictions(relcal.load(path))
    low, high = consistency_band(r.table, 0.95)
    assert band["level"] == 0.95
    assert band["outside"] == outside_band(r.table, 0.95).tolist()
    assert band["low"] == [None if np.isnan(v) else v for v in low.tolist()]
    assert band["high"] == [None if np.isnan(v) else v for v in high.tolist()]
    n_out = sum(band["outside"])
    assert n_out == band["n_outside"] > 0
    # each starred bin flagged in the bin table, and counted in the caption
    assert html.count('<tr class="outside">') == n_out
    assert f"{n_out} of " in Page(html).all_text
    assert "95% band if calibrated" in html  # the legend entry, in the SVG


def test_segmentation_band_is_said_to_be_too_narrow(tmp_path: Path) -> None:
    html, _ = make_report(
        tmp_path, str(SAMPLE_DATA / "segmentation_small.npz"), "--ignore-index", "255"
    )
    assert "too narrow" in Page(html).all_text


def test_report_json_figure_data(tmp_path: Path) -> None:
    _, doc = _report_doc(tmp_path, str(SAMPLE_DATA / "digits_mlp_test.npz"))
    m = doc["models"][0]
    assert set(m) >= {"verdict", "consistency_band", "smooth_diagram", "corp_diagram"}
    assert doc["verdict_rule"].startswith("Verdict rule:")
    sm = m["smooth_diagram"]
    assert len(sm["mesh"]) == len(sm["mu"]) == len(sm["density"]) == 200
    assert sm["smece"] == pytest.approx(m["metrics"]["smooth_ece"])
    corp = m["corp_diagram"]
    assert 2 <= len(corp["curve"]["x"]) <= 300
    assert corp["band"]["level"] == 0.95 and len(corp["band"]["x"]) <= 300
    assert corp["decomposition"]["brier"]["miscalibration"] == pytest.approx(
        m["corp"]["brier"]["decomposition"]["brier"]["miscalibration"]
        if "decomposition" in m["corp"]["brier"]
        else m["corp"]["brier"]["miscalibration"]
    )
    json.dumps(doc, allow_nan=False)


def test_unbinned_off_says_why_and_how(tmp_path: Path) -> None:
    html, doc = _report_doc(
        tmp_path, str(SAMPLE_DATA / "digits_mlp_test.npz"), "--unbinned", "off"
    )
    page = Page(html)
    assert "--unbinned on" in page.all_text
    assert not {"model-1-smooth", "model-1-corp", "model-1-risk"} & page.ids
    assert doc["models"][0]["smooth_diagram"] is None


def test_unbinned_figures_are_drawn_from_a_few_hundred_points(tmp_path: Path) -> None:
    """The new figures' size does not grow with the samples either."""
    sizes = []
    for n in (600, 20000):
        logits, labels = make_logits(n, 10, seed=1)
        path = tmp_path / f"p{n}.npz"
        np.savez(path, logits=logits, labels=labels)
        html, _ = make_report(tmp_path, str(path), name=f"r{n}.html")
        figs = re.findall(
            r'<figure id="model-1-(?:smooth|corp|risk)".*?</figure>', html, re.S
        )
        assert len(figs) == 3
        sizes.append(sum(len(f) for f in figs))
    assert sizes[1] < 1.5 * sizes[0] + 20_000


def test_unbinned_note_for_a_large_input_names_the_option() -> None:
    from dataclasses import replace as dc_replace

    from relcal.report import unbinned_note

    logits, labels = make_logits(300, 4, seed=2)
    r = relcal.evaluate(logits, labels)
    note = unbinned_note(dc_replace(r, n=5_000_000, values=None))
    assert "5,000,000 samples" in note and "--unbinned on" in note
    assert unbinned_note(relcal.evaluate(logits, labels, values=True)) == ""


def test_preview_of_a_large_file_reads_a_choice_of_its_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relcal import pipeline, report

    logits, labels = make_logits(4000, 5, seed=3, temperature=2.0)
    np.save(tmp_path / "s.npy", logits.astype(np.float32))
    np.save(tmp_path / "y.npy", labels)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "100")
    (inp,) = pipeline.open_inputs(
        str(tmp_path / "s.npy"), {"labels": str(tmp_path / "y.npy")}
    )
    # 80 kB of scores; a budget of 4 kB reads a hashed choice of the 40 chunks
    got = report.scaling_preview(inp, max_bytes=4000, n_total=4000)
    assert got.n_total == 4000 and 0 < got.n_rows < 400
    whole = report.scaling_preview(inp, max_bytes=10**9)
    assert whole.n_rows == whole.n_total == 4000
    assert abs(np.log(got.temperatures[0] / whole.temperatures[0])) < 0.5
