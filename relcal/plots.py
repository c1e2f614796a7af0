"""Figures of the report, drawn to inline SVG strings.

Compute first, draw second: every function here takes finished numbers (a
:class:`relcal.binning.BinTable` or plain arrays) and returns the text of one
``<svg>`` element, ready to be placed in an HTML page.

Legends go below the axes, in a band sized for them (:func:`legend_band`,
:func:`legend_below`), so they never cover data; labels written on bars are
placed only where they fit and never touch one another.  Counts are drawn on
a linear scale, so bar heights compare as the counts do.

matplotlib is imported lazily, only the object-oriented API is used
(``Figure`` and the SVG canvas, never pyplot), and every setting lives in an
``rc_context``: no global state is read or changed.  Output is reproducible: a
fixed SVG hash salt, no date or creator metadata, text kept as ``<text>``
elements (``svg.fonttype = "none"``, so no glyph paths are embedded and the
reader's sans-serif font is used).  A figure's size does not grow with the
number of samples: one bar or marker per bin.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from relcal.binning import BinTable
from relcal.errors import one_line

# Colour-blind-safe (Okabe-Ito) colours.
BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILION = "#D55E00"
GREEN = "#009E73"
GREY = "#999999"
SERIES = (BLUE, VERMILION, GREEN, ORANGE, "#CC79A7", "#56B4E9", "#F0E442", "#000000")

RC: dict[str, Any] = {
    "svg.hashsalt": "relcal",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "path.simplify": True,
    "text.usetex": False,
}
NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def plain(text: str) -> str:
    """A user's string (class name, file name) as literal matplotlib text.

    ``$`` would start mathtext, which can raise on arbitrary input; control
    characters other than a newline (which breaks a title's line) are shown
    escaped, as in the error messages: no font has a glyph for NUL.
    """
    lines = str(text).split("\n")
    return "\n".join(one_line(line) for line in lines).replace("$", r"\$")


@contextmanager
def _figure(width: float, height: float, **margins: float) -> Iterator[Any]:
    """A figure with fixed margins (in inches from each side, converted here).

    Fixed margins rather than a layout engine: constrained layout redraws
    the figure several times and took half of the report's drawing time.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    inches = {"left": 0.62, "right": 0.12, "top": 0.3, "bottom": 0.45}
    inches.update({k: v for k, v in margins.items() if k in inches})
    with rc_context(RC):
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(
            left=inches["left"] / width,
            right=1 - inches["right"] / width,
            top=1 - inches["top"] / height,
            bottom=inches["bottom"] / height,
            wspace=margins.get("wspace", 0.2),
            hspace=margins.get("hspace", 0.2),
        )
        yield fig


def _svg(fig: Any) -> str:
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with rc_context(RC), warnings.catch_warnings():
        # Text stays text (svg.fonttype "none"): the browser draws it in its
        # own fonts.  matplotlib only measures it, and says so for a character
        # its font lacks (a class name in Japanese); nothing to tell the user.
        warnings.filterwarnings("ignore", "Glyph .* missing from font")
        fig.savefig(buf, format="svg", metadata=NO_METADATA)
    text = buf.getvalue()
    # inline: drop the XML declaration, the DOCTYPE (an external DTD address)
    # and the fixed pixel size, so the figure scales with the page
    start = text.index("<svg")
    text = text[start:]
    text = re.sub(r'\s(width|height)="[0-9.]+pt"', "", text, count=2)
    return text.strip()


# -- shared helpers: text sizes, legends, labels that never collide ------------

# The parts of a reliability diagram.  A gap is a light fill hatched in a dark
# shade of its hue (the hatch takes the edge colour; the edge itself is not
# drawn), so the hatch shows on screen, in print and in grey.
OVER_FILL, OVER_HATCH = "#F7C9A9", "#A33B00"  # confidence above accuracy
UNDER_FILL, UNDER_HATCH = "#C6E4F4", "#004E75"  # accuracy above confidence
EMPTY_FILL, EMPTY_HATCH = "#F2F2F2", "#9A9A9A"
COUNT_BAR = "#767676"  # white text on it reads at 4.5:1
DIAGONAL = "#444444"
LEGEND_FONTSIZE = 7.5
LABEL_FONTSIZE = 6.5
PT = 1.0 / 72.0  # inches per point
# DejaVu Sans' mean advance in em, rounded up: text measured with it is never
# narrower than drawn, so boxes kept apart by it do not touch
CHAR_EM = 0.62
MAX_LEGEND_CHARS = 48  # a model's name in a legend (the tables hold it whole)


def text_width(text: str, fontsize: float) -> float:
    """The width of one line of ``text`` in inches (an over-estimate)."""
    return len(text) * CHAR_EM * fontsize * PT


def short_label(text: str, limit: int = MAX_LEGEND_CHARS) -> str:
    """A legend entry short enough for the figure: the middle of a long name
    goes (its start and its end tell models apart)."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def compact_count(n: float) -> str:
    """A count in at most six characters: ``99,999``, ``123k``, ``4.56M``."""
    n = int(round(float(n)))
    if n < 100_000:
        return f"{n:,}"
    for size, unit in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if n >= size:
            value = n / size
            return (f"{value:.3g}" if value < 100 else f"{value:.0f}") + unit
    return str(n)  # pragma: no cover


@dataclass(frozen=True)
class LegendBand:
    """Where a legend goes: a band of ``rows`` rows of ``ncol`` entries below
    the axes, ``height`` inches tall, outside every axes (it covers no data)."""

    ncol: int
    rows: int
    height: float


def legend_band(
    labels: Sequence[str], width: float, *, fontsize: float = LEGEND_FONTSIZE
) -> LegendBand:
    """The band a legend of ``labels`` needs across ``width`` inches."""
    if not labels:
        return LegendBand(1, 0, 0.0)
    # handle (2 em), the gap to the text (0.8 em), between columns (1.5 em)
    column = max(text_width(t, fontsize) for t in labels) + 4.3 * fontsize * PT
    ncol = max(1, min(len(labels), int(width // column)))
    rows = -(-len(labels) // ncol)
    return LegendBand(ncol, rows, rows * 1.55 * fontsize * PT + 0.06)


def legend_below(
    fig: Any, handles: Sequence[Any], labels: Sequence[str], band: LegendBand
) -> Any:
    """The figure's legend in its band at the bottom, left-aligned with the axes."""
    left = fig.subplotpars.left
    return fig.legend(
        handles,
        [plain(t) for t in labels],
        loc="upper left",
        bbox_to_anchor=(left * 0.5, (band.height + 0.02) / fig.get_figheight()),
        ncol=band.ncol,
        fontsize=LEGEND_FONTSIZE,
        handlelength=2.0,
        handletextpad=0.8,
        columnspacing=1.5,
        labelspacing=0.5,
        borderaxespad=0.0,
        borderpad=0.0,
        frameon=False,
    )


def _axes_inches(ax: Any) -> tuple[float, float, float, float]:
    """The axes' left, bottom, width and height in inches of its figure."""
    box = ax.get_position()
    w, h = ax.figure.get_figwidth(), ax.figure.get_figheight()
    return box.x0 * w, box.y0 * h, box.width * w, box.height * h


def free_corner(ax: Any, boxes: Sequence[tuple[float, float, float, float]]) -> str:
    """The legend corner of ``ax`` that covers least of ``boxes`` (data
    rectangles ``(x0, y0, x1, y1)`` of what is drawn), for a legend inside the
    axes (the report puts its legends below the axes instead)."""
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    sx, sy = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    corners = {  # the region a legend takes there, in axes fractions
        "upper left": (0.0, 0.6, 0.5, 1.0),
        "lower right": (0.5, 0.0, 1.0, 0.4),
        "upper right": (0.5, 0.6, 1.0, 1.0),
        "lower left": (0.0, 0.0, 0.5, 0.4),
    }

    def covered(region: tuple[float, float, float, float]) -> float:
        total = 0.0
        for x0, y0, x1, y1 in boxes:
            u0, u1 = (min(x0, x1) - x_lo) / sx, (max(x0, x1) - x_lo) / sx
            v0, v1 = (min(y0, y1) - y_lo) / sy, (max(y0, y1) - y_lo) / sy
            w = min(u1, region[2]) - max(u0, region[0])
            h = min(v1, region[3]) - max(v0, region[1])
            if w >= 0 and h >= 0:
                total += max(w, 0.01) * max(h, 0.01)
        return total

    return min(corners, key=lambda c: covered(corners[c]))


def _bin_axes(ax: Any, edges: np.ndarray, xlabel: str) -> None:
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(xlabel)
    if len(edges) <= 21:
        ax.set_xticks(np.round(np.linspace(0, 1, 6), 2))


def _count_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    # plain counts, never an offset such as "1e6" above the axes
    return FuncFormatter(lambda v, _: compact_count(v) if v >= 0 else "")


# -- the reliability diagram ---------------------------------------------------


@dataclass(frozen=True)
class ReliabilityArtists:
    """What :func:`_reliability` drew (the display keeps them as attributes)."""

    diagonal: Any  # Line2D
    bars: Any  # BarContainer: accuracy of each non-empty bin
    gap: Any  # BarContainer: from accuracy to mean confidence
    points: Any  # PathCollection: (bin centre, mean confidence)
    empty: Any  # BarContainer of the empty bins, or None


def reliability_legend(
    *, empty: bool = True, band: float | None = None, outside: bool = False
) -> tuple[list[Any], list[str]]:
    """The reliability diagram's legend: every colour it uses, each gap's side;
    with ``band`` (its level) the consistency band, and with ``outside`` the
    marker of a bin whose accuracy lies outside its band."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    entries = [
        (Patch(facecolor=BLUE, edgecolor="white"), "accuracy (correct / count)"),
        (
            Line2D([], [], ls="", marker="o", ms=3.5, color="#222222"),
            "mean confidence",
        ),
        (
            Patch(facecolor=OVER_FILL, edgecolor=OVER_HATCH, hatch="////", lw=0),
            "gap, over-confident",
        ),
        (
            Patch(facecolor=UNDER_FILL, edgecolor=UNDER_HATCH, hatch="\\\\\\\\", lw=0),
            "gap, under-confident",
        ),
        (Line2D([], [], ls="--", lw=0.8, color=DIAGONAL), "perfect calibration"),
    ]
    if empty:
        entries.append(
            (
                Patch(facecolor=EMPTY_FILL, edgecolor=EMPTY_HATCH, hatch="xx", lw=0),
                "empty bin (no data)",
            )
        )
    if band is not None:
        entries.append((band_patch(), band_label(band)))
    if outside:
        entries.append((outside_handle(), OUTSIDE_LABEL))
    return [h for h, _ in entries], [t for _, t in entries]


# the consistency band: a light grey box with a dark edge (it shows over the
# blue bar, the hatched gap and white alike, and in grey print)
BAND_FILL = (0.0, 0.0, 0.0, 0.13)
BAND_EDGE = "#333333"
OUTSIDE_FACE, OUTSIDE_EDGE = "#F0E442", "#000000"  # Okabe-Ito yellow star
OUTSIDE_LABEL = "accuracy outside its band"


def band_label(level: float) -> str:
    """The legend entry of a consistency band at ``level``."""
    return f"{level:.0%} band if calibrated"


def band_patch() -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=BAND_FILL, edgecolor=BAND_EDGE, lw=0.6)


def outside_handle() -> Any:
    from matplotlib.lines import Line2D

    return Line2D(
        [],
        [],
        ls="",
        marker="*",
        ms=7.5,
        markerfacecolor=OUTSIDE_FACE,
        markeredgecolor=OUTSIDE_EDGE,
        markeredgewidth=0.5,
    )


def _band(
    ax: Any,
    table: BinTable,
    band: tuple[np.ndarray, np.ndarray],
    outside: np.ndarray | None,
) -> tuple[Any, Any]:
    """Each non-empty bin's consistency band, a box over the middle half of
    the bin, and a star at the accuracy of each bin outside its band."""
    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    low, high = np.asarray(band[0], float), np.asarray(band[1], float)
    shown = np.isfinite(low) & np.isfinite(high) & (table.count > 0)
    boxes = ax.bar(
        lo[shown] + width[shown] / 4,
        np.maximum(high[shown] - low[shown], 0.004),
        bottom=low[shown],
        width=width[shown] / 2,
        align="edge",
        color=BAND_FILL,
        edgecolor=BAND_EDGE,
        linewidth=0.6,
        zorder=2.5,
    )
    stars = None
    if outside is not None and np.any(outside):
        out = np.asarray(outside, dtype=bool) & (table.count > 0)
        stars = ax.scatter(
            lo[out] + width[out] / 2,
            table.accuracy[out],
            s=48,
            marker="*",
            facecolors=OUTSIDE_FACE,
            edgecolors=OUTSIDE_EDGE,
            linewidths=0.5,
            zorder=4,
        )
    return boxes, stars


def _reliability(
    ax: Any, table: BinTable, *, ylabel: str, color: str = BLUE, legend: bool = True
) -> ReliabilityArtists:
    """Accuracy bars per bin against the diagonal; the gap to mean confidence
    hatched, vermilion where the bin is over-confident (confidence above
    accuracy) and blue where it is under-confident.  ``legend``: a legend in
    the axes' free corner (the report draws its own below the axes)."""
    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    filled = table.count > 0
    acc, conf = table.accuracy, table.mean_conf
    (diagonal,) = ax.plot(
        [0, 1], [0, 1], ls="--", lw=0.8, color=DIAGONAL, label="perfect calibration"
    )
    bars = ax.bar(
        lo[filled],
        acc[filled],
        width=width[filled],
        align="edge",
        color=color,
        edgecolor="white",
        linewidth=0.6,
        label="accuracy (correct / count)",
    )
    # the gap: from the bar's top to the bin's mean confidence (downwards
    # where the bin is under-confident, over the bar's top)
    gap = ax.bar(
        lo[filled],
        (conf - acc)[filled],
        bottom=acc[filled],
        width=width[filled],
        align="edge",
        color=OVER_FILL,
        hatch="////",
        edgecolor=OVER_HATCH,
        linewidth=0.0,
        label="gap to mean confidence",
    )
    for patch in gap.patches:
        if patch.get_height() < 0:
            patch.set_facecolor(UNDER_FILL)
            patch.set_edgecolor(UNDER_HATCH)
            patch.set_hatch("\\\\\\\\")
    points = ax.scatter(
        lo[filled] + width[filled] / 2,
        conf[filled],
        s=9,
        color="#222222",
        zorder=3,
        label="mean confidence",
    )
    empty = ~filled
    empty_bars = None
    if empty.any():
        # a light band along the bottom: "no data here", not "accuracy 0"
        empty_bars = ax.bar(
            lo[empty],
            np.full(int(empty.sum()), 0.05),
            width=width[empty],
            align="edge",
            color=EMPTY_FILL,
            edgecolor=EMPTY_HATCH,
            hatch="xx",
            linewidth=0.0,
            label="empty bin",
        )
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(ylabel)
    ax.set_aspect("auto")
    if legend:
        handles, labels = reliability_legend(empty=bool(empty.any()))
        boxes = [
            (x, 0.0, x + w, max(a, c))
            for x, w, a, c in zip(
                lo[filled], width[filled], acc[filled], conf[filled], strict=True
            )
        ]
        ax.legend(
            handles, labels, loc=free_corner(ax, boxes), fontsize=7.0, handlelength=1.6
        )
    return ReliabilityArtists(diagonal, bars, gap, points, empty_bars)


def _counts(ax: Any, table: BinTable, *, labels: bool = True) -> Any:
    """The strip of bin counts on a linear scale (bar heights compare as the
    counts do), each bar wide enough for it labelled with its count; returns
    its BarContainer."""
    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    bars = ax.bar(
        lo,
        table.count,
        width=width,
        align="edge",
        color=COUNT_BAR,
        edgecolor="white",
        linewidth=0.6,
    )
    top = int(table.count.max(initial=0))
    ax.set_ylim(0, max(top, 1))
    ax.set_yticks([0, top] if top > 0 else [0])
    ax.yaxis.set_major_formatter(_count_formatter())
    ax.set_ylabel("count")
    if labels and top > 0:
        _count_labels(ax, lo, width, table.count, top)
    return bars


def _count_labels(
    ax: Any, lo: np.ndarray, width: np.ndarray, count: np.ndarray, top: int
) -> list[Any]:
    """Each bar's count written along it: inside a tall bar (white), above a
    short one; none on a bar too narrow for a line of text (the axis and the
    bin table give those)."""
    _, _, w_in, h_in = _axes_inches(ax)
    size = LABEL_FONTSIZE
    line = 1.25 * size * PT  # a rotated label's width, inches
    texts = []
    for x, w, n in zip(lo, width, count, strict=True):
        if n <= 0 or w * w_in < line:
            continue
        label = compact_count(n)
        length = text_width(label, size) + 3 * PT
        bar = n / top * h_in
        if bar >= length + 2 * PT:
            y, va, colour = n - 2 * PT / h_in * top, "top", "white"
        elif h_in - bar >= length + 2 * PT:
            y, va, colour = n + 2 * PT / h_in * top, "bottom", "#222222"
        else:
            continue
        texts.append(
            ax.text(
                x + w / 2,
                y,
                label,
                rotation=90,
                ha="center",
                va=va,
                fontsize=size,
                color=colour,
            )
        )
    return texts


def _margin_for_counts(table: BinTable) -> float:
    """The left margin (inches) that holds the count axis's longest label."""
    top = compact_count(table.count.max(initial=0))
    return max(0.62, 0.34 + text_width(top, 8.0))


def reliability_svg(
    table: BinTable,
    *,
    title: str = "",
    xlabel: str = "confidence (top-label)",
    band: tuple[np.ndarray, np.ndarray] | None = None,
    outside: np.ndarray | None = None,
    level: float = 0.95,
) -> str:
    """Reliability diagram with a marginal strip of bin counts (linear, each
    bar labelled) and the legend below, outside the axes.  With ``band``
    (low, high per bin, :func:`relcal.estimators.consistency_band` at
    ``level``) each bin's consistency band, and a star on each bin
    ``outside`` it."""
    any_outside = outside is not None and bool(np.any(outside))
    handles, labels = reliability_legend(
        empty=bool((table.count == 0).any()),
        band=None if band is None else level,
        outside=any_outside,
    )
    with _over_counts(table, labels, title=title, xlabel=xlabel) as (fig, top, legend):
        _reliability(top, table, ylabel="accuracy", legend=False)
        if band is not None:
            _band(top, table, band, outside)
        legend_below(fig, handles, labels, legend)
        return _svg(fig)


@contextmanager
def _over_counts(
    table: BinTable, labels: list[str], *, title: str, xlabel: str
) -> Iterator[tuple[Any, Any, Any]]:
    """The frame of a diagram over its strip of bin counts: a figure with the
    main axes (titled) above the count strip, room for the legend band of
    ``labels`` below; yields (figure, main axes, legend band)."""
    width = 4.6
    legend = legend_band(labels, width - 0.3)
    with _figure(
        width,
        4.5 + legend.height,
        left=_margin_for_counts(table),
        top=0.3 if title else 0.12,
        bottom=0.5 + legend.height,
        hspace=0.08,
    ) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3.0, 1.1])
        if title:
            top.set_title(plain(short_label(title)))
        _counts(bottom, table)
        _bin_axes(bottom, table.edges, xlabel)
        fig.align_ylabels([top, bottom])
        yield fig, top, legend


