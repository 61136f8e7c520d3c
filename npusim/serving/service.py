"""``serve(target, model, ...)``: a request stream served on a chip or a system.

Builds the step model (:mod:`npusim.serving.steps`), sizes the paged KV cache from the
DRAM left after weights and activations, checks the requests against it, runs the SimPy
model (:mod:`npusim.serving.sim`) and computes the figures (:mod:`npusim.serving.metrics`).

KV capacity. On one chip: DRAM minus all weights minus the largest activations of a step
(a prefill of ``max_tokens`` tokens or a decode of ``max_batch`` sequences), in blocks of
``block_tokens`` tokens of every layer's K and V. On a system (one replica, ``tp x pp``
chips): each chip holds its shard's weights and the K/V of its heads and layers; the
capacity is the smallest over the pipeline stages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from npusim.errors import MappingError, WorkloadError
from npusim.serving.arrivals import Requests, generate, load_trace
from npusim.serving.cost import CostModel, load_cost_model
from npusim.serving.metrics import SLO, parse_slo, request_table, step_table, summarize
from npusim.serving.scheduler import Limits
from npusim.serving.sim import run
from npusim.serving.steps import ExactSteps, StepModel, TableSteps
from npusim.spec.arch import Chip, load_arch
from npusim.spec.system import System
from npusim.workloads.llm import (
    ConfigLike,
    ContextLengthWarning,
    load_hf_config,
    model_weight_bytes,
    warn_past_max_positions,
)
from npusim.workloads.precision import WeightsLike, check_precisions, describe_weights

__all__ = ["FIDELITIES", "Backend", "ServeResult", "backend", "check_prompts", "check_stream_size",
           "chip_price", "kv_blocks", "serve", "with_rate"]

FIDELITIES = ("table", "exact")
_GiB = 2**30


@dataclass(frozen=True)
class ServeResult:
    """Per-request and per-step tables of a serving run and its summary figures."""

    requests: pd.DataFrame = field(repr=False)
    steps: pd.DataFrame = field(repr=False)
    figures: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The run's figures (percentiles, throughput, goodput, energy, cost …)."""
        return dict(self.figures)

    def to_dataframe(self) -> pd.DataFrame:
        return self.requests


def _act_bytes(wl: Any) -> int:
    from npusim.system.simulate import peak_activation_bytes

    return peak_activation_bytes(wl)


def kv_blocks(steps: ExactSteps, *, max_batch: int, max_tokens: int, block_tokens: int) -> int:
    """Blocks of ``block_tokens`` tokens the DRAM holds beside weights and activations
    (per chip, the smallest over the pipeline stages); MappingError when not one."""
    pre = steps.workload("prefill", 1, max_tokens)
    dec = steps.workload("decode", max_batch, 1)
    per_token = steps.kv_bytes_per_token()
    chip = steps.chip
    cap = int(chip.dram.capacity_bytes)
    if isinstance(steps.target, System):
        from npusim.system.parallel import shard_config, stage_footprint
        from npusim.system.simulate import check_shards

        tp, pp = steps.plan.get("tp", 1), steps.plan.get("pp", 1)
        ep = steps.plan.get("ep", 1)
        shard = shard_config(steps.config, tp, ep)
        plan = {"tp": tp, "pp": pp, "ep": ep}
        pre_st = check_shards(steps.target, pre, **plan)
        acts = [max(_act_bytes(a), _act_bytes(b)) for a, b in
                zip(pre_st, check_shards(steps.target, dec, **plan), strict=True)]
        frees = [(cap - stage_footprint(chip, shard, s, pp, batch=1, context_len=1,
                                        weights=steps.precision["weights"],
                                        kv=steps.precision["kv"], activation_bytes=act,
                                        ep=ep).weight_bytes - act, act)
                 for s, act in enumerate(acts)]
        free, act = min(frees)
        weights = cap - free - act
    else:
        weights = model_weight_bytes(steps.config, steps.precision["weights"])
        act = max(_act_bytes(pre), _act_bytes(dec))
        free = cap - weights - act
    blocks = max(free, 0) // (per_token * block_tokens)
    if blocks < 1:
        raise MappingError(
            f"{steps.config.name} on {chip.name}: weights {weights / _GiB:.2f} GiB + "
            f"activations {act / _GiB:.2f} GiB leave {max(free, 0) / _GiB:.2f} GiB of "
            f"{cap / _GiB:.2f} GiB, less than one KV block of {block_tokens} tokens "
            f"({per_token * block_tokens:,} bytes)")
    return int(blocks)


