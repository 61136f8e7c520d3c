"""The roofline fidelity: a per-layer lower bound from the compiled program's totals.

No SimPy and no memory model: each layer of the *same* tile program the event model runs
takes the longest of three times, every one a bound no schedule can beat:

    compute  MACs on the array / (cores x rows x cols x count x MACs per PE per cycle at the
             layer's compute precision x clock)  — every PE busy every cycle, no fill/drain;
             a layer on the matrix-vector engine divides by that engine's peak instead
             (cores x lanes x width x rows x MACs per multiplier per cycle x clock)
    memory   (DRAM read + write bytes) / the DRAM's peak bandwidth  — no latency, no bank
             or refresh stalls (zero with ``ideal`` memory); or, if longer, the busiest
             core's NoC bytes / its NoC port rate (no NoC latency)
    vector   vector-unit cycles of all tiles / cores / clock  — perfectly shared by cores

so the event model (which also pays fill and drain, SRAM-port stalls, exposed DMA, DRAM
latency and the layer barrier) can never be faster than this, layer by layer. The DMA
engines' own caps are left out on purpose: a looser bound is still a bound.

The result is expressed as :class:`~npusim.engine.events.LayerStats` with identical cores,
so the report builds an ordinary ``Result`` from it: ``time_mac_s`` carries the compute
time, ``time_vector_s`` vector time beyond it, ``time_dma_exposed_s`` memory time beyond
both; the three add up to the latency.

:func:`plainly_compute_bound` says, from the program and the bounds alone, whether a layer
is one where the event model should agree with the roofline (tests/test_fidelity.py and
docs/validation.md use it).
"""

from __future__ import annotations

from dataclasses import dataclass

from npusim.compiler.program import COL, LayerProgram, TileProgram
from npusim.engine.events import CoreStats, LayerStats
from npusim.engine.memory import traffic_counters
from npusim.kernels.systolic import DATAFLOWS
from npusim.spec.arch import Chip

__all__ = ["MEMORY_MARGIN", "RooflineTimes", "bound_label", "layer_times",
           "plainly_compute_bound", "roofline_stats", "with_unlimited_sram_ports"]

#: A layer is called memory-bound only when its memory time exceeds the larger of its
#: compute and vector times by more than this fraction. The memory term is bytes at peak
#: bandwidth, itself an estimate; within 5 % of the busy unit's time the layer is balanced
#: and takes the busy unit's label, so a rounding difference never decides it.
MEMORY_MARGIN = 0.05


def bound_label(compute: float, memory: float, vector: float) -> str:
    """``memory`` when ``memory > (1 + MEMORY_MARGIN) x max(compute, vector)``, else the
    larger of ``compute`` and ``vector`` (``compute`` on a tie)."""
    busy = max(compute, vector)
    if memory > (1.0 + MEMORY_MARGIN) * busy:
        return "memory"
    return "vector" if vector > compute else "compute"


@dataclass(frozen=True)
class RooflineTimes:
    """The three bounds of one layer, in seconds; ``latency_s`` is the largest."""

    compute_s: float
    memory_s: float
    vector_s: float

    @property
    def latency_s(self) -> float:
        return max(self.compute_s, self.memory_s, self.vector_s)

    @property
    def bound(self) -> str:
        """The label of :func:`bound_label` for the three times."""
        return bound_label(self.compute_s, self.memory_s, self.vector_s)


def layer_times(chip: Chip, lp: LayerProgram, ideal_memory: bool = False) -> RooflineTimes:
    """Compute, memory and vector bounds of one compiled layer."""
    clock = chip.clock
    compute = 0.0
    per_core = chip.cores.core.peak_macs_per_cycle(lp.unit, lp.precision)
    if per_core > 0:
        compute = lp.total("macs") / (chip.n_cores * per_core * clock)
    memory = 0.0
    if not ideal_memory:
        moved = lp.total("dram_read_bytes") + lp.total("dram_write_bytes")
        memory = moved / chip.dram.peak_bandwidth
    if chip.noc is not None:
        noc = float(lp.per_core("noc_read_bytes").max(initial=0.0))
        memory = max(memory, noc / (chip.noc.bytes_per_cycle * clock))
    vector = lp.total("vector_cycles") / chip.n_cores / clock
    return RooflineTimes(compute, memory, vector)


