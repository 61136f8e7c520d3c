"""Wall time of the cycle-approximate DRAM model (not a timed test).

    python bench/bench_dram.py [--quick] [--repeat N]

Cases: streaming reads on one HBM3 stack (16 channels = 32 pseudo-channels; target
<= 2 s for 1 GiB) and random reads (target <= 1 s for 100,000). "cold" is the first run in
a fresh process (numba compiles or loads its on-disk cache); "warm" is the median of the
repeats after it. ``--quick`` runs tiny sizes, for CI.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def stream(nbytes: int) -> tuple[float, float]:
    from npusim.dram.system import DramSystem
    from npusim.spec.dram_catalog import get_standard

    d = DramSystem(get_standard("HBM3-6400"), 32)
    t = time.perf_counter()
    end = d.stream(0, nbytes, False, 0)
    wall = time.perf_counter() - t
    return wall, nbytes / (end * d.tck_s) / 1e9


def random_reads(n: int) -> tuple[float, float]:
    from npusim.dram.system import DramSystem
    from npusim.spec.dram_catalog import get_standard

    std = get_standard("HBM3-6400")
    d = DramSystem(std, 32)
    addr = np.random.default_rng(0).integers(0, std.capacity_per_channel_bytes * 32 // 32, n) * 32
    t = time.perf_counter()
    done, *_ = d.run(addr, np.zeros(n, dtype=bool), 0)
    wall = time.perf_counter() - t
    return wall, n * 32 / (done.max() * d.tck_s) / 1e9


def _cold(case: str, size: int) -> float:
    code = (f"import sys; sys.path.insert(0, {sys.path[0]!r} + '/..'); "
            f"from bench_dram import {case}; print({case}({size})[0])")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=sys.path[0], check=True)
    total = time.perf_counter() - t
    return float(out.stdout.strip().splitlines()[-1]) if out.stdout else total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    cases = [("stream", (1 << 22) if args.quick else (1 << 30), "B streaming reads"),
             ("random_reads", 2000 if args.quick else 100_000, "random reads")]
    for name, size, label in cases:
        cold = _cold(name, size)
        fn = globals()[name]
        runs = [fn(size) for _ in range(args.repeat)]
        warm = statistics.median(r[0] for r in runs)
        gbs = runs[-1][1]
        print(f"{name:13s} {size:>11,d} {label:18s} cold {cold:6.3f} s   warm median "
              f"{warm:6.3f} s  ({gbs:.0f} GB/s simulated)")


if __name__ == "__main__":
    main()
