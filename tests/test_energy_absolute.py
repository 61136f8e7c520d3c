"""Absolute energies, each derived here from the inputs: a hand-built chip, one GEMM whose
MAC, SRAM and DRAM byte counts are counted by hand, and the public figures the DRAM catalog
cites (IDD currents, interface energies), never from npusim's own energy functions.

Which wrong formula each test catches is said beside it: energies in nJ instead of pJ,
DRAM pJ/bit applied per byte (x 1e-12 instead of x 8e-12), SRAM energy taken from the whole
scratchpad instead of one bank, leakage multiplied by the core count, per-bank refresh
energy not divided by the banks.
"""

from __future__ import annotations

import pytest

import npusim
from npusim.engine.dram import CycleDram
from npusim.kernels import dram as K
from npusim.llm import run_llm
from npusim.spec.arch import loads_arch
from npusim.spec.dram_catalog import get_standard
from npusim.spec.workload import loads_workload

pJ = 1e-12

# --- The chip: one 32x32 weight-stationary array at 1 GHz, 128 KiB of SRAM in 4 banks,
# 8 HBM2 channels, 2 W of leakage (a chip figure: it does not scale with the core count).
CHIP = """
name: energy test chip
sources: ["hand-built for tests/test_energy_absolute.py"]
process_nm: 45
clock: 1 GHz
cores:
  count: {cores}
  core:
    systolic: {{rows: 32, cols: 32, dataflow: ws, macs_per_cycle: {{int8: 1}}}}
    sram: {{size: 128 KiB, banks: 4}}
dram: {{standard: HBM2-2000, channels: 8{dram_extra}}}
energy: {{leakage: 2 W{energy_extra}}}
"""
LEAKAGE_W = 2.0
# --- The workload: one int8 GEMM, A (64 x 32 activations) x B (32 x 32 weights).
WORKLOAD = """
name: one gemm
layers:
- {op: matmul, name: g, m: 64, n: 32, k: 32, b_kind: weight}
"""
M, N, K_ = 64, 32, 32
MACS = M * N * K_  # 65,536
# Hand count. Nothing is on chip before the one layer and nothing after it: A and B come
# from DRAM, the output (int8) goes back. K = 32 and N = 32 fit the array in one fold each,
# so the array reads A and B once from SRAM and writes each output once as a 4-byte
# partial sum; the DMA writes what it loads into SRAM and reads what it stores from it.
A_BYTES, B_BYTES, OUT_BYTES = M * K_, K_ * N, M * N  # 2048, 1024, 2048
DRAM_READ = A_BYTES + B_BYTES  # 3072
DRAM_WRITE = OUT_BYTES  # 2048
SRAM_READ = A_BYTES + B_BYTES + OUT_BYTES  # operands into the array + DMA drain = 5120
SRAM_WRITE = M * N * 4 + A_BYTES + B_BYTES  # partial sums + DMA fill = 11,264

# --- HBM2-2000 from its sources (DRAMsim3 HBM2_8Gb_x128.ini; O'Connor et al. MICRO 2017).
VDD = 1.2
IDD0, IDD2N, IDD3N, IDD4R, IDD4W, IDD5 = 65e-3, 40e-3, 55e-3, 390e-3, 500e-3, 250e-3
TCK = 1e-9
T_RC, T_RAS, T_RFC, T_REFI = 48 * TCK, 34 * TCK, 260 * TCK, 3900 * TCK
BURST_BITS = 128 * 4  # a BL4 burst on the 128-bit channel, 2 clocks on the bus
ROW_BITS = 1024 * 8
CHANNEL_BITS_PER_S = 128 * 2000e6
E_ACT = VDD * (IDD0 * T_RC - IDD3N * T_RAS - IDD2N * (T_RC - T_RAS))  # 0.828 nJ
E_RD_BIT = VDD * (IDD4R - IDD3N) * 2 * TCK / BURST_BITS  # 1.570 pJ/bit
E_WR_BIT = VDD * (IDD4W - IDD3N) * 2 * TCK / BURST_BITS  # 2.086 pJ/bit
E_REF = VDD * (IDD5 - IDD3N) * T_RFC  # 60.84 nJ, one all-bank refresh
P_BG = VDD * IDD3N  # 66 mW per channel
IO_BIT = 0.22 * pJ  # HBM2's I/O share of 3.97 pJ/bit (O'Connor et al.)
# NPU-side controller + PHY: a 4-nm HBM3 interface, 0.29 pJ/bit (IEEE JSSC 59(1), 2024).
PHY_HBM = 0.29
PHY_BIT = PHY_HBM * pJ
# Headline: a bit of a read stream at peak rate: column + a row's ACT over its bits +
# refresh and background power over the peak bit rate + interface + controller/PHY.
HBM2_BIT = (E_RD_BIT + E_ACT / ROW_BITS + (E_REF / T_REFI + P_BG) / CHANNEL_BITS_PER_S
            + IO_BIT + PHY_BIT)  # 2.50 pJ/bit
