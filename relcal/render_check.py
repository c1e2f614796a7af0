"""What ``relcal check`` prints and writes: text, JSON, JUnit XML, Markdown.

All four come from one :class:`relcal.gate.GateResult`.  The JSON document
(``"kind": "relcal.check"``, ``"format": 1``) is a public interface documented
in the README; a number that does not exist is ``null``, never NaN.

Text: one line per check, then one summary line::

    FAIL ece 0.0810 > 0.0500 (95% CI 0.0710–0.0920, debiased 0.0815)
    ok   nll 0.4120 <= 0.6000
    relcal check: 1 of 2 checks failed (preds.npz, 2000 samples)
"""

from __future__ import annotations

import math
from typing import Any

from relcal import __version__
from relcal.bootstrap import RESAMPLING
from relcal.gate import Check, GateResult, Measured
from relcal.render import dropped_text

FORMAT = 1


def _f(x: float | None, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _label(c: Check) -> str:
    t = c.threshold
    metric = t.metric.replace("_", "-")
    if t.kind == "increase":
        return f"{metric} increase"
    if t.kind == "decrease":
        return f"{metric} decrease"
    return metric


def _relation(c: Check) -> str:
    t = c.threshold
    if t.kind == "min":
        return "<" if c.value < t.limit else ">="
    return ">" if c.value > t.limit else "<="


def _interval_text(c: Check) -> str | None:
    iv = c.interval
    if iv is None:
        return None
    signed = c.threshold.needs_baseline
    pct = f"{100 * iv.confidence:g}%"
    text = f"{pct} CI {_f(iv.low, signed)}–{_f(iv.high, signed)}"
    if iv.bias != 0.0:
        text += f", debiased {_f(iv.estimate, signed)}"
    return text


def check_line(c: Check) -> str:
    """``FAIL ece 0.0810 > 0.0500 (95% CI 0.0710–0.0920, debiased 0.0790)``."""
    signed = c.threshold.needs_baseline
    head = "ok  " if c.passed else "FAIL"
    line = (
        f"{head} {_label(c)} {_f(c.value, signed)} {_relation(c)} "
        f"{_f(c.threshold.limit, signed)}"
    )
    extra = []
    if c.baseline_value is not None:
        extra.append(f"{_f(c.new_value)} vs baseline {_f(c.baseline_value)}")
    iv = _interval_text(c)
    if iv:
        extra.append(iv)
    if extra:
        line += " (" + "; ".join(extra) + ")"
    if c.note:
        line += f": {c.note}"
    return line


def _verdict(g: GateResult) -> str:
    """ "all 3 checks passed", "1 of 3 checks failed"; "1 check passed" or
    "1 check failed" when there is one."""
    n = len(g.checks)
    if n == 1:
        return "1 check passed" if g.passed else "1 check failed"
    if g.passed:
        return f"all {n} checks passed"
    return f"{g.n_failed} of {n} checks failed"


def summary_line(g: GateResult) -> str:
    what = f"{input_text(g)}, {g.new.n} samples"
    if g.new.n_dropped:
        what += f", {dropped_text(g.new.n_dropped)}"
    return f"relcal check: {_verdict(g)} ({what})"


def input_text(g: GateResult) -> str:
    """The file, and the model when the file holds several (``models=``)."""
    if g.new.model is None:
        return g.new.source
    return f"{g.new.source}, model {g.new.model}"


def method_line(g: GateResult) -> str:
    s = g.settings
    bins = f"{s.n_bins} {'equal-width' if s.binning == 'width' else 'equal-mass'} bins"
    if s.confidence is None:
        return f"gate on the point estimates; {bins}"
    kind = "paired bootstrap" if g.paired else "bootstrap"
    units = ""
    if g.new.unit != "sample":  # segmentation: whole images are resampled
        units = f", {_n_units(g)} {g.new.unit}s resampled whole"
    return (
        f"gate on {100 * s.confidence:g}% {kind} intervals ({s.n_replicates} "
        f"replicates, seed {s.seed}{units}; binned metrics bias-corrected); {bins}"
    )


def _baseline_from(m: Measured) -> str:
    """Whether a baseline was predictions (samples, their bootstrap sums, or
    the labels a streamed baseline keeps) or a metrics JSON file."""
    if m.samples is None and m.replicates is None and m.labels is None:
        return "metrics-json"
    return "predictions"


def _n_units(g: GateResult) -> int:
    return g.new.n if g.new.n_units is None else g.new.n_units


def format_check(g: GateResult, config: str | None) -> str:
    """The text printed by ``relcal check``."""
    lines = []
    if config:
        lines.append(f"config: {config}")
    if g.baseline is not None:
        lines.append(f"baseline: {g.baseline.source}")
    lines.append(method_line(g))
    lines.extend(f"note: {n}" for n in g.notes)
    lines.extend(check_line(c) for c in g.checks)
    lines.append(summary_line(g))
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def check_to_dict(g: GateResult, config: str | None) -> dict[str, Any]:
    """The ``relcal check --json`` document (format 1)."""
    s = g.settings
    checks = []
    for c in g.checks:
        iv = c.interval
        checks.append(
            {
                "check": c.name,
                "metric": c.threshold.metric,
                "kind": c.threshold.kind,
                "threshold": c.threshold.limit,
                "value": _num(c.value),
                "new_value": _num(c.new_value),
                "baseline_value": _num(c.baseline_value),
                "interval": None
                if iv is None
                else {
                    "low": _num(iv.low),
                    "high": _num(iv.high),
                    "estimate": _num(iv.estimate),
                    "bias": _num(iv.bias),
                    "confidence": iv.confidence,
                },
                "verdict": "pass" if c.passed else "fail",
                "note": c.note,
                "line": check_line(c),
            }
        )
    baseline = None
    if g.baseline is not None:
        baseline = {
            "path": g.baseline.source,
            "from": _baseline_from(g.baseline),
            "n_samples": g.baseline.n,
            "paired": g.paired,
            "metrics": {k: _num(v) for k, v in g.baseline.metrics.items()},
        }
    return {
        "format": FORMAT,
        "kind": "relcal.check",
        "relcal_version": __version__,
        "passed": g.passed,
        "exit_code": g.exit_code,
        "n_failed": g.n_failed,
        "config": config,
        "input": {
            "path": g.new.source,
            "n_samples": g.new.n,
            "n_classes": g.new.n_classes,
            "model": g.new.model,
            "n_dropped": g.new.n_dropped,
        },
        "baseline": baseline,
        "binning": {"n_bins": s.n_bins, "strategy": s.binning},
        "method": {
            "gate": "point estimate" if s.confidence is None else "interval",
            "confidence": s.confidence,
            "bootstrap": None
            if s.confidence is None
            else {
                "replicates": s.n_replicates,
                "seed": s.seed,
                "resampling": RESAMPLING,
                "unit": g.new.unit,
                "n_units": _n_units(g),
                "paired": g.paired,
                "interval": "two-sided percentile; a check fails when the whole "
                "interval is beyond its threshold",
                "bias": "binned metrics (ece, rms_ce, mce and their positive_class_"
                " versions): interval shifted by -2 b, b = mean(replicates) - "
                "plug-in; estimate = plug-in - b",
            },
        },
        "metrics": {k: _num(v) for k, v in g.new.metrics.items()},
        "notes": list(g.notes),
        "min_samples": s.min_samples,
        "warnings": list(g.warnings),
        "checks": checks,
    }


def models_line(results: list[GateResult]) -> str:
    """The last line for several models: how many failed, and which."""
    failed = [g.new.model or g.new.source for g in results if not g.passed]
    if not failed:
        return f"relcal check: all {len(results)} models passed"
    return (
        f"relcal check: {len(failed)} of {len(results)} models failed"
        f" ({', '.join(failed)})"
    )


def format_checks(results: list[GateResult], config: str | None) -> str:
    """The text printed by ``relcal check``: one model's, or each model's one
    after the other and a last line naming the models that failed."""
    if len(results) == 1:
        return format_check(results[0], config)
    parts = [format_check(g, config) for g in results]
    return "\n".join(parts) + "\n" + models_line(results) + "\n"


def checks_to_dict(results: list[GateResult], config: str | None) -> dict[str, Any]:
    """The ``relcal check --json`` document: one model's (``"relcal.check"``),
    or for several models (``"relcal.check.models"``) one such document each."""
    if len(results) == 1:
        return check_to_dict(results[0], config)
    failed = [g.new.model for g in results if not g.passed]
    return {
        "format": FORMAT,
        "kind": "relcal.check.models",
        "relcal_version": __version__,
        "passed": not failed,
        "exit_code": max(g.exit_code for g in results),
        "n_failed": len(failed),
        "failed_models": failed,
        "models": [check_to_dict(g, config) for g in results],
    }


def junit_xml(g: GateResult | list[GateResult]) -> str:
    """JUnit XML: one ``<testcase>`` per check, a ``<failure>`` for each failed
    one; one ``<testsuite>`` per model."""
    import xml.etree.ElementTree as ET

    results = g if isinstance(g, list) else [g]
    suites = ET.Element(
        "testsuites",
        name="relcal check",
        tests=str(sum(len(r.checks) for r in results)),
        failures=str(sum(r.n_failed for r in results)),
        errors="0",
    )
    for r in results:
        _junit_suite(suites, r)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def _junit_suite(suites: Any, g: GateResult) -> None:
    import xml.etree.ElementTree as ET

    suite = ET.SubElement(
        suites,
        "testsuite",
        name="relcal check" if g.new.model is None else f"relcal check {g.new.model}",
        tests=str(len(g.checks)),
        failures=str(g.n_failed),
        errors="0",
        skipped="0",
        time="0",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("input", input_text(g)),
        ("baseline", "" if g.baseline is None else g.baseline.source),
        ("method", method_line(g)),
        ("relcal_version", __version__),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    if g.new.n_dropped:
        ET.SubElement(props, "property", name="n_dropped", value=str(g.new.n_dropped))
    model = "" if g.new.model is None else f".{g.new.model}"
    for c in g.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"relcal.check.{_basename(g.new.source)}{model}",
            name=f"{c.name} {_f(c.threshold.limit)}",
            time="0",
        )
        if not c.passed:
            failure = ET.SubElement(
                case, "failure", message=check_line(c), type="ThresholdExceeded"
            )
            failure.text = check_line(c)
        out = ET.SubElement(case, "system-out")
        out.text = check_line(c)


def _basename(source: str) -> str:
    """The file's name without its directories (either kind of slash)."""
    return source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or source


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(g: GateResult, config: str | None) -> str:
    """A Markdown job summary: a heading with the verdict, then one table row per
    check."""
    status = "passed" if g.passed else f"FAILED ({_verdict(g).removesuffix(' failed')})"
    lines = [
        f"### relcal check: {status}",
        "",
        f"`{_md(g.new.source)}`"
        + (f", model `{_md(g.new.model)}`" if g.new.model is not None else "")
        + f": {g.new.n} samples"
        + (f" ({dropped_text(g.new.n_dropped)})" if g.new.n_dropped else "")
        + f", {g.new.n_classes} classes. "
        f"{_md(method_line(g))}."
        + (f" Baseline: `{_md(g.baseline.source)}`." if g.baseline else "")
        + (f" Config: `{_md(config)}`." if config else ""),
        "",
    ]
    lines.extend(f"> {_md(n)}" for n in g.notes)
    lines.extend(f"> **warning:** {_md(w)}" for w in g.warnings)
    if g.notes or g.warnings:
        lines.append("")
    has_iv = any(c.interval is not None for c in g.checks)
    head = "| | check | value | threshold |" + (" interval |" if has_iv else "")
    lines.append(head)
    lines.append("|---|---|---:|---:|" + ("---|" if has_iv else ""))
    for c in g.checks:
        signed = c.threshold.needs_baseline
        mark = "✅" if c.passed else "❌"
        value = _f(c.value, signed)
        if c.baseline_value is not None:
            value += f" ({_f(c.new_value)} vs {_f(c.baseline_value)})"
        op = ">=" if c.threshold.kind == "min" else "<="
        row = (
            f"| {mark} | {_label(c)} | {value} | {op} {_f(c.threshold.limit, signed)} |"
        )
        if has_iv:
            row += f" {_md(_interval_text(c) or '')} |"
        lines.append(row)
    lines.append("")
    return "\n".join(lines) + "\n"