def roofline_stats(chip: Chip, program: TileProgram, ideal_memory: bool = False
                   ) -> tuple[list[LayerStats], list[RooflineTimes], dict[str, float]]:
    """Per-layer stats as the event model would report them, the bounds, and DRAM totals.

    DRAM energy is bytes x the standard's pJ/bit by part (core, interface, controller/PHY),
    as the bandwidth memory model counts it.
    """
    parts = {k: v * 8e-12 for k, v in chip.dram.energy_parts_pj_per_bit.items()}
    stats: list[LayerStats] = []
    times: list[RooflineTimes] = []
    now = 0.0
    totals = traffic_counters(0.0, 0.0, parts)
    for lp in program.layers:
        rt = layer_times(chip, lp, ideal_memory)
        latency = rt.latency_s
        busy = max(rt.compute_s, rt.vector_s)
        cores = [CoreStats(busy_s=busy, array_s=rt.compute_s, vector_s=rt.vector_s,
                           mac_s=rt.compute_s, vector_extra_s=busy - rt.compute_s,
                           dma_wait_s=latency - busy, end_s=now + latency)
                 for _ in range(chip.n_cores)]
        rd, wr = lp.total("dram_read_bytes"), lp.total("dram_write_bytes")
        mem = traffic_counters(rd, wr, parts)
        for key, value in mem.items():
            totals[key] = totals.get(key, 0.0) + value
        stats.append(LayerStats(lp.index, now, now + latency, cores, mem))
        times.append(rt)
        now += latency
    return stats, times, totals


def _full_folds_per_core(chip: Chip, lp: LayerProgram) -> float:
    sa = chip.cores.core.systolic
    rows, cols = {0: (lp.k, lp.n), 1: (lp.m, lp.n), 2: (lp.k, lp.m)}[DATAFLOWS[sa.dataflow]]
    return lp.g * (rows // sa.rows) * (cols // sa.cols) / chip.n_cores


def plainly_compute_bound(chip: Chip, lp: LayerProgram, *, dram_ratio: float = 3.0,
                          min_full_folds: float = 8.0, min_occupancy: float = 0.97,
                          max_unhidden: float = 0.02) -> float | None:
    """For a plainly compute-bound layer, the event/roofline ratio its fill/drain and
    unhidden DMA account for, ``(1 + unhidden) / occupancy``; else ``None``.

    Plainly compute-bound, judged from the compiled program and the roofline only (never
    from an event-model run): an array layer whose roofline compute time is at least
    ``dram_ratio`` x its DRAM and its vector time; with at least ``min_full_folds`` folds
    per core whose stationary block fills the array; whose busiest core does MACs at peak
    for at least ``min_occupancy`` of its ideal (SCALE-Sim) compute cycles; with no
    SRAM-port stall (array cycles <= 1.01 x compute cycles); and whose DMA that double
    buffering cannot hide — the busiest core's first load and last store at its share of
    peak DRAM bandwidth — is at most ``max_unhidden`` of its compute time.
    """
    if lp.unit != "array" or lp.precision not in chip.cores.core.systolic.macs_per_cycle:
        return None
    rt = layer_times(chip, lp)
    if rt.compute_s < dram_ratio * rt.memory_s or rt.compute_s < dram_ratio * rt.vector_s:
        return None
    if _full_folds_per_core(chip, lp) < min_full_folds:
        return None
    arr = lp.per_core("array_cycles")
    tiles = lp.tiles[int(arr.argmax())]
    comp = float(tiles[:, COL["compute_cycles"]].sum())
    peak = chip.cores.core.systolic.peak_macs_per_cycle(lp.precision)
    occupancy = float(tiles[:, COL["macs"]].sum()) / peak / comp if comp > 0 else 0.0
    if occupancy < min_occupancy or float(arr.max()) > 1.01 * comp:
        return None
    share = chip.dram.peak_bandwidth / chip.n_cores
    unhidden = (tiles[0, COL["dram_read_bytes"]] + tiles[-1, COL["dram_write_bytes"]]) / share
    fraction = float(unhidden) / (comp / chip.clock)
    if fraction > max_unhidden:
        return None
    return (1 + fraction) / occupancy


def with_unlimited_sram_ports(chip: Chip) -> Chip:
    """``chip`` with no bandwidth limit on its scratchpad and accumulator ports: the variant
    on which the event model and the roofline are compared for agreement."""
    data = chip.model_dump()
    core = data["cores"]["core"]
    for port in ("sram", "accumulator"):
        if core.get(port):
            core[port]["read_bytes_per_cycle"] = None
            core[port]["write_bytes_per_cycle"] = None
    data["name"] = f"{chip.name} (wide SRAM ports)"
    return Chip.model_validate(data)
