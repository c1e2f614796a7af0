"""The HTML reliability report: built as data first, then rendered.

:func:`build_report` turns loaded predictions into a :class:`ReportData` (plain
dataclasses holding the metrics, the bin tables and the figures as SVG text);
:func:`render_html` fills the jinja2 template ``templates/report.html.j2`` with
it (autoescape on, undefined variables an error), and :func:`report_to_dict`
gives every number in it as JSON (``relcal report --json``, format 1).  No
HTML is assembled by string formatting in Python.

The HTML file is self-contained: inline CSS, inline SVG figures, no script and
no external resource, so it opens offline and can be attached anywhere.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from relcal import __version__
from relcal.errors import InputError, RelcalError, ShapeError, one_line
from relcal.metrics import Results

REPORT_FORMAT = 1
MAX_CLASS_PANELS = 8  # class-wise panels: the most frequent and the worst classes
# every diagram draws one bar per bin (per panel, per model): this many bins
# take seconds to draw; more would take minutes
REPORT_MAX_BINS = 1000
# the "what next" preview holds the rows it scales in memory: at most this
# many bytes of logits (beyond, a hashed sample of the rows, said so); 32 MiB
# is 8,388 rows of 1000 classes: T to about 1% and 0.3 s of a 2-fold
# cross-fit on 2 cores (64 MiB: 0.47 s)
PREVIEW_MAX_BYTES = 32 * 2**20
PREVIEW_FOLDS = 2
SHORT_NAME = 32  # characters of a model's name in a table or legend


@dataclass(frozen=True)
class Figure:
    """One inline SVG figure, what it shows and, in one sentence, how to read it."""

    id: str
    caption: str
    svg: str
    how: str = ""


@dataclass(frozen=True)
class ScalingPreview:
    """What temperature scaling would do, cross-fitted on the file itself:
    each of ``k`` folds scaled by a T fitted on the other folds
    (:func:`relcal.temperature.cross_fit`), so no row is scaled by a T fitted
    on it.  ``n_rows`` of the file's ``n_total`` rows were used (all of them
    unless the scores exceed :data:`PREVIEW_MAX_BYTES`)."""

    k: int
    ece_before: float
    ece_after: float
    temperatures: tuple[float, ...]
    n_rows: int
    n_total: int


@dataclass(frozen=True)
class NextStep:
    """The report's "what next" for one model: one sentence, the command to
    run (or None) and the cross-fitted preview behind the sentence."""

    text: str
    command: str | None = None
    then: str | None = None  # the command after it (apply the fitted T)
    preview: ScalingPreview | None = None


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    value: float | None
    text: str  # formatted value, or "n/a (why)"
    convention: str
    # the bootstrap interval at the report's level, formatted as the value
    # ("[0.0357, 0.0620]"); "" without one
    interval: str = ""
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class CorpRow:
    """One line of the CORP table: ``mean_score = MCB - DSC + UNC``."""

    score: str  # "Brier" or "log"
    mean_score: float
    miscalibration: float
    discrimination: float
    uncertainty: float
    # the bootstrap interval of each of S, MCB, DSC, UNC ("[lo, hi]", "" if none)
    intervals: tuple[str, str, str, str] = ("", "", "", "")


@dataclass(frozen=True)
class Band:
    """The consistency band of each bin of the reliability diagram
    (:func:`relcal.estimators.consistency_band`) at ``level``, and whether
    each bin's accuracy lies outside it."""

    level: float
    low: np.ndarray
    high: np.ndarray
    outside: np.ndarray


@dataclass(frozen=True)
class ClassRow:
    index: int
    name: str
    count: int  # samples whose label is this class
    ece: float  # this class's term of the class-wise ECE
    why: str  # "frequent", "worst" or both


@dataclass
class Scaling:
    """Before / after temperature scaling (the slot issue 4 fills).

    ``in_sample`` is True when the temperature was fitted on the very data
    shown, which flatters the "after" numbers; the report says so.
    """

    temperature: float
    source: str
    in_sample: bool
    after: Results
    metrics: list[MetricRow] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class ModelReport:
    """Everything the report shows about one model (one input file)."""

    name: str
    anchor: str
    input: dict[str, Any]  # path, sha256, shape, dtype, ... (as in --json)
    results: Results
    class_names: tuple[str, ...] | None
    metrics: list[MetricRow]
    bins: list[dict[str, Any]]
    positive_bins: list[dict[str, Any]] | None
    classes: list[ClassRow]
    figures: dict[str, Figure]
    verdict: str
    scaling: Scaling | None = None
    ensemble_of: list[str] | None = None
    short_name: str = ""  # the name in tables and legends (full: ``name``)
    next_step: NextStep | None = None
    # the per-model metric table (plug-in and debiased errors side by side,
    # the gap behind the verdict), the unbinned metrics and CORP's scores
    detail: list[MetricRow] = field(default_factory=list)
    unbinned: list[MetricRow] = field(default_factory=list)
    corp_rows: list[CorpRow] = field(default_factory=list)
    # why the unbinned metrics and figures are missing ("" when shown)
    unbinned_note: str = ""
    band: Band | None = None
    smooth: Any = None  # relcal.smooth.SmoothDiagram
    corp: Any = None  # relcal.corp.CorpDiagram
    verdict_call: str = ""  # VERDICT_CALLS: what the verdict says


@dataclass
class ReportData:
    title: str
    created: str
    version: str
    n_bins: int
    binning: str
    bin_rule: str
    models: list[ModelReport]
    comparison: Figure | None
    conventions: dict[str, str]
    verdict_rule: str = ""


