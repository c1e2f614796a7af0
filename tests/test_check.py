"""``relcal check`` through the command line: exit codes, config files,
baselines, JSON, JUnit XML, Markdown and the GitHub step summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.cli import cli, main
from relcal.synth import make_logits


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {"GITHUB_STEP_SUMMARY": "", **(env or {})}
    result = CliRunner().invoke(cli, args, catch_exceptions=False, env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory (config files are looked up there)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def save(path: Path, temperature: float = 2.5, n: int = 2000, seed: int = 3) -> str:
    logits, labels = make_logits(n, 4, seed=seed, temperature=temperature)
    np.savez(path, logits=logits, labels=labels)
    return str(path)


@pytest.fixture
def new(tmp_path: Path) -> str:
    """ECE about 0.19 (over-confident logits, T = 2.5)."""
    return save(tmp_path / "new.npz")


@pytest.fixture
def calibrated(tmp_path: Path) -> str:
    """The same samples and labels, logits at T = 1: ECE about 0.03."""
    return save(tmp_path / "calibrated.npz", temperature=1.0)


def ece_of(path: str) -> float:
    with np.load(path) as f:
        return relcal.evaluate(f["logits"], f["labels"]).ece


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# --------------------------------------------------------------------------
# exit codes


def test_exit_0_when_every_check_passes(new: str) -> None:
    code, out, err = run(["check", new, "--max-ece", "0.5", "--min-accuracy", "0.1"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "gate on the point estimates; 15 equal-width bins"
    assert lines[1] == f"ok   ece {ece_of(new):.4f} <= 0.5000"
    assert lines[2].startswith("ok   accuracy ") and lines[2].endswith(" >= 0.1000")
    assert lines[-1] == f"relcal check: all 2 checks passed ({new}, 2000 samples)"


def test_exit_1_when_a_check_fails(new: str) -> None:
    code, out, _ = run(["check", new, "--max-ece", "0.05", "--max-nll", "5"])
    assert code == 1
    assert f"FAIL ece {ece_of(new):.4f} > 0.0500" in out.splitlines()
    assert out.splitlines()[-1] == (
        f"relcal check: 1 of 2 checks failed ({new}, 2000 samples)"
    )


def test_main_returns_the_verdict(new: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", new, "--max-ece", "0.5"]) == 0
    assert main(["check", new, "--max-ece", "0.01"]) == 1
    assert main(["check", new]) == 2
    assert capsys.readouterr().err == (
        "Error: no checks: give a threshold such as --max-ece 0.05, or put one in "
        "[tool.relcal.check] of pyproject.toml or in relcal.toml\n"
    )


BAD = [
    (["--max-ece", "0.1", "--max-ece-increase", "0"], "needs a --baseline"),
    (["--max-nll", "-1"], "max-nll must be >= 0"),
    (["--max-ece", "x"], "--max-ece"),
    (["--max-ece", "0.1", "--confidence", "1.5"], "--confidence"),
    (["--max-ece", "0.1", "--bootstrap", "5"], "--bootstrap"),
    (["--max-eec", "0.1"], "--max-eec"),
    (["--max-ece", "0.1", "--config", "missing.toml"], "missing.toml: no such file"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_exit_2_on_bad_usage(
    new: str,
    tmp_path: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
) -> None:
    before = snapshot(tmp_path)
    args = ["check", new, *extra, "--junit-xml", "j.xml", "--markdown", "s.md"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    # click's usage errors add "Usage:" lines before the error; relcal's own
    # errors are one line
    assert err.splitlines()[-1].startswith("Error: ") and message in err, err
    assert snapshot(tmp_path) == before, "something was written"


def test_exit_2_on_bad_input_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    z = np.zeros((5, 3))
    z[1, 1] = np.nan
    np.savez(tmp_path / "bad.npz", logits=z, labels=[0, 1, 2, 0, 1])
    assert main(["check", "bad.npz", "--max-ece", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: bad.npz: ") and len(err.splitlines()) == 1


def test_exit_2_on_a_metric_the_file_cannot_give(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "top.csv").write_text(
        "true_label,pred_label,confidence\n0,0,0.9\n1,0,0.8\n2,2,0.55\n"
    )
    assert main(["check", "top.csv", "--max-nll", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: top.csv: --max-nll: nll needs the probability")


def test_subprocess_exit_codes(new: str) -> None:
    def code(*args: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "relcal", "check", new, *args],
            capture_output=True,
            env={**os.environ, "GITHUB_STEP_SUMMARY": ""},
        ).returncode

    assert (code("--max-ece", "0.9"), code("--max-ece", "0.01"), code()) == (0, 1, 2)


def test_help_lists_exit_codes_and_options() -> None:
    code, out, _ = run(["check", "--help"])
    assert code == 0
    assert "Exit codes:" in out
    for line in (
        "0  every check passed",
        "1  a check failed",
        "2  bad usage or bad input",
    ):
        assert line in out
    for option in ("--max-ece", "--max-classwise-ece", "--min-accuracy", "--baseline"):
        assert option in out
    assert "--max-ece-increase" in out and "--confidence" in out


# --------------------------------------------------------------------------
# config files


def test_pyproject_config(new: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.relcal.check]\nmax-ece = 0.5\n'
    )
    code, out, _ = run(["check", new])
    assert code == 0
    assert out.splitlines()[0] == "config: pyproject.toml"


def test_relcal_toml_wins_over_pyproject(new: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.relcal.check]\nmax-ece = 0.5\n")
    (tmp_path / "relcal.toml").write_text("[check]\nmax-ece = 0.01\n")
    code, out, _ = run(["check", new])
    assert code == 1 and out.splitlines()[0] == "config: relcal.toml"
    assert "> 0.0100" in out


def test_options_override_the_config_file(new: str, tmp_path: Path) -> None:
    (tmp_path / "relcal.toml").write_text(
        "[check]\nmax-ece = 0.01\nmax-nll = 5.0\nbins = 10\n"
    )
    code, out, _ = run(["check", new, "--max-ece", "0.5"])
    assert code == 0
    assert "ece" in out and "<= 0.5000" in out and "nll" in out
    assert "10 equal-width bins" in out  # from the file
    code, out, _ = run(["check", new, "--max-ece", "0.5", "--bins", "20"])
    assert "20 equal-width bins" in out


def test_explicit_config_and_pyproject_without_table(new: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "ci.toml").write_text("[tool.relcal.check]\nmax-ece = 0.5\n")
    code, _, err = run(["check", new])
    assert code == 2 and "no checks" in err  # pyproject without the table: ignored
    code, out, _ = run(["check", new, "--config", "ci.toml"])
    assert code == 0 and out.splitlines()[0] == "config: ci.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[check]\nmax-eec = 0.1\n", "relcal.toml: unknown key 'max-eec'"),
        ("[check]\nmax-ece = 'low'\n", "relcal.toml: max-ece must be a number"),
        ("[check\nmax-ece = 0.1\n", "relcal.toml: not valid TOML"),
        ("[other]\nx = 1\n", "relcal.toml: no [tool.relcal.check] table"),
    ],
)
def test_bad_config_file(
    new: str, tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "relcal.toml").write_text(text)
    assert main(["check", new]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err, err


# --------------------------------------------------------------------------
# baselines


def test_baseline_pass(new: str) -> None:
    code, out, _ = run(["check", new, "--baseline", new, "--max-ece-increase", "0"])
    assert code == 0
    assert f"baseline: {new}" in out
    assert "ok   ece increase +0.0000 <= +0.0000" in out


def test_baseline_fail(new: str, calibrated: str) -> None:
    args = ["check", new, "--baseline", calibrated, "--max-ece-increase", "0.01"]
    code, out, _ = run([*args, "--confidence", "0.95", "--bootstrap", "300"])
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("FAIL"))
    assert line.startswith("FAIL ece increase +0.")
    assert f"vs baseline {ece_of(calibrated):.4f}; 95% CI +" in line
    assert "paired bootstrap" in out


def test_baseline_with_other_sample_count(
    new: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = save(tmp_path / "other.npz", n=1500)
    assert main(["check", new, "--baseline", other, "--max-ece-increase", "0"]) == 2
    assert capsys.readouterr().err == (
        f"Error: {other}: the baseline has 1500 samples and {new} 2000: "
        "a baseline must be measured on the same samples\n"
    )


def test_baseline_with_other_labels(
    new: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = save(tmp_path / "other.npz", seed=4)
    assert main(["check", new, "--baseline", other, "--max-ece-increase", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {other}: the baseline's labels differ from {new}'s")
    assert "a baseline must hold the same samples in the same order" in err


def test_json_baseline(new: str, calibrated: str, tmp_path: Path) -> None:
    code, doc, _ = run(["metrics", calibrated, "--json"])
    (tmp_path / "main.json").write_text(doc)
    code, out, _ = run(
        ["check", new, "--baseline", "main.json", "--max-ece-increase", "0.01"]
    )
    assert code == 1
    assert (
        "note: baseline main.json is a metrics JSON file: only its sample count "
        f"(2000) can be compared with {new}, not its labels, and a paired "
        "bootstrap is impossible"
    ) in out
    code, out, _ = run(
        ["check", new, "--baseline", "main.json", "--max-ece-increase", "0.5"]
    )
    assert code == 0


def test_json_baseline_mismatch(
    new: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = save(tmp_path / "other.npz", n=1000)
    (tmp_path / "b10.json").write_text(
        run(["metrics", new, "--json", "--bins", "10"])[1]
    )
    (tmp_path / "n1000.json").write_text(run(["metrics", other, "--json"])[1])
    (tmp_path / "junk.json").write_text('{"kind": "relcal.report"}')
    for name, message in (
        ("b10.json", "measured with 10 equal-width bins and this check uses 15"),
        ("n1000.json", "the baseline has 1000 samples"),
        ("junk.json", "not a relcal metrics file"),
    ):
        assert main(["check", new, "--baseline", name, "--max-ece-increase", "0"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"Error: {name}: ") and message in err, err


# --------------------------------------------------------------------------
# --confidence


def test_confidence_states_the_interval(new: str) -> None:
    code, out, _ = run(["check", new, "--max-ece", "0.05", "--confidence", "0.9"])
    assert code == 1
    assert out.splitlines()[0] == (
        "gate on 90% bootstrap intervals (1000 replicates, seed 0; "
        "binned metrics bias-corrected); 15 equal-width bins"
    )
    line = out.splitlines()[1]
    assert line.startswith(f"FAIL ece {ece_of(new):.4f} > 0.0500 (90% CI 0.")
    assert ", debiased 0." in line


def test_confidence_passes_within_noise(tmp_path: Path) -> None:
    """A limit just under the plug-in ECE of a small file: the point gate fails,
    the 95% gate passes and says why."""
    path = save(tmp_path / "small.npz", temperature=1.0, n=300)
    limit = f"{ece_of(path) - 0.005:.4f}"
    assert run(["check", path, "--max-ece", limit])[0] == 1
    code, out, _ = run(["check", path, "--max-ece", limit, "--confidence", "0.95"])
    assert code == 0
    assert "beyond the limit, but within sampling noise" in out


def test_seed_changes_the_interval_reproducibly(new: str) -> None:
    def first(seed: str) -> str:
        args = ["check", new, "--max-ece", "0.5", "--confidence", "0.95"]
        return run([*args, "--seed", seed, "--bootstrap", "200"])[1].splitlines()[1]

    assert first("1") == first("1") and first("1") != first("2")


# --------------------------------------------------------------------------
# JSON, JUnit XML, Markdown, step summary


def test_json_document(new: str, calibrated: str) -> None:
    args = ["check", new, "--baseline", calibrated, "--max-ece", "0.05"]
    code, out, _ = run([*args, "--max-nll-increase", "1", "--json"])
    assert code == 1
    doc = json.loads(out)
    assert doc["format"] == 1 and doc["kind"] == "relcal.check"
    assert doc["passed"] is False and doc["exit_code"] == 1 and doc["n_failed"] == 1
    assert (
        doc["baseline"]["paired"] is True and doc["baseline"]["from"] == "predictions"
    )
    assert doc["method"]["gate"] == "point estimate"
    assert [c["check"] for c in doc["checks"]] == ["max-ece", "max-nll-increase"]
    ece = doc["checks"][0]
    assert ece["value"] == pytest.approx(ece_of(new), abs=1e-15)
    assert ece["threshold"] == 0.05 and ece["verdict"] == "fail"
    assert ece["interval"] is None and ece["line"].startswith("FAIL ece")
    assert doc["checks"][1]["verdict"] == "pass"
    assert "NaN" not in out


def test_json_with_interval(new: str) -> None:
    args = ["check", new, "--max-ece", "0.5", "--confidence", "0.95", "--json"]
    doc = json.loads(run(args)[1])
    iv = doc["checks"][0]["interval"]
    assert set(iv) == {"low", "high", "estimate", "bias", "confidence"}
    assert iv["low"] < iv["estimate"] < iv["high"] and iv["confidence"] == 0.95
    assert doc["method"]["bootstrap"]["replicates"] == 1000


def test_junit_xml(new: str, tmp_path: Path) -> None:
    args = ["check", new, "--max-ece", "0.05", "--max-nll", "5", "--min-accuracy"]
    code, _, _ = run([*args, "0.1", "--junit-xml", "out/junit.xml"])
    assert code == 2  # no directory out/
    (tmp_path / "out").mkdir()
    code, _, _ = run([*args, "0.1", "--junit-xml", "out/junit.xml"])
    assert code == 1
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()  # well-formed
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "max-ece 0.0500",
        "max-nll 5.0000",
        "min-accuracy 0.1000",
    ]
    failures = [c.find("failure") for c in cases]
    assert failures[0] is not None and failures[1] is None and failures[2] is None
    assert failures[0].get("message", "").startswith("FAIL ece ")
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))


def test_markdown_and_step_summary(new: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    args = ["check", new, "--max-ece", "0.05", "--markdown", "check.md"]
    code, _, _ = run(args, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 1
    md = (tmp_path / "check.md").read_text()
    assert md.startswith("### relcal check: FAILED (1 check)\n")
    assert "| ❌ | ece |" in md
    assert summary.read_text() == "earlier step\n" + md
    # appended again by the next run, never overwritten
    run(args, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text() == "earlier step\n" + md + md


def test_step_summary_in_a_missing_directory(new: str, tmp_path: Path) -> None:
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "nope" / "s.md")}
    code, out, err = run(["check", new, "--max-ece", "0.5"], env=env)
    assert code == 2 and out == "" and "no such directory" in err


def test_outputs_never_overwrite_an_input(new: str) -> None:
    code, _, err = run(["check", new, "--max-ece", "0.5", "--markdown", new])
    assert code == 2 and "is an input file" in err


def test_cli_calls_the_gate(new: str) -> None:
    from unittest import mock

    import relcal.gate

    with mock.patch("relcal.gate.check", wraps=relcal.gate.check) as spy:
        code, _, _ = run(["check", new, "--max-ece", "0.5", "--seed", "3"])
    assert code == 0
    spy.assert_called_once()
    settings = spy.call_args.args[1]
    assert settings.seed == 3 and settings.thresholds[0].name == "max-ece"
    assert spy.call_args.kwargs == {"baseline": None}


def test_one_check_is_singular(new: str) -> None:
    code, out, _ = run(["check", new, "--max-ece", "0.9"])
    assert code == 0
    assert out.splitlines()[-1] == f"relcal check: 1 check passed ({new}, 2000 samples)"
    code, out, _ = run(["check", new, "--max-ece", "0.01"])
    assert code == 1
    assert out.splitlines()[-1] == f"relcal check: 1 check failed ({new}, 2000 samples)"
    code, out, _ = run(["check", new, "--max-ece", "0.9", "--max-nll", "99"])
    assert (
        out.splitlines()[-1]
        == f"relcal check: all 2 checks passed ({new}, 2000 samples)"
    )
    run(["check", new, "--max-ece", "0.01", "--max-nll", "0", "--markdown", "m.md"])
    assert (
        Path("m.md")
        .read_text()
        .startswith("### relcal check: FAILED (2 of 2 checks)\n")
    )


def test_junit_classname_is_the_file_name(new: str, tmp_path: Path) -> None:
    """The classname carries the file's name, not the directories it sits in."""
    assert Path(new).parent == tmp_path  # an absolute path with directories
    code, _, _ = run(["check", new, "--max-ece", "0.9", "--junit-xml", "j.xml"])
    assert code == 0
    (case,) = ET.parse("j.xml").getroot().iter("testcase")
    assert case.get("classname") == "relcal.check.new.npz"
    sub = tmp_path / "preds" / "run 1"
    sub.mkdir(parents=True)
    path = save(sub / "model.npz")
    run(["check", "preds/run 1/model.npz", "--max-ece", "0.9", "--junit-xml", "k.xml"])
    (case,) = ET.parse("k.xml").getroot().iter("testcase")
    assert case.get("classname") == "relcal.check.model.npz"
    assert Path(path).is_file()


