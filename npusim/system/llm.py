"""LLM serving on a system of chips: TTFT, TPOT, tokens/s and J/token under a plan.

``run_llm_system(system, model, tp=8, ...)`` is :func:`npusim.llm.run_llm` for many chips:
one prefill step of ``batch x prompt`` tokens per replica, decode steps simulated at
``decode_points`` contexts and interpolated over the ``gen - 1`` steps (as on one chip);
every step is a :func:`~npusim.system.simulate_system` run, collectives and pipeline sends
included. ``batch`` is one replica's: the system serves ``dp x batch`` sequences, so
``tokens_per_s = dp x batch / TPOT`` and ``j_per_token`` is a decode step's energy (chips
and links) over ``dp x batch``. Capacity is checked per chip with its shard, the KV cache at
its largest (``prompt + gen`` tokens) and the larger of prefill's and decode's activations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npusim import progress
from npusim.decode import DecodeFigures, decode_contexts, decode_totals
from npusim.errors import MappingError, WorkloadError
from npusim.spec.system import System, load_system
from npusim.system.result import SystemResult
from npusim.system.simulate import check_shards, peak_activation_bytes, simulate_system
from npusim.workloads.llm import (
    ConfigLike,
    ContextLengthWarning,
    from_hf_config,
    load_hf_config,
    warn_past_max_positions,
)
from npusim.workloads.precision import WeightsLike, describe_weights

__all__ = ["SystemLLMResult", "run_llm_system"]


@dataclass(frozen=True)
class SystemLLMResult(DecodeFigures):
    """Serving figures of one model on one system; ``decode`` is the middle decode step."""

    model: str
    batch: int  # per replica
    prompt: int
    gen: int
    prefill: SystemResult = field(repr=False)
    decode: SystemResult = field(repr=False)
    #: (context tokens, step latency s, step energy J) of each simulated decode step
    decode_samples: tuple[tuple[int, float, float], ...]
    decode_time_s: float
    decode_energy_j: float
    decode_steps: int
    #: the weight precision as given: one name, or one per tensor class
    weights: str = "int8"
    #: the prefill's LM head: at the ``last`` position of each sequence, or at ``all``
    logits: str = "last"

    @property
    def sequences(self) -> int:
        return self.batch * self.decode.plan.dp

    @property
    def ttft_s(self) -> float:
        return self.prefill.latency_s


    def summary(self) -> dict[str, Any]:
        dec = self.decode.summary()
        pre = self.prefill.summary()
        out = {
            "system": dec["system"], "chip": dec["chip"], "model": self.model,
            "tp": dec["tp"], "pp": dec["pp"], "dp": dec["dp"], "ep": dec["ep"],
            "micro_batches": dec["micro_batches"], "chips_used": dec["chips_used"],
            "batch": self.batch, "sequences": self.sequences, "prompt": self.prompt,
            "gen": self.gen, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
            "tokens_per_s": self.tokens_per_s, "j_per_token": self.j_per_token,
            "decode_steps": self.decode_steps,
            "decode_contexts": [c for c, _, _ in self.decode_samples],
            "prefill_time_comm_s": pre["time_comm_s"],
            "weights_precision": self.weights, "logits": self.logits,
        }
        for key, value in dec.items():
            if key.startswith(("time_", "link_", "energy_", "expert_")):
                out[f"decode_{key}"] = value
        return out


def run_llm_system(system: System | str | Path, config: ConfigLike, prompt: int = 512,
                   gen: int = 128, batch: int = 1, weights: WeightsLike = "int8",
                   kv: str = "int8",
                   activations: str = "int8", accum: str = "fp32", *, tp: int = 1,
                   pp: int = 1, dp: int = 1, micro_batches: int = 1, ep: int = 1,
                   algorithm: str = "ring",
                   memory: str = "bandwidth", decode_points: int = 3,
                   weights_resident: bool | None = None,
                   attention: str = "fused", routing: str | None = None,
                   allreduce_precision: str = "accum",
                   all_to_all: str = "direct", logits: str = "last") -> SystemLLMResult:
    """Simulate prefill and decode of ``config`` on ``system`` under ``tp x pp x dp``
    (a mixture-of-experts model's routed experts over ``ep`` chips of a stage;
    ``weights`` (a precision, or one per tensor class: each stage's chips hold every class
    at its precision), ``routing`` and ``logits`` (the prefill's LM head at the last
    position of each sequence, or at every one) as :func:`npusim.llm.run_llm` takes them;
    ``allreduce_precision`` as for :func:`npusim.system.simulate_system`)."""
    sys_ = system if isinstance(system, System) else load_system(system)
    if logits not in ("last", "all"):
        raise WorkloadError(f"logits must be 'last' or 'all', got {logits!r}")
    cfg = load_hf_config(config)
    if cfg.encoder:
        raise MappingError(f"{cfg.name}: an encoder-only model generates no tokens")
    if prompt < 1 or gen < 1 or batch < 1 or decode_points < 1:
        raise MappingError("prompt, gen, batch and decode_points must be at least 1")
    kw: dict[str, Any] = dict(weights=weights, activations=activations, kv=kv, accum=accum,
                              attention=attention)
    if routing is not None:
        kw["routing"] = routing
    plan_kw: dict[str, Any] = dict(tp=tp, pp=pp, dp=dp, micro_batches=micro_batches, ep=ep)
    run_kw: dict[str, Any] = dict(algorithm=algorithm, memory=memory,
                                  weights_resident=weights_resident,
                                  allreduce_precision=allreduce_precision,
                                  all_to_all=all_to_all)
    warn_past_max_positions(cfg, prompt + gen, "prompt + gen")
    steps = gen - 1
    ctxs = decode_contexts(prompt, steps, decode_points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContextLengthWarning)
        # Capacity as on one chip: the cache at its largest (prompt + gen tokens) with the
        # larger of prefill's and decode's activations.
        pre_wl = from_hf_config(cfg, "prefill", batch=batch, prompt_len=prompt,
                                logits="all" if logits == "all" else "last", **kw)
        pre_act = max(peak_activation_bytes(st) for st in check_shards(sys_, pre_wl,
                                                                       **plan_kw))
        check_shards(sys_, from_hf_config(cfg, "decode", batch=batch, prompt_len=prompt,
                                          context_len=prompt + gen, **kw),
                     activation_floor=pre_act, **plan_kw)
        with progress.bar(1 + len(ctxs), "llm", unit="step") as steps_bar:
            prefill = simulate_system(sys_, pre_wl, **plan_kw, **run_kw)
            steps_bar.update(1)
            results = []
            for x in ctxs:
                results.append(simulate_system(sys_, from_hf_config(
                    cfg, "decode", batch=batch, prompt_len=prompt, context_len=x, **kw),
                    **plan_kw, **run_kw))
                steps_bar.update(1)
    samples = tuple((x, r.latency_s, float(r.summary()["energy_j"]))
                    for x, r in zip(ctxs, results, strict=True))
    dec_t, dec_e = decode_totals(samples, prompt, steps, f"{cfg.name} on {sys_.name}")
    return SystemLLMResult(cfg.name, batch, prompt, gen, prefill, results[len(results) // 2],
                           samples, dec_t, dec_e, steps, describe_weights(weights), logits)
