"""Tiling search and tile emission for one GEMM on one core.

A layer's GEMM (``g`` independent products of M x K by K x N) is cut into tiles of
``tb x tm x tn x tk``. K is always the innermost loop (partial sums stay on chip, each
output is written once); the two outer loops run M-then-N (``order 0``) or N-then-M
(``order 1``); batch blocks are outermost. The SRAM holds a double-buffered working set
(two A tiles, two B tiles) plus the output tile; what is left is a reuse buffer, given
first to B, then to A:

* B: read once when each block is used by one M tile only; in order 1 the current B
  column block (K x tn) is kept while M runs under it (for a B shared by all products,
  when the whole B does not fit, it is then read again for every batch block); otherwise
  the whole B if it fits; otherwise every tile loads its B tile.
* A: read once when each block is used by one N tile only; in order 0 the current A row
  block (tb x tm x K) is kept while N runs under it; in order 1 the whole A if it fits in
  what B left; otherwise every tile loads its A tile.

An operand that does not come from DRAM (on chip already) takes no reuse buffer.

``search`` scores every candidate with a closed-form estimate and returns, among the
candidates within 2 % of the best estimate, the one with the fewest tiles (an estimate is
not more accurate than that; fewer tiles mean fewer events). The estimate is
max(array time, DRAM time, tiles x DRAM latency) plus the exposed first load (with its
latency) and the last store: with double buffering a tile cannot be shorter than the
latency of the load issued at its start. ``emit`` produces the per-tile arrays the engine
runs, with exactly the traffic the estimate assumed.

Operand byte widths are floats (int4 is 0.5 B). ``a_db`` is A's bytes per element as moved
from DRAM and held in SRAM (a convolution's input, smaller than its im2col matrix).
``*_dram`` flags say whether an operand moves to or from DRAM at all. ``overlap`` is the
array's stationary-operand double buffering (see npusim.kernels.systolic).

Partial sums (``acc_b`` bytes each) are read back and written by every fold after an
output's first (npusim.kernels.systolic): because K is the innermost tile loop, the first
fold of every K tile after the first reads what the previous K tile left. They live in the
scratchpad, through its ports (``rbw``, ``wbw``), or — when the core has an accumulator SRAM
(``acc_capacity > 0``) — in that SRAM, through its own ports (``arbw``, ``awbw``). A port
bandwidth of 0 is unlimited. The array runs no faster than its busiest port allows.

The same kernels tile for the matrix-vector engine (npusim.kernels.matvec) when ``df`` is
``MATVEC``: ``rows``, ``cols``, ``count`` and ``overlap`` then carry the engine's reduction
width, lanes, activation rows and pipeline depth, and ``rbw`` / ``wbw`` its ports. Its lane
accumulators hold a tile's sums; a K tile that continues them reads the earlier partial
sums back through the engine's read port (never through an accumulator SRAM).
"""

from __future__ import annotations

import numpy as np

from npusim.kernels._jit import njit
from npusim.kernels.matvec import MATVEC, matvec_time
from npusim.kernels.systolic import gemm_cycles, gemm_psum_reads, gemm_sram_elements

__all__ = ["TIE_TOLERANCE", "emit", "estimate", "search", "split_sizes"]

TIE_TOLERANCE = 1.02


@njit
def split_sizes(total: int, tile: int) -> tuple[int, int, int]:
    """(number of full tiles, remainder size, number of tiles)."""
    full = total // tile
    rem = total - full * tile
    return full, rem, full + (1 if rem > 0 else 0)


@njit
def _port_time(t: float, nbytes: float, bw: float) -> float:
    """``t`` or the time ``nbytes`` take through a port of ``bw`` B/cycle, if longer."""
    if bw > 0.0 and nbytes / bw > t:
        return nbytes / bw
    return t


