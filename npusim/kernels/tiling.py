"""Tiling search and tile emission for one GEMM on one core.

A layer's GEMM (``g`` independent products of M x K by K x N) is cut into tiles of
``tb x tm x tn x tk``. K is always the innermost loop (partial sums stay on chip, each
output is written once); the two outer loops run M-then-N (``order 0``) or N-then-M
(``order 1``). The SRAM holds a double-buffered working set (two A tiles, two B tiles) plus
the output tile, and whatever is left is a reuse buffer: in order 0 an A row block
(tm x K) that fits there is loaded once and reused across N; in order 1 a B column block
(K x tn). When a whole operand fits, it is loaded once.

``search`` scores every candidate with a closed-form estimate (array time vs DRAM time,
plus the exposed first load and last store) and returns the best. ``emit`` produces the
per-tile arrays the engine runs, with exactly the traffic the estimate assumed.

Operand byte widths are floats (int4 is 0.5 B). ``*_dram`` flags say whether an operand
moves to or from DRAM at all (an on-chip activation does not).
"""

from __future__ import annotations

import numpy as np

from npusim.kernels._jit import njit
from npusim.kernels.systolic import gemm_cycles, gemm_sram_elements

__all__ = ["emit", "estimate", "search", "split_sizes"]


@njit
def split_sizes(total: int, tile: int) -> tuple[int, int, int]:
    """(number of full tiles, remainder size, number of tiles)."""
    full = total // tile
    rem = total - full * tile
    return full, rem, full + (1 if rem > 0 else 0)


@njit
def _array_time(tm: int, tn: int, tk: int, rows: int, cols: int, count: int, df: int,
                rate: float, a_b: float, b_b: float, acc_b: float, rbw: float,
                wbw: float) -> tuple[float, float, float, float]:
    """(array cycles incl. SRAM-port stalls, pure compute cycles, SRAM read B, SRAM write B)."""
    comp = gemm_cycles(tm, tn, tk, rows, cols, count, df, rate)
    ea, eb, eo = gemm_sram_elements(tm, tn, tk, rows, cols, df)
    rd = ea * a_b + eb * b_b
    wr = eo * acc_b
    t = float(comp)
    if rbw > 0.0 and rd / rbw > t:
        t = rd / rbw
    if wbw > 0.0 and wr / wbw > t:
        t = wr / wbw
    return t, float(comp), rd, wr


@njit
def estimate(g: int, m: int, n: int, k: int, tb: int, tm: int, tn: int, tk: int, order: int,
             rows: int, cols: int, count: int, df: int, rate: float,
             a_b: float, b_b: float, out_b: float, acc_b: float,
             a_dram: int, b_dram: int, out_dram: int, b_per_batch: int, a_db: float,
             capacity: float, acc_capacity: float, dram_bpc: float,
             rbw: float, wbw: float) -> tuple[float, float, float]:
    """(estimated cycles, DRAM read bytes, DRAM write bytes); cycles < 0 if it doesn't fit."""
    a_tile = tb * tm * tk * a_db
    b_tile = (tb if b_per_batch else 1) * tk * tn * b_b
    o_tile = tb * tm * tn * acc_b
    work = 2.0 * (a_tile + b_tile) + tb * tm * tn * out_b
    if acc_capacity > 0.0:
        if o_tile > acc_capacity:
            return -1.0, 0.0, 0.0
    else:
        work += o_tile
    if work > capacity:
        return -1.0, 0.0, 0.0
    spare = capacity - work
    bf, br, bt = split_sizes(g, tb)
    mf, mr, mt = split_sizes(m, tm)
    nf, nr, nt = split_sizes(n, tn)
    kf, kr, _kt = split_sizes(k, tk)
    # Array time: sum over full/remainder combinations of each dimension.
    total = 0.0
    bs = (tb, br)
    bc = (bf, 1 if br > 0 else 0)
    ms = (tm, mr)
    mc = (mf, 1 if mr > 0 else 0)
    ns = (tn, nr)
    nc = (nf, 1 if nr > 0 else 0)
    ks = (tk, kr)
    kc = (kf, 1 if kr > 0 else 0)
    for ib in range(2):
        if bc[ib] == 0:
            continue
        for im in range(2):
            if mc[im] == 0:
                continue
            for i_n in range(2):
                if nc[i_n] == 0:
                    continue
                for ik in range(2):
                    if kc[ik] == 0:
                        continue
                    t, _c, _r, _w = _array_time(ms[im], ns[i_n], ks[ik], rows, cols, count, df,
                                                rate, a_b, b_b, acc_b, rbw, wbw)
                    total += bc[ib] * mc[im] * nc[i_n] * kc[ik] * bs[ib] * t
    a_all = g * m * k * a_db
    b_all = (g if b_per_batch else 1) * k * n * b_b
    out_all = g * m * n * out_b
    if order == 0:
        fa = 1.0 if (nt == 1 or tb * tm * k * a_db <= spare) else float(nt)
        fb = 1.0 if ((mt == 1 and (bt == 1 or b_per_batch)) or b_all <= spare) else float(
            mt * (1 if b_per_batch else bt))
    else:
        fb = 1.0 if ((mt == 1 and (bt == 1 or b_per_batch)) or
                     (tb if b_per_batch else 1) * k * tn * b_b <= spare) else float(
            mt * (1 if b_per_batch else bt))
        fa = 1.0 if (nt == 1 or a_all <= spare) else float(nt)
    rd = a_dram * a_all * fa + b_dram * b_all * fb
    wr = out_dram * out_all
    dram_t = (rd + wr) / dram_bpc if dram_bpc > 0.0 else 0.0
    first = (a_dram * a_tile + b_dram * b_tile) / dram_bpc if dram_bpc > 0.0 else 0.0
    last = out_dram * tb * tm * tn * out_b / dram_bpc if dram_bpc > 0.0 else 0.0
    est = max(total, dram_t) + first + last
    return est, rd, wr


