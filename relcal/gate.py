"""The CI gate of ``relcal check``: thresholds and baselines in, verdicts out.

Pure: no file I/O, no click, nothing printed.  The CLI loads the files
(:mod:`relcal.io`), calls :func:`check`, renders the :class:`GateResult`
(:mod:`relcal.render_check`) and exits with :attr:`GateResult.exit_code`.

Checks
------
A check compares one metric with a limit:

- ``max-<metric>``: the metric must not exceed the limit (ECE, RMS-CE, MCE,
  class-wise ECE, NLL, Brier, and for two classes the positive-class ECE,
  RMS-CE and MCE); ``min-accuracy``: accuracy must reach it;
- ``max-<metric>-increase`` (and ``max-accuracy-decrease``): against a
  baseline, the new value minus the baseline's (for accuracy, the baseline's
  minus the new) must not exceed the limit.

A value equal to its limit passes.

Verdicts
--------
Without a confidence level, a check fails when the plug-in value (the number
``relcal metrics`` prints) is beyond its limit.  With ``confidence=0.95`` each
check gets a two-sided 95% bootstrap interval (:mod:`relcal.bootstrap`:
a Poisson bootstrap over units, samples or whole segmentation images, seeded;
bias-corrected for the binned metrics) and
fails only when the whole interval lies beyond the limit: the value is over
the limit with at least that confidence.  A baseline given as predictions on
the same samples is compared by a paired bootstrap (the same resampled samples
for both); a baseline given as ``relcal metrics --json`` output has no samples,
so the interval of a difference covers the new file's sampling noise only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from relcal.binning import MAX_BINS
from relcal.bootstrap import (
    BINNED,
    MAX_REPLICATE_BINS,
    MAX_REPLICATES,
    MIN_CLASSWISE_REPLICATES,
    POSITIVE,
    Interval,
    ReplicateSums,
    Samples,
    check_replicates,
    check_size,
    interval,
    positive_samples,
    replicate_metrics,
    sample_units,
    samples_from_reduced,
    samples_sums,
)
from relcal.errors import FormatError, InputError, ShapeError, UnsupportedMetricError
from relcal.metrics import Results, reduce_predictions
from relcal.reduce import Reduced
from relcal.summary import Summary

OK, CHECK_FAILED = 0, 1

# name of the check -> (metric, kind)
CHECKS: dict[str, tuple[str, str]] = {
    "max-ece": ("ece", "max"),
    "max-rms-ce": ("rms_ce", "max"),
    "max-mce": ("mce", "max"),
    "max-classwise-ece": ("classwise_ece", "max"),
    "max-nll": ("nll", "max"),
    "max-brier": ("brier", "max"),
    "min-accuracy": ("accuracy", "min"),
    "max-ece-increase": ("ece", "increase"),
    "max-rms-ce-increase": ("rms_ce", "increase"),
    "max-mce-increase": ("mce", "increase"),
    "max-classwise-ece-increase": ("classwise_ece", "increase"),
    "max-nll-increase": ("nll", "increase"),
    "max-brier-increase": ("brier", "increase"),
    "max-accuracy-decrease": ("accuracy", "decrease"),
    "max-positive-class-ece": ("positive_class_ece", "max"),
    "max-positive-class-rms-ce": ("positive_class_rms_ce", "max"),
    "max-positive-class-mce": ("positive_class_mce", "max"),
    "max-positive-class-ece-increase": ("positive_class_ece", "increase"),
    "max-positive-class-rms-ce-increase": ("positive_class_rms_ce", "increase"),
    "max-positive-class-mce-increase": ("positive_class_mce", "increase"),
}
# settings a config file may hold besides the thresholds
SETTINGS = ("confidence", "bootstrap", "seed", "bins", "binning", "min-samples")
# Below this many samples relcal check warns (it does not fail): a perfectly
# calibrated model's 15-bin ECE exceeds 0.05 in more than 5% of draws of fewer
# than ~500 samples (tests/test_gate.py measures it), so a threshold near the
# usual 0.05 judges sampling noise there.
MIN_SAMPLES = 500
# With confidence=, fewer segmentation images than this (the bootstrap's units)
# warn: a 95% interval then covers the truth in fewer than 90% of draws
# (scripts/validate_bootstrap.py --study units, 400 draws: 0.74 with 3 images,
# 0.88 with 5, 0.93 with 10, 0.94 with 20)
MIN_IMAGES = 10
METRIC_NAMES = {
    "accuracy": "accuracy",
    "ece": "ECE",
    "rms_ce": "RMS-CE",
    "mce": "MCE",
    "classwise_ece": "class-wise ECE",
    "nll": "NLL",
    "brier": "Brier",
    "positive_class_ece": "the positive-class ECE (two classes)",
    "positive_class_rms_ce": "the positive-class RMS-CE (two classes)",
    "positive_class_mce": "the positive-class MCE (two classes)",
}


@dataclass(frozen=True)
class Threshold:
    """One check: ``name`` (e.g. ``max-ece``), its metric, kind and limit."""

    name: str
    metric: str
    kind: str  # "max", "min", "increase", "decrease"
    limit: float

    @property
    def needs_baseline(self) -> bool:
        return self.kind in ("increase", "decrease")


def make_threshold(name: str, limit: object, *, source: str = "") -> Threshold:
    """A :class:`Threshold` from its name and limit, checked.

    Examples
    --------
    >>> make_threshold("max-ece", 0.05)
    Threshold(name='max-ece', metric='ece', kind='max', limit=0.05)
    """
    where = f"{source}: " if source else ""
    if name not in CHECKS:
        raise InputError(f"{where}unknown check {name!r}; known: {', '.join(CHECKS)}")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise InputError(f"{where}{name} must be a number. Got {limit!r} instead")
    value = float(limit)
    if not math.isfinite(value):
        raise InputError(f"{where}{name} must be finite. Got {limit!r} instead")
    metric, kind = CHECKS[name]
    if kind in ("max", "min") and value < 0:
        raise InputError(f"{where}{name} must be >= 0. Got {limit!r} instead")
    return Threshold(name, metric, kind, value)


@dataclass(frozen=True)
class Settings:
    """Everything a check run needs besides the files."""

    thresholds: tuple[Threshold, ...]
    confidence: float | None = None
    n_replicates: int = 1000
    seed: int = 0
    n_bins: int = 15
    binning: str = "width"
    min_samples: int = MIN_SAMPLES


def settings_from(
    file_values: Mapping[str, Any],
    option_values: Mapping[str, Any],
    *,
    source: str = "",
) -> Settings:
    """Merge a config file's ``[tool.relcal.check]`` table with the options.

    Options override the file; an option left at None is not given.  Keys are
    the option names without the dashes in front, spelled one way only, with
    dashes (``max-ece``, ``confidence``, ``bootstrap``, ``seed``, ``bins``,
    ``binning``, ``min-samples``).  An unknown key is an error (a misspelt
    threshold must not pass silently), and so is a key with underscores
    (``max_ece``): the message names the dashed spelling, and both when the
    file has both.

    Examples
    --------
    >>> s = settings_from({"max-ece": 0.05, "seed": 3}, {"max-ece": 0.04})
    >>> s.thresholds[0].limit, s.seed
    (0.04, 3)
    """
    where = f"{source}: " if source else ""
    merged: dict[str, Any] = {}
    for key, value in file_values.items():
        _check_key(str(key), file_values, where)
        merged[str(key)] = (value, source)
    for name, value in option_values.items():
        if value is not None:
            merged[name] = (value, "")
    thresholds = tuple(
        make_threshold(name, value, source=src)
        for name, (value, src) in merged.items()
        if name in CHECKS
    )
    confidence = _setting(merged, "confidence", None)
    if confidence is not None:
        where = f"{merged['confidence'][1]}: " if merged["confidence"][1] else ""
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise InputError(f"{where}confidence must be a number. Got {confidence!r}")
        if not 0.5 <= confidence < 1.0:  # NaN too; no float(): ints may be huge
            raise InputError(
                f"{where}confidence must be in [0.5, 1). Got {confidence!r}"
            )
        confidence = float(confidence)
    n_rep = _int_setting(merged, "bootstrap", 1000, 100, MAX_REPLICATES)
    seed = _int_setting(merged, "seed", 0, minimum=0)
    n_bins = _int_setting(merged, "bins", 15, 1, MAX_BINS)
    if confidence is not None:
        check_replicates(n_rep, n_bins=n_bins)
    binning = _setting(merged, "binning", "width")
    if binning not in ("width", "mass"):
        raise InputError(f"binning must be width or mass. Got {binning!r} instead")
    min_samples = _int_setting(merged, "min-samples", MIN_SAMPLES, minimum=0)
    return Settings(thresholds, confidence, n_rep, seed, n_bins, binning, min_samples)


def _check_key(key: str, keys: Mapping[str, Any], where: str) -> None:
    """A config key must be one of the known ones, spelled with dashes."""
    known = (*CHECKS, *SETTINGS)
    if key in known:
        return
    dashed = key.replace("_", "-")
    if dashed in known and dashed in keys:
        raise InputError(
            f"{where}{dashed!r} and {key!r} are the same key given twice; "
            f"keep {dashed!r}"
        )
    if dashed in known:
        raise InputError(
            f"{where}unknown key {key!r}: keys are spelled with dashes, as the "
            f"options: {dashed!r}"
        )
    raise InputError(f"{where}unknown key {key!r}; known: {', '.join(known)}")


def _setting(merged: dict[str, Any], name: str, default: Any) -> Any:
    return merged[name][0] if name in merged else default


def _int_setting(
    merged: dict[str, Any],
    name: str,
    default: int,
    minimum: int,
    maximum: int | None = None,
) -> int:
    value = _setting(merged, name, default)
    where = f"{merged[name][1]}: " if name in merged and merged[name][1] else ""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(
            f"{where}{name} must be an integer >= {minimum}. Got {value!r} instead"
        )
    if maximum is not None and value > maximum:
        raise InputError(
            f"{where}{name} must be at most {maximum}. Got {value!r} instead"
        )
    return value


# --------------------------------------------------------------------------
# measured predictions


@dataclass(frozen=True)
class Measured:
    """One set of predictions, measured: the metrics, and the per-sample
    quantities to resample (None for a JSON baseline, which has no samples)."""

    source: str
    n: int
    n_classes: int
    n_bins: int
    binning: str
    metrics: dict[str, float | None]
    unavailable: dict[str, str]
    samples: Samples | None = None
    labels: np.ndarray | None = None  # as in the file, to compare baselines
    results: Results | None = None
    model: str | None = None  # the table column of this model (models=)
    n_dropped: int = 0  # rows dropped for a missing label or score
    positive_samples: Samples | None = None  # two classes: P(class 1), label == 1
    unit: str = "sample"  # what the bootstrap resamples: "sample" or "image"
    n_units: int | None = None  # how many (None: n)
    # the bootstrap's sums computed while streaming (instead of samples)
    replicates: ReplicateSums | None = None
    positive_replicates: ReplicateSums | None = None
    classwise_replicates: Any = None  # bootstrap.ClasswiseReplicates


def measure(predictions: Any, *, n_bins: int = 15, binning: str = "width") -> Measured:
    """Reduce loaded predictions (:class:`relcal.io.Predictions`) once: every
    metric, and the per-sample arrays the bootstrap resamples."""
    reduced, results = reduce_predictions(predictions, n_bins=n_bins, binning=binning)
    labels = np.asarray(predictions.labels)
    m = measured_from_reduced(
        reduced,
        results,
        predictions.source,
        labels=labels,
        units=sample_units(labels, getattr(predictions, "ignore_index", None)),
    )
    return replace(
        m,
        model=getattr(predictions, "model", None),
        n_dropped=int(getattr(predictions, "n_dropped", 0)),
    )


def _measured_fields(results: Results, source: str) -> dict[str, Any]:
    """The fields of a :class:`Measured` that come from its metrics."""
    return {
        "source": source,
        "n": results.n,
        "n_classes": results.n_classes,
        "n_bins": results.n_bins,
        "binning": results.binning,
        "metrics": {m: results.metric(m) for m in METRIC_NAMES},
        "unavailable": dict(results.unavailable),
        "results": results,
    }


def measured_from_summary(
    results: Results,
    summary: Summary,
    source: str,
    *,
    n_units: int | None,
    images: bool,
    labels: np.ndarray | None = None,
) -> Measured:
    """A :class:`Measured` from a streamed reduction: the metrics and, when
    the plan had a bootstrap, its replicate sums instead of samples.
    ``images``: the units are segmentation images; ``labels`` (optional) are
    kept to compare a baseline's."""
    reps = dict(summary.replicates)
    return Measured(
        **_measured_fields(results, source),
        labels=labels,
        unit="image" if images else "sample",
        n_units=n_units,
        replicates=reps.get("top"),
        positive_replicates=reps.get("positive"),
        classwise_replicates=(
            None if summary.classwise is None else summary.classwise.replicates
        ),
    )


