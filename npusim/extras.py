"""Optional dependencies: imported when first needed, named with their install command when
missing.

The core install (numpy, numba, simpy, pyyaml, pandas, pydantic, matplotlib, tqdm) runs every
chip, workload and sweep on one machine. Three features need more, each an extra of the
``npusim`` package:

    onnx       ``npusim[onnx]``     importing ``.onnx`` models
    pyarrow    ``npusim[parquet]``  reading and writing ``.parquet`` tables and tile traces
    dask       ``npusim[dask]``     sweeps on a Dask cluster (``--scheduler``)

:func:`require` imports one of them or raises :class:`MissingExtraError`, an
:class:`~npusim.errors.NpusimError` (the CLI prints it as one line, exit 2) that is also an
``ImportError`` (code that catches that keeps working).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from npusim.errors import NpusimError

__all__ = ["EXTRAS", "MissingExtraError", "message", "require"]

#: top-level module -> (the feature that needs it, the package to install, the extra)
EXTRAS: dict[str, tuple[str, str, str]] = {
    "onnx": ("ONNX import", "onnx", "onnx"),
    "pyarrow": ("Parquet files", "pyarrow", "parquet"),
    "dask": ("a Dask sweep", "dask[distributed]", "dask"),
    "distributed": ("a Dask sweep", "dask[distributed]", "dask"),
}


class MissingExtraError(NpusimError, ImportError):
    """An optional package a feature needs is not installed."""


def message(module: str) -> str:
    """``<feature> needs the <package> package: pip install 'npusim[<extra>]'``."""
    feature, package, extra = EXTRAS[module.split(".")[0]]
    return f"{feature} needs the {package} package: pip install 'npusim[{extra}]'"


def require(module: str) -> ModuleType:
    """Import ``module`` (one of :data:`EXTRAS` or a submodule such as
    ``dask.distributed``), or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(message(module)) from None
