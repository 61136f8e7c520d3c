"""Links as first-come-first-served servers and collectives as SimPy processes over them.

Every link direction serves one transfer at a time, in the order transfers ask for it. A
transfer of ``b`` bytes from chip ``s`` to chip ``d`` takes the route of
:mod:`npusim.engine.topology` and, when it is issued (at the current simulated time),
reserves every link of the route for ``b / bandwidth`` seconds from the moment the last of
them is free (cut-through: the bytes stream over every hop together); it arrives ``hops x
latency`` after its last byte left. Two transfers that share a link take turns on it, so
contention is simulated, not estimated. This is what a ``simpy.Resource`` of capacity one
per link gives when a transfer takes all its links at once; booked as a reservation it
costs one event per collective step instead of about eight per transfer, which is what
lets a 64-chip step run in seconds.

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
        self._free_at = dict.fromkeys(all_links(self.topology, self.count), 0.0)

    @property
    def names(self) -> list[str]:
        return list(self._free_at)

    def reserve(self, src: int, dst: int, nbytes: float, cause: str) -> float:
        """Book a transfer issued now from chip ``src`` to chip ``dst``; its arrival time."""
        links, hops = route(self.topology, self.count, src, dst)
        now = float(self.env.now)
        if not links or nbytes <= 0:
            return now
        start = max([now, *(self._free_at[n] for n in links)])
        end = start + nbytes / self.link.bandwidth
        for name in links:
            self._free_at[name] = end
            self.bytes[name] += nbytes
            self.busy_s[name] += end - start
            if self.trace:
                self.spans.append(LinkSpan(name, start, end, nbytes, cause))
        return end + hops * self.link.latency

    def send(self, src: int, dst: int, nbytes: float, cause: str) -> Process:
        """Move ``nbytes`` from chip ``src`` to chip ``dst`` (a process)."""
        yield self.env.timeout(self.reserve(src, dst, nbytes, cause) - self.env.now)

    def _step(self, pairs: Sequence[tuple[int, int]], nbytes: float, cause: str) -> Process:
        """One synchronous step: every pair's transfer issued now; done when all arrived."""
        arrive = max(self.reserve(s, d, nbytes, cause) for s, d in pairs)
        yield self.env.timeout(arrive - self.env.now)


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
