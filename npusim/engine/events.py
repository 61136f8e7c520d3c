"""The SimPy chip model: every core runs its tiles against one shared memory system.

Per layer, each core is a process that walks its tiles with double buffering: while tile
``i`` computes, the DMA loads tile ``i+1`` into the other input buffer, and tile ``i``'s
outputs drain while tile ``i+1`` computes (an output buffer is reused only once its earlier
store has finished). The array and the vector unit work on a tile together (fused post-
processing), so a tile is busy for the larger of the two. A layer ends when its last core
finishes: layers are separated by a barrier.

A tile's ``noc_read_bytes`` (a shared operand other cores read from DRAM and multicast) come
over the on-chip network beside its own DRAM load: they stream at the core's NoC port rate
as the peers' DRAM reads (issued at the same time as its own) deliver them, so the load
ends at ``max(DRAM load done, start + NoC bytes / NoC rate) + NoC latency``. The part of a
wait for a load after its DRAM part has arrived is NoC time (``noc_wait_s``).

DRAM is reached only through the :class:`~npusim.engine.memory.MemoryModel` interface, so
contention between cores and DMA engines is whatever the memory model makes of requests
issued in simulated-time order. Time is in seconds.

With the bandwidth or ideal memory model and no trace, :func:`run_program` runs the
compiled twin of these processes (:mod:`npusim.kernels.events`): the same events in the
same order with the same arithmetic, so identical results, without a Python step per
event. The cycle-level DRAM, a user's own memory model and traced runs use SimPy.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field, fields

import numpy as np
import simpy

from npusim import progress
from npusim.compiler.program import COL, TileProgram
from npusim.engine.memory import BandwidthDram, IdealMemory, MemoryModel, traffic_counters
from npusim.errors import SimulationError
from npusim.kernels.events import (
    MEM_BANDWIDTH,
    MEM_IDEAL,
    STAT_FIELDS,
    WORK,
    WORK_COLUMNS,
    run_tiles,
)
from npusim.spec.arch import Chip

__all__ = ["CoreStats", "LayerStats", "TileEvent", "compiled_model", "run_program"]


@dataclass
class CoreStats:
    """Where one core's time in a layer went; the ``*_s`` causes add up to its busy span."""

    busy_s: float = 0.0  # array or vector busy
    array_s: float = 0.0
    vector_s: float = 0.0
    mac_s: float = 0.0  # the array at full rate: MACs / peak
    fill_drain_s: float = 0.0  # fold fill, skew and drain, and PEs idle in partial folds
    sram_stall_s: float = 0.0  # the array waiting on SRAM ports
    vector_extra_s: float = 0.0  # vector work not hidden under the array
    dma_wait_s: float = 0.0  # waiting for loads not hidden by double buffering
    store_wait_s: float = 0.0  # waiting for an output buffer to drain
    end_s: float = 0.0
    noc_wait_s: float = 0.0  # waiting for NoC bytes after the DRAM part of a load arrived


assert tuple(f.name for f in fields(CoreStats)) == STAT_FIELDS  # the kernel's order


@dataclass
class LayerStats:
    index: int
    start_s: float
    end_s: float
    cores: list[CoreStats]
    memory: dict[str, float]  # memory-model counter deltas over the layer
    #: reads per latency bin during the layer and the bin width (s), if the model keeps one
    read_latency_hist: tuple[np.ndarray, float] | None = None


@dataclass(frozen=True)
class TileEvent:
    """One interval on one engine of one core, for timelines."""

    layer: int
    core: int
    tile: int
    engine: str  # "dma_in", "compute", "dma_out"
    start_s: float
    end_s: float


@dataclass
class _Run:
    chip: Chip
    memory: MemoryModel
    trace: bool
    events: list[TileEvent] = field(default_factory=list)


