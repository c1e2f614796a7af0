"""The mergeable Poisson bootstrap: weights, replicate sums, chunking, units.

``replicate_sums`` must give the same sums (to 1e-12 relative) however the
samples are cut into chunks, in whatever order the chunks come, with units
that are samples or whole images; the weights depend on (seed, unit,
replicate) only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from relcal.binning import uniform_edges
from relcal.bootstrap import (
    MAX_REPLICATE_BINS,
    REPLICATE_BLOCK,
    RESAMPLING,
    UNIT_BLOCK,
    ReplicateSums,
    Samples,
    block_weights,
    bootstrap,
    check_size,
    replicate_metrics,
    replicate_sums,
    sample_units,
    samples_sums,
    unit_weights,
)
from relcal.cli import cli
from relcal.errors import RelcalError

FIELDS = ("count", "confidence", "correct", "nll", "brier")


def data(n: int, seed: int = 0, n_bins: int = 15) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    return {
        "bin_index": np.searchsorted(uniform_edges(n_bins)[1:-1], conf),
        "confidence": conf,
        "correct": (rng.random(n) < conf).astype(np.float64),
        "nll": rng.exponential(0.5, n),
        "brier": rng.random(n),
    }


def sums_of(
    unit: np.ndarray, d: dict[str, np.ndarray], rows: int, *, reps: int = 300
) -> ReplicateSums:
    """replicate_sums over chunks of ``rows`` samples, merged in order."""
    total = None
    for lo in range(0, len(unit), rows):
        part = replicate_sums(
            unit[lo : lo + rows],
            *(d[k][lo : lo + rows] for k in ("bin_index", *FIELDS[1:])),
            n_bins=15,
            n_replicates=reps,
            seed=7,
        )
        total = part if total is None else total.merge(part)
    assert total is not None
    return total


def assert_same(a: ReplicateSums, b: ReplicateSums, rtol: float = 1e-12) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=0, err_msg=name)


# --------------------------------------------------------------------------
# the weights


def test_weights_are_poisson_one() -> None:
    """Frequencies of 0..5 over 1024 x 256 x 4 weights match Poisson(1)
    (a chi-square test at 6 degrees of freedom, 0.999 quantile 22.46)."""
    w = np.concatenate(
        [block_weights(3, b, q).ravel() for b, q in [(0, 0), (1, 0), (0, 1), (5, 2)]]
    )
    k = np.arange(6)
    pmf = np.array([math.exp(-1) / math.factorial(i) for i in k])
    observed = np.r_[[np.count_nonzero(w == i) for i in k], np.count_nonzero(w > 5)]
    expected = w.size * np.r_[pmf, 1 - pmf.sum()]
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 22.46, chi2
    assert w.max() >= 7  # the tail is drawn too (P(w >= 7) = 8.3e-5)
    assert np.array_equal(w, np.round(w)) and w.min() == 0


def test_weights_depend_on_seed_unit_and_replicate_only() -> None:
    units = np.array([0, 3, UNIT_BLOCK - 1, UNIT_BLOCK, 5 * UNIT_BLOCK + 17])
    w = unit_weights(units, 2 * REPLICATE_BLOCK + 5, seed=4)
    # each unit alone, and in another order, gets the same row
    for i, u in enumerate(units):
        assert np.array_equal(unit_weights(np.array([u]), w.shape[1], seed=4)[0], w[i])
    assert np.array_equal(unit_weights(units[::-1], w.shape[1], seed=4), w[::-1])
    # fewer replicates: the first columns
    assert np.array_equal(unit_weights(units, 10, seed=4), w[:, :10])
    assert not np.array_equal(unit_weights(units, w.shape[1], seed=5), w)
    # units of other blocks are not copies of each other
    assert not np.array_equal(w[0], w[3])


# --------------------------------------------------------------------------
# chunk independence


@pytest.mark.parametrize("rows", [1, 7, 1000])
def test_chunkings_give_the_same_sums(rows: int) -> None:
    n = 2500  # three unit blocks
    d = data(n)
    whole = sums_of(np.arange(n), d, n)
    assert_same(sums_of(np.arange(n), d, rows), whole)
    assert whole.count.shape == (300, 15)
    # chunks in another order merge to the same sums
    order = np.r_[np.arange(1200, n), np.arange(1200)]
    assert_same(sums_of(order, {k: v[order] for k, v in d.items()}, 1000), whole)


def test_image_units_chunk_independent() -> None:
    """Segmentation: 30 images of 64 pixels (some ignored, one wholly), units
    = images; chunks of 1, 7 and 1000 pixels (cutting images) agree."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=(30, 8, 8))
    labels[rng.random(labels.shape) < 0.1] = 255
    labels[4] = 255
    unit = sample_units(labels, 255)
    assert unit.size == np.count_nonzero(labels != 255)
    assert 4 not in unit and np.array_equal(
        np.unique(unit), np.delete(np.arange(30), 4)
    )
    d = data(unit.size, seed=3)
    whole = sums_of(unit, d, unit.size)
    for rows in (1, 7, 1000):
        assert_same(sums_of(unit, d, rows), whole)