def check_prompts(req: Requests, max_tokens: int, chunked_prefill: bool) -> None:
    """A prompt longer than a step's tokens cannot start without chunked prefill."""
    if not chunked_prefill and int(req.prompt.max()) > max_tokens:
        i = int(req.prompt.argmax())
        raise WorkloadError(f"request {i}'s prompt of {int(req.prompt[i])} tokens exceeds "
                            f"max tokens per step {max_tokens}; raise max_tokens or "
                            "use chunked prefill")


def _check_requests(req: Requests, lim: Limits) -> None:
    longest = int((req.prompt + req.output - 1).max())
    if longest > lim.blocks * lim.block_tokens:
        i = int((req.prompt + req.output - 1).argmax())
        raise WorkloadError(f"request {i} needs {longest} tokens of KV cache, more than the "
                            f"{lim.blocks * lim.block_tokens} the cache holds")
    check_prompts(req, lim.max_tokens, lim.chunked_prefill)


@dataclass(frozen=True)
class Backend:
    """What serves: the step model, the KV blocks, the chips it costs and its name."""

    steps: StepModel
    blocks: int
    chips: int = 1
    name: str = "synthetic"
    #: host link: seconds and joules to move one token's K/V one way (0: no swapping)
    swap_s_per_token: float = 0.0
    swap_j_per_token: float = 0.0
    #: the price of one chip it costs (a system's price shared over its chips) and where
    #: that figure comes from; None: no ``price:`` block
    chip_price_usd: float | None = None
    price_source: str = ""
    #: the weight precision (``int8``, or ``experts=mxfp4,default=bf16``; empty: synthetic)
    weights: str = ""
    #: a mixture-of-experts model's routing (None: a dense model, or synthetic)
    routing: str | None = None


def backend(target: Chip | System | str | Path, model: ConfigLike, *, longest: int,
            max_batch: int = 64, max_tokens: int = 2048, block_tokens: int = 16,
            fidelity: str = "table", weights: WeightsLike = "int8", kv: str = "int8",
            activations: str = "int8", accum: str = "fp32", attention: str = "fused",
            memory: str = "bandwidth", tp: int = 1, pp: int = 1, ep: int = 1,
            host_link: str | None = None, need_price: bool = False,
            routing: str | None = None) -> Backend:
    """The step model of ``model`` on ``target`` for requests of up to ``longest`` tokens
    (prompt + output), and the KV blocks left beside weights and activations. Build it
    once to serve several request streams (a load sweep). ``host_link`` (a link kind,
    ``pcie5_x16`` …; default: a system's ``host`` link, none for a chip) lets preemption
    swap a cache to host memory when that is cheaper than recomputing it. ``weights`` is a
    precision or one per tensor class; ``routing`` a mixture-of-experts model's (uniform,
    skewed:S or a trace file; None: uniform)."""
    if fidelity not in FIDELITIES:
        raise WorkloadError(f"fidelity must be {' or '.join(FIDELITIES)}, got {fidelity!r}")
    tgt = target
    if isinstance(tgt, (str, Path)):
        from npusim.inputs import resolve_system

        sys_ = resolve_system(str(tgt))
        tgt = sys_ if sys_ is not None else load_arch(tgt)
    price, source = chip_price(tgt)
    if need_price and price is None:
        raise WorkloadError(f"the cost model gives no card_price_usd and {tgt.name} has no "
                            "price: block; give one of them")
    cfg = load_hf_config(model)
    if cfg.encoder:
        raise MappingError(f"{cfg.name}: an encoder-only model generates no tokens")
    plan = {"tp": tp, "pp": pp, "ep": ep} if isinstance(tgt, System) else {}
    if not isinstance(tgt, System) and (tp != 1 or pp != 1 or ep != 1):
        raise MappingError("tp, pp and ep need a system (a system YAML or preset), not a chip")
    check_precisions(weights, activations=activations, kv=kv)
    prec = {"weights": weights, "activations": activations, "kv": kv, "accum": accum}
    exact = ExactSteps(tgt, cfg, prec, attention, memory, plan, routing)
    warn_past_max_positions(cfg, longest, "the longest prompt + output")
    blocks = kv_blocks(exact, max_batch=max_batch, max_tokens=max_tokens,
                       block_tokens=block_tokens)
    if longest - 1 > blocks * block_tokens:  # before the step table is built
        raise WorkloadError(f"the longest request needs {longest - 1} tokens of KV cache, "
                            f"more than the {blocks * block_tokens} the cache holds")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContextLengthWarning)
        sm: StepModel = exact if fidelity == "exact" else TableSteps(
            exact, max_tokens, max_batch, max(longest, 2))
    link = _host_link(tgt, host_link)
    per_token = exact.kv_bytes_per_token()  # per chip; every chip moves its own share
    swap_s = per_token / link[0] if link else 0.0
    swap_j = per_token * 8 * link[1] * exact.chips if link else 0.0
    return Backend(sm, blocks, exact.chips, f"{cfg.name} on {tgt.name}", swap_s, swap_j,
                   price, source, describe_weights(weights),
                   (routing or "uniform") if cfg.is_moe else None)