def measured_from_reduced(
    reduced: Reduced,
    results: Results,
    source: str,
    *,
    labels: np.ndarray | None = None,
    units: np.ndarray | None = None,
) -> Measured:
    """A :class:`Measured` from a reduction and its metrics (arrays in memory).

    ``units`` is each kept sample's leading-axis row (:func:`relcal.bootstrap.
    sample_units`); None: every sample its own row.  Labels of more than one
    axis make the bootstrap resample whole images.
    """
    images = labels is not None and labels.ndim > 1
    return Measured(
        **_measured_fields(results, source),
        samples=samples_from_reduced(reduced, results.table.edges, units),
        labels=labels,
        positive_samples=None
        if results.positive_table is None
        else positive_samples(reduced, results.positive_table.edges, units),
        unit="image" if images else "sample",
        n_units=results.n if units is None else _distinct(units),
    )


def _distinct(units: np.ndarray) -> int:
    """How many distinct units ``units`` holds."""
    if units.size and np.all(units[1:] >= units[:-1]):  # sample_units's order
        return int(np.count_nonzero(np.diff(units))) + 1
    return int(np.unique(units).size)


def measured_from_json(doc: Mapping[str, Any], source: str) -> Measured:
    """A baseline from a ``relcal metrics --json`` document (checked by
    :func:`relcal.io.read_metrics_json`)."""
    binning = doc["binning"]
    given = doc.get("input")
    model = given.get("model") if isinstance(given, dict) else None
    return Measured(
        source=source,
        n=int(doc["n_samples"]),
        n_classes=int(doc["n_classes"]),
        n_bins=int(binning["n_bins"]),
        binning=str(binning["strategy"]),
        metrics={m: doc["metrics"].get(m) for m in METRIC_NAMES},
        unavailable=dict(doc.get("unavailable") or {}),
        model=None if model is None else str(model),
    )


