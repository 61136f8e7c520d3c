"""Iteration-level continuous batching (Orca, vLLM) over a paged KV cache.

Every step the scheduler picks which sequences run: each running sequence adds one token
(decode), waiting prompts are admitted first come, first served while the step has room.
Limits: ``max_batch`` sequences hold KV at once; a step runs at most ``max_tokens`` tokens
(a decode is one token, a prompt or chunk its length).

* ``priority="prefill"`` (vLLM's default before chunked prefill): when a waiting prompt can
  be admitted, the step runs prompts only and the decodes wait one step;
* ``priority="decode"`` (Sarathi, vLLM with chunked prefill): every running sequence
  decodes, prompts fill the step's remaining token budget (a mixed step).

``chunked_prefill`` lets a prompt be cut to fill a step's budget (the rest follows in later
steps); without it a prompt runs whole. A prompt of ``target`` tokens ends by producing one
token; a decode adds one token to the cache and produces the next.

Paged KV cache: ``blocks`` blocks of ``block_tokens`` tokens; a sequence holds
``ceil(tokens in cache / block_tokens)`` blocks. When a decode needs a block and none is
free, the most recently admitted sequence is preempted: by recompute (vLLM's default; its
blocks are freed, it goes back to the head of the queue, and when readmitted its prompt and
the tokens it generated so far are prefilled again; no token is emitted twice), or, when a
host link is given and moving its cache out and back (``2 x tokens x swap_s_per_token``)
costs less than recomputing it (``recompute_s(tokens)``), by swap to host memory: its
blocks are freed, its cache kept on the host, and when readmitted its blocks are taken
again and the cache moved back. The host-link time of a step's swaps is added to that step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Limits", "Scheduler", "Seq", "Step"]


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64
    max_tokens: int = 2048
    block_tokens: int = 16
    blocks: int = 1 << 30
    priority: str = "prefill"
    chunked_prefill: bool = False
    #: host-link seconds and joules to move one token's K/V one way (0: no swapping)
    swap_s_per_token: float = 0.0
    swap_j_per_token: float = 0.0
    #: speculative decoding: draft tokens verified per step (0: one token per decode)
    spec_tokens: int = 0


@dataclass(slots=True)
class Seq:
    """One request's state."""

    i: int
    arrival: float
    prompt: int
    output: int
    target: int = 0  # tokens this prefill must compute (prompt, or more after recompute)
    kv: int = 0  # tokens whose K/V are in the cache
    generated: int = 0
    blocks: int = 0
    admitted: float = math.nan  # start of its first step
    first_token: float = math.nan
    finish: float = math.nan
    preemptions: int = 0
    swaps: int = 0
    swapped: bool = False  # its cache is on the host
    prefix: int = -1  # prefix id (-1: none) and its tokens, for a prefix cache
    prefix_len: int = 0
    publish: int = -1  # id its whole sequence is cached under when it finishes (-1: none)
    cached: int = 0  # prompt tokens a prefix cache supplied (not computed)
    shared: int = 0  # blocks of ``blocks`` that belong to the prefix cache
    computed: int = 0  # prompt tokens prefilled (every chunk, recomputes included)
    verifies: int = 0  # speculative verify steps it took part in

    @property
    def prefilling(self) -> bool:
        return self.kv < self.target


@dataclass
class Step:
    """What a step runs: (sequence, chunk tokens) prompts and sequences decoding."""

    prefills: list[tuple[Seq, int]]
    decodes: list[Seq]
    swap_tokens: int = 0  # tokens of K/V moved over the host link (out and in)
    #: tokens each decode produces (speculative decoding; None: one each)
    accepted: list[int] | None = None

    @property
    def prefill_tokens(self) -> int:
        return sum(c for _, c in self.prefills)

    @property
    def context_sum(self) -> int:
        return sum(s.kv + 1 for s in self.decodes)


