"""Prefix caching (vLLM automatic prefix caching, SGLang RadixAttention) on the paged KV cache.

A request may carry a prefix: an id and a length ``P`` (tokens at the head of its prompt
that other requests share: a system prompt, a conversation's history). When a prompt whose
prefix is in the cache is admitted, its first ``min(P, prompt - 1)`` tokens are not
computed (the last prompt token always runs, to produce the first output token); the step
prefills the rest against a context that includes them (their K/V is read by attention).

The cache lives in the scheduler's blocks: an entry holds ``ceil(P / block_tokens)`` blocks
taken from the pool every sequence draws on. When a prompt with a prefix not in the cache
finishes its prefill, the blocks of its first ``P`` tokens become the entry (when the cache
has room: at most ``max_blocks`` blocks in all, the least recently used entries nobody
reads evicted first). Sequences reading an entry pin it; an entry nobody reads stays cached
until evicted: when a sequence needs blocks and none are free, least recently used unpinned
entries are evicted before any sequence is preempted. A prompt admitted while its prefix is
still being computed by another misses (vLLM caches a block once it is computed).

Request streams with prefixes: a trace's optional ``prefix_id`` and ``prefix_tokens``
columns, or :func:`with_prefixes` on drawn requests: ``system:SHARE,N`` (a share of the
requests starts with one system prompt of ``N`` tokens: prompt = N + its drawn length) or
``chat:TURNS`` (conversations of ``TURNS`` turns; requests are dealt to conversations in
arrival order, and turn ``k`` repeats the whole history before it, earlier prompts and
outputs, as its prefix).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np

from npusim.errors import WorkloadError
from npusim.serving.arrivals import Requests
from npusim.serving.scheduler import Scheduler, Seq

__all__ = ["PrefixScheduler", "check_prefixes", "with_prefixes"]


@dataclass
class _Entry:
    blocks: int
    tokens: int
    refs: int = 0


@dataclass
class PrefixScheduler(Scheduler):
    """A :class:`~npusim.serving.scheduler.Scheduler` whose blocks also hold a prefix cache
    of at most ``max_blocks`` blocks."""

    max_blocks: int = 1 << 62
    entries: OrderedDict[int, _Entry] = field(default_factory=OrderedDict)  # LRU first
    hits: int = 0
    lookups: int = 0
    hit_tokens: int = 0

    @property
    def cached_blocks(self) -> int:
        return sum(e.blocks for e in self.entries.values())

    def _evict(self, blocks: int) -> int:
        """Evict least recently used unpinned entries until ``blocks`` are freed."""
        freed = 0
        for pid in [p for p, e in self.entries.items() if e.refs == 0]:
            if freed >= blocks:
                break
            freed += self.entries.pop(pid).blocks
        self.free_blocks += freed
        return freed

    def _reclaim(self, blocks: int) -> None:
        self._evict(blocks)

    def _prefix_hit(self, seq: Seq) -> tuple[int, int]:
        e = self.entries.get(seq.prefix) if seq.prefix >= 0 else None
        # what the entry holds of the prefix (a prefill pool's chat turn holds its prompt
        # and first token, not the turn's later output), never the whole prompt
        hit = min(seq.prefix_len, e.tokens, seq.target - 1) if e is not None else 0
        if e is None or hit < 1:
            return 0, 0
        e.refs += 1  # pinned: growing this sequence must not evict its own prefix
        return hit, e.blocks

    def _unpin(self, seq: Seq) -> None:
        self.entries[seq.prefix].refs -= 1

    def _took_prefix(self, seq: Seq) -> None:
        if seq.prefix < 0 or seq.prefix_len < 1:
            return
        self.lookups += 1
        if seq.cached:
            self.entries.move_to_end(seq.prefix)
            self.hits += 1
            self.hit_tokens += seq.cached

    def _prefilled(self, seq: Seq) -> None:
        if seq.prefix < 0 or seq.cached or seq.prefix in self.entries:
            return
        blocks = self._blocks_for(seq.prefix_len)
        if blocks > seq.blocks or blocks > self.max_blocks:
            return
        over = self.cached_blocks + blocks - self.max_blocks
        if over > 0 and self._evict(over) < over:
            return
        self.entries[seq.prefix] = _Entry(blocks, seq.prefix_len, refs=1)
        seq.shared = blocks  # its first blocks now belong to the cache

    def _release(self, seq: Seq) -> None:
        parent = self.entries.get(seq.prefix) if seq.shared else None
        if parent is not None:
            parent.refs -= 1
        if seq.publish >= 0 and seq.generated >= seq.output and seq.publish not in self.entries:
            # a finished turn: its whole sequence is the next turn's prefix (the entry it
            # read, when nobody else reads it, becomes part of the new one)
            own = seq.blocks - seq.shared
            merge = parent is not None and parent.refs == 0
            blocks = own + (parent.blocks if merge and parent else 0)
            if blocks <= self.max_blocks:
                if merge:
                    self.entries.pop(seq.prefix)
                over = self.cached_blocks + blocks - self.max_blocks
                if over <= 0 or self._evict(over) >= over:
                    self.entries[seq.publish] = _Entry(blocks, seq.kv)
                    seq.blocks = seq.shared = 0
                    return
                if merge and parent is not None:
                    self.entries[seq.prefix] = parent
        super()._release(seq)

    @property
    def used_blocks(self) -> int:
        return self.limits.blocks - self.free_blocks


def check_prefixes(req: Requests) -> None:
    """A prefix must fit its prompt; ids are non-negative."""
    if req.prefix_len is None:
        return
    bad = np.flatnonzero(req.prefix_len > req.prompt)
    if len(bad):
        i = int(bad[0])
        raise WorkloadError(f"request {i}: prefix of {int(req.prefix_len[i])} tokens is longer "
                            f"than its prompt of {int(req.prompt[i])} tokens")
    if req.prefix_id is not None and (req.prefix_id < -1).any():
        raise WorkloadError("prefix ids must be non-negative (-1: no prefix)")


def with_prefixes(req: Requests, spec: str, seed: int = 0) -> Requests:
    """``req`` with prefixes drawn by ``spec`` (``system:SHARE,N``, ``chat:TURNS`` or
    ``none``); seeded."""
    kind, _, args = spec.partition(":")
    if kind == "none" or not spec:
        return req
    try:
        vals = [float(v) for v in args.split(",")] if args else []
    except ValueError:
        raise WorkloadError(f"prefix {spec!r}: numbers expected after the colon") from None
    n = len(req)
    if kind == "system" and len(vals) == 2:
        share, tokens = vals
        if not 0 <= share <= 1 or tokens < 1 or tokens != int(tokens):
            raise WorkloadError(f"prefix {spec!r}: SHARE in [0, 1], N a positive integer")
        rng = np.random.default_rng([seed, 7])
        use = rng.random(n) < share
        plen = np.where(use, int(tokens), 0).astype(np.int64)
        return replace(req, prompt=req.prompt + plen, prefix_id=np.where(use, 0, -1),
                       prefix_len=plen)
    if kind == "chat" and len(vals) == 1 and vals[0] >= 1 and vals[0] == int(vals[0]):
        convs = -(-n // int(vals[0]))
        prompt = req.prompt.copy()
        plen = np.zeros(n, dtype=np.int64)
        for i in range(convs, n):  # dealt in arrival order: request i follows i - convs
            plen[i] = prompt[i - convs] + req.output[i - convs]
            prompt[i] += plen[i]
        ids = np.arange(n, dtype=np.int64)
        return replace(req, prompt=prompt, prefix_id=np.where(plen > 0, ids - convs, -1),
                       prefix_len=plen, publish=ids)
    raise WorkloadError(f"prefix {spec!r}: use system:SHARE,N, chat:TURNS or none")
