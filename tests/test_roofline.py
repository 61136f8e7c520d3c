"""The ``bound`` label of a layer: the largest term, memory only past a stated margin.

``bound_label`` is checked on a table whose rows sit on each side of the margin; then two
whole runs: ResNet-50 on TPU v1 with ideal memory (infinite bandwidth, so no layer can be
memory-bound and no layer stalls), and one hand-built layer whose DRAM time dwarfs its
compute time, which must still be called memory-bound.
"""

from __future__ import annotations

import pytest

import npusim
from npusim.engine.roofline import MEMORY_MARGIN, RooflineTimes, bound_label
from npusim.spec.arch import Chip
from npusim.workloads.ir import Matmul, Workload


@pytest.mark.parametrize(("compute", "memory", "vector", "label"), [
    (100.0, 0.0, 0.0, "compute"),
    (0.0, 0.0, 100.0, "vector"),
    (100.0, 0.0, 100.0, "compute"),  # a tie between units goes to the array
    (0.0, 0.0, 0.0, "compute"),
    (0.0, 1e-9, 0.0, "memory"),  # nothing else to do: any DRAM time bounds it
    (100.0, 100.0 + 3e-12, 0.0, "compute"),  # float residue above compute
    (100.0, 104.0, 0.0, "compute"),  # 4 % over: within the margin, balanced
    (100.0, 106.0, 0.0, "memory"),  # 6 % over: memory-bound
    (40.0, 104.0, 100.0, "vector"),  # margin is over the larger of the busy units
    (40.0, 106.0, 100.0, "memory"),
])
def test_bound_label_table(compute: float, memory: float, vector: float, label: str) -> None:
    assert MEMORY_MARGIN == 0.05  # the table's 4 % / 6 % rows straddle it
    assert bound_label(compute, memory, vector) == label
    assert RooflineTimes(compute, memory, vector).bound == label


@pytest.fixture(scope="module")
def resnet_ideal() -> npusim.Result:
    return npusim.simulate("tpu_v1", npusim.workloads.resnet50(), memory="ideal")


def test_ideal_memory_makes_no_layer_memory_bound(resnet_ideal: npusim.Result) -> None:
    df = resnet_ideal.layers
    assert len(df) == 72
    assert (df["bound"] == "memory").sum() == 0
    assert resnet_ideal.summary()["bound_memory_layers"] == 0
    # With ideal memory a one-core layer with no vector work is its array time exactly:
    # no DMA wait exists, so any stall left is float residue and must read 0.
    only_array = df[df["vector_cycles"] == 0]
    assert len(only_array) > 0
    assert (only_array["stall_cycles"] == 0.0).all()
    assert float(df.loc[df["layer"] == "layer2.0.downsample", "stall_cycles"].iloc[0]) == 0.0


def test_ideal_memory_roofline_has_no_memory_bound_layer() -> None:
    res = npusim.simulate("tpu_v1", npusim.workloads.resnet50(), memory="ideal",
                          fidelity="roofline")
    assert (res.layers["bound"] == "memory").sum() == 0


def test_hand_built_memory_bound_layer_is_labelled_memory() -> None:
    """A 64x64x64 int8 matmul on TPU v1 with its DRAM slowed to 1 MB/s."""
    data = npusim.load_arch("tpu_v1").model_dump()
    data["dram"]["bandwidth"] = 1e6
    chip = Chip.model_validate(data)
    m = n = k = 64
    wl = Workload("one", (Matmul("mm", m=m, n=n, k=k),))
    res = npusim.simulate(chip, wl, weights_resident=False)
    row = res.layers.iloc[0]
    # Compute, bounded from above by hand: one weight-stationary fold of a 256x256 array,
    # 2R + C + M - 2 cycles (docs/model.md), at 700 MHz.
    compute_s = (2 * 256 + 256 + m - 2) / 700e6
    # Memory, bounded from below: at least B (the weights) comes from DRAM at 1 MB/s.
    memory_s = k * n / 1e6
    assert memory_s > 1000 * compute_s
    assert row["dram_read_bytes"] >= k * n
    assert row["bound"] == "memory"
    assert row["latency_s"] >= memory_s
