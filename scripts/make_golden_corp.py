#!/usr/bin/env python
"""Golden values for relcal's CORP reliability diagrams (``relcal/corp.py``).

What it computes
----------------
For each case, from raw binary forecasts ``x`` and outcomes ``y``:

  pav        scikit-learn ``IsotonicRegression().fit(x, y).predict(v)`` at
             the distinct forecast values ``v`` (ties pooled by sklearn);
             stored at up to :data:`N_PAV` evenly spaced indices of ``v``
             (``pav_index``) plus ``pav_sum`` = sum over v of PAV(v) * count
             and ``pav_sumsq`` = sum of PAV(v)^2 * count (checksums of all
             values).
  brier, log model-diagnostics ``decompose(y, x, scoring_function=
             SquaredError() | LogLoss())``: score, miscalibration,
             discrimination, uncertainty (its isotonic fit is sklearn's too).

Cases:

  real/<file>   every file of ../shared/real (dir from RELCAL_SHARED_REAL):
                the top-label event (x = top-label confidence, y = correct).
                ``*_toplabel.csv``: x = the ``confidence`` column parsed as
                float64, y = true_label == pred_label.  ``*.npz`` with
                ``logits``: x = max of the float64 softmax, computed as
                1 / sum(exp(z - max z)); with ``probs``: the row max in float64.
  gen/<name>    seeded generated binary forecasts (:func:`generate`; the JSON
                stores the generator's name, seed and parameters, not data).
  precip/<fc>   the four probability-of-precipitation forecasts of
                reliabilitydiag's example data ``precip_Niamey_2016`` (92 days,
                :data:`PRECIP_CSV`, a text copy from frazane/scoringrules
                ``tests/data/precip_Niamey_2016.csv``), with reliabilitydiag's
                published Brier decomposition (:data:`PRECIP_PUBLISHED`).

One caveat is recorded per case as ``sklearn_merged``: sklearn's
``_make_unique`` pools forecast values closer than float64 resolution (1e-15)
into one, relcal keeps them apart; the count of such neighbour pairs is stored
(non-zero only for float64 softmax confidences next to 1.0).

How to run (repository root, in an environment with scikit-learn and
model-diagnostics, e.g. /work/refenv)::

    /work/refenv/bin/python scripts/make_golden_corp.py [--check]

``--check`` compares a fresh run with the stored file instead of writing it.
The functions :func:`generate`, :func:`load_real`, :func:`precip` are also
used by ``tests/test_corp.py`` so both sides read identical inputs.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "golden" / "corp.json"
SHARED_REAL = Path(
    os.environ.get("RELCAL_SHARED_REAL", REPO.parent / "shared" / "real")
)
FORMAT = 1
N_PAV = 64

# name -> generator parameters (n, seed and the shape of the forecast)
GENERATED: dict[str, dict[str, Any]] = {
    "calibrated_beta": {"kind": "calibrated", "n": 5000, "seed": 1, "a": 2.0, "b": 2.0},
    "overconfident": {"kind": "overconfident", "n": 20000, "seed": 2, "slope": 0.6},
    "underconfident": {"kind": "underconfident", "n": 3000, "seed": 3, "power": 2.0},
    "discrete_10": {"kind": "discrete", "n": 2000, "seed": 4, "n_values": 10},
    "rounded_2dp": {"kind": "rounded", "n": 50000, "seed": 5, "decimals": 2},
    "edges_0_1": {"kind": "edges", "n": 4000, "seed": 6},
    "tiny": {"kind": "calibrated", "n": 7, "seed": 7, "a": 1.0, "b": 1.0},
}


def generate(kind: str, n: int, seed: int, **p: float) -> tuple[np.ndarray, np.ndarray]:
    """Seeded binary forecasts ``x`` in [0, 1] and outcomes ``y`` in {0, 1}."""
    rng = np.random.default_rng(seed)
    if kind == "calibrated":
        x = rng.beta(p["a"], p["b"], n)
        true = x
    elif kind == "overconfident":
        x = rng.uniform(0, 1, n)
        true = 0.5 + p["slope"] * (x - 0.5)
    elif kind == "underconfident":
        x = rng.uniform(0.2, 0.8, n)
        true = np.where(
            x < 0.5, 0.5 * (2 * x) ** p["power"], 1 - 0.5 * (2 - 2 * x) ** p["power"]
        )
    elif kind == "discrete":
        values = (np.arange(int(p["n_values"])) + 0.5) / p["n_values"]
        x = rng.choice(values, n)
        true = x**1.3
    elif kind == "rounded":
        true = rng.beta(0.7, 0.7, n)
        x = np.round(np.clip(true * 0.8 + 0.15, 0, 1), int(p["decimals"]))
    elif kind == "edges":
        # exact 0 and 1 forecasts, whose outcomes agree (finite log score)
        x = rng.uniform(0, 1, n)
        x[: n // 10] = 0.0
        x[n // 10 : n // 5] = 1.0
        true = x
    else:
        raise ValueError(f"kind: unknown {kind!r}")
    y = (rng.uniform(0, 1, n) < true).astype(np.float64)
    return x, y


def load_real(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence (float64) and correct (0/1) of a shared/real file."""
    if path.suffix == ".csv":
        a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
        return a[:, 2].copy(), (a[:, 0] == a[:, 1]).astype(np.float64)
    with np.load(path) as d:
        labels = d["labels"]
        if "logits" in d:
            z = d["logits"].astype(np.float64)
            z = z - z.max(axis=1, keepdims=True)
            conf = 1.0 / np.exp(z).sum(axis=1)
            pred = np.argmax(z, axis=1)
        else:
            p = d["probs"].astype(np.float64)
            pred = np.argmax(p, axis=1)
            conf = p[np.arange(p.shape[0]), pred]
    return conf, (pred == labels).astype(np.float64)


