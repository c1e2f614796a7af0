"""The command line: a thin click layer over the library.

Exit codes: 0 success; 1 a check failed (``relcal check``); 2 bad
usage or bad input (a one-line ``Error: ...`` on stderr, no traceback).
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import click

from relcal import __version__
from relcal.binning import MAX_BINS
from relcal.bootstrap import MAX_REPLICATES
from relcal.errors import RelcalError, one_line
from relcal.forked import WorkerDied, tune_malloc
from relcal.values import AUTO_MAX

OK, CHECK_FAILED, BAD_INPUT = 0, 1, 2


class InputProblem(click.ClickException):
    """A :class:`RelcalError` on its way out: ``Error: <message>``, exit code 2."""

    exit_code = BAD_INPUT


# Library messages name Python parameters (``scores_key=``,
# ``channels_last=True``, ``kind="logits"``); the CLI names its flags.  This is
# the one table between the two spellings: every option of input_options (and
# any other option a library message may name) has an entry.
PYTHON_TO_CLI: dict[str, str] = {
    "labels": "--labels",
    "scores_key": "--scores-key",
    "labels_key": "--labels-key",
    "label_col": "--label-col",
    "score_cols": "--score-cols",
    "pred_col": "--pred-col",
    "confidence_col": "--confidence-col",
    "kind": "--scores",
    "ignore_index": "--ignore-index",
    "channels_last": "--channels-last",
    "models": "--models",
    "missing": "--missing",
    # options of single commands, named by library messages
    "min_samples": "--min-samples",  # check (relcal.gate)
    "confidence": "--confidence",  # check
    "with_ensemble": "--ensemble",  # report
    "k": "--cv",  # fit-temperature (relcal.temperature.cross_fit)
    "n_bins": "--bins",  # every command that bins
    "n_replicates": "--bootstrap",  # check (relcal.bootstrap)
    "binning": "--binning",  # every command that bins
    "baseline": "--baseline",  # check (relcal.gate.check)
    "jobs": "--jobs",  # every command (relcal.summary.reduce_chunks, set_jobs)
    "dask_scheduler": "--dask-scheduler",  # metrics (relcal.dask)
}

# a Python literal after ``name=``: a number, True/False/None, a quoted string
# or a list of them
_LITERAL = (
    r"""True|False|None|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"""
    r"""|'[^'\n]*'|"[^"\n]*"|\[[^\]\n]*\]"""
)


@functools.lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """:data:`PYTHON_TO_CLI` and the checks of ``relcal check``: a threshold is
    the key ``max-ece`` of :func:`relcal.gate.settings_from` and the option
    ``--max-ece`` (built on the error path only: gate is not imported at
    start-up)."""
    from relcal.gate import CHECKS

    return {**PYTHON_TO_CLI, **{name: f"--{name}" for name in CHECKS}}


@functools.lru_cache(maxsize=1)
def _param() -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in sorted(_names(), key=len)[::-1])
    return re.compile(
        # a quoted user string (an opening quote, not an apostrophe) is skipped
        # whole; a name inside a path or file name (k=3.html, /runs/k=3/) is not
        r"""(?P<quoted>(?<!\w)'[^'\n]*'|(?<!\w)"[^"\n]*")"""
        rf"|(?<![\w.=/\\-])(?P<name>{names})"
        rf"=(?P<value>{_LITERAL})?(?![\w=./\\])"
    )


def _flag(match: re.Match[str]) -> str:
    import ast  # on the error path only: not at start-up
    import shlex

    if match.group("quoted") is not None:
        return match.group(0)
    flag = _names()[match.group("name")]
    raw = match.group("value")
    if raw is None:
        return flag
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return match.group(0)  # not a literal after all: left as it is
    if value is True:  # a flag such as --channels-last
        return flag
    if value is None or value is False:
        return match.group(0)
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"{flag} {shlex.quote(str(value))}"


def cli_message(text: str) -> str:
    """A library message in the CLI's words: ``scores_key=`` becomes
    ``--scores-key``, ``ignore_index=255`` becomes ``--ignore-index 255``,
    ``kind="logits"`` becomes ``--scores logits``.  Only the names of
    :data:`PYTHON_TO_CLI` are rewritten, and never inside a quoted string."""
    return _param().sub(_flag, text)


def error_line(err: RelcalError) -> str:
    """The text after ``Error: `` for a library error: its file name as given,
    then its message with Python parameters turned into flags."""
    if err.source:
        return one_line(f"{err.source}: {cli_message(err.message)}")
    return one_line(cli_message(str(err)))


class RelcalGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RelcalError as err:
            raise InputProblem(error_line(err)) from None


