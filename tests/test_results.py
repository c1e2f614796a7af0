"""Results in a notebook: repr, to_dict (the ``relcal metrics --json``
document) and _repr_html_."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.cli import cli
from relcal.metrics import evaluate_predictions
from relcal.render import shown_metrics
from relcal.synth import make_logits, make_toplabel

NAMES = ["cat", "<script>alert(1)</script>", "a&b", "yak"]


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    logits, labels = make_logits(3000, 4, seed=21)
    path = tmp_path / "preds.npz"
    np.savez(path, logits=logits, labels=labels, class_names=np.array(NAMES))
    return path


def cli_json(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, ["metrics", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_repr_is_a_few_lines_of_formatted_numbers() -> None:
    logits, labels = make_logits(5000, 10, seed=1)
    r = relcal.evaluate(logits, labels, n_bins=20, binning="mass")
    text = repr(r)
    lines = text.splitlines()
    assert lines[0] == (
        "Results(5000 samples, 10 classes, scores: logits, bins: 20 equal-mass)"
    )
    assert 3 <= len(lines) <= 8 and max(map(len, lines)) <= 90
    for key, label in shown_metrics(r.n_classes):
        assert re.search(rf"{re.escape(label)} +{getattr(r, key):.4f}\b", text), key
    assert "P(1)" not in text  # the positive-class errors: two classes only
    assert "[" not in text and "array" not in text and "BinTable" not in text
    assert str(r) == text


def test_repr_says_n_a_for_what_the_input_cannot_give(tmp_path: Path) -> None:
    conf, correct = (a[0] for a in make_toplabel(500, amplitude=0.1, seed=2))
    pred = np.random.default_rng(2).integers(0, 5, size=500)
    labels = np.where(correct, pred, (pred + 1) % 5)
    path = tmp_path / "top.csv"
    table = np.column_stack([labels, pred, conf])
    np.savetxt(
        path,
        table,
        fmt=["%d", "%d", "%.17g"],
        delimiter=",",
        comments="",
        header="true_label,pred_label,confidence",
    )
    r = evaluate_predictions(relcal.load(path))
    text = repr(r)
    assert "scores: toplabel" in text
    assert re.search(r"NLL \(nats\) +n/a", text) and re.search(r"Brier.*n/a", text)
    assert f"{r.ece:.4f}" in text


def test_to_dict_is_the_cli_json_document(npz: Path) -> None:
    doc = cli_json([str(npz), "--bins", "12"])
    preds = relcal.load(npz)
    r = evaluate_predictions(preds, n_bins=12)
    assert r.to_dict(predictions=preds) == doc
    # from arrays: the same document, but "input" has no file: its keys, all null
    from_arrays = relcal.evaluate(preds.scores, preds.labels, n_bins=12).to_dict()
    assert from_arrays["input"] == dict.fromkeys(doc["input"])
    assert {**from_arrays, "input": doc["input"]} == doc
    json.dumps(from_arrays, allow_nan=False)  # plain JSON values only


def test_to_dict_of_a_binary_mass_binned_file(tmp_path: Path) -> None:
    logits, labels = make_logits(800, 2, seed=5)
    path = tmp_path / "bin.npz"
    np.savez(path, logits=logits, labels=labels)
    doc = cli_json([str(path), "--binning", "mass", "--bins", "7"])
    preds = relcal.load(path)
    r = evaluate_predictions(preds, n_bins=7, binning="mass")
    assert r.to_dict(predictions=preds) == doc
    assert doc["positive_class"] is not None and len(doc["bins"]) == 7


def test_results_of_a_file_keep_its_class_names(npz: Path) -> None:
    assert evaluate_predictions(relcal.load(npz)).class_names == tuple(NAMES)
    assert relcal.evaluate([[0.2, 0.8]], [1]).class_names is None


def test_repr_html_escapes_class_names_and_has_no_script(npz: Path) -> None:
    r = evaluate_predictions(relcal.load(npz))
    html = r._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a&amp;b" in html
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)\s*=", html) and "http" not in html
    assert f"{r.ece:.4f}" in html and f"{r.nll:.4f}" in html
    assert html.count("<tr><td>") == r.n_bins + len(NAMES)  # bins, then classes
    assert html.count("<table") == 3


def test_repr_html_shows_only_some_of_many_classes() -> None:
    logits, labels = make_logits(2000, 40, seed=8)
    r = dataclasses.replace(
        relcal.evaluate(logits, labels), class_names=tuple(f"c{i}" for i in range(40))
    )
    html = r._repr_html_()
    assert "(6 of 40: those with the most samples and the largest terms)" in html
    worst = int(np.argmax(r.classwise_per_class))
    assert f"<td>c{worst}</td>" in html


def test_repr_html_of_two_classes_has_the_positive_class_bins() -> None:
    logits, labels = make_logits(600, 2, seed=9)
    r = relcal.evaluate(logits, labels, n_bins=8)
    html = r._repr_html_()
    assert html.count("<details>") == 3 and "Positive class (P(class 1)" in html
    pos = r.positive_table
    for b in np.flatnonzero(pos.count):
        row = (
            f"<td>{int(pos.count[b])}</td><td>{int(pos.correct[b])}</td>"
            f"<td>{pos.mean_conf[b]:.4f}</td><td>{pos.accuracy[b]:.4f}</td>"
        )
        assert row in html, b
    assert f"{r.positive_class_ece:.4f}" in html
