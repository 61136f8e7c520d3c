"""``serve_deployed(model, ...)``: serving as deployed: replicas behind a router,
prefill/decode disaggregation over a KV link, prefix caching, speculative decoding.

    >>> res = npusim.serving.serve_deployed(
    ...     "llama2_7b", prefill_pool="hbm_llm", decode_pool="lpddr_llm,count=2",
    ...     kv_link="pcie5_x16", prefix="system:0.8,1024", spec_tokens=3, spec_accept=0.7,
    ...     draft="mtp", rate=4, n=2000, slo="ttft=1s,tpot=100ms")
    >>> res.summary()["p99_ttft_s"], res.pools

A pool is a chip or system (``Pool`` or text ``TARGET[,count=N][,tp=T][,pp=P][,price=USD]``),
``count`` replicas of it, each with its own scheduler and paged KV cache sized as in
:func:`~npusim.serving.backend`. ``target`` with ``replicas`` is a unified deployment;
``prefill_pool`` and ``decode_pool`` a disaggregated one (the KV of each prompt crosses
``kv_link``, a kind of the link catalog, ``kv_lanes`` transfers at once). The event model is
:mod:`npusim.serving.cluster`; step costs are npusim's own simulations of each shape.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from npusim.errors import WorkloadError
from npusim.serving.arrivals import Requests, generate, load_trace
from npusim.serving.cluster import STEP_FIELDS, Link, PoolModel, Run, run_deployment
from npusim.serving.cost import CostModel, load_cost_model
from npusim.serving.metrics import SLO, parse_slo, request_table, summarize
from npusim.serving.prefix import PrefixScheduler, check_prefixes, with_prefixes
from npusim.serving.scheduler import Limits
from npusim.serving.service import ServeResult, backend
from npusim.serving.shapes import Shapes
from npusim.serving.sim import Trace
from npusim.serving.spec import Speculation
from npusim.serving.steps import ExactSteps, StepModel, TableSteps
from npusim.spec.arch import Chip
from npusim.spec.system import System
from npusim.workloads.llm import ConfigLike, ContextLengthWarning, load_hf_config

__all__ = ["DeployedResult", "Deployment", "Pool", "parse_pool", "serve_deployed"]


@dataclass(frozen=True)
class Pool:
    """``count`` replicas of ``target`` (a chip or system; ``tp x pp`` chips each)."""

    target: Chip | System | str | Path
    count: int = 1
    tp: int = 1
    pp: int = 1
    price_usd: float | None = None  # per chip; None: the cost model's card price

    def __post_init__(self) -> None:
        # every replica is built (scheduler, queues, KV blocks): refuse by estimate first
        from npusim.limits import REPLICA_BYTES, check_memory

        if isinstance(self.count, int) and self.count > 0:
            name = self.target if isinstance(self.target, (str, Path)) else self.target.name
            check_memory(f"{self.count:,} replicas of {name}", self.count * REPLICA_BYTES)


def parse_pool(text: str, option: str = "pool") -> Pool:
    """``TARGET[,count=N][,tp=T][,pp=P][,price=USD]``."""
    target, *rest = [t.strip() for t in text.split(",")]
    kw: dict[str, Any] = {}
    for part in rest:
        key, eq, val = part.partition("=")
        if ("price_usd" if key == "price" else key) in kw:
            raise WorkloadError(f"{option} {text!r}: {key} given twice")
        try:
            if not eq or key not in ("count", "tp", "pp", "price"):
                raise ValueError
            kw["price_usd" if key == "price" else key] = float(val) if key == "price" else int(val)
        except ValueError:
            raise WorkloadError(f"{option} {text!r}: use TARGET[,count=N][,tp=T][,pp=P]"
                                "[,price=USD]") from None
    pool = Pool(target, **kw)
    if pool.count < 1 or pool.tp < 1 or pool.pp < 1 or (
            pool.price_usd is not None and not (pool.price_usd >= 0
                                                and math.isfinite(pool.price_usd))):
        raise WorkloadError(f"{option} {text!r}: count, tp and pp at least 1, price >= 0")
    return pool


@dataclass(frozen=True)
class Deployment:
    """What a deployed run was built on (pools with their step models, the draft), to serve
    more streams on it without simulating the steps again (a load sweep)."""

    pools: list[PoolModel]
    kv_bytes_per_token: int | None
    draft: StepModel | None
    name: str
    weights: Any = "int8"
    routing: str | None = None

    @property
    def chips(self) -> int:
        return sum(p.chips * p.replicas for p in self.pools)


@dataclass(frozen=True)
class DeployedResult(ServeResult):
    """A :class:`ServeResult` with a row per replica (``replicas``) and per pool (``pools``)."""

    replicas: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    pools: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    deployment: Deployment | None = field(default=None, repr=False)


def _pool_model(pool: Pool, role: str, model: ConfigLike, longest: int,
                opts: dict[str, Any]) -> tuple[PoolModel, ExactSteps]:
    # exact (lazy, nothing simulated yet) so that capacity is checked before a step table
    be = backend(pool.target, model, longest=longest, tp=pool.tp, pp=pool.pp,
                 **{**opts, "fidelity": "exact"})
    sm = be.steps
    assert isinstance(sm, ExactSteps)
    exact = sm
    tgt = pool.target if isinstance(pool.target, (str, Path)) else pool.target.name
    plan = f", tp {pool.tp}" if pool.tp > 1 else ""
    plan += f", pp {pool.pp}" if pool.pp > 1 else ""
    return PoolModel(f"{tgt}{plan}", role, sm, be.blocks,
                     pool.count, be.chips, be.swap_s_per_token, be.swap_j_per_token,
                     pool.price_usd, be.chip_price_usd), exact


def _draft(draft: ConfigLike, draft_target: Chip | System | str | Path | None,
           main: ExactSteps, opts: dict[str, Any], longest: int) -> tuple[StepModel, int]:
    """The draft's step model and its weight bytes when it shares the target's chips."""
    from npusim.inputs import resolve_system
    from npusim.spec.arch import load_arch
    from npusim.workloads.hf_config import weight_bytes

    cfg = main.config
    dcfg = replace(cfg, layers=1, name=f"{cfg.name}-mtp") if draft == "mtp" else \
        load_hf_config(draft)
    tgt: Chip | System | str | Path = draft_target if draft_target is not None else main.target
    if isinstance(tgt, (str, Path)):
        sys_ = resolve_system(str(tgt))
        tgt = sys_ if sys_ is not None else load_arch(tgt)
    exact = ExactSteps(tgt, dcfg, main.precision, main.attention, main.memory,
                       main.plan if isinstance(tgt, System) else {}, main.routing)
    shared = draft_target is None
    return exact, weight_bytes(dcfg, main.precision["weights"]) if shared else 0


def serve_deployed(model: ConfigLike | None, *, target: Chip | System | str | Path | Pool |
                   None = None, replicas: int = 1,
                   prefill_pool: Pool | str | None = None,
                   decode_pool: Pool | str | None = None, kv_link: str = "pcie5_x16",
                   kv_lanes: int = 1, router: str = "round-robin",
                   prefix: str | None = None, prefix_cache: bool | None = None,
                   prefix_cache_blocks: int | None = None, spec_tokens: int = 0,
                   spec_accept: float | str = 0.7, draft: ConfigLike | None = None,
                   draft_target: Chip | System | str | Path | None = None,
                   requests: Requests | None = None, trace: str | Path | None = None,
                   n: int = 1000, rate: float = 1.0, arrivals: str = "poisson",
                   cv: float = 1.0, prompt: str = "fixed:512", output: str = "fixed:128",
                   seed: int = 0, max_batch: int = 64, max_tokens: int = 2048,
                   block_tokens: int = 16, priority: str = "prefill",
                   chunked_prefill: bool = False, fidelity: str = "table",
                   weights: Any = "int8", kv: str = "int8", activations: str = "int8",
                   accum: str = "fp32", attention: str = "fused", memory: str = "bandwidth",
                   tp: int = 1, pp: int = 1, ep: int = 1, routing: str | None = None,
                   host_link: str | None = None,
                   slo: SLO | str = "", cost: CostModel | str | Path | None = None,
                   pools: list[PoolModel] | None = None, kv_bytes_per_token: int | None = None,
                   draft_steps: StepModel | None = None,
                   using: Deployment | None = None) -> DeployedResult:
    """Serve a request stream of ``model`` on a deployment (see the module docstring).
    ``pools`` (with ``kv_bytes_per_token`` when two) and ``draft_steps`` replace the chips'
    step models (synthetic studies); ``using``: the deployment of an earlier result (its
    pools, KV bytes and draft; the other model options are then not used)."""
    if using is not None:
        pools, kv_bytes_per_token, draft_steps = (using.pools, using.kv_bytes_per_token,
                                                  using.draft)
    if max_batch < 1 or max_tokens < 1 or block_tokens < 1:
        raise WorkloadError("max_batch, max_tokens and block_tokens must be at least 1")
    if priority not in ("prefill", "decode"):
        raise WorkloadError(f"priority must be prefill or decode, got {priority!r}")
    if not isinstance(replicas, int) or replicas < 1:
        raise WorkloadError(f"replicas must be a positive integer, got {replicas!r}")
    if not isinstance(kv_lanes, int) or kv_lanes < 1:
        raise WorkloadError(f"kv_lanes must be a positive integer, got {kv_lanes!r}")
    spec_ = Speculation(spec_tokens, spec_accept) if spec_tokens != 0 else None
    if (prefill_pool is None) != (decode_pool is None):
        raise WorkloadError("disaggregation needs both a prefill pool and a decode pool")
    from npusim.serving.router import Router

    Router(router)  # validates the name before any work
    if prefill_pool is not None or (pools is not None and len(pools) == 2):
        _kv_link(kv_link, kv_lanes)
    if requests is None:
        requests = load_trace(trace) if trace is not None else generate(
            n, rate, prompt=prompt, output=output, arrivals=arrivals, cv=cv, seed=seed)
    if prefix:
        requests = with_prefixes(requests, prefix, seed)
    check_prefixes(requests)
    caching = prefix_cache if prefix_cache is not None else requests.prefix_id is not None
    if prefix_cache_blocks is not None and prefix_cache_blocks < 0:
        raise WorkloadError(f"prefix_cache_blocks must be >= 0, got {prefix_cache_blocks}")
    slo_ = parse_slo(slo) if isinstance(slo, str) else slo
    cost_ = load_cost_model(cost) if isinstance(cost, (str, Path)) else cost
    longest = int((requests.prompt + requests.output).max())
    opts = {"max_batch": max_batch, "max_tokens": max_tokens, "block_tokens": block_tokens,
            "fidelity": fidelity, "weights": weights, "kv": kv, "activations": activations,
            "accum": accum, "attention": attention, "memory": memory,
            "host_link": host_link, "ep": ep, "routing": routing}
    draft_model = draft_steps
    link: Link | None = None
    name = using.name if using is not None else "synthetic"
    if pools is None:
        if model is None:
            raise WorkloadError("serve_deployed needs a model (or synthetic pools)")
        if prefill_pool is not None and decode_pool is not None:
            pre = parse_pool(prefill_pool, "prefill pool") if isinstance(prefill_pool, str) \
                else prefill_pool
            dec = parse_pool(decode_pool, "decode pool") if isinstance(decode_pool, str) \
                else decode_pool
            for one in (pre, dec):
                _check_system_replicas(one)
            pm, _ = _pool_model(pre, "prefill", model, longest, opts)
            dm, dex = _pool_model(dec, "decode", model, longest, opts)
            pools = [pm, dm]
            link = _kv_link(kv_link, kv_lanes)
            from npusim.workloads.hf_config import kv_cache_bytes

            kv_bytes_per_token = kv_cache_bytes(dex.config, 1, 1, kv)
        else:
            if target is None:
                raise WorkloadError("serve_deployed needs a target (or two pools)")
            pool = target if isinstance(target, Pool) else (
                parse_pool(target, "target") if isinstance(target, str) else Pool(target))
            pool = replace(pool, count=pool.count * replicas,
                           tp=pool.tp if pool.tp != 1 else tp,
                           pp=pool.pp if pool.pp != 1 else pp)
            _check_system_replicas(pool)
            um, dex = _pool_model(pool, "both", model, longest, opts)
            pools = [um]
        if spec_ is not None and draft is not None and draft_model is None:
            draft_model, dbytes = _draft(draft, draft_target, dex, opts, longest)
            if dbytes:  # the draft's weights take the decode pool's KV space
                per_block = dex.kv_bytes_per_token() * block_tokens
                pools[-1].blocks -= -(-dbytes // per_block)
        name = f"{dex.config.name} on " + " + ".join(
            f"{p.replicas} x {p.name}" for p in pools)
    elif len(pools) == 2:
        if kv_bytes_per_token is None:
            raise WorkloadError("two synthetic pools need kv_bytes_per_token")
        link = _kv_link(kv_link, kv_lanes)
    if spec_ is not None and draft_model is not None:
        spec_ = replace(spec_, draft=draft_model)
    for p in pools:
        # a decoding pool holds whole sequences (and a verify's gamma + 1 slots); a prefill
        # pool, prompts
        ahead = spec_.gamma if spec_ is not None and p.role != "prefill" else 0
        need = int((requests.prompt + (requests.output - 1 + ahead if p.role != "prefill"
                                       else 0)).max())
        if need > p.blocks * block_tokens:
            what = "prompt" if p.role == "prefill" else (
                "prompt + output + gamma" if ahead else "prompt + output")
            raise WorkloadError(
                f"{p.name}: a replica's KV cache holds {max(p.blocks, 0) * block_tokens} "
                f"tokens, less than one sequence of {need} ({what})")
        if not chunked_prefill and p.role != "decode" and int(requests.prompt.max()) > max_tokens:
            raise WorkloadError(f"a prompt of {int(requests.prompt.max())} tokens exceeds max "
                                f"tokens per step {max_tokens}; raise max_tokens or use "
                                "chunked prefill")
    if fidelity == "table" and using is None and model is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ContextLengthWarning)
            for p in pools:
                if isinstance(p.steps, ExactSteps):  # a prefill pool never decodes
                    p.steps = TableSteps(p.steps, max_tokens, max_batch, max(longest, 2)) \
                        if p.role != "prefill" else TableSteps(p.steps, max_tokens, 1, 2, 2)
                    p.shapes = Shapes(p.steps)
            if spec_ is not None and isinstance(spec_.draft, ExactSteps):
                spec_ = replace(spec_, draft=TableSteps(spec_.draft, max_tokens, max_batch,
                                                        max(longest, 2)))
    if cost_ is not None:
        for p in pools:  # a missing price is an error before the run, not after
            _price(p, cost_)
    lim = Limits(max_batch, max_tokens, block_tokens, 1, priority, chunked_prefill)
    run = run_deployment(requests, pools, lim, router=router, link=link,
                         kv_bytes_per_token=kv_bytes_per_token or 0, spec=spec_,
                         prefix_cache=caching, prefix_cache_blocks=prefix_cache_blocks,
                         seed=seed)
    res = _result(run, pools, requests, slo_, cost_, name, fidelity, lim, spec_, link,
                  caching)
    return replace(res, deployment=Deployment(pools, kv_bytes_per_token,
                                              spec_.draft if spec_ else draft_model, name,
                                              weights, routing))


def _check_system_replicas(pool: Pool) -> None:
    """A system holds ``count`` replicas of ``tp x pp`` chips only if it has the chips
    (data parallelism on the system); a chip target is one chip per replica x tp x pp."""
    from npusim.inputs import resolve_system

    tgt = pool.target
    if isinstance(tgt, (str, Path)):
        tgt = resolve_system(str(tgt)) or tgt
    if isinstance(tgt, System):
        have = tgt.count
        need = pool.count * pool.tp * pool.pp
        if need > have:
            raise WorkloadError(f"{tgt.name}: {pool.count} replicas of tp {pool.tp} x pp "
                                f"{pool.pp} need {need} chips, the system has {have}")


def _kv_link(kind: str, lanes: int) -> Link:
    from npusim.spec.link_catalog import LINK_KINDS

    if kind not in LINK_KINDS:
        raise WorkloadError(f"kv link {kind!r}: unknown kind (known: {', '.join(LINK_KINDS)})")
    bw, lat, epb = LINK_KINDS[kind]
    return Link(bw, lat, epb, lanes, kind)


def _result(run: Run, pools: list[PoolModel], req_in: Requests, slo: SLO,
            cost: CostModel | None, name: str, fidelity: str, lim: Limits,
            spec: Speculation | None, link: Link | None, caching: bool) -> DeployedResult:
    steps = pd.DataFrame(run.steps, columns=list(STEP_FIELDS))
    for c in ("pool", "replica", "prefill_tokens", "decode_batch", "queue_length",
              "kv_blocks_used", "swap_tokens", "decode_tokens"):
        steps[c] = steps[c].astype(np.int64)
    blocks = np.array([p.blocks for p in pools], dtype=float)
    steps["kv_occupancy"] = steps["kv_blocks_used"] / blocks[steps["pool"].to_numpy()]
    scheds = [s for row in run.schedulers for s in row]
    tr = Trace(run.seqs, run.steps[:, :8], run.in_system, int(blocks.min()),
               sum(s.preemptions for s in scheds), sum(s.swaps for s in scheds), 0.0)
    req = request_table(tr, slo)
    req["prefill_s"] = run.prefill_s
    req["kv_transfer_s"] = run.transfer_s
    req["replica"] = run.pool_replica[:, 0]
    if len(pools) == 2:
        req["decode_replica"] = run.pool_replica[:, 1]
    req["prefix_tokens"] = req_in.prefix_len if req_in.prefix_len is not None else 0
    req["cached_tokens"] = [s.cached for s in run.seqs]
    req["prefill_tokens"] = [s.computed for s in run.seqs]
    if spec is not None:
        req["verifies"] = [s.verifies for s in run.seqs]
    s = summarize(tr, req, steps)
    dur = s["duration_s"]
    rows = []
    energy = run.link_energy_j
    for k, p in enumerate(pools):
        for r in range(p.replicas):
            st = steps[(steps["pool"] == k) & (steps["replica"] == r)]
            busy = float(st["latency_s"].sum())
            e = float(st["energy_j"].sum()) + p.idle_power_w * max(dur - busy, 0.0)
            energy += e
            col = "replica" if k == 0 else "decode_replica"
            mine = req[req[col] == r] if col in req else req.iloc[:0]
            rows.append({"pool_index": k, "pool": p.name, "role": p.role, "replica": r,
                         "chips": p.chips,
                         "requests": len(mine), "steps": len(st), "busy_fraction":
                         busy / dur if dur > 0 else 0.0, "energy_j": e,
                         "mean_ttft_s": float(mine["ttft_s"].mean()) if len(mine) else math.nan,
                         "mean_queue_s": float(mine["queue_s"].mean()) if len(mine)
                         else math.nan,
                         "mean_kv_occupancy": float(np.average(st["kv_occupancy"],
                                                               weights=st["latency_s"]))
                         if busy > 0 else 0.0})
    reps = pd.DataFrame(rows)
    pool_tab = reps.groupby("pool_index", sort=True).agg(
        pool=("pool", "first"), role=("role", "first"), replicas=("replica", "count"),
        chips=("chips", "sum"),
        busy_fraction=("busy_fraction", "mean"), energy_j=("energy_j", "sum")).reset_index(
        drop=True)
    tokens = s["output_tokens"]
    chips = int(sum(p.chips * p.replicas for p in pools))
    s.update({"served": name, "chips": chips, "fidelity": fidelity, "max_batch": lim.max_batch,
              "max_tokens": lim.max_tokens, "block_tokens": lim.block_tokens,
              "priority": lim.priority, "chunked_prefill": lim.chunked_prefill,
              "slo_ttft_s": slo.ttft_s, "slo_tpot_s": slo.tpot_s,
              "energy_j": energy, "energy_per_token_j": energy / tokens,
              "average_power_w": energy / dur if dur > 0 else 0.0,
              "busy_fraction": float(reps["busy_fraction"].mean()),
              "replicas": len(reps), "simulations": sum(
                  p.shapes.simulations for p in pools) + (
                  getattr(spec.draft, "simulations", 0) if spec and spec.draft else 0),
              "mean_prefill_s": float(np.mean(run.prefill_s)),
              "mean_kv_transfer_s": float(np.mean(run.transfer_s)),
              "kv_link": link.kind if link else "", "kv_link_bytes": run.link_bytes,
              "kv_link_energy_j": run.link_energy_j})
    for _, row in pool_tab.iterrows():
        s[f"busy_fraction_{row['role']}"] = float(row["busy_fraction"])
    pre = [x for x in scheds if isinstance(x, PrefixScheduler)]
    if caching:
        lookups = sum(x.lookups for x in pre)
        saved_t = _saved_prefill_s(pools, req)
        s.update({"prefix_lookups": lookups, "prefix_hits": sum(x.hits for x in pre),
                  "prefix_hit_rate": sum(x.hits for x in pre) / lookups if lookups else 0.0,
                  "prefix_hit_tokens": sum(x.hit_tokens for x in pre),
                  "prefill_tokens_computed": int(req["prefill_tokens"].sum()),
                  "saved_prefill_s": saved_t})
    if spec is not None:
        dec = steps[steps["decode_batch"] > 0]
        verifies = int(dec["decode_batch"].sum())
        s.update({"spec_tokens": spec.gamma, "verifies": verifies,
                  "tokens_per_verify": float(dec["decode_tokens"].sum()) / verifies
                  if verifies else math.nan})
    if cost is not None:
        hw = sum(p.chips * p.replicas * _price(p, cost) for p in pools)
        hw_usd = hw * dur / (cost.amortisation_years * 365.25 * 86400)
        _, power = cost.usd(0, dur, energy, 0.0)  # electricity only (no cards)
        s.update({"cost_hardware_usd": hw_usd, "cost_electricity_usd": power,
                  "usd_per_mtoken": (hw_usd + power) / tokens * 1e6})
    return DeployedResult(req, steps, s, reps, pool_tab)


def _price(pool: PoolModel, cost: CostModel) -> float:
    """A chip's price in ``pool``: the pool's own, else the cost file's card_price_usd, else
    the chip's (or system's) ``price:`` block."""
    for price in (pool.price_usd, cost.card_price_usd, pool.chip_price_usd):
        if price is not None:
            return price
    raise WorkloadError(f"pool {pool.name}: no price (give price= in the pool, "
                        "card_price_usd in the cost file, or a price: block on the chip)")


def _saved_prefill_s(pools: list[PoolModel], req: pd.DataFrame) -> float:
    """Prefill seconds the hits saved: each hit request's prompt prefilled whole minus
    its new tokens after the cached ones, on its pool's step model (alone, batch of one)."""
    p = pools[0]
    saved = 0.0
    for prompt, cached in zip(req["prompt_tokens"], req["cached_tokens"], strict=True):
        if cached:
            saved += p.steps.cost(int(prompt), 0, 0)[0] - p.shapes.prefill(
                int(prompt) - int(cached), int(cached))[0]
    return saved
