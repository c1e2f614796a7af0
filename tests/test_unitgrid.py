"""Intervals of the unbinned metrics with whole images as the units
(:mod:`relcal.unitgrid`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.bootstrap import unit_weights
from relcal.cli import cli
from relcal.unitgrid import FLUSH_UNITS, N_CELLS, UnitGrid, grid_cells


def test_grid_cells_are_ordered_and_fine_near_one() -> None:
    p = np.sort(np.random.default_rng(0).random(50_000) ** 0.01)  # near 1
    cells = grid_cells(p)
    assert np.all(np.diff(cells) >= 0)
    assert cells.min() >= 0 and cells.max() < N_CELLS
    # 1 - p from 1e-2 to 1e-6 spans hundreds of cells, not one
    assert len(np.unique(grid_cells(1 - np.geomspace(1e-2, 1e-6, 1000)))) > 500


def _direct(units: np.ndarray, conf: np.ndarray, right: np.ndarray, reps: int):
    w = unit_weights(units, reps, seed=3)  # (samples, replicates)
    cells = grid_cells(conf)
    out = np.zeros((reps, 3, N_CELLS))
    for col, x in enumerate((np.ones_like(conf), right.astype(float), conf)):
        for r in range(reps):
            out[r, col] = np.bincount(cells, weights=w[:, r] * x, minlength=N_CELLS)
    return out


@pytest.mark.parametrize("n_images", [7, FLUSH_UNITS + 40])
def test_grid_replicates_weigh_whole_images(n_images: int) -> None:
    rng = np.random.default_rng(n_images)
    units = np.sort(rng.integers(0, n_images, 4000))
    conf = rng.random(4000) ** 0.2
    right = rng.random(4000) < conf
    reps = 20
    # in pieces merged in order, as blocks of a stream are
    cuts = np.r_[0, np.sort(rng.integers(0, 4000, 30)), 4000]
    grid = None
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        part = UnitGrid.of(
            units[lo:hi], conf[lo:hi], right[lo:hi], n_replicates=reps, seed=3
        )
        grid = part if grid is None else grid.merge(part)
    assert grid is not None
    np.testing.assert_allclose(
        grid.replicates(), _direct(units, conf, right, reps), rtol=1e-12, atol=1e-9
    )
    assert grid.whole[0].sum() == 4000


def _clustered(rng: np.random.Generator, n_images: int, pixels: int):
    """Images whose pixels share a calibration offset: pixels are not
    independent, images are."""
    logits = rng.normal(size=(n_images, 3, pixels)) * 2
    shift = rng.normal(size=(n_images, 1)) * 1.5  # per image
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    top = p.argmax(axis=1)
    acc = 1 / (
        1 + np.exp(-(np.log(p.max(axis=1) / (1 - p.max(axis=1) + 1e-9)) + shift))
    )
    right = rng.random(acc.shape) < acc
    other = (top + rng.integers(1, 3, top.shape)) % 3
    labels = np.where(right, top, other)
    return logits.reshape(n_images, 3, pixels, 1), labels.reshape(n_images, pixels, 1)


def test_images_as_units_widen_the_interval() -> None:
    rng = np.random.default_rng(5)
    z, y = _clustered(rng, 30, 200)
    seg = relcal.evaluate(z, y, ci=0.95)
    # the same pixels, each its own row: independent samples
    rows = relcal.evaluate(np.moveaxis(z, 1, -1).reshape(-1, 3), y.reshape(-1), ci=0.95)
    assert seg.aurc == pytest.approx(rows.aurc, rel=1e-12)
    for name in ("smooth_ece", "aurc", "auroc"):
        a, b = seg.intervals[name], rows.intervals[name]
        assert a.low <= seg.metric(name) <= a.high
        # per-image offsets make the image bootstrap clearly wider
        assert (a.high - a.low) > 1.5 * (b.high - b.low), name


def test_segmentation_intervals_do_not_depend_on_chunks_or_jobs(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    z, y = _clustered(rng, 12, 60)
    y[:, :5] = 255
    f = tmp_path / "seg.npz"
    np.savez(f, logits=z.astype(np.float32), labels=y)
    args = ["metrics", str(f), "--ci", "0.9", "--json", "--ignore-index", "255"]
    docs = []
    for env, jobs in (({}, "1"), ({"RELCAL_CHUNK_ROWS": "1"}, "2")):
        res = CliRunner().invoke(cli, [*args, "--jobs", jobs], env=env)
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.output))
    a, b = (d["intervals"]["metrics"] for d in docs)
    for name in ("smooth_ece", "aurc", "e_aurc", "auroc"):
        for end in ("low", "high"):
            assert a[name][end] == pytest.approx(b[name][end], rel=1e-12)
    assert docs[0]["intervals"]["unbinned_units"] == "images"
