"""The progress bar (relcal.progress) and the --jobs / --quiet options.

The bar is drawn only on a terminal: the command-line tests run ``python -m
relcal`` with its standard error on a pseudo-terminal (``os.openpty``).
``RELCAL_PROGRESS_DELAY=0`` (the module's test hook) lets a bar appear on an
input that takes well under the one second a user waits before seeing one.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner

from relcal import progress
from relcal.cli import cli

ROOT = Path(__file__).resolve().parents[1]
RATE = re.compile(r"\d+(?:\.\d+)?[kMG]?B/s")  # tqdm's rate, in bytes per second
LEFT = re.compile(r"<\d\d:\d\d")  # tqdm's time left


@pytest.fixture(scope="module")
def logits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """20,000 x 100 float64 logits (16 MB): several chunks per pass."""
    rng = np.random.default_rng(13)
    n, c = 20_000, 100
    y = rng.integers(0, c, n)
    z = rng.normal(size=(n, c)) * 2.0
    z[np.arange(n), y] += rng.normal(2.0, 1.5, n)
    d = tmp_path_factory.mktemp("progress")
    np.save(d / "z.npy", z)
    np.save(d / "y.npy", y)
    return d / "z.npy", d / "y.npy"


@pytest.fixture(scope="module")
def seg_logits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 segmentation maps of 19 classes (4 MB each): read by worker
    processes, a piece each."""
    rng = np.random.default_rng(14)
    y = rng.integers(0, 19, (12, 230, 230)).astype(np.uint8)
    z = rng.normal(size=(12, 19, 230, 230)).astype(np.float32)
    d = tmp_path_factory.mktemp("progress_seg")
    np.save(d / "z.npy", z)
    np.save(d / "y.npy", y)
    return d / "z.npy", d / "y.npy"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TERM"] = "xterm"
    env.update(extra)
    return env


def _run(args: list[str], *, tty: bool, **env: str) -> tuple[int, str, str]:
    """Run ``python -m relcal ARGS``; standard error on a pseudo-terminal
    (``tty``) or a pipe.  Returns (exit code, stdout, stderr)."""
    cmd = [sys.executable, "-m", "relcal", *args]
    if not tty:
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(**env))
        return p.returncode, p.stdout, p.stderr
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer has gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        p = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=slave, env=_env(**env), timeout=120
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return p.returncode, p.stdout.decode(), b"".join(chunks).decode()


def _fit_args(files: tuple[Path, Path], out: Path) -> list[str]:
    z, y = files
    return ["fit-temperature", str(z), "--labels", str(y), "-o", str(out)]


def _command(name: str, files: tuple[Path, Path], tmp: Path) -> list[str]:
    z, y = files
    args = [name, str(z), "--labels", str(y)]
    return (
        args
        + {
            "metrics": [],
            "check": ["--max-ece", "0.5"],
            "report": ["-o", str(tmp / "r.html")],
            "fit-temperature": ["-o", str(tmp / "t.json")],
            "calibrate": [
                "--temperature",
                str(_temperature(tmp)),
                "-o",
                str(tmp / "c.npz"),
            ],
        }[name]
    )


def _temperature(tmp: Path) -> Path:
    """Where the test writes calibrate's temperature file (fitted on the
    same scores by a quiet fit-temperature first)."""
    return tmp / "t_in.json"


