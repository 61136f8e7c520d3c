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


def test_server_at_low_load_is_single_stream_latency(tpu_v1) -> None:
    """Queries far apart (1/s, each under a millisecond) run alone: every latency is the
    batch-1 latency, so p99 is too."""
    single = run_scenario(tpu_v1, _small(), "single-stream").summary()["latency_s"]
    r = run_scenario(tpu_v1, _small(), "server", rate=1.0, queries=200,
                     latency_bound_s=2 * single)
    s = r.summary()
    assert s["p99_latency_s"] == pytest.approx(single, rel=1e-9)
    assert s["bound_met"] is True and s["mean_batch"] == pytest.approx(1.0)


def test_server_past_saturation_runs_full_batches(tpu_v1) -> None:
    """Offered far beyond what the chip serves, the batches fill to max_batch: served
    queries per second approach max_batch / latency(max_batch)."""
    r = run_scenario(tpu_v1, _small(), "server", rate=1e6, queries=400, max_batch=4,
                     latency_bound_s=1e-6)
    s = r.summary()
    lat4 = float(r.tried.set_index("batch").loc[4, "latency_s"])
    assert r.batch == 4
    assert s["queries_per_s"] == pytest.approx(4 / lat4, rel=0.02)
    assert s["bound_met"] is False


def test_server_needs_a_positive_rate(tpu_v1) -> None:
    with pytest.raises(MappingError, match="needs a rate"):
        run_scenario(tpu_v1, _small(), "server")
    with pytest.raises(npusim.NpusimError, match="positive"):
        run_scenario(tpu_v1, _small(), "server", rate=-3.0)


def test_cli_server_scenario(capsys) -> None:
    from npusim.cli import main

    assert main(["run", "tpu_v1", "resnet50", "--scenario", "server", "--rate", "50",
                 "--queries", "100", "--latency-bound", "15ms", "--rows", "1"]) == 0
    assert "p99" in capsys.readouterr().out
    assert main(["run", "tpu_v1", "resnet50", "--rate", "50"]) == 2
    assert "--scenario server" in capsys.readouterr().err
