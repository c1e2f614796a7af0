#!/usr/bin/env python
"""Speed and agreement of relcal beside a plain numpy pass and the reference tools.

Every timing is in process, on the same in-memory arrays (file reading
excluded), measured in one run of this script, so the ratios compare like with
like.  Rows per dataset (see benchmarks/README.md):

  numpy_pass     the float32 numpy pass over the logits: max over the class
                 axis, exp(x - max) (in place), sum, log.  One thread.
  relcal_top     relcal.reliability_table(...) + relcal.calibration_errors(table)
                 (accuracy, ECE, RMS-CE, MCE, bin table).
  relcal_all     relcal.evaluate(...) (adds class-wise ECE, NLL, Brier).
  torchmetrics   multiclass_calibration_error(torch.from_numpy(logits), ...,
                 n_bins=15, norm="l1"); softmax inside.
  netcal         netcal.metrics.ECE(bins=15).measure(probs, labels); the float32
                 softmax is computed OUTSIDE the timing.
  relcal_top_probs  relcal_top on those same float32 probabilities (more than two
                 classes): what netcal is compared with.
  relplot        relplot.metrics.binnedECE(
                     *relplot.multiclass_logits_to_confidences(logits, labels),
                     nbins=15); softmax inside.
  sklearn        float32 softmax, top confidence and correctness, then
                 calibration_curve(correct, conf, n_bins=15, strategy="uniform")
                 and the bin counts by sklearn's rule; all inside the timing.

Run from the repository:  PYTHONPATH=. python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

try:
    import relcal
    import relcal.kernel
    import relcal.reduce
    import relcal.synth
except ImportError:  # run as a file without PYTHONPATH: use the source tree
    sys.path.insert(0, str(REPO))
    import relcal
    import relcal.kernel
    import relcal.reduce
    import relcal.synth

N_BINS = 15
IGNORE = 255
DRIFT_LIMIT = 1e-6  # |ECE - relcal's| above this is flagged

# name: (full-size args, quick args); seg args are (N, C, H, W)
DATASETS: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "imagenet_like": ("logits", (50_000, 1000), (5_000, 1000)),
    "seg_like": ("seg", (8, 19, 512, 512), (2, 19, 128, 128)),
    "big_binary": ("logits", (5_000_000, 2), (500_000, 2)),
    "cifar_like": ("logits", (10_000, 10), (10_000, 10)),
}

ROW_HELP = {
    "numpy_pass": "float32 numpy: max over classes, exp(x - max) in place, sum, log"
    " (one thread)",
    "relcal_top": "relcal.reliability_table + relcal.calibration_errors"
    " (accuracy, ECE, RMS-CE, MCE, bin table)",
    "relcal_all": "relcal.evaluate (adds class-wise ECE, NLL, Brier)",
    "torchmetrics": "multiclass_calibration_error(torch.from_numpy(logits), labels,"
    " num_classes=C, n_bins=15, norm='l1'[, ignore_index=255]);"
    " softmax inside",
    "netcal": "netcal.metrics.ECE(bins=15).measure(probs, labels); float32 softmax"
    " computed OUTSIDE the timing (big_binary: 1-D top confidence +"
    " correctness, netcal's top-label form)",
    "relcal_top_probs": "relcal_top on the float32 probabilities netcal is given"
    " (kind='probs'); netcal is judged against this row",
    "relplot": "relplot.metrics.binnedECE(*relplot.multiclass_logits_to_confidences("
    "logits, labels), nbins=15); softmax inside",
    "sklearn": "float32 softmax + top confidence + correctness, calibration_curve("
    "correct, conf, n_bins=15, strategy='uniform') + bin counts by"
    " sklearn's rule; all inside the timing",
}
REFERENCE_TOOLS = ("torchmetrics", "netcal", "relplot", "sklearn")


# --------------------------------------------------------------------------
# helpers


def fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t * 1e3:.1f} ms" if t < 1.0 else f"{t:.2f} s"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "—"
    return f"{a / b:.2f}×"


def fmt_mib(m: float | None) -> str:
    return "—" if m is None else f"{m:.0f} MiB"


def summary(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def softmax32(x: np.ndarray) -> np.ndarray:
    """Row softmax of 2-D float32 logits, in float32 (one new array)."""
    p = np.subtract(x, np.max(x, axis=1, keepdims=True))
    np.exp(p, out=p)
    p /= np.sum(p, axis=1, keepdims=True)
    return p


def ece_from_bins(
    count: np.ndarray, sum_conf: np.ndarray, sum_acc: np.ndarray
) -> float:
    """sum_b (n_b/N) |acc_b - conf_b| from float64 bin sums (empty bins: 0)."""
    n = count.sum()
    return float(np.abs(sum_acc - sum_conf).sum() / n)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Memory:
    """Peak resident memory of a block of calls above the resident memory before
    it (Linux: /proc/self/status VmHWM, reset through /proc/self/clear_refs);
    None where that is unavailable."""

    @staticmethod
    def _status(key: str) -> float | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    peak_seen = 0.0  # the process's peak before any reset (see peak_rss_mib)

    def __enter__(self) -> Memory:
        self.extra: float | None = None
        self.base = self._status("VmRSS")
        hwm = self._status("VmHWM")
        if hwm is not None:
            Memory.peak_seen = max(Memory.peak_seen, hwm)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self.ok = self.base is not None
        except OSError:
            self.ok = False
        return self

    def __exit__(self, *exc: object) -> None:
        peak = self._status("VmHWM")
        if self.ok and peak is not None and self.base is not None:
            self.extra = max(0.0, peak - self.base)


def peak_rss_mib() -> float:
    """Peak resident memory of the whole run (Memory resets the kernel's
    high-water mark, so the peaks seen before each reset are kept too)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    now = kb / 1024 if sys.platform != "darwin" else kb / 2**20
    return max(now, Memory.peak_seen)