def test_image_sums_are_weights_times_image_sums() -> None:
    """An image's pixels share one weight: the sums equal the weights of the
    images times each image's own sums."""
    rng = np.random.default_rng(8)
    per_image = rng.integers(50, 200, size=12)
    unit = np.repeat(np.arange(12) + 3000, per_image)  # rows of a later chunk
    d = data(unit.size, seed=9)
    s = sums_of(unit, d, 500, reps=40)
    w = unit_weights(np.arange(12) + 3000, 40, seed=7)  # (images, replicates)
    image_of = unit - 3000
    conf = np.zeros((12, 15))
    np.add.at(conf, (image_of, d["bin_index"]), d["confidence"])
    nll = np.bincount(image_of, weights=d["nll"])
    np.testing.assert_allclose(s.confidence, w.T @ conf, rtol=1e-12)
    np.testing.assert_allclose(s.nll, w.T @ nll, rtol=1e-12)
    np.testing.assert_allclose(s.count.sum(axis=1), w.T @ per_image, rtol=1e-12)


def test_units_far_apart_and_many_bins() -> None:
    """Units far apart (the sparse path) give the sums their weights say."""
    d = data(6, seed=1)
    unit = np.array([2, 2, 10**9, 10**9 + 1, 5 * 10**9, 7])
    s = replicate_sums(
        unit,
        *(d[k] for k in ("bin_index", *FIELDS[1:])),
        n_bins=15,
        n_replicates=50,
        seed=1,
    )
    w = unit_weights(unit, 50, seed=1)
    np.testing.assert_allclose(s.nll, w.T @ d["nll"], rtol=1e-12)
    np.testing.assert_allclose(s.correct.sum(axis=1), w.T @ d["correct"], rtol=1e-12)


def test_in_memory_path_equals_the_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """samples_sums cuts the arrays in CHUNK_SAMPLES pieces: a small chunk
    size changes nothing."""
    d = data(3000, seed=4)
    s = Samples(d["bin_index"], d["confidence"], d["correct"], d["nll"], d["brier"], 15)
    whole = samples_sums(s, n_replicates=300, seed=7)
    monkeypatch.setattr("relcal.bootstrap.CHUNK_SAMPLES", 333)
    assert_same(samples_sums(s, n_replicates=300, seed=7), whole)
    assert_same(whole, sums_of(np.arange(3000), d, 3000))


# --------------------------------------------------------------------------
# seeds, pairing, metrics


def test_seed_changes_the_replicates() -> None:
    d = data(800)
    args = (np.arange(800), *(d[k] for k in ("bin_index", *FIELDS[1:])))
    a = replicate_sums(*args, n_bins=15, n_replicates=200, seed=1)
    b = replicate_sums(*args, n_bins=15, n_replicates=200, seed=1)
    c = replicate_sums(*args, n_bins=15, n_replicates=200, seed=2)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)
    assert not np.array_equal(a.count, c.count)
    ece_a, ece_c = replicate_metrics(a)["ece"], replicate_metrics(c)["ece"]
    assert not np.allclose(ece_a, ece_c)


def test_paired_sets_share_the_weights() -> None:
    """A baseline on the same units: every replicate has the same total
    weight, and the paired difference of the same model is exactly 0."""
    d, e = data(1500, seed=1), data(1500, seed=2)  # other values, same units
    a = Samples(d["bin_index"], d["confidence"], d["correct"], d["nll"], None, 15)
    b = Samples(e["bin_index"], e["confidence"], e["correct"], e["nll"], None, 15)
    ra, rb = (samples_sums(s, n_replicates=400, seed=3) for s in (a, b))
    np.testing.assert_array_equal(ra.count.sum(axis=1), rb.count.sum(axis=1))
    x, y, z = bootstrap([a, b, a], n_replicates=400, seed=3)
    assert np.array_equal(x["ece"], z["ece"])  # paired with itself: difference 0
    assert not np.array_equal(x["ece"], y["ece"])
    assert "brier" not in x


