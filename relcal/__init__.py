"""relcal: can your classifier's scores be read as probabilities?

Reads saved predictions, measures calibration (top-label ECE, RMS-CE, MCE,
class-wise ECE, NLL, Brier, the binned correctness table) and reports it.

>>> import relcal
>>> r = relcal.evaluate([[2.0, 0.5, 0.1], [0.1, 0.2, 3.0]], [0, 1])
>>> r.accuracy
0.5
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    positive_class_ece,
    positive_class_table,
    reliability_table,
    rms_calibration_error,
)

if TYPE_CHECKING:
    from relcal.display import ReliabilityDisplay
    from relcal.io import load

__version__ = "0.1.0"

__all__ = [
    "BinTable",
    "RelcalError",
    "RelcalWarning",
    "ReliabilityDisplay",
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
    "positive_class_ece",
    "positive_class_table",
    "reliability_table",
    "rms_calibration_error",
]


# Exported lazily (PEP 562), so that ``import relcal`` reads no file-format code
# and no matplotlib: ``relcal.load`` *is* :func:`relcal.io.load` (its
# signature and docstring cannot drift), imported on first use.
_LAZY = {
    "load": "relcal.io",
    "ReliabilityDisplay": "relcal.display",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'relcal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
