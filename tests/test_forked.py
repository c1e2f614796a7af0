"""Worker processes (relcal.forked): same results as threads, bit for bit,
errors raised in the parent as the serial path raises them, never a hang."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import relcal
from relcal import forked, summary
from relcal import reduce as rd
from relcal.errors import InputError
from relcal.metrics import plan_for
from relcal.stream import open_stream
from relcal.summary import reduce_chunks

pytestmark = [
    pytest.mark.forks,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="worker processes need Linux"
    ),
]

IGNORE = 255


def seg(n: int = 6, c: int = 5, side: int = 40, seed: int = 3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, (n, side, side)).astype(np.uint8)
    z = rng.standard_normal((n, c, side, side)).astype(np.float32)
    z[np.arange(n)[:, None, None], y, *np.indices((side, side))] += 2.0
    y[rng.random(y.shape) < 0.05] = IGNORE
    return z, y


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many tasks each forked run had (small blocks: many tasks)."""
    monkeypatch.setattr(rd, "CHUNK_BYTES", 1 << 14)
    got: list[int] = []
    run = forked.run

    def counted(tasks, workers):
        got.append(len(tasks))
        return run(tasks, workers)

    monkeypatch.setattr(forked, "run", counted)
    return got


def seg_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> list[str]:
    """``command`` on a .npy pair of 9 segmentation maps, 2 images a piece,
    on 2 jobs."""
    z, y = seg(n=9)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "2")
    args = [command, str(tmp_path / "z.npy"), "--labels", str(tmp_path / "y.npy")]
    return [*args, "--ignore-index", str(IGNORE), "--jobs", "2"]


def as_json(r: relcal.Results) -> str:
    return json.dumps(r.to_dict(), sort_keys=True)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_evaluate_in_processes_equals_threads_bit_for_bit(calls, binning):
    z, y = seg()
    got = {}
    for jobs, processes in ((1, True), (2, True), (2, False), (3, True)):
        forked.set_enabled(processes)
        rd.set_jobs(jobs)
        try:
            got[jobs, processes] = as_json(
                relcal.evaluate(z, y, ignore_index=IGNORE, binning=binning)
            )
        finally:
            forked.set_enabled(True)
            rd.set_jobs(None)
    assert calls, "no worker process ran"
    assert len(set(got.values())) == 1, got.keys()


def test_runs_of_blocks_do_not_depend_on_the_jobs(calls):
    """The workers take the blocks in runs (merged there, one message a
    run), the same runs at any number of jobs: at most summary.RUNS."""
    z, y = seg(n=12)
    for jobs in (2, 3):
        rd.set_jobs(jobs)
        try:
            relcal.evaluate(z, y, ignore_index=IGNORE, values=False)
        finally:
            rd.set_jobs(None)
    plan = plan_for("logits", 5, IGNORE, n_bins=15)
    n_blocks = len(rd.blocks(z, y.astype(np.int64), plan))
    size = summary.run_size(n_blocks)
    assert size > 1 and calls == [-(-n_blocks // size)] * 2, (n_blocks, calls)


def test_many_classes_stay_in_threads(calls):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, summary.FORK_MAX_CLASSES + 1))
    y = rng.integers(0, z.shape[1], 400)
    rd.set_jobs(2)
    try:
        relcal.evaluate(z, y)
    finally:
        rd.set_jobs(None)
    assert calls == []


def test_stream_pieces_in_processes_equal_threads(tmp_path: Path, calls):
    z, y = seg(n=9)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    stream = open_stream(
        tmp_path / "z.npy", labels=tmp_path / "y.npy", ignore_index=IGNORE
    )
    plan = plan_for("logits", z.shape[1], IGNORE)
    pieces = stream.pieces(rows=2)
    assert pieces is not None and len(pieces) == 5
    in_procs = reduce_chunks(pieces, plan, jobs=2)
    assert calls == [5]
    forked.set_enabled(False)
    try:
        threads = reduce_chunks(stream.pieces(rows=2), plan, jobs=2)
    finally:
        forked.set_enabled(True)
    serial = reduce_chunks(stream.chunks(rows=2), plan, jobs=1)
    for other in (threads, serial):
        assert other.n == in_procs.n and other.n_correct == in_procs.n_correct
        assert other.sum_nll == in_procs.sum_nll
        assert other.sum_brier == in_procs.sum_brier
        assert np.array_equal(other.table.sum_conf, in_procs.table.sum_conf)
        assert np.array_equal(other.classwise.sum_p, in_procs.classwise.sum_p)


