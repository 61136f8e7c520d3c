"""Hugging Face ``config.json`` files → one normalised :class:`ModelConfig`, and its sizes.

A config is read by its real field names (``hidden_size``, ``num_key_value_heads``,
GPT-J's ``n_embd``/``n_head``/``n_layer``/``rotary_dim``, OPT's ``ffn_dim`` and
``word_embed_proj_dim`` …). A missing or mistyped field is a :class:`WorkloadError` naming
the field and the file, never a ``KeyError``. Families:

* ``llama``  decoder-only, RMSNorm, SwiGLU MLP, rotary; MHA, GQA or MQA through
  ``num_key_value_heads`` (``mistral`` and ``qwen2`` read the same way; qwen2 adds q/k/v bias);
* ``gptj``   decoder-only, parallel attention + MLP, partial rotary, GELU, LayerNorm;
* ``opt``    decoder-only, learned positions (offset 2), ReLU, LayerNorm, tied LM head;
* ``bert``   encoder-only, post-LayerNorm, GELU, absolute positions + token types.

Sizes (:func:`param_count`, :func:`weight_bytes`, :func:`kv_cache_bytes`) follow the
modules of the matching ``transformers`` class, biases and norms included, so the counts
equal the published parameter totals of the shipped configs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from npusim.errors import WorkloadError
from npusim.spec.yamlio import read_text
from npusim.workloads.ir import BITS, bytes_of

__all__ = [
    "ModelConfig",
    "hf_config_dir",
    "kv_cache_bytes",
    "load_hf_config",
    "param_count",
    "shipped_models",
    "weight_bytes",
]

Family = Literal["llama", "gptj", "opt", "bert"]

_FAMILY_BY_TYPE: dict[str, Family] = {
    "llama": "llama", "mistral": "llama", "qwen2": "llama", "gptj": "gptj", "opt": "opt",
    "bert": "bert",
}
_FAMILY_BY_ARCH: dict[str, Family] = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "llama",
    "GPTJForCausalLM": "gptj", "OPTForCausalLM": "opt", "BertForMaskedLM": "bert",
    "BertModel": "bert", "BertForQuestionAnswering": "bert",
    "BertForSequenceClassification": "bert",
}


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a transformer, independent of the config's family-specific spelling."""

    name: str
    family: Family
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    activation: str  # IR elementwise op: silu (SwiGLU when gated), gelu, relu
    gated_mlp: bool  # gate + up + down (SwiGLU) instead of up + down
    norm: Literal["rmsnorm", "layernorm"]
    positions: Literal["rotary", "learned", "absolute"]
    rotary_dim: int  # per head; 0 without rotary
    parallel_block: bool  # GPT-J: attention and MLP read the same normed input
    post_norm: bool  # BERT: norm after the residual add
    tied_embeddings: bool
    qkv_bias: bool
    out_bias: bool  # attention output projection
    mlp_bias: bool
    lm_head_bias: bool
    embed_dim: int  # OPT word_embed_proj_dim (== hidden for every other family)
    position_rows: int  # learned position table rows (OPT keeps 2 extra)
    type_vocab: int  # BERT token types
    final_norm: bool
    encoder: bool
    # --- Mixture of experts (experts == 0: a dense FFN in every layer) -------------------
    #: routed experts per MoE layer (num_local_experts, num_experts, n_routed_experts)
    experts: int = 0
    #: experts each token is routed to (num_experts_per_tok, top-k)
    experts_per_token: int = 0
    #: FFN width of one routed expert (moe_intermediate_size; Mixtral: intermediate_size)
    expert_intermediate: int = 0
    #: shared experts every token passes through (DeepSeek n_shared_experts; 1 for
    #: qwen2_moe / llama4), each ``shared_intermediate`` wide
    shared_experts: int = 0
    shared_intermediate: int = 0
    #: qwen2_moe: a sigmoid gate (hidden -> 1) scales the shared expert's output
    shared_expert_gate: bool = False
    #: per layer, True where the FFN is MoE (DeepSeek first_k_dense_replace, Llama 4
    #: interleave_moe_layer_step, mlp_only_layers, decoder_sparse_step); () means every
    #: layer when ``experts`` > 0, else none
    moe_layers: tuple[bool, ...] = ()
    router_bias: bool = False  # gpt-oss: the router has a bias
    expert_bias: bool = False  # gpt-oss: every expert projection has a bias
    #: the router's score function: "softmax" (Mixtral, Qwen) or "sigmoid" (DeepSeek-V3)
    router_score: str = "softmax"
    # --- Attention form -----------------------------------------------------------------
    #: "mha" (MHA/GQA/MQA through kv_heads) or "mla" (DeepSeek multi-head latent attention)
    attention_kind: str = "mha"
    q_lora_rank: int = 0  # MLA: 0 = q_proj straight from hidden (DeepSeek-V2-Lite)
    kv_lora_rank: int = 0  # MLA: the compressed KV width per token
    qk_nope_dim: int = 0  # MLA: per-head Q/K width without rotary
    qk_rope_dim: int = 0  # MLA: per-head (and shared K) rotary width
    v_head_dim: int = 0  # MLA: per-head V width (0: head_dim)
    #: per layer, the sliding window in tokens (0: full attention); () = all full
    layer_windows: tuple[int, ...] = ()
    attention_sinks: bool = False  # gpt-oss: a learned sink logit per head
    qk_norm: bool = False  # Qwen3, Gemma 3, EXAONE 4, OLMo 2: RMSNorm on q and k per head
    #: norms per block beyond the usual two (Gemma 2/3: post-attention and post-FFN norms)
    extra_norms: int = 0
    #: layers of the multi-token-prediction module (DeepSeek-V3 num_nextn_predict_layers):
    #: stored with the model, not run by a plain decode step
    mtp_layers: int = 0
    #: layer kinds in the config that npusim does not model (named in the load warning)
    unmodelled: tuple[str, ...] = ()

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    def moe_at(self, layer: int) -> bool:
        """Whether block ``layer``'s FFN is a mixture of experts."""
        if not self.is_moe:
            return False
        return self.moe_layers[layer] if self.moe_layers else True

    def window_at(self, layer: int) -> int:
        """Block ``layer``'s sliding window in tokens, 0 for full attention."""
        return self.layer_windows[layer] if self.layer_windows else 0

    @property
    def group(self) -> int:
        """Query heads per KV head (1 for MHA, heads for MQA)."""
        return self.heads // self.kv_heads


