"""A system step as a timeline: Chrome trace-event JSON with a track per chip and per link.

Layout: one "process" per chip used (``chip <i> (replica d, stage s, rank t)``), whose one
thread holds its compute segments and its waits in collectives and for pipeline inputs, and
one process ``links`` with a thread per link direction that carried bytes, holding each
transfer's occupation of it (named by cause, args carry the bytes). Spans on one thread
never overlap: a chip runs its segments in turn, a link carries one transfer at a time.
The spans are recorded by ``simulate_system(..., trace=True)``; this module only formats.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npusim.errors import SimulationError

if TYPE_CHECKING:
    from npusim.system.result import SystemResult

__all__ = ["system_trace", "to_system_trace"]


def _x(name: str, start_s: float, end_s: float, pid: int, tid: int, cat: str,
       args: dict[str, Any]) -> dict[str, Any]:
    ts = start_s * 1e6
    return {"name": name, "cat": cat, "ph": "X", "ts": ts, "dur": max(end_s * 1e6 - ts, 0.0),
            "pid": pid, "tid": tid, "args": args}


def _meta(kind: str, pid: int, tid: int, value: str | int) -> dict[str, Any]:
    key = "name" if kind.endswith("_name") else "sort_index"
    return {"name": kind, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": {key: value}}


def system_trace(result: SystemResult) -> dict[str, Any]:
    """The trace document (a dict ready for ``json.dump``)."""
    step = result.step
    if not step.chip_spans:
        raise SimulationError("this result has no recorded timeline: run simulate_system "
                              "with trace=True")
    out: list[dict[str, Any]] = []
    pids: dict[int, int] = {}
    for i, st in enumerate(step.chips):
        pid = pids[st.position] = 1 + i
        out.append(_meta("process_name", pid, 0, f"chip {st.position} (replica {st.replica}, "
                                                 f"stage {st.stage}, rank {st.rank})"))
        out.append(_meta("process_sort_index", pid, 0, i))
        out.append(_meta("thread_name", pid, 0, "compute / comm"))
    for sp in step.chip_spans:
        out.append(_x(sp.name, sp.start_s, sp.end_s, pids[sp.chip], 0, sp.kind, {}))
    link_pid = 1 + len(step.chips)
    out.append(_meta("process_name", link_pid, 0, f"links ({result.system.link.kind})"))
    out.append(_meta("process_sort_index", link_pid, 0, len(step.chips)))
    tids: dict[str, int] = {}
    for ls in step.link_spans:
        if ls.link not in tids:
            tids[ls.link] = len(tids)
            out.append(_meta("thread_name", link_pid, tids[ls.link], ls.link))
        out.append(_x(ls.cause, ls.start_s, ls.end_s, link_pid, tids[ls.link], "link",
                      {"bytes": ls.nbytes}))
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"system": result.system.name, "workload": result.workload_name,
                          "plan": result.plan.describe(), "time_unit": "us"}}


def to_system_trace(result: SystemResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result``'s timeline as Chrome trace-event JSON (atomically); return the path."""
    from npusim._io import atomic_write

    doc = system_trace(result)
    p = Path(path)
    atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, separators=(",", ":"))))
    return p