@pytest.mark.parametrize("data", ["logits", "seg_logits"])
@pytest.mark.parametrize(
    "name", ["metrics", "check", "report", "fit-temperature", "calibrate"]
)
def test_bar_on_a_terminal_shows_rate_and_time_left(request, tmp_path, name, data):
    files = request.getfixturevalue(data)  # seg_logits: in worker processes
    rows = {"RELCAL_CHUNK_ROWS": "1"} if data == "seg_logits" else {}
    if name == "calibrate":
        fit = [*_fit_args(files, _temperature(tmp_path)), "--quiet"]
        assert _run(fit, tty=False)[0] == 0
    code, out, err = _run(
        [*_command(name, files, tmp_path), "--jobs", "2"],
        tty=True,
        RELCAL_PROGRESS_DELAY="0",
        **rows,
    )
    assert code == 0, err
    assert f"{name}:" in err
    assert RATE.search(err), err
    assert LEFT.search(err), err
    # the bar is erased at the end: what is left on its line is blank, or
    # the command's own last line (wrote ...)
    last = err.rstrip("\r\n").split("\r")[-1].strip()
    assert last == "" or last.startswith("wrote "), err
    # the results are on stdout (report's in its file), untouched
    written = {"report": "r.html", "calibrate": "c.npz"}.get(name)
    assert (tmp_path / written).is_file() if written else out


def test_no_bar_in_a_pipe(logits, tmp_path):
    code, _, err = _run(
        _fit_args(logits, tmp_path / "t.json"), tty=False, RELCAL_PROGRESS_DELAY="0"
    )
    assert code == 0, err
    assert err == f"wrote {tmp_path / 't.json'}\n"


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_no_bar_with_quiet(logits, tmp_path, flag):
    args = [*_fit_args(logits, tmp_path / "t.json"), flag]
    code, _, err = _run(args, tty=True, RELCAL_PROGRESS_DELAY="0")
    assert code == 0, err
    assert not RATE.search(err)
    assert "\r" not in err.replace("\r\n", "\n")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_no_bar_in_ci(logits, tmp_path, ci):
    code, _, err = _run(
        _fit_args(logits, tmp_path / "t.json"),
        tty=True,
        RELCAL_PROGRESS_DELAY="0",
        CI=ci,
    )
    assert code == 0, err
    assert not RATE.search(err)


def test_no_bar_for_short_work(tmp_path):
    """The default delay (one second): sample data takes far less."""
    code, _, err = _run(
        ["fit-temperature", _sample(), "-o", str(tmp_path / "t.json")], tty=True
    )
    assert code == 0, err
    assert not RATE.search(err)
    assert "\r" not in err.replace("\r\n", "\n")


# --------------------------------------------------------------------------
# the module, in process


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = _Terminal()
    progress.enable(stream)
    yield stream
    progress.disable()


def test_advance_without_a_task_does_nothing(terminal):
    progress.advance(10**9)
    assert terminal.getvalue() == ""


def test_advance_from_threads_counts_every_unit(terminal, monkeypatch):
    monkeypatch.setenv(progress.DELAY_ENV, "0")
    with progress.task("work", 8 * 1000 * 1000) as t:

        def work() -> None:
            for _ in range(1000):
                progress.advance(1000)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert t.done == 8_000_000
        assert t.shown <= t.done
    assert "work:" in terminal.getvalue()


def test_redraws_are_rate_limited(terminal, monkeypatch):
    monkeypatch.setenv(progress.DELAY_ENV, "0")
    monkeypatch.setattr(progress, "REFRESH", 3600.0)
    with progress.task("work", 10**6):
        for _ in range(10_000):
            progress.advance(100)
    # the first advance draws (after tqdm's initial 0% line), later ones wait
    assert terminal.getvalue().count("work:") == 2


def test_no_bar_before_the_delay(terminal, monkeypatch):
    monkeypatch.setenv(progress.DELAY_ENV, "3600")
    with progress.task("work", 10**6):
        progress.advance(10**6)
    assert terminal.getvalue() == ""


def test_no_bar_when_disabled(monkeypatch):
    monkeypatch.setenv(progress.DELAY_ENV, "0")
    progress.disable()
    with progress.task("work", 100) as t:
        progress.advance(60)
        progress.advance(60)
    assert t.done == 120 and t.bar is None


