"""Step costs: the latency and energy of one scheduler step, from npusim's own chip model.

A step runs ``prefill_tokens`` prompt tokens (whole prompts or chunks) and one new token for
each of ``decode_batch`` running sequences whose contexts sum to ``context_sum`` tokens.
How a step is built from :func:`npusim.workloads.from_hf_config` (each part simulated by
:func:`npusim.simulate`, or :func:`npusim.simulate_system` on a system):

* the prefill part is one prefill pass of ``prefill_tokens`` tokens (batch 1). Every token
  goes through every weight matrix, so the linear layers are exact for any mix of
  sequences; causal attention is counted over the whole run of tokens, which is an upper
  bound when several prompts share a step (each attends only to its own) and leaves out a
  chunk's attention to the earlier chunks of its prompt;
* the decode part is one decode pass of ``decode_batch`` sequences at the mean context
  ``round(context_sum / decode_batch)``: attention's K/V reads and MACs are linear in each
  context, so the mean gives their sum;
* a mixed step (decodes with prefill) costs the two parts one after the other: an upper
  bound, since a fused step would read the weights once, not twice.

:class:`ExactSteps` simulates every distinct shape once (cached); :class:`TableSteps`
simulates a grid (prefill tokens from 16 in steps of about √2; decode batch in powers of
two, the mean context at evenly spaced points), bisects every interval where a straight
line misses the simulated midpoint by more than 1 % (the costs are staircases: a new array
fold, a new pass of the matrix-vector rows), and interpolates (linearly in prefill tokens,
bilinearly in batch and context; a decode node inside the grid is simulated when a step
first needs it). A prefill shorter than 16 tokens is simulated exactly. A
mixture-of-experts step reads the experts its batch touches, a curve concave in the batch:
its batch grid starts with points added until that curve is within
:data:`TOUCHED_TOLERANCE` of straight between neighbours (:func:`batch_grid`).
:class:`ConstantSteps` is a synthetic cost for tests.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from npusim import progress
from npusim.errors import MappingError
from npusim.simulate import simulate
from npusim.spec.arch import Chip
from npusim.spec.system import System
from npusim.workloads.hf_config import ModelConfig, kv_cache_bytes
from npusim.workloads.ir import Workload
from npusim.workloads.llm import ContextLengthWarning, from_hf_config, model_kv_cache_bytes

__all__ = ["ConstantSteps", "ExactSteps", "StepModel", "TableSteps", "batch_grid", "grid",
           "refine", "touched_experts"]


class StepModel(Protocol):
    """What the scheduler asks of a chip: the cost of a step, and idle power."""

    @property
    def idle_power_w(self) -> float:
        """Power drawn between steps (the chips' leakage)."""
        ...

    def cost(self, prefill_tokens: int, decode_batch: int,
             context_sum: int) -> tuple[float, float]:
        """(latency s, energy J) of one step."""
        ...


class _PhaseCosts(Protocol):
    def prefill(self, tokens: int) -> tuple[float, float]: ...

    def decode(self, batch: int, context: float) -> tuple[float, float]: ...


def step_cost(model: _PhaseCosts, prefill_tokens: int, decode_batch: int,
              context_sum: int) -> tuple[float, float]:
    """A mixed step: its prefill and its decode (at the batch's mean context) one after the
    other."""
    t = e = 0.0
    if prefill_tokens:
        t, e = model.prefill(prefill_tokens)
    if decode_batch:
        dt, de = model.decode(decode_batch, context_sum / decode_batch)
        t, e = t + dt, e + de
    return t, e


@dataclass
class ConstantSteps:
    """A synthetic cost: ``prefill_s`` for any step with prefill tokens, plus ``decode_s``
    for any step with decodes; energy ``power_w`` x latency."""

    prefill_s: float
    decode_s: float
    power_w: float = 0.0
    idle_power_w: float = 0.0

    def cost(self, prefill_tokens: int, decode_batch: int,
             context_sum: int) -> tuple[float, float]:
        t = (self.prefill_s if prefill_tokens else 0.0) + (self.decode_s if decode_batch
                                                            else 0.0)
        return t, t * self.power_w


@dataclass
class ExactSteps:
    """Each distinct prefill length and (batch, mean context) simulated once, then cached.

    ``target`` is a chip or a system (then ``tp``/``pp`` in ``plan``; one replica)."""

    target: Chip | System
    config: ModelConfig
    precision: dict[str, Any]  # weights (a name or a class mapping), activations, kv, accum
    attention: str = "fused"
    memory: str = "bandwidth"
    plan: dict[str, int] = field(default_factory=dict)
    #: a mixture-of-experts model's routing (None: the builder's default, uniform); a
    #: decode step's cost depends on its batch through the experts the batch touches
    routing: str | None = None
    _prefill: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)
    _decode: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict,
                                                                repr=False)

    @property
    def chips(self) -> int:
        if isinstance(self.target, System):
            return self.plan.get("tp", 1) * self.plan.get("pp", 1)
        return 1

    @property
    def chip(self) -> Chip:
        return self.target.chip_spec if isinstance(self.target, System) else self.target

    @property
    def idle_power_w(self) -> float:
        return self.chip.energy.leakage * self.chips

    @property
    def simulations(self) -> int:
        return len(self._prefill) + len(self._decode)

    def workload(self, phase: str, batch: int, tokens: int) -> Workload:
        """Prefill of ``tokens`` tokens (batch 1) or decode of ``batch`` at context
        ``tokens``."""
        with warnings.catch_warnings():  # serving says it once, for the longest request
            warnings.simplefilter("ignore", ContextLengthWarning)
            if phase == "prefill":
                return from_hf_config(self.config, "prefill", batch=1, prompt_len=tokens,
                                      attention=self.attention, **self._prec())
            return from_hf_config(self.config, "decode", batch=batch, prompt_len=tokens,
                                  context_len=tokens, attention=self.attention, **self._prec())

    def _prec(self) -> dict[str, Any]:
        out = {k: self.precision[k] for k in ("weights", "activations", "kv", "accum")}
        return out if self.routing is None else {**out, "routing": self.routing}

    def _run(self, wl: Workload) -> tuple[float, float]:
        if isinstance(self.target, System):
            from npusim.system.simulate import simulate_system

            r = simulate_system(self.target, wl, memory=self.memory,
                                tp=self.plan.get("tp", 1), pp=self.plan.get("pp", 1),
                                ep=self.plan.get("ep", 1))
            out = (r.latency_s, float(r.summary()["energy_j"]))
        else:
            s = simulate(self.target, wl, memory=self.memory).summary()
            out = (float(s["latency_s"]), float(s["energy_j"]))
        if not all(math.isfinite(v) for v in out):
            raise MappingError(f"{wl.name}: the simulation gave no finite step time")
        return out

    def prefill(self, tokens: int) -> tuple[float, float]:
        if tokens not in self._prefill:
            self._prefill[tokens] = self._run(self.workload("prefill", 1, tokens))
        return self._prefill[tokens]

    def decode(self, batch: int, context: float) -> tuple[float, float]:
        key = (batch, max(round(context), 1))  # a simulated step has whole tokens
        if key not in self._decode:
            self._decode[key] = self._run(self.workload("decode", *key))
        return self._decode[key]

    def cost(self, prefill_tokens: int, decode_batch: int,
             context_sum: int) -> tuple[float, float]:
        return step_cost(self, prefill_tokens, decode_batch, context_sum)

    def kv_bytes_per_token(self) -> int:
        """KV bytes one token of context holds on the chip that holds the most of it (in
        each layer's form: MLA's latent; a sliding-window layer counted in full, an upper
        bound past its window)."""
        tp, pp = self.plan.get("tp", 1), self.plan.get("pp", 1)
        if tp == 1 and pp == 1:
            return model_kv_cache_bytes(self.config, 1, 1, self.precision["kv"])
        from dataclasses import replace

        from npusim.system.parallel import shard_config

        shard = shard_config(self.config, tp)
        return kv_cache_bytes(replace(shard, layers=shard.layers // pp), 1, 1,
                              self.precision["kv"])


def _segment(xs: list[float], x: float) -> tuple[int, float]:
    """The segment ``i`` of ``xs`` (at least two points) holding ``x`` and the fraction
    along it (linear extrapolation past either end)."""
    i = min(max(bisect.bisect_right(xs, x) - 1, 0), len(xs) - 2)
    return i, (x - xs[i]) / (xs[i + 1] - xs[i])


def grid(hi: int, ratio: float, lo: int = 1) -> list[int]:
    """Integers from ``lo`` to ``hi`` (both included), each about ``ratio`` x the last."""
    out, x = [lo], float(lo)
    while out[-1] < hi:
        x = max(x * ratio, out[-1] + 1)
        out.append(min(hi, round(x)))
    return out


def refine(points: list[int], cost: Callable[[int], Sequence[float]], tol: float,
           shortest: float = 1 / 16) -> list[int]:
    """``points`` with every interval bisected while the straight line between its ends
    misses ``cost`` at its midpoint by more than ``tol`` (relative, on every component).

    A step's cost is a staircase in tokens and batch (a new array fold, a new pass of the
    matrix-vector unit's rows), so a coarse grid alone would draw a ramp across each stair;
    bisecting where the line misses isolates each jump between two neighbouring integers.
    One probe per interval keeps the simulations few; a staircase so regular that the line
    meets its middle stair would pass unrefined, which the serving tests bound on random
    shapes against direct simulation.
    An interval no longer than ``shortest`` x its start is not cut further: a cost that
    zig-zags from one token to the next (an odd count split over cores) would otherwise be
    simulated at every integer, for a gain below the zig-zag itself."""
    out = [points[0]]
    for a, b in itertools.pairwise(points):
        stack = [(a, b)]
        while stack:
            x, y = stack.pop()
            if y - x < 2 or y - x <= shortest * x:
                out.append(y)
                continue
            m = (x + y) // 2
            fx, fy = cost(x), cost(y)
            u = (m - x) / (y - x)
            if all(abs(lx + u * (ly - lx) - v) <= tol * abs(v)
                   for lx, ly, v in zip(fx, fy, cost(m), strict=True)):
                out.append(y)
            else:
                stack += [(m, y), (x, m)]  # the left half first: points stay in order
    return out
#: most relative error of the touched experts interpolated linearly between two batch grid
#: points (a mixture-of-experts model's table adds points until it holds)
TOUCHED_TOLERANCE = 0.01


def touched_experts(config: ModelConfig, routing: str | None, tokens: int) -> int:
    """Routed experts a step of ``tokens`` tokens touches, summed over the MoE layers, as
    the builder routes them (:func:`npusim.workloads.routing.route`)."""
    from npusim.workloads.routing import route

    blocks = [i for i in range(config.layers) if config.moe_at(i)]
    return sum(sum(1 for c in route(routing or "uniform", j, tokens, config.experts,
                                    config.experts_per_token, block=i) if c)
               for j, i in enumerate(blocks))


def batch_grid(config: ModelConfig, routing: str | None, max_batch: int) -> list[int]:
    """Decode batches of the step table: powers of two up to ``max_batch``; for a
    mixture-of-experts model also the midpoints of every segment over which the touched
    experts (concave in the batch: ``E·(1−(1−k/E)^B)`` under uniform routing) depart from
    the straight line between its ends by more than :data:`TOUCHED_TOLERANCE`, so that
    interpolating in the batch interpolates the experts' weight reads as well."""
    coarse = grid(max_batch, 2.0)
    if not config.is_moe:
        return coarse
    memo: dict[int, int] = {}

    def tau(b: int) -> int:
        if b not in memo:
            memo[b] = touched_experts(config, routing, b)
        return memo[b]

    def split(a: int, b: int) -> list[int]:
        if b - a < 2:
            return [a]
        off = max(abs(tau(x) - tau(a) - (x - a) / (b - a) * (tau(b) - tau(a))) / tau(x)
                  for x in range(a + 1, b))
        if off <= TOUCHED_TOLERANCE:
            return [a]
        m = (a + b) // 2
        return split(a, m) + split(m, b)

    out = [x for a, b in itertools.pairwise(coarse) for x in split(a, b)]
    return [*out, coarse[-1]]


@dataclass
class TableSteps:
    """Step costs interpolated on a grid of simulated steps of ``exact``, refined where a
    straight line misses by more than ``tol`` (:func:`refine`); a prefill shorter than the
    grid's first point is simulated exactly (it still streams every weight once)."""

    exact: ExactSteps
    max_prefill_tokens: int
    max_batch: int
    max_context: int
    context_points: int = 4
    tol: float = 0.01
    _pre: list[tuple[float, float]] = field(init=False, repr=False)
    _pre_x: list[float] = field(init=False, repr=False)
    _b: list[float] = field(init=False, repr=False)
    _c: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        with progress.bar(None, "step table", unit="step") as shown:
            self._build(shown)

    def _build(self, shown: Any) -> None:
        exact, tol = self.exact, self.tol
        start = exact.simulations

        def tick() -> None:  # the bar counts steps simulated, cached ones once
            shown.update(exact.simulations - start - shown.n)

        def prefill(p: int) -> tuple[float, float]:
            out = exact.prefill(p)
            tick()
            return out

        def decode(bb: int, cc: float) -> tuple[float, float]:
            out = exact.decode(bb, cc)
            tick()
            return out

        pre_x = grid(self.max_prefill_tokens, math.sqrt(2), lo=min(16, self.max_prefill_tokens))
        if len(pre_x) > 1:
            pre_x = refine(pre_x, prefill, tol)
        self._pre_x = [float(p) for p in pre_x]
        self._pre = [prefill(p) for p in pre_x]
        n = max(2, self.context_points)
        c = sorted({max(1, round(1 + (self.max_context - 1) * i / (n - 1))) for i in range(n)})
        if len(c) == 1:
            c.append(c[0] + 1)
        b = batch_grid(exact.config, exact.routing, self.max_batch)
        # Each axis refined along both edges of the other (its smallest and largest value).
        if len(b) > 1:
            b = refine(b, lambda x: (*decode(x, c[0]), *decode(x, c[-1])), tol)
        c = refine(c, lambda x: (*decode(b[0], x), *decode(b[-1], x)), tol)
        # The grid's inner nodes are simulated when a step first needs them (then cached).
        self._b, self._c = [float(x) for x in b], [float(x) for x in c]

    @property
    def idle_power_w(self) -> float:
        return self.exact.idle_power_w

    @property
    def simulations(self) -> int:
        return self.exact.simulations

    def prefill(self, tokens: int) -> tuple[float, float]:
        x, y = self._pre_x, self._pre
        if tokens < x[0] or len(x) == 1:
            # Below the grid: simulated exactly, since a short prompt still streams every
            # weight once (the cost is far from proportional to its tokens).
            return self.exact.prefill(tokens)
        i, u = _segment(x, tokens)
        return (y[i][0] + u * (y[i + 1][0] - y[i][0]), y[i][1] + u * (y[i + 1][1] - y[i][1]))

    def _node(self, i: int, j: int) -> tuple[float, float]:
        return self.exact.decode(int(self._b[i]), self._c[j])

    def decode(self, batch: int, context: float) -> tuple[float, float]:
        d = self._node
        j, v = _segment(self._c, context)
        if len(self._b) == 1:
            lo, hi = d(0, j), d(0, j + 1)
            return lo[0] + v * (hi[0] - lo[0]), lo[1] + v * (hi[1] - lo[1])
        i, u = _segment(self._b, batch)
        w = ((1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v)
        pts = (d(i, j), d(i + 1, j), d(i, j + 1), d(i + 1, j + 1))
        return (sum(a * p[0] for a, p in zip(w, pts, strict=True)),
                sum(a * p[1] for a, p in zip(w, pts, strict=True)))

    def cost(self, prefill_tokens: int, decode_batch: int,
             context_sum: int) -> tuple[float, float]:
        return step_cost(self, prefill_tokens, decode_batch, context_sum)
