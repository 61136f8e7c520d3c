"""npusim: a cycle-approximate NPU architecture simulator.

    >>> import npusim
    >>> chip = npusim.load_arch("tpu_v1")
    >>> res = npusim.simulate(chip, npusim.workloads.resnet50())
    >>> res.layers.head(); res.summary()["latency_s"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from npusim import workloads
from npusim._version import __version__
from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TileProgram, load_program, save_program
from npusim.errors import MappingError, NpusimError, SimulationError, SpecError, WorkloadError
from npusim.llm import run_llm
from npusim.report.result import Result
from npusim.simulate import simulate, simulate_program
from npusim.spec.arch import Chip, load_arch, loads_arch
from npusim.spec.system import System, load_system, loads_system
from npusim.system import SystemResult, run_llm_system, simulate_system
from npusim.workloads.precision import parse_weights

if TYPE_CHECKING:
    from npusim import sweep
    from npusim.serving import serve

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


def __getattr__(name: str) -> Any:
    # ``npusim.sweep`` is imported on first use: a plain run needs none of it (cold start).
    if name == "sweep":
        import importlib

        return importlib.import_module("npusim.sweep")
    if name == "serve":  # serving (SimPy request model) likewise
        from npusim.serving import serve

        return serve
    raise AttributeError(f"module 'npusim' has no attribute {name!r}")
