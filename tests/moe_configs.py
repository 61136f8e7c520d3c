"""Published MoE and latent-attention model shapes as ModelConfig objects, for the tests.

Written from the models' published config.json fields (Hugging Face model cards:
Qwen/Qwen3-30B-A3B, openai/gpt-oss-20b, deepseek-ai/DeepSeek-V3), on top of a dense
llama config so the tests do not depend on a family loader. ``layers`` may be cut to keep
a test fast; every per-layer shape is the published one.
"""

from __future__ import annotations

import dataclasses

from npusim.workloads.hf_config import ModelConfig, load_hf_config


def _base() -> ModelConfig:
    return load_hf_config("llama2_7b")


def qwen3_30b_a3b(layers: int = 48) -> ModelConfig:
    return dataclasses.replace(
        _base(), name="qwen3_30b_a3b", hidden=2048, intermediate=6144, layers=layers,
        heads=32, kv_heads=4, head_dim=128, vocab=151936, max_positions=40960,
        rotary_dim=128, embed_dim=2048, experts=128, experts_per_token=8,
        expert_intermediate=768, qk_norm=True)


def gpt_oss_20b(layers: int = 24) -> ModelConfig:
    # layer_types: sliding_attention and full_attention alternating, sliding first;
    # sliding_window 128; attention_bias; a sink per head; router and expert biases.
    return dataclasses.replace(
        _base(), name="gpt_oss_20b", hidden=2880, intermediate=2880, layers=layers, heads=64,
        kv_heads=8, head_dim=64, vocab=201088, max_positions=131072, rotary_dim=64,
        embed_dim=2880, experts=32, experts_per_token=4, expert_intermediate=2880,
        qkv_bias=True, out_bias=True, attention_sinks=True, router_bias=True,
        expert_bias=True, layer_windows=tuple(128 if i % 2 == 0 else 0
                                              for i in range(layers)))


def deepseek_v3(layers: int = 61, first_dense: int = 3) -> ModelConfig:
    return dataclasses.replace(
        _base(), name="deepseek_v3", hidden=7168, intermediate=18432, layers=layers,
        heads=128, kv_heads=128, head_dim=192, vocab=129280, max_positions=163840,
        rotary_dim=64, embed_dim=7168, experts=256, experts_per_token=8,
        expert_intermediate=2048, shared_experts=1, shared_intermediate=2048,
        moe_layers=tuple(i >= first_dense for i in range(layers)), router_score="sigmoid",
        attention_kind="mla", q_lora_rank=1536, kv_lora_rank=512, qk_nope_dim=128,
        qk_rope_dim=64, v_head_dim=128)


def tiny_moe(experts: int = 8, top_k: int = 2, layers: int = 2, **kw: object) -> ModelConfig:
    return dataclasses.replace(
        _base(), name="tiny_moe", hidden=256, intermediate=512, layers=layers, heads=4,
        kv_heads=2, head_dim=64, vocab=1000, rotary_dim=64, embed_dim=256, experts=experts,
        experts_per_token=top_k, expert_intermediate=128, **kw)  # type: ignore[arg-type]
