"""Attention forms: multi-head latent attention (expanded prefill, absorbed decode), sliding
windows, sinks, q/k norms, extra norms, weights per class and the materialised form's
tensor sizes, each against a count made here from the published shapes."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moe_configs import deepseek_v3, gpt_oss_20b, qwen3_30b_a3b, tiny_moe

import npusim
from npusim.compiler.lower import compile_workload
from npusim.workloads.hf_config import load_hf_config
from npusim.workloads.ir import (
    BITS,
    Attention,
    ExpertMatmul,
    Matmul,
    Norm,
    Softmax,
    Workload,
)
from npusim.workloads.llm import (
    class_params,
    from_hf_config,
    memory_footprint,
    model_kv_cache_bytes,
    model_weight_bytes,
)

LORA, ROPE, NOPE, V, HEADS, HIDDEN = 512, 64, 128, 128, 128, 7168


def _layer(wl, name):
    return next(la for la in wl.layers if la.name == name)


def _program(chip, wl):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {lp.name: lp for lp in compile_workload(chip, wl).layers}


# Multi-head latent attention --------------------------------------------------------------

@pytest.mark.parametrize("kv", ["int8", "fp8", "bf16", "fp32"])
def test_mla_kv_bytes_per_token_per_layer_are_latent_plus_rope(kv):
    cfg = deepseek_v3(layers=2, first_dense=2)
    per_token = (LORA + ROPE) * BITS[kv] // 8
    batch, ctx = 3, 200
    dec = from_hf_config(cfg, "decode", batch=batch, context_len=ctx, kv=kv)
    write = _layer(dec, "l0.kv_a_proj").output_bytes()["kv"]
    assert write == batch * per_token  # one new token per sequence, its latent + rope key
    att = _layer(dec, "l0.attention")
    assert att.input_bytes()["kv"] == batch * ctx * per_token  # K only: V is its first columns
    assert model_kv_cache_bytes(cfg, batch, ctx, kv) == 2 * batch * ctx * per_token
    assert memory_footprint(dec).kv_cache_bytes == 2 * batch * ctx * per_token
    pre = from_hf_config(cfg, "prefill", batch=batch, prompt_len=64, kv=kv)
    assert _layer(pre, "l1.kv_a_proj").output_bytes()["kv"] == batch * 64 * per_token


def test_mla_decode_reads_the_compressed_cache_once():
    cfg = deepseek_v3(layers=1, first_dense=1)
    chip = npusim.load_arch("lpddr_llm")
    for batch in (1, 4, 8):
        dec = from_hf_config(cfg, "decode", batch=batch, context_len=300)
        lp = _program(chip, dec)["l0.attention"]
        cache = batch * 300 * (LORA + ROPE)
        q = batch * HEADS * (LORA + ROPE)
        assert lp.total("dram_read_bytes") in (cache, cache + q)
        # one shared latent head: QK over latent + rope, PV over the latent
        assert lp.total("macs") == batch * HEADS * 300 * ((LORA + ROPE) + LORA)


def test_mla_forms_by_hand():
    cfg = deepseek_v3(layers=1, first_dense=1)
    t = 5
    dec = from_hf_config(cfg, "decode", batch=t, context_len=100)
    att = _layer(dec, "l0.attention")
    assert (att.heads, att.kv_heads, att.head_dim, att.dv, att.kv_shared) == (
        HEADS, 1, LORA + ROPE, LORA, True)
    qa = _layer(dec, "l0.q_absorb")
    oa = _layer(dec, "l0.o_absorb")
    assert isinstance(qa, ExpertMatmul) and qa.tokens_per_expert == (t,) * HEADS
    assert (qa.k, qa.n, oa.k, oa.n) == (NOPE, LORA, LORA, V)
    proj = (HIDDEN * 1536 + 1536 * HEADS * (NOPE + ROPE) + HIDDEN * (LORA + ROPE)
            + HEADS * NOPE * LORA + HEADS * LORA * V + HEADS * V * HIDDEN)
    mlp = 3 * HIDDEN * 18432
    attn = HEADS * 100 * (LORA + ROPE + LORA)
    assert dec.macs() == t * (proj + mlp + attn + HIDDEN * 129280)
    pre = from_hf_config(cfg, "prefill", batch=1, prompt_len=t, logits="all")
    kvb = _layer(pre, "l0.kv_b_proj")
    assert (kvb.k, kvb.n) == (LORA, HEADS * (NOPE + V))
    # the absorbed products use kv_b_proj's weights, split per head: the same bytes
    assert (qa.input_bytes()["weight"] + oa.input_bytes()["weight"]
            == kvb.input_bytes()["weight"])
    a = _layer(pre, "l0.attention")
    assert (a.kv_heads, a.head_dim, a.dv, a.kv_kind) == (HEADS, NOPE + ROPE, V, "act")
    proj = (HIDDEN * 1536 + 1536 * HEADS * (NOPE + ROPE) + HIDDEN * (LORA + ROPE)
            + LORA * HEADS * (NOPE + V) + HEADS * V * HIDDEN)
    causal = t * (t + 1) // 2
    assert pre.macs() == t * (proj + mlp + HIDDEN * 129280) + HEADS * (NOPE + ROPE + V) * causal


# Sliding windows ---------------------------------------------------------------------------

def test_sliding_window_kv_reads_stop_growing_at_the_window():
    cfg = gpt_oss_20b(layers=2)  # l0 sliding (128), l1 full
    chip = npusim.load_arch("lpddr_llm")
    batch, per_key = 4, 2 * 8 * 64  # K and V of 8 KV heads, int8
    for ctx in (64, 128, 129, 200, 1000, 4096):
        wl = from_hf_config(cfg, "decode", batch=batch, context_len=ctx)
        prog = _program(chip, wl)
        assert prog["l0.attention"].total("dram_read_bytes") == batch * min(ctx, 128) * per_key
        assert prog["l1.attention"].total("dram_read_bytes") == batch * ctx * per_key
        # a decode step writes one token per layer, whatever the window
        assert _layer(wl, "l0.k_proj").output_bytes()["kv"] == batch * 8 * 64
        assert model_kv_cache_bytes(cfg, batch, ctx) == batch * (min(ctx, 128) + ctx) * per_key


def test_window_prefill_computes_fewer_blocks_and_counts_only_the_window():
    cfg = gpt_oss_20b(layers=2)
    chip = npusim.load_arch("lpddr_llm")
    s, w = 512, 128
    wl = from_hf_config(cfg, "prefill", batch=1, prompt_len=s)
    prog = _program(chip, wl)
    local, full = _layer(wl, "l0.attention"), _layer(wl, "l1.attention")
    # query i sees min(i + 1, w) keys
    seen = sum(min(i + 1, w) for i in range(s))
    assert local.macs() == 64 * (64 + 64) * seen
    assert full.macs() == 64 * (64 + 64) * s * (s + 1) // 2
    assert local.macs() <= prog["l0.attention"].total("macs") < prog["l1.attention"].total("macs")


def test_sinks_add_one_logit_per_softmax_row():
    cfg = gpt_oss_20b(layers=2)
    plain = dataclasses.replace(cfg, attention_sinks=False)
    chip = npusim.load_arch("hbm_llm")
    batch = 2
    with_s = _program(chip, from_hf_config(cfg, "decode", batch=batch, context_len=300))
    without = _program(chip, from_hf_config(plain, "decode", batch=batch, context_len=300))
    rows = batch * 64
    for name in ("l0.attention", "l1.attention"):
        assert with_s[name].vector_special_ops - without[name].vector_special_ops == rows
        assert with_s[name].vector_alu_ops - without[name].vector_alu_ops == 3 * rows


# Norms, weights per class, materialised sizes ---------------------------------------------

def test_qk_norms_per_head_and_extra_norms():
    wl = from_hf_config(qwen3_30b_a3b(layers=1), "decode", batch=3, context_len=10)
    qn, kn = _layer(wl, "l0.q_norm"), _layer(wl, "l0.k_norm")
    assert isinstance(qn, Norm) and (qn.rows, qn.cols, kn.rows, kn.cols) == (3 * 32, 128,
                                                                              3 * 4, 128)
    gemma = dataclasses.replace(load_hf_config("llama2_7b"), layers=2, extra_norms=2)
    names = [la.name for la in from_hf_config(gemma, "decode", context_len=8).layers]
    assert names.index("l0.o_proj") < names.index("l0.post_attn_norm") < names.index(
        "l0.attn_residual")
    assert names.index("l0.down_proj") < names.index("l0.post_mlp_norm") < names.index(
        "l0.mlp_residual")


def test_weights_per_class():
    cfg = tiny_moe(experts=8, top_k=2, layers=2)
    weights = {"experts": "int4", "lm_head": "bf16", "default": "int8"}
    wl = from_hf_config(cfg, "decode", batch=1, context_len=8, weights=weights)
    prec = {la.name: la.weight_precision for la in wl.layers
            if isinstance(la, (Matmul, ExpertMatmul))}
    assert prec["l0.experts.up_proj"] == "int4" and prec["l0.q_proj"] == "int8"
    assert prec["l1.router"] == "int8" and prec["lm_head"] == "bf16"
    n = class_params(cfg)
    h, e, ei = 256, 8, 128
    assert n["experts"] == 2 * e * 3 * h * ei and n["router"] == 2 * h * e
    expect = (n["experts"] // 2 + 2 * n["lm_head"] + sum(v for k, v in n.items()
                                                           if k not in ("experts", "lm_head")))
    assert model_weight_bytes(cfg, weights) == expect
    assert memory_footprint(wl).weight_bytes == expect


def test_materialised_attention_keeps_one_size_per_tensor():
    wl = from_hf_config("llama2_7b", "prefill", batch=1, prompt_len=32,
                        attention="materialized")
    qk, soft, pv = _layer(wl, "l0.qk"), _layer(wl, "l0.softmax"), _layer(wl, "l0.pv")
    assert isinstance(soft, Softmax)
    assert qk.out_precision == soft.precision  # the scores
    assert soft.probs_precision == pv.act_precision  # the probabilities
    elems = 32 * 32 * 32
    assert qk.output_bytes()["act"] == soft.input_bytes()["act"] == elems * 2
    p_read = pv.batch * pv.m * pv.k * BITS[pv.act_precision] // 8  # P·V's A operand
    assert soft.output_bytes()["act"] == p_read == elems * 1


def test_attention_layer_fields_follow_the_config():
    wl = from_hf_config(gpt_oss_20b(layers=4), "decode", batch=1, context_len=1000)
    atts = [la for la in wl.layers if isinstance(la, Attention)]
    assert [a.window for a in atts] == [128, None, 128, None]
    assert all(a.sinks for a in atts)
    assert np.all([a.keys_read() for a in atts] == np.array([128, 1000, 128, 1000]))


def test_rotary_only_where_the_layer_applies_it():
    # Llama 4's NoPE layers, EXAONE 4's global layers: no rotary work there.
    cfg = dataclasses.replace(load_hf_config("llama2_7b"), layers=4,
                              rope_layers=(True, True, True, False))
    names = {la.name for la in from_hf_config(cfg, "decode", context_len=8).layers}
    assert {f"l{i}.rotary" for i in range(4)} & names == {"l0.rotary", "l1.rotary",
                                                           "l2.rotary"}


@settings(max_examples=25, deadline=None)
@given(q=st.integers(1, 96), extra=st.integers(0, 300), w=st.integers(1, 200),
       causal=st.booleans(), dv=st.sampled_from([32, 64, 96]), shared=st.booleans(),
       sinks=st.booleans())
def test_windowed_fused_attention_computes_at_least_its_scores(q, extra, w, causal, dv,
                                                               shared, sinks):
    # Every unmasked score is computed (the tiles' MACs cover the layer's), and a window
    # never adds work.
    d = 96 if shared else 64
    dv = min(dv, d) if shared else dv
    kv = q + extra
    shape = dict(batch=2, heads=4, kv_heads=2, q_len=q, kv_len=kv, head_dim=d,
                 v_head_dim=dv, causal=causal, kv_shared=shared, sinks=sinks)
    win = Attention("a", window=w, **shape)
    full = Attention("a", **shape)
    chip = npusim.load_arch("lpddr_llm")
    lw = _program(chip, Workload("w", (win,)))["a"]
    lf = _program(chip, Workload("f", (full,)))["a"]
    assert lw.total("macs") >= win.macs()
    assert lw.total("macs") <= lf.total("macs")
    assert lw.macs == win.macs() <= full.macs() == lf.macs
