"""Run the examples in relcal's docstrings (from the installed package)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

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
