"""The numba controller: against its Python twin, idle latencies, and the timing checker."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npusim.commands.dram import PATTERNS, bench
from npusim.dram.checker import check_trace
from npusim.dram.system import DramSystem, make_params
from npusim.kernels import dram as K
from npusim.spec.dram_catalog import get_standard, standard_names
from tests.naive_dram import NaiveDram


def _run_kernel(params, channels, reqs):  # type: ignore[no-untyped-def]
    """The kernel on (id, channel, write, bank, row, arrival) requests, set up as
    ``DramSystem.run`` does: trace order by arrival, pairs by (channel, write)."""
    n = len(reqs)
    ch = np.array([r[1] for r in reqs], dtype=np.int64)
    wr = np.array([r[2] for r in reqs], dtype=np.uint8)
    bank = np.array([r[3] for r in reqs], dtype=np.int64)
    row = np.array([r[4] for r in reqs], dtype=np.int64)
    arr = np.array([r[5] for r in reqs], dtype=np.int64)
    trace = np.argsort(arr, kind="stable").astype(np.int64)
    gpos = np.empty(n, np.int64)
    gpos[trace] = np.arange(n)
    pair = 2 * ch + wr
    pair_order = trace[np.argsort(pair[trace], kind="stable")]
    starts = np.searchsorted(pair[pair_order], np.arange(2 * channels + 1)).astype(np.int64)
    state = K.init_state(channels, params)
    done, enq = np.zeros(n, np.int64), np.zeros(n, np.int64)
    hit = np.zeros(n, np.uint8)
    tr, trn = np.zeros((4 * n + 400, 5), np.int64), np.zeros(2, np.int64)
    K.schedule(gpos, pair_order, starts, arr, wr, bank, row, params, *state, done, enq, hit,
               tr, trn)
    return done, enq, hit, tr[: trn[0]], state[-1]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["HBM3-6400", "LPDDR5-6400", "DDR4-3200", "GDDR6-16000"]),
    policy=st.sampled_from(["open", "closed"]),
    refresh=st.sampled_from(["none", "all-bank", "per-bank"]),
    depth=st.sampled_from([1, 2, 4, 8]),
    ranks=st.sampled_from([1, 2]),
    one_group=st.booleans(),
    window=st.sampled_from([1, 3, 512]),
    handover=st.sampled_from([1, 2, 16]),
    drain=st.sampled_from([(1.0, 0.0), (0.75, 0.25)]),
    pd_idle=st.sampled_from([0, 0, 1, 5, 40]),
    bank_queue=st.sampled_from([1, 2, 8]),
    reqs=st.lists(st.tuples(st.integers(0, 1), st.booleans(), st.integers(0, 15),
                            st.integers(0, 2), st.integers(0, 400)), min_size=1, max_size=60),
)
def test_kernel_matches_python_twin(name, policy, refresh, depth, ranks, one_group, window,
                                    handover, drain, pd_idle, bank_queue, reqs) -> None:  # type: ignore[no-untyped-def]
    std = get_standard(name)
    if refresh == "per-bank" and std.t.rfcpb == 0:
        refresh = "all-bank"
    # A short refresh interval so that refreshes land inside the batch; small t32AW so that
    # it binds in a short batch; ranks and bank groups varied.
    over = {"refi": 2 * std.t.rfc + 100, "ranks": ranks, "t32aw": 3 * std.t.faw,
            "bank_groups": 1 if one_group else std.bank_groups,
            "banks_per_group": 4 if one_group else std.banks_per_group,
            "write_drain_high": drain[0], "write_drain_low": drain[1]}
    std = std.with_overrides(over)
    params = make_params(std, policy, refresh, depth, window, handover, bank_queue, pd_idle)
    nb = std.banks
    reqs = [(i, c, w, b % nb, r, a) for i, (c, w, b, r, a) in enumerate(reqs)]
    done, enq, hit, tr, cnt = _run_kernel(params, 2, reqs)
    t = {f.name: getattr(std.t, f.name) for f in dataclasses.fields(std.t)} | {"rtw": std.t.rtw}
    if one_group:  # one bank group: the long timings are the short ones (make_params' rule)
        t |= {"ccd_l": t["ccd_s"], "rrd_l": t["rrd_s"], "wtr_l": t["wtr_s"]}
    twin = NaiveDram(t, 2, nb, std.banks_per_group, depth, policy == "closed",
                     {"none": 0, "all-bank": 1, "per-bank": 2}[refresh], ranks=ranks,
                     window=window, handover=handover,
                     whigh=max(min(round(drain[0] * depth), depth), 1),
                     wlow=min(int(drain[1] * depth), depth - 1), bank_queue=bank_queue,
                     powerdown_idle=pd_idle, dual=std.dual_command_bus)
    out = twin.run(reqs)
    for i in range(len(reqs)):
        assert out[i] == (done[i], enq[i], bool(hit[i]))
    twin_cmds = sorted((tm, c, b, r, cmd) for c, ch in enumerate(twin.chans)
                       for (tm, b, r, cmd) in ch.commands)
    mine = sorted((a, c, b, r, K.CMD_NAMES[k]) for a, c, b, r, k in tr.tolist())
    assert mine == twin_cmds
    assert cnt[:, K.N_OPENCYC].tolist() == [ch.open_cycles for ch in twin.chans]
    assert cnt[:, K.N_PDCYC].tolist() == [ch.pd_cycles for ch in twin.chans]
    assert check_trace(tr, std) == []


@pytest.mark.parametrize(("depth", "bank_queue", "banks"), [(4, 3, 1), (4, 3, 2), (32, 8, 1),
                                                          (32, 8, 3), (2, 8, 1)])
def test_requests_in_flight_fill_both_queue_stages(depth: int, bank_queue: int,
                                                    banks: int) -> None:
    """Row hits offered at once to ``banks`` banks: once saturated, the controller holds a
    full transaction queue (``depth``) plus a full command queue per bank (``bank_queue``
    each) of requests whose column command has not issued. A controller that held requests
    in one queue until they issue would hold ``depth``."""
    std = get_standard("HBM2")
    p = make_params(std, "open", "none", depth, 512, 16, bank_queue)
    reqs = [(i, 0, False, i % banks, 0, 0) for i in range(300)]
    done, enq, _, _, _ = _run_kernel(p, 1, reqs)
    col = done - std.t.cl - std.t.nbl  # column command cycle
    steady = range(int(col[40]), int(col[-60]))
    held = [int(((enq <= t) & (col >= t)).sum()) for t in steady]
    assert max(held) == depth + bank_queue * banks
    assert min(held) >= depth + bank_queue * banks - 1  # between a move and the next issue


@pytest.mark.parametrize("name", standard_names())
def test_idle_read_latency_is_the_timing_sum(name: str) -> None:
    std = get_standard(name)
    t = std.t
    d = DramSystem(std, channels=1)
    bb = std.burst_bytes
    ctrl = 1  # the controller issues a command one of its clocks after taking the request
    done, _enq, hit, _ = d.run(np.array([0]), np.array([False]), np.array([100]))
    assert done[0] - 100 == ctrl + t.rcd + t.cl + t.nbl and not hit[0]  # row miss, bank closed
    # The catalog's idle latency is the device's: the timing sum without the controller clock.
    assert (done[0] - 100 - ctrl) * t.tck_ns == pytest.approx(std.idle_read_latency_ns, abs=1e-3)
    done, _enq, hit, _ = d.run(np.array([bb]), np.array([False]), np.array([400]))
    assert done[0] - 400 == ctrl + t.cl + t.nbl and hit[0]  # row hit, long after the first
    # A conflict on the same bank: PRE, ACT, RD.
    row_stride = std.row_bytes * std.banks  # next row of bank 0 under the default mapping
    done, *_ = d.run(np.array([row_stride]), np.array([False]), np.array([800]))
    assert done[0] - 800 == ctrl + t.rp + t.rcd + t.cl + t.nbl  # all before the first refresh


@pytest.mark.parametrize("name", ["LPDDR5X-8533", "HBM3-6400", "DDR4-3200"])
def test_refreshes_due_in_an_idle_gap_issue_in_it(name: str) -> None:
    """A read after an idle gap of several tREFI: the refreshes that fell due in the gap
    issue in it, each at its due cycle (the first closes the open row with PREA), so the read
    pays an idle closed-bank latency, not the gap's refreshes one after another."""
    std = get_standard(name)
    t = std.t
    d = DramSystem(std, channels=1, record=True)
    d.run(np.array([0]), np.array([False]), np.array([100]))
    gap_end = 5 * t.refi + t.refi // 2
    done, *_ = d.run(np.array([std.burst_bytes * 2]), np.array([False]), np.array([gap_end]))
    assert done[0] - gap_end == 1 + t.rcd + t.cl + t.nbl  # row closed by the first PREA
    cmds = d.commands()
    refs = sorted(int(c) for c, k in zip(cmds[:, 0], cmds[:, 4], strict=True) if k == K.REF)
    # One rank, due at k x tREFI; the first closes the read's row (PREA at its due cycle)
    # and its REF waits tRP after it.
    assert refs == [t.refi + t.rp] + [k * t.refi for k in range(2, 6)]
    pre = [int(c) for c, k in zip(cmds[:, 0], cmds[:, 4], strict=True) if k == K.PREA]
    assert pre == [t.refi]
    assert check_trace(cmds, std) == []


