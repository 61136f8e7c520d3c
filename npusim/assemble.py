"""Assembling a run into its :class:`~npusim.result.Result`: counters → rows.

``simulate`` hands this module what the engine measured (each layer's
:class:`~npusim.engine.events.LayerStats`, the memory model's totals) and the compiled
program; it computes each layer's row — cycles, what bounds it (the roofline label of its
compute, DRAM and vector terms), the latency split by cause and the cause that limits it,
DRAM figures and the energy breakdown (:mod:`npusim.energy`) — and returns the Result.
The report package only formats a Result; nothing there calls the energy model, the
roofline or the engine.
"""

from __future__ import annotations

import math
from typing import Any

from npusim.compiler.program import LayerProgram, TileProgram
from npusim.energy import layer_energy
from npusim.engine.events import LayerStats, TileEvent
from npusim.engine.host import HostPath, apply_host
from npusim.engine.roofline import bound_label, roofline_stats
from npusim.result import CAUSE_COLUMNS, Result, dram_figures
from npusim.spec.arch import Chip

__all__ = ["STALL_EPSILON", "build_result", "layer_limit", "roofline_result"]

#: Stall cycles below this fraction of a layer's cycles are reported as 0: they are the
#: residue of turning event times in seconds back into cycles (double precision carries
#: about 1e-16 relative error per operation), not a wait.
STALL_EPSILON = 1e-9

def _causes(st: LayerStats) -> dict[str, float]:
    """Split the layer's latency by cause, averaged over its cores.

    Each core's span is its busy time (MACs at peak, fill/drain, SRAM stalls, vector work
    not hidden by the array) plus time waiting on DMA; a core that finishes before the
    last one waits at the barrier (``time_sync_s``). A load's wait after its DRAM part has
    arrived, for bytes multicast over the on-chip network, is ``time_noc_s``. Exposed DMA
    time is split further by
    the DRAM model's own stall counters (bank conflicts and row misses, refresh,
    read/write turnaround) in proportion to their share of its busy time, when it has them.
    """
    latency = st.end_s - st.start_s
    n = len(st.cores) or 1
    out = dict.fromkeys(CAUSE_COLUMNS, 0.0)
    for cs in st.cores:
        out["time_mac_s"] += cs.mac_s / n
        out["time_fill_drain_s"] += cs.fill_drain_s / n
        out["time_sram_stall_s"] += cs.sram_stall_s / n
        out["time_vector_s"] += cs.vector_extra_s / n
        out["time_dma_exposed_s"] += (cs.dma_wait_s + cs.store_wait_s) / n
        out["time_noc_s"] += cs.noc_wait_s / n
        span = cs.end_s - st.start_s if cs.end_s > 0 else 0.0
        out["time_sync_s"] += max(latency - span, 0.0) / n
    m = st.memory
    busy = m.get("busy_s", 0.0)
    if busy > 0 and out["time_dma_exposed_s"] > 0:
        exposed = out["time_dma_exposed_s"]
        for key, col in (("bank_stall_s", "time_dram_bank_s"),
                         ("refresh_stall_s", "time_dram_refresh_s"),
                         ("turnaround_stall_s", "time_dram_turnaround_s")):
            share = min(max(m.get(key, 0.0) / busy, 0.0), 1.0)
            out[col] = exposed * share
        moved = out["time_dram_bank_s"] + out["time_dram_refresh_s"] + out["time_dram_turnaround_s"]
        out["time_dma_exposed_s"] = exposed - moved
    return out


#: What bounds a layer, by cause column (fill/drain is named per engine, see _fill_name).
_LIMIT_NAMES = {
    "time_mac_s": "mac rate", "time_sram_stall_s": "sram port", "time_vector_s": "vector unit",
    "time_dma_exposed_s": "dram bandwidth", "time_dram_bank_s": "dram bank conflicts",
    "time_dram_refresh_s": "dram refresh", "time_dram_turnaround_s": "dram read/write turnaround",
    "time_sync_s": "core imbalance", "time_noc_s": "noc bandwidth", "time_host_s": "host path",
}
_DRAM_CAUSES = ("time_dma_exposed_s", "time_dram_bank_s", "time_dram_refresh_s",
                "time_dram_turnaround_s")


