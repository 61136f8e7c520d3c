"""The energy split at the system level: DRAM per bit as device core + interface + the
NPU-side controller/PHY, each from its public source; on-chip wire energy over the area
model's floorplan; the whole split of an LLM decode step adding up to its total; and the
physical floors no figure may fall below.

Every expected value is restated here from the sources the catalog cites, never read back
from the function under test. Which wrong formula each test catches is said beside it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npusim
from npusim.area import chip_area_mm2
from npusim.errors import SpecError
from npusim.spec.arch import loads_arch
from npusim.spec.dram_catalog import get_standard
from npusim.workloads import from_hf_config
from npusim.workloads.ir import Matmul, Workload

ROOT = Path(__file__).resolve().parent.parent
pJ = 1e-12


def _stream_core(col_pj: float, act_nj: float, row_bytes: int, ref_nj: float, refi_s: float,
                 bg_mw: float, channel_bits_per_s: float) -> float:
    """Device-core pJ of one bit of a read stream at peak rate: the column energy, one
    ACT+PRE per row read whole, refresh and background power over the peak bit rate."""
    return (col_pj + act_nj * 1e3 / (row_bytes * 8)
            + (ref_nj * 1e-9 / refi_s + bg_mw * 1e-3) / channel_bits_per_s * 1e12)


# LPDDR5X-8533: command energies are the catalog's stated assumptions (ACT+PRE 1.1 nJ,
# column read 2.2 pJ/bit, refresh 40 nJ every 4166 clocks of 8 / 8533 MT/s, background
# 30 mW per x16 channel); interface LPDDR3's 3.7 pJ/bit per pin at VDDQ 1.2 V (ISSCC 2012)
# scaled to LPDDR5X's 0.5 V; controller + PHY 1.83 pJ/bit, the burst read of a 65-nm
# LPDDR4-4266 controller interface (Kim et al., IEEE TCAS-II 65(12), 2018).
LP5X_CORE = _stream_core(2.2, 1.1, 2048, 40.0, 4166 * 8 / 8533e6, 30.0, 8533e6 * 16)
LP5X_INTERFACE = 3.7 * 0.5 / 1.2
LP5X_PHY = 1.83
# HBM3-6400: command energies HBM2's scaled (ACT+PRE 0.5 nJ, column 1.3 pJ/bit, refresh
# 30 nJ every 6240 x 0.625 ns, background 33 mW per 32-bit pseudo-channel); interface HBM2's
# 0.22 pJ/bit (O'Connor et al., MICRO 2017) scaled from VDDQ 1.2 V to 0.4 V; controller +
# PHY 0.29 pJ/bit, a 4-nm HBM3 interface at 9 Gb/s/pin (IEEE JSSC 59(1), 2024).
HBM3_CORE = _stream_core(1.3, 0.5, 1024, 30.0, 6240 * 0.625e-9, 33.0, 6400e6 * 32)
HBM3_INTERFACE = 0.22 * 0.4 / 1.2
HBM3_PHY = 0.29

WIRE_PJ_PER_BIT_MM = 0.1  # Dally 2011 / Keckler et al. 2011, the chip table's default


@pytest.mark.parametrize(("name", "core", "interface", "phy"), [
    ("LPDDR5X-8533", LP5X_CORE, LP5X_INTERFACE, LP5X_PHY),
    ("HBM3-6400", HBM3_CORE, HBM3_INTERFACE, HBM3_PHY),
])
def test_headline_is_the_sum_of_its_sourced_parts(name: str, core: float, interface: float,
                                                  phy: float) -> None:
    """Each part equals its source's figure and the headline is their sum: a headline left
    at core + interface (the controller/PHY forgotten) or the PHY counted twice fails."""
    s = get_standard(name)
    assert s.core_pj_per_bit == pytest.approx(core, rel=1e-6)  # tCK kept to 1e-6 ns
    assert s.interface_pj_per_bit == pytest.approx(interface, rel=1e-12)
    assert s.phy_pj_per_bit == pytest.approx(phy, rel=1e-12)
    assert s.pj_per_bit == pytest.approx(core + interface + phy, rel=1e-6)
    assert s.pj_per_bit == pytest.approx(
        s.core_pj_per_bit + s.interface_pj_per_bit + s.phy_pj_per_bit, rel=1e-12)


def test_a_chip_headline_moves_the_interface_share_only() -> None:
    """``dram.pj_per_bit`` keeps the catalog's core and PHY; below core + PHY it takes the
    PHY down, never a part below 0."""
    base = loads_arch(_chip_yaml("HBM3-6400"))
    parts = base.dram.energy_parts_pj_per_bit
    high = loads_arch(_chip_yaml("HBM3-6400", ", pj_per_bit: 4.0")).dram.energy_parts_pj_per_bit
    assert high["core"] == parts["core"] and high["phy"] == parts["phy"] == HBM3_PHY
    assert high["interface"] == pytest.approx(4.0 - HBM3_CORE - HBM3_PHY, rel=1e-6)
    low = loads_arch(_chip_yaml("HBM3-6400", ", pj_per_bit: 1.7")).dram.energy_parts_pj_per_bit
    assert low["interface"] == 0.0 and low["core"] == parts["core"]
    assert low["phy"] == pytest.approx(1.7 - HBM3_CORE, rel=1e-6)
    assert sum(low.values()) == pytest.approx(1.7, rel=1e-12)
    # The cycle model's copy of the standard splits the same headline the same way.
    std = get_standard("HBM3-6400").with_overrides({"pj_per_bit": 1.7})
    assert (std.e.io_pj_per_bit, std.e.phy_pj_per_bit) == (0.0, pytest.approx(low["phy"]))


# --- A hand-built chip for the wire and floor tests -----------------------------------
def _chip_yaml(standard: str, dram_extra: str = "", energy_extra: str = "",
               host: str = "") -> str:
    return f"""