def _core(env: simpy.Environment, run: _Run, layer: int, core: int, tiles: np.ndarray,
          stats: CoreStats, peak_macs_per_cycle: float) -> Generator[simpy.Event, object, None]:
    n = len(tiles)
    if n == 0:
        stats.end_s = env.now
        return
    clock = run.chip.clock
    mem = run.memory
    trace = run.trace
    dma_cap = run.chip.cores.core.dma.bytes_per_cycle
    dma_bps = dma_cap * clock if dma_cap else 0.0
    noc_bps, noc_lat = _noc_rate(run.chip)
    rd_col, wr_col = COL["dram_read_bytes"], COL["dram_write_bytes"]
    ra_col, wa_col = COL["read_addr"], COL["write_addr"]
    arr_col, vec_col = COL["array_cycles"], COL["vector_cycles"]
    comp_col, mac_col = COL["compute_cycles"], COL["macs"]
    noc_col = COL["noc_read_bytes"]
    rows = tiles.tolist()  # plain floats: numpy scalar access would dominate the loop
    mac_s = fill_s = sram_s = vec_extra_s = busy_s = array_s = vector_s = 0.0
    dma_wait_s = store_wait_s = noc_wait_s = 0.0

    def load(i: int, t: float) -> tuple[float, float]:
        """(when the DRAM part of tile i's inputs is in, when all of them are)."""
        nbytes = math.ceil(rows[i][rd_col])
        done = t
        if nbytes > 0:
            done = mem.transfer(t, nbytes, int(rows[i][ra_col]), False, core)
            if dma_bps:
                done = max(done, t + nbytes / dma_bps)
        dram_done = done
        noc = rows[i][noc_col]
        if noc > 0:
            stream = t + noc / noc_bps
            done = (stream if stream > done else done) + noc_lat
        if trace and (nbytes > 0 or noc > 0):
            run.events.append(TileEvent(layer, core, i, "dma_in", t, done))
        return dram_done, done

    dram_done, load_done = load(0, env.now)
    store_done = [env.now, env.now]  # per output buffer
    for i in range(n):
        row = rows[i]
        if load_done > env.now:
            d = load_done - env.now
            arrived = dram_done if dram_done > env.now else env.now
            noc_part = load_done - arrived
            noc_wait_s += noc_part
            dma_wait_s += d - noc_part
            yield env.timeout(d)
        if store_done[i % 2] > env.now:  # the output buffer still drains tile i-2
            store_wait_s += store_done[i % 2] - env.now
            yield env.timeout(store_done[i % 2] - env.now)
        if i + 1 < n:
            dram_done, load_done = load(i + 1, env.now)
        a = row[arr_col] / clock
        v = row[vec_col] / clock
        busy = a if a > v else v
        start = env.now
        if busy > 0:
            yield env.timeout(busy)
        busy_s += busy
        array_s += a
        vector_s += v
        if a > 0:
            ideal = row[mac_col] / peak_macs_per_cycle / clock if peak_macs_per_cycle else 0.0
            comp = row[comp_col] / clock
            mac_s += ideal
            fill_s += comp - ideal
            sram_s += a - comp
        vec_extra_s += busy - a
        if trace:
            run.events.append(TileEvent(layer, core, i, "compute", start, env.now))
        nbytes = math.ceil(row[wr_col])
        if nbytes > 0:
            t0 = env.now
            done = mem.transfer(t0, nbytes, int(row[wa_col]), True, core)
            if dma_bps:
                done = max(done, t0 + nbytes / dma_bps)
            store_done[i % 2] = done
            if trace:
                run.events.append(TileEvent(layer, core, i, "dma_out", t0, done))
    last = max(store_done)
    if last > env.now:
        store_wait_s += last - env.now
        yield env.timeout(last - env.now)
    stats.busy_s, stats.array_s, stats.vector_s = busy_s, array_s, vector_s
    stats.mac_s, stats.fill_drain_s, stats.sram_stall_s = mac_s, fill_s, sram_s
    stats.vector_extra_s = vec_extra_s
    stats.dma_wait_s, stats.store_wait_s = dma_wait_s, store_wait_s
    stats.noc_wait_s = noc_wait_s
    stats.end_s = env.now


def _noc_rate(chip: Chip) -> tuple[float, float]:
    """The NoC's per-core receive rate (B/s; inf without a NoC) and its latency (s)."""
    if chip.noc is None:
        return math.inf, 0.0
    return chip.noc.bytes_per_cycle * chip.clock, chip.noc.latency_cycles / chip.clock


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def _tile_work(tiles: np.ndarray, peaks: np.ndarray, clock: float) -> np.ndarray:
    """Per-tile times (s) and DMA requests from tile-program rows, as the SimPy model
    computes them (the same divisions, so the same floats). ``peaks``: each tile's array
    MACs per cycle (0: none)."""
    work = np.zeros((len(tiles), len(WORK_COLUMNS)))
    w = WORK
    work[:, w["array_s"]] = tiles[:, COL["array_cycles"]] / clock
    work[:, w["vector_s"]] = tiles[:, COL["vector_cycles"]] / clock
    # The array and the vector unit work on a tile together: it takes the longer of the two.
    work[:, w["busy_s"]] = np.maximum(work[:, w["array_s"]], work[:, w["vector_s"]])
    work[:, w["compute_s"]] = tiles[:, COL["compute_cycles"]] / clock
    on = peaks != 0
    work[on, w["mac_s"]] = tiles[on, COL["macs"]] / peaks[on] / clock
    work[:, w["read_bytes"]] = np.ceil(tiles[:, COL["dram_read_bytes"]])
    work[:, w["read_addr"]] = np.trunc(tiles[:, COL["read_addr"]])
    work[:, w["write_bytes"]] = np.ceil(tiles[:, COL["dram_write_bytes"]])
    work[:, w["write_addr"]] = np.trunc(tiles[:, COL["write_addr"]])
    work[:, w["noc_bytes"]] = tiles[:, COL["noc_read_bytes"]]
    return work


