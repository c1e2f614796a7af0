"""The terminal summary and the JSON document of ``relcal metrics``.

Both come from the same :class:`relcal.metrics.Results`.  The JSON document is a
public interface: its layout is versioned by ``"format"`` (an integer, bumped
on any incompatible change) and documented in the README ("JSON output").
Numbers are plain JSON numbers; a value that does not exist (the accuracy of
an empty bin, a metric the input cannot give) is ``null``, never NaN.
"""

from __future__ import annotations

import json
import math
from typing import Any

from relcal import __version__
from relcal.binning import BinTable
from relcal.metrics import POSITIVE_METRICS, Results

FORMAT = 1

BIN_RULE = "right-closed (lo, hi], 0 in the first bin"
CONVENTIONS = {
    "bins": BIN_RULE,
    "confidence": (
        "top-label: the largest class probability; ties go to the first class"
    ),
    "ece": "L1: sum_b n_b/N |accuracy_b - confidence_b|",
    "rms_ce": "L2: sqrt(sum_b n_b/N (accuracy_b - confidence_b)^2)",
    "mce": "max over non-empty bins of |accuracy_b - confidence_b|",
    "classwise_ece": (
        "mean over classes of sum_b n_bc/N |freq_bc - p_bc|, equal-width bins"
    ),
    "nll": "mean -log p(true class) in nats, from log-softmax",
    "brier": "mean over samples of sum over classes (p_c - [y == c])^2, in [0, 2]",
    "positive_class_ece": (
        "two classes: L1 over bins of P(class 1): sum_b n_b/N |freq_b(class 1) -"
        " mean P(class 1)_b| (torchmetrics' binary_calibration_error); null for"
        " more classes"
    ),
    "positive_class_rms_ce": (
        "two classes: L2: sqrt(sum_b n_b/N (freq_b(class 1) - mean P(class 1)_b)^2)"
    ),
    "positive_class_mce": (
        "two classes: max over non-empty bins of |freq_b(class 1) - mean P(class 1)_b|"
    ),
    "ece_debiased": (
        "bias-corrected ECE: 2 ECE - E[ECE*], ECE* with each bin's accuracy drawn"
        " from Normal(acc_b, acc_b(1 - acc_b)/n_b) (Kumar et al. 2019's"
        " normal_debiased_ce, its expectation in closed form)"
    ),
    "sq_ce_debiased": (
        "debiased squared error: sum_b n_b/N [(acc_b - conf_b)^2 - acc_b(1 -"
        " acc_b)/(n_b - 1)], bins of n_b >= 2 (Kumar et al. 2019's"
        " unbiased_square_ce); may be negative"
    ),
    "rms_ce_debiased": "sqrt(max(sq_ce_debiased, 0)) (Kumar et al.'s unbiased_l2_ce)",
    "consistency_band": (
        "report: where a calibrated model's bin accuracy would fall, the central"
        " interval of Binomial(n_b, mean confidence_b) / n_b at the report's"
        " level (Brocker & Smith 2007, binomial form; conservative; assumes"
        " independent samples)"
    ),
    "gap_interval": (
        "intervals.metrics.gap: mean confidence - accuracy over all samples"
        " (> 0 over-confident), percentile interval"
    ),
    "intervals": (
        "Poisson bootstrap of the leading-axis rows (samples, or whole images),"
        " percentile intervals; the plug-in binned errors' intervals are shifted"
        " by the bootstrap bias (2 theta - mean theta*), conditional on the bin"
        " edges"
    ),
    "smooth_ece": (
        "smECE of Blasiok & Nakkiran 2023 (relplot.smECE): top-label confidence"
        " vs correct, reflected Gaussian kernel at the fixed-point bandwidth"
        " sigma"
    ),
    "aurc": (
        "area under the risk-coverage curve, predictions accepted by decreasing"
        " confidence (torch-uncertainty's AURC: trapezoid over coverage k/N,"
        " divided by 1 - 1/N); tied confidences: the mean over their orders"
    ),
    "corp": (
        "CORP (Dimitriadis, Gneiting & Jordan 2021): the PAV recalibration of the"
        " top-label confidence against correct; mean score S = MCB - DSC + UNC for"
        " the binary Brier score (x - y)^2 and the log score (nats), as"
        " reliabilitydiag's summary()"
    ),
    "e_aurc": "AURC minus the AURC of a ranking with every correct prediction first",
    "auroc": (
        "AUROC of the top-label confidence for telling correct from incorrect"
        " predictions (ties count 1/2)"
    ),
    "gap": "mean confidence - accuracy (positive: over-confident)",
    "accumulation": "float64",
}

