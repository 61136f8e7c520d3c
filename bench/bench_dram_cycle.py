"""The cycle DRAM model on real workloads: one LLaMA-2-7B decode step on lpddr_llm and
ResNet-50 batch 1 on every preset, ``memory="cycle"``, wall time of one ``simulate`` call.

    python bench/bench_dram_cycle.py [--repeat 3] [--compare]
    python bench/bench_dram_cycle.py --quick      # CI: two presets, a 2-layer LLaMA-2-7B

Targets (issue 14): the decode step <= 20 s, ResNet-50 <= 0.5 s warm on every preset
(medians of ``--repeat`` warm runs; ``cpu_s``, the process's CPU time, tells what the
machine's load added to the wall time). ``sim_cycles_per_s`` is DRAM clock cycles simulated
per wall second. ``--compare`` also runs each case once with the fast path off (the
detailed controller for every transfer: minutes for the decode step) and prints how far
the fast answer is from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import timed

import npusim
from npusim.engine.dram import CycleDram, standard_for_chip
from npusim.inputs import resolve_chip
from npusim.presets import list_presets
from npusim.workloads import resnet50
from npusim.workloads.ir import Workload
from npusim.workloads.llm import from_hf_config, load_hf_config


def decode_step(layers: int | None) -> Workload:
    cfg = load_hf_config("llama2_7b")
    if layers:
        cfg = dataclasses.replace(cfg, layers=layers)
    return from_hf_config(cfg, "decode", batch=1, prompt_len=512, context_len=513,
                          weights="int8", activations="int8", kv="int8")


def case(name: str, chip_name: str, wl: Workload, target: float, repeat: int,
         compare: bool) -> dict[str, object]:
    chip = resolve_chip(chip_name)
    npusim.simulate(chip, wl, memory="cycle")  # warm numba and caches
    cpu: list[float] = []

    def run() -> Any:
        t = time.process_time()
        out = npusim.simulate(chip, wl, memory="cycle")
        cpu.append(time.process_time() - t)
        return out

    med, times, res = timed(run, repeat)
    s = res.summary()
    tck = standard_for_chip(chip).t.tck_ns * 1e-9
    row: dict[str, object] = {
        "case": name, "chip": chip_name, "wall_s": med, "wall_all_s": times,
        "cpu_s": statistics.median(cpu),
        "target_s": target, "simulated_latency_s": s["latency_s"],
        "energy_dram_j": s["energy_dram_j"],
        "sim_cycles_per_s": s["latency_s"] / tck / med}
    if compare:
        t = time.perf_counter()
        slow = npusim.simulate(chip, wl, memory=CycleDram.from_chip(chip, fast_path=False))
        q = slow.summary()
        row.update(detailed_wall_s=time.perf_counter() - t,
                   latency_vs_detailed=s["latency_s"] / q["latency_s"] - 1,
                   energy_dram_vs_detailed=s["energy_dram_j"] / q["energy_dram_j"] - 1)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--compare", action="store_true",
                    help="also run each case with the fast path off, once")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    chips = ("lpddr_llm", "warboy") if args.quick else tuple(list_presets())
    layers = 2 if args.quick else None
    rows = [case("llama2_7b decode step" + (" (2 layers)" if layers else ""), "lpddr_llm",
                 decode_step(layers), 20.0, repeat, args.compare)]
    rows += [case("resnet50 batch 1", c, resnet50(), 0.5, repeat, args.compare)
             for c in chips]
    if args.json:
        print(json.dumps({"cases": rows}, indent=1))
        return 0
    for r in rows:
        extra = ""
        if "latency_vs_detailed" in r:
            extra = (f", vs detailed: latency {float(r['latency_vs_detailed']):+.2%}, DRAM "
                     f"energy {float(r['energy_dram_vs_detailed']):+.2%} (detailed "
                     f"{float(r['detailed_wall_s']):.1f} s)")
        print(f"{r['case']:32s} {r['chip']:10s} wall median {float(r['wall_s']):.3f} s "
              f"(target <= {r['target_s']} s), CPU {float(r['cpu_s']):.3f} s, {float(r['sim_cycles_per_s']) / 1e6:.2f} M "
              f"DRAM cycles/s{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
