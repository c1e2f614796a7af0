"""Synthetic predictions whose calibration is known by construction.

``make_logits`` draws latent scores ``z``, samples each label from
``softmax(z)`` (the Gumbel-max trick, exact), and returns ``temperature * z`` as
the logits.  Dividing the returned logits by ``temperature`` gives perfectly
calibrated probabilities in expectation, so the NLL-optimal temperature is close
to ``temperature`` and, for ``temperature > 1``, the logits are over-confident
as real networks are.

The generator is seeded (``numpy.random.default_rng(seed)``) and uses only
``standard_normal`` and ``random`` in float64, whose streams numpy keeps stable;
the tests check a sha256 of the arrays against the golden files anyway.
"""

from __future__ import annotations

import hashlib

import numpy as np


def make_logits(
    n_samples: int,
    n_classes: int,
    *,
    temperature: float = 2.5,
    scale: float = 2.0,
    seed: int = 0,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits with labels drawn from the calibrated model.

    Parameters
    ----------
    n_samples, n_classes : int
        Shape of the logits.
    temperature : float, default=2.5
        The logits are ``temperature * z``; labels follow ``softmax(z)``.
    scale : float, default=2.0
        Standard deviation of the latent scores ``z`` (larger: more confident).
    seed : int, default=0
        Seed for ``numpy.random.default_rng``.
    dtype : numpy float type, default=numpy.float32
        dtype of the returned logits.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes)
    labels : ndarray of int64, shape (n_samples,)

    Examples
    --------
    >>> logits, labels = make_logits(4, 3, seed=1)
    >>> logits.shape, logits.dtype, labels.shape
    ((4, 3), dtype('float32'), (4,))
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, n_classes)) * scale
    u = rng.random((n_samples, n_classes))
    gumbel = -np.log(-np.log(np.clip(u, 1e-300, 1.0 - 1e-16)))
    labels = np.argmax(z + gumbel, axis=1).astype(np.int64)
    logits: np.ndarray = (temperature * z).astype(dtype)
    return logits, labels


