"""Number formats: block-scaled MXFP4/NVFP4 and the FP8 encodings, from their storage to the
chip's choice of compute precision, the dequantisation cost and the command-line wiring.

Expected values are restated here from the formats' definitions (OCP MX v1.0: 32 E2M1
elements + one 8-bit E8M0 scale; NVFP4: 16 E2M1 elements + one 8-bit E4M3 scale) and from
the rule docs/model.md states for the compute precision, never read back from npusim.
"""

from __future__ import annotations

import math
import typing

import pytest

import npusim
from npusim.area import mac_area_um2
from npusim.cli import main
from npusim.compiler.lower import compile_workload
from npusim.compiler.precision import compute_precision
from npusim.errors import MappingError, WorkloadError
from npusim.spec.arch import Chip, Precision
from npusim.sweep.spec import loads_sweep
from npusim.workloads.formats import BITS, PRECISIONS, dequant_ops, native_key
from npusim.workloads.ir import (
    Attention,
    Embedding,
    ExpertMatmul,
    Matmul,
    Norm,
    Workload,
    bytes_of,
)
from npusim.workloads.llm import memory_footprint, model_weight_bytes
from npusim.workloads.precision import check_precisions, parse_weights

K = N = 4096


def _chip(macs: dict[str, float], **energy: float) -> Chip:
    """rngd with its arrays computing ``macs`` (the matrix-vector engine removed)."""
    data = npusim.load_arch("rngd").model_dump()
    data["cores"]["core"]["systolic"]["macs_per_cycle"] = macs
    data["cores"]["core"]["matvec"] = None
    data["default_precision"] = next(p for p in macs if p not in ("mxfp4", "nvfp4"))
    if energy:
        data["energy"]["mac"] = energy
    return Chip.model_validate(data)


def _gemv(weight: str, act: str = "bf16") -> Workload:
    return Workload("gemv", (Matmul("mm", m=1, n=N, k=K, act_precision=act,
                                    weight_precision=weight, out_precision=act),))


# Storage -------------------------------------------------------------------------------

def test_block_formats_count_their_shared_scales() -> None:
    # 32 four-bit elements + one 8-bit scale = 136 bits = 17 bytes a block (MXFP4);
    # 16 four-bit elements + one 8-bit scale = 72 bits = 9 bytes a block (NVFP4).
    assert BITS["mxfp4"] == 4 + 8 / 32 == 4.25
    assert BITS["nvfp4"] == 4 + 8 / 16 == 4.5
    assert bytes_of(K * N, "mxfp4") == K * N // 32 * 17
    assert bytes_of(K * N, "nvfp4") == K * N // 16 * 9
    assert BITS["fp8_e4m3"] == BITS["fp8_e5m2"] == BITS["fp8"] == 8
    mm = _gemv("mxfp4").layers[0]
    assert mm.input_bytes()["weight"] == K * N // 32 * 17
    ex = ExpertMatmul("e", tokens_per_expert=(3, 0, 1, 0), k=K, n=N,
                      act_precision="bf16", weight_precision="nvfp4", out_precision="bf16")
    assert ex.input_bytes()["weight"] == 2 * K * N // 16 * 9  # two experts touched


def test_spec_precision_names_are_the_formats() -> None:
    assert typing.get_args(Precision) == PRECISIONS


@pytest.mark.parametrize("make", [
    lambda: Matmul("a", m=1, n=8, k=8, act_precision="mxfp4"),
    lambda: Matmul("o", m=1, n=8, k=8, out_precision="nvfp4"),
    lambda: Matmul("s", m=1, n=8, k=8, b_kind="act", weight_precision="mxfp4"),
    lambda: Norm("n", rows=1, cols=8, precision="mxfp4"),
    lambda: Embedding("e", tokens=1, hidden=8, precision="nvfp4"),
    lambda: Attention("at", heads=1, q_len=1, kv_len=8, head_dim=8, kv_precision="mxfp4"),
])
def test_block_format_only_on_a_weight_operand(make: typing.Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="block-scaled weight format"):
        make()


# The chip: which key computes a precision -----------------------------------------------

