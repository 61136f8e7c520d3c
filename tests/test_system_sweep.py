"""Sweep files over systems of many chips: chip count, link kind and parallelism as axes.

Expected values are written here: the tensor-parallel communication time is the ring
all-reduce's and all-gather's closed forms at the link catalog's PCIe rate (32 or 16 GT/s
x 16 lanes x 128/130 / 8 bytes per second each way, 1 us a transfer), errors are the plan's
own one-line messages, the cache key is compared between sweeps that differ in one thing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from npusim.cli import main
from npusim.errors import SpecError
from npusim.sweep import run_sweep
from npusim.sweep.expand import describe, expand
from npusim.sweep.pareto import pareto_front
from npusim.sweep.run import plan
from npusim.sweep.spec import load_sweep, sweep_from_data
from npusim.sweep.systems import build_system

ROOT = Path(__file__).resolve().parent.parent
TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}


def _pcie_x16(gts: float) -> float:
    return gts * 16 * 128 / 130 / 8


def _tp2_comm(bw: float, lat: float) -> float:
    """tp 2, one token, int8 activations: an all-reduce of the hidden vector after each
    block's attention and MLP (partial sums at the fp32 accumulation precision, 4 B) and
    after the embedding (int8, 1 B), and the logits' all-gather."""
    n, h, layers, vocab = 2, TINY["hidden_size"], TINY["num_hidden_layers"], TINY["vocab_size"]
    def all_reduce(nbytes: float) -> float:
        return 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat

    all_gather = (n - 1) / n * vocab / bw + (n - 1) * lat
    return 2 * layers * all_reduce(4 * h) + all_reduce(h) + all_gather


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hf")
    (d / "tiny.json").write_text(json.dumps(TINY))
    return d


def _data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "scale",
        "system": "rngd_8card",
        "workloads": [{"hf_config": "tiny.json",
                       "options": {"phase": "decode", "prompt_len": 16, "context_len": 17}}],
        "axes": {"system.count": [2, 4], "system.link.kind": ["pcie4_x16", "pcie5_x16"],
                 "parallel.tp": [1, 2, 3, 4]},
    }
    data.update(extra)
    return data


@pytest.fixture(scope="module")
def table(model_dir: Path) -> pd.DataFrame:
    return run_sweep(sweep_from_data(_data(), root=model_dir), workers=0, cache_dir=None,
                     progress=False)


def test_axes_are_named_after_their_last_parts(model_dir: Path) -> None:
    sw = sweep_from_data(_data(), root=model_dir)
    assert sw.is_system and sw.axis_names == ["count", "link_kind", "tp"]
    assert len(expand(sw)[0]) == 2 * 2 * 4
    assert "system '8x FuriosaAI RNGD server" in describe(sw)


def test_tp2_comm_time_is_the_closed_form_at_the_catalog_link(table: pd.DataFrame) -> None:
    # The preset writes 63.0 GB/s; a swept kind takes the catalog's whole link (63.015 GB/s
    # for Gen5), so the Gen5 rows must match the catalog rate, not the preset's.
    for gts, kind in ((16e9, "pcie4_x16"), (32e9, "pcie5_x16")):
        rows = table[(table["link_kind"] == kind) & (table["tp"] == 2)]
        assert len(rows) == 2 and (rows["status"] == "ok").all()
        for comm in rows["time_comm_s"]:
            assert comm == pytest.approx(_tp2_comm(_pcie_x16(gts), 1e-6), rel=1e-9)
    tp1 = table[table["tp"] == 1]
    assert (tp1["time_comm_s"] == 0).all() and (tp1["chips_used"] == 1).all()


def test_infeasible_points_are_recorded_errors(table: pd.DataFrame) -> None:
    tp3 = table[table["tp"] == 3]
    assert (tp3["status"] == "error").all()
    assert tp3["error"].str.contains("tp 3 does not divide its 8 query heads").all()
    too_many = table[(table["tp"] == 4) & (table["count"] == 2)]
    assert too_many["error"].str.contains("needs 4 chips; the system has 2").all()
    assert too_many["latency_s"].isna().all()
    ok = table[(table["tp"] == 4) & (table["count"] == 4)]
    assert (ok["status"] == "ok").all() and (ok["chips_used"] == 4).all()


