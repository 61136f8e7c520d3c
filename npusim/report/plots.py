"""Matplotlib views of a result: where the time and the energy went, the roofline, DRAM use.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``, so no
global figure state and no GUI backend: safe under Agg, in scripts, tests and Jupyter, where
a returned Figure displays itself), returns it, and with ``path`` also saves it; the format
follows the suffix (``.png``, ``.svg``, ``.pdf``) and the file is written atomically.

The per-layer functions take a :class:`~npusim.result.Result` or its ``layers``
DataFrame (so ``npusim plot`` can draw a saved table). ``Result.plot`` offers them as
methods: ``res.plot.latency()``, ``energy()``, ``roofline()``, ``bandwidth()``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from npusim.result import CAUSE_COLUMNS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from npusim.result import Result
    from npusim.spec.arch import Chip

__all__ = ["CAUSE_LABELS", "ResultPlots", "dram_bandwidth", "dram_bandwidth_from_trace",
           "energy_breakdown", "latency_by_cause", "load_curves", "memory_capacity", "roofline",
           "save_figure"]

#: A short legend label per cause column.
CAUSE_LABELS: dict[str, str] = {
    "time_mac_s": "array MACs", "time_fill_drain_s": "fill/drain", "time_sram_stall_s":
    "SRAM port stall", "time_vector_s": "vector unit", "time_dma_exposed_s": "exposed DMA",
    "time_dram_bank_s": "DRAM bank/row", "time_dram_refresh_s": "DRAM refresh",
    "time_dram_turnaround_s": "DRAM R/W turnaround", "time_noc_s": "NoC",
    "time_sync_s": "core sync", "time_host_s": "host path",
}
_ENERGY_COLUMNS = {"energy_mac_j": "MAC", "energy_sram_j": "SRAM", "energy_dram_j": "DRAM",
                   "energy_noc_j": "NoC", "energy_wire_j": "wire", "energy_vector_j": "vector",
                   "energy_static_j": "static", "energy_host_j": "host link"}
_BOUND_COLOURS = {"compute": "tab:blue", "memory": "tab:red", "vector": "tab:green"}
_FORMATS = ("png", "svg", "pdf")


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` atomically in the format named by the suffix of ``path``."""
    from npusim._io import atomic_write

    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError(f"{p}: unknown figure format {p.suffix!r} (use .png, .svg or .pdf)")
    atomic_write(p, lambda tmp: fig.savefig(tmp, format=fmt))
    return p


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _frame(data: Result | pd.DataFrame) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else data.layers


def _need(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the per-layer columns {', '.join(missing)}")


def _time_scale(seconds: float) -> tuple[float, str]:
    for scale, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "µs")):
        if seconds * scale >= 1.0:
            return scale, unit
    return 1e9, "ns"


def _layer_axis(ax: Axes, names: Sequence[str]) -> None:
    n = len(names)
    step = max(1, int(np.ceil(n / 40)))  # at most ~40 labels stay readable
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([names[i] for i in ticks], rotation=90, fontsize=6)
    ax.set_xlim(-0.6, n - 0.4)