def test_fp8_key_covers_both_encodings() -> None:
    assert native_key({"fp8": 1}, "fp8_e4m3") == "fp8"
    assert native_key({"fp8": 1}, "fp8_e5m2") == "fp8"
    assert native_key({"fp8_e5m2": 1, "fp8_e4m3": 1}, "fp8") == "fp8_e4m3"
    assert native_key({"fp8_e4m3": 1}, "fp8_e5m2") is None
    assert native_key({"int8": 1}, "mxfp4") is None


@pytest.mark.parametrize(("macs", "act", "weight", "chosen", "conv"), [
    # a block format the array lacks: the narrowest 16/32-bit float, bf16 first at 16 bits
    ({"int8": 1, "fp8": 1, "bf16": 0.5}, "bf16", "mxfp4", "bf16", ["mxfp4->bf16"]),
    # (int8 activations are a format the array takes: not converted, as int4 weights)
    ({"int8": 1, "fp16": 0.5, "bf16": 0.5}, "int8", "nvfp4", "bf16", ["nvfp4->bf16"]),
    ({"int8": 1, "fp16": 0.25}, "fp16", "mxfp4", "fp16", ["mxfp4->fp16"]),
    ({"int8": 1, "bf16": 1, "fp32": 0.25}, "fp32", "mxfp4", "fp32", ["mxfp4->fp32"]),
    # taken natively: computed at the activations' (wider) precision, nothing converted
    ({"int4": 2, "bf16": 0.5, "mxfp4": 2}, "bf16", "mxfp4", "bf16", []),
    ({"int4": 2, "fp8": 1, "mxfp4": 2}, "int4", "mxfp4", "mxfp4", []),
    # FP8: the fp8 key computes either encoding; a missing one goes to 16 bits, not 8
    ({"int8": 1, "fp8": 1}, "fp8_e4m3", "fp8_e5m2", "fp8", []),
    ({"int8": 1, "fp8": 1, "bf16": 0.5}, "fp8", "nvfp4", "bf16", ["nvfp4->bf16"]),
    ({"int8": 1, "fp8_e4m3": 1, "bf16": 0.5}, "fp8_e4m3", "fp8_e5m2", "bf16",
     ["fp8_e5m2->bf16"]),
    ({"int8": 1, "fp8_e4m3": 1, "bf16": 0.5}, "fp8_e5m2", "fp8_e5m2", "bf16",
     ["fp8_e5m2->bf16"]),
    ({"int8": 1, "fp8_e4m3": 1}, "fp8", "fp8", "fp8_e4m3", []),
    ({"int8": 1, "bf16": 1}, "bf16", "fp8_e4m3", "bf16", ["fp8_e4m3->bf16"]),
])
def test_compute_precision(macs: dict[str, float], act: str, weight: str, chosen: str,
                           conv: list[str]) -> None:
    assert compute_precision(_chip(macs), act, weight) == (chosen, conv)


@pytest.mark.parametrize(("macs", "act", "weight"), [
    ({"int8": 1, "int4": 2}, "int8", "mxfp4"),        # no float at all
    ({"int8": 1, "fp8": 1}, "fp8", "nvfp4"),           # 8 bits cannot hold its values
    ({"int8": 1, "fp8_e4m3": 1}, "fp8_e4m3", "fp8_e5m2"),
    ({"int8": 1, "fp8_e4m3": 1}, "fp8_e5m2", "fp8_e5m2"),  # nor the other encoding's range
])
def test_no_wide_enough_float_is_a_mapping_error(macs: dict[str, float], act: str,
                                                 weight: str) -> None:
    with pytest.raises(MappingError, match="cannot run"):
        compute_precision(_chip(macs), act, weight)


# Dequantisation: its vector work and what the mapping says --------------------------------

@pytest.mark.parametrize(("weight", "ops_per_weight"), [
    ("mxfp4", 2 + 1 / 32),   # scale multiply + convert, and one scale decode per 32
    ("nvfp4", 2 + 1 / 16),
    ("fp8_e4m3", 2),
])
def test_dequant_runs_on_the_vector_unit(weight: str, ops_per_weight: float) -> None:
    assert dequant_ops(weight) == ops_per_weight
    chip = _chip({"int8": 1, "bf16": 0.5})
    lp = compile_workload(chip, _gemv(weight), weights_resident=False).layers[0]
    assert lp.precision == "bf16"
    assert lp.vector_alu_ops == pytest.approx(K * N * ops_per_weight)
    assert f"dequant {weight}->bf16" in lp.mapping
    # Natively taken: no vector work at all.
    native = _chip({"int8": 1, "bf16": 0.5, weight: 1})
    lp = compile_workload(native, _gemv(weight), weights_resident=False).layers[0]
    assert lp.vector_alu_ops == 0 and "dequant" not in lp.mapping


