"""Smooth ECE (smECE) and the smooth reliability diagram, in plain numpy.

Convention
----------
smECE is the calibration error of Błasiok & Nakkiran, "Smooth ECE: Principled
Reliability Diagrams via Kernel Smoothing" (ICLR 2024, arXiv:2309.12236), computed
exactly as their reference implementation ``relplot`` 1.0.3 computes it
(``relplot.smECE``, ``relplot/metrics.py`` and ``relplot/kernels.py``), to about
1e-12 on the same input:

- **Residuals.**  The residuals ``r = f - y`` of forecasts ``f`` in [0, 1] and
  outcomes ``y`` in {0, 1} are smoothed, together with the weights (1 per sample).
- **Grid.**  Both are first spread onto a uniform grid of ``m`` points on [0, 1]
  by linear interpolation ("smooth rounding"): a sample at ``f`` gives
  ``1 - frac`` of its weight to grid point ``floor(f (m - 1))`` and ``frac`` to
  the next (``f = 1`` goes wholly to the last point).  ``m = max(2000,
  round(20 / sigma)) // 2 + 1``: 1001 for ``sigma >= 0.01``, finer below.
- **Kernel.**  A Gaussian of standard deviation ``sigma``, sampled on that grid
  (the pdf values, *not* multiplied by the grid step), truncated at distance 0.5,
  and *reflected* at 0 and 1 (the grid is mirrored about its end points, which
  are not repeated, before a discrete convolution).
- **Mesh.**  The smoothed grids are linearly interpolated onto the mesh
  ``t = linspace(0, 1, T)``, ``T = max(200, round(10 / sigma))``.
- **Value.**  ``smECE_sigma = sum_t |R(t)| / sum_t (D(t) + 1e-4)``, where ``R`` and
  ``D`` are the smoothed residual and weight grids at ``t``.  The ``1e-4`` is
  relplot's guard against dividing by zero (``BaseKernelMixin.smooth``), added to
  a smoothed weight of about ``n`` times a probability density, so it moves
  smECE by a relative ``1e-4 / n`` or so (1e-6 for 100 samples); it is kept.
- **Bandwidth.**  ``sigma*`` is relplot's fixed point ``sigma = smECE_sigma``,
  found as relplot's ``search_param`` finds it: if ``1 < smECE_1`` it is 1;
  otherwise 10 bisection steps on [0, 1], a step at ``s`` moving the lower end up
  when ``s < 0.001 or s < smECE_s`` and the upper end down otherwise; ``sigma*``
  is the final *upper* end.  smECE is ``smECE_sigma`` at that ``sigma*``.

Quirks of relplot kept on purpose (they define the numbers users compare with):
``sigma*`` is a multiple of ``2**-10`` and the upper end of the last bracket, so it
can exceed the true fixed point by up to ``2**-10``; its smallest value is
``2 / 1024`` (because ``1/1024 < eps = 0.001`` always counts as "too small");
the weight sum of the mesh is a Riemann sum in which the end points count fully;
the kernel is truncated at distance 0.5 (visible only for ``sigma`` above about
0.1); and when the grid size ``m`` is even (some ``sigma < 0.01``: ``sigma* =
3/1024`` or ``7/1024``, or e.g. ``sigma = 0.003``) the kernel's peak falls between
grid points, so the smoothed curves are shifted by half a grid step.  The
predicate ``s < smECE_s`` is compared as relplot compares it; a tie within
rounding (~1e-16) could in principle send the bisection the other way.

Inputs
------
The weighted functions take *weighted distinct values*, the representation the
other relcal modules share: ``value`` (forecasts), ``count`` (> 0, how many
samples share it) and ``sum_y`` (the sum of their outcomes).  Since smECE is
linear in the samples' weights before the ratio, a grouped input gives the value
of the raw samples up to rounding.  The values need not be sorted or distinct;
coarsened (histogram) representatives are fine and give the smECE of the
coarsened sample.  relcal computes in float64; relplot computes the grid position
``f (m - 1)`` in the input's dtype, so on float32 input it differs from relcal
(given the same float32 values) by up to about 1e-7 (9e-8 measured on the shared
real files).

The core never prints and keeps no state; there is no randomness (relplot's
diagram bags 200 unseeded bootstrap smoothers; :func:`smooth_diagram` returns the
plain kernel smoother at ``sigma*`` instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from relcal.errors import InputError
from relcal.values import Grouped, check_grouped, check_samples, group_samples

__all__ = [
    "SmoothDiagram",
    "SmoothECE",
    "group_samples",
    "smece",
    "smece_and_sigma",
    "smece_sigma",
    "smece_weighted",
    "smooth_diagram",
]

#: relplot ``config.smECE_mesh_pts``: the least number of mesh points of smECE
SMECE_MESH_POINTS = 200
#: relplot ``config.plot_mesh_pts``: mesh points of the diagram
DIAGRAM_MESH_POINTS = 200
#: relplot ``BaseKernelMixin.smooth(eps=0.0001)``, added to the smoothed weights
DENSITY_EPS = 1e-4
#: relplot ``smECE(eps=0.001)``: bandwidths below it count as "too small"
SIGMA_EPS = 0.001
#: relplot ``search_param(refine=10)``: bisection steps
REFINE_STEPS = 10
#: the smallest bandwidth :func:`smece_sigma` accepts (grid of 100,001 points)
MIN_SIGMA = 1e-4

FloatArray = npt.NDArray[np.float64]


class SmoothECE(NamedTuple):
    """smECE and the bandwidth ``sigma*`` it was computed at."""

    smece: float
    sigma: float


@dataclass(frozen=True)
class SmoothDiagram:
    """The data of a smooth reliability diagram (compute first, draw second).

    Attributes
    ----------
    mesh : ndarray of shape (n_mesh,)
        The forecast values ``t = linspace(0, 1, n_mesh)``.
    mu : ndarray of shape (n_mesh,)
        The kernel-smoothed ``E[y | f = t]``: smoothed outcomes over smoothed
        weights (+ 1e-4, as relplot), i.e. relplot's ``KernelSmoother`` at
        ``sigma`` without the bootstrap bagging.
    density : ndarray of shape (n_mesh,)
        The reflected-kernel density of the forecasts at ``t`` (integrating to
        about 1 over [0, 1]), relplot's ``density``.
    sigma : float
        The bandwidth (``sigma*`` unless one was given).
    smece : float
        smECE at ``sigma``.
    total : float
        The number (total weight) of samples.
    """

    mesh: FloatArray
    mu: FloatArray
    density: FloatArray
    sigma: float
    smece: float
    total: float

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and floats, ready for :func:`json.dumps`."""
        return {
            "mesh": self.mesh.tolist(),
            "mu": self.mu.tolist(),
            "density": self.density.tolist(),
            "sigma": self.sigma,
            "smece": self.smece,
            "total": self.total,
        }


