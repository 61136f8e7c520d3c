"""Transformer and LLM workloads from HF-style ``config.json``: prefill, decode, capacity.

``from_hf_config(cfg, phase="prefill"|"decode", ...)`` builds a :class:`Workload` of IR
layers, one transformer block after another, from a config read by
:mod:`npusim.workloads.hf_config`; each block's attention form (MHA/GQA/MQA, latent
attention, sliding window, sinks, q/k norms) and FFN (dense, or mixture of experts routed
by ``routing``) come from :mod:`npusim.workloads.blocks`.

Phases. *Prefill* runs ``batch x prompt_len`` tokens; attention reads K and V just
computed (``b_kind="act"``). *Decode* runs one new token per sequence against a KV cache of
``context_len`` tokens (``b_kind="kv"``, read from DRAM). K/V projections write the cache
in both phases (``out_kind="kv"``). The LM head runs, in prefill, over the last position of
each sequence (``logits="last"``, default: serving engines sample there) or over every
token (``logits="all"``: the HF forward, the 2·N·T FLOP rule); in decode over the new token.
Learned positions (OPT) and token types (BERT) are further gathers; biases are folded into
their Matmuls (counted in :func:`param_count`, not as separate vector work).

Attention (``attention=``). ``"fused"`` (default) builds one :class:`Attention` layer per
block: Q (an activation) against K and V read from the KV cache in DRAM (``kv``, at ``kv``
precision, in both phases: the K/V projections wrote them there), O out; causal in prefill
(query ``i`` sees keys ``0 .. i``: the lower triangle, ``q(q+1)/2`` scores per head instead
of ``q²``), the whole cache in decode; encoders (BERT) are bidirectional. The compiler runs
it flash-style on chip, scores never in DRAM (npusim/compiler/attention.py).
``"materialized"`` builds the eager form: scores and context as Matmuls with
``batch = batch x kv_heads`` and ``m = group x query_tokens`` (the ``group`` query heads
sharing one KV head stacked as rows of one product against that head's K or V) and a
Softmax between them, over the full ``q x ctx`` block (the mask is applied to computed
scores, so nothing is skipped), scores (softmax precision) and probabilities (activation
precision, as P·V reads them) as activations, each one size everywhere. Either way MACs
are the same for MHA, GQA and MQA while the K/V bytes are counted once per KV head, so GQA
reduces KV traffic by the group factor. A prompt (or context) longer than the config's
``max_position_embeddings`` builds, with a :class:`ContextLengthWarning`.

Precision per tensor class: ``weights`` for every parameter (Matmul ``weight_precision``
when B is a weight; one name, or one per weight class of :mod:`npusim.workloads.precision`), ``activations`` for Matmul inputs and outputs, rotary, activation
functions and residual adds, ``kv`` for the cache (K/V projection outputs, and the B
operand of decode attention). Softmax (and its scores) and norms run at ``activations``
when that is a 16/32-bit float, else at fp16 (an assumption shared with
:mod:`npusim.workloads.transformer`: integer inference keeps them in floating point).
``accum`` is recorded in ``meta["precision"]`` for the compiler. The embedding gather moves
rows at activation precision (a few KiB per token; the table's DRAM footprint
counts at ``weights`` precision in :func:`weight_bytes`).

Encoder-only configs (BERT) build a bidirectional encoder of ``batch x prompt_len`` tokens
(prefill only): word + position + token-type embeddings, post-LayerNorm blocks, no head.
It mirrors :func:`npusim.workloads.transformer.bert` (same MACs, checked by a test) rather
than calling it, because that builder has one precision for weights and activations.

Capacity: :func:`memory_footprint` adds weights, the KV cache and peak activations (with
fused attention the largest is an MLP or LM-head tensor, never the scores);
:func:`check_capacity` raises :class:`MappingError` with one line when they exceed DRAM.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from npusim.errors import MappingError, WorkloadError
from npusim.workloads.blocks import BlockCtx, block, embeddings, head
from npusim.workloads.hf_config import (
    ModelConfig,
    kv_cache_bytes,
    load_hf_config,
    param_count,
    param_counts_by_class,
    shipped_models,
    weight_bytes,
)
from npusim.workloads.ir import BITS, Workload, stored_weight_bytes
from npusim.workloads.precision import (
    WEIGHT_CLASSES,
    WeightsLike,
)
from npusim.workloads.routing import Routing, check_trace, parse_routing

if TYPE_CHECKING:
    from npusim.spec.arch import Chip

__all__ = [
    "ATTENTION_MODES",
    "ConfigLike",
    "ContextLengthWarning",
    "Footprint",
    "ModelConfig",
    "check_capacity",
    "class_params",
    "from_hf_config",
    "kv_cache_bytes",
    "load_hf_config",
    "memory_footprint",
    "model_kv_cache_bytes",
    "model_weight_bytes",
    "param_count",
    "require_fits",
    "shipped_models",
    "warn_past_max_positions",
    "weight_bytes",
]

Phase = Literal["prefill", "decode"]
ConfigLike = str | Path | Mapping[str, Any] | ModelConfig
ATTENTION_MODES: tuple[str, ...] = ("fused", "materialized")


class ContextLengthWarning(UserWarning):
    """More positions than the model's ``max_position_embeddings``: it was never trained
    for them (the run is still simulated, the arithmetic is the same)."""


def warn_past_max_positions(config: ConfigLike, tokens: int, what: str = "tokens") -> None:
    """A :class:`ContextLengthWarning` when ``tokens`` positions exceed the config's
    ``max_position_embeddings`` (``what`` names them in the message)."""
    cfg = load_hf_config(config)
    if tokens > cfg.max_positions:
        warnings.warn(f"{cfg.name}: {what} = {tokens} positions exceed its "
                      f"max_position_embeddings {cfg.max_positions}; the model was not "
                      f"trained for them (simulated anyway)", ContextLengthWarning,
                      stacklevel=3)


def _check_precisions(**named: str) -> None:
    for key, p in named.items():
        if p not in BITS:
            raise WorkloadError(f"{key}: unknown precision {p!r} (known: {', '.join(BITS)})")


def _check_weights(weights: WeightsLike) -> None:
    if isinstance(weights, str):
        _check_precisions(weights=weights)
        return
    for cls, p in weights.items():
        if cls != "default" and cls not in WEIGHT_CLASSES:
            raise WorkloadError(f"weights: unknown tensor class {cls!r} "
                                f"(known: default, {', '.join(WEIGHT_CLASSES)})")
        _check_precisions(**{f"weights {cls}": p})


def from_hf_config(config: ConfigLike, phase: Phase = "prefill", batch: int = 1,
                   prompt_len: int = 512, context_len: int | None = None,
                   weights: WeightsLike = "int8", activations: str = "int8", kv: str = "int8",
                   accum: str = "fp32", attention: str = "fused",
                   routing: str | Routing = "uniform",
                   logits: Literal["last", "all"] = "last") -> Workload:
    """One forward pass of a HF-style model as a workload.

    ``config`` is a path to a ``config.json``, its dict, a :class:`ModelConfig` or a shipped
    name (``llama2_7b``). ``prefill`` runs ``batch x prompt_len`` tokens; ``decode`` runs one
    token per sequence attending to ``context_len`` cached tokens (default ``prompt_len``).
    ``attention`` is ``"fused"`` (one :class:`Attention` layer per block, causal in prefill)
    or ``"materialized"`` (scores, softmax and context as separate layers, full block).
    ``weights``: one precision, or one per weight class (:mod:`npusim.workloads.precision`).
    ``routing`` (MoE models): ``uniform``, ``skewed:S`` or a trace file
    (:mod:`npusim.workloads.routing`). ``logits``: the prefill's LM head over the last
    position of each sequence (``last``, as serving engines sample) or over every
    position (``all``, the HF forward). Positions past ``max_position_embeddings`` give a
    :class:`ContextLengthWarning`.
    """
    cfg = load_hf_config(config)
    _check_weights(weights)
    _check_precisions(activations=activations, kv=kv, accum=accum)
    if attention not in ATTENTION_MODES:
        raise WorkloadError(f"attention must be one of {', '.join(ATTENTION_MODES)}, "
                            f"got {attention!r}")
    if phase not in ("prefill", "decode"):
        raise WorkloadError(f"phase must be 'prefill' or 'decode', got {phase!r}")
    if logits not in ("last", "all"):
        raise WorkloadError(f"logits must be 'last' or 'all', got {logits!r}")
    if batch <= 0 or prompt_len <= 0 or (context_len is not None and context_len <= 0):
        raise WorkloadError("batch, prompt_len and context_len must be positive")
    if cfg.encoder and phase == "decode":
        raise WorkloadError(f"{cfg.name}: an encoder-only model has no decode phase")
    route = parse_routing(routing)
    moe_blocks = [i for i in range(cfg.layers) if cfg.moe_at(i)]
    if moe_blocks:
        if not 0 < cfg.experts_per_token <= cfg.experts:
            raise WorkloadError(f"{cfg.name}: experts_per_token {cfg.experts_per_token} must "
                                f"be between 1 and the number of experts {cfg.experts}")
        check_trace(route, moe_blocks, cfg.experts, cfg.experts_per_token)
    ctx_len = context_len if context_len is not None else prompt_len
    fused = attention == "fused"
    ordinal = {b: j for j, b in enumerate(moe_blocks)}
    q_len, kv_len = (prompt_len, prompt_len) if phase == "prefill" else (1, ctx_len)
    warn_past_max_positions(cfg, kv_len, "prompt" if phase == "prefill" else "context")
    x = BlockCtx(cfg, phase, batch, q_len, kv_len, weights, activations, kv, fused, route,
                 logits == "all", ordinal)
    layers = embeddings(x)
    for i in range(cfg.layers):
        layers += block(x, i)
    layers += head(x)
    meta: dict[str, object] = {
        "model": cfg.name, "family": cfg.family, "phase": phase, "batch": batch,
        "prompt_len": prompt_len, "context_len": x.kv_len, "tokens": x.tokens,
        "precision": {"weights": weights, "activations": activations, "kv": kv,
                      "accum": accum},
        "attention": attention, "config": cfg, "logits": logits,
    }
    if moe_blocks:
        meta["routing"] = route.describe()
    return Workload(f"{cfg.name}-{phase}", tuple(layers), meta)


# Capacity ----------------------------------------------------------------------------------

_GiB = 2**30


@dataclass(frozen=True)
class Footprint:
    """DRAM bytes a run needs: weights, KV cache and the largest live activations."""

    weight_bytes: int
    kv_cache_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.kv_cache_bytes + self.activation_bytes

    def describe(self) -> str:
        return (f"weights {self.weight_bytes / _GiB:.2f} GiB + KV cache "
                f"{self.kv_cache_bytes / _GiB:.2f} GiB + activations "
                f"{self.activation_bytes / _GiB:.2f} GiB = {self.total_bytes / _GiB:.2f} GiB")


def _peak_activation_bytes(wl: Workload) -> int:
    """The largest activation working set of one layer (its act inputs plus outputs)."""
    peak = 0
    for layer in wl.layers:
        peak = max(peak, layer.input_bytes().get("act", 0) + layer.output_bytes().get("act", 0))
    return peak


def class_params(config: ConfigLike) -> dict[str, int]:
    """Parameters per weight class (:mod:`npusim.workloads.precision`), every expert
    counted: :func:`npusim.workloads.hf_config.param_counts_by_class`."""
    return param_counts_by_class(config)


def model_weight_bytes(config: ConfigLike, weights: WeightsLike = "int8") -> int:
    """DRAM bytes of all parameters, each class at its precision under ``weights``
    (:func:`npusim.workloads.hf_config.weight_bytes`)."""
    _check_weights(weights)
    return weight_bytes(config, weights)


def model_kv_cache_bytes(config: ConfigLike, batch: int, context_len: int,
                         kv: str = "int8") -> int:
    """The KV cache of ``batch`` sequences of ``context_len`` tokens, layer by layer in its
    form: K and V per KV head, or MLA's compressed latent and shared rotary key; a
    sliding-window layer holds at most its window
    (:func:`npusim.workloads.hf_config.kv_cache_bytes`)."""
    return kv_cache_bytes(config, batch, context_len, kv)


def memory_footprint(workload_or_config: Workload | ConfigLike, *, phase: Phase = "decode",
                     batch: int = 1, prompt_len: int = 512, context_len: int | None = None,
                     weights: WeightsLike = "int8", activations: str = "int8",
                     kv: str = "int8", attention: str = "fused") -> Footprint:
    """Bytes of weights, KV cache (``context_len`` tokens, default ``prompt_len``) and peak
    activations. A workload built by :func:`from_hf_config` is sized from its config and
    meta (the keyword arguments are then ignored); any other workload from its layers.
    Fused attention keeps its scores on chip, so they are no activation here; materialised
    attention's scores are."""
    if isinstance(workload_or_config, Workload):
        wl = workload_or_config
        cfg = wl.meta.get("config")
        if isinstance(cfg, ModelConfig):
            prec: dict[str, str] = wl.meta["precision"]  # type: ignore[assignment]
            return Footprint(
                model_weight_bytes(cfg, prec["weights"]),
                model_kv_cache_bytes(cfg, int(wl.meta["batch"]),  # type: ignore[call-overload]
                                     int(wl.meta["context_len"]),  # type: ignore[call-overload]
                                     prec["kv"]),
                _peak_activation_bytes(wl))
        w = sum(stored_weight_bytes(layer) for layer in wl.layers)
        k = sum(layer.input_bytes().get("kv", 0) + layer.output_bytes().get("kv", 0)
                for layer in wl.layers)
        return Footprint(w, k, _peak_activation_bytes(wl))
    ctx = context_len if context_len is not None else prompt_len
    wl = from_hf_config(workload_or_config, phase=phase, batch=batch, prompt_len=prompt_len,
                        context_len=ctx, weights=weights, activations=activations, kv=kv,
                        attention=attention)
    return memory_footprint(wl)


def require_fits(chip: Chip, footprint: Footprint) -> Footprint:
    """``footprint`` if it fits ``chip``'s DRAM; otherwise :class:`MappingError`, one line:
    ``weights X GiB + KV cache Y GiB + activations Z GiB = T GiB > DRAM capacity C GiB by D``."""
    cap = int(chip.dram.capacity_bytes)
    if footprint.total_bytes > cap:
        over = footprint.total_bytes - cap
        raise MappingError(
            f"{chip.name}: {footprint.describe()} > DRAM capacity {cap / _GiB:.2f} GiB by "
            f"{over / _GiB:.2f} GiB ({over:,} bytes)")
    return footprint


def check_capacity(chip: Chip, workload_or_config: Workload | ConfigLike,
                   **kwargs: Any) -> Footprint:
    """The footprint of :func:`memory_footprint` (same keyword arguments) if it fits
    ``chip``'s DRAM; otherwise the one-line :class:`MappingError` of :func:`require_fits`."""
    return require_fits(chip, memory_footprint(workload_or_config, **kwargs))
