"""relcal.selective against torch-uncertainty's AURC and scikit-learn's AUROC
(golden values from scripts/make_golden_selective.py), the tie rule against
brute force over orderings, and grouping invariance."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import relcal
from relcal import selective as sel
from relcal.errors import InputError, ShapeError

from .conftest import load_script, need_shared_real

GOLDEN = json.loads((Path(__file__).parent / "golden" / "selective.json").read_text())
GEN = load_script("make_golden_selective")
CASES = {c["name"]: c for c in GOLDEN["cases"]}


def _case_data(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    p = case["params"]
    probs, labels, conf = GEN.make_data(
        p["seed"], p["n"], p["n_classes"], p["scale"], p["decimals"]
    )
    return conf, GEN.correct_of(probs, labels)


def _tu_formula(errors_in_order: np.ndarray) -> float:
    """torch-uncertainty's AURC.compute on errors already in acceptance order:
    r_k = cumsum / k, trapezoid over k / N (k = 1..N), / (1 - 1/N)."""
    n = errors_in_order.size
    r = np.cumsum(errors_in_order) / np.arange(1, n + 1)
    x = np.arange(1, n + 1) / n
    return float(np.trapezoid(r, x) / (1 - 1 / n))


# ------------------------------------------------------------------ golden


def test_torch_uncertainty_doctest() -> None:
    doc = GOLDEN["doctest"]
    probs = np.array(doc["probs"])
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.array(doc["targets"])
    got = sel.aurc_of_samples(conf, correct)
    assert round(got, 4) == doc["published"] == 0.0833
    assert got == pytest.approx(doc["tu_aurc"], abs=1e-15)
    assert sel.auroc_of_samples(conf, correct) == doc["sklearn_auroc"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_cases(name: str) -> None:
    case = CASES[name]
    conf, correct = _case_data(case)
    assert conf.size == case["n"]
    assert np.unique(conf).size == case["n_distinct"]
    s = sel.selective_summary_of_samples(conf, correct)
    assert s.accuracy == pytest.approx(case["accuracy"], abs=1e-15)
    assert s.auroc == pytest.approx(case["sklearn_auroc"], abs=1e-12)
    assert s.oracle_aurc == pytest.approx(case["tu_oracle_aurc"], abs=1e-12)
    if case["params"]["decimals"] is None:  # no ties: the one ordering
        assert case["n_distinct"] == case["n"]
        assert s.aurc == pytest.approx(case["tu_aurc"], abs=1e-12)
        assert s.aurc_min == s.aurc == s.aurc_max
        assert s.e_aurc == pytest.approx(
            case["tu_aurc"] - case["tu_oracle_aurc"], abs=1e-12
        )
        # what a user of torch-uncertainty gets in float32
        assert s.aurc == pytest.approx(case["tu_aurc_float32"], abs=1e-6)
        # the ported formula (used for brute force below) is TU's too
        order = np.argsort(-conf)
        assert _tu_formula((~correct[order]).astype(float)) == pytest.approx(
            case["tu_aurc"], abs=1e-12
        )
    else:  # ties: TU's argsort picks one ordering, inside relcal's bounds
        assert case["n_distinct"] < case["n"]
        assert s.aurc_min < s.aurc < s.aurc_max
        assert s.aurc_min - 1e-12 <= case["tu_aurc"] <= s.aurc_max + 1e-12


def test_real_files_against_sklearn_auroc() -> None:
    """Saved top-label predictions of ../shared/real: AUROC as sklearn's
    roc_auc_score to 1e-12, oracle AURC as torch-uncertainty's, and TU's AURC
    (one arbitrary ordering of the many tied confidences) within the bounds."""
    folder = need_shared_real()
    assert GOLDEN["real"], "golden file has no real-data entries"
    for ref in GOLDEN["real"]:
        pred = relcal.load(folder / ref["file"])
        correct = pred.predicted == pred.labels
        s = sel.selective_summary_of_samples(pred.confidence, correct)
        assert s.n == ref["n"]
        assert s.n_groups == ref["n_distinct"]
        assert s.accuracy == pytest.approx(ref["accuracy"], abs=1e-15)
        assert s.auroc == pytest.approx(ref["sklearn_auroc"], abs=1e-12)
        assert s.oracle_aurc == pytest.approx(ref["tu_oracle_aurc"], abs=1e-12)
        assert s.aurc_min - 1e-12 <= ref["tu_aurc"] <= s.aurc_max + 1e-12


# ---------------------------------------------------------- live references


def _need(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"live reference needs {', '.join(missing)} (not installed)")


@pytest.mark.parametrize("name", ["gen-1000-c10", "gen-1000-c2", "ties-2000-c10-d1"])
def test_live_references(name: str) -> None:
    _need("torch", "torchmetrics", "torch_uncertainty", "sklearn")
    case = CASES[name]
    p = case["params"]
    probs, labels, conf = GEN.make_data(
        p["seed"], p["n"], p["n_classes"], p["scale"], p["decimals"]
    )
    correct = GEN.correct_of(probs, labels)
    tu = GEN.load_tu_risk_coverage()
    live = GEN.references(
        tu, conf, correct, *((probs, labels) if p["decimals"] is None else ())
    )
    s = sel.selective_summary_of_samples(conf, correct)
    assert s.auroc == pytest.approx(live["sklearn_auroc"], abs=1e-12)
    assert s.oracle_aurc == pytest.approx(live["tu_oracle_aurc"], abs=1e-12)
    if p["decimals"] is None:
        assert s.aurc == pytest.approx(live["tu_aurc"], abs=1e-12)
    else:
        assert s.aurc_min - 1e-12 <= live["tu_aurc"] <= s.aurc_max + 1e-12


def test_live_sklearn_with_ties() -> None:
    _need("sklearn")
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    conf = np.round(rng.random(500), 1)
    correct = rng.random(500) < conf
    assert sel.auroc_of_samples(conf, correct) == pytest.approx(
        roc_auc_score(correct, conf), abs=1e-12
    )


# ------------------------------------------------------ tie rule, brute force


def _orderings(
    groups_desc: list[tuple[int, int]],
) -> list[np.ndarray]:
    """Every ordering of the samples (as labelled samples, so a multiset
    ordering appears as often as it is drawn) keeping groups in order."""
    per_group = [
        list(itertools.permutations([1.0] * e + [0.0] * (c - e)))
        for c, e in groups_desc
    ]
    return [np.concatenate(choice) for choice in itertools.product(*per_group)]


def test_tie_rule_is_the_mean_over_orderings() -> None:
    rng = np.random.default_rng(2024)
    checked = 0
    for _ in range(60):
        n_groups = int(rng.integers(1, 5))
        count = rng.integers(1, 4, size=n_groups)
        if count.sum() < 2:
            continue
        sum_y = rng.integers(0, count + 1)
        value = np.sort(rng.choice(100, size=n_groups, replace=False)) / 100
        groups_desc = [
            (int(c), int(c - s)) for c, s in zip(count[::-1], sum_y[::-1], strict=True)
        ]
        curves = np.array([_tu_formula(o) for o in _orderings(groups_desc)])
        args = (value, count.astype(float), sum_y.astype(float))
        assert sel.aurc(*args) == pytest.approx(curves.mean(), abs=1e-13)
        lo, hi = sel.aurc_bounds(*args)
        assert lo == pytest.approx(curves.min(), abs=1e-13)
        assert hi == pytest.approx(curves.max(), abs=1e-13)
        checked += 1
    assert checked > 40


def test_tie_rule_large_groups_against_sampling() -> None:
    """Groups far above the harmonic-number shift: the closed form against
    the exact mean computed position by position (linearity of expectation)."""
    count = np.array([500.0, 37.0, 2000.0, 1.0, 64.0])
    sum_y = np.array([100.0, 30.0, 1900.0, 0.0, 64.0])
    value = np.arange(5.0)
    # E[r_k] position by position, accepted in decreasing value
    c, e = count[::-1], (count - sum_y)[::-1]
    er = []
    done_c = done_e = 0.0
    for cg, eg in zip(c, e, strict=True):
        j = np.arange(1, cg + 1)
        er.append((done_e + j * eg / cg) / (done_c + j))
        done_c += cg
        done_e += eg
    r = np.concatenate(er)
    n = r.size
    want = (math.fsum(r) - (r[0] + r[-1]) / 2) / (n - 1)
    assert sel.aurc(value, count, sum_y) == pytest.approx(want, abs=1e-14)


def test_harmonic_diff_exact_on_integers() -> None:
    pairs = [(0, 1), (0, 7), (3, 19), (19, 20), (20, 21), (5, 5), (100, 1000)]
    pairs += [(10**6, 10**6 + 1), (10**6, 2 * 10**6), (12345, 67890)]
    a = np.array([p[0] for p in pairs], dtype=float)
    b = np.array([p[1] for p in pairs], dtype=float)
    got = sel._harmonic_diff(a, b)
    for (lo, hi), g in zip(pairs, got, strict=True):
        want = math.fsum(1.0 / k for k in range(lo + 1, hi + 1))
        assert g == pytest.approx(want, rel=1e-14, abs=0)


# --------------------------------------------------------- grouping invariance


def test_grouping_invariance() -> None:
    """Exact duplicates grouped by count = the raw samples (same tie rule)."""
    conf, correct = _case_data(CASES["ties-3000-c10-d2"])
    rng = np.random.default_rng(9)
    perm = rng.permutation(conf.size)
    v, c, s = sel.group_samples(conf, correct)
    assert c.sum() == conf.size and np.all(c >= 1) and c.max() > 1
    grouped = sel.selective_summary(v, c, s)
    raw = sel.selective_summary_of_samples(conf[perm], correct[perm])
    assert grouped == raw
    # groups split into sub-groups with equal values merge back
    split_v = np.repeat(v, 2)
    c1 = np.floor(c / 2)
    split_c = np.column_stack([c - c1, c1]).ravel()
    s1 = np.minimum(s, c - c1)
    split_s = np.column_stack([s1, s - s1]).ravel()
    keep = split_c > 0
    assert sel.aurc(split_v[keep], split_c[keep], split_s[keep]) == grouped.aurc
    assert sel.auroc(split_v[keep], split_c[keep], split_s[keep]) == grouped.auroc


def test_coarsened_histogram_bounds_contain_raw() -> None:
    conf, correct = _case_data(CASES["gen-50000-c10"])
    exact = sel.aurc_of_samples(conf, correct)
    for decimals in (3, 2, 1):
        v, c, s = sel.group_samples(np.round(conf, decimals), correct)
        lo, hi = sel.aurc_bounds(v, c, s)
        assert lo <= exact <= hi
        assert sel.auroc(v, c, s) is not None
    # finer bins, tighter bounds
    widths = []
    for decimals in (1, 2, 3):
        lo, hi = sel.aurc_bounds(*sel.group_samples(np.round(conf, decimals), correct))
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2] > 0


def test_sample_order_and_dtype_invariance() -> None:
    conf, correct = _case_data(CASES["gen-1000-c10"])
    perm = np.random.default_rng(1).permutation(conf.size)
    a = sel.aurc_of_samples(conf, correct)
    assert sel.aurc_of_samples(conf[perm], correct[perm]) == a
    assert sel.aurc_of_samples(conf, correct.astype(np.int8)) == a
    assert sel.auroc_of_samples(conf.tolist(), correct.tolist()) == (
        sel.auroc_of_samples(conf, correct)
    )


# ------------------------------------------------------------- other checks


def test_small_examples_and_edge_cases() -> None:
    v, c, s = [0.6, 0.7, 0.8], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]
    rc = sel.risk_coverage(v, c, s)
    assert rc.threshold.tolist() == [0.8, 0.7, 0.6]
    assert rc.coverage.tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    assert rc.risk.tolist() == pytest.approx([0, 0, 1 / 3])
    assert sel.e_aurc(v, c, s) == 0.0  # perfect ranking
    assert sel.auroc(v, c, s) == 1.0
    assert sel.auroc([0.6, 0.7, 0.8], c, [1.0, 0.0, 0.0]) == 0.0
    # all correct / all wrong: AUROC undefined; AURC defined
    assert sel.auroc([0.5, 0.9], [3, 2], [3, 2]) is None
    assert sel.auroc([0.5, 0.9], [3, 2], [0, 0]) is None
    assert sel.aurc([0.5, 0.9], [3, 2], [3, 2]) == 0.0
    assert sel.aurc([0.5, 0.9], [3, 2], [0, 0]) == 1.0
    # N < 2: NaN as torch-uncertainty
    assert math.isnan(sel.aurc([0.5], [1.0], [1.0]))
    assert math.isnan(sel.e_aurc([0.5], [1.0], [0.0]))
    # one tie group of everything: the expected AURC is the error rate
    assert sel.aurc([0.5], [10.0], [3.0]) == pytest.approx(0.7, abs=1e-15)


def test_oracle_close_to_geifman_continuous_form() -> None:
    conf, correct = _case_data(CASES["gen-50000-c10"])
    r = 1 - correct.mean()
    o = sel.oracle_aurc(*sel.group_samples(conf, correct))
    assert o == pytest.approx(r + (1 - r) * math.log(1 - r), abs=1e-3)
    assert sel.e_aurc(*sel.group_samples(conf, correct)) > 0


def test_thinned_curve_keeps_ends_and_is_json() -> None:
    conf, correct = _case_data(CASES["gen-50000-c10"])
    rc = sel.risk_coverage_of_samples(conf, correct)
    assert rc.coverage.size == 50_000
    assert np.all(np.diff(rc.coverage) > 0) and rc.coverage[-1] == 1.0
    t = rc.thinned()
    assert 150 <= len(t["coverage"]) <= 200
    assert t["coverage"][0] == rc.coverage[0] and t["coverage"][-1] == 1.0
    assert t["risk"][-1] == pytest.approx(1 - correct.mean(), abs=1e-15)
    assert json.loads(json.dumps(t)) == t
    small = sel.risk_coverage([0.1, 0.2], [1, 1], [1, 0]).thinned()
    assert small["coverage"] == [0.5, 1.0]
    s = sel.selective_summary_of_samples(conf, correct, max_points=50)
    assert len(s.curve["coverage"]) <= 50
    json.dumps(s.to_dict())


@pytest.mark.parametrize(
    "args, exc, message",
    [
        (([0.2, 0.1], [1, 1], [0, 1]), InputError, "value: must be sorted ascending"),
        (([0.1, 0.2], [1, 0], [0, 0]), InputError, "count: 1 values not > 0"),
        (
            ([0.1, 0.2], [1, 1], [0, 2]),
            InputError,
            "sum_y: 1 values outside [0, count]",
        ),
        (([0.1, np.nan], [1, 1], [0, 1]), InputError, "value: 1 values are NaN"),
        (([0.1, 0.2], [1, 1], [0]), ShapeError, "must have the same length"),
        (([], [], []), ShapeError, "value: empty array"),
        (([[0.1]], [[1]], [[1]]), ShapeError, "value: must be 1-D"),
    ],
)
def test_bad_groups(args: tuple, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message.replace("[", r"\[").replace("]", r"\]")):
        sel.aurc(*args)


def test_bad_samples() -> None:
    with pytest.raises(InputError, match="correct: 1 values not 0 or 1"):
        sel.aurc_of_samples([0.1, 0.2], [0, 2])
    with pytest.raises(ShapeError, match="confidence, correct"):
        sel.auroc_of_samples([0.1, 0.2], [0])
    with pytest.raises(InputError, match="max_points"):
        sel.risk_coverage([0.1], [1], [1]).thinned(1)