# --------------------------------------------------------------------------
# input checks (public functions check, private kernels compute)


def _check_weighted(
    value: npt.ArrayLike, count: npt.ArrayLike, sum_y: npt.ArrayLike
) -> Grouped:
    """Weighted values in [0, 1], in any order (smECE is a sum over them)."""
    return check_grouped(value, count, sum_y, order="any")


def _check_sigma(sigma: float) -> float:
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"sigma: must be a number. Got {sigma!r} instead") from None
    if not (math.isfinite(s) and s >= MIN_SIGMA):
        raise InputError(f"sigma: must be finite and >= {MIN_SIGMA}. Got {s!r} instead")
    return s


# --------------------------------------------------------------------------
# private kernels (no checks)


def _grid_points(sigma: float) -> int:
    """relplot ``GaussianKernel.apply``: ``max(2000, round(20 / sigma)) // 2 + 1``."""
    return max(2000, round(20 / sigma)) // 2 + 1


def _mesh_points(sigma: float) -> int:
    """relplot ``smooth_ece``: ``max(round(10 / sigma), smECE_mesh_pts)``."""
    return max(round(10 / sigma), SMECE_MESH_POINTS)


class _Grids:
    """The weights and residuals spread onto each grid size used (cached: the
    grid has 1001 points for every ``sigma >= 0.01``, so a bandwidth search
    spreads the samples once or twice, not once per step)."""

    def __init__(self, value: FloatArray, weight: FloatArray, resid: FloatArray):
        self.value = value
        self.weight = weight
        self.resid = resid
        self._cache: dict[int, tuple[FloatArray, FloatArray]] = {}

    def get(self, m: int) -> tuple[FloatArray, FloatArray]:
        if m not in self._cache:
            self._cache[m] = (
                _spread(self.value, self.weight, m),
                _spread(self.value, self.resid, m),
            )
        return self._cache[m]


