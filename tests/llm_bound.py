"""An LLM roofline calculator independent of npusim, from HF configs and chip YAML files.

It reads ``workloads/hf/*.json`` and ``arch/*.yaml`` as plain JSON/YAML and counts, with its
own formulas, parameters, bytes at each precision, KV-cache bytes, MACs, the chips' peak MAC
rate, DRAM bandwidth and how fast each chip's engines can take weights. None of npusim's own
counting functions is used, so the bound it gives is a check on npusim (tests/test_llm_bounds.py)
and the reference of the LLM section of docs/validation.md (bench/make_validation.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

PRESETS = ("lpddr_llm", "hbm_llm", "rngd", "tpu_v4")
MODELS = ("llama2_7b", "llama2_13b", "llama_30b", "llama2_70b")
WEIGHTS = ("int4", "int8", "bf16")
BATCHES = (1, 8, 32)
BITS = {"int4": 4, "int8": 8, "fp8": 8, "fp16": 16, "bf16": 16, "fp32": 32}
ACT, KV = "int8", "int8"
PROMPT, CONTEXT = 128, 512  # prefill tokens per sequence; decode context

# JEDEC channel widths (bits) and catalog data rates (MT/s) of the standards the LLM
# presets use: LPDDR5X x16 channels (JESD209-5C), HBM3 32-bit pseudo-channels (JESD238),
# HBM2 128-bit channels (JESD235).
DRAM = {"LPDDR5X-8533": (16, 8533e6), "HBM3-6400": (32, 6400e6), "HBM2-2000": (128, 2000e6)}
UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _num(text: Any, unit: str) -> float:
    """'1.0 GHz' -> 1e9, '1.5 TB/s' -> 1.5e12, '32 GiB' -> 32 * 2**30 (the test's own parser)."""
    if isinstance(text, (int, float)):
        return float(text)
    value, u = str(text).split()
    if u.endswith("iB"):
        return float(value) * 1024 ** " KMGT".index(u[0])
    return float(value) * UNITS.get(u[0], 1.0)


@cache
def model(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "workloads" / "hf" / f"{name}.json").read_text())


@cache
def chip_yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "arch" / f"{name}.yaml").read_text())


