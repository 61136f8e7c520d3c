"""The memory interface the engine talks to, and the simple bandwidth-and-latency model.

A memory model is time-stamped rather than event-driven: the engine asks
``transfer(t, nbytes, addr, write, requester)`` at simulated time ``t`` (seconds) and gets
back the time the last byte is delivered. The model keeps its own state (busy channels,
open rows, queues), so transfers from every core and DMA engine contend for it in the order
the event model issues them. ``counters()`` returns cumulative totals; the engine takes
per-layer differences. Keys every model reports:

    read_bytes, write_bytes, energy_j

and the parts of ``energy_j``: ``energy_core_j`` (the DRAM device), ``energy_interface_j``
(the bus or TSVs/interposer and its drivers) and ``energy_phy_j`` (the NPU-side controller
and PHY); the ``energy_*_j`` parts add up to ``energy_j``. A detailed model reports the core
by command instead of ``energy_core_j``: ``energy_activate_j``, ``energy_read_j``,
``energy_write_j``, ``energy_refresh_j``, ``energy_background_j``, and may add (all
cumulative) ``row_hits``, ``row_misses``, ``read_latency_sum_s``, ``reads``.

``finish(t)`` closes the run at time ``t`` (a model adds refresh and background energy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from npusim.spec.arch import Chip

__all__ = ["BandwidthDram", "IdealMemory", "MemoryModel", "make_memory", "traffic_counters"]


@runtime_checkable
class MemoryModel(Protocol):
    peak_bandwidth: float  # bytes per second, all channels

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        """Issue a transfer at time ``t``; return when its last byte is delivered."""
        ...

    def counters(self) -> dict[str, float]: ...

    def finish(self, t: float) -> None: ...


def traffic_counters(read: float, write: float,
                     energy_per_byte: float | Mapping[str, float]) -> dict[str, float]:
    """The counters of a model that only counts bytes: reads, writes, energy; given per-byte
    energies by part (``{"core": …, "interface": …, "phy": …}``), each part too."""
    moved = read + write
    out = {"read_bytes": read, "write_bytes": write}
    if isinstance(energy_per_byte, Mapping):
        out["energy_j"] = moved * sum(energy_per_byte.values())
        out.update({f"energy_{k}_j": moved * v for k, v in energy_per_byte.items()})
    else:
        out["energy_j"] = moved * energy_per_byte
    return out


def _per_byte(parts_pj_per_bit: Mapping[str, float] | float) -> dict[str, float]:
    """Joules per byte by part from pJ per bit (a bare number is all ``core``)."""
    if not isinstance(parts_pj_per_bit, Mapping):
        parts_pj_per_bit = {"core": parts_pj_per_bit, "interface": 0.0, "phy": 0.0}
    return {k: v * 8e-12 for k, v in parts_pj_per_bit.items()}


class BandwidthDram:
    """Each channel is a FIFO server at its peak rate, plus a fixed idle latency.

    A transfer is interleaved over all channels in ``interleave_bytes`` chunks starting at
    ``addr``; each channel serves its share after whatever it already had queued. With
    ``record=True`` every share is kept in ``records`` as ``(channel, start_s, end_s, bytes,
    write)`` for timelines (off by default: it costs memory on long runs).
    """

    def __init__(self, channels: int, channel_bandwidth: float, latency_s: float,
                 pj_per_bit: float | Mapping[str, float], interleave_bytes: int = 256,
                 record: bool = False) -> None:
        self.channels = channels
        self.channel_bandwidth = channel_bandwidth
        self.peak_bandwidth = channels * channel_bandwidth
        self.latency_s = latency_s
        self.energy_parts = _per_byte(pj_per_bit)  # J per byte: core, interface, phy
        self.energy_per_byte = sum(self.energy_parts.values())
        self.interleave = interleave_bytes
        self._floor = 0.0  # every channel is busy until then
        self._busy: dict[int, float] = {}  # channels busy past the floor
        self._read = 0.0
        self._write = 0.0
        self.records: list[tuple[int, float, float, float, bool]] | None = [] if record else None

    @classmethod
    def from_chip(cls, chip: Chip, record: bool = False) -> BandwidthDram:
        d = chip.dram
        return cls(d.n_channels, d.peak_bandwidth / d.n_channels, d.idle_latency_s,
                   d.energy_parts_pj_per_bit, record=record)

    def _shares(self, nbytes: int, addr: int) -> list[float]:
        """Bytes each channel carries: chunks dealt round-robin from ``addr``'s channel."""
        il, ch = self.interleave, self.channels
        chunks, rest = divmod(nbytes, il)
        base, extra = divmod(chunks, ch)
        first = (addr // il) % ch
        shares = [0.0] * ch
        for i in range(ch):
            shares[(first + i) % ch] = float((base + (1 if i < extra else 0)) * il)
        shares[(first + extra) % ch] += rest
        return shares

    def _channel_busy(self, c: int) -> float:
        return max(self._floor, self._busy.get(c, 0.0))

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        if nbytes <= 0:
            return t
        if write:
            self._write += nbytes
        else:
            self._read += nbytes
        if nbytes >= self.interleave * self.channels and self.records is None:
            # A transfer that covers every channel: it starts when the busiest channel is
            # free and keeps all of them busy for its length at the full peak rate (within
            # one chunk of the per-channel result, and O(1) instead of O(channels)).
            start = max(t, self._floor, max(self._busy.values(), default=0.0))
            self._floor = start + nbytes / self.peak_bandwidth
            self._busy.clear()
            return self._floor + self.latency_s
        bw = self.channel_bandwidth
        end = t
        for c, share in enumerate(self._shares(nbytes, addr)):
            if share <= 0.0:
                continue
            busy = self._channel_busy(c)
            start = busy if busy > t else t
            done = start + share / bw
            self._busy[c] = done
            if done > end:
                end = done
            if self.records is not None:
                self.records.append((c, start, done, share, write))
        return end + self.latency_s

    def counters(self) -> dict[str, float]:
        return traffic_counters(self._read, self._write, self.energy_parts)

    def finish(self, t: float) -> None:
        return None

    def array_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``([floor, read bytes, write bytes], busy time per channel)`` for the compiled
        event model (npusim.kernels.events); ``set_array_state`` takes them back."""
        busy = np.zeros(self.channels)
        for c, t in self._busy.items():
            busy[c] = t
        return np.array([self._floor, self._read, self._write]), busy

    def set_array_state(self, state: np.ndarray, busy: np.ndarray) -> None:
        self._floor, self._read, self._write = (float(x) for x in state)
        self._busy = {c: float(t) for c, t in enumerate(busy.tolist()) if t > 0.0}


class IdealMemory:
    """Infinite bandwidth, zero latency: the SCALE-Sim 'no stall' reference point."""

    peak_bandwidth = float("inf")

    def __init__(self, pj_per_bit: float | Mapping[str, float] = 0.0) -> None:
        self.energy_parts = _per_byte(pj_per_bit)
        self.energy_per_byte = sum(self.energy_parts.values())
        self._read = 0.0
        self._write = 0.0

    def transfer(self, t: float, nbytes: int, addr: int, write: bool, requester: int) -> float:
        if write:
            self._write += nbytes
        else:
            self._read += nbytes
        return t

    def counters(self) -> dict[str, float]:
        return traffic_counters(self._read, self._write, self.energy_parts)

    def finish(self, t: float) -> None:
        return None

    def array_state(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.0, self._read, self._write]), np.zeros(0)

    def set_array_state(self, state: np.ndarray, busy: np.ndarray) -> None:
        self._read, self._write = float(state[1]), float(state[2])


def make_memory(chip: Chip, model: str = "bandwidth") -> MemoryModel:
    """The memory model named ``model`` for ``chip``: ``bandwidth`` or ``ideal``."""
    if model == "ideal":
        return IdealMemory(chip.dram.energy_parts_pj_per_bit)
    if model == "bandwidth":
        return BandwidthDram.from_chip(chip)
    if model == "cycle":
        from npusim.engine.dram import CycleDram

        return CycleDram.from_chip(chip)
    raise ValueError(f"unknown memory model {model!r} (use 'bandwidth', 'cycle' or 'ideal')")