@pytest.mark.parametrize("name", standard_names())
@pytest.mark.parametrize("pattern", PATTERNS)
def test_recorded_traces_obey_every_timing(name: str, pattern: str) -> None:
    std = get_standard(name)
    for policy in ("open", "closed"):
        _, sysm = bench(std, pattern, 24 * 1024, channels=2, record=True, policy=policy)
        cmds = sysm.commands()
        assert len(cmds) > 0
        assert check_trace(cmds, std) == []


def test_per_bank_refresh_traces_obey_every_timing() -> None:
    for name in ("LPDDR5-6400", "HBM3-6400", "DDR5-4800"):
        std = get_standard(name)
        std = std.with_overrides({"refi": 2 * std.t.rfc + 200})
        _, sysm = bench(std, "mix-2r1w", 32 * 1024, channels=2, record=True, refresh="per-bank")
        cmds = sysm.commands()
        assert (cmds[:, 4] == K.REFPB).sum() > 0
        assert check_trace(cmds, std) == []


def test_checker_catches_violations() -> None:
    std = get_standard("HBM3")
    _, sysm = bench(std, "random-read", 8 * 1024, channels=1, record=True)
    cmds = sysm.commands()
    bad = cmds.copy()
    i = int(np.flatnonzero(bad[:, 4] == K.RD)[5])
    bad[i, 0] -= std.t.rcd  # read before its row is ready
    assert check_trace(bad, std)
    bad = cmds.copy()
    acts = np.flatnonzero(bad[:, 4] == K.ACT)
    bad[acts[4], 0] = bad[acts[0], 0] + 1  # five ACTs inside one tFAW
    assert check_trace(bad, std)


