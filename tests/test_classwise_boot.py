"""The class-wise ECE's bootstrap: the streamed replicate sums against a
direct weighted computation, for every layout the reduction has."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.binning import assign_bins, uniform_edges
from relcal.bootstrap import classwise_replicates, unit_weights
from relcal.cli import cli


def _probs(z: np.ndarray, kind: str) -> np.ndarray:
    if kind == "probs":
        return z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _direct(
    scores: np.ndarray, labels: np.ndarray, kind: str, ignore: int | None, reps: int
) -> np.ndarray:
    """Each replicate's class-wise ECE, weighing each leading-axis row by its
    Poisson weight (the definition, one class and bin at a time)."""
    n, c = scores.shape[:2]
    p = _probs(scores.astype(np.float64), kind)
    unit = np.repeat(np.arange(n), int(np.prod(scores.shape[2:], dtype=int)))
    p = np.moveaxis(p, 1, -1).reshape(-1, c)
    y = labels.reshape(-1)
    if ignore is not None:
        keep = y != ignore
        p, y, unit = p[keep], y[keep], unit[keep]
    w = unit_weights(unit, reps, seed=0)  # (samples, replicates)
    edges = uniform_edges(15)
    per_class = np.zeros((reps, c))
    for k in range(c):
        bins = assign_bins(p[:, k], edges)
        gap = p[:, k] - (y == k)
        for b in np.unique(bins):
            at = bins == b
            per_class[:, k] += np.abs(gap[at] @ w[at])
    return per_class.mean(axis=1) / w.sum(axis=0)


CASES = {
    # (shape, kind, ignore): few classes (class-first blocks), many classes
    # (row blocks), two classes, segmentation with an ignore label, and
    # probabilities with ignored rows
    "few": ((400, 5), "logits", None),
    "many": ((300, 80), "logits", None),
    "binary": ((500, 2), "logits", None),
    "seg": ((6, 4, 9, 7), "logits", 255),
    # more images than relcal.bootstrap.FLUSH_UNITS: weighed in two goes
    "seg_many": ((300, 3, 2, 3), "logits", 255),
    "probs": ((400, 6), "probs", 255),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_classwise_replicates_match_the_definition(case: str) -> None:
    shape, kind, ignore = CASES[case]
    rng = np.random.default_rng(len(case))
    z = rng.normal(size=shape) * 2.5
    if kind == "probs":
        z = _probs(z, "logits")
    y = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    if ignore is not None:
        y[rng.random(y.shape) < 0.2] = ignore
    r = relcal.evaluate(z, y, kind=kind, ignore_index=ignore, ci=0.9, n_replicates=150)
    got = r.classwise_bins.replicates
    assert got is not None and got.n_replicates == 150
    want = _direct(z, y, kind, ignore, 150)
    total = unit_weights(
        np.repeat(np.arange(shape[0]), int(np.prod(shape[2:], dtype=int)))[
            (y.reshape(-1) != ignore) if ignore is not None else slice(None)
        ],
        150,
        seed=0,
    ).sum(axis=0)
    np.testing.assert_allclose(got.eces(total), want, rtol=1e-10)
    iv = r.intervals["classwise_ece"]
    assert iv.low <= r.classwise_ece + abs(iv.bias) * 2 + 1e-12
    assert iv.low < iv.high
    assert r.ci["n_replicates_classwise"] == 150


def test_cap_on_classes_times_bins() -> None:
    assert classwise_replicates(1000, 1000, 15) == 279
    assert classwise_replicates(1000, 20_000, 15) == 0
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 3000)).astype(np.float32)
    r = relcal.evaluate(z, rng.integers(0, 3000, 50), ci=0.9, n_replicates=200)
    assert r.classwise_ece is not None
    assert "classwise_ece" not in r.intervals  # 3000 x 15 cells: too many
    assert "n_replicates_classwise" not in r.ci


def test_classwise_interval_does_not_depend_on_chunks_or_jobs(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    f = tmp_path / "p.npz"
    np.savez(f, logits=rng.normal(size=(900, 70)) * 3, labels=rng.integers(0, 70, 900))
    args = ["metrics", str(f), "--ci", "0.9", "--json"]
    a = json.loads(CliRunner().invoke(cli, [*args, "--jobs", "1"]).output)
    res = CliRunner().invoke(
        cli, [*args, "--jobs", "2"], env={"RELCAL_CHUNK_ROWS": "17"}
    )
    b = json.loads(res.output)
    one, other = (d["intervals"]["metrics"]["classwise_ece"] for d in (a, b))
    for end in ("low", "high", "estimate"):
        assert one[end] == pytest.approx(other[end], rel=1e-12)
    assert a["intervals"]["n_replicates_classwise"] == 1000


def _check(args: list[str]) -> dict:
    res = CliRunner().invoke(cli, ["check", *args, "--json"])
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.output)


def test_check_gates_classwise_ece_on_its_interval(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    z = rng.normal(size=(800, 6)) * 2
    y = rng.integers(0, 6, 800)
    new, old = tmp_path / "new.npz", tmp_path / "old.npz"
    np.savez(new, logits=z, labels=y)
    np.savez(old, logits=z * 1.5, labels=y)  # sharper: worse class-wise ECE
    one = _check([str(new), "--max-classwise-ece", "1", "--confidence", "0.95"])
    iv = one["checks"][0]["interval"]
    assert iv is not None and iv["low"] < one["checks"][0]["value"] + 0.02
    assert not any("class-wise" in n for n in one["notes"])
    paired = _check(
        [
            str(new),
            "--baseline",
            str(old),
            "--confidence",
            "0.95",
            "--max-classwise-ece-increase",
            "0",
        ]
    )
    c = paired["checks"][0]
    assert c["value"] < 0 and c["interval"]["high"] < 0  # clearly better
    assert c["verdict"] == "pass"


def test_check_too_many_classes_is_gated_on_the_point(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    f = tmp_path / "wide.npz"
    np.savez(f, logits=rng.normal(size=(40, 3000)), labels=rng.integers(0, 3000, 40))
    d = _check(
        [
            str(f),
            "--max-classwise-ece",
            "1",
            "--confidence",
            "0.9",
            "--bootstrap",
            "200",
            "--min-samples",
            "1",
        ]
    )
    assert d["checks"][0]["interval"] is None
    assert any("class-wise ECE is gated on its point estimate" in n for n in d["notes"])