def real_files() -> list[Path]:
    if not SHARED_REAL.is_dir():
        return []
    return sorted(f for f in SHARED_REAL.iterdir() if f.suffix in (".csv", ".npz"))


PRECIP_CSV = """\
date,Logistic,EMOS,ENS,EPC,obs
2016-07-01,0.560838211279398,0.470927598756663,0.846153846153846,0.492359932088285,0
2016-07-02,0.367803232988086,0.4472368919703,0.730769230769231,0.495755517826825,1
2016-07-03,0.470877563875753,0.428769493412347,0.403846153846154,0.500848896434635,1
2016-07-04,0.494575626149281,0.506429179281555,0.807692307692308,0.521222410865874,0
2016-07-05,0.494392607034388,0.489266777045689,0.942307692307692,0.524617996604414,1
2016-07-06,0.619164657293497,0.507685023509096,0.961538461538462,0.534804753820034,1
2016-07-07,0.274537947080611,0.428682966933931,0.384615384615385,0.529711375212224,0
2016-07-08,0.469886920985678,0.451318184376489,0.788461538461538,0.522920203735144,0
2016-07-09,0.749910396167508,0.444080668726946,0.634615384615385,0.524617996604414,1
2016-07-10,0.727039078907409,0.460118847173258,0.807692307692308,0.534804753820034,0
2016-07-11,0.680202282570296,0.576876716613472,1,0.534804753820034,1
2016-07-12,0.29420498034391,0.733408010726345,1,0.533106960950764,0
2016-07-13,0.540560349603717,0.496902298884003,0.923076923076923,0.541595925297114,1
2016-07-14,0.707570445267965,0.48474992979442,0.769230769230769,0.544991511035654,0
2016-07-15,0.474234138005029,0.440985856569444,0.596153846153846,0.550084889643463,0
2016-07-16,0.707160573107941,0.32774936151842,0.480769230769231,0.555178268251273,1
2016-07-17,0.891903994552343,0.485976554434267,0.884615384615385,0.558573853989813,1
2016-07-18,0.699991214302673,0.712037276830264,1,0.567062818336163,1
2016-07-19,0.510005424750557,0.615841690186654,1,0.572156196943973,1
2016-07-20,0.798305922976091,0.880165855151451,1,0.578947368421053,1
2016-07-21,0.467425831500554,0.542219030069737,1,0.582342954159593,1
2016-07-22,0.635359928057918,0.44718525686389,0.769230769230769,0.582342954159593,0
2016-07-23,0.709568142634192,0.524926888786195,0.980769230769231,0.577249575551783,1
2016-07-24,0.583231725961953,0.603246734758474,1,0.578947368421053,1
2016-07-25,0.419933558776834,0.631914123729818,1,0.577249575551783,0
2016-07-26,0.665753906719871,0.466454028513373,0.942307692307692,0.582342954159593,1
2016-07-27,0.681082558464227,0.426925999579875,0.442307692307692,0.585738539898132,0
2016-07-28,0.597650317927175,0.507547479219634,0.942307692307692,0.597623089983022,1
2016-07-29,0.567637811926953,0.592864362135967,0.980769230769231,0.595925297113752,0
2016-07-30,0.473226415949789,0.428304828128083,0.461538461538462,0.601018675721562,1
2016-07-31,0.84235407986875,0.573997639952978,0.961538461538462,0.595925297113752,1
2016-08-01,0.501989002331218,0.534582558740225,0.923076923076923,0.594227504244482,0
2016-08-02,0.456455199373188,0.463515246245762,0.75,0.602716468590832,0
2016-08-03,0.808129725809056,0.654385996379738,1,0.599320882852292,1
2016-08-04,0.298357374302119,0.591881683512203,1,0.597623089983022,0
2016-08-05,0.429492280895697,0.458116425835298,0.692307692307692,0.592529711375212,0
2016-08-06,0.884361089334914,0.478733868497343,0.884615384615385,0.592529711375212,1
2016-08-07,0.726775126215886,0.51763538284209,0.923076923076923,0.595925297113752,0
2016-08-08,0.69463085465329,0.656439253426861,1,0.601018675721562,1
2016-08-09,0.714115031012051,0.776043757293603,1,0.606112054329372,1
2016-08-10,0.678202649349676,0.742816611154174,0.980769230769231,0.612903225806452,1
2016-08-11,0.742716925458605,0.588376403859909,1,0.623089983022071,0
2016-08-12,0.485768946113913,0.481442689605099,0.923076923076923,0.617996604414261,1
2016-08-13,0.669302888987929,0.457153346790274,0.730769230769231,0.611205432937182,1
2016-08-14,0.3310711439631,0.430641769689626,0.788461538461538,0.609507640067912,1
2016-08-15,0.731021851574459,0.567278148436026,1,0.607809847198642,1
2016-08-16,0.535004296143651,0.734643406279602,1,0.609507640067912,1
2016-08-17,0.756644026010204,0.682965576955937,1,0.607809847198642,1
2016-08-18,0.446510424766965,0.556674840013671,1,0.599320882852292,1
2016-08-19,0.637540593443639,0.625345468240361,0.942307692307692,0.594227504244482,1
2016-08-20,0.454293917226552,0.445613943040647,0.192307692307692,0.587436332767402,0
2016-08-21,0.331647643936552,0.458295562803306,0.673076923076923,0.587436332767402,0
2016-08-22,0.323202340328532,0.328248081832251,0.326923076923077,0.582342954159593,0
2016-08-23,0.701489842480935,0.473758807648685,0.884615384615385,0.578947368421053,1
2016-08-24,0.72129293335223,0.784154395614743,1,0.577249575551783,1
2016-08-25,0.3230449441505,0.626383895080359,1,0.570458404074703,0
2016-08-26,0.698542188848306,0.518019516660803,0.903846153846154,0.563667232597623,1
2016-08-27,0.735801241640593,0.577490253871657,1,0.555178268251273,1
2016-08-28,0.713987553298061,0.92264338159385,1,0.544991511035654,1
2016-08-29,0.535702754179025,0.510830329639068,1,0.541595925297114,1
2016-08-30,0.497982733155576,0.467208146164193,0.807692307692308,0.534804753820034,0
2016-08-31,0.417286615095033,0.458180848820343,0.807692307692308,0.536502546689304,1
2016-09-01,0.26272774140781,0.229376148702466,0.173076923076923,0.531409168081494,1
2016-09-02,0.369285962779679,0.450558009520291,0.519230769230769,0.519524617996604,1
2016-09-03,0.742148831500296,0.461197671542233,0.596153846153846,0.514431239388795,1
2016-09-04,0.395124327718668,0.512286808559866,0.942307692307692,0.511035653650255,0
2016-09-05,0.660971932758725,0.569710087796983,0.980769230769231,0.517826825127334,1
2016-09-06,0.430481257449726,0.477653093280377,0.692307692307692,0.507640067911715,1
2016-09-07,0.256073824153536,0.484377671657636,0.692307692307692,0.495755517826825,0
2016-09-08,0.67393132322181,0.499089187781404,0.903846153846154,0.488964346349745,1
2016-09-09,0.512619583872848,0.562133843847092,0.961538461538462,0.480475382003396,0
2016-09-10,0.24547465166341,0.481196080522385,0.942307692307692,0.458404074702886,1
2016-09-11,0.459806344069672,0.582062618163053,1,0.444821731748727,1
2016-09-12,0.362500158457364,0.445203121390491,0.365384615384615,0.436332767402377,0
2016-09-13,0.734486772183279,0.452815978310248,0.634615384615385,0.431239388794567,1
2016-09-14,0.634387450579914,0.566898523156837,1,0.419354838709677,0
2016-09-15,0.644228056449233,0.558345311060853,0.980769230769231,0.410865874363328,0
2016-09-16,0.275398840750467,0.444142824591077,0.211538461538462,0.400679117147708,0
2016-09-17,0.466504519977194,0.458222962291954,0.596153846153846,0.397283531409168,0
2016-09-18,0.326661034064635,0.455696937725185,0.384615384615385,0.388794567062818,0
2016-09-19,0.328950247998667,0.490299053472221,0.884615384615385,0.383701188455009,0
2016-09-20,0.474787592282309,0.483599371144584,0.846153846153846,0.376910016977929,1
2016-09-21,0.33498009545831,0.493803913633217,0.692307692307692,0.361629881154499,0
2016-09-22,0.355896301731481,0.485237409708566,0.826923076923077,0.34974533106961,1
2016-09-23,0.510856256029163,0.479919263306047,0.903846153846154,0.34295415959253,1
2016-09-24,0.427252440665918,0.315523322083817,0.153846153846154,0.33276740237691,0
2016-09-25,0.446492041702203,0.461869861826316,0.653846153846154,0.32597623089983,1
2016-09-26,0.213666780282317,0.478517602299893,0.903846153846154,0.31918505942275,1
2016-09-27,0.363029222445766,0.485982615684328,0.923076923076923,0.312393887945671,0
2016-09-28,0.196083366585018,0.448050157963541,0.134615384615385,0.310696095076401,0
2016-09-29,0.234978807299896,0.315083704116701,0.115384615384615,0.298811544991511,0
2016-09-30,0.189795091539756,0.1962337148222,0.192307692307692,0.290322580645161,0
"""

