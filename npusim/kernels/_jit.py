"""The one place numba flags are set for every kernel.

``cache=True`` keeps compiled kernels on disk between runs (the warm-start target);
``nogil=True`` lets Dask threads run kernels side by side. No fastmath: results must be
bit-identical to the plain-Python twins the tests compare against. The decorator keeps the
kernel's Python signature for type checkers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

from npusim import progress

progress.numba_imported()  # the CLI's compile notice starts now (npusim.progress)

__all__ = ["njit"]

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile ``fn`` with numba, cached on disk, releasing the GIL."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))
