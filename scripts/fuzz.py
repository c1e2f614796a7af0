#!/usr/bin/env python
"""Fuzz relcal's command line: mutated files of every format, every command.

Each case is generated from ``numpy.random.default_rng([seed, index])``, so any
case can be replayed alone.  A case builds a valid input (an ``.npz`` with
logits or probabilities and maybe class names, a ``.npy`` pair, a ``.csv`` or
``.parquet`` table, a top-label ``.csv``, a segmentation map; and, as the
command needs them, a temperature JSON, a check config TOML and a baseline
metrics JSON), mutates it (values, dtypes, shapes, labels, class names, CSV
dialects, bytes and headers, FIFOs, devices, directories, options, output
paths) and runs one command (``metrics``, ``metrics --json``, ``report``,
``fit-temperature``, ``calibrate``, ``check``) in process through
``relcal.cli.main(argv)``, with stdout and stderr captured (in a terminal
encoding that may be ASCII), under a time limit (``signal.alarm``) and an
address-space limit (so that a huge allocation fails instead of swapping).

Outcome per case:

ok
    exit 0 (or 1 for ``check``), stderr only relcal's own lines (``wrote ...``,
    ``warning: ...``, ``note: ...``), every output valid and finite: JSON parsed
    strictly (no NaN/Infinity), text, HTML, Markdown and XML without a ``nan``
    or ``inf`` token, ``.npz`` arrays finite.
clean-error
    exit 2, nothing on stdout, exactly one stderr line ``Error: ...`` without
    control characters that names a file of the case or an option, and no
    temporary file; no file written or changed.
usage-error
    exit 2 from click's own option parsing (``Usage: ...`` then ``Error: ...``);
    nothing written.
failure
    anything else, in classes: an escaped exception (by type and the relcal
    function it escaped from), a hang, a warning, a non-finite value in an
    output, an extra stderr line, an output written despite exit 2, a message
    that is not one line, names no file, or names a temporary file.

Usage::

    python scripts/fuzz.py --cases 10000 --seed 1      # the long run
    python scripts/fuzz.py --seed 1 --case 4711 -v     # replay one case
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TIME_LIMIT = 20  # seconds per case
WARNINGS = "always"  # "error" (--warnings-error) to see where a warning comes from
MEMORY_LIMIT = 8 << 30  # bytes of address space for the whole run
COMMANDS = (
    "metrics",
    "metrics-json",
    "report",
    "fit-temperature",
    "calibrate",
    "check",
)
COMMAND_WEIGHTS = (0.24, 0.14, 0.12, 0.16, 0.14, 0.20)
FORMATS = ("npz", "npy", "csv", "parquet", "toplabel", "segmentation")
FORMAT_WEIGHTS = (0.3, 0.14, 0.22, 0.08, 0.12, 0.14)
ODD_NAMES = (
    "<script>alert(1)</script>",
    "",
    "a\nb",
    "tab\there",
    "ünïcödé",
    "日本語",
    "emoji \U0001f600",
    "x" * 500,
    'quote"s',
    "comma,name",
    "semi;colon",
    "back\\slash",
    "\x00nul",
    "\u202eright-to-left",
    "$HOME",
    "{braces}",
    "%s%d",
    "  spaced  ",
    "\r\n",
    "\U0001d4d0\U0001d4d1",
)
HUGE = (1e308, -1e308, 1e38, 3.4e38, 1e300, 1e-320, 6.5e4)
ALLOWED_STDERR = ("wrote ", "warning: ", "note: ", "relcal check: warning: ")
NONFINITE = re.compile(
    r"(?<![A-Za-z0-9_])[-+]?(nan|inf|infinity)(?![A-Za-z0-9_])", re.I
)
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass
class Case:
    """One generated case: the files to create and the arguments to run.

    ``files`` maps a name in the case's directory to its bytes or a special
    entry: ``("fifo",)``, ``("dir",)`` or ``("link", target)``.  Arguments
    hold ``{d}`` for the case's directory.
    """

    index: int
    command: str
    argv: list[str] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)
    encoding: str = "utf-8"
    tags: list[str] = field(default_factory=list)


class Gen:
    """The random choices of one case."""

    def __init__(self, rng: np.random.Generator, case: Case) -> None:
        self.rng = rng
        self.case = case

    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def pick(self, options: Any, weights: Any = None) -> Any:
        i = self.rng.choice(len(options), p=weights)
        return options[int(i)]

    def tag(self, text: str) -> None:
        self.case.tags.append(text)

    # -- arrays ------------------------------------------------------------

    def sizes(self) -> tuple[int, int]:
        n = int(
            self.pick(
                (1, 2, 3, 8, 40, 150, 400), (0.05, 0.05, 0.05, 0.2, 0.35, 0.2, 0.1)
            )
        )
        c = int(self.pick((1, 2, 3, 4, 6, 10), (0.05, 0.3, 0.2, 0.2, 0.15, 0.1)))
        if self.p(0.02):
            n, c = 3, int(self.pick((3000, 70000)))
            self.tag(f"many classes {c}")
        if self.p(0.02):
            n, c = int(self.pick((100_000, 300_000))), 2
            self.tag(f"many rows {n}")
        return n, c

    def scores(self, n: int, c: int, probs: bool) -> np.ndarray:
        z = self.rng.normal(scale=float(self.pick((0.5, 2.0, 8.0))), size=(n, c))
        if probs:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            z = e / e.sum(axis=1, keepdims=True)
        if c == 2 and self.p(0.3):
            z = z[:, 1] if probs else z[:, 1] - z[:, 0]
            self.tag("binary column")
        return z

    def mutate_values(self, s: np.ndarray) -> np.ndarray:
        if not self.p(0.3) or s.size == 0:
            return s
        s = np.array(s, dtype=np.float64)
        flat = s.reshape(-1)
        what = self.pick(
            ("nan", "inf", "-inf", "huge", "allhuge", "neg", "const", "tiny", "sum")
        )
        self.tag(f"values {what}")
        k = int(self.rng.integers(1, max(2, flat.size // 10 + 1)))
        where = self.rng.integers(0, flat.size, k)
        if what == "nan":
            flat[where] = np.nan
        elif what == "inf":
            flat[where] = np.inf
        elif what == "-inf":
            flat[where] = -np.inf
        elif what == "huge":
            flat[where] = self.pick(HUGE)
        elif what == "allhuge":
            flat *= self.pick(HUGE)
        elif what == "neg":
            flat[where] = -flat[where] - 0.1
        elif what == "const":
            flat[:] = self.pick((0.0, 1.0, 0.5, 1e308))
        elif what == "tiny":
            flat *= 1e-310
        else:
            flat[where] += 0.3
        return s

    def mutate_dtype(self, a: np.ndarray, what: str) -> np.ndarray:
        if not self.p(0.15):
            return a
        dt = self.pick(
            (
                "float16",
                "float32",
                "int8",
                "uint8",
                "int64",
                "bool",
                "complex64",
                "datetime64[s]",
                "U5",
                "S3",
                "object",
                "f8,f8",
                ">f8",
                "timedelta64[ms]",
            )
        )
        self.tag(f"{what} dtype {dt}")
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                if dt == "object":
                    return a.astype(object)
                if dt == "f8,f8":
                    out = np.zeros(a.shape, dtype=[("a", "f8"), ("b", "f8")])
                    out["a"] = a
                    return out
                if dt.startswith(("datetime", "timedelta")):
                    return (
                        np.nan_to_num(a, posinf=0, neginf=0).astype("int64").astype(dt)
                    )
                return a.astype(dt)
            except (ValueError, TypeError, OverflowError):
                return a

    def mutate_shape(
        self, s: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self.p(0.12):
            return s, y
        what = self.pick(
            (
                "T",
                "3d",
                "empty",
                "scalar",
                "shortlabels",
                "labels2d",
                "labelsN1",
                "onehot",
                "flat",
            )
        )
        self.tag(f"shape {what}")
        if what == "T" and s.ndim == 2:
            return s.T, y
        if what == "3d":
            return s[..., None], y
        if what == "empty":
            return s[:0], y[:0]
        if what == "scalar":
            return np.asarray(s.reshape(-1)[:1].reshape(())), y
        if what == "shortlabels":
            return s, y[:-1]
        if what == "labels2d":
            return s, np.stack([y, y], axis=1)
        if what == "labelsN1":
            return s, y[:, None]
        if what == "onehot" and s.ndim == 2:
            oh = np.zeros(s.shape)
            ok = np.flatnonzero((y >= 0) & (y < s.shape[1]))
            oh[ok, y[ok].astype(np.int64)] = 1
            return s, oh
        return s.reshape(-1), y

    def labels(self, n: int, c: int) -> np.ndarray:
        y = self.rng.integers(0, max(c, 2), n).astype(np.int64)
        if self.p(0.2) and n:
            what = self.pick(
                (
                    "huge",
                    "neg",
                    "min",
                    "frac",
                    "nan",
                    "float",
                    "1e308",
                    "u64",
                    "bool",
                    "c",
                )
            )
            self.tag(f"labels {what}")
            i = int(self.rng.integers(0, n))
            if what == "huge":
                y[i] = 2**62
            elif what == "neg":
                y[i] = -1
            elif what == "min":
                y[i] = np.iinfo(np.int64).min
            elif what == "frac":
                y = y.astype(float)
                y[i] = 0.5
            elif what == "nan":
                y = y.astype(float)
                y[i] = np.nan
            elif what == "float":
                y = y.astype(float)
            elif what == "1e308":
                y = y.astype(float)
                y[i] = 1e308
            elif what == "u64":
                y = y.astype(np.uint64)
                y[i] = np.iinfo(np.uint64).max
            elif what == "bool":
                y = (y % 2).astype(bool)
            else:
                y[i] = max(c, 2)
        return y

    def class_names(self, c: int) -> list[str]:
        names = [f"class{i}" for i in range(c)]
        if self.p(0.3):
            self.tag("odd class names")
            for i in range(c):
                if self.p(0.5):
                    names[i] = self.pick(ODD_NAMES)
            if self.p(0.2) and c > 1:
                names[1] = names[0]  # a duplicate
        return names

    # -- files -------------------------------------------------------------

    def predictions(self, fmt: str, stem: str = "in") -> list[str]:
        """Write one set of predictions; return the arguments that name it."""
        special = self.special_input(fmt, stem)
        if special is not None:
            return special
        build = getattr(self, f"file_{fmt}")
        args: list[str] = build(stem)
        return args

    def special_input(self, fmt: str, stem: str) -> list[str] | None:
        if not self.p(0.04):
            return None
        ext = {"npy": "npy", "csv": "csv", "toplabel": "csv", "parquet": "parquet"}.get(
            fmt, "npz"
        )
        name = f"{stem}.{ext}"
        what = self.pick(("fifo", "dir", "zero", "null", "missing", "link-dir"))
        self.tag(f"input {what}")
        if what == "fifo":
            self.case.files[name] = ("fifo",)
        elif what == "dir":
            self.case.files[name] = ("dir",)
        elif what == "zero":
            self.case.files[name] = ("link", "/dev/zero")
        elif what == "null":
            self.case.files[name] = ("link", "/dev/null")
        elif what == "link-dir":
            self.case.files[name] = ("link", "/")
        args = ["{d}/" + name]
        if ext == "npy":
            args += ["--labels", "{d}/" + name]
        return args

    def arrays(self, probs: bool) -> tuple[np.ndarray, np.ndarray, int]:
        n, c = self.sizes()
        s = self.scores(n, c, probs)
        y = self.labels(n, c)
        s = self.mutate_values(s)
        s, y = self.mutate_shape(s, y)
        return self.mutate_dtype(s, "scores"), self.mutate_dtype(y, "labels"), c

    def file_npz(self, stem: str) -> list[str]:
        probs = self.p(0.4)
        s, y, c = self.arrays(probs)
        skey = self.pick(("probs", "probabilities", "scores")) if probs else "logits"
        lkey = self.pick(("labels", "labels", "targets", "y"))
        if self.p(0.1):
            skey = self.pick(("predictions", "y_prob", "y_pred_proba"))
            lkey = self.pick(("ground_truth", "targets", "y_true"))
            self.tag(f"keys {skey} {lkey}")
        args: list[str] = []
        if self.p(0.08):
            skey, lkey = "out", "gt"
            args += ["--scores-key", "out", "--labels-key", "gt"]
            self.tag("custom keys")
        arrays: dict[str, Any] = {skey: s, lkey: y}
        if self.p(0.4):
            arrays["class_names"] = np.array(self.class_names(c))
            if self.p(0.2) and y.dtype.kind in "iu" and y.ndim == 1:
                names = arrays["class_names"]
                inside = (y >= 0) & (y < len(names))
                picked = names[np.clip(y, 0, len(names) - 1).astype(np.int64)]
                arrays[lkey] = np.where(inside, picked, "nope")
                self.tag("string labels")
        if self.p(0.04):
            arrays["class_names"] = np.array([1, 2])
            self.tag("numeric class_names")
        self.save_npz(f"{stem}.npz", arrays)
        return ["{d}/" + f"{stem}.npz", *args]

    def save_npz(self, name: str, arrays: dict[str, Any]) -> None:
        buf = io.BytesIO()
        if self.p(0.2):
            np.savez_compressed(buf, **arrays)
        else:
            np.savez(buf, **arrays)
        self.case.files[name] = self.mutate_bytes(buf.getvalue())

    def npy_bytes(self, a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=True)
        return self.mutate_bytes(buf.getvalue(), npy=True)

    def file_npy(self, stem: str) -> list[str]:
        s, y, _ = self.arrays(self.p(0.3))
        self.case.files[f"{stem}.npy"] = self.npy_bytes(s)
        self.case.files[f"{stem}_labels.npy"] = self.npy_bytes(y)
        return ["{d}/" + f"{stem}.npy", "--labels", "{d}/" + f"{stem}_labels.npy"]

    def file_segmentation(self, stem: str) -> list[str]:
        n, c = int(self.pick((1, 2, 3))), int(self.pick((2, 3, 5)))
        h, w = int(self.pick((1, 4, 9))), int(self.pick((1, 5, 8)))
        z = self.rng.normal(size=(n, c, h, w)).astype(
            self.pick((np.float32, np.float64))
        )
        y = self.rng.integers(0, c, (n, h, w))
        args: list[str] = []
        if self.p(0.4):
            ignore = int(self.pick((255, -1, 0, 2**40)))
            y.reshape(-1)[self.rng.integers(0, y.size, max(1, y.size // 4))] = ignore
            if self.p(0.7):
                args += ["--ignore-index", str(ignore)]
            self.tag(f"ignore {ignore}")
        if self.p(0.3):
            z = np.moveaxis(z, 1, -1)
            if self.p(0.8):
                args.append("--channels-last")
            self.tag("channels last")
        z = self.mutate_values(z)
        self.save_npz(f"{stem}.npz", {"logits": z, "labels": y})
        return ["{d}/" + f"{stem}.npz", *args]

    def table(self, probs: bool) -> tuple[Any, list[str]]:
        import pandas as pd

        n, c = self.sizes()
        n, c = min(n, 2000), min(c, 300)
        s = self.mutate_values(self.scores(n, c, probs).reshape(n, -1))
        names = self.class_names(s.shape[1])
        prefix = self.pick(("prob_", "logit_", "p", ""))
        cols = {f"{prefix}{names[i]}": s[:, i] for i in range(s.shape[1])}
        y = self.labels(n, c)
        df = pd.DataFrame(cols)
        df.insert(0, "label", y)
        if self.p(0.15) and s.shape[1] > 1:
            df["label"] = [
                names[int(v)] if 0 <= v < len(names) else "nope"
                for v in np.asarray(y, dtype=float).astype(np.int64, copy=False)
            ]
            self.tag("string labels")
        return self.mutate_table(df), []

    def mutate_table(self, df: Any) -> Any:
        if not self.p(0.2) or len(df) == 0:
            return df
        what = self.pick(
            ("missing", "text", "date", "bigint", "dupcol", "nolabel", "emptyrows")
        )
        self.tag(f"table {what}")
        df = df.copy()
        if what == "missing":
            col = df.columns[int(self.rng.integers(0, df.shape[1]))]
            if df[col].dtype.kind in "biu":
                df[col] = df[col].astype(object)
            df.loc[df.index[int(self.rng.integers(0, len(df)))], col] = None
        elif what == "text":
            col = df.columns[int(self.rng.integers(0, df.shape[1]))]
            df[col] = df[col].astype(object)
            df.loc[df.index[0], col] = "oops"
        elif what == "date":
            df["date"] = "2024-01-01"
        elif what == "bigint":
            col = df.columns[0]
            df[col] = df[col].astype(object)
            df.loc[df.index[0], col] = 10**30
        elif what == "dupcol":
            df = df.rename(columns={df.columns[-1]: df.columns[0]})
        elif what == "nolabel":
            df = df.drop(columns=[df.columns[0]])
        else:
            df = df.iloc[:0]
        return df

    def csv_bytes(self, df: Any) -> bytes:
        sep = ","
        kwargs: dict[str, Any] = {"index": False}
        if self.p(0.25):
            what = self.pick(("semicolon", "quote", "crlf", "tab"))
            self.tag(f"csv {what}")
            if what == "semicolon":
                sep = ";"
                kwargs["decimal"] = ","
            elif what == "quote":
                kwargs["quoting"] = 1
            elif what == "crlf":
                kwargs["lineterminator"] = "\r\n"
            else:
                sep = "\t"
        text = df.to_csv(sep=sep, **kwargs)
        if self.p(0.2):
            what = self.pick(
                ("bom", "blank", "hugefield", "comment", "ragged", "nohead", "latin1")
            )
            self.tag(f"csv {what}")
            lines = text.split("\n")
            if what == "bom":
                text = "\ufeff" + text
            elif what == "blank":
                lines.insert(int(self.rng.integers(1, len(lines) + 1)), "")
                text = "\n".join(lines)
            elif what == "hugefield":
                lines.insert(min(2, len(lines)), "1," + "9" * 200_000)
                text = "\n".join(lines)
            elif what == "comment":
                text = "# predictions\n" + text
            elif what == "ragged":
                lines.insert(min(2, len(lines)), "1,2,3,4,5,6,7,8,9,10,11,12,13,14")
                text = "\n".join(lines)
            elif what == "nohead":
                text = "\n".join(lines[1:])
            else:
                return self.mutate_bytes(text.encode("latin-1", errors="replace"))
        return self.mutate_bytes(text.encode("utf-8"))

    def forecasts(self) -> tuple[Any, list[str]]:
        """Several binary forecasters in one table: one probability column per
        model and a 0/1 outcome (``--models``), maybe a date column and holes."""
        import pandas as pd

        n = int(self.pick((1, 5, 40, 300)))
        k = int(self.pick((1, 2, 4)))
        y = self.rng.integers(0, 2, n)
        cols: dict[str, Any] = {"date": pd.date_range("2024-01-01", periods=n)}
        names = [self.pick(("m1", "m2", "ens", "Ω", "a b")) + f"{i}" for i in range(k)]
        for name in names:
            p = np.clip(y * 0.6 + self.rng.uniform(0, 0.4, n), 0, 1)
            cols[name] = self.mutate_values(p)
        cols["outcome"] = self.labels(n, 2) if self.p(0.2) else y
        df = self.mutate_table(pd.DataFrame(cols))
        self.tag(f"forecasts {k}")
        args = ["--label-col", "outcome"]
        if self.p(0.85):
            args += [
                "--models",
                ",".join(self.pick((names, names[:1], ["nope"], [""]))),
            ]
        return df, args

    def file_csv(self, stem: str) -> list[str]:
        if self.p(0.15):
            df, args = self.forecasts()
        else:
            df, args = self.table(self.p(0.5))
        self.case.files[f"{stem}.csv"] = self.csv_bytes(df)
        return ["{d}/" + f"{stem}.csv", *args, *self.table_options(df)]

    def table_options(self, df: Any) -> list[str]:
        if not self.p(0.15):
            return []
        what = self.pick(("score-cols", "prefix", "label-col", "nothing"))
        self.tag(f"option {what}")
        cols = [str(c) for c in df.columns]
        if what == "score-cols":
            return ["--score-cols", ",".join(cols[1:][:3]) or ","]
        if what == "prefix":
            return ["--score-cols", self.pick(("prob_", "logit_", "zz", "label"))]
        if what == "label-col":
            return ["--label-col", self.pick(cols or ["x"])]
        return ["--score-cols", ""]

    def file_parquet(self, stem: str) -> list[str]:
        df, args = self.forecasts() if self.p(0.15) else self.table(self.p(0.5))
        buf = io.BytesIO()
        try:
            df.to_parquet(buf)
        except Exception:  # a column pyarrow cannot store: write it as text
            df = df.loc[:, ~df.columns.duplicated()].astype(str)
            df.to_parquet(buf)
        self.case.files[f"{stem}.parquet"] = self.mutate_bytes(buf.getvalue())
        return ["{d}/" + f"{stem}.parquet", *args]

    def file_toplabel(self, stem: str) -> list[str]:
        import pandas as pd

        n, c = self.sizes()
        n = min(n, 5000)
        conf = self.rng.uniform(1.0 / max(c, 2), 1.0, n)
        pred = self.rng.integers(0, max(c, 2), n)
        true = np.where(
            self.rng.random(n) < conf, pred, self.rng.integers(0, max(c, 2), n)
        )
        conf = self.mutate_values(conf)
        df = pd.DataFrame(
            {
                "true_label": self.labels(n, c) if self.p(0.2) else true,
                "pred_label": pred,
                "confidence": conf,
            }
        )
        df = self.mutate_table(df)
        args = []
        if self.p(0.3):
            self.tag("renamed top-label columns")
            new = {"true_label": "y_true", "pred_label": "y_pred", "confidence": "conf"}
            df = df.rename(columns=new)
            pairs = [("--label-col", "y_true"), ("--pred-col", "y_pred")]
            pairs.append(("--confidence-col", self.pick(("conf", "conf", "nope"))))
            for flag, col in pairs:
                if self.p(0.85):
                    args += [flag, col]
        self.case.files[f"{stem}.csv"] = self.csv_bytes(df)
        return ["{d}/" + f"{stem}.csv", *args]

    def mutate_bytes(self, data: bytes, npy: bool = False) -> bytes:
        if not self.p(0.12):
            return data
        what = self.pick(("truncate", "flip", "header", "empty", "junk", "tail"))
        if npy and self.p(0.5):
            what = "header"
        self.tag(f"bytes {what}")
        b = bytearray(data)
        if what == "truncate" and b:
            return bytes(b[: int(self.rng.integers(0, len(b)))])
        if what == "flip" and b:
            for i in self.rng.integers(0, len(b), int(self.rng.integers(1, 8))):
                b[int(i)] ^= int(self.rng.integers(1, 256))
            return bytes(b)
        if what == "header":
            return self.corrupt_header(bytes(b))
        if what == "empty":
            return b""
        if what == "junk":
            return bytes(
                self.rng.integers(
                    0, 256, int(self.rng.integers(1, 300)), dtype=np.uint8
                )
            )
        return bytes(b) + b"\x00garbage" * 3

    def corrupt_header(self, data: bytes) -> bytes:
        start = data.find(b"{")
        end = data.find(b"}", start)
        if start < 0 or end < 0 or end - start > 4000:
            return data[: len(data) // 2]
        header = data[start : end + 1]
        fake = self.pick(
            (
                b"{'descr': '<f8', 'fortran_order': False, 'shape': (",
                b"{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }",
                b"{'descr': '<f8', 'fortran_order': False,"
                b" 'shape': (99999999999, 99999999999), }",
                b"{'descr': 'x9', 'fortran_order': False, 'shape': (2,), }",
                b"{'descr': '<f8', 'fortran_order': 7, 'shape': (2,), }",
                b"{'descr': '<f8', 'shape': (2,), }",
                b"{'descr': [('a', '<f8')]*3, 'fortran_order': False, 'shape': (2,), }",
                b"{'descr': '<f8', 'fortran_order': False, 'shape': (1e3,), }",
                b"{\"descr\": \"<f8\" 'fortran_order': False, 'shape': (2,), }",
                b"{'descr': '<f8', 'fortran_order': False, 'shape': "
                + b"(" * 40
                + b"2,"
                + b"),)" * 40
                + b", }",
                b"\x00\xff\xfe{'descr'",
                b"{'descr': 'O', 'fortran_order': False, 'shape': (2,), }",
            )
        )
        fake = fake.ljust(len(header), b" ")[: max(len(header), len(fake))]
        return data[:start] + fake + data[end + 1 :]

    # -- the other files ---------------------------------------------------

    def temperature_file(self, n_classes: int) -> str:
        t: Any = float(self.rng.uniform(0.5, 3.0))
        doc: dict[str, Any] = {
            "format": 1,
            "kind": "relcal.temperature",
            "temperature": t,
            "fitted_on": {"n_classes": n_classes},
        }
        text = None
        if self.p(0.4):
            what = self.pick(
                (
                    "nan",
                    "1e308",
                    "1e-308",
                    "inf",
                    "zero",
                    "str",
                    "bool",
                    "bigint",
                    "deep",
                    "classes",
                    "notjson",
                    "list",
                    "badutf8",
                    "4e-324",
                )
            )
            self.tag(f"temperature {what}")
            if what in ("nan", "inf"):
                text = json.dumps(doc).replace(
                    json.dumps(t), {"nan": "NaN", "inf": "1e999"}[what]
                )
            elif what == "1e308":
                doc["temperature"] = 1e308
            elif what in ("1e-308", "4e-324"):
                doc["temperature"] = float(what)
            elif what == "zero":
                doc["temperature"] = 0
            elif what == "str":
                doc["temperature"] = "1.5"
            elif what == "bool":
                doc["temperature"] = True
            elif what == "bigint":
                doc["temperature"] = 10**400
            elif what == "deep":
                text = (
                    '{"format": 1, "kind": "relcal.temperature", "temperature": '
                    + "[" * 100_000
                    + "]" * 100_000
                    + "}"
                )
            elif what == "classes":
                doc["fitted_on"]["n_classes"] = self.pick((10**30, 1, -3, "2", 2.0))
            elif what == "notjson":
                text = "T = 1.5\n"
            elif what == "list":
                text = "[1.5]"
            else:
                self.case.files["t.json"] = b'{"temperature": "\xff\xfe"}'
                return "{d}/t.json"
        self.case.files["t.json"] = self.mutate_bytes(
            (text or json.dumps(doc)).encode()
        )
        return "{d}/t.json"

    def config_file(self) -> str:
        lines = ["[check]", f"max-ece = {self.rng.uniform(0, 0.3):.4f}"]
        if self.p(0.5):
            what = self.pick(
                (
                    "nan",
                    "inf",
                    "1e308",
                    "bigint",
                    "str",
                    "array",
                    "table",
                    "unknown",
                    "bins",
                    "bootstrap",
                    "seed",
                    "confidence",
                    "syntax",
                    "badutf8",
                    "double",
                    "negative",
                    "min-samples",
                    "deep",
                    "inline",
                )
            )
            self.tag(f"config {what}")
            extra = {
                "nan": "max-nll = nan",
                "inf": "max-brier = inf",
                "1e308": "max-mce = 1e308",
                "bigint": "max-ece = 99999999999999999999",
                "str": 'min-accuracy = "high"',
                "array": "max-ece = [0.1]",
                "table": "[check.max-ece]\nx = 1",
                "unknown": "max-ecee = 0.1",
                "bins": f"bins = {self.pick((0, 10**9, 10**18, -1))}",
                "bootstrap": f"bootstrap = {self.pick((99, 10**7, 10**12))}\n"
                "confidence = 0.9",
                "seed": f"seed = {self.pick((-1, 2**63 - 1))}",
                "confidence": "confidence = "
                + self.pick(("1.0", "0.1", "nan", "0.99999999")),
                "syntax": "max-ece = = 1",
                "min-samples": f"min-samples = {self.pick((0, -5, 10**20, 1.5))}",
                "deep": "max-ece = " + "[" * 5000 + "]" * 5000,
                "inline": "max-ece = {x = 1}\nbins = 1e3",
                "double": "max_ece = 0.2",
                "negative": "max-ece = -0.1",
            }.get(what)
            if what == "badutf8":
                self.case.files["relcal.toml"] = b"[check]\nmax-ece = 0.1 # \xff\n"
                return "{d}/relcal.toml"
            if what == "table":
                lines = ["[check]", extra or ""]
            elif extra:
                lines.append(extra)
        self.case.files["relcal.toml"] = self.mutate_bytes(
            ("\n".join(lines) + "\n").encode()
        )
        return "{d}/relcal.toml"

    def baseline_json(self, n: int, c: int) -> str:
        doc: dict[str, Any] = {
            "format": 1,
            "kind": "relcal.metrics",
            "n_samples": n,
            "n_classes": c,
            "binning": {"n_bins": 15, "strategy": "width"},
            "metrics": {"accuracy": 0.8, "ece": 0.05, "nll": 0.6, "brier": 0.3},
        }
        text = None
        if self.p(0.4):
            what = self.pick(
                ("nan", "1e308", "neg", "deep", "bigint", "bins", "strategy", "missing")
            )
            self.tag(f"baseline {what}")
            if what == "nan":
                text = json.dumps(doc).replace("0.05", "NaN")
            elif what == "1e308":
                doc["metrics"]["ece"] = 1e308
            elif what == "neg":
                doc["metrics"]["ece"] = -5.0
            elif what == "deep":
                text = (
                    '{"kind": "relcal.metrics", "format": 1, "metrics": '
                    + "[" * 50_000
                    + "]" * 50_000
                    + "}"
                )
            elif what == "bigint":
                doc["n_samples"] = 10**40
            elif what == "bins":
                doc["binning"]["n_bins"] = self.pick((0, -1, 10**12))
            elif what == "strategy":
                doc["binning"]["strategy"] = "<b>"
            else:
                del doc["metrics"]
        self.case.files["base.json"] = self.mutate_bytes(
            (text or json.dumps(doc)).encode()
        )
        return "{d}/base.json"

    # -- options -----------------------------------------------------------

    def common_options(self, with_bins: bool = True) -> list[str]:
        args: list[str] = []
        if with_bins and self.p(0.3):
            bins = self.pick(
                (0, 1, 2, 7, 15, 100, 1000, 100_000, 10_000_000, 2**31, 2**63, -3)
            )
            args += ["--bins", str(bins)]
            self.tag(f"bins {bins}")
        if with_bins and self.p(0.15):
            args += ["--binning", "mass"]
        if self.p(0.08):
            args += ["--scores", self.pick(("logits", "probs"))]
        if self.p(0.05):
            ignore = self.pick((-1, 0, 255, 2**40, 2**70))
            args += ["--ignore-index", str(ignore)]
            self.tag(f"ignore {ignore}")
        if self.p(0.03):
            args.append("--channels-last")
        if self.p(0.08):
            args += ["--missing", self.pick(("drop", "error", "skip"))]
        return args

    def output(self, name: str, inputs: list[str]) -> str:
        if not self.p(0.1):
            return "{d}/" + name
        what = self.pick(
            ("missing-dir", "input", "dir", "fifo", "null", "odd", "-", "unwritable")
        )
        self.tag(f"output {what}")
        if what == "-":
            return "-"
        if what == "unwritable":  # nothing can be created there, even by root
            return self.pick(("/proc", "/sys")) + "/relcal-fuzz-" + name
        if what == "missing-dir":
            return "{d}/nodir/" + name
        if what == "input" and inputs:
            return inputs[0]
        if what == "dir":
            self.case.files["outdir"] = ("dir",)
            return "{d}/outdir"
        if what == "fifo":
            self.case.files["out.fifo"] = ("fifo",)
            return "{d}/out.fifo"
        if what == "null":
            self.case.files["out.null"] = ("link", "/dev/null")
            return "{d}/out.null"
        return "{d}/" + "ö\n" + name


def make_case(seed: int, index: int) -> Case:
    """The case ``index`` of the run seeded ``seed``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _make_case(seed, index)