name: split test chip
sources: ["hand-built for tests/test_energy_split.py"]
process_nm: 45
clock: 1 GHz
cores:
  count: 1
  core:
    systolic: {{rows: 32, cols: 32, dataflow: ws, macs_per_cycle: {{int8: 1}}}}
    sram: {{size: 128 KiB, banks: 4}}
dram: {{standard: {standard}, channels: 8{dram_extra}}}
energy: {{leakage: 2 W{energy_extra}}}
{host}
"""


def test_wire_energy_is_bits_x_pj_per_mm_x_the_floorplan() -> None:
    """DRAM bytes travel half the die edge (the die a square of the area model's total);
    scratchpad bytes half the side of the scratchpad macro: 128 KiB of 45-nm 6T cells of
    0.346 um^2 at 70 % array efficiency. A distance in um instead of mm, or bytes taken
    as bits, moves the part by 1000x or 8x."""
    chip = loads_arch(_chip_yaml("HBM2-2000"))
    wl = Workload("one", (Matmul(name="g", m=64, n=32, k=32),))
    row = npusim.simulate(chip, wl).layers.iloc[0]
    die_side = math.sqrt(chip_area_mm2(chip)["total_mm2"])
    macro_mm2 = 128 * 1024 * 8 * 0.346 / 0.70 / 1e6
    dram = row["dram_read_bytes"] + row["dram_write_bytes"]
    sram = row["sram_read_bytes"] + row["sram_write_bytes"]
    want = WIRE_PJ_PER_BIT_MM * pJ * 8 * (dram * die_side / 2
                                          + sram * math.sqrt(macro_mm2) / 2)
    assert row["energy_wire_j"] == pytest.approx(want, rel=1e-9)
    assert row["energy_wire_j"] > 0
    off = loads_arch(_chip_yaml("HBM2-2000", energy_extra=", wire_pj_per_bit_mm: 0"))
    assert npusim.simulate(off, wl).layers.iloc[0]["energy_wire_j"] == 0.0


# --- The split of a LLaMA-30B int4 decode step ----------------------------------------
def _llama30b_decode(layers: int) -> Workload:
    cfg = json.loads((ROOT / "workloads" / "hf" / "llama_30b.json").read_text())
    cfg["num_hidden_layers"] = layers  # two blocks + the head: the same per-layer split
    return from_hf_config(cfg, "decode", batch=1, context_len=512, weights="int4",
                          activations="int8", kv="int8")


@pytest.mark.parametrize(("preset", "core", "interface", "phy"), [
    ("lpddr_llm", LP5X_CORE, LP5X_INTERFACE, LP5X_PHY),
    ("hbm_llm", HBM3_CORE, HBM3_INTERFACE, HBM3_PHY),
])
def test_llama30b_decode_split_adds_up_by_hand(preset: str, core: float, interface: float,
                                               phy: float) -> None:
    """DRAM bits x each sourced part, wire bits x 0.1 pJ/bit/mm x the floorplan, leakage x
    latency, plus the compute parts: within 1 % of the total. A DRAM charge missing its
    controller/PHY (or the wire part left out of the total) is off by more than 1 %."""
    chip = npusim.load_arch(preset)
    s = npusim.simulate(chip, _llama30b_decode(2)).summary()
    bits = (s["dram_read_bytes"] + s["dram_write_bytes"]) * 8
    h, inter, vocab = 6656, 17920, 32000  # LLaMA-30B: every weight at 4 bits streams once
    weights = (2 * (4 * h * h + 3 * h * inter) + h * vocab) * 0.5
    assert bits >= weights * 8
    dram = {"core": bits * core * pJ, "interface": bits * interface * pJ,
            "phy": bits * phy * pJ}
    for part, joules in dram.items():
        assert s[f"energy_dram_{part}_j"] == pytest.approx(joules, rel=1e-6), part
    assert s["energy_dram_j"] == pytest.approx(sum(dram.values()), rel=1e-6)
    # Wire: a 16 MiB scratchpad per core at 4 nm (0.021 um^2 cells, 70 % efficiency).
    df = npusim.simulate(chip, _llama30b_decode(2)).layers
    die_side = math.sqrt(chip_area_mm2(chip)["total_mm2"])
    macro_side = math.sqrt(16 * 2**20 * 8 * 0.021 / 0.70 / 1e6)
    sram = float((df["sram_read_bytes"] + df["sram_write_bytes"] + df["acc_read_bytes"]
                  + df["acc_write_bytes"]).sum())
    wire = WIRE_PJ_PER_BIT_MM * pJ * (bits * die_side / 2 + sram * 8 * macro_side / 2)
    assert s["energy_wire_j"] == pytest.approx(wire, rel=1e-6)
    static = 6.0 * s["latency_s"]  # the presets' 6 W of leakage
    compute = s["energy_mac_j"] + s["energy_sram_j"] + s["energy_vector_j"] + s["energy_noc_j"]
    by_hand = sum(dram.values()) + wire + static + compute
    assert s["energy_j"] == pytest.approx(by_hand, rel=0.01)
    # The parts this issue added are not negligible: PHY and wire move the total by > 1 %.
    assert (dram["phy"] + wire) / s["energy_j"] > 0.01


# --- Physical floors (hypothesis) -------------------------------------------------------
_STANDARDS = ("LPDDR5X-8533", "HBM3-6400", "HBM2-2000", "DDR4-3200", "GDDR6-16000")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(standard=st.sampled_from(_STANDARDS), m=st.integers(1, 300), n=st.integers(1, 300),
       k=st.integers(1, 300), memory=st.sampled_from(("bandwidth", "cycle", "ideal")),
       host=st.booleans())
def test_no_energy_falls_below_its_floor(standard: str, m: int, n: int, k: int, memory: str,
                                         host: bool) -> None:
    """DRAM energy >= DRAM bits x the device-core part (the interface and PHY come on top;
    a model that dropped a part or charged per byte would go under), and the total >=
    leakage x latency (the host path's waiting time included)."""
    chip = loads_arch(_chip_yaml(standard, host="host: {kind: pcie4_x8}"))
    wl = Workload("g", (Matmul(name="g", m=m, n=n, k=k),))
    s = npusim.simulate(chip, wl, memory=memory, host=host).summary()
    bits = (s["dram_read_bytes"] + s["dram_write_bytes"]) * 8
    # The core part: column + a row's ACT + refresh and background at the peak rate (the
    # cycle model's commands and standby over the run's time are at least that).
    core = get_standard(standard).core_pj_per_bit
    assert s["energy_dram_j"] >= bits * core * pJ * (1 - 1e-12)
    assert s["energy_j"] >= 2.0 * s["latency_s"] * (1 - 1e-12)


# --- Units --------------------------------------------------------------------------------
def test_energies_are_joules_not_picojoules() -> None:
    """One DRAM byte on HBM3 costs 8 x 1.92 pJ = 1.5e-11 J; a model returning pJ (or nJ)
    where J is meant lands 1e12 (1e3) away from it."""
    chip = loads_arch(_chip_yaml("HBM3-6400", energy_extra=", wire_pj_per_bit_mm: 0"))
    wl = Workload("g", (Matmul(name="g", m=64, n=32, k=32),))
    s = npusim.simulate(chip, wl).summary()
    per_byte = s["energy_dram_j"] / (s["dram_read_bytes"] + s["dram_write_bytes"])
    assert per_byte == pytest.approx(8 * (HBM3_CORE + HBM3_INTERFACE + HBM3_PHY) * pJ,
                                     rel=1e-6)
    assert 1e-12 < per_byte < 1e-10


def test_a_host_energy_without_its_unit_is_refused() -> None:
    """``energy_per_bit: 5`` means 5 J per bit (base units), eleven orders of magnitude above
    any link: refused in one line naming the key, rather than charged."""
    with pytest.raises(SpecError, match=r"host\.energy_per_bit"):
        loads_arch(_chip_yaml("HBM3-6400", host="host: {kind: pcie5_x16, energy_per_bit: 5}"))
    ok = loads_arch(_chip_yaml("HBM3-6400",
                               host="host: {kind: pcie5_x16, energy_per_bit: 5 pJ}"))
    assert ok.host is not None and ok.host.energy_per_bit == pytest.approx(5e-12)