@dataclass(frozen=True)
class LoadOptions:
    """How to read predictions: the options of :func:`input_options`, as one
    value handed to the command (``load``)."""

    labels_path: str | None
    scores_key: str | None
    labels_key: str | None
    label_col: str
    score_cols: str | None
    pred_col: str | None
    confidence_col: str | None
    kind: str
    ignore_index: int | None
    channels_last: bool
    models: str | None
    missing: str

    def options(self) -> dict[str, Any]:
        """The keyword options of :func:`relcal.io.load` (and ``open_stream``)."""
        return {
            "labels": self.labels_path,
            "scores_key": self.scores_key,
            "labels_key": self.labels_key,
            "label_col": self.label_col,
            "score_cols": self.score_cols,
            "pred_col": self.pred_col,
            "confidence_col": self.confidence_col,
            "kind": self.kind,
            "ignore_index": self.ignore_index,
            "channels_last": self.channels_last,
            "missing": self.missing,
        }

    def each(self, path: str) -> list[Any]:
        """Every model of one file: the file's, or one per --models column.
        The loader's notes are printed here, the one place."""
        from relcal.io import load

        if self.models is None:
            preds = [load(path, **self.options())]
        else:
            preds = load(path, models=self.models, **self.options())
        _notes(preds[0])
        return preds

    def streams(self, path: str) -> list[Any]:
        """:meth:`each`, streamed: every model of one file as a
        :class:`relcal.pipeline.Input` (chunks read when measured)."""
        from relcal.pipeline import open_inputs

        options = self.options()
        if self.models is not None:
            options["models"] = self.models
        inputs = open_inputs(path, options)
        _notes(inputs[0])
        return inputs

    def one(self, path: str, *, streamed: bool = False) -> Any:
        """The one model of a file, for commands that take one model (a
        :class:`relcal.pipeline.Input` when ``streamed``)."""
        preds = self.streams(path) if streamed else self.each(path)
        if len(preds) > 1:
            command = click.get_current_context().info_name
            raise RelcalError(
                f"relcal {command} takes one model; --models names {len(preds)}"
                f" columns ({', '.join(p.model for p in preds)}): give one",
                source=path,
            )
        return preds[0]

    def all(self, paths: Iterable[str]) -> list[tuple[str, Any]]:
        """(file, model) for every model of every file."""
        return [(path, p) for path in paths for p in self.each(path)]


LOAD_FIELDS = tuple(f.name for f in fields(LoadOptions))


def _notes(preds: Any) -> None:
    """Print what the loader decided without being told."""
    for note in preds.notes:
        click.echo(one_line(f"note: {preds.source}: {cli_message(note)}"), err=True)


def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads predictions; the command
    receives them as one ``load: LoadOptions`` argument."""
    options = [
        click.option(
            "--labels",
            "labels_path",
            metavar="LABELS.npy",
            type=click.Path(),
            help="Labels file for a .npy scores file (for a glob or directory of"
            " .npy scores: a glob or directory of labels, matched by file name).",
        ),
        click.option(
            "--scores-key",
            metavar="KEY",
            help="Array holding the scores in a .npz file.",
        ),
        click.option(
            "--labels-key",
            metavar="KEY",
            help="Array holding the labels in a .npz file.",
        ),
        click.option(
            "--label-col",
            default="label",
            show_default=True,
            metavar="NAME",
            help="Label column of a .csv/.parquet file.",
        ),
        click.option(
            "--score-cols",
            metavar="COLS",
            help="Score columns: comma-separated names, or one prefix"
            " such as logit_ (default: every other numeric column).",
        ),
        click.option(
            "--pred-col",
            metavar="NAME",
            help="Predicted-class column of a top-label table (with"
            " --confidence-col; default names: pred_label, confidence).",
        ),
        click.option(
            "--confidence-col",
            metavar="NAME",
            help="Confidence column of a top-label table (with --pred-col).",
        ),
        click.option(
            "--scores",
            "kind",
            type=click.Choice(["auto", "logits", "probs"]),
            default="auto",
            show_default=True,
            help="What the scores are; auto detects probabilities"
            " (non-negative rows summing to 1).",
        ),
        click.option(
            "--ignore-index",
            type=int,
            metavar="INT",
            help="Label to drop, e.g. 255 in segmentation maps.",
        ),
        click.option(
            "--channels-last",
            is_flag=True,
            help="Segmentation scores are (N, H, W, C), not (N, C, H, W).",
        ),
        click.option(
            "--models",
            metavar="COL,COL,...",
            help="Table columns that are each one binary model's P(class 1)"
            " (or logit) against the label column; one model per column.",
        ),
        click.option(
            "--missing",
            type=click.Choice(["error", "drop"]),
            default="error",
            show_default=True,
            help="A table row with a missing label or score: an error, or drop"
            " the row (counted in every output).",
        ),
    ]

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        load = LoadOptions(**{k: kwargs.pop(k) for k in LOAD_FIELDS})
        return f(*args, load=load, **kwargs)

    for option in reversed(options):
        command = option(command)
    return command


def binning_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--binning",
        type=click.Choice(["width", "mass"]),
        default="width",
        show_default=True,
        help="Equal-width or equal-mass (adaptive) bins.",
    )(f)
    f = click.option(
        "--bins",
        "n_bins",
        type=click.IntRange(min=1, max=MAX_BINS),
        default=15,
        show_default=True,
        help="Number of bins.",
    )(f)
    return f


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--jobs`` and ``--quiet``, on every command that computes: the worker
    threads (:func:`relcal.reduce.set_jobs`) and the progress bar
    (:mod:`relcal.progress`) for the command's run."""

    @functools.wraps(f)
    def command(*args: Any, jobs: int | None, quiet: bool, **kwargs: Any) -> Any:
        from relcal import progress
        from relcal.reduce import set_jobs

        set_jobs(jobs)
        if not quiet:
            progress.enable()
        try:
            return f(*args, **kwargs)
        finally:
            progress.disable()
            set_jobs(None)

    command = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="No progress bar (drawn on a terminal for work over about a second).",
    )(command)
    command = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        metavar="N",
        help="Worker threads.  [default: every core this process may use]",
    )(command)
    return command


