"""npusim: a cycle-approximate NPU architecture simulator.

    >>> import npusim
    >>> chip = npusim.load_arch("tpu_v1")
    >>> res = npusim.simulate(chip, npusim.workloads.resnet50())
    >>> res.layers.head(); res.summary()["latency_s"]
"""

from __future__ import annotations

from npusim import sweep, workloads
from npusim._version import __version__
from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TileProgram, load_program, save_program
from npusim.errors import MappingError, NpusimError, SimulationError, SpecError, WorkloadError
from npusim.report.result import Result
from npusim.simulate import simulate, simulate_program
from npusim.spec.arch import Chip, load_arch, loads_arch

__all__ = [
    "Chip",
    "MappingError",
    "NpusimError",
    "Result",
    "SimulationError",
    "SpecError",
    "TileProgram",
    "WorkloadError",
    "__version__",
    "compile_workload",
    "load_arch",
    "load_program",
    "loads_arch",
    "save_program",
    "simulate",
    "simulate_program",
    "sweep",
    "workloads",
]
