"""Expert parallelism: a stage's routed experts sharded over its expert-parallel group.

An expert group is ``ep`` chips of one pipeline stage (``ep/tp`` data-parallel replicas of
``tp`` ranks each; :mod:`npusim.system.parallel`). Member ``m`` holds experts
``m x E/ep … (m+1) x E/ep - 1`` of every MoE layer and computes every token row the group
routes to them. The routing is that of the whole group's tokens, decided once: the
workload of the group's ``ep/tp`` micro-batches built together (so a group touches the
experts its ``ep/tp x batch`` tokens touch, by the workload's routing mode), and each
:class:`~npusim.workloads.ir.ExpertMatmul` of it is cut by expert ranges. Which member a
routed row comes from is not in a tokens-per-expert count; the rows, numbered expert after
expert, are dealt out to the members in turn (row ``i`` from member ``i mod ep``), so every
member sends within one row of ``1/ep`` of them, spread over the experts as the routing
spreads them (a tensor-parallel rank dispatches its ``1/tp`` of its replica's tokens, the
ranks holding the same tokens).

Every MoE block then has two all-to-alls over the group (:func:`npusim.engine.collectives.
all_to_all`): the dispatch before its routed experts (member ``m`` sends each routed row
of its tokens, ``hidden`` activations, to the member holding the expert) and the combine
after them (the expert outputs back, ``hidden`` wide at the output precision). A token
routed to two experts on one chip is sent twice (rows, not tokens, are counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TypeGuard

import numpy as np

from npusim.workloads.ir import Elementwise, ExpertMatmul, Layer, Workload, bytes_of

__all__ = ["ExpertShard", "StageExperts", "expert_shards", "is_routed", "moe_block",
           "routed_side"]

_BLOCK = re.compile(r"^l(\d+)\.")

#: a member's bytes to every member of its group, per MoE block
Rows = dict[int, tuple[float, ...]]


def is_routed(layer: Layer) -> TypeGuard[ExpertMatmul]:
    """Whether ``layer`` is a routed-expert projection (``l{i}.experts.*``, sharded under
    expert parallelism); other grouped GEMMs (MLA's per-head absorbed projections) are not."""
    return isinstance(layer, ExpertMatmul) and ".experts." in layer.name


def routed_side(layers: tuple[Layer, ...]) -> set[str]:
    """Names of the layers that run on the chip holding the experts: the routed
    projections and the elementwise work between a block's first and last of them (the
    experts' activation, over their routed rows)."""
    out: set[str] = set()
    span: dict[int | None, list[int]] = {}
    for i, layer in enumerate(layers):
        if is_routed(layer):
            span.setdefault(moe_block(layer.name), []).append(i)
    for idx in span.values():
        for layer in layers[idx[0]:idx[-1] + 1]:
            if is_routed(layer) or (isinstance(layer, Elementwise)
                                    and ".experts." in layer.name):
                out.add(layer.name)
    return out


def moe_block(name: str) -> int | None:
    """The block index of a layer name ``l{i}.…`` (None outside the blocks)."""
    m = _BLOCK.match(name)
    return int(m.group(1)) if m else None


def _shares(counts: tuple[int, ...], ep: int) -> np.ndarray:
    """``[member, expert]`` rows: the rows, numbered expert after expert, dealt out to the
    members in turn (row ``i`` from member ``i mod ep``)."""
    c = np.asarray(counts, dtype=np.int64)
    end = np.cumsum(c)
    start = end - c
    m = np.arange(ep, dtype=np.int64)[:, None]

    def upto(n: np.ndarray) -> np.ndarray:  # indices 0 … n-1 equal to m modulo ep
        return np.maximum(n[None, :] - m + ep - 1, 0) // ep

    return upto(end) - upto(start)


@dataclass(frozen=True)
class ExpertShard:
    """One member's routed experts in one micro-batch of a step."""

    member: int
    first_expert: int
    experts: int  # held, of every MoE layer
    #: its slice of every routed projection that gets at least one row, and of the
    #: elementwise work between them (its rows' share)
    layers: tuple[Layer, ...]
    dispatch: Rows  # block -> bytes of routed rows sent to each member
    combine: Rows  # block -> bytes of expert outputs sent back to each member

    @property
    def rows(self) -> int:
        """Routed token rows its experts compute, over the MoE blocks (first projection
        of each block)."""
        return sum(layer.rows for layer in self._firsts())

    @property
    def touched(self) -> int:
        """Experts of its own that at least one row reaches, over the MoE blocks."""
        return sum(layer.touched for layer in self._firsts())

    def _firsts(self) -> list[ExpertMatmul]:
        seen: set[int | None] = set()
        out = []
        for layer in self.layers:
            b = moe_block(layer.name)
            if isinstance(layer, ExpertMatmul) and b not in seen:
                seen.add(b)
                out.append(layer)
        return out


def expert_shards(group: Workload, ep: int) -> tuple[ExpertShard, ...]:
    """The ``ep`` members' shards of the routed experts of ``group`` (the workload of the
    whole group's tokens, see the module docstring)."""
    blocks: dict[int, list[ExpertMatmul]] = {}
    vector: dict[int, list[Elementwise]] = {}
    side = routed_side(group.layers)
    for layer in group.layers:
        b = moe_block(layer.name)
        key = -1 if b is None else b
        if is_routed(layer):
            blocks.setdefault(key, []).append(layer)
        elif layer.name in side and isinstance(layer, Elementwise):
            vector.setdefault(key, []).append(layer)
    layers: list[list[Layer]] = [[] for _ in range(ep)]
    dispatch: list[Rows] = [{} for _ in range(ep)]
    combine: list[Rows] = [{} for _ in range(ep)]
    held = 0
    for b, projs in blocks.items():
        held = projs[0].experts // ep
        first, last = projs[0], projs[-1]
        share = _shares(first.tokens_per_expert, ep)
        # rows[src][dst]: routed rows of src's tokens on dst's experts
        rows = share.reshape(ep, ep, held).sum(axis=2).tolist()
        for m in range(ep):
            lo = m * held
            for layer in projs:
                counts = layer.tokens_per_expert[lo:lo + held]
                if sum(counts) > 0:
                    layers[m].append(replace(layer, tokens_per_expert=counts))
            own = sum(first.tokens_per_expert[lo:lo + held])
            for v in vector.get(b, []):  # its rows' share of the experts' elementwise work
                if own > 0:
                    layers[m].append(replace(v, elements=max(v.elements * own // first.rows,
                                                             1)))
            dispatch[m][b] = tuple(float(bytes_of(r * first.k, first.act_precision))
                                   for r in rows[m])
            combine[m][b] = tuple(float(bytes_of(rows[d][m] * last.n, last.out_precision))
                                  for d in range(ep))
    shards = [ExpertShard(m, m * held, held, tuple(layers[m]), dispatch[m], combine[m])
              for m in range(ep)]
    return tuple(shards)


@dataclass(frozen=True)
class StageExperts:
    """A stage's expert-parallel members: their shards and what each one's routed
    projections cost on the chip (latency per layer name, energy in all)."""

    shards: tuple[ExpertShard, ...]
    latency_s: tuple[dict[str, float], ...]
    energy_j: tuple[float, ...]
