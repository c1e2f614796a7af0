"""Figures of the report, drawn to inline SVG strings.

Compute first, draw second: every function here takes finished numbers (a
:class:`relcal.binning.BinTable` or plain arrays) and returns the text of one
``<svg>`` element, ready to be placed in an HTML page.

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


def _bin_axes(ax: Any, edges: np.ndarray, xlabel: str) -> None:
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(xlabel)
    if len(edges) <= 21:
        ax.set_xticks(np.round(np.linspace(0, 1, 6), 2))


@dataclass(frozen=True)
class ReliabilityArtists:
    """What :func:`_reliability` drew (the display keeps them as attributes)."""

    diagonal: Any  # Line2D
    bars: Any  # BarContainer: accuracy of each non-empty bin
    gap: Any  # BarContainer: from accuracy to mean confidence
    points: Any  # PathCollection: (bin centre, mean confidence)
    empty: Any  # BarContainer of the empty bins, or None


def _reliability(
    ax: Any, table: BinTable, *, ylabel: str, color: str = BLUE, legend: bool = True
) -> ReliabilityArtists:
    """Accuracy bars per bin against the diagonal, the gap to mean confidence."""
    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    filled = table.count > 0
    acc, conf = table.accuracy, table.mean_conf
    (diagonal,) = ax.plot(
        [0, 1], [0, 1], ls="--", lw=0.8, color="#444444", label="perfect calibration"
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
    # the gap: from the bar's top to the bin's mean confidence
    gap = ax.bar(
        lo[filled],
        (conf - acc)[filled],
        bottom=acc[filled],
        width=width[filled],
        align="edge",
        color=VERMILION,
        alpha=0.35,
        hatch="///",
        edgecolor=VERMILION,
        linewidth=0.0,
        label="gap to mean confidence",
    )
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
            color="#EEEEEE",
            edgecolor="#BBBBBB",
            hatch="xx",
            linewidth=0.0,
            label="empty bin",
        )
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(ylabel)
    ax.set_aspect("auto")
    if legend:
        ax.legend(loc="upper left", fontsize=7.0, handlelength=1.6)
    return ReliabilityArtists(diagonal, bars, gap, points, empty_bars)


def _counts(ax: Any, table: BinTable, *, log: bool = True) -> Any:
    """The strip of bin counts (log scale); returns its BarContainer."""
    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    bars = ax.bar(
        lo,
        table.count,
        width=width,
        align="edge",
        color=GREY,
        edgecolor="white",
        linewidth=0.6,
    )
    top = int(table.count.max(initial=0))
    if log and top > 0:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(0, top * 1.5)
        # two plain ticks, 0 and the largest power of ten, inside the strip
        tick = 10 ** int(np.floor(np.log10(top)))
        ax.set_yticks([0, tick], ["0", f"{tick:,}"])
        ax.yaxis.set_minor_locator(_no_ticks())
    else:
        ax.yaxis.set_major_locator(_max_ticks(3))
    ax.set_ylabel("count")
    return bars


def _no_ticks() -> Any:
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _max_ticks(n: int) -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=n)


def reliability_svg(
    table: BinTable, *, title: str = "", xlabel: str = "confidence (top-label)"
) -> str:
    """Reliability diagram with a marginal strip of bin counts (log scale)."""
    with _figure(4.6, 4.6, hspace=0.1) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3.2, 1.0])
        _reliability(top, table, ylabel="accuracy")
        if title:
            top.set_title(plain(title))
        _counts(bottom, table)
        _bin_axes(bottom, table.edges, xlabel)
        return _svg(fig)


def histogram_svg(
    table: BinTable, *, title: str = "", xlabel: str = "confidence (top-label)"
) -> str:
    """Predictions per confidence bin, split into correct and incorrect.

    The correctness ratio (correct / count) is written above each bar.
    """
    edges = table.edges
    lo, width = edges[:-1], np.diff(edges)
    correct = np.asarray(table.correct, dtype=np.float64)
    wrong = table.count - correct
    with _figure(4.6, 3.2) as fig:
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
        if len(lo) <= 20:
            for x, w, n, c in zip(lo, width, table.count, correct, strict=True):
                if n > 0:
                    ax.text(
                        x + w / 2,
                        n + top * 0.01,
                        f"{c / n:.0%}",
                        ha="center",
                        va="bottom",
                        fontsize=6.5,
                        color="#333333",
                    )
        ax.set_ylim(0, max(top * 1.12, 1.0))
        ax.set_ylabel("predictions")
        _bin_axes(ax, edges, xlabel)
        ax.legend(loc="upper left")
        if title:
            ax.set_title(plain(title))
        return _svg(fig)


def positive_class_svg(table: BinTable, *, title: str = "") -> str:
    """Binary data: observed frequency of class 1 against mean P(class 1)."""
    filled = table.count > 0
    with _figure(4.6, 4.6, hspace=0.1) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3.2, 1.0])
        top.plot(
            [0, 1],
            [0, 1],
            ls="--",
            lw=0.8,
            color="#444444",
            label="perfect calibration",
        )
        top.plot(
            table.mean_conf[filled],
            table.accuracy[filled],
            marker="o",
            ms=3.5,
            color=BLUE,
            lw=1.2,
            label="frequency of class 1",
        )
        top.set_ylim(0, 1)
        top.set_ylabel("fraction of class 1")
        top.legend(loc="upper left")
        if title:
            top.set_title(plain(title))
        _counts(bottom, table)
        _bin_axes(bottom, table.edges, "mean predicted P(class 1)")
        return _svg(fig)


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
            ax.plot([0, 1], [0, 1], ls="--", lw=0.6, color="#444444")
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
    """Several reliability curves on the same axes (models, or before/after)."""
    with _figure(4.6, 4.6) as fig:
        ax = fig.subplots()
        ax.plot(
            [0, 1],
            [0, 1],
            ls="--",
            lw=0.8,
            color="#444444",
            label="perfect calibration",
        )
        for i, (table, name) in enumerate(zip(tables, names, strict=True)):
            _curve(ax, table, label=name, index=i)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"mean {xlabel} in bin")
        ax.set_ylabel("accuracy in bin")
        ax.legend(loc="upper left")
        if title:
            ax.set_title(plain(title))
        return _svg(fig)
