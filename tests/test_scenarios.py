"""Single-stream and offline scenarios."""

from __future__ import annotations

import pytest

import npusim
from npusim.errors import MappingError
from npusim.scenarios import footprint_bytes, run_scenario
from npusim.workloads.ir import Conv2d, Matmul, Workload


def _small() -> Workload:
    return Workload("small", (
        Conv2d("c", in_h=32, in_w=32, in_c=16, out_c=32, kernel_h=3, kernel_w=3, pad_h=1,
               pad_w=1, activation="relu"),
        Matmul("fc", m=1, n=1000, k=32 * 32 * 32)), {"batch": 1})


def _with_capacity(chip: npusim.Chip, capacity: int) -> npusim.Chip:
    d = chip.model_dump()
    d["dram"] = {**d["dram"], "capacity": capacity}
    return npusim.Chip.model_validate(d)


def test_single_stream_is_batch_one(tpu_v1) -> None:
    r = run_scenario(tpu_v1, _small(), "single-stream")
    assert r.batch == 1 and list(r.tried["batch"]) == [1]
    assert r.summary()["scenario"] == "single-stream"


def test_offline_reports_the_best_batch_it_tried(tpu_v1) -> None:
    r = run_scenario(tpu_v1, _small(), "offline", max_batch=32)
    fits = r.tried[r.tried["fits"]]
    assert r.batch == int(fits.loc[fits["inferences_per_s"].idxmax(), "batch"])
    assert r.summary()["inferences_per_s"] == pytest.approx(fits["inferences_per_s"].max())
    # The fully-connected weights dominate at batch 1: batching amortises them.
    assert r.batch > 1


def test_offline_stops_at_dram_capacity(tpu_v1) -> None:
    wl = _small()
    cap = footprint_bytes(wl.with_batch(4)) + 1
    r = run_scenario(_with_capacity(tpu_v1, cap), wl, "offline", max_batch=64)
    assert r.batch <= 4
    assert not r.tried["fits"].iloc[-1] and r.tried["batch"].iloc[-1] == 8
    with pytest.raises(MappingError, match="more than"):
        run_scenario(_with_capacity(tpu_v1, 1000), wl, "offline")
