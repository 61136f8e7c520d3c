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

This module formats the tile events and the DRAM channel records that
:mod:`npusim.timeline` gathers (re-running an untraced result and replaying its
transfers). Contiguous shares of one layer and direction on a channel are merged into one
interval, which keeps files of many-channel chips small. Without channel records (memory
models other than ``bandwidth``) there are no channel threads, and the trace says so in
``otherData``. Times are microseconds, as the format requires.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from npusim.compiler.program import COL, LayerProgram
from npusim.engine.events import TileEvent
from npusim.result import Result
from npusim.timeline import ChannelRecord, channel_records, traced_events

__all__ = ["chrome_trace", "to_chrome_trace", "trace_document", "write_trace"]

_ENGINES = (("dma_in", "DMA in"), ("compute", "array+vector"), ("dma_out", "DMA out"))
_LAYER_PID = 1
_CORE_PID0 = 2


def _layer_map(result: Result) -> dict[int, LayerProgram]:
    return {lp.index: lp for lp in result.program.layers}


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


def trace_document(result: Result, events: tuple[TileEvent, ...],
                   records: list[ChannelRecord] | None) -> dict[str, Any]:
    """The trace document (a dict ready for ``json.dump``) of ``result``'s tile ``events``
    and DRAM channel ``records`` (None: the memory model records none)."""
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


def write_trace(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a trace document as compact JSON (atomically); return the path."""
    from npusim._io import atomic_write

    p = Path(path)
    atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, separators=(",", ":"))))
    return p


def chrome_trace(result: Result) -> dict[str, Any]:
    """The Chrome trace document of ``result`` (a dict ready for ``json.dump``)."""
    events = traced_events(result)
    return trace_document(result, events, channel_records(result, events))


def to_chrome_trace(result: Result, path: str | os.PathLike[str]) -> Path:
    """Write ``result``'s timeline as Chrome trace-event JSON (atomically); return the path."""
    return write_trace(chrome_trace(result), path)