def test_error_in_a_worker_is_the_serial_error(tmp_path: Path, calls):
    z, y = seg(n=9)
    z[7, 2, 5, 6] = np.nan
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    stream = open_stream(
        tmp_path / "z.npy", labels=tmp_path / "y.npy", ignore_index=IGNORE
    )
    plan = plan_for("logits", z.shape[1], IGNORE)
    with pytest.raises(InputError) as in_procs:
        reduce_chunks(stream.pieces(rows=1), plan, jobs=2)
    assert calls
    with pytest.raises(InputError) as serial:
        reduce_chunks(stream.chunks(rows=1), plan, jobs=1)
    assert str(in_procs.value) == str(serial.value)
    assert "NaN" in str(serial.value)


def test_all_ignored_in_processes(tmp_path: Path, calls):
    z, y = seg(n=5)
    y[:] = IGNORE
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    stream = open_stream(
        tmp_path / "z.npy", labels=tmp_path / "y.npy", ignore_index=IGNORE
    )
    plan = plan_for("logits", z.shape[1], IGNORE)
    with pytest.raises(InputError, match="ignore"):
        reduce_chunks(stream.pieces(rows=1), plan, jobs=2)
    assert calls


def _square(i: int) -> tuple[int, int]:
    return i * i, os.getpid()


def _die(i: int) -> int:
    if i == 3:
        os._exit(3)
    return i


def test_run_keeps_order_and_runs_in_children():
    from functools import partial

    tasks = [partial(_square, i) for i in range(20)]
    got = list(forked.run(tasks, 2))
    assert [v for v, _ in got] == [i * i for i in range(20)]
    assert os.getpid() not in {pid for _, pid in got}


def test_a_dead_worker_is_an_error_not_a_hang():
    from functools import partial

    with pytest.raises(RuntimeError, match="worker process"):
        list(forked.run([partial(_die, i) for i in range(8)], 2))


def test_no_fork_beside_a_foreign_thread():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="user-thread")
    t.start()
    try:
        assert not forked.usable(100, 2)
    finally:
        stop.set()
        t.join()
    assert forked.usable(100, 2)
    assert not forked.usable(100, 1)  # one job: no worker processes
    assert not forked.usable(forked.MIN_TASKS - 1, 2)


def test_own_idle_pool_is_stopped_not_a_reason_to_refuse(calls):
    rd.shared_pool(2).submit(int).result()  # relcal's pool threads exist
    assert any(t.name.startswith(forked.OWN_THREADS) for t in threading.enumerate())
    assert forked.usable(100, 2)
    z, y = seg()
    rd.set_jobs(2)
    try:
        relcal.evaluate(z, y, ignore_index=IGNORE)
    finally:
        rd.set_jobs(None)
    assert calls
    assert not any(t.name.startswith(forked.OWN_THREADS) for t in threading.enumerate())


def test_tune_malloc(monkeypatch: pytest.MonkeyPatch):
    if not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("not glibc")
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    assert forked.tune_malloc() is True
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert forked.tune_malloc() is False


@pytest.mark.parametrize(
    "command",
    [
        ["metrics", "--json"],
        ["metrics", "--json", "--binning", "mass"],
        [
            "check",
            "--json",
            "--confidence",
            "0.9",
            "--bootstrap",
            "200",
            "--max-ece",
            "0.5",
        ],
        [
            "check",
            "--json",
            "--confidence",
            "0.9",
            "--binning",
            "mass",
            "--max-ece",
            "0.5",
        ],
        ["report", "-o", "-", "--fit-temperature"],
    ],
    ids=["metrics", "metrics-mass", "check", "check-mass", "report"],
)
@pytest.mark.parametrize("in_parts", [False, True], ids=["2-images", "parts"])
def test_commands_in_processes_equal_threads(
    tmp_path, capsys, monkeypatch, calls, command, in_parts
):
    from relcal import stream
    from relcal.cli import main

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # report's time
    args = [*seg_files(tmp_path, monkeypatch, command[0]), *command[1:]]
    if in_parts:  # a piece an image, each 32 kB image read in 8 kB parts
        monkeypatch.setenv("RELCAL_CHUNK_ROWS", "1")
        monkeypatch.setattr(stream, "PART_BYTES", 1 << 13)
    outs = []
    for processes in (True, False):
        forked.set_enabled(processes)
        try:
            code = main(args)
        finally:
            forked.set_enabled(True)
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        outs.append(out)
        if processes:
            assert calls, "no worker process ran"
    assert outs[0] == outs[1]