def test_a_short_estimate_grows(terminal, monkeypatch):
    monkeypatch.setenv(progress.DELAY_ENV, "0")
    with progress.task("work", 100) as t:
        progress.advance(250)
        assert t.bar is not None and t.bar.total == 250
        t.expect(750)
        assert t.total == 850 and t.bar.total == 850


def test_tasks_nest(monkeypatch):
    progress.disable()
    with progress.task("outer", 10) as outer:
        with progress.task("inner", 10) as inner:
            progress.advance(3)
        progress.advance(4)
    assert (outer.done, inner.done) == (4, 3)


@pytest.mark.parametrize(
    ("env", "tty", "shown"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"CI": "true"}, True, False),
        ({"CI": "1"}, True, False),
        ({"CI": ""}, True, True),
        ({"CI": "false"}, True, True),
        ({"CI": "0"}, True, True),
        ({"TERM": "dumb"}, True, False),
    ],
)
def test_wanted(env, tty, shown):
    stream = _Terminal() if tty else io.StringIO()
    assert progress.wanted(stream, {"TERM": "xterm", **env}) is shown


def test_bad_delay_falls_back(monkeypatch):
    for raw in ("soon", "-1"):
        monkeypatch.setenv(progress.DELAY_ENV, raw)
        assert progress._delay() == progress.DELAY


# --------------------------------------------------------------------------
# --jobs


def _sample() -> str:
    return str(ROOT / "sample_data" / "digits_mlp_val.npz")


def test_every_command_has_jobs_and_quiet():
    for name, command in cli.commands.items():
        opts = {o for p in command.params for o in p.opts}
        assert {"-j", "--jobs", "-q", "--quiet"} <= opts, name
    assert set(cli.commands) == {
        "metrics",
        "report",
        "check",
        "fit-temperature",
        "calibrate",
    }


def test_the_total_counts_bytes_of_scores_of_predictions_and_streams(logits):
    from relcal.cli import _nbytes
    from relcal.io import load
    from relcal.stream import open_stream

    z, y = logits
    preds = load(str(z), labels=str(y))
    stream = open_stream(str(z), labels=str(y))
    assert _nbytes([preds]) == _nbytes([stream]) == np.load(z).nbytes
    assert _nbytes([preds, stream]) == 2 * np.load(z).nbytes


def test_jobs_in_a_message_is_the_flag():
    from relcal.cli import cli_message

    assert cli_message("jobs=0 is not a number of threads") == (
        "--jobs 0 is not a number of threads"
    )


@pytest.mark.parametrize(
    "command", ["metrics", "report", "check", "fit-temperature", "calibrate"]
)
def test_jobs_must_be_positive(command):
    args = [command, _sample(), "--jobs", "0"]
    if command == "calibrate":
        args += ["--temperature", "t.json"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 2
    assert r.output.splitlines()[-1] == (
        "Error: Invalid value for '-j' / '--jobs': 0 is not in the range x>=1."
    )


def test_jobs_sets_the_threads_for_the_run():
    seen = []
    from relcal import reduce

    real = reduce.set_jobs
    with mock.patch(
        "relcal.reduce.set_jobs", side_effect=lambda n: (seen.append(n), real(n))
    ):
        r = CliRunner().invoke(
            cli, ["metrics", _sample(), "-j", "3"], catch_exceptions=False
        )
        assert r.exit_code == 0
        r = CliRunner().invoke(cli, ["metrics", _sample()], catch_exceptions=False)
        assert r.exit_code == 0
    # 3 for the first run, then None (every core) after it and for the second
    assert seen == [3, None, None, None]
    assert reduce.default_threads() == reduce.available_cores()


def test_results_do_not_depend_on_jobs(logits):
    z, y = logits
    outs = [
        CliRunner().invoke(
            cli,
            ["metrics", str(z), "--labels", str(y), "--json", "-j", j],
            catch_exceptions=False,
        )
        for j in ("1", "2", "5")
    ]
    assert all(o.exit_code == 0 for o in outs)
    assert outs[0].output == outs[1].output == outs[2].output
