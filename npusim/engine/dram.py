"""``CycleDram``: the cycle-approximate DRAM behind the engine's memory interface.

A transfer (t, nbytes, addr) becomes one request per burst, all arriving at ``t`` (rounded
up to a DRAM clock), on the channels the address mapping sends them to; the controller
state (npusim/dram/system.py) is shared by every core and DMA engine, so transfers contend
in the order the event model issues them. Transfers are scheduled in call order: the
controller reorders requests within a transfer and against the state earlier transfers
left, not against transfers issued later. Transfers like earlier ones reuse the cost those took in
detail (npusim/dram/reuse.py); long transfers take the fast path (head and tail in detail,
the steady middle extrapolated over whole refresh intervals).

Chip YAML fields used: ``dram.standard``, ``channels``, ``data_rate`` (tCK rescaled, clock
counts kept: an assumption), ``bus_width_bits``, ``capacity``, ``pj_per_bit`` (the headline
figure the I/O share is set from), ``overrides`` (any catalog field: timings, organisation,
command energies), ``mapping``, ``interleave``, ``page_policy``, ``refresh`` and
``queue_depth``. ``bandwidth`` and ``latency_ns`` belong to the
bandwidth model and are ignored here: the timings decide both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from npusim.dram.system import DramSystem, system_options
from npusim.kernels import dram as K
from npusim.spec.arch import Chip
from npusim.spec.dram_catalog import DramStandard

__all__ = ["CycleDram", "standard_for_chip"]


def standard_for_chip(chip: Chip) -> DramStandard:
    """The catalog entry of ``chip.dram`` with the chip's overrides applied."""
    d = chip.dram
    std = d.catalog
    changes: dict[str, Any] = {}
    if d.data_rate is not None and d.data_rate != std.data_rate_mts * 1e6:
        rate = d.data_rate / 1e6
        changes["data_rate_mts"] = rate
        changes["tck_ns"] = std.transfers_per_clock * 1e3 / rate
    if d.bus_width_bits is not None:
        changes["channel_width_bits"] = d.bus_width_bits
    if d.capacity is not None:
        changes["capacity_per_channel_bytes"] = max(d.capacity // d.n_channels, std.row_bytes)
    if d.pj_per_bit is not None:
        changes["pj_per_bit"] = d.pj_per_bit
    return std.with_overrides(changes) if changes else std


class CycleDram:
    """Implements ``npusim.engine.memory.MemoryModel`` with the command-level controller."""

    def __init__(self, std: DramStandard, channels: int | None = None, **options: Any) -> None:
        self.system = DramSystem(std, channels, **options)
        self.std = std
        self.peak_bandwidth = self.system.peak_bandwidth
        self._tck = self.system.tck_s
        self._end_cycle = 0
        self._bins = np.arange(self.system.lat_hist.shape[0], dtype=np.float64)

    @classmethod
    def from_chip(cls, chip: Chip, **options: Any) -> CycleDram:
        """The chip's DRAM, with its mapping and controller settings (``options`` win)."""
        settings = system_options(chip.dram)
        settings.update(options)
        return cls(standard_for_chip(chip), chip.dram.n_channels, **settings)

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        if nbytes <= 0:
            return t
        start = math.ceil(t / self._tck - 1e-9)
        end = self.system.stream(int(addr), int(nbytes), bool(write), start)
        self._end_cycle = max(self._end_cycle, end)
        return max(end * self._tck, t)

    def counters(self) -> dict[str, float]:
        s = self.system
        e = s.energy(max(self._end_cycle, s.last_cycle))
        n = s.counts()
        hist = s.lat_hist
        reads = float(hist.sum())
        # Not ``hist @ bins``: a BLAS dot wakes its thread pool, and on a loaded machine
        # that wake-up cost milliseconds per call, more than the whole run of a small layer.
        lat_sum = float(np.multiply(hist, self._bins).sum()) * self._tck
        t = self.std.t
        ch = float(s.channels)
        # Channel time lost to each cause, per channel on average (an attribution, not a
        # measurement): a row miss costs a precharge and an activate; a refresh blocks the
        # channel (all-bank) or one bank of it (per-bank). The data bus moving bytes at peak
        # is the rest of a channel's busy time.
        bank = float(n[K.N_MISS]) * (t.rp + t.rcd) * self._tck / ch
        refresh = (float(n[K.N_REF]) * t.rfc
                   + float(n[K.N_REFPB]) * t.rfcpb / max(self.std.banks, 1)) * self._tck / ch
        moving = (float(s.read_bytes) + float(s.write_bytes)) / self.peak_bandwidth
        return {
            "read_bytes": float(s.read_bytes), "write_bytes": float(s.write_bytes),
            "energy_j": e.total_j, "energy_activate_j": e.activate_j,
            "energy_read_j": e.read_j, "energy_write_j": e.write_j,
            "energy_refresh_j": e.refresh_j, "energy_background_j": e.background_j,
            "energy_interface_j": e.interface_j, "energy_phy_j": e.phy_j,
            "row_hits": float(n[K.N_HIT]), "row_misses": float(n[K.N_MISS]),
            "read_latency_sum_s": lat_sum, "reads": reads,
            "busy_s": moving + bank + refresh, "bank_stall_s": bank, "refresh_stall_s": refresh,
        }

    def read_latency_histogram(self) -> tuple[Any, float]:
        """(reads per latency bin so far, bin width in seconds): one bin per DRAM clock."""
        return self.system.lat_hist.copy(), self._tck

    def read_latency_percentile_s(self, q: float) -> float:
        """Percentile ``q`` (0..100) of read latency so far, accepted to last data beat."""
        return self.system.latency_percentile(q) * self._tck

    def finish(self, t: float) -> None:
        """Close the run at ``t``: background energy and the refreshes due up to then."""
        end = math.ceil(t / self._tck - 1e-9)
        s = self.system
        if s.reuse is not None:
            s.reuse.settle()
        s.refresh_until(end)
        self._end_cycle = max(self._end_cycle, end)