def test_metrics_are_ratios_of_weighted_sums() -> None:
    d = data(500, seed=6)
    s = Samples(d["bin_index"], d["confidence"], d["correct"], d["nll"], d["brier"], 15)
    reps = bootstrap([s], n_replicates=100, seed=0)[0]
    w = unit_weights(np.arange(500), 100, seed=0)
    total = w.sum(axis=0)
    np.testing.assert_allclose(reps["accuracy"], w.T @ d["correct"] / total, rtol=1e-12)
    np.testing.assert_allclose(reps["brier"], w.T @ d["brier"] / total, rtol=1e-12)
    assert np.ptp(total) > 50  # the total weight of a replicate varies


def test_a_replicate_of_no_weight_has_no_value() -> None:
    """One unit: a replicate that does not draw it (P = 1/e) is NaN."""
    s = replicate_sums(
        np.zeros(3, dtype=np.int64),
        np.array([0, 1, 1]),
        np.array([0.4, 0.6, 0.9]),
        np.array([0.0, 1.0, 1.0]),
        None,
        None,
        n_bins=2,
        n_replicates=1000,
        seed=0,
    )
    reps = replicate_metrics(s)
    empty = s.count.sum(axis=1) == 0
    assert 0.3 < empty.mean() < 0.45
    for values in reps.values():
        assert np.isnan(values[empty]).all() and np.isfinite(values[~empty]).all()


# --------------------------------------------------------------------------
# refusals


def test_merge_refuses_other_settings() -> None:
    d = data(20)
    args = (np.arange(20), *(d[k] for k in ("bin_index", *FIELDS[1:])))
    a = replicate_sums(*args, n_bins=15, n_replicates=100, seed=1)
    b = replicate_sums(*args, n_bins=15, n_replicates=100, seed=2)
    with pytest.raises(RelcalError) as err:
        a.merge(b)
    assert str(err.value) == (
        "replicate sums of other settings cannot be merged: (n_bins, seed, "
        "n_replicates) (15, 1, 100) and (15, 2, 100), NLL/Brier missing "
        "(False, False) and (False, False)"
    )


def test_sizes_are_bounded() -> None:
    d = data(5)
    args = (np.arange(5), *(d[k] for k in ("bin_index", *FIELDS[1:])))
    with pytest.raises(RelcalError) as err:
        replicate_sums(
            *args, n_bins=100, n_replicates=MAX_REPLICATE_BINS // 100 + 1, seed=0
        )
    assert str(err.value) == (
        "a bootstrap of 41944 replicates x 100 bins is too large (limit 4194304 "
        "sums of each quantity); lower n_replicates= or n_bins="
    )
    bad_bins = (d["bin_index"] + 1, *(d[k] for k in FIELDS[1:]))
    with pytest.raises(RelcalError) as err:
        replicate_sums(np.arange(5), *bad_bins, n_bins=5, n_replicates=100, seed=0)
    assert str(err.value) == (
        "unit must be >= 0 and bin_index in [0, n_bins=5). Got units 0..4, bins "
        f"{d['bin_index'].min() + 1}..{d['bin_index'].max() + 1}"
    )
    with pytest.raises(RelcalError, match=r"Got units -1\.\.3"):
        replicate_sums(np.arange(5) - 1, *args[1:], n_bins=15, n_replicates=100, seed=0)
    with pytest.raises(RelcalError, match="seed must be an integer >= 0. Got -1"):
        replicate_sums(*args, n_bins=15, n_replicates=100, seed=-1)
    with pytest.raises(RelcalError) as err:
        check_size(20_000_000, 1000, unit="images")
    assert str(err.value) == (
        "a bootstrap of 20000000 images x 1000 replicates is too large (limit "
        "1e+10 weights); use fewer replicates, or gate on the point estimate "
        "(its sampling noise is small at this N)"
    )
    check_size(10_000_000, 1000)  # at the limit: allowed