def test_min_samples_warns_on_stderr_json_and_markdown(tmp_path: Path) -> None:
    small = save(tmp_path / "small.npz", n=300)
    code, out, err = run(["check", small, "--max-ece", "0.9"])
    assert code == 0  # a warning, not a failure
    warning = (
        f"{small}: 300 samples, fewer than --min-samples 500: at this size binned "
        "metrics (ECE, RMS-CE, MCE) are mostly sampling noise; gate with "
        "--confidence 0.95, or on more samples"
    )
    assert err == f"relcal check: warning: {warning}\n"
    assert "warning" not in out
    code, out, err = run(
        ["check", small, "--max-ece", "0.9", "--json", "--markdown", "m.md"]
    )
    doc = json.loads(out)
    assert doc["min_samples"] == 500 and doc["warnings"] == [warning]
    assert f"> **warning:** {warning}\n" in Path("m.md").read_text()
    # with --confidence the advice changes; at --min-samples 300 there is none
    code, _, err = run(["check", small, "--max-ece", "0.9", "--confidence", "0.9"])
    assert err.endswith(
        "their bootstrap intervals are wide, so a check can hardly fail\n"
    )
    code, out, err = run(["check", small, "--max-ece", "0.9", "--min-samples", "300"])
    assert (code, err) == (0, "")
    assert (
        json.loads(
            run(["check", small, "--max-ece", "0.9", "--json", "--min-samples", "300"])[
                1
            ]
        )["warnings"]
        == []
    )
    Path("relcal.toml").write_text("[check]\nmax-ece = 0.9\nmin-samples = 1000\n")
    code, _, err = run(["check", new_file := save(tmp_path / "n.npz", n=600)])
    assert code == 0 and "fewer than --min-samples 1000" in err and new_file in err


def test_config_with_both_spellings_is_an_error(new: str) -> None:
    Path("relcal.toml").write_text("[check]\nmax-ece = 0.05\nmax_ece = 0.04\n")
    code, out, err = run(["check", new])
    assert (code, out) == (2, "")
    assert err == (
        "Error: relcal.toml: 'max-ece' and 'max_ece' are the same key given twice;"
        " keep 'max-ece'\n"
    )
    Path("relcal.toml").write_text("[check]\nmax_ece = 0.05\n")
    assert run(["check", new])[2] == (
        "Error: relcal.toml: unknown key 'max_ece': keys are spelled with dashes,"
        " as the options: 'max-ece'\n"
    )
