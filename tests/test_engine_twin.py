"""The compiled event model (npusim.kernels.events) against its twin, the SimPy model.

They must agree exactly (==, not approximately): the kernel replays the SimPy processes
event for event, with SimPy's tie order, and the same floating-point operations.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npusim
from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TILE_COLUMNS, LayerProgram, TileProgram
from npusim.engine.dram import CycleDram
from npusim.engine.events import LayerStats, compiled_model, run_program
from npusim.engine.memory import BandwidthDram, IdealMemory, MemoryModel, make_memory
from npusim.workloads.cnn import resnet50
from npusim.workloads.llm import from_hf_config

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (ROOT / "arch").glob("*.yaml"))
COL = {c: i for i, c in enumerate(TILE_COLUMNS)}


def _both(chip: npusim.Chip, program: TileProgram, make: Any
          ) -> tuple[list[LayerStats], list[LayerStats], MemoryModel, MemoryModel]:
    m_simpy, m_kernel = make(), make()
    a, _ = run_program(chip, program, m_simpy, compiled=False)
    b, _ = run_program(chip, program, m_kernel, compiled=True)
    return a, b, m_simpy, m_kernel


def _assert_same(a: list[LayerStats], b: list[LayerStats], ma: MemoryModel,
                 mb: MemoryModel) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert dataclasses.asdict(x) == dataclasses.asdict(y), x.index
    assert ma.counters() == mb.counters()
    if isinstance(ma, BandwidthDram) and isinstance(mb, BandwidthDram):
        assert ma._floor == mb._floor
        assert {c: t for c, t in ma._busy.items() if t > 0} == mb._busy


def _chip(dma_bytes_per_cycle: float | None = None, cores: int = 1,
          noc: tuple[float, float] | None = (64.0, 20.0)) -> npusim.Chip:
    data = npusim.load_arch(ROOT / "arch" / "tpu_v1.yaml").model_dump()
    data["cores"]["count"] = cores
    data["cores"]["core"]["dma"]["bytes_per_cycle"] = dma_bytes_per_cycle
    if noc is not None:
        data["noc"] = {"bytes_per_cycle": noc[0], "latency_cycles": noc[1], "multicast": True}
    return npusim.Chip.model_validate(data)


@st.composite
def tile_arrays(draw: Any, n: int) -> np.ndarray:
    t = np.zeros((n, len(TILE_COLUMNS)))
    for i in range(n):
        arr = draw(st.sampled_from([0.0, 1.0, 7.0, 64.0, 1000.0, 4096.5]))
        t[i, COL["array_cycles"]] = arr
        t[i, COL["compute_cycles"]] = arr * draw(st.sampled_from([1.0, 0.75, 0.5]))
        t[i, COL["macs"]] = arr * draw(st.sampled_from([0.0, 100.0, 65536.0]))
        t[i, COL["vector_cycles"]] = draw(st.sampled_from([0.0, 3.0, 500.0, 5000.0]))
        # Below, at and above one interleave stripe of the memories the tests build.
        t[i, COL["dram_read_bytes"]] = draw(st.sampled_from(
            [0.0, 0.5, 100.0, 256.0, 1000.0, 4096.0, 70_000.0, 1_000_000.0]))
        t[i, COL["dram_write_bytes"]] = draw(st.sampled_from([0.0, 0.0, 64.0, 2048.0, 9000.0]))
        t[i, COL["read_addr"]] = draw(st.integers(0, 1 << 30))
        t[i, COL["write_addr"]] = draw(st.integers(0, 1 << 30))
        # Bytes from other cores over the NoC: none, hidden by the DRAM part, or longer.
        t[i, COL["noc_read_bytes"]] = draw(st.sampled_from([0.0, 0.0, 10.0, 3000.0, 500_000.0]))
    return t


@st.composite
def programs(draw: Any) -> TileProgram:
    cores = draw(st.integers(1, 4))
    symmetric = draw(st.booleans())  # identical cores: ties in simulated time everywhere
    layers = []
    for li in range(draw(st.integers(1, 3))):
        per_core: list[np.ndarray] = []
        for _ in range(cores):
            if symmetric and per_core:
                per_core.append(per_core[0].copy())
            else:
                per_core.append(draw(tile_arrays(draw(st.integers(0, 6)))))
        layers.append(LayerProgram(li, f"l{li}", "tile", "array", tuple(per_core),
                                   precision=draw(st.sampled_from(["int8", "fp32"]))))
    return TileProgram("chip", "random", cores, tuple(layers))


memories = st.sampled_from([
    lambda: IdealMemory(1.0),
    lambda: BandwidthDram(1, 1e9, 0.0, 5.0),
    lambda: BandwidthDram(2, 8e9, 1e-7, 5.0, interleave_bytes=64),
    lambda: BandwidthDram(4, 3e9, 5e-8, 5.0),
    lambda: BandwidthDram(32, 2e10, 1.2e-7, 5.0, interleave_bytes=256),
])


@given(programs(), memories, st.sampled_from([None, 16.0, 256.0]),
       st.sampled_from([(64.0, 20.0), (4096.0, 0.0), (1.0, 500.0)]))
def test_kernel_equals_simpy_on_random_programs(program, make, dma, noc):
    chip = _chip(dma, program.n_cores, noc)
    _assert_same(*_both(chip, program, make))


@given(programs(), programs())
def test_memory_state_carries_between_runs(p1, p2):
    """A memory model used by one run and then another: the kernel takes and returns its
    state, so the second run sees what the first left behind."""
    chip = _chip(None, max(p1.n_cores, p2.n_cores))
    ma, mb = BandwidthDram(4, 3e9, 5e-8, 5.0), BandwidthDram(4, 3e9, 5e-8, 5.0)
    for p in (p1, p2):
        a, _ = run_program(chip, p, ma, compiled=False)
        b, _ = run_program(chip, p, mb, compiled=True)
        _assert_same(a, b, ma, mb)


@pytest.mark.parametrize("preset", PRESETS)
def test_kernel_equals_simpy_on_presets(preset):
    chip = npusim.load_arch(ROOT / "arch" / f"{preset}.yaml")
    llm = from_hf_config(ROOT / "workloads" / "hf" / "llama2_7b.json", phase="decode", batch=1,
                         weights="int8", context_len=512)
    for wl in (resnet50(), llm):
        program = compile_workload(chip, wl)
        _assert_same(*_both(chip, program, lambda: make_memory(chip, "bandwidth")))
    program = compile_workload(chip, resnet50(), ideal=True)
    _assert_same(*_both(chip, program, lambda: make_memory(chip, "ideal")))


def test_which_runs_use_the_kernel():
    chip = npusim.load_arch(ROOT / "arch" / "tpu_v1.yaml")
    assert compiled_model(BandwidthDram.from_chip(chip)) is not None
    assert compiled_model(IdealMemory()) is not None
    assert compiled_model(BandwidthDram.from_chip(chip), trace=True) is None
    assert compiled_model(BandwidthDram.from_chip(chip, record=True)) is None
    assert compiled_model(CycleDram.from_chip(chip)) is None

    class Mine(BandwidthDram):  # a user's model may change transfer(): SimPy runs it
        pass

    assert compiled_model(Mine(1, 1e9, 0.0, 1.0)) is None
    program = compile_workload(chip, resnet50())
    with pytest.raises(ValueError, match="cannot run CycleDram"):
        run_program(chip, program, CycleDram.from_chip(chip), compiled=True)


def test_traced_run_equals_untraced():
    """A trace makes the SimPy model run; its figures equal the kernel's untraced run."""
    chip = npusim.load_arch(ROOT / "arch" / "warboy.yaml")
    wl = resnet50()
    traced = npusim.simulate(chip, wl, trace=True)
    plain = npusim.simulate(chip, wl)
    assert traced.events and not plain.events
    cols = ["latency_s", "energy_j", "dram_read_bytes", "time_dma_exposed_s", "time_mac_s"]
    assert traced.layers[cols].equals(plain.layers[cols])
