"""Writing results: per-layer tables as CSV, JSON or Parquet, always atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from npusim._io import atomic_write
from npusim.report.result import Result

__all__ = ["atomic_write", "format_summary", "format_table", "format_weights", "save_result"]


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
        atomic_write(p, lambda tmp: df.to_parquet(tmp, index=False))
    elif suffix == ".json":
        doc = {"summary": {k: _jsonable(v) for k, v in result.summary().items()},
               "layers": json.loads(df.to_json(orient="records"))}
        atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))
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
    return "\n".join(lines)
