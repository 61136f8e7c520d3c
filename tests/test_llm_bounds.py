"""LLM decode and prefill against an independent roofline bound.

The calculator here is written from the HF ``config.json`` files and the chip YAML files
alone — parameter counts, bytes at each precision, KV-cache bytes, FLOPs, peak MAC rate and
DRAM bandwidth — and uses none of npusim's own counting functions. For every LLM preset x
LLaMA-2 7B / 13B, LLaMA 30B, LLaMA-2 70B (where weights and cache fit the chip's DRAM) x
int4 / int8 / bf16 weights x batch 1, 8, 32:

* npusim never beats the bound (a step can move no fewer bytes than its weights and cache,
  and do its MACs no faster than every multiplier of the chip at once);
* a decode step lands within 1.3x of the bound where the chip's datapath can take weights
  at least as fast as its DRAM delivers them (worked out here from the chip's engines), and
  otherwise the step names what limits it, which is then not the DRAM;
* a prefill whose time goes mostly to the MAC rate or the DRAM (the bound's own terms)
  lands within 1.3x of the bound; any other named limit (fill and drain, an SRAM port, the
  vector unit, core imbalance) is one the bound does not model.
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
    dram_bandwidth,
    model,
    prefill_bound,
    weight_intake_bytes_per_s,
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
    streams = weight_intake_bytes_per_s(chip, weights, batch) >= dram_bandwidth(chip)
    limit = dominant_limit(res.layers)
    if streams:
        assert latency <= 1.3 * bound, (latency, bound, limit)
    elif latency > 1.3 * bound:
        assert limit != "dram bandwidth", (latency, bound)


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
    limit = dominant_limit(res.layers)
    if limit in ("mac rate", "dram bandwidth"):  # the roofline's own terms
        assert latency <= 1.3 * bound, (latency, bound, limit)