# full passes over the logits of fit_prepared: typically 3, and about a
# quarter of one over its subsample (a bar's estimate; a longer fit grows it)
FIT_PASSES = 4


def _passes(binning: str) -> int:
    """Passes of the reduction over the scores: equal-mass bins take two."""
    return 2 if binning == "mass" else 1


def _work(label: str, preds: Iterable[Any], passes: int) -> Any:
    """A progress task over ``passes`` passes through the scores of ``preds``."""
    from relcal import progress

    return progress.task(label, _nbytes(preds) * passes)


def _nbytes(inputs: Iterable[Any]) -> int:
    """Bytes of scores of loaded predictions (``scores.nbytes``) or of streams
    (:class:`relcal.stream.Stream`: ``meta.n_bytes``)."""
    total = 0
    for x in inputs:
        meta = getattr(x, "meta", None)
        if meta is not None:
            total += int(meta.n_bytes)
        else:
            total += int(getattr(x.scores, "nbytes", 0))
    return total


def wants_values(inp: Any, unbinned: str) -> bool:
    """Whether to compute the value histograms of ``inp`` (``--unbinned``)."""
    from relcal.values import wanted

    choice = None if unbinned == "auto" else unbinned == "on"
    return wanted(choice, math.prod(inp.label_shape))


def unbinned_option(
    more: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--unbinned auto|on|off`` (the metrics that need the values themselves)."""
    return click.option(
        "--unbinned",
        type=click.Choice(["auto", "on", "off"]),
        default="auto",
        show_default=True,
        help="The metrics of the forecasts themselves, not their bins: smooth"
        " ECE, AURC, E-AURC, AUROC of the confidence (they hold a histogram of"
        f" every distinct confidence). auto: on up to {AUTO_MAX:,} samples;" + more,
    )


def bootstrap_options(
    level: str,
    level_help: str,
    *,
    defaults: bool,
    level_default: float | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The level option (``--ci`` of metrics, ``--confidence`` of check),
    ``--bootstrap N`` and ``--seed``; ``defaults``: their defaults are set
    here (else None: check takes them from its settings file first)."""
    shown = "" if defaults else "  [default: 1000]"
    options = [
        click.option(
            level,
            type=click.FloatRange(0.5, 1.0, max_open=True),
            metavar="LEVEL",
            default=level_default,
            show_default=level_default is not None,
            help=level_help,
        ),
        click.option(
            "--bootstrap",
            "n_replicates",
            type=click.IntRange(min=100, max=MAX_REPLICATES),
            default=1000 if defaults else None,
            show_default=defaults,
            metavar="N",
            help=f"Bootstrap replicates for {level}.{shown}",
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=0 if defaults else None,
            show_default=defaults,
            help="Seed of the bootstrap: the intervals depend on it alone, not on"
            " --jobs or chunking." + ("" if defaults else "  [default: 0]"),
        ),
    ]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


@click.group(cls=RelcalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="relcal")
def cli() -> None:
    """Can your classifier's scores be read as probabilities?

    relcal reads saved predictions (logits or probabilities with labels, as
    .npz, .npy, .csv or .parquet) and measures their calibration.

    Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input.
    """


@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@input_options
@binning_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the results as JSON (format 1, see the README).",
)
@bootstrap_options(
    "--ci",
    "Bootstrap intervals at this level (e.g. 0.95) for every binned and mean"
    " metric (rows resampled: samples, or whole images).",
    defaults=True,
)
@unbinned_option(" on: also the CORP decomposition (scipy's PAV: 0.3 s to import).")
@click.option(
    "--dask-scheduler",
    metavar="ADDRESS",
    help="Compute on a Dask cluster (tcp://host:8786): its workers read FILE"
    " (.npy pairs or .parquet) from the same path.",
)
@run_options
def metrics(
    file: str,
    load: LoadOptions,
    n_bins: int,
    binning: str,
    as_json: bool,
    ci: float | None,
    n_replicates: int,
    seed: int,
    unbinned: str,
    dask_scheduler: str | None,
) -> None:
    """Calibration metrics and the binned correctness table of FILE.

    Prints accuracy, top-label ECE, RMS calibration error, MCE, class-wise
    ECE, NLL and Brier score (for two classes also the positive-class ECE,
    RMS-CE and MCE of P(class 1)), then per bin: count, correct, incorrect,
    mean confidence, accuracy and gap.  Bins are right-closed (lo, hi].
    """
    from relcal.pipeline import measure
    from relcal.render import (
        format_models,
        format_text,
        models_to_dict,
        results_to_dict,
        source_info,
        to_json,
    )

    done = []
    if dask_scheduler is not None:
        if ci is not None:
            raise RelcalError("--ci is not available with --dask-scheduler yet")
        done = [_on_dask(dask_scheduler, file, load, n_bins, binning, unbinned)]
    else:
        models = load.streams(file)
        passes = _passes(binning) + (ci is not None and binning == "mass")
        with _work("metrics", models, passes):
            for model in models:
                boot = _bootstrap_plan(model, ci, n_replicates, seed, n_bins)
                results = measure(
                    model,
                    n_bins=n_bins,
                    binning=binning,
                    bootstrap=boot,
                    ci=ci or 0.95,
                    values=wants_values(model, unbinned),
                    corp=unbinned == "on",
                ).results
                done.append((results, source_info(model, results)))
    if as_json:
        docs = [results_to_dict(r, s) for r, s in done]
        doc = docs[0] if len(docs) == 1 else models_to_dict(docs)
        click.echo(to_json(doc), nl=False)
    else:
        texts = [format_text(r, s) for r, s in done]
        if len(done) > 1:
            texts.append(format_models(done))
        click.echo("\n".join(texts), nl=False)