@dataclass
class Scheduler:
    limits: Limits
    waiting: deque[Seq] = field(default_factory=deque)
    running: list[Seq] = field(default_factory=list)  # hold KV (prefilling or decoding)
    free_blocks: int = 0
    preemptions: int = 0
    swaps: int = 0
    #: seconds to prefill this many tokens again (the recompute a swap would save)
    recompute_s: Callable[[int], float] | None = None
    _swap_tokens: int = 0

    def __post_init__(self) -> None:
        self.free_blocks = self.limits.blocks

    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.limits.block_tokens)

    @property
    def used_blocks(self) -> int:
        return self.limits.blocks - self.free_blocks

    def add(self, seq: Seq) -> None:
        seq.target = seq.prompt
        self.waiting.append(seq)

    def _reclaim(self, blocks: int) -> None:
        """Free up to ``blocks`` blocks held by something other than sequences (a prefix
        cache evicts); nothing here."""

    def _release(self, seq: Seq) -> None:
        """Return ``seq``'s blocks (those it shares with a prefix cache stay cached)."""
        self.free_blocks += seq.blocks - seq.shared
        seq.blocks = seq.shared = 0

    def _prefix_hit(self, seq: Seq) -> tuple[int, int]:
        """(tokens, blocks) of ``seq``'s prompt a prefix cache holds (pinned until
        :meth:`_unpin` or the sequence's release); none here."""
        return 0, 0

    def _unpin(self, seq: Seq) -> None:
        """``seq`` was not admitted after all: its prefix hit's pin is given back."""

    def _grow(self, seq: Seq, tokens: int) -> bool:
        need = self._blocks_for(tokens) - seq.blocks
        if need > self.free_blocks:
            self._reclaim(need - self.free_blocks)
        if need > self.free_blocks:
            return False
        self.free_blocks -= max(need, 0)
        seq.blocks += max(need, 0)
        return True

    def _preempt(self, seq: Seq) -> None:
        self.running.remove(seq)
        self._release(seq)
        lim = self.limits
        if (lim.swap_s_per_token > 0 and self.recompute_s is not None
                and not seq.prefilling and 2 * seq.kv * lim.swap_s_per_token
                < self.recompute_s(seq.prompt + seq.generated)):
            seq.swapped = True
            seq.swaps += 1
            self.swaps += 1
            self._swap_tokens += seq.kv
        else:
            seq.kv = seq.cached = 0
            seq.target = seq.prompt + seq.generated
            seq.preemptions += 1
            self.preemptions += 1
        self.waiting.appendleft(seq)

    def _decodes(self) -> list[Seq]:
        """Running sequences past their prompt, each with a block for its next token;
        the latest admitted are preempted while blocks are short. ``running`` is in
        admission order (a readmitted sequence goes to its end)."""
        out: list[Seq] = []
        for seq in list(self.running):
            if seq.kv < seq.target or seq.swapped:  # prefilling, or preempted above
                continue
            need = self._blocks_for(seq.kv + self.limits.spec_tokens + 1) - seq.blocks
            if need > 0:  # its next token (or verified tokens) starts a new block
                if need > self.free_blocks:
                    self._reclaim(need - self.free_blocks)
                while need > self.free_blocks:
                    victim = self.running[-1]
                    self._preempt(victim)
                    if victim is seq:
                        break
                if seq.kv < seq.target or seq.swapped:
                    continue
                self.free_blocks -= need
                seq.blocks += need
            out.append(seq)
        return out

    def _prefills(self, budget: int, batch_room: int) -> list[tuple[Seq, int]]:
        """Chunks of prompts already started, then waiting prompts first come, first served."""
        lim = self.limits
        out: list[tuple[Seq, int]] = []
        started = [s for s in self.running if s.kv < s.target] if lim.chunked_prefill else []
        for seq in started:
            chunk = min(seq.target - seq.kv, budget)
            if chunk <= 0 or not self._grow(seq, seq.kv + chunk):
                return out
            out.append((seq, chunk))
            budget -= chunk
        while self.waiting and batch_room > 0 and budget > 0:
            seq = self.waiting[0]
            if not seq.prefilling:  # its cache comes back (a swap, or a prefill pool's
                if not self._grow(seq, seq.kv):  # handover); it decodes with the others
                    break
                self.waiting.popleft()
                if seq.swapped:
                    self._swap_tokens += seq.kv
                seq.swapped = False
                self.running.append(seq)
                batch_room -= 1
                continue
            hit, hit_blocks = self._prefix_hit(seq)
            rest = seq.target - hit
            chunk = rest if rest <= budget else (budget if lim.chunked_prefill else 0)
            if not chunk and not out and budget == lim.max_tokens:
                chunk = rest  # a recomputed prompt past max_tokens runs alone
            if chunk:
                seq.kv, seq.cached, seq.blocks, seq.shared = hit, hit, hit_blocks, hit_blocks
            if chunk == 0 or not self._grow(seq, hit + chunk):
                if hit:
                    self._unpin(seq)
                if chunk:
                    seq.kv = seq.cached = seq.blocks = seq.shared = 0
                break
            self._took_prefix(seq)
            self.waiting.popleft()
            self.running.append(seq)
            out.append((seq, chunk))
            budget -= chunk
            batch_room -= 1
        return out

    def _took_prefix(self, seq: Seq) -> None:
        """``seq`` was admitted with ``seq.cached`` tokens from a prefix cache."""

    def _prefilled(self, seq: Seq) -> None:
        """``seq``'s prompt is in the cache (a prefix cache may keep its prefix)."""

    def next_step(self) -> Step | None:
        lim = self.limits
        room = lim.max_batch - len(self.running)
        if lim.priority == "prefill":
            pre = self._prefills(lim.max_tokens, room)
            step = Step(pre, []) if pre else Step([], self._decodes())
        else:
            dec = self._decodes()
            step = Step(self._prefills(lim.max_tokens - len(dec),
                                       lim.max_batch - len(self.running)), dec)
        if not step.prefills and not step.decodes:
            return None
        step.swap_tokens, self._swap_tokens = self._swap_tokens, 0
        return step

    def finish_step(self, step: Step, now: float) -> list[Seq]:
        """Account the tokens of ``step`` ended at ``now``; the sequences that completed."""
        done: list[Seq] = []
        for seq, chunk in step.prefills:
            seq.kv += chunk
            seq.computed += chunk
            if not seq.prefilling:
                self._prefilled(seq)
                seq.generated += 1
                if math.isnan(seq.first_token):
                    seq.first_token = now
                if seq.generated >= seq.output:
                    done.append(seq)
        for k, seq in enumerate(step.decodes):
            n = 1 if step.accepted is None else min(step.accepted[k],
                                                     seq.output - seq.generated)
            seq.kv += n
            seq.generated += n
            if step.accepted is not None:
                seq.verifies += 1
            if seq.generated >= seq.output:
                done.append(seq)
        for seq in done:
            seq.finish = now
            self.running.remove(seq)
            self._release(seq)
        return done
