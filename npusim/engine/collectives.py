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
* all-to-all (expert parallelism's token dispatch and combine): chip ``i`` of the group
  sends its own ``bytes[i][j]`` to every other chip ``j``. ``direct`` (the default, as
  NCCL's all-to-all and DeepEP post every send at once) issues all ``n(n-1)`` messages
  together, in shift order (every chip's message to chip ``i+1``, then to ``i+2`` …), and
  the links serve them first come first served: on a switch with ``b`` bytes per pair,
  ``(n-1) x b/bandwidth + latency``. ``pairwise`` (MPI's pairwise exchange) runs ``n-1``
  synchronous shift steps (at step ``k`` chip ``i`` sends to chip ``i+k mod n``): on a
  switch ``(n-1) x (latency + b/bandwidth)``. Unlike the other collectives' transfers, an
  all-to-all's message does not hold its whole route at once: each link is booked on its
  own when the message's head reaches it, pipelined (packets through buffered switches
  and forwarding chips), so a link busy with one message does not idle the others of its
  route. Alone, a message takes ``bytes / the slowest bandwidth + the route's latency``,
  as a transfer; in a pairwise ring step of ``d`` hops (every link carrying ``d`` messages)
  ``d x bytes/bandwidth + latency`` when a message takes longer than a hop's latency;
* send: one point-to-point transfer (pipeline stages).

Ring collectives on a torus visit their group in the order of
:func:`npusim.engine.topology.ring_order` (a ring embedded along the torus dimensions: one
hop a step when the group fills a box of the torus). On a two-level topology a transfer
between servers runs at the slower of the chip link and the network link and pays two
hops of the chip link's latency and one of the network's.

Steps are synchronous: a step starts when every transfer of the previous one has arrived.
The arithmetic of the reduction itself (a few vector adds per byte) is not simulated.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from npusim.engine.topology import all_links, is_network_link, network_hops, ring_order, route
from npusim.spec.system import Link, Topology

__all__ = ["ALGORITHMS", "ALL_TO_ALL", "COLLECTIVES", "LinkNet", "LinkSpan", "all_to_all", "collective"]

#: all-reduce algorithms
ALGORITHMS: tuple[str, ...] = ("ring", "tree")
#: all-to-all algorithms
ALL_TO_ALL: tuple[str, ...] = ("direct", "pairwise")
COLLECTIVES: tuple[str, ...] = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")

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
    #: a two-level topology's server network link (None elsewhere)
    network: Link | None = None
    bytes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    busy_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    spans: list[LinkSpan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._free_at = dict.fromkeys(all_links(self.topology, self.count), 0.0)
        self._hops: dict[tuple[int, int], tuple[tuple[str, ...], tuple[float, ...],
                                                tuple[float, ...]]] = {}

    def hops(self, src: int, dst: int) -> tuple[tuple[str, ...], tuple[float, ...],
                                                 tuple[float, ...]]:
        """The links from chip ``src`` to chip ``dst``, the latency after each
        (:meth:`hop_latencies`) and each one's seconds per byte."""
        key = (src, dst)
        if key not in self._hops:
            links = route(self.topology, self.count, src, dst)[0]
            self._hops[key] = (links, tuple(self.hop_latencies(links)),
                               tuple(1.0 / self.figures(n).bandwidth for n in links))
        return self._hops[key]

    @property
    def names(self) -> list[str]:
        return list(self._free_at)

    def figures(self, name: str) -> Link:
        """The figures of link ``name``: a server's network link or the chip link."""
        if self.network is not None and is_network_link(name):
            return self.network
        return self.link

    def reserve(self, src: int, dst: int, nbytes: float, cause: str) -> float:
        """Book a transfer issued now from chip ``src`` to chip ``dst``; its arrival time."""
        links, hops = route(self.topology, self.count, src, dst)
        return self.reserve_links(links, hops, nbytes, cause)

    def reserve_links(self, links: tuple[str, ...], hops: int, nbytes: float,
                      cause: str) -> float:
        """Book ``links`` together (cut-through) for a transfer issued now; its arrival
        time after ``hops`` of the chip link's latency (and the network hops it crosses)."""
        now = float(self.env.now)
        if not links or nbytes <= 0:
            return now
        start = max([now, *(self._free_at[n] for n in links)])
        nets = network_hops(links)
        bw = self.link.bandwidth
        latency = hops * self.link.latency
        if nets:
            assert self.network is not None
            bw = min(bw, self.network.bandwidth)
            latency += nets * self.network.latency
        end = start + nbytes / bw
        for name in links:
            self._free_at[name] = end
            self.bytes[name] += nbytes
            self.busy_s[name] += end - start
            if self.trace:
                self.spans.append(LinkSpan(name, start, end, nbytes, cause))
        return end + latency

    def hop_latencies(self, links: tuple[str, ...]) -> list[float]:
        """The latency after each link of a route: the chip link's on a link into a chip
        (and, between servers, on the chip's link to its network interface), the
        network's on a network link into a server, none on a link into a switch. They
        add up to the route's latency."""
        out = []
        for name in links:
            if name.startswith("net->"):
                assert self.network is not None
                out.append(self.network.latency)
            elif "->c" in name or (len(links) == 4 and name == links[0]):
                out.append(self.link.latency)
            else:
                out.append(0.0)
        return out

    def send(self, src: int, dst: int, nbytes: float, cause: str) -> Process:
        """Move ``nbytes`` from chip ``src`` to chip ``dst`` (a process)."""
        yield self.env.timeout(self.reserve(src, dst, nbytes, cause) - self.env.now)

    def _step(self, pairs: Sequence[tuple[int, int]], nbytes: float, cause: str) -> Process:
        """One synchronous step: every pair's transfer issued now; done when all arrived."""
        arrive = max(self.reserve(s, d, nbytes, cause) for s, d in pairs)
        yield self.env.timeout(arrive - self.env.now)


def _ring(net: LinkNet, group: Sequence[int], nbytes: float, steps: int, cause: str) -> Process:
    n = len(group)
    group = ring_order(net.topology, net.count, tuple(group))
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


def _pipelined(net: LinkNet, msgs: Sequence[tuple[int, int, float]], cause: str) -> Process:
    """Messages whose every link is booked on its own, pipelined: a message's head
    reaches its next link one hop latency after it started on the previous one, the link
    serves it from when it is free (first come first served, behind what was booked
    before) for ``bytes / bandwidth``, and its tail leaves a link no earlier than it
    arrived over the previous one, as packets through buffered switches and forwarding
    chips. The messages of one collective run in one process that wakes at each time a
    head reaches a link (heads reaching links at the same time go in the order of the
    messages). Done when the last tail has arrived."""
    env = net.env
    free, moved, busy = net._free_at, net.bytes, net.busy_s
    spans = net.spans if net.trace else None
    pending: list[tuple[float, int, int, tuple[str, ...], tuple[float, ...],
                        tuple[float, ...], float, float]] = []
    last = now = float(env.now)

    def book(name: str, nbytes: float, per_byte: float, tail: float) -> tuple[float, float]:
        start = free[name]
        if start < now:
            start = now
        end = start + nbytes * per_byte
        if end < tail:
            end = tail
        free[name] = end
        moved[name] += nbytes
        busy[name] += end - start
        if spans is not None:
            spans.append(LinkSpan(name, start, end, nbytes, cause))
        return start, end

    for seq, (src, dst, nbytes) in enumerate(msgs):  # every head is at its first link now
        links, lats, per_byte = net.hops(src, dst)
        if not links:
            continue
        start, end = book(links[0], nbytes, per_byte[0], 0.0)
        if len(links) > 1:
            pending.append((start + lats[0], seq, 1, links, lats, per_byte, nbytes,
                            end + lats[0]))
        else:
            last = max(last, end + lats[0])
    heapq.heapify(pending)
    pop, push = heapq.heappop, heapq.heappush
    while pending:
        if pending[0][0] > env.now:
            yield env.timeout(pending[0][0] - env.now)
        now = float(env.now)
        while pending and pending[0][0] <= now:  # book() inlined: the hot loop
            _, seq, hop, links, lats, per_byte, nbytes, tail = pop(pending)
            name = links[hop]
            start = free[name]
            if start < now:
                start = now
            end = start + nbytes * per_byte[hop]
            if end < tail:
                end = tail
            free[name] = end
            moved[name] += nbytes
            busy[name] += end - start
            if spans is not None:
                spans.append(LinkSpan(name, start, end, nbytes, cause))
            lat = lats[hop]
            if hop + 1 < len(links):
                push(pending, (start + lat, seq, hop + 1, links, lats, per_byte, nbytes,
                               end + lat))
            elif end + lat > last:
                last = end + lat
    if last > env.now:
        yield env.timeout(last - env.now)


def all_to_all(net: LinkNet, group: Sequence[int], nbytes: Sequence[Sequence[float]],
               cause: str, algorithm: str = "direct") -> Process:
    """Chip ``group[i]`` sends ``nbytes[i][j]`` to chip ``group[j]`` for every ``j != i``
    (see the module docstring): ``direct``, every message issued at once (in shift
    order), or ``pairwise``, ``n-1`` synchronous shift steps; a process."""
    if algorithm not in ALL_TO_ALL:
        raise ValueError(f"unknown all-to-all algorithm {algorithm!r} "
                         f"(use {', '.join(ALL_TO_ALL)})")
    n = len(group)
    steps = [[(group[i], group[(i + k) % n], nbytes[i][(i + k) % n]) for i in range(n)
              if nbytes[i][(i + k) % n] > 0] for k in range(1, n)]
    if algorithm == "direct":
        steps = [[m for step in steps for m in step]]
    for msgs in steps:
        if msgs:
            yield from _pipelined(net, msgs, cause)


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
    elif kind == "all_to_all":  # every chip sends nbytes/n to every other: an even split
        yield from all_to_all(net, group, [[nbytes / n] * n] * n, cause)
    else:
        raise ValueError(f"unknown collective {kind!r} (use {', '.join(COLLECTIVES)})")
