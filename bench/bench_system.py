"""System step timings: one LLaMA-2-70B decode step on the 8-card RNGD server (tp 8) and on
the 64-chip TPU v4 slice (tp 8 x dp 8), and one DeepSeek-V3 decode step (FP8 weights, batch
1 per replica) on the 4 x 8 RNGD system (dp 32, ep 32: every routed expert on one of the 32
cards, token dispatch and combine as all-to-alls), wall time of one
``npusim.simulate_system`` call (the chip shards simulated, then every chip and link of the
step in the event model).

    python bench/bench_system.py [--repeat 5]
    python bench/bench_system.py --quick      # CI: the RNGD case once

Targets (issue 12): the 8-chip 70B decode step <= 1 s warm, the 64-chip slice step <= 5 s;
(issue 20) the 32-card DeepSeek-V3 step <= 2 s.
Prints medians of ``--repeat`` warm runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import timed

import npusim
from npusim.workloads.llm import from_hf_config

_70B = ("llama2_70b", {"weights": "bf16", "activations": "bf16", "kv": "bf16"})
_DSV3 = ("deepseek_v3", {"weights": "fp8", "activations": "int8", "kv": "int8"})
CASES = (("rngd_8card", _70B, {"tp": 8}, 1.0), ("tpu_v4_64", _70B, {"tp": 8, "dp": 8}, 5.0),
         ("rngd_4x8", _DSV3, {"dp": 32, "ep": 32}, 2.0))


def case(system: str, model: tuple[str, dict[str, str]], plan: dict[str, int], target: float,
         repeat: int) -> dict[str, object]:
    wl = from_hf_config(model[0], phase="decode", batch=1, context_len=2048, **model[1])
    npusim.simulate_system(system, wl, **plan)  # warm numba and caches
    med, times, res = timed(lambda: npusim.simulate_system(system, wl, **plan), repeat)
    s = res.summary()
    return {"system": system, "model": model[0], "plan": res.plan.describe(),
            "chips": s["chips_used"],
            "wall_s": med, "wall_all_s": times, "target_s": target,
            "simulated_latency_s": s["latency_s"], "time_comm_s": s["time_comm_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cases = CASES[:1] if args.quick else CASES
    repeat = 1 if args.quick else args.repeat
    rows = [case(name, model, plan, target, repeat) for name, model, plan, target in cases]
    if args.json:
        print(json.dumps({"cases": rows}, indent=1))
        return 0
    for r in rows:
        print(f"{r['system']:10s} {r['model']:12s} {r['plan']:24s} wall median {r['wall_s']:.3f} s "
              f"(target <= {r['target_s']:.0f} s), simulated step "
              f"{float(r['simulated_latency_s']) * 1e3:.3f} ms, communication "
              f"{float(r['time_comm_s']) * 1e3:.3f} ms per chip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
