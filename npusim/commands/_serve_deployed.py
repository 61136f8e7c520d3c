"""``npusim serve`` as deployed: ``--replicas``/``--router``, ``--prefill-pool``/
``--decode-pool`` over ``--kv-link``, ``--prefix`` caching, ``--spec-tokens`` speculative
decoding. Any of them sends ``serve`` here (:func:`npusim.serving.serve_deployed`)."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Callable
from typing import Any

from npusim.commands import count, natural, served_tables

__all__ = ["ROUTER_CHOICES", "add_options", "is_deployed", "run"]

#: npusim.serving.router.ROUTERS, written out so that ``--help`` loads no serving module
#: (a test keeps the two equal)
ROUTER_CHOICES = ("round-robin", "random", "jsq", "least-kv", "prefix")


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("deployment (replicas, disaggregation, prefix caching, "
                             "speculative decoding)")
    g.add_argument("--deployment", metavar="YAML",
                   help="the deployment as a file: pools, KV link, router, prefix cache, "
                   "speculative decoding (npusim/serving/deployment_file.py; ARCH unused)")
    g.add_argument("--replicas", type=count, default=None,
                   help="data-parallel replicas of ARCH behind --router (default 1)")
    g.add_argument("--router", choices=ROUTER_CHOICES, default="round-robin",
                   help="how requests are spread over replicas (default round-robin)")
    g.add_argument("--prefill-pool", metavar="POOL",
                   help="disaggregated: prompts run on POOL = TARGET[,count=N][,tp=T][,pp=P]"
                   "[,price=USD] (ARCH is then unused; give -)")
    g.add_argument("--decode-pool", metavar="POOL", help="disaggregated: tokens run on POOL")
    g.add_argument("--kv-link", metavar="KIND", default="pcie5_x16",
                   help="link the KV cache crosses between the pools (default pcie5_x16)")
    g.add_argument("--kv-lanes", type=count, default=1,
                   help="transfers the KV link carries at once (default 1)")
    g.add_argument("--prefix", metavar="SPEC",
                   help="shared prefixes: system:SHARE,N (a share of requests open with one "
                   "N-token system prompt) or chat:TURNS (each turn reuses the history); a "
                   "--trace may carry prefix_id,prefix_tokens columns instead")
    g.add_argument("--prefix-cache-blocks", type=natural, default=None, metavar="N",
                   help="most KV blocks the prefix cache may keep (default: all free blocks)")
    g.add_argument("--no-prefix-cache", action="store_true",
                   help="prefixes given but not cached (the baseline)")
    g.add_argument("--spec-tokens", type=count, default=None, metavar="GAMMA",
                   help="speculative decoding: draft tokens verified per step")
    g.add_argument("--spec-accept", default="0.7", metavar="ALPHA",
                   help="acceptance per draft token: a number in [0, 1], uniform:LO,HI or "
                   "beta:A,B per request (default 0.7)")
    g.add_argument("--draft", metavar="MODEL",
                   help="draft model (a config npusim loads) or mtp (one block and the head "
                   "of the target's shape); default: no draft cost")
    g.add_argument("--draft-arch", metavar="CHIP",
                   help="chip the draft runs on (default: the decode chips, sharing their DRAM)")


def is_deployed(args: argparse.Namespace) -> bool:
    return any(getattr(args, k) is not None for k in (
        "deployment", "replicas", "prefill_pool", "decode_pool", "prefix", "spec_tokens"))


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from npusim.errors import WorkloadError

    if (args.prefill_pool is None) != (args.decode_pool is None):
        raise WorkloadError("--prefill-pool and --decode-pool go together")
    if args.spec_tokens is not None and args.spec_tokens <= 0:
        raise WorkloadError(f"--spec-tokens must be a positive integer, got {args.spec_tokens}")
    if args.replicas is not None and args.replicas < 1:
        raise WorkloadError(f"--replicas must be at least 1, got {args.replicas}")
    if args.kv_lanes < 1:
        raise WorkloadError(f"--kv-lanes must be at least 1, got {args.kv_lanes}")
    if args.prefix_cache_blocks is not None and args.prefix_cache_blocks < 0:
        raise WorkloadError("--prefix-cache-blocks must be >= 0")
    if args.draft and args.spec_tokens is None:
        raise WorkloadError("--draft needs --spec-tokens")
    accept: float | str = args.spec_accept
    with contextlib.suppress(ValueError):
        accept = float(args.spec_accept)
    disagg = args.prefill_pool is not None
    if args.deployment:
        from npusim.serving.deployment_file import load_deployment

        given = [o for o, k in (("--replicas", "replicas"), ("--prefill-pool", "prefill_pool"),
                                ("--spec-tokens", "spec_tokens"), ("--draft", "draft"))
                 if getattr(args, k) is not None]
        if given:
            raise WorkloadError(f"--deployment describes the deployment: drop {given[0]}")
        return {**_kwargs_common(args), "replicas": 1, "prefix": args.prefix,
                "target": None, **load_deployment(args.deployment)}
    return {**_kwargs_common(args), "target": None if disagg else args.arch,
            "replicas": args.replicas or 1,
            "prefill_pool": args.prefill_pool, "decode_pool": args.decode_pool,
            "kv_link": args.kv_link, "kv_lanes": args.kv_lanes, "router": args.router,
            "prefix": args.prefix, "prefix_cache": False if args.no_prefix_cache else None,
            "prefix_cache_blocks": args.prefix_cache_blocks,
            "spec_tokens": args.spec_tokens or 0, "spec_accept": accept,
            "draft": args.draft, "draft_target": args.draft_arch}


def _kwargs_common(args: argparse.Namespace) -> dict[str, Any]:
    from npusim.commands import precision_options, routing_option

    return {**precision_options(args), **routing_option(args), "ep": args.ep,
            "seed": args.seed, "max_batch": args.max_batch, "max_tokens": args.max_tokens,
            "block_tokens": args.block_tokens, "priority": args.priority,
            "chunked_prefill": args.chunked_prefill, "fidelity": args.fidelity,
            "tp": args.tp, "pp": args.pp, "host_link": args.host_link, "slo": args.slo,
            "cost": args.cost}


def _ms(v: float) -> str:
    return f"{v * 1e3:9.2f} ms" if math.isfinite(v) else "        -"


def run(args: argparse.Namespace, print_sweep: Callable[..., int]) -> int:
    """Serve (or load-sweep, printed by ``print_sweep``, serve's own) on the deployment."""
    from npusim.serving.deploy import serve_deployed
    from npusim.serving.sweep import load_sweep_deployed

    kw = _kwargs(args)
    if args.rates:
        try:
            rates = [float(r) for r in args.rates.split(",") if r.strip()]
        except ValueError:
            from npusim.errors import WorkloadError

            raise WorkloadError(f"--rates {args.rates!r}: a comma-separated list of "
                                "numbers") from None
        if args.trace or args.steps_out:
            from npusim.errors import WorkloadError

            raise WorkloadError("--rates sweeps drawn requests: drop --trace and --steps-out")
        sw = load_sweep_deployed(args.model, rates, n=args.n, prompt=args.prompt,
                                 output=args.output, arrivals=args.arrivals, cv=args.cv,
                                 attainment=args.attainment, **kw)
        args.arch = sw.backend.name.split(" on ", 1)[-1]  # the plot title names the pools
        return print_sweep(args, sw, rates)
    res = serve_deployed(args.model, trace=args.trace, n=args.n, rate=args.rate,
                         arrivals=args.arrivals, cv=args.cv, prompt=args.prompt,
                         output=args.output, **kw)
    s = served_tables(res, args)
    if s is None:
        return 0
    print(f"{s['served']}: {s['requests']} requests at {s['arrival_rate']:.3g}/s over "
          f"{s['duration_s']:.1f} s; {s['replicas']} replicas, router {args.router}; "
          f"{s['chips']} chips")
    print(f"  {'':12}{'mean':>12}{'p50':>12}{'p90':>12}{'p99':>12}")
    for key, label in (("ttft_s", "TTFT"), ("queue_s", "  queue"), ("tpot_s", "TPOT"),
                       ("e2e_s", "latency")):
        print(f"  {label:12}" + "".join(f" {_ms(s[f'{q}_{key}'])}" for q in
                                        ("mean", "p50", "p90", "p99")))
    print(f"  TTFT split  queue {_ms(s['mean_queue_s']).strip()}, prefill "
          f"{_ms(s['mean_prefill_s']).strip()}, KV transfer "
          f"{_ms(s['mean_kv_transfer_s']).strip()} (means)")
    print(f"  throughput  {s['requests_per_s']:.3f} requests/s, {s['tokens_per_s']:.1f} "
          f"output tokens/s; goodput {s['goodput_tokens_per_s']:.1f} tokens/s "
          f"({s['slo_attainment']:.1%} meet the SLO)")
    for _, row in res.pools.iterrows():
        print(f"  pool        {row['pool']}: {row['replicas']} x {row['role']}, "
              f"{row['chips']} chips, {row['busy_fraction']:.0%} busy, "
              f"{row['energy_j']:.1f} J")
    if "prefix_hit_rate" in s:
        print(f"  prefix      hit rate {s['prefix_hit_rate']:.1%} ({s['prefix_hit_tokens']} "
              f"tokens from cache, {s['prefill_tokens_computed']} computed); prefill saved "
              f"{s['saved_prefill_s']:.3f} s")
    if "tokens_per_verify" in s:
        print(f"  speculative {s['tokens_per_verify']:.3f} tokens per verify over "
              f"{s['verifies']} verifies (gamma {s['spec_tokens']})")
    print(f"  energy      {s['energy_per_token_j']:.4f} J/token, average power "
          f"{s['average_power_w']:.1f} W")
    if "usd_per_mtoken" in s:
        print(f"  cost        ${s['usd_per_mtoken']:.3f} per million output tokens "
              f"(hardware ${s['cost_hardware_usd']:.4f} + electricity "
              f"${s['cost_electricity_usd']:.4f})")
    for path in (args.out, args.steps_out):
        if path:
            print(f"wrote {path}")
    return 0
