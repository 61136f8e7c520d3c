"""Routing requests across data-parallel replicas.

A router picks, for each request as it arrives at a pool, one of the pool's replicas:

- ``round-robin``: replica ``i mod N`` for the pool's ``i``-th request;
- ``random``: uniformly at random (seeded): N independent queues, each fed by a thinned
  Poisson stream when the arrivals are Poisson;
- ``jsq`` (join the shortest queue): the fewest requests in the replica (waiting or
  holding KV), ties to the lowest index;
- ``least-kv``: the smallest share of KV blocks in use, counting the blocks the waiting
  prompts will take; ties by requests in the replica, then the lowest index;
- ``prefix``: prefix affinity: a request with a prefix goes where its prefix went first
  (its cache is there); without a prefix, or the first of its prefix, as ``jsq``. A
  decode pool (no prefix cache) routes by ``jsq`` under this policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from npusim.errors import WorkloadError
from npusim.serving.scheduler import Scheduler, Seq

__all__ = ["ROUTERS", "Router"]

ROUTERS = ("round-robin", "random", "jsq", "least-kv", "prefix")


def _in_system(s: Scheduler) -> int:
    return len(s.waiting) + len(s.running)


def _kv_share(s: Scheduler) -> float:
    per = s.limits.block_tokens
    waiting = sum(-(-(q.target - q.kv) // per) for q in s.waiting)
    return (s.used_blocks + waiting) / max(s.limits.blocks, 1)


@dataclass
class Router:
    policy: str
    seed: int = 0
    _count: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)
    _home: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.policy not in ROUTERS:
            raise WorkloadError(f"router {self.policy!r}: use one of {', '.join(ROUTERS)}")
        self._rng = np.random.default_rng([self.seed, 11])

    def pick(self, replicas: list[Scheduler], seq: Seq) -> int:
        n = len(replicas)
        self._count += 1
        if n == 1:
            return 0
        if self.policy == "round-robin":
            return (self._count - 1) % n
        if self.policy == "random":
            return int(self._rng.integers(n))
        if self.policy == "least-kv":
            return min(range(n), key=lambda i: (_kv_share(replicas[i]),
                                                _in_system(replicas[i]), i))
        if self.policy == "prefix" and seq.prefix >= 0 and seq.prefix in self._home:
            return self._home[seq.prefix]
        best = min(range(n), key=lambda i: (_in_system(replicas[i]), i))
        if self.policy == "prefix":
            if seq.prefix >= 0:
                self._home[seq.prefix] = best
            if seq.publish >= 0:  # a conversation's next turn follows this one
                self._home[seq.publish] = best
        return best