@pytest.mark.parametrize("name", ["HBM3-6400", "LPDDR5X-8533"])
def test_checker_counts_command_slots(name: str) -> None:
    """One command a clock per channel; HBM has a row and a column command bus, so an ACT
    and a RD of different banks may share a clock there and nowhere else. Hand-written
    traces whose every timing holds: only the slot rule can object."""
    std = get_standard(name)
    t = std.t
    start = max(t.rcd, t.rfc) + 10
    # ACT bank 0, its RD tRCD later, and in the RD's clock an ACT to bank 4: tRCD >= tRRD,
    # so every timing holds.
    assert t.rcd >= max(t.rrd_s, t.rrd_l)
    act1 = start + t.rcd
    trace = np.array([[start, 0, 0, 7, K.ACT], [act1, 0, 0, 7, K.RD],
                      [act1, 0, 4, 3, K.ACT]], dtype=np.int64)
    problems = check_trace(trace, std)
    if name.startswith("HBM"):
        assert problems == []
    else:
        assert problems == [f"cycle {act1} channel 0: 2 commands in one clock on the command bus"]
    two_rows = trace.copy()  # PRE bank 0 and ACT bank 4 in one clock: both row commands
    two_rows[1] = [start + t.ras, 0, 0, 7, K.PRE]
    two_rows[2, 0] = start + t.ras
    bus = "row command bus" if name.startswith("HBM") else "command bus"
    assert f"cycle {start + t.ras} channel 0: 2 commands in one clock on the {bus}" in \
        check_trace(two_rows, std)


def test_closed_page_never_hits_and_open_page_streams_hit() -> None:
    std = get_standard("LPDDR5")
    closed = DramSystem(std, policy="closed")
    closed.stream(0, 64 * 1024, False, 0)
    opened = DramSystem(std)
    opened.stream(0, 64 * 1024, False, 0)
    assert closed.row_hit_rate() == 0.0
    assert opened.row_hit_rate() > 0.9


def test_background_energy_splits_active_and_precharged_standby() -> None:
    """Hand count, in joules: one read at cycle 0 on channel 0 of two, no refresh, open page.
    Its ACT issues at cycle 1 (the controller's clock) and the row stays open, so channel 0
    draws active standby from 1 to the end and precharged standby before; channel 1 draws
    precharged standby throughout. Closed page shuts the bank again at tRAS after the ACT."""
    std = get_standard("HBM2")
    e, t = std.e, std.t
    assert e.precharged_mw is not None and e.precharged_mw == pytest.approx(66.0 * 40 / 55)
    tck_s = t.tck_ns * 1e-9
    end = 10_000
    d = DramSystem(std, channels=2, refresh="none")
    d.run(np.array([0]), np.array([False]), 0)
    want = ((end - 1) * e.background_mw + (1 + end) * e.precharged_mw) * 1e-3 * tck_s
    assert d.energy(end).background_j == pytest.approx(want, rel=1e-12)
    closed = DramSystem(std, channels=2, refresh="none", policy="closed")
    closed.run(np.array([0]), np.array([False]), 0)
    # RDA at 1 + tRCD: the precharge waits for tRAS (34) after the ACT, which is later than
    # the read's tRTP; so the bank is open from 1 to 1 + tRAS.
    assert 1 + t.ras >= 1 + t.rcd + t.rtp
    want = (t.ras * e.background_mw + (2 * end - t.ras) * e.precharged_mw) * 1e-3 * tck_s
    assert closed.energy(end).background_j == pytest.approx(want, rel=1e-12)