def test_dram_reads_the_stored_blocks() -> None:
    chip = npusim.load_arch("rngd")
    row = npusim.simulate(chip, _gemv("mxfp4"), weights_resident=False).layers.iloc[0]
    assert row["dram_read_bytes"] == K * N // 32 * 17 + K * 2  # weights + one bf16 row


def test_presets_state_their_formats() -> None:
    # RNGD: BF16/FP8/INT8/INT4 (FuriosaAI); TPU v4: BF16/INT8; neither takes a block format.
    assert set(npusim.load_arch("rngd").cores.core.systolic.macs_per_cycle) == {
        "int8", "fp8", "bf16", "int4"}
    assert set(npusim.load_arch("tpu_v4").cores.core.systolic.macs_per_cycle) == {
        "bf16", "int8"}
    for name in ("lpddr_llm", "hbm_llm"):  # the stated assumption: at the int4 rate
        sa = npusim.load_arch(name).cores.core.systolic
        assert sa.macs_per_cycle["mxfp4"] == sa.macs_per_cycle["nvfp4"] == sa.macs_per_cycle["int4"]
    for name in ("rngd", "tpu_v4"):
        assert "dequant mxfp4->bf16" in compile_workload(
            npusim.load_arch(name), _gemv("mxfp4"), weights_resident=False).layers[0].mapping


# Energy and area -----------------------------------------------------------------------

def test_mac_energy_per_format() -> None:
    chip = _chip({"int8": 1, "bf16": 0.5})
    scale = chip.process_nm / 45
    assert chip.mac_energy("mxfp4") == pytest.approx(0.1e-12 * scale)  # int4's (assumption)
    assert chip.mac_energy("fp8_e5m2") == pytest.approx(0.5e-12 * scale)
    given = _chip({"int8": 1, "fp8": 1}, fp8=0.3e-12)
    assert given.mac_energy("fp8_e4m3") == given.mac_energy("fp8_e5m2") == 0.3e-12


def test_area_per_format() -> None:
    # FP16 multiplier 1,640 µm² scaled by (significand bits / 11)²; block formats add in int32.
    assert mac_area_um2("mxfp4") == pytest.approx(1640 * (2 / 11) ** 2 + 137)
    assert mac_area_um2("fp8_e5m2") == pytest.approx(1640 * (3 / 11) ** 2 + 4184)
    assert mac_area_um2("fp8_e4m3") == mac_area_um2("fp8")
    # A 4-bit block format at int4's rate adds no PE area beside int4 and int8.
    with_mx = npusim.load_arch("lpddr_llm")
    data = with_mx.model_dump()
    for unit in ("systolic", "matvec"):
        for p in ("mxfp4", "nvfp4"):
            data["cores"]["core"][unit]["macs_per_cycle"].pop(p)
    without = Chip.model_validate(data)
    from npusim.area import chip_area_mm2

    assert chip_area_mm2(with_mx) == chip_area_mm2(without)


def test_default_precision_cannot_be_a_block_format() -> None:
    data = npusim.load_arch("lpddr_llm").model_dump()
    data["default_precision"] = "mxfp4"
    with pytest.raises(ValueError, match="block-scaled weight format"):
        Chip.model_validate(data)


# Precision per tensor class --------------------------------------------------------------

@pytest.mark.parametrize(("weights", "act", "kv", "match"), [
    ("mxfp4", None, None, "norms and embeddings need another"),
    ("default=nvfp4,norms=bf16", None, None, "would cover embeddings"),
    ("norms=mxfp4,default=bf16", None, None, "norms=mxfp4"),
    ("embeddings=nvfp4,default=bf16", None, None, "embeddings=nvfp4"),
    ("int8", "mxfp4", None, "activations: mxfp4"),
    ("int8", None, "nvfp4", "kv: nvfp4"),
    ("experts=int3,default=bf16", None, None, "unknown precision 'int3'"),
])
def test_block_format_where_it_cannot_go(weights: str, act: str | None, kv: str | None,
                                         match: str) -> None:
    with pytest.raises(WorkloadError, match=match) as err:
        check_precisions(parse_weights(weights), activations=act, kv=kv)
    assert "\n" not in str(err.value)