METRIC_LABELS = (
    ("accuracy", "accuracy"),
    ("mean_confidence", "mean confidence"),
    ("ece", "ECE (L1)"),
    ("rms_ce", "RMS-CE (L2)"),
    ("mce", "MCE (max)"),
    ("classwise_ece", "class-wise ECE"),
    ("nll", "NLL (nats)"),
    ("brier", "Brier (sum)"),
    ("positive_class_ece", "P(1) ECE (L1)"),
    ("positive_class_rms_ce", "P(1) RMS-CE (L2)"),
    ("positive_class_mce", "P(1) MCE (max)"),
)
POSITIVE_KEYS = frozenset(POSITIVE_METRICS)
# the debiased errors: in the JSON "metrics" and the text, not in the report's
# main table
DEBIASED_LABELS = (
    ("ece_debiased", "ECE debiased"),
    ("rms_ce_debiased", "RMS-CE debiased"),
    ("sq_ce_debiased", "CE^2 debiased"),
)
# the metrics of the forecast values themselves (not their bins), when asked
# for (relcal metrics --unbinned)
UNBINNED_LABELS = (
    ("smooth_ece", "smooth ECE"),
    ("aurc", "AURC"),
    ("e_aurc", "E-AURC"),
    ("auroc", "AUROC (conf)"),
)


def shown_metrics(n_classes: int) -> tuple[tuple[str, str], ...]:
    """The (key, label) rows a reader sees: the positive-class errors only for
    two classes (for more they do not exist; the JSON has them as null)."""
    if n_classes == 2:
        return METRIC_LABELS
    return tuple((k, label) for k, label in METRIC_LABELS if k not in POSITIVE_KEYS)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def bins_to_list(table: BinTable, *, positive: bool = False) -> list[dict[str, Any]]:
    """Rows of a bin table as JSON-ready dicts."""
    rows = []
    acc, conf, gap = table.accuracy, table.mean_conf, table.gap
    for b in range(table.n_bins):
        count = int(table.count[b])
        row: dict[str, Any] = {
            "bin": b,
            "lo": float(table.edges[b]),
            "hi": float(table.edges[b + 1]),
            "count": count,
        }
        if positive:
            row["positives"] = _count(table.correct[b])
            row["negatives"] = _count(table.incorrect[b])
            row["mean_predicted"] = _num(conf[b])
            row["fraction_positive"] = _num(acc[b])
        else:
            row["correct"] = _count(table.correct[b])
            row["incorrect"] = _count(table.incorrect[b])
            row["mean_confidence"] = _num(conf[b])
            row["accuracy"] = _num(acc[b])
        row["gap"] = _num(gap[b])
        rows.append(row)
    return rows


def _count(x: float) -> int | float:
    r = round(float(x))
    return int(r) if abs(r - float(x)) < 1e-9 else float(x)


def results_to_dict(results: Results, source: dict[str, Any]) -> dict[str, Any]:
    """The ``relcal metrics --json`` document (format 1)."""
    labels = METRIC_LABELS + DEBIASED_LABELS + UNBINNED_LABELS
    metrics = {key: _num(getattr(results, key)) for key, _ in labels}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "kind": "relcal.metrics",
        "relcal_version": __version__,
        "input": source,
        "n_samples": results.n,
        "n_classes": results.n_classes,
        "scores": results.kind,
        "binning": {
            "n_bins": results.n_bins,
            "strategy": results.binning,
            "rule": BIN_RULE,
        },
        "conventions": CONVENTIONS,
        "metrics": metrics,
        "unavailable": dict(results.unavailable),
        "bins": bins_to_list(results.table),
        "positive_class": None,
        "intervals": intervals_to_dict(results),
        "smooth": None,
        "selective": None,
        "corp": None,
    }
    if results.smooth_ece is not None:
        doc["smooth"] = {
            "smooth_ece": _num(results.smooth_ece),
            "sigma": _num(results.smooth_sigma),
        }
    if results.selective is not None:
        doc["selective"] = _clean(results.selective.to_dict())
    if results.corp is not None:
        doc["corp"] = {
            "event": "top-label correct",
            **{k: _clean(d.as_dict()) for k, d in results.corp.items()},
        }
    if results.positive_table is not None:
        doc["positive_class"] = {
            "bins": bins_to_list(results.positive_table, positive=True)
        }
    return doc


