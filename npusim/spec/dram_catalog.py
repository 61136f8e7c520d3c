"""Catalog of DRAM standards: organisation, timings and energy, one entry per speed grade.

Each entry is keyed ``FAMILY-RATE`` (``LPDDR5-6400``); a bare family name picks its default
(first listed) speed grade. Timings are integer clock counts of ``tCK`` in the style of the
ramulator2 / DRAMsim3 presets they come from (CMU-SAFARI/ramulator2 ``python/ramulator/dram``,
umd-memsys/DRAMsim3 ``configs/*.ini``); where a grade has no public preset its nanosecond
values are taken from the nearest grade of the family and re-rounded to its clock, which each
entry's ``sources`` says. ``tCK`` follows from the data rate and how many transfers a pin makes
per clock (2 for DDR-clocked interfaces, 4 for HBM3's, 8 for LPDDR5 and GDDR6 whose data
clock runs faster than CK).

Energy has three parts per bit, each with its own source in the entry:

- **core** (array and internal datapath), from per-command energies (``DramEnergy``, per
  channel): an ACT+PRE pair, the column energy of a read or write per bit, one all-bank
  refresh, and background power. Where a DRAMsim3 preset gives IDD currents they are derived
  as E_act = VDD·(IDD0·tRC − IDD3N·tRAS − IDD2N·(tRC−tRAS)), E_rd = VDD·(IDD4R−IDD3N)·burst
  time, E_ref = VDD·(IDD5−IDD3N)·tRFC, P_bg = VDD·IDD3N, scaled by the devices per channel;
  the others are labelled assumptions. ``core_pj_per_bit`` is what these charge a bit of a
  sequential read stream at peak rate: the column energy, one activate per row read whole,
  and refresh plus background power spread over the peak bit rate.
- **interface** (``io_pj_per_bit``: the DRAM's drivers, termination and receivers and the
  wires between the two dies: board or package traces, or TSVs and interposer), from a
  published interface figure per signalling family, scaled to each standard's VDDQ (an
  assumption, see ``_IO_*`` below).
- **controller + PHY** (``phy_pj_per_bit``: the NPU-side PHY, its receivers, clocking and
  training, and the memory controller's logic), from a published controller-side interface
  per family (``_PHY_*`` below).

The headline ``pj_per_bit`` is core + interface + controller/PHY; the bandwidth memory model
charges every byte 8 x that. One entry (DDR3) gives a system-level headline instead of an
interface figure; its interface share is then the headline less the other two. A chip's
``dram.pj_per_bit`` likewise fixes the headline and moves the interface share.
``pj_per_bit_range`` is the range the sources give for the device (its upper end raised by
the entry's controller + PHY, which the quoted device figures leave out), which tests hold
the command-level model to.

Controller-related fields (docs/model.md, "Cycle DRAM controller"): ``ranks`` (an
organisation level with its own activate windows and refresh), ``timing.rtrs`` (rank
switch on the data bus: 1 clock for DDR3, DDR4, LPDDR4/4X and GDDR6, as every DRAMsim3
config of those families sets it, e.g. ``DDR4_8Gb_x16_3200.ini``, ``LPDDR4_8Gb_x16_2400.ini``,
``GDDR6_8Gb_x16.ini``, ``DDR3_8Gb_x8_1600.ini``; LPDDR4X takes LPDDR4's, an assumption;
2 clocks, DRAMsim3's default, for the families its configs do not set it for: HBM2
``HBM2_8Gb_x128.ini`` gives none, DDR5, LPDDR5/5X and HBM3/3E have no config),
``timing.t32aw`` (GDDR6's 32-activate window, ``GDDR6_8Gb_x16.ini``'s 420 clocks of 0.66 ns
re-rounded to the entry's clock like its other timings; 0: none),
``write_drain_high``/``write_drain_low`` (fractions of the write queue; DRAMsim3 drains
when full, to empty) and ``energy.precharged_mw`` (precharged standby, IDD2N; from
the DRAMsim3 IDD2N/IDD3N where a config gives them, else 0.7 x active standby, an
assumption).

Power-down (used only when a chip sets ``dram.powerdown_idle``): ``timing.xp`` is JEDEC's
tXP, power-down exit to the next valid command, in clocks of the entry's tCK rounded up:
DDR3 max(3 nCK, 6 ns) (JESD79-3F), DDR4 max(4 nCK, 6 ns) (JESD79-4; DRAMsim3's
DDR4_8Gb_x16_3200.ini has the same 10 clocks), DDR5 max(8 nCK, 7.5 ns) (JESD79-5 as commonly
tabulated, not checked against the standard text), LPDDR4/4X max(5 nCK, 7.5 ns) (JESD209-4),
LPDDR5/5X max(3 nCK, 7.5 ns) (an assumption: LPDDR4's), HBM2/2E 8 ns (DRAMsim3
HBM2_8Gb_x128.ini: tXP 8 at tCK 1 ns), HBM3/3E and GDDR6 8 ns (an assumption: HBM2's).
``energy.powerdown_mw`` is precharge power-down, IDD2P: VDD x IDD2P per the DRAMsim3 preset
where it gives one (DDR4 IDD2P 25 mA, HBM2 28 mA), else 0.7 x precharged standby (an
assumption: the IDD2P/IDD2N ratio of those two presets, 25/37 and 28/40).

``DramStandard.with_overrides`` replaces any field, timing or energy value (from a chip's
YAML); ``idle_read_latency_ns`` is always tRCD + CL + one burst (a read to a closed bank;
the cycle controller adds one of its clocks).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from npusim.errors import Issue, SpecError

__all__ = ["DramEnergy", "DramStandard", "DramTiming", "get_standard", "standard_names"]

_TIMING_KEYS = ("cl", "cwl", "rcd", "rcdw", "rp", "ras", "rc", "ccd_s", "ccd_l", "rrd_s",
                "rrd_l", "faw", "wtr_s", "wtr_l", "rtp", "wr", "refi", "rfc", "rfcpb")


@dataclass(frozen=True)
class DramTiming:
    """Timing constraints in clock cycles of ``tck_ns`` (names follow JEDEC, lower case)."""

    tck_ns: float
    nbl: int  # cycles one burst occupies the data bus
    cl: int
    cwl: int
    rcd: int  # ACT to RD
    rcdw: int  # ACT to WR
    rp: int
    ras: int
    rc: int
    ccd_s: int
    ccd_l: int
    rrd_s: int
    rrd_l: int
    faw: int
    wtr_s: int
    wtr_l: int
    rtp: int
    wr: int
    refi: int  # all-bank refresh interval
    rfc: int  # all-bank refresh cycle time
    rfcpb: int  # per-bank refresh cycle time; 0: the standard has no per-bank refresh
    rtrs: int = 2  # rank-to-rank switch on the data bus (DRAMsim3's default; one rank: unused)
    t32aw: int = 0  # 32-activate window (GDDR5/6); 0: the standard has none
    xp: int = 1  # power-down exit to the next command (tXP); the catalog sets it per family

    @property
    def rtw(self) -> int:
        """RD to WR command spacing: read data out, 2 cycles of bus turnaround, minus CWL."""
        return max(self.cl + self.nbl + 2 - self.cwl, 1)


@dataclass(frozen=True)
class DramEnergy:
    """Per-channel command energies (see the module docstring for how each is derived)."""

    act_pre_nj: float  # one ACT + its PRE
    read_pj_per_bit: float  # array + internal datapath of a read burst, per bit
    write_pj_per_bit: float
    refresh_nj: float  # one all-bank refresh; a per-bank refresh costs this / banks
    background_mw: float  # active standby power of one channel (a bank open: IDD3N)
    io_pj_per_bit: float = 0.0  # interface energy of every bit read or written
    phy_pj_per_bit: float = 0.0  # NPU-side controller + PHY energy of every bit
    # Precharged standby (every bank of a rank closed: IDD2N), per channel; None: as active.
    precharged_mw: float | None = None
    # Precharge power-down (IDD2P), per channel; None: as precharged standby.
    powerdown_mw: float | None = None


@dataclass(frozen=True)
class DramStandard:
    name: str
    family: str
    data_rate_mts: float  # mega-transfers per second per pin
    channel_width_bits: int  # one (pseudo-)channel
    default_channels: int
    pj_per_bit: float  # headline: core + interface + controller/PHY, sequential stream at peak
    idle_read_latency_ns: float  # tRCD + CL + burst, a row miss on an idle bank
    capacity_per_channel_bytes: int
    sources: tuple[str, ...]
    transfers_per_clock: int = 2
    burst_length: int = 8
    ranks: int = 1
    bank_groups: int = 1
    banks_per_group: int = 8
    row_bytes: int = 2048
    timing: DramTiming | None = None
    energy: DramEnergy | None = None
    pj_per_bit_range: tuple[float, float] = (0.0, 0.0)
    core_pj_per_bit: float = 0.0  # derived from the command energies (module docstring)
    # Write drain: the controller turns to writes when the write queue holds this fraction of
    # its entries and drains it down to the low fraction (DRAMsim3: drain when full, to empty).
    write_drain_high: float = 1.0
    write_drain_low: float = 0.0

    @property
    def channel_bandwidth(self) -> float:
        """Peak bytes per second of one channel."""
        return self.data_rate_mts * 1e6 * self.channel_width_bits / 8

    @property
    def burst_bytes(self) -> int:
        return self.channel_width_bits * self.burst_length // 8

    @property
    def interface_pj_per_bit(self) -> float:
        """The interface part of the headline (the catalog's ``io_pj_per_bit``)."""
        return self.e.io_pj_per_bit

    @property
    def phy_pj_per_bit(self) -> float:
        """The NPU-side controller + PHY part of the headline."""
        return self.e.phy_pj_per_bit

    @property
    def dual_command_bus(self) -> bool:
        """Separate row and column command buses (HBM): a row and a column command may
        share a clock."""
        return self.family.upper().startswith("HBM")

    @property
    def banks(self) -> int:
        """Banks per channel (all ranks)."""
        return self.ranks * self.bank_groups * self.banks_per_group

    @property
    def t(self) -> DramTiming:
        assert self.timing is not None
        return self.timing

    @property
    def e(self) -> DramEnergy:
        assert self.energy is not None
        return self.energy

    def with_overrides(self, changes: dict[str, Any]) -> DramStandard:
        """A copy with fields replaced: top-level names, timing names, energy names.

        Unknown names raise ``SpecError`` naming every bad key at once. A new
        ``pj_per_bit`` fixes the headline and moves the interface share to make it up;
        otherwise the headline is recomputed as core + interface + controller/PHY from the
        (possibly changed) energies.
        """
        top, tim, ene, bad = {}, {}, {}, []
        tnames = {f.name for f in dataclasses.fields(DramTiming)}
        enames = {f.name for f in dataclasses.fields(DramEnergy)}
        fnames = {f.name for f in dataclasses.fields(DramStandard)} - {"timing", "energy"}
        for k, v in changes.items():
            if k in tnames:
                tim[k] = v
            elif k in enames:
                ene[k] = v
            elif k in fnames:
                top[k] = v
            else:
                bad.append(Issue(k, f"unknown DRAM field (known: {', '.join(sorted(fnames | tnames | enames))})"))
        if "pj_per_bit" in top and "io_pj_per_bit" in ene:
            bad.append(Issue("pj_per_bit", "give pj_per_bit (the headline) or io_pj_per_bit "
                                           "(the headline is then core + interface + "
                                           "controller/PHY), not both"))
        if bad:
            raise SpecError(bad)
        new = dataclasses.replace(self, **top)
        if tim:
            new = dataclasses.replace(new, timing=dataclasses.replace(new.t, **tim))
        if ene:
            new = dataclasses.replace(new, energy=dataclasses.replace(new.e, **ene))
        return _finish(new, headline="pj_per_bit" in top)


def stream_core_pj_per_bit(s: DramStandard) -> float:
    """Core energy of one bit of a sequential read stream at peak rate, from the command
    energies: column read, one ACT+PRE per row read whole, refresh and background power."""
    t, e = s.t, s.e
    act = e.act_pre_nj * 1e3 / (s.row_bytes * 8)
    ref_w = e.refresh_nj * 1e-9 / (t.refi * t.tck_ns * 1e-9)
    static = (ref_w + e.background_mw * 1e-3) / (s.channel_bandwidth * 8) * 1e12
    return e.read_pj_per_bit + act + static


def _finish(s: DramStandard, headline: bool = False) -> DramStandard:
    """Fill the derived fields: idle latency, core energy per bit, and either the headline
    (core + interface + controller/PHY) or, when ``headline`` is the given figure, the
    interface share that makes it up (a headline below core + controller/PHY takes the
    controller/PHY down first; no part goes below 0)."""
    t, e = s.t, s.e
    bad = [Issue(k, f"must be a positive clock count, got {getattr(t, k)}")
           for k in _TIMING_KEYS if getattr(t, k) < 0 or (getattr(t, k) == 0 and k != "rfcpb")]
    bad += [Issue(k, f"must be a clock count >= 0, got {getattr(t, k)}")
            for k in ("rtrs", "t32aw", "xp") if getattr(t, k) < 0]
    bad += [Issue(k, f"must be an energy >= 0 (pJ per bit), got {getattr(e, k)}")
            for k in ("io_pj_per_bit", "phy_pj_per_bit") if getattr(e, k) < 0]
    bad += [Issue(k, f"must be at least 1, got {getattr(s, k)}")  # an organisation of 0
            for k in ("ranks", "bank_groups", "banks_per_group", "row_bytes", "burst_length",
                      "transfers_per_clock", "capacity_per_channel_bytes", "default_channels")
            if getattr(s, k) < 1]
    if not 0 <= s.write_drain_low < s.write_drain_high <= 1:
        bad.append(Issue("write_drain_high", "write-drain watermarks need 0 <= low < high <= 1, "
                                             f"got {s.write_drain_low}, {s.write_drain_high}"))
    if t.refi <= t.rfc + t.rp:
        bad.append(Issue("refi", f"tREFI ({t.refi}) must exceed tRFC + tRP ({t.rfc + t.rp})"))
    if t.nbl < 1 or t.tck_ns <= 0:
        bad.append(Issue("tck_ns", "tCK and the burst length must be positive"))
    if bad:
        raise SpecError(bad, source=s.name)
    idle = (t.rcd + t.cl + t.nbl) * t.tck_ns
    core = stream_core_pj_per_bit(s)
    pj = s.pj_per_bit
    if headline:  # the interface makes the headline up; one below core + PHY takes the PHY down
        phy = min(e.phy_pj_per_bit, max(pj - core, 0.0))
        e = dataclasses.replace(e, io_pj_per_bit=max(pj - core - phy, 0.0), phy_pj_per_bit=phy)
    else:
        pj = core + e.io_pj_per_bit + e.phy_pj_per_bit
    return dataclasses.replace(s, idle_read_latency_ns=round(idle, 4), energy=e, pj_per_bit=pj,
                               core_pj_per_bit=core)


_GiB = 2**30
# tXP per family: (minimum clocks, nanoseconds), the larger wins (module docstring).
_XP = {"DDR3": (3, 6.0), "DDR4": (4, 6.0), "DDR5": (8, 7.5), "LPDDR4": (5, 7.5),
       "LPDDR4X": (5, 7.5), "LPDDR5": (3, 7.5), "LPDDR5X": (3, 7.5), "HBM2": (1, 8.0),
       "HBM2E": (1, 8.0), "HBM3": (1, 8.0), "HBM3E": (1, 8.0), "GDDR6": (1, 8.0)}
# tRTRS per family where DRAMsim3's configs set it (module docstring); others: 2 clocks.
_RTRS = {"DDR3": 1, "DDR4": 1, "LPDDR4": 1, "LPDDR4X": 1, "GDDR6": 1}
# Column order of the timing tuples below.
_T = ("cl", "cwl", "rcd", "rcdw", "rp", "ras", "rc", "ccd_s", "ccd_l", "rrd_s", "rrd_l", "faw",
      "wtr_s", "wtr_l", "rtp", "wr", "refi", "rfc", "rfcpb")


def _std(name: str, family: str, rate: float, width: int, channels: int, io: float | None,
         phy: float, cap: int, tpc: int, bl: int, org: tuple[int, int, int, int], timing: tuple[int, ...],
         energy: tuple[float, float, float, float, float], pj_range: tuple[float, float],
         sources: tuple[str, ...], headline: float | None = None, t32aw_ns: float = 0.0,
         idd2n_over_idd3n: float = 0.7, idd2p_over_idd3n: float | None = None
         ) -> DramStandard:
    """One entry: ``io`` is its sourced interface pJ/bit, or ``None`` with a sourced
    ``headline``; ``phy`` its controller + PHY pJ/bit."""
    tck = tpc * 1e3 / rate
    nbl = max(round(bl / tpc), 1)
    ranks, bgs, banks, row = org
    xp_nck, xp_ns = _XP[family]
    tim = DramTiming(tck_ns=round(tck, 6), nbl=nbl, rtrs=_RTRS.get(family, 2),
                     t32aw=math.ceil(t32aw_ns / round(tck, 6) - 1e-9),
                     xp=max(xp_nck, math.ceil(xp_ns / round(tck, 6) - 1e-9)),
                     **dict(zip(_T, timing, strict=True)))
    pre = energy[4] * idd2n_over_idd3n
    pd = pre * 0.7 if idd2p_over_idd3n is None else energy[4] * idd2p_over_idd3n
    s = DramStandard(name, family, rate, width, channels, headline or 0.0, 0.0, cap, sources,
                     transfers_per_clock=tpc, burst_length=bl, ranks=ranks, bank_groups=bgs,
                     banks_per_group=banks, row_bytes=row, timing=tim,
                     energy=DramEnergy(*energy, io_pj_per_bit=io or 0.0, phy_pj_per_bit=phy,
                                       precharged_mw=pre, powerdown_mw=pd),
                     pj_per_bit_range=(pj_range[0], pj_range[1] + (phy if io is not None else 0.0)))
    return _finish(s, headline=io is None)


# I/O energy per bit. No source gives it for every standard, so each signalling family is
# anchored on one published figure and scaled linearly with the standard's VDDQ (an
# assumption: a driver draws charge proportional to its swing from VDDQ, while receivers,
# serialisers and clock trees do not scale down with it; a VDDQ^2 rule would overstate the
# gain of the low-swing interfaces, a constant would ignore it).
# HBM (unterminated, ~1 mm interposer wires): 0.22 pJ/bit at VDDQ 1.2 V, the I/O share of
# HBM2's 3.97 pJ/bit (activation 1.21 + on-die data movement 2.54 + I/O 0.22) in O'Connor et
# al., "Fine-Grained DRAM", MICRO 2017 (breakdown as quoted by public simulator code; another
# quote gives 0.3 with 2.24 of movement: 0.22 is the split that sums to the paper's 3.97).
_IO_HBM_1V2 = 0.22
# GDDR / DDR (POD, terminated to VDDQ, board traces): AMD's HBM white paper (2015) gives
# GDDR5 10.66 GB/s per watt and HBM1 35 GB/s per watt, i.e. 11.73 and 3.57 pJ/bit. Taking
# the two cores as alike (AMD credits the gain to the wide, slow, short interposer bus and
# its voltage), GDDR5's interface is the difference plus HBM's own I/O: 8.38 pJ/bit at 1.5 V.
_IO_POD_1V5 = 1e12 / (10.66e9 * 8) - 1e12 / (35e9 * 8) + _IO_HBM_1V2
# LPDDR (LVSTL / HSUL, short board or package traces): 3.7 pJ/bit per pin for LPDDR3 at
# VDDQ 1.2 V (ISSCC 2012, as tabulated in Dongyunkam/DRAM_info).
_IO_LPDDR_1V2 = 3.7

# The anchors per volt of VDDQ; an entry's I/O energy is ``_io(family, its VDDQ)``.
_HBM = _IO_HBM_1V2 / 1.2
_POD = _IO_POD_1V5 / 1.5
_LP = _IO_LPDDR_1V2 / 1.2


def _io(pj_per_volt: float, vddq: float) -> float:
    return pj_per_volt * vddq


# Controller + PHY per bit on the NPU side (receivers, clocking, training, the controller's
# logic), from a published controller-side interface per family, taken unscaled to the node
# (an assumption: a newer node lowers the digital part, a faster pin raises the analog one).
# HBM: 0.29 pJ/bit, "A 4-nm 1.15 TB/s HBM3 Interface With Resistor-Tuned Offset Calibration
# and In Situ Margin Detection", IEEE JSSC 59(1), Jan 2024 (9.0 Gb/s/pin, whole interface).
_PHY_HBM = 0.29
# LPDDR (and, for want of their own figure, DDR and GDDR): 1.83 pJ/bit, the burst-read
# efficiency of Kim et al., "A 4266 Mb/s/pin LPDDR4 Interface With an Asynchronous Feedback
# CTLE and an Adaptive 3-Step Eye Detection Algorithm for Memory Controller", IEEE TCAS-II
# 65(12), Dec 2018 (65 nm; burst write 5.68 pJ/bit includes driving the channel, which the
# interface part charges here). The memory controller's own logic (a queue entry and a
# scheduler compare per 32-64 B request, a few pJ) is well under the PHY's uncertainty and is
# not charged apart.
_PHY_LP = 1.83
_SRC_PHY_HBM = ("controller+PHY: 0.29 pJ/bit, 4-nm HBM3 interface at 9.0 Gb/s/pin (IEEE JSSC "
                "59(1), 2024){note}")
_SRC_PHY_LP = ("controller+PHY: 1.83 pJ/bit, burst read of a 65-nm LPDDR4-4266 controller "
               "interface (Kim et al., IEEE TCAS-II 65(12), 2018), unscaled{note}")

# Each entry's I/O source line.
_SRC_HBM_IO = ("I/O ({label}): 0.22 pJ/bit at VDDQ 1.2 V (HBM2 I/O share, O'Connor et al. MICRO 2017) "
               "x VDDQ {q} V / 1.2 V (assumption: linear in VDDQ)")
_SRC_POD_IO = ("I/O ({label}): 8.38 pJ/bit at VDDQ 1.5 V (GDDR5 11.73 less HBM1 3.57 pJ/bit from AMD's "
               "2015 HBM white paper, 10.66 vs 35 GB/s per W, plus HBM's 0.22; assumption: same "
               "core) x VDDQ {q} V / 1.5 V (assumption: linear in VDDQ)")
_SRC_LP_IO = ("I/O ({label}): LPDDR3 3.7 pJ/bit per pin at VDDQ 1.2 V (ISSCC 2012, via "
              "Dongyunkam/DRAM_info) x VDDQ {q} V / 1.2 V (assumption: linear in VDDQ)")


#        name           family    MT/s  width ch  interface pJ/b, ctrl+PHY pJ/b  cap/ch  tpc BL  (ranks, BG, banks/BG, row B)
#        timing: cl cwl rcd rcdw rp ras rc ccd_s ccd_l rrd_s rrd_l faw wtr_s wtr_l rtp wr refi rfc rfcpb
#        energy: act+pre nJ, read pJ/b, write pJ/b, refresh nJ, background mW (per channel)
_ENTRIES = [
    _std("DDR3-2133", "DDR3", 2133, 64, 2, None, _PHY_LP, 4 * _GiB, 2, 8, (1, 1, 8, 8192),
         (14, 10, 14, 14, 14, 36, 50, 4, 4, 6, 6, 27, 8, 8, 8, 16, 8320, 278, 0),
         (12.0, 9.0, 9.0, 500.0, 400.0), (9.0, 70.0),
         (_SRC_PHY_LP.format(note=" (assumption: no DDR3 controller figure read; the interface share is what the headline leaves)"),
          "JESD79-3F speed bin DDR3-2133 (14-14-14); tRFC 260 ns (4 Gb), tFAW 25 ns (1 KB page)",
          "headline 70 pJ/bit system-level: Accelergy CACTI plug-in citing Chatterjee et al. MICRO'17; I/O is the headline less the core",
          "core: column 9.0 pJ/bit (IDD7, DDR3 2 Gb, Dongyunkam/DRAM_info citing MICRO'10); ACT 12 nJ per x64 rank, refresh 500 nJ, background 400 mW: assumptions (8 x8 devices)"),
         headline=70.0),
    _std("DDR4-3200", "DDR4", 3200, 64, 2, _io(_POD, 1.2), _PHY_LP, 8 * _GiB, 2, 8, (1, 2, 4, 8192),
         (22, 16, 22, 22, 22, 52, 74, 4, 8, 9, 11, 48, 4, 12, 12, 24, 12480, 560, 0),
         (9.9, 5.8, 5.2, 376.0, 269.0), (5.8, 20.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure for a DDR4 controller)"),
          "DRAMsim3 DDR4_8Gb_x16_3200.ini (timings; IDD0 95, IDD3N 56, IDD2N 37, IDD4R 302, IDD4W 278, IDD5AB 280 mA, VDD 1.2 V)",
          "core: command energies derived from those IDD per x16 device x 4 devices per 64-bit channel",
          _SRC_POD_IO.format(label="POD12", q=1.2),
          "range 5.8 (column only) to 20 pJ/bit (15-20 incl. I/O commonly quoted, unconfirmed)"),
         idd2n_over_idd3n=37 / 56, idd2p_over_idd3n=25 / 56),
    _std("DDR4-2400", "DDR4", 2400, 64, 2, _io(_POD, 1.2), _PHY_LP, 8 * _GiB, 2, 8, (1, 2, 4, 8192),
         (17, 12, 17, 17, 17, 39, 56, 4, 6, 7, 8, 36, 3, 9, 9, 18, 9360, 420, 0),
         (9.9, 5.8, 5.2, 376.0, 269.0), (5.8, 20.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure for a DDR4 controller)"),
          "JESD79-4 DDR4-2400R (17-17-17), x16 tRRD/tFAW; DRAMsim3 DDR4_8Gb_x16_2400.ini",
          "core: DDR4-3200 entry's command energies (assumption: same IDD)",
          _SRC_POD_IO.format(label="POD12", q=1.2)),
         idd2n_over_idd3n=37 / 56, idd2p_over_idd3n=25 / 56),
    _std("DDR5-4800", "DDR5", 4800, 32, 4, _io(_POD, 1.1), _PHY_LP, 8 * _GiB, 2, 16, (1, 8, 4, 4096),
         (40, 38, 39, 39, 39, 77, 116, 8, 12, 8, 12, 32, 6, 24, 18, 72, 9360, 708, 312),
         (6.0, 4.9, 4.4, 325.0, 220.0), (4.9, 20.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure for a DDR5 controller)"),
          "JESD79-5 DDR5-4800B (40-39-39), x8 devices, 32-bit subchannel; tRFC1 295 ns / tRFCsb 130 ns (16 Gb)",
          "core: column energies DDR4's x (1.1/1.2)^2 (VDD); ACT, refresh, background: assumptions",
          _SRC_POD_IO.format(label="POD11", q=1.1))),
    _std("LPDDR4-4266", "LPDDR4", 4266, 16, 8, _io(_LP, 1.1), _PHY_LP, 1 * _GiB, 2, 16, (1, 1, 8, 2048),
         (36, 18, 39, 39, 39, 90, 129, 8, 8, 22, 22, 86, 22, 22, 16, 39, 8328, 598, 299),
         (1.7, 6.1, 5.6, 46.0, 40.0), (6.1, 14.0),
         (_SRC_PHY_LP.format(note=""),
          "JESD209-4 LPDDR4-4266: RL 36, WL 18, tRCD/tRPpb 18 ns, tRAS 42 ns, tRRD 10 ns, tFAW 40 ns, tREFI 3.904 us, tRFCab/pb 280/140 ns (8 Gb)",
          "core: DRAMsim3 LPDDR4_8Gb_x16_2400.ini IDD-derived column 6.1/5.6 pJ/bit, ACT+PRE 1.7 nJ; refresh 46 nJ, background 40 mW: assumptions",
          _SRC_LP_IO.format(label="LVSTL 1.1 V", q=1.1),
          "range: 8 pJ/bit (Accelergy plug-in, 'public data') to 14 (DramDSE simulation, via Dongyunkam/DRAM_info)"),
         idd2n_over_idd3n=34 / 47),
    _std("LPDDR4-3200", "LPDDR4", 3200, 16, 8, _io(_LP, 1.1), _PHY_LP, 1 * _GiB, 2, 16, (1, 1, 8, 2048),
         (28, 14, 29, 29, 29, 68, 97, 8, 8, 16, 16, 64, 16, 16, 12, 29, 6246, 448, 224),
         (1.7, 6.1, 5.6, 46.0, 40.0), (6.1, 14.0),
         (_SRC_PHY_LP.format(note=""),
          "JESD209-4 LPDDR4-3200 (RL 28, WL 14); nanosecond timings as LPDDR4-4266",
          "core and I/O energies as LPDDR4-4266"),
         idd2n_over_idd3n=34 / 47),
    _std("LPDDR4X-4266", "LPDDR4X", 4266, 16, 8, _io(_LP, 0.6), _PHY_LP, 1 * _GiB, 2, 16, (1, 1, 8, 2048),
         (36, 18, 39, 39, 39, 90, 129, 8, 8, 22, 22, 86, 22, 22, 16, 39, 8328, 598, 299),
         (1.5, 3.6, 3.3, 40.0, 35.0), (4.0, 8.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure)"),
          "JESD209-4B LPDDR4X-4266 (timings as LPDDR4-4266)", "Warboy LPDDR4X-4266: developer.furiosa.ai",
          "core: command energies an assumption (LPDDR4's, lower for the 0.6 V VDDQ datapath)",
          _SRC_LP_IO.format(label="LVSTL 0.6 V", q=0.6),
          "range ~4-8 pJ/bit (commonly quoted 4-5, unconfirmed)"),
         idd2n_over_idd3n=34 / 47),
    _std("LPDDR5-6400", "LPDDR5", 6400, 16, 8, _io(_LP, 0.5), _PHY_LP, 2 * _GiB, 8, 16, (1, 4, 4, 2048),
         (17, 9, 15, 15, 15, 34, 49, 2, 4, 4, 4, 16, 5, 10, 8, 28, 3124, 224, 112),
         (1.2, 2.5, 2.3, 40.0, 30.0), (3.0, 5.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure; an upper estimate at a 4-7 nm node)"),
          "ramulator2 LPDDR5_6400 preset (JESD209-5B), BG mode; tRFCab/pb 280/140 ns (16 Gb)",
          "core: command energies are assumptions (no public LPDDR5 IDD-based preset)",
          _SRC_LP_IO.format(label="VDDQ 0.5 V, JESD209-5", q=0.5),
          "range ~3-5 pJ/bit (commonly quoted, unconfirmed)")),
    _std("LPDDR5X-8533", "LPDDR5X", 8533, 16, 8, _io(_LP, 0.5), _PHY_LP, 2 * _GiB, 8, 16, (1, 4, 4, 2048),
         (24, 12, 20, 20, 20, 45, 65, 2, 4, 6, 6, 22, 7, 13, 8, 37, 4166, 299, 150),
         (1.1, 2.2, 2.0, 40.0, 30.0), (2.2, 5.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure; an upper estimate at a 4-7 nm node)"),
          "JESD209-5C LPDDR5X-8533 (CK 1066 MHz); nanosecond timings as LPDDR5-6400 (assumption)",
          "core: command energies an assumption (LPDDR5's, column 12 % lower for the faster, shorter-burst datapath)",
          _SRC_LP_IO.format(label="VDDQ 0.5 V as LPDDR5", q=0.5))),
    _std("HBM2-2000", "HBM2", 2000, 128, 8, _io(_HBM, 1.2), _PHY_HBM, 1 * _GiB, 2, 4, (1, 4, 4, 1024),
         (14, 4, 14, 14, 14, 34, 48, 2, 2, 4, 6, 30, 6, 8, 4, 16, 3900, 260, 120),
         (0.828, 1.5703, 2.0859, 60.84, 66.0), (1.6, 7.0),
         (_SRC_PHY_HBM.format(note=" (assumption: the HBM3 figure for an HBM2 PHY)"),
          "DRAMsim3 HBM2_8Gb_x128.ini (timings; IDD0 65, IDD3N 55, IDD2N 40, IDD4R 390, IDD4W 500, IDD5AB 250 mA, VDD 1.2 V); tCCD_S raised to the burst (2)",
          "core: command energies derived from those IDD (a stream ~2.0 pJ/bit; O'Connor et al.'s 3.75 core assumes GPU row locality, 1.21 pJ/bit of it activation)",
          "I/O: 0.22 pJ/bit (O'Connor et al. MICRO 2017 HBM2 breakdown 1.21 + 2.54 + 0.22 = 3.97)",
          "tRFCpb 120 ns: assumption; range 1.6 (column only) to 7 pJ/bit (HyGCN's HBM assumption)"),
         idd2n_over_idd3n=40 / 55, idd2p_over_idd3n=28 / 55),
    _std("HBM2E-3200", "HBM2E", 3200, 128, 8, _io(_HBM, 1.2), _PHY_HBM, 2 * _GiB, 2, 4, (1, 4, 4, 1024),
         (23, 7, 23, 23, 23, 55, 78, 2, 4, 7, 10, 48, 10, 13, 7, 26, 6240, 560, 256),
         (0.828, 1.5703, 2.0859, 80.0, 66.0), (1.8, 4.0),
         (_SRC_PHY_HBM.format(note=" (assumption: the HBM3 figure for an HBM2E PHY)"),
          "JESD235C HBM2E 3.2 Gb/s; nanosecond timings of DRAMsim3 HBM2_8Gb_x128 re-rounded to tCK 0.625 ns (assumption), tRFC 350 ns (16 Gb)",
          "core: command energies as HBM2 (assumption: same IDD), refresh scaled to tRFC",
          "I/O: HBM2's 0.22 pJ/bit (same 1.2 V VDDQ and interposer)",
          "range 1.8 (IDD-derived core) to 4 pJ/bit (~3.5-4 commonly quoted, unconfirmed)"),
         idd2n_over_idd3n=40 / 55, idd2p_over_idd3n=28 / 55),
    _std("HBM2E-3600", "HBM2E", 3600, 128, 8, _io(_HBM, 1.2), _PHY_HBM, 2 * _GiB, 2, 4, (1, 4, 4, 1024),
         (26, 8, 26, 26, 26, 62, 88, 2, 4, 8, 11, 54, 11, 15, 8, 29, 7020, 630, 288),
         (0.828, 1.5703, 2.0859, 80.0, 66.0), (1.8, 4.0),
         (_SRC_PHY_HBM.format(note=" (assumption: the HBM3 figure for an HBM2E PHY)"),
          "HBM2E 3.6 Gb/s (460 GB/s per stack); timings as HBM2E-3200 in ns (assumption)",
          "core and I/O energies as HBM2E-3200"),
         idd2n_over_idd3n=40 / 55, idd2p_over_idd3n=28 / 55),
    _std("HBM3-6400", "HBM3", 6400, 32, 32, _io(_HBM, 0.4), _PHY_HBM, 1 * _GiB, 4, 8, (1, 4, 4, 1024),
         (20, 10, 31, 15, 26, 45, 72, 2, 4, 4, 5, 24, 4, 12, 9, 33, 6240, 560, 256),
         (0.5, 1.3, 1.75, 30.0, 33.0), (1.5, 4.0),
         (_SRC_PHY_HBM.format(note=""),
          "ramulator2 HBM3_6400Mbps preset (JESD238); tRFC 350 ns / tRFCsb 160 ns (8 Gb, ramulator2 HBM3 table)",
          "core: command energies HBM2's scaled down for VDD 1.1 V and the half-size page (assumption)",
          _SRC_HBM_IO.format(label="VDDQ 0.4 V, JESD238", q=0.4),
          "range 1.5 (IDD-scaled core) to 4 pJ/bit (~3-4 commonly quoted, unconfirmed)")),
    _std("HBM3E-9600", "HBM3E", 9600, 32, 32, _io(_HBM, 0.4), _PHY_HBM, int(1.5 * _GiB), 4, 8, (1, 4, 4, 1024),
         (30, 15, 47, 23, 39, 68, 108, 2, 6, 6, 8, 36, 6, 18, 14, 50, 9360, 840, 384),
         (0.5, 1.2, 1.6, 35.0, 33.0), (1.4, 4.0),
         (_SRC_PHY_HBM.format(note=" (assumption: the HBM3 figure at 9.6 Gb/s)"),
          "HBM3E 9.6 Gb/s, 1.2 TB/s per stack; nanosecond timings as HBM3-6400 (assumption)",
          "core: command energies an assumption, HBM3's with the column 8 % lower (vendors claim gains over HBM3, no figure)",
          _SRC_HBM_IO.format(label="VDDQ 0.4 V as HBM3", q=0.4))),
    _std("GDDR6-16000", "GDDR6", 16000, 16, 16, _io(_POD, 1.35), _PHY_LP, 1 * _GiB, 8, 16, (1, 4, 4, 2048),
         (32, 7, 32, 19, 32, 72, 104, 2, 4, 6, 7, 32, 11, 13, 5, 30, 3800, 240, 120),
         (0.7, 5.2, 4.7, 120.0, 270.0), (5.2, 15.0),
         (_SRC_PHY_LP.format(note=" (assumption: the LPDDR4 figure for a GDDR6 controller)"),
          "DRAMsim3 GDDR6_8Gb_x16.ini nanosecond timings and ramulator2 GDDR6 (x16 tRRD, tFAW, tWTR, tREFI 1.9 us) re-rounded to CK 2 GHz",
          "core: DRAMsim3-derived column 5.2/4.7 pJ/bit, ACT 0.7 nJ; refresh, background: assumptions",
          _SRC_POD_IO.format(label="POD135", q=1.35),
          "range: 5.2 (column only) to 15 pJ/bit (a third-party table; vendor-class claims ~7-8 are unconfirmed)",
          "t32AW 277.2 ns: DRAMsim3 GDDR6_8Gb_x16.ini t32AW 420 x tCK 0.66 ns, re-rounded to CK 2 GHz (555 clocks)",
          "tRTRS 1 clock: DRAMsim3 GDDR6_8Gb_x16.ini"),
         t32aw_ns=420 * 0.66),
]
_CATALOG = {e.name.upper(): e for e in _ENTRIES}
_DEFAULT_GRADE: dict[str, DramStandard] = {}
for _e in _ENTRIES:
    _DEFAULT_GRADE.setdefault(_e.family.upper(), _e)


def standard_names() -> list[str]:
    return [e.name for e in _ENTRIES]


def get_standard(name: str) -> DramStandard:
    """Look up ``FAMILY-RATE`` or a bare family; ``KeyError`` names the known standards."""
    key = name.strip().upper()
    if key in _CATALOG:
        return _CATALOG[key]
    if key in _DEFAULT_GRADE:
        return _DEFAULT_GRADE[key]
    raise KeyError(f"unknown DRAM standard {name!r} (known: {', '.join(standard_names())})")
