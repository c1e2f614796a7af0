"""The execution paths of relcal.reduce agree with each other.

(N, C) scores with few classes are reduced class axis first (each chunk copied
transposed); the others row by row.  Both, in one chunk or in many (and so on
two threads), must give the same per-sample values and accumulators, on
logits, probabilities, float16, -inf logits, ties and ignored samples.
"""

from __future__ import annotations

import numpy as np
import pytest

import relcal
from relcal import reduce as rd
from relcal.binning import BinTable, assign_bins, uniform_edges
from relcal.errors import InputError
from relcal.summary import (
    ClasswiseBins,
    Plan,
    SampleValues,
    Summary,
    reduce_chunks,
    reduce_chunks_with_samples,
)
from relcal.synth import make_logits
from relcal.temperature import softmax
from relcal.validate import check_labels, detect_kind

EDGES = uniform_edges(15)
IGNORE = 255


@pytest.fixture(params=["transposed", "rows"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "rows":
        monkeypatch.setattr(rd, "TRANSPOSE_MAX_CLASSES", 0)
    return str(request.param)


@pytest.fixture(params=["one_chunk", "many_chunks"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "many_chunks":
        monkeypatch.setattr(rd, "CHUNK_BYTES", 1 << 12)  # a few hundred rows each
    return str(request.param)


class Reduction:
    """A summary and the per-sample values of the same pass."""

    def __init__(self, summary: Summary, samples: SampleValues) -> None:
        self.summary, self.samples = summary, samples
        self.n = summary.n
        self.labels, self.correct = samples.labels, samples.correct
        self.confidence, self.nll, self.brier = (
            samples.confidence,
            samples.nll,
            samples.brier,
        )
        self.table: BinTable | None = summary.table
        self.classwise: ClasswiseBins | None = summary.classwise


def reduce_scores(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    kind: str,
    n_classes: int,
    ignore_index: int | None = None,
    classwise_edges: np.ndarray | None = None,
    brier: bool = True,
    nll: bool = True,
    toplabel_edges: np.ndarray | None = None,
    threads: int | None = None,
) -> Reduction:
    plan = Plan(
        n_classes,
        kind,
        ignore_index,
        toplabel_edges=toplabel_edges,
        classwise_edges=classwise_edges,
        nll=nll,
        brier=brier,
    )
    return Reduction(
        *reduce_chunks_with_samples([(scores, labels, 0)], plan, jobs=threads)
    )


def reduce_both(
    scores: np.ndarray, labels: np.ndarray, **kw: object
) -> tuple[Reduction, Reduction]:
    """``reduce_scores`` on the transposed path, then on the row path."""
    first = _reduce(scores, labels, **kw)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rd, "TRANSPOSE_MAX_CLASSES", 0)
        second = _reduce(scores, labels, **kw)  # type: ignore[arg-type]
    return first, second


def _reduce(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    kind: str = "logits",
    ignore_index: int | None = None,
    top_only: bool = False,
) -> Reduction:
    full = not top_only
    return reduce_scores(
        scores,
        labels,
        kind=kind,
        n_classes=scores.shape[1],
        ignore_index=ignore_index,
        classwise_edges=EDGES if full else None,
        brier=full,
        nll=full,
        toplabel_edges=EDGES,
        threads=2,
    )


def assert_same(a: Reduction, b: Reduction, rtol: float) -> None:
    assert a.n == b.n
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.correct, b.correct)
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=rtol, atol=0)
    for x, y in ((a.nll, b.nll), (a.brier, b.brier)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-13)
    assert a.table is not None and b.table is not None
    assert np.array_equal(a.table.count, b.table.count)
    assert np.array_equal(a.table.correct, b.table.correct)
    np.testing.assert_allclose(a.table.sum_conf, b.table.sum_conf, rtol=rtol)
    assert (a.classwise is None) == (b.classwise is None)
    if a.classwise is not None and b.classwise is not None:
        assert np.array_equal(a.classwise.count, b.classwise.count)
        assert np.array_equal(a.classwise.sum_y, b.classwise.sum_y)
        np.testing.assert_allclose(
            a.classwise.sum_p, b.classwise.sum_p, rtol=1e-12, atol=1e-12
        )


def awkward_logits(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits with ties, masked classes (-inf, never at the label) and 5% of the
    labels set to IGNORE."""
    logits, labels = make_logits(n, c, seed=seed)
    rng = np.random.default_rng(seed)
    logits[: n // 10] = np.round(logits[: n // 10])  # many exact ties
    masked = rng.random((n, c)) < 0.1
    masked[np.arange(n), labels] = False
    logits[masked] = -np.inf
    labels = labels.copy()
    labels[rng.random(n) < 0.05] = IGNORE
    return logits, labels


@pytest.mark.parametrize("c", [3, 10, 64])
def test_transposed_equals_rows_full(c: int, chunking: str) -> None:
    logits, labels = awkward_logits(3000, c, seed=c)
    a, b = reduce_both(logits, labels, ignore_index=IGNORE)
    assert_same(a, b, rtol=1e-12)


@pytest.mark.parametrize("c", [3, 10, 64])
def test_transposed_equals_rows_top_only(c: int, chunking: str) -> None:
    # float32 softmax: the transposed path sums in float64, the row path in
    # float32, so confidences agree to float32 rounding
    logits, labels = awkward_logits(3000, c, seed=c)
    a, b = reduce_both(logits, labels, ignore_index=IGNORE, top_only=True)
    assert_same(a, b, rtol=1e-6)


def test_transposed_equals_rows_probabilities(chunking: str) -> None:
    logits, labels = awkward_logits(2000, 7, seed=3)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for dtype in (np.float64, np.float32):
        a, b = reduce_both(p.astype(dtype), labels, kind="probs", ignore_index=IGNORE)
        assert_same(a, b, rtol=1e-12)


def test_transposed_equals_rows_float16(chunking: str) -> None:
    logits, labels = make_logits(2000, 10, seed=4)
    a, b = reduce_both(logits.astype(np.float16), labels)
    assert_same(a, b, rtol=1e-12)


def test_chunked_equals_one_chunk(layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    logits, labels = awkward_logits(3000, 10, seed=7)
    one = _reduce(logits, labels, ignore_index=IGNORE)
    monkeypatch.setattr(rd, "CHUNK_BYTES", 1 << 12)
    many = _reduce(logits, labels, ignore_index=IGNORE)
    assert_same(one, many, rtol=1e-12)


def test_evaluate_few_classes_equals_row_path(monkeypatch: pytest.MonkeyPatch) -> None:
    logits, labels = awkward_logits(4000, 10, seed=11)
    fast = relcal.evaluate(logits, labels, ignore_index=IGNORE)
    monkeypatch.setattr(rd, "TRANSPOSE_MAX_CLASSES", 0)
    rows = relcal.evaluate(logits, labels, ignore_index=IGNORE)
    for name in ("accuracy", "ece", "rms_ce", "mce", "classwise_ece", "nll", "brier"):
        assert getattr(fast, name) == pytest.approx(getattr(rows, name), abs=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_same_error_on_both_paths(bad: float, chunking: str) -> None:
    logits, labels = make_logits(1000, 10, seed=2)
    logits[700, 3] = bad
    messages = set()
    for path in ("transposed", "rows"):
        with pytest.MonkeyPatch.context() as mp:
            if path == "rows":
                mp.setattr(rd, "TRANSPOSE_MAX_CLASSES", 0)
            with pytest.raises(InputError) as err:
                relcal.evaluate(logits, labels)
        messages.add(str(err.value))
    assert len(messages) == 1
    assert "row 700, column 3" in messages.pop()


def test_minus_inf_at_label_raises_on_transposed_path() -> None:
    logits, labels = make_logits(500, 10, seed=3)
    logits[123, labels[123]] = -np.inf
    with pytest.raises(InputError, match="true class has a logit of -inf"):
        relcal.evaluate(logits, labels)


def test_assign_bins_out_of_range_values_go_to_the_end_bins() -> None:
    for n_bins in (2, 15, 100):
        edges = uniform_edges(n_bins)
        values = np.array([-0.5, -1e-12, 0.0, 1.0, 1 + 1e-12, 2.0])
        expected = [0, 0, 0, n_bins - 1, n_bins - 1, n_bins - 1]
        assert assign_bins(values, edges).tolist() == expected


def test_detect_kind_reads_past_a_probability_like_corner() -> None:
    # the peek at a corner of (N, C, H, W) scores only settles "logits" early;
    # scores whose corner looks like probabilities are still read in full
    rng = np.random.default_rng(0)
    p = rng.random((2, 3, 40, 40))
    p /= p.sum(axis=1, keepdims=True)
    assert detect_kind(p) == "probs"
    logits = p.copy()
    logits[1, :, 30:, 30:] -= 5.0  # negative, outside the corner
    assert detect_kind(logits) == "logits"


def test_check_labels_negative_and_ignored() -> None:
    assert check_labels(np.array([0, 2, 255]), 3, ignore_index=255).tolist() == [
        0,
        2,
        255,
    ]
    with pytest.raises(InputError, match=r"1 values outside \[0, 2\] \(first: -1"):
        check_labels(np.array([0, -1, 255]), 3, ignore_index=255)
    with pytest.raises(InputError, match=r"first: 255 at row 2"):
        check_labels(np.array([0, 1, 255]), 3)


def test_minus_inf_at_class_0_of_an_ignored_pixel_is_fine() -> None:
    # an ignored pixel stands in label 0 internally; its class 0 may be masked
    logits, labels = make_logits(8, 3, seed=1)
    seg = logits.T.reshape(1, 3, 2, 4).copy()  # (N, C, H, W)
    y = labels.reshape(1, 2, 4).copy()
    y[0, 1, 2] = IGNORE
    seg[0, 0, 1, 2] = -np.inf
    r = relcal.evaluate(seg, y, ignore_index=IGNORE)
    keep = y.ravel() != IGNORE
    ref = relcal.evaluate(seg.reshape(3, -1).T[keep], y.ravel()[keep])
    assert r.n == 7
    assert r.nll == pytest.approx(ref.nll, abs=1e-12)
    assert r.ece == pytest.approx(ref.ece, abs=1e-12)


def test_minus_inf_in_an_ignored_binary_sample_is_fine() -> None:
    logits = np.array([[0.0, 1.0], [-np.inf, 2.0], [1.0, 0.5]], dtype=np.float32)
    labels = np.array([1, IGNORE, 0])
    r = relcal.evaluate(logits, labels, ignore_index=IGNORE)
    ref = relcal.evaluate(logits[[0, 2]], labels[[0, 2]], kind="logits")
    assert r.n == 2
    assert r.nll == pytest.approx(ref.nll, abs=1e-12)
    assert r.brier == pytest.approx(ref.brier, abs=1e-12)
    with pytest.raises(InputError, match="true class has a logit of -inf"):
        relcal.evaluate(logits, np.array([1, 0, 0]), ignore_index=IGNORE)


def test_transposed_path_float64_and_fortran_order() -> None:
    logits, labels = awkward_logits(2000, 10, seed=9)
    for scores in (logits.astype(np.float64), np.asfortranarray(logits)):
        for top_only in (False, True):
            a, b = reduce_both(scores, labels, ignore_index=IGNORE, top_only=top_only)
            float32_sums = top_only and scores.dtype == np.float32
            assert_same(a, b, rtol=1e-6 if float32_sums else 1e-12)


def test_toplabel_nonfinite_confidence_is_named() -> None:
    from relcal.errors import InputError
    from relcal.reduce import reduce_toplabel

    conf = np.array([0.5, 0.9, -np.inf, np.nan])
    with pytest.raises(InputError, match=r"confidence: 2 values are NaN or infinite"):
        reduce_toplabel(conf, np.zeros(4, dtype=int), np.zeros(4, dtype=int), 2)


@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_totals_only_equal_the_per_sample_means(
    layout: str, chunking: str, kind: str
) -> None:
    """Sums only (what ``evaluate`` uses) give the same metrics as
    the per-sample arrays, ignored samples included."""
    z, y = make_logits(3000, 12, seed=5, temperature=2.0)
    y = y.copy()
    y[::7] = IGNORE
    scores = z if kind == "logits" else softmax(z)
    kw = dict(
        kind=kind,
        n_classes=12,
        ignore_index=IGNORE,
        classwise_edges=EDGES,
        toplabel_edges=EDGES,
    )
    full = reduce_scores(scores, y, **kw)  # type: ignore[arg-type]
    plan = Plan(12, kind, IGNORE, toplabel_edges=EDGES, classwise_edges=EDGES)
    sums = reduce_chunks([(scores, y, 0)], plan)
    assert sums.n == full.n == np.count_nonzero(y != IGNORE)
    a = relcal.metrics.summarize(full.summary, kind=kind)
    b = relcal.metrics.summarize(sums, kind=kind)
    assert full.nll is not None and full.brier is not None
    assert a.nll == pytest.approx(float(np.mean(full.nll)), rel=1e-12)
    assert a.brier == pytest.approx(float(np.mean(full.brier)), rel=1e-12)
    assert a.accuracy == pytest.approx(float(np.mean(full.correct)), rel=1e-12)
    for name in ("accuracy", "mean_confidence", "ece", "mce", "rms_ce", "nll", "brier"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-12), name
    assert b.classwise_ece == pytest.approx(a.classwise_ece, rel=1e-12)
    np.testing.assert_array_equal(b.table.count, a.table.count)
    ev = relcal.evaluate(scores, y, kind=kind, ignore_index=IGNORE)
    assert ev.nll == pytest.approx(a.nll, rel=1e-12)
    assert ev.ece == pytest.approx(a.ece, rel=1e-12)


def reduce_rows_or_seg(
    logits: np.ndarray, labels: np.ndarray, seg: bool, top_only: bool
) -> Reduction:
    """(N, C) logits as they are, or as one (1, C, 8, N/8) segmentation map."""
    c = logits.shape[1]
    if seg:
        logits = np.ascontiguousarray(logits.T).reshape(1, c, 8, -1)
        labels = labels.reshape(1, 8, -1)
    return reduce_scores(
        logits,
        labels,
        kind="logits",
        n_classes=c,
        classwise_edges=None if top_only else EDGES,
        brier=not top_only,
        nll=not top_only,
        toplabel_edges=EDGES,
    )


@pytest.mark.parametrize("c", [3, 100])
@pytest.mark.parametrize("seg", [False, True])
@pytest.mark.parametrize("top_only", [False, True])
@pytest.mark.parametrize("value", [3.7, 0.3, -7.1, 41.9])
def test_two_way_ties_at_every_value_go_to_the_first_class(
    c: int, seg: bool, top_only: bool, value: float
) -> None:
    # two maxima and every other class masked: p_top is exactly 1/2
    logits = np.full((64, c), -np.inf, dtype=np.float32)
    logits[:, 1] = logits[:, 2] = value
    red = reduce_rows_or_seg(logits, np.tile([1, 2], 32), seg, top_only)
    assert red.correct is not None
    assert red.correct.tolist() == [True, False] * 32
    np.testing.assert_allclose(red.confidence, 0.5, rtol=1e-6)


@pytest.mark.parametrize("c", [3, 100])
@pytest.mark.parametrize("seg", [False, True])
@pytest.mark.parametrize("top_only", [False, True])
def test_a_dominant_logit_gives_a_confidence_of_exactly_one(
    c: int, seg: bool, top_only: bool
) -> None:
    # the others 60 below: p_top = 1 / (1 + (C - 1) e^-60) rounds to 1.0 in
    # float32 and float64, as torch's and numpy's softmax give; bin rules
    # disagree on 1.0, so the count of such confidences must not move by an ulp
    top = np.linspace(-30, 40, 64).astype(np.float32)
    logits = (top[:, None] - np.float32(60)) * np.ones((1, c), np.float32)
    logits[:, 1] = top
    red = reduce_rows_or_seg(logits, np.ones(64, dtype=np.int64), seg, top_only)
    assert red.confidence is not None
    assert np.all(red.confidence == 1.0)
