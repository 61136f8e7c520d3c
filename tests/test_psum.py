"""Partial-sum read-modify-write, counted by hand on small cases.

A weight- or input-stationary fold adds its partial sums to the ones an earlier fold along
K left: every fold after an output's first reads them back, and so does the first fold of
a K tile after the first. Output-stationary keeps its sums in the PEs. Each expected value
below is counted from the fold grid in the test, and each test names the wrong formula it
catches.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import npusim
from npusim.kernels import systolic, tiling
from npusim.spec.arch import Chip
from npusim.workloads.ir import Matmul, Workload

ROOT = Path(__file__).resolve().parent.parent
WS, OS, IS = 0, 1, 2


def test_psum_reads_by_hand():
    # M=3, N=5, K=10 on a 4x4 array. WS: K on the rows in ceil(10/4) = 3 folds per column
    # block; each of the 3 x 5 outputs is written 3 times and read back twice.
    assert systolic.gemm_sram_elements(3, 5, 10, 4, 4, WS)[2] == 3 * 5 * 3
    # Catches "reads never counted" (0) and "the first fold reads too" (45).
    assert systolic.gemm_psum_reads(3, 5, 10, 4, 4, WS, 0) == 3 * 5 * 2
    # IS: K on the rows as well: the same 3 folds per output.
    assert systolic.gemm_psum_reads(3, 5, 10, 4, 4, IS, 0) == 3 * 5 * 2
    # OS: the PEs hold the sums over all of K. Catches "counted for OS".
    assert systolic.gemm_psum_reads(3, 5, 10, 4, 4, OS, 0) == 0
    # A GEMM that continues a reduction (a later K tile) reads every output it writes,
    # including on its first fold; OS then reads each output once to resume its sum.
    assert systolic.gemm_psum_reads(3, 5, 10, 4, 4, WS, 1) == 3 * 5 * 3
    assert systolic.gemm_psum_reads(3, 5, 10, 4, 4, OS, 1) == 3 * 5
    # K within one fold: nothing to read back.
    assert systolic.gemm_psum_reads(3, 5, 4, 4, 4, WS, 0) == 0


def _emit(m, n, k, tk, *, df=WS, acc_capacity=0.0, rbw=0.0, wbw=0.0, arbw=0.0, awbw=0.0,
          rows=4, cols=4):
    """One core's tiles of an (M x K) @ (K x N) int8 GEMM, operands on chip (no DMA), 4-byte
    partial sums, one K cut at ``tk``."""
    return tiling.emit(1, m, n, k, 1, m, n, tk, 0, rows, cols, 1, df, 1.0, 0,
                       1.0, 1.0, 1.0, 4.0, 0, 0, 0, 0, 1.0, 1e300, acc_capacity,
                       rbw, wbw, arbw, awbw, 0, 0, 0)


def test_k_tiles_read_the_previous_tiles_sums():
    # M=3, N=4 (one column block), K=12 on 4x4, cut at tk=8: tile 0 has 2 folds (reads
    # M*N once), tile 1 has 1 fold and continues (reads M*N): 2 * M*N reads in all, the
    # same as ceil(12/4) - 1 without the cut. Catches "the first fold of a K tile reads
    # nothing" (M*N*1) and "reads counted per fold" (M*N*3).
    m, n, k = 3, 4, 12
    t = _emit(m, n, k, 8)
    operands = m * k * 1 + k * n * 1  # A streamed once (N fits the columns), B once
    psum_reads = m * n * 2 * 4
    assert t[:, 5].sum() == operands + psum_reads
    assert t[:, 6].sum() == m * n * 3 * 4  # one write per fold
    assert t[:, 9].sum() == 0 and t[:, 10].sum() == 0  # no accumulator SRAM


def test_accumulator_sram_takes_the_partial_sums():
    m, n, k = 3, 4, 12
    t = _emit(m, n, k, 8, acc_capacity=1e6)
    assert t[:, 5].sum() == m * k + k * n  # the scratchpad reads operands only
    assert t[:, 6].sum() == 0
    assert t[:, 9].sum() == m * n * 2 * 4
    assert t[:, 10].sum() == m * n * 3 * 4


def test_output_stationary_reads_only_across_k_tiles():
    # OS on 4x4, M=4, N=4, K=12 cut at tk=8: each tile writes M*N once; the second reads
    # them back once.
    t = _emit(4, 4, 12, 8, df=OS)
    a, b = 4 * 12, 12 * 4  # one fold: A and B read once
    assert t[:, 5].sum() == a + b + 4 * 4 * 4
    t1 = _emit(4, 4, 12, 12, df=OS)
    assert t1[:, 5].sum() == a + b  # one K tile: no partial-sum traffic read


def test_read_port_stalls_on_partial_sums():
    # WS, M=64, N=4, K=8 on 4x4, serial preload: 2 folds of 2*4 + 4 + 64 - 2 = 74 cycles.
    m, n, k = 64, 4, 8
    comp = 2 * (2 * 4 + 4 + m - 2)
    operands = m * k + k * n  # 544 B
    psums = m * n * 1 * 4  # the second fold reads 256 sums of 4 B
    t = _emit(m, n, k, k, rbw=8.0)
    assert t[0, 1] == comp
    # operands alone (68 cycles at 8 B/cycle) would not stall; with the sums they do.
    assert operands / 8 < comp < (operands + psums) / 8
    assert t[0, 0] == (operands + psums) / 8
    # With an accumulator SRAM its own read port carries them (256 cycles at 4 B/cycle).
    t = _emit(m, n, k, k, acc_capacity=1e6, rbw=8.0, arbw=4.0)
    assert t[0, 0] == psums / 4
    t = _emit(m, n, k, k, acc_capacity=1e6, rbw=8.0, awbw=4.0)
    assert t[0, 0] == 2 * m * n * 4 / 4  # two folds' writes through a 4 B/cycle port


def _tpu_v1(**core_changes) -> Chip:
    data = npusim.load_arch(ROOT / "arch" / "tpu_v1.yaml").model_dump()
    data["cores"]["core"].update(core_changes)
    return Chip.model_validate(data)


def _horowitz_pj_per_byte(bank_bytes: float) -> float:
    """Horowitz ISSCC 2014 (45 nm) 64-bit reads: 32 KB 20 pJ, 1 MB 100 pJ; log-log between."""
    t = math.log(bank_bytes / 32768) / math.log(1048576 / 32768)
    return 20 / 8 * (100 / 20) ** t


@pytest.mark.parametrize("with_acc", [True, False])
def test_matmul_partial_sums_and_energy_on_tpu_v1(with_acc):
    # One 256 x 256 x 1024 int8 matmul, ideal memory (one tile): WS on 256x256, 4 folds
    # along K; 256 x 256 sums written 4 times, read back 3 times, 4 B each.
    chip = _tpu_v1() if with_acc else _tpu_v1(accumulator=None)
    wl = Workload("mm", (Matmul("mm", m=256, n=256, k=1024),))
    row = npusim.simulate(chip, wl, memory="ideal").layers.iloc[0]
    writes, reads = 256 * 256 * 4 * 4, 256 * 256 * 3 * 4
    operands = 256 * 1024 + 1024 * 256  # A once (N fits the columns), B once
    # Besides the array, the DMA writes both operands into the scratchpad (fill) and reads
    # the 256 x 256 int8 output out of it (drain).
    fill, drain = operands, 256 * 256
    nm = 28 / 45  # the preset's node scales the 45 nm energies
    e_sram = _horowitz_pj_per_byte(24 * 2**20 / 32) * nm * 1e-12  # 768 KiB banks
    if with_acc:
        assert row["acc_read_bytes"] == reads and row["acc_write_bytes"] == writes
        assert row["sram_read_bytes"] == operands + drain
        assert row["sram_write_bytes"] == fill
        # 4 MiB in 16 banks of 256 KiB: 2.5 pJ x 5^0.6 at 45 nm, about 40 % less per byte.
        e_acc = _horowitz_pj_per_byte(4 * 2**20 / 16) * nm * 1e-12
        assert e_acc == pytest.approx(2.5e-12 * 5 ** 0.6 * nm)
        want = (operands + drain + fill) * e_sram + (reads + writes) * e_acc
    else:
        assert row["acc_read_bytes"] == 0 and row["acc_write_bytes"] == 0
        assert row["sram_read_bytes"] == operands + drain + reads
        assert row["sram_write_bytes"] == fill + writes
        want = (operands + drain + reads + fill + writes) * e_sram
    assert row["energy_sram_j"] == pytest.approx(want, rel=1e-9)
