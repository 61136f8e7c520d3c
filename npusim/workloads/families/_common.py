"""What the decoder families share: the standard fields, per-layer windows, MoE layer maps.

Field spellings differ by family and by library version; each reader here accepts all of
them (``rope_scaling`` and ``rope_parameters``; ``sliding_window`` with ``layer_types`` or
``sliding_window_pattern``; ``partial_rotary_factor`` at the top or inside the rope fields).
"""

from __future__ import annotations

from typing import Any

from npusim.workloads.families._fields import MAX_LAYERS, Fields

__all__ = ["ACT", "activation", "decoder_base", "moe_map", "rope_layers", "windows"]

ACT = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu",
       "gelu_fast": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}

#: layer_types entries npusim models as attention (with the window their kind implies)
_ATTENTION_KINDS = {"full_attention", "attention", "global_attention", "sliding_attention",
                    "chunked_attention", "deepseek_sparse_attention"}


def activation(f: Fields, field: str, default: str) -> str:
    name = f.get(field, default)
    if name not in ACT:
        f.bad(f"{field} {name!r} is not supported (known: {', '.join(ACT)})")
        return "silu"
    return ACT[name]


def _rope_field(f: Fields, name: str) -> Any:
    """A rope field at the top level or inside rope_parameters / rope_scaling (v5 nests)."""
    if f.data.get(name) is not None:
        return f.data[name]
    for holder in ("rope_parameters", "rope_scaling"):
        d = f.data.get(holder)
        if isinstance(d, dict) and d.get(name) is not None:
            return d[name]
    return None