# -- inputs --------------------------------------------------------------------


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def created_now() -> str:
    """UTC time of the report, or ``SOURCE_DATE_EPOCH`` when set (reproducible)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        t = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.UTC)
    else:
        t = _dt.datetime.now(tz=_dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def class_probabilities(predictions: Any) -> np.ndarray:
    """Float64 class probabilities ``(N, C, ...)`` of loaded predictions.

    Logits go through a softmax over axis 1; one binary column (P or logit of
    class 1) becomes two columns.
    """
    if predictions.kind == "toplabel":
        raise InputError(
            f"{predictions.source}: a top-label file has only the top class's "
            "confidence; averaging models needs every class's scores"
        )
    return scores_probabilities(predictions.scores, predictions.kind)


def scores_probabilities(scores: Any, kind: str) -> np.ndarray:
    """Float64 class probabilities of scores ("logits" or "probs"): a softmax
    over axis 1 of logits; one binary column becomes two columns.  Row by row:
    the same for a chunk of rows as for the whole array."""
    z = np.asarray(scores, dtype=np.float64)
    if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1):
        z = z.reshape(-1)
        p1 = 1.0 / (1.0 + np.exp(-z)) if kind == "logits" else z
        return np.stack([1.0 - p1, p1], axis=1)
    if kind == "probs":
        return z
    from relcal.temperature import softmax

    return softmax(z)


def check_same_classes(other: Any, first: Any, source: str | None = None) -> None:
    """Models averaged by ``with_ensemble=True`` have one class count."""
    if other.n_classes != first.n_classes:
        raise ShapeError(
            f"with_ensemble=True: {other.source} has {other.n_classes} classes and "
            f"{first.source} has {first.n_classes}",
            source=source,
        )


def ensemble(predictions: Sequence[Any]) -> Any:
    """The mean of several models' probabilities, as one more model.

    Every model must hold the same samples in the same order: equal labels
    (and ignored pixels), equal shapes and class counts.
    """
    from relcal.io import Predictions

    first = predictions[0]
    total = class_probabilities(first)
    for other in predictions[1:]:
        check_same_classes(other, first)
        if other.labels.shape != first.labels.shape or not np.array_equal(
            other.labels, first.labels
        ):
            raise ShapeError(
                f"with_ensemble=True: {other.source} and {first.source} do not hold"
                " the same "
                "samples in the same order (their labels differ)"
            )
        p = class_probabilities(other)
        if p.shape != total.shape:
            raise ShapeError(
                f"with_ensemble=True: {other.source} has scores of shape {p.shape}, "
                f"{first.source} {total.shape}"
            )
        total += p
    total /= len(predictions)
    names = [model_name(p) for p in predictions]
    return Predictions(
        scores=total,
        labels=first.labels,
        kind="probs",
        n_classes=first.n_classes,
        class_names=first.class_names,
        source="ensemble of " + ", ".join(names),
        ignore_index=first.ignore_index,
        origin={"scores": "mean of the models' probabilities"},
        n_dropped=getattr(first, "n_dropped", 0),
    )


def unique_names(predictions: Sequence[Any]) -> list[str]:
    """Each model's name; a table column that several files hold is named
    with its file (``a.csv: p``) wherever the names would clash."""
    names = [model_name(p) for p in predictions]
    return [
        f"{Path(p.source).name}: {n}" if names.count(n) > 1 and p.model else n
        for p, n in zip(predictions, names, strict=True)
    ]


def model_name(predictions: Any) -> str:
    """A model's name: its table column (``models=``), else its file's name."""
    model = getattr(predictions, "model", None)
    if model is not None:
        return str(model)
    return Path(predictions.source.split(" + ")[0]).name


# -- building ------------------------------------------------------------------


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "n/a"
    if key == "accuracy" or key == "mean_confidence":
        return f"{value:.2%}"
    if key == "gap":
        return f"{value:+.2%}"
    return f"{value:.4f}"


def _fmt_interval(low: float, high: float, key: str) -> str:
    return f"[{_fmt(low, key)}, {_fmt(high, key)}]"


# conventions of the rows that are not in relcal.render.CONVENTIONS' words
_ROW_CONVENTIONS = {
    "accuracy": "fraction of samples whose top class is the label",
    "gap": "mean confidence − accuracy over all samples: > 0 over-confident",
}
# a bias-corrected interval (relcal.bootstrap.BINNED) sits around the
# debiased estimate, not the plug-in value: the row says so
_BIAS_CORRECTED = "; its interval is bias-corrected (it may lie below the value)"


def _row(results: Results, key: str, label: str, value: Any = None) -> MetricRow:
    """One metric row: the value, its interval (if any) and its convention."""
    from relcal.bootstrap import BINNED
    from relcal.render import CONVENTIONS

    if value is None:
        value = getattr(results, key, None)
    value = None if value is None or not np.isfinite(value) else float(value)
    text = _fmt(value, key)
    if value is None:
        text = "n/a: " + results.unavailable.get(key, "not computed")
    conv = _ROW_CONVENTIONS.get(key) or CONVENTIONS.get(
        "confidence" if key == "mean_confidence" else key, ""
    )
    iv = results.intervals.get(key) if results.intervals else None
    if (
        iv is None
        or value is None
        or not (np.isfinite(iv.low) and np.isfinite(iv.high))
    ):
        return MetricRow(key, label, value, text, conv)
    if key in BINNED:
        conv += _BIAS_CORRECTED
    return MetricRow(
        key,
        label,
        value,
        text,
        conv,
        _fmt_interval(iv.low, iv.high, key),
        float(iv.low),
        float(iv.high),
    )


def metric_rows(results: Results, *, positive: bool | None = None) -> list[MetricRow]:
    """The metrics of the summary table (one column each).  The
    positive-class rows are there for two classes (``positive=None``), or
    when ``positive`` says so (a report comparing a binary model with others
    keeps its columns aligned)."""
    from relcal.render import METRIC_LABELS, shown_metrics

    if positive is None:
        labels = shown_metrics(results.n_classes)
    else:
        labels = METRIC_LABELS if positive else shown_metrics(0)
    return [_row(results, key, label) for key, label in labels]


GAP_LABEL = "confidence − accuracy"


def detail_rows(results: Results) -> list[MetricRow]:
    """The metric table of one model: as :func:`metric_rows`, with the gap
    behind the verdict after the mean confidence and each debiased error
    after its plug-in one."""
    from relcal.render import DEBIASED_LABELS

    debiased = dict(DEBIASED_LABELS)
    rows = []
    for row in metric_rows(results):
        rows.append(row)
        if row.key == "mean_confidence":
            gap = results.mean_confidence - results.accuracy
            rows.append(_row(results, "gap", GAP_LABEL, gap))
        elif row.key == "ece":
            rows.append(_row(results, "ece_debiased", debiased["ece_debiased"]))
        elif row.key == "rms_ce":
            rows.append(_row(results, "rms_ce_debiased", debiased["rms_ce_debiased"]))
            rows.append(_row(results, "sq_ce_debiased", debiased["sq_ce_debiased"]))
    return rows


def unbinned_rows(results: Results) -> list[MetricRow]:
    """The metrics of the confidences themselves (no bins); empty when they
    were not computed."""
    from relcal.render import UNBINNED_LABELS

    if results.values is None:
        return []
    rows = []
    for key, label in UNBINNED_LABELS:
        row = _row(results, key, label)
        if key == "smooth_ece" and results.smooth_sigma is not None:
            row = replace(row, label=f"{label} (σ = {results.smooth_sigma:.3f})")
        rows.append(row)
    return rows


def corp_rows(corp: Any, intervals: dict[str, Any] | None = None) -> list[CorpRow]:
    """``{"brier": Decomposition, "log": Decomposition}`` as table rows, with
    the intervals of their parts when ``intervals`` holds them
    ("corp_brier_mcb", ...: :func:`relcal.bootstrap.unbinned_replicates`)."""
    from relcal.bootstrap import CORP_PARTS

    if not corp:
        return []
    names = {"brier": "Brier (x − y)²", "log": "log score (nats)"}
    rows = []
    for k, d in corp.items():
        shown = []
        for short in CORP_PARTS.values():
            iv = (intervals or {}).get(f"corp_{k}_{short}")
            ok = iv is not None and np.isfinite(iv.low) and np.isfinite(iv.high)
            shown.append(f"[{iv.low:.4f}, {iv.high:.4f}]" if ok else "")
        rows.append(
            CorpRow(
                names.get(k, k),
                float(d.mean_score),
                float(d.miscalibration),
                float(d.discrimination),
                float(d.uncertainty),
                tuple(shown),  # type: ignore[arg-type]
            )
        )
    return rows


_BINNING_NAME = {"width": "equal-width", "mass": "equal-mass"}

# the verdict's rule, in the words the report shows (one sentence)
WELL_CALIBRATED = 0.02
VERDICT_RULE = (
    "Verdict rule: well calibrated if the whole {level} interval of the ECE lies"
    " below 0.02; else over- or under-confident if the {level} interval of mean"
    " confidence − accuracy lies above or below 0 (“slightly” if the ECE is"
    " below 0.05); else not enough data to tell, unless the debiased squared"
    " error's interval excludes 0 (miscalibrated, no overall direction)."
)
VERDICT_RULE_POINT = (
    "Verdict rule (no intervals: --no-intervals): well calibrated if the ECE is"
    " below 0.02, else over- or under-confident by the sign of mean confidence −"
    " accuracy (“slightly” if the ECE is below 0.05)."
)
VERDICT_CALLS = (
    "well calibrated",
    "slightly over-confident",
    "over-confident",
    "slightly under-confident",
    "under-confident",
    "miscalibrated, no overall direction",
    "not enough data to tell",
)


def verdict_rule(level: float | None) -> str:
    """The sentence that states how :func:`verdict_call` decides."""
    if level is None:
        return VERDICT_RULE_POINT
    return VERDICT_RULE.format(level=f"{level:.0%}")


def strength(results: Results) -> str:
    """ "well calibrated", "(slightly) over-confident" or "under-confident",
    from the point values alone (the verdict after scaling, and any results
    without intervals)."""
    side = (
        "over-confident"
        if results.mean_confidence - results.accuracy > 0
        else "under-confident"
    )
    if results.ece < WELL_CALIBRATED:
        return "well calibrated"
    return "slightly " + side if results.ece < 0.05 else side


def verdict_call(results: Results) -> str:
    """What the verdict says (one of :data:`VERDICT_CALLS`), by the rule of
    :data:`VERDICT_RULE` when the results hold the intervals it needs, else
    by :func:`strength`."""
    iv = results.intervals or {}
    gap, ece, sq = iv.get("gap"), iv.get("ece"), iv.get("sq_ce_debiased")
    if gap is None or ece is None:
        return strength(results)
    if ece.high < WELL_CALIBRATED:
        return "well calibrated"
    if gap.low > 0 or gap.high < 0:
        side = "over-confident" if gap.low > 0 else "under-confident"
        return "slightly " + side if ece.estimate < 0.05 else side
    if sq is not None and sq.low > 0:
        return "miscalibrated, no overall direction"
    return "not enough data to tell"


def verdict(results: Results) -> str:
    """One sentence a reader takes away first, with the intervals behind it."""
    call = verdict_call(results)
    bins = f"{results.n_bins} {_BINNING_NAME[results.binning]} bins"
    iv = results.intervals or {}
    gap, ece = iv.get("gap"), iv.get("ece")
    if gap is None or ece is None:
        return (
            f"{call.capitalize()}: mean confidence "
            f"{results.mean_confidence:.1%} vs accuracy {results.accuracy:.1%}; ECE "
            f"{results.ece:.3f} ({bins})."
        )
    level = f"{gap.confidence:.0%}"
    point = results.mean_confidence - results.accuracy
    head = call.capitalize()
    if call == "not enough data to tell":
        head += f" ({results.n:,} samples)"
    return (
        f"{head}: mean confidence {results.mean_confidence:.1%} vs accuracy "
        f"{results.accuracy:.1%}, a gap of {100 * point:+.1f} points ({level}"
        f" interval {100 * gap.low:+.1f} to {100 * gap.high:+.1f}); ECE "
        f"{results.ece:.3f} [{ece.low:.3f}, {ece.high:.3f}] ({bins})."
    )


def scaled_verdict(before: Results, after: Results, label: str) -> str:
    """The verdict after temperature scaling, the value before beside it:
    the verdict rule on the after-scaling intervals when there are some
    (samples as units), else the point values."""
    bins = f"{after.n_bins} {_BINNING_NAME[after.binning]} bins"
    was = f"before: {before.ece:.3f}, {strength(before)}; {bins}"
    if after.intervals.get("gap") is not None and after.intervals.get("ece"):
        said = verdict(after)  # "<Call>: ... (<bins>)."
        call, rest = said.split(":", 1)
        rest = rest.rstrip(".").rsplit(f" ({bins})", 1)[0]
        return (
            f"After temperature scaling ({label}): {call[0].lower() + call[1:]}:"
            f"{rest} ({was})."
        )
    return (
        f"After temperature scaling ({label}): {strength(after)}: mean confidence "
        f"{after.mean_confidence:.1%} vs accuracy {after.accuracy:.1%}; ECE "
        f"{after.ece:.3f} ({was})."
    )


def short_name(name: str, ensemble_of: Sequence[str] | None = None) -> str:
    """A model's name short enough for a table cell or a legend: an ensemble
    by its size, a long name without its middle (the page's title attribute
    and the model's section hold it whole)."""
    from relcal.plots import short_label

    if ensemble_of:
        return f"ensemble of {len(ensemble_of)} models"
    return short_label(name, SHORT_NAME)


def select_classes(
    results: Results, class_names: Sequence[str] | None, limit: int = MAX_CLASS_PANELS
) -> list[ClassRow]:
    """The classes with the most samples and those with the worst class-wise ECE."""
    cwb = results.classwise_bins
    per_class = results.classwise_per_class
    if cwb is None or per_class is None:
        return []
    counts = np.rint(cwb.sum_y.sum(axis=1)).astype(np.int64)
    n_classes = len(counts)
    half = max(1, limit // 2)
    # stable orders: ties go to the lower class index
    frequent = list(np.argsort(-counts, kind="stable")[:half])
    worst = [c for c in np.argsort(-per_class, kind="stable") if c not in frequent]
    chosen = (
        list(range(n_classes))
        if n_classes <= limit
        else frequent + worst[: limit - half]
    )
    rows = []
    for c in chosen:
        why = []
        if n_classes > limit:
            if c in frequent:
                why.append("most samples")
            else:
                why.append("largest class-wise ECE")
        name = class_names[c] if class_names is not None else f"class {c}"
        rows.append(
            ClassRow(
                int(c), str(name), int(counts[c]), float(per_class[c]), ", ".join(why)
            )
        )
    return rows


def _short(name: str, limit: int = 24) -> str:
    """A class name short enough for a panel title (the table has it whole)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _anchor(i: int) -> str:
    return f"model-{i + 1}"


def is_map(predictions: Any) -> bool:
    """Whether the input is a segmentation map (pixels of one image: samples
    that are not independent)."""
    shape = getattr(predictions, "label_shape", None)
    if shape is None:
        shape = np.shape(getattr(predictions, "labels", ()))
    return len(shape) > 1


def report_level(results: Results) -> float:
    """The level of the report's bands: its intervals' (0.95 without them)."""
    return float(results.ci["level"]) if results.ci else 0.95


def reliability_band(results: Results, level: float | None = None) -> Band | None:
    """Each bin's consistency band at ``level`` (default the report's) and the
    bins outside it (:mod:`relcal.estimators`; None for an empty table)."""
    from relcal.estimators import consistency_band

    table = results.table
    if int(np.sum(table.count)) == 0:
        return None
    level = report_level(results) if level is None else level
    low, high = consistency_band(table, level)
    acc = table.accuracy
    with np.errstate(invalid="ignore"):
        outside = np.nan_to_num((acc < low) | (acc > high), nan=False).astype(bool)
    outside &= np.asarray(table.count) > 0
    return Band(level, low, high, outside)


def band_caption(band: Band | None, segmentation: bool) -> str:
    """The reliability diagram's sentence on its consistency band."""
    if band is None:
        return ""
    n_out = int(band.outside.sum())
    n_bins = int(np.sum(np.isfinite(band.low)))
    text = (
        f" Grey boxes: where each bin's accuracy would fall with {band.level:.0%}"
        " probability if the model were calibrated (binomial consistency band,"
        f" Bröcker & Smith 2007); {n_out} of {n_bins} non-empty bins lie outside"
        " theirs (starred)."
    )
    if segmentation:
        text += (
            " The band assumes independent samples: pixels of one image are"
            " correlated, so here it is too narrow and overstates the starred bins."
        )
    return text


def unbinned_note(results: Results) -> str:
    """Why the unbinned metrics and their figures are missing ("" if shown)."""
    from relcal.values import AUTO_MAX

    if results.values is not None:
        return ""
    if results.n > AUTO_MAX:
        return (
            f"Smooth ECE, AURC, E-AURC, AUROC, CORP and their figures were not "
            f"computed: the input has {results.n:,} samples, more than "
            f"{AUTO_MAX:,}, where keeping every distinct confidence costs about "
            "as much as the rest of the pass; relcal report --unbinned on "
            "computes them."
        )
    return (
        "Smooth ECE, AURC, E-AURC, AUROC, CORP and their figures were not "
        "computed (--unbinned off); relcal report --unbinned on computes them."
    )


def unbinned_figures(
    results: Results, index: int, title: str
) -> tuple[Figure | None, Figure | None, Figure | None, Any, Any]:
    """The smooth reliability diagram, the CORP diagram and the risk-coverage
    curve of the confidences themselves (None each without the values), and
    the smooth and CORP diagrams' data."""
    from relcal import plots

    g = results.values
    if g is None or len(g.value) == 0:
        return None, None, None, None, None
    from relcal.corp import corp_diagram
    from relcal.smooth import smooth_diagram

    a = _anchor(index)
    sm = smooth_diagram(g.value, g.count, g.sum_y)
    smooth_fig = Figure(
        f"{a}-smooth",
        "Smooth reliability diagram (Błasiok & Nakkiran 2023, relplot's style): "
        "the fraction correct of predictions near each confidence, a Gaussian "
        f"kernel of width σ = {sm.sigma:.3f} instead of bins; the line is "
        "thicker where predictions are denser (their density below). Smooth "
        f"ECE {sm.smece:.4f}.",
        plots.smooth_reliability_svg(sm.mesh, sm.mu, sm.density, title=title),
        how="How to read: where the thick part of the line runs below the "
        "dashed diagonal, predictions are right less often than their "
        "confidence claims; a thin stretch rests on few predictions.",
    )
    level = report_level(results)
    seed = int(results.ci["seed"]) if results.ci else 0
    try:
        corp = corp_diagram(
            g.value,
            g.count,
            g.sum_y,
            level=level,
            n_boot=100,
            seed=seed,
            event="top-label correct",
        )
    except RelcalError:  # weighted counts: no band
        corp = corp_diagram(
            g.value, g.count, g.sum_y, level=None, event="top-label correct"
        )
    cx, cy = corp.curve_points()
    bx = blo = bhi = None
    if corp.bands is not None:
        from relcal.corp import thin_monotone

        b = corp.bands
        i = thin_monotone(b.x, [b.lower, b.upper], corp.max_points)
        bx, blo, bhi = b.x[i], b.lower[i], b.upper[i]
    dec = (results.corp or corp.decompositions)["brier"]
    corp_fig = Figure(
        f"{a}-corp",
        "CORP reliability diagram (Dimitriadis, Gneiting & Jordan 2021): the "
        "fraction correct as a non-decreasing step function of the confidence "
        "(isotonic, PAV), no bins to choose"
        + (
            f"; grey, where {level:.0%} of such curves of a calibrated model "
            f"fall ({corp.bands.n_boot} resamples)"
            if corp.bands is not None
            else ""
        )
        + f". Brier score {dec.mean_score:.4f} = miscalibration (MCB) "
        f"{dec.miscalibration:.4f} − discrimination (DSC) "
        f"{dec.discrimination:.4f} + uncertainty (UNC) {dec.uncertainty:.4f}.",
        plots.corp_svg(cx, cy, bx, blo, bhi, level=level, title=title),
        how="How to read: a step below the diagonal and outside the grey band "
        "is a range of confidences that is over-confident beyond chance; MCB is "
        "the Brier score that recalibration would remove.",
    )
    sel = results.selective
    risk_fig = None
    if sel is not None:
        auroc = "n/a" if sel.auroc is None else f"{sel.auroc:.4f}"
        risk_fig = Figure(
            f"{a}-risk",
            "Risk–coverage curve (Geifman & El-Yaniv 2017): keep the most "
            "confident predictions and abstain on the rest; the error rate of "
            "those kept against the fraction kept; dotted, an oracle that keeps "
            f"every correct prediction first. AURC {sel.aurc:.4f} (oracle "
            f"{sel.oracle_aurc:.4f}, E-AURC {sel.e_aurc:.4f}); AUROC of the "
            f"confidence for telling right from wrong {auroc}.",
            plots.risk_coverage_svg(
                np.asarray(sel.curve["coverage"]),
                np.asarray(sel.curve["risk"]),
                float(sel.accuracy),
                title=title,
            ),
            how="How to read: the lower the curve, the better the confidence "
            "ranks right above wrong predictions; the gap to the dotted oracle "
            "is E-AURC.",
        )
    return smooth_fig, corp_fig, risk_fig, sm, corp


def model_report(
    predictions: Any,
    results: Results,
    index: int,
    *,
    sha256: str | None,
    labels_sha256: str | None = None,
    ensemble_of: list[str] | None = None,
    name: str | None = None,
    n_bins: int = 15,
    binning: str = "width",
    preview: bool = True,
) -> ModelReport:
    from relcal import plots
    from relcal.render import bins_to_list, source_info

    if name is None:
        name = predictions.source if ensemble_of else model_name(predictions)
    source = source_info(predictions, results)
    source["sha256"] = sha256
    source["labels_sha256"] = labels_sha256
    class_names = predictions.class_names
    band = reliability_band(results)
    title = short_name(name, ensemble_of)
    figs = {
        "reliability": Figure(
            f"{_anchor(index)}-reliability",
            "Reliability diagram: accuracy per confidence bin (bars) against the "
            "diagonal; hatched, the gap to the bin's mean confidence (dots), "
            "vermilion where the bin is over-confident, blue where it is "
            "under-confident; below, the number of predictions per bin (linear "
            "scale, each bar labelled where it is wide enough). A grey hatched band "
            "along the bottom marks an empty bin (no data, not accuracy 0)."
            + band_caption(band, is_map(predictions)),
            plots.reliability_svg(
                results.table,
                title=title,
                band=None if band is None else (band.low, band.high),
                outside=None if band is None else band.outside,
                level=0.95 if band is None else band.level,
            ),
            how="How to read: a bar that stops below its dot is a bin whose "
            "predictions are right less often than their confidence claims; a "
            "star marks a bin whose accuracy a calibrated model would rarely "
            "show (outside the grey box); the tallest count bars are the bins "
            "that weigh most in the ECE.",
        ),
        "histogram": Figure(
            f"{_anchor(index)}-histogram",
            "Predictions per confidence bin, split into correct and incorrect; the "
            "percentage above a bar is the bin's correctness ratio "
            "(correct / count), written where it has room (the bin table has "
            "every bin's).",
            plots.histogram_svg(results.table),
            how="How to read: the orange share of a bar is the bin's errors; "
            "for a calibrated model the percentage matches the bin's confidence.",
        ),
    }
    if results.positive_table is not None:
        figs["positive"] = Figure(
            f"{_anchor(index)}-positive",
            "Binary data: observed frequency of class 1 against the mean predicted "
            "P(class 1) per bin (as scikit-learn's calibration_curve); below, the "
            "number of predictions per bin.",
            plots.positive_class_svg(results.positive_table),
            how="How to read: a point below the diagonal is a bin where class 1 "
            "happens less often than predicted.",
        )
    classes = select_classes(results, class_names)
    if classes and results.n_classes > 2 and results.classwise_bins is not None:
        cwb = results.classwise_bins
        figs["classwise"] = Figure(
            f"{_anchor(index)}-classwise",
            "Class-wise calibration: for each class c, the frequency of c against "
            "the mean P(class c) per equal-width bin; the larger the marker, the "
            "more samples in the bin.",
            plots.classwise_grid_svg(
                [cwb.table(r.index) for r in classes],
                [f"{_short(r.name)}\nn={r.count}, ECE {r.ece:.3f}" for r in classes],
            ),
            how="How to read: a class whose large markers sit below the diagonal "
            "is predicted with more confidence than it earns.",
        )
    smooth_fig, corp_fig, risk_fig, smooth, corp = unbinned_figures(
        results, index, title
    )
    for key, fig in (("smooth", smooth_fig), ("corp", corp_fig), ("risk", risk_fig)):
        if fig is not None:
            figs[key] = fig
    bins = bins_to_list(results.table)
    if band is not None:
        for row, low, high, out in zip(
            bins, band.low, band.high, band.outside, strict=True
        ):
            row["band_low"] = None if not np.isfinite(low) else float(low)
            row["band_high"] = None if not np.isfinite(high) else float(high)
            row["outside"] = bool(out)
    return ModelReport(
        name=name,
        anchor=_anchor(index),
        input=source,
        results=results,
        class_names=class_names,
        metrics=metric_rows(results),
        detail=detail_rows(results),
        unbinned=unbinned_rows(results),
        corp_rows=corp_rows(
            results.corp if results.corp else (corp.decompositions if corp else None),
            results.intervals,
        ),
        unbinned_note=unbinned_note(results),
        band=band,
        smooth=smooth,
        corp=corp,
        verdict_call=verdict_call(results),
        bins=bins,
        positive_bins=None
        if results.positive_table is None
        else bins_to_list(results.positive_table, positive=True),
        classes=classes,
        figures=figs,
        verdict=verdict(results),
        ensemble_of=ensemble_of,
        short_name=short_name(name, ensemble_of),
        next_step=next_step(
            predictions,
            results,
            ensemble_of=ensemble_of,
            n_bins=n_bins,
            binning=binning,
            preview=preview,
        ),
    )


# -- what next -----------------------------------------------------------------


def _chunks_of(predictions: Any) -> Any:
    """``(scores, labels, start)`` chunks of a streamed input (read anew) or
    of loaded predictions (one chunk, nothing read)."""
    if hasattr(predictions, "chunks") and callable(predictions.chunks):
        return predictions.chunks()
    return [(predictions.scores, predictions.labels, 0)]


def _total_rows(predictions: Any) -> int:
    n = getattr(predictions, "n_samples", None)
    return int(n) if n is not None else int(np.asarray(predictions.labels).size)


def preview_rows(
    predictions: Any, *, max_bytes: int = PREVIEW_MAX_BYTES
) -> tuple[np.ndarray, np.ndarray, int]:
    """The logits and labels of every kept row (or, beyond ``max_bytes`` of
    logits, of a hashed sample of them: the same rows whatever the
    chunking), in one read of the input; and the number of rows there are.
    Probabilities become log-probabilities (logits up to a constant per row)."""
    from relcal.temperature import fold_of, logit_rows

    chunks, in_chunks = _preview_source(predictions, max_bytes)
    total = _total_rows(predictions) if in_chunks is None else in_chunks
    kind, ignore = predictions.kind, predictions.ignore_index
    z_all: np.ndarray | None = None
    y_all: np.ndarray | None = None
    filled = kept = 0
    every = 1
    for scores, labels, start in chunks:
        rows = logit_rows(
            scores, labels, kind=kind, ignore_index=ignore, start=start
        ).row_major()
        kept += len(rows)
        z, y = rows.z, rows.y
        if z_all is None:
            row_bytes = z.shape[1] * z.dtype.itemsize
            every = max(1, -(-total * row_bytes // max_bytes))
            room = total if every == 1 else total // every + total // (4 * every) + 4096
            z_all = np.empty((room, z.shape[1]), dtype=z.dtype)
            y_all = np.empty(room, dtype=np.int64)
        assert y_all is not None
        if every > 1:
            pick = fold_of(rows.ids, every, seed=1) == 0
            z, y = z[pick], y[pick]
        n = min(len(y), len(y_all) - filled)
        z_all[filled : filled + n] = z[:n]
        y_all[filled : filled + n] = y[:n]
        filled += n
    if z_all is None or y_all is None:
        return np.empty((0, 2)), np.empty(0, dtype=np.int64), 0
    return z_all[:filled], y_all[:filled], kept


PREVIEW_READ_FACTOR = 4
"""A file of more than this many times :data:`PREVIEW_MAX_BYTES` of scores
is not read whole for the preview: a hashed choice of its chunks holding
about twice that many bytes is (one image of a 4.46 GB segmentation file
read, not 56: the report took 16.6 s there, against 9.4 s without a
preview)."""


def _preview_source(predictions: Any, max_bytes: int) -> tuple[Any, int | None]:
    """The chunks the preview reads and, when they are a hashed choice of a
    large file's chunks, how many logit rows (samples or pixels) they hold."""
    source = getattr(predictions, "chunk_source", None)
    if not callable(source):
        return _chunks_of(predictions), None
    pieces = source()
    if not getattr(pieces, "pieces_of_files", False):
        return pieces, None  # chunks read in order
    parts = pieces.stream._parts
    sizes, rows = [], []
    for i, lo, hi, _ in pieces.spans:
        scores, labels = parts[i].scores, parts[i].labels
        per_row = int(np.prod(labels.shape[1:], dtype=np.int64))
        rows.append((hi - lo) * per_row)
        sizes.append((hi - lo) * int(np.prod(scores.shape[1:])) * scores.dtype.itemsize)
    budget = PREVIEW_READ_FACTOR * max_bytes
    if sum(sizes) <= budget or len(sizes) < 2:
        return pieces, None
    key = np.arange(len(sizes), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    order = np.argsort(key >> np.uint64(11), kind="stable")
    enough = np.searchsorted(np.cumsum(np.asarray(sizes)[order]), 2 * max_bytes)
    chosen = sorted(order[: int(enough) + 1].tolist())
    return (pieces.read(k) for k in chosen), int(sum(rows[k] for k in chosen))


def _top_probability(z: np.ndarray, block: int = 8192) -> np.ndarray:
    """max softmax(z) of each row (float64; the exponentials in z's own
    precision, ~1e-7 for float32: ample for a preview), a block of rows at a
    time."""
    out = np.empty(len(z), dtype=np.float64)
    for i in range(0, len(z), block):
        rows = z[i : i + block]
        b = rows - rows.max(axis=1, keepdims=True)
        np.exp(b, out=b)
        out[i : i + block] = 1.0 / b.sum(axis=1, dtype=np.float64)
    return out


def _ece_of(conf: np.ndarray, correct: np.ndarray, n_bins: int, binning: str) -> float:
    from relcal.binning import bin_table, calibration_errors, make_edges

    table = bin_table(conf, correct, make_edges(conf, n_bins, binning))
    return float(calibration_errors(table)[0])


def scaling_preview(
    predictions: Any,
    *,
    n_bins: int = 15,
    binning: str = "width",
    k: int = PREVIEW_FOLDS,
    max_bytes: int = PREVIEW_MAX_BYTES,
    ece_before: float | None = None,
    n_total: int | None = None,
) -> ScalingPreview:
    """ECE before and after temperature scaling cross-fitted on the file
    itself (``k`` folds, :func:`relcal.temperature.cross_fit`), from one more
    read of the input.  ``ece_before``: the file's ECE, already measured
    (used when every row is read; else measured on the rows read)."""
    from relcal.temperature import cross_fit

    z, y, total = preview_rows(predictions, max_bytes=max_bytes)
    if n_total is not None and n_total > total:
        total = n_total  # a choice of the chunks was read: rows of the file
    if len(y) < 2 * k:
        raise InputError(f"too few samples ({len(y)}) to cross-fit a temperature")
    correct = (np.argmax(z, axis=1) == y).astype(np.float64)
    if ece_before is None or len(y) != total:
        ece_before = _ece_of(_top_probability(z), correct, n_bins, binning)
    scaled, temps = cross_fit(z, y, k)
    del z
    after = _ece_of(_top_probability(scaled), correct, n_bins, binning)
    return ScalingPreview(k, ece_before, after, tuple(temps), len(y), total)


def _command_path(predictions: Any) -> str:
    import shlex

    source = str(predictions.source)
    if not Path(source).exists() and " + " in source:
        source = source.split(" + ")[0]
    return shlex.quote(source)


def _load_flags(predictions: Any) -> str:
    """The options the commands need to read the input as the report did."""
    flags = []
    if getattr(predictions, "model", None) is not None:
        flags.append(f"--models {_quote(str(predictions.model))}")
    if predictions.ignore_index is not None:
        flags.append(f"--ignore-index {int(predictions.ignore_index)}")
    return "".join(" " + f for f in flags)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


TOPLABEL_NEXT = (
    "Temperature scaling is not possible here: it rescales every class's score, "
    "and this file holds only the top class's confidence; save the full logits "
    "or probabilities to try it."
)


def next_step(
    predictions: Any,
    results: Results,
    *,
    ensemble_of: Sequence[str] | None = None,
    n_bins: int = 15,
    binning: str = "width",
    preview: bool = True,
) -> NextStep:
    """The "what next" of one model: for logits or probabilities, what
    temperature scaling cross-fitted on this file would do and the command
    that fits it; for a top-label file, why scaling is not possible."""
    if predictions.kind == "toplabel":
        return NextStep(TOPLABEL_NEXT)
    if ensemble_of:
        return NextStep(
            "An ensemble has no file of its own to scale: fit each model's "
            "temperature (relcal fit-temperature FILE, on a validation split) "
            "and average the scaled models."
        )
    path = _command_path(predictions)
    flags = _load_flags(predictions)
    command = f"relcal fit-temperature {path}{flags} -o temperature.json"
    then = f"relcal report {path}{flags} --temperature temperature.json"
    probs = (
        " Probabilities are scaled through their logs (logits up to a constant)."
        if predictions.kind == "probs"
        else ""
    )
    if not preview:
        return NextStep(
            f"{probs.strip()} Fit a temperature, on a validation split if you have"
            " one:".strip(),
            command,
            then,
        )
    try:
        got = scaling_preview(
            predictions,
            n_bins=n_bins,
            binning=binning,
            ece_before=results.ece,
            n_total=results.n,
        )
    except RelcalError as err:
        return NextStep(
            f"No temperature-scaling preview ({err.message}). Fit T:", command, then
        )
    lo, hi = min(got.temperatures), max(got.temperatures)
    temps = f"T = {lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"T {lo:.2f}–{hi:.2f}"
    sample = (
        ""
        if got.n_rows == got.n_total
        else f" on a sample of {got.n_rows:,} of {got.n_total:,} rows"
    )
    helps = got.ece_after < got.ece_before - 0.005
    text = (
        f"Temperature scaling would take ECE from {got.ece_before:.3f} to "
        f"{got.ece_after:.3f} (cross-fitted on this file{sample}: {got.k} folds, "
        f"{temps})"
        + (
            ". Fit T, on a validation split if you have one:"
            if helps
            else ": little to gain. To fit T anyway:"
        )
    )
    if probs:
        text = probs.strip() + " " + text
    return NextStep(text, command, then, got)


def check_report_bins(n_bins: int) -> None:
    """Refuse more bins than the report can draw (before any work is done)."""
    if n_bins > REPORT_MAX_BINS:
        raise InputError(
            f"the report draws one bar per bin: n_bins={n_bins} is more than"
            f" {REPORT_MAX_BINS} bins"
        )


def build_report(
    predictions: Sequence[Any],
    *,
    n_bins: int = 15,
    binning: str = "width",
    title: str | None = None,
    with_ensemble: bool = False,
    sha256: Sequence[str | None] | None = None,
    labels_sha256: Sequence[str | None] | None = None,
    results: Sequence[Results] | None = None,
    preview: bool = True,
    ci: float | None = 0.95,
    n_replicates: int = 1000,
    seed: int = 0,
    values: bool | None = None,
) -> ReportData:
    """The report of one or several models, as data.

    Parameters
    ----------
    predictions : sequence of :class:`relcal.io.Predictions`
        Or of streamed :class:`relcal.pipeline.Input` with their ``results``.
    n_bins, binning : the bins of every table and diagram
    title : the page title (default: "Calibration of" and the file names, or
        "Calibration of N models" for more than two)
    with_ensemble : add the mean of the models' probabilities as one more model
    sha256, labels_sha256 : the inputs' digests, one per prediction
    results : the metrics of each prediction, when already measured (every
        figure and table is drawn from them); by default measured here
    preview : add to each model with every class's scores what temperature
        scaling cross-fitted on it would do (:func:`scaling_preview`: one more
        read of each file); else only the command that fits it
    ci, n_replicates, seed : the bootstrap intervals of the metrics measured
        here (:func:`relcal.evaluate`; None: none)
    values : the unbinned metrics and their figures (None: auto,
        :func:`relcal.values.wanted`)
    """
    from relcal import plots
    from relcal.metrics import evaluate_predictions
    from relcal.render import BIN_RULE, CONVENTIONS

    if not predictions:
        raise InputError("no input files")
    check_report_bins(n_bins)
    preds = list(predictions)
    hashes = list(sha256) if sha256 is not None else [None] * len(preds)
    lhashes = list(labels_sha256) if labels_sha256 is not None else [None] * len(preds)
    names = unique_names(preds)
    models = []
    how: dict[str, Any] = {
        "n_bins": n_bins,
        "binning": binning,
        "ci": ci,
        "n_replicates": n_replicates,
        "seed": seed,
        "values": values,
        "corp": True,
    }
    for i, p in enumerate(preds):
        measured = evaluate_predictions(p, **how) if results is None else results[i]
        models.append(
            model_report(
                p,
                measured,
                i,
                sha256=hashes[i],
                labels_sha256=lhashes[i],
                name=names[i],
                n_bins=n_bins,
                binning=binning,
                preview=preview,
            )
        )
    if with_ensemble:
        if len(preds) < 2:
            raise InputError("with_ensemble=True needs at least two input files")
        if results is None:
            ens = ensemble(preds)
            ens_results = evaluate_predictions(ens, **how)
        else:  # streamed inputs: their mean streamed
            from relcal.pipeline import ensemble_input, measure_for_report

            ens = ensemble_input(preds, [model_name(p) for p in preds])
            ens_results = measure_for_report(ens, **how)
        models.append(
            model_report(
                ens,
                ens_results,
                len(models),
                sha256=None,
                ensemble_of=[m.name for m in models],
                n_bins=n_bins,
                binning=binning,
            )
        )
    if any(m.results.n_classes == 2 for m in models):
        for m in models:  # the summary table's columns: the same for every model
            m.metrics = metric_rows(m.results, positive=True)
    comparison = None
    if len(models) > 1:
        comparison = Figure(
            "comparison",
            "Every model's reliability curve on the same axes: accuracy against mean "
            "confidence per non-empty bin (long names shortened; the table has "
            "them whole).",
            plots.compare_svg(
                [m.results.table for m in models], [m.short_name for m in models]
            ),
            how="How to read: the closer a curve runs to the dashed diagonal, the "
            "better calibrated the model; below it means over-confident.",
        )
    if title is None:
        shown = [m.short_name for m in models[: len(preds)]]
        # more than two names make a title that fills a phone's screen; the
        # models are listed just below it
        title = "Calibration of " + (
            " and ".join(shown) if len(shown) <= 2 else f"{len(shown)} models"
        )
    return ReportData(
        title=title,
        created=created_now(),
        version=__version__,
        n_bins=n_bins,
        binning=binning,
        bin_rule=BIN_RULE,
        models=models,
        comparison=comparison,
        conventions=dict(CONVENTIONS),
        verdict_rule=verdict_rule(
            next((m.results.ci["level"] for m in models if m.results.ci), None)
        ),
    )


def add_scaling(
    model: ModelReport,
    z: np.ndarray,
    y: np.ndarray,
    *,
    t_doc: dict[str, Any] | None = None,
    t_path: str | None = None,
    n_bins: int = 15,
    binning: str = "width",
    ci: float | None = 0.95,
    n_replicates: int = 1000,
    seed: int = 0,
) -> None:
    """Fill the model's before / after temperature-scaling slot.

    With ``t_doc`` (a temperature file) the temperature comes from there and
    counts as in-sample only if it was fitted on this very file (same
    sha256); without it, T is fitted here on the data shown (in-sample).
    ``ci``: the after-scaling metrics get bootstrap intervals (so the verdict
    after scaling follows the same rule), when each row of ``z`` is a sample
    of its own (not the pixels of segmentation maps).
    """
    from relcal.metrics import evaluate
    from relcal.temperature import fit_prepared, scale_logits

    fit = fit_prepared(z, y) if t_doc is None else None
    t = scaling_temperature(fit, t_doc)
    rows_are_samples = len(model.input.get("shape") or ()) <= 2
    after = evaluate(
        scale_logits(z, t),
        y,
        kind="logits",
        n_bins=n_bins,
        binning=binning,
        ci=ci if rows_are_samples else None,
        n_replicates=n_replicates,
        seed=seed,
        values=False,
    )
    set_scaling(model, t, after, fit=fit, t_doc=t_doc, t_path=t_path)


def scaled_next_step(
    step: NextStep, in_sample: bool, t_path: str | None = None
) -> NextStep:
    """The "what next" once a temperature is applied: judge an in-sample T on
    held-out data; apply a held-out one (the cross-fitted preview, if any, is
    kept as it is)."""
    if in_sample:
        text = (
            "T was fitted on the data shown, so the after-scaling numbers flatter "
            "it: fit T on a validation split instead:"
        )
        return NextStep(text, step.command, step.then, step.preview)
    assert step.then is not None
    path = step.then.split(" --temperature ")[0].removeprefix("relcal report ")
    t_file = _quote(t_path) if t_path else "temperature.json"
    return NextStep(
        "T was fitted on other data; to write the scaled predictions:",
        f"relcal calibrate {path} --temperature {t_file} -o calibrated.npz",
        None,
        step.preview,
    )


def scaling_temperature(fit: Any, t_doc: dict[str, Any] | None) -> float:
    """The temperature of a report's scaling: the fitted one, or the file's."""
    return float(fit.temperature if t_doc is None else t_doc["temperature"])


def set_scaling(
    model: ModelReport,
    t: float,
    after: Results,
    *,
    fit: Any = None,
    t_doc: dict[str, Any] | None = None,
    t_path: str | None = None,
) -> None:
    """The model's before / after slot from the metrics ``after`` scaling by
    ``t``: fitted on the file itself (``fit``), or from a temperature file
    (``t_doc``, read from ``t_path``)."""
    from relcal import plots
    from relcal.metrics import POSITIVE_METRICS

    if t_doc is None:
        in_sample = True
        source = f"fitted on this file ({fit.status}, {fit.passes} passes)"
    else:
        fitted = t_doc.get("fitted_on", {})
        sha = fitted.get("sha256")
        in_sample = sha is not None and sha == model.input.get("sha256")
        where = Path(str(fitted.get("path") or "?")).name
        source = (
            f"from {Path(t_path).name if t_path else 'a temperature file'}, "
            f"fitted on {where} ({fitted.get('n_samples')} samples)"
        )
    label = f"after T = {t:.3f}" + (" (in-sample)" if in_sample else "")
    band = reliability_band(
        after, level=None if model.band is None else model.band.level
    )
    model.verdict_call = verdict_call(after)
    model.verdict = scaled_verdict(
        model.results,
        after,
        f"T = {t:.3f}, " + ("fitted on this file: in-sample" if in_sample else source),
    )
    if model.next_step is not None and model.next_step.command is not None:
        model.next_step = scaled_next_step(model.next_step, in_sample, t_path)
    model.scaling = Scaling(
        temperature=t,
        source=source,
        in_sample=in_sample,
        after=after,
        metrics=metric_rows(
            after, positive=any(r.key in POSITIVE_METRICS for r in model.metrics)
        ),
        figures=[
            Figure(
                f"{model.anchor}-scaling-compare",
                "Reliability curves before and after temperature scaling, on the same "
                "axes.",
                plots.compare_svg(
                    [model.results.table, after.table], ["before", label]
                ),
                how="How to read: the curve that runs closer to the dashed "
                "diagonal is the better calibrated one.",
            ),
            Figure(
                f"{model.anchor}-scaling-reliability",
                f"Reliability diagram {label}."
                + band_caption(
                    band,
                    bool(model.input.get("shape")) and len(model.input["shape"]) > 2,
                ),
                plots.reliability_svg(
                    after.table,
                    title=label,
                    band=None if band is None else (band.low, band.high),
                    outside=None if band is None else band.outside,
                    level=0.95 if band is None else band.level,
                ),
                how="How to read: as the diagram above; after scaling the dots "
                "should sit on the bars' tops.",
            ),
        ],
    )


# -- output --------------------------------------------------------------------


def report_to_dict(report: ReportData) -> dict[str, Any]:
    """Every number in the report (``relcal report --json``, format 1)."""
    from relcal.render import results_to_dict

    models = []
    for m in report.models:
        doc = results_to_dict(m.results, m.input)
        doc.pop("format")
        doc.pop("relcal_version")
        doc["kind"] = "relcal.report.model"
        models.append(
            {
                "name": m.name,
                "ensemble_of": m.ensemble_of,
                **doc,
                "classes_shown": [
                    {
                        "class": r.index,
                        "name": r.name,
                        "count": r.count,
                        "classwise_ece_term": r.ece,
                        "why": r.why,
                    }
                    for r in m.classes
                ],
                "next_step": None
                if m.next_step is None
                else {
                    "text": m.next_step.text,
                    "command": m.next_step.command,
                    "then": m.next_step.then,
                    "cross_fitted": None
                    if m.next_step.preview is None
                    else {
                        "k": m.next_step.preview.k,
                        "ece_before": m.next_step.preview.ece_before,
                        "ece_after": m.next_step.preview.ece_after,
                        "temperatures": list(m.next_step.preview.temperatures),
                        "n_rows": m.next_step.preview.n_rows,
                        "n_total": m.next_step.preview.n_total,
                    },
                },
                "temperature_scaling": None
                if m.scaling is None
                else {
                    "temperature": m.scaling.temperature,
                    "source": m.scaling.source,
                    "in_sample": m.scaling.in_sample,
                    "after": {r.key: r.value for r in m.scaling.metrics},
                },
                **figures_to_dict(m),
            }
        )
    return {
        "format": REPORT_FORMAT,
        "kind": "relcal.report",
        "relcal_version": report.version,
        "title": report.title,
        "created": report.created,
        "binning": {
            "n_bins": report.n_bins,
            "strategy": report.binning,
            "rule": report.bin_rule,
        },
        "verdict_rule": report.verdict_rule,
        "models": models,
    }


def _floats(a: Any) -> list[float | None]:
    """A float array as a JSON list (NaN and inf as null)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, float)]


def figures_to_dict(m: ModelReport) -> dict[str, Any]:
    """What the report's figures show of one model beyond results_to_dict's
    blocks: the verdict, the reliability diagram's consistency band and the
    bins outside it, the smooth diagram's curve and the CORP curve and band
    (the README's "Report JSON")."""
    from relcal.render import _clean

    band = None
    if m.band is not None:
        band = {
            "level": m.band.level,
            "method": "binomial: central interval of Binomial(n_b, conf_b) / n_b",
            "low": _floats(m.band.low),
            "high": _floats(m.band.high),
            "outside": [bool(v) for v in m.band.outside],
            "n_outside": int(m.band.outside.sum()),
        }
    smooth = None
    if m.smooth is not None:
        smooth = _clean(m.smooth.to_dict())
    corp = None
    if m.corp is not None:
        corp = _clean(m.corp.as_dict())
    return {
        "verdict": {"text": m.verdict, "call": m.verdict_call},
        "consistency_band": band,
        "smooth_diagram": smooth,
        "corp_diagram": corp,
    }


def templates_dir() -> Path:
    """``relcal/templates`` in an installed wheel, ``templates/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise FileNotFoundError("relcal's templates are missing from the installation")


def _environment() -> Any:
    """relcal's jinja2 environment: autoescape on, undefined names an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_shown,
    )
    env.filters["num"] = _num_filter
    env.globals["zip"] = zip
    return env


def _shown(value: Any) -> Any:
    """What a template prints: a plain string (a class or file name) with its
    control characters escaped as in the terminal (a NUL is not valid HTML);
    markup (``| safe``: the figures, the CSS) as it is."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return one_line(value)
    return value


def render_html(report: ReportData) -> str:
    """The report as one self-contained HTML page."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report, css=(templates_dir() / "report.css").read_text()
    )


def results_html(results: Results) -> str:
    """``Results._repr_html_``: the metrics, the bin table and the classes with
    the largest class-wise ECE terms, as one small HTML fragment (every string
    escaped by the template; no script, no external resource)."""
    from relcal.render import bins_to_list

    template = _environment().get_template("results.html.j2")
    return template.render(
        results=results,
        metrics=metric_rows(results),
        bins=bins_to_list(results.table),
        positive_bins=None
        if results.positive_table is None
        else bins_to_list(results.positive_table, positive=True),
        classes=select_classes(results, results.class_names, limit=6),
        binning=_BINNING_NAME[results.binning],
    )


def _num_filter(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if not np.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"
