"""The reliability diagram on a matplotlib ``Axes``, in the scikit-learn manner.

:class:`ReliabilityDisplay` is to relcal what ``CalibrationDisplay`` is to
scikit-learn: ``from_predictions`` computes (:func:`relcal.evaluate`), ``plot``
draws, and the artists are kept as attributes ending in ``_``.  The drawing is
the report's own (:mod:`relcal.plots`): the same bars, gap, markers and count
strip, here on the caller's ``Axes`` and in the caller's matplotlib style (no
``rc_context``; the report's SVGs keep theirs).

matplotlib is imported only when a figure is drawn; pyplot only when ``ax`` is
None (a new figure is then made with ``plt.subplots()``, as scikit-learn does).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from relcal.synth import make_logits
>>> logits, labels = make_logits(2000, 5, seed=0)
>>> disp = ReliabilityDisplay.from_predictions(logits, labels, n_bins=10)
>>> len(disp.bars_.patches) == int((disp.results.table.count > 0).sum())
True
>>> import matplotlib.pyplot as plt
>>> plt.close(disp.figure_)
"""

from __future__ import annotations

from typing import Any

from relcal import plots
from relcal.errors import InputError
from relcal.metrics import Results, evaluate

STYLES = ("bars", "line")
# curve: (the bin table's attribute of Results, x label, y label, its ECE, name)
CURVES = {
    "toplabel": ("table", "confidence (top-label)", "accuracy", "ece", "ECE"),
    "positive": (
        "positive_table",
        "mean predicted P(class 1)",
        "fraction of class 1",
        "positive_class_ece",
        "P(1) ECE",
    ),
}
CURVE_GID = "relcal-curve"  # marks the curves this class drew on an Axes
DIAGONAL_GID = "relcal-diagonal"