def _kill_self(i: int) -> int:
    if i == 2:
        os.kill(os.getpid(), 9)
    return i


def test_a_killed_worker_says_so():
    from functools import partial

    with pytest.raises(forked.WorkerDied, match="killed by SIGKILL") as info:
        list(forked.run([partial(_kill_self, i) for i in range(8)], 2))
    assert "--jobs 1" in str(info.value)


def _fails_from(i: int) -> int:
    if i >= 3:
        raise InputError(f"task {i} failed")
    return i


def test_the_earliest_error_is_raised():
    from functools import partial

    for _ in range(3):  # whichever child fails first, task 3's error
        with pytest.raises(InputError, match="task 3 failed"):
            list(forked.run([partial(_fails_from, i) for i in range(12)], 2))


def test_no_fork_no_workers(monkeypatch):
    from functools import partial

    def refuse():
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", refuse)
    got = list(forked.run([partial(_square, i) for i in range(6)], 2))
    assert [v for v, _ in got] == [i * i for i in range(6)]
    assert {pid for _, pid in got} == {os.getpid()}  # ran here


def test_cli_one_line_when_a_worker_dies(tmp_path, capsys, monkeypatch, calls):
    from relcal.cli import main

    z, y = seg(n=9)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "1")
    piece = summary._piece_outputs

    def dies(pieces, k, plan):
        if k == 4:
            os.kill(os.getpid(), 9)
        return piece(pieces, k, plan)

    monkeypatch.setattr(summary, "_piece_outputs", dies)
    args = ["metrics", str(tmp_path / "z.npy"), "--labels", str(tmp_path / "y.npy")]
    code = main([*args, "--ignore-index", str(IGNORE), "--jobs", "2"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.startswith("Error: a worker process died") and err.count("\n") == 1
    assert "SIGKILL" in err


@pytest.mark.parametrize("order", ["C", "F"])
def test_pieces_of_a_2d_file_in_either_order(tmp_path: Path, calls, order):
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3000, 7))
    y = rng.integers(0, 7, 3000)
    np.save(tmp_path / "z.npy", np.asarray(z, order=order))
    np.save(tmp_path / "y.npy", y)
    stream = open_stream(tmp_path / "z.npy", labels=tmp_path / "y.npy")
    plan = plan_for("logits", 7)
    pieces = stream.pieces(rows=500)
    assert pieces is not None and len(pieces) == 6
    got = reduce_chunks(pieces, plan, jobs=2)
    assert calls == [6]
    want = reduce_chunks(stream.chunks(rows=500), plan, jobs=1)
    assert (got.n, got.n_correct, got.sum_nll) == (want.n, want.n_correct, want.sum_nll)
    assert np.array_equal(got.classwise.sum_p, want.classwise.sum_p)
    ev = relcal.evaluate(z, y)
    assert got.sum_brier / got.n == pytest.approx(ev.brier, rel=1e-12)


@pytest.mark.parametrize("cv", [None, "3"])
def test_fit_temperature_in_processes_equals_threads(
    tmp_path, capsys, monkeypatch, calls, cv
):
    from relcal.cli import main

    args = seg_files(tmp_path, monkeypatch, "fit-temperature")
    if cv is not None:
        args += ["--cv", cv]
    in_procs = _fitted(main, args, tmp_path, capsys, processes=True)
    assert len(calls) >= 3, calls  # every pass over the file
    assert in_procs == _fitted(main, args, tmp_path, capsys, processes=False)


def _fitted(main, args, tmp_path, capsys, *, processes: bool) -> dict:
    forked.set_enabled(processes)
    out = tmp_path / f"t{processes}.json"
    try:
        code = main([*args, "-o", str(out)])
    finally:
        forked.set_enabled(True)
    assert code == 0, capsys.readouterr().err
    return json.loads(out.read_text())


def _nap(i: int) -> int:
    import time

    time.sleep(0.05)
    return i


def _slow_digest() -> str:
    import time

    time.sleep(0.15)  # still at work while the next run's workers count
    return "digest"


def test_later_beside_a_run():
    """A side task's child shares no counter with the workers forked after
    it (its counter, freed too early, was handed to theirs: the workers then
    skipped tasks, 'a worker process ended before the work was done')."""
    import gc
    from functools import partial

    with forked.Later(_slow_digest, 2) as later:
        gc.collect()
        for _ in range(4):  # 0.3 s each: the side child finishes meanwhile
            got = list(forked.run([partial(_nap, i) for i in range(12)], 2))
            assert got == list(range(12))
        assert later.result() == "digest"
    assert later.result() == "digest"  # kept, not computed again


