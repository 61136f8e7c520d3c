"""``npusim sweep``: run a sweep file, write its table, print or plot its Pareto front."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npusim.errors import SpecError
from npusim.extras import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register", "save_table"]

_SHOW = ("latency_s", "throughput", "energy_j", "average_power_w", "utilization", "area_mm2")
_SHOW_SYSTEM = ("latency_s", "throughput", "time_comm_s", "energy_j", "chips_used",
                "link_utilization_max")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sweep", help="run a design-space sweep (grid/zip/random/lhs), cached",
                       description="Run every point of SWEEP.yaml on local worker processes "
                       "or a Dask cluster; finished runs are cached, so an interrupted or "
                       "repeated sweep computes only what is missing.")
    p.add_argument("spec", metavar="SWEEP.yaml")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: all cores; 0: in this process)")
    p.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="cache directory (default: .npusim-cache in the current directory)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--out", metavar="FILE", action="append", default=[],
                   help="write the table (.parquet or .csv); may be repeated")
    p.add_argument("--pareto", metavar="OBJ,...", default=None,
                   help="Pareto objectives, minimised unless prefixed max: "
                   "(e.g. latency_s,energy_j,area_mm2); adds a 'pareto' column")
    p.add_argument("--plot", metavar="OUT.png", default=None,
                   help="Pareto scatter of the first two objectives (.png or .svg)")
    p.add_argument("--rows", type=int, default=20,
                   help="print at most this many rows (default 20; the table says when it "
                   "holds more)")
    p.add_argument("--all", action="store_true", dest="all_rows",
                   help="print every row, however many")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_sweep)


def save_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a sweep table atomically as ``.parquet`` or ``.csv``."""
    from npusim._io import atomic_write

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        require("pyarrow")
        atomic_write(p, lambda tmp: df.to_parquet(tmp, index=False))
    elif suffix == ".csv":
        atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))
    else:
        raise SpecError(f"{p}: unknown table format {p.suffix!r} (use .parquet or .csv)")


def _readable(view: pd.DataFrame, axes: Any) -> pd.DataFrame:
    """``view`` with byte-sized axes (``sram.size``, ``dram.capacity``, ``*_bytes``) as
    ``8 MiB`` rather than raw bytes; the written tables keep the numbers."""
    import pandas as pd

    from npusim.units import format_bytes

    out = view.copy()
    for axis in axes:
        leaf = axis.key.rsplit(".", 1)[-1]
        if (leaf in ("size", "capacity") or leaf.endswith("_bytes")) and axis.name in out \
                and pd.api.types.is_numeric_dtype(out[axis.name]):
            out[axis.name] = out[axis.name].map(format_bytes)
    return out


def _sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from npusim.sweep.cache import DEFAULT_CACHE_DIR
    from npusim.sweep.pareto import pareto_front, parse_objectives
    from npusim.sweep.run import run_sweep
    from npusim.sweep.spec import load_sweep

    spec = load_sweep(args.spec)
    from npusim.inputs import FIGURE_SUFFIXES, check_outputs, input_paths

    outs = {f"--out{' #' + str(i + 1) if i else ''}": (out, (".parquet", ".csv"))
            for i, out in enumerate(args.out)}
    check_outputs({**outs, "--plot": (args.plot, FIGURE_SUFFIXES)},
                  input_paths(args.spec, *spec.input_files))
    for out in args.out:
        if Path(out).suffix.lower() == ".parquet":
            require("pyarrow")  # before the sweep, not after it
    if args.scheduler:
        require("dask.distributed")
    objectives = args.pareto or (",".join(spec.objectives) if spec.objectives else None)
    if args.plot and not objectives:
        objectives = "latency_s,energy_j"
    if args.workers is not None and args.workers < 0:
        raise SpecError(f"--workers must be 0 or more, got {args.workers}")
    cache = None if args.no_cache else (args.cache or DEFAULT_CACHE_DIR)
    df = run_sweep(spec, workers=args.workers, scheduler=args.scheduler, cache_dir=cache,
                   progress=not args.quiet)
    st = df.attrs["sweep"]
    pruned = f", {st['pruned']} points pruned by constraints" if st["pruned"] else ""
    print(f"{spec.name}: {st['points']} points x {len(spec.workloads)} workloads = "
          f"{st['runs']} runs ({st['unique_runs']} distinct): {st['computed']} computed, "
          f"{st['cached']} from cache, {st['errors']} failed{pruned}")
    show = df
    if objectives:
        objs = parse_objectives(objectives)
        df["pareto"] = pareto_front(df, objectives)
        show = df[df["pareto"]].sort_values(["workload", objs[0][0]])
        print(f"Pareto front over {objectives}: {len(show)} runs")
    cols = ["workload", *spec.axis_names,
            *[c for c in (_SHOW_SYSTEM if spec.is_system else _SHOW) if c in df.columns],
            "status"]
    if len(show):
        rows = len(show) if args.all_rows else max(args.rows, 0)
        view = _readable(show[cols].head(rows), spec.axes)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(view.to_string(index=False))
        if rows < len(show):
            print(f"({rows} of {len(show)} rows shown; --all prints every one)")
    failed = df[df["status"] == "error"]
    if len(failed):
        first = failed.iloc[0]
        print(f"{len(failed)} failed runs; the first (point {first['point']}, "
              f"{first['workload']}): {first['error']}")
    for out in args.out:
        save_table(df, out)
        print(f"wrote {out}")
    if args.plot:
        from npusim.sweep.plots import plot_pareto, save_figure

        names = [c for c, _ in parse_objectives(objectives or "latency_s,energy_j")]
        x, y = names[0], names[1] if len(names) > 1 else "energy_j"
        save_figure(plot_pareto(df, x, y, objectives), args.plot)
        print(f"wrote {args.plot}")
    return 0
