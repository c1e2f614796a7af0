"""relcal.dask: the same summaries computed on a Dask cluster's workers.

One ``LocalCluster`` (2 worker processes, 1 thread each) serves the module.
Every result computed on it equals the in-memory result to 1e-12 relative.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relcal
from relcal.metrics import METRIC_NAMES

distributed = pytest.importorskip(
    "distributed", reason="dask is not installed: pip install 'relcal[dask]'"
)
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import relcal.dask as rd  # noqa: E402
from relcal.cli import cli  # noqa: E402

REL = 1e-12


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 16 kB: the small arrays here make several blocks."""
    monkeypatch.setattr(rd, "BLOCK_BYTES", 16 << 10)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-300)


def assert_same(a: relcal.Results, b: relcal.Results) -> None:
    for name in METRIC_NAMES:
        assert close(a.metric(name), b.metric(name)), name
    assert (a.n, a.n_classes, a.kind) == (b.n, b.n_classes, b.kind)
    for ta, tb in ((a.table, b.table), (a.positive_table, b.positive_table)):
        if ta is None:
            assert tb is None
            continue
        # edges to 1e-12, not bit for bit: a full CI run once gave equal-mass
        # edges a few ulp apart on the cluster (under investigation, see #13 note)
        np.testing.assert_allclose(tb.edges, ta.edges, rtol=REL, atol=0)
        assert np.array_equal(ta.count, tb.count)
        np.testing.assert_allclose(tb.correct, ta.correct, rtol=REL)
        np.testing.assert_allclose(tb.mean_conf, ta.mean_conf, rtol=REL)
    if a.classwise_per_class is not None:
        np.testing.assert_allclose(
            b.classwise_per_class, a.classwise_per_class, rtol=REL, atol=1e-300
        )


