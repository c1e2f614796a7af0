"""Tables as users have them: several forecasters in one table (``models=`` /
``--models``), missing values (``missing="drop"`` / ``--missing drop``) and
non-numeric columns left out of the default score columns.

The data is the forecast table of :mod:`tests.forecast_data` (seeded): a date
column, three forecasters' probabilities, a 0/1 outcome, a few empty cells.
Every metric is recomputed here in float64 numpy on the rows kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import relcal
from relcal.cli import cli
from relcal.errors import RelcalError
from relcal.io import load

from .forecast_data import FORECASTERS, kept_rows, make_forecasts

MODELS = ",".join(FORECASTERS)
DROP = ["--label-col", "outcome", "--missing", "drop"]
N_DROPPED = 4  # rows 5, 7, 12 and 40; the dates missing in rows 3 and 9 do not count


@pytest.fixture
def table() -> pd.DataFrame:
    return make_forecasts()


@pytest.fixture
def csv(tmp_path: Path, table: pd.DataFrame) -> Path:
    path = tmp_path / "forecasts.csv"
    table.to_csv(path, index=False)
    return path


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --------------------------------------------------------------------------
# the float64 reference: top-label metrics of one binary forecast


def reference(p1: np.ndarray, y: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """accuracy, ECE (equal-width bins, right-closed (lo, hi], 0 in the first),
    Brier (sum over both classes) and NLL (p clipped below at float64 eps)."""
    p1 = np.asarray(p1, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    probs = np.stack([1.0 - p1, p1], axis=1)
    predicted = np.argmax(probs, axis=1)  # a tie goes to class 0
    conf = probs.max(axis=1)
    correct = (predicted == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], conf, side="left")
    ece = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    p_true = probs[np.arange(len(y)), y]
    return {
        "accuracy": float(correct.mean()),
        "ece": float(ece),
        "brier": float(np.mean(2.0 * (p1 - y) ** 2)),
        "nll": float(np.mean(-np.log(np.maximum(p_true, np.finfo(np.float64).eps)))),
    }


def expected(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    kept = kept_rows(table)
    y = kept["outcome"].to_numpy()
    return {f: reference(kept[f].to_numpy(), y) for f in FORECASTERS}


def assert_metrics(got: dict[str, float | None], want: dict[str, float]) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


# --------------------------------------------------------------------------
# (a) the auto reading of such a table is an error naming both readings


def test_without_models_the_auto_reading_is_an_error(
    csv: Path, table: pd.DataFrame
) -> None:
    kept = kept_rows(table)
    first_sum = kept[list(FORECASTERS)].to_numpy().sum(axis=1)[0]
    n = len(kept)
    detail = (
        "score columns forecaster_a, forecaster_b, forecaster_c: every value is in"
        f" [0, 1] but {n} of {n} rows do not sum to 1 within 0.0001 (first:"
        f" {first_sum:.6g} at row 0): not probabilities of 3 classes. One binary"
        " model per column: {models}; logits of 3 classes: {logits}"
    )
    dropped = f" (row numbers count the rows kept after dropping {N_DROPPED})"
    # missing="error": nothing dropped, the rows are counted among the complete
    complete = f" (rows counted among the {n} complete ones)"
    code, out, err = run(["metrics", str(csv), *DROP])
    assert (code, out) == (2, "")
    assert err == "Error: {}: {}{}\n".format(
        csv,
        detail.format(
            models="--models forecaster_a,forecaster_b,forecaster_c",
            logits="--scores logits",
        ),
        dropped,
    )
    # the Python API names its parameters
    python = detail.format(
        models='models=["forecaster_a", "forecaster_b", "forecaster_c"]',
        logits='kind="logits"',
    )
    with pytest.raises(RelcalError) as info:
        load(csv, label_col="outcome", missing="drop")
    assert str(info.value) == f"{csv}: {python}{dropped}"
    # the table as it comes: one message names the three options it needs
    missing = (
        "Also column 'forecaster_b': missing value at row 5 (4 rows have a missing"
        ' label or score; missing="drop" drops them)'
    )
    with pytest.raises(RelcalError) as info:
        load(csv, label_col="outcome")
    assert str(info.value) == f"{csv}: {python}{complete}. {missing}"
    code, out, err = run(["metrics", str(csv), "--label-col", "outcome"])
    assert (code, out) == (2, "")
    cli_text = detail.format(
        models="--models forecaster_a,forecaster_b,forecaster_c",
        logits="--scores logits",
    )
    cli_missing = missing.replace('missing="drop"', "--missing drop")
    assert err == f"Error: {csv}: {cli_text}{complete}. {cli_missing}\n"


def test_an_array_file_of_such_scores_names_scores_logits(tmp_path: Path) -> None:
    table = kept_rows(make_forecasts())
    scores = table[list(FORECASTERS)].to_numpy()
    path = tmp_path / "forecasts.npz"
    np.savez(path, scores=scores, labels=table["outcome"].to_numpy().astype(int))
    n = len(scores)
    code, out, err = run(["metrics", str(path)])
    assert (code, out) == (2, "")
    assert err == (
        f"Error: {path}: scores: every value is in [0, 1] but {n} of {n} rows do not"
        f" sum to 1 within 0.0001 (first: {scores[0].sum():.6g} at row 0): not"
        " probabilities of 3 classes; to read them as logits, give --scores logits\n"
    )


def test_explicit_scores_logits_still_reads_the_columns_as_logits(
    csv: Path, table: pd.DataFrame
) -> None:
    kept = kept_rows(table)
    code, out, _ = run(["metrics", str(csv), *DROP, "--scores", "logits", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert (doc["n_classes"], doc["scores"]) == (3, "logits")
    z = kept[list(FORECASTERS)].to_numpy()
    y = kept["outcome"].to_numpy().astype(int)
    accuracy = float(np.mean(np.argmax(z, axis=1) == y))
    assert doc["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)


def test_missing_values_are_an_error_naming_missing_drop(csv: Path) -> None:
    args = ["metrics", str(csv), "--label-col", "outcome", "--models", MODELS]
    code, out, err = run(args)
    assert (code, out) == (2, "")
    assert err == (
        f"Error: {csv}: column 'forecaster_b': missing value at row 5"
        f" ({N_DROPPED} rows have a missing label or score; --missing drop drops"
        " them)\n"
    )
    with pytest.raises(RelcalError) as info:
        load(csv, label_col="outcome", models=list(FORECASTERS))
    assert str(info.value) == (
        f"{csv}: column 'forecaster_b': missing value at row 5 ({N_DROPPED} rows"
        ' have a missing label or score; missing="drop" drops them)'
    )


def test_a_missing_label_is_named_as_a_label(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,outcome\n0.2,0\n0.7,\n0.9,1\n")
    code, _, err = run(["metrics", str(path), "--label-col", "outcome"])
    assert code == 2
    assert err == (
        f"Error: {path}: column 'outcome': missing label at row 1 (1 row has a"
        " missing label or score; --missing drop drops them)\n"
    )


# --------------------------------------------------------------------------
# (b) per-model metrics equal the float64 recomputation on the rows kept


def test_metrics_per_model_equal_numpy(csv: Path, table: pd.DataFrame) -> None:
    code, out, err = run(["metrics", str(csv), *DROP, "--models", MODELS, "--json"])
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert (doc["format"], doc["kind"]) == (1, "relcal.metrics.models")
    want = expected(table)
    assert [m["input"]["model"] for m in doc["models"]] == list(FORECASTERS)
    for m in doc["models"]:
        assert m["kind"] == "relcal.metrics" and m["scores"] == "probs"
        assert m["n_samples"] == len(kept_rows(table)) and m["n_classes"] == 2
        assert m["input"]["scores_from"] == m["input"]["model"]
        assert m["input"]["labels_from"] == "outcome"
        assert_metrics(m["metrics"], want[m["input"]["model"]])


def test_one_model_keeps_the_one_model_document(csv: Path) -> None:
    code, out, _ = run(["metrics", str(csv), *DROP, "--models", "forecaster_c"])
    assert code == 0
    code, out, _ = run(
        ["metrics", str(csv), *DROP, "--models", "forecaster_c", "--json"]
    )
    doc = json.loads(out)
    assert doc["kind"] == "relcal.metrics" and doc["input"]["model"] == "forecaster_c"
    # forecaster_c drops only the rows it (or the outcome) misses: 12 and 7
    assert doc["input"]["n_dropped"] == 2


def test_python_api_models_gives_the_same_numbers(
    csv: Path, table: pd.DataFrame
) -> None:
    preds = relcal.io.load(
        csv, models=list(FORECASTERS), label_col="outcome", missing="drop"
    )
    assert [p.model for p in preds] == list(FORECASTERS)
    assert [p.n_dropped for p in preds] == [N_DROPPED] * 3
    assert all(p.notes == () for p in preds)  # no default columns: no note
    _, out, _ = run(["metrics", str(csv), *DROP, "--models", MODELS, "--json"])
    docs = json.loads(out)["models"]
    want = expected(table)
    for p, doc in zip(preds, docs, strict=True):
        r = relcal.metrics.evaluate_predictions(p)
        got = {k: getattr(r, k) for k in ("accuracy", "ece", "brier", "nll")}
        assert got == {k: doc["metrics"][k] for k in got}  # the very same floats
        assert_metrics(got, want[p.model])
    # a comma-separated string is the same as a list
    again = relcal.io.load(csv, models=MODELS, label_col="outcome", missing="drop")
    assert [p.model for p in again] == list(FORECASTERS)


def test_parquet_gives_the_numbers_of_the_csv(
    tmp_path: Path, table: pd.DataFrame
) -> None:
    path = tmp_path / "forecasts.parquet"
    table.to_parquet(path, index=False)
    code, out, _ = run(["metrics", str(path), *DROP, "--models", MODELS, "--json"])
    assert code == 0
    want = expected(table)
    for m in json.loads(out)["models"]:
        assert m["input"]["n_dropped"] == N_DROPPED
        assert_metrics(m["metrics"], want[m["input"]["model"]])


# --------------------------------------------------------------------------
# (c) the dropped rows are counted in every output


def test_dropped_rows_in_metrics_text(csv: Path, table: pd.DataFrame) -> None:
    code, out, _ = run(["metrics", str(csv), *DROP, "--models", MODELS])
    assert code == 0
    n = len(kept_rows(table))
    heads = [line for line in out.splitlines() if line.startswith("relcal ")]
    assert heads == [
        f"relcal {relcal.__version__}: {csv}, model {f}" for f in FORECASTERS
    ]
    counts = [line for line in out.splitlines() if " samples, " in line]
    assert (
        counts
        == [
            f"{n} samples, 2 classes, scores: probs ({N_DROPPED} rows dropped:"
            " a missing label or score)"
        ]
        * 3
    )


def test_dropped_rows_in_the_report(tmp_path: Path, csv: Path) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    args = ["report", str(csv), *DROP, "--models", MODELS, "-o", str(html)]
    code, _, _ = run([*args, "--json", str(js)])
    assert code == 0
    page = html.read_text()
    n = len(kept_rows(make_forecasts()))
    line = f"<dt>samples</dt><dd>{n} ({N_DROPPED} rows dropped: a missing label or"
    assert page.count(line + " score)</dd>") == 3
    for f in FORECASTERS:
        assert f"<dt>column</dt><dd>{f}</dd>" in page
    doc = json.loads(js.read_text())
    assert [m["input"]["n_dropped"] for m in doc["models"]] == [N_DROPPED] * 3


def test_dropped_rows_and_verdicts_in_check(tmp_path: Path, csv: Path) -> None:
    want = expected(make_forecasts())
    # a limit that only forecaster_b exceeds
    assert want["forecaster_b"]["ece"] > 0.1
    assert max(want["forecaster_a"]["ece"], want["forecaster_c"]["ece"]) < 0.1
    n = len(kept_rows(make_forecasts()))
    args = ["check", str(csv), *DROP, "--models", MODELS, "--max-ece", "0.1"]
    junit, md = tmp_path / "j.xml", tmp_path / "s.md"
    code, out, _ = run([*args, "--junit-xml", str(junit), "--markdown", str(md)])
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "relcal check: 1 of 3 models failed (forecaster_b)"
    dropped = f"{N_DROPPED} rows dropped: a missing label or score"
    for f, verdict in zip(
        FORECASTERS,
        ("1 check passed", "1 check failed", "1 check passed"),
        strict=True,
    ):
        assert (
            f"relcal check: {verdict} ({csv}, model {f}, {n} samples, {dropped})"
            in (lines)
        )
    assert f"FAIL ece {want['forecaster_b']['ece']:.4f} > 0.1000" in lines
    code, out, _ = run([*args, "--json"])
    doc = json.loads(out)
    assert code == 1 and doc["kind"] == "relcal.check.models"
    assert (doc["passed"], doc["exit_code"], doc["failed_models"]) == (
        False,
        1,
        ["forecaster_b"],
    )
    for m, f in zip(doc["models"], FORECASTERS, strict=True):
        assert m["kind"] == "relcal.check"
        assert m["input"] == {
            "path": str(csv),
            "n_samples": n,
            "n_classes": 2,
            "model": f,
            "n_dropped": N_DROPPED,
        }
        assert m["metrics"]["ece"] == pytest.approx(want[f]["ece"], abs=1e-12)
    xml = junit.read_text()
    assert xml.count("<testsuite ") == 3 and 'failures="1"' in xml
    assert f'<property name="n_dropped" value="{N_DROPPED}" />' in xml
    assert md.read_text().count(f"({dropped})") == 3


def test_check_of_all_passing_models_exits_0(csv: Path) -> None:
    code, out, _ = run(
        ["check", str(csv), *DROP, "--models", MODELS, "--max-ece", "0.5"]
    )
    assert code == 0
    assert out.splitlines()[-1] == "relcal check: all 3 models passed"


# --------------------------------------------------------------------------
# (d) non-numeric columns are left out of the default score columns


def test_date_column_left_out_with_a_note(tmp_path: Path, csv: Path) -> None:
    # the forecasts read as logits of 3 classes (explicitly): the date is not one
    code, out, err = run(["metrics", str(csv), *DROP, "--scores", "logits", "--json"])
    assert code == 0
    assert err == f"note: {csv}: left out non-numeric column 'date' from the scores\n"
    doc = json.loads(out)
    assert doc["input"]["scores_from"] == MODELS
    # the missing dates of rows 3 and 9 did not drop them
    assert doc["input"]["n_dropped"] == N_DROPPED


def test_several_text_columns_left_out_of_a_class_table(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(50, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, 50)
    df = pd.DataFrame(probs, columns=["p_cat", "p_dog", "p_emu"])
    df.insert(0, "when", pd.date_range("2024-01-01", periods=50).astype(str))
    df.insert(1, "id", [f"img{i:03d}" for i in range(50)])
    df["label"] = labels
    path = tmp_path / "classes.csv"
    df.to_csv(path, index=False)
    preds = load(path)
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    assert preds.notes == ("left out non-numeric columns 'when', 'id' from the scores",)
    assert preds.class_names == ("cat", "dog", "emu") and preds.kind == "probs"
    r = relcal.metrics.evaluate_predictions(preds)
    ref = relcal.evaluate(probs, labels)
    assert (r.ece, r.nll) == (ref.ece, ref.nll)
    code, _, err = run(["metrics", str(path)])
    assert code == 0
    assert err == (
        f"note: {path}: left out non-numeric columns 'when', 'id' from the scores\n"
    )


def test_a_column_with_some_numbers_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("label,a,b\n0,0.9,0.1\n1,0.3,oops\n")
    code, _, err = run(["metrics", str(path)])
    assert (code, err) == (
        2,
        f"Error: {path}: column 'b': non-numeric value 'oops' at row 1\n",
    )


# --------------------------------------------------------------------------
# (e) the report: models side by side, and their ensemble


def test_report_side_by_side_with_ensemble(tmp_path: Path, csv: Path) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    args = ["report", str(csv), *DROP, "--models", MODELS, "--ensemble"]
    code, _, err = run([*args, "-o", str(html), "--json", str(js)])
    assert code == 0 and err == f"wrote {html} and {js}\n"
    doc = json.loads(js.read_text())
    names = [m["name"] for m in doc["models"]]
    assert names == [*FORECASTERS, "ensemble of " + ", ".join(FORECASTERS)]
    assert doc["models"][-1]["ensemble_of"] == list(FORECASTERS)
    kept = kept_rows(make_forecasts())
    y = kept["outcome"].to_numpy()
    mean = kept[list(FORECASTERS)].to_numpy().mean(axis=1)
    want = {**expected(make_forecasts()), names[-1]: reference(mean, y)}
    for m in doc["models"]:
        assert_metrics(m["metrics"], want[m["name"]])
    page = html.read_text()
    assert 'id="comparison"' in page
    assert "Calibration of 3 models" in page
    assert all(f"forecaster_{x}" in page for x in "abc")


# --------------------------------------------------------------------------
# commands of one model, and options that do not apply


def test_fit_temperature_takes_one_model(tmp_path: Path, csv: Path) -> None:
    out = tmp_path / "t.json"
    args = ["fit-temperature", str(csv), *DROP, "-o", str(out)]
    code, _, err = run([*args, "--models", "forecaster_a,forecaster_b"])
    assert code == 2 and not out.exists()
    assert err == (
        f"Error: {csv}: relcal fit-temperature takes one model; --models names 2"
        " columns (forecaster_a, forecaster_b): give one\n"
    )
    code, text, _ = run([*args, "--models", "forecaster_b"])
    assert code == 0
    n = len(make_forecasts()) - 2  # rows 5 and 7 lack forecaster_b or the outcome
    assert text.splitlines()[:2] == [
        f"relcal {relcal.__version__}: temperature of {csv}, model forecaster_b",
        f"{n} samples, 2 classes, scores: probs (2 rows dropped: a missing label"
        " or score)",
    ]
    doc = json.loads(out.read_text())
    fitted = doc["fitted_on"]
    assert (fitted["n_samples"], fitted["model"], fitted["n_dropped"]) == (
        n,
        "forecaster_b",
        2,
    )
    cal = tmp_path / "c.npz"
    args = ["calibrate", str(csv), *DROP, "--temperature", str(out), "-o", str(cal)]
    code, _, err = run([*args, "--models", MODELS])
    assert code == 2 and "relcal calibrate takes one model" in err
    code, _, err = run([*args, "--models", "forecaster_b"])
    t = doc["temperature"]
    assert (code, err) == (
        0,
        f"wrote {cal} (T = {t:.6g}, 2 rows dropped: a missing label or score)\n",
    )
    assert len(np.load(cal)["labels"]) == n


def test_check_baseline_pairs_the_models_by_column(tmp_path: Path, csv: Path) -> None:
    want = expected(make_forecasts())
    base_json = tmp_path / "base.json"
    _, out, _ = run(["metrics", str(csv), *DROP, "--models", MODELS, "--json"])
    base_json.write_text(out)
    # the baseline: forecaster_b's column holds forecaster_a's forecasts (and
    # its own holes, so that the same rows are kept)
    other = make_forecasts()
    other["forecaster_b"] = other["forecaster_a"].where(other["forecaster_b"].notna())
    base_csv = tmp_path / "base.csv"
    other.to_csv(base_csv, index=False)
    args = ["check", str(csv), *DROP, "--models", MODELS, "--max-ece-increase"]
    for baseline, increase_b in ((base_json, 0.0), (base_csv, None)):
        code, out, _ = run([*args, "0.01", "--baseline", str(baseline), "--json"])
        doc = json.loads(out)
        by_model = {m["input"]["model"]: m["checks"][0] for m in doc["models"]}
        for f in ("forecaster_a", "forecaster_c"):
            assert by_model[f]["value"] == 0.0 and by_model[f]["verdict"] == "pass"
            assert by_model[f]["baseline_value"] == pytest.approx(
                want[f]["ece"], abs=1e-12
            )
        b = by_model["forecaster_b"]
        if increase_b is None:  # b against a's forecasts
            assert b["baseline_value"] == pytest.approx(
                want["forecaster_a"]["ece"], abs=1e-12
            )
            assert b["value"] == pytest.approx(
                want["forecaster_b"]["ece"] - b["baseline_value"], abs=1e-12
            )
        else:
            assert b["value"] == increase_b
        assert b["verdict"] == ("pass" if increase_b == 0.0 else "fail")
        assert code == (1 if b["verdict"] == "fail" else 0)
    # a baseline without one of the columns
    one = tmp_path / "one.json"
    _, out, _ = run(["metrics", str(csv), *DROP, "--models", "forecaster_a", "--json"])
    one.write_text(out)
    two = ["check", str(csv), *DROP, "--models", "forecaster_a,forecaster_c"]
    code, _, err = run([*two, "--max-ece-increase", "0.01", "--baseline", str(one)])
    assert (code, err) == (
        2,
        f"Error: {one}: the baseline has no model 'forecaster_c' (it has:"
        " forecaster_a); a baseline of several models holds the same columns\n",
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--models", "a"],
            "--models names columns of a table; this file is not a .csv/.parquet",
        ),
        (
            ["--missing", "drop"],
            "--missing drop applies to .csv/.parquet tables; an"
            " array file holds no missing values (NaN scores are an error)",
        ),
    ],
)
def test_table_options_on_an_array_file(
    tmp_path: Path, option: list[str], message: str
) -> None:
    path = tmp_path / "p.npz"
    np.savez(path, logits=np.zeros((4, 2)), labels=[0, 1, 0, 1])
    code, _, err = run(["metrics", str(path), *option])
    assert (code, err) == (2, f"Error: {path}: {message}\n")


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            "forecaster_a,nope",
            "--models: no column 'nope'; the columns are: date,"
            " forecaster_a, forecaster_b, forecaster_c, outcome",
        ),
        (
            "forecaster_a,outcome",
            "--models: 'outcome' is the label column; name the labels with --label-col",
        ),
        ("forecaster_a,forecaster_a", "--models: column 'forecaster_a' is named twice"),
        (",", "--models names no column"),
    ],
)
def test_bad_models(csv: Path, models: str, message: str) -> None:
    code, _, err = run(["metrics", str(csv), *DROP, "--models", models])
    assert (code, err) == (2, f"Error: {csv}: {message}\n")


def test_models_with_score_cols_is_refused(csv: Path) -> None:
    args = ["--models", "forecaster_a", "--score-cols", "forecaster_b"]
    code, _, err = run(["metrics", str(csv), *DROP, *args])
    assert (code, err) == (
        2,
        f"Error: {csv}: give --score-cols or --models, not both\n",
    )


def test_every_row_missing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,label\n,0\n0.5,\n")
    code, _, err = run(["metrics", str(path), "--missing", "drop"])
    assert (code, err) == (
        2,
        f"Error: {path}: every one of the 2 rows has a missing label or score\n",
    )


def test_a_model_column_with_infinities(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n0.2,0.3,0\n0.8,inf,1\n")
    code, _, err = run(["metrics", str(path), "--label-col", "y", "--models", "a,b"])
    assert (code, err) == (
        2,
        f"Error: {path}: column 'b': 1 infinite values (first: inf at row 1)\n",
    )


def test_toplabel_table_drops_missing_rows(tmp_path: Path) -> None:
    path = tmp_path / "top.csv"
    path.write_text(
        "true_label,pred_label,confidence\n0,0,0.9\n1,,0.6\n2,1,0.7\n1,1,0.8\n"
    )
    code, _, err = run(["metrics", str(path)])
    assert code == 2 and re.search("missing value at row 1 .*--missing drop", err)
    preds = load(path, missing="drop")
    assert (preds.n_dropped, preds.n_samples) == (1, 3)
    r = relcal.metrics.evaluate_predictions(preds)
    assert r.accuracy == pytest.approx(2 / 3, abs=1e-15)


def test_labels_of_models_are_checked_once(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n0.2,0.3,0\n,0.3,1\n0.8,0.9,2\n0.1,0.1,0\n")
    args = ["metrics", str(path), "--label-col", "y", "--models", "a,b"]
    code, _, err = run([*args, "--missing", "drop"])
    assert (code, err) == (
        2,
        f"Error: {path}: column 'y': 1 values outside [0, 1] (first: 2 at row 1)"
        " (row numbers count the rows kept after dropping 1)\n",
    )


def test_an_empty_column_is_left_out_with_a_note(tmp_path: Path) -> None:
    # an empty "comment" column reads as all-NaN floats: not a score column
    path = tmp_path / "t.csv"
    path.write_text("when,p0,p1,comment,label\nmon,0.8,0.2,,0\ntue,0.3,0.7,,1\n")
    preds = load(path)
    assert preds.origin["scores"] == "p0,p1" and preds.n_dropped == 0
    assert preds.notes == (
        "left out non-numeric column 'when' from the scores",
        "left out empty column 'comment' from the scores",
    )
    code, _, err = run(["metrics", str(path)])
    assert code == 0
    assert err == (
        f"note: {path}: left out non-numeric column 'when' from the scores\n"
        f"note: {path}: left out empty column 'comment' from the scores\n"
    )


def test_missing_takes_error_or_drop(csv: Path) -> None:
    with pytest.raises(RelcalError) as info:
        load(csv, missing="skip")
    assert str(info.value) == (
        f'{csv}: missing= must be "error" or "drop". Got \'skip\' instead'
    )


def test_empty_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n0.2,,0\n0.3,,1\n")
    args = ["metrics", str(path), "--label-col", "y", "--missing", "drop"]
    code, _, err = run([*args, "--models", "a,b"])
    assert (code, err) == (
        2,
        f"Error: {path}: every one of the 2 rows has a missing label or score"
        " (column 'b' is empty)\n",
    )
    path.write_text("a,b,y\n,,0\n,,1\n")
    code, _, err = run(args)
    assert (code, err) == (
        2,
        f"Error: {path}: the table has no score columns besides the labels"
        " (empty: 'a', 'b')\n",
    )


def test_metrics_text_ends_with_the_models_side_by_side(
    csv: Path, table: pd.DataFrame
) -> None:
    args = ["metrics", str(csv), *DROP, "--models", MODELS]
    code, out, _ = run(args)
    assert code == 0
    _, js, _ = run([*args, "--json"])
    docs = {m["input"]["model"]: m for m in json.loads(js)["models"]}
    want = expected(table)
    n = len(kept_rows(table))
    head = "  model       " + "".join(
        f" {label:>14}"
        for label in ("accuracy", "ECE (L1)", "P(1) ECE (L1)", "NLL (nats)")
    )
    assert out.splitlines()[-5:] == [
        f"Models side by side ({n} samples each):",
        head + f" {'Brier (sum)':>14}",
        *(
            f"  {f}"
            + "".join(
                f" {v:14.4f}"
                for v in (
                    want[f]["accuracy"],
                    want[f]["ece"],
                    docs[f]["metrics"]["positive_class_ece"],
                    want[f]["nll"],
                    want[f]["brier"],
                )
            )
            for f in FORECASTERS
        ),
    ]


def test_report_names_clashing_columns_with_their_files(
    tmp_path: Path, csv: Path
) -> None:
    other = tmp_path / "again.csv"
    other.write_bytes(csv.read_bytes())
    js = tmp_path / "r.json"
    args = ["report", str(csv), str(other), *DROP, "--models", "forecaster_a"]
    code, _, _ = run([*args, "-o", str(tmp_path / "r.html"), "--json", str(js)])
    assert code == 0
    names = [m["name"] for m in json.loads(js.read_text())["models"]]
    assert names == ["forecasts.csv: forecaster_a", "again.csv: forecaster_a"]
