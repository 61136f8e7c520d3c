"""Dense decoder families (and the two encoder/decoder-era families npusim started with).

=============  ===============================================================================
model_type     structure read (reference: transformers ``configuration_*.py``/``modeling_*.py``)
=============  ===============================================================================
llama          RMSNorm, SwiGLU, rotary (rope_scaling / rope_parameters: llama3 scaling is a
               position-frequency change, no parameters); attention_bias, mlp_bias, head_dim
mistral        llama + sliding_window on every layer when set (Mistral 7B v0.1: 4096)
qwen2          llama + q/k/v bias (no o bias); a window only with use_sliding_window
qwen3          llama + RMSNorm on q and k per head (q_norm/k_norm, head_dim wide), no bias
phi3           llama with fused qkv_proj and gate_up_proj (the same parameter counts);
               sliding_window on every layer when set, as Phi3Attention's mask applies it
gemma2         head_dim given (default 256), four norms per block (pre/post attention and
               FFN), tied embeddings, alternating local (sliding_window) / global layers
gemma3_text    gemma2 + q/k norms; local:global 5:1 (sliding_window_pattern 6 or layer_types)
exaone4        q/k norms; norms after attention and after the FFN only (post-norm layout,
               two per block); local:global 3:1 (sliding_window_pattern 4, "LLLG" or
               layer_types); global layers apply no rotary embedding
smollm3        llama (tied by default) with NoPE layers: no_rope_layers, else every
               no_rope_layer_interval-th (4); sliding only with use_sliding_window
starcoder2     LayerNorm (scale and shift), plain GELU MLP c_fc/c_proj, use_bias on every
               projection, tied embeddings, sliding_window on every layer when set
glm4           GLM-4-0414 dense: fused gate_up SwiGLU, q/k/v bias (attention_bias), four
               norms per block (post_self_attn, post_mlp), partial_rotary_factor (0.5)
cohere2        parallel attention + MLP from one LayerNorm without shift, SwiGLU, tied
               embeddings; local:global 3:1 (layer_types / sliding_window_pattern 4), global
               layers without rotary
gptj           parallel attention + MLP, partial rotary, GELU, LayerNorm
opt            learned positions (offset 2), ReLU, LayerNorm, tied LM head
bert           encoder-only, post-LayerNorm, GELU, absolute positions + token types
=============  ===============================================================================
"""

from __future__ import annotations

from typing import Any

from npusim.workloads.families._common import activation, decoder_base, rope_layers, windows
from npusim.workloads.families._fields import MAX_LAYERS, Fields

__all__ = ["READERS"]


def _llama(f: Fields, name: str, family: str) -> dict[str, Any]:
    return decoder_base(f, name, family)


def _mistral(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family)
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], every_layer=True)
    return base


_phi3 = _mistral


def _qwen2(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family, qkv_bias=True)
    base["out_bias"] = False  # Qwen2Attention: q/k/v biased, o_proj not
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], qwen=True)
    return base


def _qwen3(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family)
    base["qk_norm"] = True
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], qwen=True)
    return base


def _gemma(f: Fields, name: str, family: str) -> dict[str, Any]:
    data = f.data
    if family == "gemma3_text" and data.get("vocab_size") is None:
        # Gemma3TextConfig's default; the published text_config blocks omit it
        data = {**data, "vocab_size": 262_208}
        f.data = data
    base = decoder_base(f, name, family, head_dim=256, tied=True)
    base["activation"] = activation(f, "hidden_activation" if f.has("hidden_activation")
                                    else "hidden_act", "gelu_pytorch_tanh")
    base["extra_norms"] = 2
    if family == "gemma3_text":
        base["qk_norm"] = True
    base["layer_windows"], base["unmodelled"] = windows(
        f, base["layers"], pattern=6 if family == "gemma3_text" else 2)
    return base


def _exaone4(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family)
    base["qk_norm"] = True
    wins, base["unmodelled"] = windows(f, base["layers"], pattern=4)
    base["layer_windows"] = wins
    if wins:  # Exaone4Attention: rotary only on sliding layers when a window is configured
        base["rope_layers"] = tuple(w > 0 for w in wins)
    return base


def _smollm3(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family, tied=True)
    layers = base["layers"]
    base["rope_layers"] = rope_layers(f, layers)
    rope = base["rope_layers"] or (True,) * layers
    if f.has("layer_types"):
        base["layer_windows"], base["unmodelled"] = windows(f, layers)
    elif f.flag("use_sliding_window", False) and f.opt_int("sliding_window"):
        sw = f.int("sliding_window")
        base["layer_windows"] = tuple(0 if r else sw for r in rope)
    return base