def _clean(x: Any) -> Any:
    """``x`` with NaN and inf as null (nested dicts and lists)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return _num(x)
    return x


def intervals_to_dict(results: Results) -> dict[str, Any] | None:
    """The ``"intervals"`` block: null without ``--ci``."""
    if results.ci is None:
        return None
    from relcal.bootstrap import BINNED, RESAMPLING

    out = {}
    for name, iv in results.intervals.items():
        out[name] = {
            "low": _num(iv.low),
            "high": _num(iv.high),
            "estimate": _num(iv.estimate),
            "method": "bias-corrected percentile" if name in BINNED else "percentile",
        }
    return {
        "level": results.ci["level"],
        "n_replicates": results.ci["n_replicates"],
        "seed": results.ci["seed"],
        "resampling": RESAMPLING,
        "n_replicates_unbinned": results.ci.get("n_replicates_unbinned"),
        "unbinned_units": results.ci.get("unbinned_units"),
        "n_replicates_classwise": results.ci.get("n_replicates_classwise"),
        "metrics": out,
    }


def models_to_dict(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``relcal metrics --json`` document of several models (``--models``
    with more than one column): one :func:`results_to_dict` document each."""
    return {
        "format": FORMAT,
        "kind": "relcal.metrics.models",
        "relcal_version": __version__,
        "models": docs,
    }


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _fmt(x: float | None, width: int = 9, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-".rjust(width)
    return f"{x:.{digits}f}".rjust(width)


SIDE_BY_SIDE = ("accuracy", "ece", "positive_class_ece", "nll", "brier")


def format_models(done: list[tuple[Results, dict[str, Any]]]) -> str:
    """The last lines of ``relcal metrics`` for several models (``--models``):
    one row per model, the main metrics side by side."""
    labels = dict(METRIC_LABELS)
    keys = [
        k
        for k in SIDE_BY_SIDE
        if all(k in dict(shown_metrics(r.n_classes)) for r, _ in done)
    ]
    names = [str(s.get("model") or s["path"]) for _, s in done]
    width = max(12, *(len(n) for n in names))
    head = "  " + "model".ljust(width) + "".join(f" {labels[k]:>14}" for k in keys)
    rows = [
        "  "
        + name.ljust(width)
        + "".join(f" {_fmt(_num(r.metric(k)), 14)}" for k in keys)
        for name, (r, _) in zip(names, done, strict=True)
    ]
    counts = sorted({r.n for r, _ in done})
    n = f"{counts[0]} samples each" if len(counts) == 1 else "samples differ"
    return "\n".join([f"Models side by side ({n}):", head, *rows]) + "\n"


def format_text(results: Results, source: dict[str, Any]) -> str:
    """The readable summary and bin table printed by ``relcal metrics``."""
    head = f"relcal {__version__}: {source['path']}"
    if source.get("model") is not None:
        head += f", model {source['model']}"
    lines = [head]
    what = f"{results.n} samples, {results.n_classes} classes, scores: {results.kind}"
    if source.get("n_ignored"):
        what += f" ({source['n_ignored']} ignored)"
    if source.get("n_dropped"):
        what += f" ({dropped_text(source['n_dropped'])})"
    lines.append(what)
    strategy = "equal-width" if results.binning == "width" else "equal-mass"
    lines.append(f"bins: {results.n_bins} {strategy}, {BIN_RULE}")
    lines.append("")
    if results.ci is not None:
        lines.append(
            f"intervals: {results.ci['level']:.0%} bootstrap,"
            f" {results.ci['n_replicates']} replicates, seed {results.ci['seed']}"
        )
        lines.append("")
    shown = shown_metrics(results.n_classes) + DEBIASED_LABELS
    if results.values is not None:
        shown += UNBINNED_LABELS
    for key, label in shown:
        value = getattr(results, key)
        if value is None:
            why = results.unavailable.get(key, "not computed")
            lines.append(f"  {label:<16} n/a ({why})")
        else:
            lines.append(f"  {label:<16} {value:.4f}{_interval_text(results, key)}")
    diff = results.mean_confidence - results.accuracy
    if abs(diff) >= 0.005:
        side = "over" if diff > 0 else "under"
        lines.append("")
        lines.append(
            f"  {side}-confident: mean confidence {results.mean_confidence:.1%}"
            f" vs accuracy {results.accuracy:.1%}"
        )
    lines.append("")
    lines.append("Binned correctness (top-label confidence):")
    lines.extend(
        _table_lines(results.table, ("correct", "incorrect", "confidence", "accuracy"))
    )
    if results.positive_table is not None:
        lines.append("")
        lines.append("Positive class (P(class 1) vs frequency of class 1):")
        lines.extend(
            _table_lines(
                results.positive_table,
                ("positives", "negatives", "mean P(1)", "freq(1)"),
            )
        )
    return "\n".join(lines) + "\n"


def _interval_text(results: Results, key: str) -> str:
    iv = results.intervals.get(key)
    if iv is None or _num(iv.low) is None or _num(iv.high) is None:
        return ""
    return f"  [{iv.low:.4f}, {iv.high:.4f}]"


def _table_lines(table: BinTable, heads: tuple[str, str, str, str]) -> list[str]:
    out = [
        f"  {'bin':>3}  {'range':<15} {'count':>8} {heads[0]:>9} {heads[1]:>9}"
        f" {heads[2]:>10} {heads[3]:>9} {'gap':>8}"
    ]
    acc, conf, gap = table.accuracy, table.mean_conf, table.gap
    for b in range(table.n_bins):
        lo, hi = table.edges[b], table.edges[b + 1]
        bracket = "[" if b == 0 else "("
        rng = f"{bracket}{lo:.3f}, {hi:.3f}]"
        out.append(
            f"  {b:>3}  {rng:<15} {int(table.count[b]):>8}"
            f" {_count(table.correct[b]):>9} {_count(table.incorrect[b]):>9}"
            f" {_fmt(conf[b], 10)} {_fmt(acc[b])} {_fmt(gap[b], 8)}"
        )
    return out


def format_repr(results: Results) -> str:
    """``repr(Results)``: a header line and the metrics two to a line, no arrays.

    >>> from relcal import evaluate
    >>> print(format_repr(evaluate([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 1])))
    Results(3 samples, 2 classes, scores: probs, bins: 15 equal-width)
      accuracy         0.6667   mean confidence  0.7667
      ECE (L1)         0.3000   RMS-CE (L2)      0.3697
      MCE (max)        0.6000   class-wise ECE   0.3000
      NLL (nats)       0.4149   Brier (sum)      0.2733
      P(1) ECE (L1)    0.3000   P(1) RMS-CE (L2) 0.3697
      P(1) MCE (max)   0.6000
    """
    strategy = "equal-width" if results.binning == "width" else "equal-mass"
    head = (
        f"Results({results.n} samples, {results.n_classes} classes,"
        f" scores: {results.kind}, bins: {results.n_bins} {strategy})"
    )
    cells = []
    for key, label in shown_metrics(results.n_classes):
        value = _num(getattr(results, key, None))
        cells.append(f"{label:<16} " + ("n/a" if value is None else f"{value:.4f}"))
    rows = [
        "   ".join(f"{c:<23}" for c in cells[i : i + 2]).rstrip()
        for i in range(0, len(cells), 2)
    ]
    return "\n".join([head, *("  " + row for row in rows)])


# the keys of the "input" block (:func:`source_info`); from arrays, all null
INPUT_KEYS = (
    "path",
    "scores_from",
    "labels_from",
    "shape",
    "dtype",
    "class_names",
    "ignore_index",
    "n_ignored",
    "model",
    "n_dropped",
)


def array_source() -> dict[str, Any]:
    """The "input" block of results computed from arrays: no file, every key null."""
    return dict.fromkeys(INPUT_KEYS)


def dropped_text(n: int) -> str:
    """``3 rows dropped: a missing label or score`` (``missing="drop"``)."""
    return f"{n} {'row' if n == 1 else 'rows'} dropped: a missing label or score"


def source_info(predictions: Any, results: Results) -> dict[str, Any]:
    """What the JSON says about the input file: ``predictions`` is a
    :class:`relcal.io.Predictions` or a streamed :class:`relcal.pipeline.Input`
    (whose ``scores`` has the shape and dtype, not the values)."""
    scores = predictions.scores
    return {
        "path": predictions.source,
        "scores_from": predictions.origin.get("scores"),
        "labels_from": predictions.origin.get("labels"),
        "shape": None if scores is None else [int(d) for d in scores.shape],
        "dtype": None if scores is None else str(scores.dtype),
        "class_names": None
        if predictions.class_names is None
        else list(predictions.class_names),
        "ignore_index": predictions.ignore_index,
        "n_ignored": int(predictions.n_samples - results.n),
        "model": getattr(predictions, "model", None),
        "n_dropped": int(getattr(predictions, "n_dropped", 0)),
    }


def temperature_doc(
    fit: Any,
    source: dict[str, Any],
    before: Results,
    after: Results,
    cross: tuple[int, int, list[float], Results] | None = None,
) -> dict[str, Any]:
    """The temperature file of ``relcal fit-temperature`` (format 1)."""
    from relcal.temperature import FOLD_RULE, T_BOUNDS

    def summary(r: Results) -> dict[str, float | None]:
        return {key: _num(getattr(r, key)) for key, _ in METRIC_LABELS}

    return {
        "format": FORMAT,
        "kind": "relcal.temperature",
        "relcal_version": __version__,
        "temperature": fit.temperature,
        "status": fit.status,
        "bounds": list(T_BOUNDS),
        "fitted_on": {
            "path": source.get("path"),
            "sha256": source.get("sha256"),
            "n_samples": fit.n,
            "n_classes": fit.n_classes,
            "scores": before.kind,
            "model": source.get("model"),
            "n_dropped": source.get("n_dropped", 0),
        },
        "objective": "mean NLL of softmax(z / T); z: logits, or log p if probabilities",
        "iterations": fit.iterations,
        "passes": fit.passes,
        "subsample": None
        if not fit.subsample_rows
        else {"rows": fit.subsample_rows, "passes": fit.subsample_passes},
        "gradient": fit.gradient,
        "gradient_beta": fit.gradient_beta,
        "binning": {
            "n_bins": before.n_bins,
            "strategy": before.binning,
            "rule": BIN_RULE,
        },
        "in_sample": {"before": summary(before), "after": summary(after)},
        "cross_fitted": None
        if cross is None
        else {
            "k": cross[0],
            "seed": cross[1],
            "folds": FOLD_RULE,
            "temperatures": cross[2],
            "after": summary(cross[3]),
        },
    }


def _fitted_on(doc: dict[str, Any]) -> str:
    fitted = doc["fitted_on"]
    model = fitted.get("model")
    return str(fitted["path"]) + ("" if model is None else f", model {model}")


def _dropped(doc: dict[str, Any]) -> str:
    n = doc["fitted_on"].get("n_dropped")
    return f" ({dropped_text(n)})" if n else ""


def format_temperature(doc: dict[str, Any]) -> str:
    """The readable summary printed by ``relcal fit-temperature``."""
    t = doc["temperature"]
    lines = [
        f"relcal {doc['relcal_version']}: temperature of {_fitted_on(doc)}",
        f"{doc['fitted_on']['n_samples']} samples, {doc['fitted_on']['n_classes']} "
        f"classes, scores: {doc['fitted_on']['scores']}{_dropped(doc)}",
        "",
        f"  T = {t:.6g}   ({doc['status']}; {doc['iterations']} steps, "
        f"{doc['passes']} passes, dNLL/dT = {doc['gradient']:.1e})",
    ]
    if doc.get("subsample"):
        sub = doc["subsample"]
        lines.append(
            f"  (steered first by {sub['passes']} passes over a subsample of "
            f"{sub['rows']} rows)"
        )
    if doc["status"] == "capped":
        lines.append(
            f"  T hit its bound {doc['bounds']}: the NLL keeps falling beyond it"
        )
    if doc["status"] == "no effect":
        lines.append(
            "  the logits are constant within rows: no temperature changes them"
        )
    cols = [
        ("in-sample before", doc["in_sample"]["before"]),
        ("in-sample after", doc["in_sample"]["after"]),
    ]
    if doc["cross_fitted"] is not None:
        cf = doc["cross_fitted"]
        cols.append((f"{cf['k']}-fold cross-fitted", cf["after"]))
    lines.append("")
    lines.append("  " + " " * 16 + "".join(f"{name:>22}" for name, _ in cols))
    for key, label in shown_metrics(doc["fitted_on"]["n_classes"]):
        vals = [c.get(key) for _, c in cols]
        cells = "".join("n/a".rjust(22) if v is None else f"{v:22.4f}" for v in vals)
        lines.append(f"  {label:<16}{cells}")
    lines.append("")
    lines.append(
        "  in-sample: fitted and measured on the same data; "
        "judge T on held-out data (relcal report TEST --temperature FILE)"
    )
    return "\n".join(lines) + "\n"
