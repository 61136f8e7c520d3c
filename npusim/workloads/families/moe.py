"""Mixture-of-experts decoder families (attention as in their dense relatives).

=============  ===============================================================================
model_type     structure read (reference: transformers ``configuration_*.py``/``modeling_*.py``)
=============  ===============================================================================
mixtral        every layer MoE: num_local_experts experts of intermediate_size, top
               num_experts_per_tok, softmax router without bias; sliding_window when set
qwen2_moe      num_experts of moe_intermediate_size, one shared expert of
               shared_expert_intermediate_size scaled by a sigmoid gate (hidden -> 1);
               q/k/v bias; MoE where (i+1) % decoder_sparse_step == 0 and i not in
               mlp_only_layers, the others dense of intermediate_size
qwen3_moe      qwen2_moe's layer map, q/k norms, no shared expert, no bias
gpt_oss        num_local_experts (num_experts) of intermediate_size, top experts_per_token
               (num_experts_per_tok); router and expert biases; q/k/v/o biases; one sink
               logit per head; alternating sliding (sliding_window) / full via layer_types
llama4_text    num_local_experts of intermediate_size + one shared expert of the same width,
               sigmoid top-k router; MoE layers from moe_layers or interleave_moe_layer_step,
               the others dense of intermediate_size_mlp; chunked attention
               (attention_chunk_size) on rotary layers, NoPE layers every
               no_rope_layer_interval (no_rope_layers); weightless L2 q/k norm
glm4_moe       DeepSeek-V3-style MoE (n_routed_experts of moe_intermediate_size, n_shared_experts,
               sigmoid router, first_k_dense_replace dense layers of intermediate_size) over
               GQA attention with attention_bias, partial_rotary_factor, use_qk_norm; an MTP
               layer per num_nextn_predict_layers
=============  ===============================================================================
"""

from __future__ import annotations

from typing import Any

from npusim.workloads.families._common import decoder_base, moe_map, rope_layers, windows
from npusim.workloads.families._fields import MAX_EXPERTS, Fields

__all__ = ["READERS", "expert_fields"]

#: routed experts: Mixtral/gpt-oss/Llama 4, Qwen MoE (and gpt-oss's original), DeepSeek/GLM
EXPERT_COUNT = ("num_local_experts", "num_experts", "n_routed_experts")
#: top-k: the transformers name, and gpt-oss's original experts_per_token
TOP_K = ("num_experts_per_tok", "experts_per_token")


def expert_fields(f: Fields, expert_width: tuple[str, ...]) -> dict[str, Any]:
    """Routed experts: count, top-k, width, each under every spelling; top-k checked."""
    experts = f.count(*EXPERT_COUNT, ceiling=MAX_EXPERTS)
    top_k = f.int(*TOP_K)
    if top_k > experts and not f.missing:
        f.problem(f"top-k {top_k} ({_first(f, TOP_K)}) exceeds the {experts} experts "
                  f"({_first(f, EXPERT_COUNT)})")
    return dict(experts=experts, experts_per_token=top_k,
                expert_intermediate=f.int(*expert_width))


def _first(f: Fields, names: tuple[str, ...]) -> str:
    return next((n for n in names if f.has(n)), names[0])


def _mixtral(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family)
    base.update(expert_fields(f, ("intermediate_size",)))
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], every_layer=True)
    return base


def _qwen_moe(f: Fields, name: str, family: str) -> dict[str, Any]:
    qwen2 = family == "qwen2_moe"
    base = decoder_base(f, name, family, qkv_bias=qwen2)
    base["out_bias"] = False
    base.update(expert_fields(f, ("moe_intermediate_size",)))
    base["moe_layers"] = moe_map(f, base["layers"], every=f.int("decoder_sparse_step", default=1),
                                 dense=f.int_list("mlp_only_layers"))
    if qwen2:
        width = f.int("shared_expert_intermediate_size", default=0, zero=True)
        if width:
            base.update(shared_experts=1, shared_intermediate=width, shared_expert_gate=True)
    else:
        base["qk_norm"] = True
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], qwen=True)
    return base


def _gpt_oss(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family, qkv_bias=True, out_bias=True)
    base.update(expert_fields(f, ("intermediate_size",)))
    base.update(router_bias=True, expert_bias=True, attention_sinks=True)
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], pattern=2)
    return base


def _llama4(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family, head_dim=128)
    base.update(expert_fields(f, ("intermediate_size",)))
    layers = base["layers"]
    base["intermediate"] = f.int("intermediate_size_mlp", default=base["intermediate"])
    base.update(shared_experts=1, shared_intermediate=base["expert_intermediate"],
                router_score="sigmoid", qk_norm=f.flag("use_qk_norm", True),
                qk_norm_weightless=True)
    step = f.int("interleave_moe_layer_step", default=1)
    base["moe_layers"] = moe_map(f, layers, explicit=f.int_list("moe_layers"), every=step)
    base["rope_layers"] = rope_layers(f, layers)
    rope = base["rope_layers"] or (True,) * layers
    if f.has("layer_types"):
        base["layer_windows"], base["unmodelled"] = windows(f, layers)
    else:  # Llama4TextConfig: chunked attention on the rotary layers
        chunk = f.opt_int("attention_chunk_size")
        if chunk:
            base["layer_windows"] = tuple(chunk if r else 0 for r in rope)
    return base


def _glm4_moe(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family)
    base["out_bias"] = False  # Glm4MoeAttention: attention_bias on q/k/v, o_proj unbiased
    if not f.has("partial_rotary_factor") and not _nested(f, "partial_rotary_factor"):
        base["rotary_dim"] = base["head_dim"] // 2  # Glm4MoeConfig default 0.5
    base.update(expert_fields(f, ("moe_intermediate_size",)))
    shared = f.int("n_shared_experts", default=1, zero=True)
    base.update(shared_experts=shared,
                shared_intermediate=base["expert_intermediate"] if shared else 0,
                router_score="sigmoid", router_bias=True,  # e_score_correction_bias
                qk_norm=f.flag("use_qk_norm", False),
                mtp_layers=f.int("num_nextn_predict_layers", default=0, zero=True))
    base["moe_layers"] = moe_map(f, base["layers"],
                                 first_dense=f.int("first_k_dense_replace", default=1, zero=True))
    return base


def _nested(f: Fields, key: str) -> bool:
    return any(isinstance(f.data.get(h), dict) and f.data[h].get(key) is not None
               for h in ("rope_parameters", "rope_scaling"))


READERS = {
    "mixtral": _mixtral, "qwen2_moe": _qwen_moe, "qwen3_moe": _qwen_moe, "gpt_oss": _gpt_oss,
    "llama4_text": _llama4, "glm4_moe": _glm4_moe,
}