@njit
def _array_time(tm: int, tn: int, tk: int, first_k: int, rows: int, cols: int, count: int,
                df: int, rate: float, overlap: int, a_b: float, b_b: float, acc_b: float,
                acc_sep: int, rbw: float, wbw: float, arbw: float,
                awbw: float) -> tuple[float, float, float, float, float, float]:
    """(array cycles incl. SRAM-port stalls, pure compute cycles, scratchpad read B,
    scratchpad write B, accumulator read B, accumulator write B) of one tile; ``first_k``:
    the tile is the first of its output's K tiles (it starts the sums, reading none)."""
    if df == MATVEC:
        t, comp, rd, wr = matvec_time(tm, tn, tk, cols, rows, count, rate, overlap, a_b, b_b,
                                      acc_b, rbw, wbw)
        if first_k == 0:
            rd += tm * tn * acc_b
            t = _port_time(t, rd, rbw)
        return t, comp, rd, wr, 0.0, 0.0
    comp = gemm_cycles(tm, tn, tk, rows, cols, count, df, rate, overlap)
    ea, eb, eo = gemm_sram_elements(tm, tn, tk, rows, cols, df)
    operands = ea * a_b + eb * b_b
    psum_rd = gemm_psum_reads(tm, tn, tk, rows, cols, df, 1 - first_k) * acc_b
    psum_wr = eo * acc_b
    if acc_sep:
        srd, swr, ard, awr = operands, 0.0, psum_rd, psum_wr
    else:
        srd, swr, ard, awr = operands + psum_rd, psum_wr, 0.0, 0.0
    t = _port_time(float(comp), srd, rbw)
    t = _port_time(t, swr, wbw)
    t = _port_time(t, ard, arbw)
    t = _port_time(t, awr, awbw)
    return t, float(comp), srd, swr, ard, awr


@njit
def _policies(g: int, m: int, n: int, k: int, tb: int, tm: int, tn: int, order: int,
              a_db: float, b_b: float, a_dram: int, b_dram: int, b_per_batch: int,
              spare: float) -> tuple[int, int]:
    """Reuse policy of (A, B): 0 stream (every visit loads), 1 group (the current row or
    column block is kept), 2 whole (every block is kept once loaded)."""
    mt = (m + tm - 1) // tm
    nt = (n + tn - 1) // tn
    bt = (g + tb - 1) // tb
    b_all = (g if b_per_batch else 1) * k * n * b_b
    b_col = (tb if b_per_batch else 1) * k * tn * b_b
    a_all = g * m * k * a_db
    a_row = tb * tm * k * a_db
    b_pol = 0
    used = 0.0
    if mt == 1 and (bt == 1 or b_per_batch == 1):
        b_pol = 0  # each B block is used once
    elif order == 1 and (bt == 1 or b_per_batch == 1) and b_col <= spare:
        b_pol, used = 1, b_col
    elif b_all <= spare:
        b_pol, used = 2, b_all
    elif order == 1 and b_col <= spare:
        b_pol, used = 1, b_col
    left = spare - used * b_dram
    a_pol = 0
    if nt == 1:
        a_pol = 0  # each A block is used once
    elif order == 0 and a_row <= left:
        a_pol = 1
    elif order == 1 and a_all <= left:
        a_pol = 2
    return a_pol, b_pol


@njit
def _working_set(tb: int, tm: int, tn: int, tk: int, a_db: float, b_b: float, out_b: float,
                 acc_b: float, b_per_batch: int, acc_capacity: float) -> float:
    a_tile = tb * tm * tk * a_db
    b_tile = (tb if b_per_batch else 1) * tk * tn * b_b
    work = 2.0 * (a_tile + b_tile) + tb * tm * tn * out_b
    if acc_capacity <= 0.0:
        work += tb * tm * tn * acc_b
    return work