def _random_read_bw(std, channels: int = 1, n: int = 4096) -> float:  # type: ignore[no-untyped-def]
    """Bursts per cycle of open-loop uniform random reads on ``channels`` channels."""
    d = DramSystem(std, channels=channels, refresh="none")
    cap = std.capacity_per_channel_bytes * channels
    addr = np.random.default_rng(3).integers(0, cap // std.burst_bytes, n) * std.burst_bytes
    done, *_ = d.run(addr, np.zeros(n, dtype=bool), 0)
    return n / done.max()


def test_each_rank_has_its_own_activate_window() -> None:
    """Random reads on DDR4 are bound by 4 ACTs per tFAW per rank (4 / 48 bursts per cycle,
    a third of the data bus): one rank stays under that bound, two ranks nearly double it."""
    std = get_standard("DDR4-3200")
    t = std.t
    one = _random_read_bw(std)
    two = _random_read_bw(std.with_overrides({"ranks": 2}))
    assert one <= 4 / t.faw * 1.01
    assert two > 1.7 * one and two <= 8 / t.faw * 1.01


def test_t32aw_bounds_gddr6_random_reads() -> None:
    """GDDR6: 32 ACTs per t32AW is tighter than 4 per tFAW (32): random reads stay under
    32 / t32AW bursts per cycle, and rise above it without the window. The window is
    DRAMsim3's GDDR6_8Gb_x16.ini 420 clocks of 0.66 ns, in the entry's 0.5 ns clocks."""
    std = get_standard("GDDR6")
    t = std.t
    assert t.tck_ns == 0.5 and t.t32aw == 555  # ceil(420 x 0.66 / 0.5) = ceil(554.4)
    assert 32 / t.t32aw < 4 / t.faw
    with_window = _random_read_bw(std)
    without = _random_read_bw(std.with_overrides({"t32aw": 0}))
    assert with_window <= 32 / t.t32aw * 1.01
    assert without > 32 / t.t32aw * 1.1


def test_one_bank_group_means_short_column_spacing() -> None:
    """GDDR6 has tCCD_L = 2 bursts: a stream confined to one group at tCCD_L would reach
    half the peak. With one bank group per rank the long timings do not apply, so a
    sequential read reaches the data-bus rate (less refresh and row switches)."""
    std = get_standard("GDDR6").with_overrides({"bank_groups": 1, "banks_per_group": 16})
    t = std.t
    assert max(t.ccd_l, t.nbl) == 2 * t.nbl  # the long spacing would halve the rate
    d = DramSystem(std, channels=1, refresh="none")
    n = 4096
    done, *_ = d.run(np.arange(n) * std.burst_bytes, np.zeros(n, dtype=bool), 0)
    assert n * t.nbl / done.max() > 0.9


def test_two_rank_traces_obey_every_timing_and_the_checker_sees_rank_switches() -> None:
    std = get_standard("DDR4-3200").with_overrides({"ranks": 2, "refi": 2 * 560 + 200})
    d = DramSystem(std, channels=1, record=True, mapping="row:bank:column:bankgroup:rank:channel")
    n = 400
    addr = np.random.default_rng(5).integers(0, (1 << 24) // 64, n) * 64
    d.run(addr, np.random.default_rng(6).random(n) < 0.3, 0)
    cmds = d.commands()
    assert ((cmds[:, 4] == K.REF) & (cmds[:, 2] == -2)).any()  # rank 1 refreshes too
    assert check_trace(cmds, std) == []
    # Pull a column command to the cycle after one of the other rank: tRTRS is violated.
    cols = np.flatnonzero(np.isin(cmds[:, 4], (K.RD, K.WR)))
    per_rank = std.banks // 2
    i = next(j for a, j in itertools.pairwise(cols)
             if cmds[a, 2] // per_rank != cmds[j, 2] // per_rank)
    prev = cols[np.searchsorted(cols, i) - 1]
    bad = cmds.copy()
    bad[i, 0] = bad[prev, 0] + 1
    assert any("tRTRS" in v for v in check_trace(bad, std))