def measured_from_jsons(doc: Mapping[str, Any], source: str) -> list[Measured]:
    """The baselines of a metrics document: one, or one per model of a
    ``relcal.metrics.models`` document."""
    if doc.get("kind") == "relcal.metrics.models":
        return [measured_from_json(d, source) for d in doc["models"]]
    return [measured_from_json(doc, source)]


def pair_baselines(
    new: list[Measured], baselines: list[Measured], source: str
) -> list[Measured]:
    """The baseline of each new model: the only one, or the baseline's model
    of the same name (the table column of ``models=``)."""
    if len(new) == 1 and len(baselines) == 1:
        return baselines
    by_model = {b.model: b for b in baselines}
    for m in new:
        if m.model not in by_model:
            have = ", ".join(str(b.model) for b in baselines)
            raise InputError(
                f"{source}: the baseline has no model {m.model!r} (it has: {have});"
                " a baseline of several models holds the same columns"
            )
    return [by_model[m.model] for m in new]


# --------------------------------------------------------------------------
# verdicts


@dataclass(frozen=True)
class Check:
    """The verdict of one threshold.

    ``value`` is what is compared with the limit: the metric, or for a
    baseline check the increase (new - baseline; for accuracy the decrease,
    baseline - new).  ``interval`` is its bootstrap interval (None without a
    confidence level, or when the metric has no bootstrap).
    """

    threshold: Threshold
    value: float
    new_value: float
    baseline_value: float | None
    interval: Interval | None
    passed: bool
    note: str | None = None

    @property
    def name(self) -> str:
        return self.threshold.name

    @property
    def beyond(self) -> bool:
        """Whether the point value is beyond the limit."""
        t = self.threshold
        return self.value < t.limit if t.kind == "min" else self.value > t.limit


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]
    new: Measured
    baseline: Measured | None
    settings: Settings
    paired: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def n_failed(self) -> int:
        return sum(not c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return OK if self.passed else CHECK_FAILED


def check(
    new: Measured,
    settings: Settings,
    *,
    baseline: Measured | None = None,
) -> GateResult:
    """Judge ``new`` (and its ``baseline``) against ``settings.thresholds``.

    Raises :class:`relcal.errors.RelcalError` when a check cannot be made: no
    thresholds, a baseline check without a baseline, a metric the input cannot
    give, or a baseline on other samples or bins.

    Examples
    --------
    >>> from relcal.reduce import reduce_toplabel
    >>> from relcal.metrics import summarize
    >>> conf = np.array([0.9, 0.8, 0.7, 0.6]); right = np.array([1, 1, 0, 1])
    >>> red = reduce_toplabel(conf, right, np.ones(4, dtype=int), 2)
    >>> r = summarize(red, n_bins=5)
    >>> m = Measured("a", 4, 2, 5, "width", {"ece": r.ece}, {})
    >>> g = check(m, Settings((make_threshold("max-ece", 0.1),)))
    >>> g.exit_code, round(g.checks[0].value, 3)
    (1, 0.25)
    """
    if not settings.thresholds:
        raise InputError(
            "no checks: give a threshold such as max-ece=0.05, or put one in "
            "[tool.relcal.check] of pyproject.toml or in relcal.toml"
        )
    notes: list[str] = []
    needs_baseline = [t.name for t in settings.thresholds if t.needs_baseline]
    if needs_baseline and baseline is None:
        raise InputError(f"{needs_baseline[0]}= needs a baseline= to compare with")
    for t in settings.thresholds:
        _available(new, t.metric, t.name)
        if t.needs_baseline and baseline is not None:
            _available(baseline, t.metric, t.name)
    paired = False
    if baseline is not None:
        paired = _same_samples(new, baseline, notes)
    reps = _replicates(new, baseline, settings, paired, notes)
    checks = tuple(
        _judge(t, new, baseline, settings.confidence, reps, paired)
        for t in settings.thresholds
    )
    warns = tuple(
        small_sample_warning(m, settings)
        for m in (new, baseline)
        if m is not None and m.n < settings.min_samples
    )
    if settings.confidence is not None and _n_images(new) < MIN_IMAGES:
        warns += (few_images_warning(new),)
    return GateResult(checks, new, baseline, settings, paired, tuple(notes), warns)


def _n_images(m: Measured) -> int | float:
    """How many images ``m`` holds (inf when its units are not images)."""
    if m.unit != "image":
        return math.inf
    return m.n if m.n_units is None else m.n_units


def few_images_warning(m: Measured) -> str:
    """The warning for a bootstrap over fewer than :data:`MIN_IMAGES` images."""
    return (
        f"{m.source}: the bootstrap resamples whole images and there are only "
        f"{_n_images(m)}: with fewer than {MIN_IMAGES} its intervals are too narrow"
        " (a 95% interval covered the truth in 74% of draws of 3 images, 88% of 5);"
        " gate on more images"
    )


def small_sample_warning(m: Measured, settings: Settings) -> str:
    """The warning for a file with fewer samples than ``settings.min_samples``."""
    advice = (
        "gate with confidence=0.95, or on more samples"
        if settings.confidence is None
        else "their bootstrap intervals are wide, so a check can hardly fail"
    )
    return (
        f"{m.source}: {m.n} samples, fewer than min_samples={settings.min_samples}:"
        f" at this size binned metrics (ECE, RMS-CE, MCE) are mostly sampling "
        f"noise; {advice}"
    )


def _available(m: Measured, metric: str, name: str) -> None:
    if m.metrics.get(metric) is None:
        why = m.unavailable.get(metric, "not computed")
        raise UnsupportedMetricError(f"{m.source}: --{name}: {metric} {why}")


def _same_samples(new: Measured, old: Measured, notes: list[str]) -> bool:
    """Check that the baseline holds the same samples; True if it can be paired."""
    if old.n != new.n:
        raise ShapeError(
            f"{old.source}: the baseline has {old.n} samples and {new.source} "
            f"{new.n}: a baseline must be measured on the same samples"
        )
    if old.n_classes != new.n_classes:
        raise ShapeError(
            f"{old.source}: the baseline has {old.n_classes} classes and "
            f"{new.source} {new.n_classes}"
        )
    if (old.n_bins, old.binning) != (new.n_bins, new.binning):
        raise FormatError(
            f"{old.source}: the baseline was measured with {old.n_bins} "
            f"{_strategy(old.binning)} bins and this check uses {new.n_bins} "
            f"{_strategy(new.binning)} (n_bins=, binning=): compare like with like"
        )
    if old.labels is None or new.labels is None:
        notes.append(
            f"baseline {old.source} is a metrics JSON file: only its sample count "
            f"({old.n}) can be compared with {new.source}, not its labels, and "
            "a paired bootstrap is impossible"
        )
        return False
    a, b = new.labels.ravel(), old.labels.ravel()
    if a.shape != b.shape:
        raise ShapeError(
            f"{old.source}: the baseline's labels have shape {old.labels.shape} and "
            f"{new.source}'s {new.labels.shape}: a baseline must hold the same samples"
        )
    differ = np.flatnonzero(a != b)
    if differ.size:
        i = int(differ[0])
        raise InputError(
            f"{old.source}: the baseline's labels differ from {new.source}'s at "
            f"{differ.size} of {a.size} samples (first: row {i}, {b[i]} vs {a[i]}): "
            "a baseline must hold the same samples in the same order"
        )
    return True


def _strategy(binning: str) -> str:
    return "equal-width" if binning == "width" else "equal-mass"


def _replicates(
    new: Measured,
    baseline: Measured | None,
    settings: Settings,
    paired: bool,
    notes: list[str],
) -> list[dict[str, np.ndarray]]:
    if settings.confidence is None:
        return []
    if new.samples is None and new.replicates is None:
        raise InputError(f"{new.source}: confidence= needs the samples")
    measured = [new]
    if paired and baseline is not None and _resampled(baseline):
        measured.append(baseline)
    with_classwise = any(t.metric == "classwise_ece" for t in settings.thresholds)
    if with_classwise and not _classwise(measured):
        with_classwise = False
        most = MAX_REPLICATE_BINS // MIN_CLASSWISE_REPLICATES
        notes.append(
            "class-wise ECE is gated on its point estimate: its bootstrap needs"
            f" full class scores and at most {most:,} classes x bins"
        )
    # the positive-class errors: P(class 1)'s set as more sets on the same
    # resampling, their ECE / RMS-CE / MCE renamed
    wanted = any(t.metric in POSITIVE for t in settings.thresholds)
    with_positive = wanted and all(
        m.positive_samples is not None or m.positive_replicates is not None
        for m in measured
    )
    try:
        n_units = new.n if new.n_units is None else new.n_units
        check_size(n_units, settings.n_replicates, unit=f"{new.unit}s")
        reps = [replicate_metrics(_sums(m, settings, False)) for m in measured]
        if with_positive:
            for m, r in zip(measured, reps, strict=True):
                pos = replicate_metrics(_sums(m, settings, True))
                r.update({metric: pos[key] for metric, key in POSITIVE.items()})
        if with_classwise:
            for m, r in zip(measured, reps, strict=True):
                # the first replicates of the top-label sums' weights
                r["classwise_ece"] = m.classwise_replicates.eces(
                    _sums(m, settings, False).count.sum(axis=1)
                )
    except InputError as err:
        raise err.with_source(new.source) from None
    return reps


def _classwise(measured: list[Measured]) -> bool:
    """Whether all of ``measured`` have the class-wise ECE's replicate sums,
    as many replicates each (a paired baseline's are subtracted)."""
    reps = [m.classwise_replicates for m in measured]
    return all(r is not None for r in reps) and len({r.n_replicates for r in reps}) == 1


def _resampled(m: Measured) -> bool:
    return m.samples is not None or m.replicates is not None


def _sums(m: Measured, settings: Settings, positive: bool) -> ReplicateSums:
    """The replicate sums of ``m``'s top-label (or positive-class) set: those
    summed while streaming, else those of its samples."""
    sums = m.positive_replicates if positive else m.replicates
    if sums is not None:
        if (sums.n_replicates, sums.seed) != (settings.n_replicates, settings.seed):
            raise InputError(
                "the bootstrap was summed with other settings"
                f" (n_replicates={sums.n_replicates}, seed={sums.seed})",
                source=m.source,  # the baseline's file when it is the baseline's
            )
        return sums
    samples = m.positive_samples if positive else m.samples
    assert samples is not None
    return samples_sums(samples, n_replicates=settings.n_replicates, seed=settings.seed)


def _judge(
    t: Threshold,
    new: Measured,
    baseline: Measured | None,
    confidence: float | None,
    reps: list[dict[str, np.ndarray]],
    paired: bool,
) -> Check:
    new_value = float(new.metrics[t.metric])  # type: ignore[arg-type]
    old_value = None
    value = new_value
    if t.needs_baseline:
        assert baseline is not None
        old_value = float(baseline.metrics[t.metric])  # type: ignore[arg-type]
        value = new_value - old_value if t.kind == "increase" else old_value - new_value
    iv = None
    note = None
    if confidence is not None and reps and t.metric in reps[0]:
        new_reps = reps[0].get(t.metric)
        if new_reps is not None:
            iv = _interval(t, value, new_reps, old_value, reps, paired, confidence)
    elif confidence is not None:
        note = "no bootstrap interval for this metric: gated on the point estimate"
    if iv is None:
        fails = value < t.limit if t.kind == "min" else value > t.limit
    elif t.kind == "min":
        fails = iv.high < t.limit
    else:
        fails = iv.low > t.limit
    result = Check(t, value, new_value, old_value, iv, not fails, note)
    if iv is not None and result.beyond and not fails:
        result = Check(
            t,
            value,
            new_value,
            old_value,
            iv,
            True,
            "beyond the limit, but within sampling noise",
        )
    return result


def _interval(
    t: Threshold,
    value: float,
    new_reps: np.ndarray,
    old_value: float | None,
    reps: list[dict[str, np.ndarray]],
    paired: bool,
    confidence: float,
) -> Interval:
    debias = t.metric in BINNED
    if not t.needs_baseline:
        return interval(value, new_reps, confidence=confidence, debias=debias)
    assert old_value is not None
    sign = 1.0 if t.kind == "increase" else -1.0
    if paired and len(reps) > 1:
        diff = sign * (new_reps - reps[1][t.metric])
        return interval(value, diff, confidence=confidence, debias=debias)
    # unpaired: the baseline is a fixed plug-in number; the plug-in biases of
    # both are alike and largely cancel, so the difference is not debiased
    return interval(
        value, sign * (new_reps - old_value), confidence=confidence, debias=False
    )