def decoder_base(f: Fields, name: str, family: str, *, head_dim: int | None = None,
                 tied: bool = False, qkv_bias: bool = False, out_bias: bool = False,
                 intermediate: bool = True) -> dict[str, Any]:
    """The fields every RMSNorm / SwiGLU / rotary decoder (llama and its descendants) has.

    ``head_dim`` given: the family's default when the config has none (Gemma: 256);
    ``tied``: the family's default for tie_word_embeddings; ``qkv_bias``/``out_bias``:
    defaults for attention_bias (q/k/v and o biases together, as LlamaAttention reads it)."""
    hidden, heads = f.int("hidden_size"), f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", default=heads)
    layers = f.count("num_hidden_layers", ceiling=MAX_LAYERS)
    hd = f.int("head_dim", default=head_dim if head_dim is not None
               else max(1, hidden // heads))
    if not f.has("head_dim") and head_dim is None and hidden % heads:
        f.problem(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads} "
                  f"and no head_dim is given")
    if heads % kv_heads:
        f.problem(f"num_key_value_heads {kv_heads} does not divide num_attention_heads {heads}")
    bias = f.data.get("attention_bias")
    if bias is not None and not isinstance(bias, bool):
        f.bad(f"attention_bias must be true or false, got {bias!r}")
        bias = None
    factor = _rope_field(f, "partial_rotary_factor")
    if factor is None:
        factor = 1.0
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
        f.bad(f"partial_rotary_factor must be in (0, 1], got {factor!r}")
        factor = 1.0
    return dict(
        name=name, family=family, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
        head_dim=hd, vocab=f.int("vocab_size"),
        max_positions=f.int("max_position_embeddings", default=2048),
        intermediate=f.int("intermediate_size") if intermediate else 0,
        activation=activation(f, "hidden_act", "silu"), gated_mlp=True, norm="rmsnorm",
        positions="rotary", rotary_dim=int(hd * factor), parallel_block=False,
        post_norm=False, tied_embeddings=f.flag("tie_word_embeddings", tied),
        qkv_bias=qkv_bias if bias is None else bias,
        out_bias=out_bias if bias is None else bias,
        mlp_bias=f.flag("mlp_bias", False), lm_head_bias=False, embed_dim=hidden,
        position_rows=0, type_vocab=0, final_norm=True, encoder=False)


def windows(f: Fields, layers: int, *, pattern: int | str | None = None,
            every_layer: bool = False, qwen: bool = False,
            ) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Per-layer sliding windows (0 = full attention) and the unmodelled layer kinds.

    ``layer_types`` wins when present (sliding_attention → sliding_window,
    chunked_attention → attention_chunk_size); else ``sliding_window`` with
    ``sliding_window_pattern`` (an int N: every N-th layer global; a string such as "LLLG")
    or the family's default ``pattern``; ``every_layer``: the window applies to all layers
    (Mistral, Phi-3); ``qwen``: only with use_sliding_window, layers from max_window_layers."""
    types = f.str_list("layer_types", layers)
    sw = f.opt_int("sliding_window")
    if types is not None:
        out, unknown = [], []
        for t in types:
            if t == "sliding_attention":
                if sw is None:
                    f.problem("layer_types has sliding_attention layers but no sliding_window")
                out.append(sw or 0)
            elif t == "chunked_attention":
                out.append(f.int("attention_chunk_size"))
            else:
                if t not in _ATTENTION_KINDS and t not in unknown:
                    unknown.append(t)
                out.append(0)
        return (tuple(out) if any(out) else ()), tuple(unknown)
    if sw is None:
        return (), ()
    if qwen:
        if not f.flag("use_sliding_window", False):
            return (), ()
        first = f.int("max_window_layers", default=layers, zero=True)
        return tuple(sw if i >= first else 0 for i in range(layers)), ()
    if every_layer:
        return (sw,) * layers, ()
    pat = f.get("sliding_window_pattern", pattern)
    if pat is None:
        return (sw,) * layers, ()
    if isinstance(pat, bool) or not isinstance(pat, (int, str)) or not pat:
        f.bad(f"sliding_window_pattern must be a positive integer or a string of L/G, "
                  f"got {pat!r}")
        return (), ()
    if isinstance(pat, int):
        if pat <= 0:
            f.bad(f"sliding_window_pattern must be positive, got {pat}")
            return (), ()
        return tuple(sw if (i + 1) % pat else 0 for i in range(layers)), ()
    if set(pat) - {"L", "G"}:
        f.bad(f"sliding_window_pattern {pat!r} must be made of L (local) and G (global)")
        return (), ()
    return tuple(sw if pat[i % len(pat)] == "L" else 0 for i in range(layers)), ()


def rope_layers(f: Fields, layers: int) -> tuple[bool, ...]:
    """Which layers apply rotary positions (SmolLM3, Llama 4): ``no_rope_layers`` as given
    (1 = rotary), else every ``no_rope_layer_interval``-th layer (default 4) without; ()
    when every layer has it."""
    interval = f.int("no_rope_layer_interval", default=4)
    rope = f.int_list("no_rope_layers", layers) or [int((i + 1) % interval != 0)
                                                    for i in range(layers)]
    return () if all(rope) else tuple(bool(r) for r in rope)


def moe_map(f: Fields, layers: int, *, first_dense: int = 0, every: int = 1,
            offset: int | None = None, dense: list[int] | None = None,
            explicit: list[int] | None = None) -> tuple[bool, ...]:
    """Per layer, whether its FFN is MoE; () when every layer is.

    ``first_dense``: DeepSeek/GLM first_k_dense_replace; ``every``: an MoE layer every N
    (qwen2_moe decoder_sparse_step: (i+1) % N == 0; DeepSeek moe_layer_freq: i % N == 0 —
    ``offset`` picks which, the default (i+1)); ``dense``: mlp_only_layers; ``explicit``:
    the MoE layer indices (Llama 4 moe_layers). A per-layer list wins over all of these:
    ``mlp_layer_types`` ("dense" / "sparse", as transformers 5 writes it) or
    ``is_moe_layer`` (booleans)."""
    types = f.str_list("mlp_layer_types", layers)
    if types is not None:
        bad_kinds = sorted(set(types) - {"dense", "sparse", "moe"})
        if bad_kinds:
            f.bad(f"mlp_layer_types has {', '.join(map(repr, bad_kinds))} (known: dense, "
                  f"sparse)")
        flags = [t in ("sparse", "moe") for t in types]
        return () if all(flags) else tuple(flags)
    marks = f.data.get("is_moe_layer")
    if isinstance(marks, list) and len(marks) == layers and all(isinstance(m, bool)
                                                                 for m in marks):
        return () if all(marks) else tuple(marks)
    if explicit is not None:
        bad = [i for i in explicit if not 0 <= i < layers]
        if bad:
            f.problem(f"moe_layers names layers {bad} outside 0..{layers - 1}")
        flags = [i in set(explicit) for i in range(layers)]
    else:
        if first_dense > layers:
            f.problem(f"first_k_dense_replace {first_dense} exceeds num_hidden_layers {layers}")
        skip = set(dense or [])
        bad = sorted(i for i in skip if not 0 <= i < layers)
        if bad:
            f.problem(f"mlp_only_layers names layers {bad} outside 0..{layers - 1}")
        shift = 1 if offset is None else offset
        flags = [i >= first_dense and i not in skip and (i + shift) % every == 0
                 for i in range(layers)]
    return () if all(flags) else tuple(flags)
