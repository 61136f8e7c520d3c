"""Design-space sweeps: expand a grid of chips, run every point (local processes or Dask),
cache each run by content hash, return one table, find its Pareto front.

    >>> import npusim.sweep
    >>> df = npusim.sweep.run_sweep("workloads/sweeps/small.yaml", workers=2)
    >>> front = df[npusim.sweep.pareto_front(df, "latency_s,energy_j,area_mm2")]

The package itself is callable, ``npusim.sweep(spec, ...)`` being ``run_sweep(spec, ...)``,
so it can be exposed as ``npusim.sweep`` without shadowing the subpackage.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from npusim.sweep.cache import DEFAULT_CACHE_DIR, PointCache
from npusim.sweep.expand import expand
from npusim.sweep.pareto import pareto_front, pareto_mask
from npusim.sweep.run import METRIC_COLUMNS, layers_of, run_sweep
from npusim.sweep.spec import Sweep, load_sweep, loads_sweep

__all__ = [
    "DEFAULT_CACHE_DIR",
    "METRIC_COLUMNS",
    "PointCache",
    "Sweep",
    "expand",
    "layers_of",
    "load_sweep",
    "loads_sweep",
    "pareto_front",
    "pareto_mask",
    "run_sweep",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return run_sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
