"""GEMM lowering (conv and matmul layers): the engine (the systolic array, or the
matrix-vector engine when the core has one and the tiling estimate on it is lower), the
split over the cores (:mod:`npusim.compiler.split`) and the tiles of each core's share
(the numba search in :mod:`npusim.kernels.tiling`). A depthwise conv goes to the array or
the vector unit, whichever the cost model says is faster (:func:`depthwise_on_vector`)."""

from __future__ import annotations

import math

import numpy as np

from npusim.compiler.context import Ctx, GemmTiles
from npusim.compiler.precision import compute_precision
from npusim.compiler.program import COL, TILE_COLUMNS, LayerProgram
from npusim.compiler.split import even_parts, multicast_tiles, pick_split
from npusim.compiler.vector import spread_vector
from npusim.errors import MappingError
from npusim.kernels import tiling
from npusim.kernels.matvec import MATVEC
from npusim.kernels.systolic import DATAFLOWS, gemm_cycles
from npusim.spec.arch import Chip
from npusim.workloads.formats import dequant_ops
from npusim.workloads.ir import BITS, Conv2d, Matmul

__all__ = ["ACC_BYTES", "depthwise_on_vector", "lower_gemm"]

ACC_BYTES = 4.0  # int32 / fp32 partial sums


def _candidates(size: int, align: int) -> np.ndarray:
    """Tile sizes: the whole dimension, and roughly halving steps in multiples of align."""
    out = {size}
    s = size
    while s > align:
        s = max(align, math.ceil(s / 2 / align) * align)
        out.add(min(s, size))
    for d in (3, 5, 6, 7):  # a few non-power-of-two cuts let remainders balance
        v = math.ceil(size / d / align) * align
        if align <= v < size:
            out.add(v)
    return np.array(sorted(out), dtype=np.int64)


# The tiling kernels' engine arguments: (rows, cols, count, df, rate, overlap, a_b, b_b, out_b,
# acc_b, a_dram, b_dram, out_dram, b_per_batch, a_db).
_EngineArgs = tuple[int, int, int, int, float, int, float, float, float, float, int, int, int,
                    int, float]
# Ports in bytes per cycle (0 = unlimited): scratchpad read and write, accumulator read and
# write, and the accumulator's capacity for the kernels (0 = partial sums in the scratchpad).
_Ports = tuple[float, float, float, float, float]


def _engine_args(ctx: Ctx, engine: str, rate: float, prec: str, a_b: float, b_b: float,
                 out_b: float, a_dram: bool, b_dram: bool, out_dram: bool, b_per_batch: bool,
                 a_db: float) -> tuple[_EngineArgs, tuple[int, int, int], _Ports]:
    """The tiling kernels' engine arguments, the (m, n, k) tile alignments and the ports of
    ``engine`` (``array`` at ``rate``, or ``matvec`` at its rate for ``prec``)."""
    core = ctx.chip.cores.core
    wbw = float(core.sram.write_bytes_per_cycle or 0.0)
    rest: tuple[float, float, float, float, int, int, int, int, float] = (
        a_b, b_b, out_b, ACC_BYTES, int(a_dram), int(b_dram), int(out_dram),
        int(b_per_batch), a_db)
    if engine == "matvec" and core.matvec is not None:
        mv = core.matvec
        mv_rate = mv.macs_per_cycle[prec]  # type: ignore[index]
        # The kernels carry (width, lanes, rows held, pipeline) in (rows, cols, count, overlap);
        # the engine's sums live in its lane accumulators and the scratchpad, never in an
        # accumulator SRAM.
        args = (mv.width, mv.lanes, mv.rows, MATVEC, mv_rate, mv.pipeline, *rest)
        ports = (float(core.matvec_read_port() or 0.0), wbw, 0.0, 0.0, 0.0)
        return args, (mv.rows, mv.lanes, mv.width), ports
    sa = core.systolic
    df = DATAFLOWS[sa.dataflow]
    # Stationary dimensions align to the array; the streamed one is free.
    align = (sa.rows if df == 1 else (sa.cols if df == 2 else 1),
             sa.cols if df in (0, 1) else 1, sa.rows if df in (0, 2) else 1)
    args = (sa.rows, sa.cols, sa.count, df, rate, int(sa.preload == "overlapped"), *rest)
    # Partial sums go to the accumulator SRAM when there is one, through its own ports; the
    # kernels know it by a positive accumulator capacity (unlimited for the ideal memory).
    acc_port = core.accumulator
    arbw = float(acc_port.read_bytes_per_cycle or 0.0) if acc_port else 0.0
    awbw = float(acc_port.write_bytes_per_cycle or 0.0) if acc_port else 0.0
    acc = (1e300 if ctx.ideal else ctx.acc_capacity) if acc_port else 0.0
    return args, align, (float(core.sram.read_bytes_per_cycle or 0.0), wbw, arbw, awbw, acc)


