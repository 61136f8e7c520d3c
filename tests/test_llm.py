"""Tests of npusim.llm (run_llm) and the ``npusim llm`` command, on a tiny LLaMA-style model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from npusim.cli import main
from npusim.errors import MappingError, WorkloadError
from npusim.llm import run_llm
from npusim.spec.arch import load_arch
from npusim.workloads.llm import weight_bytes

HF = Path(__file__).resolve().parents[1] / "workloads" / "hf"
TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}


@pytest.fixture(scope="module")
def chip():
    return load_arch("lpddr_llm")


@pytest.fixture(scope="module")
def res(chip):
    return run_llm(chip, TINY, prompt=32, gen=9, batch=2, weights="int4", kv="int8")


def test_metrics_follow_from_the_simulated_steps(res):
    assert res.ttft_s == res.prefill.summary()["latency_s"] > 0
    assert res.decode_steps == 8
    assert [c for c, _, _ in res.decode_samples] == [33, 36, 40]
    lat = [t for _, t, _ in res.decode_samples]
    assert min(lat) <= res.tpot_s <= max(lat)
    assert res.tokens_per_s == pytest.approx(2 / res.tpot_s)
    assert res.total_time_s == pytest.approx(res.ttft_s + 8 * res.tpot_s)
    assert res.average_power_w == pytest.approx(res.total_energy_j / res.total_time_s)
    e = [x for _, _, x in res.decode_samples]
    assert min(e) / 2 <= res.j_per_token <= max(e) / 2
    df = res.decode_layers
    assert "l1.attention" in set(df["layer"]) and len(df) == len(res.decode.layers)


def test_footprint_holds_the_cache_at_its_largest(res):
    # Counted by hand from TINY (head_dim 512 / 8 = 64, untied LM head, RMSNorm weights only):
    h, inter, kvd, vocab = 512, 1024, 2 * 64, 2048
    per_layer = 2 * h * h + 2 * h * kvd + 3 * h * inter + 2 * h  # q,o + k,v + gate,up,down + 2 norms
    params = 2 * per_layer + 2 * vocab * h + h  # embedding + LM head + final norm
    assert params == 6_556_160
    assert res.footprint.weight_bytes == params // 2  # int4: two per byte
    # K and V, 2 layers x 2 KV heads x 64 x (32 prompt + 9 generated) x batch 2, one byte each
    assert res.footprint.kv_cache_bytes == 2 * 2 * 2 * 64 * 41 * 2


def test_decode_step_is_no_faster_than_streaming_the_weights(chip):
    # 135 MB of int8 matmul weights: more than the chip's 96 MiB of SRAM, so they stream.
    big = TINY | {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 3}
    gemm_bytes = weight_bytes(big, "int8") - 2048 * 2048  # the token table is only gathered
    assert gemm_bytes > 96 * 2**20
    r = run_llm(chip, big, prompt=16, gen=2, weights="int8", decode_points=1)
    assert r.tpot_s >= gemm_bytes / chip.dram.peak_bandwidth
    assert r.summary()["decode_dram_read_bytes"] >= gemm_bytes


def test_capacity_is_checked_before_simulating():
    with pytest.raises(MappingError, match=r"> DRAM capacity 32\.00 GiB by"):
        run_llm("tpu_v4", "llama_30b", weights="fp16")
    with pytest.raises(MappingError, match="encoder-only"):
        run_llm("tpu_v4", "bert_large")


def test_cli_json_and_errors(tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY))
    rc = main(["llm", "lpddr_llm", str(cfg), "--prompt", "16", "--gen", "3", "--weights",
               "int4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["gen"] == 3 and out["weights_precision"] == "int4"
    assert out["ttft_s"] > 0 and out["tpot_s"] > 0
    rc = main(["llm", "lpddr_llm", str(cfg), "--prompt", "16", "--gen", "2", "--layers"])
    text = capsys.readouterr().out
    assert rc == 0 and "TTFT" in text and "l0.attention" in text
    rc = main(["llm", "tpu_v4", "llama_30b", "--weights", "fp16"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "DRAM capacity" in err


def test_logits_last_or_all(chip, res, capsys):
    """The prefill's LM head: one row per sequence by default, one per prompt token with
    logits='all'; hidden x vocab MACs per row (a hand count). Decode is the same either way."""
    every = run_llm(chip, TINY, prompt=32, gen=9, batch=2, weights="int4", kv="int8",
                    logits="all")
    heads = [r.prefill.layers.set_index("layer").loc["lm_head"] for r in (res, every)]
    assert [int(h["macs"]) for h in heads] == [2 * 512 * 2048, 2 * 32 * 512 * 2048]
    assert (res.summary()["logits"], every.summary()["logits"]) == ("last", "all")
    assert every.ttft_s > res.ttft_s and every.tpot_s == res.tpot_s
    with pytest.raises(WorkloadError, match="logits must be 'last' or 'all'"):
        run_llm(chip, TINY, prompt=32, gen=2, logits="first")
    with pytest.raises(SystemExit) as exc:
        main(["llm", "lpddr_llm", "llama2_7b", "--logits", "first"])
    assert exc.value.code == 2


def test_llm_says_what_a_step_streams(tmp_path, capsys):
    """gpt-oss-20b cut to two blocks: DRAM holds its embedding table (vocab x hidden int8
    bytes, counted by hand), which a step only gathers rows of; a decode step at batch 1
    reads the experts 1 token touches: its top-k, 4 of 32."""
    d = json.loads((HF / "gpt_oss_20b.json").read_text())
    d["num_hidden_layers"], d["layer_types"] = 2, d["layer_types"][:2]
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(d))
    rc = main(["llm", "lpddr_llm", str(cfg), "--prompt", "16", "--gen", "2", "--quiet"])
    out = capsys.readouterr().out
    table = d["vocab_size"] * d["hidden_size"] / 2**30
    assert rc == 0 and f"({table:.2f} GiB of the" in out and "embedding table" in out
    assert "only those its batch touches, 4.0 of 32 per MoE layer" in out
