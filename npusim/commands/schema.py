"""``npusim schema chip|workload|sweep|system [-o FILE]``: the JSON Schema of a file kind."""

from __future__ import annotations

import argparse
import json

from npusim.schema import KINDS

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("schema", help="write the JSON Schema of a chip, workload, sweep or "
                       "system file (for editor completion)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("-o", "--out", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    from npusim.schema import json_schema

    if args.out:
        from npusim.inputs import check_outputs

        check_outputs({"--out": (args.out, (".json",))}, [])
    text = json.dumps(json_schema(args.kind), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        from npusim._io import atomic_write_text

        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
