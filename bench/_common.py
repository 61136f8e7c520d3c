"""Helpers shared by the benchmark scripts: medians of repeated runs, cold starts, memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Median wall seconds of ``repeat`` calls, all the times, and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def peak_memory_mib(fn: Callable[[], Any]) -> float:
    """Peak Python heap (MiB) while ``fn`` runs (tracemalloc: numpy buffers included)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def cold_start(code: str, repeat: int = 1) -> float:
    """Median wall seconds of a fresh interpreter running ``code`` with an empty numba cache."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def warm_start(code: str, repeat: int = 3) -> float:
    """Median wall seconds of a fresh interpreter with numba's on-disk cache already warm."""
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)
