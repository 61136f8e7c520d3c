"""A deployment in SimPy: pools of replicas, a router per pool, and the KV link between a
prefill pool and a decode pool.

Each replica is a scheduler (:class:`~npusim.serving.scheduler.Scheduler`, or
:class:`~npusim.serving.prefix.PrefixScheduler` with a prefix cache) and a chip process
holding each step for its cost from the pool's step model; replicas share nothing but the
router that feeds them. A unified pool prefills and decodes. Disaggregated: a request is
routed to a prefill replica, whose scheduler runs its prompt (as a one-token request: the
prefill emits the first token); its K/V (``prompt x kv_bytes_per_token``) then crosses
the link, a SimPy resource of ``lanes`` transfers at once, each holding a lane for ``bytes /
bandwidth`` and arriving ``latency`` later; the prefill replica's blocks of that prompt
stay taken until the last byte has left (first come, first served: contention queues transfers); it is then
routed to a decode replica, admitted there when its blocks and a batch slot are free
(without prefill) and decodes the rest. The first token counts as delivered when the K/V
has arrived. Speculative decoding runs on the pool that decodes.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import simpy

from npusim.serving.arrivals import Requests
from npusim.serving.prefix import PrefixScheduler
from npusim.serving.router import Router
from npusim.serving.scheduler import Limits, Scheduler, Seq, Step
from npusim.serving.shapes import Shapes
from npusim.serving.spec import Speculation, accept_rates, verify_tokens
from npusim.serving.steps import StepModel

__all__ = ["Link", "PoolModel", "Run", "run_deployment"]

#: per step: start, latency, energy, prefill tokens, decode batch, waiting, KV blocks,
#: swap tokens, pool index, replica index, tokens emitted by decodes
STEP_FIELDS = ("start_s", "latency_s", "energy_j", "prefill_tokens", "decode_batch",
               "queue_length", "kv_blocks_used", "swap_tokens", "pool", "replica",
               "decode_tokens")


@dataclass(frozen=True)
class Link:
    """The link between a prefill pool and a decode pool."""

    bandwidth: float  # bytes/s per lane
    latency_s: float
    energy_per_bit: float = 0.0
    lanes: int = 1
    kind: str = "custom"


@dataclass
class PoolModel:
    """One pool: its role (``both``, ``prefill`` or ``decode``), step model and KV blocks
    per replica, replicas and chips per replica."""

    name: str
    role: str
    steps: StepModel
    blocks: int
    replicas: int = 1
    chips: int = 1
    swap_s_per_token: float = 0.0
    swap_j_per_token: float = 0.0
    price_usd: float | None = None  # per chip, given for this pool
    chip_price_usd: float | None = None  # per chip, from the chip's or system's price: block
    shapes: Shapes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.shapes = Shapes(self.steps)

    @property
    def idle_power_w(self) -> float:
        return self.steps.idle_power_w


@dataclass
class Run:
    """What a deployment run recorded."""

    seqs: list[Seq]  # per request: the sequence that produced its tokens (merged)
    prefill_s: np.ndarray  # admission to the end of its prefill
    transfer_s: np.ndarray  # end of prefill to K/V arrival (0 unified)
    pool_replica: np.ndarray  # (n, 2): prefill (or only) replica, decode replica
    steps: np.ndarray  # STEP_FIELDS
    in_system: np.ndarray
    schedulers: list[list[Scheduler]]
    link_bytes: float
    link_energy_j: float


def run_deployment(requests: Requests, pools: list[PoolModel], limits: Limits, *,
                   router: str = "round-robin", link: Link | None = None,
                   kv_bytes_per_token: int = 0, spec: Speculation | None = None,
                   prefix_cache: bool = False, prefix_cache_blocks: int | None = None,
                   seed: int = 0) -> Run:
    """Serve ``requests`` on ``pools`` (one ``both``, or a ``prefill`` and a ``decode``)."""
    env = simpy.Environment()
    disagg = len(pools) == 2
    n = len(requests)
    arrays = {k: getattr(requests, k) for k in ("prefix_id", "prefix_len", "publish")}
    seqs = [Seq(i, float(a), int(p), int(o)) for i, (a, p, o) in
            enumerate(zip(requests.arrival_s, requests.prompt, requests.output, strict=True))]
    for key, attr in (("prefix_id", "prefix"), ("prefix_len", "prefix_len"),
                      ("publish", "publish")):
        if arrays[key] is not None:
            for s, v in zip(seqs, arrays[key], strict=True):
                setattr(s, attr, int(v))
    alpha = accept_rates(spec.alpha, n, np.random.default_rng([seed, 3])) if spec else None
    out_seq: list[Seq] = list(seqs)
    prefill_s = np.zeros(n)
    transfer_s = np.zeros(n)
    where = np.full((n, 2), -1, dtype=np.int64)
    steps: list[tuple[float, ...]] = []
    counts: list[tuple[float, int]] = []
    state: dict[str, Any] = {"left": n, "in": 0, "bytes": 0.0, "joules": 0.0}
    done_all = env.event()
    lane = simpy.Resource(env, capacity=link.lanes) if link else None

    scheds: list[list[Scheduler]] = []
    wakes: list[list[simpy.Event]] = []
    # a decode pool holds no prefix cache: prefix affinity there is join-shortest-queue
    routers = [Router("jsq" if router == "prefix" and p.role == "decode" else router,
                      seed=seed + 1000 * k) for k, p in enumerate(pools)]
    for pool in pools:
        decodes = pool.role != "prefill"
        lim = replace(limits, blocks=pool.blocks, swap_s_per_token=pool.swap_s_per_token,
                      swap_j_per_token=pool.swap_j_per_token,
                      spec_tokens=spec.gamma if spec and decodes else 0)
        row: list[Scheduler] = []
        for _ in range(pool.replicas):
            def recompute(tokens: int, m: StepModel = pool.steps) -> float:
                return m.cost(tokens, 0, 0)[0]
            if prefix_cache and pool.role != "decode":
                row.append(PrefixScheduler(lim, recompute_s=recompute,
                                           max_blocks=prefix_cache_blocks
                                           if prefix_cache_blocks is not None else 1 << 62))
            else:
                row.append(Scheduler(lim, recompute_s=recompute))
        scheds.append(row)
        wakes.append([env.event() for _ in row])

    def wake(k: int, r: int) -> None:
        if not wakes[k][r].triggered:
            wakes[k][r].succeed()

    def finished(seq: Seq) -> None:
        state["left"] -= 1
        state["in"] -= 1
        counts.append((env.now, state["in"]))
        if not state["left"]:
            done_all.succeed()

    def enter(k: int, seq: Seq) -> None:
        r = routers[k].pick(scheds[k], seq)
        where[seq.i, min(k, 1)] = r
        if k == 0 and not disagg:
            where[seq.i, 1] = r
        scheds[k][r].add(seq)
        wake(k, r)

    def arrivals() -> Generator[simpy.Event, Any, None]:
        for seq in seqs:
            if seq.arrival > env.now:
                yield env.timeout(seq.arrival - env.now)
            state["in"] += 1
            counts.append((env.now, state["in"]))
            enter(0, replace(seq, output=1) if disagg else seq)

    def handover(pre: Seq, r: int, held: int) -> Generator[simpy.Event, Any, None]:
        assert link is not None and lane is not None
        orig = seqs[pre.i]
        prefill_s[pre.i] = pre.first_token - pre.admitted
        nbytes = pre.prompt * kv_bytes_per_token
        with lane.request() as req:
            yield req
            yield env.timeout(nbytes / link.bandwidth)
        scheds[0][r].free_blocks += held  # the K/V has left the prefill replica
        wake(0, r)
        yield env.timeout(link.latency_s)
        state["bytes"] += nbytes
        state["joules"] += nbytes * 8 * link.energy_per_bit
        transfer_s[pre.i] = env.now - pre.first_token
        dec = replace(orig, admitted=pre.admitted, first_token=env.now,
                      preemptions=pre.preemptions, swaps=pre.swaps, cached=pre.cached,
                      computed=pre.computed)
        out_seq[pre.i] = dec
        if orig.output <= 1:
            dec.finish = env.now
            dec.generated = 1
            finished(dec)
            return
        dec.kv, dec.generated = dec.prompt, 1  # the K/V is in, the first token out
        enter(1, dec)

    def cost(k: int, step: Step, rng: np.random.Generator) -> tuple[float, float]:
        pool = pools[k]
        p_tok, b = step.prefill_tokens, len(step.decodes)
        ctx = step.context_sum
        past = sum(c * s.cached for s, c in step.prefills)
        if not past and not (spec and b):
            t, e = pool.steps.cost(p_tok, b, ctx)
        else:
            t = e = 0.0
            if p_tok:
                t, e = pool.shapes.prefill(p_tok, past / p_tok)
            if b and spec and pool.role != "prefill":
                vt, ve = pool.shapes.verify(b, spec.gamma + 1, ctx)
                t, e = t + vt, e + ve
                if spec.draft is not None:
                    dt, de = spec.draft.cost(0, b, ctx)
                    t, e = t + spec.gamma * dt, e + spec.gamma * de
            elif b:
                dt, de = pool.steps.cost(0, b, ctx)
                t, e = t + dt, e + de
        if spec and spec.draft is not None and p_tok and pool.role == "both":
            dt, de = spec.draft.cost(p_tok, 0, 0)
            t, e = t + dt, e + de
        if spec and b and pool.role != "prefill":
            assert alpha is not None
            drawn = verify_tokens(alpha[[s.i for s in step.decodes]], spec.gamma, rng)
            step.accepted = [min(int(v), s.output - s.generated)  # none past its output
                             for v, s in zip(drawn, step.decodes, strict=True)]
        return t, e

    def replica(k: int, r: int) -> Generator[simpy.Event, Any, None]:
        sched = scheds[k][r]
        rng = np.random.default_rng([seed, 5, k, r])
        lim = sched.limits
        while True:
            step = sched.next_step()
            if step is None:
                wakes[k][r] = env.event()
                yield wakes[k][r]
                continue
            for seq, _ in step.prefills:
                if math.isnan(seq.admitted):
                    seq.admitted = env.now
            latency, energy = cost(k, step, rng)
            if step.swap_tokens:
                latency += step.swap_tokens * lim.swap_s_per_token
                energy += step.swap_tokens * lim.swap_j_per_token
            emitted = sum(step.accepted) if step.accepted is not None else len(step.decodes)
            steps.append((env.now, latency, energy, step.prefill_tokens, len(step.decodes),
                          len(sched.waiting), sched.used_blocks, step.swap_tokens, k, r,
                          emitted))
            yield env.timeout(latency)
            free = sched.free_blocks
            done = sched.finish_step(step, env.now)
            if pools[k].role == "prefill" and done:
                # the finished prompts' blocks stay taken until their K/V has left: shared
                # out in proportion to the tokens each computed (the last takes the rest)
                freed = sched.free_blocks - free
                sched.free_blocks = free
                weights = [max(q.kv - q.cached, 1) for q in done]
                shares = [freed * w // sum(weights) for w in weights]
                shares[-1] += freed - sum(shares)
                for seq, held in zip(done, shares, strict=True):
                    env.process(handover(seq, r, held))
                continue
            for seq in done:
                if not disagg:
                    prefill_s[seq.i] = seq.first_token - seq.admitted
                finished(seq)

    env.process(arrivals())
    for pk, row in enumerate(scheds):
        for r in range(len(row)):
            env.process(replica(pk, r))
    env.run(until=done_all)
    if not disagg:
        out_seq = seqs
    return Run(out_seq, prefill_s, transfer_s, where,
               np.array(steps, dtype=float).reshape(-1, len(STEP_FIELDS)),
               np.array(counts, dtype=float).reshape(-1, 2), scheds, state["bytes"],
               state["joules"])