def test_the_cli_names_the_options_of_a_size_too_large(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    rng = np.random.default_rng(0)
    np.savez(path, logits=rng.normal(size=(50, 3)), labels=rng.integers(0, 3, 50))
    args = ["check", str(path), "--max-ece", "0.1", "--confidence", "0.9"]
    result = CliRunner().invoke(cli, [*args, "--bins", "5000"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: a bootstrap of 1000 replicates x 5000 bins is too large (limit "
        "4194304 sums of each quantity); lower --bootstrap or --bins\n"
    )


# --------------------------------------------------------------------------
# segmentation through relcal check


def test_segmentation_check_resamples_images(tmp_path: Path) -> None:
    """relcal check --confidence on (N, C, H, W) logits: 20 images (one all
    ignored) are the units; the accuracy interval is the percentile interval
    of the image-weighted replicates."""
    rng = np.random.default_rng(11)
    n, c, h, w = 20, 3, 6, 5
    logits = rng.normal(size=(n, c, h, w)).astype(np.float32) * 2
    labels = rng.integers(0, c, size=(n, h, w))
    labels[rng.random(labels.shape) < 0.2] = 255
    labels[7] = 255
    path = tmp_path / "seg.npz"
    np.savez(path, logits=logits, labels=labels)
    args = ["check", str(path), "--ignore-index", "255", "--min-accuracy", "0.1"]
    args += ["--confidence", "0.9", "--bootstrap", "500", "--seed", "3"]
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    boot = doc["method"]["bootstrap"]
    assert (boot["unit"], boot["n_units"], boot["resampling"]) == (
        "image",
        19,
        RESAMPLING,
    )
    # the accuracy replicates by hand: image weights times image sums
    keep = labels != 255
    right = (logits.argmax(axis=1) == labels) & keep
    weights = unit_weights(np.arange(n), 500, seed=3)
    reps = (weights.T @ right.sum(axis=(1, 2))) / (weights.T @ keep.sum(axis=(1, 2)))
    reps = reps[np.isfinite(reps)]
    iv = doc["checks"][0]["interval"]
    assert iv["low"] == pytest.approx(np.quantile(reps, 0.05), abs=1e-12)
    assert iv["high"] == pytest.approx(np.quantile(reps, 0.95), abs=1e-12)
    text = CliRunner().invoke(cli, args, catch_exceptions=False).stdout
    assert "(500 replicates, seed 3, 19 images resampled whole;" in text


def test_few_images_warn(tmp_path: Path) -> None:
    """With --confidence, fewer than MIN_IMAGES images (the units) warn on
    stderr and in the JSON; the check itself still passes."""
    rng = np.random.default_rng(12)
    logits = rng.normal(size=(3, 4, 20, 20)).astype(np.float32)
    labels = rng.integers(0, 4, size=(3, 20, 20))
    path = tmp_path / "three.npz"
    np.savez(path, logits=logits, labels=labels)
    args = ["check", str(path), "--min-accuracy", "0.01", "--confidence", "0.95"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0
    warning = (
        f"{path}: the bootstrap resamples whole images and there are only 3: with "
        "fewer than 10 its intervals are too narrow (a 95% interval covered the "
        "truth in 74% of draws of 3 images, 88% of 5); gate on more images"
    )
    assert result.stderr == f"relcal check: warning: {warning}\n"
    doc = json.loads(
        CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False).stdout
    )
    assert doc["warnings"] == [warning]
    # without --confidence there is no bootstrap, and no warning
    plain = CliRunner().invoke(cli, args[:4], catch_exceptions=False)
    assert plain.exit_code == 0 and plain.stderr == ""


def test_infinite_nll_gives_no_warning() -> None:
    """An infinite NLL (fuzz --seed 23 --case 5747: logits near the float
    range) times a weight 0 is NaN in the replicate sums: no RuntimeWarning
    leaks to stderr (the metric refuses the infinite total where it is read)."""
    import warnings

    n = 64
    nll = np.ones(n)
    nll[5] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sums = replicate_sums(
            np.arange(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
            np.full(n, 0.9),
            np.ones(n),
            nll,
            None,
            n_bins=1,
            n_replicates=50,
            seed=3,
        )
    assert sums is not None


def test_merge_of_overflowing_nll_sums_warns_nothing() -> None:
    """NLL replicate sums near the float range overflow to inf when merged:
    no value, and no RuntimeWarning leaked to stderr (fuzz seed 61210)."""
    import warnings

    d = data(20)
    d["nll"] = np.full(20, 1e307)
    args = (np.arange(20), *(d[k] for k in ("bin_index", *FIELDS[1:])))
    a = replicate_sums(*args, n_bins=15, n_replicates=100, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = a.merge(a)
    assert np.isinf(merged.nll).any()
