"""Lowering: workload layers → GEMM or vector work → tiles per core.

For each layer the compiler decides:

* the compute precision: the wider of the activation and weight precisions if the array
  computes it; otherwise the narrowest wider precision the array has. An operand whose own
  precision the array does not take gets an explicit dequantize step on the vector unit
  (2 ALU ops per converted value, reported in ``mapping``); no wide enough precision is a
  :class:`MappingError`;
* the unit: conv and matmul go to the systolic array, or to the matrix-vector engine when
  the core has one and the tiling estimate on it is lower (``unit`` ``matvec``, ``mapping``
  ``matvec tile …``); a depthwise conv goes to the array or the vector unit, whichever the
  cost model says is faster; attention runs fused (npusim/compiler/attention.py: Q·K^T and
  P·V on the array, softmax on the vector unit, scores on chip) when a query block and a
  K/V block fit the core's SRAM, else materialised (scores, softmax and context lowered one
  after another, scores through DRAM unless they fit on chip); the rest to the vector unit;
* where activations live: an activation tensor stays on chip (no DRAM traffic) when the
  producer's output and the consumer's inputs together take at most three quarters of the
  on-chip SRAM (an assumption: the last quarter is kept for tiles; the tiler then works
  in whatever the resident tensors leave);
* the split across cores (:func:`_split`): over the batch/group dimension, M or N, the
  one with the lowest estimated latency; among those within 2 % of it, the fewest DRAM
  bytes; then the least DRAM + NoC energy. An M split gives every core all of B, an N
  split all of A: each core loads its own copy, unless the chip's NoC can multicast, when
  each core loads its share of the shared operand and receives the rest over the NoC;
* the tiles: the numba search in :mod:`npusim.kernels.tiling`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from npusim.compiler import attention as fused
from npusim.compiler.program import COL, TILE_COLUMNS, LayerProgram, TileProgram
from npusim.compiler.weights import place_weights
from npusim.errors import MappingError
from npusim.kernels import tiling
from npusim.kernels.matvec import MATVEC, matvec_time
from npusim.kernels.systolic import DATAFLOWS, gemm_cycles, gemm_sram_elements
from npusim.limits import TILE_BYTES, TooLargeError, memory_problem
from npusim.spec.arch import Chip, min_tile_sram_bytes
from npusim.workloads.ir import (
    BITS,
    Attention,
    Conv2d,
    Elementwise,
    Embedding,
    Layer,
    Matmul,
    Norm,
    Pool,
    Softmax,
    Workload,
)

__all__ = ["SPLIT_TIE", "SplitEstimate", "choose_split", "compile_workload", "compute_precision",
           "split_estimates", "weights_fit_shared_sram"]

ACC_BYTES = 4.0  # int32 / fp32 partial sums
_FP = ("fp8", "fp16", "bf16", "fp32")


def compute_precision(chip: Chip, act: str, weight: str, layer: str = "") -> tuple[str, list[str]]:
    """The precision the array computes ``act`` x ``weight`` in, and conversions needed."""
    supported = chip.cores.core.systolic.macs_per_cycle
    want = act if BITS[act] >= BITS[weight] else weight
    if (act in _FP or weight in _FP) and want not in _FP:
        want = act if act in _FP else weight  # int weights under fp activations: the fp type
    if want in supported:
        chosen = want
    else:
        wider = sorted((p for p in supported if BITS[p] >= BITS[want]
                        and ((p in _FP) == (want in _FP) or want in ("int4", "int8"))),
                       key=lambda p: BITS[p])
        if not wider:
            raise MappingError(
                f"layer {layer!r}: the array computes {', '.join(supported)}; it cannot run "
                f"{act} activations with {weight} weights")
        chosen = wider[0]
    # An operand in a format the array takes natively (int4 weights beside int8
    # activations) needs no conversion; any other is converted on the vector unit.
    conv = [f"{p}->{chosen}" for p in dict.fromkeys((act, weight))
            if p != chosen and p not in supported]
    return chosen, conv


@dataclass(frozen=True)
class _GemmTiles:
    """One GEMM layer's per-core tiles with addresses from 0, and how they were made."""

    tiles: tuple[np.ndarray, ...]
    mapping: str
    engine: str
    acc_read_bytes: float
    acc_write_bytes: float
    stream: float