# reliabilitydiag's summary() of precip_Niamey_2016 (pkgdown page
# reference/summary.reliabilitydiag.html, v0.1.4; README shows the EMOS row),
# as printed: 3 significant digits (tibble).  (S, MCB, DSC, UNC), Brier score.
PRECIP_PUBLISHED: dict[str, tuple[float, float, float, float]] = {
    "Logistic": (0.206, 0.0171, 0.0555, 0.244),
    "EMOS": (0.232, 0.0183, 0.0305, 0.244),
    "ENS": (0.266, 0.0661, 0.0441, 0.244),
    "EPC": (0.234, 0.0223, 0.0323, 0.244),
}


def precip() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """forecast name -> (x, y) of precip_Niamey_2016."""
    a = np.genfromtxt(io.StringIO(PRECIP_CSV), delimiter=",", skip_header=1)
    y = a[:, 5]
    return {name: (a[:, 1 + i].copy(), y) for i, name in enumerate(PRECIP_PUBLISHED)}


# --------------------------------------------------------------------------


def _num(v: float) -> float | str:
    """JSON has no inf/nan: store them as the strings "inf", "-inf", "nan"."""
    return v if np.isfinite(v) else str(v)


def num(v: float | str) -> float:
    """Inverse of :func:`_num`."""
    return float(v)


