"""Slow plain-Python oracles for the kernels in npusim.kernels.systolic and .tiling.

Each function here is written from the definitions in the kernels' docstrings (and
SCALE-Sim's cycle counts as docs/model.md "Systolic array" states them), not translated
from their code: folds are counted by
walking the fold grid, an estimate walks every tile, and ``emit`` keeps explicit sets of
the operand blocks resident in SRAM and loads a block only when it is not there. Exact
rational arithmetic (``fractions.Fraction``) is used wherever the kernels divide, so
equality with a kernel means the kernel rounds nowhere it should not. Callers that want
bit-exact float agreement keep byte widths, rates and bandwidths dyadic (0.5, 1, 2, ...).

Dataflow codes: 0 = ws, 1 = os, 2 = is, 3 = the matrix-vector engine (npusim.kernels.matvec;
the tiling problem's rows, cols, count and overlap then carry its width, lanes, activation
rows and pipeline depth).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "emit",
    "estimate",
    "gemm_cycles",
    "gemm_folds",
    "gemm_psum_reads",
    "gemm_sram_elements",
    "matvec_cycles",
    "matvec_sram_elements",
    "peak_sram_bytes",
    "search",
    "split_sizes",
    "tile_starts",
]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _mapping(m: int, n: int, k: int, dataflow: int) -> tuple[int, int, int]:
    """(dimension on the array rows, on the columns, streamed) per SCALE-Sim's table."""
    return {0: (k, n, m), 1: (m, n, k), 2: (k, m, n)}[dataflow]


# --- systolic -----------------------------------------------------------------------------


def gemm_folds(m: int, n: int, k: int, rows: int, cols: int, dataflow: int) -> tuple[int, int]:
    """(folds, cycles per fold): count the R x C blocks that cover the mapped dimensions."""
    on_rows, on_cols, streamed = _mapping(m, n, k, dataflow)
    folds = sum(1 for _r in range(0, on_rows, rows) for _c in range(0, on_cols, cols))
    # WS/IS: R cycles to shift the stationary block in, then the skewed stream (R + C - 2
    # of skew plus the stream length). OS: no preload, the skew plus the reduction length.
    load = rows if dataflow in (0, 2) else 0
    return folds, load + (rows + cols - 2) + streamed


def gemm_cycles(m: int, n: int, k: int, rows: int, cols: int, count: int, dataflow: int,
                rate: float, overlap: int = 0) -> int:
    """Folds dealt round-robin to ``count`` arrays; each round takes one fold's time / rate.

    With ``overlap`` (WS and IS), a fold's stationary block shifts in (R cycles) while the
    previous fold streams: walk the folds of one array, each stream starting when both the
    previous stream has entered and its own block is in; the last output leaves R + C - 2
    cycles after the last stream row enters.
    """
    folds, per = gemm_folds(m, n, k, rows, cols, dataflow)
    per_array = [0] * count
    for f in range(folds):
        per_array[f % count] += 1
    rounds = max(per_array)
    if overlap and dataflow != 1 and rounds > 1:
        stream = per - 2 * rows - cols + 2
        block_in = rows  # the first block: nothing to hide it behind
        stream_end = 0
        for _f in range(rounds):
            start = max(block_in, stream_end)
            stream_end = start + stream
            block_in = start + rows  # the next block shifts in behind this stream
        return math.ceil(Fraction(stream_end + rows + cols - 2) / Fraction(rate))
    return math.ceil(Fraction(rounds * per) / Fraction(rate))


def gemm_sram_elements(m: int, n: int, k: int, rows: int, cols: int,
                       dataflow: int) -> tuple[int, int, int]:
    """(A reads, B reads, output writes) in elements, counted fold by fold.

    Per fold, the stationary operand's block is read once, the streamed operand's slice is
    read once, and every output element the fold touches is written once (WS/IS write a
    partial sum per reduction fold; OS keeps the sums in the PEs and writes each once).
    """
    a = b = o = 0
    if dataflow == 0:  # B stationary: K on rows, N on cols; A rows stream
        for k0 in range(0, k, rows):
            kk = min(rows, k - k0)
            for n0 in range(0, n, cols):
                nn = min(cols, n - n0)
                b += kk * nn
                a += m * kk
                o += m * nn
    elif dataflow == 1:  # outputs stationary: M on rows, N on cols; K streams
        for m0 in range(0, m, rows):
            mm = min(rows, m - m0)
            for n0 in range(0, n, cols):
                nn = min(cols, n - n0)
                a += mm * k
                b += k * nn
                o += mm * nn
    else:  # A stationary: K on rows, M on cols; B columns stream
        for k0 in range(0, k, rows):
            kk = min(rows, k - k0)
            for m0 in range(0, m, cols):
                mm = min(cols, m - m0)
                a += kk * mm
                b += kk * n
                o += mm * n
    return a, b, o


