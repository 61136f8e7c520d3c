"""The DRAM system: catalog entry + address mapping + controller state, driven batch by batch.

``DramSystem.run`` schedules a batch of burst requests (byte address, write flag, arrival
cycle) with the numba controller (npusim/kernels/dram.py) from the state earlier batches
left, and returns per-request completion cycles. ``DramSystem.stream`` moves one contiguous
range and takes the fast path when the range is long: it simulates a head in detail,
measures each channel's steady-state requests per cycle over whole refresh intervals,
advances that channel's state by the time the middle would take (every bank, bus and
refresh clock shifted alike, counters and latencies extrapolated at the steady-state
rates), and simulates the tail in detail. Shorter transfers go to the steady-state reuse
of npusim/dram/reuse.py. Recording commands turns both off.

Energy follows the catalog's per-command figures: ACT+PRE per activate, column + I/O per
bit read or written, one all-bank refresh of a rank (per-bank: that / its banks) per REF,
and background power over the elapsed time: active standby for the rank-cycles with a bank
open, precharge power-down for the rank-cycles powered down (``powerdown_idle`` > 0 only),
precharged standby for the rest. With power-down on, both fast paths are off (the reuse and
the long-transfer extrapolation know nothing of power-down spans): every transfer runs in
detail.
"""

from __future__ import annotations

import heapq
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from npusim._io import atomic_write_text
from npusim.dram.mapping import DEFAULT_ORDER, AddressMapping
from npusim.dram.reuse import TransferReuse
from npusim.errors import SpecError
from npusim.kernels import dram as K
from npusim.spec.dram_catalog import DramStandard

__all__ = ["DramSystem", "EnergyBreakdown", "front_end", "system_options"]

_LAT_BINS = 1 << 15  # read-latency histogram, one bin per cycle; the last bin collects the rest


@dataclass(frozen=True)
class EnergyBreakdown:
    """Device core (activate, column read/write, refresh, background), then the interface
    and the NPU-side controller + PHY that every bit read or written crosses."""

    activate_j: float
    read_j: float
    write_j: float
    refresh_j: float
    background_j: float
    interface_j: float = 0.0
    phy_j: float = 0.0

    @property
    def core_j(self) -> float:
        return self.activate_j + self.read_j + self.write_j + self.refresh_j + self.background_j

    @property
    def total_j(self) -> float:
        return self.core_j + self.interface_j + self.phy_j


def front_end(channels: int, window: int | None = None, handover: int | None = None
              ) -> tuple[int, int]:
    """Lookahead window and per-clock handover; ``None`` takes the default: the reference
    driver's 512 entries and 16 per clock, which fed 8 channels, scaled up with the channel
    count (64 entries and 2 per clock a channel) so that a many-channel memory is not
    starved by its front end (an assumption: an NPU's DMA issue width grows with its
    memory system)."""
    return (window if window is not None else max(512, 64 * channels),
            handover if handover is not None else max(16, 2 * channels))


def system_options(dram: Any) -> dict[str, Any]:
    """``DramSystem`` keyword arguments from a chip's ``dram:`` section (``spec.arch.Dram``):
    every controller and mapping field it has."""
    return {"mapping": dram.mapping, "interleave_bytes": int(dram.interleave),
            "policy": dram.page_policy, "refresh": dram.refresh,
            "queue_depth": dram.queue_depth, "window": dram.window,
            "handover": dram.handover, "bank_queue": dram.bank_queue,
            "powerdown_idle": dram.powerdown_idle}


