"""The columns of a sweep table: the metrics of a chip run, its per-layer table, and the
names no axis may take.

Kept apart from the runner so that reading a sweep file (which refuses an axis named like a
column) does not import the machinery that runs it.
"""

from __future__ import annotations

from npusim.sweep.systems import SYSTEM_METRIC_COLUMNS

__all__ = ["LAYER_COLUMNS", "METRIC_COLUMNS", "RESERVED_COLUMNS", "SUMMARY_METRICS"]

#: Metrics taken from ``Result.summary()`` (renamed where the table uses another name).
SUMMARY_METRICS: dict[str, str] = {
    "latency_s": "latency_s", "cycles": "cycles", "inferences_per_s": "throughput",
    "effective_tops": "effective_tops", "energy_j": "energy_j",
    "energy_mac_j": "energy_mac_j", "energy_sram_j": "energy_sram_j",
    "energy_dram_j": "energy_dram_j", "energy_noc_j": "energy_noc_j",
    "energy_wire_j": "energy_wire_j", "energy_host_j": "energy_host_j",
    "energy_vector_j": "energy_vector_j",
    "energy_static_j": "energy_static_j", "average_power_w": "average_power_w",
    "tops_per_w": "tops_per_w", "inferences_per_j": "inferences_per_j",
    "utilization": "utilization", "dram_read_bytes": "dram_read_bytes",
    "dram_write_bytes": "dram_write_bytes", "dram_dup_bytes": "dram_dup_bytes",
    "noc_bytes": "noc_bytes", "macs": "macs", "layers": "layers",
    "batch": "batch", "bound_compute_layers": "bound_compute_layers",
    "bound_memory_layers": "bound_memory_layers", "bound_vector_layers": "bound_vector_layers",
    "weights_resident": "weights_resident",  # 1.0 when weights stayed in the shared SRAM
}
#: Per-layer columns kept in each cache entry (for per-layer breakdown plots).
LAYER_COLUMNS: tuple[str, ...] = (
    "layer", "op", "bound", "latency_s", "energy_j", "utilization",
    "dram_read_bytes", "dram_write_bytes", "time_mac_s", "time_fill_drain_s",
    "time_sram_stall_s", "time_vector_s", "time_dma_exposed_s",
    "time_dram_bank_s", "time_dram_refresh_s", "time_dram_turnaround_s",
    "time_noc_s", "time_sync_s", "energy_mac_j", "energy_sram_j", "energy_dram_j",
    "energy_noc_j", "energy_wire_j", "energy_vector_j", "energy_static_j", "energy_host_j")

METRIC_COLUMNS: tuple[str, ...] = (
    *SUMMARY_METRICS.values(), "dram_bytes", "peak_tops", "area_mm2", "area_array_mm2",
    "area_vector_mm2", "area_sram_mm2", "area_dram_phy_mm2", "area_dram_controller_mm2",
    "perf_per_mm2", "tops_per_mm2", "perf_per_w",
)

#: Columns of the table besides the axes; no axis may take one of these names.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {"point", "workload", "status", "error", "key", "pareto", *METRIC_COLUMNS,
     *SYSTEM_METRIC_COLUMNS})
