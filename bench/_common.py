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


def bench_network(preset: str, workload_expr: str, label: str, repeat: int, memory: str,
                  starts: bool) -> dict[str, Any]:
    """Wall time of ``npusim.simulate`` for the workload ``workload_expr`` builds (Python
    source, e.g. ``"npusim.workloads.resnet50()"``): warm medians in this process after one
    untimed call, and optionally whole-process cold and warm-cache starts."""
    import npusim

    chip = npusim.load_arch(preset)
    wl = eval(workload_expr, {"npusim": npusim})  # a literal from our own scripts

    def run() -> Any:
        return npusim.simulate(chip, wl, memory=memory)

    run()  # numba compiles or loads its cache here
    med, _times, res = timed(run, repeat)
    s = res.summary()
    row: dict[str, Any] = {
        "preset": preset, "workload": label, "memory": memory, "warm_s": med,
        "simulated_cycles": s["cycles"], "cycles_per_wall_s": s["cycles"] / med,
        "tiles": res.program.n_tiles, "tiles_per_wall_s": res.program.n_tiles / med,
        "peak_mib": peak_memory_mib(run), "latency_ms": s["latency_s"] * 1e3,
    }
    if starts:
        code = (f"import npusim; npusim.simulate(npusim.load_arch({preset!r}), "
                f"{workload_expr}, memory={memory!r})")
        row["cold_process_s"] = cold_start(code)
        row["warm_process_s"] = warm_start(code)
    return row


def network_main(doc: str, workload_expr: str, label: str, default_presets: str) -> int:
    """The command line shared by bench_resnet.py and bench_bert.py."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--presets", default=default_presets)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--memory", default="bandwidth")
    ap.add_argument("--quick", action="store_true", help="one preset, 2 repeats, no cold start")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    presets = args.presets.split(",")[:1] if args.quick else args.presets.split(",")
    rows = [bench_network(p, workload_expr, label, 2 if args.quick else args.repeat,
                          args.memory, not args.quick) for p in presets]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        line = (f"{r['preset']:10s} {label} [{r['memory']}]: warm {r['warm_s'] * 1e3:8.1f} ms "
                f"(median), {r['cycles_per_wall_s'] / 1e6:8.1f} M simulated cycles/s, "
                f"{r['tiles']:.0f} tiles ({r['tiles_per_wall_s'] / 1e3:.0f} k/s), "
                f"peak {r['peak_mib']:.1f} MiB")
        if "cold_process_s" in r:
            line += (f", process cold {r['cold_process_s']:.1f} s, "
                     f"process warm-cache {r['warm_process_s']:.1f} s")
        print(line)
    return 0
