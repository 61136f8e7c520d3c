"""Fused (flash-style) attention on one chip: block sizes and tiles of one Attention layer.

Each (sequence, KV head) pair is independent: it reads its own K and V. Its ``group``
query heads are stacked as rows, so a query block of ``bq`` positions is ``group x bq``
rows. The outer loop runs over query blocks, the inner one over K/V blocks of ``bk``
positions; one tile is one (query block, K/V block) step:

    array    S = Q_blk · K_blk^T   (group·cq x d) by (d x ck)
             O += P · V_blk        (group·cq x ck) by (ck x d)
    vector   per score: max, subtract, sum (3 ALU), exp (1 special) — as Softmax;
             a diagonal block's scores also pay a mask select (1 ALU each);
             per row and K/V block after the first: new max, correction exp, rescale of
             the row sum (4 ALU, 1 special) and of the O accumulator (2 ALU per element);
             after the last K/V block: 1/l (1 special) and O·(1/l) (1 ALU per element)
    DRAM     Q block at the query block's first step, O block after its last step;
             K/V blocks: once per pair when the pair's whole K and V fit the SRAM left by
             the working set (``kv_resident``), else once per query block that uses them
    SRAM     array operands and partial sums (the systolic counts), scores read by the
             vector unit (fp32) and P written (activation precision), the O accumulator
             read and written by each rescale, plus DMA fill and drain

Causal (prefill): query block ``i`` visits K/V blocks up to the one holding its last
position; blocks wholly above the diagonal are skipped, a block cut by it is computed in
full (its masked MACs are executed and counted in the tiles' ``macs``, so in energy; the
layer's ``macs`` are the unmasked ones only). Decode (one query) visits the whole cache.

Working set per core: two Q blocks, two K and two V blocks (double buffering), the score
block (fp32) and P (activation precision), the O accumulator (fp32) with the row max and
sum, and the O block staged for its store. Scores and the O accumulator go to the
accumulator SRAM when the core has one large enough. A block plan fits when that working
set fits the core's SRAM; the plan is the candidate (``bq``, ``bk``) with the lowest
estimate — max(array and vector time, DRAM time, tiles x DRAM latency) plus the exposed
first load and last store — taking, within 2 %, the one with the fewest tiles (as the GEMM
tiler does). No fitting candidate: the compiler falls back to materialised attention.

Cores: whole pairs are split across cores when there are at least as many pairs as cores;
otherwise (pair, query block) units are dealt longest first to the least loaded core, and
a core reads the K/V blocks of every pair it works on. With fewer units than cores (decode
of a GQA model at small batch) each unit's K/V blocks are split over ``cores // units``
parts (split-KV, as flash-decoding does): every part reads Q, writes its O with the row
max and sum in fp32, and the core of the first part combines them after its own work
(reads them back, rescales and adds: per part and row 4 ALU + 2 per element and 1 exp,
then the division). The engine does not make the combine wait for the other cores' parts
(a barrier ends the layer); the combine is a few rows, so the error is small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from npusim.compiler.program import COL, TILE_COLUMNS
from npusim.kernels.tiling import TIE_TOLERANCE
from npusim.workloads.ir import BITS, Attention

__all__ = ["ACC_BYTES", "AttentionPlan", "Machine", "attention_tiles", "describe", "place",
           "plan_attention", "working_set"]

ACC_BYTES = 4.0  # fp32 scores, O accumulator, row max and sum

#: (m, n, k, A bytes/element, B bytes/element) -> (array cycles incl. SRAM-port stalls,
#: compute cycles, SRAM read bytes, SRAM write bytes) of one GEMM on one core
GemmTime = Callable[[int, int, int, float, float], tuple[float, float, float, float]]


@dataclass(frozen=True)
class Machine:
    """What the block plan needs of the chip, as plain numbers (per core)."""

    cores: int
    gemm: GemmTime
    alu_rate: float  # vector ALU ops per cycle
    special_rate: float
    capacity: float  # SRAM bytes for this layer's working set
    acc_capacity: float  # accumulator SRAM bytes (0: none)
    dram_bpc: float  # DRAM bytes per cycle of one core's share (0: ideal memory)
    lat: float  # DRAM idle latency in cycles
    align_k: int  # K/V block sizes are multiples of this (the array's size)


@dataclass(frozen=True)
class AttentionPlan:
    bq: int  # query positions per block
    bk: int  # key positions per block
    kv_resident: bool  # a pair's K and V stay in SRAM across its query blocks
    estimate: float  # cycles of the busiest core (the search's estimate)
    n_tiles: int = 0  # tiles of the layer, all cores (counted before they are built)


def _bytes(p: str) -> float:
    return BITS[p] / 8


def working_set(layer: Attention, bq: int, bk: int, acc_capacity: float, kv_resident: bool,
                q_dram: bool = True, o_dram: bool = True) -> float:
    """Core SRAM bytes of one block plan (the accumulator SRAM's share left out)."""
    g, d, dv = layer.group, layer.head_dim, layer.dv
    a, kvb = _bytes(layer.act_precision), _bytes(layer.kv_precision)
    rows = g * bq
    q = 2 * rows * d * a if q_dram else 0.0
    kv = 2 * bk * _kv_width(layer) * kvb
    if kv_resident:
        kv += layer.keys_read() * _kv_width(layer) * kvb
    acc = rows * bk * ACC_BYTES + rows * (dv + 2) * ACC_BYTES
    if 0 < acc <= acc_capacity:
        acc = 0.0
    return q + kv + acc + rows * bk * a + (rows * dv * a if o_dram else 0.0)


def _kv_width(layer: Attention) -> int:
    """Cached values per key read: K and V, or K alone when V is its first columns."""
    return layer.head_dim + (0 if layer.kv_shared else layer.dv)


def _candidates(size: int, start: int) -> list[int]:
    out = {size}
    s = start
    while s < size:
        out.add(s)
        s *= 2
    return sorted(out)


@dataclass(frozen=True)
class _Units:
    """One core's work: unit u is pair ``pair[u]``, query block ``qblock[u]``, K/V blocks
    ``lo[u] .. hi[u]``, a part of ``parts[u]`` (more than 1: split-KV, combined after)."""

    pair: np.ndarray
    qblock: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    parts: np.ndarray


def _units(layer: Attention, bq: int, bk: int, cores: int) -> list[_Units]:
    """Units per core, each core's sorted by pair, query block and first K/V block."""
    nq = -(-layer.q_len // bq)
    pairs = layer.pairs
    last = _last_block(layer, np.arange(nq), bq, bk)
    first = _first_block(layer, np.arange(nq), bq, bk)
    work: list[tuple[int, int, int, int, int]] = []  # (pair, block, lo, hi, parts)
    if pairs >= cores:
        base, rem = divmod(pairs, cores)
        out, start = [], 0
        for c in range(cores):
            n = base + (1 if c < rem else 0)
            p = np.repeat(np.arange(start, start + n), nq)
            i = np.tile(np.arange(nq), n)
            out.append(_Units(p, i, first[i], last[i], np.ones(len(p), np.int64)))
            start += n
        return out
    split = max(1, cores // (pairs * nq))  # split-KV: fewer units than cores
    for a in range(pairs):
        for b in range(nq):
            lo = int(first[b])
            n_blocks = int(last[b]) + 1 - lo
            parts = min(split, n_blocks)
            edges = [lo + n_blocks * k // parts for k in range(parts + 1)]
            work += [(a, b, edges[k], edges[k + 1] - 1, parts) for k in range(parts)]
    load = [0] * cores
    mine: list[list[tuple[int, int, int, int, int]]] = [[] for _ in range(cores)]
    for w in sorted(work, key=lambda w: w[3] - w[2], reverse=True):  # longest first
        c = load.index(min(load))
        load[c] += w[3] - w[2] + 1
        mine[c].append(w)
    res = []
    for units in mine:
        units.sort()
        cols = [np.array([u[k] for u in units], np.int64) for k in range(5)]
        res.append(_Units(*cols))
    return res


def _key_base(layer: Attention) -> int:
    """Position of the first key any query of the layer sees: K/V blocks start there (0
    but under a window, whose blocks tile only the keys it reads)."""
    return layer.kv_len - layer.keys_read()


def _last_block(layer: Attention, qblock: np.ndarray, bq: int, bk: int) -> np.ndarray:
    """Index of the last K/V block each query block visits."""
    nk = -(-layer.keys_read() // bk)
    if not layer.causal:
        return np.full(len(qblock), nk - 1, np.int64)
    off = layer.kv_len - layer.q_len
    last_pos = off + np.minimum((qblock + 1) * bq, layer.q_len) - 1
    return (last_pos - _key_base(layer)) // bk


def _first_block(layer: Attention, qblock: np.ndarray, bq: int, bk: int) -> np.ndarray:
    """Index of the first K/V block each query block visits (0 but under a causal
    window, where later query blocks no longer see the first keys)."""
    if layer.window is None or not layer.causal:
        return np.zeros(len(qblock), np.int64)
    first_pos = layer.kv_len - layer.q_len + qblock * bq - layer.window + 1
    return np.maximum(first_pos - _key_base(layer), 0) // bk


def _kv_loads(u: _Units, unit: np.ndarray, j: np.ndarray, resident: bool) -> np.ndarray:
    """Whether each step loads its K/V block: always when streaming; when K/V stay in SRAM,
    only a block the core has not loaded for this pair yet (units of a pair are
    consecutive, their blocks ascending)."""
    if not resident:
        return np.ones(len(j), bool)
    lo = np.zeros(len(u.pair), np.int64)
    hi = np.full(len(u.pair), -1, np.int64)
    for k in range(1, len(u.pair)):
        if u.pair[k] == u.pair[k - 1]:
            lo[k] = min(lo[k - 1], u.lo[k - 1]) if hi[k - 1] >= 0 else u.lo[k - 1]
            hi[k] = max(hi[k - 1], u.hi[k - 1])
    return (j < lo[unit]) | (j > hi[unit])


def _core_tiles(layer: Attention, m: Machine, bq: int, bk: int, resident: bool, u: _Units,
                q_dram: bool, o_dram: bool) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One core's tiles for its units (addresses relative to the tensor each tile reads,
    named by the second array: 0 Q, 1 K/V, 2 O), and its vector (ALU, special) op totals."""
    cols = len(TILE_COLUMNS)
    if len(u.pair) == 0:
        return np.zeros((0, cols)), np.zeros(0, np.int64), 0.0, 0.0
    g, d, q, kv = layer.group, layer.head_dim, layer.q_len, layer.kv_len
    dv, kw = layer.dv, _kv_width(layer)
    a, kvb = _bytes(layer.act_precision), _bytes(layer.kv_precision)
    counts = u.hi - u.lo + 1
    unit = np.repeat(np.arange(len(u.pair)), counts)
    starts = np.cumsum(counts) - counts
    j = np.arange(int(counts.sum())) - starts[unit] + u.lo[unit]
    i = u.qblock[unit]
    cq = np.minimum(bq, q - i * bq)
    base = _key_base(layer)
    ck = np.minimum(bk, kv - base - j * bk)
    rows = g * cq
    e = rows * ck
    first_pos = (kv - q) + i * bq
    masked = (base + j * bk + ck - 1 > first_pos) if layer.causal else np.zeros(len(j), bool)
    if layer.window is not None and layer.causal:  # a block cut by the window's lower edge
        masked |= base + j * bk <= first_pos + cq - 1 - layer.window
    is_first = j == u.lo[unit]
    is_last = j == u.hi[unit]
    whole = u.parts[unit] == 1
    later = ~is_first
    # Array time per distinct block shape (full blocks and the edges: a few shapes).
    arr = np.zeros(len(j))
    comp = np.zeros(len(j))
    srd = np.zeros(len(j))
    swr = np.zeros(len(j))
    key = cq * (kv + 1) + ck
    for k_val in np.unique(key):
        sel = key == k_val
        c_q, c_k = int(k_val // (kv + 1)), int(k_val % (kv + 1))
        t1, c1, r1, w1 = m.gemm(g * c_q, c_k, d, a, kvb)  # S = Q K^T
        t2, c2, r2, w2 = m.gemm(g * c_q, dv, c_k, a, kvb)  # O += P V
        arr[sel], comp[sel], srd[sel], swr[sel] = t1 + t2, c1 + c2, r1 + r2, w1 + w2
    final = is_last & whole  # a split part leaves the division to the combine
    alu = 3.0 * e + masked * e + later * rows * (4.0 + 2.0 * dv) + final * rows * dv
    special = e + later * rows + final * rows
    if layer.sinks:  # the sink logit joins each row's max and sum at its first block
        opening = j == _first_block(layer, u.qblock, bq, bk)[unit]
        alu = alu + opening * rows * 3.0
        special = special + opening * rows
    # DRAM: Q at a unit's first step; O after its last (a split part: O, max and sum in
    # fp32 for the combine); K/V per the reuse policy.
    load_kv = _kv_loads(u, unit, j, resident)
    out_b = np.where(whole, rows * dv * a, rows * (dv + 2) * ACC_BYTES)
    rd = load_kv * 1.0 * ck * kw * kvb + (is_first * rows * d * a if q_dram else 0.0)
    wr = is_last * out_b * (o_dram | ~whole)
    t = np.zeros((len(j), cols))
    t[:, COL["array_cycles"]] = arr
    t[:, COL["compute_cycles"]] = comp
    t[:, COL["macs"]] = 1.0 * rows * ck * (d + dv)
    t[:, COL["dram_read_bytes"]] = rd
    t[:, COL["dram_write_bytes"]] = wr
    t[:, COL["sram_read_bytes"]] = srd + e * ACC_BYTES + later * rows * dv * ACC_BYTES \
        + is_last * rows * dv * ACC_BYTES + wr
    t[:, COL["sram_write_bytes"]] = swr + e * a + later * rows * dv * ACC_BYTES \
        + final * rows * dv * a + rd
    p = u.pair[unit]
    t[:, COL["read_addr"]] = np.where(load_kv, (p * kv + base + j * bk) * kw * kvb,
                                      (p * q + i * bq) * g * d * a)
    t[:, COL["write_addr"]] = (p * q + i * bq) * g * dv * a
    tensor = load_kv.astype(np.int64)
    t[:, COL["vector_cycles"]] = alu / m.alu_rate + special / m.special_rate
    alu_sum, special_sum = float(alu.sum()), float(special.sum())
    # Split-KV combine, on the core of each unit's first part, after its own work: read
    # every part's O, max and sum; rescale and add them (per part and row: max, subtract,
    # exp, 2 ALU for the sum, 2 per element for O); divide by the sum; write O.
    heads = (u.parts > 1) & (u.lo == _first_block(layer, u.qblock, bq, bk))
    if heads.any():
        n = u.parts[heads]
        r = g * np.minimum(bq, q - u.qblock[heads] * bq)
        c_alu = r * (n * (4.0 + 2.0 * dv) + dv)
        c_special = r * (n + 1.0)
        c_rd = n * r * (dv + 2) * ACC_BYTES
        c_wr = r * dv * a * o_dram
        c = np.zeros((len(n), cols))
        c[:, COL["dram_read_bytes"]] = c_rd
        c[:, COL["dram_write_bytes"]] = c_wr
        c[:, COL["sram_read_bytes"]] = c_rd + c_wr
        c[:, COL["sram_write_bytes"]] = c_rd + r * dv * a
        c[:, COL["write_addr"]] = (u.pair[heads] * q + u.qblock[heads] * bq) * g * dv * a
        c[:, COL["vector_cycles"]] = c_alu / m.alu_rate + c_special / m.special_rate
        t = np.concatenate([t, c])
        tensor = np.concatenate([tensor, np.full(len(c), 2, np.int64)])
        alu_sum += float(c_alu.sum())
        special_sum += float(c_special.sum())
    return t, tensor, alu_sum, special_sum


def _estimate(t: np.ndarray, m: Machine) -> float:
    """The GEMM tiler's estimate for one core's tiles."""
    if len(t) == 0:
        return 0.0
    busy = float(np.maximum(t[:, COL["array_cycles"]], t[:, COL["vector_cycles"]]).sum())
    if m.dram_bpc <= 0:
        return busy
    rd, wr = t[:, COL["dram_read_bytes"]], t[:, COL["dram_write_bytes"]]
    dram = float(rd.sum() + wr.sum()) / m.dram_bpc
    return (max(busy, dram, len(t) * m.lat) + float(rd[0] + wr[-1]) / m.dram_bpc + m.lat)


def plan_attention(layer: Attention, m: Machine, q_dram: bool = True,
                   o_dram: bool = True) -> AttentionPlan | None:
    """The block plan with the lowest estimate (fewest tiles within 2 %); None if no
    query block and K/V block fit the SRAM together."""
    found: list[tuple[float, int, AttentionPlan]] = []
    align = max(1, m.align_k)
    for bk in _candidates(layer.keys_read(), align):
        for bq in _candidates(layer.q_len, min(64, layer.q_len)):
            nq = -(-layer.q_len // bq)
            resident = nq > 1 and working_set(layer, bq, bk, m.acc_capacity, True, q_dram,
                                              o_dram) <= m.capacity
            if not resident and working_set(layer, bq, bk, m.acc_capacity, False, q_dram,
                                            o_dram) > m.capacity:
                continue
            est, n_tiles = _plan_cost(layer, m, bq, bk, resident, q_dram, o_dram)
            found.append((est, n_tiles, AttentionPlan(bq, bk, resident, est, n_tiles)))
    if not found:
        return None
    best = min(f[0] for f in found)
    ok = [f for f in found if f[0] <= best * TIE_TOLERANCE]
    return min(ok, key=lambda f: (f[1], f[0]))[2]


def _plan_cost(layer: Attention, m: Machine, bq: int, bk: int, resident: bool,
               q_dram: bool, o_dram: bool) -> tuple[float, int]:
    """(estimate of the busiest core, tiles of the layer). With whole pairs per core, one
    pair's tiles stand for all (each pair's are the same)."""
    units = _units(layer, bq, bk, m.cores)
    if layer.pairs >= m.cores:
        nq = -(-layer.q_len // bq)
        one = units[0]
        first = _Units(one.pair[:nq], one.qblock[:nq], one.lo[:nq], one.hi[:nq],
                       one.parts[:nq])
        t, _, _, _ = _core_tiles(layer, m, bq, bk, resident, first, q_dram, o_dram)
        per_core = -(-layer.pairs // m.cores)
        if m.dram_bpc <= 0:
            return _estimate(t, m) * per_core, len(t) * layer.pairs
        busy = float(np.maximum(t[:, COL["array_cycles"]], t[:, COL["vector_cycles"]]).sum())
        rd, wr = t[:, COL["dram_read_bytes"]], t[:, COL["dram_write_bytes"]]
        dram = float(rd.sum() + wr.sum()) / m.dram_bpc
        est = (max(busy, dram, len(t) * m.lat) * per_core
               + float(rd[0] + wr[-1]) / m.dram_bpc + m.lat)
        return est, len(t) * layer.pairs
    worst, total = 0.0, 0
    for u in units:
        t, _, _, _ = _core_tiles(layer, m, bq, bk, resident, u, q_dram, o_dram)
        worst = max(worst, _estimate(t, m))
        total += len(t)
    return worst, total


def attention_tiles(layer: Attention, m: Machine, plan: AttentionPlan, q_dram: bool,
                    o_dram: bool) -> tuple[list[np.ndarray], list[np.ndarray], float, float]:
    """Tiles per core for ``plan`` (addresses relative; see :func:`place`), the tensor
    each tile reads (0 Q, 1 K/V, 2 O), and the layer's vector (ALU, special) op totals."""
    tiles, tensors, alu, special = [], [], 0.0, 0.0
    for u in _units(layer, plan.bq, plan.bk, m.cores):
        t, tensor, a_ops, s_ops = _core_tiles(layer, m, plan.bq, plan.bk, plan.kv_resident, u,
                                              q_dram, o_dram)
        tiles.append(t)
        tensors.append(tensor)
        alu += a_ops
        special += s_ops
    return tiles, tensors, alu, special


def place(tiles: np.ndarray, tensor: np.ndarray, bases: tuple[int, int, int]) -> np.ndarray:
    """A copy of ``tiles`` with addresses in DRAM: Q, K/V and O at ``bases``."""
    out = tiles.copy()
    out[:, COL["read_addr"]] += np.asarray(bases, dtype=np.float64)[tensor]
    out[:, COL["write_addr"]] += bases[2]
    return out


def describe(plan: AttentionPlan, layer: Attention) -> str:
    """The mapping column: block sizes, causal skipping and the K/V reuse."""
    if -(-layer.q_len // plan.bq) == 1:
        kv = "K/V read once (one query block)"
    elif plan.kv_resident:
        kv = "K/V kept per pair"
    else:
        kv = "K/V re-read per query block"
    mask = "causal, blocks above the diagonal skipped" if layer.causal else "full"
    form = ""
    if layer.window is not None:
        form += f"; window {layer.window} ({layer.keys_read()} keys read)"
    if layer.kv_shared:
        form += "; V = the cached K's first columns (latent)"
    return f"fused attention bq{plan.bq} bk{plan.bk}; {mask}; {kv}{form}"