# -- the correct / incorrect histogram ----------------------------------------


def _ratio_labels(
    ax: Any,
    lo: np.ndarray,
    width: np.ndarray,
    count: np.ndarray,
    correct: np.ndarray,
    ymax: float,
) -> list[Any]:
    """The correctness ratio above each bar, largest bins first, leaving out
    any label that would touch one already placed (narrow equal-mass bins)."""
    _, _, w_in, h_in = _axes_inches(ax)
    size = LABEL_FONTSIZE
    height = 1.2 * size * PT
    placed: list[tuple[float, float, float, float]] = []
    texts = []
    for i in np.argsort(-count, kind="stable"):
        n = count[i]
        if n <= 0:
            continue
        label = f"{correct[i] / n:.0%}"
        cx = (lo[i] + width[i] / 2) * w_in
        half = text_width(label, size) / 2
        y0 = n / ymax * h_in + 1.5 * PT
        box = (cx - half, y0, cx + half, y0 + height)
        if box[0] < 0 or box[2] > w_in or box[3] > h_in:
            continue
        gap = 1.5 * PT
        if any(
            box[0] < b[2] + gap
            and b[0] < box[2] + gap
            and box[1] < b[3] + gap
            and b[1] < box[3] + gap
            for b in placed
        ):
            continue
        placed.append(box)
        texts.append(
            ax.text(
                lo[i] + width[i] / 2,
                n + 1.5 * PT / h_in * ymax,
                label,
                ha="center",
                va="bottom",
                fontsize=size,
                color="#333333",
            )
        )
    return texts


