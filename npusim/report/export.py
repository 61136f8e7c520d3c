"""Writing results: per-layer tables as CSV, JSON or Parquet, always atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npusim._io import atomic_write
from npusim.extras import require
from npusim.report.result import Result

if TYPE_CHECKING:
    from npusim.system.result import SystemResult

__all__ = ["atomic_write", "format_summary", "format_system", "format_table", "format_weights",
           "save_frame", "save_result"]


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
    suffix = p.suffix.lower()
    if suffix == ".csv":
        atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))
    elif suffix == ".parquet":
        require("pyarrow")
        atomic_write(p, lambda tmp: df.to_parquet(tmp, index=False))
    elif suffix == ".json":
        doc = {"summary": {k: _jsonable(v) for k, v in result.summary().items()},
               "layers": json.loads(df.to_json(orient="records"))}
        atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))
    else:
        raise ValueError(f"{p}: unknown output format {p.suffix!r} (use .csv, .json or .parquet)")


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


def format_table(result: Result, max_rows: int | None = None) -> str:
    """A compact per-layer table for the terminal."""
    df = result.layers
    view = pd.DataFrame({
        "layer": df["layer"], "op": df["op"], "unit": df["unit"], "bound": df["bound"],
        "limit": df["limit"],
        "cycles": df["cycles"].round().astype("int64"),
        "compute": df["compute_cycles"].round().astype("int64"),
        "lat_us": (df["latency_s"] * 1e6).round(2),
        "util_%": (df["utilization"] * 100).round(1),
        "dram_KiB": ((df["dram_read_bytes"] + df["dram_write_bytes"]) / 1024).round(1),
        "energy_uJ": (df["energy_j"] * 1e6).round(2),
    })
    if max_rows is not None and len(view) > max_rows:
        view = view.head(max_rows)
    return view.to_string(index=False)


def format_weights(summary: Mapping[str, Any]) -> str | None:
    """Where weights live and why (``summary()``'s ``weights_reason``), with the command-line
    switch that changes it; ``None`` for a run that does not say (a tile trace's)."""
    reason = summary.get("weights_reason")
    if reason is None:
        return None
    if summary.get("weights_resident"):
        return f"{reason} — --weights-resident no to stream them"
    return str(reason)


def format_summary(result: Result) -> str:
    s = result.summary()
    lines = [
        f"chip            {s['chip']}",
        f"workload        {s['workload']} (batch {s['batch']}, {s['layers']} layers)",
        f"latency         {s['latency_s'] * 1e3:.4f} ms ({s['cycles']:.0f} cycles)",
        f"throughput      {s['inferences_per_s']:.1f} inferences/s, {s['effective_tops']:.2f} TOPS effective",
        f"utilization     {s['utilization'] * 100:.1f} % of peak MACs",
        f"energy          {s['energy_j'] * 1e3:.4f} mJ (MAC {s['energy_mac_j'] * 1e3:.3f}, SRAM {s['energy_sram_j'] * 1e3:.3f}, DRAM {s['energy_dram_j'] * 1e3:.3f}, NoC {s['energy_noc_j'] * 1e3:.3f}, vector {s['energy_vector_j'] * 1e3:.3f}, static {s['energy_static_j'] * 1e3:.3f})",
        f"power           {s['average_power_w']:.2f} W average, {s['tops_per_w']:.3f} TOPS/W",
        f"DRAM traffic    {s['dram_read_bytes'] / 2**20:.2f} MiB read ({s['dram_dup_bytes'] / 2**20:.2f} beyond one copy of each operand), {s['dram_write_bytes'] / 2**20:.2f} MiB written",
        f"NoC traffic     {s['noc_bytes'] / 2**20:.2f} MiB multicast to other cores",
        f"bound layers    compute {s['bound_compute_layers']}, memory {s['bound_memory_layers']}, vector {s['bound_vector_layers']}",
    ]
    weights = format_weights(s)
    if weights is not None:
        lines.append(f"weights         {weights}")
    if s.get("host_path"):
        per_layer = s["host_per_layer_s"] * s["layers"]
        lines.append(f"host path       {s['host_upload_s'] * 1e6:.2f} us upload, "
                     f"{s['host_download_s'] * 1e6:.2f} us download, runtime "
                     f"{s['host_per_query_s'] * 1e6:.2f} us per query + {per_layer * 1e6:.2f} us "
                     f"dispatching layers (in the latency)")
    return "\n".join(lines)


def format_system(result: SystemResult, max_rows: int | None = None) -> str:
    """Per-chip rows (at most ``max_rows``), the busiest links and the step's totals."""
    from npusim.system.result import COMM_CAUSES, cause_column

    s = result.summary()
    chips = result.chips
    view = pd.DataFrame({
        "chip": chips["chip"], "replica": chips["replica"], "stage": chips["stage"],
        "rank": chips["rank"], "compute_ms": (chips["time_compute_s"] * 1e3).round(4),
        "comm_ms": (chips["time_comm_s"] * 1e3).round(4),
        "idle_ms": (chips["time_idle_s"] * 1e3).round(4),
        "energy_mJ": (chips["energy_j"] * 1e3).round(3)})
    lines: list[str] = []
    if max_rows != 0:
        shown = view if max_rows is None else view.head(max_rows)
        lines += [shown.to_string(index=False), ""]
    links = result.links.sort_values("busy_s", ascending=False)
    if len(links) and max_rows != 0:
        top = links.head(4)
        lines.append("busiest links   " + ", ".join(
            f"{r.link} {r.bytes / 2**20:.2f} MiB ({r.utilization * 100:.1f} %)"
            for r in top.itertuples()))
    causes = ", ".join(f"{c} {s[cause_column(c)] * 1e3:.4f}" for c in COMM_CAUSES
                       if s[cause_column(c)] > 0) or "none"
    lines += [
        f"system          {s['system']} ({s['chips_in_system']} x {s['chip']})",
        f"workload        {s['workload']} (batch {s['batch']} over {s['dp']} replica(s))",
        f"plan            tp {s['tp']} x pp {s['pp']} x dp {s['dp']}, {s['micro_batches']} "
        f"micro-batch(es), {s['chips_used']} chips, {s['algorithm']} all-reduce",
        f"latency         {s['latency_s'] * 1e3:.4f} ms",
        f"per chip        compute {s['time_compute_s'] * 1e3:.4f} ms, communication "
        f"{s['time_comm_s'] * 1e3:.4f} ms, idle {s['time_idle_s'] * 1e3:.4f} ms (means)",
        f"communication   {causes} (ms, mean per chip)",
        f"links           {s['link_bytes'] / 2**20:.2f} MiB moved, utilisation max "
        f"{s['link_utilization_max'] * 100:.2f} %, mean {s['link_utilization_mean'] * 100:.2f} %",
        f"throughput      {s['inferences_per_s']:.2f} inferences/s",
        f"energy          {s['energy_j'] * 1e3:.4f} mJ (chips {s['energy_chips_j'] * 1e3:.4f}, "
        f"links {s['energy_links_j'] * 1e3:.4f})",
    ]
    return "\n".join(lines)