def _bootstrap_plan(
    inp: Any, ci: float | None, n_replicates: int, seed: int, n_bins: int
) -> Any:
    """The bootstrap of ``--ci`` (None without it), its size checked first."""
    if ci is None:
        return None
    from relcal.pipeline import bootstrap_plan

    return bootstrap_plan(inp, n_replicates, seed, n_bins=n_bins)


def _on_dask(
    address: str,
    file: str,
    load: LoadOptions,
    n_bins: int,
    binning: str,
    unbinned: str = "auto",
) -> tuple[Any, dict[str, Any]]:
    """The metrics of FILE computed by the workers of a Dask scheduler."""
    from relcal.dask import connect, evaluate_file
    from relcal.render import source_info

    values = None if unbinned == "auto" else unbinned == "on"
    with connect(address):
        results, info = evaluate_file(
            file,
            n_bins=n_bins,
            binning=binning,
            values=values,
            models=load.models,
            **load.options(),
        )
    _notes(info)
    return results, source_info(info, results)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The HTML file to write (atomically; never over an input); - for"
    " standard output.",
)
@click.option("--title", help="Title of the report (default: the file names).")
@click.option(
    "--json",
    "json_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write every number in the report as JSON (format 1); - for"
    " standard output.",
)
@click.option(
    "--temperature",
    "temperature_path",
    metavar="T.json",
    type=click.Path(dir_okay=False),
    help="Show every model before and after scaling by this fitted temperature.",
)
@click.option(
    "--fit-temperature",
    "fit_in_sample",
    is_flag=True,
    help="Fit T on each file itself and show before/after (labelled in-sample).",
)
@click.option(
    "--ensemble",
    is_flag=True,
    help="Add the mean of the models' probabilities as one more model"
    " (the files must hold the same samples in the same order).",
)
@bootstrap_options(
    "--ci",
    "Level of the bootstrap intervals of the metrics and the verdict.",
    defaults=True,
    level_default=0.95,
)
@click.option(
    "--no-intervals",
    is_flag=True,
    help="No bootstrap intervals (one pass fewer over equal-mass bins).",
)
@unbinned_option(" their figures too (smooth and CORP diagrams, risk-coverage).")
@input_options
@binning_options
@run_options
def report(
    files: tuple[str, ...],
    output: str,
    title: str | None,
    json_path: str | None,
    temperature_path: str | None,
    fit_in_sample: bool,
    ensemble: bool,
    ci: float,
    n_replicates: int,
    seed: int,
    no_intervals: bool,
    unbinned: str,
    load: LoadOptions,
    n_bins: int,
    binning: str,
) -> None:
    """Write an HTML reliability report of one or several FILES.

    One self-contained file (inline SVG and CSS, no script): reliability
    diagrams, the correct/incorrect histogram, the binned correctness table,
    the metrics, per-class views and, for several files, a comparison.
    """
    from relcal.io import read_temperature
    from relcal.render import to_json
    from relcal.report import (
        build_report,
        check_report_bins,
        render_html,
        report_to_dict,
    )

    if temperature_path is not None and fit_in_sample:
        raise click.UsageError("give --temperature or --fit-temperature, not both")
    inputs: list[str | None] = [*files, load.labels_path, temperature_path]
    out = _target(output, inputs)
    json_out = _target(json_path, inputs)
    if json_out == out == STDOUT:
        raise click.UsageError("--json and --output cannot both be - (standard output)")
    if isinstance(out, Path) and isinstance(json_out, Path):
        if json_out.resolve() == out.resolve():
            raise click.UsageError("--json and --output name the same file")
    t_doc = None if temperature_path is None else read_temperature(temperature_path)
    scaling = t_doc is not None or fit_in_sample
    check_report_bins(n_bins)
    loaded = [(f, inp) for f in files for inp in load.streams(f)]
    preds = [p for _, p in loaded]
    if t_doc is not None:
        for p in preds:
            _check_classes(t_doc, p, temperature_path or "")
    # the what-next preview (relcal.report.scaling_preview) reads logits once more
    preview = not scaling and any(p.kind != "toplabel" for p in preds)
    level = None if no_intervals else ci
    values = None if unbinned == "auto" else unbinned == "on"
    how = {"ci": level, "n_replicates": n_replicates, "seed": seed, "values": values}
    passes = (
        _passes(binning) * (2 if scaling else 1)
        + FIT_PASSES * fit_in_sample
        + int(preview)
        + int(level is not None and binning == "mass")
    )
    with _work("report", preds, passes), _digests(files, load.labels_path) as digests:
        results = _measured(preds, n_bins, binning, **how)
        hashes, labels_hash = digests.result()
        data = build_report(
            preds,
            n_bins=n_bins,
            binning=binning,
            title=title,
            with_ensemble=ensemble,
            sha256=[hashes[f] for f, _ in loaded],
            labels_sha256=[labels_hash for _ in preds],
            results=results,
            preview=not scaling,
            **how,
        )
        if scaling:
            _add_scaling(
                data.models, preds, t_doc, temperature_path, n_bins, binning, how
            )
    outputs = {out: render_html(data)}
    if json_out is not None:
        outputs[json_out] = to_json(report_to_dict(data))
    written = _emit(outputs)
    if written:
        click.echo(one_line("wrote " + " and ".join(written)), err=True)