def _make_case(seed: int, index: int) -> Case:
    rng = np.random.default_rng([seed, index])
    g = Gen(rng, Case(index, ""))
    command = g.pick(COMMANDS, COMMAND_WEIGHTS)
    fmt = g.pick(FORMATS, FORMAT_WEIGHTS)
    g.case.command = command
    g.case.encoding = g.pick(("utf-8", "ascii", "latin-1"), (0.6, 0.3, 0.1))
    g.tag(f"{fmt} {g.case.encoding}")
    inputs = g.predictions(fmt)
    files = [a for a in inputs if a.startswith("{d}/")]
    if command in ("metrics", "metrics-json"):
        argv = ["metrics", *inputs, *g.common_options()]
        if command == "metrics-json":
            argv.append("--json")
        if g.p(0.3):
            argv += ["--ci", str(g.pick((0.5, 0.9, 0.95, 0.999, 1.0, 0.2)))]
            if g.p(0.3):
                argv += ["--bootstrap", str(g.pick((100, 250, 99, 10**6)))]
        if g.p(0.2):
            argv += ["--unbinned", g.pick(("on", "off", "auto"))]
    elif command == "report":
        argv = ["report", *inputs]
        if g.p(0.2):
            argv.insert(2, g.predictions(fmt, "second")[0])
            if g.p(0.5):
                argv.append("--ensemble")
        argv += ["-o", g.output("report.html", files), *g.common_options()]
        if g.p(0.4):
            argv += ["--json", g.output("report.json", files)]
        if g.p(0.2):
            argv += ["--temperature", g.temperature_file(int(g.pick((2, 3, 4, 10))))]
        elif g.p(0.2):
            argv.append("--fit-temperature")
        if g.p(0.1):
            argv += ["--title", g.pick(ODD_NAMES)]
        if g.p(0.15):
            argv.append("--no-intervals")
        elif g.p(0.1):
            argv += ["--ci", str(g.pick((0.5, 0.99))), "--seed", str(g.pick((0, 7)))]
        if g.p(0.15):
            argv += ["--unbinned", g.pick(("on", "off"))]
    elif command == "fit-temperature":
        argv = ["fit-temperature", *inputs, "-o", g.output("t_out.json", files)]
        argv += g.common_options()
        if g.p(0.3):
            argv += ["--cv", str(g.pick((2, 3, 5, 41, 401, 10**6, 2**63)))]
        if g.p(0.3):
            argv.append("--json")
    elif command == "calibrate":
        t = g.temperature_file(int(g.pick((2, 3, 4, 6, 10))))
        argv = [
            "calibrate",
            *inputs,
            "--temperature",
            t,
            "-o",
            g.output("cal.npz", files),
        ]
        argv += g.common_options(with_bins=False)
    else:
        argv = ["check", *inputs, *g.common_options()]
        for name in g.rng.choice(
            [
                "--max-ece",
                "--max-nll",
                "--min-accuracy",
                "--max-brier",
                "--max-classwise-ece",
                "--max-ece-increase",
                "--max-positive-class-ece",
                "--max-positive-class-mce-increase",
            ],
            int(g.rng.integers(0, 3)),
            replace=False,
        ):
            argv += [str(name), str(g.pick((0.05, 0.5, 0, -1, 1e308, "nan", "inf")))]
        if g.p(0.3):
            argv += ["--confidence", str(g.pick((0.5, 0.9, 0.95, 0.999999)))]
            if g.p(0.5):
                argv += ["--bootstrap", str(g.pick((100, 1000, 100_000, 10**9)))]
            if g.p(0.3):
                argv += ["--seed", str(g.pick((0, 7, 2**63, 2**64 + 1)))]
        if g.p(0.15):
            argv += ["--min-samples", str(g.pick((0, 1, 500, 10**9, -1)))]
        if g.p(0.3):
            argv += ["--config", g.config_file()]
        elif g.p(0.1):
            g.config_file()  # found in the working directory
        if g.p(0.25):
            if g.p(0.5):
                argv += [
                    "--baseline",
                    g.baseline_json(int(g.pick((40, 150, 7))), int(g.pick((2, 3, 4)))),
                ]
            else:
                argv += ["--baseline", g.predictions(fmt, "base")[0]]
        if g.p(0.3):
            argv.append("--json")
        if g.p(0.2):
            argv += ["--junit-xml", g.output("junit.xml", files)]
        if g.p(0.2):
            argv += ["--markdown", g.output("summary.md", files)]
    g.case.argv = argv
    return g.case