def _gpt_oss_20b_bytes() -> float:
    """gpt-oss-20b's weight bytes with the experts in MXFP4 and the rest in bf16, counted
    from its config.json."""
    # gpt-oss-20b's config.json: 24 layers, hidden 2880, 32 experts of width 2880 (gated:
    # gate + up + down), 64 query heads and 8 KV heads of 64, vocab 201088, untied head;
    # biases on q/k/v/o, router and experts, one sink per head, two norms a layer + final.
    h, layers, experts, inter, heads, kv, hd, vocab = 2880, 24, 32, 2880, 64, 8, 64, 201088
    attention = h * heads * hd + heads * hd + 2 * (h * kv * hd + kv * hd) + heads * hd * h + h
    expert_matrices = experts * 3 * h * inter
    expert_biases = experts * (2 * inter + h)
    per_layer = (attention + heads + h * experts + experts + expert_matrices + expert_biases
                 + 2 * h)
    total = layers * per_layer + h + 2 * vocab * h
    # The experts class holds the routed experts' parameters, biases included: MXFP4 here.
    # (The published checkpoint keeps the expert biases in bf16: 24 x 32 x 8640 = 6.6 M
    # parameters, 0.07 % of the bytes; a class is one precision.)
    experts_all = layers * (expert_matrices + expert_biases)
    return experts_all * 4.25 / 8 + (total - experts_all) * 2


def test_gpt_oss_weight_bytes_by_hand() -> None:
    expected = _gpt_oss_20b_bytes()
    weights = parse_weights("experts=mxfp4,default=bf16")
    assert model_weight_bytes("gpt_oss_20b", weights) == expected
    fp = memory_footprint("gpt_oss_20b", phase="decode", weights=weights, activations="bf16",
                          kv="bf16", context_len=64)
    assert fp.weight_bytes == expected


# The command line ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--weights", "norms=mxfp4,default=bf16"],
    ["--weights", "mxfp4"],
    ["--weights", "experts=mxfp4,bogus=int8"],
    ["--weights", "int7"],
    ["--kv", "mxfp4"],
    ["--activations", "nvfp4"],
    ["--routing", "skewed:x"],
    ["--routing", "no_such_trace.csv"],
])
@pytest.mark.parametrize("command", ["llm", "serve"])
def test_cli_bad_format_options_are_one_line(command: str, args: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "lpddr_llm", "qwen3_30b_a3b", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("npusim: error: --"), err
    assert args[0] in err


def test_cli_run_weights_need_an_hf_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "rngd", "resnet50", "--weights", "int8"]) == 2
    assert "--weights applies to an HF config.json" in capsys.readouterr().err
    assert main(["run", "rngd", "resnet50", "--routing", "uniform"]) == 2
    assert "--routing applies to an HF config.json" in capsys.readouterr().err


