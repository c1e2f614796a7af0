"""A table of several binary forecasters, as forecast-verification studies
publish them (the layout of the CORP paper's replication data): one row per
day, a date column, one column per forecaster holding its probability of the
event, and a 0/1 outcome column; a few cells are empty.

Seeded, so the tests can recompute every number from the same rows.  Run as a
script to write the table: ``python tests/forecast_data.py forecasts.csv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FORECASTERS = ("forecaster_a", "forecaster_b", "forecaster_c")
# cells left empty: (row, column); row 7's outcome and the dates of rows 3, 9
# are missing too (a missing date must not matter)
HOLES = (
    (5, "forecaster_b"),
    (12, "forecaster_c"),
    (12, "forecaster_a"),
    (40, "forecaster_a"),
    (7, "outcome"),
)
DATE_HOLES = (3, 9)


def make_forecasts(n: int = 300, seed: int = 7) -> pd.DataFrame:
    """``date, forecaster_a, forecaster_b, forecaster_c, outcome``.

    a: calibrated (the true probability, with a little noise); b:
    over-confident (the true probability pushed towards 0 and 1); c: a
    forecaster who rounds to tenths, as precipitation forecasts are issued
    (so it says exactly 0.0 and 1.0 at times).
    """
    rng = np.random.default_rng(seed)
    p = rng.beta(0.8, 1.2, size=n)
    outcome = (rng.random(n) < p).astype(np.int64)
    a = np.clip(p + rng.normal(0.0, 0.03, n), 0.001, 0.999)
    logit = np.log(p / (1 - p))
    b = 1.0 / (1.0 + np.exp(-2.5 * logit))
    c = np.round(np.clip(p + rng.normal(0.0, 0.08, n), 0.0, 1.0), 1)
    df = pd.DataFrame(
        {
            "date": pd.date_range("2019-01-01", periods=n, freq="D").strftime(
                "%Y-%m-%d"
            ),
            "forecaster_a": a,
            "forecaster_b": b,
            "forecaster_c": c,
            "outcome": outcome.astype(np.float64),
        }
    )
    for row, col in HOLES:
        df.loc[row, col] = np.nan
    df["date"] = df["date"].astype(object)
    for row in DATE_HOLES:
        df.loc[row, "date"] = None
    return df


def kept_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows ``missing="drop"`` keeps: label and every forecast present."""
    return df.dropna(subset=[*FORECASTERS, "outcome"])


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "forecasts.csv")
    df = make_forecasts()
    if out.suffix in (".parquet", ".pq"):
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)
    print(f"wrote {out}: {len(df)} rows, {len(df) - len(kept_rows(df))} with holes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
