"""``simulate``: chip + workload → compile → event model → energy → Result."""

from __future__ import annotations

from pathlib import Path

from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TileProgram
from npusim.engine.events import run_program
from npusim.engine.memory import MemoryModel, make_memory
from npusim.errors import SimulationError
from npusim.report.result import Result, _percentile, build_result
from npusim.spec.arch import Chip, load_arch
from npusim.workloads.ir import Workload

__all__ = ["simulate", "simulate_program"]


def _chip(chip: Chip | str | Path) -> Chip:
    return chip if isinstance(chip, Chip) else load_arch(chip)


def simulate_program(chip: Chip | str | Path, program: TileProgram, *,
                     memory: str | MemoryModel = "bandwidth", trace: bool = False,
                     batch: int = 1) -> Result:
    """Run a compiled (or user-written) tile program on ``chip``."""
    c = _chip(chip)
    if program.n_cores != c.n_cores:
        raise SimulationError(f"the tile program is for {program.n_cores} core(s); "
                              f"{c.name!r} has {c.n_cores}")
    mem = make_memory(c, memory) if isinstance(memory, str) else memory
    stats, events = run_program(c, program, mem, trace=trace)
    meta: dict[str, object] = {
        "memory_model": memory if isinstance(memory, str) else type(memory).__name__,
        "weights_resident": program.weights_resident}
    hist = getattr(mem, "read_latency_histogram", None)
    if hist is not None:
        counts, width = hist()
        meta["dram_read_latency_p99_s"] = _percentile(counts, width, 99.0)
    return build_result(c, program, stats, events, mem.counters(), batch=batch, meta=meta)


def simulate(chip: Chip | str | Path, workload: Workload, *,
             memory: str | MemoryModel = "bandwidth", trace: bool = False,
             weights_resident: bool | None = None) -> Result:
    """Simulate ``workload`` on ``chip``.

    ``memory`` is ``"bandwidth"`` (channels as bandwidth-and-latency servers, the default),
    ``"ideal"`` (infinite bandwidth; tiling ignores SRAM capacity: the SCALE-Sim reference
    point), ``"cycle"`` (the cycle-approximate DRAM model, when installed) or a
    :class:`~npusim.engine.memory.MemoryModel` instance. ``weights_resident``: see
    :func:`~npusim.compiler.lower.compile_workload` (default: when weights fit the shared
    on-chip SRAM).
    """
    c = _chip(chip)
    program = compile_workload(c, workload, ideal=memory == "ideal",
                               weights_resident=weights_resident)
    batch = int(workload.meta.get("batch", 1))  # type: ignore[call-overload]
    return simulate_program(c, program, memory=memory, trace=trace, batch=batch)
