"""The lowering's state while it walks a workload: the chip's budgets for this layer, the
address allocator, the tile budget and the caches that let identical blocks tile once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from npusim.compiler.program import LayerProgram
from npusim.limits import TILE_BYTES, TooLargeError, memory_problem
from npusim.spec.arch import Chip

__all__ = ["Ctx", "GemmTiles"]


@dataclass(frozen=True)
class GemmTiles:
    """One GEMM layer's per-core tiles with addresses from 0, and how they were made."""

    tiles: tuple[np.ndarray, ...]
    mapping: str
    engine: str
    acc_read_bytes: float
    acc_write_bytes: float
    stream: float


@dataclass
class Ctx:
    chip: Chip
    ideal: bool
    capacity: float  # per-core SRAM bytes for tiles
    acc_capacity: float
    dram_bpc: float  # DRAM bytes per core cycle for one core's share
    lat: float  # DRAM idle latency in core cycles
    resident_budget: float
    cache: dict[tuple[object, ...], np.ndarray]
    weights_on_chip: bool = False
    addr: int = 0
    #: a GEMM layer's tiles addressed from 0, its mapping, engine and accumulator bytes, by
    #: everything they depend on: the identical blocks of a transformer are tiled once
    gemms: dict[tuple[object, ...], GemmTiles] = field(default_factory=dict)
    #: a whole layer's program and the address span it allocated, by everything it depends
    #: on (routed-expert layers with the same loads reuse it, re-addressed)
    programs: dict[tuple[object, ...], tuple[LayerProgram, int, int]] = field(
        default_factory=dict)

    #: tiles of the program so far, counted before each layer's tile arrays are built
    tiles: int = 0
    #: index of the workload layer being lowered
    layer: int = 0

    def reserve(self, n_tiles: int, name: str, what: str) -> None:
        """Count ``n_tiles`` more tiles; refuse the program when they pass the memory budget."""
        self.tiles += n_tiles
        problem = memory_problem(self.tiles * TILE_BYTES)
        if problem is not None:
            raise TooLargeError(f"layer {name!r} ({what}): the program reaches {self.tiles:,} "
                                f"tiles, which {problem}",
                                layer=self.layer)

    def alloc(self, nbytes: float) -> int:
        base = self.addr
        self.addr += int(math.ceil(nbytes / 4096.0) * 4096)
        return base

