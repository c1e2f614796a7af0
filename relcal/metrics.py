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
from dataclasses import dataclass, field
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
from relcal.reduce import ClasswiseBins, Reduced, reduce_scores, reduce_toplabel
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
) -> Reduced:
    """Validate and reduce in one call (see :func:`relcal.reduce.reduce_scores`)."""
    s, y, k, c = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    edges = None if classwise_bins is None else uniform_edges(classwise_bins)
    return reduce_scores(
        s,
        y,
        kind=k,
        n_classes=c,
        ignore_index=ignore_index,
        classwise_edges=edges,
        brier=brier,
        nll=nll,
    )


def summarize(
    reduced: Reduced,
    *,
    n_bins: int = 15,
    binning: str = "width",
    kind: str = "logits",
    unavailable: dict[str, str] | None = None,
    class_names: Any = None,
) -> Results:
    """All metrics from a reduction (the kernel behind :func:`evaluate`)."""
    n_bins = check_n_bins(n_bins)
    check_binning(binning)
    if reduced.n == 0:
        raise ShapeError("no samples left to evaluate")
    conf = reduced.confidence
    correct = reduced.correct
    tot = reduced.totals
    if conf is None or correct is None:  # sums only (evaluate's own pass)
        assert tot is not None and reduced.table is not None
        if binning != "width" or len(reduced.table.edges) != n_bins + 1:
            raise ValueError("a reduction without per-sample arrays has one binning")
        table = reduced.table
        accuracy = tot.n_correct / tot.n
        mean_conf = tot.sum_confidence / tot.n
        nll = None if tot.sum_nll is None else tot.sum_nll / tot.n
        brier = None if tot.sum_brier is None else tot.sum_brier / tot.n
    else:
        edges = make_edges(conf, n_bins, binning)
        if reduced.table is not None and np.array_equal(reduced.table.edges, edges):
            table = reduced.table  # accumulated in the pass itself
        else:
            table = bin_table(conf, correct, edges)
        accuracy = float(np.mean(correct))
        mean_conf = float(np.mean(conf))
        with np.errstate(over="ignore"):  # checked below
            nll = None if reduced.nll is None else float(np.mean(reduced.nll))
        brier = None if reduced.brier is None else float(np.mean(reduced.brier))
    if nll is not None and not math.isfinite(nll):
        raise InputError(
            "scores: the mean NLL overflows float64 (logits near the float range,"
            " e.g. 1e308)"
        )
    ece, rms, mce = calibration_errors(table)
    cw = cw_per_class = None
    if reduced.classwise is not None:
        cw_per_class = classwise_errors(reduced)
        cw = float(np.mean(cw_per_class))
    positive_table = None
    if reduced.positive is not None:
        pos = reduced.positive
        pos_edges = make_edges(pos, n_bins, binning)
        cwb = reduced.classwise
        if cwb is not None and np.array_equal(cwb.edges, pos_edges):
            positive_table = cwb.table(1)  # class 1's class-wise bins
        else:
            assert reduced.labels is not None
            positive_table = bin_table(pos, reduced.labels == 1, pos_edges)
    missing = dict(unavailable or {})
    pos_errors: tuple[float | None, ...] = (None, None, None)
    if positive_table is not None:
        pos_errors = calibration_errors(positive_table)
    elif reduced.n_classes != 2:
        why = f"needs two classes; the input has {reduced.n_classes}"
        missing.update({key: why for key in POSITIVE_METRICS})
    return Results(
        n=reduced.n,
        n_classes=reduced.n_classes,
        kind=kind,
        n_bins=n_bins,
        binning=binning,
        accuracy=accuracy,
        mean_confidence=mean_conf,
        ece=ece,
        rms_ce=rms,
        mce=mce,
        classwise_ece=cw,
        nll=nll,
        brier=brier,
        table=table,
        positive_table=positive_table,
        classwise_per_class=cw_per_class,
        classwise_bins=reduced.classwise,
        unavailable=missing,
        class_names=None if class_names is None else tuple(map(str, class_names)),
        positive_class_ece=pos_errors[0],
        positive_class_rms_ce=pos_errors[1],
        positive_class_mce=pos_errors[2],
    )


def classwise_errors(reduced: Reduced) -> np.ndarray:
    """Per-class ECE, shape (n_classes,): sum_b (n_bc / N) |freq_bc - p_bc|."""
    cwb = reduced.classwise
    if cwb is None:
        raise InputError("class-wise ECE needs every class's scores")
    return np.abs(cwb.sum_p - cwb.sum_y).sum(axis=1) / reduced.n


