"""BERT-large (sequence 384, batch 1) on chip presets: wall time, simulated cycles per second.

    python bench/bench_bert.py [--presets warboy,rngd] [--repeat 7] [--memory bandwidth]
    python bench/bench_bert.py --quick       # what CI runs: one preset, 2 repeats

Warm: the median of ``--repeat`` ``npusim.simulate`` calls in this process (compile + event
model), after one untimed call. Cold: a fresh interpreter with an empty numba cache
(compilation included) running the same call; warm start: a fresh interpreter with numba's
cache warm. Events processed = tiles the event model ran. Peak memory: the Python heap
(tracemalloc) during one call. Not a test: prints figures, asserts nothing.
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
    wl = npusim.workloads.bert_large(seq_len=384)
    npusim.simulate(chip, wl, memory=memory)  # numba compiles or loads its cache here

    def run() -> npusim.Result:
        return npusim.simulate(chip, wl, memory=memory)

    med, _times, res = timed(run, repeat)
    s = res.summary()
    row: dict[str, float | str] = {
        "preset": preset, "workload": "bert_large seq 384", "memory": memory, "warm_s": med,
        "simulated_cycles": s["cycles"], "cycles_per_wall_s": s["cycles"] / med,
        "tiles": res.program.n_tiles, "tiles_per_wall_s": res.program.n_tiles / med,
        "peak_mib": peak_memory_mib(run), "latency_ms": s["latency_s"] * 1e3,
    }
    if starts:
        code = (f"import npusim; npusim.simulate(npusim.load_arch({preset!r}), "
                f"npusim.workloads.bert_large(seq_len=384), memory={memory!r})")
        row["cold_process_s"] = cold_start(code)
        row["warm_process_s"] = warm_start(code)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="warboy,rngd")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--memory", default="bandwidth")
    ap.add_argument("--quick", action="store_true", help="one preset, 2 repeats, no cold start")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    presets = args.presets.split(",")[:1] if args.quick else args.presets.split(",")
    rows = [bench(p, 2 if args.quick else args.repeat, args.memory, not args.quick)
            for p in presets]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        line = (f"{r['preset']:10s} BERT-large 384 [{r['memory']}]: warm "
                f"{r['warm_s'] * 1e3:8.1f} ms (median), "
                f"{r['cycles_per_wall_s'] / 1e6:8.1f} M simulated cycles/s, {r['tiles']:.0f} tiles "
                f"({r['tiles_per_wall_s'] / 1e3:.0f} k/s), peak {r['peak_mib']:.1f} MiB")
        if "cold_process_s" in r:
            line += (f", process cold {r['cold_process_s']:.1f} s, "
                     f"process warm-cache {r['warm_process_s']:.1f} s")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
