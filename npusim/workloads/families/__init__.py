"""Model families: a ``config.json`` → one :class:`ModelConfig`, by its ``model_type``.

Each family module reads its fields under every spelling the family and the library
versions use and says in its docstring which reference configuration and modeling code the
structure follows:

* :mod:`.dense`     llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3_text, exaone4,
  smollm3, starcoder2, glm4, cohere2 (and gptj, opt, bert);
* :mod:`.moe`       mixtral, qwen2_moe, qwen3_moe, gpt_oss, llama4_text, glm4_moe;
* :mod:`.deepseek`  deepseek_v2, deepseek_v3 (multi-head latent attention).

A model_type npusim does not know, whose standard fields are present, is read as a llama-
layout decoder — or a mixture of experts when it carries expert fields — with one
:class:`ModelFamilyWarning`; layer kinds npusim does not model (linear or state-space
attention layers: qwen3_next's linear_attention, Mamba/Jamba blocks) are named in that
warning and simulated as full attention layers. A multimodal config (``gemma3``,
``llama4`` …) is read through its ``text_config``, with a warning that its vision encoder
is not modelled.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from npusim.errors import WorkloadError
from npusim.workloads.families import deepseek, dense, moe
from npusim.workloads.families._common import decoder_base, moe_map, windows
from npusim.workloads.families._fields import Fields
from npusim.workloads.families.config import ModelConfig

__all__ = ["FAMILIES", "ModelConfig", "ModelFamilyWarning", "read_config"]

Reader = Callable[[Fields, str, str], dict[str, Any]]

FAMILIES: dict[str, Reader] = {**dense.READERS, **moe.READERS, **deepseek.READERS}

#: model_type aliases: names the same structure is published under
_ALIASES = {"llama4": "llama4_text", "gemma3": "gemma3_text"}

_BY_ARCH = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3", "Phi3ForCausalLM": "phi3", "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text", "Exaone4ForCausalLM": "exaone4",
    "MixtralForCausalLM": "mixtral", "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3MoeForCausalLM": "qwen3_moe", "GptOssForCausalLM": "gpt_oss",
    "Llama4ForCausalLM": "llama4_text", "Glm4MoeForCausalLM": "glm4_moe",
    "SmolLM3ForCausalLM": "smollm3", "Starcoder2ForCausalLM": "starcoder2",
    "Glm4ForCausalLM": "glm4", "Cohere2ForCausalLM": "cohere2",
    "DeepseekV2ForCausalLM": "deepseek_v2", "DeepseekV3ForCausalLM": "deepseek_v3",
    "GPTJForCausalLM": "gptj", "OPTForCausalLM": "opt", "BertForMaskedLM": "bert",
    "BertModel": "bert", "BertForQuestionAnswering": "bert",
    "BertForSequenceClassification": "bert",
}

#: fields whose presence marks layer kinds npusim does not model
_UNMODELLED_FIELDS = {
    "linear_num_key_heads": "linear_attention", "linear_conv_kernel_dim": "linear_attention",
    "mamba_d_state": "mamba", "mamba_n_heads": "mamba", "ssm_state_size": "state_space",
    "state_size": "state_space", "attn_layer_period": "mamba", "conv_L_cache": "conv",
    "hybrid_override_pattern": "mamba", "layers_block_type": "mamba",
}

#: the fields an unknown family must have to be read as a decoder
_STANDARD = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


class ModelFamilyWarning(UserWarning):
    """A config read as a generic decoder, or with layer kinds npusim does not model."""


def _family(data: dict[str, Any]) -> str | None:
    mt = data.get("model_type")
    if isinstance(mt, str):
        mt = _ALIASES.get(mt, mt)
        if mt in FAMILIES:
            return mt
    for arch in data.get("architectures") or []:
        if isinstance(arch, str) and arch in _BY_ARCH:
            return _BY_ARCH[arch]
    return None


def read_config(data: dict[str, Any], name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a parsed ``config.json`` (``name``: for messages)."""
    text = data.get("text_config")
    if isinstance(text, dict) and data.get("hidden_size") is None:
        inner = {k: v for k, v in data.items() if k not in ("text_config", "vision_config")}
        data = {**inner, **text}  # text_config's fields win; tie_word_embeddings may be outer
        if isinstance(text.get("model_type"), str):
            data["model_type"] = text["model_type"]
        warnings.warn(f"{name}: a multimodal config, read through its text_config (the "
                      f"vision encoder is not modelled)", ModelFamilyWarning, stacklevel=3)
    family = _family(data)
    f = Fields(data, name)
    kwargs = _generic(f, name) if family is None else FAMILIES[family](f, name, family)
    f.raise_problems()
    unmodelled = kwargs.get("unmodelled") or ()
    said = (f"; unmodelled layer kinds: {', '.join(unmodelled)} (simulated as full attention "
            f"layers)") if unmodelled else ""
    if family is None:
        kind = "mixture-of-experts" if kwargs.get("experts") else "dense"
        warnings.warn(f"{name}: model_type {data.get('model_type')!r} is not a family npusim "
                      f"knows; read as a {kind} decoder from its standard fields (llama "
                      f"layout: RMSNorm, SwiGLU, rotary){said}", ModelFamilyWarning,
                      stacklevel=3)
    elif unmodelled:
        warnings.warn(f"{name}: {said[2:]}", ModelFamilyWarning, stacklevel=3)
    return ModelConfig(**kwargs)


def _generic(f: Fields, name: str) -> dict[str, Any]:
    """An unknown model_type: a llama-layout decoder, or an MoE when expert fields are there."""
    mt, archs = f.data.get("model_type"), f.data.get("architectures")
    if not any(f.has(n) for n in _STANDARD):
        raise WorkloadError(
            f"{name}: unsupported model (model_type={mt!r}, architectures={archs!r}) and no "
            f"standard decoder fields ({', '.join(_STANDARD)}); known model_type: "
            f"{', '.join(sorted(FAMILIES))}")
    is_moe = any(f.has(n) for n in moe.EXPERT_COUNT)
    base = decoder_base(f, name, str(mt or "unknown"), intermediate=not is_moe
                        or f.has("intermediate_size"))
    layers = base["layers"]
    wins, unknown = windows(f, layers)
    unmodelled = list(unknown)
    for field, kind in _UNMODELLED_FIELDS.items():
        if f.has(field) and kind not in unmodelled:
            unmodelled.append(kind)
    base.update(layer_windows=wins, unmodelled=tuple(unmodelled),
                qk_norm=f.flag("use_qk_norm", False))
    if is_moe:
        base.update(moe.expert_fields(f, ("moe_intermediate_size", "intermediate_size")))
        if not base["intermediate"]:
            base["intermediate"] = base["expert_intermediate"]
        shared_width = f.int("shared_expert_intermediate_size", default=0, zero=True)
        shared = f.int("n_shared_experts", "num_shared_experts",
                       default=1 if shared_width else 0, zero=True)
        base.update(shared_experts=shared,
                    shared_intermediate=(shared_width or base["expert_intermediate"])
                    if shared else 0)
        base["moe_layers"] = moe_map(
            f, layers, first_dense=f.int("first_k_dense_replace", default=0, zero=True),
            every=f.int("decoder_sparse_step", default=1), dense=f.int_list("mlp_only_layers"))
    return base