def test_later_without_workers_runs_here():
    with forked.Later(lambda: os.getpid(), 1) as later:  # one job: no child
        assert later.result() == os.getpid()


@pytest.fixture
def parted(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> list[int]:
    """Worker processes read each 32 kB image in parts of 8 kB (their blocks,
    with ``calls``' small blocks, 102 pixels)."""
    from relcal import stream

    monkeypatch.setattr(stream, "PART_BYTES", 1 << 13)
    return calls


def _piece(tmp_path: Path, z: np.ndarray, y: np.ndarray):
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    return open_stream(
        tmp_path / "z.npy", labels=tmp_path / "y.npy", ignore_index=IGNORE
    ).pieces(rows=1)


@pytest.mark.parametrize("n_bins", [15, 7])
def test_an_image_read_in_parts_is_the_whole_image_bit_for_bit(
    tmp_path: Path, parted, n_bins
):
    from functools import partial

    z, y = seg(n=3)
    y[1, :20] = IGNORE  # a part with every pixel ignored, one with none
    y[1, 20:] = np.where(y[1, 20:] == IGNORE, 0, y[1, 20:])
    pieces = _piece(tmp_path, z, y)
    plan = plan_for("logits", z.shape[1], IGNORE, n_bins=n_bins)
    split = pieces.parts(1, partial(rd.slab_pixels, plan=plan))
    assert split is not None
    labels, parts = split
    got_parts = [(s.shape[2], first) for s, _, _, first in parts]
    # 4 slabs of 102 pixels, the rest; image 1's pixels start at 1600
    assert got_parts == [(408, 1600), (408, 2008), (408, 2416), (376, 2824)]
    whole = pieces.read(1)
    assert np.array_equal(labels, whole[1])
    got, kept, _ = summary._piece_outputs(pieces, 1, plan)
    outs = [t() for t in summary._tasks(whole[0], whole[1], plan, whole[2])]
    want = summary.merged(outs)
    assert kept and got is not None and got.nbytes == want.nbytes
    assert got.summary.n == want.summary.n < 1600
    assert got.summary.sum_nll == want.summary.sum_nll
    assert got.summary.sum_brier == want.summary.sum_brier
    assert np.array_equal(got.summary.table.sum_conf, want.summary.table.sum_conf)
    assert np.array_equal(got.summary.classwise.sum_p, want.summary.classwise.sum_p)


def test_no_parts_for_small_images_and_scaled_parts(tmp_path: Path, calls):
    from functools import partial

    from relcal import stream

    z, y = seg(n=3)
    pieces = _piece(tmp_path, z, y)
    plan = plan_for("logits", z.shape[1], IGNORE)
    assert pieces.parts(0, partial(rd.slab_pixels, plan=plan)) is None  # 32 kB
    stream.PART_BYTES, saved = 1 << 13, stream.PART_BYTES
    seen = []

    def halved(s, y, start, first=None):
        seen.append(first)
        return s / 2, y, start

    try:
        split = pieces.mapped(halved).parts(2, partial(rd.slab_pixels, plan=plan))
        assert split is not None
        got = np.concatenate([s for s, *_ in split[1]], axis=2)
    finally:
        stream.PART_BYTES = saved
    assert seen == [3200, 3608, 4016, 4424]  # image 2's pixels start at 3200
    assert np.array_equal(got, z[2:3].reshape(1, 5, -1) / 2)


@pytest.mark.parametrize(
    "bad", ["nan", "label"], ids=["nan-in-a-part", "bad-label-in-a-part"]
)
def test_an_error_in_a_part_is_the_serial_error(tmp_path: Path, parted, bad):
    z, y = seg(n=4)
    if bad == "nan":
        z[2, 3, 30, 7] = np.nan  # pixel 1207: the third part
    else:
        y[2, 30, 7] = 9  # 5 classes
    pieces = _piece(tmp_path, z, y)
    plan = plan_for("logits", z.shape[1], IGNORE)
    with pytest.raises(InputError) as in_procs:
        reduce_chunks(pieces, plan, jobs=2)
    assert parted
    stream = open_stream(
        tmp_path / "z.npy", labels=tmp_path / "y.npy", ignore_index=IGNORE
    )
    with pytest.raises(InputError) as serial:
        reduce_chunks(stream.chunks(rows=1), plan, jobs=1)
    assert str(in_procs.value) == str(serial.value)
    assert ("NaN" if bad == "nan" else "9") in str(serial.value)
    assert "(2, 3, 30, 7)" in str(serial.value) or "(2, 30, 7)" in str(serial.value)


@pytest.mark.parametrize("cv", [None, "3"])
def test_fit_temperature_on_images_in_parts(tmp_path, capsys, monkeypatch, cv):
    """In parts (processes or threads alike), and to rounding as whole
    images give it (where the blocks differ).  (That worker processes run
    here is counted by test_fit_temperature_in_processes_equals_threads.)"""
    from relcal import stream
    from relcal.cli import main

    args = seg_files(tmp_path, monkeypatch, "fit-temperature")
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "1")
    if cv is not None:
        args += ["--cv", cv]
    whole = _fitted(main, args, tmp_path, capsys, processes=True)
    monkeypatch.setattr(stream, "PART_BYTES", 1 << 13)
    parted = _fitted(main, args, tmp_path, capsys, processes=True)
    assert parted == _fitted(main, args, tmp_path, capsys, processes=False)
    assert whole["temperature"] == pytest.approx(parted["temperature"], rel=1e-9)