STDOUT = "-"


def _add_scaling(
    models: list[Any],
    preds: list[Any],
    t_doc: dict[str, Any] | None,
    t_path: str | None,
    n_bins: int,
    binning: str,
    how: dict[str, Any] | None = None,
) -> None:
    """Each model's before / after slot: streamed inputs streamed, loaded
    predictions (with --ensemble) in memory; ``how``: the bootstrap's
    ``ci``, ``n_replicates`` and ``seed``."""
    from relcal import pipeline
    from relcal.report import add_scaling

    boot = {k: v for k, v in (how or {}).items() if k in ("ci", "n_replicates", "seed")}
    for model, p in zip(models, preds, strict=False):
        options = {
            "t_doc": t_doc,
            "t_path": t_path,
            "n_bins": n_bins,
            "binning": binning,
            **boot,
        }
        if isinstance(p, pipeline.Input):
            pipeline.add_scaling(model, p, **options)
        else:
            add_scaling(model, *_logits_of(p), **options)


def _measured(inputs: list[Any], n_bins: int, binning: str, **how: Any) -> list[Any]:
    """What the report shows of streamed inputs
    (:func:`relcal.pipeline.measure_for_report`)."""
    from relcal.pipeline import measure_for_report

    return [
        measure_for_report(i, n_bins=n_bins, binning=binning, **how) for i in inputs
    ]


def _target(path: str | None, inputs: list[str | None]) -> Path | str | None:
    """Where a document goes: nowhere (None), standard output ("-"), or a
    file, checked before any work is done."""
    if path is None or path == STDOUT:
        return path
    from relcal.io import check_output

    return check_output(path, inputs)


def _emit(docs: dict[Any, str]) -> list[str]:
    """Write the documents: the files atomically, then the one for "-" to
    standard output (which then carries nothing else).  Returns the names of
    the files written."""
    from relcal.io import write_atomic

    files = {p: text for p, text in docs.items() if p != STDOUT}
    if files:
        write_atomic(files)
    if STDOUT in docs:
        click.echo(docs[STDOUT], nl=False)
    return [str(p) for p in files]


def _refuse_toplabel(preds: Any) -> None:
    """Temperature scaling needs every class's scores: not a top-label file."""
    from relcal.errors import UnsupportedMetricError

    if preds.kind == "toplabel":
        raise UnsupportedMetricError(
            f"{preds.source}: temperature scaling needs every class's scores; "
            "a top-label file has only the top one"
        )


def _logits_of(preds: Any) -> tuple[Any, Any]:
    """(N, C) logits and labels of loaded predictions, for temperature scaling."""
    from relcal.errors import RelcalError
    from relcal.temperature import as_logits

    _refuse_toplabel(preds)
    try:
        return as_logits(
            preds.scores, preds.labels, kind=preds.kind, ignore_index=preds.ignore_index
        )
    except RelcalError as err:
        raise err.with_source(preds.source) from None


def _all_scores(inp: Any) -> tuple[tuple[int, ...], Any]:
    """The shape and dtype of a streamed input's scores (not a top-label
    file's: temperature scaling needs every class's)."""
    _refuse_toplabel(inp)
    scores = inp.scores if inp.scores is not None else inp.arrays[0]
    return tuple(scores.shape), scores.dtype


@cli.command("fit-temperature")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option(
    "-o",
    "--output",
    default="temperature.json",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The temperature file to write (atomically; never over an input); -"
    " for standard output (the summary then goes to stderr).",
)
@click.option(
    "--cv",
    "k",
    type=click.IntRange(min=2),
    help="Also report K-fold cross-fitted metrics after scaling (each fold"
    " scaled by a T fitted on the other folds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the file's JSON.")
