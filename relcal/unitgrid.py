"""Bootstrap replicates of the unbinned metrics when whole images are the units.

The unbinned metrics (smooth ECE, AURC, E-AURC, AUROC, CORP) are functions of
the histogram of top-label confidences (:mod:`relcal.values`).  For
classification rows, :func:`relcal.bootstrap.unbinned_replicates` draws
replicate histograms cell by cell (a Poisson count per value and outcome),
which is the sample-level Poisson bootstrap because the samples are
independent.  The pixels of a segmentation map are not: the units are whole
images, and a replicate histogram is ``sum_images w[image, r] * H_image``,
where ``H_image`` is the image's own histogram.  That needs per-image
histograms, so they are kept on a fixed grid of confidences:

Grid
----
:data:`N_CELLS` cells, in increasing order of confidence ``p``:

- below 1/2, equal widths of ``1 / (2 * LOW_CELLS)`` (1/2048);
- from 1/2 up, equal steps of ``log2(1 - p)``, :data:`PER_OCTAVE` a halving of
  ``1 - p``, down to ``1 - p = 2**-(1 + OCTAVES)`` (the last cell holds
  everything above): well-trained segmentation models put most pixels
  within 1e-3 of 1, where equal widths would lump them into one cell.

Per cell the count, the number correct and the sum of the confidences are
kept; a replicate's cell stands for its pixels by their mean confidence.
The interval is that of the grid replicates moved by the difference between
the full estimate and the grid's own (as the classification path moves the
4,096-group replicates).

Mergeable
---------
:class:`UnitGrid` holds the histograms of the images not yet weighed
(``pending``) and the replicate sums of the others; two merge by
concatenating their pending images, which are weighed (one matrix product)
once more than :data:`FLUSH_UNITS` of them are pending, so memory stays at
about (FLUSH_UNITS + replicates) x 3 x N_CELLS floats whatever the number of
images.  The weights are :func:`relcal.bootstrap.unit_weights` of the image
index and the seed, so the replicates depend on neither chunking nor jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relcal.bootstrap import FLUSH_UNITS, UnitRows
from relcal.errors import InputError

LOW_CELLS = 1024
PER_OCTAVE = 64
OCTAVES = 40
N_CELLS = LOW_CELLS + PER_OCTAVE * OCTAVES


def grid_cells(p: np.ndarray) -> np.ndarray:
    """The grid cell of each confidence (nondecreasing in ``p``).

    Examples
    --------
    >>> grid_cells(np.array([0.0, 0.25, 0.4999, 0.5, 0.9, 0.999, 1.0])).tolist()
    [0, 512, 1023, 1024, 1172, 1597, 3583]
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.empty(p.shape, dtype=np.int64)
    low = p < 0.5
    out[low] = np.minimum(np.floor(p[low] * (2 * LOW_CELLS)), LOW_CELLS - 1)
    q = np.maximum(1.0 - p[~low], 2.0 ** -(OCTAVES + 2))
    steps = np.floor((-np.log2(q) - 1.0) * PER_OCTAVE)
    out[~low] = LOW_CELLS + np.clip(steps, 0, PER_OCTAVE * OCTAVES - 1)
    return out


def unit_histograms(
    units: np.ndarray, confidence: np.ndarray, correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct unit (in order of first appearance of each run), its grid
    histogram of shape (3, N_CELLS): count, correct, sum of confidence."""
    units = np.asarray(units, dtype=np.int64)
    if units.size == 0:
        return units, np.zeros((0, 3, N_CELLS))
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, units.size]))
    key = run * N_CELLS + grid_cells(confidence)
    size = len(starts) * N_CELLS
    hist = np.stack(
        [
            np.bincount(key, minlength=size),
            np.bincount(key, weights=np.asarray(correct, np.float64), minlength=size),
            np.bincount(
                key, weights=np.asarray(confidence, np.float64), minlength=size
            ),
        ],
        axis=1,
    ).astype(np.float64)
    return units[starts], hist.reshape(len(starts), N_CELLS, 3).transpose(0, 2, 1)


@dataclass(frozen=True, eq=False)
class UnitGrid:
    """Grid histograms of images and their bootstrap replicates (mergeable)."""

    seed: int
    n_replicates: int
    pending: UnitRows  # per image not yet weighed, its (3 * N_CELLS) histogram
    weighed: np.ndarray  # (n_replicates, 3, N_CELLS): the others, weighed
    whole: np.ndarray  # (3, N_CELLS): every image, unweighted

    @staticmethod
    def of(
        units: np.ndarray,
        confidence: np.ndarray,
        correct: np.ndarray,
        *,
        n_replicates: int,
        seed: int,
    ) -> UnitGrid:
        """The grid of some samples, each of image ``units[i]``."""
        u, hist = unit_histograms(units, confidence, correct)
        return UnitGrid(
            seed,
            n_replicates,
            UnitRows(u, hist.reshape(len(u), 3 * N_CELLS)),
            np.zeros((n_replicates, 3, N_CELLS)),
            hist.sum(axis=0),
        )

    def merge(self, other: UnitGrid) -> UnitGrid:
        if (self.seed, self.n_replicates) != (other.seed, other.n_replicates):
            raise InputError("unit grids of other settings cannot be merged")
        pending = self.pending.merge(other.pending)
        weighed = self.weighed + other.weighed
        if len(pending) > FLUSH_UNITS:
            weighed = weighed + self._weigh(pending)
            pending = UnitRows(pending.units[:0], pending.rows[:0])
        whole = self.whole + other.whole
        return UnitGrid(self.seed, self.n_replicates, pending, weighed, whole)

    def _weigh(self, pending: UnitRows) -> np.ndarray:
        sums = pending.weigh(n_replicates=self.n_replicates, seed=self.seed)
        return sums.reshape(self.n_replicates, 3, N_CELLS)

    def replicates(self) -> np.ndarray:
        """Every replicate's grid histogram, (n_replicates, 3, N_CELLS)."""
        return self.weighed + self._weigh(self.pending)
