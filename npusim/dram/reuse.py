"""Steady-state reuse: a transfer like many before it takes the time they took in detail.

A memory-bound workload (an LLM decode step, a CNN streaming its weights) hands the DRAM
tens of thousands of transfers of a few sizes, each queued behind the one before it on
every channel. In that regime a transfer's cost per channel is the same each time: its
bursts at the rate the detailed controller reached, its row misses, its read latencies.
:class:`TransferReuse` learns that cost per transfer shape from transfers it runs in
detail, then applies it to later transfers of the same shape:

- Shape: size in bursts, read or write, whether every channel was idle at the arrival, and
  how many refreshes fell due in that idle gap. Eligible: at least ``MIN_BURSTS`` bursts on
  every channel. Each channel starts at its last column command or the arrival, the later.
- Learned from a detailed transfer: on channels without a refresh, cycles per burst (how
  far the channel's last column command moved) and counters per burst; on channels with
  one, the cycles and counters beyond that; the tail from the last column command to the
  last data beat; the read-latency histogram per read (samples with a refresh apart).
- Checked: ``WARMUP`` samples before the first use; every ``CHECK_VARIED``-th transfer of
  a shape runs in detail again while its samples' rates disagree (or are fewer than
  ``SETTLED``), every ``CHECK``-th after; one more than ``DRIFT`` off rates that agreed
  discards the shape (the regime changed).
- Applied: each channel's clocks move forward by its bursts x the rate, plus the refresh
  cost if its next refresh falls due before that end (a transfer that would hold two runs
  in detail); the refresh schedule moves only by the refreshes counted; the banks keep the
  rows the transfer's last bursts opened; counters and histogram grow by the shape's means.
  The shift and the rows are applied lazily, by :meth:`TransferReuse.settle`, which runs
  before anything reads the controller state.

What this gives up: the order-dependent detail inside one reused transfer (which request
waited behind which), and the differences between transfers of one shape (their start
channel, their first accesses' row hits): each reused transfer is its shape's mean.
tests/test_dram_reuse.py holds whole runs within 2 % of the detailed path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from npusim.kernels import dram as K

if TYPE_CHECKING:
    from npusim.dram.mapping import AddressMapping
    from npusim.spec.dram_catalog import DramStandard

__all__ = ["ChannelState", "TransferReuse"]


class ChannelState(Protocol):
    """What the reuse reads and moves of the DRAM system it serves
    (:class:`npusim.dram.system.DramSystem`, which builds on this module): its standard,
    mapping and controller state, and its detailed path."""

    std: DramStandard
    channels: int
    mapping: AddressMapping
    params: np.ndarray
    bs: np.ndarray
    cs: np.ndarray
    rs: np.ndarray
    cnt: np.ndarray
    extra: np.ndarray
    lat_hist: np.ndarray
    last_cycle: int
    read_bytes: int
    write_bytes: int

    def _run_range(self, first: int, stop: int, write: bool, arrival: int
                   ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...

    def _shift_channels(self, dt: np.ndarray) -> None: ...

MIN_BURSTS = 16  # per channel: shorter transfers are cheap in detail and mostly start-up
WARMUP = 3  # detailed samples of a shape (and refreshes seen in them) before it is reused
CHECK_VARIED = 8  # a detailed check every 8th transfer of a shape whose samples disagree,
CHECK = 64  # every 64th once SETTLED samples agree
SETTLED = 8
SPREAD = 0.02  # samples agree when their rates' std/mean is within this
DRIFT = 0.03  # a check this far (relative) from rates that agreed: the regime changed


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
    tails: int = 0
    # Read-latency histograms of samples without a refresh [0] and with one [1], and their
    # reads: a refresh delays the reads queued behind it, so the two are kept apart.
    reads: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    since_check: int = 0
    rate_sq: float = 0.0  # sum of the squared per-sample rates
    rate_sum: float = 0.0
    latency: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hist = np.zeros((2, self.n_bins))

    @property
    def rate(self) -> float:
        """Cycles per burst on a channel without a refresh."""
        return self.cycles / self.bursts

    @property
    def agreeing(self) -> bool:
        """Whether the samples so far agree (their rates' std/mean within SPREAD)."""
        if self.samples < WARMUP:
            return False
        mean = self.rate_sum / self.samples
        var = max(self.rate_sq / self.samples - mean * mean, 0.0)
        return var <= (SPREAD * mean) ** 2

    @property
    def check_every(self) -> int:
        """Detailed checks are frequent where the samples disagree, rare where they agree."""
        return CHECK if self.samples >= SETTLED and self.agreeing else CHECK_VARIED

    @property
    def mean_tail(self) -> float:
        """Cycles from the last column command to the last data beat."""
        return self.tail / self.tails

    def latency_bins(self, refresh: bool) -> tuple[np.ndarray, np.ndarray]:
        """(bins, reads per read) of the samples with a refresh or without (the other kind
        if there are none): a few bins, not all of them. Cached until the next sample."""
        k = int(refresh) if self.reads[int(refresh)] else 1 - int(refresh)
        if k not in self.latency:
            idx = np.flatnonzero(self.hist[k])
            self.latency[k] = idx, self.hist[k, idx] / self.reads[k]
        return self.latency[k]


class TransferReuse:
    """Decides per transfer: reuse a learned shape, or run in detail (and learn).

    Reused transfers only move clocks forward; the shift of the controller state and the
    open rows they leave are applied in one go by :meth:`settle`, which the detailed path
    calls before it looks at the state.
    """

    def __init__(self, system: ChannelState) -> None:
        self.system = system
        #: (bursts, write, channels idle at the start, refreshes in the idle gap before it)
        #: -> what its detailed samples took
        self.shapes: dict[tuple[int, bool, bool, int], _Shape] = {}
        self.reused = 0  # transfers whose cost was reused
        m = system.mapping
        c = system.channels
        self._banks = system.std.banks
        self._chunk_bytes = m.chunk_bursts * m.burst_bytes
        self._stride = m.channel_stride_bursts()
        self._starts = np.arange(c, dtype=np.int64) * self._stride
        t = system.std.t
        mode = system.params[K.P_REFMODE]
        self._refreshing = mode != 0
        self._step = t.refi if mode != 2 else max(t.refi // self._banks, 1)
        self._rfc = t.rfc if mode != 2 else t.rfcpb
        # Not yet applied to the state: clock shift and refreshes per channel, the ranges.
        self._dt = np.zeros(c, dtype=np.int64)
        self._refs = np.zeros(c, dtype=np.int64)
        self._ranges: list[tuple[int, int]] = []

    def _per_channel(self, first: int, stop: int) -> np.ndarray:
        """Bursts per channel (AddressMapping.bursts_per_channel, without np.clip's cost)."""
        s, period = self._stride, self._stride * self.system.channels

        def upto(x: int) -> np.ndarray:
            full, rest = divmod(x, period)
            return full * s + np.minimum(np.maximum(rest - self._starts, 0), s)

        return upto(stop) - upto(first)

    def transfer(self, first: int, stop: int, write: bool, arrival: int) -> int:
        """Move bursts ``first .. stop-1``; returns the cycle the last one completes."""
        s = self.system
        per_ch = self._per_channel(first, stop)
        col = s.cs[:, K.C_COLLAST] + self._dt
        if per_ch.min() < MIN_BURSTS:
            return s._run_range(first, stop, write, arrival)[0]
        # Idle: every channel has finished what it had when the transfer arrives. Else each
        # channel starts at its own last column command or at the arrival, the later.
        due = s.cs[:, K.C_REFDUE] + self._refs * self._step
        gap = self._gap_refreshes(due, col, arrival)
        if (gap != gap[0]).any():
            return s._run_range(first, stop, write, arrival)[0]
        key = (stop - first, write, bool(arrival > col.max()), int(gap[0]))
        shape = self.shapes.get(key)
        if shape is None:
            shape = self.shapes[key] = _Shape(s.lat_hist.shape[0])
        if shape.samples < WARMUP or shape.since_check >= shape.check_every - 1:
            return self._learn(key, shape, first, stop, write, arrival, per_ch, gap)
        end = np.maximum(col, arrival) + per_ch * shape.rate
        due = due + gap * self._step
        refresh = (due <= end) & self._refreshing  # the channel refreshes within the transfer
        if refresh.any():
            if shape.refreshes < WARMUP:
                return self._learn(key, shape, first, stop, write, arrival, per_ch, gap)
            end = end + refresh * (shape.ref_cycles / shape.refreshes)
            if (due + self._step <= end + shape.mean_tail).any():
                return s._run_range(first, stop, write, arrival)[0]  # two refreshes
        shape.since_check += 1
        return self._apply(shape, first, stop, write, end - col, gap, refresh)

    def _gap_refreshes(self, due: np.ndarray, col: np.ndarray, arrival: int) -> np.ndarray:
        """Refreshes a channel idle before the arrival issues (and finishes) in that gap:
        those due by ``arrival - tRFC`` (the controller issues an overdue one at its due
        time when the channel was idle then)."""
        if not self._refreshing:
            return np.zeros_like(due)
        idle = col < arrival
        late = arrival - self._rfc - due
        return np.where(idle & (late >= 0), late // self._step + 1, 0)

    def settle(self) -> None:
        """Apply what reused transfers left pending to the controller state."""
        if not self._ranges:
            return
        s = self.system
        due = s.cs[:, K.C_REFDUE] + self._refs * self._step
        s._shift_channels(self._dt)
        # The refresh clock does not move with the shift: a channel's next refresh stays
        # due at its own time, one step later for each refresh a reused transfer held.
        s.cs[:, K.C_REFDUE] = due
        s.rs[:, 0, K.R_REFDUE] = due  # one rank (DramSystem reuses only then)
        if not s.params[K.P_CLOSED]:
            self._open_rows()
        self._dt[:] = 0
        self._refs[:] = 0
        self._ranges.clear()

    def _learn(self, key: tuple[int, bool, bool, int], shape: _Shape, first: int, stop: int,
               write: bool, arrival: int, per_ch: np.ndarray, gap: np.ndarray) -> int:
        s = self.system
        self.settle()
        col0 = s.cs[:, K.C_COLLAST].copy()
        cnt0 = s.cnt.copy()
        hist0 = s.lat_hist.copy()
        end = s._run_range(first, stop, write, arrival)[0]
        cnt = s.cnt - cnt0
        col1 = s.cs[:, K.C_COLLAST]
        took = (col1 - np.maximum(col0, arrival)).astype(np.float64)
        refreshes = cnt[:, K.N_REF] + cnt[:, K.N_REFPB] - gap  # during the transfer
        if (refreshes > 1).any() or (refreshes < 0).any():
            return end  # a shape knows none or one refresh per channel
        plain = refreshes == 0
        if plain.any():
            rate = float(took[plain].sum() / per_ch[plain].sum())
            if shape.agreeing and abs(rate - shape.rate) > DRIFT * shape.rate:
                # Samples that agreed, and one that does not: the regime changed.
                shape = self.shapes[key] = _Shape(s.lat_hist.shape[0])
            shape.samples += 1
            shape.rate_sum += rate
            shape.rate_sq += rate * rate
            shape.bursts += float(per_ch[plain].sum())
            shape.cycles += float(took[plain].sum())
            shape.counts += cnt[plain].sum(axis=0)
        elif not shape.samples:
            return end  # every channel refreshed: nothing yet to tell the refresh's cost by
        if not plain.all():
            ref = ~plain
            per_burst = shape.counts / shape.bursts
            shape.refreshes += int(ref.sum())
            shape.ref_cycles += float((took[ref] - per_ch[ref] * shape.rate).sum())
            shape.ref_counts += cnt[ref].sum(axis=0) - per_ch[ref].sum() * per_burst
        shape.tails += 1
        # The tail runs from where a reuse puts the last column command (every channel at
        # the sample's mean rate) to the last data beat, so it also holds how far the
        # slowest channel trails the mean (channels start staggered by the front end).
        mean_rate = float(took.sum() / per_ch.sum())
        shape.tail += end - float((np.maximum(col0, arrival) + per_ch * mean_rate).max())
        if not write:
            k = int(not plain.all())
            shape.reads[k] += float(per_ch.sum())
            shape.hist[k] += s.lat_hist - hist0
            shape.latency.clear()
        shape.since_check = 0
        return end

    def _apply(self, shape: _Shape, first: int, stop: int, write: bool, took: np.ndarray,
               gap: np.ndarray, refresh: np.ndarray) -> int:
        """Reuse ``shape`` for this transfer: ``took`` cycles per channel, ``gap`` refreshes
        in the idle gap before it (counted in the shape's counts) and ``refresh`` during it."""
        s = self.system
        self._dt += np.rint(took).astype(np.int64)
        self._refs += gap + refresh
        self._ranges.append((first, stop))
        n = stop - first
        s.extra += shape.counts * (n / shape.bursts)
        if refresh.any():
            s.extra += shape.ref_counts * (int(refresh.sum()) / shape.refreshes)
        if not write:
            idx, per_read = shape.latency_bins(bool(refresh.any()))
            s.lat_hist[idx] += per_read * n
            s.read_bytes += n * s.std.burst_bytes
        else:
            s.write_bytes += n * s.std.burst_bytes
        self.reused += 1
        end = int((s.cs[:, K.C_COLLAST] + self._dt).max()) + round(shape.mean_tail)
        s.last_cycle = max(s.last_cycle, end)
        return end

    def _open_rows(self) -> None:
        """Each bank keeps the row the last burst a reused transfer sent there opened."""
        s = self.system
        bb, cb = s.std.burst_bytes, self._chunk_bytes
        chunks = np.concatenate([np.arange(first * bb // cb, ((stop - 1) * bb) // cb + 1,
                                           dtype=np.int64) for first, stop in self._ranges])
        ch, bank, row = s.mapping.decode(chunks * cb)
        rows = s.bs.reshape(-1, K.N_BANK_STATE)
        last = np.full(rows.shape[0], -1, dtype=np.int64)
        np.maximum.at(last, ch * self._banks + bank, np.arange(chunks.shape[0]))
        hit = last >= 0  # the latest transfer to a bank wins
        rows[hit, K.B_ROW] = row[last[hit]]
        # Banks it opened in a rank that had none open start that rank's active standby
        # (one rank here, see DramSystem): from its last column command, a lower bound.
        was = s.rs[:, 0, K.R_NOPEN].copy()
        now = (s.bs[:, :, K.B_ROW] >= 0).sum(axis=1)
        started = (was == 0) & (now > 0)
        s.rs[started, 0, K.R_OPENSINCE] = s.cs[started, K.C_COLLAST]
        s.rs[:, 0, K.R_NOPEN] = now
