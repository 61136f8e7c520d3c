"""Which DRAM channel a transfer starts on, in both event models, counted by hand.

The bandwidth model deals a transfer over the channels in ``interleave``-byte chunks,
round-robin, starting at the channel of its address: ``(addr // interleave) % channels``.
The SimPy model (npusim.engine.memory.BandwidthDram, driven by npusim.engine.events) and the
compiled one (npusim.kernels.events.bandwidth_transfer) must both do so; their twin test
cannot tell if both start on the wrong channel, so these expectations are written out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import npusim
from npusim.compiler.program import COL, TILE_COLUMNS, LayerProgram, TileProgram
from npusim.engine.events import run_program
from npusim.engine.memory import BandwidthDram
from npusim.kernels.events import bandwidth_transfer

ROOT = Path(__file__).resolve().parent.parent
CH, BW, IL = 4, 1e9, 256  # 4 channels of 1 GB/s (1 ns per byte), 256 B interleave


def _simpy_transfer() -> tuple[object, object]:
    mem = BandwidthDram(CH, BW, 0.0, 5.0, interleave_bytes=IL)
    return mem, lambda t, n, a: mem.transfer(t, n, a, False, 0)


def _kernel_transfer() -> tuple[object, object]:
    state, busy = np.zeros(3), np.zeros(CH)
    return state, lambda t, n, a: bandwidth_transfer(t, n, a, False, state, busy, BW,
                                                     BW * CH, 0.0, IL)


@pytest.mark.parametrize("make", [_simpy_transfer, _kernel_transfer], ids=["simpy", "kernel"])
def test_a_transfer_starts_on_its_address_channel(make) -> None:
    _, transfer = make()
    # 600 B at address 2 x 256 + 10 (channel 2): chunks of 256 B to channels 2 and 3, the
    # 88 B left over to the next one, channel 0. Channel 1 carries nothing.
    end = transfer(0.0, 600, 2 * IL + 10, )
    assert end == pytest.approx(256e-9, rel=1e-12)  # channels 2 and 3 each carry 256 B
    # A 1-byte probe on each channel (address c x 256) queues behind what that channel holds.
    held = {0: 88, 1: 0, 2: 256, 3: 256}
    for c in range(CH):
        assert transfer(0.0, 1, c * IL) == pytest.approx((held[c] + 1) * 1e-9, rel=1e-12), c


@pytest.mark.parametrize("make", [_simpy_transfer, _kernel_transfer], ids=["simpy", "kernel"])
def test_addresses_one_stripe_apart_wrap_to_the_same_channel(make) -> None:
    _, transfer = make()
    assert transfer(0.0, IL, 3 * IL) == pytest.approx(256e-9, rel=1e-12)  # channel 3
    # 7 x 256 + 100: (7) % 4 = channel 3 again, so it waits for the first.
    assert transfer(0.0, IL, 7 * IL + 100) == pytest.approx(512e-9, rel=1e-12)
    # 8 x 256: channel 0, idle.
    assert transfer(0.0, IL, 8 * IL) == pytest.approx(256e-9, rel=1e-12)


def _two_core_program(addr1: int) -> TileProgram:
    """Two cores, one tile each: a 256 B load and nothing else; core 0 reads address 0."""
    tiles = []
    for addr in (0, addr1):
        t = np.zeros((1, len(TILE_COLUMNS)))
        t[0, COL["dram_read_bytes"]] = IL
        t[0, COL["read_addr"]] = addr
        tiles.append(t)
    return TileProgram("chip", "probe", 2, (LayerProgram(0, "l", "tile", "array",
                                                        tuple(tiles)),))


def _chip() -> npusim.Chip:
    data = npusim.load_arch(ROOT / "arch" / "tpu_v1.yaml").model_dump()
    data["cores"]["count"] = 2
    return npusim.Chip.model_validate(data)


@pytest.mark.parametrize("compiled", [False, True], ids=["simpy", "kernel"])
@pytest.mark.parametrize(("addr1", "shares_channel"), [
    (0, True), (4 * IL + 3, True), (IL, False), (3 * IL, False), (5 * IL + 255, False)])
def test_event_models_contend_only_on_a_shared_channel(compiled, addr1, shares_channel) -> None:
    """Both loads start at 0; 256 B take 256 ns on one channel. On the same channel the
    second waits for the first (the layer ends at 512 ns), on another both end at 256 ns."""
    mem = BandwidthDram(CH, BW, 0.0, 5.0, interleave_bytes=IL)
    stats, _ = run_program(_chip(), _two_core_program(addr1), mem, compiled=compiled)
    end = stats[0].end_s - stats[0].start_s
    assert end == pytest.approx((512e-9 if shares_channel else 256e-9), rel=1e-9)


def test_channel_numbers_themselves_simpy() -> None:
    """The channel index each share lands on (a timeline shows it; a rotation of every
    channel number would leave the timings above unchanged)."""
    mem = BandwidthDram(CH, BW, 0.0, 5.0, interleave_bytes=IL, record=True)
    mem.transfer(0.0, 600, 2 * IL + 10, False, 0)
    assert mem.records is not None
    assert sorted((c, b) for c, _, _, b, _ in mem.records) == [(0, 88.0), (2, 256.0), (3, 256.0)]
    mem.records.clear()
    mem.transfer(0.0, 1, 13 * IL + 255, False, 0)  # chunk 13 → channel 13 % 4 = 1
    assert [c for c, *_ in mem.records] == [1]


def test_channel_numbers_themselves_kernel() -> None:
    state, busy = np.zeros(3), np.zeros(CH)
    bandwidth_transfer(0.0, 600, 2 * IL + 10, False, state, busy, BW, BW * CH, 0.0, IL)
    assert busy.tolist() == pytest.approx([88e-9, 0.0, 256e-9, 256e-9], rel=1e-12)
    busy[:] = 0.0
    bandwidth_transfer(0.0, 1, 13 * IL + 255, False, state, busy, BW, BW * CH, 0.0, IL)
    assert busy.tolist() == pytest.approx([0.0, 1e-9, 0.0, 0.0], rel=1e-12)
