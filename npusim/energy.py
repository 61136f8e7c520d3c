"""Energy model: event counts x energy per event, plus leakage x time.

Dynamic energy of a layer = MACs x E_mac(precision) + scratchpad bytes x E_sram(read/write)
+ accumulator-SRAM bytes (partial sums, on a core that has one) x E_acc + DRAM energy (from
the memory model: bits x pJ/bit of the device core, the interface and the NPU-side
controller + PHY, or per-command energies when the cycle-approximate DRAM model runs) +
vector ops x E_op(class) + NoC bytes x E_noc (bytes delivered to a core over the on-chip
network, see :class:`npusim.spec.arch.Noc`) + wire energy: bits x pJ/bit/mm x the
floorplan's distance (:func:`npusim.area.floorplan`), for DRAM bytes between the PHYs on
the die edge and the cores and for scratchpad bytes (accumulator included) between the
scratchpad and the arrays. Static = leakage W x latency. Energies per event come from the
chip's energy table (see :class:`npusim.spec.arch.Chip`).
"""

from __future__ import annotations

from dataclasses import dataclass

from npusim.area import floorplan
from npusim.compiler.program import LayerProgram
from npusim.spec.arch import Chip

__all__ = ["EnergyBreakdown", "layer_energy", "wire_energy"]


@dataclass(frozen=True)
class EnergyBreakdown:
    mac_j: float
    sram_j: float
    dram_j: float
    vector_j: float
    static_j: float
    noc_j: float = 0.0
    wire_j: float = 0.0

    @property
    def total_j(self) -> float:
        return (self.mac_j + self.sram_j + self.dram_j + self.vector_j + self.static_j
                + self.noc_j + self.wire_j)


def wire_energy(chip: Chip, dram_bytes: float, sram_bytes: float) -> float:
    """Joules of on-chip wire for ``dram_bytes`` between the DRAM PHYs and the cores and
    ``sram_bytes`` between the cores' scratchpads and their arrays (module docstring)."""
    fp = floorplan(chip)
    return chip.wire_energy_per_byte_mm() * (dram_bytes * fp.phy_to_core_mm
                                             + sram_bytes * fp.sram_to_array_mm)


def layer_energy(chip: Chip, lp: LayerProgram, dram_j: float, latency_s: float) -> EnergyBreakdown:
    """Energy of one layer from its tile totals, its DRAM energy and its latency."""
    mac = lp.total("macs") * chip.mac_energy(lp.precision)
    acc_bytes = lp.extra.get("acc_read_bytes", 0.0) + lp.extra.get("acc_write_bytes", 0.0)
    sram = (lp.total("sram_read_bytes") * chip.sram_energy_per_byte(write=False)
            + lp.total("sram_write_bytes") * chip.sram_energy_per_byte(write=True)
            + acc_bytes * chip.accumulator_energy_per_byte())
    vec = (lp.vector_alu_ops * chip.vector_energy("alu")
           + lp.vector_special_ops * chip.vector_energy("special"))
    static = chip.energy.leakage * latency_s
    moved = lp.total("noc_read_bytes")
    noc = moved * chip.noc.energy_per_byte if chip.noc is not None and moved > 0 else 0.0
    wire = wire_energy(chip, lp.total("dram_read_bytes") + lp.total("dram_write_bytes"),
                       lp.total("sram_read_bytes") + lp.total("sram_write_bytes") + acc_bytes)
    return EnergyBreakdown(mac, sram, dram_j, vec, static, noc, wire)
