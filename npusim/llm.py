"""LLM serving metrics on a chip: time to first token, time per output token, tokens/s, J/token.

``run_llm(chip, model, prompt=512, gen=128, batch=1, ...)`` checks that weights, the KV cache
of ``prompt + gen`` tokens and the activations fit DRAM (else a one-line MappingError), then
simulates one prefill of ``batch x prompt`` tokens and a few decode steps. The prefill computes
logits at the last position of each sequence only (``logits="last"``, default: a server samples
one token there); ``logits="all"`` computes them at every position, as the HF forward does.

Generation of ``gen`` tokens: the first comes out of prefill (TTFT = prefill latency); each
of the other ``gen - 1`` comes from a decode step whose KV cache holds ``prompt + j`` tokens
(j = 1 … gen-1). Decode steps are simulated at ``decode_points`` contexts spread evenly over
that range and linearly interpolated between them for every step (decode cost is affine in
the context, so even two points integrate it exactly up to the simulator's tiling steps);
TPOT is the mean step latency. With ``gen == 1`` one step at ``prompt + 1`` is simulated for
the per-layer table, and the totals contain no decode time.

Definitions: ``tokens_per_s`` is decode throughput, ``batch / TPOT``; ``j_per_token`` is
decode energy per generated token (``step energy / batch``, averaged over the steps);
``energy_per_token_e2e_j`` adds prefill and divides by ``batch x gen``; ``average_power_w``
is total energy over total time (prefill + decode). ``limit`` names what bounds a decode
step: the per-layer ``limit`` that accounts for the most of the step's time.

Given a system of many chips (a System, a system YAML or a system preset), ``run_llm`` is
:func:`npusim.system.run_llm_system` with its ``tp``, ``pp``, ``dp``, ``micro_batches`` and
``algorithm``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import pandas as pd

from npusim import progress
from npusim.decode import DecodeFigures, decode_contexts, decode_totals
from npusim.errors import MappingError, WorkloadError
from npusim.result import Result
from npusim.simulate import simulate, system_and_plan
from npusim.spec.arch import Chip, load_arch
from npusim.spec.system import System
from npusim.workloads.llm import (
    ConfigLike,
    ContextLengthWarning,
    Footprint,
    from_hf_config,
    load_hf_config,
    memory_footprint,
    require_fits,
    warn_past_max_positions,
)
from npusim.workloads.precision import WeightsLike, check_precisions, describe_weights

if TYPE_CHECKING:
    from npusim.system.llm import SystemLLMResult

__all__ = ["DecodeFigures", "LLMResult", "decode_contexts", "decode_totals", "run_llm"]


@dataclass(frozen=True)
class LLMResult(DecodeFigures):
    """Serving figures of one model on one chip; ``decode`` is the middle decode step."""

    chip: str
    model: str
    batch: int
    prompt: int
    gen: int
    precision: dict[str, str]
    attention: str
    footprint: Footprint
    prefill: Result = field(repr=False)
    decode: Result = field(repr=False)
    #: (context tokens, step latency s, step energy J) of each simulated decode step
    decode_samples: tuple[tuple[int, float, float], ...]
    decode_time_s: float
    decode_energy_j: float
    decode_steps: int
    #: how a mixture-of-experts model routed its tokens (None: a dense model)
    routing: str | None = None
    #: the prefill's LM head: at the last position of each sequence, or at every position
    logits: str = "last"

    @property
    def ttft_s(self) -> float:
        return float(self.prefill.summary()["latency_s"])

    @property
    def prefill_energy_j(self) -> float:
        return float(self.prefill.summary()["energy_j"])

    @property
    def sequences(self) -> int:
        return self.batch

    @property
    def total_time_s(self) -> float:
        return self.ttft_s + self.decode_time_s

    @property
    def total_energy_j(self) -> float:
        return self.prefill_energy_j + self.decode_energy_j

    @property
    def average_power_w(self) -> float:
        return self.total_energy_j / self.total_time_s if self.total_time_s > 0 else 0.0

    @property
    def limit(self) -> str:
        """The dominant limit of a decode step: the layer ``limit`` with the most time."""
        return self._limit_shares()[0]

    def _limit_shares(self) -> tuple[str, float]:
        df = self.decode.layers
        by = df.groupby("limit")["latency_s"].sum()
        total = float(by.sum())
        if total <= 0:
            return "none", 0.0
        name = str(by.idxmax())
        return name, float(by[name]) / total

    def _experts_touched(self) -> float | None:
        """Routed experts the middle decode step touches, the mean over its expert layers
        (None: a dense model)."""
        df = self.decode.layers
        if "experts_touched" not in df:
            return None
        col = df["experts_touched"].dropna()
        return float(col.mean()) if len(col) else None

    @property
    def decode_layers(self) -> pd.DataFrame:
        """Per-layer table of one decode step (the middle simulated context)."""
        return self.decode.layers

    def summary(self) -> dict[str, Any]:
        fp = self.footprint
        dec = self.decode.summary()
        return {
            "chip": self.chip, "model": self.model, "batch": self.batch,
            "prompt": self.prompt, "gen": self.gen, **{f"{k}_precision": v for k, v in
                                                      self.precision.items()},
            "attention": self.attention, "routing": self.routing, "logits": self.logits,
            "ttft_s": self.ttft_s, "tpot_s": self.tpot_s, "tokens_per_s": self.tokens_per_s,
            "j_per_token": self.j_per_token,
            "energy_per_token_e2e_j": self.total_energy_j / (self.batch * self.gen),
            "average_power_w": self.average_power_w, "total_time_s": self.total_time_s,
            "total_energy_j": self.total_energy_j, "prefill_energy_j": self.prefill_energy_j,
            "decode_steps": self.decode_steps,
            "decode_contexts": [c for c, _, _ in self.decode_samples],
            "weight_bytes": fp.weight_bytes, "kv_cache_bytes": fp.kv_cache_bytes,
            "activation_bytes": fp.activation_bytes,
            "decode_dram_read_bytes": float(dec["dram_read_bytes"]),
            "prefill_dram_read_bytes": float(self.prefill.summary()["dram_read_bytes"]),
            "prefill_dram_write_bytes": float(self.prefill.summary()["dram_write_bytes"]),
            "weights_resident": dec["weights_resident"], "weights_reason": dec["weights_reason"],
            "weights_placed_bytes": dec["weight_bytes"],
            "decode_experts_touched": self._experts_touched(),
            "limit": self._limit_shares()[0], "limit_share": self._limit_shares()[1],
        }


@overload
def run_llm(chip: Chip, config: ConfigLike, prompt: int = ..., gen: int = ...,
            batch: int = ..., weights: WeightsLike = ..., kv: str = ...,
            activations: str = ..., accum: str = ..., *, memory: str = ...,
            decode_points: int = ..., weights_resident: bool | None = ...,
            attention: str = ..., routing: str | None = ...,
            logits: str = ...) -> LLMResult: ...


@overload
def run_llm(chip: System, config: ConfigLike, prompt: int = ..., gen: int = ...,
            batch: int = ..., weights: WeightsLike = ..., kv: str = ...,
            activations: str = ..., accum: str = ..., *, memory: str = ...,
            decode_points: int = ..., weights_resident: bool | None = ...,
            attention: str = ..., routing: str | None = ..., logits: str = ...,
            tp: int | None = ..., pp: int | None = ..., dp: int | None = ...,
            micro_batches: int | None = ..., ep: int | None = ...,
            algorithm: str | None = ...,
            allreduce_precision: str | None = ...) -> SystemLLMResult: ...


@overload
def run_llm(chip: str | Path, config: ConfigLike, prompt: int = ..., gen: int = ...,
            batch: int = ..., weights: WeightsLike = ..., kv: str = ...,
            activations: str = ..., accum: str = ..., *, memory: str = ...,
            decode_points: int = ..., weights_resident: bool | None = ...,
            attention: str = ..., routing: str | None = ..., logits: str = ...,
            tp: int | None = ..., pp: int | None = ..., dp: int | None = ...,
            micro_batches: int | None = ..., ep: int | None = ...,
            algorithm: str | None = ...,
            allreduce_precision: str | None = ...) -> LLMResult | SystemLLMResult: ...


def run_llm(chip: Chip | System | str | Path, config: ConfigLike, prompt: int = 512,
            gen: int = 128, batch: int = 1, weights: WeightsLike = "int8", kv: str = "int8",
            activations: str = "int8", accum: str = "fp32", *, memory: str = "bandwidth",
            decode_points: int = 3, weights_resident: bool | None = None,
            attention: str = "fused", routing: str | None = None, logits: str = "last",
            tp: int | None = None, pp: int | None = None,
            dp: int | None = None, micro_batches: int | None = None, ep: int | None = None,
            algorithm: str | None = None,
            allreduce_precision: str | None = None) -> LLMResult | SystemLLMResult:
    """Simulate prefill and decode of ``config`` on ``chip`` and derive serving metrics.

    On a system (see the module docstring) the plan keywords go to
    :func:`npusim.system.run_llm_system`; given with one chip they are a ``ValueError``.

    ``weights_resident`` applies to prefill and every decode step alike (see
    :func:`~npusim.simulate.simulate`); ``summary()`` reports the decode steps' placement.
    ``attention``: ``"fused"`` (flash-style, causal prefill, scores on chip) or
    ``"materialized"`` (eager: full score matrix through DRAM); see
    :func:`npusim.workloads.from_hf_config`. ``prompt + gen`` past the config's
    ``max_position_embeddings`` gives one :class:`ContextLengthWarning`.

    ``weights`` is a precision or one per tensor class (``{"experts": "mxfp4", "default":
    "bf16"}``, :mod:`npusim.workloads.precision`); ``routing`` (``uniform``, ``skewed:S`` or
    a trace file) how a mixture-of-experts model routes its tokens (None: uniform).
    ``logits``: the prefill's LM head at the last position of each sequence (``"last"``,
    default: a server samples one token there) or at every position (``"all"``: the HF
    forward). Decode has one position either way.
    """
    check_precisions(weights, activations=activations, kv=kv)
    if logits not in ("last", "all"):
        raise WorkloadError(f"logits must be 'last' or 'all', got {logits!r}")
    route: dict[str, Any] = {} if routing is None else {"routing": routing}
    system, plan = system_and_plan(chip, tp=tp, pp=pp, dp=dp, micro_batches=micro_batches,
                                   ep=ep, algorithm=algorithm,
                                   allreduce_precision=allreduce_precision)
    if system is not None:
        from npusim.system.llm import run_llm_system

        return run_llm_system(system, config, prompt, gen, batch, weights, kv, activations,
                              accum, memory=memory, decode_points=decode_points,
                              weights_resident=weights_resident, attention=attention,
                              logits=logits, **route, **plan)
    assert not isinstance(chip, System)  # system_and_plan took it
    c = chip if isinstance(chip, Chip) else load_arch(chip)
    cfg = load_hf_config(config)
    if cfg.encoder:
        raise MappingError(f"{cfg.name}: an encoder-only model generates no tokens; "
                           "use `npusim run` for it")
    if prompt < 1 or gen < 1 or batch < 1 or decode_points < 1:
        raise MappingError("prompt, gen, batch and decode_points must be at least 1")
    prec = {"weights": describe_weights(weights), "activations": activations, "kv": kv,
            "accum": accum}
    kw: dict[str, Any] = dict(weights=weights, activations=activations, kv=kv, accum=accum,
                              attention=attention, **route)
    warn_past_max_positions(cfg, prompt + gen, "prompt + gen")
    steps = gen - 1
    ctxs = decode_contexts(prompt, steps, decode_points)
    with warnings.catch_warnings():  # said once above, for the whole run
        warnings.simplefilter("ignore", ContextLengthWarning)
        pre_wl = from_hf_config(cfg, "prefill", batch=batch, prompt_len=prompt,
                                logits="all" if logits == "all" else "last", **kw)
        dec_wls = [from_hf_config(cfg, "decode", batch=batch, prompt_len=prompt,
                                  context_len=x, **kw) for x in ctxs]
        # Capacity: the cache at its largest (prompt + gen tokens), the larger activations.
        full = memory_footprint(cfg, phase="decode", batch=batch, prompt_len=prompt,
                                context_len=prompt + gen, weights=weights,
                                activations=activations, kv=kv, attention=attention)
    act = max(full.activation_bytes, memory_footprint(pre_wl).activation_bytes)
    fp = require_fits(c, Footprint(full.weight_bytes, full.kv_cache_bytes, act))

    with progress.bar(1 + len(dec_wls), "llm", unit="step") as steps_bar:
        prefill = simulate(c, pre_wl, memory=memory, weights_resident=weights_resident)
        steps_bar.update(1)
        results = []
        for wl in dec_wls:
            results.append(simulate(c, wl, memory=memory, weights_resident=weights_resident))
            steps_bar.update(1)
    samples = tuple((x, float(r.summary()["latency_s"]), float(r.summary()["energy_j"]))
                    for x, r in zip(ctxs, results, strict=True))
    dec_t, dec_e = decode_totals(samples, prompt, steps, f"{cfg.name} on {c.name}")
    mid = results[len(results) // 2]
    routed = (routing or "uniform") if cfg.is_moe else None
    return LLMResult(c.name, cfg.name, batch, prompt, gen, prec, attention, fp, prefill, mid,
                     samples, dec_t, dec_e, steps, routed, logits)