@njit
def search(g: int, m: int, n: int, k: int, cand_b: np.ndarray, cand_m: np.ndarray,
           cand_n: np.ndarray, cand_k: np.ndarray,
           rows: int, cols: int, count: int, df: int, rate: float,
           a_b: float, b_b: float, out_b: float, acc_b: float,
           a_dram: int, b_dram: int, out_dram: int, b_per_batch: int, a_db: float,
           capacity: float, acc_capacity: float, dram_bpc: float,
           rbw: float, wbw: float) -> np.ndarray:
    """Best (tb, tm, tn, tk, order) and its estimate, as a float64 array of 6 (tb<0: none)."""
    best = np.full(6, -1.0)
    best_cost = np.inf
    best_tiles = np.inf
    for tb in cand_b:
        for tm in cand_m:
            for tn in cand_n:
                for tk in cand_k:
                    for order in range(2):
                        est, _rd, _wr = estimate(g, m, n, k, tb, tm, tn, tk, order, rows, cols,
                                                 count, df, rate, a_b, b_b, out_b, acc_b,
                                                 a_dram, b_dram, out_dram, b_per_batch,
                                                 a_db, capacity, acc_capacity, dram_bpc, rbw, wbw)
                        if est < 0.0:
                            continue
                        tiles = (float((g + tb - 1) // tb) * ((m + tm - 1) // tm)
                                 * ((n + tn - 1) // tn) * ((k + tk - 1) // tk))
                        # Within 0.1 %, prefer fewer tiles: same time, fewer events.
                        if est < best_cost * 0.999 or (est <= best_cost * 1.001
                                                       and tiles < best_tiles):
                            best_cost = est
                            best_tiles = tiles
                            best[0] = tb
                            best[1] = tm
                            best[2] = tn
                            best[3] = tk
                            best[4] = order
                            best[5] = est
    return best


@njit
def emit(g: int, m: int, n: int, k: int, tb: int, tm: int, tn: int, tk: int, order: int,
         rows: int, cols: int, count: int, df: int, rate: float,
         a_b: float, b_b: float, out_b: float, acc_b: float,
         a_dram: int, b_dram: int, out_dram: int, b_per_batch: int, a_db: float,
         capacity: float, acc_capacity: float, rbw: float, wbw: float,
         a_base: int, b_base: int, out_base: int) -> np.ndarray:
    """Per-tile rows: [array cycles, compute cycles, macs, dram read B, dram write B,
    sram read B, sram write B, read addr, write addr] as a float64 (tiles x 9) array."""
    bt = (g + tb - 1) // tb
    mt = (m + tm - 1) // tm
    nt = (n + tn - 1) // tn
    kt = (k + tk - 1) // tk
    n_tiles = bt * mt * nt * kt
    out = np.zeros((n_tiles, 9))
    a_tile_full = tb * tm * tk * a_db
    b_tile_full = (tb if b_per_batch else 1) * tk * tn * b_b
    work = 2.0 * (a_tile_full + b_tile_full) + tb * tm * tn * out_b
    if acc_capacity <= 0.0:
        work += tb * tm * tn * acc_b
    spare = capacity - work
    a_all = g * m * k * a_db
    b_all = (g if b_per_batch else 1) * k * n * b_b
    if order == 0:
        a_keep = nt == 1 or tb * tm * k * a_db <= spare
        b_keep = (mt == 1 and (bt == 1 or b_per_batch == 1)) or b_all <= spare
    else:
        b_keep = ((mt == 1 and (bt == 1 or b_per_batch == 1))
                  or (tb if b_per_batch else 1) * k * tn * b_b <= spare)
        a_keep = nt == 1 or a_all <= spare
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
                    t, comp, srd, swr = _array_time(cm, cn, ck, rows, cols, count, df, rate,
                                                    a_b, b_b, acc_b, rbw, wbw)
                    rd = 0.0
                    # A tile: reloaded unless kept from an earlier pass.
                    if order == 0:
                        load_a = (not a_keep) or i_n == 0
                        load_b = (not b_keep) or (im == 0 and (ib == 0 or b_per_batch == 1))
                    else:
                        load_b = (not b_keep) or (im == 0 and (ib == 0 or b_per_batch == 1))
                        load_a = (not a_keep) or i_n == 0
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
                    # SRAM: the array's operand reads and partial-sum writes, plus the DMA
                    # fill (written to SRAM) and drain (read from SRAM).
                    out[i, 5] = cb * srd + wr
                    out[i, 6] = cb * swr + rd
                    out[i, 7] = a_base + ((ib * tb * m + im * tm) * k + ik * tk) * a_db
                    out[i, 8] = out_base + ((ib * tb * m + im * tm) * n + i_n * tn) * out_b
                    i += 1
    return out
