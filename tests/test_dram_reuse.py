"""The DRAM fast path for repeated transfers (npusim/dram/reuse.py) against the detailed path.

Every expected value is the detailed controller's own answer for the same requests (the fast
path switched off), or a count from first principles (refreshes = elapsed time / tREFI).
"""

from __future__ import annotations

import numpy as np
import pytest

from npusim.dram.system import DramSystem
from npusim.engine.dram import CycleDram
from npusim.inputs import resolve_chip
from npusim.kernels import dram as K
from npusim.simulate import simulate
from npusim.spec.dram_catalog import get_standard
from npusim.workloads import resnet50


def _cores(std_name: str, fast: bool, sizes: tuple[int, ...], per_core: int, cores: int = 4,
           channels: int | None = None, refresh: str = "all-bank"
           ) -> tuple[DramSystem, int]:
    """``cores`` DMA streams, each with one transfer in flight (the next is issued when the
    previous completes, as a core's double buffer does), over regions 64 MiB apart, sizes
    taken in turn: the shape of an LLM decode step's weight reads. Returns (system, end)."""
    d = DramSystem(get_standard(std_name), channels, fast_path=fast, refresh=refresh)
    ready = [0] * cores
    pos = [c * (64 << 20) for c in range(cores)]
    end = 0
    for i in range(per_core * cores):
        c = min(range(cores), key=lambda k: (ready[k], k))  # the core whose load returns first
        size = sizes[(i // cores) % len(sizes)]
        done = d.stream(pos[c], size, False, ready[c])
        pos[c] += size // 2  # tiles of a weight matrix overlap in rows, as the compiler's do
        ready[c] = done
        end = max(end, done)
    if d.reuse is not None:
        d.reuse.settle()
    return d, end


@pytest.mark.parametrize("std_name", ["LPDDR5X-8533", "HBM3-6400", "LPDDR4X-4266"])
def test_reuse_agrees_with_detailed_on_four_core_streams(std_name: str) -> None:
    sizes = (88064, 32768, 88064, 16384)
    fast, f_end = _cores(std_name, True, sizes, 60)
    slow, s_end = _cores(std_name, False, sizes, 60)
    assert fast.reuse is not None and fast.reuse.reused > 120  # most transfers reused
    assert slow.reuse is None
    assert fast.read_bytes == slow.read_bytes
    assert f_end == pytest.approx(s_end, rel=0.02)
    fe, se = fast.energy(f_end), slow.energy(s_end)
    assert fe.total_j == pytest.approx(se.total_j, rel=0.02)
    # Row misses are a shape's mean over its samples, not this transfer's own: within 15 %
    # (a small share of the energy; the total above is the promise).
    assert fe.activate_j == pytest.approx(se.activate_j, rel=0.15)
    assert fe.refresh_j == pytest.approx(se.refresh_j, rel=0.05)
    assert fast.latency_mean() == pytest.approx(slow.latency_mean(), rel=0.05)


def test_reuse_keeps_the_refresh_clock() -> None:
    """Reused transfers shift the controller clocks but not the refresh schedule: a channel
    busy for T cycles refreshes T / tREFI times (a clock that moved with the shift would
    lose the refreshes of every reused transfer)."""
    std = get_standard("LPDDR5X-8533")
    d, end = _cores("LPDDR5X-8533", True, (65536,), 150)
    assert d.reuse is not None and d.reuse.reused > 300
    refreshes = d.counts()[K.N_REF] / d.channels
    assert abs(refreshes - end / std.t.refi) <= 1.0


def test_reuse_follows_a_stream_whose_rate_steps() -> None:
    """One core streaming consecutive 64 KiB transfers, each issued when the last completes:
    the detailed controller takes 560 cycles for the first four and 580 from then on (the
    stream has left the banks it started in). The warm-up samples see only the first rate;
    the early checks must catch the step, or the whole stream is 3 % short."""
    def run(fast: bool) -> tuple[DramSystem, int]:
        d = DramSystem(get_standard("LPDDR5X-8533"), fast_path=fast, refresh="none")
        t = 0
        for i in range(100):
            t = d.stream(i * 65536, 65536, False, t)
        return d, t

    fast, f_end = run(True)
    _, s_end = run(False)
    assert fast.reuse is not None and fast.reuse.reused > 50
    assert f_end == pytest.approx(s_end, rel=0.005)


def test_settle_leaves_the_rows_the_last_transfer_opened() -> None:
    """After reused transfers the banks hold the rows of the last bursts sent to them,
    as the detailed path leaves them."""
    fast, _ = _cores("LPDDR5X-8533", True, (65536,), 40, cores=1, refresh="none")
    slow, _ = _cores("LPDDR5X-8533", False, (65536,), 40, cores=1, refresh="none")
    assert fast.reuse is not None and fast.reuse.reused > 0
    np.testing.assert_array_equal(fast.bs[:, :, K.B_ROW], slow.bs[:, :, K.B_ROW])


@pytest.mark.parametrize("chip_name", ["warboy", "rngd"])
def test_engine_fast_path_agrees_with_detailed_on_resnet50(chip_name: str) -> None:
    """ResNet-50 batch 1 streams its weights (these chips cannot hold them): latency and
    DRAM energy of the whole run within 2 % of the detailed path."""
    chip = resolve_chip(chip_name)
    fast_mem = CycleDram.from_chip(chip)
    fast = simulate(chip, resnet50(), memory=fast_mem).summary()
    slow = simulate(chip, resnet50(), memory=CycleDram.from_chip(chip, fast_path=False)
                    ).summary()
    assert fast_mem.system.reuse is not None and fast_mem.system.reuse.reused > 100
    assert fast["dram_read_bytes"] == slow["dram_read_bytes"]
    assert fast["latency_s"] == pytest.approx(slow["latency_s"], rel=0.02)
    assert fast["energy_dram_j"] == pytest.approx(slow["energy_dram_j"], rel=0.02)