def hf_config_dir() -> Path:
    from npusim.presets import WORKLOAD_DIR

    return WORKLOAD_DIR / "hf"


def shipped_models() -> list[str]:
    """Names of the configs under ``workloads/hf/`` (``llama2_7b`` …)."""
    return sorted(p.stem for p in hf_config_dir().glob("*.json"))


def _read(source: str | Path | Mapping[str, Any] | ModelConfig) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        data = dict(source)
        return data, str(data.get("_name_or_path", "<config>"))
    p = Path(source)  # type: ignore[arg-type]  # a ModelConfig never reaches here
    if not p.exists() and not p.suffix:
        p = hf_config_dir() / f"{source}.json"
        if not p.exists():
            raise WorkloadError(f"no config file or shipped model named {str(source)!r} "
                                f"(shipped: {', '.join(shipped_models())})")
    text = read_text(p)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{p}:{exc.lineno}: cannot read the config: {exc.msg}") from None
    if not isinstance(data, dict):
        raise WorkloadError(f"{p}: a config.json must hold a JSON object")
    return data, p.stem


class _Fields:
    """Typed access to a config's fields, each error naming the field and the source."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def int(self, *names: str, default: int | None = None) -> int:
        for n in names:
            v = self.data.get(n)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise WorkloadError(f"{self.where}: {n} must be a positive integer, got {v!r}")
            return v
        if default is None:
            raise WorkloadError(f"{self.where}: missing field {' or '.join(names)}")
        return default

    def get(self, name: str, default: Any) -> Any:
        v = self.data.get(name)
        return default if v is None else v


def _family(data: dict[str, Any], where: str) -> Family:
    mt = data.get("model_type")
    if isinstance(mt, str) and mt in _FAMILY_BY_TYPE:
        return _FAMILY_BY_TYPE[mt]
    for arch in data.get("architectures") or []:
        if arch in _FAMILY_BY_ARCH:
            return _FAMILY_BY_ARCH[arch]
    raise WorkloadError(
        f"{where}: unsupported model (model_type={mt!r}, architectures="
        f"{data.get('architectures')!r}); supported model_type: {', '.join(_FAMILY_BY_TYPE)}")


_ACT = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu",
        "gelu_fast": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}


def _activation(name: Any, where: str, field: str) -> str:
    if name not in _ACT:
        raise WorkloadError(f"{where}: {field} {name!r} is not supported "
                            f"(known: {', '.join(_ACT)})")
    return _ACT[name]


def load_hf_config(source: str | Path | Mapping[str, Any] | ModelConfig) -> ModelConfig:
    """Read a config from a path, a dict, or a shipped name (``llama2_7b``)."""
    if isinstance(source, ModelConfig):
        return source
    data, name = _read(source)
    f = _Fields(data, name)
    fam = _family(data, name)
    common: dict[str, Any]
    if fam == "gptj":
        hidden, heads = f.int("n_embd"), f.int("n_head")
        common = dict(hidden=hidden, intermediate=f.int("n_inner", default=4 * hidden),
                      layers=f.int("n_layer"), heads=heads, kv_heads=heads,
                      max_positions=f.int("n_positions", default=2048))
    else:
        hidden, heads = f.int("hidden_size"), f.int("num_attention_heads")
        common = dict(hidden=hidden, layers=f.int("num_hidden_layers"), heads=heads,
                      kv_heads=f.int("num_key_value_heads", default=heads),
                      max_positions=f.int("max_position_embeddings", default=2048),
                      intermediate=f.int("ffn_dim") if fam == "opt"
                      else f.int("intermediate_size"))
    if hidden % heads:
        raise WorkloadError(f"{name}: hidden size {hidden} is not a multiple of {heads} heads")
    head_dim = f.int("head_dim", default=hidden // heads)
    if heads % common["kv_heads"]:
        raise WorkloadError(f"{name}: num_key_value_heads {common['kv_heads']} does not "
                            f"divide num_attention_heads {heads}")
    vocab = f.int("vocab_size")
    base: dict[str, Any] = dict(name=name, family=fam, head_dim=head_dim, vocab=vocab, embed_dim=hidden,
                position_rows=0, type_vocab=0, final_norm=True, encoder=False,
                parallel_block=False, post_norm=False, rotary_dim=0, **common)
    if fam == "llama":
        qwen = data.get("model_type") == "qwen2"
        base["rotary_dim"] = head_dim
        return ModelConfig(
            **base, activation=_activation(f.get("hidden_act", "silu"), name, "hidden_act"),
            gated_mlp=True, norm="rmsnorm", positions="rotary", qkv_bias=qwen,
            out_bias=False, mlp_bias=False, lm_head_bias=False,
            tied_embeddings=bool(f.get("tie_word_embeddings", False)))
    if fam == "gptj":
        base.update(rotary_dim=f.int("rotary_dim", default=head_dim), parallel_block=True)
        return ModelConfig(
            **base, activation=_activation(f.get("activation_function", "gelu_new"), name,
                                           "activation_function"),
            gated_mlp=False, norm="layernorm", positions="rotary", qkv_bias=False,
            out_bias=False, mlp_bias=True, lm_head_bias=True,
            tied_embeddings=bool(f.get("tie_word_embeddings", False)))
    if fam == "opt":
        base.update(embed_dim=f.int("word_embed_proj_dim", default=hidden),
                    position_rows=common["max_positions"] + 2,
                    final_norm=bool(f.get("do_layer_norm_before", True))
                    and not bool(f.get("_remove_final_layer_norm", False)),
                    post_norm=not bool(f.get("do_layer_norm_before", True)))
        return ModelConfig(
            **base, activation=_activation(f.get("activation_function", "relu"), name,
                                           "activation_function"),
            gated_mlp=False, norm="layernorm", positions="learned", qkv_bias=True,
            out_bias=True, mlp_bias=True, lm_head_bias=False,
            tied_embeddings=bool(f.get("tie_word_embeddings", True)))
    # bert
    base.update(position_rows=common["max_positions"], type_vocab=f.int("type_vocab_size",
                default=2), final_norm=False, encoder=True, post_norm=True)
    return ModelConfig(
        **base, activation=_activation(f.get("hidden_act", "gelu"), name, "hidden_act"),
        gated_mlp=False, norm="layernorm", positions="absolute", qkv_bias=True, out_bias=True,
        mlp_bias=True, lm_head_bias=False, tied_embeddings=True)


def _layer_params(c: ModelConfig) -> int:
    h, q, kv = c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim
    attn = h * q + 2 * h * kv + q * h
    attn += (q + 2 * kv if c.qkv_bias else 0) + (h if c.out_bias else 0)
    ups = 2 if c.gated_mlp else 1
    mlp = (ups + 1) * h * c.intermediate
    mlp += (ups * c.intermediate + h) if c.mlp_bias else 0
    per_norm = h if c.norm == "rmsnorm" else 2 * h
    norms = 1 if c.parallel_block else 2
    return attn + mlp + norms * per_norm


def param_count(config: str | Path | Mapping[str, Any] | ModelConfig) -> int:
    """Every parameter of the model (embeddings, norms, biases, untied LM head)."""
    c = load_hf_config(config)
    per_norm = c.hidden if c.norm == "rmsnorm" else 2 * c.hidden
    total = c.layers * _layer_params(c) + c.vocab * c.embed_dim
    total += c.position_rows * c.hidden + c.type_vocab * c.hidden
    if c.embed_dim != c.hidden:  # OPT project_in / project_out, no bias
        total += 2 * c.embed_dim * c.hidden
    if c.final_norm:
        total += per_norm
    if c.encoder:  # embedding LayerNorm and the pooler of BertModel
        total += 2 * c.hidden + c.hidden * c.hidden + c.hidden
    if not c.tied_embeddings:
        total += c.vocab * c.embed_dim
    if c.lm_head_bias:
        total += c.vocab
    return total


def weight_bytes(config: str | Path | Mapping[str, Any] | ModelConfig,
                 weights: str = "int8") -> int:
    """DRAM bytes of all parameters stored at ``weights`` precision (int4: two per byte)."""
    if weights not in BITS:
        raise WorkloadError(f"weights: unknown precision {weights!r} (known: {', '.join(BITS)})")
    return bytes_of(param_count(config), weights)


def kv_cache_bytes(config: str | Path | Mapping[str, Any] | ModelConfig, batch: int,
                   context_len: int, kv: str = "int8") -> int:
    """K and V of every layer for ``batch`` sequences of ``context_len`` tokens:
    2 x layers x kv_heads x head_dim x context x batch values at ``kv`` precision."""
    if kv not in BITS:
        raise WorkloadError(f"kv: unknown precision {kv!r} (known: {', '.join(BITS)})")
    c = load_hf_config(config)
    if c.encoder:
        return 0
    return bytes_of(2 * c.layers * c.kv_heads * c.head_dim * context_len * batch, kv)