def gemm_psum_reads(m: int, n: int, k: int, rows: int, cols: int, dataflow: int,
                    continues: int) -> int:
    """Partial-sum reads in elements, fold by fold: a fold that writes an output block some
    earlier fold (or, when the GEMM ``continues`` a reduction, an earlier GEMM) already
    wrote must read it first to add to it. OS folds run all of K: only an earlier GEMM
    wrote their outputs before."""
    written: set[tuple[int, int]] = set()  # output blocks (row start, column start) written
    reads = 0
    if dataflow == 1:
        folds = [(m0, n0, min(rows, m - m0) * min(cols, n - n0))
                 for m0 in range(0, m, rows) for n0 in range(0, n, cols)]
    elif dataflow == 0:  # each fold writes all M rows of its C output columns
        folds = [(0, n0, m * min(cols, n - n0)) for _k0 in range(0, k, rows)
                 for n0 in range(0, n, cols)]
    else:  # each fold writes its C output rows, all N columns
        folds = [(m0, 0, min(cols, m - m0) * n) for _k0 in range(0, k, rows)
                 for m0 in range(0, m, cols)]
    for m0, n0, size in folds:
        if continues or (m0, n0) in written:
            reads += size
        written.add((m0, n0))
    return reads


# --- matrix-vector engine -----------------------------------------------------------------


def matvec_cycles(m: int, n: int, k: int, lanes: int, width: int, rows: int, rate: float,
                  depth: int) -> int:
    """Walk the folds (a group of up to ``rows`` activation rows x a group of up to
    ``lanes`` outputs) and, in each, the beats (``width`` reduction elements each); every
    beat takes 1 / rate cycles; the pipeline's depth is paid once at the end."""
    beats = 0
    for _m0 in range(0, m, rows):
        for _n0 in range(0, n, lanes):
            beats += sum(1 for _k0 in range(0, k, width))
    return math.ceil(Fraction(beats) / Fraction(rate)) + depth


def matvec_sram_elements(m: int, n: int, k: int, lanes: int,
                         rows: int) -> tuple[int, int, int]:
    """(A reads, B reads, output writes), fold by fold: a fold reads its rows' activations
    (all of K, broadcast to its lanes) and its lanes' weights (all of K), and writes each
    of its outputs once."""
    a = b = o = 0
    for m0 in range(0, m, rows):
        mm = min(rows, m - m0)
        for n0 in range(0, n, lanes):
            nn = min(lanes, n - n0)
            a += mm * k
            b += k * nn
            o += mm * nn
    return a, b, o


# --- tiling -------------------------------------------------------------------------------


def split_sizes(total: int, tile: int) -> tuple[int, int, int]:
    """(full tiles, remainder size, tiles) by cutting ``total`` into pieces of ``tile``."""
    sizes = tile_starts(total, tile)
    full = sum(1 for _s, size in sizes if size == tile)
    rem = next((size for _s, size in sizes if size != tile), 0)
    return full, rem, len(sizes)


def tile_starts(total: int, tile: int) -> list[tuple[int, int]]:
    """(start, size) of each tile along one dimension."""
    return [(s, min(tile, total - s)) for s in range(0, total, tile)]


@dataclass(frozen=True)
class Problem:
    """The arguments every tiling kernel takes, by name."""

    g: int
    m: int
    n: int
    k: int
    rows: int
    cols: int
    count: int
    df: int
    rate: float
    a_b: float
    b_b: float
    out_b: float
    acc_b: float
    a_dram: int
    b_dram: int
    out_dram: int
    b_per_batch: int
    a_db: float
    capacity: float
    acc_capacity: float
    dram_bpc: float
    rbw: float
    wbw: float
    overlap: int = 0
    lat: float = 0.0
    arbw: float = 0.0  # accumulator SRAM ports (used when acc_capacity > 0)
    awbw: float = 0.0