@input_options
@binning_options
@run_options
def fit_temperature(
    file: str,
    output: str,
    k: int | None,
    as_json: bool,
    load: LoadOptions,
    n_bins: int,
    binning: str,
) -> None:
    """Fit the temperature T minimising the NLL of softmax(logits / T) on FILE.

    Exact: a safeguarded Newton iteration on 1/T, one pass over the logits
    per step.  Writes T, the metrics before and after (in-sample) and, with
    --cv K, cross-fitted metrics, to a JSON file (format 1).
    """
    from relcal.render import format_temperature, source_info, temperature_doc, to_json
    from relcal.temperature import measure_scaling

    out = _target(output, [file, load.labels_path])
    inp = load.one(file, streamed=True)
    shape, _ = _all_scores(inp)
    passes = FIT_PASSES + 2 * _passes(binning)
    if k is not None:  # the k fits step with the first; the metrics
        passes += _passes(binning)
    with _work("fit-temperature", [inp], passes):
        try:
            got = measure_scaling(
                inp.chunk_source,
                kind=inp.kind,
                shape=shape,
                n_classes=inp.n_classes,
                ignore_index=inp.ignore_index,
                class_names=inp.class_names,
                n_bins=n_bins,
                binning=binning,
                k=k,
            )
        except RelcalError as err:
            raise err.with_source(inp.source) from None
    source = source_info(inp, got.before)
    source["sha256"] = _sha256(file)
    doc = temperature_doc(got.fit, source, got.before, got.after, got.cross)
    text = to_json(doc)
    _emit({out: text})
    if out == STDOUT:  # stdout is the temperature file; the summary goes to stderr
        if not as_json:
            click.echo(format_temperature(doc), nl=False, err=True)
        return
    click.echo(text if as_json else format_temperature(doc), nl=False)
    click.echo(one_line(f"wrote {out}"), err=True)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option(
    "--temperature",
    "temperature_path",
    required=True,
    metavar="T.json",
    type=click.Path(dir_okay=False),
    help="A temperature file from relcal fit-temperature.",
)
@click.option(
    "-o",
    "--output",
    default="calibrated.npz",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The .npz to write: logits (scaled), calibrated_probs, labels.",
)
@input_options
@run_options
def calibrate(
    file: str,
    temperature_path: str,
    output: str,
    load: LoadOptions,
) -> None:
    """Apply a fitted temperature to FILE and write calibrated predictions.

    The .npz holds "logits" (z / T, float32 or float64 as the input),
    "calibrated_probs" (softmax(z / T)), "labels" and "temperature";
    `relcal metrics` reads it back as logits.
    """
    from relcal.io import check_output, read_temperature, write_npz_streamed
    from relcal.render import dropped_text

    if output == STDOUT:
        raise click.UsageError(
            "-o -: calibrate writes an .npz (binary), not to standard output;"
            " give a file name"
        )
    out = check_output(output, [file, load.labels_path, temperature_path])
    doc = read_temperature(temperature_path)
    inp = load.one(file, streamed=True)
    _check_classes(doc, inp, temperature_path)
    scores = _all_scores(inp)
    t = doc["temperature"]
    # a pass for each array written (the labels' too reads the chunks), and
    # one to count the kept pixels first
    passes = 3 if inp.ignore_index is None else 4
    with _work("calibrate", [inp], passes):
        try:
            write_npz_streamed(out, _calibrated_members(inp, *scores, t))
        except RelcalError as err:
            # a temperature that does not fit the logits names the temperature file
            bad_t = err.message.startswith("temperature ")
            raise err.with_source(temperature_path if bad_t else inp.source) from None
    dropped = f", {dropped_text(inp.n_dropped)}" if inp.n_dropped else ""
    click.echo(one_line(f"wrote {out} (T = {t:.6g}{dropped})"), err=True)


def _calibrated_members(
    inp: Any, shape: tuple[int, ...], dtype: Any, t: float
) -> list[Any]:
    """The arrays of calibrate's .npz, each written chunk by chunk: the
    scaled logits and their softmax (float32 for float32 scores, else
    float64), the labels (int64) of the kept rows, and the temperature."""
    import numpy as np

    from relcal.io import Member
    from relcal.temperature import calibrated_rows, count_kept

    n_classes = 2 if len(shape) == 1 or shape[1] == 1 else shape[1]
    dtype = np.dtype(np.float64 if dtype == np.float64 else np.float32)
    how = {"kind": inp.kind, "ignore_index": inp.ignore_index, "temperature": t}
    n = inp.n_samples
    if inp.ignore_index is not None:  # a pass to count the kept pixels
        n = count_kept(inp.chunks, inp.ignore_index)

    def part(name: str) -> Any:
        return lambda: calibrated_rows(inp.chunks, part=name, **how)

    return [
        Member("logits", dtype, (n, n_classes), part("logits")),
        Member("calibrated_probs", dtype, (n, n_classes), part("calibrated_probs")),
        Member("labels", np.dtype(np.int64), (n,), part("labels")),
        Member("temperature", np.dtype(np.float64), (), lambda: [np.float64(t)]),
    ]