def histogram_svg(
    table: BinTable, *, title: str = "", xlabel: str = "confidence (top-label)"
) -> str:
    """Predictions per confidence bin, split into correct and incorrect.

    The correctness ratio (correct / count) is written above each bar that
    has room for it; the legend is below the axes.
    """
    from matplotlib.patches import Patch

    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    correct = np.asarray(table.correct, dtype=np.float64)
    wrong = table.count - correct
    labels = ["correct", "incorrect"]
    fig_width = 4.6
    band = legend_band(labels, fig_width - 0.3)
    with _figure(
        fig_width,
        3.3 + band.height,
        left=_margin_for_counts(table),
        top=0.3 if title else 0.12,
        bottom=0.5 + band.height,
    ) as fig:
        ax = fig.subplots()
        ax.bar(
            lo,
            correct,
            width=width,
            align="edge",
            color=BLUE,
            edgecolor="white",
            linewidth=0.6,
            label="correct",
        )
        ax.bar(
            lo,
            wrong,
            bottom=correct,
            width=width,
            align="edge",
            color=ORANGE,
            edgecolor="white",
            linewidth=0.6,
            label="incorrect",
        )
        top = float(table.count.max(initial=0))
        ymax = max(top * 1.14, 1.0)
        ax.set_ylim(0, ymax)
        ax.set_ylabel("predictions")
        ax.yaxis.set_major_locator(_max_ticks(4))
        ax.yaxis.set_major_formatter(_count_formatter())
        _bin_axes(ax, edges, xlabel)
        if title:
            ax.set_title(plain(short_label(title)))
        _ratio_labels(ax, lo, width, table.count, correct, ymax)
        handles = [
            Patch(facecolor=BLUE, edgecolor="white"),
            Patch(facecolor=ORANGE, edgecolor="white"),
        ]
        legend_below(fig, handles, labels, band)
        return _svg(fig)


