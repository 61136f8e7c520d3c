"""Hugging Face ``config.json`` files → one normalised :class:`ModelConfig`, and its sizes.

A config is read by its real field names, under every spelling its family and the library
versions use; the families and the structure each follows are in
:mod:`npusim.workloads.families` (llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3_text,
exaone4, mixtral, qwen2_moe, qwen3_moe, gpt_oss, llama4_text, glm4_moe, deepseek_v2,
deepseek_v3, and gptj, opt, bert). An unknown model_type with the standard fields runs as a
generic decoder with one :class:`ModelFamilyWarning`. Missing fields are one
:class:`WorkloadError` naming them all and the file; inconsistent fields one line each.

Sizes (:func:`param_count`, :func:`active_param_count`, :func:`param_counts_by_class`,
:func:`weight_bytes`, :func:`kv_cache_bytes`) follow the modules of the matching
``transformers`` class, biases and norms included (:mod:`npusim.workloads.families.sizes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from npusim.errors import WorkloadError
from npusim.spec.yamlio import read_text
from npusim.workloads.families import ModelFamilyWarning, read_config
from npusim.workloads.families import sizes as _sizes
from npusim.workloads.families.config import ModelConfig
from npusim.workloads.ir import BITS, bytes_of
from npusim.workloads.precision import WEIGHT_CLASSES, WeightsLike, weight_precision

__all__ = [
    "ModelConfig",
    "ModelFamilyWarning",
    "active_param_count",
    "hf_config_dir",
    "kv_cache_bytes",
    "load_hf_config",
    "param_count",
    "param_counts_by_class",
    "shipped_models",
    "weight_bytes",
]

ConfigSource = str | Path | Mapping[str, Any] | ModelConfig


def hf_config_dir() -> Path:
    from npusim.presets import WORKLOAD_DIR

    return WORKLOAD_DIR / "hf"


def shipped_models() -> list[str]:
    """Names of the configs under ``workloads/hf/`` (``llama2_7b`` …)."""
    return sorted(p.stem for p in hf_config_dir().glob("*.json"))


def _read(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        data = dict(source)
        return data, str(data.get("_name_or_path", "<config>"))
    p = Path(source)
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
    except RecursionError:
        raise WorkloadError(f"{p}: cannot read the config: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise WorkloadError(f"{p}: a config.json must hold a JSON object")
    return data, p.stem


def load_hf_config(source: ConfigSource) -> ModelConfig:
    """Read a config from a path, a dict, or a shipped name (``llama2_7b``)."""
    if isinstance(source, ModelConfig):
        return source
    data, name = _read(source)
    try:
        return read_config(data, name)
    except RecursionError:
        raise WorkloadError(f"{name}: cannot read the config: nested too deeply") from None
    except WorkloadError as exc:  # a user's file is named by its path, a shipped one by name
        path = Path(source) if isinstance(source, (str, Path)) else None
        if path is None or not path.exists():
            raise
        raise WorkloadError("\n".join(f"{path}{line[len(name):]}" if line.startswith(f"{name}:")
                                      else line for line in str(exc).splitlines())) from None


def param_counts_by_class(config: ConfigSource, mtp: bool = True) -> dict[str, int]:
    """Every parameter by weight class (attention, mlp, experts, shared_experts, router,
    embeddings, lm_head, norms; see :mod:`npusim.workloads.precision`)."""
    return _sizes.class_params(load_hf_config(config), mtp=mtp)


def param_count(config: ConfigSource, mtp: bool = True) -> int:
    """Every parameter of the model (embeddings, norms, biases, untied LM head, and the
    multi-token-prediction module unless ``mtp=False``)."""
    return sum(param_counts_by_class(config, mtp=mtp).values())


def active_param_count(config: ConfigSource, embedding: bool = True,
                       lm_head: bool = True) -> int:
    """Parameters one token passes through: all but the routed experts, plus top-k of them
    per MoE layer; the input embedding table unless ``embedding=False`` and the LM head
    unless ``lm_head=False`` (model cards count these differently); no MTP module."""
    return _sizes.active_params(load_hf_config(config), embedding=embedding, lm_head=lm_head)


def _check_precision(what: str, prec: str) -> None:
    if prec not in BITS:
        raise WorkloadError(f"{what}: unknown precision {prec!r} (known: {', '.join(BITS)})")


def weight_bytes(config: ConfigSource, weights: WeightsLike = "int8") -> int:
    """DRAM bytes of all parameters, each weight class at its precision under ``weights``
    (a name for all, or a class mapping such as ``{"experts": "int4", "default": "bf16"}``)."""
    if isinstance(weights, str):
        _check_precision("weights", weights)
        return bytes_of(param_count(config), weights)
    counts = param_counts_by_class(config)
    total = 0
    for cls in WEIGHT_CLASSES:
        if counts[cls]:
            prec = weight_precision(weights, cls)
            _check_precision(f"weights {cls}", prec)
            total += bytes_of(counts[cls], prec)
    return total


def kv_cache_bytes(config: ConfigSource, batch: int, context_len: int, kv: str = "int8") -> int:
    """The KV cache of ``batch`` sequences of ``context_len`` tokens at ``kv`` precision:
    per layer 2 x kv_heads x head_dim values per token (MLA: kv_lora_rank + qk_rope_head_dim,
    no factor 2), a sliding-window layer holding at most its window of tokens."""
    _check_precision("kv", kv)
    return bytes_of(_sizes.kv_values(load_hf_config(config), context_len) * batch, kv)
