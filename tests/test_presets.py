"""Every chip preset under arch/ loads, cites sources and matches its published figures.

Published figures (peak ops per second at a precision, DRAM bandwidth, DRAM capacity) are
the vendors' public specifications cited in each preset's ``sources``.
Chips whose figure is unpublished or unconfirmed (SAPEON X220 compute and bandwidth, the
LPDDR/HBM LLM chips) are left out of the matching, not fitted.
"""

from __future__ import annotations

import pytest

from npusim.presets import ARCH_DIR, list_presets
from npusim.spec.arch import load_arch

SEED = ["atom", "warboy", "rngd", "x220", "tpu_v1", "tpu_v4", "lpddr_llm", "hbm_llm"]

# preset: ({precision: published peak ops/s}, published DRAM bytes/s or None, capacity bytes)
PUBLISHED: dict[str, tuple[dict[str, float], float | None, float | None]] = {
    "atom": ({"int8": 128e12, "fp16": 32e12}, 256e9, 16 * 2**30),
    "warboy": ({"int8": 64e12}, 66e9, 16 * 2**30),
    "rngd": ({"int8": 512e12, "bf16": 256e12, "fp8": 512e12, "int4": 1024e12}, 1.5e12,
             48 * 2**30),
    "x220": ({}, None, 8 * 2**30),
    "tpu_v1": ({"int8": 92e12}, 34e9, 8 * 2**30),
    "tpu_v4": ({"bf16": 275e12, "int8": 275e12}, 1.2e12, 32 * 2**30),
}


def test_seed_presets_exist():
    assert set(SEED) <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_preset_loads_with_sources_and_assumptions(name):
    chip = load_arch(ARCH_DIR / f"{name}.yaml")
    assert chip.sources and all(s.strip() for s in chip.sources)
    assert chip.assumptions  # every preset states what is not published
    assert load_arch(name) == chip  # by preset name too


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_matches_published_figures(name):
    chip = load_arch(name)
    peaks, bandwidth, capacity = PUBLISHED[name]
    for precision, ops in peaks.items():
        got = chip.peak_ops_per_second(precision)
        assert abs(got - ops) / ops < 0.05, (precision, got, ops)
    if bandwidth is not None:
        assert abs(chip.dram.peak_bandwidth - bandwidth) / bandwidth < 0.05
    if capacity is not None:
        assert chip.dram.capacity_bytes == capacity


def test_structures_stated_in_the_issue():
    atom = load_arch("atom")
    assert atom.cores.count == 8 and atom.shared_sram is not None
    assert atom.cores.core.sram.size == 4 * 2**20 and atom.shared_sram.size == 32 * 2**20
    assert atom.dram.catalog.family == "GDDR6"
    assert load_arch("warboy").dram.catalog.name == "LPDDR4X-4266"
    rngd = load_arch("rngd")
    assert rngd.cores.count == 8 and rngd.cores.count * rngd.cores.core.sram.size == 256 * 2**20
    assert rngd.dram.catalog.family == "HBM3"
    v4 = load_arch("tpu_v4").cores
    assert (v4.count, v4.core.systolic.count, v4.core.systolic.rows) == (2, 4, 128)
    assert load_arch("x220").cores.core.sram.size == 11 * 2**20


def test_llm_twins_differ_only_in_dram():
    lp, hbm = load_arch("lpddr_llm"), load_arch("hbm_llm")
    assert lp.cores == hbm.cores and lp.shared_sram == hbm.shared_sram
    assert lp.clock == hbm.clock and lp.energy == hbm.energy
    assert lp.dram.catalog.family == "LPDDR5X" and hbm.dram.catalog.family == "HBM3"
    assert lp.dram.capacity_bytes == hbm.dram.capacity_bytes
    assert hbm.dram.peak_bandwidth > 5 * lp.dram.peak_bandwidth
