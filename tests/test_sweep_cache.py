"""The point cache: what is in the key, what is trusted on read, and claims between sweeps."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import npusim._version
from npusim.sweep import PointCache, layers_of, run_sweep
from npusim.sweep.cache import FOREIGN_CLAIM_STALE_S, entry_problem
from npusim.sweep.run import Task, plan
from npusim.sweep.spec import sweep_from_data

ROOT = Path(__file__).resolve().parent.parent
TINY = {"name": "tiny2", "layers": [
    {"op": "matmul", "name": "fc1", "m": 32, "n": 64, "k": 128, "b_kind": "weight"},
    {"op": "elementwise", "name": "act", "elements": 2048, "function": "relu"}]}


def one_point(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t", "base": "tpu_v1",
        "set": {"dram.bandwidth": None, "dram.channels": None, "cores.core.accumulator": None,
                "cores.core.systolic.rows": 16, "cores.core.systolic.cols": 16},
        "workloads": [{"inline": TINY}],
    }
    for k, v in extra.items():
        if k == "set":
            data["set"] = {**data["set"], **v}
        else:
            data[k] = v
    return data


def key_of(data: dict[str, Any]) -> str:
    (task,) = plan(sweep_from_data(data, root=ROOT)).tasks.values()
    return task.key


# -- what the key holds -------------------------------------------------------------------

#: one change per input that can change a result, and the Task field it reaches
CHANGES: dict[str, tuple[dict[str, Any], str]] = {
    "memory model": ({"memory": "cycle"}, "memory"),
    "weights resident": ({"weights_resident": "no"}, "weights_resident"),
    "a chip field": ({"set": {"clock": "1.5 GHz"}}, "chip"),
    "a nested chip field": ({"set": {"cores.core.sram.size": "2 MiB"}}, "chip"),
    "the DRAM standard": ({"set": {"dram.standard": "HBM3-6400"}}, "chip"),
    "the workload's batch": ({"workloads": [{"inline": TINY, "batch": 2}]}, "workload_id"),
    "the workload's layers": ({"workloads": [{"inline": {**TINY, "layers": TINY["layers"][:1]}}]},
                              "workload_id"),
}
#: changes that do not change a result, so must not change the key
SAME: dict[str, dict[str, Any]] = {
    "sweep name": {"name": "other"},
    "chip name": {"set": {"name": "renamed chip"}},
    "workload label": {"workloads": [{"inline": TINY, "label": "x"}]},
    "objectives": {"objectives": ["energy_j"]},
}


def test_every_input_that_changes_a_result_changes_the_key() -> None:
    base = key_of(one_point())
    keys = {what: key_of(one_point(**change)) for what, (change, _) in CHANGES.items()}
    for what, key in keys.items():
        assert key != base, f"{what} is not part of the cache key"
    assert len(set(keys.values())) == len(keys)
    for what, change in SAME.items():
        assert key_of(one_point(**change)) == base, f"{what} changed the key"


def test_the_key_covers_every_field_a_run_is_made_from() -> None:
    # A Task is everything a worker simulates from; a field added to it must get a line in
    # CHANGES (system and plan are covered by the system sweep's key tests).
    run_inputs = {f.name for f in dataclasses.fields(Task)} - {"key", "system", "plan"}
    assert run_inputs == {field for _, field in CHANGES.values()}


def test_the_simulator_version_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    base = key_of(one_point())
    monkeypatch.setattr(npusim._version, "model_version", lambda: "another model")
    assert key_of(one_point()) != base


# -- entries are checked on read ----------------------------------------------------------

@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return run_sweep(sweep_from_data(one_point(), root=ROOT), workers=0, cache_dir=None,
                     progress=False)


def _sweep(cache: Path) -> pd.DataFrame:
    return run_sweep(sweep_from_data(one_point(), root=ROOT), workers=0, cache_dir=cache,
                     progress=False)


def _edit(entry: dict[str, Any], how: str) -> None:
    m = entry["metrics"]
    if how == "latency -1":
        m["latency_s"] = -1.0
    elif how == "latency 0":
        m["latency_s"] = 0.0
    elif how == "energy NaN":
        m["energy_j"] = math.nan
    elif how == "energy inf":
        m["energy_j"] = math.inf
    elif how == "missing energy":
        del m["energy_j"]
    elif how == "latency as text":
        m["latency_s"] = "fast"
    elif how == "latency as bool":
        m["latency_s"] = True
    elif how == "metrics a list":
        entry["metrics"] = [1, 2]
    elif how == "unknown status":
        entry["status"] = "maybe"
    elif how == "another key":
        entry["key"] = "0" * 64
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["latency -1", "latency 0", "energy NaN", "energy inf",
                                 "missing energy", "latency as text", "latency as bool",
                                 "metrics a list", "unknown status", "another key"])
def test_a_hand_edited_entry_is_not_trusted(tmp_path: Path, truth: pd.DataFrame,
                                            how: str) -> None:
    first = _sweep(tmp_path)
    key = first["key"].iloc[0]
    path = PointCache(tmp_path).path(key)
    entry = json.loads(path.read_text())
    _edit(entry, how)
    path.write_text(json.dumps(entry, allow_nan=True))
    with pytest.warns(UserWarning, match=rf"cache entry {path}: .*not trusted, recomputed"):
        again = _sweep(tmp_path)
    assert again.attrs["sweep"]["computed"] == 1
    assert again["latency_s"].iloc[0] == truth["latency_s"].iloc[0] > 0
    assert again["energy_j"].iloc[0] == truth["energy_j"].iloc[0] > 0
    assert entry_problem(json.loads(path.read_text()), key) is None  # the entry was rewritten


def test_entry_problem_accepts_what_a_run_writes(tmp_path: Path) -> None:
    df = _sweep(tmp_path)
    key = df["key"].iloc[0]
    assert entry_problem(json.loads(PointCache(tmp_path).path(key).read_text()), key) is None


@pytest.mark.parametrize("damage", ["truncate", "delete", "garbage"])
def test_a_damaged_layers_file_is_recomputed(tmp_path: Path, damage: str) -> None:
    first = _sweep(tmp_path)
    want = layers_of(first.iloc[0], tmp_path)
    lp = PointCache(tmp_path).layers_path(first["key"].iloc[0])
    text = lp.read_text()
    if damage == "truncate":
        lp.write_text(text[:len(text) // 2])
    elif damage == "delete":
        lp.unlink()
    else:  # same length, not JSON: the size matches, the layers reader refuses it
        lp.write_text("x" * len(text))
    if damage != "garbage":
        with pytest.warns(UserWarning, match="per-layer file"):
            again = _sweep(tmp_path)
        assert again.attrs["sweep"]["computed"] == 1
        pd.testing.assert_frame_equal(layers_of(again.iloc[0], tmp_path), want)
    else:
        with pytest.raises(Exception, match="no cached per-layer result"):
            layers_of(first.iloc[0], tmp_path)


# -- claims ---------------------------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _write_claim(cache: PointCache, key: str, pid: int, host: str | None = None) -> Path:
    """A claim as another sweep with ``pid`` writes it (without its start time: unknown)."""
    path = cache.claim_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host or cache._host, "pid": pid}))
    return path


def test_claims_live_stale_and_foreign(tmp_path: Path) -> None:
    c = PointCache(tmp_path)
    key = "ab" + "0" * 62
    assert c.claim(key) and c.claim(key)  # free, then already ours
    c.release(key)
    assert not c.claim_path(key).exists()
    with subprocess.Popen(["sleep", "30"]) as live:
        try:
            _write_claim(c, key, live.pid)
            assert not c.claim(key)
            c.release(key)  # not ours: left alone
            assert c.claim_path(key).exists()
        finally:
            live.kill()
    _write_claim(c, key, _dead_pid())
    assert c.claim(key)  # the dead sweep's claim is taken over
    with subprocess.Popen(["sleep", "30"]) as reused:
        try:  # a live process under the claimer's pid, started at another time
            path = _write_claim(c, key, reused.pid)
            claim = json.loads(path.read_text())
            path.write_text(json.dumps({**claim, "started": 1}))
            assert c.claim(key)
        finally:
            reused.kill()
    path = _write_claim(c, key, 1, host="elsewhere")
    assert not c.claim(key)  # another host's pid cannot be checked: live while fresh
    old = time.time() - FOREIGN_CLAIM_STALE_S - 60
    os.utime(path, (old, old))
    assert c.claim(key)


def test_a_stale_claim_from_a_killed_sweep_is_taken_over(tmp_path: Path,
                                                          truth: pd.DataFrame) -> None:
    key = truth["key"].iloc[0]
    cache = PointCache(tmp_path)
    _write_claim(cache, key, _dead_pid())
    df = _sweep(tmp_path)
    assert df.attrs["sweep"]["computed"] == 1
    assert df["latency_s"].iloc[0] == truth["latency_s"].iloc[0]
    assert not cache.claim_path(key).exists()


def test_a_second_sweep_waits_for_the_first_and_computes_nothing(
        tmp_path: Path, truth: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    import npusim.sweep.execute as exec_mod
    import npusim.sweep.run as run_mod

    monkeypatch.setattr(run_mod, "CLAIM_POLL_S", 0.05)
    computed: list[str] = []
    real = exec_mod.run_task
    monkeypatch.setattr(exec_mod, "run_task",
                        lambda t, wl: computed.append(t.key) or real(t, wl))
    key = truth["key"].iloc[0]
    done_elsewhere = tmp_path / "elsewhere"
    _sweep(done_elsewhere)  # the first sweep's result, computed in another cache
    computed.clear()
    cache = PointCache(tmp_path)
    with subprocess.Popen(["sleep", "60"]) as first_sweep:
        try:
            _write_claim(cache, key, first_sweep.pid)  # the first sweep is computing it

            def finish() -> None:  # … and writes its entry a little later
                time.sleep(0.3)
                src = PointCache(done_elsewhere)
                cache.path(key).parent.mkdir(parents=True, exist_ok=True)
                cache.layers_path(key).write_bytes(src.layers_path(key).read_bytes())
                cache.path(key).write_bytes(src.path(key).read_bytes())
                cache.claim_path(key).unlink()

            writer = threading.Thread(target=finish)
            writer.start()
            with pytest.warns(UserWarning, match="1 runs are being computed by another sweep"):
                df = _sweep(tmp_path)
            writer.join()
        finally:
            first_sweep.kill()
    assert computed == []
    assert df.attrs["sweep"]["computed"] == 0 and df.attrs["sweep"]["cached"] == 1
    assert df["latency_s"].iloc[0] == truth["latency_s"].iloc[0]


_TWIN_SCRIPT = """
import json, sys, time
sys.path.insert(0, {root!r})
import npusim.sweep.execute as exec_mod
from npusim.sweep.run import run_sweep
real = exec_mod.run_task
def slow(task, wl):  # long enough for the two sweeps to overlap
    time.sleep(0.3)
    return real(task, wl)
exec_mod.run_task = slow
df = run_sweep({spec!r}, workers=0, cache_dir={cache!r}, progress=False)
print(json.dumps({{"computed": df.attrs["sweep"]["computed"], "cached": df.attrs["sweep"]["cached"],
                  "latency": df["latency_s"].tolist()}}))
"""


def test_two_sweep_processes_on_one_cache_compute_each_run_once(tmp_path: Path) -> None:
    import sys

    spec = str(ROOT / "workloads" / "sweeps" / "small.yaml")
    script = _TWIN_SCRIPT.format(root=str(ROOT), spec=spec, cache=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    runs = 6  # small.yaml: 8 grid points, 2 pruned, one workload
    assert sum(o["computed"] for o in outs) == runs
    assert all(o["computed"] + o["cached"] == runs for o in outs)
    assert outs[0]["latency"] == outs[1]["latency"]
    assert list(tmp_path.glob("??/*.claim")) == []
