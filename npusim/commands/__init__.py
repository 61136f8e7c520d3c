"""Subcommands of ``npusim`` (each module's ``register``) and the options they share."""

from __future__ import annotations

import argparse

__all__ = ["add_weights_resident", "weights_resident"]

_RESIDENT = {"auto": None, "yes": True, "no": False}


def add_weights_resident(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights-resident", choices=tuple(_RESIDENT), default="auto",
                        help="keep weights in the shared on-chip SRAM: auto (default: when "
                        "they all fit), yes (an error when they do not fit) or no (read them "
                        "from DRAM every inference)")


def weights_resident(args: argparse.Namespace) -> bool | None:
    """``simulate``'s ``weights_resident`` for the parsed ``--weights-resident``."""
    return _RESIDENT[args.weights_resident]