@njit
def estimate(g: int, m: int, n: int, k: int, tb: int, tm: int, tn: int, tk: int, order: int,
             rows: int, cols: int, count: int, df: int, rate: float, overlap: int,
             a_b: float, b_b: float, out_b: float, acc_b: float,
             a_dram: int, b_dram: int, out_dram: int, b_per_batch: int, a_db: float,
             capacity: float, acc_capacity: float, dram_bpc: float, lat: float,
             rbw: float, wbw: float, arbw: float, awbw: float) -> tuple[float, float, float]:
    """(estimated cycles, DRAM read bytes, DRAM write bytes); cycles < 0 if it doesn't fit."""
    if acc_capacity > 0.0 and tb * tm * tn * acc_b > acc_capacity:
        return -1.0, 0.0, 0.0
    work = _working_set(tb, tm, tn, tk, a_db, b_b, out_b, acc_b, b_per_batch, acc_capacity)
    if work > capacity:
        return -1.0, 0.0, 0.0
    bf, br, bt = split_sizes(g, tb)
    mf, mr, mt = split_sizes(m, tm)
    nf, nr, nt = split_sizes(n, tn)
    kf, kr, kt = split_sizes(k, tk)
    # Array time: sum over full/remainder combinations of each dimension.
    total = 0.0
    bs = (tb, br)
    bc = (bf, 1 if br > 0 else 0)
    ms = (tm, mr)
    mc = (mf, 1 if mr > 0 else 0)
    ns = (tn, nr)
    nc = (nf, 1 if nr > 0 else 0)
    # K tiles: the first (it reads no partial sums), the other full ones, the remainder.
    ks = (tk, tk, kr)
    kc = (min(kf, 1), max(kf - 1, 0), 1 if kr > 0 else 0)
    kfirst = (1, 0, 1 if kf == 0 else 0)
    acc_sep = 1 if acc_capacity > 0.0 else 0
    for ib in range(2):
        if bc[ib] == 0:
            continue
        for im in range(2):
            if mc[im] == 0:
                continue
            for i_n in range(2):
                if nc[i_n] == 0:
                    continue
                for ik in range(3):
                    if kc[ik] == 0:
                        continue
                    t, _c, _sr, _sw, _ar, _aw = _array_time(
                        ms[im], ns[i_n], ks[ik], kfirst[ik], rows, cols, count, df, rate,
                        overlap, a_b, b_b, acc_b, acc_sep, rbw, wbw, arbw, awbw)
                    total += bc[ib] * mc[im] * nc[i_n] * kc[ik] * bs[ib] * t
    a_pol, b_pol = _policies(g, m, n, k, tb, tm, tn, order, a_db, b_b, a_dram, b_dram,
                             b_per_batch, capacity - work)
    a_all = g * m * k * a_db
    b_all = (g if b_per_batch else 1) * k * n * b_b
    out_all = g * m * n * out_b
    fa = float(nt) if a_pol == 0 else 1.0
    if b_pol == 0:
        fb = float(mt * (1 if b_per_batch else bt))
    elif b_pol == 1:
        fb = 1.0 if b_per_batch else float(bt)
    else:
        fb = 1.0
    rd = a_dram * a_all * fa + b_dram * b_all * fb
    wr = out_dram * out_all
    if dram_bpc <= 0.0:
        return total, rd, wr
    tiles = float(bt) * mt * nt * kt
    dram_t = (rd + wr) / dram_bpc
    first = (a_dram * tb * tm * tk * a_db
             + b_dram * (tb if b_per_batch else 1) * tk * tn * b_b) / dram_bpc
    last = out_dram * tb * tm * tn * out_b / dram_bpc
    busy = max(total, dram_t, tiles * lat if (a_dram or b_dram) else 0.0)
    return busy + first + last + (lat if (a_dram or b_dram) else 0.0), rd, wr


