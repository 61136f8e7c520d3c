"""Steady-state reuse: a transfer like many before it takes the time they took in detail.

A memory-bound workload (an LLM decode step, a CNN streaming its weights) hands the DRAM
tens of thousands of transfers of a few sizes, each queued behind the one before it on
every channel. In that regime a transfer's cost per channel is the same each time: its
bursts at the rate the detailed controller reached, its row misses, its read latencies.
:class:`TransferReuse` learns that cost per transfer shape (size in bursts, read or write)
from transfers it runs in detail, then applies it to later transfers of the same shape:

- Eligible: every channel gets at least ``MIN_BURSTS`` bursts of the transfer and is still
  busy when it arrives (the arrival is no later than the channel's last column command);
  no refresh falls due on any channel before the predicted end. Everything else (an idle
  start, a short transfer, a refresh) runs in detail, so refreshes are always simulated,
  never extrapolated.
- Learned from a detailed eligible transfer without a refresh: cycles per burst (the
  channels' last column command moved by how much, over their bursts), the tail from the
  last column command to the last data beat, the controller counters per burst and the
  read-latency histogram per read. ``WARMUP`` samples before the first use; every
  ``CHECK``-th eligible transfer after that runs in detail again and adds its sample; a
  sample more than ``DRIFT`` away from the learned rate discards what was learned.
- Applied: each channel's whole state (bank, group and channel clocks, the activate
  window) moves forward by its bursts x the learned rate, refresh due times stay where
  they are (so the next refresh is simulated at its true time), the banks' open rows
  become the rows the transfer's last bursts opened (decoded one interleave chunk at a
  time), and the counters and latency histogram grow by the learned amounts.

What this gives up: the order-dependent detail inside one reused transfer (which request
waited behind which), and the small differences between transfers of one shape (their
start channel, their timers at the start). Each reused transfer is the mean of its
shape's detailed samples; tests/test_dram_reuse.py holds the totals of whole runs within
2 % of the detailed path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from npusim.kernels import dram as K

if TYPE_CHECKING:
    from npusim.dram.system import DramSystem

__all__ = ["TransferReuse"]

MIN_BURSTS = 16  # per channel: shorter transfers are cheap in detail and mostly start-up
WARMUP = 4  # detailed samples of a shape (refreshes of a shape) before it is reused
CHECK = 16  # every CHECK-th eligible transfer of a known shape runs in detail again
DRIFT = 0.1  # a check this far (relative) from the learned rate means the regime changed


@dataclass
class _Shape:
    """Sums over the detailed samples of one transfer shape, per channel and transfer.

    A channel that refreshed during a sample adds its refresh's extra cycles and counts
    (what it took beyond its bursts at the learned rate) to the ``ref_*`` sums; a channel
    that did not adds its cycles and counts to the per-burst sums.
    """

    n_bins: int
    samples: int = 0
    bursts: float = 0.0
    cycles: float = 0.0  # channel time: how far the last column command moved
    counts: np.ndarray = field(default_factory=lambda: np.zeros(K.N_COUNTERS))
    refreshes: int = 0
    ref_cycles: float = 0.0
    ref_counts: np.ndarray = field(default_factory=lambda: np.zeros(K.N_COUNTERS))
    tail: float = 0.0
    reads: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    since_check: int = 0
    latency: tuple[np.ndarray, np.ndarray] | None = None  # sparse hist per read, cached

    def __post_init__(self) -> None:
        self.hist = np.zeros(self.n_bins)

    @property
    def rate(self) -> float:
        """Cycles per burst on a channel without a refresh."""
        return self.cycles / self.bursts

    @property
    def mean_tail(self) -> float:
        """Cycles from the last column command to the last data beat."""
        return self.tail / self.samples

    def latency_bins(self) -> tuple[np.ndarray, np.ndarray]:
        """(bins, reads per read) of the histogram: a few bins, not all of them."""
        if self.latency is None:
            idx = np.flatnonzero(self.hist)
            self.latency = idx, self.hist[idx] / self.reads
        return self.latency


class TransferReuse:
    """Decides per transfer: reuse a learned shape, or run in detail (and learn)."""

    def __init__(self, system: DramSystem) -> None:
        self.system = system
        #: (bursts, write) -> what its detailed samples took
        self.shapes: dict[tuple[int, bool], _Shape] = {}
        self.reused = 0  # transfers whose cost was reused
        self._banks = system.std.banks
        m = system.mapping
        self._chunk_bytes = m.chunk_bursts * m.burst_bytes
        t = system.std.t
        mode = system.params[K.P_REFMODE]
        self._refreshing = mode != 0
        self._step = t.refi if mode != 2 else max(t.refi // self._banks, 1)

    def transfer(self, first: int, stop: int, write: bool, arrival: int) -> int:
        """Move bursts ``first .. stop-1``; returns the cycle the last one completes."""
        s = self.system
        per_ch = s.mapping.bursts_per_channel(first, stop)
        col = s.cs[:, K.C_COLLAST]
        if per_ch.min() < MIN_BURSTS or arrival > col.min():
            return s._run_range(first, stop, write, arrival)[0]
        key = (stop - first, write)
        shape = self.shapes.get(key)
        if shape is None:
            shape = self.shapes[key] = _Shape(s.lat_hist.shape[0])
        if shape.samples < WARMUP or shape.since_check >= CHECK - 1:
            return self._learn(key, shape, first, stop, write, arrival, per_ch)
        due = s.cs[:, K.C_REFDUE]
        end = col + per_ch * shape.rate
        refresh = (due <= end) & self._refreshing  # the channel refreshes within the transfer
        if refresh.any():
            if shape.refreshes < WARMUP:
                return self._learn(key, shape, first, stop, write, arrival, per_ch)
            end = end + refresh * (shape.ref_cycles / shape.refreshes)
            if (due + self._step <= end + shape.mean_tail).any():
                return s._run_range(first, stop, write, arrival)[0]  # two refreshes
        shape.since_check += 1
        return self._apply(shape, first, stop, write, end - col, refresh)

    def _learn(self, key: tuple[int, bool], shape: _Shape, first: int, stop: int, write: bool,
               arrival: int, per_ch: np.ndarray) -> int:
        s = self.system
        col0 = s.cs[:, K.C_COLLAST].copy()
        cnt0 = s.cnt.copy()
        hist0 = s.lat_hist.copy()
        end = s._run_range(first, stop, write, arrival)[0]
        cnt = s.cnt - cnt0
        col1 = s.cs[:, K.C_COLLAST]
        took = (col1 - col0).astype(np.float64)
        refreshes = cnt[:, K.N_REF] + cnt[:, K.N_REFPB]
        if (refreshes > 1).any():
            return end  # a shape knows none or one refresh per channel
        plain = refreshes == 0
        if not plain.any():
            return end
        rate = float(took[plain].sum() / per_ch[plain].sum())
        if shape.samples >= WARMUP and abs(rate - shape.rate) > DRIFT * shape.rate:
            shape = self.shapes[key] = _Shape(s.lat_hist.shape[0])
        shape.samples += 1
        shape.bursts += float(per_ch[plain].sum())
        shape.cycles += float(took[plain].sum())
        shape.counts += cnt[plain].sum(axis=0)
        if not plain.all():
            ref = ~plain
            per_burst = shape.counts / shape.bursts
            shape.refreshes += int(ref.sum())
            shape.ref_cycles += float((took[ref] - per_ch[ref] * shape.rate).sum())
            shape.ref_counts += cnt[ref].sum(axis=0) - per_ch[ref].sum() * per_burst
        shape.tail += end - float(col1.max())
        shape.reads += 0.0 if write else float(per_ch.sum())
        shape.hist += s.lat_hist - hist0
        shape.latency = None
        shape.since_check = 0
        return end

    def _apply(self, shape: _Shape, first: int, stop: int, write: bool, took: np.ndarray,
               refresh: np.ndarray) -> int:
        s = self.system
        due = s.cs[:, K.C_REFDUE].copy()
        s._shift_channels(np.rint(took).astype(np.int64))
        # The refresh clock does not move with the shift: a channel's next refresh stays
        # due at its own time, one step later where this transfer held one.
        s.cs[:, K.C_REFDUE] = due + refresh * self._step
        if not s.params[K.P_CLOSED]:
            self._open_rows(first, stop)
        n = stop - first
        s.extra += shape.counts * (n / shape.bursts)
        if refresh.any():
            s.extra += shape.ref_counts * (int(refresh.sum()) / shape.refreshes)
        if not write:
            idx, per_read = shape.latency_bins()
            s.lat_hist[idx] += per_read * n
            s.read_bytes += n * s.std.burst_bytes
        else:
            s.write_bytes += n * s.std.burst_bytes
        self.reused += 1
        end = int(s.cs[:, K.C_COLLAST].max()) + round(shape.mean_tail)
        s.last_cycle = max(s.last_cycle, end)
        return end

    def _open_rows(self, first: int, stop: int) -> None:
        """Each bank the transfer touched keeps the row its last burst there opened."""
        s = self.system
        bb = s.std.burst_bytes
        c0 = first * bb // self._chunk_bytes
        c1 = ((stop - 1) * bb) // self._chunk_bytes + 1
        ch, bank, row = s.mapping.decode(np.arange(c0, c1, dtype=np.int64) * self._chunk_bytes)
        flat = (ch * self._banks + bank)[::-1]
        uniq, last = np.unique(flat, return_index=True)
        s.bs.reshape(-1, K.N_BANK_STATE)[uniq, K.B_ROW] = row[::-1][last]
