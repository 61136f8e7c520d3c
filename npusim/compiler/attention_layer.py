"""Attention-layer lowering: fused (flash-style, planned and tiled by
:mod:`npusim.compiler.attention`: Q·K^T and P·V on the array, softmax on the vector unit,
scores on chip) when a query block and a K/V block fit the core's SRAM, else materialised
(scores, softmax and context lowered one after another as GEMM and vector layers, scores
through DRAM unless they fit on chip)."""

from __future__ import annotations

import math

import numpy as np

from npusim.compiler import attention as fused
from npusim.compiler.context import Ctx
from npusim.compiler.gemm import ACC_BYTES, lower_gemm
from npusim.compiler.precision import compute_precision
from npusim.compiler.program import TILE_COLUMNS, LayerProgram
from npusim.compiler.vector import lower_vector, spread_vector
from npusim.kernels.matvec import matvec_time
from npusim.kernels.systolic import DATAFLOWS, gemm_cycles, gemm_sram_elements
from npusim.workloads.ir import BITS, Attention, Matmul, Softmax

__all__ = ["lower_attention"]


def _attention_machine(ctx: Ctx, rate: float, prec: str) -> fused.Machine:
    """The chip as the fused-attention planner sees it: per-block GEMM time with SRAM-port
    stalls (the same count as the GEMM tiler's tiles), vector rates, SRAM left. A core with
    a matrix-vector engine runs each block GEMM on whichever engine takes it faster (decode
    attention, one query row per KV head, is matrix-vector work)."""
    core = ctx.chip.cores.core
    sa = core.systolic
    df = DATAFLOWS[sa.dataflow]
    overlap = int(sa.preload == "overlapped")
    rbw = float(core.sram.read_bytes_per_cycle or 0.0)
    port = core.accumulator if core.accumulator is not None else core.sram
    wbw = float(port.write_bytes_per_cycle or 0.0)
    mv = core.matvec if core.matvec is not None and prec in core.matvec.macs_per_cycle else None
    mv_rbw = float(core.matvec_read_port() or 0.0) if mv is not None else 0.0
    mv_wbw = float(core.sram.write_bytes_per_cycle or 0.0)

    def gemm(m: int, n: int, k: int, a_b: float, b_b: float) -> tuple[float, float, float,
                                                                        float]:
        comp = float(gemm_cycles(m, n, k, sa.rows, sa.cols, sa.count, df, rate, overlap))
        ea, eb, eo = gemm_sram_elements(m, n, k, sa.rows, sa.cols, df)
        rd, wr = ea * a_b + eb * b_b, eo * ACC_BYTES
        t = max(comp, rd / rbw if rbw > 0 else 0.0, wr / wbw if wbw > 0 else 0.0)
        if mv is not None:
            on_mv = matvec_time(m, n, k, mv.lanes, mv.width, mv.rows,
                                mv.macs_per_cycle[prec],  # type: ignore[index]
                                mv.pipeline, a_b, b_b, ACC_BYTES, mv_rbw, mv_wbw)
            if on_mv[0] < t:
                return on_mv
        return t, comp, rd, wr

    vu = core.vector
    return fused.Machine(
        cores=ctx.chip.n_cores, gemm=gemm, alu_rate=vu.rate("alu"),
        special_rate=vu.rate("special"), capacity=math.inf if ctx.ideal else ctx.capacity,
        acc_capacity=0.0 if ctx.ideal else ctx.acc_capacity, dram_bpc=ctx.dram_bpc,
        lat=ctx.lat, align_k=max(sa.rows, sa.cols))


