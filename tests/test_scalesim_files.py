"""SCALE-Sim .cfg and topology CSV import: shapes match SCALE-Sim's own conventions."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npusim.errors import SpecError
from npusim.spec.arch import load_scalesim_cfg
from npusim.spec.scalesim import conv_padding_for_scalesim, load_scalesim_topology
from npusim.workloads import Conv2d, Matmul

DATA = Path(__file__).resolve().parent / "data" / "scalesim"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def _scalesim_conv(h, w, fh, fw, c, f, s):
    """SCALE-Sim topology_utils.topo_calc_hyperparams: ofmap size and the GEMM (M, N, K)."""
    oh = math.ceil((h - fh + s) / s)
    ow = math.ceil((w - fw + s) / s)
    return oh, ow, (oh * ow, f, fh * fw * c)


# .cfg -----------------------------------------------------------------------------------

def test_v2_cfg():
    chip = load_scalesim_cfg(DATA / "v2_os.cfg")
    sa = chip.cores.core.systolic
    assert (sa.rows, sa.cols, sa.count, sa.dataflow) == (32, 32, 1, "os")
    assert chip.n_cores == 1 and chip.default_precision == "int8"
    assert chip.cores.core.sram.size == 3 * 64 * 1024
    assert chip.clock == 1e9
    assert chip.dram.standard == "DDR4-3200"
    assert chip.dram.peak_bandwidth == 10 * 1e9  # 10 words/cycle x 1 GHz, 1 B/word
    assert chip.name == "scale_example_run_32x32_os"
    assert str(DATA / "v2_os.cfg") in chip.sources
    assert any("1 GHz" in a for a in chip.assumptions)


def test_v3_cfg_with_layout_and_sparsity_sections():
    chip = load_scalesim_cfg(DATA / "v3_ws.cfg", clock_hz=0.5e9)
    sa = chip.cores.core.systolic
    assert (sa.rows, sa.cols, sa.dataflow) == (128, 128, "ws")
    assert chip.cores.core.sram.size == (6144 + 6144 + 2048) * 1024
    assert chip.dram.peak_bandwidth == (64 + 64) * 0.5e9  # per-bank bandwidths summed
    assert chip.clock == 0.5e9
    assert any("[layout]" in a for a in chip.assumptions)


@pytest.mark.parametrize("df", ["os", "ws", "is", "WS"])
def test_each_dataflow(tmp_path, df):
    text = (DATA / "v2_os.cfg").read_text().replace("Dataflow : os", f"Dataflow : {df}")
    p = _write(tmp_path, "a.cfg", text)
    assert load_scalesim_cfg(p).cores.core.systolic.dataflow == df.lower()


def test_calc_mode_without_bandwidth_uses_catalog_peak(tmp_path):
    p = _write(tmp_path, "calc.cfg", """
        [architecture_presets]
        ArrayHeight: 8
        ArrayWidth: 8
        IfmapSramSzkB: 16
        FilterSramSzkB: 16
        OfmapSramSzkB: 16
        Dataflow: ws
        [run_presets]
        InterfaceBandwidth: CALC
        """)
    chip = load_scalesim_cfg(p)
    assert chip.name == "calc"  # no [general] run_name: the file stem
    assert chip.dram.bandwidth is None and chip.dram.peak_bandwidth == pytest.approx(51.2e9)


def test_cfg_reports_every_problem_with_key_and_line(tmp_path):
    p = _write(tmp_path, "bad.cfg", """
        [general]
        run_name = bad
        [architecture_presets]
        ArrayHeight: 32
        ArrayWidth: wide
        IfmapSramSzkB: -64
        OfmapSramSzkB: 64
        Bandwidth: 10
        Dataflow: rs
        [run_presets]
        InterfaceBandwidth: USER
        """)
    with pytest.raises(SpecError) as info:
        load_scalesim_cfg(p)
    where = {i.path: i.line for i in info.value.issues}
    assert where == {
        "architecture_presets.ArrayWidth": 5,
        "architecture_presets.IfmapSramSzkB": 6,
        "architecture_presets.FilterSramSzkB": 3,  # missing: the section's line
        "architecture_presets.Dataflow": 9,
    }
    assert str(p) in str(info.value)


def test_cfg_missing_bandwidth_in_user_mode(tmp_path):
    text = (DATA / "v2_os.cfg").read_text().replace("Bandwidth : 10\n", "")
    with pytest.raises(SpecError, match="Bandwidth"):
        load_scalesim_cfg(_write(tmp_path, "a.cfg", text))


def test_cfg_malformed_and_missing_section(tmp_path):
    with pytest.raises(SpecError, match="malformed"):
        load_scalesim_cfg(_write(tmp_path, "m.cfg", "ArrayHeight: 3\n[x]\n"))
    with pytest.raises(SpecError, match="architecture_presets"):
        load_scalesim_cfg(_write(tmp_path, "s.cfg", "[general]\nrun_name = x\n"))
    with pytest.raises(SpecError, match="cannot read"):
        load_scalesim_cfg(tmp_path / "none.cfg")


def test_cfg_sram_too_small_for_the_array(tmp_path):
    text = (DATA / "v2_os.cfg").read_text()
    text = text.replace("ArrayHeight:    32", "ArrayHeight: 256").replace(
        "ArrayWidth:     32", "ArrayWidth: 256").replace("64", "1")
    with pytest.raises(SpecError, match="cannot hold one double-buffered"):
        load_scalesim_cfg(_write(tmp_path, "small.cfg", text))


# topology -------------------------------------------------------------------------------

def test_conv_topology_matches_scalesim_gemms():
    w = load_scalesim_topology(DATA / "resnet_conv.csv")
    rows = [r.split(",") for r in (DATA / "resnet_conv.csv").read_text().splitlines()[1:]]
    assert [x.name for x in w.layers] == [r[0] for r in rows]
    assert w.name == "resnet_conv" and w.meta["format"] == "scalesim-conv"
    for layer, r in zip(w.layers, rows, strict=True):
        h, wd, fh, fw, c, f, s = (int(v) for v in r[1:8])
        oh, ow, (m, n, k) = _scalesim_conv(h, wd, fh, fw, c, f, s)
        assert isinstance(layer, Conv2d)
        assert (layer.in_h, layer.in_w, layer.out_h, layer.out_w) == (h, wd, oh, ow)
        if "DP" in layer.name:  # SCALE-Sim: one single-channel layer per channel
            assert layer.gemm_shape() == (c, m, n, fh * fw)
            assert layer.macs() == c * oh * ow * fh * fw * f
        else:
            assert layer.gemm_shape() == (1, m, n, k)
            assert layer.macs() == oh * ow * fh * fw * c * f
    conv1 = w.layers[0]
    assert (conv1.out_h, conv1.pad_h) == (110, 1)  # SCALE-Sim rounds 109.5 up, PyTorch down


def test_gemm_topology():
    w = load_scalesim_topology(DATA / "gemm_mnk.csv")
    assert w.meta["format"] == "scalesim-gemm"
    assert [(x.m, x.n, x.k) for x in w.layers] == [(384, 2304, 768), (384, 384, 64),
                                                   (384, 3072, 768)]
    assert all(isinstance(x, Matmul) and x.b_kind == "weight" for x in w.layers)
    # the same file forced through the conv reader is a column error, not a silent misread
    with pytest.raises(SpecError):
        load_scalesim_topology(DATA / "gemm_mnk.csv", fmt="conv")


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 300), k=st.integers(1, 11), s=st.integers(1, 8))
def test_padding_reproduces_scalesim_output_size(h, k, s):
    if k > h:
        return
    pad = conv_padding_for_scalesim(h, k, s)
    assert (h + 2 * pad - k) // s + 1 == math.ceil((h - k + s) / s)
    assert pad == (0 if (h - k) % s == 0 else -(-(s - (h - k) % s) // 2))


def test_scalesim_row_quirks(tmp_path):
    p = _write(tmp_path, "q.csv", """
        Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides, Sparsity,

        Conv2_dw, 112, 112, 3, 3, 1, 1, 1,#dw
        Conv11,28,28,1,1,256,256,1
        ,,,,,,,,,,,,
        \tConv14,14,14,3,3,8,8,1,,,,
        Rect,20,12,3,1,4,4,2,1,
        Sparse,5,5,3,3,2,6,1,2:4,
        Conv11,28,28,1,1,256,256,1,
        """)
    w = load_scalesim_topology(p)
    names = [x.name for x in w.layers]
    assert names == ["Conv2_dw", "Conv11", "Conv14", "Rect", "Sparse", "Conv11_2"]
    assert w.layers[1].stride_h == 1  # no trailing comma: the stride is still read
    rect = w.layers[3]
    assert (rect.stride_h, rect.stride_w, rect.out_h, rect.out_w, rect.pad_h) == (2, 1, 10, 12, 1)
    assert w.meta["sparsity_not_modelled"] == {"Sparse": "2:4"}
    assert w.meta["renamed_duplicates"] == {"Conv11_2": "Conv11"}


def test_topology_errors_name_column_and_line(tmp_path):
    p = _write(tmp_path, "bad.csv", """
        Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
        ok,8,8,3,3,4,4,1,
        short,8,8,3,
        word,8,eight,3,3,4,4,1,
        zero,8,8,3,3,0,4,1,
        big,4,4,5,5,1,1,1,
        odd,8,8,3,3,4,4,1,x,
        """)
    with pytest.raises(SpecError) as info:
        load_scalesim_topology(p)
    got = [(i.path, i.line) for i in info.value.issues]
    assert got == [("Filter Width", 3), ("IFMAP Width", 4), ("Channels", 5),
                   ("Filter Height", 6), ("column 9", 7)]
    text = str(info.value)
    assert f"{p}:4: IFMAP Width: layer 'word': expected a positive integer, got 'eight'" in text
    assert "missing 'Filter Width', 'Channels'" in text


def test_topology_empty_and_headerless(tmp_path):
    with pytest.raises(SpecError, match="no layers"):
        load_scalesim_topology(_write(tmp_path, "e.csv", "Layer, M, N, K,\n"))
    with pytest.raises(SpecError, match="header"):
        load_scalesim_topology(_write(tmp_path, "h.csv", "\nx,1,1,1,\n"))