def _spread(value: FloatArray, weight: FloatArray, m: int) -> FloatArray:
    """relplot ``smooth_round_to_grid``: each weight split linearly between the
    two grid points around its value (``f = 1`` wholly on the last point)."""
    pos = value * (m - 1)
    lo = pos.astype(np.intp).clip(0, m - 2)
    frac = pos - lo
    grid = np.bincount(lo, weights=(1 - frac) * weight, minlength=m)
    grid += np.bincount(lo + 1, weights=frac * weight, minlength=m)
    return cast(FloatArray, grid)  # float64: the weights are


class _Kernel(NamedTuple):
    values: FloatArray  # the non-zero samples of relplot's kernel
    last: int  # index of the last of them in relplot's full kernel


def _kernel(m: int, sigma: float) -> _Kernel:
    """relplot ``GaussianKernel.kernel_ev``: the Gaussian pdf at
    ``linspace(0, 1, m) - 0.5``, trimmed to its non-zero values (the tails
    underflow to exactly 0 beyond about 38.6 sigma)."""
    t = np.linspace(0, 1, m)
    ker = np.exp(-(t - 0.5) * (t - 0.5) / (2 * sigma**2))
    ker /= np.sqrt(2 * np.pi) * sigma
    nz = np.flatnonzero(ker)
    return _Kernel(ker[nz[0] : nz[-1] + 1], int(nz[-1]))


def _reflected_convolve(grid: FloatArray, ker: _Kernel) -> FloatArray:
    """relplot ``ReflectedGaussianKernel.convolve``: the grid mirrored about both
    end points (not repeated), convolved with the full kernel in ``"valid"``
    mode, and the ``m`` outputs from ``m // 2`` on kept.  Only those outputs and
    only the kernel's non-zero values are computed: output ``i`` is
    ``sum_j ext[m // 2 + i + j] * kernel[m - 1 - j]``.

    For odd ``m`` the kernel's peak is on a grid point and output ``i`` is
    centred on grid point ``i``.  For even ``m`` (relplot's grid for some
    ``sigma < 0.01``, e.g. ``sigma = 3/1024``, ``7/1024``, ``0.003``) the peak
    falls between two grid points and output ``i`` is centred on ``i + 1/2``:
    relplot's curve is then shifted by half a grid step; kept as relplot has it.
    """
    m = len(grid)
    n_ker = len(ker.values)
    ext = np.concatenate([grid[:0:-1], grid, grid[-2::-1]])  # length 3m - 2
    start = m // 2 + (m - 1 - ker.last)
    return np.convolve(ext[start : start + m + n_ker - 1], ker.values, "valid")


def _interpolate(t: FloatArray, grid: FloatArray) -> FloatArray:
    """relplot ``kernels.interpolate``: the grid's piecewise-linear function at t."""
    n = len(grid)
    step = 1 / (n - 1)
    inds = (t * (n - 1)).astype(np.intp).clip(0, n - 2)
    residual = (t - inds * step) / step
    out: FloatArray = grid[inds] * (1 - residual) + grid[inds + 1] * residual
    return out


