"""The result of a simulation: an immutable per-layer table plus totals.

``Result.layers`` is a pandas DataFrame with one row per layer (a fresh copy each call, so
callers cannot change the result); ``Result.summary()`` is a dict of totals. Cycle counts
are in core clock cycles. ``compute_cycles`` follows the SCALE-Sim convention (0-based
index of the last compute cycle with ideal memory, i.e. folds x cycles-per-fold - 1) so it
compares directly with SCALE-Sim's reported cycles.

A Result is built by :mod:`npusim.assemble` (which runs the energy model and labels the
bounds); this module only holds it and totals its rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from npusim._views import view

if TYPE_CHECKING:
    import pandas as pd

    from npusim.compiler.program import TileProgram
    from npusim.engine.events import TileEvent
    from npusim.spec.arch import Chip

__all__ = ["CAUSE_COLUMNS", "LAYER_COLUMNS", "Result", "dram_figures", "histogram_percentile"]

LAYER_COLUMNS: tuple[str, ...] = (
    "layer", "op", "unit", "precision", "m", "n", "k", "macs", "compute_cycles", "array_cycles",
    "vector_cycles", "cycles", "stall_cycles", "latency_s", "bound", "limit", "utilization",
    "dram_read_bytes", "dram_write_bytes", "dram_dup_bytes", "noc_bytes", "sram_read_bytes",
    "sram_write_bytes", "acc_read_bytes", "acc_write_bytes", "energy_j", "energy_mac_j",
    "energy_sram_j", "energy_dram_j", "energy_noc_j", "energy_wire_j", "energy_vector_j",
    "energy_static_j", "energy_host_j", "n_tiles", "mapping",
)

#: Latency by cause; per layer they add up to ``latency_s`` (averaged over cores).
#: ``time_host_s`` (host link transfers and runtime overheads) is 0 unless the host path is
#: on (``simulate(..., host=True)``, the scenarios; see npusim.engine.host).
CAUSE_COLUMNS: tuple[str, ...] = (
    "time_mac_s", "time_fill_drain_s", "time_sram_stall_s", "time_vector_s",
    "time_dma_exposed_s", "time_dram_bank_s", "time_dram_refresh_s", "time_dram_turnaround_s",
    "time_noc_s", "time_sync_s", "time_host_s",
)


def histogram_percentile(hist: np.ndarray, width: float, q: float) -> float:
    total = float(hist.sum())
    if total <= 0:
        return float("nan")
    idx = int(np.searchsorted(np.cumsum(hist), q / 100.0 * total))
    return idx * width


def dram_figures(memory: dict[str, float], seconds: float, peak: float,
                 hist: tuple[np.ndarray, float] | None = None) -> dict[str, float]:
    """Achieved DRAM bandwidth and, when the memory model counts them, row-buffer hit rate
    and read latency (mean and 99th percentile)."""
    moved = memory.get("read_bytes", 0.0) + memory.get("write_bytes", 0.0)
    bw = moved / seconds if seconds > 0 else 0.0
    out = {"dram_bandwidth_bytes_per_s": bw, "dram_bandwidth_util": bw / peak if peak else 0.0}
    if "row_hits" in memory:
        acc = memory["row_hits"] + memory.get("row_misses", 0.0)
        out["dram_row_hit_rate"] = memory["row_hits"] / acc if acc > 0 else float("nan")
    if memory.get("reads", 0.0) > 0:
        out["dram_read_latency_avg_s"] = memory["read_latency_sum_s"] / memory["reads"]
    if hist is not None:
        out["dram_read_latency_p99_s"] = histogram_percentile(hist[0], hist[1], 99.0)
    return out


@dataclass(frozen=True)
class Result:
    """Per-layer and total figures of one simulation (immutable)."""

    chip: Chip
    workload_name: str
    batch: int
    program: TileProgram = field(repr=False)
    rows: tuple[dict[str, Any], ...] = field(repr=False)
    events: tuple[TileEvent, ...] = field(default=(), repr=False)
    memory_totals: dict[str, float] = field(default_factory=dict, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def _frame(self) -> pd.DataFrame:
        import pandas as pd  # on first use: a run that prints its summary needs none

        df = pd.DataFrame(list(self.rows))
        if df.empty:
            return pd.DataFrame(columns=list(LAYER_COLUMNS))
        extra = [c for c in df.columns if c not in LAYER_COLUMNS]
        return df[list(LAYER_COLUMNS) + extra]

    @property
    def layers(self) -> pd.DataFrame:
        """One row per layer (a copy)."""
        return self._frame.copy()

    def to_dataframe(self) -> pd.DataFrame:
        return self.layers

    def _has(self, column: str) -> bool:
        """Whether the layer table has ``column`` (an empty table has LAYER_COLUMNS)."""
        return any(column in r for r in self.rows) if self.rows else column in LAYER_COLUMNS

    def _sum(self, column: str) -> Any:
        """The column's total as the layer table gives it (``layers[column].sum()``: a
        missing value counts 0) without building the table: numpy's pairwise sum over the
        same values in the same dtype, so bit for bit the DataFrame's."""
        if not self.rows:
            return 0
        a = np.asarray([r.get(column, np.nan) for r in self.rows])
        if a.dtype.kind == "f":
            a = np.where(np.isnan(a), 0.0, a)
        return a.sum()

    def summary(self) -> dict[str, Any]:
        rows = self.rows
        latency = float(self._sum("latency_s")) if len(rows) else 0.0
        macs = int(self._sum("macs")) if len(rows) else 0
        energy_layers = float(self._sum("energy_j")) if len(rows) else 0.0
        # Energy a memory model adds outside any layer (e.g. background at finish).
        dram_total = float(self.memory_totals.get("energy_j", self._sum("energy_dram_j")))
        dram_extra = max(dram_total - float(self._sum("energy_dram_j")), 0.0)
        energy = energy_layers + dram_extra
        clock = self.chip.clock
        cycles = latency * clock
        peak = self.chip.peak_macs_per_second() / clock
        s: dict[str, Any] = {
            "chip": self.chip.name, "workload": self.workload_name, "batch": self.batch,
            "layers": len(rows), "latency_s": latency, "cycles": cycles, "macs": macs,
            "ops": 2 * macs,
            "compute_cycles": float(self._sum("compute_cycles")) if len(rows) else 0.0,
            "utilization": macs / (cycles * peak) if cycles > 0 else 0.0,
            "energy_j": energy,
            "energy_mac_j": float(self._sum("energy_mac_j")),
            "energy_sram_j": float(self._sum("energy_sram_j")),
            "energy_dram_j": float(self._sum("energy_dram_j")) + dram_extra,
            "energy_noc_j": float(self._sum("energy_noc_j")),
            "energy_wire_j": float(self._sum("energy_wire_j")) if self._has("energy_wire_j") else 0.0,
            "energy_host_j": float(self._sum("energy_host_j")) if self._has("energy_host_j") else 0.0,
            "energy_vector_j": float(self._sum("energy_vector_j")),
            "energy_static_j": float(self._sum("energy_static_j")),
            "dram_read_bytes": float(self._sum("dram_read_bytes")),
            "dram_write_bytes": float(self._sum("dram_write_bytes")),
            "dram_dup_bytes": float(self._sum("dram_dup_bytes")),
            "noc_bytes": float(self._sum("noc_bytes")),
            "average_power_w": energy / latency if latency > 0 else 0.0,
            "effective_tops": 2 * macs / latency / 1e12 if latency > 0 else 0.0,
            "tops_per_w": 2 * macs / energy / 1e12 if energy > 0 else 0.0,
            "inferences_per_s": self.batch / latency if latency > 0 else 0.0,
            "inferences_per_j": self.batch / energy if energy > 0 else 0.0,
            "bound_compute_layers": sum(r.get("bound") == "compute" for r in rows),
            "bound_memory_layers": sum(r.get("bound") == "memory" for r in rows),
            "bound_vector_layers": sum(r.get("bound") == "vector" for r in rows),
        }
        s.update(dram_figures(self.memory_totals, latency, self.chip.dram.peak_bandwidth))
        for key, value in self.memory_totals.items():
            if key.startswith("energy_") and key != "energy_j":
                s[f"energy_dram_{key[len('energy_'):]}"] = float(value)
        s.update(self.meta)
        return s

    @property
    def plot(self) -> Any:
        """Plots of this result: ``.plot.latency()``, ``energy()``, ``roofline()``, ``bandwidth()``
        (a :class:`npusim.report.plots.ResultPlots`)."""
        return view("result.plot")(self)

    def to_chrome_trace(self, path: str | os.PathLike[str]) -> Path:
        """Write the timeline as Chrome trace-event JSON for Perfetto (see npusim.timeline;
        an untraced result is run again with tracing)."""
        path_out: Path = view("result.chrome_trace")(self, path)
        return path_out

    def _repr_html_(self) -> str:
        return str(view("result.html")(self))

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Result({s['chip']!r} x {s['workload']!r}: {s['latency_s'] * 1e3:.3f} ms, "
                f"{s['energy_j'] * 1e3:.3f} mJ, {s['layers']} layers)")