def _gemm_search(ctx: Ctx, engine: str, g: int, m: int, n: int, k: int, rate: float, prec: str,
                 a_b: float, b_b: float, out_b: float, a_dram: bool, b_dram: bool,
                 out_dram: bool, b_per_batch: bool,
                 a_db: float) -> tuple[np.ndarray, _EngineArgs, _Ports]:
    """The tiling search's best tile on ``engine`` (cached), its arguments and ports."""
    args, (align_m, align_n, align_k), ports = _engine_args(
        ctx, engine, rate, prec, a_b, b_b, out_b, a_dram, b_dram, out_dram, b_per_batch, a_db)
    rbw, wbw, arbw, awbw, acc = ports
    cap = math.inf if ctx.ideal else ctx.capacity
    key = (g, m, n, k, *args, cap, ctx.dram_bpc, ctx.lat, *ports)
    best = ctx.cache.get(key)
    if best is None:
        cand_b = np.array(sorted({g, *(_candidates(g, 1) if g > 1 else [])}), dtype=np.int64)
        best = tiling.search(g, m, n, k, cand_b, _candidates(m, align_m), _candidates(n, align_n),
                             _candidates(k, align_k), *args, cap if cap != math.inf else 1e300,
                             acc, ctx.dram_bpc, ctx.lat, rbw, wbw, arbw, awbw)
        ctx.cache[key] = best
    return best, args, ports


