"""Plots of sweep tables (matplotlib; each function returns a Figure and draws nothing else).

* :func:`plot_pareto`: every run as a point, the Pareto front highlighted, each front point
  numbered and a key under the panel giving each number's design (its axis values,
  ``rows=128, sram=8 MiB``; at most :data:`MAX_LABELS` per panel), one panel per workload,
  each axis on one scale (linear or log) in every panel;
* :func:`plot_metric_vs_axis`: a metric against one axis, the other axes held at fixed
  values (given, or else each one's first value in the table), one line per workload. Axes
  tied to the plotted one (zipped in a group: each of its values comes with one value of
  theirs, as ``cols`` with ``rows``) move with it rather than being held, so every point of
  the group is drawn;
* :func:`plot_layer_breakdown`: two design points' per-layer breakdowns side by side
  (latency by cause, or energy by component), on a shared layer axis and a shared scale.

Figures are built with :class:`matplotlib.figure.Figure`, not ``pyplot``, so the library
never touches the global backend or state; ``fig.savefig(path)`` writes PNG or SVG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from npusim.errors import NpusimError
from npusim.extras import require
from npusim.sweep.pareto import pareto_front, parse_objectives

__all__ = ["MAX_LABELS", "axis_columns", "design_label", "is_sweep_table", "plot_layer_breakdown",
           "plot_metric_vs_axis", "plot_pareto", "plot_table_file", "save_figure", "tied_axes"]

#: front points numbered per panel (past this many, the key would outgrow the figure)
MAX_LABELS = 24

_TIME_PARTS = (("time_mac_s", "MACs"), ("time_fill_drain_s", "fill/drain"),
               ("time_sram_stall_s", "SRAM stall"), ("time_vector_s", "vector"),
               ("time_dma_exposed_s", "DMA exposed"), ("time_dram_bank_s", "DRAM bank"),
               ("time_dram_refresh_s", "DRAM refresh"),
               ("time_dram_turnaround_s", "DRAM turnaround"), ("time_sync_s", "core sync"))
_ENERGY_PARTS = (("energy_mac_j", "MAC"), ("energy_sram_j", "SRAM"), ("energy_dram_j", "DRAM"),
                 ("energy_noc_j", "NoC"), ("energy_wire_j", "wire"),
                 ("energy_vector_j", "vector"), ("energy_static_j", "static"),
                 ("energy_host_j", "host link"))


def axis_columns(df: pd.DataFrame) -> list[str]:
    """The swept-parameter columns: from ``df.attrs`` if present, else those between
    ``workload`` and ``status`` (the layout :func:`npusim.sweep.run_sweep` writes)."""
    meta = df.attrs.get("sweep", {})
    if isinstance(meta, dict) and "axes" in meta:
        return [c for c in meta["axes"] if c in df.columns]
    cols = list(df.columns)
    if "workload" in cols and "status" in cols:
        return cols[cols.index("workload") + 1:cols.index("status")]
    return []


def is_sweep_table(columns: Sequence[str]) -> bool:
    """Whether a table's columns are those of a sweep table (for ``npusim plot`` dispatch)."""
    return {"point", "workload", "status", "key"} <= set(columns)


def _short(v: Any) -> str:
    """An axis value as a label shows it: byte sizes in KiB/MiB/GiB, floats in 3 digits."""
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if v >= size and v % size == 0:
                return f"{v // size} {unit}"
        return str(v)
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}"
    return str(v)


def design_label(row: pd.Series | dict[str, Any], axes: Sequence[str]) -> str:
    """The design of a table row: ``name=value`` of each axis, comma separated."""
    return ", ".join(f"{a}={_short(row[a])}" for a in axes)


def tied_axes(df: pd.DataFrame, axis: str, axes: Sequence[str]) -> list[str]:
    """The axes whose value is fixed by ``axis``'s (zipped with it in a group)."""
    if df.empty:
        return []
    return [c for c in axes if c != axis
            and int(df.groupby(axis, sort=False)[c].nunique(dropna=False).max()) == 1
            and df[c].nunique(dropna=False) > 1]


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df.columns else df


def _log_scale(values: pd.Series) -> bool:
    """Log when every value is positive and they span at least a factor of 20."""
    v = values.dropna()
    return bool(len(v)) and bool((v > 0).all()) and float(v.max()) >= 20 * float(v.min())