def _max_ticks(n: int) -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=n, integer=True, min_n_ticks=2)


# -- binary data: the positive class ------------------------------------------


def positive_class_svg(table: BinTable, *, title: str = "") -> str:
    """Binary data: observed frequency of class 1 against mean P(class 1),
    with the count strip below and the legend below that."""
    from matplotlib.lines import Line2D

    filled = table.count > 0
    handles = [
        Line2D([], [], marker="o", ms=3.5, color=BLUE, lw=1.2),
        Line2D([], [], ls="--", lw=0.8, color=DIAGONAL),
    ]
    labels = ["frequency of class 1", "perfect calibration"]
    xlabel = "mean predicted P(class 1)"
    with _over_counts(table, labels, title=title, xlabel=xlabel) as (fig, top, band):
        top.plot([0, 1], [0, 1], ls="--", lw=0.8, color=DIAGONAL)
        top.plot(
            table.mean_conf[filled],
            table.accuracy[filled],
            marker="o",
            ms=3.5,
            color=BLUE,
            lw=1.2,
        )
        top.set_ylim(0, 1)
        top.set_ylabel("fraction of class 1")
        legend_below(fig, handles, labels, band)
        return _svg(fig)


# -- per class -----------------------------------------------------------------


def classwise_grid_svg(tables: Sequence[BinTable], titles: Sequence[str]) -> str:
    """Small class-wise reliability curves: frequency of class c against mean
    P(class c), one panel per class, four to a row; marker area follows the
    bin's count."""
    n = len(tables)
    cols = min(4, n)
    rows = -(-n // cols)
    with _figure(
        2.0 * cols + 0.4,
        2.3 * rows + 0.2,
        left=0.62,
        bottom=0.62,
        top=0.45,
        wspace=0.35,
        hspace=0.8,
    ) as fig:
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, table, name in zip(axes, tables, titles, strict=False):
            filled = table.count > 0
            ax.plot([0, 1], [0, 1], ls="--", lw=0.6, color=DIAGONAL)
            # marker area grows with the bin's count: a bin of 3 samples that
            # lands far from the diagonal should not look like a finding
            share = table.count[filled] / max(int(table.count.sum()), 1)
            ax.plot(
                table.mean_conf[filled],
                table.accuracy[filled],
                lw=0.6,
                color=BLUE,
                alpha=0.5,
            )
            ax.scatter(
                table.mean_conf[filled],
                table.accuracy[filled],
                s=4 + 120 * np.sqrt(share),
                color=BLUE,
                alpha=0.8,
                linewidths=0,
            )
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(plain(name), fontsize=7.0, linespacing=1.2)
            ax.tick_params(labelsize=6.5)
            ax.set_xticks([0, 0.5, 1])
            ax.set_yticks([0, 0.5, 1])
        for ax in axes[n:]:
            ax.set_visible(False)
        fig.supxlabel("mean P(class c) in bin", fontsize=8)
        fig.supylabel("frequency of class c", fontsize=8)
        return _svg(fig)


# -- several curves on one axes ------------------------------------------------


def _curve(ax: Any, table: BinTable, *, label: str | None, index: int = 0) -> Any:
    """One model's curve: accuracy against mean confidence of the non-empty
    bins (series ``index`` picks the colour and marker); returns the Line2D."""
    markers = "osD^vP*X"
    filled = table.count > 0
    (line,) = ax.plot(
        table.mean_conf[filled],
        table.accuracy[filled],
        marker=markers[index % len(markers)],
        ms=3.5,
        lw=1.2,
        color=SERIES[index % len(SERIES)],
        label=None if label is None else plain(label),
    )
    return line


def compare_svg(
    tables: Sequence[BinTable],
    names: Sequence[str],
    *,
    title: str = "",
    xlabel: str = "confidence (top-label)",
) -> str:
    """Several reliability curves on the same axes (models, or before/after),
    the legend below the axes (long names shortened in the middle)."""
    labels = ["perfect calibration", *(short_label(n) for n in names)]
    width = 4.6
    band = legend_band(labels, width - 0.3)
    with _figure(
        width,
        4.3 + band.height,
        left=0.7,
        top=0.3 if title else 0.12,
        bottom=0.5 + band.height,
    ) as fig:
        ax = fig.subplots()
        (diagonal,) = ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=DIAGONAL)
        lines = [
            _curve(ax, table, label=None, index=i) for i, table in enumerate(tables)
        ]
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"mean {xlabel} in bin")
        ax.set_ylabel("accuracy in bin")
        if title:
            ax.set_title(plain(short_label(title)))
        legend_below(fig, [diagonal, *lines], labels, band)
        return _svg(fig)