def make_params(std: DramStandard, policy: str, refresh: str, queue_depth: int,
                window: int = 512, handover: int = 16, bank_queue: int = 8,
                powerdown_idle: int = 0) -> np.ndarray:
    """The kernel's parameter vector. With one bank group per rank there are no bank groups:
    the long timings (tCCD_L, tRRD_L, tWTR_L) only apply within a real group, so they fall
    back to the short ones."""
    t = std.t
    if policy not in ("open", "closed"):
        raise SpecError(f"page policy must be 'open' or 'closed', got {policy!r}")
    modes = {"none": 0, "all-bank": 1, "per-bank": 2}
    if refresh not in modes:
        raise SpecError(f"refresh must be one of {', '.join(modes)}, got {refresh!r}")
    if refresh == "per-bank" and t.rfcpb <= 0:
        raise SpecError(f"{std.name} has no per-bank refresh (tRFCpb not given)")
    if queue_depth < 1:
        raise SpecError(f"queue depth must be positive, got {queue_depth}")
    if min(window, handover, bank_queue) < 1:
        raise SpecError(f"lookahead window, handover and bank queue must be positive, got "
                        f"{window}, {handover}, {bank_queue}")
    if powerdown_idle < 0:
        raise SpecError(f"powerdown_idle must be >= 0 (0: never), got {powerdown_idle}")
    grouped = std.bank_groups > 1
    p = np.zeros(K.N_PARAMS, dtype=np.int64)
    vals = {
        K.P_NB: std.banks, K.P_BPG: std.banks_per_group, K.P_NBL: t.nbl, K.P_CL: t.cl,
        K.P_CWL: t.cwl, K.P_RCD: t.rcd, K.P_RCDW: t.rcdw, K.P_RP: t.rp, K.P_RAS: t.ras,
        K.P_RC: t.rc, K.P_CCDS: t.ccd_s, K.P_CCDL: t.ccd_l if grouped else t.ccd_s,
        K.P_RRDS: t.rrd_s, K.P_RRDL: t.rrd_l if grouped else t.rrd_s, K.P_FAW: t.faw,
        K.P_WTRS: t.wtr_s, K.P_WTRL: t.wtr_l if grouped else t.wtr_s,
        K.P_RTP: t.rtp, K.P_WR: t.wr, K.P_REFI: t.refi, K.P_RFC: t.rfc, K.P_RFCPB: t.rfcpb,
        K.P_RTW: t.rtw, K.P_DEPTH: queue_depth, K.P_CLOSED: int(policy == "closed"),
        K.P_REFMODE: modes[refresh], K.P_NBG: std.ranks * std.bank_groups,
        K.P_NRANK: std.ranks, K.P_RTRS: t.rtrs, K.P_32AW: t.t32aw, K.P_WIN: window,
        K.P_HAND: handover,
        K.P_WHIGH: max(min(round(std.write_drain_high * queue_depth), queue_depth), 1),
        K.P_WLOW: min(int(std.write_drain_low * queue_depth), queue_depth - 1),
        K.P_CTRL: 1, K.P_BANKQ: bank_queue, K.P_PDIDLE: powerdown_idle, K.P_XP: t.xp,
        K.P_DUAL: int(std.dual_command_bus),
    }
    for k, v in vals.items():
        p[k] = v
    return p


