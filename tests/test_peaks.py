"""Every precision a preset advertises reaches its peak on a large GEMM with its own ports.

For each preset in arch/ and each precision in its ``systolic.macs_per_cycle``, one
4096 x 4096 x 4096 matmul with both operands in that precision runs on the preset as
shipped, with the ideal memory (no DRAM limit: the question is whether the scratchpad and
accumulator ports can feed the arrays), and again with the preset's DRAM (tiled to fit the
scratchpad). The checks:

* no SRAM-port stall beyond 1 %, in either run: the array's time with its ports
  (``array_cycles``) is within 1 % of its time with ideal ports (``compute_cycles``);
* with the ideal memory, the utilization is that of the fold model itself, derived here from the fold formula
  (npusim/kernels/systolic.py's table, restated below) for the per-core GEMM of the better
  of the M and N splits: whatever is lost is fill, drain and ragged folds, not ports.

A preset that cannot feed a precision says why in an ``assumptions:`` entry, and is listed
in SKIP with that reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import npusim
from npusim.spec.arch import Chip
from npusim.workloads.formats import BLOCK_FORMATS
from npusim.workloads.ir import Matmul, Workload

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (ROOT / "arch").glob("*.yaml"))
SIZE = 4096
#: (preset, precision) -> why the preset's ports cannot feed it (quoted from its assumptions)
SKIP: dict[tuple[str, str], str] = {}


def _cases() -> list[tuple[str, str]]:
    out = []
    for name in PRESETS:
        chip = npusim.load_arch(ROOT / "arch" / f"{name}.yaml")
        out += [(name, p) for p in chip.cores.core.systolic.macs_per_cycle]
    return out


def _ws_cycles(m: int, n: int, k: int, chip: Chip, rate: float) -> float:
    """Weight-stationary fold model: K on the R rows, N on the C columns, M streamed; the
    folds dealt round-robin to the arrays. Serial preload: every fold pays 2R + C + M - 2.
    Overlapped: the first block's R, then each stream of M (or the R-cycle block load when
    longer), then one skew of R + C - 2. A PE doing ``rate`` MACs a cycle divides the time."""
    sa = chip.cores.core.systolic
    r, c = sa.rows, sa.cols
    folds = math.ceil(k / r) * math.ceil(n / c)
    rounds = math.ceil(folds / sa.count)
    if sa.preload == "overlapped" and rounds > 1:
        cycles = r + m + (rounds - 1) * max(m, r) + r + c - 2
    else:
        cycles = rounds * (2 * r + c + m - 2)
    return math.ceil(cycles / rate)


@pytest.mark.parametrize(("preset", "precision"), _cases())
def test_advertised_peak_is_reachable(preset: str, precision: str) -> None:
    if (preset, precision) in SKIP:
        pytest.skip(SKIP[preset, precision])
    chip = npusim.load_arch(ROOT / "arch" / f"{preset}.yaml")
    sa = chip.cores.core.systolic
    assert sa.dataflow == "ws", "the fold formula here is the weight-stationary one"
    rate = sa.macs_per_cycle[precision]  # type: ignore[index]
    # A block-scaled format is a weight format: its rate is the one the array computes it
    # at beside activations no wider (int4).
    act = "int4" if precision in BLOCK_FORMATS else precision
    wl = Workload("gemm", (Matmul("gemm", m=SIZE, n=SIZE, k=SIZE, act_precision=act,
                                  weight_precision=precision, out_precision=act),))
    row = npusim.simulate(chip, wl, memory="ideal").layers.iloc[0]
    assert row["precision"] == precision
    # compute_cycles is SCALE-Sim's 0-based last cycle: one less than the count.
    assert row["array_cycles"] <= 1.01 * (row["compute_cycles"] + 1), "SRAM-port stalls"
    cores = chip.n_cores
    part = math.ceil(SIZE / cores)
    ideal_cycles = min(_ws_cycles(part, SIZE, SIZE, chip, rate),
                       _ws_cycles(SIZE, part, SIZE, chip, rate))
    peak = cores * sa.rows * sa.cols * sa.count * rate
    ideal_util = SIZE ** 3 / (ideal_cycles * peak)
    assert ideal_util > 0.9  # a GEMM this large keeps the fold model's arrays busy
    assert row["utilization"] == pytest.approx(ideal_util, rel=0.01)
    # With the preset's DRAM the tiler cuts the GEMM to fit the scratchpad; its tiles must
    # not stall on the ports either.
    row = npusim.simulate(chip, wl).layers.iloc[0]
    assert row["array_cycles"] <= 1.01 * (row["compute_cycles"] + 1), "SRAM-port stalls"
