"""relcal: can your classifier's scores be read as probabilities?

Reads saved predictions, measures calibration (top-label ECE, RMS-CE, MCE,
class-wise ECE, NLL, Brier, the binned correctness table) and reports it.

>>> import relcal
>>> r = relcal.evaluate([[2.0, 0.5, 0.1], [0.1, 0.2, 3.0]], [0, 1])
>>> r.accuracy
0.5
"""

from __future__ import annotations

from relcal.binning import BinTable, bin_table, calibration_errors, make_edges
from relcal.errors import RelcalError, RelcalWarning
from relcal.metrics import (
    Results,
    accuracy,
    brier_score,
    classwise_ece,
    ece,
    evaluate,
    evaluate_predictions,
    mce,
    nll,
    positive_class_table,
    reliability_table,
    rms_calibration_error,
)

__version__ = "0.1.0"

__all__ = [
    "BinTable",
    "RelcalError",
    "RelcalWarning",
    "Results",
    "__version__",
    "accuracy",
    "bin_table",
    "brier_score",
    "calibration_errors",
    "classwise_ece",
    "ece",
    "evaluate",
    "evaluate_predictions",
    "load",
    "make_edges",
    "mce",
    "nll",
    "positive_class_table",
    "reliability_table",
    "rms_calibration_error",
]


def load(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Load saved predictions from a file (see :func:`relcal.io.load`)."""
    from relcal.io import load as _load

    return _load(*args, **kwargs)
