"""ResNet-50 batch 1 on chip presets: wall time (cold and warm), simulated cycles per second.

    python bench/bench_resnet.py [--presets tpu_v1,warboy] [--repeat 7] [--memory bandwidth]
    python bench/bench_resnet.py --quick     # what CI runs: one preset, few repeats

Cold: a fresh interpreter with an empty numba cache (compilation included) running
``npusim.simulate``. Warm start: a fresh interpreter with the cache warm. Warm: repeated
calls in this process. Targets (issue 2): <= 1 s warm, <= 15 s cold on TPU v1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import cold_start, peak_memory_mib, timed, warm_start

import npusim


def bench(preset: str, repeat: int, memory: str, starts: bool) -> dict[str, float | str]:
    chip = npusim.load_arch(preset)
    wl = npusim.workloads.resnet50()
    med, _times, res = timed(lambda: npusim.simulate(chip, wl, memory=memory), repeat)
    s = res.summary()
    code = (f"import npusim; npusim.simulate(npusim.load_arch({preset!r}), "
            f"npusim.workloads.resnet50(), memory={memory!r})")
    row: dict[str, float | str] = {
        "preset": preset, "memory": memory, "warm_s": med,
        "simulated_cycles": s["cycles"], "cycles_per_wall_s": s["cycles"] / med,
        "tiles": res.program.n_tiles, "tiles_per_wall_s": res.program.n_tiles / med,
        "peak_mib": peak_memory_mib(lambda: npusim.simulate(chip, wl, memory=memory)),
        "latency_ms": s["latency_s"] * 1e3,
    }
    if starts:
        row["cold_process_s"] = cold_start(code)
        row["warm_process_s"] = warm_start(code)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tpu_v1,warboy")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--memory", default="bandwidth")
    ap.add_argument("--quick", action="store_true", help="one preset, 2 repeats, no cold start")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    presets = ["tpu_v1"] if args.quick else args.presets.split(",")
    rows = [bench(p, 2 if args.quick else args.repeat, args.memory, not args.quick)
            for p in presets]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        line = (f"{r['preset']:10s} ResNet-50 b1 [{r['memory']}]: warm {r['warm_s'] * 1e3:8.1f} ms "
                f"(median), {r['cycles_per_wall_s'] / 1e6:8.1f} M simulated cycles/s, "
                f"{r['tiles']:.0f} tiles, peak {r['peak_mib']:.1f} MiB")
        if "cold_process_s" in r:
            line += (f", process cold {r['cold_process_s']:.1f} s, "
                     f"process warm-cache {r['warm_process_s']:.1f} s")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
