"""The cycle DRAM model against a cycle-accurate reference controller (DRAMSim3).

tests/dram_reference.py rebuilds DRAMSim3's stock HBM2_8Gb_x128 and LPDDR4_8Gb_x16_2400
configurations (commit 29817593) and the patterns of its reference table; the expected
values are DRAMSim3's own measurements (an external figure, not our output). Nothing is
fitted to them: every parameter is the config's or a stated JEDEC / DRAMSim3 rule.

Tolerances: bandwidth 10 %, idle (unloaded) latency 5 %, loaded (queueing) latency 15 %,
row-hit rate 0.05 absolute. The 16 MiB patterns are run whole (the detailed path, no
extrapolation).
"""

from __future__ import annotations

import pytest

from tests.dram_reference import CONFIGS, PATTERNS, REFERENCE, measure, standard

CASES = [(c, p) for c in REFERENCE for p in PATTERNS]
LOADED = ("seq_read", "rand_read", "mix_2r1w", "mix_2r1w_aligned", "tile_read")
# HBM2 random reads: -19 % (536 vs 662 ns; medians 179 vs 358). The gap is how evenly a
# channel's 16 bank queues drain, which sets how many requests a channel whose queues are
# full holds (npusim ~80; ~95 under the reference's rule, tests/dram_percycle.py) and so
# how the 8 channels share the 512-entry window. npusim decides a request at a time, its
# PREs off the command bus; on random reads its requests are committed in ACT order, so
# its round robin resumes after the bank of the ACT just placed: with the rest of that
# bank group held by tRRD_L it skips to the next group's first bank, and the last bank of
# each group waits longest (channel 0: 0.12-0.13 us vs 0.9-1.7 us mean). The reference
# arbitrates every clock: PREs are commands like ACTs and RDs, taking a slot in its round
# robin (where they can delay an ACT), and each command it issues moves its pointer. tests/dram_percycle.py replays that rule on the same trace and front
# end: 627 / 332 ns (reference 662 / 358); take either part out and it falls most of the
# way to npusim's: pointer moved by ACTs only 560 / 206, PREs off the bus 566 / 220.
# Closing it needs clock-by-clock command arbitration with PREs on the bus, which the
# request-level kernel does not have (rotating from its latest command before the
# contested one, PREs still off the bus, gives 546-551 ns).
_LOADED_GAP = {("HBM2_8Gb_x128", "rand_read")}


@pytest.mark.slow
def test_percycle_sketch_of_the_reference_arbitration_explains_the_gap() -> None:
    """The diagnosis behind ``_LOADED_GAP``, checked: replaying the reference's clock-by-clock
    arbitration on HBM2 random reads lands within 15 % of its loaded latency, mean and
    median; moving the pointer on ACTs only (npusim's effective rotation), or taking the
    PREs off the command bus (as npusim places them), each lowers both, the median out of
    the 15 % band, as npusim's."""
    from tests.dram_percycle import run

    _, avg, p50, _, _ = REFERENCE["HBM2_8Gb_x128"]["rand_read"]
    assert avg is not None and p50 is not None
    full = run()
    assert full["avg_ns"] == pytest.approx(avg, rel=0.15)
    assert full["p50_ns"] == pytest.approx(p50, rel=0.15)
    for reduced in (run(pointer="act"), run(pre_on_bus=False)):
        assert reduced["avg_ns"] < full["avg_ns"]
        assert reduced["p50_ns"] < 0.85 * p50


@pytest.fixture(scope="module")
def figures() -> dict[tuple[str, str], dict[str, float]]:
    return {case: measure(*case) for case in CASES}


