"""Splitting a GEMM over the cores: over the batch/group dimension, M or N, the one with
the lowest estimated latency; among those within 2 % of it, the fewest DRAM bytes; then the
least DRAM + NoC energy. An M split gives every core all of B, an N split all of A: each
core loads its own copy, unless the chip's NoC can multicast, when each core loads its
share of the shared operand and receives the rest over the NoC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npusim.compiler.context import Ctx
from npusim.compiler.program import COL
from npusim.kernels import tiling
from npusim.kernels.systolic import DATAFLOWS, gemm_cycles
from npusim.spec.arch import Chip

__all__ = ["SPLIT_TIE", "SplitEstimate", "choose_split", "even_parts", "multicast_tiles",
           "pick_split", "split_estimates"]


#: Split candidates whose estimated latency is within this factor of the fastest tie on
#: latency (the estimate is no more accurate than that; the tiler uses the same margin).
SPLIT_TIE = tiling.TIE_TOLERANCE


@dataclass(frozen=True)
class SplitEstimate:
    """What :func:`pick_split` weighs for one way of splitting a GEMM over the cores."""

    how: str  # "g", "m" or "n"
    latency_cycles: float  # max(largest share's array cycles, DRAM time, NoC time)
    dram_bytes: float  # DRAM reads of A and B by all cores
    noc_bytes: float  # bytes delivered over the NoC, all cores
    energy_j: float  # DRAM + NoC energy of those bytes
    shared: str  # the operand multicast over the NoC: "a", "b" or ""


def split_estimates(chip: Chip, g: int, m: int, n: int, k: int, a_bytes: float,
                    b_bytes: float, rate: float, dram_bpc: float,
                    multicast: bool | None = None) -> list[SplitEstimate]:
    """Every way to split a GEMM of ``g`` products of (m x k)(k x n) over the chip's cores.

    ``a_bytes``/``b_bytes``: one copy of each operand as read from DRAM (0 if on chip);
    ``dram_bpc``: DRAM bytes per core cycle of one core's share (0: no DRAM time). A split
    of a dimension needs an entry per core. Over g (independent products) nothing is
    shared; over M every core needs all of B, over N all of A: with a multicasting NoC one
    copy is read from DRAM and (cores - 1) copies cross the NoC, else every core reads it.
    Array cycles are the fold formula (:func:`npusim.kernels.systolic.gemm_cycles`) for the
    largest share. ``multicast`` overrides the chip's NoC capability (``None``: the chip's).
    """
    cores = chip.n_cores
    sa = chip.cores.core.systolic
    df = DATAFLOWS[sa.dataflow]
    overlap = int(sa.preload == "overlapped")
    bpc = dram_bpc * cores
    noc_bpc = chip.noc.bytes_per_cycle if chip.noc is not None else 0.0
    multicast = chip.multicast if multicast is None else multicast
    dram_epb = chip.dram_energy_per_byte()
    noc_epb = chip.noc.energy_per_byte if chip.noc is not None else 0.0
    out = []
    for how, size, shared_bytes, name in (("g", g, 0.0, ""), ("m", m, b_bytes, "b"),
                                          ("n", n, a_bytes, "a")):
        if size < cores:
            continue
        part = -(-size // cores)
        cg, cm, cn = (part, m, n) if how == "g" else ((g, part, n) if how == "m" else (g, m, part))
        comp = cg * gemm_cycles(cm, cn, k, sa.rows, sa.cols, sa.count, df, rate, overlap)
        copies = shared_bytes * (cores - 1)
        if multicast and copies > 0:
            dram, noc = a_bytes + b_bytes, copies
        else:
            dram, noc, name = a_bytes + b_bytes + copies, 0.0, ""
        latency = max(float(comp), dram / bpc if bpc > 0 else 0.0,
                      noc / cores / noc_bpc if noc_bpc > 0 else 0.0)
        energy = dram * dram_epb + noc * noc_epb
        out.append(SplitEstimate(how, latency, dram, noc, energy, name))
    return out


def choose_split(estimates: list[SplitEstimate]) -> SplitEstimate | None:
    """The split the rule picks: the lowest estimated latency; among the estimates within
    SPLIT_TIE of it, the fewest DRAM bytes, then the least energy, then the first listed."""
    if not estimates:
        return None
    fastest = min(e.latency_cycles for e in estimates)
    close = [e for e in estimates if e.latency_cycles <= fastest * SPLIT_TIE]
    return min(close, key=lambda e: (e.dram_bytes, e.energy_j))


def pick_split(ctx: Ctx, g: int, m: int, n: int, k: int, a_bytes: float,
               b_bytes: float, rate: float) -> tuple[str, int, str]:
    """(dimension split, cores it is split over, operand multicast over the NoC)."""
    cores = ctx.chip.n_cores
    if cores == 1:
        return "none", 1, ""
    # The ideal memory reads every copy for free: nothing is gained by multicasting (and
    # the SCALE-Sim reference point it stands for has no on-chip network).
    best = choose_split(split_estimates(ctx.chip, g, m, n, k, a_bytes, b_bytes, rate,
                                        ctx.dram_bpc, multicast=False if ctx.ideal else None))
    if best is None:
        return "none", 1, ""
    return best.how, cores, best.shared


def multicast_tiles(tiles: np.ndarray, b_reads: np.ndarray, shared: str, parts: int) -> None:
    """A core's tiles when ``parts`` cores share an operand over a multicasting NoC: each
    tile reads its 1/parts of the shared operand's bytes from DRAM and receives the rest
    over the NoC (the other cores read them). What reaches the SRAM is unchanged."""
    rd = tiles[:, COL["dram_read_bytes"]]
    moved = (b_reads if shared == "b" else rd - b_reads) * (parts - 1) / parts
    tiles[:, COL["dram_read_bytes"]] = rd - moved
    tiles[:, COL["noc_read_bytes"]] = moved


def even_parts(total: int, parts: int) -> list[int]:
    base, rem = divmod(total, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]

