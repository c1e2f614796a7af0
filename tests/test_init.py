"""The package's exports: lazy, and exactly the functions they stand for."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import relcal
import relcal.display
import relcal.io

from .conftest import REPO

HEAVY = ("relcal.io", "relcal.display", "matplotlib", "pandas", "pyarrow", "jinja2")


def test_load_is_io_load_with_its_signature() -> None:
    assert inspect.signature(relcal.load) == inspect.signature(relcal.io.load)
    assert relcal.load is relcal.io.load
    assert "scores_key" in inspect.signature(relcal.load).parameters
    assert relcal.ReliabilityDisplay is relcal.display.ReliabilityDisplay


def test_every_name_in_all_exists_and_dir_lists_it() -> None:
    for name in relcal.__all__:
        assert getattr(relcal, name) is not None, name
    assert {"load", "ReliabilityDisplay"} <= set(dir(relcal))
    with pytest.raises(AttributeError, match="no attribute 'lod'"):
        relcal.lod  # noqa: B018


def imported_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}; print([m for m in {HEAVY!r}"
         " if m in sys.modules])"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    return eval(out)  # a list of str printed by the line above


def test_import_relcal_stays_light() -> None:
    assert imported_after("import relcal") == []
    # touching the lazy names imports their module, and still no matplotlib
    # or pandas: those wait for a file to read or a figure to draw
    assert imported_after("import relcal; relcal.load; relcal.ReliabilityDisplay") == [
        "relcal.io",
        "relcal.display",
    ]
