"""float64 ``exp`` in place, through glibc's vector math library when it can.

numpy's float64 ``exp`` is a scalar loop on CPUs without AVX-512 (~5 ns a
value here); it was half of relcal's time on logits.  ``csrc/vexp.c``, built
into ``relcal/libvexp.so.1`` when the wheel is built (``hatch_build.py``), calls
glibc's AVX2 ``exp`` four values at a time (~1.5 ns a value).

Accuracy: numpy's ``exp`` is good to ~0.5 ulp, libmvec's to a few ulp (measured
<= 3.1 ulp against long double; ``tests/test_kernel.py`` checks 4 ulp against
numpy).  ``exp(0)`` is exactly 1 in both, so a confidence whose other classes
are negligible is exactly 1.0 either way.  The two can differ in a metric's
last digits (~1e-16 relative), never near a tolerance relcal states.

numpy's ``exp`` is used instead when numpy's own float64 ``exp`` is
vectorised (a CPU with AVX-512: ~1 ns a value, faster than the kernel), the
library was not built (not Linux x86_64, no C compiler or libmvec at
install), the CPU lacks AVX2 and FMA, the array is not C-contiguous float64,
or the environment sets ``RELCAL_KERNEL=0``; ``RELCAL_KERNEL=1`` uses the
kernel wherever it loads (tests, A/B timings).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

LIBRARY = Path(__file__).with_name("libvexp.so.1")

_lock = threading.Lock()
_state: dict[str, Any] = {}  # "lib": the loaded library or None, "why": if None


def _load() -> Any:
    with _lock:
        if "lib" in _state:
            return _state["lib"]
        lib, why = None, ""
        wanted = os.environ.get("RELCAL_KERNEL", "auto")
        if wanted == "0":
            why = "RELCAL_KERNEL=0"
        elif wanted != "1" and _numpy_vectorised():
            why = "its float64 exp is vectorised on this CPU (AVX-512)"
        elif not LIBRARY.exists():
            why = f"{LIBRARY.name} was not built"
        else:
            import ctypes  # only here: not on the CLI's start-up path

            try:
                handle = ctypes.CDLL(str(LIBRARY))
                if handle.relcal_cpu_ok():
                    handle.relcal_exp_f64.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
                    handle.relcal_exp_f64.restype = None
                    lib = handle
                else:
                    why = "this CPU lacks AVX2 or FMA"
            except (OSError, AttributeError) as e:
                why = f"{LIBRARY.name} does not load: {e}"
        _state.update(lib=lib, why=why)
        return lib


def exp(a: np.ndarray) -> np.ndarray:
    """``a = exp(a)`` in place; returns ``a``."""
    lib = _state["lib"] if "lib" in _state else _load()
    if (
        lib is not None
        and a.dtype == np.float64
        and a.flags.c_contiguous
        and a.flags.writeable
    ):
        lib.relcal_exp_f64(a.ctypes.data, a.size)  # the GIL is released
        return a
    return np.exp(a, out=a)


def _numpy_vectorised() -> bool:
    """Whether numpy's float64 ``exp`` runs its AVX-512 loop here (~1 ns a
    value, measured: faster than the kernel's AVX2 ~1.5 ns, which then
    costs a few percent of a reduction on logits), from numpy's own record of
    the CPU's features.  A fixed rule, not a timing: the choice must be the
    same in every process of a run (worker processes, a CLI run after
    another), or metrics could differ in their last digit between them."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return bool(features.get("AVX512F")) and bool(features.get("AVX512_SKX"))


def fast_f64() -> bool:
    """Whether a float64 ``exp`` is fast here (the kernel, or numpy's
    vectorised loop): if not, top-label-only work runs in float32."""
    return _load() is not None or "vectorised" in _state["why"]


def status() -> str:
    """'libmvec' when the kernel is in use, else 'numpy (<why>)'."""
    return "libmvec" if _load() is not None else f"numpy ({_state['why']})"


def reset() -> None:
    """Forget the loaded state (tests: RELCAL_KERNEL is read again)."""
    with _lock:
        _state.clear()
