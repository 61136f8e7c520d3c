"""One chip's run: chip + workload → compile → event model (or roofline) → energy → Result.

:func:`npusim.simulate.simulate` is the entry point (it also takes a system of many chips);
the system package runs each of its chips through :func:`simulate_chip` here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from npusim.assemble import build_result, roofline_result
from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TileProgram
from npusim.compiler.weights import place_weights
from npusim.engine.events import run_program
from npusim.engine.host import HostPath, host_path
from npusim.engine.memory import MemoryModel, make_memory
from npusim.errors import SimulationError
from npusim.result import Result, histogram_percentile
from npusim.spec.arch import Chip, load_arch
from npusim.workloads.ir import Workload

__all__ = ["FIDELITIES", "check_fidelity", "simulate_chip", "simulate_program"]

#: ``roofline``: per-layer max(compute, memory, vector) bound of the compiled program, no
#: event model (npusim/engine/roofline.py); ``event``: the SimPy tile model.
FIDELITIES: tuple[str, ...] = ("roofline", "event")


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the duration (and back on only if it was on).

    A simulation allocates many short-lived objects that reference counting frees, and
    makes almost no reference cycles; but each of its allocations counts towards a full
    collection, which walks every object in the process (numba's and pandas' included) and
    cost 0.1 s of a 0.3 s LLaMA-2-70B decode step every other call. Garbage the run leaves
    in cycles is collected at the first collection after it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def as_chip(chip: Chip | str | Path) -> Chip:
    return chip if isinstance(chip, Chip) else load_arch(chip)


def check_fidelity(fidelity: str) -> None:
    if fidelity not in FIDELITIES:
        raise ValueError(f"unknown fidelity {fidelity!r} (use {', '.join(map(repr, FIDELITIES))})")


@_cycle_collector_paused()
def simulate_program(chip: Chip | str | Path, program: TileProgram, *,
                     memory: str | MemoryModel = "bandwidth", trace: bool = False,
                     batch: int = 1, fidelity: str = "event") -> Result:
    """Run a compiled (or user-written) tile program on ``chip``.

    ``fidelity="roofline"`` skips the event model and bounds each layer by its compute,
    DRAM and vector totals (the memory model is then only ``ideal`` or peak bandwidth).
    """
    return _run_program(chip, program, memory, trace, batch, fidelity)


def _run_program(chip: Chip | str | Path, program: TileProgram, memory: str | MemoryModel,
                 trace: bool, batch: int, fidelity: str, extra: dict[str, Any] | None = None,
                 host: HostPath | None = None) -> Result:
    """:func:`simulate_program`, with ``extra`` meta and the host path in series (given
    ``host``) put into the rows before they become the Result."""
    check_fidelity(fidelity)
    c = as_chip(chip)
    if program.n_cores != c.n_cores:
        raise SimulationError(f"the tile program is for {program.n_cores} core(s); "
                              f"{c.name!r} has {c.n_cores}")
    if fidelity == "roofline":
        if isinstance(memory, str) and memory not in ("bandwidth", "cycle", "ideal"):
            make_memory(c, memory)  # raises the memory models' own ValueError
        name = memory if isinstance(memory, str) else type(memory).__name__
        return roofline_result(c, program, batch=batch, ideal_memory=memory == "ideal",
                               meta={"fidelity": "roofline", "memory_model": name,
                                     "weights_resident": program.weights_resident,
                                     **(extra or {})}, host=host)
    mem = make_memory(c, memory) if isinstance(memory, str) else memory
    stats, events = run_program(c, program, mem, trace=trace)
    meta: dict[str, object] = {
        "memory_model": memory if isinstance(memory, str) else type(memory).__name__,
        "weights_resident": program.weights_resident}
    hist = getattr(mem, "read_latency_histogram", None)
    if hist is not None:
        counts, width = hist()
        meta["dram_read_latency_p99_s"] = histogram_percentile(counts, width, 99.0)
    meta.update(extra or {})
    return build_result(c, program, stats, events, mem.counters(), batch=batch, meta=meta,
                        memory_bandwidth=mem.peak_bandwidth, host=host)


@_cycle_collector_paused()
def simulate_chip(chip: Chip | str | Path, workload: Workload, *,
                  memory: str | MemoryModel = "bandwidth", trace: bool = False,
                  weights_resident: bool | None = None, fidelity: str = "event",
                  host: bool = False) -> Result:
    """:func:`npusim.simulate.simulate` on one chip (its docstring tells the keywords)."""
    check_fidelity(fidelity)
    c = as_chip(chip)
    placed = place_weights(c, workload, weights_resident)
    program = compile_workload(c, workload, ideal=memory == "ideal",
                               weights_resident=placed.resident)
    batch = int(workload.meta.get("batch", 1))  # type: ignore[call-overload]
    # The host path is a step of the run: in series with the layers before the Result.
    return _run_program(c, program, memory, trace, batch, fidelity,
                        {"weight_bytes": placed.weight_bytes, "weights_reason": placed.reason},
                        host_path(c, workload) if host else None)