def reference_case(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from model_diagnostics.scoring import LogLoss, SquaredError, decompose
    from sklearn.isotonic import IsotonicRegression

    v, inverse = np.unique(x, return_inverse=True)
    count = np.bincount(inverse).astype(np.float64)
    fit = IsotonicRegression().fit(x, y).predict(v)
    idx = np.unique(np.linspace(0, v.size - 1, min(N_PAV, v.size)).round().astype(int))
    out: dict[str, Any] = {
        "n_samples": int(x.size),
        "n_distinct": int(v.size),
        "sklearn_merged": int(np.sum(np.diff(v) < np.finfo(np.float64).resolution)),
        "pav_index": idx.tolist(),
        "pav_value": v[idx].tolist(),
        "pav": fit[idx].tolist(),
        "pav_sum": float(np.sum(fit * count)),
        "pav_sumsq": float(np.sum(fit * fit * count)),
    }
    merged = out["sklearn_merged"] > 0
    if merged:
        # sklearn pools the near-ties (and its predict returns NaN there):
        # use model-diagnostics' own PAVA (Busing, pure Python) on the
        # distinct values and its scoring functions on the samples instead
        from model_diagnostics._utils.isotonic import pava

        sum_y = np.bincount(inverse, weights=y)
        fit = pava(sum_y / count, count)[0]
        out.update(
            reference="model_diagnostics pava on distinct values + "
            "SquaredError/LogLoss",
            pav=fit[idx].tolist(),
            pav_sum=float(np.sum(fit * count)),
            pav_sumsq=float(np.sum(fit * fit * count)),
        )
    else:
        out["reference"] = "sklearn IsotonicRegression + model_diagnostics decompose"
    for key, fn in (("brier", SquaredError()), ("log", LogLoss())):
        if merged:
            s, s_c, s_r = (
                fn(y, x),
                fn(y, fit[inverse]),
                fn(y, np.full_like(x, y.mean())),
            )
            d = {
                "score": s,
                "miscalibration": s - s_c,
                "discrimination": s_r - s_c,
                "uncertainty": s_r,
            }
        else:
            d = decompose(y_obs=y, y_pred=x, scoring_function=fn).row(0, named=True)
        out[key] = {
            k: _num(float(d[k]))
            for k in ("score", "miscalibration", "discrimination", "uncertainty")
        }
    return out


def build() -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for f in real_files():
        cases[f"real/{f.name}"] = reference_case(*load_real(f))
    for name, params in GENERATED.items():
        case = reference_case(*generate(**params))
        case["generator"] = params
        cases[f"gen/{name}"] = case
    for name, (x, y) in precip().items():
        case = reference_case(x, y)
        case["published_brier"] = dict(
            zip(
                ("score", "miscalibration", "discrimination", "uncertainty"),
                PRECIP_PUBLISHED[name],
                strict=True,
            )
        )
        cases[f"precip/{name}"] = case
    versions = {
        pkg: importlib.metadata.version(pkg)
        for pkg in ("numpy", "scikit-learn", "model-diagnostics")
    }
    return {
        "format": FORMAT,
        "made_by": "scripts/make_golden_corp.py",
        "python": platform.python_version(),
        "versions": versions,
        "cases": cases,
    }


def dump(data: dict[str, Any]) -> str:
    """JSON text with one line per case (small diffs, strict JSON)."""
    head = {k: v for k, v in data.items() if k != "cases"}
    lines = [json.dumps(head, allow_nan=False)[:-1] + ', "cases": {']
    items = list(data["cases"].items())
    for i, (name, case) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        lines.append(f" {json.dumps(name)}: {json.dumps(case, allow_nan=False)}{sep}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args(argv)
    data = build()
    if not data["cases"] or not any(k.startswith("real/") for k in data["cases"]):
        print(f"warning: no real files found in {SHARED_REAL}", file=sys.stderr)
    if args.check:
        old = json.loads(OUT.read_text())
        worst = 0.0
        for name, case in data["cases"].items():
            ref = old["cases"][name]
            for key in ("brier", "log"):
                for k, val in case[key].items():
                    a, b = num(val), num(ref[key][k])
                    if a != b:
                        worst = max(worst, abs(a - b))
            worst = max(
                worst, float(np.max(np.abs(np.subtract(case["pav"], ref["pav"]))))
            )
        print(f"largest difference from {OUT.name}: {worst:.3g}")
        return 0 if worst <= 1e-12 else 1
    OUT.write_text(dump(data))
    print(f"wrote {OUT} ({len(data['cases'])} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