def _gemm_tiles(ctx: Ctx, g: int, m: int, n: int, k: int, a_b: float, b_b: float,
                out_b: float, a_dram: bool, b_dram: bool, out_dram: bool, b_per_batch: bool,
                a_db: float, rate: float, bases: tuple[int, int, int], name: str,
                engine: str = "array", prec: str = "", shared: str = "",
                parts: int = 1) -> tuple[np.ndarray, str, tuple[float, float]]:
    """Tiles, mapping text and (accumulator read, write) bytes of one core's GEMM on
    ``engine`` (the array at ``rate``, or the matrix-vector engine at its rate for ``prec``)."""
    best, args, (rbw, wbw, arbw, awbw, acc) = _gemm_search(
        ctx, engine, g, m, n, k, rate, prec, a_b, b_b, out_b, a_dram, b_dram, out_dram,
        b_per_batch, a_db)
    if best[0] < 0:
        sa = ctx.chip.cores.core.systolic
        what = "matrix-vector engine" if engine == "matvec" else f"{sa.rows}x{sa.cols} array"
        raise MappingError(f"layer {name!r}: no tile of a {what} fits "
                           f"{ctx.capacity:.0f} B of SRAM")
    tb, tm, tn, tk, order = (int(x) for x in best[:5])
    ctx.reserve(-(-g // tb) * -(-m // tm) * -(-n // tn) * -(-k // tk), name,
                f"GEMM {g} x {m}x{n}x{k}")
    cap = math.inf if ctx.ideal else ctx.capacity
    raw = tiling.emit(g, m, n, k, tb, tm, tn, tk, order, *args,
                      cap if cap != math.inf else 1e300, acc, rbw, wbw, arbw, awbw, *bases)
    tiles = np.zeros((len(raw), len(TILE_COLUMNS)))
    tiles[:, :9] = raw[:, :9]
    if shared:
        # B's reads alone: the same tiles with A and the output on chip (B's reuse policy
        # does not depend on A's), so A's are the difference.
        b_only = (*args[:10], 0, int(b_dram), 0, *args[13:])
        b_reads = tiling.emit(g, m, n, k, tb, tm, tn, tk, order, *b_only,
                              cap if cap != math.inf else 1e300, acc, rbw, wbw, arbw, awbw,
                              *bases)[:, 3]
        multicast_tiles(tiles, b_reads, shared, parts)
    kind = "matvec" if engine == "matvec" else ctx.chip.cores.core.systolic.dataflow
    mapping = f"{kind} tile b{tb} m{tm} n{tn} k{tk} {'mn' if order == 0 else 'nm'}"
    return tiles, mapping, (float(raw[:, 9].sum()), float(raw[:, 10].sum()))


def _choose_engine(ctx: Ctx, g: int, m: int, n: int, k: int, rate: float, prec: str,
                   a_b: float,
                   b_b: float, out_b: float, a_dram: bool, b_dram: bool, out_dram: bool,
                   b_per_batch: bool, a_db: float) -> str:
    """``matvec`` when the core has a matrix-vector engine computing ``prec`` and the tiling
    estimate of the (largest) per-core GEMM on it is lower than on the array, else ``array``."""
    mv = ctx.chip.cores.core.matvec
    if mv is None or prec not in mv.macs_per_cycle:
        return "array"
    est = {}
    for engine in ("array", "matvec"):
        best = _gemm_search(ctx, engine, g, m, n, k, rate, prec, a_b, b_b, out_b, a_dram,
                            b_dram, out_dram, b_per_batch, a_db)[0]
        est[engine] = best[5] if best[0] >= 0 else math.inf
    return "matvec" if est["matvec"] < est["array"] else "array"


def lower_gemm(ctx: Ctx, index: int, layer: Conv2d | Matmul, a_res: bool,
               out_res: bool, grouped: bool = False) -> LayerProgram:
    """A conv or matmul layer's program. ``grouped``: a Matmul whose ``batch`` products
    each have their own weight (routed experts, per-head products), not one shared."""
    chip = ctx.chip
    sa = chip.cores.core.systolic
    prec, conv = compute_precision(chip, layer.act_precision, layer.weight_precision, layer.name)
    rate = sa.macs_per_cycle[prec]  # type: ignore[index]
    g, m, n, k = layer.gemm_shape()
    if isinstance(layer, Matmul):
        b_kind, out_kind, a_kind = layer.b_kind, layer.out_kind, layer.a_kind
    else:
        b_kind, out_kind, a_kind = "weight", "act", "act"
    b_per_batch = True
    if g > 1 and b_kind == "weight" and isinstance(layer, Matmul) and not grouped:
        m, g = m * g, 1  # a shared weight: rows of every batch entry form one taller GEMM
    if g == 1:
        b_per_batch = False
    a_b = BITS[layer.act_precision] / 8
    b_b = BITS[layer.weight_precision] / 8
    out_b = BITS[layer.out_precision] / 8
    # im2col reads each input pixel once from DRAM though the GEMM's A repeats it per window.
    a_db = a_b
    if isinstance(layer, Conv2d):
        a_db = min(a_b, layer.input_bytes()["act"] / (g * m * k))
    a_dram = not (a_kind == "act" and a_res)
    b_dram = not ((b_kind == "act" and a_res) or (b_kind == "weight" and ctx.weights_on_chip))
    out_dram = out_kind == "kv" or not out_res
    a_once = g * m * k * a_db * a_dram
    b_once = (g if b_per_batch else 1) * k * n * b_b * b_dram
    how, parts, shared = pick_split(ctx, g, m, n, k, a_once, b_once, rate)
    a_base = ctx.alloc(g * m * k * a_b)
    ctx.alloc((g if b_per_batch else 1) * k * n * b_b)  # B's region (tiles address A, out)
    o_base = ctx.alloc(g * m * n * out_b)
    key = (g, m, n, k, prec, rate, a_b, b_b, out_b, a_db, a_dram, b_dram, out_dram,
           b_per_batch, how, parts, shared, ctx.capacity, ctx.acc_capacity, ctx.ideal,
           ctx.dram_bpc, ctx.lat)
    made = ctx.gemms.get(key)
    if made is not None:  # tiled before; this layer still copies them
        ctx.reserve(sum(len(t) for t in made.tiles), layer.name, f"GEMM {g} x {m}x{n}x{k}")
    else:
        made = _gemm_layer_tiles(ctx, g, m, n, k, prec, rate, a_b, b_b, out_b, a_db, a_dram,
                                 b_dram, out_dram, b_per_batch, how, parts, shared, layer.name)
        ctx.gemms[key] = made
    per_core = []
    for t in made.tiles:
        t = t.copy()
        t[:, COL["read_addr"]] += a_base
        t[:, COL["write_addr"]] += o_base
        per_core.append(t)
    engine, mapping, stream = made.engine, made.mapping, made.stream
    while len(per_core) < chip.n_cores:
        per_core.append(np.zeros((0, len(TILE_COLUMNS))))
    vec = dict(layer.vector_ops())
    # Dequantize: each converted operand value costs dequant_ops ALU ops (scale and
    # convert: 2; a block format's scale decode adds 1 per block).
    dq = 0.0
    if conv:
        if f"{layer.weight_precision}->{prec}" in conv:
            dq += (g if b_per_batch else 1) * k * n * dequant_ops(layer.weight_precision)
        if f"{layer.act_precision}->{prec}" in conv:
            dq += g * m * k * dequant_ops(layer.act_precision)
        vec["alu"] = vec.get("alu", 0.0) + dq
    spread_vector(chip, per_core, vec)
    split = "" if how == "none" else f"; {parts} cores split {how}"
    if shared:
        split += f", {shared.upper()} multicast"
    note = f"; dequant {','.join(conv)}" if conv else ""
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit=engine, tiles=tuple(per_core),
        m=m, n=n, k=k, g=g, macs=layer.macs(), vector_alu_ops=float(vec.get("alu", 0.0)),
        vector_special_ops=float(vec.get("special", 0.0)), precision=prec,
        mapping=f"{mapping}{split}{note}", dram_operand_bytes=a_once + b_once,
        extra={"acc_read_bytes": made.acc_read_bytes, "acc_write_bytes": made.acc_write_bytes,
               **({"stream": float(stream)} if stream else {})})


