"""Parameter counts (total, active per token, per weight class) and KV-cache sizes.

Counts follow the modules of the reference implementation, biases and norms included:

* **total** (:func:`param_counts_by_class`, summed): embeddings, every layer, the final norm,
  the untied LM head, and the multi-token-prediction module(s) (DeepSeek-V3 and GLM-4.5
  ``num_nextn_predict_layers``: a decoder layer plus enorm, hnorm, eh_proj and a head norm,
  sharing the embedding and output head) unless ``mtp=False``;
* **active** (:func:`active_param_count`): what one token passes through in the main model —
  attention, norms, dense FFN layers, routers, shared experts, top-k routed experts, the LM
  head (unless ``lm_head=False``) and the input embedding table (unless ``embedding=False``).
  Model cards differ: Mixtral, Qwen3, Llama 4 count both; gpt-oss and DeepSeek the head
  only; GLM-4.5 neither. The MTP module is not active in a plain decode step.

KV cache per token per layer: MHA/GQA 2 x kv_heads x head_dim values (K and V); MLA the
latent kv_lora_rank + the shared rope key qk_rope_head_dim (one vector, no factor 2); a
sliding-window (or chunked) layer stores min(context, window) tokens.
"""

from __future__ import annotations

from npusim.workloads.families.config import ModelConfig
from npusim.workloads.precision import WEIGHT_CLASSES

__all__ = ["active_params", "class_params", "kv_values", "mtp_params"]


def _zero() -> dict[str, int]:
    return dict.fromkeys(WEIGHT_CLASSES, 0)


def _per_norm(c: ModelConfig) -> int:
    return c.hidden if c.norm == "rmsnorm" or not c.norm_bias else 2 * c.hidden


def _ffn(h: int, width: int, gated: bool, bias: bool) -> int:
    ups = 2 if gated else 1
    return (ups + 1) * h * width + ((ups * width + h) if bias else 0)


def expert_params(c: ModelConfig) -> int:
    """One routed expert's parameters (gpt-oss: with its gate_up and down biases)."""
    return _ffn(c.hidden, c.expert_intermediate, c.gated_mlp, c.expert_bias)


def _attention(c: ModelConfig) -> tuple[int, int]:
    """(attention weights, attention norms) of one layer."""
    h, heads = c.hidden, c.heads
    norms = 0
    if c.attention_kind == "mla":
        qk = heads * (c.qk_nope_dim + c.qk_rope_dim)
        if c.q_lora_rank:
            attn = h * c.q_lora_rank + c.q_lora_rank * qk
            attn += c.q_lora_rank if c.qkv_bias else 0
            norms += c.q_lora_rank  # q_a_layernorm
        else:
            attn = h * qk
        attn += h * (c.kv_lora_rank + c.qk_rope_dim)
        attn += (c.kv_lora_rank + c.qk_rope_dim) if c.qkv_bias else 0
        norms += c.kv_lora_rank  # kv_a_layernorm
        attn += c.kv_lora_rank * heads * (c.qk_nope_dim + (c.v_head_dim or c.qk_nope_dim))
        attn += heads * (c.v_head_dim or c.qk_nope_dim) * h
        return attn, norms
    q, kv = heads * c.head_dim, c.kv_heads * c.head_dim
    attn = h * q + 2 * h * kv + q * h
    attn += (q + 2 * kv if c.qkv_bias else 0) + (h if c.out_bias else 0)
    attn += heads if c.attention_sinks else 0
    if c.qk_norm and not c.qk_norm_weightless:
        norms += 2 * c.head_dim
    return attn, norms


def _layer(c: ModelConfig, moe: bool) -> dict[str, int]:
    out = _zero()
    out["attention"], out["norms"] = _attention(c)
    out["norms"] += ((1 if c.parallel_block else 2) + c.extra_norms) * _per_norm(c)
    h = c.hidden
    if moe:
        out["experts"] = c.experts * expert_params(c)
        out["router"] = c.experts * h + (c.experts if c.router_bias else 0)
        out["shared_experts"] = c.shared_experts * _ffn(h, c.shared_intermediate, c.gated_mlp,
                                                        False)
        out["shared_experts"] += h if c.shared_expert_gate else 0
    else:
        out["mlp"] = _ffn(h, c.intermediate, c.gated_mlp, c.mlp_bias)
    return out


def _add(a: dict[str, int], b: dict[str, int], times: int = 1) -> None:
    for k, v in b.items():
        a[k] += times * v


def mtp_params(c: ModelConfig) -> dict[str, int]:
    """The multi-token-prediction module(s), shared embedding and head not counted again."""
    out = _zero()
    if not c.mtp_layers:
        return out
    one = _layer(c, c.is_moe)  # the MTP layer sits after the dense leading layers: MoE
    one["norms"] += 3 * _per_norm(c)  # enorm, hnorm, shared_head.norm
    one["mlp"] += 2 * c.hidden * c.hidden  # eh_proj: [embedding; hidden] -> hidden
    _add(out, one, c.mtp_layers)
    return out


def class_params(c: ModelConfig, mtp: bool = True) -> dict[str, int]:
    """Every parameter by weight class (see :mod:`npusim.workloads.precision`)."""
    out = _zero()
    n_moe = sum(c.moe_at(i) for i in range(c.layers))
    if n_moe:
        _add(out, _layer(c, True), n_moe)
    if c.layers - n_moe:
        _add(out, _layer(c, False), c.layers - n_moe)
    out["embeddings"] = (c.vocab * c.embed_dim + c.position_rows * c.hidden
                         + c.type_vocab * c.hidden)
    if c.embed_dim != c.hidden:  # OPT project_in / project_out, no bias
        out["embeddings"] += 2 * c.embed_dim * c.hidden
    if c.final_norm:
        out["norms"] += _per_norm(c)
    if c.encoder:  # embedding LayerNorm and BertModel's pooler (a dense layer)
        out["norms"] += 2 * c.hidden
        out["mlp"] += c.hidden * c.hidden + c.hidden
    if not c.tied_embeddings:
        out["lm_head"] += c.vocab * c.embed_dim
    if c.lm_head_bias:
        out["lm_head"] += c.vocab
    if mtp:
        _add(out, mtp_params(c))
    return out


def active_params(c: ModelConfig, embedding: bool = True, lm_head: bool = True) -> int:
    """Parameters one token passes through in the main model (see the module docstring);
    ``embedding``/``lm_head`` False leave out the input table / the output head (a tied
    table is counted while either is)."""
    cls = class_params(c, mtp=False)
    n_moe = sum(c.moe_at(i) for i in range(c.layers))
    total = sum(cls.values()) - cls["experts"] + n_moe * c.experts_per_token * expert_params(c)
    table = c.vocab * c.embed_dim
    if c.tied_embeddings:
        total -= 0 if (embedding or lm_head) else table
    else:
        total -= (0 if embedding else table) + (0 if lm_head else cls["lm_head"])
    return total


def kv_values(c: ModelConfig, context_len: int) -> int:
    """K/V values one sequence of ``context_len`` tokens holds in the cache, all layers."""
    if c.encoder:
        return 0
    per_token = (c.kv_lora_rank + c.qk_rope_dim if c.attention_kind == "mla"
                 else 2 * c.kv_heads * c.head_dim)
    total = 0
    for i in range(c.layers):
        w = c.window_at(i)
        total += per_token * (min(context_len, w) if w else context_len)
    return total
