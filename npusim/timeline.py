"""A run's timeline: its tile events and, for the bandwidth model, DRAM channel activity.

What :mod:`npusim.report.trace` draws. Tile events come from ``simulate(..., trace=True)``;
for a result simulated without them, the tile program is run again with tracing (the
engine is deterministic, so this is the same run). DRAM channel activity is known for the
``bandwidth`` memory model: the result's DMA transfers are replayed, in the order the engine
issued them, into a fresh :class:`~npusim.engine.memory.BandwidthDram` that records each
channel's share; other memory models give none. :func:`npusim.report.trace.chrome_trace`
gathers both here and formats them.
"""

from __future__ import annotations

from dataclasses import dataclass

from npusim.compiler.program import COL, LayerProgram
from npusim.engine.events import TileEvent
from npusim.errors import SimulationError
from npusim.result import Result

__all__ = ["ChannelRecord", "channel_records", "traced_events"]


@dataclass(frozen=True)
class ChannelRecord:
    """One transfer's share on one DRAM channel, tagged with the tile that issued it."""

    channel: int
    start_s: float
    end_s: float
    nbytes: float
    write: bool
    layer: int
    core: int
    tile: int


def traced_events(result: Result) -> tuple[TileEvent, ...]:
    """The result's tile events, re-running its tile program with tracing if it has none."""
    if result.events or not result.program.layers:
        return result.events
    model = result.meta.get("memory_model")
    if model not in ("bandwidth", "cycle", "ideal"):
        raise SimulationError("this result has no tile events and its memory model cannot be "
                              "rebuilt; simulate with trace=True")
    from npusim.simulate_chip import simulate_program

    again = simulate_program(result.chip, result.program, memory=model, trace=True,
                             batch=result.batch)
    return again.events


def _layer_map(result: Result) -> dict[int, LayerProgram]:
    return {lp.index: lp for lp in result.program.layers}


def channel_records(result: Result,
                    events: tuple[TileEvent, ...] | None = None) -> list[ChannelRecord] | None:
    """Per-channel DRAM activity of ``result``, or None when its memory model has none.

    Replays the DMA transfers of ``events`` (default: :func:`traced_events`) in issue order
    into a recording :class:`~npusim.engine.memory.BandwidthDram`; exact for results of the
    ``bandwidth`` model, whose state depends only on that sequence.
    """
    if result.meta.get("memory_model") != "bandwidth":
        return None
    from npusim.engine.memory import BandwidthDram

    evs = traced_events(result) if events is None else events
    layers = _layer_map(result)
    mem = BandwidthDram.from_chip(result.chip, record=True)
    recs = mem.records
    assert recs is not None
    out: list[ChannelRecord] = []
    for e in evs:  # appended by the engine at issue time, so already in issue order
        if e.engine == "compute":
            continue
        write = e.engine == "dma_out"
        row = layers[e.layer].tiles[e.core][e.tile]
        nbytes = int(row[COL["dram_write_bytes" if write else "dram_read_bytes"]])
        addr = int(row[COL["write_addr" if write else "read_addr"]])
        n0 = len(recs)
        mem.transfer(e.start_s, nbytes, addr, write, e.core)
        out.extend(ChannelRecord(ch, s0, s1, b, w, e.layer, e.core, e.tile)
                   for ch, s0, s1, b, w in recs[n0:])
    return out