def _smoothed(
    grids: _Grids, sigma: float, t: FloatArray
) -> tuple[FloatArray, FloatArray, int]:
    """Smoothed weights and residuals at ``t``, and the grid size."""
    m = _grid_points(sigma)
    gw, gr = grids.get(m)
    ker = _kernel(m, sigma)
    dens = _interpolate(t, _reflected_convolve(gw, ker))
    res = _interpolate(t, _reflected_convolve(gr, ker))
    return dens, res, m


def _smece_at(grids: _Grids, sigma: float) -> float:
    """relplot ``smooth_ece(f, y, sigma)``."""
    t = np.linspace(0, 1, _mesh_points(sigma))
    dens, res, _ = _smoothed(grids, sigma, t)
    return float(np.sum(np.abs(res)) / np.sum(dens + DENSITY_EPS))


def _search_sigma(evaluate: Callable[[float], float]) -> float:
    """relplot ``search_param(check_smooth_ece, start=1, refine=10)``."""

    def too_small(s: float) -> bool:
        return s < SIGMA_EPS or s < evaluate(s)

    if too_small(1.0):
        return 1.0
    upper, lower = 1.0, 0.0
    for _ in range(REFINE_STEPS):
        mid = (upper + lower) / 2
        if too_small(mid):
            lower = mid
        else:
            upper = mid
    return upper


def _smece_fit(grids: _Grids) -> SmoothECE:
    memo: dict[float, float] = {}

    def evaluate(s: float) -> float:
        if s not in memo:
            memo[s] = _smece_at(grids, s)
        return memo[s]

    sigma = _search_sigma(evaluate)
    return SmoothECE(evaluate(sigma), sigma)


def _weighted_grids(value: FloatArray, count: FloatArray, sum_y: FloatArray) -> _Grids:
    return _Grids(value, count, count * value - sum_y)


# --------------------------------------------------------------------------
# public functions