def plot_pareto(df: pd.DataFrame, x: str = "latency_s", y: str = "energy_j",
                objectives: str | Sequence[str] | None = None, by: str = "workload",
                log: bool = True) -> Figure:
    """Scatter ``y`` against ``x`` with the Pareto front highlighted (per ``by`` group).

    The front is over ``objectives`` (default: ``x`` and ``y``, both minimised); with more
    than two objectives some front points can look dominated in this projection. Front
    points are numbered along ``x`` (up to :data:`MAX_LABELS` per panel) and a key under
    each panel gives each number's design, so labels never cover each other however many
    points there are. With ``log``, an axis is logarithmic in every panel or in none (when
    all its values are positive and span a factor of 20).
    """
    objs = objectives if objectives is not None else [x, y]
    data = df.copy()
    data["_front"] = pareto_front(data, objs, by=by if by in data.columns else None)
    data = _ok(data)
    groups = list(data.groupby(by, sort=False)) if by in data.columns else [("", data)]
    if not groups:
        raise NpusimError("no successful runs to plot")
    design = axis_columns(df)
    keyed = [min(int(g["_front"].sum()), MAX_LABELS) if design else 0 for _, g in groups]
    key_rows = max(keyed)
    key_h = 0.14 * key_rows + 0.3 if key_rows else 0.0
    fig = Figure(figsize=(5.2 * len(groups), 4.2 + key_h), layout="constrained")
    if key_rows:
        grid = fig.add_gridspec(2, len(groups), height_ratios=[4.2, key_h])
        axes = [fig.add_subplot(grid[0, i]) for i in range(len(groups))]
        keys = [fig.add_subplot(grid[1, i]) for i in range(len(groups))]
    else:
        axes = list(fig.subplots(1, len(groups), squeeze=False)[0])
        keys = []
    names = [c for c, _ in parse_objectives(objs)]
    xlog, ylog = log and _log_scale(data[x]), log and _log_scale(data[y])
    for i, (ax, (name, g)) in enumerate(zip(axes, groups, strict=True)):
        rest, front = g[~g["_front"]], g[g["_front"]].sort_values(x)
        ax.scatter(rest[x], rest[y], s=14, color="0.65", label="dominated", zorder=2)
        ax.scatter(front[x], front[y], s=30, color="tab:red", label="Pareto front", zorder=3)
        lines = []
        if keyed[i]:
            for n, (_, row) in enumerate(front.head(MAX_LABELS).iterrows(), start=1):
                ax.annotate(str(n), (row[x], row[y]), fontsize="x-small", color="tab:red",
                            xytext=(3, 3), textcoords="offset points", zorder=4)
                lines.append(f"{n:>2}  {design_label(row, design)}")
        if names == [x, y] and len(front) > 1:
            ax.step(front[x], front[y], where="post", color="tab:red", lw=1, alpha=0.6)
        ax.set_xscale("log" if xlog else "linear")
        ax.set_yscale("log" if ylog else "linear")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        more = f"; {MAX_LABELS} numbered" if len(front) > MAX_LABELS and keyed[i] else ""
        ax.set_title(f"{name} ({len(front)} of {len(g)} on the front{more})" if name else
                     f"{len(front)} of {len(g)} on the front{more}", fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        if keys:
            keys[i].axis("off")
            keys[i].text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace",
                         fontsize="x-small", transform=keys[i].transAxes)
    title = ", ".join(f"max {c}" if hi else c for c, hi in parse_objectives(objs))
    fig.suptitle(f"Pareto front over {title}", fontsize="medium")
    return fig