class Ref:
    """A reference library, imported once (import time reported, not timed)."""

    def __init__(self, name: str, loader: Callable[[], Any]):
        self.name = name
        self.mod: Any = None
        self.status = "ok"
        self.version = None
        t0 = time.perf_counter()
        try:
            self.mod, self.version = loader()
        except ImportError as exc:
            self.status = f"skipped (not installed: {exc.name or exc})"
        except Exception as exc:  # a broken install must not stop the run
            self.status = f"skipped (import failed: {type(exc).__name__}: {exc})"
        self.import_s = time.perf_counter() - t0

    @property
    def ok(self) -> bool:
        return self.mod is not None


def load_torchmetrics() -> tuple[Any, str]:
    import torch
    import torchmetrics
    from torchmetrics.functional.classification import multiclass_calibration_error

    ns = argparse.Namespace(torch=torch, mce=multiclass_calibration_error)
    return ns, f"torchmetrics {torchmetrics.__version__}, torch {torch.__version__}"


def load_netcal() -> tuple[Any, str]:
    import netcal
    import netcal.metrics

    return netcal.metrics, f"netcal {netcal.__version__}"


def load_relplot() -> tuple[Any, str]:
    from importlib.metadata import version

    import relplot
    import relplot.metrics

    ns = argparse.Namespace(
        binnedECE=relplot.metrics.binnedECE,
        to_conf=relplot.multiclass_logits_to_confidences,
    )
    return ns, f"relplot {version('relplot')}"


def load_sklearn() -> tuple[Any, str]:
    import sklearn
    from sklearn.calibration import calibration_curve

    return calibration_curve, f"scikit-learn {sklearn.__version__}"


# --------------------------------------------------------------------------
# timing


def time_calls(
    fn: Callable[[], Any], repeat: int
) -> tuple[Any, list[float], float | None]:
    """One untimed warm-up call, then ``repeat`` timed calls.

    The cyclic garbage collector runs once before (arrays are freed by reference
    counting anyway; a full collection with torch loaded costs ~0.15 s)."""
    gc.collect()
    with Memory() as mem:
        out = fn()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    return out, times, mem.extra


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeat: int
) -> dict[str, tuple[Any, list[float], float | None]]:
    """Warm each up (measuring its memory), then time them in rounds
    (a, b, c, a, b, c, ...), so slow drift of the machine's state affects all of
    them alike."""
    gc.collect()
    outs, mems = {}, {}
    for name, fn in fns.items():
        with Memory() as mem:
            outs[name] = fn()
        mems[name] = mem.extra
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (outs[name], times[name], mems[name]) for name in fns}


def numpy_pass(x: np.ndarray) -> np.ndarray:
    """The plain float32 pass: log-sum-exp along the class axis (axis 1)."""
    m = np.max(x, axis=1, keepdims=True)
    t = np.subtract(x, m)
    np.exp(t, out=t)
    s = np.sum(t, axis=1)
    return np.log(s)


