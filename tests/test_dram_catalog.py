"""The DRAM catalog: every family present, entries self-consistent, overrides validated."""

from __future__ import annotations

import pytest

from npusim.errors import SpecError
from npusim.spec.dram_catalog import get_standard, standard_names

FAMILIES = ("LPDDR4", "LPDDR4X", "LPDDR5", "LPDDR5X", "HBM2", "HBM2E", "HBM3", "HBM3E",
            "GDDR6", "DDR4", "DDR5", "DDR3")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_grade(family: str) -> None:
    s = get_standard(family)
    assert s.family == family
    assert s.name.startswith(family + "-")


@pytest.mark.parametrize("name", standard_names())
def test_entry_is_consistent(name: str) -> None:
    s = get_standard(name)
    t = s.t
    assert s.sources and all(src.strip() for src in s.sources)
    assert t.rc >= t.ras + t.rp
    assert t.ras >= t.rcd
    assert t.faw >= t.rrd_s and t.rrd_l >= t.rrd_s and t.ccd_l >= t.ccd_s
    assert t.refi > t.rfc > 0
    # One burst on the bus every nbl clocks is exactly the peak pin bandwidth.
    assert s.burst_bytes / (t.nbl * t.tck_ns * 1e-9) == pytest.approx(s.channel_bandwidth, rel=1e-3)
    assert s.idle_read_latency_ns == pytest.approx((t.rcd + t.cl + t.nbl) * t.tck_ns, abs=1e-3)
    lo, hi = s.pj_per_bit_range
    assert 0 < lo <= s.pj_per_bit <= hi
    assert s.e.io_pj_per_bit >= 0
    assert s.capacity_per_channel_bytes % (s.row_bytes * s.banks) == 0


def test_lookup_by_name_and_family() -> None:
    assert get_standard("lpddr5-6400").name == "LPDDR5-6400"
    assert get_standard("HBM3").name == "HBM3-6400"
    with pytest.raises(KeyError, match="unknown DRAM standard"):
        get_standard("DDR9")


def test_overrides_replace_timing_and_recompute_derived_fields() -> None:
    s = get_standard("HBM3")
    o = s.with_overrides({"cl": s.t.cl + 4, "default_channels": 16, "pj_per_bit": 5.0})
    assert o.t.cl == s.t.cl + 4 and o.default_channels == 16
    assert o.idle_read_latency_ns == pytest.approx(s.idle_read_latency_ns + 4 * s.t.tck_ns)
    # A new headline moves the I/O share by the difference; the core stays.
    assert o.pj_per_bit == 5.0 and o.core_pj_per_bit == s.core_pj_per_bit
    assert o.e.io_pj_per_bit == pytest.approx(s.e.io_pj_per_bit + 5.0 - s.pj_per_bit, rel=1e-12)
    with pytest.raises(SpecError) as err:
        s.with_overrides({"tcl": 3, "bogus": 1})
    assert set(err.value.paths) == {"tcl", "bogus"}


# tRTRS as DRAMsim3's stock configs set it (umd-memsys/DRAMsim3 configs/*.ini, commit
# 29817593): 1 clock in every DDR3, DDR4, LPDDR4 and GDDR6 config; none in HBM2_8Gb_x128.ini,
# where the simulator's default of 2 applies; no config at all for the other families.
_RTRS_1 = ("DDR3", "DDR4", "LPDDR4", "LPDDR4X", "GDDR6")


@pytest.mark.parametrize("name", standard_names())
def test_rank_switch_follows_the_reference_configs(name: str) -> None:
    s = get_standard(name)
    assert s.t.rtrs == (1 if s.family in _RTRS_1 else 2)


def test_gddr6_32_activate_window_is_the_reference_configs_in_nanoseconds() -> None:
    """GDDR6_8Gb_x16.ini: t32AW = 420 clocks of tCK 0.66 ns = 277.2 ns; the entry runs CK at
    2 GHz (16 Gb/s, 8 transfers per clock), so 277.2 / 0.5 = 554.4, rounded up."""
    s = get_standard("GDDR6-16000")
    assert s.t.tck_ns == pytest.approx(8 * 1e3 / 16000)
    assert s.t.t32aw == 555
    assert all(get_standard(n).t.t32aw == 0 for n in standard_names() if not n.startswith("GDDR"))
