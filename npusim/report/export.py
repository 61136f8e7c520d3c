"""Writing results: per-layer tables as CSV, JSON or Parquet, always atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from npusim._io import atomic_write
from npusim.extras import require
from npusim.result import Result
from npusim.units import format_bytes, format_si

if TYPE_CHECKING:
    import pandas as pd

    from npusim.system.result import SystemResult

__all__ = ["atomic_write", "format_summary", "format_system", "format_table", "format_weights",
           "human_table", "save_frame", "save_result"]


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def save_result(result: Result, path: str | os.PathLike[str]) -> None:
    """Per-layer table to ``.csv`` / ``.parquet``; ``.json`` holds summary and layers."""
    p = Path(path)
    df = result.layers
    if p.suffix.lower() != ".json":
        save_frame(df, p)  # the table alone
        return
    doc = {"summary": {k: _jsonable(v) for k, v in result.summary().items()},
           "layers": json.loads(df.to_json(orient="records"))}
    atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))


def save_frame(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """A table (a system result's per-chip rows) to ``.csv``, ``.json`` or ``.parquet``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))
    elif suffix == ".parquet":
        require("pyarrow")
        atomic_write(p, lambda tmp: df.to_parquet(tmp, index=False))
    elif suffix == ".json":
        atomic_write(p, lambda tmp: Path(tmp).write_text(df.to_json(orient="records",
                                                                    indent=1)))
    else:
        raise ValueError(f"{p}: unknown output format {p.suffix!r} (use .csv, .json or .parquet)")


def _si(values: pd.Series, unit: str) -> pd.Series:
    return values.map(lambda v: format_si(v, unit))


# Column suffix → (base unit, formatter) of a table a human reads.
_SUFFIX_UNITS = {"_s": "s", "_j": "J", "_w": "W", "_hz": "Hz", "_bytes_per_s": "B/s"}


def human_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its SI-base-unit columns in engineering units for reading: ``latency_s``
    becomes ``latency`` of strings like ``4.12 µs``, ``*_bytes`` sizes like ``1.5 MiB``
    (``_j`` J, ``_w`` W, ``_hz`` Hz, ``_bytes_per_s`` B/s); other columns are kept."""
    import pandas as pd

    out = {}
    for col in df.columns:
        name = str(col)
        unit = next((u for suffix, u in sorted(_SUFFIX_UNITS.items(), key=lambda x: -len(x[0]))
                     if name.endswith(suffix)), None)
        if unit == "s" and name.endswith("_per_s"):  # a rate, not a time: left as it is
            unit = None
        if unit is not None and pd.api.types.is_numeric_dtype(df[col]):
            stem = name[: name.rindex("_bytes_per_s" if unit == "B/s" else "_")]
            out[stem] = _si(df[col], unit)
        elif name.endswith("_bytes") and pd.api.types.is_numeric_dtype(df[col]):
            out[name[: -len("_bytes")]] = df[col].map(format_bytes)
        else:
            out[name] = df[col]
    return pd.DataFrame(out, index=df.index)


def format_table(result: Result, max_rows: int | None = None) -> str:
    """A compact per-layer table for the terminal, in engineering units (``4.12 µs``,
    ``1.5 MiB``, ``12.3 µJ``); the machine outputs (:func:`save_result`) keep SI base units.

    Built from the result's rows, laid out as ``DataFrame.to_string(index=False)`` lays
    out the same columns, so printing a run loads no pandas."""
    rows = result.rows
    note = ""
    if max_rows is not None and len(rows) > max_rows:
        note = f"\n({max_rows} of {len(rows)} layers shown; --rows sets how many)"
        rows = rows[:max_rows]
    cols: dict[str, list[str]] = {
        "layer": [str(r["layer"]) for r in rows], "op": [str(r["op"]) for r in rows],
        "unit": [str(r["unit"]) for r in rows], "bound": [str(r["bound"]) for r in rows],
        "limit": [str(r["limit"]) for r in rows],
        "cycles": [str(round(float(r["cycles"]))) for r in rows],
        "compute": [str(round(float(r["compute_cycles"]))) for r in rows],
        "latency": [format_si(float(r["latency_s"]), "s") for r in rows],
        "util": [f"{float(r['utilization']) * 100:.1f} %" for r in rows],
        "dram": [format_bytes(float(r["dram_read_bytes"]) + float(r["dram_write_bytes"]))
                 for r in rows],
        "energy": [format_si(float(r["energy_j"]), "J") for r in rows],
    }
    if not rows:  # pandas' own words for an empty table
        import pandas as pd

        return pd.DataFrame({k: [] for k in cols}).to_string(index=False) + note
    return _text_table(cols, numeric=("cycles", "compute")) + note


def _text_table(cols: dict[str, list[str]], numeric: tuple[str, ...] = ()) -> str:
    """Columns of cells as ``DataFrame.to_string(index=False)`` prints them: each column
    right-aligned to its widest cell or header (a number column's header with one space
    before it), columns one space apart."""
    widths = {name: max([len(name) + (name in numeric), *map(len, cells)])
              for name, cells in cols.items()}
    lines = [" ".join(name.rjust(widths[name]) for name in cols)]
    n = len(next(iter(cols.values()), []))
    lines += [" ".join(cells[i].rjust(widths[name]) for name, cells in cols.items())
              for i in range(n)]
    return "\n".join(lines)


def format_weights(summary: Mapping[str, Any]) -> str | None:
    """Where weights live and why (``summary()``'s ``weights_reason``), with the command-line
    switch that changes it; ``None`` for a run that does not say (a tile trace's)."""
    reason = summary.get("weights_reason")
    if reason is None:
        return None
    if summary.get("weights_resident"):
        return f"{reason} — --weights-resident no to stream them"
    return str(reason)


_ENERGY_PARTS = (("MAC", "energy_mac_j"), ("SRAM", "energy_sram_j"), ("DRAM", "energy_dram_j"),
                 ("NoC", "energy_noc_j"), ("wire", "energy_wire_j"), ("vector", "energy_vector_j"),
                 ("static", "energy_static_j"), ("host link", "energy_host_j"))


def format_summary(result: Result) -> str:
    s = result.summary()
    lines = [
        f"chip            {s['chip']}",
        f"workload        {s['workload']} (batch {s['batch']}, {s['layers']} layers)",
        f"latency         {format_si(s['latency_s'], 's', 4)} ({s['cycles']:.0f} cycles)",
        f"throughput      {s['inferences_per_s']:.1f} inferences/s, {s['effective_tops']:.2f} TOPS effective",
        f"utilization     {s['utilization'] * 100:.1f} % of peak MACs",
        f"energy          {format_si(s['energy_j'], 'J', 4)} (" + ", ".join(
            f"{name} {format_si(s[key], 'J')}" for name, key in _ENERGY_PARTS) + ")",
        f"power           {format_si(s['average_power_w'], 'W')} average, {s['tops_per_w']:.3f} TOPS/W",
        f"DRAM traffic    {format_bytes(s['dram_read_bytes'])} read ({format_bytes(s['dram_dup_bytes'])} beyond one copy of each operand), {format_bytes(s['dram_write_bytes'])} written",
        f"NoC traffic     {format_bytes(s['noc_bytes'])} multicast to other cores",
        f"bound layers    compute {s['bound_compute_layers']}, memory {s['bound_memory_layers']}, vector {s['bound_vector_layers']}",
    ]
    weights = format_weights(s)
    if weights is not None:
        lines.append(f"weights         {weights}")
    if s.get("host_path"):
        per_layer = s["host_per_layer_s"] * s["layers"]
        lines.append(f"host path       {format_si(s['host_upload_s'], 's')} upload, "
                     f"{format_si(s['host_download_s'], 's')} download, runtime "
                     f"{format_si(s['host_per_query_s'], 's')} per query + "
                     f"{format_si(per_layer, 's')} dispatching layers (in the latency)")
    return "\n".join(lines)


def format_system(result: SystemResult, max_rows: int | None = None) -> str:
    """Per-chip rows (at most ``max_rows``), the busiest links and the step's totals."""
    import pandas as pd

    from npusim.system.result import COMM_CAUSES, cause_column

    s = dict(result.summary())
    chips = result.chips.copy()
    # Times that are differences (idle = step - busy) leave a rounding residue, 1e-18 s
    # beside a 1 ms step: below a part in 1e9 of the latency they are 0, not a figure.
    tiny = 1e-9 * abs(float(s["latency_s"]))
    for col in ("time_compute_s", "time_comm_s", "time_idle_s"):
        chips[col] = chips[col].where(chips[col].abs() > tiny, 0.0)
        s[col] = s[col] if abs(s[col]) > tiny else 0.0
    for col in COMM_CAUSES:
        key = cause_column(col)
        s[key] = s[key] if abs(s[key]) > tiny else 0.0
    view = pd.DataFrame({
        "chip": chips["chip"], "replica": chips["replica"], "stage": chips["stage"],
        "rank": chips["rank"], "compute": _si(chips["time_compute_s"], "s"),
        "comm": _si(chips["time_comm_s"], "s"), "idle": _si(chips["time_idle_s"], "s"),
        "energy": _si(chips["energy_j"], "J")})
    lines: list[str] = []
    if max_rows != 0:
        shown = view if max_rows is None else view.head(max_rows)
        lines += [shown.to_string(index=False)]
        if len(shown) < len(view):
            lines.append(f"({len(shown)} of {len(view)} chips shown; --rows sets how many)")
        lines.append("")
    links = result.links.sort_values("busy_s", ascending=False)
    if len(links) and max_rows != 0:
        top = links.head(4)
        of = f" ({len(top)} of {len(links)})" if len(top) < len(links) else ""
        lines.append(f"{'busiest links' + of:<15} " + ", ".join(
            f"{r.link} {format_bytes(r.bytes)} ({r.utilization * 100:.1f} %)"
            for r in top.itertuples()))
    causes = ", ".join(f"{c} {format_si(s[cause_column(c)], 's')}" for c in COMM_CAUSES
                       if s[cause_column(c)] > 0) or "none"
    lines += [
        f"system          {s['system']} ({s['chips_in_system']} x {s['chip']})",
        f"workload        {s['workload']} (batch {s['batch']} over {s['dp']} replica(s))",
        f"plan            tp {s['tp']} x pp {s['pp']} x dp {s['dp']}, "
        + (f"ep {s['ep']}, " if s.get("ep", 1) > 1 else "")
        + f"{s['micro_batches']} micro-batch(es), {s['chips_used']} chips, {s['algorithm']} "
        f"all-reduce ({s.get('allreduce_precision', 'accum')} precision)",
        f"latency         {format_si(s['latency_s'], 's', 4)}",
        f"per chip        compute {format_si(s['time_compute_s'], 's')}, communication "
        f"{format_si(s['time_comm_s'], 's')}, idle {format_si(s['time_idle_s'], 's')} (means)",
        f"communication   {causes} (mean per chip)",
        f"links           {format_bytes(s['link_bytes'])} moved, utilisation max "
        f"{s['link_utilization_max'] * 100:.2f} %, mean {s['link_utilization_mean'] * 100:.2f} %",
        f"throughput      {s['inferences_per_s']:.2f} inferences/s",
        f"energy          {format_si(s['energy_j'], 'J', 4)} (chips "
        f"{format_si(s['energy_chips_j'], 'J')}, links {format_si(s['energy_links_j'], 'J')})",
    ]
    return "\n".join(lines)
