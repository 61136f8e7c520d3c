"""Chip spec validation: every bad input is a SpecError naming its key path and line."""

from __future__ import annotations

import pytest

from npusim.errors import SpecError
from npusim.spec.arch import load_arch, loads_arch


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        loads_arch(text, "chip.yaml")
    return info.value


def test_preset_loads_with_derived_figures(tpu_v1) -> None:
    assert tpu_v1.peak_ops_per_second("int8") == pytest.approx(2 * 65536 * 700e6)
    assert tpu_v1.dram.peak_bandwidth == pytest.approx(34e9)
    assert tpu_v1.cores.core.sram.size == 24 * 2**20


def test_specs_are_frozen(tpu_v1) -> None:
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        tpu_v1.clock = 1.0


def test_unknown_key_names_path_and_line(tpu_v1_text: str) -> None:
    text = tpu_v1_text.replace("      banks: 32", "      banks: 32\n      bankz: 4")
    err = _error(text)
    assert err.paths == ["cores.core.sram.bankz"]
    assert err.issues[0].line == _line_of(text, "bankz")
    assert "unknown key" in str(err) and "chip.yaml:" in str(err)


def test_wrong_type(tpu_v1_text: str) -> None:
    text = tpu_v1_text.replace("rows: 256", "rows: lots")
    err = _error(text)
    assert err.paths == ["cores.core.systolic.rows"]
    assert err.issues[0].line == _line_of(text, "rows: lots")


@pytest.mark.parametrize(("old", "new", "path"), [
    ("size: 24 MiB", "size: 0 MiB", "cores.core.sram.size"),
    ("clock: 700 MHz", "clock: -700 MHz", "clock"),
    ("  count: 1\n  core:", "  count: 0\n  core:", "cores.count"),
])
def test_zero_or_negative(tpu_v1_text: str, old: str, new: str, path: str) -> None:
    assert old in tpu_v1_text
    err = _error(tpu_v1_text.replace(old, new))
    assert err.paths == [path]


def test_bad_unit(tpu_v1_text: str) -> None:
    err = _error(tpu_v1_text.replace("size: 24 MiB", "size: 24 furlongs"))
    assert err.paths == ["cores.core.sram.size"]
    assert "unknown unit" in str(err)


def test_unknown_dram_standard(tpu_v1_text: str) -> None:
    text = tpu_v1_text.replace("standard: DDR3-2133", "standard: DDR9-99999")
    err = _error(text)
    assert err.paths == ["dram.standard"]
    assert err.issues[0].line == _line_of(text, "DDR9")
    assert "unknown DRAM standard" in str(err)


def test_sram_too_small_for_one_tile(tpu_v1_text: str) -> None:
    err = _error(tpu_v1_text.replace("size: 24 MiB", "size: 64 KiB"))
    assert "minimum tile" in str(err)


def test_precision_the_array_lacks(tpu_v1_text: str) -> None:
    err = _error(tpu_v1_text.replace("default_precision: int8", "default_precision: bf16"))
    assert "bf16" in str(err) and "not computed by the array" in str(err)


def test_unknown_precision_key(tpu_v1_text: str) -> None:
    err = _error(tpu_v1_text.replace("{int8: 1, fp16: 0.25}", "{int8: 1, int3: 2}"))
    assert err.paths[0].startswith("cores.core.systolic.macs_per_cycle")


def test_all_problems_reported_together(tpu_v1_text: str) -> None:
    text = (tpu_v1_text.replace("rows: 256", "rows: -1")
            .replace("standard: DDR3-2133", "standard: NOPE")
            .replace("process_nm: 28", "process_nm: 28\nflavour: mint"))
    err = _error(text)
    assert set(err.paths) == {"cores.core.systolic.rows", "dram.standard", "flavour"}
    assert all(i.line is not None for i in err.issues)


def test_malformed_yaml(tpu_v1_text: str) -> None:
    err = _error(tpu_v1_text.replace("clock: 700 MHz", "clock: [700 MHz"))
    assert "malformed YAML" in str(err)
    assert err.issues[0].line is not None


def test_missing_required_key(tpu_v1_text: str) -> None:
    text = "\n".join(line for line in tpu_v1_text.splitlines() if not line.startswith("clock:"))
    err = _error(text)
    assert err.paths == ["clock"]
    assert "missing" in str(err)


def test_safe_loader_rejects_object_tags(tpu_v1_text: str) -> None:
    err = _error(tpu_v1_text.replace("clock: 700 MHz", "clock: !!python/object:os.system 1"))
    assert "malformed YAML" in str(err)


def test_empty_and_non_mapping_files() -> None:
    assert "empty file" in str(_error(""))
    assert "mapping" in str(_error("- 1\n- 2\n"))


def test_unknown_preset_and_missing_file(tmp_path) -> None:
    with pytest.raises(SpecError, match="no chip file or preset"):
        load_arch("no_such_chip")
    with pytest.raises(SpecError, match="cannot read"):
        load_arch(tmp_path / "missing.yaml")


def test_dram_overrides_and_controller_settings(tpu_v1_text: str) -> None:
    text = tpu_v1_text.replace(
        "dram:\n", "dram:\n  overrides: {rcd: 40, faw: 30}\n  page_policy: closed\n", 1)
    chip = loads_arch(text, "chip.yaml")
    assert chip.dram.catalog.t.rcd == 40 and chip.dram.catalog.t.faw == 30
    assert chip.dram.page_policy == "closed"
    err = _error(tpu_v1_text.replace("dram:\n", "dram:\n  overrides: {rcdd: 40}\n", 1))
    assert err.paths == ["dram.overrides.rcdd"] and "overrides.rcdd: unknown DRAM field" in str(err)
    err = _error(tpu_v1_text.replace("dram:\n", "dram:\n  page_policy: half\n", 1))
    assert err.paths == ["dram.page_policy"]