def lower_attention(ctx: Ctx, index: int, layer: Attention, a_res: bool,
                    out_res: bool) -> LayerProgram:
    """Fused attention when a query block and a K/V block fit, else materialised."""
    chip = ctx.chip
    prec, conv = compute_precision(chip, layer.act_precision, layer.kv_precision, layer.name)
    rate = chip.cores.core.systolic.macs_per_cycle[prec]  # type: ignore[index]
    mach = _attention_machine(ctx, rate, prec)
    q_dram, o_dram = not a_res, not out_res
    key = ("attention", layer.batch, layer.heads, layer.kv_heads, layer.q_len, layer.kv_len,
           layer.head_dim, layer.causal, layer.act_precision, layer.kv_precision, q_dram,
           o_dram, mach.capacity, mach.acc_capacity, mach.dram_bpc, mach.lat, layer.dv,
           layer.kv_shared, layer.window, layer.sinks)
    found = ctx.cache.get(key)
    if found is None:
        plan = fused.plan_attention(layer, mach, q_dram, o_dram)
        found = (np.array([plan.bq, plan.bk, plan.kv_resident, plan.estimate, plan.n_tiles])
                 if plan else np.full(5, -1.0))
        ctx.cache[key] = found
    if found[0] < 0:
        return _lower_attention_materialized(ctx, index, layer, a_res, out_res)
    plan = fused.AttentionPlan(int(found[0]), int(found[1]), bool(found[2]), float(found[3]),
                               int(found[4]))
    ctx.reserve(plan.n_tiles, layer.name, f"attention batch {layer.batch} x {layer.heads} "
                f"heads, q_len {layer.q_len}, kv_len {layer.kv_len}")
    # Every block of a model has the same tiles but for their addresses: build them once.
    tiles_key = (*key, "tiles")
    packed = ctx.cache.get(tiles_key)
    if packed is None:
        tiles, tensors, alu, special = fused.attention_tiles(layer, mach, plan, q_dram, o_dram)
        packed = np.concatenate(
            [np.column_stack([t, np.full(len(t), c), tensors[c]]) for c, t in enumerate(tiles)]
            + [np.array([[alu, special] + [0.0] * len(TILE_COLUMNS)])])
        ctx.cache[tiles_key] = packed
    alu, special = float(packed[-1, 0]), float(packed[-1, 1])
    rows = packed[:-1]
    kv_width = layer.head_dim + (0 if layer.kv_shared else layer.dv)
    bases = (ctx.alloc(layer.input_bytes()["act"]),
             ctx.alloc(layer.pairs * layer.kv_len * kv_width * BITS[layer.kv_precision] / 8),
             ctx.alloc(layer.output_bytes()["act"]))
    ncol = len(TILE_COLUMNS)
    per_core = [fused.place(rows[rows[:, ncol] == c, :ncol],
                            rows[rows[:, ncol] == c, ncol + 1].astype(np.int64), bases)
                for c in range(chip.n_cores)]
    # Dequantize (2 ALU ops per converted value): Q once, the K and V read once per pair.
    dq = 0.0
    if f"{layer.kv_precision}->{prec}" in conv:
        dq += layer.pairs * layer.keys_read() * kv_width
    if f"{layer.act_precision}->{prec}" in conv:
        dq += layer.batch * layer.heads * layer.q_len * layer.head_dim
    if dq:
        spread_vector(chip, per_core, {"alu": 2 * dq})
        alu += 2 * dq
    note = f"; dequant {','.join(conv)}" if conv else ""
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit="array", tiles=tuple(per_core),
        m=layer.group * layer.q_len, n=layer.kv_len, k=layer.head_dim, g=layer.pairs,
        macs=layer.macs(), vector_alu_ops=alu, vector_special_ops=special, precision=prec,
        mapping=f"{fused.describe(plan, layer)}{note}")


def _lower_attention_materialized(ctx: Ctx, index: int, layer: Attention, a_res: bool,
                                  out_res: bool) -> LayerProgram:
    """Eager attention inside one layer: S = Q·K^T, softmax, P·V, one after another on
    each core, the full q x keys block (the mask applied to computed scores; under a
    window the keys any query of the layer sees), scores (softmax precision) and
    probabilities (activation precision) through DRAM."""
    g, sm = layer.group, layer.softmax_precision
    keys = layer.keys_read()
    shape = dict(batch=layer.pairs, m=g * layer.q_len, b_kind=layer.kv_kind,
                 act_precision=layer.act_precision, weight_precision=layer.kv_precision)
    qk = Matmul(f"{layer.name}.qk", k=layer.head_dim, n=keys, out_precision=sm,
                **shape)  # type: ignore[arg-type]
    soft = Softmax(f"{layer.name}.softmax", rows=layer.batch * layer.heads * layer.q_len,
                   cols=keys + (1 if layer.sinks else 0), precision=sm,
                   out_precision=layer.act_precision)
    pv = Matmul(f"{layer.name}.pv", k=keys, n=layer.dv,
                out_precision=layer.act_precision, **shape)  # type: ignore[arg-type]
    parts = [lower_gemm(ctx, index, qk, a_res, False),
             lower_vector(ctx, index, soft, False, False),
             lower_gemm(ctx, index, pv, False, out_res)]
    tiles = tuple(np.concatenate([lp.tiles[c] for lp in parts]) for c in range(ctx.chip.n_cores))
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit="array", tiles=tiles,
        m=g * layer.q_len, n=layer.kv_len, k=layer.head_dim, g=layer.pairs,
        macs=layer.macs(), vector_alu_ops=sum(lp.vector_alu_ops for lp in parts),
        vector_special_ops=sum(lp.vector_special_ops for lp in parts),
        precision=parts[0].precision,
        mapping="materialized (no query and K/V block fit the SRAM): " + parts[0].mapping)

