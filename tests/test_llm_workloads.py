"""Tests of npusim.workloads.llm and hf_config: HF configs → prefill/decode workloads, sizes.

Published parameter counts: LLaMA-2 model card / Touvron et al. 2023 (7B, 13B, 70B),
LLaMA-1 "33B" = 32.5B (Touvron et al. 2023a, Table 2), GPT-J-6B model card (6B), OPT-30B
(Zhang et al. 2022), BERT-large 340M (Devlin et al. 2019).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npusim.errors import MappingError, WorkloadError
from npusim.spec.arch import load_arch
from npusim.workloads.ir import BITS, Embedding, Matmul, Norm
from npusim.workloads.llm import (
    check_capacity,
    from_hf_config,
    kv_cache_bytes,
    load_hf_config,
    memory_footprint,
    param_count,
    shipped_models,
    weight_bytes,
)

PUBLISHED = {
    "llama2_7b": 7e9, "llama2_13b": 13e9, "llama2_70b": 70e9, "llama_30b": 32.5e9,
    "gptj_6b": 6e9, "opt_30b": 30e9, "bert_large": 340e6,
}
# Exact totals of the transformers classes (model.num_parameters()), where widely quoted.
EXACT = {
    "llama2_7b": 6_738_415_616, "llama2_13b": 13_015_864_320, "llama2_70b": 68_976_648_192,
    "llama_30b": 32_528_943_616, "bert_large": 335_141_888,
}
DECODERS = [m for m in PUBLISHED if m != "bert_large"]


def _config(name: str) -> dict:
    from npusim.workloads.hf_config import hf_config_dir

    return json.loads((hf_config_dir() / f"{name}.json").read_text())


def _sum(wl, kind: str, side: str = "in") -> int:
    get = (lambda la: la.input_bytes()) if side == "in" else (lambda la: la.output_bytes())
    return sum(get(layer).get(kind, 0) for layer in wl.layers)


def test_shipped_models_are_all_there():
    assert set(shipped_models()) >= set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_param_count_matches_published_size(name):
    n = param_count(name)
    assert abs(n - PUBLISHED[name]) / PUBLISHED[name] < 0.04, n
    if name in EXACT:
        assert n == EXACT[name]


def test_config_fields_read_by_their_real_names():
    j = load_hf_config("gptj_6b")
    assert (j.hidden, j.heads, j.layers, j.intermediate, j.rotary_dim) == (4096, 16, 28, 16384, 64)
    assert j.parallel_block and j.family == "gptj"
    o = load_hf_config("opt_30b")
    assert (o.intermediate, o.positions, o.position_rows, o.tied_embeddings) == (
        28672, "learned", 2050, True)
    seventy = load_hf_config("llama2_70b")
    assert (seventy.kv_heads, seventy.group, seventy.head_dim) == (8, 8, 128)
    assert load_hf_config("llama_30b").kv_heads == 52  # no num_key_value_heads: MHA


def test_bad_configs_name_the_field():
    cfg = _config("llama2_7b")
    del cfg["hidden_size"]
    with pytest.raises(WorkloadError, match="hidden_size"):
        load_hf_config(cfg)
    cfg = _config("llama2_7b") | {"num_key_value_heads": 5}
    with pytest.raises(WorkloadError, match="num_key_value_heads"):
        load_hf_config(cfg)
    with pytest.raises(WorkloadError, match="unsupported model"):
        load_hf_config({"model_type": "mamba", "architectures": ["MambaForCausalLM"]})
    with pytest.raises(WorkloadError, match="shipped"):
        load_hf_config("no_such_model")
    with pytest.raises(WorkloadError, match="decode"):
        from_hf_config("bert_large", phase="decode")
    with pytest.raises(WorkloadError, match="weights"):
        from_hf_config("llama2_7b", weights="int3")


def test_config_path_dict_and_name_agree(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(_config("llama2_7b")))
    a = from_hf_config(p, prompt_len=16)
    b = from_hf_config(_config("llama2_7b"), prompt_len=16)
    c = from_hf_config("llama2_7b", prompt_len=16)
    assert a.macs() == b.macs() == c.macs()


def _gemm_params(name: str) -> int:
    """Parameters that are matmul operands once per token: all of them except tables that are
    only gathered (the input token embedding when the LM head is untied, learned positions,
    BERT token types); a tied embedding is a gather and the LM head, so it counts once."""
    c = load_hf_config(name)
    n = param_count(name)
    if not c.tied_embeddings:
        n -= c.vocab * c.embed_dim
    n -= c.position_rows * c.hidden + c.type_vocab * c.hidden
    if c.encoder:  # BERT: the word table is gathered, the pooler is not in the workload
        n -= c.vocab * c.hidden + c.hidden * c.hidden + c.hidden
    return n


def _attention_flops(name: str, batch: int, q: int, ctx: int) -> int:
    c = load_hf_config(name)
    # QK^T and PV: each batch x heads x q x ctx x head_dim MACs, 2 FLOPs per MAC
    return 2 * 2 * c.layers * batch * c.heads * q * ctx * c.head_dim


def _causal_attention_flops(name: str, batch: int, s: int) -> int:
    c = load_hf_config(name)
    # Query i (0-based) of a causal prompt sees keys 0..i: sum of (i + 1) = s(s+1)/2 scores
    # per head instead of s*s; QK^T and PV each take head_dim MACs per score.
    return 2 * 2 * c.layers * batch * c.heads * (s * (s + 1) // 2) * c.head_dim


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_prefill_flops_match_two_n_t_plus_attention(name):
    # Fused attention is causal in a decoder's prefill (the lower triangle: about half the
    # q x ctx work); an encoder (BERT) attends both ways, the full block. The 2·N·T rule
    # counts the LM head at every position: logits="all".
    batch, s = 2, 256
    wl = from_hf_config(name, "prefill", batch=batch, prompt_len=s, logits="all")
    enc = load_hf_config(name).encoder
    attn = (_attention_flops(name, batch, s, s) if enc
            else _causal_attention_flops(name, batch, s))
    expect = 2 * _gemm_params(name) * batch * s + attn
    assert abs(2 * wl.macs() - expect) / expect < 0.01
    # Materialised attention computes the full q x ctx block whatever the mask.
    full = from_hf_config(name, "prefill", batch=batch, prompt_len=s, attention="materialized",
                          logits="all")
    expect = 2 * _gemm_params(name) * batch * s + _attention_flops(name, batch, s, s)
    assert abs(2 * full.macs() - expect) / expect < 0.01
    if not enc:  # the difference is exactly the masked upper triangle
        c = load_hf_config(name)
        masked = c.layers * batch * c.heads * (s * (s - 1) // 2) * c.head_dim * 2
        assert full.macs() - wl.macs() == masked


@pytest.mark.parametrize("name", DECODERS)
def test_decode_flops_match_two_n_plus_attention(name):
    batch, ctx = 3, 1000
    wl = from_hf_config(name, "decode", batch=batch, prompt_len=7, context_len=ctx)
    expect = 2 * _gemm_params(name) * batch + _attention_flops(name, batch, 1, ctx)
    assert abs(2 * wl.macs() - expect) / expect < 0.01
    assert wl.meta["context_len"] == ctx and wl.meta["tokens"] == batch


@pytest.mark.parametrize("kv", ["int4", "int8", "fp16"])
@pytest.mark.parametrize("name", ["llama2_7b", "llama2_70b", "gptj_6b", "opt_30b"])
def test_kv_cache_bytes_per_token(name, kv):
    c = load_hf_config(name)
    per_token = 2 * c.layers * c.kv_heads * c.head_dim * BITS[kv] // 8
    assert kv_cache_bytes(name, 1, 1, kv) == per_token
    assert kv_cache_bytes(name, 4, 100, kv) == 400 * per_token
    batch, ctx = 2, 300
    wl = from_hf_config(name, "decode", batch=batch, context_len=ctx, kv=kv)
    assert _sum(wl, "kv", "out") == batch * per_token  # one token appended per sequence
    assert _sum(wl, "kv", "in") == batch * ctx * per_token  # the whole cache read once


def test_gqa_reduces_kv_traffic_by_group_factor():
    gqa = _config("llama2_70b")
    mha = gqa | {"num_key_value_heads": gqa["num_attention_heads"]}
    a = from_hf_config(gqa, "decode", batch=2, context_len=512)
    b = from_hf_config(mha, "decode", batch=2, context_len=512)
    assert _sum(b, "kv", "in") == 8 * _sum(a, "kv", "in")
    assert _sum(b, "kv", "out") == 8 * _sum(a, "kv", "out")
    attn = lambda wl: sum(la.macs() for la in wl.layers  # noqa: E731
                          if la.name.endswith(("qk", "pv", "attention")))
    assert attn(a) == attn(b)  # the same score and context arithmetic
    assert attn(a) == 80 * 2 * 2 * 64 * 512 * 128  # layers x QK,PV x batch x heads x ctx x d
    fused = next(la for la in a.layers if la.name == "l0.attention")
    assert (fused.batch, fused.heads, fused.kv_heads, fused.q_len, fused.kv_len,
            fused.kv_kind, fused.causal) == (2, 64, 8, 1, 512, "kv", False)
    m = from_hf_config(gqa, "decode", batch=2, context_len=512, attention="materialized")
    assert _sum(m, "kv", "in") == _sum(a, "kv", "in") and attn(m) == attn(a)
    qk = next(la for la in m.layers if la.name == "l0.qk")
    assert (qk.batch, qk.m, qk.k, qk.n, qk.b_kind) == (2 * 8, 8, 128, 512, "kv")


def test_mqa_is_one_kv_head():
    mqa = _config("llama2_7b") | {"num_key_value_heads": 1}
    wl = from_hf_config(mqa, "decode", context_len=64)
    k = next(la for la in wl.layers if la.name == "l0.k_proj")
    assert k.n == 128 and k.out_kind == "kv"
    assert kv_cache_bytes(mqa, 1, 64, "int8") * 32 == kv_cache_bytes("llama2_7b", 1, 64, "int8")


def test_int4_weights_move_half_the_bytes_of_int8():
    w8 = from_hf_config("llama2_13b", "decode", weights="int8")
    w4 = from_hf_config("llama2_13b", "decode", weights="int4")
    gemm = lambda wl: sum(la.input_bytes()["weight"] for la in wl.layers  # noqa: E731
                          if isinstance(la, Matmul) and la.b_kind == "weight")
    assert 2 * gemm(w4) == gemm(w8)
    assert 2 * weight_bytes("llama2_13b", "int4") == weight_bytes("llama2_13b", "int8")
    assert weight_bytes("llama2_13b", "fp16") == 2 * param_count("llama2_13b")


def test_precisions_go_to_their_tensor_classes():
    kw = dict(weights="int4", activations="fp16", kv="fp8")
    wl = from_hf_config("llama2_7b", "decode", **kw)
    by = {la.name: la for la in wl.layers}
    q, k, at = by["l0.q_proj"], by["l0.k_proj"], by["l0.attention"]
    assert (q.weight_precision, q.act_precision, q.out_precision) == ("int4", "fp16", "fp16")
    assert k.out_precision == "fp8" and k.out_kind == "kv"
    assert (at.kv_kind, at.kv_precision, at.act_precision) == ("kv", "fp8", "fp16")
    assert wl.meta["precision"] == {"weights": "int4", "activations": "fp16", "kv": "fp8",
                                    "accum": "fp32"}
    qk = next(la for la in from_hf_config("llama2_7b", "decode", attention="materialized",
                                          **kw).layers if la.name == "l0.qk")
    assert (qk.b_kind, qk.weight_precision) == ("kv", "fp8")
    pre = from_hf_config("llama2_7b", "prefill", prompt_len=8, attention="materialized")
    assert next(la for la in pre.layers if la.name == "l0.qk").b_kind == "act"
    norm = next(la for la in pre.layers if isinstance(la, Norm))
    assert norm.precision == "fp16" and norm.norm == "rmsnorm"  # int8 run keeps norms in fp16


def test_block_structure_per_family():
    names = lambda n, a="fused": [la.name for la in  # noqa: E731
                                  from_hf_config(n, prompt_len=4, attention=a).layers
                                  if la.name.startswith("l0.")]
    assert names("llama2_7b", "materialized") == [
        "l0.attn_norm", "l0.q_proj", "l0.k_proj", "l0.v_proj", "l0.rotary", "l0.qk",
        "l0.softmax", "l0.pv", "l0.o_proj", "l0.attn_residual", "l0.mlp_norm",
        "l0.gate_proj", "l0.up_proj", "l0.swiglu", "l0.down_proj", "l0.mlp_residual"]
    assert names("llama2_7b") == [
        "l0.attn_norm", "l0.q_proj", "l0.k_proj", "l0.v_proj", "l0.rotary", "l0.attention",
        "l0.o_proj", "l0.attn_residual", "l0.mlp_norm",
        "l0.gate_proj", "l0.up_proj", "l0.swiglu", "l0.down_proj", "l0.mlp_residual"]
    gptj = names("gptj_6b")
    assert gptj[0] == "l0.ln" and gptj[-1] == "l0.residual" and "l0.gelu" in gptj
    assert sum(n.endswith(("norm", "ln")) for n in gptj) == 1  # parallel block: one norm
    opt = names("opt_30b")
    assert "l0.rotary" not in opt and "l0.relu" in opt
    emb = [la for la in from_hf_config("opt_30b", prompt_len=4).layers
           if isinstance(la, Embedding)]
    assert [e.name for e in emb] == ["embed_tokens", "embed_positions"]
    rot = next(la for la in from_hf_config("gptj_6b", prompt_len=4).layers
               if la.name == "l0.rotary")
    assert rot.elements == 4 * (16 + 16) * 64  # partial rotary: 64 of 256 dims per head


def test_lm_head_last_position_by_default_every_position_on_request():
    # Serving engines sample from the last position of each prompt: one LM-head row per
    # sequence; logits="all" is the HF forward (every position); decode has one anyway.
    pre = from_hf_config("llama2_7b", "prefill", batch=2, prompt_len=16)
    every = from_hf_config("llama2_7b", "prefill", batch=2, prompt_len=16, logits="all")
    dec = from_hf_config("llama2_7b", "decode", batch=2, context_len=16)
    assert pre.layers[-1].name == dec.layers[-1].name == every.layers[-1].name == "lm_head"
    assert (pre.layers[-1].m, every.layers[-1].m, dec.layers[-1].m) == (2, 32, 2)
    assert every.macs() - pre.macs() == (32 - 2) * 4096 * 32000


def test_bert_matches_the_transformer_builder():
    transformer = pytest.importorskip("npusim.workloads.transformer")
    ours = from_hf_config("bert_large", prompt_len=384, batch=2)
    theirs = transformer.bert_large(seq_len=384, batch=2)
    assert ours.macs() == theirs.macs()


@settings(max_examples=25, deadline=None)
@given(heads=st.sampled_from([4, 8, 16]), group=st.sampled_from([1, 2, 4]),
       head_dim=st.sampled_from([16, 64]), layers=st.integers(1, 4),
       batch=st.integers(1, 3), ctx=st.integers(1, 300))
def test_decode_arithmetic_property(heads, group, head_dim, layers, batch, ctx):
    kvh = heads // group if heads % group == 0 else heads
    cfg = {"model_type": "llama", "hidden_size": heads * head_dim, "intermediate_size": 96,
           "num_attention_heads": heads, "num_key_value_heads": kvh,
           "num_hidden_layers": layers, "vocab_size": 100}
    wl = from_hf_config(cfg, "decode", batch=batch, context_len=ctx)
    h = heads * head_dim
    per_layer = h * h * 2 + 2 * h * kvh * head_dim + 3 * h * 96
    assert wl.macs() == batch * (layers * per_layer + h * 100) + \
        2 * layers * batch * heads * ctx * head_dim
    assert _sum(wl, "kv", "in") == kv_cache_bytes(cfg, batch, ctx, "int8")


# Capacity ------------------------------------------------------------------------------------

def test_30b_int4_fits_32gb_and_fp16_does_not():
    chip = load_arch("lpddr_llm")
    assert chip.dram.capacity_bytes == 32 * 2**30
    fp = check_capacity(chip, "llama_30b", phase="decode", batch=1, context_len=2048,
                        weights="int4", kv="int8")
    assert fp.weight_bytes == weight_bytes("llama_30b", "int4")
    assert fp.kv_cache_bytes == kv_cache_bytes("llama_30b", 1, 2048, "int8")
    assert fp.total_bytes < chip.dram.capacity_bytes
    with pytest.raises(MappingError) as err:
        check_capacity(chip, "llama_30b", phase="decode", context_len=2048, weights="fp16")
    msg = str(err.value)
    assert "\n" not in msg
    assert "weights 60.59 GiB" in msg and "> DRAM capacity 32.00 GiB by" in msg
    over = fp.kv_cache_bytes + weight_bytes("llama_30b", "fp16") + fp.activation_bytes \
        - chip.dram.capacity_bytes
    assert f"({over:,} bytes)" in msg


def test_capacity_counts_the_kv_cache_of_large_batches():
    chip = load_arch("tpu_v4")
    wl = from_hf_config("llama2_7b", "decode", batch=1, context_len=4096, weights="int8")
    check_capacity(chip, wl)
    big = from_hf_config("llama2_7b", "decode", batch=64, context_len=4096, weights="int8",
                         kv="fp16")
    with pytest.raises(MappingError, match=r"KV cache 128\.00 GiB"):
        check_capacity(chip, big)


def test_footprint_of_a_plain_workload_comes_from_its_layers():
    wl = from_hf_config("llama2_7b", "decode", context_len=100)
    plain = type(wl)(wl.name, wl.layers, {})
    fp = memory_footprint(plain)
    # K and V of 32 layers x 32 heads x 128 for 100 read + 1 appended tokens, int8
    assert fp.kv_cache_bytes == 2 * 32 * 32 * 128 * 101
    # LLaMA-2-7B has 6,738,415,616 parameters (the published checkpoint's count); the plain
    # workload holds gathered rows instead of the token table, so it is short of the int8
    # figure by less than the table's 32000 x 4096 bytes
    assert 0 < 6_738_415_616 - fp.weight_bytes <= 32000 * 4096