def smece(f: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Smooth ECE of raw forecasts, at relplot's bandwidth ``sigma*``.

    The same number as ``relplot.smECE(f, y)`` (to ~1e-12 on float64 input);
    the convention (reflected Gaussian kernel, grid, mesh, bandwidth search) is
    in the module docstring.

    Parameters
    ----------
    f : array-like of shape (n_samples,)
        Forecasts in [0, 1]: the probability of class 1 of a binary classifier,
        or the top-label confidence of a multi-class one.
    y : array-like of shape (n_samples,)
        Outcomes, 0 or 1 (the label, or whether the top label was correct).

    Returns
    -------
    float
        smECE, in [0, 1].

    See Also
    --------
    smece_weighted : the same from weighted distinct values.
    smece_and_sigma : smECE together with ``sigma*``.

    References
    ----------
    J. Błasiok and P. Nakkiran, "Smooth ECE: Principled Reliability Diagrams via
    Kernel Smoothing", ICLR 2024, arXiv:2309.12236.

    Examples
    --------
    >>> round(smece([0.1, 0.9, 0.8, 0.3], [0, 1, 0, 0]), 4)
    0.2748
    """
    fa, ya = check_samples(f, y)
    return _smece_fit(_Grids(fa, np.ones_like(fa), fa - ya)).smece


def smece_weighted(
    value: npt.ArrayLike, count: npt.ArrayLike, sum_y: npt.ArrayLike
) -> float:
    """Smooth ECE of weighted distinct values, at relplot's bandwidth ``sigma*``.

    Parameters
    ----------
    value : array-like of shape (n_values,)
        Forecasts in [0, 1] (ascending by convention; order does not matter).
    count : array-like of shape (n_values,)
        Number of samples at each value, > 0 (need not be whole).
    sum_y : array-like of shape (n_values,)
        Sum of the outcomes (0/1) of those samples, in [0, count].

    Returns
    -------
    float
        smECE of the sample the groups describe (that of the raw samples, up
        to rounding).

    Examples
    --------
    >>> round(smece_weighted([0.1, 0.3, 0.8, 0.9], [1, 1, 1, 1], [0, 0, 0, 1]), 4)
    0.2748
    """
    return _smece_fit(_weighted_grids(*_check_weighted(value, count, sum_y))).smece


def smece_and_sigma(
    value: npt.ArrayLike, count: npt.ArrayLike, sum_y: npt.ArrayLike
) -> SmoothECE:
    """smECE and relplot's bandwidth ``sigma*`` (``relplot.smECE(...,
    return_width=True)``), from weighted distinct values.

    Parameters
    ----------
    value, count, sum_y : array-like of shape (n_values,)
        As in :func:`smece_weighted`.

    Returns
    -------
    SmoothECE
        ``(smece, sigma)``; ``sigma`` is a multiple of ``2**-10`` in
        [2/1024, 1].

    Examples
    --------
    >>> smece_and_sigma([0.1, 0.3, 0.8, 0.9], [1, 1, 1, 1], [0, 0, 0, 1]).sigma
    0.275390625
    """
    return _smece_fit(_weighted_grids(*_check_weighted(value, count, sum_y)))


def smece_sigma(
    value: npt.ArrayLike,
    count: npt.ArrayLike,
    sum_y: npt.ArrayLike,
    sigma: float,
) -> float:
    """Smooth ECE at a fixed bandwidth ``sigma`` (``relplot.smECE_sigma``).

    Parameters
    ----------
    value, count, sum_y : array-like of shape (n_values,)
        As in :func:`smece_weighted`.
    sigma : float
        Kernel standard deviation, >= 1e-4.  It acts much like the bin width
        of a binned ECE.

    Returns
    -------
    float

    Examples
    --------
    >>> round(smece_sigma([0.1, 0.3, 0.8, 0.9], [1, 1, 1, 1], [0, 0, 0, 1], 0.05), 4)
    0.2904
    """
    grids = _weighted_grids(*_check_weighted(value, count, sum_y))
    return _smece_at(grids, _check_sigma(sigma))


def smece_sigma_many(
    value: FloatArray, count: FloatArray, sum_y: FloatArray, sigma: float
) -> FloatArray:
    """:func:`smece_sigma` of many histograms at once (bootstrap replicates).

    ``count`` and ``sum_y`` have shape (n_histograms, n_groups), groups of
    count 0 allowed (they weigh nothing); ``value`` is (n_groups,) or one row
    per histogram, ascending, in [0, 1].  Every histogram is spread onto the
    grid in one ``bincount`` and convolved by one FFT (numpy's), instead of
    ``numpy.convolve``: equal to :func:`smece_sigma` row by row to ~1e-12.

    Examples
    --------
    >>> v = np.array([0.1, 0.3, 0.8, 0.9])
    >>> many = smece_sigma_many(v, np.array([[1.0, 1, 1, 1], [2, 0, 1, 1]]),
    ...                         np.array([[0.0, 0, 0, 1], [1, 0, 0, 1]]), 0.05)
    >>> bool(np.isclose(many[0], smece_sigma(v, [1, 1, 1, 1], [0, 0, 0, 1], 0.05)))
    True
    """
    sigma = _check_sigma(sigma)
    count = np.asarray(count, dtype=np.float64)
    n_rows = count.shape[0]
    value = np.broadcast_to(np.asarray(value, dtype=np.float64), count.shape)
    m = _grid_points(sigma)
    pos = value * (m - 1)
    lo = pos.astype(np.intp).clip(0, m - 2)
    frac = pos - lo
    lo = lo + (np.arange(n_rows) * m)[:, None]
    resid = count * value - np.asarray(sum_y, dtype=np.float64)

    def spread(weight: FloatArray) -> FloatArray:
        size = n_rows * m
        grid = np.bincount(lo.ravel(), ((1 - frac) * weight).ravel(), size)
        grid += np.bincount(lo.ravel() + 1, (frac * weight).ravel(), size)
        return grid.reshape(n_rows, m)

    ker = _kernel(m, sigma)
    t = np.linspace(0, 1, _mesh_points(sigma))
    dens = _interpolate_rows(t, _convolve_rows(spread(count), ker))
    res = _interpolate_rows(t, _convolve_rows(spread(resid), ker))
    out: FloatArray = np.abs(res).sum(axis=1) / (dens + DENSITY_EPS).sum(axis=1)
    return out


def _convolve_rows(grid: FloatArray, ker: _Kernel) -> FloatArray:
    """:func:`_reflected_convolve` of every row, by FFT."""
    m = grid.shape[1]
    n_ker = len(ker.values)
    ext = np.concatenate([grid[:, :0:-1], grid, grid[:, -2::-1]], axis=1)
    start = m // 2 + (m - 1 - ker.last)
    x = ext[:, start : start + m + n_ker - 1]
    size = 1 << (x.shape[1] + n_ker - 2).bit_length()  # a power of 2: fast
    fft = np.fft.rfft(x, size, axis=1) * np.fft.rfft(ker.values, size)
    full = np.fft.irfft(fft, size, axis=1)
    return full[:, n_ker - 1 : n_ker - 1 + m]


def _interpolate_rows(t: FloatArray, grid: FloatArray) -> FloatArray:
    """:func:`_interpolate` of every row."""
    n = grid.shape[1]
    step = 1 / (n - 1)
    inds = (t * (n - 1)).astype(np.intp).clip(0, n - 2)
    residual = (t - inds * step) / step
    out: FloatArray = grid[:, inds] * (1 - residual) + grid[:, inds + 1] * residual
    return out


def smooth_diagram(
    value: npt.ArrayLike,
    count: npt.ArrayLike,
    sum_y: npt.ArrayLike,
    *,
    sigma: float | None = None,
    n_mesh: int = DIAGRAM_MESH_POINTS,
) -> SmoothDiagram:
    """The smooth reliability diagram's curve and density, deterministically.

    relplot's ``prepare_rel_diagram`` draws the mean of 200 unseeded bootstrap
    smoothers; this returns the kernel smoother itself at ``sigma*``: the same
    curve as ``prepare_rel_diagram(f, y, plot_confidence_band=False)["mu"]``.

    Parameters
    ----------
    value, count, sum_y : array-like of shape (n_values,)
        As in :func:`smece_weighted`.
    sigma : float, optional
        Bandwidth; default relplot's ``sigma*`` (:func:`smece_and_sigma`).
    n_mesh : int, default=200
        Number of mesh points (relplot ``config.plot_mesh_pts``).

    Returns
    -------
    SmoothDiagram
        ``mesh``, ``mu`` (smoothed E[y | f]), ``density``, ``sigma``, ``smece``,
        ``total``; :meth:`SmoothDiagram.to_dict` makes it JSON-ready.

    Examples
    --------
    >>> d = smooth_diagram([0.1, 0.3, 0.8, 0.9], [1, 1, 1, 1], [0, 0, 0, 1])
    >>> len(d.mesh), round(d.smece, 4)
    (200, 0.2748)
    """
    v, c, s = _check_weighted(value, count, sum_y)
    if isinstance(n_mesh, bool) or not isinstance(n_mesh, int | np.integer):
        raise InputError(f"n_mesh: must be an integer. Got {n_mesh!r} instead")
    if n_mesh < 2:
        raise InputError(f"n_mesh: must be >= 2. Got {n_mesh} instead")
    grids = _weighted_grids(v, c, s)
    if sigma is None:
        ce, sig = _smece_fit(grids)
    else:
        sig = _check_sigma(sigma)
        ce = _smece_at(grids, sig)
    total = float(np.sum(c))
    t = np.linspace(0, 1, int(n_mesh))
    m = _grid_points(sig)
    gw, _ = grids.get(m)
    ker = _kernel(m, sig)
    dens = _interpolate(t, _reflected_convolve(gw, ker))
    outcomes = _interpolate(t, _reflected_convolve(_spread(v, s, m), ker))
    mu = outcomes / (dens + DENSITY_EPS)
    density = dens / total
    return SmoothDiagram(t, mu, density, sig, ce, total)