def make_segmentation(
    n_images: int,
    n_classes: int,
    height: int,
    width: int,
    *,
    temperature: float = 2.5,
    scale: float = 2.0,
    ignore_index: int = 255,
    ignore_fraction: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Segmentation-shaped logits ``(N, C, H, W)`` and labels ``(N, H, W)``.

    Pixels are independent draws as in :func:`make_logits`; a fraction
    ``ignore_fraction`` of the labels is set to ``ignore_index``.
    """
    n_pix = n_images * height * width
    logits, labels = make_logits(
        n_pix, n_classes, temperature=temperature, scale=scale, seed=seed
    )
    rng = np.random.default_rng(seed + 1)
    labels[rng.random(n_pix) < ignore_fraction] = ignore_index
    logits = logits.reshape(n_images, height, width, n_classes).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(logits), labels.reshape(n_images, height, width)


def array_digest(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' dtypes, shapes and bytes (to pin golden data)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------
# top-label data whose population calibration error is known exactly


def toplabel_gap(x: np.ndarray, amplitude: float, crossing: float = 0.7) -> np.ndarray:
    """Confidence minus P(correct | confidence) of :func:`make_toplabel`.

    ``amplitude * (x - crossing) / (1 - crossing)``: under-confident below
    ``crossing``, over-confident above it, ``amplitude`` at x = 1.
    """
    return amplitude * (np.asarray(x, dtype=np.float64) - crossing) / (1 - crossing)


def make_toplabel(
    n_samples: int,
    *,
    amplitude: float,
    draws: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidences and correctness with a known calibration function.

    The confidence is ``X = 0.5 + 0.5 * sqrt(U)`` with U uniform (density
    ``4 (2x - 1)`` on [0.5, 1], more mass near 1, as trained networks have),
    and a sample is correct with probability ``g(X) = X - toplabel_gap(X)``.
    :func:`population_ece` gives the exact calibration error of this model.

    Returns
    -------
    confidence : ndarray of shape (draws, n_samples), float64
    correct : ndarray of bool, shape (draws, n_samples)

    Examples
    --------
    >>> conf, correct = make_toplabel(5, amplitude=0.05, draws=2, seed=1)
    >>> conf.shape, correct.dtype.name, bool(conf.min() >= 0.5)
    ((2, 5), 'bool', True)
    """
    rng = np.random.default_rng(seed)
    conf = 0.5 + 0.5 * np.sqrt(rng.random((draws, n_samples)))
    p_correct = conf - toplabel_gap(conf, amplitude)
    correct = rng.random((draws, n_samples)) < p_correct
    return conf, correct


def _bin_integrals(amplitude: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per equal-width bin, the mass of :func:`make_toplabel`'s confidence
    density and the integral of gap(x) times it.  The integrands are
    polynomials of degree at most 2, so Gauss-Legendre quadrature with 8 nodes
    per bin is exact (to rounding)."""
    nodes, weights = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    mass, gap = np.zeros(n_bins), np.zeros(n_bins)
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        lo = max(lo, 0.5)
        if hi <= lo:
            continue
        x = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
        density = 4.0 * (2.0 * x - 1.0)
        mass[b] = 0.5 * (hi - lo) * np.sum(weights * density)
        gap[b] = (
            0.5 * (hi - lo) * np.sum(weights * toplabel_gap(x, amplitude) * density)
        )
    return mass, gap


def population_ece(amplitude: float, *, n_bins: int = 15) -> float:
    """The population top-label ECE of :func:`make_toplabel`, under relcal's
    equal-width bins: ``sum_b |integral over bin b of gap(x) f(x) dx|``.

    Examples
    --------
    >>> round(population_ece(0.0), 12)
    0.0
    """
    return float(np.abs(_bin_integrals(amplitude, n_bins)[1]).sum())


def population_sq_ce(amplitude: float, *, n_bins: int = 15) -> float:
    """The population squared calibration error of :func:`make_toplabel`
    under relcal's equal-width bins: ``sum_b (integral over bin b of gap(x)
    f(x) dx)^2 / P(bin b)``, what the debiased squared error
    (:func:`relcal.estimators.debiased_squared_error`) estimates.

    Examples
    --------
    >>> round(population_sq_ce(0.0), 12)
    0.0
    """
    mass, gap = _bin_integrals(amplitude, n_bins)
    kept = mass > 0
    return float(np.sum(gap[kept] ** 2 / mass[kept]))


# --------------------------------------------------------------------------
# binary P(class 1), with values on bin edges on request


def make_binary(
    n_samples: int,
    *,
    seed: int = 0,
    power: float = 1.3,
    edge_bins: tuple[int, ...] = (),
    edge_fraction: float = 0.0,
    ends_fraction: float = 0.0,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """P(class 1) of a binary problem and labels drawn from a miscalibrated model.

    P(class 1) is arcsine-distributed, ``(1 - cos(pi U)) / 2`` with U uniform
    (much mass near 0 and 1, as trained models have), and the label is 1 with
    probability ``p ** power`` (``power > 1``: P(class 1) too high).  To test
    bin-edge rules, a fraction ``edge_fraction`` of the rows is set exactly to
    an edge ``k / m`` in ``dtype`` (every ``m`` in ``edge_bins``, k = 0..m) or to
    one of its two neighbours in ``dtype``, and a fraction ``ends_fraction``
    to exactly 0.0 or 1.0; their labels are drawn the same way.

    Returns
    -------
    p1 : ndarray of shape (n_samples,), ``dtype``
    labels : ndarray of int64, shape (n_samples,)

    Examples
    --------
    >>> p1, y = make_binary(6, seed=1, edge_bins=(4,), edge_fraction=0.5)
    >>> p1.dtype.name, y.dtype.name, bool(((p1 >= 0) & (p1 <= 1)).all())
    ('float32', 'int64', True)
    """
    rng = np.random.default_rng(seed)
    p: np.ndarray = ((1.0 - np.cos(np.pi * rng.random(n_samples))) / 2.0).astype(dtype)
    if edge_bins and edge_fraction > 0:
        grid: np.ndarray = np.unique(
            np.concatenate(
                [np.arange(m + 1, dtype=np.float64) / m for m in edge_bins]
            ).astype(dtype)
        )
        grid = np.unique(
            np.concatenate(
                [grid, np.nextafter(grid, dtype(0)), np.nextafter(grid, dtype(1))]
            )
        )
        rows = np.flatnonzero(rng.random(n_samples) < edge_fraction)
        p[rows] = grid[rng.integers(0, len(grid), size=len(rows))]
    if ends_fraction > 0:
        rows = np.flatnonzero(rng.random(n_samples) < ends_fraction)
        p[rows] = (rng.random(len(rows)) < 0.5).astype(dtype)
    q = p.astype(np.float64) ** power
    labels = (rng.random(n_samples) < q).astype(np.int64)
    return p, labels
