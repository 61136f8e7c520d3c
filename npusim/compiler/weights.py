"""Where a workload's weights live: resident in the chip's shared SRAM, or read from DRAM.

Resident weights are read from the shared on-chip SRAM by every layer, every inference;
they were loaded from DRAM once, before the first inference, and the simulator does not
count that load: it models the steady state of repeated inferences (as an ATOM-style chip
serving one model does). Weights that are not resident are read from DRAM by the layers
that use them, every inference.

:func:`place_weights` decides: ``want=None`` (auto) keeps them resident exactly when they
all fit the shared SRAM; ``True`` insists, and is a :class:`~npusim.errors.MappingError`
naming the sizes when they do not fit; ``False`` streams them from DRAM. Weight bytes are
the ``weight`` inputs of all layers at their stored precision (an embedding counts the
rows it gathers), except that routed experts count every expert held, not only those a
step touches: residency must hold for any routing.
"""

from __future__ import annotations

from dataclasses import dataclass

from npusim.errors import MappingError
from npusim.spec.arch import Chip
from npusim.units import format_bytes
from npusim.workloads.ir import Workload, stored_weight_bytes

__all__ = ["WeightsPlacement", "place_weights", "weight_bytes"]


def weight_bytes(workload: Workload) -> int:
    """Bytes of every weight the workload's layers hold, each layer's once."""
    return sum(stored_weight_bytes(layer) for layer in workload.layers)


@dataclass(frozen=True)
class WeightsPlacement:
    """The decision and what it rests on."""

    resident: bool
    weight_bytes: int
    shared_sram_bytes: int  # 0 when the chip has no shared SRAM
    requested: bool | None  # None: auto

    @property
    def fits(self) -> bool:
        return 0 < self.weight_bytes <= self.shared_sram_bytes

    @property
    def reason(self) -> str:
        """Where the weights live and why, in one line."""
        w, s = format_bytes(self.weight_bytes), format_bytes(self.shared_sram_bytes)
        if self.weight_bytes == 0:
            return "none (the workload has no weights)"
        if self.resident:
            asked = ", as asked" if self.requested else ""
            return (f"resident in shared SRAM ({w} of {s}{asked}; repeated inferences, "
                    "first load not counted)")
        if self.shared_sram_bytes == 0:
            return f"read from DRAM ({w}; the chip has no shared SRAM)"
        if not self.fits:
            return f"read from DRAM ({w} do not fit the {s} shared SRAM)"
        return f"read from DRAM ({w}, as asked; they would fit the {s} shared SRAM)"


def place_weights(chip: Chip, workload: Workload, want: bool | None = None) -> WeightsPlacement:
    """Resident or DRAM for ``workload``'s weights on ``chip`` (see the module docstring)."""
    wb = weight_bytes(workload)
    shared = int(chip.shared_sram.size) if chip.shared_sram is not None else 0
    fits = 0 < wb <= shared
    if want and wb > 0 and not fits:
        w = format_bytes(wb)
        if shared:
            raise MappingError(f"weights cannot stay resident: {workload.name!r} has {w} of "
                               f"weights, more than the {format_bytes(shared)} shared SRAM "
                               f"of {chip.name!r}")
        raise MappingError(f"weights cannot stay resident: {chip.name!r} has no shared SRAM "
                           f"for the {w} of weights of {workload.name!r}")
    resident = fits if want is None else bool(want and wb > 0)
    return WeightsPlacement(resident, wb, shared, want)
