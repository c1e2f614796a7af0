"""Calibration metrics: pure functions of numpy arrays.

Conventions (the README's "Conventions" table says the same)
------------------------------------------------------------
- **Top-label**: the confidence of a sample is its largest class probability
  and it is correct when that class (the first, on ties) is the label.
- **Bins**: ``n_bins`` (default 15) equal-width bins, or equal-mass bins with
  ``binning="mass"``; right-closed ``(lo, hi]`` with 0 in the first bin (see
  :mod:`relcal.binning`, the one rule used everywhere).
- **ECE** (L1) = sum_b (n_b / N) |acc_b - conf_b|; **RMS-CE** (L2) =
  sqrt(sum_b (n_b / N) (acc_b - conf_b)^2); **MCE** = max over non-empty bins of
  |acc_b - conf_b|.  Empty bins carry no weight.  Plug-in estimates, not
  debiased.
- **Class-wise ECE** = (1/C) sum_c sum_b (n_bc / N) |freq_bc - p_bc|, where bin
  b of class c holds the samples whose probability of class c falls in it
  (Kull et al. 2019; Nixon et al. 2019's SCE).  Always equal-width bins, all C
  classes averaged (a class absent from the labels still counts).
- **NLL**: mean of -log p_y in nats, from log-softmax of logits; for
  probabilities, p_y is clipped below at the dtype's epsilon (as
  scikit-learn's ``log_loss``).
- **Brier** = mean over samples of sum_c (p_c - [y == c])^2, in [0, 2] (twice
  scikit-learn's binary ``brier_score_loss``).
- **Positive-class curve** (two classes): per bin of P(class 1), the mean
  predicted probability and the observed frequency of class 1, as
  scikit-learn's ``calibration_curve``.
- **Positive-class ECE / RMS-CE / MCE** (two classes): the three norms above on
  that curve's bins, sum_b (n_b / N) |freq_b - mean P(1)_b| and so on: what
  torchmetrics' ``binary_calibration_error`` (``norm="l1"``, ``"l2"``,
  ``"max"``), netcal's ECE on 1-D input, uncertainty-calibration's
  ``get_calibration_error`` on 1-D input and relplot's ``smECE`` measure (the
  top-label ``ece`` of a binary problem bins max(p, 1 - p) against
  correctness instead).  None for C != 2.  Equal to torchmetrics' convention
  recomputed in float64 except for a P(class 1) exactly on an interior edge
  (torchmetrics' bins are ``[lo, hi)``) or exactly 1.0 (torchmetrics gives it
  an extra bin).
- All accumulations are float64, whatever the input dtype.

References
----------
Guo, Pleiss, Sun, Weinberger (2017), On Calibration of Modern Neural Networks.
Naeini, Cooper, Hauskrecht (2015), Obtaining Well Calibrated Probabilities
Using Bayesian Binning.  Nixon et al. (2019), Measuring Calibration in Deep
Learning.  Kull et al. (2019), Beyond temperature scaling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from relcal.binning import (
    BinTable,
    bin_table,
    calibration_errors,
    check_binning,
    check_n_bins,
    make_edges,
    uniform_edges,
)
from relcal.errors import InputError, RelcalError, ShapeError
from relcal.estimators import bias_corrected_ece, debiased_squared_error
from relcal.reduce import toplabel_scores
from relcal.summary import (
    ClasswiseBins,
    Plan,
    SampleValues,
    Summary,
    mass_summary,
    reduce_chunks,
    reduce_chunks_with_samples,
)
from relcal.validate import prepare

METRIC_NAMES = (
    "accuracy",
    "ece",
    "rms_ce",
    "mce",
    "classwise_ece",
    "nll",
    "brier",
    "positive_class_ece",
    "positive_class_rms_ce",
    "positive_class_mce",
)
# the positive-class metrics, and what each means (for messages)
POSITIVE_METRICS = ("positive_class_ece", "positive_class_rms_ce", "positive_class_mce")


@dataclass(frozen=True, repr=False)
class Results:
    """Every metric of one set of predictions, and the tables behind them.

    Metrics the input cannot give (NLL from top-label-only data, the
    positive-class errors of more than two classes) are None and listed in
    ``unavailable`` with the reason.  ``class_names`` are those of a loaded
    file (:func:`evaluate_predictions`), None from plain arrays.

    In a notebook: ``repr`` is a few lines of numbers, ``_repr_html_`` a small
    table of the metrics and the bins, and :meth:`to_dict` the document of
    ``relcal metrics --json``.
    """

    n: int
    n_classes: int
    kind: str
    n_bins: int
    binning: str
    accuracy: float
    mean_confidence: float
    ece: float
    rms_ce: float
    mce: float
    classwise_ece: float | None
    nll: float | None
    brier: float | None
    table: BinTable
    positive_table: BinTable | None = None
    classwise_per_class: np.ndarray | None = None
    classwise_bins: ClasswiseBins | None = None  # per-class tables (report)
    unavailable: dict[str, str] = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None
    positive_class_ece: float | None = None  # two classes only
    positive_class_rms_ce: float | None = None
    positive_class_mce: float | None = None
    # debiased errors of the top-label table (relcal.estimators)
    ece_debiased: float | None = None
    rms_ce_debiased: float | None = None
    sq_ce_debiased: float | None = None
    # bootstrap intervals (relcal.bootstrap.Interval) when asked for: metric ->
    # interval, at ``ci["level"]``; ``ci`` also holds n_replicates, seed, unit
    intervals: dict[str, Any] = field(default_factory=dict)
    ci: dict[str, Any] | None = None
    # the weighted distinct top-label confidences (relcal.values.Grouped) and,
    # for two classes, of P(class 1): what smooth ECE, CORP and the
    # risk-coverage curve are computed from, when asked for
    values: Any = None
    positive_values: Any = None
    # from the values (None without them): smooth ECE (Blasiok & Nakkiran) of
    # the top-label confidence, its bandwidth, and selective prediction
    smooth_ece: float | None = None
    smooth_sigma: float | None = None
    aurc: float | None = None
    e_aurc: float | None = None
    auroc: float | None = None
    selective: Any = None  # relcal.selective.SelectiveSummary
    # CORP decompositions of the event "top label correct" (relcal.corp):
    # {"brier": Decomposition, "log": Decomposition}
    corp: Any = None

    def metric(self, name: str) -> float | None:
        return getattr(self, name)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        from relcal.render import format_repr

        return format_repr(self)

    def _repr_html_(self) -> str:
        from relcal.report import results_html

        return results_html(self)

    def to_dict(self, predictions: Any = None) -> dict[str, Any]:
        """The document of ``relcal metrics --json`` (format 1) as a dict.

        Parameters
        ----------
        predictions : relcal.io.Predictions, optional
            The loaded file these results are of: the ``"input"`` block is
            then filled as the CLI fills it.  Without it (results of arrays)
            ``"input"`` has the same keys, every one None.

        Examples
        --------
        >>> d = evaluate([[2.0, 0.0], [0.0, 1.0]], [0, 0]).to_dict()
        >>> d["kind"], d["n_samples"], d["metrics"]["accuracy"], d["input"]["path"]
        ('relcal.metrics', 2, 0.5, None)
        """
        from relcal.render import array_source, results_to_dict, source_info

        if predictions is None:
            return results_to_dict(self, array_source())
        return results_to_dict(self, source_info(predictions, self))


def reduce_arrays(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
    classwise_bins: int | None = 15,
    brier: bool = True,
    nll: bool = True,
) -> SampleValues:
    """Validate and reduce in one call, keeping the per-sample values (the
    opt-in output of :func:`relcal.summary.reduce_chunks_with_samples`)."""
    s, y, k, c = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    edges = None if classwise_bins is None else uniform_edges(classwise_bins)
    plan = Plan(c, k, ignore_index, classwise_edges=edges, nll=nll, brier=brier)
    return reduce_chunks_with_samples([(s, y, 0)], plan)[1]


def summary_of_samples(
    samples: SampleValues, n_bins: int = 15, binning: str = "width"
) -> Summary:
    """The summary of per-sample values (no class-wise bins: they need every
    class's scores)."""
    conf, right = samples.confidence, samples.correct
    pos = None
    if samples.positive is not None:
        pos_edges = make_edges(samples.positive, n_bins, binning)
        pos = bin_table(samples.positive, samples.labels == 1, pos_edges)
    return Summary(
        n_classes=samples.n_classes,
        n=samples.n,
        n_correct=int(np.count_nonzero(right)),
        sum_confidence=float(np.sum(conf)),
        sum_nll=None if samples.nll is None else float(np.sum(samples.nll)),
        sum_brier=None if samples.brier is None else float(np.sum(samples.brier)),
        table=bin_table(conf, right, make_edges(conf, n_bins, binning)),
        positive=pos,
    )


def summarize(
    summary: Summary | SampleValues,
    *,
    n_bins: int = 15,
    binning: str = "width",
    kind: str = "logits",
    unavailable: dict[str, str] | None = None,
    class_names: Any = None,
    ci: float = 0.95,
    corp: bool = False,
    sample_units: bool = True,
) -> Results:
    """All metrics from a summary (the kernel behind :func:`evaluate`): pure
    functions of its sums.  Per-sample values are summarised first.  When
    the summary holds the bootstrap's replicate sums, the results hold the
    intervals of the metrics at level ``ci`` (and of the unbinned metrics
    when ``sample_units``: each sample its own resampling unit, not the
    pixels of segmentation maps); ``corp``: the CORP decompositions too,
    when it holds the values' histogram."""
    n_bins = check_n_bins(n_bins)
    check_binning(binning)
    if isinstance(summary, SampleValues):
        summary = summary_of_samples(summary, n_bins, binning)
    n = summary.n
    if n == 0:
        raise ShapeError("no samples left to evaluate")
    table = summary.table
    if table is None or len(table.edges) != n_bins + 1:
        raise ValueError(f"the summary has no top-label table of {n_bins} bins")
    nll = _mean_nll(summary)
    ece, rms, mce = calibration_errors(table)
    cw = cw_per_class = None
    if summary.classwise is not None:
        cw_per_class = classwise_errors(summary)
        cw = float(np.mean(cw_per_class))
    missing = dict(unavailable or {})
    pos_errors: tuple[float | None, ...] = (None, None, None)
    if summary.positive is not None:
        pos_errors = calibration_errors(summary.positive)
    elif summary.n_classes != 2:
        why = f"needs two classes; the input has {summary.n_classes}"
        missing.update({key: why for key in POSITIVE_METRICS})
    sq_db = debiased_squared_error(table)
    extra: dict[str, Any] = {
        "ece_debiased": bias_corrected_ece(table),
        "sq_ce_debiased": sq_db,
        "rms_ce_debiased": math.sqrt(max(sq_db, 0.0)),
    }
    extra.update(value_metrics(summary, corp=corp))
    if "values" in extra and "selective" not in extra:
        why = "needs at least two samples"
        missing.update({key: why for key in ("aurc", "e_aurc", "auroc")})
    results = Results(
        n=n,
        n_classes=summary.n_classes,
        kind=kind,
        n_bins=n_bins,
        binning=binning,
        accuracy=summary.n_correct / n,
        mean_confidence=summary.sum_confidence / n,
        ece=ece,
        rms_ce=rms,
        mce=mce,
        classwise_ece=cw,
        nll=nll,
        brier=None if summary.sum_brier is None else summary.sum_brier / n,
        table=table,
        positive_table=summary.positive,
        classwise_per_class=cw_per_class,
        classwise_bins=summary.classwise,
        unavailable=missing,
        class_names=None if class_names is None else tuple(map(str, class_names)),
        positive_class_ece=pos_errors[0],
        positive_class_rms_ce=pos_errors[1],
        positive_class_mce=pos_errors[2],
        **extra,
    )
    if summary.replicates:
        results = with_intervals(results, summary, ci, sample_units=sample_units)
    return results


def value_metrics(summary: Summary, *, corp: bool = False) -> dict[str, Any]:
    """The metrics of the forecast values' histograms, when the summary has
    them (:mod:`relcal.values`): smooth ECE (:mod:`relcal.smooth`) and
    selective prediction (:mod:`relcal.selective`) of the top-label
    confidence, and the histograms themselves."""
    probes = dict(summary.probes)
    out: dict[str, Any] = {}
    top = probes.get("confidence values")
    if top is None:
        return out
    from relcal import selective, smooth

    g = top.grouped()
    out["values"] = g
    sm = smooth.smece_and_sigma(g.value, g.count, g.sum_y)
    out["smooth_ece"], out["smooth_sigma"] = sm.smece, sm.sigma
    if float(g.count.sum()) >= 2:  # AURC is not defined for one sample
        sel = selective.selective_summary(g.value, g.count, g.sum_y)
        out["selective"] = sel
        out["aurc"], out["e_aurc"], out["auroc"] = sel.aurc, sel.e_aurc, sel.auroc
    if corp:  # scipy's PAV: 0.3 s to import, so only when asked for
        from relcal import corp as _corp

        fit = _corp.pav(g.value, g.count, g.sum_y)
        out["corp"] = {
            score: _corp.score_decomposition(
                g.value, g.count, g.sum_y, score=score, recalibrated=fit
            )
            for score in ("brier", "log")
        }
    if "positive values" in probes:
        out["positive_values"] = probes["positive values"].grouped()
    return out


INTERVAL_METRICS = (
    "accuracy",
    "mean_confidence",
    "ece",
    "rms_ce",
    "mce",
    "nll",
    "brier",
    "ece_debiased",
    "sq_ce_debiased",
)


def with_intervals(
    results: Results, summary: Summary, level: float, *, sample_units: bool = True
) -> Results:
    """``results`` with the bootstrap intervals of its metrics at ``level``,
    from the replicate sums of ``summary`` (see :mod:`relcal.bootstrap`: the
    binned plug-in errors get the bias-corrected interval, the means and the
    debiased errors the plain percentile interval), and of the unbinned
    metrics from the values' histogram when ``sample_units``
    (:func:`relcal.bootstrap.unbinned_replicates`)."""
    from relcal.bootstrap import BINNED, POSITIVE, interval, replicate_metrics

    reps = dict(summary.replicates)
    out: dict[str, Any] = {}
    top = replicate_metrics(reps["top"])
    for name in INTERVAL_METRICS:
        point = results.metric(name)
        if point is not None and name in top:
            out[name] = interval(
                point, top[name], confidence=level, debias=name in BINNED
            )
    # mean confidence - accuracy: over- (> 0) or under-confident (< 0) overall
    gap = results.mean_confidence - results.accuracy
    out["gap"] = interval(
        gap, top["mean_confidence"] - top["accuracy"], confidence=level, debias=False
    )
    sq = out.get("sq_ce_debiased")
    if sq is not None:
        out["rms_ce_debiased"] = replace(
            sq,
            point=results.rms_ce_debiased,
            estimate=results.rms_ce_debiased,
            low=math.sqrt(max(sq.low, 0.0)),
            high=math.sqrt(max(sq.high, 0.0)),
            bias=0.0,
        )
    if "positive" in reps:
        pos = replicate_metrics(reps["positive"])
        for name, short in POSITIVE.items():
            point = results.metric(name)
            if point is not None:
                out[name] = interval(point, pos[short], confidence=level, debias=True)
    boot = reps["top"]
    ci = {"level": level, "n_replicates": boot.n_replicates, "seed": boot.seed}
    cw = None if summary.classwise is None else summary.classwise.replicates
    if cw is not None and results.classwise_ece is not None:
        # the same weights as the first replicates of the top-label sums
        eces = cw.eces(boot.count.sum(axis=1))
        out["classwise_ece"] = interval(
            results.classwise_ece, eces, confidence=level, debias=True
        )
        ci["n_replicates_classwise"] = cw.n_replicates
    if results.values is not None and results.smooth_sigma:
        from relcal import bootstrap as bs

        n_unbinned = min(bs.UNBINNED_REPLICATES, boot.n_replicates)
        reps_u = None
        if sample_units:
            reps_u = bs.unbinned_replicates(
                results.values,
                n_replicates=n_unbinned,
                seed=boot.seed,
                sigma=results.smooth_sigma,
                corp=results.corp is not None,
            )
        elif "grid" in reps:  # whole images as the units
            reps_u = bs.grid_replicates(
                reps["grid"], sigma=results.smooth_sigma, corp=results.corp is not None
            )
        if reps_u is not None:
            out.update(_unbinned_intervals(results, reps_u, level))
            ci["n_replicates_unbinned"] = n_unbinned
            ci["unbinned_units"] = "samples" if sample_units else "images"
    return replace(results, intervals=out, ci=ci)


def _unbinned_intervals(
    results: Results, reps: dict[str, np.ndarray], level: float
) -> dict[str, Any]:
    """The unbinned metrics' intervals: the coarse replicates' spread, moved
    onto the full estimate (``reps["point"]``: the coarse histogram's own)."""
    from relcal.bootstrap import interval

    coarse = dict(zip(list(reps)[:-1], reps["point"], strict=True))
    out = {}
    for name, values in reps.items():
        if name == "point":
            continue
        point = _unbinned_point(results, name)
        if point is not None and math.isfinite(coarse[name]) and math.isfinite(point):
            shifted = values + (point - coarse[name])
            out[name] = interval(point, shifted, confidence=level, debias=False)
    return out


def _unbinned_point(results: Results, name: str) -> float | None:
    """An unbinned metric's value: a field of the results, or a part of a
    CORP decomposition ("corp_brier_mcb": ``results.corp["brier"]``'s
    miscalibration)."""
    if not name.startswith("corp_"):
        return results.metric(name)
    from relcal.bootstrap import CORP_PARTS

    _, score, short = name.split("_")
    part = {v: k for k, v in CORP_PARTS.items()}[short]
    return float(getattr(results.corp[score], part))


def _mean_nll(summary: Summary) -> float | None:
    if summary.sum_nll is None:
        return None
    nll = summary.sum_nll / summary.n
    if not math.isfinite(nll):
        raise InputError(
            "scores: the mean NLL overflows float64 (logits near the float range,"
            " e.g. 1e308)"
        )
    return nll


def classwise_errors(summary: Summary) -> np.ndarray:
    """Per-class ECE, shape (n_classes,): sum_b (n_bc / N) |freq_bc - p_bc|."""
    cwb = summary.classwise
    if cwb is None:
        raise InputError("class-wise ECE needs every class's scores")
    return np.abs(cwb.sum_p - cwb.sum_y).sum(axis=1) / summary.n


def plan_for(
    kind: str,
    n_classes: int,
    ignore_index: int | None = None,
    *,
    n_bins: int = 15,
    classwise: bool = True,
    nll: bool = True,
    brier: bool = True,
    values: bool = False,
) -> Plan:
    """The plan of every metric with ``n_bins`` equal-width bins (equal-mass
    edges are found by :func:`summarize_chunks`); ``values``: also the
    histograms of the forecast values (:mod:`relcal.values`) behind smooth
    ECE, CORP and selective prediction."""
    edges = uniform_edges(check_n_bins(n_bins))
    toplabel = kind == "toplabel"
    probes: tuple[tuple[str, Any], ...] = ()
    if values:
        from relcal.values import ValuesProbe

        probes = (("confidence values", ValuesProbe()),)
        if n_classes == 2 and not toplabel:
            probes += (("positive values", ValuesProbe()),)
    return Plan(
        n_classes,
        kind,
        ignore_index,
        toplabel_edges=edges,
        classwise_edges=edges if classwise and not toplabel else None,
        positive_edges=edges if n_classes == 2 and not toplabel else None,
        nll=nll and not toplabel,
        brier=brier and not toplabel,
        probes=probes,
    )


def summarize_chunks(
    source: Callable[[], Iterable[tuple[np.ndarray, np.ndarray, int]]],
    plan: Plan,
    *,
    n_bins: int = 15,
    binning: str = "width",
    jobs: int | None = None,
) -> Summary:
    """The summary of the chunks ``source()`` yields, with equal-width bins (one
    pass) or equal-mass bins (``binning="mass"``: more passes over
    ``source()``, which must yield the same chunks each time)."""
    return summarize_with(
        lambda p: reduce_chunks(source(), p, jobs=jobs),
        plan,
        n_bins=n_bins,
        binning=binning,
    )


def summarize_with(
    reducer: Callable[[Plan], Summary],
    plan: Plan,
    *,
    n_bins: int = 15,
    binning: str = "width",
) -> Summary:
    """:func:`summarize_chunks` with the passes made by ``reducer(plan)``: the
    summary of every chunk of a re-readable source under ``plan`` (a Dask
    cluster's, :mod:`relcal.dask`)."""
    if check_binning(binning) == "width":
        return reducer(plan)
    names = ["confidence"]
    if plan.positive_edges is not None:
        names.append("positive")
    boot = plan.bootstrap
    summary = mass_summary(
        None, replace(plan, bootstrap=None), n_bins, names, reducer=reducer
    )
    if boot is None:
        return summary
    # one more pass with the equal-mass edges known: the replicate sums
    assert summary.table is not None
    binned = plan.positive_edges is not None and summary.positive is not None
    sums = reducer(
        replace(
            plan,
            toplabel_edges=summary.table.edges,
            positive_edges=summary.positive.edges if binned else None,  # type: ignore[union-attr]
            classwise_edges=None,
            probes=(),
        )
    )
    return replace(summary, replicates=sums.replicates)


def evaluate(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    ignore_index: int | None = None,
    ci: float | None = None,
    n_replicates: int = 1000,
    seed: int = 0,
    values: bool | None = None,
) -> Results:
    """Every metric at once, from one pass over the scores.

    Parameters
    ----------
    scores : array-like of shape (n_samples,), (n_samples, n_classes) or \
(n_samples, n_classes, *spatial)
        Logits or probabilities (class axis 1).  A 1-D array is the score of
        class 1 of a binary problem.
    labels : array-like of shape (n_samples,) or (n_samples, *spatial)
        Class indices (or one-hot rows for 2-D scores).
    kind : {"auto", "logits", "probs"}, default="auto"
        What the scores are; "auto" detects probabilities (non-negative rows
        summing to 1).
    n_bins : int, default=15
    binning : {"width", "mass"}, default="width"
    ignore_index : int, optional
        Label value to drop (e.g. 255 in segmentation maps).
    ci : float, optional
        A level in [0.5, 1) (e.g. 0.95): bootstrap intervals of the metrics
        in ``Results.intervals`` (:mod:`relcal.bootstrap`: a Poisson
        bootstrap of the leading-axis rows, so whole images for segmentation).
    n_replicates : int, default=1000
        Bootstrap replicates (with ``ci``).
    seed : int, default=0
        The bootstrap's seed (with ``ci``): the intervals depend on it and
        on nothing else (not on chunking or jobs).
    values : bool, optional
        Keep the histogram of the forecast values (``Results.values``) and
        compute what needs it: smooth ECE, AURC, E-AURC, AUROC (the
        "unbinned" metrics).  Default (None): for inputs of at most
        ``relcal.values.AUTO_MAX`` (4,194,304) samples.

    Returns
    -------
    Results

    Examples
    --------
    >>> r = evaluate(np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), [0, 0, 0])
    >>> round(r.accuracy, 4), r.n_classes, r.kind
    (0.6667, 2, 'logits')
    """
    level = check_level(ci)
    images = np.ndim(labels) > 1 and np.ndim(scores) > 2
    boot = _bootstrap_plan(level, n_replicates, seed, n_bins, images=images)
    summary, k = _summary_and_kind(
        scores,
        labels,
        kind,
        ignore_index,
        n_bins=n_bins,
        binning=binning,
        bootstrap=boot,
        values=values,
    )
    return summarize(
        summary,
        n_bins=n_bins,
        binning=binning,
        kind=k,
        ci=level or 0.95,
        sample_units=not images,
    )


def check_level(level: object) -> float | None:
    """A confidence level in [0.5, 1) as a float (None stays None)."""
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise InputError(f"ci must be a number in [0.5, 1). Got {level!r}")
    if not 0.5 <= level < 1.0:
        raise InputError(f"ci must be in [0.5, 1). Got {level!r}")
    return float(level)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer. Got {seed!r}")
    return int(seed)


def summarize_arrays(
    scores: np.ndarray,
    labels: np.ndarray,
    plan: Plan,
    *,
    n_bins: int = 15,
    binning: str = "width",
) -> Summary:
    """:func:`summarize_chunks` of validated in-memory arrays: one chunk, cut
    into blocks on the thread pool."""
    return summarize_chunks(
        lambda: [(scores, labels, 0)], plan, n_bins=n_bins, binning=binning
    )


def _arrays_summary(
    scores: object, labels: object, kind: str, ignore_index: int | None, **how: Any
) -> Summary:
    """Validate arrays and summarise them with only what is asked for (``how``:
    ``n_bins``, ``binning`` and :func:`plan_for`'s switches)."""
    return _summary_and_kind(scores, labels, kind, ignore_index, **how)[0]


def _summary_and_kind(
    scores: object,
    labels: object,
    kind: str,
    ignore_index: int | None,
    *,
    n_bins: int = 15,
    binning: str = "width",
    bootstrap: Any = None,
    **asked: bool,
) -> tuple[Summary, str]:
    """:func:`_arrays_summary` and the kind of the scores.  Dask arrays (or
    series) are summarised on their scheduler's workers (:mod:`relcal.dask`,
    imported only then)."""
    if _is_dask(scores) or _is_dask(labels):
        from relcal.dask import summarize_arrays as on_dask

        if "values" in asked:
            from relcal.values import wanted

            size = getattr(labels, "size", None)
            known = isinstance(size, int) or isinstance(size, np.integer)
            asked["values"] = wanted(asked["values"], int(size) if known else None)

        return on_dask(
            scores,
            labels,
            kind=kind,
            ignore_index=ignore_index,
            n_bins=n_bins,
            binning=binning,
            bootstrap=bootstrap,
            **asked,
        )
    s, y, k, c = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    if "values" in asked:
        from relcal.values import wanted

        asked["values"] = wanted(asked["values"], int(y.size))
    plan = plan_for(k, c, ignore_index, n_bins=n_bins, **asked)
    plan = replace(plan, bootstrap=bootstrap)
    return summarize_arrays(s, y, plan, n_bins=n_bins, binning=binning), k


def _is_dask(x: object) -> bool:
    """A Dask collection, told without importing dask."""
    return type(x).__module__.startswith("dask.")


TOP_ONLY = {"classwise": False, "nll": False, "brier": False}


def reliability_table(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    ignore_index: int | None = None,
) -> BinTable:
    """The binned correctness table of top-label confidence.

    Per bin: edges, count, correct, incorrect, mean confidence, accuracy (the
    correctness ratio) and gap = mean confidence - accuracy.

    Examples
    --------
    >>> t = reliability_table([[0.9, 0.1], [0.8, 0.2]], [0, 1], n_bins=5)
    >>> t.count.tolist(), t.correct.tolist()
    ([0, 0, 0, 1, 1], [0.0, 0.0, 0.0, 0.0, 1.0])
    """
    summary = _arrays_summary(
        scores, labels, kind, ignore_index, n_bins=n_bins, binning=binning, **TOP_ONLY
    )
    assert summary.table is not None
    return summary.table


def _errors(
    scores: object,
    labels: object,
    kind: str,
    n_bins: int,
    binning: str,
    ignore_index: int | None,
) -> tuple[float, float, float]:
    table = reliability_table(
        scores,
        labels,
        kind=kind,
        n_bins=n_bins,
        binning=binning,
        ignore_index=ignore_index,
    )
    return calibration_errors(table)


def ece(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    ignore_index: int | None = None,
) -> float:
    """Top-label expected calibration error, L1: sum_b (n_b/N) |acc_b - conf_b|.

    Examples
    --------
    >>> round(ece([[0.9, 0.1], [0.8, 0.2]], [0, 1]), 4)
    0.45
    """
    return _errors(scores, labels, kind, n_bins, binning, ignore_index)[0]


def rms_calibration_error(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    ignore_index: int | None = None,
) -> float:
    """Top-label RMS calibration error, L2: sqrt(sum_b (n_b/N) (acc_b - conf_b)^2)."""
    return _errors(scores, labels, kind, n_bins, binning, ignore_index)[1]


def mce(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    ignore_index: int | None = None,
) -> float:
    """Top-label maximum calibration error.

    The largest ``|acc_b - conf_b|`` over the non-empty bins.
    """
    return _errors(scores, labels, kind, n_bins, binning, ignore_index)[2]


def accuracy(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> float:
    """Fraction of samples whose first maximal score is the label."""
    summary = _arrays_summary(scores, labels, kind, ignore_index, **TOP_ONLY)
    return summary.n_correct / summary.n


def classwise_ece(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    ignore_index: int | None = None,
) -> float:
    """Class-wise ECE (equal-width bins), the mean over classes of each class's ECE."""
    summary = _arrays_summary(
        scores, labels, kind, ignore_index, n_bins=n_bins, nll=False, brier=False
    )
    return float(np.mean(classwise_errors(summary)))


def nll(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> float:
    """Mean negative log-likelihood in nats (log-softmax of logits).

    Examples
    --------
    >>> round(nll([[0.0, 0.0]], [1], kind="logits"), 6)  # log 2
    0.693147
    """
    summary = _arrays_summary(
        scores, labels, kind, ignore_index, classwise=False, brier=False
    )
    assert summary.sum_nll is not None
    return summary.sum_nll / summary.n


def brier_score(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> float:
    """Mean over samples of sum_c (p_c - [y == c])^2, in [0, 2]."""
    summary = _arrays_summary(
        scores, labels, kind, ignore_index, classwise=False, nll=False
    )
    assert summary.sum_brier is not None
    return summary.sum_brier / summary.n


def positive_class_table(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
) -> BinTable:
    """Binary problems: per bin of P(class 1), mean P(class 1) and frequency of class 1.

    ``mean_conf`` and ``accuracy`` of the non-empty bins equal scikit-learn's
    ``calibration_curve(labels, p1, n_bins=n_bins)`` ``prob_pred`` and
    ``prob_true``.
    """
    summary = _arrays_summary(
        scores, labels, kind, None, n_bins=n_bins, binning=binning, **TOP_ONLY
    )
    if summary.positive is None:
        raise InputError(
            "the positive-class curve needs two classes."
            f" Got {summary.n_classes} instead"
        )
    return summary.positive


NORMS = ("l1", "l2", "max")


def positive_class_ece(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    norm: str = "l1",
) -> float:
    """Binary problems: calibration error of P(class 1) against the frequency of 1.

    Over the bins of P(class 1) (:func:`positive_class_table`; right-closed, 0
    in the first bin, 1.0 in the last), with freq_b the fraction of class 1
    and p_b the mean P(class 1) of bin b:

    - ``norm="l1"``: ECE = sum_b (n_b / N) |freq_b - p_b|
      (``Results.positive_class_ece``);
    - ``norm="l2"``: RMS-CE = sqrt(sum_b (n_b / N) (freq_b - p_b)^2)
      (``Results.positive_class_rms_ce``);
    - ``norm="max"``: MCE = max over non-empty bins of |freq_b - p_b|
      (``Results.positive_class_mce``).

    This is torchmetrics' ``binary_calibration_error(preds, target, norm=...)``,
    netcal's ``ECE`` on 1-D input, relplot's ``binnedECE`` and
    uncertainty-calibration's ``get_ece`` of P(class 1); relcal's :func:`ece` of
    a binary problem is top-label instead (max(p, 1 - p) against correctness).
    Equal to torchmetrics' convention computed in float64 unless some P(class
    1) is exactly on an interior edge (torchmetrics bins ``[lo, hi)``) or
    exactly 1.0 (torchmetrics gives it an extra bin).

    Parameters
    ----------
    scores : array-like of shape (n_samples,) or (n_samples, 2)
        P(class 1) or its logit, or the two classes' probabilities or logits.
    labels : array-like of shape (n_samples,)
        0 or 1.
    kind : {"auto", "logits", "probs"}, default="auto"
    n_bins : int, default=15
    binning : {"width", "mass"}, default="width"
    norm : {"l1", "l2", "max"}, default="l1"

    Examples
    --------
    torchmetrics' docstring example, with its numbers:

    >>> p1, y = [0.25, 0.25, 0.55, 0.75, 0.75], [0, 0, 1, 1, 1]
    >>> [round(positive_class_ece(p1, y, n_bins=2, norm=m), 4) for m in NORMS]
    [0.29, 0.2918, 0.3167]
    """
    if norm not in NORMS:
        raise InputError(
            f"norm must be one of {', '.join(NORMS)}. Got {norm!r} instead"
        )
    table = positive_class_table(
        scores, labels, kind=kind, n_bins=n_bins, binning=binning
    )
    return calibration_errors(table)[NORMS.index(norm)]


TOPLABEL_UNAVAILABLE = {
    "classwise_ece": (
        "needs every class's scores; a top-label file has only the top one"
    ),
    "nll": (
        "needs the probability of the true class; a top-label file has only the top one"
    ),
    "brier": "needs every class's scores; a top-label file has only the top one",
    **{
        key: "needs P(class 1); a top-label file has only the top class's score"
        for key in POSITIVE_METRICS
    },
}


def evaluate_predictions(
    predictions: Any,
    *,
    n_bins: int = 15,
    binning: str = "width",
    ci: float | None = None,
    n_replicates: int = 1000,
    seed: int = 0,
    values: bool | None = None,
    corp: bool = False,
) -> Results:
    """Every metric of loaded predictions (:class:`relcal.io.Predictions`).

    Top-label files give accuracy, ECE, RMS-CE, MCE and the bin table; the
    metrics they cannot give are None and listed in ``Results.unavailable``.
    ``ci``, ``n_replicates``, ``seed`` and ``values`` as :func:`evaluate`;
    ``corp``: with the values, the CORP decompositions.
    """
    try:
        shape = getattr(predictions, "label_shape", None)
        images = len(np.shape(predictions.labels) if shape is None else shape) > 1
        boot = _bootstrap_plan(ci, n_replicates, seed, n_bins, images=images)
        return _evaluate_predictions(
            predictions,
            n_bins=n_bins,
            binning=binning,
            boot=boot,
            ci=ci or 0.95,
            values=values,
            corp=corp,
        )
    except RelcalError as err:
        # Non-finite scores and the like are found while reducing; the user
        # needs to know which file held them.
        source = getattr(predictions, "source", None)
        raise (err.with_source(source) if source else err) from None


def _evaluate_predictions(
    predictions: Any,
    *,
    n_bins: int,
    binning: str,
    boot: Any = None,
    ci: float = 0.95,
    values: bool | None = None,
    corp: bool = False,
) -> Results:
    # the metrics alone: no per-sample values (as :func:`evaluate`)
    plan = replace(_predictions_plan(predictions, n_bins, values), bootstrap=boot)
    summary = summarize_chunks(
        lambda: [_predictions_chunk(predictions)], plan, n_bins=n_bins, binning=binning
    )
    return _results_of(predictions, summary, n_bins, binning, ci=ci, corp=corp)


def _bootstrap_plan(
    ci: float | None, n_replicates: int, seed: int, n_bins: int, *, images: bool = False
) -> Any:
    """The :class:`relcal.summary.BootstrapPlan` of a level ``ci`` (None:
    none); ``images``: the units are segmentation images."""
    if check_level(ci) is None:
        return None
    from relcal.bootstrap import check_replicates
    from relcal.summary import BootstrapPlan

    n_rep = check_replicates(n_replicates, n_bins=check_n_bins(n_bins))
    return BootstrapPlan(n_rep, _check_seed(seed), images=images)


def reduce_predictions(
    predictions: Any, *, n_bins: int = 15, binning: str = "width"
) -> tuple[SampleValues, Results]:
    """The per-sample values of loaded predictions and every metric: what
    :func:`evaluate_predictions` computes, with the per-sample values kept
    (the bootstrap of ``relcal check`` resamples them)."""
    try:
        return _reduce_predictions(predictions, n_bins=n_bins, binning=binning)
    except RelcalError as err:
        source = getattr(predictions, "source", None)
        raise (err.with_source(source) if source else err) from None


def _reduce_predictions(
    predictions: Any, *, n_bins: int, binning: str
) -> tuple[SampleValues, Results]:
    plan = _predictions_plan(predictions, n_bins)
    chunk = _predictions_chunk(predictions)
    summary, samples = reduce_chunks_with_samples([chunk], plan)
    if binning != "width":
        summary = summarize_chunks(
            lambda: [chunk], plan, n_bins=n_bins, binning=binning
        )
    return samples, _results_of(predictions, summary, n_bins, binning)


def _predictions_plan(
    predictions: Any, n_bins: int, values: bool | None = None
) -> Plan:
    from relcal.values import wanted

    check_n_bins(n_bins)
    return plan_for(
        predictions.kind,
        predictions.n_classes,
        getattr(predictions, "ignore_index", None),
        n_bins=n_bins,
        values=wanted(values, int(np.asarray(predictions.labels).size)),
    )


def _predictions_chunk(predictions: Any) -> tuple[np.ndarray, np.ndarray, int]:
    if predictions.kind == "toplabel":
        scores = toplabel_scores(predictions.confidence, predictions.predicted)
        return scores, np.asarray(predictions.labels, dtype=np.int64), 0
    return predictions.scores, predictions.labels, 0


def _results_of(
    predictions: Any,
    summary: Summary,
    n_bins: int,
    binning: str,
    *,
    ci: float = 0.95,
    corp: bool = False,
    sample_units: bool | None = None,
) -> Results:
    top = predictions.kind == "toplabel"
    if sample_units is None:
        shape = getattr(predictions, "label_shape", None)
        if shape is None:
            shape = np.shape(predictions.labels)
        sample_units = len(shape) <= 1
    return summarize(
        summary,
        n_bins=n_bins,
        binning=binning,
        kind=predictions.kind,
        unavailable=TOPLABEL_UNAVAILABLE if top else None,
        class_names=predictions.class_names,
        ci=ci,
        corp=corp,
        sample_units=sample_units,
    )


def evaluate_stream(
    stream: Any,
    *,
    n_bins: int = 15,
    binning: str = "width",
    rows: int | None = None,
    jobs: int | None = None,
) -> Results:
    """Every metric of a :class:`relcal.stream.Stream`, chunk by chunk in
    bounded memory: the same summaries, merged in the same order, as
    :func:`evaluate_predictions` of the loaded file (equal to float64
    rounding; equal-mass bins read the stream twice).

    ``rows``: leading-axis rows a chunk (default: the stream's); ``jobs``:
    worker threads (default :func:`relcal.reduce.default_threads`).
    """
    meta = stream.meta
    n_bins = check_n_bins(n_bins)
    try:
        plan = plan_for(meta.kind, meta.n_classes, meta.ignore_index, n_bins=n_bins)
        summary = summarize_chunks(
            lambda: stream.chunks(rows, reuse=True),
            plan,
            n_bins=n_bins,
            binning=binning,
            jobs=jobs,
        )
        return summarize(
            summary,
            n_bins=n_bins,
            binning=binning,
            kind=meta.kind,
            class_names=meta.class_names,
        )
    except RelcalError as err:
        raise err.with_source(meta.source) from None