class DramSystem:
    """All channels of one DRAM standard with their controllers; see the module docstring."""

    def __init__(self, std: DramStandard, channels: int | None = None, *,
                 mapping: str = DEFAULT_ORDER, interleave_bytes: int = 256,
                 policy: str = "open", refresh: str = "all-bank", queue_depth: int = 32,
                 window: int | None = None, handover: int | None = None, bank_queue: int = 8,
                 powerdown_idle: int = 0, record: bool = False, fast_path: bool = True) -> None:
        self.std = std
        self.channels = channels or std.default_channels
        window, handover = front_end(self.channels, window, handover)
        self.mapping = AddressMapping.build(std, self.channels, mapping, interleave_bytes)
        self.params = make_params(std, policy, refresh, queue_depth, window, handover,
                                  bank_queue, powerdown_idle)
        self.tck_s = std.t.tck_ns * 1e-9
        self.bs, self.gs, self.cs, self.rs, self.aw, self.cnt = K.init_state(self.channels,
                                                                              self.params)
        self.extra = np.zeros(K.N_COUNTERS)  # counts the fast path extrapolated
        self.lat_hist = np.zeros(_LAT_BINS)
        self.read_bytes = 0
        self.write_bytes = 0
        self.record = record
        self.fast_path = fast_path and not record and powerdown_idle == 0
        self._trace: list[np.ndarray] = []
        self.last_cycle = 0
        self.fast_path_taken = 0  # transfers whose middle was extrapolated
        # Transfers like earlier ones reuse their cost (npusim/dram/reuse.py).
        # Its refresh bookkeeping knows one rank's schedule: several ranks run in detail.
        self.reuse = TransferReuse(self) if self.fast_path and std.ranks == 1 else None

    @property
    def peak_bandwidth(self) -> float:
        return self.channels * self.std.channel_bandwidth

    # Detailed path ---------------------------------------------------------------------
    def run(self, addr: np.ndarray, write: np.ndarray, arrival: np.ndarray | int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Schedule bursts; returns (done cycle, accepted cycle, row hit, channel) each."""
        if self.reuse is not None:
            self.reuse.settle()
        addr = np.asarray(addr, dtype=np.int64)
        n = addr.shape[0]
        wr = np.ascontiguousarray(write, dtype=np.uint8)
        arr = np.ascontiguousarray(np.broadcast_to(np.asarray(arrival, dtype=np.int64), (n,)))
        ch, bank, row = self.mapping.decode(addr)
        # Trace order: by arrival, ties in the order given.
        if n and (arr == arr[0]).all():
            trace = np.arange(n, dtype=np.int64)
        else:
            trace = np.argsort(arr, kind="stable").astype(np.int64)
        gpos = np.empty(n, dtype=np.int64)
        gpos[trace] = np.arange(n, dtype=np.int64)
        pair = 2 * ch + wr
        pair_order = trace[np.argsort(pair[trace], kind="stable")]
        pair_start = np.searchsorted(pair[pair_order], np.arange(2 * self.channels + 1)
                                     ).astype(np.int64)
        done = np.zeros(n, dtype=np.int64)
        enq = np.zeros(n, dtype=np.int64)
        hit = np.zeros(n, dtype=np.uint8)
        cap = 3 * n + 64 * self.channels if self.record else 0
        while True:
            state = (self.bs, self.gs, self.cs, self.rs, self.aw, self.cnt)
            saved = [a.copy() for a in state] if self.record else None
            tr = np.zeros((cap, 5), dtype=np.int64)
            trn = np.zeros(2, dtype=np.int64)
            K.schedule(gpos, pair_order, pair_start, arr, wr, bank, row, self.params, *state,
                       done, enq, hit, tr, trn)
            if not trn[1]:
                break
            assert saved is not None
            self.bs, self.gs, self.cs, self.rs, self.aw, self.cnt = saved
            cap *= 4
        if self.record:
            self._trace.append(tr[: trn[0]].copy())
        reads = wr == 0
        lat = (done - enq)[reads]
        if len(lat):  # (bins up to the largest latency only: the rest would add zeros)
            counts = np.bincount(np.minimum(lat, _LAT_BINS - 1))
            self.lat_hist[:len(counts)] += counts
        bb = self.std.burst_bytes
        self.read_bytes += int(reads.sum()) * bb
        self.write_bytes += int(n - reads.sum()) * bb
        if n:
            self.last_cycle = max(self.last_cycle, int(done.max()))
        return done, enq, hit, ch

    def run_closed(self, addr: np.ndarray, write: np.ndarray, outstanding: int,
                   start: int = 0, bursts: int = 1) -> np.ndarray:
        """Closed loop: requests ``0 .. N-1`` are offered at ``start`` and request ``i + N``
        one clock after request ``i`` completes (N = ``outstanding``; the front end sees a
        completion at its next clock); request ``i`` is ``bursts`` consecutive bursts from
        ``addr[i]`` and completes with its last. Returns each request's done cycle.

        Exact for N = 1. For larger N the first N are scheduled together and each later
        request alone, in the order they are offered, so a later request cannot be
        reordered with one offered before it."""
        addr = np.asarray(addr, dtype=np.int64)
        wr = np.asarray(write, dtype=bool)
        n = addr.shape[0]
        if outstanding < 1:
            raise SpecError(f"outstanding requests must be positive, got {outstanding}")
        offs = np.arange(bursts, dtype=np.int64) * self.std.burst_bytes
        done = np.zeros(n, dtype=np.int64)
        k = min(outstanding, n)
        d, *_ = self.run((addr[:k, None] + offs).ravel(), np.repeat(wr[:k], bursts), start)
        done[:k] = d.reshape(k, bursts).max(axis=1)
        offered = [(int(done[i]) + 1, i + k) for i in range(k) if i + k < n]
        heapq.heapify(offered)
        while offered:
            t, i = heapq.heappop(offered)
            d, *_ = self.run(addr[i] + offs, np.full(bursts, wr[i]), t)
            done[i] = d.max()
            if i + k < n:
                heapq.heappush(offered, (int(done[i]) + 1, i + k))
        return done

    # Fast path -------------------------------------------------------------------------
    def stream(self, addr: int, nbytes: int, write: bool, arrival: int) -> int:
        """Move ``nbytes`` from ``addr`` on; returns the cycle the last burst completes."""
        if nbytes <= 0:
            return arrival
        bb = self.std.burst_bytes
        first, stop = addr // bb, (addr + nbytes - 1) // bb + 1
        t = self.std.t
        period = math.ceil(t.refi / t.nbl)  # most bursts one channel moves per tREFI
        k_meas = 2
        head_ch = int(period * (k_meas + 2) * 1.1) + 64
        tail_ch = period // 2 + 64
        per_ch = (stop - first) / self.channels
        if self.reuse is None:
            return self._run_range(first, stop, write, arrival)[0]
        if per_ch < head_ch + tail_ch + 2 * period:
            return self.reuse.transfer(first, stop, write, arrival)
        self.fast_path_taken += 1
        h_stop = first + head_ch * self.channels
        t_start = stop - tail_ch * self.channels
        before = self.cnt.copy()
        _, done, ch, lat, hit = self._run_range(first, h_stop, write, arrival)
        head_cnt = self.cnt - before
        mid = self.mapping.bursts_per_channel(h_stop, t_start)
        shift = np.zeros(self.channels, dtype=np.int64)
        for c in range(self.channels):
            mine = ch == c
            d = np.sort(done[mine])
            if d.size < period + 2:
                continue
            t0 = d[period]
            t1 = t0 + k_meas * t.refi
            if t1 > d[-1]:
                raise AssertionError("fast path: head too short to reach a steady state")
            inwin = mine & (done > t0) & (done <= t1)
            count = int(inwin.sum())
            shift[c] = round(mid[c] * k_meas * t.refi / count)
            scale = mid[c] / count
            hits = float(hit[inwin].sum())
            misses = count - hits
            w = np.zeros(K.N_COUNTERS)
            w[K.N_WR if write else K.N_RD] = count
            w[K.N_HIT] = hits
            w[K.N_MISS] = w[K.N_ACT] = misses
            hc = head_cnt[c]
            w[K.N_PRE] = misses * hc[K.N_PRE] / max(hc[K.N_MISS], 1)
            if self.params[K.P_REFMODE] == 1:
                w[K.N_REF] = k_meas * self.std.ranks  # each rank once per tREFI
            elif self.params[K.P_REFMODE] == 2:
                w[K.N_REFPB] = k_meas * self.std.banks
            self.extra += w * scale
            if not write:
                self.lat_hist += np.bincount(np.minimum(lat[inwin], _LAT_BINS - 1),
                                             minlength=_LAT_BINS) * scale
        self._shift_channels(shift)
        nmid = int(mid.sum())
        if write:
            self.write_bytes += nmid * bb
        else:
            self.read_bytes += nmid * bb
        return self._run_range(t_start, stop, write, arrival)[0]

    def _shift_channels(self, dt: np.ndarray) -> None:
        """Move every clock of channel ``c`` forward by ``dt[c]`` cycles (none back)."""
        dt = np.maximum(np.asarray(dt, dtype=np.int64), 0)
        for k in (K.B_NACT, K.B_NPRE, K.B_NRD, K.B_NWR):
            self.bs[:, :, k] += dt[:, None]
        self.gs += dt[:, None, None]
        for k in (K.R_NACT, K.R_NRD, K.R_NWR, K.R_REFDUE):
            self.rs[:, :, k] += dt[:, None]
        for k in (K.C_ROWLAST, K.C_COLLAST, K.C_REFDUE, K.C_NOW, K.C_FREE):
            self.cs[:, k] += dt
        self.aw += dt[:, None, None]
        self.last_cycle = max(self.last_cycle, int(self.cs[:, K.C_COLLAST].max()))

    def _run_range(self, first: int, stop: int, write: bool, arrival: int
                   ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from npusim.limits import BURST_BYTES, check_memory

        # the bursts are scheduled at once: refuse by estimate before allocating them
        check_memory(f"{stop - first:,} bursts at once", (stop - first) * (
            BURST_BYTES + (120 if self.record else 0)))
        addr = np.arange(first, stop, dtype=np.int64) * self.std.burst_bytes
        done, enq, hit, ch = self.run(addr, np.full(addr.shape[0], write, dtype=np.uint8),
                                      arrival)
        end = int(done.max()) if done.size else arrival
        return end, done, ch, done - enq, hit

    def refresh_until(self, end: int) -> None:
        """Count the refreshes due up to ``end`` that no request made the controller issue
        (an idle tail), without scheduling them. With power-down on, each one wakes a rank
        that is down (see ``_tail_powerdown``)."""
        mode = int(self.params[K.P_REFMODE])
        if not mode:
            return
        step = K.refresh_step(self.params)  # one rank's refresh interval
        due = self.rs[:, :, K.R_REFDUE]
        n = np.where(due <= end, (end - due) // step + 1, 0)
        if self.params[K.P_PDIDLE] > 0:
            self._tail_powerdown(due.copy(), n, step)
        self.extra[K.N_REF if mode == 1 else K.N_REFPB] += int(n.sum())
        due += n * step
        self.cs[:, K.C_REFDUE] = due.min(axis=1)

    def _tail_powerdown(self, d0: np.ndarray, n: np.ndarray, step: int) -> None:
        """Power-down of the ranks with every bank precharged over ``n`` refreshes due from
        ``d0`` every ``step``, in closed form, as the kernel would schedule them: a rank down
        when one falls due exits then and refreshes tXP later (else at once), is busy tRFC
        (per-bank: tRFCpb) and powers down again ``powerdown_idle`` after. From the second
        refresh on, with S = step - busy - powerdown_idle, it is down at every one when
        S >= tXP (S - tXP cycles each, S after an awake one), at none when S < 0, and at
        every other one in between (S cycles each). Banks left open are not modelled here."""
        p = self.params
        pd, xp = int(p[K.P_PDIDLE]), int(p[K.P_XP])
        busy = int(p[K.P_RFC] if p[K.P_REFMODE] == 1 else p[K.P_RFCPB])
        idle = self.rs[:, :, K.R_IDLESINCE]
        todo = (n > 0) & (self.rs[:, :, K.R_NOPEN] == 0)
        a0 = todo & (d0 >= idle + pd)
        down = np.where(a0, d0 - idle - pd, 0)
        s = step - busy - pd
        later = np.maximum(n - 1, 0)  # refreshes after the first
        if s >= xp:
            down += np.where(todo & (later > 0), s * later - xp * (a0 + later - 1), 0)
            last = np.where(later > 0, 1, a0)
        elif s >= 0:
            ones = np.where(a0, later // 2, (later + 1) // 2)
            down += np.where(todo, s * ones, 0)
            last = (a0 + later) % 2  # alternates from the first
        else:
            last = np.where(later > 0, 0, a0)
        ref = d0 + later * step + xp * last  # the last refresh
        self.extra[K.N_PDCYC] += float(down.sum())
        self.rs[:, :, K.R_IDLESINCE] = np.where(todo, ref + busy, idle)
        self.rs[:, :, K.R_PDREADY] = np.where(todo & (last > 0),
                                              np.maximum(self.rs[:, :, K.R_PDREADY],
                                                         ref), self.rs[:, :, K.R_PDREADY])

    # Reports ---------------------------------------------------------------------------
    def counts(self) -> np.ndarray:
        """Counters summed over channels, detailed plus extrapolated (float)."""
        return self.cnt.sum(axis=0).astype(np.float64) + self.extra

    def energy(self, end_cycle: int | None = None) -> EnergyBreakdown:
        e, std = self.std.e, self.std
        n = self.counts()
        bits = std.burst_bytes * 8
        end = self.last_cycle if end_cycle is None else end_cycle
        # Background: active standby while a rank has a bank open, precharged standby
        # otherwise; the powers are per channel, so a rank draws 1/ranks of them.
        # Power-down spans the same way; a rank still powered down counts up to ``end``.
        still_open = np.where(self.rs[:, :, K.R_NOPEN] > 0,
                              np.maximum(end - self.rs[:, :, K.R_OPENSINCE], 0), 0).sum()
        rank_cycles = self.channels * std.ranks * end
        active = min(n[K.N_OPENCYC] + still_open, rank_cycles)
        pd_idle = int(self.params[K.P_PDIDLE])
        down = 0.0
        if pd_idle > 0:
            still_down = np.where(self.rs[:, :, K.R_NOPEN] == 0, np.maximum(
                end - (self.rs[:, :, K.R_IDLESINCE] + pd_idle), 0), 0).sum()
            down = min(n[K.N_PDCYC] + still_down, rank_cycles - active)
        pre_mw = e.background_mw if e.precharged_mw is None else e.precharged_mw
        pd_mw = pre_mw if e.powerdown_mw is None else e.powerdown_mw
        background = (active * e.background_mw + down * pd_mw
                      + (rank_cycles - active - down) * pre_mw) / std.ranks
        return EnergyBreakdown(
            activate_j=n[K.N_ACT] * e.act_pre_nj * 1e-9,
            read_j=n[K.N_RD] * bits * e.read_pj_per_bit * 1e-12,
            write_j=n[K.N_WR] * bits * e.write_pj_per_bit * 1e-12,
            refresh_j=(n[K.N_REF] + n[K.N_REFPB] * std.ranks / std.banks) * e.refresh_nj * 1e-9,
            background_j=background * 1e-3 * self.tck_s,
            interface_j=(n[K.N_RD] + n[K.N_WR]) * bits * e.io_pj_per_bit * 1e-12,
            phy_j=(n[K.N_RD] + n[K.N_WR]) * bits * e.phy_pj_per_bit * 1e-12,
        )

    def latency_percentile(self, q: float) -> float:
        """Read latency (accepted to last data beat) percentile ``q`` in 0..100, in cycles."""
        total = self.lat_hist.sum()
        if total <= 0:
            return float("nan")
        cum = np.cumsum(self.lat_hist)
        return float(np.searchsorted(cum, q / 100 * total))

    def latency_mean(self) -> float:
        total = self.lat_hist.sum()
        if total <= 0:
            return float("nan")
        return float((self.lat_hist * np.arange(_LAT_BINS)).sum() / total)

    def row_hit_rate(self) -> float:
        n = self.counts()
        acc = n[K.N_HIT] + n[K.N_MISS]
        return float(n[K.N_HIT] / acc) if acc else float("nan")

    def write_commands(self, path: str | os.PathLike[str]) -> int:
        """Write the recorded commands as CSV (cycle, channel, rank, bankgroup, bank, row,
        command), atomically; returns how many. Rank-wide rows (REF, PREA) leave the bank
        fields empty."""
        bpg, bgs = self.std.banks_per_group, self.std.bank_groups
        cmds = self.commands()
        lines = ["cycle,channel,rank,bankgroup,bank,row,command"]
        for cyc, ch, b, row, code in cmds.tolist():
            if b < 0:  # the kernel writes -1 - rank for a rank-wide command
                lines.append(f"{cyc},{ch},{-1 - b},,,,{K.CMD_NAMES[code]}")
                continue
            g = b // bpg
            lines.append(f"{cyc},{ch},{g // bgs},{g % bgs},{b % bpg},"
                         f"{'' if row < 0 else row},{K.CMD_NAMES[code]}")
        atomic_write_text(path, "\n".join(lines) + "\n")
        return len(cmds)

    def commands(self) -> np.ndarray:
        """Recorded commands, rows of (cycle, channel, bank, row, command code), time-sorted."""
        if not self._trace:
            return np.zeros((0, 5), dtype=np.int64)
        tr = np.concatenate(self._trace)
        return tr[np.lexsort((tr[:, 1], tr[:, 0]))]