def _array_time(p: Problem, tm: int, tn: int, tk: int,
                continues: bool) -> tuple[Fraction, int, Fraction, Fraction, Fraction,
                                          Fraction]:
    """(array cycles with SRAM-port stalls, compute cycles, scratchpad read B, scratchpad
    write B, accumulator read B, accumulator write B) of one tile.

    Partial sums (written by every fold, read back by every fold that adds to an earlier
    one) use the accumulator SRAM's ports when there is one (``acc_capacity > 0``), else the
    scratchpad's; each port is busy for its bytes / its bandwidth (0: unlimited).
    """
    zero = Fraction(0)
    if p.df == 3:  # the matrix-vector engine: its sums stay in the scratchpad
        comp = matvec_cycles(tm, tn, tk, p.cols, p.rows, p.count, p.rate, p.overlap)
        ea, eb, eo = matvec_sram_elements(tm, tn, tk, p.cols, p.count)
        rd = ea * Fraction(p.a_b) + eb * Fraction(p.b_b)
        if continues:  # the lanes' accumulators start from the earlier K tile's sums
            rd += tm * tn * Fraction(p.acc_b)
        ports = [(rd, p.rbw), (eo * Fraction(p.acc_b), p.wbw), (zero, p.arbw), (zero, p.awbw)]
        return _port_bound(comp, ports)
    comp = gemm_cycles(tm, tn, tk, p.rows, p.cols, p.count, p.df, p.rate, p.overlap)
    ea, eb, eo = gemm_sram_elements(tm, tn, tk, p.rows, p.cols, p.df)
    operands = ea * Fraction(p.a_b) + eb * Fraction(p.b_b)
    psum_rd = gemm_psum_reads(tm, tn, tk, p.rows, p.cols, p.df, int(continues)) * Fraction(p.acc_b)
    psum_wr = eo * Fraction(p.acc_b)
    if p.acc_capacity > 0:
        ports = [(operands, p.rbw), (zero, p.wbw), (psum_rd, p.arbw), (psum_wr, p.awbw)]
    else:
        ports = [(operands + psum_rd, p.rbw), (psum_wr, p.wbw), (zero, p.arbw), (zero, p.awbw)]
    return _port_bound(comp, ports)


def _port_bound(comp: int, ports: list[tuple[Fraction, float]]
                ) -> tuple[Fraction, int, Fraction, Fraction, Fraction, Fraction]:
    """The compute cycles or the busiest port's time, and the bytes through each port."""
    t = Fraction(comp)
    for nbytes, bw in ports:
        if bw > 0:
            t = max(t, nbytes / Fraction(bw))
    (srd, _), (swr, _), (ard, _), (awr, _) = ports
    return t, comp, srd, swr, ard, awr


def _working_set(p: Problem, tb: int, tm: int, tn: int, tk: int) -> Fraction:
    """Double-buffered A and B tiles, the output tile, and partial sums without an acc SRAM."""
    a_tile = tb * tm * tk * Fraction(p.a_db)
    b_tile = (tb if p.b_per_batch else 1) * tk * tn * Fraction(p.b_b)
    work = 2 * (a_tile + b_tile) + tb * tm * tn * Fraction(p.out_b)
    if p.acc_capacity <= 0:
        work += tb * tm * tn * Fraction(p.acc_b)
    return work


def _fits(p: Problem, tb: int, tm: int, tn: int, tk: int) -> bool:
    if p.acc_capacity > 0 and tb * tm * tn * Fraction(p.acc_b) > Fraction(p.acc_capacity):
        return False
    return _working_set(p, tb, tm, tn, tk) <= Fraction(p.capacity)


@dataclass(frozen=True)
class _Visit:
    ib: int
    cb: int
    im: int
    cm: int
    i_n: int
    cn: int
    ik: int
    ck: int
    last_k: bool


def _visits(p: Problem, tb: int, tm: int, tn: int, tk: int, order: int) -> Iterator[_Visit]:
    """Tiles in execution order: batch blocks outermost, K innermost, M/N by ``order``."""
    ks = tile_starts(p.k, tk)
    ms = list(enumerate(tile_starts(p.m, tm)))
    ns = list(enumerate(tile_starts(p.n, tn)))
    for ib, (_b0, cb) in enumerate(tile_starts(p.g, tb)):
        pairs = ([(a, b) for a in ms for b in ns] if order == 0
                 else [(a, b) for b in ns for a in ms])
        for (im, (_m0, cm)), (i_n, (_n0, cn)) in pairs:
            for ik, (_k0, ck) in enumerate(ks):
                yield _Visit(ib, cb, im, cm, i_n, cn, ik, ck, ik == len(ks) - 1)


