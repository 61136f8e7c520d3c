"""``npusim llm ARCH MODEL``: TTFT, TPOT, tokens/s, J/token and one decode step's layers.

ARCH may name a system of many chips; ``--tp/--pp/--dp`` then choose the parallelism."""

from __future__ import annotations

import argparse
import json
from typing import Any

from npusim.commands import (
    add_plan_options,
    add_precision_options,
    add_quiet,
    add_routing_option,
    add_weights_resident,
    count,
    plan_options,
    precision_options,
    routing_option,
    weights_resident,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("llm", help="serve an LLM on a chip: TTFT, TPOT, tokens/s, J/token")
    p.add_argument("arch", help="chip YAML or preset name; or a system YAML or system preset")
    p.add_argument("model", help="HF config.json or a shipped name (llama2_7b, opt_30b …)")
    p.add_argument("--prompt", type=count, default=512, help="prompt tokens (default 512)")
    p.add_argument("--gen", type=count, default=128, help="generated tokens (default 128)")
    p.add_argument("--batch", type=count, default=1)
    add_precision_options(p)
    add_routing_option(p)
    p.add_argument("--memory", default="bandwidth", help="memory model (default bandwidth)")
    p.add_argument("--attention", default="fused", choices=("fused", "materialized"),
                   help="fused: flash-style, causal prefill, scores on chip (default); "
                   "materialized: eager, the full score matrix through DRAM")
    p.add_argument("--logits", default="last", choices=("last", "all"),
                   help="the prefill's LM head: at the last position of each sequence "
                   "(default; a server samples one token there) or at every position (the HF "
                   "forward)")
    p.add_argument("--decode-points", type=count, default=3,
                   help="decode contexts simulated and interpolated (default 3)")
    p.add_argument("--layers", action="store_true",
                   help="print the per-layer table of one decode step")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--trace", metavar="FILE",
                   help="on a system: write the middle decode step's timeline (a track per "
                   "chip and per link) as Chrome trace-event JSON")
    add_weights_resident(p)
    add_quiet(p)
    add_plan_options(p)
    p.set_defaults(func=_llm)


def _undefined_tpot(s: dict[str, Any]) -> dict[str, Any]:
    """With ``--gen 1`` the one token comes from the prefill and no decode step follows, so
    there is no time per output token: ``tpot_s`` becomes None and the simulated step's time
    (what a second token would take) is ``next_decode_step_s``; tokens/s and J/token are
    that step's."""
    if s["decode_steps"]:
        return s
    return {**s, "tpot_s": None, "next_decode_step_s": s["tpot_s"]}


def _tpot_line(s: dict[str, Any], tail: str = "") -> str:
    ctx = ", ".join(str(c) for c in s["decode_contexts"])
    if s["tpot_s"] is None:
        return ("  TPOT          undefined (--gen 1: the token comes from the prefill and no "
                "decode step follows)\n"
                f"  next step     {s['next_decode_step_s'] * 1e3:10.3f} ms   (a decode step at "
                f"context {ctx}{tail}; tokens/s and J/token below are of it)")
    return (f"  TPOT          {s['tpot_s'] * 1e3:10.3f} ms   (mean of {s['decode_steps']} "
            f"steps, interpolated from contexts {ctx}{tail})")


def _llm(args: argparse.Namespace) -> int:
    from npusim.inputs import check_outputs, input_paths, naming_inputs

    check_outputs({"--trace": (args.trace, (".json",))}, input_paths(args.arch, args.model))

    with naming_inputs(prompt=args.prompt, batch=args.batch):
        return _simulate_llm(args)


def _simulate_llm(args: argparse.Namespace) -> int:
    from npusim.errors import SpecError
    from npusim.inputs import resolve_chip, resolve_system
    from npusim.llm import run_llm
    from npusim.report.export import format_weights
    from npusim.workloads.precision import describe_weights

    model_kw = {**precision_options(args), **routing_option(args)}
    args.weights_text = describe_weights(model_kw["weights"])  # for the headers
    system = resolve_system(args.arch)
    if system is not None:
        return _llm_system(args, system, model_kw)
    if plan_options(args) or args.trace:
        raise SpecError("--tp, --pp, --dp, --ep, --micro-batches, --collective, --all-to-all, "
                        "--allreduce-precision and --trace need a system (a system YAML or "
                        "preset: `npusim list`), not a chip")
    chip = resolve_chip(args.arch)
    res = run_llm(chip, args.model, prompt=args.prompt, gen=args.gen, batch=args.batch,
                  **model_kw, memory=args.memory, decode_points=args.decode_points,
                  weights_resident=weights_resident(args), attention=args.attention,
                  logits=args.logits)
    s = _undefined_tpot(res.summary())
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    if args.layers:
        cols = ["layer", "op", "unit", "precision", "m", "n", "k", "latency_s", "bound", "limit",
                "dram_read_bytes", "energy_j"]
        print(res.decode_layers[cols].to_string(index=False))
        print()
    gib = 2**30
    print(f"{s['model']} on {s['chip']}: batch {s['batch']}, prompt {s['prompt']}, "
          f"gen {s['gen']}, weights {args.weights_text}, activations {args.activations}, "
          f"KV {args.kv}, {args.attention} attention{_routing(s)}"
          f"{', logits at every prefill position' if args.logits == 'all' else ''}")
    print(f"  memory        weights {s['weight_bytes'] / gib:.2f} GiB + KV cache "
          f"{s['kv_cache_bytes'] / gib:.2f} GiB + activations "
          f"{s['activation_bytes'] / gib:.2f} GiB of {chip.dram.capacity_bytes / gib:.2f} GiB")
    print(f"  weights       {format_weights(s)}")
    for line in _weights_read(args.model, s):
        print(line)
    print(f"  TTFT          {s['ttft_s'] * 1e3:10.3f} ms")
    print(_tpot_line(s))
    print(f"  limit         {s['limit']} ({s['limit_share']:.0%} of a decode step's time)")
    print(f"  tokens/s      {s['tokens_per_s']:10.2f}")
    print(f"  J/token       {s['j_per_token']:10.4f}      "
          f"(end to end, with prefill: {s['energy_per_token_e2e_j']:.4f})")
    print(f"  avg power     {s['average_power_w']:10.2f} W")
    return 0