# --------------------------------------------------------------------------
# one dataset


def make_dataset(name: str, quick: bool) -> tuple[np.ndarray, np.ndarray, int | None]:
    kind, full, small = DATASETS[name]
    shape = small if quick else full
    if kind == "seg":
        n, c, h, w = shape
        logits, labels = relcal.synth.make_segmentation(
            n, c, h, w, ignore_index=IGNORE, seed=0
        )
        return logits, labels, IGNORE
    logits, labels = relcal.synth.make_logits(shape[0], shape[1], seed=0)
    return logits, labels, None


def pixels(
    logits: np.ndarray, labels: np.ndarray, ignore: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) rows (segmentation flattened to pixels, ignored pixels dropped)."""
    if logits.ndim == 2:
        return logits, labels
    c = logits.shape[1]
    flat = np.moveaxis(logits, 1, -1).reshape(-1, c)
    y = labels.reshape(-1)
    if ignore is None:
        return np.ascontiguousarray(flat), y
    keep = y != ignore
    return flat[keep], y[keep]


def bench_dataset(
    name: str, refs: dict[str, Ref], repeat: int, quick: bool
) -> dict[str, Any]:
    t0 = time.perf_counter()
    logits, labels, ignore = make_dataset(name, quick)
    gen_s = time.perf_counter() - t0
    c = logits.shape[1]
    n_valid = int(labels.size if ignore is None else np.count_nonzero(labels != ignore))
    info = {
        "shape": list(logits.shape),
        "dtype": str(logits.dtype),
        "mbytes": logits.nbytes / 1e6,
        "n_samples": n_valid,
        "n_classes": c,
        "ignore_index": ignore,
        "generate_s": gen_s,
    }
    rows: dict[str, dict[str, Any]] = {}

    # ---- numpy pass and relcal, interleaved
    def relcal_top() -> dict[str, float]:
        table = relcal.reliability_table(logits, labels, ignore_index=ignore)
        ece, rms, mce = relcal.calibration_errors(table)
        acc = float(table.correct.sum() / table.n)
        return {"accuracy": acc, "ece": ece, "rms_ce": rms, "mce": mce}

    def relcal_all() -> Any:
        return relcal.evaluate(logits, labels, ignore_index=ignore)

    core = time_interleaved(
        {
            "numpy_pass": lambda: numpy_pass(logits),
            "relcal_top": relcal_top,
            "relcal_all": relcal_all,
        },
        repeat,
    )
    top, all_ = core["relcal_top"][0], core["relcal_all"][0]
    ref_ece = float(all_.ece)  # relcal.evaluate: float64 softmax, float64 sums
    rows["numpy_pass"] = {
        "ece": None,
        "times": core["numpy_pass"][1],
        "mem_mib": core["numpy_pass"][2],
    }
    rows["relcal_top"] = {
        "ece": top["ece"],
        "times": core["relcal_top"][1],
        "mem_mib": core["relcal_top"][2],
        "mce": top["mce"],
        "accuracy": top["accuracy"],
    }
    rows["relcal_all"] = {
        "ece": ref_ece,
        "times": core["relcal_all"][1],
        "mem_mib": core["relcal_all"][2],
        "mce": all_.mce,
        "accuracy": all_.accuracy,
        "classwise_ece": all_.classwise_ece,
        "nll": all_.nll,
        "brier": all_.brier,
    }
    del core, all_

    # ---- torchmetrics (on the original layout; softmax inside)
    drift = None
    tm = refs["torchmetrics"]
    if tm.ok:
        torch = tm.mod.torch
        x_t = torch.from_numpy(logits)  # no copy
        y_t = torch.from_numpy(labels)

        def run_tm() -> float:
            return float(
                tm.mod.mce(
                    x_t,
                    y_t,
                    num_classes=c,
                    n_bins=N_BINS,
                    norm="l1",
                    ignore_index=ignore,
                )
            )

        rows["torchmetrics"] = run_ref(run_tm, repeat)
        if rows["torchmetrics"].get("ece") is not None:
            drift = torchmetrics_drift(
                torch, x_t, y_t, c, ignore, rows["torchmetrics"]["ece"], ref_ece
            )
        del x_t, y_t
    else:
        rows["torchmetrics"] = {"status": tm.status}
    gc.collect()

    # ---- the rest take (N, C) rows; for seg, flattened with ignored dropped
    x2, y2 = pixels(logits, labels, ignore)
    if ignore is not None:
        del logits  # the caller's copy is gone too: only the pixel rows remain
        gc.collect()

    nc = refs["netcal"]
    if nc.ok:
        probs = softmax32(x2)  # outside the timing
        if c == 2:  # netcal reads 2 columns as P(class 1): give it the top label
            conf = probs.max(axis=1)
            correct = (probs.argmax(axis=1) == y2).astype(np.int64)
            del probs
            args: tuple[np.ndarray, np.ndarray] = (conf, correct)
        else:
            args = (probs, y2)
            del probs
        metric = nc.mod.ECE(bins=N_BINS)
        rows["netcal"] = run_ref(lambda: float(metric.measure(*args)), repeat)
        if c == 2:
            rows["netcal"]["note"] = "top-label form (1-D confidence + correctness)"
        else:
            # relcal given the very probabilities netcal is given (its softmax
            # is outside the timing): the like-for-like comparison for netcal
            def relcal_top_probs() -> float:
                table = relcal.reliability_table(args[0], args[1], kind="probs")
                return float(relcal.calibration_errors(table)[0])

            rows["relcal_top_probs"] = run_ref(relcal_top_probs, repeat)
        del args
    else:
        rows["netcal"] = {"status": nc.status}
    gc.collect()

    rp = refs["relplot"]
    if rp.ok:
        rows["relplot"] = run_ref(
            lambda: float(rp.mod.binnedECE(*rp.mod.to_conf(x2, y2), nbins=N_BINS)),
            repeat,
        )
    else:
        rows["relplot"] = {"status": rp.status}
    gc.collect()

    sk = refs["sklearn"]
    if sk.ok:
        inner = np.linspace(0.0, 1.0, N_BINS + 1)[1:-1]

        def run_sk() -> float:
            p = softmax32(x2)
            conf = p.max(axis=1)
            correct = p.argmax(axis=1) == y2
            del p
            prob_true, prob_pred = sk.mod(
                correct, conf, n_bins=N_BINS, strategy="uniform"
            )
            count = np.bincount(np.searchsorted(inner, conf), minlength=N_BINS)
            count = count[count > 0]
            return float(np.sum(count * np.abs(prob_true - prob_pred)) / conf.size)

        rows["sklearn"] = run_ref(run_sk, repeat)
    else:
        rows["sklearn"] = {"status": sk.status}

    for row in rows.values():
        if row.get("times"):
            row.update(summary(row["times"]))
        if row.get("ece") is not None:
            row["delta"] = row["ece"] - ref_ece
    info["bench_s"] = time.perf_counter() - t0
    return {"info": info, "relcal_ece": ref_ece, "rows": rows, "drift": drift}


def run_ref(fn: Callable[[], float], repeat: int) -> dict[str, Any]:
    try:
        ece, times, mem = time_calls(fn, repeat)
    except Exception as exc:  # report, never crash
        return {"status": f"failed: {type(exc).__name__}: {exc}"}
    return {"ece": ece, "times": times, "mem_mib": mem}


def torchmetrics_drift(
    torch: Any,
    x_t: Any,
    y_t: Any,
    c: int,
    ignore: int | None,
    tm_ece: float,
    relcal_ece: float,
) -> dict[str, Any]:
    """Split torchmetrics' ECE difference into accumulation, convention and
    confidence precision, on torchmetrics' own float32 confidences (untimed).

    torchmetrics: edges torch.linspace(0, 1, M + 1) in the confidences' dtype,
    bin = torch.bucketize(conf, edges, right=True) - 1, i.e. [lo, hi) bins and
    conf == 1.0 in an extra (M + 1)-th bin; sums by scatter_add_ in float32.
    """
    try:
        from torchmetrics.functional.classification.calibration_error import (
            _ce_compute,
            _multiclass_calibration_error_update,
        )
        from torchmetrics.functional.classification.confusion_matrix import (
            _multiclass_confusion_matrix_format,
        )

        p, t = _multiclass_confusion_matrix_format(
            x_t, y_t, ignore, convert_to_labels=False
        )
        conf_t, acc_t = _multiclass_calibration_error_update(p, t)
        source = "torchmetrics' own update functions"
    except Exception:  # private API moved: reproduce it with public torch calls
        _ce_compute = None
        x = x_t if x_t.ndim == 2 else torch.movedim(x_t, 1, -1).reshape(-1, c)
        y = y_t.reshape(-1)
        if ignore is not None:
            keep = y != ignore
            x, y = x[keep], y[keep]
        conf_t, pred = torch.softmax(x, dim=1).max(dim=1)
        conf_t, acc_t = conf_t.float(), pred.eq(y).float()
        source = "torch.softmax(...).max(dim=1), as torchmetrics does"
    conf = conf_t.double().numpy()
    acc = acc_t.double().numpy()

    # torchmetrics' convention in float64 numpy
    edges_tm = torch.linspace(0, 1, N_BINS + 1, dtype=conf_t.dtype).double().numpy()
    idx = np.searchsorted(edges_tm, conf, side="right") - 1  # bucketize(right=True)-1
    nb = N_BINS + 1
    ece_conv64 = ece_from_bins(
        np.bincount(idx, minlength=nb),
        np.bincount(idx, weights=conf, minlength=nb),
        np.bincount(idx, weights=acc, minlength=nb),
    )
    # relcal's rule (lo, hi], 1.0 in the last bin, on the same confidences
    idx_r = np.searchsorted(np.linspace(0.0, 1.0, N_BINS + 1)[1:-1], conf)
    ece_rule64 = ece_from_bins(
        np.bincount(idx_r, minlength=N_BINS),
        np.bincount(idx_r, weights=conf, minlength=N_BINS),
        np.bincount(idx_r, weights=acc, minlength=N_BINS),
    )
    ce64 = None
    if _ce_compute is not None:
        ce64 = float(_ce_compute(conf_t.double(), acc_t.double(), N_BINS, "l1"))
    on_edge = np.isin(conf, edges_tm[1:-1])
    out = {
        "confidences_from": source,
        "torchmetrics_f32": tm_ece,
        "tm_convention_f64_numpy": ece_conv64,
        "tm_ce_compute_f64": ce64,
        "relcal_rule_f64_same_conf": ece_rule64,
        "relcal": relcal_ece,
        "n": int(conf.size),
        "n_conf_eq_1": int(np.count_nonzero(conf == 1.0)),
        "n_conf_on_interior_edge": int(np.count_nonzero(on_edge)),
        "accumulation": tm_ece - ece_conv64,
        "convention": ece_conv64 - ece_rule64,
        "confidence_precision": ece_rule64 - relcal_ece,
    }
    gaps = np.bincount(idx_r, weights=conf - acc, minlength=N_BINS)
    nonempty = np.bincount(idx_r, minlength=N_BINS) > 0
    out["all_gaps_same_sign"] = bool(
        np.all(gaps[nonempty] > 0) or np.all(gaps[nonempty] < 0)
    )
    return out


# --------------------------------------------------------------------------
# output


def print_dataset(name: str, res: dict[str, Any]) -> dict[str, Any]:
    info, rows = res["info"], res["rows"]
    shape = "×".join(str(s) for s in info["shape"])
    ign = f", ignore_index={info['ignore_index']}" if info["ignore_index"] else ""
    print(
        f"\n### {name}: logits {shape} {info['dtype']} ({info['mbytes']:.0f} MB),"
        f" {info['n_samples']:,} samples{ign}; relcal ECE {res['relcal_ece']:.8f}"
    )
    print(
        f"(made in {info['generate_s']:.1f} s; this dataset's block took"
        f" {info['bench_s']:.1f} s)"
    )
    print()
    print(
        "| tool | ECE | Δ vs relcal | median | min | × relcal_top | × numpy_pass |"
        " peak extra memory |"
    )
    print("|---|---|---|---|---|---|---|---|")
    t_top = rows["relcal_top"].get("median")
    t_np = rows["numpy_pass"].get("median")
    for tool, row in rows.items():
        if "status" in row:
            print(f"| {tool} | {row['status']} | | | | | | |")
            continue
        ece = "—" if row.get("ece") is None else f"{row['ece']:.8f}"
        delta = "—" if row.get("delta") is None else f"{row['delta']:+.2e}"
        flag = (
            " ⚠"
            if row.get("delta") is not None and abs(row["delta"]) > DRIFT_LIMIT
            else ""
        )
        note = f" ({row['note']})" if row.get("note") else ""
        print(
            f"| {tool}{note} | {ece} | {delta}{flag} | {fmt_time(row['median'])} |"
            f" {fmt_time(row['min'])} | {fmt_ratio(row['median'], t_top)} |"
            f" {fmt_ratio(row['median'], t_np)} | {fmt_mib(row.get('mem_mib'))} |"
        )

    # targets
    t_all = rows["relcal_all"].get("median")
    r_top = t_top / t_np
    r_all = t_all / t_np
    refs_timed = {k: rows[k]["median"] for k in REFERENCE_TOOLS if "median" in rows[k]}
    # each reference against relcal on the same input: netcal is given float32
    # probabilities, so it is compared with relcal_top_probs where that ran
    t_probs = rows.get("relcal_top_probs", {}).get("median")
    ours = {k: t_probs if k == "netcal" and t_probs else t_top for k in refs_timed}
    slower = {k: v for k, v in refs_timed.items() if v <= ours[k]}
    targets = {
        "top_over_numpy": r_top,
        "all_over_numpy": r_all,
        "top_le_1x_numpy": r_top <= 1.0,
        "all_le_2_5x_numpy": r_all <= 2.5,
        "top_faster_than_every_reference": bool(refs_timed) and not slower,
        "references_timed": sorted(refs_timed),
        "references_not_slower": sorted(slower),
        "netcal_compared_with": "relcal_top_probs" if t_probs else "relcal_top",
    }
    print()
    print(
        f"relcal_top / numpy_pass = {r_top:.2f}  (target ≤ 1.0: "
        f"{'met' if targets['top_le_1x_numpy'] else 'NOT MET'})"
    )
    print(
        f"relcal_all / numpy_pass = {r_all:.2f}  (target ≤ 2.5: "
        f"{'met' if targets['all_le_2_5x_numpy'] else 'NOT MET'})"
    )
    # the numpy pass allocates a fresh array the size of the logits on every
    # call; on a virtual machine its page faults make it the noisiest row, so
    # the same ratios from the minimums are printed beside (not judged)
    m_np = rows["numpy_pass"]["min"]
    targets["top_over_numpy_min"] = rows["relcal_top"]["min"] / m_np
    targets["all_over_numpy_min"] = rows["relcal_all"]["min"] / m_np
    print(
        "  the same from minimums (not judged):"
        f" top {targets['top_over_numpy_min']:.2f},"
        f" all {targets['all_over_numpy_min']:.2f};"
        f" numpy_pass min {fmt_time(m_np)}, median {fmt_time(t_np)}"
    )
    # the three are timed in rounds (numpy_pass, relcal_top, relcal_all, ...):
    # a ratio per round compares calls made within a second of each other
    if all(rows[k].get("times") for k in ("numpy_pass", "relcal_top", "relcal_all")):
        t_rounds = rows["numpy_pass"]["times"]

        def paired(tool: str) -> float:
            return statistics.median(
                a / b for a, b in zip(rows[tool]["times"], t_rounds, strict=True)
            )

        targets["top_over_numpy_paired"] = paired("relcal_top")
        targets["all_over_numpy_paired"] = paired("relcal_all")
        print(
            "  and as the median of the per-round ratios (not judged):"
            f" top {targets['top_over_numpy_paired']:.2f},"
            f" all {targets['all_over_numpy_paired']:.2f}"
        )
    if not refs_timed:
        print("relcal_top faster than every reference: n/a (no reference timed)")
    elif slower:
        print(
            "relcal_top faster than every reference: NOT MET (not slower: "
            + ", ".join(sorted(slower))
            + ")"
        )
    else:
        closest = min(refs_timed, key=lambda k: refs_timed[k] / ours[k])
        mine = "relcal_top_probs" if ours[closest] is not t_top else "relcal_top"
        print(
            f"relcal_top faster than every reference: met (closest: {closest},"
            f" {refs_timed[closest] / ours[closest]:.2f}× {mine})"
        )
    if t_probs and "netcal" in refs_timed:
        print(
            f"  (netcal, given probabilities, is compared with relcal_top_probs;"
            f" beside relcal_top on logits it is {refs_timed['netcal'] / t_top:.2f}×)"
        )
    res["targets"] = targets

    d = res["drift"]
    if d is not None:
        print()
        print(
            "torchmetrics' ECE drift (relcal sums in float64, torchmetrics in"
            " float32), on torchmetrics' float32 confidences"
            f" ({d['confidences_from']}, {d['n']:,} samples;"
            f" {d['n_conf_eq_1']:,} with conf == 1.0,"
            f" {d['n_conf_on_interior_edge']:,} exactly on an interior edge):"
        )
        print()
        print("| computation | ECE | Δ vs relcal |")
        print("|---|---|---|")
        rel = d["relcal"]
        lines = [
            ("torchmetrics as called (float32 sums)", d["torchmetrics_f32"]),
            (
                "torchmetrics' convention in float64 numpy ([lo,hi), float32 edges,"
                " extra bin for 1.0)",
                d["tm_convention_f64_numpy"],
            ),
            (
                "torchmetrics' own _ce_compute on float64 tensors",
                d["tm_ce_compute_f64"],
            ),
            (
                "relcal's rule (lo,hi] in float64 numpy, same confidences",
                d["relcal_rule_f64_same_conf"],
            ),
            ("relcal.evaluate", rel),
        ]
        for label, v in lines:
            if v is None:
                print(f"| {label} | unavailable | |")
            else:
                print(f"| {label} | {v:.10f} | {v - rel:+.2e} |")
        print()
        print(
            f"split: float32 accumulation {d['accumulation']:+.2e}, bin convention"
            f" {d['convention']:+.2e}, confidence precision (float32 softmax vs"
            f" relcal's) {d['confidence_precision']:+.2e}"
        )
        parts = {
            "float32 accumulation": abs(d["accumulation"]),
            "the bin convention": abs(d["convention"]),
            "confidence precision": abs(d["confidence_precision"]),
        }
        main = max(parts, key=parts.__getitem__)
        print(f"→ the drift is mostly {main}.")
        if d["all_gaps_same_sign"]:
            print(
                "  (caveat: every non-empty bin has a gap of the same sign here, so"
                " ECE = |mean confidence − accuracy| under any bin rule and the"
                " convention term is 0 by construction on this data: it shows"
                " only where bins of both signs meet, e.g. conf == 1.0 beside an"
                " under-confident last bin)"
            )
    return targets


def whole_process(logits: np.ndarray, labels: np.ndarray, runs: int) -> dict[str, Any]:
    """``python -m relcal metrics FILE`` in a fresh interpreter, 1 warm-up + runs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cifar_like.npz")
        np.savez(path, logits=logits, labels=labels)
        for label, extra in (("text", []), ("json", ["--json"])):
            cmd = [sys.executable, "-m", "relcal", "metrics", path, *extra]
            times = []
            proc = None
            for i in range(runs + 1):
                t0 = time.perf_counter()
                proc = subprocess.run(
                    cmd, cwd=tmp, env=env, capture_output=True, text=True
                )
                dt = time.perf_counter() - t0
                if proc.returncode != 0:
                    out[label] = {
                        "status": f"failed (exit {proc.returncode}):"
                        f" {proc.stderr.strip()[-300:]}"
                    }
                    break
                if i > 0:
                    times.append(dt)
            else:
                assert proc is not None
                entry: dict[str, Any] = {
                    "times": times,
                    **summary(times),
                    "command": " ".join(["python", *cmd[1:4], "FILE", *extra]),
                }
                if label == "json":
                    entry["ece"] = json.loads(proc.stdout)["metrics"]["ece"]
                out[label] = entry
    return out


