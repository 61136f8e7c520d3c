"""Sweep throughput: a 1,000-point ResNet-50 sweep, cold and again from the cache.

    python bench/bench_sweep.py            # 10 rows x 10 cols x 5 SRAM x 2 DRAM = 1,000 points
    python bench/bench_sweep.py --quick    # 3 rows x 1 col x 2 SRAM x 2 DRAM = 12 points (CI)
    python bench/bench_sweep.py --workers 2 --cache /tmp/npusim-bench-cache

Targets (issue 5): <= 5 min cold on 2 cores, <= 10 s from cache. The cache directory is a
fresh temporary one unless --cache is given (then a cold run is only cold the first time).
Not a test: prints the figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from npusim.sweep import run_sweep
from npusim.sweep.spec import sweep_from_data

BASE = {
    "name": "bench base NPU",
    "sources": ["npusim bench: a generic single-core NPU; every parameter an assumption"],
    "process_nm": 7, "clock": "1 GHz", "default_precision": "int8",
    "cores": {"count": 1, "core": {
        "systolic": {"rows": 128, "cols": 128, "dataflow": "ws", "macs_per_cycle": {"int8": 1}},
        "vector": {"lanes": 128},
        "sram": {"size": "8 MiB", "read_bytes_per_cycle": 128, "write_bytes_per_cycle": 128}}},
    "dram": {"standard": "LPDDR5-6400"},
    "energy": {"leakage": "1 W"},
}


def spec(quick: bool) -> dict:
    dims = [32, 64, 128] if quick else [16, 32, 48, 64, 96, 128, 160, 192, 224, 256]
    cols = [128] if quick else dims
    srams = ["1 MiB", "4 MiB"] if quick else ["1 MiB", "2 MiB", "4 MiB", "8 MiB", "16 MiB"]
    return {
        "name": "bench_resnet50", "base": BASE, "workloads": ["resnet50"],
        "axes": {
            "cores.core.systolic.rows": {"values": dims, "name": "rows"},
            "cores.core.systolic.cols": {"values": cols, "name": "cols"},
            "cores.core.sram.size": {"values": srams, "name": "sram"},
            "dram.standard": {"values": ["LPDDR5-6400", "HBM3-6400"], "name": "dram"},
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 points instead of 1,000")
    ap.add_argument("--workers", type=int, default=None, help="default: all cores")
    ap.add_argument("--cache", default=None, help="cache directory (default: a fresh temp dir)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args()
    sweep = sweep_from_data(spec(args.quick))
    cache = args.cache or tempfile.mkdtemp(prefix="npusim-bench-")
    workers = args.workers or os.cpu_count() or 1
    try:
        t0 = time.perf_counter()
        df = run_sweep(sweep, workers=workers, cache_dir=cache, progress=not args.quiet)
        cold = time.perf_counter() - t0
        st = df.attrs["sweep"]
        t0 = time.perf_counter()
        df2 = run_sweep(sweep, workers=workers, cache_dir=cache, progress=False)
        warm = time.perf_counter() - t0
        st2 = df2.attrs["sweep"]
        n = len(df)
        print(f"points: {n} ({st['computed']} computed, {st['cached']} cached, "
              f"{st['errors']} failed), {workers} workers, {os.cpu_count()} cores")
        print(f"cold:       {cold:8.2f} s  {n / cold:8.2f} points/s  (target <= 300 s for 1,000)")
        print(f"from cache: {warm:8.2f} s  {n / warm:8.2f} points/s  (target <= 10 s; "
              f"{st2['computed']} recomputed)")
        same = df.equals(df2)
        print(f"tables identical: {same}")
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
