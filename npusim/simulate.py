"""``simulate``: chip + workload → compile → event model (or roofline) → energy → Result.

One chip's run is :mod:`npusim.simulate_chip`'s; given a system of many chips instead,
``simulate`` hands the run to :func:`npusim.system.simulate_system` (which builds on
``simulate_chip``, not on this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from npusim.engine.memory import MemoryModel
from npusim.result import Result
from npusim.simulate_chip import FIDELITIES, check_fidelity, simulate_chip, simulate_program
from npusim.spec.arch import Chip
from npusim.spec.system import System
from npusim.workloads.ir import Workload

if TYPE_CHECKING:
    from npusim.system.result import SystemResult

__all__ = ["FIDELITIES", "simulate", "simulate_program", "system_and_plan"]


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
    (``tpu_v1``) — the run returns a :class:`~npusim.result.Result` — or a
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
    check_fidelity(fidelity)
    system, plan = system_and_plan(chip, tp=tp, pp=pp, dp=dp, micro_batches=micro_batches,
                                   ep=ep,                                   algorithm=algorithm)
    if system is not None:
        if host:
            raise ValueError("host=True is for one chip; a system's host link carries no "
                             "transfers in this model")
        return _simulate_on_system(system, workload, memory, trace, weights_resident,
                                   fidelity, plan)
    assert not isinstance(chip, System)  # system_and_plan took it
    return simulate_chip(chip, workload, memory=memory, trace=trace,
                         weights_resident=weights_resident, fidelity=fidelity, host=host)