class ReliabilityDisplay:
    """Reliability diagram of one set of predictions.

    Create it with :meth:`from_predictions` or :meth:`from_results`; both draw
    at once.  ``plot`` may be called again on other axes.

    Parameters
    ----------
    results : relcal.Results
        What to draw: its bin table (``results.table``).
    name : str, optional
        The model's name: the title (``style="bars"``) or the curve's legend
        label (``style="line"``).

    Attributes
    ----------
    results : relcal.Results
    curve : str
        The curve drawn last: "toplabel" or "positive".
    table : relcal.BinTable
        Its bin table: ``results.table`` (top-label) or
        ``results.positive_table`` (positive class); edges, count, accuracy,
        mean confidence per bin.
    ax_ : matplotlib.axes.Axes
        The diagram's axes.
    ax_counts_ : matplotlib.axes.Axes or None
        The strip of bin counts under it (``counts=True``).
    figure_ : matplotlib.figure.Figure
    bars_ : BarContainer or None
        ``style="bars"``: the accuracy of each non-empty bin (heights).
    gap_bars_ : BarContainer or None
        ``style="bars"``: from the accuracy to the bin's mean confidence.
    points_ : PathCollection or None
        ``style="bars"``: the mean confidence at each non-empty bin's centre.
    line_ : Line2D or None
        ``style="line"``: accuracy (y) against mean confidence (x) of the
        non-empty bins (the fraction of class 1 against the mean P(class 1)
        for ``curve="positive"``, as scikit-learn's ``CalibrationDisplay.line_``).
    """

    ax_: Any
    ax_counts_: Any
    figure_: Any
    bars_: Any
    gap_bars_: Any
    points_: Any
    line_: Any

    def __init__(self, results: Results, *, name: str | None = None) -> None:
        if not isinstance(results, Results):
            raise InputError(
                "results= must be a relcal.Results (from relcal.evaluate)."
                f" Got {type(results).__name__} instead"
            )
        self.results = results
        self.table = results.table
        self.curve = "toplabel"
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        scores: object,
        labels: object,
        *,
        n_bins: int = 15,
        binning: str = "width",
        kind: str = "auto",
        ignore_index: int | None = None,
        name: str | None = None,
        ax: Any = None,
        style: str | None = None,
        counts: bool = False,
        curve: str = "toplabel",
    ) -> ReliabilityDisplay:
        """Evaluate ``scores`` against ``labels`` and draw the diagram.

        ``scores``, ``labels``, ``n_bins``, ``binning``, ``kind`` and
        ``ignore_index`` are those of :func:`relcal.evaluate`; ``name``,
        ``ax``, ``style``, ``counts`` and ``curve`` those of :meth:`plot`.
        """
        results = evaluate(
            scores,
            labels,
            kind=kind,
            n_bins=n_bins,
            binning=binning,
            ignore_index=ignore_index,
        )
        return cls.from_results(
            results, name=name, ax=ax, style=style, counts=counts, curve=curve
        )

    @classmethod
    def from_results(
        cls,
        results: Results,
        *,
        name: str | None = None,
        ax: Any = None,
        style: str | None = None,
        counts: bool = False,
        curve: str = "toplabel",
    ) -> ReliabilityDisplay:
        """Draw the diagram of results already computed.

        ``name``, ``ax``, ``style``, ``counts`` and ``curve`` are those of
        :meth:`plot`.
        """
        display = cls(results, name=name)
        return display.plot(ax=ax, style=style, counts=counts, curve=curve)

    def plot(
        self,
        ax: Any = None,
        *,
        name: str | None = None,
        style: str | None = None,
        counts: bool = False,
        curve: str = "toplabel",
    ) -> ReliabilityDisplay:
        """Draw on ``ax`` (a new figure when None) and return ``self``.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
        name : str, optional
            Overrides the name given at construction.
        style : {"bars", "line"}, optional
            "bars" (the default of the top-label curve): the report's diagram
            (accuracy bars, the gap to the mean confidence, empty bins
            marked).  "line" (the positive-class curve's only style): one
            curve of the non-empty bins; several displays may share one
            ``ax`` (the diagonal is drawn once, colours follow the report's
            series).
        counts : bool, default=False
            Add a strip of bin counts (log scale) under ``ax``.
        curve : {"toplabel", "positive"}, default="toplabel"
            "toplabel": accuracy against top-label confidence (``results.table``).
            "positive" (two classes): the fraction of class 1 against the mean
            P(class 1) per bin (``results.positive_table``), scikit-learn's
            ``CalibrationDisplay`` and ``calibration_curve``.
        """
        style = self._check(style, curve)
        if name is not None:
            self.name = name
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots()
        self.ax_, self.figure_ = ax, ax.figure
        self.bars_ = self.gap_bars_ = self.points_ = self.line_ = None
        self.curve = curve
        self.table = getattr(self.results, CURVES[curve][0])
        if style == "bars":
            self._bars(ax)
        else:
            self._line(ax)
        self.ax_counts_ = self._counts(ax) if counts else None
        return self

    def _check(self, style: str | None, curve: str) -> str:
        if curve not in CURVES:
            raise InputError(
                f"curve= must be 'toplabel' or 'positive'. Got {curve!r} instead"
            )
        if curve == "positive" and self.results.positive_table is None:
            raise InputError(
                "curve='positive' needs two classes."
                f" Got {self.results.n_classes} instead"
            )
        if style is None:
            return "bars" if curve == "toplabel" else "line"
        if style not in STYLES:
            raise InputError(f"style= must be 'bars' or 'line'. Got {style!r} instead")
        if style == "bars" and curve == "positive":
            raise InputError("curve='positive' is drawn as a line: give style='line'")
        return style

    def _bars(self, ax: Any) -> None:
        drawn = plots._reliability(ax, self.table, ylabel="accuracy")
        self.bars_, self.gap_bars_, self.points_ = drawn.bars, drawn.gap, drawn.points
        plots._bin_axes(ax, self.table.edges, "confidence (top-label)")
        if self.name is not None:
            ax.set_title(plots.plain(self.name))

    def _line(self, ax: Any) -> None:
        if not any(line.get_gid() == DIAGONAL_GID for line in ax.get_lines()):
            (diagonal,) = ax.plot(
                [0, 1], [0, 1], ls="--", lw=0.8, color="#444444",
                label="perfect calibration",
            )  # fmt: skip
            diagonal.set_gid(DIAGONAL_GID)
        index = sum(line.get_gid() == CURVE_GID for line in ax.get_lines())
        _, xlabel, ylabel, key, ece_name = CURVES[self.curve]
        ece = getattr(self.results, key)
        label = f"{self.name or 'model'} ({ece_name} {ece:.3f})"
        self.line_ = plots._curve(ax, self.table, label=label, index=index)
        self.line_.set_gid(CURVE_GID)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(xlabel if self.curve == "positive" else f"mean {xlabel} in bin")
        ax.set_ylabel(f"{ylabel} in bin")
        ax.legend(loc="upper left")

    def _counts(self, ax: Any) -> Any:
        from mpl_toolkits.axes_grid1 import (  # type: ignore[import-untyped]
            make_axes_locatable,
        )

        strip = make_axes_locatable(ax).append_axes(
            "bottom", size="28%", pad=0.1, sharex=ax
        )
        plots._counts(strip, self.table)
        strip.set_xlabel(ax.get_xlabel())
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
        return strip