@pytest.mark.parametrize(("config", "pattern"), CASES)
def test_bandwidth_within_10_percent(figures, config: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    ref = REFERENCE[config][pattern][0]
    assert figures[config, pattern]["gbps"] == pytest.approx(ref, rel=0.10)


@pytest.mark.parametrize(("config", "pattern"), CASES)
def test_row_hit_rate_within_005(figures, config: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    ref = REFERENCE[config][pattern][3]
    assert figures[config, pattern]["hit"] == pytest.approx(ref, abs=0.05)


@pytest.mark.parametrize("config", list(REFERENCE))
@pytest.mark.parametrize("pattern", ["idle_seq", "idle_rand"])
def test_idle_latency_within_5_percent(figures, config: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    _, avg, p50, _, _ = REFERENCE[config][pattern]
    got = figures[config, pattern]
    assert got["avg_ns"] == pytest.approx(avg, rel=0.05)
    assert got["p50_ns"] == pytest.approx(p50, rel=0.05)


@pytest.mark.parametrize(("config", "pattern"), [
    pytest.param(c, p, marks=pytest.mark.xfail(strict=True, reason="see _LOADED_GAP"))
    if (c, p) in _LOADED_GAP else (c, p) for c in REFERENCE for p in LOADED])
def test_loaded_latency_within_15_percent(figures, config: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    """Mean read latency from acceptance to data on the saturating patterns: queueing in the
    transaction queue and in the per-bank command queues behind it."""
    avg = REFERENCE[config][pattern][1]
    assert avg is not None
    assert figures[config, pattern]["avg_ns"] == pytest.approx(avg, rel=0.15)


@pytest.mark.parametrize("config", list(REFERENCE))
def test_idle_latency_is_the_timing_sum_plus_the_controller_clock(figures, config: str) -> None:  # type: ignore[no-untyped-def]
    """Independent of the reference's figures: an idle row hit costs CL + burst + 1 clock;
    an idle random read finds its bank closed (refresh closed it: tRCD + CL + burst + 1) or
    open on another row (tRP more), so its median is one of the two; waits for tRAS and
    refresh put the mean above the closed-bank figure, not necessarily below a conflict."""
    c = CONFIGS[config]
    hit = (c["cl"] + c["burst_cycles"] + 1) * c["tck"]
    closed = (c["rcd"] + c["cl"] + c["burst_cycles"] + 1) * c["tck"]
    conflict = closed + c["rp"] * c["tck"]
    assert figures[config, "idle_seq"]["p50_ns"] == pytest.approx(hit, abs=c["tck"] / 2)
    p50 = figures[config, "idle_rand"]["p50_ns"]
    assert p50 == pytest.approx(closed, abs=0.1) or p50 == pytest.approx(conflict, abs=0.1)
    assert figures[config, "idle_rand"]["avg_ns"] > closed


@pytest.mark.parametrize("config", list(REFERENCE))
def test_rebuilt_config_has_the_reference_peak_and_command_energies(config: str) -> None:
    """The rebuilt standard against the reference's own derived columns: peak GB/s and the
    IDD-derived energies (pJ per ACT, per read burst, per REF)."""
    peaks = {"HBM2_8Gb_x128": 256.0, "LPDDR4_8Gb_x16_2400": 19.277}
    energies = {"HBM2_8Gb_x128": (828.0, 804.0, 60840.0),
                "LPDDR4_8Gb_x16_2400": (6956.06, 6246.91, 363882.6)}
    std = standard(config)
    c = CONFIGS[config]
    peak = std.burst_bytes * c["channels"] / (c["burst_cycles"] * c["tck"])
    assert peak == pytest.approx(peaks[config], rel=1e-3)
    assert std.channel_bandwidth * c["channels"] / 1e9 == pytest.approx(peak, rel=1e-3)
    act, rd, ref = energies[config]
    assert std.e.act_pre_nj * 1e3 == pytest.approx(act, rel=1e-4)
    assert std.e.read_pj_per_bit * std.burst_bytes * 8 == pytest.approx(rd, rel=1e-4)
    assert std.e.refresh_nj * 1e3 == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize(("config", "pattern"), CASES)
def test_core_energy_per_bit_within_5_percent(figures, config: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    """The same IDD formulas on both sides, so this checks the command counts and the
    active / precharged standby split (idle patterns are mostly background)."""
    ref = REFERENCE[config][pattern][4]
    assert figures[config, pattern]["pj_per_bit"] == pytest.approx(ref, rel=0.05)