def plot_metric_vs_axis(df: pd.DataFrame, metric: str, axis: str,
                        fixed: dict[str, Any] | None = None, by: str = "workload",
                        log: bool = False) -> Figure:
    """``metric`` against ``axis``, every other axis held at one value, a line per ``by``."""
    axes_cols = axis_columns(df)
    if axis not in df.columns or metric not in df.columns:
        raise NpusimError(f"unknown column {axis if axis not in df.columns else metric!r}")
    data = _ok(df)
    if data.empty:
        raise NpusimError("no successful runs to plot")
    held = dict(fixed or {})
    sel = data
    for col, value in held.items():
        if col not in sel.columns:
            raise NpusimError(f"unknown axis {col!r} in fixed (axes: {', '.join(axes_cols)})")
        sel = sel[sel[col] == value]
    if sel.empty:
        raise NpusimError(f"no runs with {held}")
    # each remaining axis held at its first value among the runs left, so an axis tied to
    # a fixed one takes its partner's value, and one tied to the plotted axis moves with it
    moving = tied_axes(sel, axis, axes_cols) if axis in axes_cols else []
    for col in axes_cols:
        if col != axis and col not in held and col not in moving:
            held[col] = sel[col].iloc[0]
            sel = sel[sel[col] == held[col]]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    groups = sel.groupby(by, sort=False) if by in sel.columns else [("", sel)]
    numeric = pd.api.types.is_numeric_dtype(sel[axis])
    for name, g in groups:
        g = g.sort_values(axis) if numeric else g
        xs = g[axis] if numeric else g[axis].astype(str)
        ax.plot(xs, g[metric], marker="o", label=str(name) if name != "" else None)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(f"{axis} (with {', '.join(moving)})" if moving else axis)
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    if by in sel.columns:
        ax.legend(fontsize="small")
    ax.set_title(", ".join(f"{k}={v}" for k, v in held.items()) or "", fontsize="small")
    return fig


def plot_layer_breakdown(a: pd.DataFrame | Any, b: pd.DataFrame | Any,
                         labels: Sequence[str] = ("A", "B"), kind: str = "time",
                         max_layers: int | None = 60) -> Figure:
    """Two per-layer tables (``Result.layers``, a Result, or :func:`npusim.sweep.layers_of`)
    as stacked horizontal bars side by side: ``kind`` ``time`` (latency by cause) or
    ``energy`` (by component)."""
    tables = [t.layers if hasattr(t, "layers") and not isinstance(t, pd.DataFrame) else t
              for t in (a, b)]
    parts = _TIME_PARTS if kind == "time" else _ENERGY_PARTS if kind == "energy" else None
    if parts is None:
        raise NpusimError(f"kind must be 'time' or 'energy', got {kind!r}")
    scale, unit = (1e6, "µs") if kind == "time" else (1e6, "µJ")
    layers = list(dict.fromkeys([*tables[0]["layer"], *tables[1]["layer"]]))
    if max_layers is not None and len(layers) > max_layers:
        layers = layers[:max_layers]
    fig = Figure(figsize=(11, max(3.0, 0.18 * len(layers) + 1.5)), layout="constrained")
    axs = fig.subplots(1, 2, sharey=True, sharex=True)
    ypos = np.arange(len(layers))
    for ax, table, label in zip(axs, tables, labels, strict=True):
        t = table.set_index("layer").reindex(layers)
        left = np.zeros(len(layers))
        total = 0.0
        for col, name in parts:
            if col not in t.columns:
                continue
            vals = t[col].fillna(0.0).to_numpy(dtype=float) * scale
            ax.barh(ypos, vals, left=left, label=name, height=0.8)
            left += vals
            total += float(vals.sum())
        ax.set_title(f"{label}: {total:.4g} {unit} total", fontsize="medium")
        ax.set_xlabel(f"{'latency' if kind == 'time' else 'energy'} ({unit})")
        ax.grid(True, axis="x", alpha=0.3)
    axs[0].set_yticks(ypos, layers, fontsize="x-small")
    axs[0].invert_yaxis()
    axs[1].legend(fontsize="small", loc="lower right")
    return fig


def plot_table_file(table: str | os.PathLike[str], out: str | os.PathLike[str], *,
                    kind: str = "pareto", x: str = "latency_s", y: str = "energy_j",
                    objectives: str | None = None, metric: str | None = None,
                    axis: str | None = None) -> None:
    """Plot a saved sweep table (``.parquet`` or ``.csv``) to ``out`` (for ``npusim plot``):
    ``kind`` ``pareto`` (``x``, ``y``, ``objectives``) or ``metric`` (``metric`` vs ``axis``)."""
    p = Path(table)
    if p.suffix.lower() == ".parquet":
        require("pyarrow")
    df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    if kind == "pareto":
        fig = plot_pareto(df, x, y, objectives)
    elif kind == "metric" and metric and axis:
        fig = plot_metric_vs_axis(df, metric, axis)
    else:
        raise NpusimError("plot kind must be 'pareto', or 'metric' with metric and axis")
    save_figure(fig, out)


def save_figure(fig: Figure, out: str | os.PathLike[str]) -> None:
    """Write a figure atomically (format from the suffix)."""
    from npusim._io import atomic_write

    fmt = Path(out).suffix.lstrip(".").lower() or "png"
    atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120))