def test_fit_temperature_error_in_a_part_is_the_serial_error(
    tmp_path, capsys, monkeypatch, parted
):
    from relcal.cli import main

    args = seg_files(tmp_path, monkeypatch, "fit-temperature")
    z = np.load(tmp_path / "z.npy")
    z[4, 1, 33, 2] = np.inf  # in image 4's last part
    np.save(tmp_path / "z.npy", z)
    monkeypatch.setenv("RELCAL_CHUNK_ROWS", "1")
    errs = []
    for processes in (True, False):
        forked.set_enabled(processes)
        try:
            code = main([*args, "-o", str(tmp_path / "t.json")])
        finally:
            forked.set_enabled(True)
        assert code == 2
        errs.append(capsys.readouterr().err)
    assert errs[0] == errs[1]
    assert "(4, 1, 33, 2)" in errs[0], errs[0]
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("seed", range(20))
def test_parts_equal_the_whole_image_on_random_inputs(tmp_path, monkeypatch, seed):
    """Seeded shapes, dtypes, ignored pixels, kinds, bins and part sizes: an
    image's summary read in parts is the whole image's, bit for bit."""
    from functools import partial

    from relcal import stream

    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 9))
    spatial = tuple(int(s) for s in rng.integers(3, 40, int(rng.integers(1, 3))))
    dtype = rng.choice(["<f4", "<f8", "<f2", "<i2"])
    probs = bool(rng.integers(2)) and dtype != "<i2"
    z = rng.standard_normal((n, c, *spatial)) * 3
    if probs:
        z = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, c, (n, *spatial)).astype(np.uint8)
    y[rng.random(y.shape) < rng.choice([0.0, 0.05, 0.9])] = IGNORE
    np.save(tmp_path / "z.npy", z.astype(dtype))
    np.save(tmp_path / "y.npy", y)
    monkeypatch.setattr(rd, "CHUNK_BYTES", int(rng.choice([1 << 10, 1 << 12])))
    monkeypatch.setattr(stream, "PART_BYTES", int(rng.choice([64, 300, 1 << 10])))
    s = open_stream(tmp_path / "z.npy", labels=tmp_path / "y.npy", ignore_index=IGNORE)
    plan = plan_for(
        s.meta.kind, c, IGNORE, n_bins=int(rng.integers(1, 20)), nll=not probs
    )
    pieces = s.pieces(rows=1)
    for k in range(n):
        if pieces.parts(k, partial(rd.slab_pixels, plan=plan)) is None:
            continue  # an image of at most PART_BYTES, or every pixel a part
        try:
            got, kept, _ = summary._piece_outputs(pieces, k, plan)
        except InputError:  # every label of the image ignored: no summary
            continue
        whole = pieces.read(k)
        outs = [t() for t in summary._tasks(whole[0], whole[1], plan, whole[2])]
        if got is None:
            assert not outs
            continue
        want = summary.merged(outs).summary
        assert got.summary.n == want.n and got.summary.n_correct == want.n_correct
        assert got.summary.sum_nll == want.sum_nll
        assert got.summary.sum_brier == want.sum_brier
        assert got.summary.sum_confidence == want.sum_confidence
        assert np.array_equal(got.summary.table.count, want.table.count)
        assert np.array_equal(got.summary.table.sum_conf, want.table.sum_conf)
        assert np.array_equal(got.summary.classwise.sum_p, want.classwise.sum_p)
        assert np.array_equal(got.summary.classwise.sum_y, want.classwise.sum_y)