def layer_limit(row: dict[str, Any], fill: str = "fill/drain") -> str:
    """What bounds a layer's time, named from its cause columns and its ``bound``.

    A memory-bound layer (its DRAM bytes at peak bandwidth take longer than its engines'
    busy time) names the largest DRAM cause; its compute hides behind the transfers however
    large its own causes are. Any other layer names its largest cause; exposed DMA there is
    latency the double buffering could not hide (``dram latency``), not bandwidth.
    ``fill`` is the name of the fill/drain cause on the layer's engine.
    """
    causes = _DRAM_CAUSES if row.get("bound") == "memory" else CAUSE_COLUMNS
    col = max(causes, key=lambda c: float(row.get(c, 0.0)))
    if float(row.get(col, 0.0)) <= 0.0:
        return "none"
    if col == "time_fill_drain_s":
        return fill
    if col == "time_dma_exposed_s" and row.get("bound") != "memory":
        return "dram latency"
    return _LIMIT_NAMES[col]


def _fill_name(chip: Chip, lp: LayerProgram) -> str:
    """What fill/drain is on ``lp``'s engine: on a ws (is) array with its stationary block
    double-buffered, a fold whose stream is shorter than the R cycles the next block takes
    to shift in waits for the block (``weight`` / ``input shift-in``); otherwise it is
    skew, fill and drain and PEs idle in partial folds."""
    if lp.unit == "matvec":
        return "engine fill (idle lanes, pipeline)"
    sa = chip.cores.core.systolic
    stream = lp.extra.get("stream", math.inf)
    if sa.dataflow != "os" and sa.preload == "overlapped" and stream < sa.rows:
        return f"{'weight' if sa.dataflow == 'ws' else 'input'} shift-in (fill/drain)"
    return "fill/drain"


def _layer_row(chip: Chip, lp: LayerProgram, st: LayerStats,
               memory_bandwidth: float) -> dict[str, Any]:
    """One row of the layer table; the memory term of ``bound`` is the layer's DRAM bytes at
    ``memory_bandwidth`` (the memory model's peak: infinite, so zero, for ideal memory)."""
    clock = chip.clock
    latency = st.end_s - st.start_s
    cycles = latency * clock
    comp = lp.per_core("compute_cycles")
    arr = lp.per_core("array_cycles")
    vec = lp.per_core("vector_cycles")
    # SCALE-Sim reports each GEMM's 0-based last cycle, and runs a grouped (depthwise)
    # convolution or a batched matmul as one GEMM per group or product: one less per GEMM.
    gemms = max(lp.g, 1)
    compute_cycles = 0.0
    if lp.unit == "array" and len(comp):
        compute_cycles = max(float(comp.max()) - gemms, 0.0)
    elif lp.unit == "matvec" and len(comp):
        compute_cycles = float(comp.max())  # no SCALE-Sim count to follow: the engine's own
    rd = float(st.memory.get("read_bytes", lp.total("dram_read_bytes")))
    wr = float(st.memory.get("write_bytes", lp.total("dram_write_bytes")))
    mem_cycles = (rd + wr) / memory_bandwidth * clock
    busy = {"compute": float(arr.max()) if len(arr) else 0.0,
            "vector": float(vec.max()) if len(vec) else 0.0}
    bound = bound_label(busy["compute"], mem_cycles, busy["vector"])
    stall = cycles - max(busy["compute"], busy["vector"])
    if stall < STALL_EPSILON * cycles:
        stall = 0.0
    # Against the peak of the engine the layer ran on (the array's or the matvec engine's).
    peak = chip.n_cores * chip.cores.core.peak_macs_per_cycle(lp.unit, lp.precision)
    util = lp.macs / (cycles * peak) if (cycles > 0 and peak) else 0.0
    dram_j = float(st.memory.get("energy_j", 0.0))
    e = layer_energy(chip, lp, dram_j, latency)
    # What the tiles read beyond one copy of each operand: re-reads by the tiling and copies
    # of a shared operand loaded by more than one core (whole bytes: the tiles' shares of a
    # vector layer are fractions; unknown for a trace without layer metadata).
    dup = (float(max(round(lp.total("dram_read_bytes") - lp.dram_operand_bytes), 0))
           if lp.dram_operand_bytes >= 0 else float("nan"))
    row: dict[str, Any] = {
        "layer": lp.name, "op": lp.op, "unit": lp.unit, "precision": lp.precision,
        "m": lp.m, "n": lp.n, "k": lp.k, "macs": int(lp.macs),
        "compute_cycles": compute_cycles, "array_cycles": busy["compute"],
        "vector_cycles": busy["vector"], "cycles": cycles,
        "stall_cycles": stall,
        "latency_s": latency, "bound": bound, "utilization": util,
        "dram_read_bytes": rd, "dram_write_bytes": wr, "dram_dup_bytes": dup,
        "noc_bytes": lp.total("noc_read_bytes"),
        "sram_read_bytes": lp.total("sram_read_bytes"),
        "sram_write_bytes": lp.total("sram_write_bytes"),
        "acc_read_bytes": lp.extra.get("acc_read_bytes", 0.0),
        "acc_write_bytes": lp.extra.get("acc_write_bytes", 0.0),
        "energy_j": e.total_j, "energy_mac_j": e.mac_j, "energy_sram_j": e.sram_j,
        "energy_dram_j": e.dram_j, "energy_noc_j": e.noc_j, "energy_wire_j": e.wire_j,
        "energy_vector_j": e.vector_j, "energy_static_j": e.static_j,
        "energy_host_j": 0.0,  # the host link's, when the host path is on (engine.host)
        "n_tiles": lp.n_tiles, "mapping": lp.mapping,
    }
    if "experts_touched" in lp.extra:  # routed experts: what the routing made of the step
        row["experts_touched"] = int(lp.extra["experts_touched"])
        row["expert_imbalance"] = lp.extra["expert_imbalance"]
    row.update(_causes(st))
    row["limit"] = layer_limit(row, _fill_name(chip, lp))
    row.update(dram_figures(st.memory, latency, chip.dram.peak_bandwidth, st.read_latency_hist))
    # Whatever else the memory model counts (row hits, per-command energy …).
    for key, value in st.memory.items():
        if key not in ("read_bytes", "write_bytes", "energy_j"):
            row[f"dram_{key}"] = value
    if len(st.cores) > 1:
        for c, cs in enumerate(st.cores):
            row[f"core{c}_busy"] = cs.busy_s / latency if latency > 0 else 0.0
    return row