# The catalog stores the derived command energies to four or five figures.
CATALOG_REL = 1e-4


def _chip(cores: int = 1, dram_extra: str = "", energy_extra: str = "") -> npusim.Chip:
    return loads_arch(CHIP.format(cores=cores, dram_extra=dram_extra, energy_extra=energy_extra))


@pytest.fixture(scope="module")
def gemm():
    return loads_workload(WORKLOAD)


def _layer(res: npusim.Result) -> dict:
    assert len(res.layers) == 1
    return res.layers.iloc[0].to_dict()


def test_hand_counts_hold(gemm) -> None:
    """The byte counts the energy tests rest on (one tile, nothing duplicated)."""
    row = _layer(npusim.simulate(_chip(), gemm))
    assert row["macs"] == MACS
    assert (row["dram_read_bytes"], row["dram_write_bytes"]) == (DRAM_READ, DRAM_WRITE)
    assert (row["sram_read_bytes"], row["sram_write_bytes"]) == (SRAM_READ, SRAM_WRITE)


def test_energy_table_values(gemm) -> None:
    """MACs x pJ/MAC and SRAM bytes x pJ/B from the chip's own table; DRAM bits x the
    catalog's pJ/bit; leakage x time; and their sum. nJ-for-pJ anywhere, or DRAM energy per
    byte instead of per bit, moves a term by 1000x or 8x."""
    chip = _chip(energy_extra=", mac: {int8: 0.5 pJ}, sram_read_per_byte: 1.5 pJ, "
                              "sram_write_per_byte: 2 pJ, wire_pj_per_bit_mm: 0")
    s = npusim.simulate(chip, gemm).summary()
    mac = MACS * 0.5 * pJ
    sram = SRAM_READ * 1.5 * pJ + SRAM_WRITE * 2.0 * pJ
    dram = (DRAM_READ + DRAM_WRITE) * 8 * HBM2_BIT
    static = LEAKAGE_W * s["latency_s"]
    assert s["energy_mac_j"] == pytest.approx(mac, rel=1e-12)
    assert s["energy_sram_j"] == pytest.approx(sram, rel=1e-12)
    assert s["energy_dram_j"] == pytest.approx(dram, rel=CATALOG_REL)
    assert s["energy_static_j"] == pytest.approx(static, rel=1e-12)
    assert s["energy_vector_j"] == 0.0
    assert s["energy_j"] == pytest.approx(mac + sram + dram + static, rel=CATALOG_REL)


def test_default_energies_follow_horowitz_per_bank(gemm) -> None:
    """No energy table: Horowitz 45 nm (process_nm 45, so unscaled): an int8 MAC 0.2 + 0.03
    pJ; a 64-bit read of a 32 KiB SRAM 20 pJ, i.e. 2.5 pJ/B — the bank is 128 KiB / 4 banks.
    The whole 128 KiB would interpolate towards 1 MB's 100 pJ and fail this."""
    s = npusim.simulate(_chip(), gemm).summary()
    assert s["energy_mac_j"] == pytest.approx(MACS * 0.23 * pJ, rel=1e-12)
    assert s["energy_sram_j"] == pytest.approx((SRAM_READ + SRAM_WRITE) * 20 / 8 * pJ, rel=1e-9)


def test_leakage_is_a_chip_figure(gemm) -> None:
    """Two cores: static energy is still leakage x latency, not x cores."""
    s = npusim.simulate(_chip(cores=2), gemm).summary()
    assert s["energy_static_j"] == pytest.approx(LEAKAGE_W * s["latency_s"], rel=1e-12)
    assert s["energy_mac_j"] == pytest.approx(MACS * 0.23 * pJ, rel=1e-12)


def test_roofline_fidelity_uses_bits_x_headline(gemm) -> None:
    s = npusim.simulate(_chip(), gemm, fidelity="roofline").summary()
    assert s["dram_read_bytes"] + s["dram_write_bytes"] == DRAM_READ + DRAM_WRITE
    assert s["energy_dram_j"] == pytest.approx((DRAM_READ + DRAM_WRITE) * 8 * HBM2_BIT,
                                               rel=CATALOG_REL)
    # One compute-bound tile: MACs / (32 x 32 PEs) cycles at 1 GHz.
    assert s["latency_s"] == pytest.approx(MACS / (32 * 32) * 1e-9)
    assert s["energy_static_j"] == pytest.approx(LEAKAGE_W * MACS / (32 * 32) * 1e-9)


