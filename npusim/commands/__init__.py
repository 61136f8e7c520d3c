"""Subcommands of ``npusim`` (each module's ``register``) and the options they share."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_plan_options", "add_precision_options", "add_quiet", "add_routing_option",
           "add_weights_resident", "count", "natural", "plan_options", "positive_real",
           "precision_options", "real", "routing_option", "served_tables", "weights_resident"]

_RESIDENT = {"auto": None, "yes": True, "no": False}


# Option types: every real-valued option goes through npusim.units.parse_real, the finite
# check spec fields share, so `--cv inf` or `--rate 1e400` is one line naming the option.
def real(text: str) -> float:
    """A finite real number."""
    from npusim.units import parse_real

    try:
        return parse_real(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_real(text: str) -> float:
    """A finite real number above zero."""
    v = real(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _integer(text: str, low: int, what: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if v > 2**53:  # as the workload's dimensions: past it, products leave 64 bits
        raise argparse.ArgumentTypeError(f"expected at most 2**53 = {2**53:,}, got {text!r}")
    return v


def count(text: str) -> int:
    """An integer of at least 1."""
    return _integer(text, 1, "an integer of at least 1")


def natural(text: str) -> int:
    """An integer of at least 0."""
    return _integer(text, 0, "an integer of at least 0")


def add_weights_resident(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights-resident", choices=tuple(_RESIDENT), default="auto",
                        help="keep weights in the shared on-chip SRAM: auto (default: when "
                        "they all fit), yes (an error when they do not fit) or no (read them "
                        "from DRAM every inference)")


def weights_resident(args: argparse.Namespace) -> bool | None:
    """``simulate``'s ``weights_resident`` for the parsed ``--weights-resident``."""
    return _RESIDENT[args.weights_resident]


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars (they are drawn only on a terminal anyway)."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars on stderr (shown only on a terminal, for runs "
                        "past a few seconds)")


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The parallelism plan of a run on a system of many chips."""
    g = parser.add_argument_group("systems of many chips (the arch argument names a system)")
    g.add_argument("--tp", type=count, default=None, help="tensor-parallel ranks (default 1)")
    g.add_argument("--pp", type=count, default=None, help="pipeline stages (default 1)")
    g.add_argument("--dp", type=count, default=None, help="data-parallel replicas (default 1)")
    g.add_argument("--ep", type=count, default=None,
                   help="expert-parallel group: the routed experts of a mixture-of-experts "
                   "model over this many chips of a stage, a multiple of --tp dividing "
                   "tp x dp (default 1)")
    g.add_argument("--micro-batches", type=count, default=None,
                   help="micro-batches a pipeline step is cut into (default 1)")
    g.add_argument("--collective", choices=("ring", "tree"), default=None,
                   help="all-reduce algorithm (default ring)")
    g.add_argument("--allreduce-precision", default=None, metavar="PRECISION",
                   help="precision tensor-parallel partial sums are all-reduced at: accum (the "
                   "accumulation precision, fp32: 4 B, the default), activations (a quantised "
                   "all-reduce at the activation precision) or a precision name (fp16, int8 …)")
    g.add_argument("--all-to-all", choices=("direct", "pairwise"), default=None,
                   help="expert dispatch and combine: every message at once (direct, the "
                   "default) or n-1 synchronous shift steps (pairwise)")


def plan_options(args: argparse.Namespace) -> dict[str, Any]:
    """The plan options given on the command line, as simulate_system keywords."""
    out: dict[str, Any] = {k: getattr(args, k) for k in ("tp", "pp", "dp", "micro_batches", "ep")
                           if getattr(args, k, None) is not None}
    if getattr(args, "collective", None) is not None:
        out["algorithm"] = args.collective
    if getattr(args, "allreduce_precision", None) is not None:
        from npusim.system.simulate import check_allreduce_precision

        out["allreduce_precision"] = check_allreduce_precision(args.allreduce_precision)
    if getattr(args, "all_to_all", None) is not None:
        out["all_to_all"] = args.all_to_all
    return out


_PREC_HELP = ("int4, int8, fp8, fp8_e4m3, fp8_e5m2, fp16, bf16, fp32; weights also take the "
              "block-scaled mxfp4 and nvfp4")


def add_precision_options(parser: argparse.ArgumentParser, kv: bool = True) -> None:
    """``--weights`` (a precision, or one per tensor class) and, with ``kv``, ``--kv`` and
    ``--activations``."""
    parser.add_argument("--weights", default="int8", metavar="PREC|CLASS=PREC,…",
                        help="weight precision (default int8), or one per tensor class: "
                        "experts=mxfp4,default=bf16 (classes: attention, mlp, experts, "
                        "shared_experts, router, embeddings, lm_head, norms). Precisions: "
                        + _PREC_HELP)
    if kv:
        parser.add_argument("--kv", default="int8", metavar="PREC",
                            help="KV cache precision (default int8)")
        parser.add_argument("--activations", default="int8", metavar="PREC",
                            help="activation precision (default int8)")


def precision_options(args: argparse.Namespace) -> dict[str, Any]:
    """``weights`` (a name or a class mapping), ``kv`` and ``activations`` as given, each
    checked (a one-line :class:`~npusim.errors.WorkloadError` naming the option)."""
    from npusim.errors import WorkloadError
    from npusim.workloads.precision import check_precisions, parse_weights

    kv, act = getattr(args, "kv", None), getattr(args, "activations", None)
    try:
        weights = parse_weights(args.weights)
        check_precisions(weights, activations=act, kv=kv)
    except WorkloadError as exc:  # "weights: …" → "--weights: …"
        raise WorkloadError(f"--{exc}") from None
    out: dict[str, Any] = {"weights": weights}
    if kv is not None:
        out.update(kv=kv, activations=act)
    return out


def add_routing_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--routing", default=None, metavar="uniform|skewed:S|FILE",
                        help="how a mixture-of-experts model routes tokens: uniform "
                        "(default), skewed:S (expert popularity falls as a Zipf law of "
                        "exponent S) or a routing trace file (see docs/model.md); ignored "
                        "by a dense model")


def routing_option(args: argparse.Namespace) -> dict[str, Any]:
    """``{"routing": text}`` when ``--routing`` was given, checked; else nothing (the
    builder's default, uniform)."""
    text = getattr(args, "routing", None)
    if text is None:
        return {}
    from npusim.errors import WorkloadError
    from npusim.workloads.routing import parse_routing

    try:
        parse_routing(text)
    except WorkloadError as exc:  # "routing: …" → "--routing: …"; a trace's own errors
        raise WorkloadError(f"--{exc}" if str(exc).startswith("routing") else str(exc)) from None
    return {"routing": text}


def served_tables(res: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """Write a serve run's per-request (``--out``) and per-step (``--steps-out``) tables
    and return its summary, or print the summary as JSON (``--json``) and return None."""
    import json
    import math

    from npusim.report.export import save_frame

    if args.out:
        save_frame(res.requests, args.out)
    if args.steps_out:
        save_frame(res.steps, args.steps_out)
    s: dict[str, Any] = res.summary()
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in s.items()}, indent=2))
        return None
    return s
