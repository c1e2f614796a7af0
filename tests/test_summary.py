"""relcal.summary: chunks reduce to summaries that merge to the one-chunk result.

Every input is reduced once as one chunk and once in forced tiny chunks (7
rows, or one image), merged in order; every metric and bin agrees to 1e-12
relative, the counts exactly, equal-mass edges bit for bit (and equal to
``np.quantile``).  The number of threads changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import relcal
import relcal.kernel
from relcal import binning
from relcal import reduce as rd
from relcal.binning import QuantileSearch, mass_edges
from relcal.errors import InputError
from relcal.metrics import METRIC_NAMES, Results, plan_for, summarize, summarize_chunks
from relcal.summary import (
    Plan,
    Summary,
    array_chunks,
    reduce_chunk,
    reduce_chunks,
    reduce_chunks_with_samples,
)
from relcal.synth import make_logits, make_segmentation
from relcal.temperature import softmax
from relcal.validate import prepare

IGNORE = 255
Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray, int]]]


def dataset(name: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    rng = np.random.default_rng(7)
    if name == "seg_ignore":
        z, y = make_segmentation(5, 4, 6, 7, ignore_index=IGNORE, seed=3)
        return z, y, IGNORE
    z, y = make_logits(400, 12 if "multi" in name else 2, seed=11, temperature=2.0)
    if name == "multi_logits_many":  # the row layout (more than 64 classes)
        z, y = make_logits(300, 80, seed=12)
    if name.endswith("probs"):
        z = softmax(z)
    if name == "binary_1d_logits":
        z = (z[:, 1] - z[:, 0]).astype(np.float64)
    if name == "binary_1d_probs":
        z = z[:, 1].astype(np.float64)
    if name == "multi_logits_ignore":
        y = y.copy()
        y[rng.random(len(y)) < 0.2] = IGNORE
        return z, y, IGNORE
    return z, y, None


NAMES = [
    "multi_logits",
    "multi_probs",
    "multi_logits_many",
    "multi_logits_ignore",
    "binary_2col_logits",
    "binary_2col_probs",
    "binary_1d_logits",
    "binary_1d_probs",
    "seg_ignore",
]


def results(source: Chunks, plan: Plan, binning: str, jobs: int | None) -> Results:
    summary = summarize_chunks(source, plan, binning=binning, jobs=jobs)
    return summarize(summary, binning=binning, kind=plan.kind)


def prepared(name: str) -> tuple[np.ndarray, np.ndarray, Plan]:
    z, y, ignore = dataset(name)
    s, labels, kind, c = prepare(z, y, ignore_index=ignore)
    return s, labels, plan_for(kind, c, ignore)


def tiny(scores: np.ndarray, labels: np.ndarray) -> Chunks:
    """Chunks of 7 rows; a segmentation map one image a chunk."""
    rows = 1 if scores.ndim > 2 else 7
    return lambda: array_chunks(scores, labels, rows)


def assert_tables(a: binning.BinTable | None, b: binning.BinTable | None) -> None:
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert np.array_equal(a.edges, b.edges)
        assert np.array_equal(a.count, b.count)
        np.testing.assert_allclose(b.correct, a.correct, rtol=1e-12, atol=0)
        np.testing.assert_allclose(b.sum_conf, a.sum_conf, rtol=1e-12, atol=1e-300)


def assert_same_results(a: Results, b: Results) -> None:
    assert a.n == b.n and a.n_classes == b.n_classes
    for name in METRIC_NAMES:
        x, y = a.metric(name), b.metric(name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert y == pytest.approx(x, rel=1e-12, abs=1e-15), name
    assert_tables(a.table, b.table)
    assert_tables(a.positive_table, b.positive_table)
    assert (a.classwise_bins is None) == (b.classwise_bins is None)
    if a.classwise_bins is not None and b.classwise_bins is not None:
        assert np.array_equal(a.classwise_bins.count, b.classwise_bins.count)
        np.testing.assert_allclose(
            b.classwise_bins.sum_p, a.classwise_bins.sum_p, rtol=1e-12, atol=1e-12
        )
        assert np.array_equal(a.classwise_bins.sum_y, b.classwise_bins.sum_y)


@pytest.mark.parametrize("binning_", ["width", "mass"])
@pytest.mark.parametrize("name", NAMES)
def test_tiny_chunks_equal_one_chunk(name: str, binning_: str) -> None:
    s, y, plan = prepared(name)
    one = results(lambda: [(s, y, 0)], plan, binning_, jobs=None)
    many = results(tiny(s, y), plan, binning_, jobs=None)
    assert_same_results(one, many)
    # and the one-chunk path is what relcal.evaluate gives
    z, labels, ignore = dataset(name)
    ev = relcal.evaluate(z, labels, ignore_index=ignore, binning=binning_)
    assert_same_results(one, ev)


@pytest.mark.parametrize("name", NAMES)
def test_mass_edges_are_numpys_quantiles(name: str) -> None:
    """The mergeable search gives np.quantile's edges bit for bit, in tiny
    chunks too: the same algorithm in memory and streamed."""
    s, y, plan = prepared(name)
    _, samples = reduce_chunks_with_samples([(s, y, 0)], plan)
    for source in (lambda: [(s, y, 0)], tiny(s, y)):
        r = results(source, plan, "mass", jobs=None)
        assert np.array_equal(r.table.edges, mass_edges(samples.confidence, 15))
        if samples.positive is not None:
            assert r.positive_table is not None
            want = mass_edges(samples.positive, 15)
            assert np.array_equal(r.positive_table.edges, want)


@pytest.mark.parametrize(
    "name", ["multi_logits_ignore", "seg_ignore", "binary_1d_probs"]
)
def test_results_do_not_depend_on_jobs(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rd, "CHUNK_BYTES", 1 << 11)  # many blocks per chunk
    s, y, plan = prepared(name)
    got = [results(lambda: [(s, y, 0)], plan, "width", jobs) for jobs in (1, 2, 3)]
    for other in got[1:]:
        for metric in METRIC_NAMES:
            assert other.metric(metric) == got[0].metric(metric)  # bit for bit
        assert np.array_equal(other.table.sum_conf, got[0].table.sum_conf)


def test_merge_is_associative_and_keeps_counts() -> None:
    s, y, plan = prepared("multi_logits")
    a, b, c = (reduce_chunk(s[i::3], y[i::3], plan) for i in range(3))
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    assert left.n == right.n == len(y)
    assert left.n_correct == right.n_correct == a.n_correct + b.n_correct + c.n_correct
    for name in ("sum_confidence", "sum_nll", "sum_brier"):
        assert getattr(left, name) == pytest.approx(getattr(right, name), rel=1e-14)
    assert left.table is not None and right.table is not None
    assert np.array_equal(left.table.count, right.table.count)
    whole = reduce_chunk(s, y, plan)  # another order of the same samples
    assert whole.table is not None and whole.classwise is not None
    assert left.classwise is not None
    assert np.array_equal(whole.table.count, left.table.count)
    assert np.array_equal(whole.classwise.count, left.classwise.count)
    assert whole.sum_nll == pytest.approx(left.sum_nll, rel=1e-12)


def test_merge_refuses_other_classes() -> None:
    a = Summary(n_classes=3, n=1, n_correct=1, sum_confidence=0.5)
    with pytest.raises(ValueError, match="different numbers of classes"):
        a.merge(Summary(n_classes=4, n=1, n_correct=0, sum_confidence=0.5))


def test_samples_carry_their_units() -> None:
    """``unit``: the global leading-axis row of each kept sample (the image of
    a pixel), counted from each chunk's ``start``."""
    s, y, plan = prepared("seg_ignore")
    _, samples = reduce_chunks_with_samples(tiny(s, y)(), plan)
    keep = y.reshape(len(y), -1) != IGNORE
    want = np.repeat(np.arange(len(y)), keep.sum(axis=1))
    assert np.array_equal(samples.unit, want)
    s, y, plan = prepared("multi_logits_ignore")
    _, samples = reduce_chunks_with_samples(tiny(s, y)(), plan)
    assert np.array_equal(samples.unit, np.flatnonzero(y != IGNORE))


