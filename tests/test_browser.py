"""The HTML report in a real browser: headless Chromium, driven by Playwright.

Each report is opened from disk at a desktop width (1280 px) and a phone width
(390 px).  The page must render: no console errors or warnings, no page errors,
no network requests besides the file itself, every ``<figure>`` and ``<svg>``
laid out with a non-zero box inside the page width, no two figures overlapping,
no horizontal overflow of the document (a wide table scrolls inside its own
``.scroll`` box, itself inside the viewport, with its first column sticky),
and a screenshot that is not blank (and no figure's part of it blank either).

Inside each SVG figure no two text boxes overlap, no text overlaps the legend,
the legend lies outside every axes (it covers no data), and every legend entry
the figure needs is there.  The shapes: one model (logits), four models with
long names and ``--ensemble``, equal-mass bins, a top-label CSV; at 390 px a
bin table shows count, mean confidence, accuracy and gap without scrolling.

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run``
installs it), driven by the ``playwright`` package of the ``test`` extra with
``executable_path`` pointing at it: ``playwright install`` is never needed.
Without Chromium or Playwright the tests are skipped with the reason, except
where the environment variable ``CI`` is set, where that is a failure.
Screenshots are saved under the test's temporary folder; a failing assertion
names them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relcal.cli import main

from .conftest import SAMPLE_DATA

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

LONG = "a_rather_long_model_name_from_a_sweep_lr0.001_wd0.05_seed{}.npz"
RELIABILITY_LEGEND = [
    "accuracy (correct / count)",
    "mean confidence",
    "gap, over-confident",
    "gap, under-confident",
    "perfect calibration",
    "95% band if calibrated",
]
OUTSIDE_ENTRY = "accuracy outside its band"
# the figures of the confidences themselves (no bins) and their legends
UNBINNED_LEGENDS = {
    "smooth": {
        "smoothed accuracy (thicker: more predictions)",
        "perfect calibration",
        "density of the confidence",
    },
    "corp": {
        "PAV-recalibrated accuracy (CORP)",
        "perfect calibration",
        "95% band if calibrated",
    },
    "risk": {"risk by confidence", "oracle (correct ones first)"},
}


def _unbinned(model: int) -> list[str]:
    return [f"model-{model}-{key}" for key in UNBINNED_LEGENDS]


# name -> (report arguments, figure ids the report must hold); "{tmp}" is the
# folder of the files made by `made_inputs`
REPORTS: dict[str, tuple[list[str], list[str]]] = {
    "one-logits": (
        [str(SAMPLE_DATA / "digits_mlp_test.npz")],
        ["model-1-reliability", "model-1-histogram", *_unbinned(1)],
    ),
    "four-ensemble": (
        ["--ensemble", *(f"{{tmp}}/{LONG.format(i)}" for i in range(4))],
        ["comparison", "model-5-reliability", *_unbinned(1), *_unbinned(5)],
    ),
    "equal-mass": (
        [str(SAMPLE_DATA / "digits_mlp_val.npz"), "--binning", "mass", "--bins", "30"],
        ["model-1-reliability", "model-1-histogram", *_unbinned(1)],
    ),
    "toplabel": (
        ["{tmp}/top_label.csv"],
        ["model-1-reliability", "model-1-histogram", *_unbinned(1)],
    ),
    "multiclass": (
        [str(SAMPLE_DATA / "digits_mlp_test.npz")],
        ["model-1-reliability", "model-1-histogram", "model-1-classwise"],
    ),
    "binary": (
        [str(SAMPLE_DATA / "xor_binary.npz")],
        ["model-1-reliability", "model-1-histogram", "model-1-positive"],
    ),
    "comparison": (
        [
            "--ensemble",
            str(SAMPLE_DATA / "digits_mlp_test.npz"),
            str(SAMPLE_DATA / "digits_mlp_test.csv"),
        ],
        ["comparison", "model-1-classwise", "model-2-classwise", "model-3-classwise"],
    ),
}

# The selector whose overflow used to be tolerated (the per-class table, before
# it was wrapped in `.scroll`); kept as the geometry script's "known" marker,
# but every overflow now fails.
KNOWN_OVERFLOW = ("table.classes",)

# Page coordinates (scroll offset added) of every figure and svg, the widths
# that horizontal overflow shows in, and the outermost elements that stick out
# of the viewport with no scrolling `.scroll` wrapper around them, each marked
# if it lies inside the known overflow's selector.
GEOMETRY_JS = """
(known) => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {
      id: el.id || (el.closest("figure") || {}).id || "",
      tag: el.tagName.toLowerCase(),
      x: r.left + window.scrollX, y: r.top + window.scrollY,
      width: r.width, height: r.height,
    };
  };
  const doc = document.documentElement;
  const viewport = doc.clientWidth;
  const sticks = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && (r.right > viewport + 1 || r.left < -1);
  };
  const sticking = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".scroll") || !sticks(el)) continue;
    if (el.parentElement !== document.body && sticks(el.parentElement)) continue;
    const r = el.getBoundingClientRect();
    const cls = typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\\s+/).join(".") : "";
    sticking.push({
      what: `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${cls}`
        + ` in #${(el.closest("section[id]") || {}).id || "?"}`
        + ` spans x ${Math.round(r.left)}..${Math.round(r.right)}`,
      known: Boolean(known && el.closest(known)),
    });
  }
  const scrolls = Array.from(document.querySelectorAll(".scroll"), (el) => {
    const r = el.getBoundingClientRect();
    const first = el.querySelector("tbody tr > :first-child");
    return {
      left: r.left, right: r.right, inner: el.scrollWidth, outer: el.clientWidth,
      sticky: first ? getComputedStyle(first).position : "",
      table: (el.querySelector("table") || {}).className || "",
    };
  });
  const headsOf = (sel) => Array.from(document.querySelectorAll(sel), (th) => {
    const r = th.getBoundingClientRect();
    return {text: th.textContent.trim(), left: r.left, right: r.right,
            shown: r.width > 0};
  });
  const heads = headsOf("table.bins thead th");
  const detailHeads = headsOf("table.detail thead th");
  const verdicts = Array.from(document.querySelectorAll("p.verdict"),
                              (p) => p.textContent.trim());
  const rules = Array.from(document.querySelectorAll("p.rule"),
                           (p) => p.textContent.trim());
  const texts = (root) => Array.from(root.querySelectorAll("text"), (t) => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  }).filter((b) => b.x1 > b.x0 && b.y1 > b.y0);
  const svgFigures = Array.from(document.querySelectorAll("figure"), (fig) => {
    const svg = fig.querySelector("svg");
    const legend = svg ? svg.querySelector("g[id^='legend']") : null;
    const rect = (el) => {
      const r = el.getBoundingClientRect();
      return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
    };
    const cap = fig.querySelector("figcaption");
    return {
      id: fig.id,
      caption: cap ? cap.textContent : "",
      texts: svg ? texts(svg).map((b) => ({...b, legend: Boolean(
        legend && legend.contains(Array.from(svg.querySelectorAll("text")).find(
          (t) => t.textContent === b.text && t.getBoundingClientRect().left === b.x0
            && t.getBoundingClientRect().top === b.y0)))})) : [],
      legend: legend ? rect(legend) : null,
      legendTexts: legend ? Array.from(legend.querySelectorAll("text"),
                                       (t) => t.textContent) : [],
      axes: svg ? Array.from(svg.querySelectorAll("g[id^='axes']"), (a) => {
        // the axes' own area: its background patch, the first path drawn
        const patch = a.querySelector("g[id^='patch'] path");
        return patch ? rect(patch) : rect(a);
      }) : [],
    };
  });
  return {
    scrolls: scrolls,
    binHeads: heads,
    detailHeads: detailHeads,
    verdicts: verdicts,
    rules: rules,
    svgFigures: svgFigures,
    viewport: viewport,
    docScrollWidth: doc.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    bodyClientWidth: document.body.clientWidth,
    figures: Array.from(document.querySelectorAll("figure"), box),
    svgs: Array.from(document.querySelectorAll("svg"), box),
    sticking: sticking,
  };
}
"""


def _need(what: str, hint: str) -> None:
    """Skip with the reason, or fail where CI is set: CI must run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} in CI ({hint}); the browser tests must run there")
    pytest.skip(f"{what}: {hint}")