class _Buffer:
    """The blocks of one operand held in SRAM, and the bytes it took to bring them in.

    ``policy`` is ``stream`` (nothing kept beyond the double buffer: every visit loads),
    ``whole`` (a block once loaded stays for the rest of the GEMM), or ``group`` (blocks
    stay while their group key is unchanged: a row or column block reused across the other
    outer loop, dropped when the loop moves on).
    """

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.resident: set[tuple[int, ...]] = set()
        self.group: tuple[int, ...] | None = None
        self.sizes: dict[tuple[int, ...], Fraction] = {}
        self.peak = Fraction(0)

    def visit(self, key: tuple[int, ...], group: tuple[int, ...], size: Fraction) -> bool:
        """True when the block must come from DRAM."""
        if self.policy == "stream":
            return True
        if self.policy == "group" and group != self.group:
            self.resident.clear()
            self.group = group
        if key in self.resident:
            return False
        self.resident.add(key)
        self.sizes[key] = size
        self.peak = max(self.peak, sum(self.sizes[x] for x in self.resident))
        return True


def _policies(p: Problem, tb: int, tm: int, tn: int, tk: int, order: int) -> tuple[str, str]:
    """How A and B are kept, from the module docstring of npusim.kernels.tiling.

    The reuse buffer is what the working set leaves of the capacity; B is served first, A
    gets what B (if it comes from DRAM) leaves. Order 1 (N outer) may keep the current B
    column block (K x tn), order 0 (M outer) the current A row block (tb x tm x K); a whole
    operand is kept when it fits. An operand whose every block is visited once needs no
    reuse buffer (it streams, and keeps nothing).
    """
    spare = Fraction(p.capacity) - _working_set(p, tb, tm, tn, tk)
    nt = _ceil_div(p.n, tn)
    mt = _ceil_div(p.m, tm)
    bt = _ceil_div(p.g, tb)
    b_batches = p.g if p.b_per_batch else 1
    a_all = p.g * p.m * p.k * Fraction(p.a_db)
    b_all = b_batches * p.k * p.n * Fraction(p.b_b)
    a_row_block = tb * tm * p.k * Fraction(p.a_db)
    b_col_block = (tb if p.b_per_batch else 1) * p.k * tn * Fraction(p.b_b)
    # A column block is never revisited once N moves on, unless B is shared by later batch
    # blocks: keeping the current block is then as good as keeping all of B, for less SRAM.
    b_group_enough = order == 1 and (bt == 1 or bool(p.b_per_batch))
    used = Fraction(0)
    if mt == 1 and (bt == 1 or bool(p.b_per_batch)):
        b = "stream"
    elif b_group_enough and b_col_block <= spare:
        b, used = "group", b_col_block
    elif b_all <= spare:
        b, used = "whole", b_all
    elif order == 1 and b_col_block <= spare:
        b, used = "group", b_col_block
    else:
        b = "stream"
    left = spare - used * p.b_dram
    if nt == 1:
        a = "stream"
    elif order == 0 and a_row_block <= left:
        a = "group"
    elif order == 1 and a_all <= left:
        a = "whole"
    else:
        a = "stream"
    return a, b


def _walk(p: Problem, tb: int, tm: int, tn: int, tk: int, order: int,
          a_base: int = 0, b_base: int = 0, out_base: int = 0) -> tuple[list[list[Fraction]],
                                                                      Fraction]:
    """Every tile's row (see ``emit``) and the peak bytes the reuse buffers held."""
    pa, pb = _policies(p, tb, tm, tn, tk, order)
    buf_a, buf_b = _Buffer(pa), _Buffer(pb)
    rows = []
    for v in _visits(p, tb, tm, tn, tk, order):
        t, comp, srd, swr, ard, awr = _array_time(p, v.cm, v.cn, v.ck, continues=v.ik > 0)
        b_owner = v.ib if p.b_per_batch else -1
        a_bytes = v.cb * v.cm * v.ck * Fraction(p.a_db)
        b_bytes = (v.cb if p.b_per_batch else 1) * v.ck * v.cn * Fraction(p.b_b)
        rd = Fraction(0)
        if buf_a.visit((v.ib, v.im, v.ik), (v.ib, v.im), a_bytes) and p.a_dram:
            rd += a_bytes
        if buf_b.visit((b_owner, v.i_n, v.ik), (b_owner, v.i_n), b_bytes) and p.b_dram:
            rd += b_bytes
        wr = Fraction(0)
        if v.last_k and p.out_dram:
            wr = v.cb * v.cm * v.cn * Fraction(p.out_b)
        # DRAM addresses: A is [g][m][k] and the output [g][m][n], row-major.
        a_elem = (v.ib * tb * p.m + v.im * tm) * p.k + v.ik * tk
        o_elem = (v.ib * tb * p.m + v.im * tm) * p.n + v.i_n * tn
        rows.append([v.cb * t, Fraction(v.cb * comp), Fraction(v.cb * v.cm * v.cn * v.ck),
                     rd, wr, v.cb * srd + wr, v.cb * swr + rd,
                     a_base + a_elem * Fraction(p.a_db), out_base + o_elem * Fraction(p.out_b),
                     v.cb * ard, v.cb * awr])
    # An operand that does not come from DRAM is on chip already: it needs no reuse buffer.
    return rows, p.a_dram * buf_a.peak + p.b_dram * buf_b.peak


