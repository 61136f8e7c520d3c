"""DeepSeek V2 / V3: multi-head latent attention over a mixture of experts.

Read as the reference implementation (transformers ``modeling_deepseek_v2/v3.py`` and
DeepSeek's own ``inference/model.py``) builds it:

* attention (MLA): ``q_a_proj`` hidden → q_lora_rank, RMSNorm, ``q_b_proj`` → heads x
  (qk_nope_head_dim + qk_rope_head_dim); without q_lora_rank (``null``, DeepSeek-V2-Lite) a
  single ``q_proj`` hidden → heads x (nope + rope). ``kv_a_proj_with_mqa`` hidden →
  kv_lora_rank + qk_rope_head_dim, RMSNorm on the kv_lora_rank part, ``kv_b_proj``
  kv_lora_rank → heads x (nope + v_head_dim), ``o_proj`` heads x v_head_dim → hidden.
  What is cached per token per layer: the kv_lora_rank latent and the shared rope key.
* FFN: the first ``first_k_dense_replace`` layers dense (intermediate_size), the rest MoE
  where i % moe_layer_freq == 0: n_routed_experts of moe_intermediate_size, top
  num_experts_per_tok, plus n_shared_experts of the same width every token passes
  (DeepSeek-V3 scores with sigmoid, ``scoring_func``, and adds a per-expert
  ``e_score_correction_bias`` before top-k under ``topk_method`` noaux_tc; V2 with softmax).
* ``num_nextn_predict_layers`` multi-token-prediction modules (V3: one; each a decoder layer
  plus enorm, hnorm, eh_proj and a head norm, sharing the embedding and output head).
"""

from __future__ import annotations

from typing import Any

from npusim.workloads.families._common import activation, moe_map
from npusim.workloads.families._fields import MAX_LAYERS, Fields
from npusim.workloads.families.moe import expert_fields

__all__ = ["READERS"]


def _deepseek(f: Fields, name: str, family: str) -> dict[str, Any]:
    hidden, heads = f.int("hidden_size"), f.int("num_attention_heads")
    layers = f.count("num_hidden_layers", ceiling=MAX_LAYERS)
    nope, rope = f.int("qk_nope_head_dim"), f.int("qk_rope_head_dim")
    v_dim = f.int("v_head_dim")
    base: dict[str, Any] = dict(
        name=name, family=family, hidden=hidden, layers=layers, heads=heads,
        kv_heads=heads, head_dim=nope + rope, vocab=f.int("vocab_size"),
        max_positions=f.int("max_position_embeddings", default=2048),
        intermediate=f.int("intermediate_size"), activation=activation(f, "hidden_act", "silu"),
        gated_mlp=True, norm="rmsnorm", positions="rotary", rotary_dim=rope,
        parallel_block=False, post_norm=False,
        tied_embeddings=f.flag("tie_word_embeddings", False),
        qkv_bias=f.flag("attention_bias", False), out_bias=False, mlp_bias=False,
        lm_head_bias=False, embed_dim=hidden, position_rows=0, type_vocab=0, final_norm=True,
        encoder=False, attention_kind="mla", q_lora_rank=f.opt_int("q_lora_rank") or 0,
        kv_lora_rank=f.int("kv_lora_rank"), qk_nope_dim=nope, qk_rope_dim=rope, v_head_dim=v_dim,
        mtp_layers=f.int("num_nextn_predict_layers", default=0, zero=True))
    base.update(expert_fields(f, ("moe_intermediate_size",)))
    shared = f.int("n_shared_experts", "num_shared_experts", default=0, zero=True)
    base.update(shared_experts=shared, shared_intermediate=base["expert_intermediate"] if shared
                else 0)
    score = f.get("scoring_func", "sigmoid" if family == "deepseek_v3" else "softmax")
    base["router_score"] = score if score in ("softmax", "sigmoid") else "softmax"
    # noaux_tc routing (V3) adds a per-expert bias to the scores before top-k
    # (e_score_correction_bias, stored in the checkpoint)
    method = f.get("topk_method", "noaux_tc" if family == "deepseek_v3" else "greedy")
    base["router_bias"] = method == "noaux_tc"
    base["moe_layers"] = moe_map(
        f, layers, first_dense=f.int("first_k_dense_replace", default=0, zero=True),
        every=f.int("moe_layer_freq", default=1), offset=0)
    return base


READERS = {"deepseek_v2": _deepseek, "deepseek_v3": _deepseek}