def latency_by_cause(data: Result | pd.DataFrame, path: str | os.PathLike[str] | None = None,
                     *, title: str | None = None) -> Figure:
    """Per-layer latency as bars stacked by cause (causes that are zero everywhere left out)."""
    df = _frame(data)
    _need(df, ["layer", "latency_s", *CAUSE_COLUMNS], "the latency plot")
    causes = [c for c in CAUSE_COLUMNS if float(df[c].abs().sum()) > 0]
    scale, unit = _time_scale(float(df["latency_s"].max()) if len(df) else 1.0)
    fig = Figure(figsize=(max(6.0, min(0.16 * len(df) + 3, 24.0)), 4.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(df))
    bottom = np.zeros(len(df))
    cmap = [f"C{i}" for i in range(len(CAUSE_COLUMNS))]
    for c in causes:
        h = df[c].to_numpy(float) * scale
        ax.bar(x, h, bottom=bottom, width=0.8, label=CAUSE_LABELS[c],
               color=cmap[CAUSE_COLUMNS.index(c)])
        bottom += h
    _layer_axis(ax, [str(n) for n in df["layer"]])
    ax.set_ylabel(f"latency ({unit})")
    total = float(df["latency_s"].sum())
    tscale, tunit = _time_scale(total)
    ax.set_title(title or f"latency by cause: {total * tscale:.3g} {tunit} over {len(df)} layers")
    fig.legend(fontsize=7, ncols=min(len(causes), 5) or 1, loc="outside lower center")
    return _finish(fig, path)


def energy_breakdown(data: Result | pd.DataFrame, path: str | os.PathLike[str] | None = None,
                     *, title: str | None = None) -> Figure:
    """Energy per layer stacked by component (left) and the total by component (right)."""
    df = _frame(data)
    # A table saved before the NoC, wire or host terms existed lacks their columns.
    cols = [c for c in _ENERGY_COLUMNS
            if c not in ("energy_noc_j", "energy_wire_j", "energy_host_j") or c in df.columns]
    _need(df, ["layer", *cols], "the energy plot")
    fig = Figure(figsize=(max(7.0, min(0.16 * len(df) + 4, 26.0)), 4.5), layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=(6, 1))
    ax, tot = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    peak = float(df[cols].sum(axis=1).max()) if len(df) else 1.0
    scale, unit = (1e6, "µJ") if peak < 1e-3 else (1e3, "mJ") if peak < 1 else (1.0, "J")
    x = np.arange(len(df))
    bottom = np.zeros(len(df))
    totals = []
    for i, c in enumerate(cols):
        h = df[c].to_numpy(float) * scale
        ax.bar(x, h, bottom=bottom, width=0.8, label=_ENERGY_COLUMNS[c], color=f"C{i}")
        bottom += h
        totals.append(float(df[c].sum()))
    _layer_axis(ax, [str(n) for n in df["layer"]])
    ax.set_ylabel(f"energy per layer ({unit})")
    fig.legend(fontsize=7, ncols=len(cols), loc="outside lower center")
    total = sum(totals)
    tscale, tunit = (1e6, "µJ") if total < 1e-3 else (1e3, "mJ") if total < 1 else (1.0, "J")
    acc = 0.0
    for i, (c, v) in enumerate(zip(cols, totals, strict=True)):
        tot.bar([0], [v * tscale], bottom=[acc], width=0.6, color=f"C{i}")
        if total > 0 and v / total >= 0.04:
            tot.text(0, acc + v * tscale / 2, f"{_ENERGY_COLUMNS[c]}\n{100 * v / total:.0f} %",
                     ha="center", va="center", fontsize=7)
        acc += v * tscale
    tot.set_xticks([0])
    tot.set_xticklabels(["total"])
    tot.set_ylabel(f"energy ({tunit})")
    ax.set_title(title or f"energy: {total * tscale:.4g} {tunit} in total")
    return _finish(fig, path)


def roofline(data: Result | pd.DataFrame, chip: Chip | None = None,
             path: str | os.PathLike[str] | None = None, *, precision: str | None = None,
             title: str | None = None) -> Figure:
    """The chip's roofline with each layer that does MACs and touches DRAM as a point.

    x: operational intensity, 2 x MACs / DRAM bytes (ops per byte); y: achieved ops/s,
    2 x MACs / latency. Roofs: ``chip.peak_ops_per_second(precision)`` (default precision
    unless given) and ``chip.dram.peak_bandwidth``, and, dashed, the matrix-vector engine's
    peak when the chip has one. Layers without DRAM traffic have no
    finite intensity and are counted in the title instead of drawn.
    """
    df = _frame(data)
    if chip is None:
        if isinstance(data, pd.DataFrame):
            raise ValueError("the roofline needs the chip: pass chip=")
        chip = data.chip
    _need(df, ["layer", "macs", "latency_s", "dram_read_bytes", "dram_write_bytes"],
          "the roofline")
    prec = precision or chip.default_precision
    peak = chip.peak_ops_per_second(prec)
    bw = chip.dram.peak_bandwidth
    ops = 2.0 * df["macs"].to_numpy(float)
    nbytes = (df["dram_read_bytes"] + df["dram_write_bytes"]).to_numpy(float)
    lat = df["latency_s"].to_numpy(float)
    ok = (ops > 0) & (lat > 0)
    drawn = ok & (nbytes > 0)
    intensity = np.where(drawn, ops / np.where(nbytes > 0, nbytes, 1.0), np.nan)
    achieved = np.where(drawn, ops / np.where(lat > 0, lat, 1.0), np.nan)
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ridge = peak / bw
    lo = min(float(np.nanmin(intensity)) if drawn.any() else ridge, ridge) / 4
    hi = max(float(np.nanmax(intensity)) if drawn.any() else ridge, ridge) * 4
    xs = np.geomspace(lo, hi, 256)
    ax.plot(xs, np.minimum(peak, xs * bw), color="black", lw=1.5,
            label=f"roof: {peak / 1e12:.3g} TOPS {prec}, {bw / 1e9:.4g} GB/s")
    ax.axvline(ridge, color="grey", lw=0.6, ls=":")
    mv_peak = (2 * chip.n_cores * chip.cores.core.peak_macs_per_cycle("matvec", prec)
               * chip.clock)
    if mv_peak > 0:  # the matrix-vector engine's lower roof (its layers are drawn under it)
        ax.plot(xs, np.minimum(mv_peak, xs * bw), color="black", lw=1.0, ls="--",
                label=f"matvec engine: {mv_peak / 1e12:.3g} TOPS {prec}")
    bound = df["bound"].astype(str).to_numpy() if "bound" in df else np.full(len(df), "layer")
    for b in dict.fromkeys(bound[drawn]):
        sel = drawn & (bound == b)
        ax.scatter(intensity[sel], achieved[sel], s=18, alpha=0.8,
                   color=_BOUND_COLOURS.get(str(b), "tab:purple"), label=f"{b}-bound layers")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (ops / DRAM byte)")
    ax.set_ylabel("achieved ops/s")
    hidden = int((ok & ~drawn).sum())
    extra = f", {hidden} layer(s) without DRAM traffic not shown" if hidden else ""
    ax.set_title(title or f"roofline of {chip.name}{extra}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _finish(fig, path)


def _binned(spans: Sequence[tuple[float, float, float]], end: float,
            bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges (s) over [0, ``end``] and bytes/s per bin of ``(start_s, end_s, bytes)``
    spans, each spread uniformly over its interval (an instant one goes to its bin)."""
    end = max([end] + [s[1] for s in spans])
    edges = np.linspace(0.0, end if end > 0 else 1.0, bins + 1)
    moved = np.zeros(bins)
    for s0, s1, b in spans:
        if s1 <= s0:
            i = min(int(np.searchsorted(edges, s0, side="right")) - 1, bins - 1)
            moved[max(i, 0)] += b
            continue
        overlap = np.clip(np.minimum(edges[1:], s1) - np.maximum(edges[:-1], s0), 0.0, None)
        moved += b * overlap / (s1 - s0)
    return edges, moved / np.diff(edges)


def _bandwidth_series(result: Result, bins: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Bin edges (s) and bytes/s per bin, from DRAM channel records or else DMA intervals."""
    from npusim.timeline import channel_records, traced_events

    events = traced_events(result)
    records = channel_records(result, events)
    if records is not None:
        spans = [(r.start_s, r.end_s, float(r.nbytes)) for r in records]
        source = "DRAM channel activity"
    else:
        from npusim.compiler.program import COL

        layers = {lp.index: lp for lp in result.program.layers}
        rd, wr = COL["dram_read_bytes"], COL["dram_write_bytes"]
        spans = [(e.start_s, e.end_s,
                  float(layers[e.layer].tiles[e.core][e.tile, wr if e.engine == "dma_out" else rd]))
                 for e in events if e.engine != "compute"]
        source = "DMA transfers (issue to completion)"
    edges, rate = _binned(spans, float(result.layers["latency_s"].sum()), bins)
    return edges, rate, source


def _bandwidth_figure(edges: np.ndarray, rate: np.ndarray, source: str, peak: float,
                      layer_ends: np.ndarray, title: str) -> Figure:
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    scale, unit = _time_scale(float(edges[-1]))
    ax.stairs(rate / 1e9, edges * scale, fill=True, alpha=0.7, label=source)
    ax.axhline(peak / 1e9, color="black", ls="--", lw=1, label=f"peak {peak / 1e9:.4g} GB/s")
    for i in range(0, len(layer_ends) - 1, 2):  # shade every other layer
        ax.axvspan(layer_ends[i] * scale, layer_ends[i + 1] * scale, color="grey", alpha=0.08,
                   lw=0)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("DRAM bandwidth (GB/s)")
    ax.set_xlim(0, edges[-1] * scale)
    ax.set_ylim(0, max(peak, float(rate.max()) if len(rate) else 0.0) / 1e9 * 1.1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def dram_bandwidth(result: Result, path: str | os.PathLike[str] | None = None, *,
                   bins: int = 200, title: str | None = None) -> Figure:
    """DRAM bandwidth over time (binned), against the peak, with layer boundaries shaded."""
    edges, rate, source = _bandwidth_series(result, bins)
    fig = _bandwidth_figure(
        edges, rate, source, result.chip.dram.peak_bandwidth,
        np.cumsum(result.layers["latency_s"].to_numpy(float)),
        title or f"DRAM bandwidth over time: {result.chip.name} x {result.workload_name}")
    return _finish(fig, path)


def dram_bandwidth_from_trace(trace: dict[str, Any], peak_bandwidth: float,
                              path: str | os.PathLike[str] | None = None, *, bins: int = 200,
                              title: str | None = None) -> Figure:
    """:func:`dram_bandwidth` drawn from a saved Chrome trace (``npusim run --trace``, whose
    times are in µs): its DRAM channel events when it has them, else its DMA transfers;
    ``peak_bandwidth`` (bytes/s) is the chip's, which the trace does not hold."""
    events = [e for e in trace.get("traceEvents", []) if isinstance(e, dict) and e.get("ph") == "X"]

    def spans(cats: tuple[str, ...]) -> list[tuple[float, float, float]]:
        return [(float(e["ts"]) * 1e-6, (float(e["ts"]) + float(e["dur"])) * 1e-6,
                 float(e["args"]["bytes"])) for e in events if e.get("cat") in cats]

    source, chosen = "DRAM channel activity", spans(("dram",))
    if not chosen:
        source, chosen = "DMA transfers (issue to completion)", spans(("dma_in", "dma_out"))
    ends = np.array(sorted((float(e["ts"]) + float(e["dur"])) * 1e-6 for e in events
                           if e.get("cat") == "layer"))
    edges, rate = _binned(chosen, float(ends[-1]) if len(ends) else 0.0, bins)
    other = trace.get("otherData", {})
    name = f"{other.get('chip', '?')} x {other.get('workload', '?')}" if other else "trace"
    fig = _bandwidth_figure(edges, rate, source, peak_bandwidth, ends,
                            title or f"DRAM bandwidth over time: {name}")
    return _finish(fig, path)


def memory_capacity(weight_bytes: float | Sequence[float], kv_cache_bytes: float | Sequence[float],
                    activation_bytes: float | Sequence[float],
                    dram_bytes: float | Sequence[float], path: str | os.PathLike[str] | None = None,
                    *, labels: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Horizontal bars of weights + KV cache + activations against each DRAM capacity.

    Each argument is one figure or one per bar (e.g. one model on several chips); an
    :class:`npusim.workloads.llm.Footprint` gives the first three.
    """
    cols = [np.atleast_1d(np.asarray(v, dtype=float))
            for v in (weight_bytes, kv_cache_bytes, activation_bytes, dram_bytes)]
    n = max(len(c) for c in cols)
    w, kv, act, cap = (np.broadcast_to(c, (n,)) for c in cols)
    names = list(labels) if labels is not None else [f"#{i}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} labels for {n} bars")
    gib = float(2**30)
    fig = Figure(figsize=(7.5, 1.2 + 0.7 * n), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)
    left = np.zeros(n)
    for part, label, colour in ((w, "weights", "C0"), (kv, "KV cache", "C1"),
                                (act, "activations", "C2")):
        ax.barh(y, part / gib, left=left, height=0.5, label=label, color=colour)
        left = left + part / gib
    for i in range(n):
        ax.plot([cap[i] / gib] * 2, [i - 0.4, i + 0.4], color="black", lw=2,
                label="DRAM capacity" if i == 0 else None)
        fits = "fits" if left[i] <= cap[i] / gib else "does not fit"
        ax.text(max(left[i], cap[i] / gib) * 1.01, i,
                f"{left[i]:.1f} / {cap[i] / gib:.0f} GiB ({fits})", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.invert_yaxis()  # first bar on top
    ax.set_xlabel("GiB")
    ax.set_xlim(0, float(max(left.max(), (cap / gib).max())) * 1.35)
    ax.set_title(title or "DRAM footprint", fontsize=9)
    fig.legend(fontsize=7, ncols=4, loc="outside lower center")
    return _finish(fig, path)


class ResultPlots:
    """The plots of one result, as methods (``Result.plot``)."""

    def __init__(self, result: Result) -> None:
        self._result = result

    def latency(self, path: str | os.PathLike[str] | None = None) -> Figure:
        return latency_by_cause(self._result, path)

    def energy(self, path: str | os.PathLike[str] | None = None) -> Figure:
        return energy_breakdown(self._result, path)

    def roofline(self, path: str | os.PathLike[str] | None = None,
                 precision: str | None = None) -> Figure:
        return roofline(self._result, self._result.chip, path, precision=precision)

    def bandwidth(self, path: str | os.PathLike[str] | None = None, bins: int = 200) -> Figure:
        return dram_bandwidth(self._result, path, bins=bins)

    def __repr__(self) -> str:
        return "<plots: latency(), energy(), roofline(), bandwidth()>"


def load_curves(table: pd.DataFrame, path: str | os.PathLike[str] | None = None, *,
                knee: float | None = None, title: str | None = None,
                slo_ttft_s: float | None = None, slo_tpot_s: float | None = None) -> Figure:
    """A load sweep's table (:func:`npusim.serving.load_sweep`): TTFT and TPOT percentiles
    against offered load (left; p50 solid, p99 dashed, the SLO bounds ``slo_ttft_s`` and
    ``slo_tpot_s`` as dash-dotted lines in their curve's colour), output tokens/s and
    $/Mtoken against load (right; $ when the table has a cost column with values).
    ``knee`` draws a dotted vertical line."""
    _need(table, ["rate", "p50_ttft_s", "p99_ttft_s", "p50_tpot_s", "p99_tpot_s",
                  "tokens_per_s"], "load_curves")
    df = table.sort_values("rate")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    lat, thr = fig.subplots(1, 2)
    for col, style, label in (("p50_ttft_s", "-", "TTFT p50"), ("p99_ttft_s", "--", "TTFT p99"),
                              ("p50_tpot_s", "-", "TPOT p50"), ("p99_tpot_s", "--", "TPOT p99")):
        colour = "C0" if "ttft" in col else "C1"
        lat.plot(df["rate"], df[col] * 1e3, linestyle=style, color=colour, marker=".",
                 label=label)
    for bound, colour, name in ((slo_ttft_s, "C0", "TTFT"), (slo_tpot_s, "C1", "TPOT")):
        if bound is not None and np.isfinite(bound):
            lat.axhline(bound * 1e3, color=colour, lw=1, ls="-.",
                        label=f"{name} SLO {bound * 1e3:g} ms")
    lat.set_yscale("log")
    lat.set_xlabel("offered load (requests/s)")
    lat.set_ylabel("ms")
    thr.plot(df["rate"], df["tokens_per_s"], "-", color="C2", marker=".", label="tokens/s")
    thr.set_xlabel("offered load (requests/s)")
    thr.set_ylabel("output tokens/s")
    if "usd_per_mtoken" in df.columns and df["usd_per_mtoken"].notna().any():
        usd = thr.twinx()
        usd.plot(df["rate"], df["usd_per_mtoken"], "-", color="C3", marker=".",
                 label="$ / Mtoken")
        usd.set_ylabel("$ per million output tokens")
        usd.legend(fontsize=7, loc="center right", handlelength=3.5)
    for ax in (lat, thr):
        if knee is not None and np.isfinite(knee):
            ax.axvline(knee, color="grey", lw=1, ls=":", label=f"knee {knee:.3g}/s")
        # long handles, so a dashed p99 shows its dashes in the legend
        ax.legend(fontsize=7, loc="upper left", handlelength=3.5)
    fig.suptitle(title or "latency and throughput against offered load", fontsize=9)
    return _finish(fig, path)
