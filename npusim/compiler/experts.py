"""Routed-expert lowering: an :class:`~npusim.workloads.ir.ExpertMatmul` as grouped GEMMs.

The experts a step touches are grouped by their load: the ``count`` experts that received
``rows`` token rows each form one grouped GEMM of ``count`` independent (rows x k)·(k x n)
products, each with its own weight (the GEMM lowering of :mod:`npusim.compiler.gemm`, split
over the cores and tiled by the same search; identical groups of other layers reuse the
tiles). Only touched experts' weights are read from DRAM; an expert with no token is not
read at all. The layer's tiles are the groups' tiles, one group after another on each core.
Where weights may live (resident in the shared SRAM) counts every expert held
(:mod:`npusim.compiler.weights`). The per-layer report carries ``experts_touched`` and
``expert_imbalance`` (most rows on one expert over the mean of the touched ones).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from npusim.compiler.context import Ctx
from npusim.compiler.gemm import lower_gemm
from npusim.compiler.program import COL, LayerProgram
from npusim.workloads.ir import ExpertMatmul, Matmul

__all__ = ["lower_experts"]


def lower_experts(ctx: Ctx, index: int, layer: ExpertMatmul, a_res: bool,
                  out_res: bool) -> LayerProgram:
    """One program for all touched experts of ``layer``: a grouped GEMM per load. A layer
    with the same loads and shapes as one lowered before takes its tiles, re-addressed by
    the allocator's offset (what lowering it again would give)."""
    key = ("experts", layer.tokens_per_expert, layer.k, layer.n, layer.activation,
           layer.act_precision, layer.weight_precision, layer.out_precision, a_res, out_res,
           ctx.capacity, ctx.acc_capacity, ctx.ideal, ctx.dram_bpc, ctx.lat,
           ctx.weights_on_chip, ".experts." in f".{layer.name}")
    found = ctx.programs.get(key)
    if found is not None:
        done, addr0, span = found
        ctx.reserve(done.n_tiles, layer.name, f"experts {layer.touched} x {layer.k}x{layer.n}")
        shift = ctx.addr - addr0
        ctx.addr += span
        moved = []
        for t in done.tiles:
            t = t.copy()
            t[:, COL["read_addr"]] += shift
            t[:, COL["write_addr"]] += shift
            moved.append(t)
        return replace(done, index=index, name=layer.name, tiles=tuple(moved))
    addr0 = ctx.addr
    lp = _lower(ctx, index, layer, a_res, out_res)
    ctx.programs[key] = (lp, addr0, ctx.addr - addr0)
    return lp


def _lower(ctx: Ctx, index: int, layer: ExpertMatmul, a_res: bool,
           out_res: bool) -> LayerProgram:
    parts = []
    for rows, count in layer.groups():
        group = Matmul(f"{layer.name}[{rows}x{count}]", batch=count, m=rows, k=layer.k,
                       n=layer.n, b_kind="weight", activation=layer.activation,
                       act_precision=layer.act_precision,
                       weight_precision=layer.weight_precision,
                       out_precision=layer.out_precision)
        parts.append(lower_gemm(ctx, index, group, a_res, out_res, grouped=True))
    tiles = tuple(np.concatenate([lp.tiles[c] for lp in parts]) for c in range(ctx.chip.n_cores))
    extra = {key: sum(lp.extra.get(key, 0.0) for lp in parts)
             for key in ("acc_read_bytes", "acc_write_bytes")}
    streams = [lp.extra["stream"] for lp in parts if "stream" in lp.extra]
    if streams:
        extra["stream"] = min(streams)
    if ".experts." in f".{layer.name}":  # routed experts (not MLA's per-head products)
        extra["experts_touched"] = float(layer.touched)
        extra["expert_imbalance"] = float(layer.imbalance)
    loads = ", ".join(f"{count} x {rows} rows" for rows, count in layer.groups())
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit=parts[0].unit, tiles=tiles,
        m=layer.rows, n=layer.n, k=layer.k, g=layer.touched, macs=layer.macs(),
        vector_alu_ops=sum(lp.vector_alu_ops for lp in parts),
        vector_special_ops=sum(lp.vector_special_ops for lp in parts),
        precision=parts[0].precision,
        mapping=f"experts {layer.touched}/{layer.experts} touched ({loads}): "
                + parts[0].mapping,
        dram_operand_bytes=sum(lp.dram_operand_bytes for lp in parts), extra=extra)
