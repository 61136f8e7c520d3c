"""A simulation as a timeline: Chrome trace-event JSON that the Perfetto UI opens.

Layout (one "process" per hardware block, one "thread" per engine):

    npusim            thread "layers": one span per layer (layers are separated by barriers)
    core <c>          threads "DMA in", "array+vector", "DMA out": one interval per tile,
                      named ``<layer> t<tile>``, args carry the layer index, bytes, cycles
    DRAM              one thread per channel: the busy intervals of each channel

Intervals on one thread never overlap. The engine keeps at most one load in flight per core,
and computes tiles in order, but two stores may be in flight at once (tile ``i``'s outputs
drain while tile ``i+1`` computes and may still drain when ``i+1``'s store starts), so an
engine whose intervals would overlap gets extra threads ("DMA out 2" …), filled greedily.

Tile events come from ``simulate(..., trace=True)``; for a result simulated without them, the
tile program is run again with tracing (the engine is deterministic, so this is the same
run). DRAM channel activity is known for the ``bandwidth`` memory model: the result's DMA
transfers are replayed, in the order the engine issued them, into a fresh
:class:`~npusim.engine.memory.BandwidthDram` that records each channel's share. Contiguous
shares of one layer and direction on a channel are merged into one interval, which keeps
files of many-channel chips small. Other memory models give no channel threads (the trace
says so in ``otherData``). Times are microseconds, as the format requires.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from npusim.compiler.program import COL, LayerProgram
from npusim.engine.events import TileEvent
from npusim.errors import SimulationError
from npusim.report.result import Result

__all__ = ["ChannelRecord", "channel_records", "chrome_trace", "to_chrome_trace",
           "traced_events"]

_ENGINES = (("dma_in", "DMA in"), ("compute", "array+vector"), ("dma_out", "DMA out"))
_LAYER_PID = 1
_CORE_PID0 = 2


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
    from npusim.simulate import simulate_program

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


def _us(t: float) -> float:
    return t * 1e6


def _x(name: str, start_s: float, end_s: float, pid: int, tid: int, cat: str,
       args: dict[str, Any]) -> dict[str, Any]:
    ts = _us(start_s)
    return {"name": name, "cat": cat, "ph": "X", "ts": ts, "dur": max(_us(end_s) - ts, 0.0),
            "pid": pid, "tid": tid, "args": args}


def _meta(kind: str, pid: int, tid: int, value: str | int) -> dict[str, Any]:
    key = "name" if kind.endswith("_name") else "sort_index"
    return {"name": kind, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": {key: value}}


def _lanes(items: list[tuple[float, float, int]]) -> dict[int, int]:
    """Greedy interval colouring: item id → lane, so intervals on one lane never overlap."""
    ends: list[float] = []
    lane_of: dict[int, int] = {}
    for start, end, ident in sorted(items):
        for lane, last in enumerate(ends):
            if start >= last:
                ends[lane] = end
                lane_of[ident] = lane
                break
        else:
            lane_of[ident] = len(ends)
            ends.append(end)
    return lane_of


def _core_events(result: Result, events: tuple[TileEvent, ...]) -> list[dict[str, Any]]:
    layers = _layer_map(result)
    clock = result.chip.clock
    out: list[dict[str, Any]] = []
    by_track: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        by_track[(e.core, e.engine)].append(i)
    named: set[tuple[int, int]] = set()
    for (core, engine), idx in sorted(by_track.items()):
        pid = _CORE_PID0 + core
        base = next(k for k, (eng, _) in enumerate(_ENGINES) if eng == engine)
        label = dict(_ENGINES)[engine]
        lane_of = _lanes([(events[i].start_s, events[i].end_s, i) for i in idx])
        for i in idx:
            e = events[i]
            lane = lane_of[i]
            tid = 1 + base if lane == 0 else 10 + 10 * base + lane
            if (pid, tid) not in named:
                named.add((pid, tid))
                out.append(_meta("thread_name", pid, tid,
                                 label if lane == 0 else f"{label} {lane + 1}"))
                out.append(_meta("thread_sort_index", pid, tid, 10 * base + lane))
            lp = layers[e.layer]
            row = lp.tiles[e.core][e.tile]
            args: dict[str, Any] = {"layer": e.layer, "core": e.core, "tile": e.tile}
            if engine == "compute":
                args.update(cycles=float(max(row[COL["array_cycles"]],
                                             row[COL["vector_cycles"]])),
                            array_cycles=float(row[COL["array_cycles"]]),
                            vector_cycles=float(row[COL["vector_cycles"]]),
                            macs=float(row[COL["macs"]]),
                            bytes=float(row[COL["sram_read_bytes"]]
                                        + row[COL["sram_write_bytes"]]))
            else:
                write = engine == "dma_out"
                args.update(bytes=float(row[COL["dram_write_bytes" if write
                                                else "dram_read_bytes"]]),
                            cycles=(e.end_s - e.start_s) * clock)
            out.append(_x(f"{lp.name} t{e.tile}", e.start_s, e.end_s, pid, tid, engine, args))
    return out


def _dram_events(result: Result, records: list[ChannelRecord], pid: int) -> list[dict[str, Any]]:
    layers = _layer_map(result)
    out: list[dict[str, Any]] = []
    by_ch: dict[int, list[ChannelRecord]] = defaultdict(list)
    for r in records:
        by_ch[r.channel].append(r)
    for ch in range(result.chip.dram.n_channels):
        out.append(_meta("thread_name", pid, ch, f"channel {ch}"))
        out.append(_meta("thread_sort_index", pid, ch, ch))
        # Merge back-to-back shares of one layer and direction (a channel is a FIFO server).
        run: list[ChannelRecord] = []

        def flush(run: list[ChannelRecord], ch: int = ch) -> None:
            if not run:
                return
            first = run[0]
            name = layers[first.layer].name
            name += f" t{first.tile}" if len(run) == 1 else ""
            name += " wr" if first.write else " rd"
            out.append(_x(name, first.start_s, run[-1].end_s, pid, ch, "dram",
                          {"layer": first.layer, "bytes": float(sum(r.nbytes for r in run)),
                           "transfers": len(run), "write": first.write,
                           "cycles": (run[-1].end_s - first.start_s) * result.chip.clock}))

        for r in sorted(by_ch.get(ch, []), key=lambda r: r.start_s):
            if run and (r.layer != run[-1].layer or r.write != run[-1].write
                        or r.start_s > run[-1].end_s):
                flush(run)
                run = []
            run.append(r)
        flush(run)
    return out


def chrome_trace(result: Result) -> dict[str, Any]:
    """The trace document (a dict ready for ``json.dump``)."""
    events = traced_events(result)
    chip = result.chip
    out: list[dict[str, Any]] = [
        _meta("process_name", _LAYER_PID, 0, f"npusim: {chip.name} x {result.workload_name}"),
        _meta("process_sort_index", _LAYER_PID, 0, 0),
        _meta("thread_name", _LAYER_PID, 0, "layers"),
    ]
    df = result.layers
    ends = np.cumsum(df["latency_s"].to_numpy(float)) if len(df) else np.zeros(0)
    for i, lp in enumerate(result.program.layers):
        start = float(ends[i - 1]) if i else 0.0
        row = df.iloc[i]
        out.append(_x(lp.name, start, float(ends[i]), _LAYER_PID, 0, "layer",
                      {"layer": lp.index, "op": lp.op, "bound": str(row["bound"]),
                       "bytes": float(row["dram_read_bytes"] + row["dram_write_bytes"]),
                       "cycles": float(row["cycles"]), "macs": int(row["macs"])}))
    for c in range(chip.n_cores):
        out.append(_meta("process_name", _CORE_PID0 + c, 0, f"core {c}"))
        out.append(_meta("process_sort_index", _CORE_PID0 + c, 0, 1 + c))
    out.extend(_core_events(result, events))
    records = channel_records(result, events)
    notes = []
    if records is not None:
        pid = _CORE_PID0 + chip.n_cores
        out.append(_meta("process_name", pid, 0, f"DRAM ({chip.dram.standard})"))
        out.append(_meta("process_sort_index", pid, 0, 1 + chip.n_cores))
        out.extend(_dram_events(result, records, pid))
    else:
        notes.append(f"no DRAM channel threads: the {result.meta.get('memory_model')!r} "
                     "memory model does not record per-channel activity")
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"chip": chip.name, "workload": result.workload_name,
                          "memory_model": str(result.meta.get("memory_model")),
                          "time_unit": "us", "notes": notes}}


def to_chrome_trace(result: Result, path: str | os.PathLike[str]) -> Path:
    """Write ``result``'s timeline as Chrome trace-event JSON (atomically); return the path."""
    from npusim._io import atomic_write

    doc = chrome_trace(result)
    p = Path(path)
    atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, separators=(",", ":"))))
    return p
