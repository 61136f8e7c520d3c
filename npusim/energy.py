"""Energy model: event counts x energy per event, plus leakage x time.

Dynamic energy of a layer = MACs x E_mac(precision) + scratchpad bytes x E_sram(read/write)
+ accumulator-SRAM bytes (partial sums, on a core that has one) x E_acc + DRAM energy (from
the memory model: bits x pJ/bit, or per-command energies when the cycle-approximate DRAM
model runs) + vector ops x E_op(class) + NoC bytes x E_noc (bytes delivered to a core over
the on-chip network, see :class:`npusim.spec.arch.Noc`). Static = leakage W x latency.
Energies per event come from the chip's energy table (see :class:`npusim.spec.arch.Chip`).
"""

from __future__ import annotations

from dataclasses import dataclass

from npusim.compiler.program import LayerProgram
from npusim.spec.arch import Chip

__all__ = ["EnergyBreakdown", "layer_energy"]


@dataclass(frozen=True)
class EnergyBreakdown:
    mac_j: float
    sram_j: float
    dram_j: float
    vector_j: float
    static_j: float
    noc_j: float = 0.0

    @property
    def total_j(self) -> float:
        return self.mac_j + self.sram_j + self.dram_j + self.vector_j + self.static_j + self.noc_j


def layer_energy(chip: Chip, lp: LayerProgram, dram_j: float, latency_s: float) -> EnergyBreakdown:
    """Energy of one layer from its tile totals, its DRAM energy and its latency."""
    mac = lp.total("macs") * chip.mac_energy(lp.precision)
    sram = (lp.total("sram_read_bytes") * chip.sram_energy_per_byte(write=False)
            + lp.total("sram_write_bytes") * chip.sram_energy_per_byte(write=True)
            + (lp.extra.get("acc_read_bytes", 0.0) + lp.extra.get("acc_write_bytes", 0.0))
            * chip.accumulator_energy_per_byte())
    vec = (lp.vector_alu_ops * chip.vector_energy("alu")
           + lp.vector_special_ops * chip.vector_energy("special"))
    static = chip.energy.leakage * latency_s
    moved = lp.total("noc_read_bytes")
    noc = moved * chip.noc.energy_per_byte if chip.noc is not None and moved > 0 else 0.0
    return EnergyBreakdown(mac, sram, dram_j, vec, static, noc)