def _starcoder2(f: Fields, name: str, family: str) -> dict[str, Any]:
    bias = f.flag("use_bias", True)
    base = decoder_base(f, name, family, tied=True, qkv_bias=bias, out_bias=bias)
    base.update(activation=activation(f, "hidden_act", "gelu_pytorch_tanh"), gated_mlp=False,
                norm="layernorm", mlp_bias=bias)
    base["layer_windows"], base["unmodelled"] = windows(f, base["layers"], every_layer=True)
    return base


def _glm4(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family, head_dim=None, qkv_bias=True)
    base["out_bias"] = False  # Glm4Attention: o_proj unbiased
    if _rope_factor_absent(f):
        base["rotary_dim"] = base["head_dim"] // 2  # Glm4Config default 0.5
    base["extra_norms"] = 2
    return base


def _cohere2(f: Fields, name: str, family: str) -> dict[str, Any]:
    base = decoder_base(f, name, family, tied=True)
    base.update(norm="layernorm", norm_bias=False, parallel_block=True)
    wins, base["unmodelled"] = windows(f, base["layers"], pattern=4)
    base["layer_windows"] = wins
    if wins:  # Cohere2Attention: rotary only on sliding layers
        base["rope_layers"] = tuple(w > 0 for w in wins)
    return base


def _rope_factor_absent(f: Fields) -> bool:
    return not f.has("partial_rotary_factor") and not any(
        isinstance(f.data.get(h), dict) and f.data[h].get("partial_rotary_factor") is not None
        for h in ("rope_parameters", "rope_scaling"))


def _gptj(f: Fields, name: str, family: str) -> dict[str, Any]:
    hidden, heads = f.int("n_embd"), f.int("n_head")
    head_dim = max(1, hidden // heads)
    if hidden % heads:
        f.problem(f"n_embd {hidden} is not a multiple of n_head {heads}")
    return dict(
        name=name, family=family, hidden=hidden, intermediate=f.int("n_inner", default=4 * hidden),
        layers=f.count("n_layer", ceiling=MAX_LAYERS), heads=heads, kv_heads=heads, head_dim=head_dim,
        vocab=f.int("vocab_size"), max_positions=f.int("n_positions", default=2048),
        activation=activation(f, "activation_function", "gelu_new"), gated_mlp=False,
        norm="layernorm", positions="rotary", rotary_dim=f.int("rotary_dim", default=head_dim),
        parallel_block=True, post_norm=False,
        tied_embeddings=f.flag("tie_word_embeddings", False), qkv_bias=False, out_bias=False,
        mlp_bias=True, lm_head_bias=True, embed_dim=hidden, position_rows=0, type_vocab=0,
        final_norm=True, encoder=False)


def _classic(f: Fields, name: str, family: str) -> dict[str, Any]:
    hidden, heads = f.int("hidden_size"), f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", default=heads)
    if hidden % heads:
        f.problem(f"hidden size {hidden} is not a multiple of {heads} heads")
    if heads % kv_heads:
        f.problem(f"num_key_value_heads {kv_heads} does not divide num_attention_heads {heads}")
    max_pos = f.int("max_position_embeddings", default=2048)
    base: dict[str, Any] = dict(
        name=name, family=family, hidden=hidden,
        layers=f.count("num_hidden_layers", ceiling=MAX_LAYERS), heads=heads,
        kv_heads=kv_heads, head_dim=f.int("head_dim", default=max(1, hidden // heads)),
        vocab=f.int("vocab_size"), max_positions=max_pos, rotary_dim=0, parallel_block=False,
        embed_dim=hidden, encoder=False, final_norm=True, gated_mlp=False, norm="layernorm",
        qkv_bias=True, out_bias=True, mlp_bias=True, lm_head_bias=False)
    if family == "opt":
        pre = f.flag("do_layer_norm_before", True)
        base.update(intermediate=f.int("ffn_dim"), embed_dim=f.int("word_embed_proj_dim",
                    default=hidden), position_rows=max_pos + 2, type_vocab=0,
                    final_norm=pre and not f.flag("_remove_final_layer_norm", False),
                    post_norm=not pre, positions="learned",
                    activation=activation(f, "activation_function", "relu"),
                    tied_embeddings=f.flag("tie_word_embeddings", True))
        return base
    base.update(intermediate=f.int("intermediate_size"), position_rows=max_pos,
                type_vocab=f.int("type_vocab_size", default=2), final_norm=False, encoder=True,
                post_norm=True, positions="absolute",
                activation=activation(f, "hidden_act", "gelu"), tied_embeddings=True)
    return base


READERS = {
    "llama": _llama, "mistral": _mistral, "qwen2": _qwen2, "qwen3": _qwen3, "phi3": _phi3,
    "gemma2": _gemma, "gemma3_text": _gemma, "exaone4": _exaone4, "smollm3": _smollm3,
    "starcoder2": _starcoder2, "glm4": _glm4, "cohere2": _cohere2,
    "gptj": _gptj, "opt": _classic, "bert": _classic,
}