def _weights_read(model: str, s: dict[str, Any]) -> list[str]:
    """Why what a step streams differs from the weights DRAM holds: the embedding table is
    gathered a row per token (DeepSeek's multi-token-prediction module is held, not run),
    and a decode step reads only the routed experts its batch touches."""
    from npusim.workloads.llm import load_hf_config

    gib = 2**30
    out: list[str] = []
    unread = s["weight_bytes"] - s["weights_placed_bytes"]
    touched = s.get("decode_experts_touched")
    if unread <= 0.005 * s["weight_bytes"] and touched is None:
        return out
    cfg = load_hf_config(model)
    if unread > 0.005 * s["weight_bytes"]:
        what = ("the embedding table and the multi-token-prediction module (held, not run)"
                if cfg.mtp_layers else "the embedding table")
        out.append(f"                ({unread / gib:.2f} GiB of the {s['weight_bytes'] / gib:.2f} "
                   f"GiB held are {what}: a step gathers one row per token)")
    if touched is not None:
        out.append(f"  decode step   reads {s['decode_dram_read_bytes'] / gib:.2f} GiB from DRAM "
                   f"(KV cache included): of the routed experts only those its batch "
                   f"touches, {touched:.1f} of {cfg.experts} per MoE layer")
    return out


def _routing(s: dict[str, Any]) -> str:
    """``, routing skewed:1.2`` for a mixture-of-experts model (nothing for a dense one)."""
    r = s.get("routing")
    return f", routing {r}" if r else ""


def _llm_system(args: argparse.Namespace, system: object, model_kw: dict[str, Any]) -> int:
    from npusim.report.export import format_system
    from npusim.system import run_llm_system

    res = run_llm_system(system, args.model, prompt=args.prompt,  # type: ignore[arg-type]
                         gen=args.gen, batch=args.batch, **model_kw, memory=args.memory,
                         decode_points=args.decode_points,
                         weights_resident=weights_resident(args), attention=args.attention,
                         logits=args.logits, **plan_options(args))
    s = _undefined_tpot(res.summary())
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    if args.trace:
        from npusim.system import simulate_system

        # The middle decode step again, with its timeline recorded (same model, same step).
        dec = res.decode
        assert dec.workload is not None
        traced = simulate_system(dec.system, dec.workload, tp=dec.plan.tp,
                                 pp=dec.plan.pp, dp=dec.plan.dp,
                                 micro_batches=dec.plan.micro_batches, ep=dec.plan.ep,
                                 algorithm=str(dec.meta["algorithm"]), memory=args.memory,
                                 allreduce_precision=str(dec.meta["allreduce_precision"]),
                                 all_to_all=str(dec.meta.get("all_to_all", "direct")),
                                 weights_resident=weights_resident(args), trace=True)
        traced.to_chrome_trace(args.trace)
    if args.layers:
        cols = ["layer", "op", "unit", "precision", "m", "n", "k", "latency_s", "bound",
                "limit", "dram_read_bytes", "energy_j"]
        for stage, r in enumerate(res.decode.stage_results):
            print(f"decode step, one chip of stage {stage} (its shard, one micro-batch):")
            print(r.layers[cols].to_string(index=False))
            print()
    print(format_system(res.decode, 0 if not args.layers else None))
    print()
    ep = f", ep {s['ep']}" if s["ep"] > 1 else ""
    print(f"{s['model']} on {s['system']}: tp {s['tp']} x pp {s['pp']} x dp {s['dp']}{ep}, "
          f"batch {s['batch']} per replica ({s['sequences']} "
          f"sequence{'' if s['sequences'] == 1 else 's'}), prompt "
          f"{s['prompt']}, gen {s['gen']}, weights {args.weights_text}, activations "
          f"{args.activations}, KV {args.kv}{_routing(s)}"
          f"{', logits at every prefill position' if args.logits == 'all' else ''}")
    print(f"  TTFT          {s['ttft_s'] * 1e3:10.3f} ms   (communication "
          f"{s['prefill_time_comm_s'] * 1e3:.3f} ms per chip)")
    print(_tpot_line(s, f"; communication {s['decode_time_comm_s'] * 1e3:.3f} ms per chip"))
    if s["ep"] > 1:
        a2a = (s["decode_time_comm_moe_dispatch_all_to_all_s"]
               + s["decode_time_comm_moe_combine_all_to_all_s"])
        print(f"  experts       ep {s['ep']}: busiest chip {s['decode_expert_rows_max']:.0f} "
              f"routed rows a step, {s['decode_expert_load_imbalance']:.2f}x the mean; "
              f"dispatch + combine {a2a * 1e3:.3f} ms per chip")
    print(f"  tokens/s      {s['tokens_per_s']:10.2f}")
    print(f"  J/token       {s['j_per_token']:10.4f}      (links "
          f"{s['decode_energy_links_j'] / max(s['sequences'], 1):.6f})")
    if args.trace:
        print(f"\nwrote {args.trace} (open it at https://ui.perfetto.dev)")
    return 0
