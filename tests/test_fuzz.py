"""A short seeded run of scripts/fuzz.py: no case may fail.

The long run (``python scripts/fuzz.py --cases 10000 --seed 1``) is the same
generator and judge with more cases.  The judge itself is tested here too: a
command that escapes with an exception, hangs, prints NaN, warns, or writes
despite an error must be caught, or "zero failures" would prove nothing.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import load_script

fuzz = load_script("fuzz")


@pytest.fixture
def memory_limit():  # type: ignore[no-untyped-def]
    import resource

    old = fuzz.limit_memory()
    yield
    resource.setrlimit(resource.RLIMIT_AS, old)


def test_short_fuzz_run_has_no_failures(memory_limit: None) -> None:
    results = fuzz.run(seed=20261205, cases=200)
    outcomes = {r.outcome for r in results}
    failed = [r for r in results if r.failures]
    assert not failed, fuzz.summary(results, 20261205)
    # the run exercised every command and both kinds of outcome
    assert {r.case.command for r in results} == set(fuzz.COMMANDS)
    assert {"ok", "clean-error", "usage-error"} <= outcomes


def test_cases_are_reproducible() -> None:
    a, b = fuzz.make_case(7, 123), fuzz.make_case(7, 123)
    assert a.argv == b.argv and a.files == b.files and a.tags == b.tags
    assert (
        fuzz.make_case(7, 124).argv != a.argv or fuzz.make_case(7, 124).files != a.files
    )


# -- the judge catches what it must ------------------------------------------


def good_case(command: str = "metrics-json") -> object:
    rng = np.random.default_rng(0)
    case = fuzz.Case(0, command)
    buf = __import__("io").BytesIO()
    np.savez(buf, logits=rng.normal(size=(20, 3)), labels=rng.integers(0, 3, 20))
    case.files["in.npz"] = buf.getvalue()
    case.argv = ["metrics", "{d}/in.npz", "--json"]
    return case


def run_with(main, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int = 20):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("relcal.cli.main", main)
    return fuzz.run_case(good_case(), tmp_path, limit)


def test_judge_real_case_is_ok(tmp_path: Path) -> None:
    r = fuzz.run_case(good_case(), tmp_path)
    assert (r.outcome, r.failures, r.code) == ("ok", [], 0)
    assert json.loads(r.stdout)["kind"] == "relcal.metrics"


def test_judge_catches_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def main(argv: list[str]) -> int:
        raise MemoryError("Unable to allocate")

    r = run_with(main, tmp_path, monkeypatch)
    assert r.outcome == "failure"
    assert r.failures[0][0].startswith("MemoryError in ")


def test_judge_catches_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def main(argv: list[str]) -> int:
        time.sleep(5)
        return 0

    r = run_with(main, tmp_path, monkeypatch, limit=1)
    assert r.failures[0][0].startswith("hang in ") and r.seconds < 3


def test_judge_catches_nan_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def main(argv: list[str]) -> int:
        print('{"ece": NaN}')
        return 0

    r = run_with(main, tmp_path, monkeypatch)
    assert r.failures == [
        ("non-finite in JSON (metrics-json stdout)", "non-finite NaN")
    ]


def test_judge_catches_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def main(argv: list[str]) -> int:
        np.log(np.zeros(1))  # RuntimeWarning: divide by zero
        print("{}")
        return 0

    r = run_with(main, tmp_path, monkeypatch)
    assert (
        r.failures[0][0] == "warning RuntimeWarning: divide by zero encountered in log"
    )


def test_judge_catches_bad_error_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def main(argv: list[str]) -> int:
        print("Error: a\nb", file=sys.stderr)
        Path(argv[1]).with_suffix(".out").write_text("x")
        return 2

    r = run_with(main, tmp_path, monkeypatch)
    assert [k for k, _ in r.failures] == [
        "output written despite exit 2",
        "error message not one 'Error:' line",
    ]


def test_judge_catches_unnamed_file_and_text_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def error(argv: list[str]) -> int:
        print("Error: something went wrong", file=sys.stderr)
        return 2

    r = run_with(error, tmp_path, monkeypatch)
    assert r.failures[0][0] == "error names no file: Error: something went wrong"

    def text(argv: list[str]) -> int:
        print("ECE nan")
        return 0

    case = good_case("metrics")
    case.argv = ["metrics", "{d}/in.npz"]
    monkeypatch.setattr("relcal.cli.main", text)
    r = fuzz.run_case(case, tmp_path)
    assert r.failures[0][0] == "non-finite in text output of metrics"