def compiled_model(memory: MemoryModel, trace: bool = False) -> int | None:
    """The compiled event model's code for ``memory``, or None when only SimPy can run it
    (a traced run, a model with records or a cycle-level DRAM, a user's own model)."""
    if trace:
        return None
    if type(memory) is BandwidthDram and memory.records is None:
        return MEM_BANDWIDTH
    if type(memory) is IdealMemory:
        return MEM_IDEAL
    return None


def _run_compiled(chip: Chip, program: TileProgram, memory: BandwidthDram | IdealMemory,
                  kind: int) -> list[LayerStats]:
    tiles, offsets, counts = program.packed
    core = chip.cores.core
    layer_peak = [core.peak_macs_per_cycle(lp.unit, lp.precision) for lp in program.layers]
    peaks = np.repeat(np.array(layer_peak, dtype=np.float64), counts.sum(axis=1))
    work = _tile_work(tiles, peaks, chip.clock)
    dma_cap = chip.cores.core.dma.bytes_per_cycle
    params = np.zeros(8)
    params[0] = kind
    if isinstance(memory, BandwidthDram):
        params[1:5] = (memory.channel_bandwidth, memory.peak_bandwidth, memory.latency_s,
                       memory.interleave)
    params[5] = dma_cap * chip.clock if dma_cap else 0.0
    params[6:8] = _noc_rate(chip)
    state, busy = memory.array_state()
    n_layers, n_cores = offsets.shape
    times = np.zeros((n_layers, 2))
    core_stats = np.zeros((n_layers, n_cores, len(STAT_FIELDS)))
    traffic = np.zeros((n_layers, 4))
    run_tiles(work, offsets, counts, params, state, busy, times, core_stats, traffic,
              np.zeros((n_cores, 8)))
    memory.set_array_state(state, busy)
    memory.finish(float(times[-1, 1]))
    epb = memory.energy_parts  # J per byte by part (core, interface, phy)
    out = []
    rows = core_stats.tolist()
    spans = times.tolist()
    for li, (lp, (r0, w0, r1, w1)) in enumerate(zip(program.layers, traffic.tolist(),
                                                     strict=True)):
        cores = [CoreStats(*rows[li][c]) for c in range(len(lp.tiles))]
        out.append(LayerStats(lp.index, spans[li][0], spans[li][1], cores,
                              _delta(traffic_counters(r1, w1, epb),
                                     traffic_counters(r0, w0, epb))))
    return out


def run_program(chip: Chip, program: TileProgram, memory: MemoryModel,
                trace: bool = False, compiled: bool | None = None,
                ) -> tuple[list[LayerStats], list[TileEvent]]:
    """Run every layer of ``program``; return per-layer stats and, if asked, tile events.

    With the bandwidth or ideal memory model and no trace, the compiled twin of this SimPy
    model runs (npusim.kernels.events: the same events in the same order, identical
    results, far fewer Python steps); ``compiled=False`` forces SimPy, ``compiled=True``
    insists on the kernel.
    """
    if chip.noc is None and any(lp.total("noc_read_bytes") > 0 for lp in program.layers):
        raise SimulationError(f"the tile program moves bytes over an on-chip network; "
                              f"{chip.name!r} has none (no 'noc:' in its spec)")
    kind = compiled_model(memory, trace)
    if compiled and kind is None:
        raise ValueError(f"the compiled event model cannot run {type(memory).__name__} "
                         f"{'with a trace' if trace else ''}".rstrip())
    if kind is not None and compiled is not False and program.layers:
        return _run_compiled(chip, program, memory, kind), []  # type: ignore[arg-type]
    return _run_simpy(chip, program, memory, trace)


def _run_simpy(chip: Chip, program: TileProgram, memory: MemoryModel,
               trace: bool = False) -> tuple[list[LayerStats], list[TileEvent]]:
    env = simpy.Environment()
    run = _Run(chip, memory, trace)
    out: list[LayerStats] = []
    layers = progress.bar(len(program.layers), "layers", unit="layer")

    def top() -> Generator[simpy.Event, object, None]:
        hist = getattr(memory, "read_latency_histogram", None)
        for lp in program.layers:
            before = memory.counters()
            hist_before = hist() if hist else None
            start = env.now
            cores = [CoreStats() for _ in lp.tiles]
            peak = chip.cores.core.peak_macs_per_cycle(lp.unit, lp.precision)
            procs = [env.process(_core(env, run, lp.index, c, t, cores[c], peak))
                     for c, t in enumerate(lp.tiles)]
            yield simpy.AllOf(env, procs)
            delta_hist = None
            if hist and hist_before is not None:
                after, width = hist()
                delta_hist = (after - hist_before[0], width)
            out.append(LayerStats(lp.index, start, env.now, cores,
                                  _delta(memory.counters(), before), delta_hist))
            layers.update(1)

    env.process(top())
    with layers:
        env.run()
    memory.finish(env.now)
    return out, run.events