# --------------------------------------------------------------------------
# running a case


class Hang(BaseException):
    """Raised by the alarm: the case ran past the time limit."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang()

    old = signal.signal(signal.SIGALRM, fire)
    # and again every second after that: a Hang swallowed by the code under
    # test (raised inside a __del__, say) must not let the case run on
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def materialize(case: Case, d: Path) -> None:
    for name, content in case.files.items():
        p = d / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content[0] == "fifo":
            os.mkfifo(p)
        elif content[0] == "dir":
            p.mkdir()
        else:
            p.symlink_to(content[1])


def snapshot(d: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root, dirs, names in os.walk(d):
        for name in dirs + names:
            p = Path(root) / name
            st = p.lstat()
            out[str(p.relative_to(d))] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass
class Result:
    case: Case
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    outcome: str = "ok"
    failures: list[tuple[str, str]] = field(default_factory=list)
    trace: str = ""


def run_case(case: Case, root: Path, limit: int = TIME_LIMIT) -> Result:
    from relcal.cli import main

    d = Path(tempfile.mkdtemp(prefix=f"c{case.index}_", dir=root))
    materialize(case, d)
    argv = [a.replace("{d}", str(d)) for a in case.argv]
    before = snapshot(d)
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(
        out_bytes, encoding=case.encoding, newline="\n", write_through=True
    )
    err = io.TextIOWrapper(
        err_bytes, encoding=case.encoding, newline="\n", write_through=True
    )
    failures: list[tuple[str, str]] = []
    code: int | None = None
    trace = ""
    caught: list[warnings.WarningMessage] = []
    cwd = os.getcwd()
    start = time.perf_counter()
    try:
        os.chdir(d)
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            time_limit(limit),
        ):
            warnings.simplefilter(WARNINGS)
            code = main(argv)
    except Hang:
        signal.setitimer(signal.ITIMER_REAL, 0)
        trace = traceback.format_exc()
        failures.append((f"hang in {_where(sys.exc_info()[2])}", f"> {limit} s"))
    except BaseException as exc:  # noqa: BLE001 - every escape is a finding
        trace = traceback.format_exc()
        failures.append(
            (f"{type(exc).__name__} in {_where(exc.__traceback__)}", _short(str(exc)))
        )
    finally:
        os.chdir(cwd)
    seconds = time.perf_counter() - start
    seen = set()
    for w in caught:
        if (w.category, str(w.message)) in seen:
            continue
        seen.add((w.category, str(w.message)))
        if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            failures.append(
                (
                    f"warning {w.category.__name__}: {_norm(str(w.message), d)}",
                    f"{w.filename}:{w.lineno}",
                )
            )
    result = Result(
        case,
        code,
        out_bytes.getvalue().decode(case.encoding, errors="replace"),
        err_bytes.getvalue().decode(case.encoding, errors="replace"),
        seconds,
        failures=failures,
        trace=trace,
    )
    judge(result, d, before, argv)
    shutil.rmtree(d, ignore_errors=True)
    return result


def _where(tb: Any) -> str:
    frames = traceback.extract_tb(tb)
    mine = [
        f for f in frames if "/relcal/" in f.filename and "/scripts/" not in f.filename
    ]
    f = (mine or frames or [None])[-1]
    if f is None:
        return "?"
    return f"{Path(f.filename).name}:{f.name}"


def _short(text: str, n: int = 160) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= n else text[:n] + "..."


def _norm(text: str, d: Path) -> str:
    text = text.replace(str(d), "D")
    text = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", text)
    return _short(text, 70)


def judge(
    r: Result, d: Path, before: dict[str, tuple[int, int]], argv: list[str]
) -> None:
    if r.failures:
        r.outcome = "failure"
        return
    after = snapshot(d)
    changed = [k for k, v in after.items() if before.get(k) != v]
    command = r.case.command
    if r.code == 2:
        _judge_error(r, d, changed)
    elif r.code in (0, 1):
        if r.code == 1 and command != "check":
            r.failures.append((f"exit 1 from {command}", ""))
        _judge_output(r, d, changed, argv)
    else:
        r.failures.append((f"exit code {r.code!r}", ""))
    if r.failures:
        r.outcome = "failure"


def _judge_error(r: Result, d: Path, changed: list[str]) -> None:
    if changed:
        r.failures.append(("output written despite exit 2", ", ".join(changed)))
    lines = r.stderr.splitlines()
    if r.stderr.startswith("Usage:"):
        r.outcome = "usage-error"
        if not lines or not lines[-1].startswith("Error: "):
            r.failures.append(("usage error without an Error line", _short(r.stderr)))
        return
    r.outcome = "clean-error"
    if r.stdout:
        r.failures.append(("stdout on exit 2", _short(r.stdout)))
    # relcal's own notes (a column left out) may come before the error
    errors = [line for line in lines if not line.startswith(ALLOWED_STDERR)]
    if (
        len(errors) != 1
        or not r.stderr.endswith("\n")
        or not lines[-1].startswith("Error: ")
    ):
        r.failures.append(("error message not one 'Error:' line", _short(r.stderr)))
        return
    msg = lines[-1]
    if CONTROL.search(msg):
        r.failures.append(("control character in error message", _short(msg)))
    rest = msg.replace(str(d), "")
    if re.search(r"\.tmp\b|/tmp/|tmp[a-z0-9_]{6,}", rest):
        r.failures.append(("error names a temporary file", _short(msg)))
    if not _names_input(msg, d, r.case):
        r.failures.append((f"error names no file: {_norm(msg, d)}", _short(msg)))


def _names_input(msg: str, d: Path, case: Case) -> bool:
    """Whether an error message names a file of the case (by its path, or by
    its name when found in the working directory) or an option given."""
    if str(d) in msg or "--" in msg:
        return True
    paths = [a for a in case.argv if "/" in a and not a.startswith("{d}")]
    if any(p in msg for p in paths):  # an output such as /proc/x.html
        return True
    if any(re.search(rf"(^|\s){re.escape(name)}:", msg[7:]) for name in case.files):
        return True
    given = [a.lstrip("-") for a in case.argv if a.startswith("--")]
    return any(re.match(rf"Error: {re.escape(o)}\b", msg) for o in given)


def _judge_output(r: Result, d: Path, changed: list[str], argv: list[str]) -> None:
    if r.case.command == "fit-temperature" and "-" in argv:
        # the temperature file went to stdout, and the summary to stderr
        if NONFINITE.search(r.stderr):
            r.failures.append(("non-finite in fit-temperature's summary", ""))
        lines = []
    else:
        lines = r.stderr.splitlines()
    for line in lines:
        if not line.startswith(ALLOWED_STDERR):
            r.failures.append((f"extra stderr: {_norm(line, d)}", _short(line)))
    if r.stdout.startswith("{"):  # a JSON document (--json, or -o -)
        _strict_json(r, r.stdout, "stdout")
    elif NONFINITE.search(r.stdout):
        r.failures.append(
            (
                f"non-finite in text output of {r.case.command}",
                _nonfinite_context(r.stdout),
            )
        )
    for name in changed:
        p = d / name
        if not p.is_file() or p.is_symlink():
            continue
        if p.suffix == ".json":
            _strict_json(r, p.read_text(encoding="utf-8"), name)
        elif p.suffix == ".npz":
            _finite_npz(r, p)
        elif NONFINITE.search(p.read_text(encoding="utf-8", errors="replace")):
            text = p.read_text(encoding="utf-8", errors="replace")
            r.failures.append(
                (f"non-finite in {p.suffix} output", _nonfinite_context(text))
            )


def _nonfinite_context(text: str) -> str:
    m = NONFINITE.search(text)
    assert m is not None
    return _short(text[max(0, m.start() - 60) : m.end() + 20])


def _strict_json(r: Result, text: str, what: str) -> None:
    def refuse(name: str) -> None:
        raise ValueError(f"non-finite {name}")

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError as exc:
        kind = "non-finite in JSON" if "non-finite" in str(exc) else "invalid JSON"
        where = what if what == "stdout" else Path(what).suffix
        r.failures.append(
            (
                f"{kind} ({r.case.command} {where})",
                _short(str(exc)),
            )
        )


def _finite_npz(r: Result, p: Path) -> None:
    with np.load(p, allow_pickle=False) as npz:
        for key in npz.files:
            a = npz[key]
            if a.dtype.kind in "fc" and not np.isfinite(a).all():
                r.failures.append(
                    (
                        f"non-finite in .npz output ({key})",
                        f"{int((~np.isfinite(a)).sum())} values",
                    )
                )


# --------------------------------------------------------------------------
# the run


def run(
    seed: int,
    cases: int,
    *,
    start: int = 0,
    limit: int = TIME_LIMIT,
    progress: bool = False,
    log: Any = None,
) -> list[Result]:
    """Run cases ``start .. start + cases - 1``; return their results (and
    write one JSON line per case to ``log``, a text file, as it goes)."""
    os.environ.pop("GITHUB_STEP_SUMMARY", None)
    results = []
    with tempfile.TemporaryDirectory(prefix="relcal-fuzz-") as tmp:
        for i in range(start, start + cases):
            r = run_case(make_case(seed, i), Path(tmp), limit)
            results.append(r)
            if log is not None:
                line = {"case": i, "outcome": r.outcome, "seconds": r.seconds}
                line["failures"] = [k for k, _ in r.failures]
                print(json.dumps(line), file=log, flush=True)
            if progress and (i + 1 - start) % 500 == 0:
                print(f"  {i + 1 - start} cases", file=sys.stderr, flush=True)
    return results


def summary(results: list[Result], seed: int) -> str:
    outcomes = Counter(r.outcome for r in results)
    classes: dict[str, list[Result]] = {}
    for r in results:
        for key, _ in r.failures:
            classes.setdefault(key, []).append(r)
    lines = [
        "outcomes: "
        + ", ".join(
            f"{k} {outcomes.get(k, 0)}"
            for k in ("ok", "clean-error", "usage-error", "failure")
        )
    ]
    lines.append(f"failure classes: {len(classes)}")
    for key, rs in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        first = rs[0]
        detail = next(v for k, v in first.failures if k == key)
        lines.append(f"  {len(rs):5d}  {key}")
        lines.append(
            f"         e.g. case {first.case.index}: {' '.join(first.case.argv)}"
        )
        lines.append(f"         [{'; '.join(first.case.tags)}] {detail}")
        lines.append(
            f"         replay: python scripts/fuzz.py --seed {seed}"
            f" --case {first.case.index} -v"
        )
    slow = max(results, key=lambda r: r.seconds)
    lines.append(f"slowest case: {slow.case.index} ({slow.seconds:.1f} s)")
    return "\n".join(lines)


def limit_memory(limit: int = MEMORY_LIMIT) -> tuple[int, int]:
    """Cap the address space (a huge allocation fails fast instead of swapping);
    returns the old limits."""
    old = resource.getrlimit(resource.RLIMIT_AS)
    hard = old[1]
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case", type=int, help="replay this one case")
    parser.add_argument("--time-limit", type=int, default=TIME_LIMIT)
    parser.add_argument("--log", help="write one JSON line per case to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--warnings-error",
        action="store_true",
        help="turn warnings into exceptions (a replay's traceback shows where)",
    )
    args = parser.parse_args(argv)
    if args.warnings_error:
        global WARNINGS
        WARNINGS = "error"
    limit_memory()
    t0 = time.perf_counter()
    if args.case is not None:
        results = run(args.seed, 1, start=args.case, limit=args.time_limit)
        r = results[0]
        print(f"case {args.case}: {' '.join(r.case.argv)}")
        print(f"tags: {'; '.join(r.case.tags)}; terminal {r.case.encoding}")
        print(f"exit {r.code}, {r.seconds:.2f} s, outcome {r.outcome}")
        if args.verbose:
            print("--- stdout\n" + r.stdout[:3000] + "\n--- stderr\n" + r.stderr[:3000])
            print(r.trace)
        for key, detail in r.failures:
            print(f"FAIL {key}: {detail}")
        return 1 if r.failures else 0
    with contextlib.ExitStack() as stack:
        log = None if args.log is None else stack.enter_context(open(args.log, "w"))
        results = run(
            args.seed, args.cases, limit=args.time_limit, progress=True, log=log
        )
    print(
        f"relcal fuzz: {args.cases} cases, seed {args.seed},"
        f" {time.perf_counter() - t0:.0f} s"
    )
    print(summary(results, args.seed))
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
