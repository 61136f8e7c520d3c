"""LLM decode and prefill against an independent roofline bound.

The calculator, tests/llm_bound.py, is written from the HF ``config.json`` files and the
chip YAML files alone — parameter counts, bytes at each precision, KV-cache bytes, MACs, peak
MAC rate, DRAM bandwidth, how fast each engine takes a streamed operand — and uses none of
npusim's own counting functions. For every LLM preset x LLaMA-2 7B / 13B, LLaMA 30B,
LLaMA-2 70B (where weights and cache fit the chip's DRAM) x int4 / int8 / bf16 weights x
batch 1, 8, 32 (prefill at batch 1 and 8):

* npusim never beats the bound (a step moves no fewer bytes than its weights and cache, and
  does its MACs no faster than every multiplier of the chip's largest engine);
* a decode step lands within 1.3x of the bound where the chip's engines can take both the
  weights and the K/V cache at least as fast as its DRAM delivers them;
* wherever a step is more than 1.3x the bound, layers whose ``limit`` names something the
  bound does not model (fill and drain, weight shift-in, a port, the vector unit, latency,
  imbalance, a small engine's MAC rate) take at least the excess: the result says where
  the time beyond the roofline goes.
"""

from __future__ import annotations

from functools import cache

import pytest
from llm_bound import (
    ACT,
    CONTEXT,
    KV,
    PROMPT,
    ROOT,
    cases,
    chip_yaml,
    decode_bound,
    dominant_limit,
    model,
    prefill_bound,
    streams_at_memory_rate,
    time_off_the_roofline,
)

import npusim
from npusim.workloads.llm import from_hf_config

CASES = cases()



def test_the_grid_is_not_empty_and_skips_what_cannot_fit() -> None:
    assert ("rngd", "llama2_70b", "int4", 1) in CASES  # 34.5 GB of weights in 48 GiB
    assert ("rngd", "llama2_70b", "int8", 1) not in CASES  # 69 GB do not fit
    assert ("lpddr_llm", "llama_30b", "int4", 1) in CASES
    assert ("lpddr_llm", "llama_30b", "bf16", 1) not in CASES
    assert len(CASES) > 40


@cache
def _chip(name: str) -> npusim.Chip:
    return npusim.load_arch(ROOT / "arch" / f"{name}.yaml")


@pytest.mark.parametrize(("preset", "name", "weights", "batch"), CASES)
def test_decode_against_bound(preset: str, name: str, weights: str, batch: int) -> None:
    chip, cfg = chip_yaml(preset), model(name)
    wl = from_hf_config(name, "decode", batch=batch, prompt_len=CONTEXT, context_len=CONTEXT,
                        weights=weights, activations=ACT, kv=KV)
    res = npusim.simulate(_chip(preset), wl)
    latency = float(res.summary()["latency_s"])
    bound = decode_bound(chip, cfg, weights, batch)
    assert latency >= bound * (1 - 1e-9)
    if streams_at_memory_rate(chip, cfg, weights, batch):
        assert latency <= 1.3 * bound, (latency, bound, dominant_limit(res.layers))
    # Beyond 1.3x, layers that name a limit the bound does not model take the excess.
    assert time_off_the_roofline(res.layers) >= latency - 1.3 * bound, (latency, bound)


@pytest.mark.parametrize(("preset", "name", "weights", "batch"),
                         [c for c in CASES if c[3] in (1, 8)])
def test_prefill_against_bound(preset: str, name: str, weights: str, batch: int) -> None:
    chip, cfg = chip_yaml(preset), model(name)
    wl = from_hf_config(name, "prefill", batch=batch, prompt_len=PROMPT,
                        weights=weights, activations=ACT, kv=KV)
    res = npusim.simulate(_chip(preset), wl)
    latency = float(res.summary()["latency_s"])
    bound = prefill_bound(chip, cfg, weights, batch)
    assert latency >= bound * (1 - 1e-9)
    assert time_off_the_roofline(res.layers) >= latency - 1.3 * bound, (latency, bound)
