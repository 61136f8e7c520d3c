"""The memory interface the engine talks to, and the simple bandwidth-and-latency model.

A memory model is time-stamped rather than event-driven: the engine asks
``transfer(t, nbytes, addr, write, requester)`` at simulated time ``t`` (seconds) and gets
back the time the last byte is delivered. The model keeps its own state (busy channels,
open rows, queues), so transfers from every core and DMA engine contend for it in the order
the event model issues them. ``counters()`` returns cumulative totals; the engine takes
per-layer differences. Keys every model reports:

    read_bytes, write_bytes, energy_j

and a detailed model may add (all cumulative): ``energy_activate_j``, ``energy_read_j``,
``energy_write_j``, ``energy_refresh_j``, ``energy_background_j``, ``row_hits``,
``row_misses``, ``read_latency_sum_s``, ``reads``.

``finish(t)`` closes the run at time ``t`` (a model adds refresh and background energy).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from npusim.spec.arch import Chip

__all__ = ["BandwidthDram", "IdealMemory", "MemoryModel", "make_memory"]


@runtime_checkable
class MemoryModel(Protocol):
    peak_bandwidth: float  # bytes per second, all channels

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        """Issue a transfer at time ``t``; return when its last byte is delivered."""
        ...

    def counters(self) -> dict[str, float]: ...

    def finish(self, t: float) -> None: ...


class BandwidthDram:
    """Each channel is a FIFO server at its peak rate, plus a fixed idle latency.

    A transfer is interleaved over all channels in ``interleave_bytes`` chunks starting at
    ``addr``; each channel serves its share after whatever it already had queued.
    """

    def __init__(self, channels: int, channel_bandwidth: float, latency_s: float,
                 pj_per_bit: float, interleave_bytes: int = 256) -> None:
        self.channels = channels
        self.channel_bandwidth = channel_bandwidth
        self.peak_bandwidth = channels * channel_bandwidth
        self.latency_s = latency_s
        self.energy_per_byte = pj_per_bit * 8e-12
        self.interleave = interleave_bytes
        self._busy = np.zeros(channels)
        self._read = 0.0
        self._write = 0.0

    @classmethod
    def from_chip(cls, chip: Chip) -> BandwidthDram:
        d = chip.dram
        return cls(d.n_channels, d.peak_bandwidth / d.n_channels, d.idle_latency_s,
                   d.energy_pj_per_bit)

    def _shares(self, nbytes: int, addr: int) -> np.ndarray:
        chunks, rest = divmod(nbytes, self.interleave)
        per = np.full(self.channels, chunks // self.channels, dtype=np.int64)
        first = (addr // self.interleave) % self.channels
        extra = chunks % self.channels
        idx = (first + np.arange(extra)) % self.channels
        per[idx] += 1
        out = per.astype(np.float64) * self.interleave
        out[(first + extra) % self.channels] += rest
        return out

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        if nbytes <= 0:
            return t
        if write:
            self._write += nbytes
        else:
            self._read += nbytes
        shares = self._shares(nbytes, addr)
        used = shares > 0
        start = np.maximum(self._busy[used], t)
        self._busy[used] = start + shares[used] / self.channel_bandwidth
        return float(self._busy[used].max()) + self.latency_s

    def counters(self) -> dict[str, float]:
        return {"read_bytes": self._read, "write_bytes": self._write,
                "energy_j": (self._read + self._write) * self.energy_per_byte}

    def finish(self, t: float) -> None:
        return None


class IdealMemory:
    """Infinite bandwidth, zero latency: the SCALE-Sim 'no stall' reference point."""

    peak_bandwidth = float("inf")

    def __init__(self, pj_per_bit: float = 0.0) -> None:
        self.energy_per_byte = pj_per_bit * 8e-12
        self._read = 0.0
        self._write = 0.0

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        if write:
            self._write += nbytes
        else:
            self._read += nbytes
        return t

    def counters(self) -> dict[str, float]:
        return {"read_bytes": self._read, "write_bytes": self._write,
                "energy_j": (self._read + self._write) * self.energy_per_byte}

    def finish(self, t: float) -> None:
        return None


def make_memory(chip: Chip, model: str = "bandwidth") -> MemoryModel:
    """The memory model named ``model`` for ``chip``: ``bandwidth`` or ``ideal``."""
    if model == "ideal":
        return IdealMemory(chip.dram.energy_pj_per_bit)
    if model == "bandwidth":
        return BandwidthDram.from_chip(chip)
    raise ValueError(f"unknown memory model {model!r} (use 'bandwidth' or 'ideal')")