def evaluate(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    binning: str = "width",
    ignore_index: int | None = None,
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

    Returns
    -------
    Results

    Examples
    --------
    >>> r = evaluate(np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), [0, 0, 0])
    >>> round(r.accuracy, 4), r.n_classes, r.kind
    (0.6667, 2, 'logits')
    """
    s, y, k, c = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
    edges = uniform_edges(check_n_bins(n_bins))
    width = check_binning(binning) == "width"
    red = reduce_scores(
        s,
        y,
        kind=k,
        n_classes=c,
        ignore_index=ignore_index,
        classwise_edges=edges,
        toplabel_edges=edges if width else None,
        per_sample=not width,  # the bin sums and totals are all it needs
    )
    return summarize(red, n_bins=n_bins, binning=binning, kind=k)


def _toplabel(
    scores: object,
    labels: object,
    kind: str,
    ignore_index: int | None,
    *,
    nll: bool = False,
) -> Reduced:
    return reduce_arrays(
        scores,
        labels,
        kind=kind,
        ignore_index=ignore_index,
        classwise_bins=None,
        brier=False,
        nll=nll,
    )


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
    if check_binning(binning) == "width":
        s, y, k, c = prepare(scores, labels, kind=kind, ignore_index=ignore_index)
        red = reduce_scores(
            s,
            y,
            kind=k,
            n_classes=c,
            ignore_index=ignore_index,
            brier=False,
            nll=False,
            toplabel_edges=uniform_edges(n_bins),
            per_sample=False,  # the table is summed in the pass itself
        )
        assert red.table is not None
        return red.table
    red = _toplabel(scores, labels, kind, ignore_index)
    assert red.confidence is not None and red.correct is not None  # per sample
    return bin_table(
        red.confidence, red.correct, make_edges(red.confidence, n_bins, binning)
    )


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
    red = _toplabel(scores, labels, kind, ignore_index)
    assert red.correct is not None  # per sample
    return float(np.mean(red.correct))


def classwise_ece(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    n_bins: int = 15,
    ignore_index: int | None = None,
) -> float:
    """Class-wise ECE (equal-width bins), the mean over classes of each class's ECE."""
    red = reduce_arrays(
        scores,
        labels,
        kind=kind,
        ignore_index=ignore_index,
        classwise_bins=n_bins,
        brier=False,
        nll=False,
    )
    return float(np.mean(classwise_errors(red)))


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
    red = _toplabel(scores, labels, kind, ignore_index, nll=True)
    assert red.nll is not None
    return float(np.mean(red.nll))


def brier_score(
    scores: object,
    labels: object,
    *,
    kind: str = "auto",
    ignore_index: int | None = None,
) -> float:
    """Mean over samples of sum_c (p_c - [y == c])^2, in [0, 2]."""
    red = reduce_arrays(
        scores,
        labels,
        kind=kind,
        ignore_index=ignore_index,
        classwise_bins=None,
        brier=True,
        nll=False,
    )
    assert red.brier is not None
    return float(np.mean(red.brier))


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
    red = reduce_arrays(
        scores, labels, kind=kind, classwise_bins=None, brier=False, nll=False
    )
    if red.positive is None:
        raise InputError(
            f"the positive-class curve needs two classes. Got {red.n_classes} instead"
        )
    pos = red.positive
    assert red.labels is not None  # per sample
    return bin_table(pos, red.labels == 1, make_edges(pos, n_bins, binning))


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
    predictions: Any, *, n_bins: int = 15, binning: str = "width"
) -> Results:
    """Every metric of loaded predictions (:class:`relcal.io.Predictions`).

    Top-label files give accuracy, ECE, RMS-CE, MCE and the bin table; the
    metrics they cannot give are None and listed in ``Results.unavailable``.
    """
    try:
        return _evaluate_predictions(predictions, n_bins=n_bins, binning=binning)
    except RelcalError as err:
        # Non-finite scores and the like are found while reducing; the user
        # needs to know which file held them.
        source = getattr(predictions, "source", None)
        raise (err.with_source(source) if source else err) from None


def _evaluate_predictions(predictions: Any, *, n_bins: int, binning: str) -> Results:
    # the metrics alone: no per-sample arrays (as :func:`evaluate`)
    return _reduce_predictions(
        predictions, n_bins=n_bins, binning=binning, per_sample=False
    )[1]


def reduce_predictions(
    predictions: Any, *, n_bins: int = 15, binning: str = "width"
) -> tuple[Reduced, Results]:
    """The reduction of loaded predictions (per-sample quantities) and every
    metric from it: what :func:`evaluate_predictions` computes, with the
    per-sample arrays kept (the bootstrap of ``relcal check`` resamples them)."""
    try:
        return _reduce_predictions(predictions, n_bins=n_bins, binning=binning)
    except RelcalError as err:
        source = getattr(predictions, "source", None)
        raise (err.with_source(source) if source else err) from None


def _reduce_predictions(
    predictions: Any, *, n_bins: int, binning: str, per_sample: bool = True
) -> tuple[Reduced, Results]:
    n_bins = check_n_bins(n_bins)
    check_binning(binning)
    if predictions.kind == "toplabel":
        red = reduce_toplabel(
            predictions.confidence,
            predictions.predicted,
            predictions.labels,
            predictions.n_classes,
        )
        return red, summarize(
            red,
            n_bins=n_bins,
            binning=binning,
            kind="toplabel",
            unavailable=TOPLABEL_UNAVAILABLE,
            class_names=predictions.class_names,
        )
    edges = uniform_edges(n_bins)
    red = reduce_scores(
        predictions.scores,
        predictions.labels,
        kind=predictions.kind,
        n_classes=predictions.n_classes,
        ignore_index=predictions.ignore_index,
        classwise_edges=edges,
        toplabel_edges=edges if binning == "width" else None,
        per_sample=per_sample or binning != "width",
    )
    return red, summarize(
        red,
        n_bins=n_bins,
        binning=binning,
        kind=predictions.kind,
        class_names=predictions.class_names,
    )
