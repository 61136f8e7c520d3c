"""Subcommands of ``npusim`` (each module's ``register``) and the options they share."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_plan_options", "add_quiet", "add_weights_resident", "plan_options",
           "weights_resident"]

_RESIDENT = {"auto": None, "yes": True, "no": False}


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
    g.add_argument("--tp", type=int, default=None, help="tensor-parallel ranks (default 1)")
    g.add_argument("--pp", type=int, default=None, help="pipeline stages (default 1)")
    g.add_argument("--dp", type=int, default=None, help="data-parallel replicas (default 1)")
    g.add_argument("--ep", type=int, default=None,
                   help="expert-parallel group: the routed experts of a mixture-of-experts "
                   "model over this many chips of a stage, a multiple of --tp dividing "
                   "tp x dp (default 1)")
    g.add_argument("--micro-batches", type=int, default=None,
                   help="micro-batches a pipeline step is cut into (default 1)")
    g.add_argument("--collective", choices=("ring", "tree"), default=None,
                   help="all-reduce algorithm (default ring)")
    g.add_argument("--all-to-all", choices=("direct", "pairwise"), default=None,
                   help="expert dispatch and combine: every message at once (direct, the "
                   "default) or n-1 synchronous shift steps (pairwise)")


def plan_options(args: argparse.Namespace) -> dict[str, Any]:
    """The plan options given on the command line, as simulate_system keywords."""
    out: dict[str, Any] = {k: getattr(args, k) for k in ("tp", "pp", "dp", "micro_batches", "ep")
                           if getattr(args, k, None) is not None}
    if getattr(args, "collective", None) is not None:
        out["algorithm"] = args.collective
    if getattr(args, "all_to_all", None) is not None:
        out["all_to_all"] = args.all_to_all
    return out