def cases(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    n = 3000
    logits = (rng.normal(size=(n, 10)) * 3).astype(np.float32)
    labels = rng.integers(0, 10, n)
    probs = rng.dirichlet(np.full(5, 0.3), size=n)
    p1 = rng.random(n)
    seg = (rng.normal(size=(6, 4, 20, 24)) * 2).astype(np.float32)
    seg_y = rng.integers(0, 4, size=(6, 20, 24)).astype(np.uint8)
    seg_y[rng.random(seg_y.shape) < 0.05] = 255
    return {
        "multiclass logits": (logits, labels, {}),
        "probs": (probs, rng.integers(0, 5, n), {}),
        "binary P(1)": (p1, (rng.random(n) < p1).astype(np.int64), {}),
        "binary logits": (logits[:, :2], labels % 2, {"kind": "logits"}),
        "segmentation, ignore label": (seg, seg_y, {"ignore_index": 255}),
    }


CASES = list(cases(np.random.default_rng(0)))


@pytest.mark.parametrize("binning", ["width", "mass"])
@pytest.mark.parametrize("case", CASES)
def test_evaluate_of_dask_arrays_equals_in_memory(client, case, binning) -> None:
    scores, labels, opts = cases(np.random.default_rng(0))[case]
    want = relcal.evaluate(scores, labels, binning=binning, **opts)
    # scores and labels chunked differently, and not on the leading axis only
    ds = da.from_array(scores, chunks=(max(1, len(scores) // 9), *scores.shape[1:]))
    if scores.ndim > 1:
        ds = ds.rechunk({1: 2})
    dy = da.from_array(labels, chunks=(max(1, len(labels) // 4), *labels.shape[1:]))
    got = relcal.evaluate(ds, dy, binning=binning, **opts)
    assert_same(want, got)


def test_the_blocks_are_reduced_on_the_workers(client) -> None:
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(4000, 6)), rng.integers(0, 6, 4000)
    with distributed.get_task_stream(client) as stream:
        relcal.evaluate(da.from_array(z, chunks=500), da.from_array(y, chunks=500))
    ran = [t for t in stream.data if "_reduce_task" in str(t["key"])]
    assert len(ran) == 8  # chunks of 500 rows (24 kB) are kept
    assert len({t["worker"] for t in ran}) == 2


def test_the_metric_functions_take_dask_arrays(client) -> None:
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(2000, 2)) * 2, rng.integers(0, 2, 2000)
    dz, dy = da.from_array(z, chunks=300), da.from_array(y, chunks=300)
    for f in (
        relcal.ece,
        relcal.mce,
        relcal.rms_calibration_error,
        relcal.accuracy,
        relcal.nll,
        relcal.brier_score,
        relcal.classwise_ece,
        relcal.positive_class_ece,
    ):
        assert close(f(z, y), f(dz, dy)), f.__name__
    want, got = relcal.reliability_table(z, y), relcal.reliability_table(dz, y)
    assert np.array_equal(want.count, got.count)
    np.testing.assert_allclose(got.mean_conf, want.mean_conf, rtol=REL)


def test_dask_series_as_scores_and_labels(client) -> None:
    import pandas as pd

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"p": rng.random(999), "label": rng.integers(0, 2, 999)})
    ddf = dd.from_pandas(df, npartitions=4)
    want = relcal.evaluate(df["p"].to_numpy(), df["label"].to_numpy())
    assert_same(want, relcal.evaluate(ddf["p"], ddf["label"]))


def error_of(f, *args, **kwargs) -> str:
    with pytest.raises(relcal.RelcalError) as err:
        f(*args, **kwargs)
    return str(err.value)


def test_errors_are_those_of_the_in_memory_path(client) -> None:
    rng = np.random.default_rng(4)
    z, y = rng.normal(size=(1000, 3)), rng.integers(0, 3, 1000)
    bad_y = y.copy()
    bad_y[[700, 950]] = 7  # both in late blocks: counts and first position whole
    nan_z = z.copy()
    nan_z[612, 1] = np.nan
    rows = rng.random((1000, 3))  # in [0, 1], rows not summing to 1
    for scores, labels, opts in (
        (z, bad_y, {}),
        (z, np.full(1000, 255), {"ignore_index": 255}),
        (nan_z, y, {}),
        (rows, y, {}),
        (rows, y, {"kind": "probs"}),
        (z[:999], y, {}),
    ):
        want = error_of(relcal.evaluate, scores, labels, **opts)
        dz = da.from_array(scores, chunks=128)
        assert error_of(relcal.evaluate, dz, labels, **opts) == want


def test_read_npy_reads_on_the_workers_and_pickles_no_data(client, tmp_path) -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=(5000, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    x = rd.read_npy(str(tmp_path / "z.npy"), rows=1000)
    assert x.chunks == ((1000,) * 5, (8,))
    assert len(pickle.dumps(x)) < z.nbytes // 10
    y = rng.integers(0, 8, 5000)
    assert_same(relcal.evaluate(z, y), relcal.evaluate(x, y))
    # a 2-D .npy in Fortran order: read a column at a time, same rows
    np.save(tmp_path / "f.npy", np.asfortranarray(z))
    f = rd.read_npy(str(tmp_path / "f.npy"), rows=700)
    assert np.array_equal(f[1234:4321].compute(), z[1234:4321])


# --------------------------------------------------------------------------
# the command line


def invoke(args: list[str]) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def numbers_close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(numbers_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(numbers_close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return close(a, b)
    return a == b


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_cli_npy_pair_on_the_cluster(client, tmp_path, binning) -> None:
    scores, labels, _ = cases(np.random.default_rng(6))["segmentation, ignore label"]
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", labels)
    args = ["metrics", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")]
    args += ["--ignore-index", "255", "--binning", binning, "--json"]
    code, want, _ = invoke(args)
    assert code == 0
    code, got, err = invoke([*args, "--dask-scheduler", client.scheduler.address])
    assert code == 0 and err == ""
    assert numbers_close(json.loads(want), json.loads(got))


def test_cli_parquet_directory_on_the_cluster(client, tmp_path) -> None:
    import pandas as pd

    rng = np.random.default_rng(7)
    frames = []
    (tmp_path / "tab").mkdir()
    for i in range(3):
        p = rng.dirichlet(np.ones(3), size=400)
        df = pd.DataFrame({f"p_{c}": p[:, k] for k, c in enumerate("abc")})
        df["label"] = rng.integers(0, 3, 400)
        df.to_parquet(tmp_path / "tab" / f"part{i}.parquet")
        frames.append(df)
    pd.concat(frames, ignore_index=True).to_parquet(tmp_path / "all.parquet")
    code, want, _ = invoke(["metrics", str(tmp_path / "all.parquet"), "--json"])
    assert code == 0
    args = ["metrics", str(tmp_path / "tab"), "--json"]
    code, got, err = invoke([*args, "--dask-scheduler", client.scheduler.address])
    assert code == 0 and err == ""
    want_doc, got_doc = json.loads(want), json.loads(got)
    assert numbers_close(want_doc["metrics"], got_doc["metrics"])
    assert numbers_close(want_doc["bins"], got_doc["bins"])
    assert got_doc["input"]["class_names"] == ["a", "b", "c"]
    assert got_doc["input"]["shape"] == [1200, 3]


def test_cli_labels_error_is_the_whole_files(client, tmp_path) -> None:
    rng = np.random.default_rng(8)
    np.save(tmp_path / "s.npy", rng.normal(size=(300, 3)))
    y = rng.integers(0, 3, 300)
    y[250] = 9
    np.save(tmp_path / "y.npy", y)
    args = ["metrics", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")]
    code, _, want = invoke(args)
    assert code == 2 and "first: 9 at row 250" in want
    got = invoke([*args, "--dask-scheduler", client.scheduler.address])
    assert got == (2, "", want)


def test_cli_unreachable_scheduler(tmp_path, monkeypatch) -> None:
    np.save(tmp_path / "s.npy", np.zeros((4, 2)))
    np.save(tmp_path / "y.npy", np.zeros(4, dtype=int))
    monkeypatch.setattr(rd, "CONNECT_TIMEOUT", 0.5)
    args = ["metrics", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")]
    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens
    code, out, err = invoke([*args, "--dask-scheduler", address])
    assert (code, out) == (2, "")
    assert err.startswith(
        f"Error: cannot reach the Dask scheduler at '{address}' within 0.5 s ("
    )
    assert err.count("\n") == 1


def test_cli_without_dask_names_the_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.array", None)
    args = ["metrics", "p.npy", "--labels", "y.npy", "--dask-scheduler", "tcp://x:1"]
    assert invoke(args) == (
        2,
        "",
        "Error: this needs dask: pip install 'relcal[dask]'\n",
    )


def test_cli_refuses_an_npz_on_the_cluster(client, tmp_path) -> None:
    path = tmp_path / "p.npz"
    np.savez(path, logits=np.zeros((4, 2)), labels=np.zeros(4, dtype=int))
    code, out, err = invoke(
        ["metrics", str(path), "--dask-scheduler", client.scheduler.address]
    )
    assert (code, out) == (2, "")
    assert err == (
        f"Error: {path}: --dask-scheduler reads .npy pairs and .parquet files;"
        " save the arrays of an .npz with np.save (the workers read their rows)\n"
    )


STARTS = """
import sys
import relcal, relcal.cli
relcal.evaluate([[1.0, 0.0]], [0])
code = relcal.cli.main(["metrics", sys.argv[1]])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
print(code, loaded)
"""


def test_relcal_starts_without_dask(tmp_path) -> None:
    """``import relcal``, a metric of arrays and ``relcal metrics`` of a
    small file import neither dask nor distributed."""
    path = tmp_path / "p.npz"
    np.savez(path, logits=np.eye(3), labels=np.arange(3))
    env = {**os.environ, "PYTHONPATH": str(Path(relcal.__file__).parents[1])}
    out = subprocess.check_output(
        [sys.executable, "-c", STARTS, str(path)], env=env, text=True
    )
    assert out.splitlines()[-1] == "0 []"


def parquet_parts(tmp_path: Path, hole: bool) -> Path:
    import pandas as pd

    rng = np.random.default_rng(9)
    (tmp_path / "tab").mkdir()
    for i in range(2):
        p = rng.dirichlet(np.ones(3), size=100)
        df = pd.DataFrame({f"p_{c}": p[:, k] for k, c in enumerate("abc")})
        df["label"] = rng.integers(0, 3, 100).astype(float)
        if hole and i == 1:
            df.loc[57, "p_b"] = np.nan
        df.to_parquet(tmp_path / "tab" / f"part{i}.parquet")
    return tmp_path / "tab"


@pytest.mark.parametrize(
    "extra", [[], ["--missing", "drop"], ["--score-cols", "p_a,p_x"]]
)
def test_cli_parquet_errors_and_drops_as_without_dask(client, tmp_path, extra) -> None:
    args = ["metrics", str(parquet_parts(tmp_path, hole=True)), *extra]
    want = invoke(args)
    got = invoke([*args, "--dask-scheduler", client.scheduler.address])
    assert got == want
    assert want[0] == (0 if extra == ["--missing", "drop"] else 2)


def test_cli_file_gone_before_the_workers_read_it(client, tmp_path, monkeypatch):
    rng = np.random.default_rng(10)
    np.save(tmp_path / "s.npy", rng.normal(size=(100, 3)))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 100))
    opened = rd._npy_dataset

    def then_removed(stream, options):
        data = opened(stream, options)
        (tmp_path / "s.npy").unlink()
        return data

    monkeypatch.setattr(rd, "_npy_dataset", then_removed)
    args = ["metrics", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")]
    got = invoke([*args, "--dask-scheduler", client.scheduler.address])
    assert got == (
        2,
        "",
        f"Error: {tmp_path / 's.npy'}: no such file (it was there when relcal"
        " started reading)\n",
    )
