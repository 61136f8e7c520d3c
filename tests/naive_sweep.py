"""Slow, obvious reference implementations for the sweep tests."""

from __future__ import annotations

import numpy as np


def pareto_mask_naive(values: np.ndarray) -> np.ndarray:
    """O(n²): a finite row is on the front unless another finite row is <= in every
    column and < in one."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v).all(axis=1)
    out = np.zeros(len(v), dtype=bool)
    for i in range(len(v)):
        if not finite[i]:
            continue
        dominated = False
        for j in range(len(v)):
            if j != i and finite[j] and all(v[j] <= v[i]) and any(v[j] < v[i]):
                dominated = True
                break
        out[i] = not dominated
    return out


class CrashOnceWorkload:
    """Wraps a Workload; the first process other than ``parent_pid`` to read its layers
    creates ``marker`` and dies at once (a worker crash for the Dask retry test)."""

    def __init__(self, workload: object, marker: str, parent_pid: int) -> None:
        self._wl = workload
        self._marker = marker
        self._parent = parent_pid

    def __getattr__(self, name: str) -> object:
        import os

        if name == "layers" and os.getpid() != self._parent and not os.path.exists(self._marker):
            with open(self._marker, "w") as f:
                f.write(str(os.getpid()))
            os._exit(1)
        return getattr(self._wl, name)

    def __getstate__(self) -> dict[str, object]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
