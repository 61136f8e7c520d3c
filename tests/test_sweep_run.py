"""Running sweeps: cache, resume after interruption, executors agree, errors recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import npusim.sweep
from npusim.sweep import PointCache, run_sweep
from npusim.sweep.run import plan
from npusim.sweep.spec import sweep_from_data

ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "name": "tiny3",
    "layers": [
        {"op": "matmul", "name": "fc1", "m": 32, "n": 64, "k": 128, "b_kind": "weight"},
        {"op": "elementwise", "name": "act", "elements": 2048, "function": "relu"},
        {"op": "matmul", "name": "fc2", "m": 32, "n": 32, "k": 64, "b_kind": "weight"},
    ],
}


def spec_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "base": "tpu_v1",
        "set": {"dram.bandwidth": None, "dram.channels": None, "cores.core.accumulator": None},
        "workloads": [{"inline": TINY}, {"inline": {**TINY, "name": "tiny3b"}, "batch": 2}],
        "axes": {
            "cores.core.systolic.rows": {"values": [16, 32], "name": "rows", "group": "a"},
            "cores.core.systolic.cols": {"values": [16, 32], "name": "cols", "group": "a"},
            # 6 KiB cannot hold a 32x32 array's double-buffered tile: an invalid point
            "cores.core.sram.size": {"values": ["6 KiB", "1 MiB"], "name": "sram"},
            "dram.standard": {"values": ["LPDDR5-6400", "HBM3-6400"], "name": "dram"},
        },
    }
    data.update(extra)
    return data


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """The uninterrupted table, computed in this process without a cache."""
    return run_sweep(sweep_from_data(spec_data(), root=ROOT), workers=0, cache_dir=None,
                     progress=False)


def test_table_layout_and_invalid_points(reference: pd.DataFrame) -> None:
    df = reference
    assert len(df) == 8 * 2
    assert list(df.columns[:6]) == ["point", "workload", "rows", "cols", "sram", "dram"]
    for col in ("latency_s", "throughput", "energy_j", "average_power_w", "utilization",
                "dram_read_bytes", "dram_write_bytes", "dram_bytes", "area_mm2",
                "perf_per_mm2", "perf_per_w", "status", "error", "key"):
        assert col in df.columns
    bad = df[(df["rows"] == 32) & (df["sram"] == 6 * 1024)]
    assert len(bad) == 4 and (bad["status"] == "error").all()
    assert bad["error"].str.contains("cores.core.sram.size").all()
    assert bad["latency_s"].isna().all()
    good = df[df["status"] == "ok"]
    assert len(good) == 12 and good["error"].isna().all()
    assert (good["latency_s"] > 0).all() and (good["area_mm2"] > 0).all()
    # batch 2 of the same layers takes longer than batch 1
    a = good[good["workload"] == "tiny3"]["latency_s"].to_numpy()
    b = good[good["workload"] == "tiny3b"]["latency_s"].to_numpy()
    assert (b > a).all()
    assert df.attrs["sweep"]["errors"] == 4


def test_second_run_computes_nothing(tmp_path: Path, reference: pd.DataFrame) -> None:
    s = sweep_from_data(spec_data(), root=ROOT)
    first = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    assert first.attrs["sweep"]["computed"] == 12
    second = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    assert second.attrs["sweep"]["computed"] == 0
    assert second.attrs["sweep"]["cached"] == 12
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, reference)
    # an overlapping sweep (one more DRAM standard) computes only its new points
    more = spec_data()
    more["axes"]["dram.standard"]["values"].append("GDDR6-16000")
    third = run_sweep(sweep_from_data(more, root=ROOT), workers=0, cache_dir=tmp_path,
                      progress=False)
    assert third.attrs["sweep"]["computed"] == 6
    assert third.attrs["sweep"]["cached"] == 12


def test_resume_after_a_partial_run(tmp_path: Path, reference: pd.DataFrame) -> None:
    s = sweep_from_data(spec_data(), root=ROOT)
    part = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False, limit=5)
    assert (part["status"] == "pending").sum() > 0
    rest = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    assert rest.attrs["sweep"]["computed"] == 12 - 5
    pd.testing.assert_frame_equal(rest, reference)


def test_resume_after_an_exception_in_the_middle(tmp_path: Path, reference: pd.DataFrame,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import npusim.sweep.execute as run_mod

    real = run_mod.run_task
    calls = {"n": 0}

    def flaky(task: Any, wl: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(task, wl)

    s = sweep_from_data(spec_data(), root=ROOT)
    monkeypatch.setattr(run_mod, "run_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(run_mod, "run_task", real)
    assert len(PointCache(tmp_path)) == 3
    rest = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    assert rest.attrs["sweep"]["computed"] == 9
    pd.testing.assert_frame_equal(rest, reference)


_KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import npusim.sweep.execute as exec_mod
import npusim.sweep.run as run_mod
from npusim.sweep.spec import sweep_from_data
real = exec_mod.run_task
def slow(task, wl):
    out = real(task, wl)
    time.sleep(0.4)
    return out
exec_mod.run_task = slow
spec = {spec!r}
run_mod.run_sweep(sweep_from_data(spec, root={root!r}), workers=0, cache_dir={cache!r},
                  progress=False)
"""


