"""The area model: stated figures reproduced, sensible monotonicity, parts add up."""

from __future__ import annotations

import pytest

import npusim
from npusim.area import AreaModel, chip_area_mm2, mac_area_um2, sram_mm2_per_mib


def _chip(**changes: object) -> npusim.Chip:
    data = npusim.load_arch("tpu_v1").model_dump()
    data["dram"].update(bandwidth=None, channels=None)
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return npusim.Chip.model_validate(data)


def test_stated_figures() -> None:
    assert mac_area_um2("int8") == pytest.approx(282 + 137)  # Horowitz 45 nm
    assert mac_area_um2("fp16") == pytest.approx(1640 + 4184)
    assert mac_area_um2("int8", 22.5) == pytest.approx((282 + 137) / 4)
    assert sram_mm2_per_mib(45) == pytest.approx(8 * 2**20 * 0.346 / 0.7 / 1e6)
    assert sram_mm2_per_mib(28) == pytest.approx(1.522, abs=1e-3)
    assert sram_mm2_per_mib(5) == pytest.approx(0.2517, abs=1e-4)
    assert sram_mm2_per_mib(7) > sram_mm2_per_mib(6) > sram_mm2_per_mib(5)
    assert sram_mm2_per_mib(90) == pytest.approx(4 * sram_mm2_per_mib(45))


def test_parts_add_up_and_grow_with_the_design() -> None:
    base = chip_area_mm2(_chip())
    parts = [v for k, v in base.items() if k != "total_mm2"]
    assert base["total_mm2"] == pytest.approx(sum(parts))
    big_array = chip_area_mm2(_chip(cores__core__systolic__rows=512))
    assert big_array["array_mm2"] == pytest.approx(2 * base["array_mm2"])
    more_sram = chip_area_mm2(_chip(cores__core__sram__size=48 * 2**20))
    assert more_sram["sram_mm2"] - base["sram_mm2"] == pytest.approx(24 * sram_mm2_per_mib(28))
    hbm = chip_area_mm2(_chip(dram__standard="HBM3-6400"))
    lp = chip_area_mm2(_chip(dram__standard="LPDDR5-6400"))
    assert hbm["dram_phy_mm2"] == pytest.approx(1024 / 64 * 0.6)  # one 1,024-bit stack
    assert lp["dram_phy_mm2"] == pytest.approx(128 / 64 * 1.5)
    smaller = chip_area_mm2(_chip(process_nm=7))
    assert smaller["array_mm2"] < base["array_mm2"] and smaller["sram_mm2"] < base["sram_mm2"]
    assert smaller["dram_phy_mm2"] == base["dram_phy_mm2"]  # PHYs do not shrink
    cheap = chip_area_mm2(_chip(), AreaModel(phy_mm2_per_64bit={}, phy_mm2_per_64bit_default=0))
    assert cheap["dram_phy_mm2"] == 0


def test_slow_precisions_cost_no_area_but_native_ones_do() -> None:
    rates = "cores__core__systolic__macs_per_cycle"
    int8 = chip_area_mm2(_chip(**{rates: {"int8": 1.0}}))["array_mm2"]
    emulated = chip_area_mm2(_chip(**{rates: {"int8": 1.0, "fp16": 0.25}}))["array_mm2"]
    native = chip_area_mm2(_chip(**{rates: {"int8": 1.0, "fp16": 1.0}}))["array_mm2"]
    assert emulated == int8 < native
