"""Systolic-array timing per dataflow, in the SCALE-Sim convention (ideal memory).

A GEMM (M x K) @ (K x N) on an R x C array maps, per dataflow, two of its dimensions onto
the array and streams the third (see SCALE-Sim's
``compute.py``; Samajdar et al., "A Systematic Methodology for Characterizing Scalability of
DNN Accelerators using SCALE-Sim", ISPASS 2020):

    dataflow  rows  cols  streamed   folds                       cycles per fold
    ws        K     N     M          ceil(K/R) * ceil(N/C)       2R + C + M - 2
    os        M     N     K          ceil(M/R) * ceil(N/C)       R + C + K - 2
    is        K     M     N          ceil(K/R) * ceil(M/C)       2R + C + N - 2

Folds never overlap and each pays its own fill and drain. WS and IS pay R cycles to load the
stationary operand, R + C - 2 to skew data through and the stream length; OS pays the skew
and the reduction length. With ``count`` arrays the folds are dealt out round-robin, and a
PE that completes ``rate`` MACs per cycle (int4 = 2, fp16 = 0.5 …) divides the time.

``overlap = 1`` models an array that double-buffers its stationary operand (TPU v1's
weight double buffering, Jouppi et al. ISCA 2017 §2): the next fold's block shifts in while
the current fold streams, and consecutive folds stream back to back. A run of F folds on
one array then takes R + T + (F - 1) * max(T, R) + (R + C - 2) cycles for WS and IS — the
same as SCALE-Sim for one fold, and R cycles per fold (the time to shift a block in) when
the stream is short, as in matrix-vector products. OS is unchanged.
SCALE-Sim reports the 0-based index of the last cycle, one less than the count here; the
compiler applies that once per layer.

SRAM traffic of one GEMM, in elements (SCALE-Sim's read/write counts, generalised):

    ws  A: M*K*ceil(N/C)   B: K*N              out writes: M*N*ceil(K/R)
    os  A: M*K*ceil(N/C)   B: K*N*ceil(M/R)    out writes: M*N
    is  A: M*K             B: K*N*ceil(M/C)    out writes: M*N*ceil(K/R)

Every output write but an output's first is a read-modify-write: the fold adds its partial
sum to the one an earlier fold left. Partial-sum reads are therefore the output writes less
M*N (ws and is: M*N*(ceil(K/R) - 1); os: none, it accumulates in the PEs) — or all of the
output writes when the GEMM continues a reduction begun by an earlier one (a K tile after
the first: its first fold reads what the previous K tile wrote).
"""

from __future__ import annotations

import math

from npusim.kernels._jit import njit

__all__ = ["DATAFLOWS", "gemm_cycles", "gemm_folds", "gemm_psum_reads", "gemm_sram_elements"]

DATAFLOWS = {"ws": 0, "os": 1, "is": 2}


@njit
def gemm_folds(m: int, n: int, k: int, rows: int, cols: int, dataflow: int) -> tuple[int, int]:
    """(folds, cycles per fold) of one GEMM on one array."""
    if dataflow == 0:
        sr, sc, t, fill = k, n, m, 2 * rows
    elif dataflow == 1:
        sr, sc, t, fill = m, n, k, rows
    else:
        sr, sc, t, fill = k, m, n, 2 * rows
    folds = ((sr + rows - 1) // rows) * ((sc + cols - 1) // cols)
    return folds, fill + cols + t - 2


@njit
def gemm_cycles(m: int, n: int, k: int, rows: int, cols: int, count: int, dataflow: int,
                rate: float, overlap: int) -> int:
    """Cycles for one GEMM on ``count`` arrays at ``rate`` MACs per PE per cycle."""
    folds, per = gemm_folds(m, n, k, rows, cols, dataflow)
    rounds = (folds + count - 1) // count
    if overlap and dataflow != 1 and rounds > 1:
        t = per - 2 * rows - cols + 2  # the stream length
        total = rows + t + (rounds - 1) * max(t, rows) + rows + cols - 2
        return math.ceil(total / rate)
    return math.ceil(rounds * per / rate)


@njit
def gemm_sram_elements(m: int, n: int, k: int, rows: int, cols: int,
                       dataflow: int) -> tuple[int, int, int]:
    """(A reads, B reads, output writes) in elements for one GEMM."""
    kf = (k + rows - 1) // rows
    nf = (n + cols - 1) // cols
    if dataflow == 0:
        return m * k * nf, k * n, m * n * kf
    if dataflow == 1:
        mf = (m + rows - 1) // rows
        return m * k * nf, k * n * mf, m * n
    mf = (m + cols - 1) // cols
    return m * k, k * n * mf, m * n * kf


@njit
def gemm_psum_reads(m: int, n: int, k: int, rows: int, cols: int, dataflow: int,
                    continues: int) -> int:
    """Partial-sum reads in elements for one GEMM: its output writes that add to a sum
    already in memory (all of them when it ``continues`` an earlier GEMM's reduction)."""
    _a, _b, writes = gemm_sram_elements(m, n, k, rows, cols, dataflow)
    return writes if continues else writes - m * n
