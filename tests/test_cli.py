"""The command line: exact output, the JSON document, help, start-up imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import click
import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.cli import cli, main
from relcal.synth import make_logits

from .conftest import REPO


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    logits, labels = make_logits(2000, 4, seed=3)
    path = tmp_path / "preds.npz"
    np.savez(
        path,
        logits=logits,
        labels=labels,
        class_names=np.array(["cat", "dog", "<b>emu</b>", "yak"]),
    )
    return path


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = run(["--version"])
    assert code == 0 and out == f"relcal, version {relcal.__version__}\n"


def test_help_lists_commands_and_exit_codes() -> None:
    code, out, _ = run(["--help"])
    assert code == 0
    assert "metrics" in out and "Exit codes: 0 success, 1 a check failed, 2 bad" in out


def test_every_command_has_help_and_is_in_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, command in cli.commands.items():
        assert command.help, name
        assert f"relcal {name}" in readme, name
        code, out, _ = run([name, "--help"])
        assert code == 0 and "Usage:" in out


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "relcal", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"relcal, version {relcal.__version__}"


def test_metrics_text(npz: Path) -> None:
    code, out, err = run(["metrics", str(npz)])
    assert code == 0 and err == ""
    r = relcal.evaluate(*_arrays(npz))
    lines = out.splitlines()
    assert lines[0] == f"relcal {relcal.__version__}: {npz}"
    assert lines[1] == "2000 samples, 4 classes, scores: logits"
    assert lines[2] == "bins: 15 equal-width, right-closed (lo, hi], 0 in the first bin"
    assert f"  ECE (L1)         {r.ece:.4f}" in lines
    assert f"  NLL (nats)       {r.nll:.4f}" in lines
    assert "Binned correctness (top-label confidence):" in lines
    table = lines[lines.index("Binned correctness (top-label confidence):") + 2 :]
    assert len(table) == 15
    counts = [int(row.split()[3]) for row in table]
    assert counts == r.table.count.tolist()


def _arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["logits"], f["labels"]


def test_metrics_json_document(npz: Path) -> None:
    code, out, _ = run(["metrics", str(npz), "--json", "--bins", "10"])
    assert code == 0
    doc = json.loads(out)
    assert doc["format"] == 1 and doc["kind"] == "relcal.metrics"
    assert doc["relcal_version"] == relcal.__version__
    assert doc["binning"] == {
        "n_bins": 10,
        "strategy": "width",
        "rule": "right-closed (lo, hi], 0 in the first bin",
    }
    assert doc["input"]["class_names"] == ["cat", "dog", "<b>emu</b>", "yak"]
    assert doc["input"]["dtype"] == "float32" and doc["input"]["shape"] == [2000, 4]
    r = relcal.evaluate(*_arrays(npz), n_bins=10)
    for key in (
        "accuracy",
        "ece",
        "rms_ce",
        "mce",
        "classwise_ece",
        "nll",
        "brier",
        "mean_confidence",
    ):
        assert doc["metrics"][key] == pytest.approx(getattr(r, key), abs=1e-15)
    assert len(doc["bins"]) == 10
    assert sum(b["count"] for b in doc["bins"]) == doc["n_samples"] == 2000
    for b in doc["bins"]:
        assert set(b) == {
            "bin",
            "lo",
            "hi",
            "count",
            "correct",
            "incorrect",
            "mean_confidence",
            "accuracy",
            "gap",
        }
        assert b["correct"] + b["incorrect"] == b["count"]
        if b["count"] == 0:
            assert b["accuracy"] is None and b["gap"] is None
    assert doc["positive_class"] is None
    # the positive-class errors exist for two classes only: null, with the reason
    why = "needs two classes; the input has 4"
    for key in ("positive_class_ece", "positive_class_rms_ce", "positive_class_mce"):
        assert doc["metrics"][key] is None
    assert doc["unavailable"] == {
        "positive_class_ece": why,
        "positive_class_rms_ce": why,
        "positive_class_mce": why,
    }
    assert "NaN" not in out and "Infinity" not in out


def test_metrics_json_binary_has_positive_class(tmp_path: Path) -> None:
    logits, labels = make_logits(3000, 2, seed=1)
    path = tmp_path / "bin.npz"
    np.savez(path, logits=logits, labels=labels)
    doc = json.loads(run(["metrics", str(path), "--json"])[1])
    rows = doc["positive_class"]["bins"]
    assert sum(r["count"] for r in rows) == 3000
    assert set(rows[0]) == {
        "bin",
        "lo",
        "hi",
        "count",
        "positives",
        "negatives",
        "mean_predicted",
        "fraction_positive",
        "gap",
    }


def test_metrics_toplabel_marks_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "top.csv"
    path.write_text("true_label,pred_label,confidence\n0,0,0.9\n1,0,0.8\n2,2,0.55\n")
    code, out, _ = run(["metrics", str(path)])
    assert code == 0
    assert re.search(
        r"NLL \(nats\)\s+n/a \(needs the probability of the true class", out
    )
    doc = json.loads(run(["metrics", str(path), "--json"])[1])
    assert doc["metrics"]["nll"] is None and "nll" in doc["unavailable"]
    assert doc["scores"] == "toplabel"


def test_cli_calls_the_library(npz: Path) -> None:
    """The CLI maps its options onto one library call."""
    import relcal.pipeline

    with mock.patch("relcal.pipeline.measure", wraps=relcal.pipeline.measure) as spy:
        code, _, _ = run(["metrics", str(npz), "--bins", "7", "--binning", "mass"])
    assert code == 0
    spy.assert_called_once()
    kwargs = spy.call_args.kwargs
    assert (kwargs["n_bins"], kwargs["binning"], kwargs["bootstrap"]) == (
        7,
        "mass",
        None,
    )


def test_main_returns_2_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["metrics", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert err == f"Error: {tmp_path / 'missing.npz'}: no such file\n"


def test_startup_imports_only_what_the_command_needs(npz: Path) -> None:
    code = (
        "import sys, relcal.cli as c; rc = c.main(['metrics', sys.argv[1]]);"
        "heavy = [m for m in ('pandas', 'pyarrow', 'matplotlib', 'jinja2', 'scipy')"
        " if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(npz)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_check_startup_imports_neither_matplotlib_nor_pandas(npz: Path) -> None:
    code = (
        "import sys, relcal.cli as c;"
        " rc = c.main(['check', sys.argv[1], '--max-ece', '0.9', '--confidence',"
        " '0.9', '--bootstrap', '100']);"
        "heavy = [m for m in ('pandas', 'pyarrow', 'matplotlib', 'jinja2', 'scipy')"
        " if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(npz)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GITHUB_STEP_SUMMARY": ""},
    )
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"


# --------------------------------------------------------------------------
# library messages name Python parameters; the CLI names its flags


def test_every_input_option_has_a_python_name() -> None:
    """PYTHON_TO_CLI covers every option of input_options, and each Python
    name is a parameter of relcal.io.load."""
    import inspect

    from relcal.cli import PYTHON_TO_CLI, input_options
    from relcal.io import load

    command = click_command_of(input_options)
    flags = {opt for p in command.params for opt in p.opts if opt.startswith("--")}
    assert flags, "input_options declares no option"
    table = {flag: name for name, flag in PYTHON_TO_CLI.items()}
    assert flags - set(table) == set()
    params = inspect.signature(load).parameters
    assert {table[f] for f in flags} - set(params) == set()


def click_command_of(decorator: object) -> click.Command:
    @click.command()
    @decorator  # type: ignore[misc]
    def command(**kwargs: object) -> None:
        pass

    return command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name it with scores_key= or labels_key=",
            "name it with --scores-key or --labels-key",
        ),
        ("give channels_last=True", "give --channels-last"),
        ("(ignore_index=255 drops them)", "(--ignore-index 255 drops them)"),
        ('read with kind="logits"', "read with --scores logits"),
        ('needs labels="LABELS.npy"', "needs --labels LABELS.npy"),
        ('score_cols=["p a", "p_b"]', "--score-cols 'p a,p_b'"),
        ('label_col="y_true"', "--label-col y_true"),
        # user strings, unknown names and look-alikes are left alone
        ("no array 'scores_key=' here", "no array 'scores_key=' here"),
        ('no column "kind=1"', 'no column "kind=1"'),
        ("allow_pickle=False", "allow_pickle=False"),
        ("my_scores_key= x", "my_scores_key= x"),
        ("labels=LABELS.npy", "labels=LABELS.npy"),
        ("k=3.html: is a directory", "k=3.html: is a directory"),
        ("/runs/k=3/a.npz: no such file", "/runs/k=3/a.npz: no such file"),
        ("with_ensemble=True: a.npz has 3 classes", "--ensemble: a.npz has 3 classes"),
        (
            "the file's labels don't fit; labels_key=",
            "the file's labels don't fit; --labels-key",
        ),
    ],
)
def test_cli_message(text: str, expected: str) -> None:
    from relcal.cli import cli_message

    assert cli_message(text) == expected


def test_error_line_leaves_the_file_name_alone() -> None:
    from relcal.cli import error_line
    from relcal.errors import FormatError

    err = FormatError("name it with label_col=", source="label_col=x.csv")
    assert error_line(err) == "label_col=x.csv: name it with --label-col"


def test_library_error_in_python_and_cli_spelling(tmp_path: Path) -> None:
    """The same error: Python parameters through relcal.io.load, flags
    through the command line (exit code 2, one line)."""
    from relcal.errors import RelcalError
    from relcal.io import load

    path = tmp_path / "t.csv"
    path.write_text("y,p0,p1\n0,0.2,0.8\n1,0.6,0.4\n")
    msg = "no label column 'label'; the columns are: y, p0, p1; name it with {}"
    with pytest.raises(RelcalError) as info:
        load(path)
    assert str(info.value) == f"{path}: " + msg.format("label_col=")
    code, out, err = run(["metrics", str(path)])
    assert (code, out) == (2, "")
    assert err == f"Error: {path}: " + msg.format("--label-col") + "\n"

    scores = tmp_path / "s.npy"
    np.save(scores, np.zeros((3, 2)))
    with pytest.raises(RelcalError) as info:
        load(scores)
    need = "a .npy scores file needs its labels: {}"
    assert str(info.value) == f"{scores}: " + need.format('labels="LABELS.npy"')
    assert main(["metrics", str(scores)]) == 2
    code, out, err = run(["metrics", str(scores)])
    assert (code, err) == (
        2,
        f"Error: {scores}: " + need.format("--labels LABELS.npy") + "\n",
    )


def test_single_command_options_in_python_and_cli_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """report's --ensemble and fit-temperature's --cv: the library names
    with_ensemble= and k=, the CLI its flags."""
    from relcal.errors import RelcalError
    from relcal.io import load
    from relcal.report import build_report
    from relcal.temperature import cross_fit

    logits, labels = make_logits(5, 3, seed=2)
    path = tmp_path / "five.npz"
    np.savez(path, logits=logits, labels=labels)
    with pytest.raises(RelcalError) as info:
        build_report([load(path)], with_ensemble=True)
    assert str(info.value) == "with_ensemble=True needs at least two input files"
    out = tmp_path / "r.html"
    assert main(["report", str(path), "--ensemble", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        "Error: --ensemble needs at least two input files\n"
    )
    with pytest.raises(RelcalError) as info:
        cross_fit(logits, labels, 10)
    assert str(info.value) == "k=10: more folds than the 5 samples"
    t = tmp_path / "t.json"
    assert main(["fit-temperature", str(path), "--cv", "10", "-o", str(t)]) == 2
    assert capsys.readouterr().err == (
        f"Error: {path}: --cv 10: more folds than the 5 samples\n"
    )
    assert not out.exists() and not t.exists()


def test_bins_numbered_from_0_in_text_json_and_report(tmp_path: Path) -> None:
    """Bin b is the same bin everywhere: the text, the JSON ("bin"), the report."""
    logits, labels = make_logits(1000, 2, seed=4)
    path = tmp_path / "bin.npz"
    np.savez(path, logits=logits, labels=labels)
    text = run(["metrics", str(path), "--bins", "5"])[1]
    doc = json.loads(run(["metrics", str(path), "--bins", "5", "--json"])[1])
    rows = [
        line.split()
        for line in text.splitlines()
        if re.match(r"\s+\d+\s+[\[(]\d\.\d{3}, ", line)
    ]
    want = [
        [str(b["bin"]), str(b["count"])]
        for b in doc["bins"] + doc["positive_class"]["bins"]
    ]
    assert [[r[0], r[3]] for r in rows] == want
    assert [r[0] for r in rows[:5]] == ["0", "1", "2", "3", "4"]
    assert rows[0][1:3] == ["[0.000,", "0.200]"] and rows[1][1] == "(0.200,"
    out = tmp_path / "r.html"
    assert run(["report", str(path), "--bins", "5", "-o", str(out)])[0] == 0
    cells = re.findall(r"<td>(\d+)</td>\s*<td>[\[(]", out.read_text())
    assert cells == [w[0] for w in want]


# -- "-" for standard output ----------------------------------------------------


def test_fit_temperature_to_stdout(npz: Path, tmp_path: Path, monkeypatch) -> None:
    """-o - puts the temperature file on stdout and nothing else; the summary
    goes to stderr (or nowhere with --json); no file is written."""
    monkeypatch.chdir(tmp_path)
    from relcal.render import format_temperature

    saved = tmp_path / "t.json"
    code, out, _ = run(["fit-temperature", str(npz), "-o", str(saved)])
    assert code == 0
    code, out, err = run(["fit-temperature", str(npz), "-o", "-"])
    assert code == 0 and out == saved.read_text()
    doc = json.loads(out)
    assert doc["kind"] == "relcal.temperature"
    assert err == format_temperature(doc)
    code, out, err = run(["fit-temperature", str(npz), "-o", "-", "--json"])
    assert (code, out, err) == (0, saved.read_text(), "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.npz", "t.json"]


def test_report_json_and_html_to_stdout(npz: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert run(["report", str(npz), "-o", "a.html", "--json", "a.json"])[0] == 0
    code, out, err = run(["report", str(npz), "-o", "b.html", "--json", "-"])
    assert (code, err) == (0, "wrote b.html\n")
    assert json.loads(out) == json.loads(Path("a.json").read_text())
    assert Path("b.html").read_text() == Path("a.html").read_text()
    code, out, err = run(["report", str(npz), "-o", "-", "--json", "c.json"])
    assert (code, err) == (0, "wrote c.json\n")
    assert out == Path("a.html").read_text()
    assert Path("c.json").read_text() == Path("a.json").read_text()
    code, out, err = run(["report", str(npz), "-o", "-"])
    assert (code, out, err) == (0, Path("a.html").read_text(), "")
    code, out, err = run(["report", str(npz), "-o", "-", "--json", "-"])
    assert (code, out) == (2, "")
    assert err.endswith(
        "Error: --json and --output cannot both be - (standard output)\n"
    )
    assert not Path("-").exists()


def test_calibrate_refuses_stdout(npz: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["fit-temperature", str(npz), "-o", "t.json"])[0] == 0
    code, out, err = run(["calibrate", str(npz), "--temperature", "t.json", "-o", "-"])
    assert (code, out) == (2, "")
    assert err.endswith(
        "Error: -o -: calibrate writes an .npz (binary), not to standard output;"
        " give a file name\n"
    )
    assert not Path("-").exists()


def test_labels_directory_for_a_glob_of_scores(tmp_path):
    """--labels DIR, as the library's labels= takes it: each scores file's
    labels of the same name; a single scores file still needs a file."""
    rng = np.random.default_rng(0)
    (tmp_path / "s").mkdir()
    (tmp_path / "l").mkdir()
    for i in range(2):
        np.save(tmp_path / "s" / f"p{i}.npy", rng.normal(size=(50, 4)))
        np.save(tmp_path / "l" / f"p{i}.npy", rng.integers(0, 4, 50))
    scores = str(tmp_path / "s" / "*.npy")
    by_dir = run(["metrics", scores, "--labels", str(tmp_path / "l"), "--json"])
    by_glob = run(
        ["metrics", scores, "--labels", str(tmp_path / "l" / "*.npy"), "--json"]
    )
    assert by_dir[0] == 0, by_dir[2]
    assert json.loads(by_dir[1])["metrics"] == json.loads(by_glob[1])["metrics"]
    code, out, err = run(
        ["metrics", str(tmp_path / "s" / "p0.npy"), "--labels", str(tmp_path / "l")]
    )
    assert (code, out) == (2, "")
    assert err == f"Error: {tmp_path / 'l'}: is a directory, not a file\n"
