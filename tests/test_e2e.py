"""ResNet-50 and BERT end to end on every preset, with sanity checks on the totals."""

from __future__ import annotations

import pytest

import npusim
from npusim import workloads
from npusim.presets import list_presets
from npusim.result import LAYER_COLUMNS

PRESETS = list_presets()
WORKLOADS = {
    "resnet50": lambda: workloads.resnet50(),
    "bert_base": lambda: workloads.bert_base(seq_len=128),
}


def test_every_required_preset_is_shipped() -> None:
    assert {"tpu_v1", "lpddr_llm", "hbm_llm"} <= set(PRESETS)


@pytest.mark.parametrize("wl_name", sorted(WORKLOADS))
@pytest.mark.parametrize("preset", PRESETS)
def test_runs_on_every_preset(preset: str, wl_name: str) -> None:
    chip = npusim.load_arch(preset)
    wl = WORKLOADS[wl_name]()
    res = npusim.simulate(chip, wl)
    df = res.layers
    assert list(df.columns[: len(LAYER_COLUMNS)]) == list(LAYER_COLUMNS)
    assert len(df) == len(wl.layers)
    assert (df["latency_s"] > 0).all()
    assert df["macs"].sum() == wl.macs()
    s = res.summary()
    # The network can beat neither the chip's peak compute nor its DRAM bandwidth.
    assert s["latency_s"] >= wl.macs() / chip.peak_macs_per_second() * 0.999
    dram = s["dram_read_bytes"] + s["dram_write_bytes"]
    assert s["latency_s"] >= dram / chip.dram.peak_bandwidth * 0.999
    assert 0 < s["utilization"] <= 1
    parts = sum(s[f"energy_{p}_j"] for p in ("mac", "sram", "dram", "noc", "wire", "vector",
                                             "static", "host"))
    assert s["energy_j"] == pytest.approx(parts)
    assert s["average_power_w"] == pytest.approx(s["energy_j"] / s["latency_s"])


def test_weights_are_read_from_dram_once_at_batch_one(tpu_v1) -> None:
    wl = workloads.resnet50()
    s = npusim.simulate(tpu_v1, wl).summary()
    weights = sum(layer.input_bytes().get("weight", 0) for layer in wl.layers)
    assert s["dram_read_bytes"] >= weights


def test_bigger_batch_amortises_weights_on_a_memory_bound_chip(tpu_v1) -> None:
    one = npusim.simulate(tpu_v1, workloads.resnet50(batch=1)).summary()
    eight = npusim.simulate(tpu_v1, workloads.resnet50(batch=8)).summary()
    per_inf = [(s["dram_read_bytes"] + s["dram_write_bytes"]) / s["batch"] for s in (one, eight)]
    assert per_inf[1] < per_inf[0] / 2
    assert eight["inferences_per_s"] > one["inferences_per_s"]


def test_result_is_immutable(tpu_v1) -> None:
    res = npusim.simulate(tpu_v1, workloads.resnet50())
    df = res.layers
    df.loc[0, "latency_s"] = -1.0
    assert res.layers.loc[0, "latency_s"] > 0