def test_cli_llm_prints_the_weight_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    run = ["llm", "lpddr_llm", "gpt_oss_20b", "--weights", "experts=mxfp4,default=bf16",
           "--activations", "bf16", "--kv", "bf16", "--routing", "skewed:1.2", "--gen", "2",
           "--prompt", "64", "--decode-points", "1"]
    assert main([*run, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["weights_precision"] == "experts=mxfp4,default=bf16"
    assert s["routing"] == "skewed:1.2"
    assert s["weight_bytes"] == _gpt_oss_20b_bytes()
    assert main(run) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "weights experts=mxfp4,default=bf16" in head and "routing skewed:1.2" in head
    # A dense model names no routing.
    assert main(["llm", "lpddr_llm", "llama2_7b", "--gen", "2", "--prompt", "64",
                 "--decode-points", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["routing"] is None


def test_cli_run_hf_config_with_weight_classes(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    cfg = Path(__file__).resolve().parent.parent / "workloads/hf/gpt_oss_20b.json"
    assert main(["run", "lpddr_llm", str(cfg), "--weights", "experts=nvfp4,default=bf16",
                 "--routing", "uniform", "--rows", "0"]) == 0
    assert "gpt_oss_20b" in capsys.readouterr().out


# Sweep axes ------------------------------------------------------------------------------

_SWEEP = """
name: fmt
base: lpddr_llm
workloads:
  - {{hf_config: qwen3_30b_a3b, options: {{phase: decode, context_len: 64}}}}
axes:
  workload.weights: {weights}
  workload.routing: {routing}
"""


def test_sweep_axes_take_weight_mappings_and_routing() -> None:
    sw = loads_sweep(_SWEEP.format(weights="[int4, {experts: mxfp4, default: bf16}]",
                                   routing='[uniform, "skewed:1.2"]'))
    by = {a.option: a.values for a in sw.axes}
    assert by["weights"] == ("int4", "experts=mxfp4,default=bf16")
    assert by["routing"] == ("uniform", "skewed:1.2")


def test_sweep_axes_bad_values_name_key_and_line() -> None:
    with pytest.raises(npusim.SpecError) as err:
        loads_sweep(_SWEEP.format(weights="[int4, {norms: mxfp4, default: bf16}]",
                                  routing='["skewed:x"]'))
    text = str(err.value)
    assert ":7: axes.workload.weights" in text and "norms=mxfp4" in text
    assert ":8: axes.workload.routing" in text and "skewed:x" in text


def test_public_api_names() -> None:
    assert npusim.parse_weights("experts=mxfp4,default=bf16") == {"experts": "mxfp4",
                                                                   "default": "bf16"}
    assert npusim.workloads.BLOCK_FORMATS["nvfp4"].block == 16
    assert math.isclose(npusim.workloads.BITS["mxfp4"], 4.25)
    assert "run_llm" in npusim.__all__ and "parse_weights" in npusim.__all__


def test_cli_serve_takes_weight_classes_and_routing(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["serve", "lpddr_llm", "qwen3_30b_a3b", "--weights",
                 "experts=int4,default=int8", "--routing", "skewed:1.0", "--requests", "8",
                 "--prompt", "fixed:32", "--output", "fixed:4", "--max-batch", "1",
                 "--fidelity", "exact",
                 "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["weights"] == "experts=int4,default=int8" and s["routing"] == "skewed:1.0"
    assert s["requests"] == 8


def test_schema_covers_the_formats() -> None:
    import json

    from npusim.schema import json_schema

    chip = json_schema("chip")["$defs"]["Systolic"]["properties"]["macs_per_cycle"]
    assert set(chip["propertyNames"]["enum"]) == set(PRECISIONS)
    assert "nvfp4" in json.dumps(json_schema("workload"))
    sweep = json_schema("sweep")
    assert "workload.weights" in sweep["properties"]["axes"]["description"]
    assert "routing" in sweep["$defs"]["WorkloadEntry"]["properties"]["options"]["description"]


def test_cli_run_routing_trace(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    import pandas as pd

    cfg = Path(__file__).resolve().parent.parent / "workloads/hf/qwen3_30b_a3b.json"
    # Qwen3-30B-A3B: 48 MoE layers, 128 experts, top-8. Token 0 of every layer picks experts
    # 0..7; the prefill's 512 tokens wrap around to it: 8 experts of 512 rows each.
    trace = tmp_path / "trace.csv"
    trace.write_text("layer,token,expert\n" + "".join(
        f"{layer},0,{e}\n" for layer in range(48) for e in range(8)))
    out = tmp_path / "layers.csv"
    assert main(["run", "lpddr_llm", str(cfg), "--routing", str(trace), "--out", str(out),
                 "--rows", "0"]) == 0
    experts = pd.read_csv(out).query("op == 'expert_matmul'")
    assert len(experts) == 48 * 3
    assert experts["mapping"].str.startswith("experts 8/128 touched (8 x 512 rows)").all()
    capsys.readouterr()
    # One layer short: one line, exit 2.
    trace.write_text("layer,token,expert\n" + "".join(
        f"{layer},0,{e}\n" for layer in range(47) for e in range(8)))
    assert main(["run", "lpddr_llm", str(cfg), "--routing", str(trace)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "47 layer(s)" in err


def test_a_system_sweep_takes_weight_mappings() -> None:
    # Stage footprints count each class at its precision (tests/test_system_precision.py).
    sw = loads_sweep(_SWEEP.replace("base: lpddr_llm", "system: rngd_8card").format(
        weights="[int4, {experts: mxfp4, default: bf16}]", routing="[uniform]"))
    assert {a.option: a.values for a in sw.axes}["weights"] == ("int4",
                                                               "experts=mxfp4,default=bf16")
