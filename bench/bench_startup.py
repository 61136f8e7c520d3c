"""Process start-up: ``npusim run`` (ResNet-50 on TPU v1) cold and warm, and ``import npusim``.

    python bench/bench_startup.py [--repeat 3]
    python bench/bench_startup.py --quick      # CI: one warm-cache run, no cold start

Cold: a fresh interpreter with an empty numba cache (``NUMBA_CACHE_DIR`` a new temporary
directory), so every kernel the run needs is compiled. Warm: numba's cache already holds
them. Each figure is the median of ``--repeat`` runs of ``python -m npusim.cli run`` with
its output discarded. Targets (issue 7): cold <= 15 s, warm <= 3 s. Python's own bytecode
cache is whatever the environment says (``PYTHONDONTWRITEBYTECODE``), reported alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, "-m", "npusim.cli", "run"]
IMPORT = [sys.executable, "-c", "import npusim"]


def _once(cmd: list[str], numba_cache: str | None) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def cold(cmd: list[str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="npusim-numba-") as cache:
            out.append(_once(cmd, cache))
    return out


def warm(cmd: list[str], repeat: int) -> list[float]:
    _once(cmd, None)  # fills numba's cache if it was empty
    return [_once(cmd, None) for _ in range(repeat)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one warm run, no cold start")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    row: dict[str, object] = {
        "command": "python -m npusim.cli run (tpu_v1, resnet50)",
        "bytecode_cache": "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on",
        "cpus": os.cpu_count(),
    }
    times = warm(IMPORT, repeat)
    row["import_s"] = statistics.median(times)
    times = warm(RUN, repeat)
    row["warm_run_s"], row["warm_run_all_s"] = statistics.median(times), times
    if not args.quick:
        times = cold(RUN, repeat)
        row["cold_run_s"], row["cold_run_all_s"] = statistics.median(times), times
    if args.json:
        print(json.dumps([row], indent=1))
        return 0
    print(f"import npusim           {row['import_s']:6.2f} s (median of {repeat})")
    print(f"npusim run, warm cache  {row['warm_run_s']:6.2f} s (target <= 3 s)")
    if "cold_run_s" in row:
        print(f"npusim run, cold cache  {row['cold_run_s']:6.2f} s (target <= 15 s)")
    print(f"python bytecode cache {row['bytecode_cache']}, {row['cpus']} cpus")
    return 0


if __name__ == "__main__":
    sys.exit(main())