def emit(p: Problem, tb: int, tm: int, tn: int, tk: int, order: int, a_base: int = 0,
         b_base: int = 0, out_base: int = 0) -> list[list[float]]:
    """Per-tile rows: [array cycles, compute cycles, macs, DRAM read B, DRAM write B,
    scratchpad read B, scratchpad write B, read address, write address, accumulator read B,
    accumulator write B]."""
    rows, _peak = _walk(p, tb, tm, tn, tk, order, a_base, b_base, out_base)
    return [[float(x) for x in row] for row in rows]


def peak_sram_bytes(p: Problem, tb: int, tm: int, tn: int, tk: int, order: int) -> float:
    """Largest SRAM footprint while ``emit``'s program runs: working set + reuse buffers."""
    _rows, peak = _walk(p, tb, tm, tn, tk, order)
    return float(_working_set(p, tb, tm, tn, tk) + peak)


def estimate(p: Problem, tb: int, tm: int, tn: int, tk: int,
             order: int) -> tuple[float, float, float]:
    """(cycles, DRAM read B, DRAM write B), by walking the program ``emit`` would run.

    Cycles = max(summed array time, total DRAM traffic / DRAM bytes per cycle) plus the
    exposed first load (a full A and B tile) and last store (a full output tile).
    Returns (-1, 0, 0) if the working set does not fit.
    """
    if not _fits(p, tb, tm, tn, tk):
        return -1.0, 0.0, 0.0
    rows, _peak = _walk(p, tb, tm, tn, tk, order)
    array = sum((r[0] for r in rows), Fraction(0))
    rd = sum((r[3] for r in rows), Fraction(0))
    wr = sum((r[4] for r in rows), Fraction(0))
    cycles = array
    if p.dram_bpc > 0:
        bpc = Fraction(p.dram_bpc)
        first = (p.a_dram * tb * tm * tk * Fraction(p.a_db)
                 + p.b_dram * (tb if p.b_per_batch else 1) * tk * tn * Fraction(p.b_b))
        last = p.out_dram * tb * tm * tn * Fraction(p.out_b)
        # Each tile's load is issued a tile ahead: no tile is shorter than the DRAM latency.
        loads = bool(p.a_dram or p.b_dram)
        lat = Fraction(p.lat) if loads else Fraction(0)
        cycles = max(array, (rd + wr) / bpc, len(rows) * lat) + first / bpc + last / bpc + lat
    return float(cycles), float(rd), float(wr)


def search(p: Problem, cand_b: list[int], cand_m: list[int], cand_n: list[int],
           cand_k: list[int]) -> list[float]:
    """[tb, tm, tn, tk, order, estimate] of the chosen candidate; [-1]*6 if none fits.

    Every candidate is scored; among those within 2 % of the lowest estimate the one with
    the fewest tiles wins (then the lower estimate, then the first in (tb, tm, tn, tk,
    order) order).
    """
    scored = []
    for tb in cand_b:
        for tm in cand_m:
            for tn in cand_n:
                for tk in cand_k:
                    for order in (0, 1):
                        est, _rd, _wr = estimate(p, tb, tm, tn, tk, order)
                        if est >= 0:
                            tiles = (_ceil_div(p.g, tb) * _ceil_div(p.m, tm)
                                     * _ceil_div(p.n, tn) * _ceil_div(p.k, tk))
                            scored.append((tiles, est, len(scored), [float(tb), float(tm),
                                                                     float(tn), float(tk),
                                                                     float(order), est]))
    if not scored:
        return [-1.0] * 6
    lowest = min(est for _t, est, _i, _c in scored)
    near = [x for x in scored if x[1] <= lowest * 1.02]
    return min(near, key=lambda x: (x[0], x[1], x[2]))[3]