def test_derived_columns_follow_from_the_step(table: pd.DataFrame) -> None:
    from npusim.area import chip_area_mm2
    from npusim.spec.arch import load_arch

    ok = table[table["status"] == "ok"]
    assert ok["average_power_w"].to_numpy() == pytest.approx(
        (ok["energy_j"] / ok["latency_s"]).to_numpy())
    assert ok["throughput"].to_numpy() == pytest.approx((1 / ok["latency_s"]).to_numpy())
    one = chip_area_mm2(load_arch("rngd"))["total_mm2"]
    assert ok["area_mm2"].to_numpy() == pytest.approx((ok["chips_used"] * one).to_numpy())
    front = pareto_front(table, "latency_s,chips_used")
    assert not front[table["status"] == "error"].any() and front.any()


def test_cache_key_changes_with_what_changes_a_result(model_dir: Path) -> None:
    def keys(**extra: Any) -> list[str]:
        return [r.key for r in plan(sweep_from_data(_data(**extra), root=model_dir)).runs]

    base = keys()
    assert len(set(base)) == len(base)  # every (count, link, tp) its own run
    tp = keys(axes={"parallel.tp": [1, 2]})
    assert tp[0] != tp[1]
    # the name, sources and assumptions describe; they change no result
    renamed = keys(set={"system.name": "another name", "system.sources": ["elsewhere"]})
    assert renamed == base
    assert keys(parallel={"algorithm": "tree"}) != base
    assert keys(memory="ideal") != base
    # Tied embeddings leave the layers (and so the workload digest) as they are but put a
    # copy of the table on a pipeline's last stage: the model config is in the key.
    (model_dir / "tied.json").write_text(json.dumps({**TINY, "tie_word_embeddings": True}))
    tied = keys(workloads=[{"hf_config": "tied.json", "label": "tiny",
                            "options": {"phase": "decode", "prompt_len": 16,
                                        "context_len": 17}}])
    assert not set(tied) & set(base)


def test_a_rerun_reads_results_and_errors_from_the_cache(model_dir: Path,
                                                        tmp_path: Path) -> None:
    data = _data(axes={"parallel.tp": [2, 3]})
    first = run_sweep(sweep_from_data(data, root=model_dir), workers=0, cache_dir=tmp_path,
                      progress=False)
    again = run_sweep(sweep_from_data(data, root=model_dir), workers=0, cache_dir=tmp_path,
                      progress=False)
    assert again.attrs["sweep"]["computed"] == 0 and again.attrs["sweep"]["cached"] == 2
    pd.testing.assert_frame_equal(first, again)
    assert list(again["status"]) == ["ok", "error"]


def test_a_swept_link_kind_is_the_catalog_link_then_the_other_link_axes(model_dir: Path) -> None:
    sw = sweep_from_data(_data(axes={"system.link.latency": ["5 us"],
                                     "system.link.kind": ["pcie4_x16"]}), root=model_dir)
    (point,) = expand(sw)[0]
    link = build_system(sw, point).link
    assert link.kind == "pcie4_x16"
    assert link.bandwidth == pytest.approx(_pcie_x16(16e9), rel=1e-12)
    assert link.latency == pytest.approx(5e-6, rel=1e-12)
    assert link.energy_per_bit == pytest.approx(5e-12, rel=1e-12)


def test_an_invalid_system_point_is_a_row_with_its_error(model_dir: Path) -> None:
    df = run_sweep(sweep_from_data(_data(system="tpu_v4_64", axes={"system.count": [32]}),
                                   root=model_dir), workers=0, cache_dir=None, progress=False)
    assert df["error"].iloc[0] == ("invalid system: topology.dims: 4x4x4 hold 64 chips; "
                                   "count is 32")
    assert df.attrs["sweep"]["computed"] == 0


