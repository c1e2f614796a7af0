"""Shared fixtures: seeded data and the real saved predictions in ../shared/real."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = Path(
    os.environ.get("RELCAL_SHARED_REAL", REPO.parent / "shared" / "real")
)
SAMPLE_DATA = REPO / "sample_data"


def need_shared_real() -> Path:
    """The real-data folder; skipped locally when absent, an error in CI."""
    if not SHARED_REAL.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real data folder at {SHARED_REAL}")
        pytest.skip(f"real data folder {SHARED_REAL} not present")
    return SHARED_REAL


@pytest.fixture
def shared_real() -> Path:
    return need_shared_real()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