def chip_price(target: Chip | System) -> tuple[float | None, str]:
    """The price of one chip of ``target`` and where it comes from: a system's ``price:``
    shared over its chips, else its chip's ``price:``; (None, "") when neither has one."""
    owners: list[tuple[Chip | System, int]] = (
        [(target, target.count), (target.chip_spec, 1)] if isinstance(target, System)
        else [(target, 1)])
    for owner, share in owners:
        p = owner.price
        if p is not None:
            each = f", 1/{share} of the system's ${p.usd:,.0f}" if share > 1 else ""
            return p.usd / share, f"the {p.basis} price of {owner.name}{each}"
    return None, ""


def _host_link(target: Chip | System, kind: str | None) -> tuple[float, float] | None:
    """(bytes/s, J/bit) of the host link: ``kind`` from the link catalog, else a system's."""
    from npusim.spec.link_catalog import LINK_KINDS

    if kind is not None:
        if kind not in LINK_KINDS:
            raise WorkloadError(f"host link {kind!r}: unknown kind (known: "
                                f"{', '.join(LINK_KINDS)})")
        bw, _, epb = LINK_KINDS[kind]
        return bw, epb
    if isinstance(target, System) and target.host is not None:
        return target.host.bandwidth, target.host.energy_per_bit
    return None


def check_stream_size(requests: Requests, max_batch: int, max_tokens: int) -> None:
    """Refuse by estimate, before the step table is built, a stream whose requests and steps
    would not fit the memory budget (see npusim.limits)."""
    from npusim.limits import REQUEST_BYTES, STEP_BYTES, check_memory

    out, prompt = float(requests.output.sum()), float(requests.prompt.sum())
    steps = out / max_batch + prompt / max_tokens  # decode and prefill steps, at least
    check_memory(f"{len(requests):,} requests of {prompt:.3g} prompt and {out:.3g} output "
                 f"tokens ({steps:.3g} scheduler steps at least)",
                 len(requests) * REQUEST_BYTES + steps * STEP_BYTES)