def test_sigkill_mid_sweep_then_resume(tmp_path: Path, reference: pd.DataFrame) -> None:
    cache = tmp_path / "cache"
    script = textwrap.dedent(_KILL_SCRIPT).format(root=str(ROOT), spec=spec_data(),
                                                  cache=str(cache))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # generous: a loaded machine is slow to start
        while len(PointCache(cache)) < 3 and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"sweep subprocess ended early: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = len(PointCache(cache))
    assert 3 <= done < 12
    c = PointCache(cache)
    for key in c.keys():  # noqa: SIM118 - keys() lists entries; PointCache is not a dict
        assert json.loads(c.path(key).read_text())["status"] == "ok"
        assert c.get_layers(key) is not None
    rest = run_sweep(sweep_from_data(spec_data(), root=ROOT), workers=0, cache_dir=cache,
                     progress=False)
    assert rest.attrs["sweep"]["computed"] == 12 - done
    pd.testing.assert_frame_equal(rest, reference)


def test_local_processes_and_dask_give_the_same_table(reference: pd.DataFrame) -> None:
    from dask.distributed import Client, LocalCluster

    s = sweep_from_data(spec_data(), root=ROOT)
    local = run_sweep(s, workers=2, cache_dir=None, progress=False)
    pd.testing.assert_frame_equal(local, reference)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        distributed = npusim.sweep(s, client=client, cache_dir=None, progress=False)
        by_address = run_sweep(s, scheduler=cluster.scheduler_address, cache_dir=None,
                               progress=False)
    pd.testing.assert_frame_equal(distributed, reference)
    pd.testing.assert_frame_equal(by_address, reference)


def test_errors_of_runs_are_recorded_and_cached(tmp_path: Path) -> None:
    data = spec_data()
    data["workloads"] = [{"inline": TINY},
                         {"builtin": "bert_base", "options": {"no_such_option": 1}}]
    # int4 only: the int8 layers cannot be mapped onto the array -> a run-time error
    data["axes"]["cores.core.systolic.macs_per_cycle"] = {
        "values": [{"int8": 1}, {"int4": 1}], "name": "rates", "group": "p"}
    data["axes"]["default_precision"] = {"values": ["int8", "int4"], "group": "p"}
    data["axes"]["cores.core.sram.size"]["values"] = ["1 MiB"]
    data["axes"]["dram.standard"]["values"] = ["HBM3-6400"]
    s = sweep_from_data(data, root=ROOT)
    df = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    assert len(df) == 2 * 2 * 2
    wl_err = df[df["workload"] == "bert_base"]
    assert (wl_err["status"] == "error").all()
    assert wl_err["error"].str.contains("invalid workload").all()
    tiny = df[df["workload"] == "tiny3"]
    good = tiny[tiny["rates"] == '{"int8": 1.0}']
    assert len(good) == 2 and (good["status"] == "ok").all()
    bad = tiny[tiny["rates"] == '{"int4": 1.0}']
    assert len(bad) == 2 and (bad["status"] == "error").all()
    assert bad["error"].str.startswith("MappingError").all()
    entry = PointCache(tmp_path).get(bad["key"].iloc[0])
    assert entry is not None and entry["status"] == "error"
    again = run_sweep(s, workers=0, cache_dir=tmp_path, progress=False)
    assert again.attrs["sweep"]["computed"] == 0
    pd.testing.assert_frame_equal(df, again)


def test_plan_dedupes_identical_runs() -> None:
    data = spec_data()
    # two axis values that make the same chip: one task for both points
    data["axes"] = {"cores.core.sram.size": {"values": ["1 MiB", "1024 KiB"], "name": "sram"}}
    p = plan(sweep_from_data(data, root=ROOT))
    assert len(p.runs) == 4 and len(p.tasks) == 2


def test_dask_retries_the_runs_of_a_crashed_worker(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dask.distributed import Client, LocalCluster
    from naive_sweep import CrashOnceWorkload

    from npusim.sweep.execute import _execute_dask, run_task

    data = spec_data()
    data["workloads"] = [{"inline": TINY}]
    p = plan(sweep_from_data(data, root=ROOT))
    marker = tmp_path / "crashed"
    wls = {wid: CrashOnceWorkload(wl, str(marker), os.getpid())
           for wid, wl in p.workloads.items()}
    tasks = list(p.tasks.values())
    want = {t.key: run_task(t, p.workloads[t.workload_id]) for t in tasks}
    got: dict[str, Any] = {}
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        _execute_dask(tasks, wls, client, lambda t, out: got.__setitem__(t.key, out))
    assert marker.exists()  # a worker did die
    assert got == want  # and every run still finished, with the same result