def _result(chip: Chip, program: TileProgram, rows: tuple[dict[str, Any], ...],
            events: list[TileEvent], memory_totals: dict[str, float], batch: int,
            meta: dict[str, Any] | None, host: HostPath | None) -> Result:
    """The rows, with the host path in series when ``host`` is given, as a Result."""
    m = dict(meta or {})
    if host is not None:
        rows, m = apply_host(rows, m, chip.clock, host)
    return Result(chip, program.workload, batch, program, rows, tuple(events),
                  dict(memory_totals), m)


def build_result(chip: Chip, program: TileProgram, stats: list[LayerStats],
                 events: list[TileEvent], memory_totals: dict[str, float], batch: int = 1,
                 meta: dict[str, Any] | None = None,
                 memory_bandwidth: float | None = None, host: HostPath | None = None) -> Result:
    """The Result of a run's layer stats; ``memory_bandwidth`` is the memory model's peak
    (default the chip's DRAM peak; ``inf`` for ideal memory, which never bounds a layer);
    ``host``: the query's host path, put in series with the layers (npusim.engine.host)."""
    bw = chip.dram.peak_bandwidth if memory_bandwidth is None else memory_bandwidth
    rows = tuple(_layer_row(chip, lp, st, bw)
                 for lp, st in zip(program.layers, stats, strict=True))
    return _result(chip, program, rows, events, memory_totals, batch, meta, host)


def roofline_result(chip: Chip, program: TileProgram, batch: int = 1, ideal_memory: bool = False,
                    meta: dict[str, Any] | None = None, host: HostPath | None = None) -> Result:
    """The roofline bound of ``program`` (see :mod:`npusim.engine.roofline`) as a Result.

    Built by the same row machinery as the event model's; ``bound`` labels the three
    roofline terms by :func:`~npusim.engine.roofline.bound_label`.
    """
    stats, times, totals = roofline_stats(chip, program, ideal_memory)
    bw = float("inf") if ideal_memory else chip.dram.peak_bandwidth
    rows = tuple(_layer_row(chip, lp, st, bw)
                 for lp, st in zip(program.layers, stats, strict=True))
    rows = tuple({**row, "bound": rt.bound,
                  "limit": layer_limit({**row, "bound": rt.bound}, _fill_name(chip, lp))}
                 for row, rt, lp in zip(rows, times, program.layers, strict=True))
    return _result(chip, program, rows, [], totals, batch, meta, host)