@dataclass
class _Ctx:
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
    gemms: dict[tuple[object, ...], _GemmTiles] = field(default_factory=dict)

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


def _engine_args(ctx: _Ctx, engine: str, rate: float, prec: str, a_b: float, b_b: float,
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


def _gemm_search(ctx: _Ctx, engine: str, g: int, m: int, n: int, k: int, rate: float, prec: str,
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


def _gemm_tiles(ctx: _Ctx, g: int, m: int, n: int, k: int, a_b: float, b_b: float,
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
        _multicast(tiles, b_reads, shared, parts)
    kind = "matvec" if engine == "matvec" else ctx.chip.cores.core.systolic.dataflow
    mapping = f"{kind} tile b{tb} m{tm} n{tn} k{tk} {'mn' if order == 0 else 'nm'}"
    return tiles, mapping, (float(raw[:, 9].sum()), float(raw[:, 10].sum()))


def _choose_engine(ctx: _Ctx, g: int, m: int, n: int, k: int, rate: float, prec: str,
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


#: Split candidates whose estimated latency is within this factor of the fastest tie on
#: latency (the estimate is no more accurate than that; the tiler uses the same margin).
SPLIT_TIE = tiling.TIE_TOLERANCE


@dataclass(frozen=True)
class SplitEstimate:
    """What :func:`_split` weighs for one way of splitting a GEMM over the cores."""

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


def _split(ctx: _Ctx, g: int, m: int, n: int, k: int, a_bytes: float, b_bytes: float,
           rate: float) -> tuple[str, int, str]:
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


def _multicast(tiles: np.ndarray, b_reads: np.ndarray, shared: str, parts: int) -> None:
    """A core's tiles when ``parts`` cores share an operand over a multicasting NoC: each
    tile reads its 1/parts of the shared operand's bytes from DRAM and receives the rest
    over the NoC (the other cores read them). What reaches the SRAM is unchanged."""
    rd = tiles[:, COL["dram_read_bytes"]]
    moved = (b_reads if shared == "b" else rd - b_reads) * (parts - 1) / parts
    tiles[:, COL["dram_read_bytes"]] = rd - moved
    tiles[:, COL["noc_read_bytes"]] = moved


def _parts(total: int, parts: int) -> list[int]:
    base, rem = divmod(total, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


def _lower_gemm(ctx: _Ctx, index: int, layer: Conv2d | Matmul, a_res: bool,
                out_res: bool) -> LayerProgram:
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
    if g > 1 and b_kind == "weight" and isinstance(layer, Matmul):
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
    if max(g, m, n, k) > 2**53:  # (a batch scaled past it) the tiler's int64 would wrap
        raise TooLargeError(f"layer {layer.name!r} (GEMM {g} x {m}x{n}x{k}): a dimension "
                            f"past 2**53", layer=ctx.layer)
    how, parts, shared = _split(ctx, g, m, n, k, a_once, b_once, rate)
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
    # Dequantize: each converted operand value costs 2 ALU ops (scale and convert).
    dq = 0.0
    if conv:
        if f"{layer.weight_precision}->{prec}" in conv:
            dq += (g if b_per_batch else 1) * k * n
        if f"{layer.act_precision}->{prec}" in conv:
            dq += g * m * k
        vec["alu"] = vec.get("alu", 0.0) + 2 * dq
    _spread_vector(chip, per_core, vec)
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


def _gemm_layer_tiles(ctx: _Ctx, g: int, m: int, n: int, k: int, prec: str, rate: float,
                      a_b: float, b_b: float, out_b: float, a_db: float, a_dram: bool,
                      b_dram: bool, out_dram: bool, b_per_batch: bool, how: str, parts: int,
                      shared: str, name: str) -> _GemmTiles:
    """Every core's tiles of one GEMM split ``how`` over ``parts`` cores, addressed from 0."""
    sizes = _parts({"g": g, "m": m, "n": n}.get(how, 1), parts)
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
    # names a fold shorter than the stationary block's shift-in (npusim.report.result).
    best = _gemm_search(ctx, engine, *first, k, rate, prec, a_b, b_b, out_b, a_dram, b_dram,
                        out_dram, b_per_batch, a_db)[0]
    dataflow = ctx.chip.cores.core.systolic.dataflow
    stream = {"ws": best[1], "is": best[2]}.get(dataflow, 0.0) if engine == "array" else 0.0
    return _GemmTiles(tuple(per_core), mapping, engine, acc_rd, acc_wr, float(stream))


def _spread_vector(chip: Chip, per_core: list[np.ndarray], vec: dict[str, float]) -> None:
    """Share a layer's vector cycles over its tiles in proportion to their MACs."""
    vu = chip.cores.core.vector
    cycles = sum(ops / vu.rate(cls) for cls, ops in vec.items())
    if cycles <= 0:
        return
    total_macs = sum(t[:, COL["macs"]].sum() for t in per_core)
    for t in per_core:
        if len(t) and total_macs > 0:
            t[:, COL["vector_cycles"]] = cycles * t[:, COL["macs"]] / total_macs


def _lower_vector(ctx: _Ctx, index: int, layer: Layer, a_res: bool, out_res: bool,
                  macs_on_vector: int = 0) -> LayerProgram:
    chip = ctx.chip
    vu = chip.cores.core.vector
    vec = dict(layer.vector_ops())
    if macs_on_vector:
        vec["alu"] = vec.get("alu", 0.0) + macs_on_vector
    ins = layer.input_bytes()
    outs = layer.output_bytes()
    rd = sum(b for kind, b in ins.items()
             if not ((kind == "act" and a_res) or (kind == "weight" and ctx.weights_on_chip)))
    wr = sum(b for kind, b in outs.items() if kind == "kv" or not out_res)
    in_total = sum(ins.values())
    out_total = sum(outs.values())
    cycles = sum(ops / vu.rate(cls) for cls, ops in vec.items())
    cores = chip.n_cores
    # Chunks small enough to double-buffer: at most a quarter of the SRAM each.
    chunk = max(ctx.capacity / 4, 1.0)
    per_core_bytes = (in_total + out_total) / cores
    n_chunks = int(min(256, max(1, math.ceil(per_core_bytes / chunk))))
    rbase = ctx.alloc(rd)
    wbase = ctx.alloc(wr)
    # Every core's chunks at once: (cores x chunks x columns).
    t = np.zeros((cores, n_chunks, len(TILE_COLUMNS)))
    share = 1.0 / (cores * n_chunks)
    t[:, :, COL["vector_cycles"]] = cycles * share
    t[:, :, COL["dram_read_bytes"]] = rd * share
    t[:, :, COL["dram_write_bytes"]] = wr * share
    t[:, :, COL["sram_read_bytes"]] = (in_total + wr) * share
    t[:, :, COL["sram_write_bytes"]] = (out_total + rd) * share
    step = np.arange(cores * n_chunks).reshape(cores, n_chunks)
    t[:, :, COL["read_addr"]] = rbase + step * rd * share
    t[:, :, COL["write_addr"]] = wbase + step * wr * share
    per_core = list(t)
    mapping = f"vector {n_chunks} chunk(s) x {cores} core(s)"
    if macs_on_vector:
        mapping = "depthwise on vector unit; " + mapping
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit="vector", tiles=tuple(per_core),
        macs=layer.macs(), vector_alu_ops=float(vec.get("alu", 0.0)),
        vector_special_ops=float(vec.get("special", 0.0)),
        precision=getattr(layer, "precision", getattr(layer, "act_precision", "int8")),
        mapping=mapping, dram_operand_bytes=rd)


def _attention_machine(ctx: _Ctx, rate: float, prec: str) -> fused.Machine:
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


def _lower_attention(ctx: _Ctx, index: int, layer: Attention, a_res: bool,
                     out_res: bool) -> LayerProgram:
    """Fused attention when a query block and a K/V block fit, else materialised."""
    chip = ctx.chip
    prec, conv = compute_precision(chip, layer.act_precision, layer.kv_precision, layer.name)
    rate = chip.cores.core.systolic.macs_per_cycle[prec]  # type: ignore[index]
    mach = _attention_machine(ctx, rate, prec)
    q_dram, o_dram = not a_res, not out_res
    key = ("attention", layer.batch, layer.heads, layer.kv_heads, layer.q_len, layer.kv_len,
           layer.head_dim, layer.causal, layer.act_precision, layer.kv_precision, q_dram,
           o_dram, mach.capacity, mach.acc_capacity, mach.dram_bpc, mach.lat)
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
    bases = (ctx.alloc(layer.input_bytes()["act"]),
             ctx.alloc(2 * layer.pairs * layer.kv_len * layer.head_dim
                       * BITS[layer.kv_precision] / 8),
             ctx.alloc(layer.output_bytes()["act"]))
    ncol = len(TILE_COLUMNS)
    per_core = [fused.place(rows[rows[:, ncol] == c, :ncol],
                            rows[rows[:, ncol] == c, ncol + 1].astype(np.int64), bases)
                for c in range(chip.n_cores)]
    # Dequantize (2 ALU ops per converted value): Q once, K and V once per pair.
    dq = 0.0
    if f"{layer.kv_precision}->{prec}" in conv:
        dq += 2 * layer.pairs * layer.kv_len * layer.head_dim
    if f"{layer.act_precision}->{prec}" in conv:
        dq += layer.batch * layer.heads * layer.q_len * layer.head_dim
    if dq:
        _spread_vector(chip, per_core, {"alu": 2 * dq})
        alu += 2 * dq
    note = f"; dequant {','.join(conv)}" if conv else ""
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit="array", tiles=tuple(per_core),
        m=layer.group * layer.q_len, n=layer.kv_len, k=layer.head_dim, g=layer.pairs,
        macs=layer.macs(), vector_alu_ops=alu, vector_special_ops=special, precision=prec,
        mapping=f"{fused.describe(plan, layer)}{note}")


def _lower_attention_materialized(ctx: _Ctx, index: int, layer: Attention, a_res: bool,
                                  out_res: bool) -> LayerProgram:
    """Eager attention inside one layer: S = Q·K^T, softmax, P·V, one after another on
    each core, the full q x ctx block (the mask applied to computed scores), scores and
    probabilities through DRAM."""
    g, sm = layer.group, layer.softmax_precision
    shape = dict(batch=layer.pairs, m=g * layer.q_len, b_kind=layer.kv_kind,
                 act_precision=layer.act_precision, weight_precision=layer.kv_precision)
    qk = Matmul(f"{layer.name}.qk", k=layer.head_dim, n=layer.kv_len, out_precision=sm,
                **shape)  # type: ignore[arg-type]
    soft = Softmax(f"{layer.name}.softmax", rows=layer.batch * layer.heads * layer.q_len,
                   cols=layer.kv_len, precision=sm)
    pv = Matmul(f"{layer.name}.pv", k=layer.kv_len, n=layer.head_dim,
                out_precision=layer.act_precision, **shape)  # type: ignore[arg-type]
    parts = [_lower_gemm(ctx, index, qk, a_res, False), _lower_vector(ctx, index, soft, False,
                                                                      False),
             _lower_gemm(ctx, index, pv, False, out_res)]
    tiles = tuple(np.concatenate([lp.tiles[c] for lp in parts]) for c in range(ctx.chip.n_cores))
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit="array", tiles=tiles,
        m=g * layer.q_len, n=layer.kv_len, k=layer.head_dim, g=layer.pairs,
        macs=layer.macs(), vector_alu_ops=sum(lp.vector_alu_ops for lp in parts),
        vector_special_ops=sum(lp.vector_special_ops for lp in parts),
        precision=parts[0].precision,
        mapping="materialized (no query and K/V block fit the SRAM): " + parts[0].mapping)


def _depthwise_on_vector(chip: Chip, layer: Conv2d) -> bool:
    sa = chip.cores.core.systolic
    prec, _ = compute_precision(chip, layer.act_precision, layer.weight_precision, layer.name)
    g, m, n, k = layer.gemm_shape()
    per_group = gemm_cycles(m, n, k, sa.rows, sa.cols, sa.count, DATAFLOWS[sa.dataflow],
                            sa.macs_per_cycle[prec],  # type: ignore[index]
                            int(sa.preload == "overlapped"))
    array = g * per_group / chip.n_cores
    vector = layer.macs() / chip.cores.core.vector.rate("alu") / chip.n_cores
    return vector < array


def weights_fit_shared_sram(chip: Chip, workload: Workload) -> bool:
    """Whether every weight of ``workload`` fits the chip's shared on-chip SRAM."""
    return place_weights(chip, workload).fits


def _check_core_layers(chip: Chip, workload: Workload) -> None:
    """A program holds one tile array per core for every layer, empty or not: refuse by
    estimate (npusim.limits.CORE_LAYER_BYTES) a chip of so many cores that these alone pass
    the memory budget, before any layer is lowered."""
    from npusim.errors import SpecError
    from npusim.limits import CORE_LAYER_BYTES

    n, layers = chip.n_cores, len(workload.layers)
    problem = memory_problem(n * layers * CORE_LAYER_BYTES)
    if problem is not None:
        raise SpecError(f"cores.count {n:,}: {layers:,} layers x {n:,} cores {problem}")


def compile_workload(chip: Chip, workload: Workload, *, ideal: bool = False,
                     weights_resident: bool | None = None) -> TileProgram:
    """Lower and tile every layer of ``workload`` for ``chip``.

    ``ideal`` drops SRAM capacity and DRAM bandwidth from the tiling decisions: the
    SCALE-Sim 'ideal memory' case, where the streamed dimension is never cut.
    ``weights_resident``: weights live in the shared on-chip SRAM (ATOM-style) and are not
    read from DRAM — the steady state of repeated inferences. ``None`` (default) means
    whenever all weights fit the shared SRAM; ``True`` when they do not is a
    :class:`MappingError` (see :mod:`npusim.compiler.weights`).
    """
    _check_core_layers(chip, workload)
    core = chip.cores.core
    sram = float(core.sram.size)
    weights_resident = place_weights(chip, workload, weights_resident).resident
    shared = float(chip.shared_sram.size) if chip.shared_sram else 0.0
    if weights_resident:
        shared -= sum(layer.input_bytes().get("weight", 0) for layer in workload.layers)
    onchip = chip.n_cores * sram + max(shared, 0.0)
    dram_bpc = chip.dram.peak_bandwidth / chip.clock / chip.n_cores
    lat = 0.0 if ideal else chip.dram.idle_latency_s * chip.clock
    ctx = _Ctx(chip, ideal, sram, float(core.accumulator.size) if core.accumulator else 0.0,
               0.0 if ideal else dram_bpc, lat, onchip * 0.75, {}, weights_resident)
    shared_left = max(shared, 0.0)
    # Resident activations fill what the shared SRAM has left, then the cores' scratchpads,
    # which must keep room for the layer's smallest tile.
    room = sram - min_tile_sram_bytes(chip)

    def per_core(resident: float) -> float:
        return max(resident - shared_left, 0.0) / chip.n_cores

    layers = []
    prev_out_resident = False
    for i, layer in enumerate(workload.layers):
        ctx.layer = i
        nxt = workload.layers[i + 1] if i + 1 < len(workload.layers) else None
        out_act = layer.output_bytes().get("act", 0)
        next_in = nxt.input_bytes().get("act", 0) if nxt is not None else 0
        a_res = prev_out_resident
        in_act = layer.input_bytes().get("act", 0) if a_res else 0
        out_res = (nxt is not None and out_act > 0
                   and out_act + next_in <= ctx.resident_budget
                   and per_core(in_act + out_act) <= room and per_core(next_in) <= room)
        ctx.capacity = sram - per_core(in_act + (out_act if out_res else 0))
        if isinstance(layer, (Conv2d, Matmul)):
            if isinstance(layer, Conv2d) and layer.depthwise and _depthwise_on_vector(chip, layer):
                lp = _lower_vector(ctx, i, layer, a_res, out_res, macs_on_vector=layer.macs())
            else:
                lp = _lower_gemm(ctx, i, layer, a_res, out_res)
        elif isinstance(layer, Attention):
            lp = _lower_attention(ctx, i, layer, a_res, out_res)
        elif isinstance(layer, (Elementwise, Softmax, Norm, Pool, Embedding)):
            lp = _lower_vector(ctx, i, layer, a_res, out_res)
        else:
            raise MappingError(f"layer {layer.name!r}: no lowering for op {layer.kind!r}")
        layers.append(lp)
        prev_out_resident = out_res
    return TileProgram(chip.name, workload.name, chip.n_cores, tuple(layers),
                       weights_resident=weights_resident)