# -- the figures of the forecasts themselves (no bins) -------------------------

DENSITY_FILL = "#BBBBBB"


def smooth_reliability_svg(
    mesh: np.ndarray,
    mu: np.ndarray,
    density: np.ndarray,
    *,
    title: str = "",
    xlabel: str = "confidence (top-label)",
) -> str:
    """The smooth reliability diagram (relplot's style): the kernel-smoothed
    accuracy ``mu`` at each confidence of ``mesh``, drawn thicker where the
    confidences are dense, against the diagonal; below, their density.  One
    segment per mesh point (200 by default), whatever the number of samples."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    x = np.asarray(mesh, dtype=np.float64)
    y = np.clip(np.asarray(mu, dtype=np.float64), 0.0, 1.0)
    dens = np.asarray(density, dtype=np.float64)
    top_density = float(np.nanmax(dens)) if dens.size else 0.0
    share = dens / top_density if top_density > 0 else np.zeros_like(dens)
    widths = 0.4 + 3.2 * 0.5 * (share[:-1] + share[1:])
    labels = [
        "smoothed accuracy (thicker: more predictions)",
        "perfect calibration",
        "density of the confidence",
    ]
    handles = [
        Line2D([], [], color=BLUE, lw=2.2),
        Line2D([], [], ls="--", lw=0.8, color=DIAGONAL),
        Patch(facecolor=DENSITY_FILL, edgecolor="none"),
    ]
    width = 4.6
    band = legend_band(labels, width - 0.3)
    with _figure(
        width,
        4.2 + band.height,
        left=0.62,
        top=0.3 if title else 0.12,
        bottom=0.5 + band.height,
        hspace=0.08,
    ) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3.0, 0.9])
        top.plot([0, 1], [0, 1], ls="--", lw=0.8, color=DIAGONAL)
        points = np.column_stack((x, y))
        segments = np.stack((points[:-1], points[1:]), axis=1)
        top.add_collection(
            LineCollection(
                list(segments), linewidths=widths, colors=BLUE, capstyle="round"
            )
        )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy (smoothed)")
        if title:
            top.set_title(plain(short_label(title)))
        bottom.fill_between(x, 0, dens, color=DENSITY_FILL, lw=0)
        bottom.set_ylim(0, max(top_density * 1.05, 1e-12))
        bottom.set_yticks([])
        bottom.set_ylabel("density")
        bottom.set_xlim(0, 1)
        bottom.set_xlabel(xlabel)
        fig.align_ylabels([top, bottom])
        legend_below(fig, handles, labels, band)
        return _svg(fig)


def corp_svg(
    curve_x: np.ndarray,
    curve_y: np.ndarray,
    band_x: np.ndarray | None,
    band_low: np.ndarray | None,
    band_high: np.ndarray | None,
    *,
    level: float | None = None,
    title: str = "",
    xlabel: str = "confidence (top-label)",
) -> str:
    """The CORP reliability diagram: the PAV (isotonic) recalibration of the
    confidence as a step curve, its consistency band around the diagonal (at
    ``level``) and the diagonal.  The curve and the band come thinned
    (:meth:`relcal.corp.CorpDiagram.curve_points`, a few hundred points)."""
    from matplotlib.lines import Line2D

    labels = ["PAV-recalibrated accuracy (CORP)", "perfect calibration"]
    handles: list[Any] = [
        Line2D([], [], color=BLUE, lw=1.4),
        Line2D([], [], ls="--", lw=0.8, color=DIAGONAL),
    ]
    if band_x is not None and level is not None:
        labels.append(band_label(level))
        handles.append(band_patch())
    width = 4.6
    band = legend_band(labels, width - 0.3)
    with _figure(
        width,
        3.9 + band.height,
        left=0.62,
        top=0.3 if title else 0.12,
        bottom=0.5 + band.height,
    ) as fig:
        ax = fig.subplots()
        if band_x is not None and band_low is not None and band_high is not None:
            ax.fill_between(
                band_x,
                band_low,
                band_high,
                facecolor=BAND_FILL,
                edgecolor=BAND_EDGE,
                lw=0.4,
            )
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=DIAGONAL)
        ax.plot(curve_x, curve_y, color=BLUE, lw=1.4, solid_joinstyle="miter")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (PAV-recalibrated)")
        if title:
            ax.set_title(plain(short_label(title)))
        legend_below(fig, handles, labels, band)
        return _svg(fig)


def oracle_risk(coverage: np.ndarray, accuracy: float) -> np.ndarray:
    """The risk at each coverage of a ranking with every correct prediction
    first: 0 up to the accuracy, then ``1 - accuracy / coverage``."""
    c = np.asarray(coverage, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > accuracy, 1.0 - accuracy / np.maximum(c, 1e-300), 0.0)


def risk_coverage_svg(
    coverage: np.ndarray,
    risk: np.ndarray,
    accuracy: float,
    *,
    title: str = "",
) -> str:
    """The risk-coverage curve: the error rate of the predictions accepted,
    most confident first, against the fraction accepted; beside it the
    oracle's (every correct prediction first).  The curve comes thinned
    (:meth:`relcal.selective.RiskCoverage.thinned`, 200 points)."""
    from matplotlib.lines import Line2D

    cov = np.asarray(coverage, dtype=np.float64)
    rsk = np.asarray(risk, dtype=np.float64)
    grid = np.unique(np.concatenate(([0.0, accuracy], np.linspace(0, 1, 101))))
    grid = grid[(grid >= 0) & (grid <= 1)]
    labels = ["risk by confidence", "oracle (correct ones first)"]
    handles = [
        Line2D([], [], color=BLUE, lw=1.4),
        Line2D([], [], color=GREY, lw=1.2, ls=":"),
    ]
    width = 4.6
    band = legend_band(labels, width - 0.3)
    with _figure(
        width,
        3.4 + band.height,
        left=0.62,
        top=0.3 if title else 0.12,
        bottom=0.5 + band.height,
    ) as fig:
        ax = fig.subplots()
        ax.plot(grid, oracle_risk(grid, accuracy), color=GREY, lw=1.2, ls=":")
        ax.plot(cov, rsk, color=BLUE, lw=1.4)
        finite = rsk[np.isfinite(rsk)]
        top = float(finite.max()) if finite.size else 1.0
        ax.set_xlim(0, 1)
        ax.set_ylim(0, min(1.0, max(top * 1.1, 1e-3)))
        ax.set_xlabel("coverage (fraction accepted, most confident first)")
        ax.set_ylabel("risk (error rate of the accepted)")
        if title:
            ax.set_title(plain(short_label(title)))
        legend_below(fig, handles, labels, band)
        return _svg(fig)
