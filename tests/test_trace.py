"""Chrome trace export (npusim.report.trace) and the BandwidthDram recording hook."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npusim
from npusim.cli import main
from npusim.compiler.program import COL, TILE_COLUMNS, LayerProgram, TileProgram
from npusim.engine.memory import BandwidthDram
from npusim.report.trace import chrome_trace, to_chrome_trace
from npusim.workloads import bert_base, resnet50


@pytest.fixture(scope="module")
def atom_res() -> npusim.Result:
    return npusim.simulate("atom", bert_base(seq_len=128), trace=True)


def _check_valid(doc: dict[str, Any]) -> list[dict[str, Any]]:
    evs = doc["traceEvents"]
    assert evs
    for e in evs:
        for key in ("ph", "ts", "pid", "tid", "name"):
            assert key in e, (key, e)
        assert e["ph"] in ("X", "M")
        if e["ph"] == "X":
            assert e["dur"] >= 0
            assert np.isfinite(e["ts"]) and e["ts"] >= 0
    json.dumps(doc)  # serialisable as is
    return [e for e in evs if e["ph"] == "X"]


def _assert_no_overlap(xs: list[dict[str, Any]]) -> None:
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in xs:
        tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for key, spans in tracks.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert start >= end - 1e-9 * max(1.0, end), f"overlap on track {key}"


def _compute_tiles(res: npusim.Result, xs: list[dict[str, Any]]) -> Counter[tuple[int, int, int]]:
    return Counter((e["args"]["layer"], e["args"]["core"], e["args"]["tile"])
                   for e in xs if e["cat"] == "compute")


def test_every_tile_once_and_no_overlap(atom_res: npusim.Result) -> None:
    doc = chrome_trace(atom_res)
    xs = _check_valid(doc)
    seen = _compute_tiles(atom_res, xs)
    expected = {(lp.index, c, t) for lp in atom_res.program.layers
                for c, tiles in enumerate(lp.tiles)
                for t in range(len(tiles))}
    assert set(seen) == expected
    assert max(seen.values()) == 1
    _assert_no_overlap(xs)
    # a compute event sits on its core's process and is named after its layer and tile
    names = {lp.index: lp.name for lp in atom_res.program.layers}
    for e in xs:
        if e["cat"] == "compute":
            assert e["name"] == f"{names[e['args']['layer']]} t{e['args']['tile']}"
            assert e["pid"] == 2 + e["args"]["core"]
    # one span per layer, back to back, ending at the total latency
    spans = [e for e in xs if e["cat"] == "layer"]
    assert len(spans) == len(atom_res.layers)
    end = spans[-1]["ts"] + spans[-1]["dur"]
    assert end == pytest.approx(atom_res.summary()["latency_s"] * 1e6, rel=1e-9)


def test_dram_channels_carry_all_traffic(atom_res: npusim.Result) -> None:
    xs = _check_valid(chrome_trace(atom_res))
    chip = atom_res.chip
    dram = [e for e in xs if e["cat"] == "dram"]
    assert {e["tid"] for e in dram} <= set(range(chip.dram.n_channels))
    assert {e["pid"] for e in dram} == {2 + chip.n_cores}
    s = atom_res.summary()
    moved = sum(e["args"]["bytes"] for e in dram)
    assert moved == pytest.approx(s["dram_read_bytes"] + s["dram_write_bytes"], rel=1e-12)
    thread_names = [e for e in _meta_events(chrome_trace(atom_res))
                    if e["name"] == "thread_name" and e["pid"] == 2 + chip.n_cores]
    assert len(thread_names) == chip.dram.n_channels


def _meta_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e["ph"] == "M"]


def test_untraced_result_is_rerun_identically() -> None:
    wl = resnet50()
    plain = npusim.simulate("tpu_v1", wl)
    traced = npusim.simulate("tpu_v1", wl, trace=True)
    assert not plain.events
    a = [e for e in chrome_trace(plain)["traceEvents"] if e["ph"] == "X"]
    b = [e for e in chrome_trace(traced)["traceEvents"] if e["ph"] == "X"]
    assert a == b


def test_cycle_model_has_no_channel_threads() -> None:
    res = npusim.simulate("tpu_v1", resnet50(), memory="cycle", trace=True)
    doc = chrome_trace(res)
    xs = _check_valid(doc)
    assert not [e for e in xs if e["cat"] == "dram"]
    assert doc["otherData"]["notes"]
    _assert_no_overlap(xs)
    assert max(_compute_tiles(res, xs).values()) == 1


def _store_heavy_program(chip: npusim.Chip, n: int = 6) -> TileProgram:
    """Tiny compute, big stores: two stores of one core are in flight at once."""
    tiles = np.zeros((n, len(TILE_COLUMNS)))
    tiles[:, COL["array_cycles"]] = 10
    tiles[:, COL["compute_cycles"]] = 10
    tiles[:, COL["macs"]] = 1000
    tiles[:, COL["dram_read_bytes"]] = 256
    tiles[:, COL["dram_write_bytes"]] = 1 << 20
    tiles[:, COL["read_addr"]] = np.arange(n) * 4096
    tiles[:, COL["write_addr"]] = (1 << 30) + np.arange(n) * (1 << 20)
    lp = LayerProgram(0, "st", "matmul", "array", (tiles,), m=1, n=1, k=1, macs=n * 1000)
    return TileProgram(chip.name, "store-heavy", chip.n_cores, (lp,))


def test_overlapping_stores_get_a_second_thread() -> None:
    chip = npusim.load_arch("tpu_v1")
    res = npusim.simulate_program(chip, _store_heavy_program(chip), trace=True)
    outs = sorted((e.start_s, e.end_s) for e in res.events if e.engine == "dma_out")
    assert any(b[0] < a[1] for a, b in pairwise(outs)), "test premise: stores overlap"
    doc = chrome_trace(res)
    xs = _check_valid(doc)
    _assert_no_overlap(xs)
    out_tids = {e["tid"] for e in xs if e["cat"] == "dma_out"}
    assert len(out_tids) == 2
    names = {e["args"]["name"] for e in _meta_events(doc) if e["name"] == "thread_name"}
    assert {"DMA out", "DMA out 2"} <= names


def test_record_hook() -> None:
    mem = BandwidthDram(4, 1e9, 0.0, 1.0, interleave_bytes=256, record=True)
    mem.transfer(0.0, 1000, 256, False, 0)
    mem.transfer(0.0, 512, 0, True, 1)
    assert mem.records is not None
    assert sum(r[3] for r in mem.records) == 1512
    by_ch: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for ch, s0, s1, _b, _w in mem.records:
        assert s1 > s0
        by_ch[ch].append((s0, s1))
    for spans in by_ch.values():
        spans.sort()
        assert all(b[0] >= a[1] for a, b in pairwise(spans))
    assert BandwidthDram(4, 1e9, 0.0, 1.0).records is None


def test_cli_trace_flag(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert main(["run", "tpu_v1", "resnet50", "--rows", "1", "--trace", str(out)]) == 0
    xs = _check_valid(json.loads(out.read_text()))
    assert any(e["cat"] == "compute" for e in xs)
    assert main(["run", "tpu_v1", "resnet50", "--out", str(out), "--trace", str(out)]) == 2


def test_method_and_atomic_write(tmp_path: Path, atom_res: npusim.Result) -> None:
    p = atom_res.to_chrome_trace(tmp_path / "sub" / "a.json")
    assert p.exists() and json.loads(p.read_text())["traceEvents"]
    to_chrome_trace(atom_res, p)  # overwrite in place
    assert [f.name for f in p.parent.iterdir()] == ["a.json"]
