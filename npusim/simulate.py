"""``simulate``: chip + workload → compile → event model (or roofline) → energy → Result.

Given a system of many chips instead, ``simulate`` hands the run to
:func:`npusim.system.simulate_system` (imported on use: the system package itself builds on
this module).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from npusim.assemble import build_result, roofline_result
from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TileProgram
from npusim.compiler.weights import place_weights
from npusim.engine.events import run_program
from npusim.engine.memory import MemoryModel, make_memory
from npusim.errors import SimulationError
from npusim.report.result import Result, histogram_percentile
from npusim.spec.arch import Chip, load_arch
from npusim.spec.system import System
from npusim.workloads.ir import Workload

if TYPE_CHECKING:
    from npusim.system.result import SystemResult

__all__ = ["FIDELITIES", "simulate", "simulate_program", "system_and_plan"]

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


def _chip(chip: Chip | str | Path) -> Chip:
    return chip if isinstance(chip, Chip) else load_arch(chip)


def _check_fidelity(fidelity: str) -> None:
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
    _check_fidelity(fidelity)
    c = _chip(chip)
    if program.n_cores != c.n_cores:
        raise SimulationError(f"the tile program is for {program.n_cores} core(s); "
                              f"{c.name!r} has {c.n_cores}")
    if fidelity == "roofline":
        if isinstance(memory, str) and memory not in ("bandwidth", "cycle", "ideal"):
            make_memory(c, memory)  # raises the memory models' own ValueError
        name = memory if isinstance(memory, str) else type(memory).__name__
        return roofline_result(c, program, batch=batch, ideal_memory=memory == "ideal",
                               meta={"fidelity": "roofline", "memory_model": name,
                                     "weights_resident": program.weights_resident})
    mem = make_memory(c, memory) if isinstance(memory, str) else memory
    stats, events = run_program(c, program, mem, trace=trace)
    meta: dict[str, object] = {
        "memory_model": memory if isinstance(memory, str) else type(memory).__name__,
        "weights_resident": program.weights_resident}
    hist = getattr(mem, "read_latency_histogram", None)
    if hist is not None:
        counts, width = hist()
        meta["dram_read_latency_p99_s"] = histogram_percentile(counts, width, 99.0)
    return build_result(c, program, stats, events, mem.counters(), batch=batch, meta=meta,
                        memory_bandwidth=mem.peak_bandwidth)


def system_and_plan(target: Chip | System | str | Path, **plan: Any,
                    ) -> tuple[System | None, dict[str, Any]]:
    """The system ``target`` names (a System, a system YAML or a system preset; None for a
    chip) and the plan keywords (``tp``, ``pp``, ``dp``, ``micro_batches``, ``ep``,
    ``algorithm``)
    given, i.e. not None. Plan keywords given with a chip are a ``ValueError``."""
    given = {k: v for k, v in plan.items() if v is not None}
    if isinstance(target, System):
        return target, given
    system = None
    if not isinstance(target, Chip):
        from npusim.inputs import resolve_system

        system = resolve_system(str(target))
    if system is None and given:
        raise ValueError(f"{', '.join(given)} apply to a system of many chips (a System, a "
                         "system YAML or a system preset such as rngd_8card), not to one "
                         "chip")
    return system, given


def _simulate_on_system(system: System, workload: Workload, memory: str | MemoryModel,
                        trace: bool, weights_resident: bool | None, fidelity: str,
                        plan: dict[str, Any]) -> SystemResult:
    from npusim.system.simulate import simulate_system

    if fidelity != "event":
        raise ValueError(f"a system runs the event model; fidelity={fidelity!r} is for one chip")
    if not isinstance(memory, str):
        raise ValueError("a system takes a memory model by name (bandwidth, cycle, ideal), "
                         "not an instance: each chip builds its own")
    return simulate_system(system, workload, memory=memory, trace=trace,
                           weights_resident=weights_resident, **plan)


@overload
def simulate(chip: Chip, workload: Workload, *, memory: str | MemoryModel = ...,
             trace: bool = ..., weights_resident: bool | None = ...,
             fidelity: str = ..., host: bool = ...) -> Result: ...


@overload
def simulate(chip: System, workload: Workload, *, memory: str | MemoryModel = ...,
             trace: bool = ..., weights_resident: bool | None = ..., fidelity: str = ...,
             tp: int | None = ..., pp: int | None = ..., dp: int | None = ...,
             micro_batches: int | None = ..., ep: int | None = ...,
             algorithm: str | None = ...) -> SystemResult: ...


@overload
def simulate(chip: str | Path, workload: Workload, *, memory: str | MemoryModel = ...,
             trace: bool = ..., weights_resident: bool | None = ..., fidelity: str = ...,
             tp: int | None = ..., pp: int | None = ..., dp: int | None = ...,
             micro_batches: int | None = ..., ep: int | None = ...,
             algorithm: str | None = ..., host: bool = ...) -> Result | SystemResult: ...


def simulate(chip: Chip | System | str | Path, workload: Workload, *,
             memory: str | MemoryModel = "bandwidth", trace: bool = False,
             weights_resident: bool | None = None, fidelity: str = "event",
             tp: int | None = None, pp: int | None = None, dp: int | None = None,
             micro_batches: int | None = None, ep: int | None = None,
             algorithm: str | None = None,
             host: bool = False) -> Result | SystemResult:
    """Simulate ``workload`` on ``chip``, or on a system of many chips.

    ``chip`` is a :class:`~npusim.spec.arch.Chip`, a chip YAML path or preset name
    (``tpu_v1``) — the run returns a :class:`~npusim.report.result.Result` — or a
    :class:`~npusim.spec.system.System`, a system YAML path or system preset name
    (``rngd_8card``): then ``tp``, ``pp``, ``dp``, ``micro_batches``, ``ep`` and ``algorithm``
    (``ring`` or ``tree``) choose the plan, each defaulting to
    :func:`npusim.system.simulate_system`'s, and the run returns its
    :class:`~npusim.system.SystemResult`. Those keywords given with a chip are a
    ``ValueError``; so is ``fidelity="roofline"``, a memory model instance or ``host=True``
    with a system. The rest of this docstring is about one chip.

    ``memory`` is ``"bandwidth"`` (channels as bandwidth-and-latency servers, the default),
    ``"ideal"`` (infinite bandwidth; tiling ignores SRAM capacity: the SCALE-Sim reference
    point), ``"cycle"`` (the cycle-approximate DRAM model, when installed) or a
    :class:`~npusim.engine.memory.MemoryModel` instance. ``weights_resident``: ``None``
    (default) keeps weights in the shared on-chip SRAM when they all fit it, ``True``
    insists (a MappingError when they do not fit), ``False`` reads them from DRAM (see
    :mod:`npusim.compiler.weights`); ``summary()`` says which, under ``weights_resident``,
    ``weight_bytes`` and ``weights_reason``. ``fidelity`` is ``"event"`` (the SimPy tile model, default) or
    ``"roofline"`` (per layer the largest of compute, DRAM and vector time of the same
    compiled program: a lower bound, see :mod:`npusim.engine.roofline`). ``host=True``
    puts the host path in series with the layers: the input's upload over the chip's
    ``host`` link, the runtime's per-query and per-layer overheads and the result's
    download, under ``time_host_s`` (see :mod:`npusim.engine.host`); off by default, so a
    run is the chip's own time, as the scenarios turn it on.
    """
    _check_fidelity(fidelity)
    system, plan = system_and_plan(chip, tp=tp, pp=pp, dp=dp, micro_batches=micro_batches,
                                   ep=ep,                                   algorithm=algorithm)
    if system is not None:
        if host:
            raise ValueError("host=True is for one chip; a system's host link carries no "
                             "transfers in this model")
        return _simulate_on_system(system, workload, memory, trace, weights_resident,
                                   fidelity, plan)
    assert not isinstance(chip, System)  # system_and_plan took it
    return _simulate_chip(_chip(chip), workload, memory, trace, weights_resident, fidelity,
                          host)


@_cycle_collector_paused()
def _simulate_chip(c: Chip, workload: Workload, memory: str | MemoryModel, trace: bool,
                   weights_resident: bool | None, fidelity: str, host: bool = False) -> Result:
    placed = place_weights(c, workload, weights_resident)
    program = compile_workload(c, workload, ideal=memory == "ideal",
                               weights_resident=placed.resident)
    batch = int(workload.meta.get("batch", 1))  # type: ignore[call-overload]
    res = simulate_program(c, program, memory=memory, trace=trace, batch=batch,
                           fidelity=fidelity)
    res = replace(res, meta={**res.meta, "weight_bytes": placed.weight_bytes,
                             "weights_reason": placed.reason})
    if host:
        from npusim.engine.host import apply_host, host_path

        res = apply_host(res, host_path(c, workload))
    return res