def test_chip_pj_per_bit_overrides_the_headline(gemm) -> None:
    s = npusim.simulate(_chip(dram_extra=", pj_per_bit: 5.0"), gemm).summary()
    assert s["energy_dram_j"] == pytest.approx((DRAM_READ + DRAM_WRITE) * 8 * 5.0 * pJ,
                                               rel=1e-12)


def test_cycle_model_counts_commands_times_their_energies(gemm) -> None:
    """Reads and writes: bits x column; every bit read or written also crosses the interface
    and the controller/PHY; activates: ACT count x E_act; background: channels x standby
    power x the run's time. A unit slip (nJ as pJ) moves a part by 1000x."""
    res = npusim.simulate(_chip(), gemm, memory="cycle")
    row = _layer(res)
    assert row["dram_reads"] == DRAM_READ / 64  # 64-byte bursts
    assert row["dram_energy_read_j"] == pytest.approx(DRAM_READ * 8 * E_RD_BIT,
                                                      rel=CATALOG_REL)
    assert row["dram_energy_write_j"] == pytest.approx(DRAM_WRITE * 8 * E_WR_BIT,
                                                       rel=CATALOG_REL)
    moved_bits = (DRAM_READ + DRAM_WRITE) * 8
    assert row["dram_energy_interface_j"] == pytest.approx(moved_bits * IO_BIT, rel=1e-9)
    assert row["dram_energy_phy_j"] == pytest.approx(moved_bits * PHY_BIT, rel=1e-9)
    # Every row miss opens a row: one ACT+PRE each (a run far shorter than tREFI).
    assert row["dram_row_misses"] >= 1
    assert row["dram_energy_activate_j"] == pytest.approx(row["dram_row_misses"] * E_ACT,
                                                          rel=CATALOG_REL)
    assert row["dram_energy_refresh_j"] == 0.0
    # Background runs for the whole layer on every channel (closed at a DRAM clock): active
    # standby (VDD x IDD3N) while a bank is open, precharged standby (VDD x IDD2N)
    # otherwise, so it lies between the two powers x the time.
    bg = row["dram_energy_background_j"]
    p_pre = VDD * IDD2N  # 48 mW per channel
    assert 8 * p_pre * row["latency_s"] <= bg <= 8 * P_BG * (row["latency_s"] + TCK) * 1.0001
    core = sum(row[f"dram_energy_{p}_j"] for p in
               ("activate", "read", "write", "refresh", "background"))
    assert row["energy_dram_j"] == pytest.approx(
        core + row["dram_energy_interface_j"] + row["dram_energy_phy_j"], rel=1e-12)


def test_per_bank_refresh_costs_an_all_bank_refresh_over_the_banks() -> None:
    std = get_standard("HBM2-2000")
    banks = 4 * 4  # bank groups x banks per group (DRAMsim3 HBM2)
    mem = CycleDram(std, 1, refresh="per-bank")
    end = mem.transfer(0.0, 256 * 1024, 0, False, 0)  # 8 us at 32 GB/s: two tREFI
    mem.finish(end)
    n = mem.system.counts()
    assert n[K.N_REFPB] >= banks  # a refresh interval's worth at least
    assert n[K.N_REF] == 0
    e = mem.counters()
    assert e["energy_refresh_j"] == pytest.approx(n[K.N_REFPB] * E_REF / banks,
                                                  rel=CATALOG_REL)


# --- Standards differ where their sources differ (item: DRAM energy per standard). -------

def _stream_bit(col_pj: float, act_nj: float, row_bytes: int, ref_nj: float, refi_s: float,
                bg_mw: float, channel_bits_per_s: float, io_pj: float, phy_pj: float) -> float:
    """pJ of one bit of a read stream at peak rate: core from command energies, interface,
    controller/PHY."""
    return (col_pj + act_nj * 1e3 / (row_bytes * 8)
            + (ref_nj * 1e-9 / refi_s + bg_mw * 1e-3) / channel_bits_per_s * 1e12 + io_pj
            + phy_pj)


