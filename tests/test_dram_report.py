"""The DRAM figures a run reports, per layer and in total, with the cycle-approximate model."""

from __future__ import annotations

import math

import pytest

import npusim


@pytest.fixture(scope="module")
def res():
    chip = npusim.load_arch("hbm_llm")
    return npusim.simulate(chip, npusim.workloads.bert_base(seq_len=64), memory="cycle")


def test_layer_columns(res) -> None:
    df = res.layers
    moved = df[(df["dram_read_bytes"] + df["dram_write_bytes"]) > 0]
    assert len(moved) > 0
    bw = (moved["dram_read_bytes"] + moved["dram_write_bytes"]) / moved["latency_s"]
    assert moved["dram_bandwidth_bytes_per_s"].tolist() == pytest.approx(bw.tolist())
    assert (moved["dram_bandwidth_util"] <= 1.0).all()
    reads = moved[moved["dram_reads"] > 0]
    assert ((reads["dram_row_hit_rate"] >= 0) & (reads["dram_row_hit_rate"] <= 1)).all()
    assert (reads["dram_read_latency_p99_s"] >= 0.5 * reads["dram_read_latency_avg_s"]).all()
    assert (reads["dram_read_latency_avg_s"] > 0).all()


def test_totals_and_energy_split(res) -> None:
    s = res.summary()
    parts = sum(s[f"energy_dram_{k}_j"] for k in
                ("activate", "read", "write", "refresh", "background", "interface", "phy"))
    assert parts == pytest.approx(s["energy_dram_j"], rel=1e-9)
    assert 0 < s["dram_bandwidth_util"] <= 1
    assert 0 <= s["dram_row_hit_rate"] <= 1
    assert s["dram_read_latency_p99_s"] >= s["dram_read_latency_avg_s"] * 0.5
    assert not math.isnan(s["dram_read_latency_p99_s"])
