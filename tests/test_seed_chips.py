"""Every seed-chip preset on the issue's workloads, and decode against the weight stream."""

from __future__ import annotations

from pathlib import Path

import pytest

import npusim
from npusim.errors import MappingError
from npusim.presets import list_presets
from npusim.workloads.llm import check_capacity, from_hf_config

HF = Path(__file__).resolve().parent.parent / "workloads" / "hf"


@pytest.fixture(scope="module")
def bert_large():
    return npusim.workloads.bert_large(seq_len=384)


@pytest.mark.parametrize("preset", list_presets())
def test_bert_large_384_and_llama2_7b_decode(preset: str, bert_large) -> None:
    chip = npusim.load_arch(preset)
    s = npusim.simulate(chip, bert_large).summary()
    assert s["latency_s"] >= bert_large.macs() / chip.peak_macs_per_second() * 0.999
    wl = from_hf_config(HF / "llama2_7b.json", phase="decode", batch=1, context_len=1024,
                        weights="int8", kv="int8")
    try:
        check_capacity(chip, wl)
    except MappingError:
        pytest.skip(f"LLaMA-2-7B int8 does not fit {chip.name}'s DRAM")
    d = npusim.simulate(chip, wl, weights_resident=False).summary()
    weights = sum(layer.input_bytes().get("weight", 0) for layer in wl.layers
                  if layer.kind == "matmul")
    assert d["latency_s"] >= weights / chip.dram.peak_bandwidth


LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
         "num_attention_heads": 8, "num_key_value_heads": 8, "num_hidden_layers": 2,
         "vocab_size": 2048, "max_position_embeddings": 4096, "hidden_act": "silu"}


@pytest.mark.parametrize("preset", ["tpu_v1", "warboy"])
def test_decode_approaches_the_weight_stream_as_the_model_grows(preset: str) -> None:
    """On a chip whose arrays take weights faster than its DRAM delivers them, a batch-1
    decode step is never faster than streaming the weights once and gets relatively
    closer to it as the matrices grow (fixed per-layer costs matter less)."""
    chip = npusim.load_arch(preset)
    ratios = []
    for hidden in (512, 1024, 2048, 4096):
        cfg = LLAMA | {"hidden_size": hidden, "intermediate_size": hidden * 2688 // 1024}
        wl = from_hf_config(cfg, phase="decode", batch=1, context_len=256, weights="int8")
        s = npusim.simulate(chip, wl, weights_resident=False).summary()
        weights = sum(layer.input_bytes().get("weight", 0) for layer in wl.layers
                      if layer.kind == "matmul")
        ratios.append(s["latency_s"] / (weights / chip.dram.peak_bandwidth))
    assert all(r >= 1.0 for r in ratios)
    assert ratios == sorted(ratios, reverse=True)
    assert ratios[-1] < 1.05