def _gemm_layer_tiles(ctx: Ctx, g: int, m: int, n: int, k: int, prec: str, rate: float,
                      a_b: float, b_b: float, out_b: float, a_db: float, a_dram: bool,
                      b_dram: bool, out_dram: bool, b_per_batch: bool, how: str, parts: int,
                      shared: str, name: str) -> GemmTiles:
    """Every core's tiles of one GEMM split ``how`` over ``parts`` cores, addressed from 0."""
    sizes = even_parts({"g": g, "m": m, "n": n}.get(how, 1), parts)
    # The engine is chosen on the largest core's share (the first part) and used by all.
    first = {"g": (sizes[0], m, n), "m": (g, sizes[0], n), "n": (g, m, sizes[0])}.get(
        how, (g, m, n))
    engine = _choose_engine(ctx, *first, k, rate, prec, a_b, b_b, out_b, a_dram, b_dram, out_dram,
                            b_per_batch, a_db)
    per_core: list[np.ndarray] = []
    mapping = ""
    acc_rd = acc_wr = 0.0
    off = 0
    for size in sizes:
        cg, cm, cn = g, m, n
        if how == "g":
            cg = size
        elif how == "m":
            cm = size
        elif how == "n":
            cn = size
        if size == 0:
            per_core.append(np.zeros((0, len(TILE_COLUMNS))))
            continue
        shift = int(off * {"g": m * k * a_db, "m": k * a_db, "n": k * b_b}.get(how, 0))
        tiles, mapping, (ard, awr) = _gemm_tiles(
            ctx, cg, cm, cn, k, a_b, b_b, out_b, a_dram, b_dram, out_dram, b_per_batch, a_db,
            rate, (shift, shift, shift), name, engine, prec, shared, parts)
        per_core.append(tiles)
        acc_rd += ard
        acc_wr += awr
        off += size
    # The streamed tile length of the busiest core's tiling (ws: tm, is: tn): the report
    # names a fold shorter than the stationary block's shift-in (npusim.result).
    best = _gemm_search(ctx, engine, *first, k, rate, prec, a_b, b_b, out_b, a_dram, b_dram,
                        out_dram, b_per_batch, a_db)[0]
    dataflow = ctx.chip.cores.core.systolic.dataflow
    stream = {"ws": best[1], "is": best[2]}.get(dataflow, 0.0) if engine == "array" else 0.0
    return GemmTiles(tuple(per_core), mapping, engine, acc_rd, acc_wr, float(stream))


def depthwise_on_vector(chip: Chip, layer: Conv2d) -> bool:
    sa = chip.cores.core.systolic
    prec, _ = compute_precision(chip, layer.act_precision, layer.weight_precision, layer.name)
    g, m, n, k = layer.gemm_shape()
    per_group = gemm_cycles(m, n, k, sa.rows, sa.cols, sa.count, DATAFLOWS[sa.dataflow],
                            sa.macs_per_cycle[prec],  # type: ignore[index]
                            int(sa.preload == "overlapped"))
    array = g * per_group / chip.n_cores
    vector = layer.macs() / chip.cores.core.vector.rate("alu") / chip.n_cores
    return vector < array