def _check_classes(doc: dict[str, Any], preds: Any, path: str) -> None:
    from relcal.errors import ShapeError

    fitted = doc["fitted_on"]["n_classes"]
    if fitted != preds.n_classes:
        raise ShapeError(
            f"{path}: fitted for {fitted} classes, but {preds.source} has "
            f"{preds.n_classes}"
        )


def _digests(files: list[str], labels: str | None) -> Any:
    """The sha256 of every input file and of the labels file, computed by a
    worker process while the others measure (reading and hashing a 4.5 GB
    file takes ~4 s: serial work, now beside the reduction): a
    :class:`relcal.forked.Later` of ``({file: digest}, labels digest)``."""
    from relcal.forked import Later
    from relcal.reduce import default_threads

    def digests() -> tuple[dict[str, str | None], str | None]:
        return {f: _sha256(f) for f in files}, _sha256(labels)

    return Later(digests, default_threads())


def _sha256(path: str | None) -> str | None:
    from pathlib import Path

    from relcal.report import file_sha256

    if path is None or not Path(path).is_file():
        return None  # a directory of .npy files has no single digest
    return file_sha256(path)


# --------------------------------------------------------------------------
# relcal check


def _remember_threshold(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        assert param.name is not None
        name = param.name.replace("_", "-")
        ctx.meta.setdefault("relcal.thresholds", {})[name] = value


def threshold_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """One option per check of :data:`relcal.gate.CHECKS` (``--max-ece`` ...),
    collected into ``ctx.meta["relcal.thresholds"]``."""
    from relcal.gate import CHECKS, METRIC_NAMES

    for name, (metric, kind) in reversed(CHECKS.items()):
        what = METRIC_NAMES[metric]
        text = {
            "max": f"Fail if {what} is above X.",
            "min": f"Fail if {what} is below X.",
            "increase": f"Fail if {what} rises more than X above the baseline's.",
            "decrease": f"Fail if {what} falls more than X below the baseline's.",
        }[kind]
        f = click.option(
            f"--{name}",
            name.replace("-", "_"),
            type=float,
            metavar="X",
            expose_value=False,
            callback=_remember_threshold,
            help=text,
        )(f)
    return f


@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option(
    "--baseline",
    metavar="OLD",
    type=click.Path(dir_okay=True),
    help="Predictions of the same samples (e.g. main's model), or the JSON that"
    " relcal metrics --json wrote, for the --max-*-increase checks.",
)
@threshold_options
@bootstrap_options(
    "--confidence",
    "Fail a check only when its whole bootstrap interval at this level (e.g."
    " 0.95) is beyond the threshold. Default: gate on the point estimate.",
    defaults=False,
)
@click.option(
    "--min-samples",
    type=click.IntRange(min=0),
    metavar="N",
    help="Warn (on stderr, in --json and --markdown; not a failure) when FILE"
    " has fewer samples: binned metrics are mostly noise there.  [default: 500]",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Settings file (default: ./relcal.toml [check], else ./pyproject.toml"
    " [tool.relcal.check]); options override it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option(
    "--junit-xml",
    "junit_path",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Also write JUnit XML: one test case per check.",
)
@click.option(
    "--markdown",
    "markdown_path",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Also write a Markdown summary (appended to $GITHUB_STEP_SUMMARY"
    " when that is set).",
)
@input_options
@click.option(
    "--bins",
    "n_bins",
    type=click.IntRange(min=1, max=MAX_BINS),
    help="Number of bins.  [default: 15]",
)
@click.option(
    "--binning",
    type=click.Choice(["width", "mass"]),
    help="Equal-width or equal-mass (adaptive) bins.  [default: width]",
)
@run_options
@click.pass_context
def check(
    ctx: click.Context,
    file: str,
    baseline: str | None,
    confidence: float | None,
    n_replicates: int | None,
    seed: int | None,
    min_samples: int | None,
    config_path: str | None,
    as_json: bool,
    junit_path: str | None,
    markdown_path: str | None,
    load: LoadOptions,
    n_bins: int | None,
    binning: str | None,
) -> None:
    """Fail (exit code 1) when FILE's calibration is worse than the thresholds.

    Thresholds come from the options or from a config file ([tool.relcal.check]
    in pyproject.toml, or [check] in relcal.toml; options override the file).
    Prints one line per check; --json, --junit-xml and --markdown give the
    same verdicts for CI systems.

    \b
    Exit codes:
      0  every check passed
      1  a check failed
      2  bad usage or bad input (one line "Error: ..." on stderr)
    """
    from relcal.gate import check as judge
    from relcal.gate import settings_from
    from relcal.io import read_check_config
    from relcal.render import to_json
    from relcal.render_check import checks_to_dict, format_checks

    table, config = read_check_config(config_path)
    options = {
        **ctx.meta.get("relcal.thresholds", {}),
        "confidence": confidence,
        "bootstrap": n_replicates,
        "seed": seed,
        "bins": n_bins,
        "binning": binning,
        "min-samples": min_samples,
    }
    settings = settings_from(table, options, source=config or "")
    inputs: list[str | None] = [file, baseline, load.labels_path, config_path]
    outputs = _check_outputs(junit_path, markdown_path, inputs)
    measured = _measure_check_inputs(file, baseline, load, settings)
    results = [judge(new, settings, baseline=old) for new, old in measured]
    # warnings in the CLI's words (--min-samples), wherever they are shown
    results = [
        replace(r, warnings=tuple(map(cli_message, r.warnings))) for r in results
    ]
    for warning in dict.fromkeys(w for r in results for w in r.warnings):
        click.echo(one_line(f"relcal check: warning: {warning}"), err=True)
    _write_check_outputs(results, config, outputs)
    if as_json:
        click.echo(to_json(checks_to_dict(results, config)), nl=False)
    else:
        click.echo(format_checks(results, config), nl=False)
    ctx.exit(max(r.exit_code for r in results))


def _check_outputs(
    junit_path: str | None, markdown_path: str | None, inputs: list[str | None]
) -> dict[str, Any]:
    """Where relcal check writes, checked before any work is done."""
    import os
    from pathlib import Path

    from relcal.io import check_output

    out: dict[str, Any] = {
        "junit": None if junit_path is None else check_output(junit_path, inputs),
        "markdown": None
        if markdown_path is None
        else check_output(markdown_path, inputs),
        "summary": None,
    }
    if out["junit"] is not None and out["junit"] == out["markdown"]:
        raise click.UsageError("--junit-xml and --markdown name the same file")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        path = Path(summary)
        if path.is_dir():
            raise RelcalError(f"{path}: GITHUB_STEP_SUMMARY names a directory")
        if not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise RelcalError(f"{path}: GITHUB_STEP_SUMMARY: no such directory")
        out["summary"] = path
    return out


def _measure_check_inputs(
    file: str, baseline: str | None, load: LoadOptions, settings: Any
) -> list[tuple[Any, Any]]:
    """(new, baseline) for each model of FILE (several with --models); each
    model is compared with the baseline's model of the same column."""
    from relcal.gate import measured_from_jsons, pair_baselines
    from relcal.io import read_metrics_json
    from relcal.pipeline import measure_for_gate

    passes = _passes(settings.binning) + (
        settings.confidence is not None and settings.binning == "mass"
    )
    of_predictions = baseline is not None and not baseline.lower().endswith(".json")
    models = load.streams(file)
    with _work("check", models, passes) as work:
        new = [
            measure_for_gate(m, settings, keep_labels=of_predictions) for m in models
        ]
        if baseline is None:
            return [(m, None) for m in new]
        if not of_predictions:
            olds = measured_from_jsons(read_metrics_json(baseline), baseline)
        else:
            old_models = load.streams(baseline)
            work.expect(_nbytes(old_models) * passes)
            olds = [measure_for_gate(m, settings, keep_labels=True) for m in old_models]
    return list(zip(new, pair_baselines(new, olds, baseline), strict=True))


def _write_check_outputs(
    results: list[Any], config: str | None, outputs: dict[str, Any]
) -> None:
    from relcal.io import write_atomic
    from relcal.render_check import junit_xml, markdown

    files = {}
    if outputs["junit"] is not None:
        files[outputs["junit"]] = junit_xml(results)
    md = "\n".join(markdown(r, config) for r in results)
    if outputs["markdown"] is not None:
        files[outputs["markdown"]] = md
    if files:
        write_atomic(files)
    if outputs["summary"] is not None:
        try:
            with open(outputs["summary"], "a", encoding="utf-8") as f:
                f.write(md)
        except OSError as err:
            raise RelcalError(
                f"{outputs['summary']}: cannot append the step summary ({err.strerror})"
            ) from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    _tolerant_streams()
    try:
        code = cli.main(args=argv, prog_name="relcal", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code  # ctx.exit(code): relcal check's verdict
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        # click quotes most values with repr, not an unknown option's name
        setattr(exc, "message", one_line(exc.message))  # noqa: B010 (Final)
        exc.show()
        return BAD_INPUT if isinstance(exc, click.UsageError) else int(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except RelcalError as err:
        click.echo(f"Error: {error_line(err)}", err=True)
        return BAD_INPUT
    except MemoryError:
        # Sizes that options and headers ask for are checked before memory is
        # taken (--bins, --bootstrap, a .npy header's shape); what is left is
        # data too large for the machine: a message, not a traceback.
        click.echo(f"Error: {OUT_OF_MEMORY}", err=True)
        return BAD_INPUT
    except WorkerDied as err:  # not the input's fault: exit 1
        click.echo(f"Error: {one_line(str(err))}", err=True)
        return 1
    return OK


OUT_OF_MEMORY = "out of memory: the input needs more memory than this machine has"


def _tolerant_streams() -> None:
    """Print what the terminal cannot encode (a class name in Japanese on an
    ASCII or Latin-1 terminal) as backslash escapes instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream
                pass


def run() -> None:
    """Console-script entry point."""
    tune_malloc()
    sys.exit(main())
