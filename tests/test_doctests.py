"""Run the examples in relcal's docstrings (from the installed package) and README."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile
from pathlib import Path

import pytest

import relcal

MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(relcal.__path__, "relcal.")
    if m.name not in ("relcal.__main__",)
) + ["relcal"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_readme_python_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``>>>`` example in README.md runs and prints what the README says."""
    import matplotlib

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the files it writes

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readme = Path(__file__).resolve().parents[1] / "README.md"
    try:
        result = doctest.testfile(
            str(readme),
            module_relative=False,
            optionflags=doctest.NORMALIZE_WHITESPACE,
            verbose=False,
        )
    finally:
        plt.close("all")
    assert result.attempted >= 30  # the examples were found
    assert result.failed == 0, f"{result.failed} README example(s) failed"