# I/O anchors: LPDDR3 3.7 pJ/bit per pin at VDDQ 1.2 V (ISSCC 2012); HBM2 0.22 pJ/bit at
# 1.2 V (O'Connor et al. 2017); GDDR5 = AMD's 1 / (10.66 GB/s/W) less HBM1's 1 / (35 GB/s/W)
# plus HBM's own 0.22, at 1.5 V. Each scaled linearly to the standard's VDDQ.
IO_LPDDR5 = 3.7 * 0.5 / 1.2
IO_HBM3 = 0.22 * 0.4 / 1.2
IO_GDDR6 = (1e12 / (10.66e9 * 8) - 1e12 / (35e9 * 8) + 0.22) * 1.35 / 1.5
# Controller + PHY: HBM 0.29 (4-nm HBM3 interface, JSSC 2024); LPDDR (and, assumed, GDDR)
# 1.83, the burst read of a 65-nm LPDDR4-4266 controller interface (Kim et al., TCAS-II 2018).
PHY_LP = 1.83
# Command energies: LPDDR5X and HBM3 are the catalog's stated assumptions (no public IDD
# preset); GDDR6 is DRAMsim3 GDDR6_8Gb_x16-derived. Refresh intervals 3.9 us (LPDDR5X:
# 4166 clocks of 8 / 8533 MT/s, HBM3: 6240 x 0.625 ns), GDDR6 1.9 us (3800 x 0.5 ns).
LPDDR5X = _stream_bit(2.2, 1.1, 2048, 40.0, 4166 * 8 / 8533e6, 30.0, 8533e6 * 16, IO_LPDDR5,
                      PHY_LP)
LPDDR5 = _stream_bit(2.5, 1.2, 2048, 40.0, 3124 * 1.25e-9, 30.0, 6400e6 * 16, IO_LPDDR5,
                     PHY_LP)
HBM3 = _stream_bit(1.3, 0.5, 1024, 30.0, 6240 * 0.625e-9, 33.0, 6400e6 * 32, IO_HBM3, PHY_HBM)
GDDR6 = _stream_bit(5.2, 0.7, 2048, 120.0, 3800 * 0.5e-9, 270.0, 16000e6 * 16, IO_GDDR6,
                    PHY_LP)


def test_standards_differ_as_their_sources_say() -> None:
    for name, want, io in (("LPDDR5X", LPDDR5X, IO_LPDDR5), ("HBM3", HBM3, IO_HBM3),
                           ("GDDR6", GDDR6, IO_GDDR6), ("LPDDR5", LPDDR5, IO_LPDDR5)):
        s = get_standard(name)
        assert s.pj_per_bit == pytest.approx(want, rel=1e-6), name  # tCK kept to 1e-6 ns
        assert s.e.io_pj_per_bit == pytest.approx(io, rel=1e-9), name
        assert s.pj_per_bit == pytest.approx(
            s.core_pj_per_bit + s.e.io_pj_per_bit + s.e.phy_pj_per_bit, rel=1e-12)
    # What these give: LPDDR5X 5.93 vs HBM3 1.92 pJ/bit (3.1x; interface 1.54 vs 0.07,
    # controller/PHY 1.83 vs 0.29); GDDR6's interface alone (7.54) is 4.9x LPDDR5's (1.54).
    lp5x, hbm3 = get_standard("LPDDR5X"), get_standard("HBM3")
    gddr6, lp5 = get_standard("GDDR6"), get_standard("LPDDR5")
    assert 3.0 < lp5x.pj_per_bit / hbm3.pj_per_bit < 3.2
    assert gddr6.e.io_pj_per_bit > 4 * lp5.e.io_pj_per_bit
    assert gddr6.pj_per_bit > 2.5 * lp5.pj_per_bit  # 15.9 vs 6.3 pJ/bit


def test_lpddr_vs_hbm_llm_dram_energy_is_the_ratio_of_their_bits() -> None:
    """The twins move the same bytes for a LLaMA-2-7B int4 decode step; their DRAM energies
    differ by exactly LPDDR5X's pJ/bit over HBM3's (bandwidth model: bits x headline)."""
    dec = {}
    for chip in ("lpddr_llm", "hbm_llm"):
        r = run_llm(chip, "workloads/hf/llama2_7b.json", prompt=64, gen=2, weights="int4",
                    kv="int8", decode_points=1)
        dec[chip] = r.decode.summary()
    lp, hb = dec["lpddr_llm"], dec["hbm_llm"]
    moved = lp["dram_read_bytes"] + lp["dram_write_bytes"]
    assert moved == hb["dram_read_bytes"] + hb["dram_write_bytes"]
    assert moved > 3.3e9  # 6.7 G parameters at 4 bits, streamed once per step
    assert lp["energy_dram_j"] == pytest.approx(moved * 8 * LPDDR5X * pJ, rel=1e-6)
    assert hb["energy_dram_j"] == pytest.approx(moved * 8 * HBM3 * pJ, rel=1e-6)
    assert lp["energy_dram_j"] / hb["energy_dram_j"] == pytest.approx(LPDDR5X / HBM3,
                                                                      rel=1e-6)
