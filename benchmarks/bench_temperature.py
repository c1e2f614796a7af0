#!/usr/bin/env python
"""Speed and exactness of relcal.fit_temperature beside the usual ways to fit T.

Every fit runs in this one process, on the same in-memory 50,000×1000 float32
logits (10,000×100 with --quick), in one run of this script.  Rows (see
benchmarks/README.md):

  relcal           relcal.fit_temperature(logits, labels): safeguarded Newton on
                   beta = 1/T, steered by float32 passes and a 1/32 row
                   subsample, finished by float64 passes; 2 threads.
  scipy_bounded    scipy.optimize.minimize_scalar(nll, bounds=(0.05, 20),
                   method="bounded", xatol=1e-7) on a float64 numpy NLL of z/T
                   (the float64 copy is made inside the timing).  One thread.
  sklearn          scikit-learn's own temperature fit (the private
                   sklearn.calibration._TemperatureScaling behind
                   CalibratedClassifierCV(method="temperature")) on float64 logits.
  gpleiss_50       Guo et al.'s reference code: T = nn.Parameter(ones(1) * 1.5),
                   optim.LBFGS([T], lr=0.01, max_iter=50), one step(closure) with
                   CrossEntropyLoss(logits / T, labels); float32, full batch.
  gpleiss_200      the same with max_iter=200 (only with --long or --quick).
  torch_unc        torch_uncertainty's TemperatureScaler(model=None).fit(loader)
                   on a DataLoader of (logits, labels), batch 1000 (defaults:
                   T from 1, LBFGS lr 0.1, max_iter 100).
  netcal_f64       netcal.scaling.TemperatureScaling().fit(probs, labels) with
                   float64 softmax probabilities (made OUTSIDE the timing).
  netcal_f32       the same with float32 probabilities.

The exact optimum T* is relcal's; every T is judged by one independent float64
numpy NLL (and its derivative), so "NLL − NLL*" does not take relcal's word.
torch runs with torch.set_num_threads(2).

Run from the repository:  PYTHONPATH=. python benchmarks/bench_temperature.py
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

try:
    import relcal
    import relcal.synth
    import relcal.temperature
except ImportError:  # run as a file without PYTHONPATH: use the source tree
    sys.path.insert(0, str(REPO))
    import relcal
    import relcal.synth
    import relcal.temperature

N_BINS = 15
SEED = 3  # make_logits(50_000, 1000, seed=3): T* = 2.50018
TEMPERATURE = 2.5  # the generator's true temperature
SHAPES = {"full": (50_000, 1000), "quick": (10_000, 100)}
SCIPY_BOUNDS = (0.05, 20.0)
SCIPY_XATOL = 1e-7  # absolute, on T: ~4e-8 relative at T ≈ 2.5
TORCH_THREADS = 2
TU_BATCH = 1000
# |dNLL/dT| (independent numpy) counted as "at the optimum": issue #4's bound
EXACT_GRAD = 1e-8

# targets of the issue: relcal at least this many times faster than the row
SPEED_TARGETS = {
    "gpleiss_50": 20.0,
    "torch_unc": 20.0,
    "netcal_f64": 20.0,
    "scipy_bounded": 2.0,
}
MAX_PASSES = 8

ROW_HELP = {
    "relcal": "relcal.fit_temperature(logits, labels) (float32 in; steered by float32"
    " passes and a row subsample, finished by float64 passes; 2 threads)",
    "scipy_bounded": f"minimize_scalar(nll, bounds={SCIPY_BOUNDS}, method='bounded',"
    f" options={{'xatol': {SCIPY_XATOL:g}}}); float64 numpy NLL of z/T, 1 thread;"
    " float64 copy inside the timing",
    "sklearn": "sklearn.calibration._TemperatureScaling().fit(logits64, labels)"
    " (what CalibratedClassifierCV(method='temperature') runs: minimize_scalar"
    " over log(1/T) in (-10, 10), xatol 64·eps); float64 copy inside the timing",
    "gpleiss_50": "Guo et al.: T = nn.Parameter(ones(1)*1.5), LBFGS([T], lr=0.01,"
    " max_iter=50), one step(closure: zero_grad, CrossEntropyLoss(logits / T,"
    " labels), backward); float32, full batch",
    "gpleiss_200": "the same with max_iter=200 (only with --long or --quick)",
    "torch_unc": "torch_uncertainty TemperatureScaler(model=None).fit(DataLoader("
    f"TensorDataset(logits, labels), batch_size={TU_BATCH}), progress=False);"
    " defaults T0=1, lr=0.1, max_iter=100; float32",
    "netcal_f64": "netcal.scaling.TemperatureScaling().fit(probs, labels), float64"
    " softmax made OUTSIDE the timing; T = 1 / weights",
    "netcal_f32": "the same with float32 probabilities",
}


# --------------------------------------------------------------------------
# helpers


def fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t * 1e3:.0f} ms" if t < 1.0 else f"{t:.2f} s"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def timed(fn: Callable[[], Any], runs: int) -> tuple[Any, list[float]]:
    """``runs`` timed calls (no untimed warm-up: each call takes seconds and has
    nothing to compile); the last result and every time."""
    gc.collect()
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def record_interleaved(
    fns: dict[str, Callable[[], dict[str, Any]]],
    runs: int,
    rows: dict[str, dict[str, Any]],
) -> None:
    """Time the functions in rounds (a, b, a, b, ...) and store rows like
    ``record`` in main()."""
    gc.collect()
    outs: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
            gc.collect()
    for name in fns:
        ts = times[name]
        rows[name] = {
            **outs[name],
            "times": ts,
            "median": statistics.median(ts),
            "min": min(ts),
            "runs": runs,
        }


def nll_and_grad(z: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float]:
    """Mean NLL of softmax(z / t) and its derivative dNLL/dT, float64 numpy,
    row chunks; independent of relcal's code, used to judge every method."""
    n, c = z.shape
    rows = max(1, (1 << 21) // c)
    nll = grad = 0.0
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        zc = z[lo:hi].astype(np.float64)
        a = zc / t
        m = a.max(axis=1, keepdims=True)
        e = np.exp(a - m)
        s = e.sum(axis=1)
        ay = a[np.arange(hi - lo), y[lo:hi]]
        nll += float((np.log(s) + m[:, 0] - ay).sum())
        mean_z = np.einsum("ij,ij->i", e, zc) / s  # E_p[z]
        zy = zc[np.arange(hi - lo), y[lo:hi]]
        grad += float((-(mean_z - zy) / (t * t)).sum())
    return nll / n, grad / n


def relcal_passes(r: dict[str, Any]) -> str:
    text = f"{r['passes']}"
    if r.get("sub_passes"):
        text += (
            f" + {r['sub_passes']} over a subsample"
            f" (= {r['passes'] + r['sub_equiv']:.2f} passes)"
        )
    return text + f" ({r['iterations']} steps)"


# --------------------------------------------------------------------------
# the methods: each returns {"T": ..., "passes": ..., **extra}


def fit_relcal(z: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    fit = relcal.temperature.fit_temperature(z, y)
    return {
        "T": fit.temperature,
        "passes": fit.passes,
        "iterations": fit.iterations,
        # passes over the steering subsample, as a fraction of a full pass
        "sub_passes": fit.subsample_passes,
        "sub_equiv": fit.subsample_passes * fit.subsample_rows / max(fit.n, 1),
        "status": fit.status,
        "gradient": fit.gradient,
        "nll_after": fit.nll_after,
        "nll_before": fit.nll_before,
    }


def fit_scipy(z: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Bounded Brent on a float64 NLL, written as a numpy user would: shift each
    row by its maximum once, then one exp and one row sum per evaluation."""
    from scipy.optimize import minimize_scalar

    d = z.astype(np.float64)
    d -= d.max(axis=1, keepdims=True)  # d ≤ 0: exp(d / T) cannot overflow
    dy = d[np.arange(len(y)), y]
    buf = np.empty_like(d)
    calls = [0]

    def nll(t: float) -> float:
        calls[0] += 1
        np.multiply(d, 1.0 / t, out=buf)
        np.exp(buf, out=buf)
        return float(np.mean(np.log(buf.sum(axis=1)) - dy / t))

    res = minimize_scalar(
        nll, bounds=SCIPY_BOUNDS, method="bounded", options={"xatol": SCIPY_XATOL}
    )
    return {"T": float(res.x), "passes": calls[0], "nfev": int(res.nfev)}


def fit_sklearn(z: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    import sklearn.calibration as skc

    nfev = [0]
    orig = skc.minimize_scalar

    def counting(*args: Any, **kwargs: Any) -> Any:
        res = orig(*args, **kwargs)
        nfev[0] += int(res.nfev)
        return res

    skc.minimize_scalar = counting  # only to count evaluations
    try:
        ts = skc._TemperatureScaling().fit(z.astype(np.float64), y)
    finally:
        skc.minimize_scalar = orig
    return {"T": 1.0 / float(ts.beta_), "passes": nfev[0]}


def fit_gpleiss(torch: Any, z_t: Any, y_t: Any, max_iter: int) -> dict[str, Any]:
    from torch import nn, optim

    temperature = nn.Parameter(torch.ones(1) * 1.5)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.LBFGS([temperature], lr=0.01, max_iter=max_iter)
    calls = [0]

    def closure() -> Any:
        calls[0] += 1
        optimizer.zero_grad()
        loss = criterion(z_t / temperature, y_t)
        loss.backward()
        return loss

    optimizer.step(closure)
    return {"T": float(temperature.item()), "passes": calls[0]}


def fit_torch_uncertainty(tu: Any, z_t: Any, y_t: Any) -> dict[str, Any]:
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(z_t, y_t), batch_size=TU_BATCH)
    scaler = tu.TemperatureScaler(model=None)
    calls = [0]
    scale = scaler._scale

    def counting(logits: Any) -> Any:  # one call per LBFGS closure evaluation
        calls[0] += 1
        return scale(logits)

    scaler._scale = counting
    logging.disable(logging.WARNING)  # "model is None. Fitting ... directly."
    try:
        scaler.fit(loader, progress=False)
    finally:
        logging.disable(logging.NOTSET)
        scaler._scale = scale
    return {"T": float(1.0 / scaler.inv_temp.item()), "passes": calls[0]}


def fit_netcal(nc: Any, probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """netcal's model is softmax(w · log p): its 'weights' (also returned by its
    'temperature' property) are 1/T.  Counts the NLL evaluations of the scipy
    minimize call it makes (L-BFGS-B with finite differences)."""
    mod = sys.modules["netcal.scaling.AbstractLogisticRegression"]
    nfev = [0]
    orig = mod.minimize

    def counting(*args: Any, **kwargs: Any) -> Any:
        res = orig(*args, **kwargs)
        nfev[0] += int(res.nfev)
        return res

    mod.minimize = counting  # only to count evaluations
    try:
        ts = nc.TemperatureScaling()
        ts.fit(probs, y)
    finally:
        mod.minimize = orig
    w = float(np.asarray(ts.weights).reshape(-1)[0])
    return {"T": 1.0 / w, "passes": nfev[0], "weights": w}


# --------------------------------------------------------------------------


def load_optional(name: str, loader: Callable[[], Any]) -> tuple[Any, str]:
    try:
        return loader(), "ok"
    except ImportError as exc:
        return None, f"not installed: {exc.name or exc}"
    except Exception as exc:  # a broken install must not stop the run
        return None, f"import failed: {type(exc).__name__}: {exc}"


def load_torch() -> Any:
    import torch

    torch.set_num_threads(TORCH_THREADS)
    return torch


TU_NOTE = ""  # set when the scaler had to be loaded from its files


def load_tu() -> Any:
    """torch_uncertainty's TemperatureScaler, imported the documented way.

    ``import torch_uncertainty.post_processing`` imports the whole package
    (lightning, rich, torchvision, ...).  Where that fails on a dependency the
    scaler does not use (e.g. only a CUDA torchvision wheel matches a CPU torch),
    the scaler's own three files, unmodified, are loaded from the installed
    package instead (abstract.py, calibration/scaler.py, temperature_scaler.py:
    they need only torch and tqdm), and the row says so."""
    global TU_NOTE
    try:
        import torch_uncertainty.post_processing as tup

        return tup
    except ImportError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    import importlib.util
    import types

    spec = importlib.util.find_spec("torch_uncertainty")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torch_uncertainty", name="torch_uncertainty")
    for key in [k for k in sys.modules if k.startswith("torch_uncertainty")]:
        del sys.modules[key]  # the half-imported package
    root = Path(next(iter(spec.submodule_search_locations))) / "post_processing"

    def load(name: str, path: Path) -> Any:
        s = importlib.util.spec_from_file_location(name, path)
        assert s is not None and s.loader is not None
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        s.loader.exec_module(mod)
        return mod

    for name in ("torch_uncertainty", "torch_uncertainty.post_processing"):
        pkg = types.ModuleType(name)
        pkg.__path__ = []
        sys.modules[name] = pkg
    pp = sys.modules["torch_uncertainty.post_processing"]
    cal = types.ModuleType("torch_uncertainty.post_processing.calibration")
    cal.__path__ = [str(root / "calibration")]
    sys.modules[cal.__name__] = cal
    abstract = load("torch_uncertainty.post_processing.abstract", root / "abstract.py")
    pp.PostProcessing = abstract.PostProcessing  # type: ignore[attr-defined]
    load(cal.__name__ + ".scaler", root / "calibration" / "scaler.py")
    ts = load(
        cal.__name__ + ".temperature_scaler",
        root / "calibration" / "temperature_scaler.py",
    )
    TU_NOTE = (
        "package import failed (" + reason[:120] + "); its scaler files loaded"
        " unmodified"
    )
    return types.SimpleNamespace(TemperatureScaler=ts.TemperatureScaler)


def load_netcal() -> Any:
    import netcal.scaling

    return netcal.scaling


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("numpy", "scipy", "scikit-learn", "torch", "torch-uncertainty"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        out["netcal"] = version("netcal")
    except PackageNotFoundError:
        out["netcal"] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="10,000×100 logits: a smoke test (< 30 s)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs of relcal and scipy, in alternating rounds (median and"
        " min reported; default 3); the other rows run once",
    )
    ap.add_argument(
        "--long",
        action="store_true",
        help="add gpleiss_200 (about 5× gpleiss_50's time: ~4 minutes more on the"
        " full data)",
    )
    ap.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    wall0 = time.perf_counter()
    load_before = load_average()

    torch, torch_status = load_optional("torch", load_torch)
    tu, tu_status = (None, "needs torch") if torch is None else (None, "")
    if torch is not None:
        tu, tu_status = load_optional("torch_uncertainty", load_tu)
    nc, nc_status = load_optional("netcal", load_netcal)
    vers = versions()

    mode = "quick" if args.quick else "full"
    n, c = SHAPES[mode]
    print(
        f"# relcal temperature-fit benchmark ({mode}): make_logits({n:,}, {c},"
        f" seed={SEED}, temperature={TEMPERATURE}), float32, in one process"
    )
    print()
    print(
        f"python {platform.python_version()}, relcal {relcal.__version__}"
        f" ({Path(relcal.__file__).parent}); "
        + ", ".join(f"{k} {v}" for k, v in vers.items())
    )
    print(
        f"{cpu_model()}, {os.cpu_count()} cores; torch threads"
        f" {torch.get_num_threads() if torch is not None else '—'}; load average"
        f" before: {load_before}"
    )
    if TU_NOTE:
        print(f"torch_uncertainty: {TU_NOTE}")
    if args.quick:
        print(
            "QUICK: small data, a smoke test; the targets are judged on the full run."
        )
    print()
    print("Rows:")
    for k, v in ROW_HELP.items():
        print(f"  {k:14s} {v}")
    print()

    t0 = time.perf_counter()
    z, y = relcal.synth.make_logits(n, c, seed=SEED, temperature=TEMPERATURE)
    gen_s = time.perf_counter() - t0

    rows: dict[str, dict[str, Any]] = {}

    def record(name: str, fn: Callable[[], dict[str, Any]], runs: int) -> None:
        try:
            out, times = timed(fn, runs)
        except ImportError as exc:
            rows[name] = {"status": f"not installed: {exc.name or exc}"}
            return
        except Exception as exc:  # one tool failing must not stop the run
            rows[name] = {"status": f"failed: {type(exc).__name__}: {exc}"}
            return
        rows[name] = {
            **out,
            "times": times,
            "median": statistics.median(times),
            "min": min(times),
            "runs": runs,
        }
        gc.collect()

    # ---- relcal (its T is the reference T*) and scipy, in alternating rounds
    # so that a drift of the machine's load hits both alike
    pair = {"relcal": lambda: fit_relcal(z, y)}
    try:
        import scipy.optimize  # noqa: F401

        pair["scipy_bounded"] = lambda: fit_scipy(z, y)
    except ImportError:
        rows["scipy_bounded"] = {"status": "not installed: scipy"}
    record_interleaved(pair, args.repeat, rows)
    t_star = rows["relcal"]["T"]
    nll_star, grad_star = nll_and_grad(z, y, t_star)
    nll_one, _ = nll_and_grad(z, y, 1.0)
    print(
        f"data: {n:,}×{c} float32 ({z.nbytes / 1e6:.0f} MB), generated in"
        f" {gen_s:.1f} s (not timed)"
    )
    print(
        f"exact optimum (relcal): T* = {t_star:.10f}; independent float64 numpy at"
        f" T*: NLL = {nll_star:.12f}, dNLL/dT = {grad_star:+.2e} (relcal's own:"
        f" {rows['relcal']['gradient']:+.2e}); at T = 1: NLL = {nll_one:.6f}"
    )
    print()

    # ---- sklearn (numpy)
    record("sklearn", lambda: fit_sklearn(z, y), 1)

    # ---- torch rows
    if torch is not None:
        z_t, y_t = torch.from_numpy(z), torch.from_numpy(y)  # no copies
        if tu is not None:
            record("torch_unc", lambda: fit_torch_uncertainty(tu, z_t, y_t), 1)
            if TU_NOTE:
                rows["torch_unc"]["note"] = TU_NOTE
        else:
            rows["torch_unc"] = {"status": tu_status}
        record("gpleiss_50", lambda: fit_gpleiss(torch, z_t, y_t, 50), 1)
        if args.long or args.quick:
            record("gpleiss_200", lambda: fit_gpleiss(torch, z_t, y_t, 200), 1)
        else:
            rows["gpleiss_200"] = {"status": "not run (add --long)"}
        del z_t, y_t
    else:
        for k in ("torch_unc", "gpleiss_50", "gpleiss_200"):
            rows[k] = {"status": f"torch {torch_status}"}

    # ---- netcal: probabilities made outside the timing
    if nc is not None:
        for name, dtype in (("netcal_f64", np.float64), ("netcal_f32", np.float32)):
            probs = relcal.temperature.softmax(z).astype(dtype, copy=False)
            record(name, lambda probs=probs: fit_netcal(nc, probs, y), 1)
            del probs
            gc.collect()
    else:
        rows["netcal_f64"] = {"status": nc_status}
        rows["netcal_f32"] = {"status": nc_status}

    # ---- judge every T with the same float64 NLL and relcal's ECE
    ece_cache: dict[float, float] = {}

    def ece_at(t: float) -> float:
        if t not in ece_cache:
            scaled = relcal.temperature.scale_logits(z, t)
            ece_cache[t] = float(relcal.ece(scaled, y, n_bins=N_BINS))
        return ece_cache[t]

    ece_one = ece_at(1.0)
    order = [
        "relcal",
        "scipy_bounded",
        "sklearn",
        "gpleiss_50",
        "gpleiss_200",
        "torch_unc",
        "netcal_f64",
        "netcal_f32",
    ]
    t_rel = rows["relcal"]["median"]
    for name in order:
        r = rows[name]
        if "T" not in r:
            continue
        t = r["T"]
        if t > 0 and np.isfinite(t):
            r["nll"], r["grad"] = nll_and_grad(z, y, t)
            r["d_nll"] = r["nll"] - nll_star
            r["ece"] = ece_at(t)
        r["rel_err"] = abs(t - t_star) / t_star
        r["x_relcal"] = r["median"] / t_rel

    print(
        "| method | T | \\|T−T*\\|/T* | NLL − NLL* | ECE after | passes | median |"
        " min | runs | × relcal |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| (uncalibrated, T = 1) | 1 | {abs(1 - t_star) / t_star:.1e} |"
        f" {nll_one - nll_star:.2e} | {ece_one:.5f} | | | | | |"
    )
    for name in order:
        r = rows[name]
        if "T" not in r:
            print(f"| {name} | {r['status']} | | | | | | | | |")
            continue
        passes = str(r["passes"])
        if name == "relcal":
            passes = relcal_passes(r)
        print(
            f"| {name} | {r['T']:.6f} | {r['rel_err']:.1e} |"
            f" {r.get('d_nll', float('nan')):.2e} | {r.get('ece', float('nan')):.5f} |"
            f" {passes} | {fmt_time(r['median'])} | {fmt_time(r['min'])} |"
            f" {r['runs']} | {r['x_relcal']:.1f}× |"
        )
    print()
    print(
        "passes: passes over the logits = NLL evaluations (relcal: each gives NLL,"
        " dNLL/dβ, d²NLL/dβ² and, in steering passes, d³NLL/dβ³; a subsample's"
        " passes read 1/k of the rows; torch rows: LBFGS closure calls, each a"
        " forward and"
        " a backward pass; netcal, sklearn: scipy's nfev). × relcal: median time"
        " over relcal's median."
    )

    # ---- targets
    rel = rows["relcal"]
    exact = (
        rel["status"] == "converged"
        and abs(rel.get("grad", np.inf)) <= EXACT_GRAD
        and all(
            rows[k].get("d_nll", np.inf) >= -1e-12 for k in order if "d_nll" in rows[k]
        )
    )
    targets: list[tuple[str, str, bool | None]] = []
    for name, factor in SPEED_TARGETS.items():
        r = rows[name]
        if "median" not in r:
            targets.append(
                (f"≥ {factor:g}× faster than {name}", r.get("status", "?"), None)
            )
            continue
        ratio = r["median"] / t_rel
        targets.append(
            (
                f"≥ {factor:g}× faster than {name}",
                f"{ratio:.2f}× ({fmt_time(r['median'])} vs {fmt_time(t_rel)})",
                ratio >= factor,
            )
        )
    targets.append(
        (
            "at the exact optimum",
            f"status {rel['status']}, independent |dNLL/dT| at T* ="
            f" {abs(rel.get('grad', np.nan)):.1e} (≤ {EXACT_GRAD:g}), no row has a"
            " lower NLL",
            exact,
        )
    )
    targets.append(
        (
            f"≤ {MAX_PASSES} passes over the logits",
            relcal_passes(rel),
            rel["passes"] + rel["sub_equiv"] <= MAX_PASSES,
        )
    )
    print()
    print("### Targets (judged on the full run)")
    print()
    print("| target | measured | |")
    print("|---|---|---|")
    for what, measured, ok in targets:
        verdict = "—" if ok is None else ("met" if ok else "NOT MET")
        print(f"| {what} | {measured} | {verdict} |")

    wall = time.perf_counter() - wall0
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = kb / 1024 if sys.platform != "darwin" else kb / 2**20
    print()
    print(
        f"load average after: {load_average()}; peak RSS {peak:.0f} MiB;"
        f" script wall time {wall:.1f} s"
    )
    if args.json:
        results = {
            "mode": mode,
            "shape": [n, c],
            "seed": SEED,
            "temperature": TEMPERATURE,
            "repeat": args.repeat,
            "t_star": t_star,
            "nll_star": nll_star,
            "grad_star_numpy": grad_star,
            "nll_t1": nll_one,
            "ece_t1": ece_one,
            "rows": rows,
            "targets": [
                {"target": w, "measured": m, "met": ok} for w, m, ok in targets
            ],
            "env": {
                "python": platform.python_version(),
                "cpu": cpu_model(),
                "cpu_count": os.cpu_count(),
                "torch_threads": TORCH_THREADS if torch is not None else None,
                "versions": vers,
                "load_before": load_before,
                "load_after": load_average(),
            },
            "generate_s": gen_s,
            "wall_s": wall,
            "peak_rss_mib": peak,
        }
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=_json_default)
        print(f"results saved to {args.json}")
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    sys.exit(main())
