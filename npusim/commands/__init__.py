"""Subcommands of ``npusim`` (each module's ``register``) and the options they share."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_plan_options", "add_quiet", "add_weights_resident", "count", "natural",
           "plan_options", "positive_real", "real", "weights_resident"]

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
    g.add_argument("--micro-batches", type=count, default=None,
                   help="micro-batches a pipeline step is cut into (default 1)")
    g.add_argument("--collective", choices=("ring", "tree"), default=None,
                   help="all-reduce algorithm (default ring)")


def plan_options(args: argparse.Namespace) -> dict[str, Any]:
    """The plan options given on the command line, as simulate_system keywords."""
    out: dict[str, Any] = {k: getattr(args, k) for k in ("tp", "pp", "dp", "micro_batches")
                           if getattr(args, k, None) is not None}
    if getattr(args, "collective", None) is not None:
        out["algorithm"] = args.collective
    return out
