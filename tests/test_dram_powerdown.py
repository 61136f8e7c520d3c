"""DRAM precharge power-down: exit latency, power-down energy, refresh wake-ups, the checker,
and that ``powerdown_idle`` 0 (the default) changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npusim.dram.checker import check_trace
from npusim.dram.system import DramSystem, system_options
from npusim.kernels import dram as K
from npusim.spec.arch import Dram
from npusim.spec.dram_catalog import get_standard, standard_names

CTRL = 1  # the controller's clock between a handover and its first command


@pytest.mark.parametrize(("name", "want"), [
    ("DDR4-3200", 10),    # max(4 nCK, 6 ns / 0.625 ns = 9.6 -> 10)
    ("DDR4-2400", 8),     # 6 ns / 0.8333 ns = 7.2 -> 8
    ("DDR3-2133", 7),     # max(3 nCK, 6 ns / 0.9376 ns = 6.4 -> 7)
    ("LPDDR4-4266", 16),  # max(5 nCK, 7.5 ns / 0.46882 ns = 15.997 -> 16)
    ("LPDDR5-6400", 6),   # max(3 nCK, 7.5 ns / 1.25 ns = 6)
    ("HBM2-2000", 8),     # DRAMsim3 HBM2: tXP 8 at tCK 1 ns
    ("DDR5-4800", 18),    # max(8 nCK, 7.5 ns / 0.41667 ns = 18)
])
def test_catalog_txp_in_clocks(name: str, want: int) -> None:
    assert get_standard(name).t.xp == want


def test_catalog_powerdown_power_from_idd2p() -> None:
    # DRAMsim3 DDR4_8Gb_x16_3200: VDD 1.2 V x IDD2P 25 mA x 4 devices a channel = 120 mW
    # (the entry scales its rounded 269 mW active standby, IDD3N 56 mA, by 25/56).
    assert get_standard("DDR4-3200").e.powerdown_mw == pytest.approx(1.2 * 25 * 4, rel=1e-3)
    # HBM2: 66 mW active standby at IDD3N 55 mA; IDD2P 28 mA.
    assert get_standard("HBM2-2000").e.powerdown_mw == pytest.approx(66.0 * 28 / 55)
    # No preset: 0.7 x precharged standby (an assumption).
    e = get_standard("LPDDR5-6400").e
    assert e.precharged_mw is not None
    assert e.powerdown_mw == pytest.approx(0.7 * e.precharged_mw)


def _closed_page_reads(name: str, pd: int) -> tuple[DramSystem, list[dict[str, int]]]:
    """Three idle reads of address 0 (closed page, no refresh): the first after a long idle
    start, the second one clock short of the power-down threshold after the first's
    auto-precharge, the third exactly at it. Returns the system and, per read, the arrival,
    measured latency and the hand-derived ACT and auto-precharge cycles."""
    std = get_standard(name)
    t = std.t
    d = DramSystem(std, channels=1, policy="closed", refresh="none", powerdown_idle=pd)
    out: list[dict[str, int]] = []
    arrival = 1000
    for asleep in (True, False, True):
        done, *_ = d.run(np.array([0]), np.array([False]), arrival)
        act = arrival + CTRL + (t.xp if asleep else 0)
        pre = max(act + t.ras, act + t.rcd + t.rtp)  # RDA: tRAS and tRTP
        out.append({"arrival": arrival, "latency": int(done[0]) - arrival, "act": act,
                    "pre": pre})
        # The rank is idle from ``pre``: arrive one clock short of the threshold, then at it.
        arrival = pre + pd - 1 if asleep else pre + pd
    return d, out


@pytest.mark.parametrize("name", standard_names())
def test_read_to_powered_down_rank_pays_txp(name: str) -> None:
    t = get_standard(name).t
    pd = 4 * t.rc  # longer than tRP: the bank is ready again before the threshold
    _, reads = _closed_page_reads(name, pd)
    idle = CTRL + t.rcd + t.cl + t.nbl  # an idle read to a closed bank
    assert [r["latency"] for r in reads] == [t.xp + idle, idle, t.xp + idle]


def test_powerdown_energy_by_hand() -> None:
    name = "HBM2-2000"
    std = get_standard(name)
    t, e = std.t, std.e
    pd = 4 * t.rc
    d, reads = _closed_page_reads(name, pd)
    end = reads[-1]["pre"] + 10_000  # a long idle tail: the rank is still down at the end
    # Active standby from each ACT to its auto-precharge.
    active = sum(r["pre"] - r["act"] for r in reads)
    # Power-down: from cycle pd (idle since 0) to the first read's exit one clock after its
    # arrival; none before the second read; the threshold to one clock after the third's
    # arrival (1 cycle); then the tail from the third's precharge + pd to the end.
    closed_spans = (reads[0]["arrival"] + CTRL - pd) + CTRL
    down = closed_spans + (end - (reads[2]["pre"] + pd))
    assert d.counts()[K.N_PDCYC] == closed_spans
    rest = end - active - down
    assert e.precharged_mw is not None and e.powerdown_mw is not None
    watts = (active * e.background_mw + down * e.powerdown_mw + rest * e.precharged_mw) / 1e3
    want_j = watts * t.tck_ns * 1e-9  # one rank, one channel: cycles x W x seconds a cycle
    assert d.energy(end).background_j == pytest.approx(want_j, rel=1e-12)
    # Power-down must be cheaper than charging the same cycles as precharged standby.
    assert want_j < (active * e.background_mw + (end - active) * e.precharged_mw) / 1e3 \
        * t.tck_ns * 1e-9


def test_refresh_due_in_power_down_exits_first() -> None:
    std = get_standard("HBM2-2000")
    t = std.t
    pd = 50
    d = DramSystem(std, channels=1, powerdown_idle=pd, record=True)  # all-bank refresh
    # One rank: its first refresh is due at tREFI. It falls due while the rank is down.
    ref = t.refi + t.xp
    arrival = ref + t.rfc + pd + 500  # down again after the refresh
    done, *_ = d.run(np.array([0]), np.array([False]), arrival)
    assert int(done[0]) - arrival == CTRL + t.xp + t.rcd + t.cl + t.nbl
    cmds = [(int(c[0]), K.CMD_NAMES[int(c[4])]) for c in d.commands()]
    assert cmds == [(pd, "PDE"), (t.refi, "PDX"), (ref, "REF"), (ref + t.rfc + pd, "PDE"),
                    (arrival + CTRL, "PDX"), (arrival + CTRL + t.xp, "ACT"),
                    (arrival + CTRL + t.xp + t.rcd, "RD")]
    assert d.counts()[K.N_PDCYC] == (t.refi - pd) + (arrival + CTRL - (ref + t.rfc + pd))
    assert check_trace(d.commands(), std) == []


def test_checker_flags_power_down_violations() -> None:
    std = get_standard("HBM2-2000")
    d = DramSystem(std, channels=1, refresh="none", powerdown_idle=20, record=True)
    d.run(np.array([0]), np.array([False]), 500)
    cmds = d.commands()
    assert check_trace(cmds, std) == []
    early = cmds.copy()
    early[early[:, 4] == K.ACT, 0] -= 1  # the ACT one clock inside tXP of the exit
    early[early[:, 4] == K.RD, 0] -= 1
    assert any("tXP" in v for v in check_trace(early, std))
    down = cmds.copy()
    down[down[:, 4] == K.PDX, 0] = 10**6  # exit after the ACT: commands while down
    assert any("power-down" in v for v in check_trace(down, std))


def _random_batch(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    addr = rng.integers(0, 1 << 22, n) * 32
    # Bursts of traffic with long gaps, so an enabled power-down would trigger.
    arr = np.sort(rng.integers(0, 40, n) * 2000 + rng.integers(0, 300, n))
    return addr, rng.random(n) < 0.3, arr


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_powerdown_off_changes_nothing(policy: str) -> None:
    std = get_standard("LPDDR5-6400")
    addr, wr, arr = _random_batch(3)
    runs = []
    for pd in (0, 10**12):  # never, and a threshold never reached
        d = DramSystem(std, channels=2, policy=policy, refresh="per-bank", powerdown_idle=pd,
                       record=True)
        out = d.run(addr, wr, arr)
        runs.append((d, out))
    (a, out_a), (b, out_b) = runs
    for x, y in zip(out_a, out_b, strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(a.counts(), b.counts())
    assert np.array_equal(a.commands(), b.commands())
    end = int(out_a[0].max()) + 50_000
    assert a.energy(end) == b.energy(end)
    assert a.counts()[K.N_PDCYC] == 0
    assert not np.isin(a.commands()[:, 4], [K.PDE, K.PDX]).any()
    # With power-down on, the same batch draws less background power.
    c = DramSystem(std, channels=2, policy=policy, refresh="per-bank", powerdown_idle=16)
    c.run(addr, wr, arr)
    assert c.counts()[K.N_PDCYC] > 0
    assert c.energy(end).background_j < a.energy(end).background_j


def test_chip_field_reaches_the_controller() -> None:
    dram = Dram(standard="HBM2-2000", powerdown_idle=64)
    d = DramSystem(get_standard("HBM2-2000"), **system_options(dram))
    assert d.params[K.P_PDIDLE] == 64 and d.params[K.P_XP] == 8
    # Both fast paths are off with power-down on: every transfer runs in detail.
    assert d.reuse is None and not d.fast_path
    assert Dram(standard="HBM2-2000").powerdown_idle == 0
    with pytest.raises(ValueError):
        Dram(standard="HBM2-2000", powerdown_idle=-1)
    assert math.isfinite(d.energy(100).total_j)


@pytest.mark.parametrize(("name", "refresh", "margin"), [
    ("HBM2-2000", "all-bank", 64),  # slack after each refresh >= tXP: down at every one
    ("HBM2-2000", "all-bank", 4),   # 0 <= slack < tXP: down at every other one
    ("HBM2-2000", "all-bank", -40),  # slack < 0: never down again after the first
    ("LPDDR5-6400", "per-bank", 40),
    ("LPDDR5-6400", "per-bank", 3),
    ("LPDDR5-6400", "per-bank", -5),
])
def test_idle_tail_refreshes_match_the_kernel(name: str, refresh: str, margin: int) -> None:
    """``refresh_until`` counts an idle tail's refreshes in closed form; the kernel, given a
    request after the same tail, issues them one by one. Their power-down must agree."""
    std = get_standard(name)
    t = std.t
    step = t.refi if refresh == "all-bank" else t.refi // std.banks
    busy = t.rfc if refresh == "all-bank" else t.rfcpb
    pd = step - busy - margin  # margin: the slack S of the closed form
    assert pd > 0
    systems = [DramSystem(std, channels=1, policy="closed", refresh=refresh,
                          powerdown_idle=pd) for _ in range(2)]
    for d in systems:
        d.run(np.array([0]), np.array([False]), 10)
    tail, ask = systems
    arrival = int(tail.rs[0, 0, K.R_REFDUE]) + 6 * step + step // 2  # 7 refreshes due before
    tail.refresh_until(arrival)
    ask.run(np.array([std.burst_bytes]), np.array([False]), arrival)
    # The asking request's own span ends one clock after it arrives (when the rank is down).
    idle = int(tail.rs[0, 0, K.R_IDLESINCE])
    still = max(arrival + CTRL - (idle + pd), 0)
    assert tail.counts()[K.N_PDCYC] + still == ask.counts()[K.N_PDCYC]
    assert tail.counts()[K.N_REF if refresh == "all-bank" else K.N_REFPB] == \
        ask.counts()[K.N_REF if refresh == "all-bank" else K.N_REFPB]
