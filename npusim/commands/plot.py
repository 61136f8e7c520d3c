"""``npusim plot RESULT``: draw a saved result (or sweep table) to PNG, SVG or PDF.

A per-layer table (``npusim run --out`` as ``.json``, ``.csv`` or ``.parquet``; it has a
``layer`` column) gives ``--kind latency`` (stacked by cause), ``energy`` or ``roofline``.
The roofline needs the chip: ``--arch``, or else the chip named in a JSON summary when it is
one of the presets. ``--kind bandwidth`` draws DRAM bandwidth over time from a Chrome trace
(``npusim run --trace FILE``), against the peak of the chip (``--arch``, or the preset the trace
names). A sweep table (no ``layer`` column) goes to
:func:`npusim.sweep.plots.plot_table_file` (``--kind pareto`` or ``metric``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from npusim.commands import count
from npusim.errors import SpecError
from npusim.extras import require
from npusim.spec.jsonio import load_json
from npusim.spec.yamlio import check_input_file

__all__ = ["register"]

LAYER_KINDS = ("latency", "energy", "roofline")
TRACE_KINDS = ("bandwidth",)
SWEEP_KINDS = ("pareto", "metric")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plot", help="plot a saved result or sweep table (PNG/SVG/PDF)")
    p.add_argument("result", help="per-layer result (.json/.csv/.parquet), Chrome trace "
                   "(.json, for --kind bandwidth) or sweep table")
    p.add_argument("--kind", choices=LAYER_KINDS + TRACE_KINDS + SWEEP_KINDS, default=None,
                   help="latency (default for results), energy, roofline; bandwidth for a "
                   "trace from `npusim run --trace`; for sweep tables pareto (default) or "
                   "metric")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help=".png, .svg or .pdf")
    p.add_argument("--arch", help="chip YAML or preset name (for the roofline and the "
                   "bandwidth peak)")
    p.add_argument("--bins", type=count, default=200, help="time bins of --kind bandwidth")
    p.add_argument("--precision", help="roofline compute roof precision (default: the chip's)")
    sw = p.add_argument_group("sweep tables")
    sw.add_argument("--x", default="latency_s", help="pareto x column (default latency_s)")
    sw.add_argument("--y", default="energy_j", help="pareto y column (default energy_j)")
    sw.add_argument("--objectives", help="pareto objectives, e.g. latency_s,energy_j,area_mm2")
    sw.add_argument("--metric", help="metric column for --kind metric")
    sw.add_argument("--axis", help="swept axis for --kind metric")
    p.set_defaults(func=_plot)


#: the most time bins --kind bandwidth draws (a figure is some thousands of pixels wide)
MAX_BINS = 100_000


def _read(path: Path) -> tuple[Any, dict[str, Any]]:
    """The table in ``path`` and, for a JSON result, its summary."""
    import pandas as pd

    if not path.exists():
        raise SpecError(f"no such file: {path}", str(path))
    check_input_file(path)  # not a named pipe, not past the size limit
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            doc = load_json(path)
            if isinstance(doc, dict) and isinstance(doc.get("layers"), list):
                summary = doc.get("summary")
                return pd.DataFrame(doc["layers"]), summary if isinstance(summary, dict) else {}
            if isinstance(doc, list):
                return pd.DataFrame(doc), {}
            raise SpecError("a JSON result holds 'summary' and a 'layers' list", str(path))
        if suffix == ".csv":
            return pd.read_csv(path), {}
        if suffix == ".parquet":
            require("pyarrow")
            return pd.read_parquet(path), {}
    except (ValueError, OSError) as exc:
        raise SpecError(f"cannot read {path.name}: {exc}", str(path)) from None
    raise SpecError(f"unknown table format {path.suffix!r} (use .json, .csv or .parquet)",
                    str(path))


def _chip_for(args: argparse.Namespace, summary: dict[str, Any], source: str) -> Any:
    from npusim.inputs import resolve_chip

    if args.arch:
        return resolve_chip(args.arch)
    name = summary.get("chip")
    if name:
        from npusim.errors import NpusimError
        from npusim.presets import list_presets
        from npusim.spec.arch import load_arch

        for preset in list_presets():
            try:
                chip = load_arch(preset)
            except NpusimError:
                continue
            if chip.name == name:
                return chip
        raise SpecError(f"chip {name!r} of this result is not a preset; give it with --arch",
                        source)
    raise SpecError("this plot needs the chip: give it with --arch", source)


def _plot(args: argparse.Namespace) -> int:
    src = Path(args.result)
    out = Path(args.out)
    from npusim.inputs import FIGURE_SUFFIXES, check_outputs, input_paths

    check_outputs({"-o": (args.out, FIGURE_SUFFIXES)}, input_paths(args.result, args.arch))
    if args.kind in TRACE_KINDS:
        return _plot_trace(args, src, out)
    df, summary = _read(src)
    if "layer" not in df.columns:
        return _plot_sweep(args, src)
    kind = args.kind or "latency"
    if kind not in LAYER_KINDS:
        raise SpecError(f"--kind {kind} is for sweep tables; a per-layer result takes "
                        f"{', '.join(LAYER_KINDS)}", str(src))
    from npusim.report import plots

    if kind == "latency":
        plots.latency_by_cause(df, out)
    elif kind == "energy":
        plots.energy_breakdown(df, out)
    else:
        chip = _chip_for(args, summary, str(src))
        plots.roofline(df, chip, out, precision=args.precision)
    print(f"wrote {out}")
    return 0


def _plot_trace(args: argparse.Namespace, src: Path, out: Path) -> int:
    from npusim.report import plots

    if not src.exists():
        raise SpecError(f"no such file: {src}", str(src))
    doc = load_json(src)
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise SpecError("--kind bandwidth draws a Chrome trace (`npusim run --trace FILE`); "
                        "this file has no traceEvents", str(src))
    if not 1 <= args.bins <= MAX_BINS:
        raise SpecError(f"--bins {args.bins}: from 1 to {MAX_BINS:,} (more bins than a figure "
                        "has pixels draw nothing more)")
    other = doc.get("otherData")
    chip = _chip_for(args, other if isinstance(other, dict) else {}, str(src))
    try:
        plots.dram_bandwidth_from_trace(doc, chip.dram.peak_bandwidth, out, bins=args.bins)
    except (KeyError, TypeError) as exc:
        raise SpecError(f"malformed trace event ({exc!r} missing or wrong)", str(src)) from None
    except ValueError as exc:
        raise SpecError(str(exc), str(src)) from None
    print(f"wrote {out}")
    return 0


def _plot_sweep(args: argparse.Namespace, src: Path) -> int:
    try:
        from npusim.sweep.plots import plot_table_file
    except ImportError:
        raise SpecError("this table has no 'layer' column, so it is not a per-layer result, "
                        "and sweep plotting (npusim.sweep.plots) is not installed",
                        str(src)) from None
    kind = args.kind or "pareto"
    if kind not in SWEEP_KINDS:
        raise SpecError(f"this is a sweep table (no 'layer' column): --kind takes "
                        f"{', '.join(SWEEP_KINDS)}, not {kind}", str(src))
    if src.suffix.lower() not in (".csv", ".parquet"):
        raise SpecError("a sweep table is read from .csv or .parquet", str(src))
    plot_table_file(src, args.out, kind=kind, x=args.x, y=args.y,
                    objectives=args.objectives, metric=args.metric, axis=args.axis)
    print(f"wrote {args.out}")
    return 0
