"""Serving timings: 10,000 requests of LLaMA-2-7B and of Qwen3-30B-A3B (mixture of experts,
int4) on lpddr_llm and of LLaMA-2-70B on the 8-card RNGD server (tp 8), wall time of one
``npusim.serve`` call (the step table's simulations, then the SimPy run of every request and
step).

    python bench/bench_serve.py [--repeat 3] [--requests 10000]
    python bench/bench_serve.py --quick      # CI: 1,000 requests, each case once

Targets: 7B on one chip <= 30 s, 70B on 8 chips <= 60 s (issue 13), Qwen3-30B-A3B on
lpddr_llm <= 30 s (issue 20), numba warm (a first
``simulate`` compiles the kernels before the clock starts). Issue 22: 10,000 requests of
LLaMA-2-7B disaggregated (prefill on one hbm_llm, decode on two lpddr_llm over PCIe 5.0 x16)
with prefix caching (70 % of requests open with one 512-token system prompt) <= 60 s, one
``serve_deployed`` call. Prints medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import timed

import npusim
from npusim.workloads.llm import from_hf_config

#: (target, model, rate /s, plan, wall target s)
CASES = (("lpddr_llm", "llama2_7b", 2.0, {}, 30.0),
         ("rngd_8card", "llama2_70b", 4.0, {"tp": 8}, 60.0),
         ("lpddr_llm", "qwen3_30b_a3b", 2.0, {}, 30.0))
#: further options per model
OPTIONS: dict[str, dict[str, str]] = {"qwen3_30b_a3b": {"weights": "int4"}}
LENGTHS = {"prompt": "lognormal:512,0.3", "output": "lognormal:128,0.5"}


def case(target: str, model: str, rate: float, plan: dict[str, int], goal: float, n: int,
         repeat: int) -> dict[str, object]:
    def once() -> npusim.serving.ServeResult:
        return npusim.serve(target, model, n=n, rate=rate, max_tokens=4096, seed=1,
                            slo="ttft=500ms,tpot=50ms", **LENGTHS, **plan,  # type: ignore[arg-type]
                            **OPTIONS.get(model, {}))

    cpu = time.process_time()
    med, times, res = timed(once, repeat)
    cpu = (time.process_time() - cpu) / repeat  # this process's CPU: the load of others aside
    s = res.summary()
    return {"target": target, "model": model, "plan": plan, "options": OPTIONS.get(model, {}),
            "requests": n, "rate": rate,
            "wall_s": med, "wall_all_s": times, "cpu_s": cpu, "target_s": goal,
            "steps": s["steps"], "simulations": s["simulations"],
            "p50_ttft_s": s["p50_ttft_s"], "p99_ttft_s": s["p99_ttft_s"],
            "p50_tpot_s": s["p50_tpot_s"], "tokens_per_s": s["tokens_per_s"],
            "energy_per_token_j": s["energy_per_token_j"]}


#: (prefill pool, decode pool, rate /s, prefix, wall target s)
DEPLOYED = ("hbm_llm", "lpddr_llm,count=2", 3.0, "system:0.7,512", 60.0)


def deployed_case(n: int, repeat: int) -> dict[str, object]:
    pre, dec, rate, prefix, goal = DEPLOYED

    from npusim.serving import DeployedResult, serve_deployed

    def once() -> DeployedResult:
        return serve_deployed(
            "llama2_7b", prefill_pool=pre, decode_pool=dec, kv_link="pcie5_x16",
            prefix=prefix, n=n, rate=rate, max_tokens=4096, seed=1,
            slo="ttft=500ms,tpot=50ms", **LENGTHS)  # type: ignore[arg-type]

    cpu = time.process_time()
    med, times, res = timed(once, repeat)
    cpu = (time.process_time() - cpu) / repeat
    s = res.summary()
    return {"target": f"{pre} -> {dec}", "model": "llama2_7b", "plan": {"prefix": prefix},
            "options": {}, "requests": n, "rate": rate, "wall_s": med, "wall_all_s": times,
            "cpu_s": cpu, "target_s": goal, "steps": s["steps"], "simulations": s["simulations"],
            "p50_ttft_s": s["p50_ttft_s"], "p99_ttft_s": s["p99_ttft_s"],
            "p50_tpot_s": s["p50_tpot_s"], "tokens_per_s": s["tokens_per_s"],
            "energy_per_token_j": s["energy_per_token_j"],
            "prefix_hit_rate": s["prefix_hit_rate"],
            "mean_kv_transfer_s": s["mean_kv_transfer_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = 1000 if args.quick else args.requests
    repeat = 1 if args.quick else args.repeat
    npusim.simulate("lpddr_llm", from_hf_config("llama2_7b", "decode", context_len=64))
    rows = [case(*c, n=n, repeat=repeat) for c in CASES]
    rows.append(deployed_case(n, repeat))
    if args.json:
        print(json.dumps({"cases": rows}, indent=1))
        return 0
    for r in rows:
        print(f"{r['model']:13s} on {r['target']!s:11s} {r['requests']} requests at "
              f"{r['rate']}/s: wall median {r['wall_s']:.2f} s (CPU {r['cpu_s']:.2f} s; target <= "
              f"{r['target_s']:.0f} s), {r['steps']} steps, {r['simulations']} shapes "
              f"simulated; p50 TTFT {float(r['p50_ttft_s']) * 1e3:.1f} ms, p50 TPOT "
              f"{float(r['p50_tpot_s']) * 1e3:.2f} ms, {float(r['tokens_per_s']):.0f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
