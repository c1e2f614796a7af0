"""Shared fixtures: seeded data and the real saved predictions in ../shared/real."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = Path(
    os.environ.get("RELCAL_SHARED_REAL", REPO.parent / "shared" / "real")
)
SAMPLE_DATA = REPO / "sample_data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``forks`` first: relcal forks worker processes only where
    no foreign thread runs, and some tests leave threads behind (a Dask
    cluster's)."""
    items.sort(key=lambda item: item.get_closest_marker("forks") is None)


def need_shared_real() -> Path:
    """The real-data folder; skipped locally when absent, an error in CI."""
    if not SHARED_REAL.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real data folder at {SHARED_REAL}")
        pytest.skip(f"real data folder {SHARED_REAL} not present")
    return SHARED_REAL


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as the module ``relcal_<name>``."""
    module_name = f"relcal_{name}"
    spec = importlib.util.spec_from_file_location(
        module_name, REPO / "scripts" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shared_real() -> Path:
    return need_shared_real()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