def _chromium() -> str:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    found = shutil.which("chromium")
    if found is None:
        _need("chromium not installed", "apt-get install chromium")
    return str(found)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright not installed", "pip install -e '.[test]'")
    with sync_playwright() as pw:
        # A broken Chromium is an error, not a skip.
        b = pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield b
        finally:
            b.close()


def made_inputs(folder: Path) -> None:
    """Four copies of a sample file under long names (one model each, the
    same samples: an ensemble), and a top-label CSV of the sample's logits."""
    import numpy as np

    src = SAMPLE_DATA / "digits_mlp_test.npz"
    with np.load(src) as f:
        logits, labels = f["logits"], f["labels"]
    for i in range(4):
        np.savez(
            folder / LONG.format(i), logits=logits / (0.6 + 0.4 * i), labels=labels
        )
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    rows = ["true_label,pred_label,confidence"] + [
        f"{y},{k},{c:.6f}"
        for y, k, c in zip(labels, p.argmax(axis=1), p.max(axis=1), strict=True)
    ]
    (folder / "top_label.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("browser_reports")
    made_inputs(folder)
    out: dict[str, Path] = {}
    for name, (args, _) in REPORTS.items():
        path = folder / f"{name}.html"
        args = [a.replace("{tmp}", str(folder)) for a in args]
        assert main(["report", *args, "-o", str(path)]) == 0, name
        out[name] = path
    return out


class Rendered:
    """One report loaded in a page of a given size: events, geometry, screenshot."""

    def __init__(self, browser: Any, html: Path, size: dict[str, int], png: Path):
        self.url = html.resolve().as_uri()
        self.png = png
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        context = browser.new_context(viewport=size, device_scale_factor=1)
        try:
            page = context.new_page()
            page.on("console", self._on_console)
            page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
            page.on("request", lambda req: self.requests.append(req.url))
            page.on("requestfailed", lambda req: self.failed.append(req.url))
            page.goto(self.url, wait_until="load")
            self.geometry: dict[str, Any] = page.evaluate(
                GEOMETRY_JS, KNOWN_OVERFLOW[0]
            )
            page.screenshot(path=str(png), full_page=True, animations="disabled")
        finally:
            context.close()

    def _on_console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.console.append(f"{msg.type}: {msg.text} at {msg.location}")

    def where(self) -> str:
        return f"{self.url} (screenshot {self.png})"


def _ink(gray: Any, box: tuple[int, int, int, int] | None = None) -> float:
    """The fraction of pixels (within box, if given) that are not near-white."""
    hist = (gray if box is None else gray.crop(box)).histogram()
    total = sum(hist)
    return sum(hist[:240]) / total if total else 0.0


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    w = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return max(w, 0.0) * max(h, 0.0)


def _check_page(r: Rendered, expected_figures: list[str]) -> None:
    where = r.where()
    assert not r.console, f"console errors/warnings in {where}: {r.console}"
    assert not r.page_errors, f"page errors in {where}: {r.page_errors}"
    assert r.requests == [r.url], f"requests besides the file in {where}: {r.requests}"
    assert not r.failed, f"failed requests in {where}: {r.failed}"

    g = r.geometry
    width = g["viewport"]
    ids = [f["id"] for f in g["figures"]]
    assert set(expected_figures) <= set(ids), f"figures missing in {where}: {ids}"
    assert len(g["svgs"]) >= len(g["figures"]), f"figures without svg in {where}"
    for el in g["figures"] + g["svgs"]:
        name = f"<{el['tag']}> {el['id']!r} at {width} px in {where}"
        assert el["width"] > 0 and el["height"] > 0, f"{name} has an empty box: {el}"
        assert el["x"] >= -1 and el["x"] + el["width"] <= width + 1, (
            f"{name} is outside the page width {width}: {el}"
        )
    figs = g["figures"]
    for i, a in enumerate(figs):
        for b in figs[i + 1 :]:
            assert _overlap(a, b) <= 1.0, (
                f"figures {a['id']!r} and {b['id']!r} overlap at {width} px"
                f" in {where}: {a} / {b}"
            )

    from PIL import Image

    with Image.open(io.BytesIO(r.png.read_bytes())) as img:
        gray = img.convert("L")
    page_ink = _ink(gray)
    assert page_ink > 0.02, f"screenshot nearly blank ({page_ink:.2%} ink): {where}"
    for svg in g["svgs"]:
        box = (
            round(svg["x"]),
            round(svg["y"]),
            round(svg["x"] + svg["width"]),
            round(svg["y"] + svg["height"]),
        )
        ink = _ink(gray, box)
        assert ink > 0.01, (
            f"figure {svg['id']!r} is blank in the screenshot ({ink:.2%} ink,"
            f" box {box}) at {width} px: {where}"
        )

    _check_tables(r)
    _check_svg_text(r)

    # Last, so that the other checks report first.
    overflow = (
        g["docScrollWidth"] > width + 1
        or g["bodyScrollWidth"] > g["bodyClientWidth"] + 1
    )
    if overflow:
        sticking = [el["what"] for el in g["sticking"]]
        pytest.fail(
            f"page overflows horizontally at {width} px in {where}: document"
            f" scrollWidth {g['docScrollWidth']}, body scrollWidth"
            f" {g['bodyScrollWidth']} > {g['bodyClientWidth']}; sticking out"
            f" of the viewport, outside any .scroll wrapper: {sticking}"
        )


def _boxes_overlap(a: dict[str, float], b: dict[str, float], tol: float = 1.0) -> bool:
    w = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
    h = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
    return w > tol and h > tol


def _check_tables(r: Rendered) -> None:
    """Every scroll box inside the viewport, its first column sticky; at a
    phone width the bin table's count, confidence, accuracy and gap in view."""
    g, where = r.geometry, r.where()
    width = g["viewport"]
    for box in g["scrolls"]:
        assert box["left"] >= -1 and box["right"] <= width + 1, (
            f"a .scroll box sticks out of the viewport ({width} px) in {where}: {box}"
        )
        if box["inner"] > box["outer"] + 1:  # it scrolls: the names stay
            assert box["sticky"] == "sticky", (
                f"a scrolled table without a sticky first column in {where}: {box}"
            )
    if width <= 400:
        for head in g["binHeads"]:
            if head["text"] in ("count", "mean confidence", "accuracy", "gap"):
                assert head["shown"] and head["right"] <= width + 1, (
                    f"bin table column {head['text']!r} out of view at {width} px"
                    f" in {where}: {head}"
                )
        # the metric table: each metric, its value and its interval in view
        for head in g["detailHeads"]:
            if head["text"] in ("metric", "value", "95% interval"):
                assert head["shown"] and head["right"] <= width + 1, (
                    f"metric table column {head['text']!r} out of view at"
                    f" {width} px in {where}: {head}"
                )
    else:  # a desktop: the summary table whole, not scrolled
        summary = [b for b in g["scrolls"] if "summary" in b["table"]]
        assert summary and summary[0]["inner"] <= summary[0]["outer"] + 1, (
            f"the summary table is cut at {width} px in {where}: {summary}"
        )
    assert g["detailHeads"], f"no metric table in {where}"
    # the verdicts carry their interval, and the rule behind them is stated
    assert g["verdicts"] and all("interval" in v for v in g["verdicts"]), (
        f"a verdict without its interval in {where}: {g['verdicts']}"
    )
    assert g["rules"] and g["rules"][0].startswith("Verdict rule:"), (
        f"the verdict rule is not stated in {where}: {g['rules']}"
    )


def _check_svg_text(r: Rendered) -> None:
    """In each figure: no two text boxes overlap, the legend overlaps no
    other text and no axes, and holds every entry the figure needs."""
    where = r.where()
    for fig in r.geometry["svgFigures"]:
        texts, name = fig["texts"], f"figure {fig['id']!r} in {where}"
        for i, a in enumerate(texts):
            for b in texts[i + 1 :]:
                assert not _boxes_overlap(a, b), (
                    f"texts {a['text']!r} and {b['text']!r} overlap in {name}: {a} {b}"
                )
        legend = fig["legend"]
        if fig["id"].endswith("classwise"):
            continue  # small panels, no legend
        assert legend is not None, f"no legend in {name}"
        for t in texts:
            if not t["legend"]:
                assert not _boxes_overlap(legend, t), (
                    f"text {t['text']!r} overlaps the legend in {name}"
                )
        for ax in fig["axes"]:
            assert not _boxes_overlap(legend, ax), (
                f"the legend covers an axes in {name}: {legend} {ax}"
            )
        entries = fig["legendTexts"]
        kind = fig["id"].rsplit("-", 1)[-1]
        if fig["id"].endswith("reliability"):
            missing = set(RELIABILITY_LEGEND) - set(entries)
            # a starred bin (the caption counts them) has its legend entry
            found = re.search(
                r"(\d+) of \d+ non-empty bins lie outside", fig["caption"]
            )
            assert found, f"the band's count of starred bins missing in {name}"
            if int(found.group(1)) > 0:
                missing |= {OUTSIDE_ENTRY} - set(entries)
        elif kind in UNBINNED_LEGENDS and fig["id"].startswith("model-"):
            missing = UNBINNED_LEGENDS[kind] - set(entries)
        elif fig["id"].endswith("histogram"):
            missing = {"correct", "incorrect"} - set(entries)
        elif fig["id"].endswith("positive"):
            missing = {"frequency of class 1", "perfect calibration"} - set(entries)
        else:  # curves: the diagonal and one entry per curve
            missing = {"perfect calibration"} - set(entries)
            assert len(entries) >= 3, f"a curve without a legend entry in {name}"
        assert not missing, f"legend entries missing in {name}: {missing}"


@pytest.mark.parametrize("name", list(REPORTS))
def test_report_renders_at_desktop_width(
    browser: Any, reports: dict[str, Path], tmp_path: Path, name: str
) -> None:
    r = Rendered(browser, reports[name], DESKTOP, tmp_path / f"{name}-1280.png")
    _check_page(r, REPORTS[name][1])


@pytest.mark.parametrize("name", list(REPORTS))
def test_report_renders_at_phone_width(
    browser: Any, reports: dict[str, Path], tmp_path: Path, name: str
) -> None:
    r = Rendered(browser, reports[name], PHONE, tmp_path / f"{name}-390.png")
    _check_page(r, REPORTS[name][1])


# The head's `<style>` as the browser sees it: its raw text, the character
# references in it (never decoded in a raw-text element, so always a bug), and
# the font family in effect on the body next to the one a bare page gets.
CSS_JS = """
() => {
  const style = document.head.querySelector("style");
  const text = style ? style.textContent : "";
  const bare = document.createElement("iframe");
  document.body.appendChild(bare);
  const fallback = getComputedStyle(bare.contentDocument.body).fontFamily;
  bare.remove();
  return {
    hasStyle: Boolean(style),
    references: text.match(/&(#[0-9]+|#x[0-9a-f]+|[a-z]+);/gi) || [],
    bodyFont: getComputedStyle(document.body).fontFamily,
    fallbackFont: fallback,
  };
}
"""


def test_inline_css_is_applied(browser: Any, reports: dict[str, Path]) -> None:
    url = reports["binary"].resolve().as_uri()
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        css = page.evaluate(CSS_JS)
    finally:
        context.close()
    assert css["hasStyle"], f"no <style> in the head of {url}"
    refs = sorted(set(css["references"]))
    # a character reference in <style> is never decoded: the CSS was escaped
    assert not refs, f"escaped CSS in {url}: {refs}"
    assert css["bodyFont"] != css["fallbackFont"], (
        f"the report's font stack is not in effect in {url}: body font"
        f" {css['bodyFont']}, as on a page without CSS"
    )