@njit
def search(g: int, m: int, n: int, k: int, cand_b: np.ndarray, cand_m: np.ndarray,
           cand_n: np.ndarray, cand_k: np.ndarray,
           rows: int, cols: int, count: int, df: int, rate: float, overlap: int,
           a_b: float, b_b: float, out_b: float, acc_b: float,
           a_dram: int, b_dram: int, out_dram: int, b_per_batch: int, a_db: float,
           capacity: float, acc_capacity: float, dram_bpc: float, lat: float,
           rbw: float, wbw: float, arbw: float, awbw: float) -> np.ndarray:
    """Best (tb, tm, tn, tk, order) and its estimate, as a float64 array of 6 (tb<0: none).

    Candidates are visited in (tb, tm, tn, tk, order) order. The winner has the fewest
    tiles among those within TIE_TOLERANCE of the lowest estimate; among equal tile counts,
    the lowest estimate; among equal estimates, the first visited.
    """
    n_c = len(cand_b) * len(cand_m) * len(cand_n) * len(cand_k) * 2
    choice = np.zeros((n_c, 5))
    ests = np.full(n_c, -1.0)
    tiles = np.zeros(n_c)
    best_cost = np.inf
    i = 0
    for tb in cand_b:
        for tm in cand_m:
            for tn in cand_n:
                for tk in cand_k:
                    for order in range(2):
                        est, _rd, _wr = estimate(g, m, n, k, tb, tm, tn, tk, order, rows, cols,
                                                 count, df, rate, overlap, a_b, b_b, out_b,
                                                 acc_b, a_dram, b_dram, out_dram, b_per_batch,
                                                 a_db, capacity, acc_capacity, dram_bpc, lat,
                                                 rbw, wbw, arbw, awbw)
                        choice[i, 0] = tb
                        choice[i, 1] = tm
                        choice[i, 2] = tn
                        choice[i, 3] = tk
                        choice[i, 4] = order
                        ests[i] = est
                        tiles[i] = (float((g + tb - 1) // tb) * ((m + tm - 1) // tm)
                                    * ((n + tn - 1) // tn) * ((k + tk - 1) // tk))
                        if est >= 0.0 and est < best_cost:
                            best_cost = est
                        i += 1
    best = np.full(6, -1.0)
    if best_cost == np.inf:
        return best
    limit = best_cost * TIE_TOLERANCE
    pick = -1
    for i in range(n_c):
        if ests[i] < 0.0 or ests[i] > limit:
            continue
        if pick < 0 or tiles[i] < tiles[pick] or (tiles[i] == tiles[pick]
                                                  and ests[i] < ests[pick]):
            pick = i
    for j in range(5):  # (a slice assignment would compile numba's shape-error text)
        best[j] = choice[pick, j]
    best[5] = ests[pick]
    return best


@njit
def emit(g: int, m: int, n: int, k: int, tb: int, tm: int, tn: int, tk: int, order: int,
         rows: int, cols: int, count: int, df: int, rate: float, overlap: int,
         a_b: float, b_b: float, out_b: float, acc_b: float,
         a_dram: int, b_dram: int, out_dram: int, b_per_batch: int, a_db: float,
         capacity: float, acc_capacity: float, rbw: float, wbw: float, arbw: float,
         awbw: float, a_base: int, b_base: int, out_base: int) -> np.ndarray:
    """Per-tile rows: [array cycles, compute cycles, macs, dram read B, dram write B,
    sram read B, sram write B, read addr, write addr, accumulator read B, accumulator
    write B] as a float64 (tiles x 11) array. The SRAM columns are the scratchpad's."""
    bt = (g + tb - 1) // tb
    mt = (m + tm - 1) // tm
    nt = (n + tn - 1) // tn
    kt = (k + tk - 1) // tk
    n_tiles = bt * mt * nt * kt
    out = np.zeros((n_tiles, 11))
    acc_sep = 1 if acc_capacity > 0.0 else 0
    work = _working_set(tb, tm, tn, tk, a_db, b_b, out_b, acc_b, b_per_batch, acc_capacity)
    a_pol, b_pol = _policies(g, m, n, k, tb, tm, tn, order, a_db, b_b, a_dram, b_dram,
                             b_per_batch, capacity - work)
    i = 0
    for ib in range(bt):
        cb = min(tb, g - ib * tb)
        for outer in range(mt if order == 0 else nt):
            for inner in range(nt if order == 0 else mt):
                im = outer if order == 0 else inner
                i_n = inner if order == 0 else outer
                cm = min(tm, m - im * tm)
                cn = min(tn, n - i_n * tn)
                for ik in range(kt):
                    ck = min(tk, k - ik * tk)
                    t, comp, srd, swr, ard, awr = _array_time(
                        cm, cn, ck, 1 if ik == 0 else 0, rows, cols, count, df, rate, overlap,
                        a_b, b_b, acc_b, acc_sep, rbw, wbw, arbw, awbw)
                    # A block (ib, im, ik) is first used at i_n == 0; B block (ib or shared,
                    # i_n, ik) at im == 0 (and, shared and kept whole, at ib == 0).
                    load_a = a_pol == 0 or i_n == 0
                    if b_pol == 0:
                        load_b = True
                    elif b_pol == 1:
                        load_b = im == 0
                    else:
                        load_b = im == 0 and (b_per_batch == 1 or ib == 0)
                    rd = 0.0
                    if load_a and a_dram:
                        rd += cb * cm * ck * a_db
                    if load_b and b_dram:
                        rd += (cb if b_per_batch else 1) * ck * cn * b_b
                    wr = 0.0
                    if ik == kt - 1 and out_dram:
                        wr = cb * cm * cn * out_b
                    out[i, 0] = cb * t
                    out[i, 1] = cb * comp
                    out[i, 2] = float(cb) * cm * cn * ck
                    out[i, 3] = rd
                    out[i, 4] = wr
                    # Scratchpad: the array's operand reads (and partial sums without an
                    # accumulator SRAM), plus the DMA fill (written) and drain (read).
                    out[i, 5] = cb * srd + wr
                    out[i, 6] = cb * swr + rd
                    out[i, 7] = a_base + ((ib * tb * m + im * tm) * k + ik * tk) * a_db
                    out[i, 8] = out_base + ((ib * tb * m + im * tm) * n + i_n * tn) * out_b
                    out[i, 9] = cb * ard
                    out[i, 10] = cb * awr
                    i += 1
    return out