def test_a_bad_value_in_a_later_chunk_is_located_in_the_whole() -> None:
    z, y = make_logits(100, 10, seed=2)
    z[73, 3] = np.nan
    s, labels, kind, c = prepare(z, y, kind="logits")
    with pytest.raises(InputError) as err:
        reduce_chunks(array_chunks(s, labels, 7), plan_for(kind, c))
    assert str(err.value) == (
        "scores: 1 values are NaN or +inf (first: nan at row 73, column 3)"
    )


def test_progress_advances_by_the_bytes_reduced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(relcal.progress, "advance", seen.append)
    # blocks of 2 float64 pixels
    monkeypatch.setattr(rd, "block_bytes", lambda n_classes: 1 << 6)
    s, y, plan = prepared("seg_ignore")
    reduce_chunks(tiny(s, y)(), plan)
    assert len(seen) == len(y) * 21 and sum(seen) == s.nbytes


def search(values: np.ndarray, n_bins: int, chunk: int) -> tuple[np.ndarray, int]:
    """QuantileSearch over ``values`` in chunks; (edges, passes)."""
    q, passes = QuantileSearch(n_bins), 0
    while not q.done:
        probe = q.next_probe()
        parts = [
            probe.measure(values[i : i + chunk]) for i in range(0, len(values), chunk)
        ]
        merged = parts[0]
        for p in parts[1:]:
            merged = merged.merge(p)
        q.update(len(values), merged)
        passes += 1
    return q.edges(), passes


