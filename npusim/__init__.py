"""npusim: a cycle-approximate NPU architecture simulator.

    >>> import npusim
    >>> chip = npusim.load_arch("tpu_v1")
    >>> res = npusim.simulate(chip, npusim.workloads.resnet50())
    >>> res.layers.head(); res.summary()["latency_s"]
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from npusim import report as _report  # noqa: F401  (registers the records' views)
from npusim._version import __version__
from npusim.errors import MappingError, NpusimError, SimulationError, SpecError, WorkloadError

if TYPE_CHECKING:
    from npusim import sweep, workloads
    from npusim.compiler.lower import compile_workload
    from npusim.compiler.program import TileProgram, load_program, save_program
    from npusim.llm import run_llm
    from npusim.result import Result
    from npusim.serving import serve
    from npusim.simulate import simulate, simulate_program
    from npusim.spec.arch import Chip, load_arch, loads_arch
    from npusim.spec.system import System, load_system, loads_system
    from npusim.system import SystemResult, run_llm_system, simulate_system
    from npusim.workloads.precision import parse_weights

__all__ = [
    "Chip",
    "MappingError",
    "NpusimError",
    "Result",
    "SimulationError",
    "SpecError",
    "System",
    "SystemResult",
    "TileProgram",
    "WorkloadError",
    "__version__",
    "compile_workload",
    "load_arch",
    "load_program",
    "load_system",
    "loads_arch",
    "loads_system",
    "parse_weights",
    "run_llm",
    "run_llm_system",
    "save_program",
    "serve",
    "simulate",
    "simulate_program",
    "simulate_system",
    "sweep",
    "workloads",
]


#: Where each public name lives: imported on first use, so ``import npusim`` (and every
#: ``npusim`` command, which imports it first) pays for no numba, pandas or SimPy until a
#: name that needs them is used.
_LAZY: dict[str, str] = {
    "compile_workload": "npusim.compiler.lower", "TileProgram": "npusim.compiler.program",
    "load_program": "npusim.compiler.program", "save_program": "npusim.compiler.program",
    "Result": "npusim.result", "simulate_program": "npusim.simulate_chip",
    "Chip": "npusim.spec.arch", "load_arch": "npusim.spec.arch", "loads_arch": "npusim.spec.arch",
    "System": "npusim.spec.system", "load_system": "npusim.spec.system",
    "loads_system": "npusim.spec.system", "SystemResult": "npusim.system.result",
    "run_llm_system": "npusim.system.llm", "simulate_system": "npusim.system.simulate",
    "serve": "npusim.serving", "run_llm": "npusim.llm",
    "parse_weights": "npusim.workloads.precision",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("sweep", "workloads"):  # the subpackages themselves
        return importlib.import_module(f"npusim.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npusim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``npusim.simulate`` is the function, as before the names became lazy: importing the
    submodule ``npusim.simulate`` (which sets the package attribute of that name) must not
    replace it."""

    @property
    def simulate(self) -> Any:
        from npusim.simulate import simulate

        return simulate

    @simulate.setter
    def simulate(self, value: Any) -> None:
        pass  # the submodule: reached through ``from npusim.simulate import …``


sys.modules[__name__].__class__ = _Package