def print_whole_process(wp: dict[str, Any], runs: int, in_process_ece: float) -> None:
    print(
        f"\n### Whole process: cifar_like saved to a temporary .npz,"
        f" 1 warm-up + {runs} runs (same interpreter, PYTHONPATH={REPO})"
    )
    print()
    print("| command | median | min | max | target ≤ 0.5 s median |")
    print("|---|---|---|---|---|")
    for entry in wp.values():
        if "status" in entry:
            print(f"| — | {entry['status']} | | | |")
            continue
        ok = "met" if entry["median"] <= 0.5 else "NOT MET"
        print(
            f"| `{entry['command']}` | {entry['median']:.3f} s |"
            f" {entry['min']:.3f} s | {entry['max']:.3f} s | {ok} |"
        )
    js = wp.get("json", {})
    if "ece" in js:
        print(
            f"\n--json ECE {js['ece']:.10f}; in process {in_process_ece:.10f}"
            f" (Δ {js['ece'] - in_process_ece:+.1e})"
        )


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small datasets and fewer runs: a smoke test (< 20 s)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per tool after one warm-up (default 5;"
        " 3 with --quick); the median and min are reported",
    )
    ap.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    ap.add_argument(
        "--datasets",
        default=",".join(DATASETS),
        help="comma-separated subset of: " + ", ".join(DATASETS),
    )
    args = ap.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    if repeat < 1:
        ap.error("--repeat must be at least 1")
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        ap.error(f"unknown dataset(s): {', '.join(unknown)}")
    wall0 = time.perf_counter()

    refs = {
        "torchmetrics": Ref("torchmetrics", load_torchmetrics),
        "netcal": Ref("netcal", load_netcal),
        "relplot": Ref("relplot", load_relplot),
        "sklearn": Ref("sklearn", load_sklearn),
    }
    torch_threads = None
    if refs["torchmetrics"].ok:
        torch_threads = refs["torchmetrics"].mod.torch.get_num_threads()

    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "relcal": f"{relcal.__version__} ({Path(relcal.__file__).parent})",
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "relcal_threads": relcal.reduce.default_threads(),
        "relcal_exp": relcal.kernel.status(),
        "torch_threads": torch_threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "references": {k: (r.version if r.ok else r.status) for k, r in refs.items()},
        "import_s": {k: r.import_s for k, r in refs.items()},
    }
    mode = "QUICK (smoke test, small data)" if args.quick else "full"
    print(
        f"# relcal benchmark ({mode}): in process, same in-memory arrays,"
        f" one warm-up then median/min of {repeat} runs"
    )
    print()
    print(f"python {env['python']}, numpy {env['numpy']}, relcal {env['relcal']}")
    print(f"relcal's float64 exp: {env['relcal_exp']} (relcal/kernel.py)")
    print(
        f"{env['cpu']}, {env['cpu_count']} cores; relcal threads"
        f" {env['relcal_threads']}, torch threads {torch_threads}, numpy_pass 1"
        f" thread; OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}"
    )
    for k, r in refs.items():
        what = r.version if r.ok else r.status
        print(f"  {k}: {what} (import {r.import_s:.2f} s, not timed)")
    print()
    print("Rows:")
    for k, v in ROW_HELP.items():
        print(f"  {k:13s} {v}")
    print(
        "  Seg: torchmetrics gets the (N, C, H, W) logits and ignore_index=255;"
        " netcal, relplot and sklearn get the pixels flattened to (P, C) with"
        " ignored pixels dropped OUTSIDE the timing."
    )
    print(
        "  numpy_pass, relcal_top and relcal_all are timed in alternating rounds;"
        " each reference tool in a block of its own. Δ is against relcal.evaluate's"
        f" ECE (float64); ⚠ marks |Δ| > {DRIFT_LIMIT:g}."
    )

    if args.quick:
        print(
            "  QUICK: small arrays, where fixed per-call costs dominate; the targets"
            " are judged on the full run."
        )

    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "repeat": repeat,
        "env": env,
        "datasets": {},
    }
    cifar_ece = None
    for name in names:
        res = bench_dataset(name, refs, repeat, args.quick)
        print_dataset(name, res)
        results["datasets"][name] = res
        if name == "cifar_like":
            cifar_ece = res["relcal_ece"]
        gc.collect()

    runs = 3 if args.quick else 9
    logits, labels, _ = make_dataset("cifar_like", args.quick)
    if cifar_ece is None:
        cifar_ece = relcal.evaluate(logits, labels).ece
    wp = whole_process(logits, labels, runs)
    print_whole_process(wp, runs, cifar_ece)
    results["whole_process"] = wp

    wall = time.perf_counter() - wall0
    results["peak_rss_mib"] = peak_rss_mib()
    results["wall_s"] = wall
    print()
    print("### Summary")
    print()
    print(
        "| dataset | relcal_top/numpy | ≤ 1.0 | relcal_all/numpy | ≤ 2.5 |"
        " top faster than every reference |"
    )
    print("|---|---|---|---|---|---|")
    for name, res in results["datasets"].items():
        t = res["targets"]
        yes = lambda b: "met" if b else "NOT MET"  # noqa: E731
        print(
            f"| {name} | {t['top_over_numpy']:.2f} | {yes(t['top_le_1x_numpy'])} |"
            f" {t['all_over_numpy']:.2f} | {yes(t['all_le_2_5x_numpy'])} |"
            f" {yes(t['top_faster_than_every_reference'])} |"
        )
    print()
    print(f"peak RSS {results['peak_rss_mib']:.0f} MiB; script wall time {wall:.1f} s")
    if args.json:
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
