"""Matrix-vector engine timing: a dot-product / adder-tree unit for GEMV and skinny GEMMs.

The engine has L lanes; each lane is a W-wide dot product whose adder tree feeds its own
accumulator, and the engine holds Q activation rows at once, so one weight streamed from
SRAM serves up to Q rows (Q x L x W multipliers in all). A GEMM (M x K) @ (K x N) maps N
onto the lanes, reduces K W elements per beat, and takes M in groups of Q rows:

    folds             ceil(M / Q) * ceil(N / L)
    beats per fold    ceil(K / W)
    cycles            ceil(folds * beats / rate) + D

``rate`` is the MACs one multiplier completes per cycle at the compute precision (int4 2,
fp16 0.5 …), as for the systolic array; D is the pipeline depth (multipliers and adder
tree), paid once because folds stream back to back. Nothing is preloaded: unlike a
systolic array's stationary block, which enters at the array's edge rate (R weights per
cycle), weights stream in at L x W x rate per cycle, as fast as the SRAM port feeds them.

SRAM traffic of one GEMM, in elements:

    A (activations)   M*K*ceil(N/L)   each fold reads its rows' K elements, broadcast to
                                      every lane
    B (weights)       K*N*ceil(M/Q)   each weight once per row group
    out writes        M*N             each output reduced in its lane's accumulator

With the engine's read port P bytes per cycle the engine takes max(cycles, read bytes / P)
(and likewise for the write port): a port too narrow for the engine's rate stalls it.
"""

from __future__ import annotations

import math

from npusim.kernels._jit import njit

__all__ = ["MATVEC", "matvec_cycles", "matvec_sram_elements", "matvec_time"]

#: the dataflow code the tiling kernels take for the matrix-vector engine (systolic: 0-2)
MATVEC = 3


@njit
def matvec_cycles(m: int, n: int, k: int, lanes: int, width: int, rows: int, rate: float,
                  depth: int) -> int:
    """Cycles for one GEMM on the engine at ``rate`` MACs per multiplier per cycle."""
    folds = ((m + rows - 1) // rows) * ((n + lanes - 1) // lanes)
    beats = (k + width - 1) // width
    return math.ceil(folds * beats / rate) + depth


@njit
def matvec_sram_elements(m: int, n: int, k: int, lanes: int,
                         rows: int) -> tuple[int, int, int]:
    """(A reads, B reads, output writes) in elements for one GEMM."""
    return m * k * ((n + lanes - 1) // lanes), k * n * ((m + rows - 1) // rows), m * n


@njit
def matvec_time(m: int, n: int, k: int, lanes: int, width: int, rows: int, rate: float,
                depth: int, a_b: float, b_b: float, out_b: float, rbw: float,
                wbw: float) -> tuple[float, float, float, float]:
    """(engine cycles incl. SRAM-port stalls, pure compute cycles, SRAM read B, SRAM write B);
    a port of 0 bytes per cycle is unlimited."""
    comp = matvec_cycles(m, n, k, lanes, width, rows, rate, depth)
    ea, eb, eo = matvec_sram_elements(m, n, k, lanes, rows)
    rd = ea * a_b + eb * b_b
    wr = eo * out_b
    t = float(comp)
    if rbw > 0.0 and rd / rbw > t:
        t = rd / rbw
    if wbw > 0.0 and wr / wbw > t:
        t = wr / wbw
    return t, float(comp), rd, wr
