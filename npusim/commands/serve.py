"""``npusim serve SYSTEM_OR_CHIP MODEL``: a request stream served with continuous batching.

Prints latency percentiles, throughput, goodput under ``--slo``, energy per token and
(with ``--cost``) the cost per million tokens; ``--out`` writes the per-request table,
``--steps-out`` the per-step timeline (batch, queue, KV occupancy)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from npusim.commands import (
    add_precision_options,
    add_quiet,
    add_routing_option,
    count,
    natural,
    positive_real,
    precision_options,
    real,
    routing_option,
    served_tables,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve a stream of LLM requests: TTFT/TPOT percentiles, "
                       "goodput, J/token, $/Mtoken")
    p.add_argument("arch", help="chip YAML or preset; or a system YAML or system preset")
    p.add_argument("model", help="HF config.json or a shipped name (llama2_7b …)")
    g = p.add_argument_group("requests")
    g.add_argument("--rate", type=real, default=1.0, help="requests per second (default 1)")
    g.add_argument("--requests", type=count, default=1000, dest="n",
                   help="number of requests (default 1000)")
    g.add_argument("--arrivals", choices=("poisson", "gamma"), default="poisson")
    g.add_argument("--cv", type=positive_real, default=1.0,
                   help="gamma arrivals: coefficient of variation of the gaps (>1 bursty)")
    g.add_argument("--prompt", default="fixed:512",
                   help="prompt tokens: fixed:N, uniform:LO,HI or lognormal:MEAN,CV "
                   "(default fixed:512: every prompt 512 tokens)")
    g.add_argument("--output", default="fixed:128",
                   help="output tokens, as --prompt (default fixed:128)")
    g.add_argument("--trace", metavar="CSV",
                   help="requests from a CSV (arrival_s, prompt_tokens, output_tokens)")
    g.add_argument("--seed", type=natural, default=0, help="random seed (default 0)")
    g = p.add_argument_group("scheduler")
    g.add_argument("--max-batch", type=count, default=64, help="sequences at once (64)")
    g.add_argument("--max-tokens", type=count, default=2048, help="tokens per step (2048)")
    g.add_argument("--block-tokens", type=count, default=16, help="KV block size (16)")
    g.add_argument("--priority", choices=("prefill", "decode"), default="prefill")
    g.add_argument("--chunked-prefill", action="store_true")
    g.add_argument("--host-link", metavar="KIND", default=None,
                   help="host link for swapping a preempted KV cache (pcie5_x16 …; default: "
                   "a system's host link; none for a chip: preemption recomputes)")
    g.add_argument("--fidelity", choices=("table", "exact"), default="table",
                   help="table: interpolate simulated steps (default); exact: every shape")
    add_precision_options(p)
    add_routing_option(p)
    p.add_argument("--tp", type=count, default=1, help="tensor-parallel ranks (a system)")
    p.add_argument("--pp", type=count, default=1, help="pipeline stages (a system)")
    p.add_argument("--ep", type=count, default=1, help="expert-parallel group (a system, a "
                   "mixture-of-experts model): the routed experts over this many of the "
                   "--tp ranks (one replica serves: ep = tp)")
    p.add_argument("--slo", default="",
                   help="e.g. ttft=500ms,tpot=50ms (default none: every request counts)")
    p.add_argument("--cost", metavar="YAML",
                   help="cost model (see docs/examples/cost.yaml); a file without "
                   "card_price_usd takes the chip's or system's price: block")
    p.add_argument("--out", metavar="FILE", help="per-request table (.csv, .json, .parquet)")
    p.add_argument("--steps-out", metavar="FILE", help="per-step table, same formats")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    g = p.add_argument_group("load sweep")
    g.add_argument("--rates", metavar="R1,R2,…",
                   help="serve the same stream at each rate (requests/s) and find the knee: "
                   "the highest rate where --attainment of requests meet --slo; --out then "
                   "writes the sweep table")
    g.add_argument("--attainment", type=real, default=0.9,
                   help="share of requests that must meet the SLO (default 0.9)")
    g.add_argument("--plot", metavar="FILE",
                   help="with --rates: latency percentiles, tokens/s and $/Mtoken against "
                   "load (.png, .svg, .pdf)")
    add_quiet(p)
    from npusim.commands import _serve_deployed as serve_deployed

    serve_deployed.add_options(p)
    p.set_defaults(func=_serve)


def _ms(v: float) -> str:
    return f"{v * 1e3:9.2f} ms" if math.isfinite(v) else "        -"


def _check_lengths(args: argparse.Namespace) -> None:
    """``--prompt`` and ``--output`` read (and one length drawn) before any work, so that a
    bad one is refused with the option named."""
    import numpy as np

    from npusim.errors import WorkloadError
    from npusim.serving.arrivals import draw_lengths

    for option, spec in (("--prompt", args.prompt), ("--output", args.output)):
        try:
            draw_lengths(spec, 1, np.random.default_rng(0))
        except WorkloadError as exc:
            raise WorkloadError(f"{option} {spec}: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from npusim.extras import require
    from npusim.inputs import (
        FIGURE_SUFFIXES,
        TABLE_SUFFIXES,
        check_outputs,
        input_paths,
        naming_inputs,
    )
    from npusim.serving import serve

    check_outputs({"--out": (args.out, TABLE_SUFFIXES),
                   "--steps-out": (args.steps_out, TABLE_SUFFIXES),
                   "--plot": (args.plot, FIGURE_SUFFIXES)},
                  input_paths(args.arch, args.model, args.trace, args.cost, args.deployment))
    for path in (args.out, args.steps_out):
        if path and Path(path).suffix.lower() == ".parquet":
            require("pyarrow")  # before serving, not after
    if args.plot and args.rates is None:
        raise ValueError("--plot draws a load sweep: give --rates")
    _check_lengths(args)
    from npusim.commands import _serve_deployed as serve_deployed

    if serve_deployed.is_deployed(args):
        return serve_deployed.run(args, _print_sweep)
    model_kw = {**precision_options(args), **routing_option(args)}
    if args.rates is not None:
        return _sweep(args, model_kw)
    named = {"trace": args.trace} if args.trace else {
        "requests": args.n, "prompt": args.prompt, "output": args.output}
    with naming_inputs(**named):
        res = serve(args.arch, args.model, trace=args.trace, n=args.n, rate=args.rate,
                    arrivals=args.arrivals, cv=args.cv, prompt=args.prompt, output=args.output,
                    seed=args.seed, max_batch=args.max_batch, max_tokens=args.max_tokens,
                    block_tokens=args.block_tokens, priority=args.priority,
                    chunked_prefill=args.chunked_prefill, fidelity=args.fidelity, **model_kw,
                    tp=args.tp, pp=args.pp, ep=args.ep, host_link=args.host_link, slo=args.slo,
                    cost=args.cost)
    s = served_tables(res, args)
    if s is None:
        return 0
    for line in _report(s, args):
        print(line)
    for path in (args.out, args.steps_out):
        if path:
            print(f"wrote {path}")
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _header(s: dict[str, Any], args: argparse.Namespace) -> str:
    """What was served, with every default that shaped it: precisions and lengths."""
    lengths = (f"prompt and output tokens from {args.trace}" if args.trace else
               f"prompt tokens {args.prompt}, output tokens {args.output}")
    routing = f", routing {s['routing']}" if s.get("routing") else ""
    return (f"{s['served']} ({_plural(int(s['chips']), 'chip')}): weights {s['weights']}, "
            f"activations {args.activations}, KV {args.kv}{routing}; {lengths}")


def _report(s: dict[str, Any], args: argparse.Namespace) -> list[str]:
    offered = (f"offered at {s['offered_rate']:.3g}/s (from the trace)" if args.trace else
               f"offered at {args.rate:g}/s ({args.arrivals}"
               f"{f', cv {args.cv:g}' if args.arrivals == 'gamma' else ''})")
    lines = [
        _header(s, args),
        f"  {s['requests']} requests {offered}, completed at {s['requests_per_s']:.3g}/s over "
        f"{s['duration_s']:.1f} s; max batch {s['max_batch']}, {s['max_tokens']} tokens per "
        f"step, {s['priority']} priority{', chunked prefill' if s['chunked_prefill'] else ''}"
        f"; KV cache {s['kv_blocks']} blocks of {s['block_tokens']} tokens",
        f"  {'':11}{'mean':>12}{'p50':>12}{'p90':>12}{'p99':>12}",
    ]
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "latency"),
                       ("queue_s", "queue time")):
        lines.append(f"  {label:11}" + "".join(f" {_ms(s[f'{q}_{key}'])}" for q in
                                                ("mean", "p50", "p90", "p99")))
    lines.append(f"  throughput  {s['requests_per_s']:.3f} requests/s completed, "
                 f"{s['tokens_per_s']:.1f} output tokens/s")
    slo = ", ".join(f"{k} <= {s[f'slo_{k}_s'] * 1e3:g} ms" for k in ("ttft", "tpot")
                    if math.isfinite(s[f"slo_{k}_s"]))
    met = (f"{s['slo_attainment']:.1%} of requests meet {slo}" if slo else
           "no SLO given: every request counts")
    lines += [
        f"  goodput     {s['goodput_requests_per_s']:.3f} requests/s, "
        f"{s['goodput_tokens_per_s']:.1f} tokens/s ({met})",
        f"  batch       mean {s['mean_decode_batch']:.2f} sequences decoding; queue length "
        f"max {s['max_queue_length']} waiting; KV occupancy mean "
        f"{s['mean_kv_occupancy']:.1%}, max {s['max_kv_occupancy']:.1%}; "
        f"{_plural(s['preemptions'], 'preemption')} by recompute, {s['swaps']} by swap",
        f"  energy      {s['energy_per_token_j']:.4f} J/token, average power "
        f"{s['average_power_w']:.1f} W (a step running {s['busy_fraction']:.0%} of the time)",
    ]
    if "usd_per_mtoken" in s:
        lines.append(f"  cost        ${s['usd_per_mtoken']:.3f} per million output tokens "
                     f"(hardware ${s['cost_hardware_usd']:.4f} + electricity "
                     f"${s['cost_electricity_usd']:.4f} over the run, "
                     f"{_plural(s['chips'], 'chip')} at ${s['card_price_usd']:,.0f} each, "
                     f"{s['price_source']})")
    lines.append(f"  model       {s['simulations']} step shapes simulated ({s['fidelity']}); "
                 f"Little's law: {s['mean_in_system']:.3f} in system vs {s['little_lw']:.3f}")
    return lines


def _sweep(args: argparse.Namespace, model_kw: dict[str, Any]) -> int:
    from npusim.errors import WorkloadError
    from npusim.serving import load_sweep

    if args.trace or args.steps_out:
        raise WorkloadError("--rates sweeps drawn requests: drop --trace and --steps-out")
    from npusim.inputs import naming_inputs
    from npusim.units import parse_real

    try:
        rates = [parse_real(r) for r in args.rates.split(",")]
    except ValueError:
        raise WorkloadError(f"--rates {args.rates!r}: a comma-separated list of finite "
                            f"numbers") from None
    if any(not r > 0 for r in rates):
        raise WorkloadError(f"--rates {args.rates!r}: every rate must be positive")
    if not 0 < args.attainment <= 1:
        raise WorkloadError(f"--attainment {args.attainment:g}: a share in (0, 1]")
    with naming_inputs(requests=args.n, prompt=args.prompt, output=args.output):
        sw = load_sweep(args.arch, args.model, rates, n=args.n, seed=args.seed,
                        prompt=args.prompt, output=args.output, arrivals=args.arrivals, cv=args.cv,
                        slo=args.slo, attainment=args.attainment, cost=args.cost,
                        max_batch=args.max_batch, max_tokens=args.max_tokens,
                        block_tokens=args.block_tokens, priority=args.priority,
                        chunked_prefill=args.chunked_prefill, fidelity=args.fidelity,
                        **model_kw, tp=args.tp, pp=args.pp, ep=args.ep,
                        host_link=args.host_link)
    return _print_sweep(args, sw, rates)


def _print_sweep(args: argparse.Namespace, sw: Any, rates: list[float]) -> int:
    from npusim.report.export import save_frame

    t = sw.table
    if args.out:
        save_frame(t, args.out)
    if args.plot:
        from npusim.report.plots import load_curves

        load_curves(t, args.plot, knee=sw.knee_rate, title=f"{args.model} on {args.arch}",
                    slo_ttft_s=sw.slo.ttft_s, slo_tpot_s=sw.slo.tpot_s)
    if args.json:
        print(t.to_json(orient="records", indent=1))
        return 0
    cols = ["rate", "p50_ttft_s", "p99_ttft_s", "p50_tpot_s", "p99_tpot_s", "tokens_per_s",
            "slo_attainment", "energy_per_token_j", "usd_per_mtoken", "meets_slo"]
    print(_header({"served": sw.backend.name, "chips": sw.backend.chips,
                   "weights": sw.backend.weights, "routing": sw.backend.routing}, args))
    slo = ", ".join(f"{k} <= {v * 1e3:g} ms" for k, v in (("ttft", sw.slo.ttft_s),
                                                          ("tpot", sw.slo.tpot_s))
                    if math.isfinite(v)) or "no SLO given: every rate meets it"
    print(f"  {args.n} requests at each offered rate (column rate, requests/s; "
          f"{args.arrivals}); SLO {slo}\n")
    print(t[[c for c in cols if c in t.columns and t[c].notna().any()]].to_string(index=False))
    if math.isnan(sw.knee_rate):
        print(f"\nknee: below {min(rates):g} requests/s (the lowest rate misses the SLO)")
    elif sw.knee_found:
        print(f"\nknee: {sw.knee_rate:.4g} requests/s (the highest rate where "
              f"{sw.attainment:.0%} of requests meet the SLO)")
    else:
        print(f"\nknee: above {sw.knee_rate:g} requests/s (every rate meets the SLO)")
    for path in (args.out, args.plot):
        if path:
            print(f"wrote {path}")
    return 0