def test_random_mode_draws_plans_from_the_axes(model_dir: Path) -> None:
    sw = sweep_from_data(_data(mode="random", samples=6, seed=1,
                               axes={"parallel.tp": [1, 2, 4], "parallel.dp": [1, 2]}),
                         root=model_dir)
    pts = expand(sw)[0]
    assert 1 <= len(pts) <= 6 and all(p["tp"] in (1, 2, 4) and p["dp"] in (1, 2) for p in pts)


@pytest.mark.parametrize(("change", "where", "message"), [
    ({"axes": {"system.link.kind": ["pcie9_x16"]}}, "axes.system.link.kind",
     "unknown link kind 'pcie9_x16'"),
    ({"axes": {"parallel.tp": [0]}}, "axes.parallel.tp", "greater than 0"),
    ({"axes": {"parallel.sp": [2]}}, "axes.parallel.sp", "unknown parallel key 'sp'"),
    ({"axes": {"system.count": [0]}}, "axes.system.count", "greater than 0"),
    ({"axes": {"system.chip": ["no_such_chip"]}}, "axes.system.chip", "does not load"),
    ({"axes": {"system.topology.kind": ["hypercube"]}}, "axes.system.topology.kind",
     "hypercube"),
    ({"axes": {"cores.count": [1, 2]}}, "axes.cores.count", "a system sweep's axes are"),
    ({"parallel": {"algorithm": "butterfly"}}, "parallel.algorithm", "butterfly"),
    ({"system": "no_such_system"}, "system", "no system file or preset"),
    ({"set": {"dram.bandwidth": None}}, "set.dram.bandwidth", "sets system.<key path>"),
])
def test_bad_system_sweeps_name_the_key(model_dir: Path, change: dict[str, Any], where: str,
                                        message: str) -> None:
    with pytest.raises(SpecError) as exc:
        sweep_from_data(_data(**change), root=model_dir)
    assert any(i.path == where and message in i.message for i in exc.value.issues), \
        exc.value.issues


def test_chip_sweeps_refuse_system_axes_and_both_bases(model_dir: Path) -> None:
    with pytest.raises(SpecError, match="sweep a system of many chips"):
        sweep_from_data({"base": "rngd", "workloads": ["resnet50"],
                         "axes": {"parallel.tp": [1, 2]}})
    with pytest.raises(SpecError, match="exactly one of base"):
        sweep_from_data({**_data(), "base": "rngd"}, root=model_dir)


def test_cli_runs_the_example_and_reports_errors_with_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = ROOT / "workloads" / "sweeps" / "rngd_scale_out.yaml"
    sw = load_sweep(example)
    assert sw.is_system and sw.axis_names == ["count", "link_kind", "tp"]
    assert len(expand(sw)[0]) == 3 * 2 * 4 - 6  # tp <= count prunes (2, 4), (2, 8), (4, 8) x 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsystem: rngd_8card\nworkloads: [resnet50]\naxes:\n"
                   "  system.link.kind: [pcie9_x16]\n")
    assert main(["sweep", str(bad), "--workers", "0", "--no-cache", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5: axes.system.link.kind: value 'pcie9_x16': unknown link kind" in err
    small = tmp_path / "small.yaml"
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    small.write_text("name: small\nsystem: rngd_8card\nworkloads:\n"
                     "  - {hf_config: tiny.json, options: {phase: decode, prompt_len: 16, "
                     "context_len: 17}}\naxes:\n  parallel.tp: [1, 2]\n")
    out = tmp_path / "t.csv"
    assert main(["sweep", str(small), "--workers", "0", "--no-cache", "--quiet",
                 "--pareto", "latency_s,chips_used", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "time_comm_s" in text and "chips_used" in text
    t = pd.read_csv(out)
    assert list(t["tp"]) == [1, 2] and not math.isnan(t["time_comm_s"].iloc[1])
