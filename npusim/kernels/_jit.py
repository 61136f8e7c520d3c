"""The one place numba flags are set for every kernel.

``cache=True`` keeps compiled kernels on disk between runs (the warm-start target);
``nogil=True`` lets Dask threads run kernels side by side. No fastmath: results must be
bit-identical to the plain-Python twins the tests compare against.
"""

from __future__ import annotations

import functools

import numba

__all__ = ["njit"]

njit = functools.partial(numba.njit, cache=True, nogil=True)