@pytest.mark.parametrize(
    "make",
    [
        lambda r: r.random(5000),
        lambda r: r.random(3),
        lambda r: np.ones(50),
        lambda r: np.round(r.random(4000), 2),  # ties
        lambda r: 1 - r.random(20_000) ** 8 * 1e-9,  # crowded just below 1
        lambda r: r.random(20_000).astype(np.float32).astype(np.float64),
        lambda r: np.concatenate([np.ones(20_000), r.random(9)]),
    ],
)
@pytest.mark.parametrize("n_bins", [1, 2, 15, 97])
def test_quantile_search_equals_np_quantile(
    make: Callable[[np.random.Generator], np.ndarray],
    n_bins: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = make(np.random.default_rng(n_bins))
    edges, _ = search(values, n_bins, chunk=333)
    assert np.array_equal(edges, mass_edges(values, n_bins))
    # with little room to collect values, it histograms narrower ranges
    monkeypatch.setattr(binning, "COLLECT_MAX", 4)
    edges, passes = search(values, n_bins, chunk=333)
    assert np.array_equal(edges, mass_edges(values, n_bins))
    assert passes <= 6


@pytest.mark.parametrize("collect_max", [4, 1 << 16])
@pytest.mark.parametrize("name", ["multi_probs_ties", "seg_ignore", "binary_1d_probs"])
def test_mass_bins_equal_binning_the_samples(
    name: str, collect_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The passes of equal-mass binning (narrower histograms when few values
    may be collected) give the table of the samples binned on np.quantile's
    edges: same counts, sums to 1e-12; ties (probabilities rounded to 0.01)
    held back per distinct value."""
    monkeypatch.setattr(binning, "COLLECT_MAX", collect_max)
    if name == "multi_probs_ties":
        z, y = make_logits(3000, 5, seed=4)
        p = np.round(softmax(z), 2)
        s, labels, kind, c = prepare(p / p.sum(axis=1, keepdims=True), y)
        s = np.round(s, 2)  # ties at every 0.01 (rows sum to 1 within 1e-2)
        plan = plan_for("probs", c)
    else:
        s, labels, plan = prepared(name)
    _, samples = reduce_chunks_with_samples([(s, labels, 0)], plan)
    got = results(tiny(s, labels), plan, "mass", jobs=2)
    edges = mass_edges(samples.confidence, 15)
    want = binning.bin_table(samples.confidence, samples.correct, edges)
    assert np.array_equal(got.table.edges, edges)
    assert np.array_equal(got.table.count, want.count)
    np.testing.assert_allclose(got.table.sum_conf, want.sum_conf, rtol=1e-12)
    np.testing.assert_array_equal(got.table.correct, want.correct)


def test_crowded_values_need_a_narrower_histogram(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = 1 - np.random.default_rng(1).random(20_000) ** 8 * 1e-9
    monkeypatch.setattr(binning, "COLLECT_MAX", 16)
    edges, passes = search(values, 15, chunk=1000)
    assert np.array_equal(edges, mass_edges(values, 15))
    assert passes >= 3  # the first histogram, a narrower one, then values


def test_float32_top_label_path_equals_float64() -> None:
    """relcal.ece (top-label quantities only) on float32 logits equals the
    float64 pass of evaluate: the kernel's float64 exp, or without it a float32
    exp whose row sums accumulate in float64 (before: float32 sums, 1e-8 off
    at 200 classes)."""
    exact = relcal.kernel.status() == "libmvec"
    for c in (10, 200):
        z, y = make_logits(3000, c, seed=c)
        z = z.astype(np.float32)
        want = relcal.evaluate(z, y).ece
        assert relcal.ece(z, y) == pytest.approx(want, rel=1e-12 if exact else 1e-8)


def test_plan_of_what_is_asked() -> None:
    plan = plan_for("logits", 2, None, n_bins=5)
    assert plan.positive_edges is not None and len(plan.positive_edges) == 6
    assert not plan.top_only
    top = replace(plan, nll=False, brier=False, classwise_edges=None)
    assert top.top_only and not replace(top, float64=True).top_only
    assert plan_for("toplabel", 2).classwise_edges is None


@pytest.mark.parametrize("binning_", ["width", "mass"])
@pytest.mark.parametrize(
    "name", ["multi_logits_ignore", "seg_ignore", "binary_1d_probs"]
)
def test_a_stream_in_tiny_chunks_equals_the_loaded_file(
    tmp_path: Path, name: str, binning_: str
) -> None:
    from relcal.io import load
    from relcal.metrics import evaluate_predictions, evaluate_stream
    from relcal.stream import open_stream

    z, y, ignore = dataset(name)
    path = tmp_path / "p.npz"
    np.savez(path, scores=z, labels=y)
    want = evaluate_predictions(load(path, ignore_index=ignore), binning=binning_)
    stream = open_stream(path, ignore_index=ignore)
    got = evaluate_stream(stream, rows=1 if z.ndim > 2 else 7, binning=binning_)
    assert_same_results(want, got)
    assert got.class_names == want.class_names


def test_a_stream_error_names_its_file(tmp_path: Path) -> None:
    from relcal.metrics import evaluate_stream
    from relcal.stream import open_stream

    z, y = make_logits(50, 3, seed=1)
    z[31, 2] = np.inf
    path = tmp_path / "p.npz"
    np.savez(path, logits=z, labels=y)
    with pytest.raises(InputError) as err:
        evaluate_stream(open_stream(path, kind="logits"), rows=7)
    assert str(err.value) == (
        f"{path}: scores: 1 values are NaN or +inf (first: inf at row 31, column 2)"
    )


def test_two_class_segmentation_with_equal_mass_bins() -> None:
    """A (N, 2, H, W) map has no positive-class bins with equal-width bins; with
    equal-mass bins it gets the same metrics on the same top-label edges
    (it once failed an assertion: fuzz seed 4242, case 524)."""
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 2, 5, 4)).astype(np.float32)
    y = rng.integers(0, 2, (3, 5, 4))
    y[0, 0] = -1
    mass = relcal.evaluate(s, y, binning="mass", ignore_index=-1)
    width = relcal.evaluate(s, y, binning="width", ignore_index=-1)
    assert mass.positive_table is None and width.positive_table is None
    assert mass.n == width.n == 56
    conf = np.sort(np.max(np.exp(s) / np.exp(s).sum(1, keepdims=True), 1)[y != -1])
    edges = np.quantile(conf.astype(np.float64), np.linspace(0, 1, 16))
    np.testing.assert_allclose(mass.table.edges[1:-1], edges[1:-1], rtol=1e-6)
    assert mass.table.count.sum() == 56
    assert mass.metric("nll") == pytest.approx(width.metric("nll"), rel=1e-12)
