"""Links as SimPy resources and collectives as processes over them.

Every link direction is a ``simpy.Resource`` of capacity one. A transfer of ``b`` bytes from
chip ``s`` to chip ``d`` takes the route of :mod:`npusim.engine.topology`, holds all its
links at once (cut-through: the bytes stream over every hop together) for ``b / bandwidth``
seconds, releases them and arrives ``hops x latency`` later. Two transfers that share a link
take turns on it, so contention is simulated, not estimated. Links are taken in one global
order (sorted by name), so transfers never deadlock.

Collectives over a group of ``n`` chips (``bytes`` is the size of the full tensor):

* ring all-reduce: a reduce-scatter then an all-gather, ``2(n-1)`` steps in which every
  chip sends ``bytes/n`` to the next chip of the ring; with no contention a step takes
  ``latency + bytes/(n x bandwidth)``, so the whole ``2(n-1)/n x bytes/bandwidth +
  2(n-1) x latency`` (one hop per step);
* ring all-gather and ring reduce-scatter: ``n-1`` such steps;
* tree all-reduce: a binomial tree, reduce then broadcast, ``2 ceil(log2 n)`` steps of the
  whole ``bytes`` (at step ``k`` chip ``r`` with ``r mod 2^(k+1) = 2^k`` sends to
  ``r - 2^k``; each chip receives at most one message a step);
* send: one point-to-point transfer (pipeline stages).

Steps are synchronous: a step starts when every transfer of the previous one has arrived.
The arithmetic of the reduction itself (a few vector adds per byte) is not simulated.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from npusim.engine.topology import all_links, route
from npusim.spec.system import Link, Topology

__all__ = ["ALGORITHMS", "COLLECTIVES", "LinkNet", "LinkSpan", "collective"]

#: all-reduce algorithms
ALGORITHMS: tuple[str, ...] = ("ring", "tree")
COLLECTIVES: tuple[str, ...] = ("all_reduce", "all_gather", "reduce_scatter")

Process = Generator[simpy.Event, Any, None]


@dataclass(frozen=True)
class LinkSpan:
    """One transfer's occupation of one link (for the Perfetto trace)."""

    link: str
    start_s: float
    end_s: float
    nbytes: float
    cause: str


@dataclass
class LinkNet:
    """The links of one system in one SimPy environment, with what crossed each."""

    env: simpy.Environment
    topology: Topology
    count: int
    link: Link
    trace: bool = False
    bytes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    busy_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    spans: list[LinkSpan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._res = {n: simpy.Resource(self.env, 1) for n in all_links(self.topology,
                                                                      self.count)}

    @property
    def names(self) -> list[str]:
        return list(self._res)

    def send(self, src: int, dst: int, nbytes: float, cause: str) -> Process:
        """Move ``nbytes`` from chip ``src`` to chip ``dst`` (a process)."""
        links, hops = route(self.topology, self.count, src, dst)
        if not links or nbytes <= 0:
            return
        held = []
        for name in sorted(links):
            req = self._res[name].request()
            yield req
            held.append((name, req))
        start = self.env.now
        yield self.env.timeout(nbytes / self.link.bandwidth)
        for name, req in held:
            self._res[name].release(req)
            self.bytes[name] += nbytes
            self.busy_s[name] += self.env.now - start
            if self.trace:
                self.spans.append(LinkSpan(name, start, self.env.now, nbytes, cause))
        yield self.env.timeout(hops * self.link.latency)

    def _step(self, pairs: Sequence[tuple[int, int]], nbytes: float, cause: str) -> Process:
        procs = [self.env.process(self.send(s, d, nbytes, cause)) for s, d in pairs]
        yield self.env.all_of(procs)


def _ring(net: LinkNet, group: Sequence[int], nbytes: float, steps: int, cause: str) -> Process:
    n = len(group)
    pairs = [(group[i], group[(i + 1) % n]) for i in range(n)]
    for _ in range(steps):
        yield from net._step(pairs, nbytes / n, cause)


def _tree_all_reduce(net: LinkNet, group: Sequence[int], nbytes: float, cause: str) -> Process:
    n = len(group)
    levels = math.ceil(math.log2(n))
    for k in range(levels):  # reduce towards rank 0
        half = 1 << k
        pairs = [(group[r], group[r - half]) for r in range(n) if r % (2 * half) == half]
        yield from net._step(pairs, nbytes, cause)
    for k in reversed(range(levels)):  # broadcast back
        half = 1 << k
        pairs = [(group[r], group[r + half]) for r in range(0, n, 2 * half) if r + half < n]
        yield from net._step(pairs, nbytes, cause)


def collective(net: LinkNet, kind: str, group: Sequence[int], nbytes: float, cause: str,
               algorithm: str = "ring") -> Process:
    """Run collective ``kind`` of a ``nbytes`` tensor over chips ``group`` (a process)."""
    n = len(group)
    if n < 2 or nbytes <= 0:
        return
    if kind == "all_reduce":
        if algorithm == "tree":
            yield from _tree_all_reduce(net, group, nbytes, cause)
        elif algorithm == "ring":
            yield from _ring(net, group, nbytes, 2 * (n - 1), cause)
        else:
            raise ValueError(f"unknown all-reduce algorithm {algorithm!r} "
                             f"(use {', '.join(ALGORITHMS)})")
    elif kind in ("all_gather", "reduce_scatter"):
        yield from _ring(net, group, nbytes, n - 1, cause)
    else:
        raise ValueError(f"unknown collective {kind!r} (use {', '.join(COLLECTIVES)})")
