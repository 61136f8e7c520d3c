"""Process start-up: ``npusim run`` (ResNet-50 on TPU v1) cold and warm, ``import npusim``,
and the CPU time of each command's whole process.

    python bench/bench_startup.py [--repeat 3]
    python bench/bench_startup.py --quick      # CI: one warm-cache run, no cold start
    python bench/bench_startup.py --cpu        # CPU seconds per command only (median of 5)

Cold: a fresh interpreter with an empty numba cache (``NUMBA_CACHE_DIR`` a new temporary
directory), so every kernel the run needs is compiled. Warm: numba's cache already holds
them. Each figure is the median of ``--repeat`` runs of ``python -m npusim.cli run`` with
its output discarded. Targets (issue 7): cold <= 15 s, warm <= 3 s. Python's own bytecode
cache is whatever the environment says (``PYTHONDONTWRITEBYTECODE``), reported alongside.

CPU time (``--cpu``, and in every full run): user + system seconds of the whole child
process (``resource.getrusage(RUSAGE_CHILDREN)``), the median of ``--cpu-repeat`` (5) runs
with a warm numba cache. CPU time, unlike wall time, hardly moves when other processes share
the machine. Each command is run as the ``npusim`` console script runs it (import
``npusim.cli``, call ``main``). Targets (issue 23, item 7): ``npusim --help`` and ``npusim
validate`` <= 0.3 CPU-s, ``npusim run`` (ResNet-50 on tpu_v1's 256x256 array) <= 0.65 CPU-s;
``python -c pass``, the interpreter alone, is reported as the floor under all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, "-m", "npusim.cli", "run"]
IMPORT = [sys.executable, "-c", "import npusim"]
# what the `npusim` console script runs (npusim.cli.entry), without its wrapper's imports
_CLI = [sys.executable, "-c", "from npusim.cli import entry; entry()"]
#: (key, label, command): commands whose whole-process CPU time is measured
CPU_COMMANDS: tuple[tuple[str, str, list[str]], ...] = (
    ("cpu_floor_s", "python -c pass (floor)", [sys.executable, "-c", "pass"]),
    ("cpu_import_s", "import npusim", IMPORT),
    ("cpu_help_s", "npusim --help", [*_CLI, "--help"]),
    ("cpu_validate_chip_s", "npusim validate arch/tpu_v1.yaml",
     [*_CLI, "validate", "arch/tpu_v1.yaml"]),
    ("cpu_validate_workload_s", "npusim validate workloads/resnet50.yaml",
     [*_CLI, "validate", "workloads/resnet50.yaml"]),
    ("cpu_validate_system_s", "npusim validate arch/systems/rngd_8card.yaml",
     [*_CLI, "validate", "arch/systems/rngd_8card.yaml"]),
    ("cpu_list_s", "npusim list", [*_CLI, "list"]),
    ("cpu_run_s", "npusim run (tpu_v1, resnet50)", [*_CLI, "run"]),
)
CPU_TARGETS = {"cpu_help_s": 0.3, "cpu_validate_chip_s": 0.3, "cpu_validate_workload_s": 0.3,
               "cpu_validate_system_s": 0.3, "cpu_run_s": 0.65}


def _once(cmd: list[str], numba_cache: str | None) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def cpu_seconds(cmd: list[str]) -> float:
    """User + system CPU seconds of one run of ``cmd`` (its whole process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_table(repeat: int) -> dict[str, float]:
    """Median CPU seconds per command of :data:`CPU_COMMANDS` (numba's cache warmed first),
    by key."""
    cpu_seconds(CPU_COMMANDS[-1][2])
    return {key: statistics.median(cpu_seconds(cmd) for _ in range(repeat))
            for key, _, cmd in CPU_COMMANDS}


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
    ap.add_argument("--cpu", action="store_true", help="only the CPU time per command")
    ap.add_argument("--cpu-repeat", type=int, default=5)
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    cpu_repeat = 1 if args.quick else args.cpu_repeat
    cpu = cpu_table(cpu_repeat) if args.cpu or not args.quick else {}
    if args.cpu:
        if args.json:
            print(json.dumps([cpu], indent=1))
            return 0
        _print_cpu(cpu, cpu_repeat)
        return 0
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
    row.update(cpu)
    if args.json:
        print(json.dumps([row], indent=1))
        return 0
    print(f"import npusim           {row['import_s']:6.2f} s (median of {repeat})")
    print(f"npusim run, warm cache  {row['warm_run_s']:6.2f} s (target <= 3 s)")
    if "cold_run_s" in row:
        print(f"npusim run, cold cache  {row['cold_run_s']:6.2f} s (target <= 15 s)")
    print(f"python bytecode cache {row['bytecode_cache']}, {row['cpus']} cpus")
    if cpu:
        _print_cpu(cpu, cpu_repeat)
    return 0


def _print_cpu(cpu: dict[str, float], repeat: int) -> None:
    print(f"CPU seconds of the whole process (user + system, median of {repeat}):")
    for key, label, _ in CPU_COMMANDS:
        target = CPU_TARGETS.get(key)
        print(f"  {label:45s} {cpu[key]:5.2f}" + (f"  (target <= {target:g})" if target else ""))


if __name__ == "__main__":
    sys.exit(main())