def linear_params(cfg: dict[str, Any]) -> int:
    """Weights of every matmul a token passes through: attention, SwiGLU MLP, LM head."""
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    kv_dim = kv_heads * (h // heads)
    per_layer = 2 * h * h + 2 * h * kv_dim + 3 * h * inter
    return cfg["num_hidden_layers"] * per_layer + h * cfg["vocab_size"]


def all_params(cfg: dict[str, Any]) -> int:
    """linear_params plus the embedding table and the RMSNorm gains."""
    h = cfg["hidden_size"]
    norms = (2 * cfg["num_hidden_layers"] + 1) * h
    return linear_params(cfg) + cfg["vocab_size"] * h + norms


def kv_bytes_per_token(cfg: dict[str, Any]) -> float:
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    head_dim = cfg["hidden_size"] // heads
    return 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * BITS[KV] / 8


def dram_bandwidth(chip: dict[str, Any]) -> float:
    d = chip["dram"]
    if "bandwidth" in d:
        return _num(d["bandwidth"], "B/s")
    width, rate = DRAM[d["standard"]]
    if "data_rate" in d:
        rate = _num(d["data_rate"], "T/s")
    return d["channels"] * width / 8 * rate


def compute_precision(chip: dict[str, Any], weights: str) -> str:
    """The precision the product runs in: the wider operand, floating point if either is;
    the next wider one the chip computes if it does not take that one."""
    rates = chip["cores"]["core"]["systolic"]["macs_per_cycle"]
    want = "bf16" if weights == "bf16" else ACT
    order = ("bf16", "fp16", "fp32") if want == "bf16" else ("int8", "fp8", "bf16", "fp16")
    return next(p for p in order[order.index(want):] if p in rates)


def peak_macs_per_s(chip: dict[str, Any], precision: str) -> float:
    """Every multiplier of the chip's largest engine busy in every core. A product runs on
    one engine at a time (the array, or the matrix-vector engine of ``lanes x width``
    multipliers for each row it holds), so the larger of the two bounds its MAC rate."""
    core = chip["cores"]["core"]
    sa = core["systolic"]
    per_core = sa["rows"] * sa["cols"] * sa.get("count", 1) * sa["macs_per_cycle"][precision]
    mv = core.get("matvec")
    if mv:
        per_core = max(per_core, mv["lanes"] * mv["width"] * mv.get("rows", 1)
                       * mv["macs_per_cycle"].get(precision, 0.0))
    return chip["cores"]["count"] * per_core * _num(chip["clock"], "Hz")


def intake_bytes_per_s(chip: dict[str, Any], operand: str, rows: int) -> float:
    """How fast the chip's fastest engine can take a streamed operand (weights, or the K/V
    cache) of precision ``operand`` for a product of ``rows`` rows (int8 activations).

    A weight-stationary array takes a block of ``R x C`` weights per fold and a fold lasts
    ``max(rows, R)`` cycles with the next block shifting in behind it: ``C`` weights per
    cycle per array while ``rows <= R``, fewer beyond (an input-stationary array streams
    weights through its ``R`` rows instead). A matrix-vector engine holds ``Q`` activation
    rows and streams ``lanes x width`` weights per beat past them, so the operand passes
    ``ceil(rows / Q)`` times at ``lanes x width x rate`` per cycle, capped by its port.
    """
    core = chip["cores"]["core"]
    clock = _num(chip["clock"], "Hz")
    prec = compute_precision(chip, operand)
    ob = BITS[operand] / 8
    sa = core["systolic"]
    r, c = sa["rows"], sa["cols"]
    if sa.get("dataflow", "ws") == "is":
        r, c = c, r
    best = r * c / max(rows, r) * sa.get("count", 1) * sa["macs_per_cycle"][prec] * ob
    mv = core.get("matvec")
    if mv and prec in mv["macs_per_cycle"]:
        passes = -(-rows // mv.get("rows", 1))
        rate = mv["lanes"] * mv["width"] * mv["macs_per_cycle"][prec] * ob / passes
        port = mv.get("read_bytes_per_cycle") or core["sram"].get("read_bytes_per_cycle")
        best = max(best, min(rate, float(port) / passes) if port else rate)
    return chip["cores"]["count"] * best * clock


def streams_at_memory_rate(chip: dict[str, Any], cfg: dict[str, Any], weights: str,
                           batch: int) -> bool:
    """Whether a decode step's weights (``batch`` rows) and K/V cache (int8; the query heads
    that share one KV head as rows) can each enter the chip's engines at least as fast as
    the DRAM delivers them."""
    heads = cfg["num_attention_heads"]
    group = heads // cfg.get("num_key_value_heads", heads)
    bandwidth = dram_bandwidth(chip)
    return (intake_bytes_per_s(chip, weights, batch) >= bandwidth
            and intake_bytes_per_s(chip, KV, group) >= bandwidth)


def fits(chip: dict[str, Any], cfg: dict[str, Any], weights: str, batch: int) -> bool:
    weights_b = all_params(cfg) * BITS[weights] / 8
    cache_b = batch * (CONTEXT + 1) * kv_bytes_per_token(cfg)
    return weights_b + cache_b < 0.97 * _num(chip["dram"]["capacity"], "B")


def decode_bound(chip: dict[str, Any], cfg: dict[str, Any], weights: str, batch: int) -> float:
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    moved = (linear_params(cfg) * BITS[weights] / 8
             + batch * CONTEXT * kv_bytes_per_token(cfg))
    macs = batch * (linear_params(cfg) + 2 * cfg["num_hidden_layers"] * heads * (h // heads)
                    * (CONTEXT + 1))
    peak = peak_macs_per_s(chip, compute_precision(chip, weights))
    return max(moved / dram_bandwidth(chip), macs / peak)


def prefill_bound(chip: dict[str, Any], cfg: dict[str, Any], weights: str, batch: int) -> float:
    """The blocks' roofline, then the LM head's: it runs on the last position of each
    sequence (serving engines sample there) and waits for the last block's output, so a
    short head (memory-bound at a few rows) after compute-bound blocks adds its own time."""
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    tokens = batch * PROMPT
    head = h * cfg["vocab_size"]
    peak = peak_macs_per_s(chip, compute_precision(chip, weights))
    bw = dram_bandwidth(chip)
    moved = (linear_params(cfg) - head) * BITS[weights] / 8 + tokens * kv_bytes_per_token(cfg)
    # Causal attention: query i sees i + 1 keys; scores and context are one MAC each.
    pairs = batch * PROMPT * (PROMPT + 1) // 2
    macs = tokens * (linear_params(cfg) - head) + 2 * cfg["num_hidden_layers"] * heads * (
        h // heads) * pairs
    return max(moved / bw, macs / peak) + max(head * BITS[weights] / 8 / bw, batch * head / peak)


def dominant_limit(layers: Any) -> str:
    """The layer ``limit`` with the most time."""
    return str(layers.groupby("limit")["latency_s"].sum().idxmax())


def time_off_the_roofline(layers: Any) -> float:
    """Seconds in layers whose named limit is not one of the bound's own terms (the DRAM
    bandwidth, or the MAC rate of the chip's largest engine): fill and drain, weight
    shift-in, an SRAM or NoC port, the vector unit, DRAM latency, core imbalance, or the MAC
    rate of a matrix-vector engine smaller than the array."""
    roof = (layers["limit"] == "dram bandwidth") | (
        (layers["limit"] == "mac rate") & (layers["unit"] != "matvec"))
    return float(layers.loc[~roof, "latency_s"].sum())


def cases() -> list[tuple[str, str, str, int]]:
    """Every (preset, model, weights, batch) of the grid whose weights and cache fit."""
    return [(p, m, w, b) for p in PRESETS for m in MODELS for w in WEIGHTS for b in BATCHES
            if fits(chip_yaml(p), model(m), w, b)]