def serve(target: Chip | System | str | Path | None, model: ConfigLike | None, *,
          requests: Requests | None = None, trace: str | Path | None = None,
          n: int = 1000, rate: float = 1.0, arrivals: str = "poisson", cv: float = 1.0,
          prompt: str = "fixed:512", output: str = "fixed:128", seed: int = 0,
          max_batch: int = 64, max_tokens: int = 2048, block_tokens: int = 16,
          priority: str = "prefill", chunked_prefill: bool = False,
          fidelity: str = "table", weights: WeightsLike = "int8", kv: str = "int8",
          activations: str = "int8", accum: str = "fp32", attention: str = "fused",
          memory: str = "bandwidth", tp: int = 1, pp: int = 1, host_link: str | None = None,
          routing: str | None = None,
          slo: SLO | str = "", ep: int = 1,
          cost: CostModel | str | Path | None = None, using: Backend | None = None,
          step_model: StepModel | None = None, blocks: int | None = None) -> ServeResult:
    """Serve a request stream of ``model`` on ``target`` (a chip, or a system with a
    ``tp x pp`` plan, a mixture-of-experts model's routed experts over ``ep`` of the
    ``tp`` ranks) and report per-request latencies, percentiles, goodput, energy and
    cost. Requests: ``requests``, else a CSV ``trace``, else ``n`` drawn at ``rate``.
    ``using`` is a :func:`backend` built before (``target``, ``model`` and the model
    options are then ignored; ``max_batch``, ``max_tokens`` and ``block_tokens`` must be
    those it was built with); ``step_model`` and ``blocks`` replace the chip's step costs
    and KV capacity (synthetic studies)."""
    if max_batch < 1 or max_tokens < 1 or block_tokens < 1:
        raise WorkloadError("max_batch, max_tokens and block_tokens must be at least 1")
    if priority not in ("prefill", "decode"):
        raise WorkloadError(f"priority must be prefill or decode, got {priority!r}")
    if requests is None:
        requests = load_trace(trace) if trace is not None else generate(
            n, rate, prompt=prompt, output=output, arrivals=arrivals, cv=cv, seed=seed)
    check_stream_size(requests, max_batch, max_tokens)
    slo_ = parse_slo(slo) if isinstance(slo, str) else slo
    cost_ = load_cost_model(cost) if isinstance(cost, (str, Path)) else cost
    check_prompts(requests, max_tokens, chunked_prefill)
    if using is None and step_model is not None:
        using = Backend(step_model, blocks or 1 << 40)
    if using is None:
        if target is None or model is None:
            raise WorkloadError("serve needs a chip or system and a model (or a step_model)")
        using = backend(target, model, longest=int((requests.prompt + requests.output).max()),
                        max_batch=max_batch, max_tokens=max_tokens, block_tokens=block_tokens,
                        fidelity=fidelity, weights=weights, kv=kv, activations=activations,
                        accum=accum, attention=attention, memory=memory, tp=tp, pp=pp,
                        ep=ep, host_link=host_link, routing=routing,
                        need_price=cost_ is not None and cost_.card_price_usd is None)
    lim = Limits(max_batch, max_tokens, block_tokens, blocks or using.blocks, priority,
                 chunked_prefill, using.swap_s_per_token, using.swap_j_per_token)
    _check_requests(requests, lim)
    tr = run(requests, using.steps, lim)
    req = request_table(tr, slo_)
    steps = step_table(tr)
    s = {"served": using.name, "chips": using.chips, "weights": using.weights,
         "routing": using.routing, "fidelity": fidelity,
         "max_batch": max_batch, "max_tokens": max_tokens, "block_tokens": block_tokens,
         "priority": priority, "chunked_prefill": chunked_prefill, "slo_ttft_s": slo_.ttft_s,
         "slo_tpot_s": slo_.tpot_s, **summarize(tr, req, steps),
         "simulations": getattr(using.steps, "simulations", 0)}
    if cost_ is not None:
        hw, power = cost_.usd(using.chips, s["duration_s"], s["energy_j"], using.chip_price_usd)
        own = cost_.card_price_usd is not None
        s.update({"card_price_usd": cost_.card_price_usd if own else using.chip_price_usd,
                  "price_source": "the cost file's card_price_usd" if own
                  else using.price_source,
                  "cost_hardware_usd": hw, "cost_electricity_usd": power,
                  "usd_per_mtoken": (hw + power) / s["output_tokens"] * 1e6})
    return ServeResult(req, steps, s)


def with_rate(requests: Requests, rate: float) -> Requests:
    """The same requests (lengths and the pattern of gaps) arriving at ``rate`` per second
    on average: the gaps scaled (common random numbers across a load sweep)."""
    if not rate > 0:
        raise WorkloadError(f"rate must be a positive number of requests per second, got {rate}")
    span = float(requests.arrival_s[-1] - requests.arrival_s[0])
    now = (len(requests) - 1) / span if span > 0 else rate
    return replace(requests, arrival_s=requests.arrival_s * (now / rate))
