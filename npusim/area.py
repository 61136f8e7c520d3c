"""A first-order die-area model: MAC arrays, vector units, SRAM, DRAM PHYs and controllers.

``chip_area_mm2(chip)`` returns the area of each part and their total in mm². It exists so
sweeps can rank design points by perf/mm² and find Pareto fronts over area; it is a
first-order estimate, never fitted to any published die (TPU v1's 331 mm² at 28 nm,
Jouppi et al. 2017, is *not* used to calibrate anything). The total leaves out the NoC,
DMA engines, control processors, PCIe and other I/O, test logic and white space, so it is a
lower bound of a real die. Every figure below is a stated assumption or a cited value.

Logic (MACs, registers, vector lanes)
    Component areas at 45 nm from Horowitz, "Computing's Energy Problem", ISSCC 2014, as
    commonly tabulated from it (unconfirmed: the paper itself was not read): 8-bit
    multiply 282 µm², 32-bit add 137 µm², FP16 multiply 1,640 µm², FP16 add 1,360 µm²,
    FP32 multiply 7,700 µm², FP32 add 4,184 µm².

    * A MAC is one multiplier of the operand precision plus one 32-bit accumulator adder
      (int32 for integer operands, FP32 for floating point), as the compiler keeps 4-byte
      partial sums. int4: 282 x (4/8)² µm² (array multiplier area taken ∝ bits²), plus the
      int32 add. FP8 and BF16 multipliers: the FP16 multiplier scaled by the square of the
      significand width ratio (4/11 and 8/11), an assumption; FP8 E5M2 3/11, and the FP4
      E2M1 elements of the block formats (mxfp4, nvfp4) 2/11. Their products are exact in
      a few fixed-point bits, so a block's products are taken as summed in an int32 adder
      and the block's sum scaled into FP32 once per 16 or 32 MACs (an assumption), which
      leaves the scale multiply and the FP32 add out of the MAC. A block format's operand
      register holds the 4-bit element; its shared scale is per block, not per PE.
    * Each PE also holds pipeline registers: weight + input operand + 32-bit partial sum,
      at 4.5 µm² per flip-flop at 45 nm (about the DFF_X1 cell of the NanGate 45 nm open
      cell library; value not re-checked, an assumption).
    * A PE that computes several precisions is sized by its native ones (rate >= 1
      MAC/cycle): max over them of rate x MAC area. Precisions below 1 MAC/cycle are taken
      as multi-pass on the native datapath, costing no area (TPU v1 does 16-bit this way).
    * A vector lane is an FP16 adder + multiplier per ALU op per cycle, and a special-
      function unit per special op per cycle sized as four lanes (the same 4x the energy
      model assumes, npusim/spec/arch.py).
    * Logic scales from 45 nm by (node / 45)², an assumption that is optimistic at modern
      nodes, whose names no longer track feature size.

SRAM
    6T high-density bitcell areas as reported for each node (papers not re-read): Intel 45 nm
    0.346 µm² (Mistry et al., IEDM 2007); TSMC 28 nm 0.127 µm²; TSMC 16 nm FinFET
    0.074 µm²; TSMC N7 0.027 µm² (IEDM 2016); TSMC N5 0.021 µm² (IEDM 2019); TSMC N3E
    0.021 µm² (SRAM scaling stalled). Other nodes interpolate log-log, clamped at 3 nm and
    scaled by (node / 45)² above 45 nm. Macro area = bit area / 0.70 array efficiency
    (periphery: decoders, sense amplifiers, redundancy; 60-80 % is the usual range, 70 %
    is an assumption). At 28 nm that is 1.52 mm² per MiB; at 5 nm 0.25 mm² per MiB.

DRAM interface
    PHY area per 64 data bits, by family, independent of the logic node (PHYs are bump- and
    analog-limited): DDR3/4/5 3.0 mm², LPDDR4/4X/5/5X 1.5 mm², GDDR6 2.0 mm², HBM2/2E/3/3E
    0.6 mm² (about 10 mm² for a 1,024-bit stack). These are order-of-magnitude
    assumptions; no public PHY datasheet was read. A controller per channel: 0.5 mm² at
    28 nm, scaled as logic (assumption). All values are parameters of :class:`AreaModel`.

Floorplan (``floorplan(chip)``, the distances the wire energy is charged over)
    The die is a square of the area model's total (a lower bound of a real die, so the
    distances are too). The DRAM PHYs sit on the die edge and the cores tile the die: a byte
    between a PHY and the core that loads or stores it travels half the die edge (an
    assumption standing for the mean Manhattan distance from the edge PHYs to the cores).
    Inside a core the arrays sit at the side of the core's scratchpad macro: a byte between
    the scratchpad and an array travels half the side of that macro (a square of the
    scratchpad's area, the accumulator SRAM included).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from npusim.spec.arch import Chip
from npusim.workloads.formats import is_block

__all__ = ["AreaModel", "Floorplan", "chip_area_mm2", "floorplan", "mac_area_um2",
           "sram_mm2_per_mib"]

# Horowitz 2014, 45 nm, µm².
_MULT_45 = {"int8": 282.0, "fp16": 1640.0, "fp32": 7700.0}
_ADD32_INT_45 = 137.0
_ADD16_FP_45 = 1360.0
_ADD32_FP_45 = 4184.0

_OPERAND_BITS = {"int4": 4, "int8": 8, "fp8": 8, "fp8_e4m3": 8, "fp8_e5m2": 8, "fp16": 16,
                 "bf16": 16, "fp32": 32, "mxfp4": 4, "nvfp4": 4}
# Significand bits (the implicit one included) of the float formats the FP16 multiplier is
# scaled from; fp8 without an encoding is taken as E4M3.
_SIGNIFICAND = {"fp8": 4, "fp8_e4m3": 4, "fp8_e5m2": 3, "bf16": 8, "mxfp4": 2, "nvfp4": 2}
_ACC_BITS = 32

_BITCELL_UM2 = ((3.0, 0.021), (5.0, 0.021), (7.0, 0.027), (16.0, 0.074), (28.0, 0.127),
                (45.0, 0.346))

_PHY_MM2_PER_64BIT = {
    "DDR3": 3.0, "DDR4": 3.0, "DDR5": 3.0,
    "LPDDR4": 1.5, "LPDDR4X": 1.5, "LPDDR5": 1.5, "LPDDR5X": 1.5,
    "GDDR6": 2.0,
    "HBM2": 0.6, "HBM2E": 0.6, "HBM3": 0.6, "HBM3E": 0.6,
}


def _mult_45(precision: str) -> float:
    if precision == "int8":
        return _MULT_45["int8"]
    if precision == "int4":
        return _MULT_45["int8"] * (4 / 8) ** 2
    if precision in _SIGNIFICAND:
        return _MULT_45["fp16"] * (_SIGNIFICAND[precision] / 11) ** 2
    return _MULT_45[precision]


def mac_area_um2(precision: str, node_nm: float = 45.0) -> float:
    """Multiplier + 32-bit accumulator adder of one MAC, µm², scaled to ``node_nm``."""
    fixed = precision.startswith("int") or is_block(precision)
    add = _ADD32_INT_45 if fixed else _ADD32_FP_45
    return (_mult_45(precision) + add) * (node_nm / 45.0) ** 2


def sram_mm2_per_mib(node_nm: float, array_efficiency: float = 0.70) -> float:
    """SRAM macro area per MiB at ``node_nm`` (bitcell table, log-log interpolation)."""
    pts = _BITCELL_UM2
    if node_nm <= pts[0][0]:
        cell = pts[0][1]
    elif node_nm >= pts[-1][0]:
        cell = pts[-1][1] * (node_nm / pts[-1][0]) ** 2
    else:
        for (x0, y0), (x1, y1) in itertools.pairwise(pts):
            if x0 <= node_nm <= x1:
                t = (math.log(node_nm) - math.log(x0)) / (math.log(x1) - math.log(x0))
                cell = math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
                break
    return 8 * 2**20 * cell / array_efficiency / 1e6


@dataclass(frozen=True)
class AreaModel:
    """The assumptions of the area model, each overridable."""

    flip_flop_um2_45nm: float = 4.5
    sram_array_efficiency: float = 0.70
    phy_mm2_per_64bit: dict[str, float] = field(default_factory=lambda: dict(_PHY_MM2_PER_64BIT))
    #: used for a DRAM family missing from ``phy_mm2_per_64bit``
    phy_mm2_per_64bit_default: float = 2.0
    controller_mm2_per_channel_28nm: float = 0.5
    special_unit_lanes: float = 4.0

    def logic_scale(self, node_nm: float) -> float:
        return (node_nm / 45.0) ** 2

    def pe_um2(self, chip: Chip) -> float:
        rates = chip.cores.core.systolic.macs_per_cycle
        native = {p: r for p, r in rates.items() if r >= 1.0} or dict(rates)
        node = chip.process_nm
        mac = max(r * mac_area_um2(p, node) for p, r in native.items())
        bits = max(2 * _OPERAND_BITS[p] for p in native) + _ACC_BITS
        return mac + bits * self.flip_flop_um2_45nm * self.logic_scale(node)

    def vector_um2(self, chip: Chip) -> float:
        v = chip.cores.core.vector
        lane = (_MULT_45["fp16"] + _ADD16_FP_45) * self.logic_scale(chip.process_nm)
        alu = v.ops_per_cycle.get("alu", 0.0)
        special = v.ops_per_cycle.get("special", 0.0)
        return v.lanes * lane * (alu + self.special_unit_lanes * special)

    def sram_mib(self, chip: Chip) -> float:
        core = chip.cores.core
        per_core = core.sram.size + (core.accumulator.size if core.accumulator else 0)
        shared = chip.shared_sram.size if chip.shared_sram else 0
        return (chip.cores.count * per_core + shared) / 2**20

    def dram_phy_mm2(self, chip: Chip) -> float:
        family = chip.dram.catalog.family.upper()
        per64 = self.phy_mm2_per_64bit.get(family, self.phy_mm2_per_64bit_default)
        return chip.dram.n_channels * chip.dram.width_bits / 64 * per64

    def dram_controller_mm2(self, chip: Chip) -> float:
        return chip.dram.n_channels * self.controller_mm2_per_channel_28nm \
            * (chip.process_nm / 28.0) ** 2


def chip_area_mm2(chip: Chip, model: AreaModel | None = None) -> dict[str, float]:
    """Area of each part of ``chip`` and the total, in mm² (see the module docstring)."""
    m = model or AreaModel()
    sa = chip.cores.core.systolic
    pes = chip.cores.count * sa.count * sa.rows * sa.cols
    parts = {
        "array_mm2": pes * m.pe_um2(chip) / 1e6,
        "vector_mm2": chip.cores.count * m.vector_um2(chip) / 1e6,
        "sram_mm2": m.sram_mib(chip) * sram_mm2_per_mib(chip.process_nm,
                                                         m.sram_array_efficiency),
        "dram_phy_mm2": m.dram_phy_mm2(chip),
        "dram_controller_mm2": m.dram_controller_mm2(chip),
    }
    parts["total_mm2"] = sum(parts.values())
    return parts


@dataclass(frozen=True)
class Floorplan:
    """Wire distances in mm the energy model charges bytes over (module docstring)."""

    die_side_mm: float
    phy_to_core_mm: float  # a DRAM PHY on the die edge to a core: half the die edge
    sram_to_array_mm: float  # the core's scratchpad to its arrays: half the macro's side


def floorplan(chip: Chip, model: AreaModel | None = None) -> Floorplan:
    """The distances of ``chip``'s floorplan from its areas (see the module docstring)."""
    m = model or AreaModel()
    side = math.sqrt(chip_area_mm2(chip, m)["total_mm2"])
    core = chip.cores.core
    core_bytes = core.sram.size + (core.accumulator.size if core.accumulator else 0)
    macro = core_bytes / 2**20 * sram_mm2_per_mib(chip.process_nm, m.sram_array_efficiency)
    return Floorplan(side, side / 2, math.sqrt(macro) / 2)
