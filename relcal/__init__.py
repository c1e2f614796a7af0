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

if TYPE_CHECKING:
    from relcal.binning import BinTable, bin_table, calibration_errors, make_edges
    from relcal.display import ReliabilityDisplay
    from relcal.errors import RelcalError, RelcalWarning
    from relcal.io import load
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


# Exported lazily (PEP 562): ``import relcal`` imports nothing, not even
# numpy, until a name is used (the CLI's entry point sets the BLAS threads
# before numpy loads: relcal.__main__), reads no file-format code and no
# matplotlib; ``relcal.load`` *is* :func:`relcal.io.load` (its signature and
# docstring cannot drift).  Submodules are imported on first use too.
_LAZY = {
    "load": "relcal.io",
    "ReliabilityDisplay": "relcal.display",
    **dict.fromkeys(
        ["BinTable", "bin_table", "calibration_errors", "make_edges"], "relcal.binning"
    ),
    **dict.fromkeys(["RelcalError", "RelcalWarning"], "relcal.errors"),
    **dict.fromkeys(
        [
            "Results",
            "accuracy",
            "brier_score",
            "classwise_ece",
            "ece",
            "evaluate",
            "evaluate_predictions",
            "mce",
            "nll",
            "positive_class_ece",
            "positive_class_table",
            "reliability_table",
            "rms_calibration_error",
        ],
        "relcal.metrics",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"relcal.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"relcal.{name}":
                raise
    raise AttributeError(f"module 'relcal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
