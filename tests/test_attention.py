"""Fused (flash-style) attention: the IR op's arithmetic, the compiler's DRAM traffic and
vector work, the fallback, fused vs materialised, capacity, the max-positions warning, CLI.

Every expected value is derived here by hand or by an explicit loop over the flash-attention
schedule (query blocks outer, K/V blocks inner), never by the functions under test.
"""

from __future__ import annotations

import json
import re
import warnings

import pytest

from npusim.cli import main
from npusim.compiler.lower import compile_workload
from npusim.errors import MappingError
from npusim.llm import run_llm
from npusim.simulate import simulate
from npusim.spec.arch import chip_from_dict, load_arch
from npusim.workloads.ir import Attention, Workload
from npusim.workloads.llm import (
    ContextLengthWarning,
    check_capacity,
    from_hf_config,
    memory_footprint,
)

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 8192,
        "hidden_act": "silu"}


def _chip(sram: str, cores: int = 1):
    """A small test chip: 32x32 weight-stationary int8 arrays, 256-lane vector unit."""
    return chip_from_dict({
        "name": "test", "sources": ["a test chip"], "clock": "1 GHz",
        "cores": {"count": cores, "core": {
            "systolic": {"rows": 32, "cols": 32, "dataflow": "ws",
                         "macs_per_cycle": {"int8": 1, "fp16": 0.5}},
            "vector": {"lanes": 256, "ops_per_cycle": {"alu": 1, "special": 0.25}},
            "sram": {"size": sram, "read_bytes_per_cycle": 64, "write_bytes_per_cycle": 128}}},
        "dram": {"standard": "LPDDR5X-8533", "channels": 2, "capacity": "4 GiB"}})


def _alone(chip, layer):
    """The layer compiled on its own: Q comes from DRAM, O goes to DRAM."""
    return compile_workload(chip, Workload("w", (layer,))).layers[0]


def _blocks(mapping: str) -> tuple[int, int]:
    m = re.search(r"bq(\d+) bk(\d+)", mapping)
    assert m, mapping
    return int(m.group(1)), int(m.group(2))


def _schedule(q: int, kv: int, bq: int, bk: int, causal: bool):
    """(query block size, K/V block index, K/V block size, first block?, last block?,
    cut by the diagonal?) of every step of one pair, by explicit loops."""
    off = kv - q
    steps = []
    for i0 in range(0, q, bq):
        cq = min(bq, q - i0)
        visited = [j0 for j0 in range(0, kv, bk) if not causal or j0 <= off + i0 + cq - 1]
        for n, j0 in enumerate(visited):
            ck = min(bk, kv - j0)
            cut = causal and j0 + ck - 1 > off + i0  # a key after the block's first query
            steps.append((cq, j0 // bk, ck, n == 0, n == len(visited) - 1, cut))
    return steps


# The op's arithmetic ---------------------------------------------------------------------

@pytest.mark.parametrize(("q", "kv"), [(5, 5), (3, 7), (1, 9)])
def test_causal_macs_are_the_lower_triangle(q, kv):
    batch, heads, kv_heads, d = 2, 6, 2, 8
    at = Attention("a", batch=batch, heads=heads, kv_heads=kv_heads, q_len=q, kv_len=kv,
                   head_dim=d, causal=True)
    # Query i (0-based) is position kv - q + i and sees keys 0 .. kv - q + i.
    seen = sum(1 for i in range(q) for key in range(kv) if key <= kv - q + i)
    assert at.macs() == batch * heads * seen * d * 2  # QK^T and PV: d MACs per score each
    if q == kv == 5:  # by hand: 1 + 2 + 3 + 4 + 5 = 15 scores per head
        assert at.macs() == 2 * 6 * 15 * 8 * 2 == 2880
    full = Attention("a", batch=batch, heads=heads, kv_heads=kv_heads, q_len=q, kv_len=kv,
                     head_dim=d)
    assert full.macs() == batch * heads * q * kv * d * 2


def test_prefill_is_causal_decode_is_full():
    c = TINY
    pre = from_hf_config(c, "prefill", batch=3, prompt_len=10)
    at = next(la for la in pre.layers if la.name == "l0.attention")
    assert at.causal and (at.heads, at.kv_heads, at.head_dim) == (8, 2, 64)
    assert at.macs() == 3 * 8 * (10 * 11 // 2) * 64 * 2
    dec = from_hf_config(c, "decode", batch=3, context_len=100)
    at = next(la for la in dec.layers if la.name == "l0.attention")
    assert not at.causal and at.macs() == 3 * 8 * 100 * 64 * 2
    # An encoder attends both ways.
    bert = next(la for la in from_hf_config("bert_large", prompt_len=16).layers
                if la.name == "l0.attention")
    assert not bert.causal and bert.macs() == 16 * 16 * 16 * 64 * 2  # 16 heads of 64


def test_attention_op_rejects_bad_shapes():
    with pytest.raises(ValueError, match="does not divide"):
        Attention("a", heads=6, kv_heads=4, q_len=1, kv_len=1, head_dim=1)
    with pytest.raises(ValueError, match="q_len 8 exceeds kv_len 4"):
        Attention("a", heads=1, q_len=8, kv_len=4, head_dim=1)
    with pytest.raises(TypeError, match="required"):  # the shape is never a silent default
        Attention("a", heads=4, q_len=1, kv_len=1)  # type: ignore[call-arg]
    assert Attention("a", heads=4, q_len=1, kv_len=1, head_dim=8).kv_heads == 4  # MHA


# DRAM traffic: Q, K, V in, O out, never scores ----------------------------------------------

def test_fused_traffic_reads_kv_once_when_a_pair_fits():
    # 4 MiB of SRAM: a pair's K and V (2 x 512 x 64 B) stay on chip across query blocks.
    at = Attention("a", heads=4, kv_heads=2, q_len=512, kv_len=512, head_dim=64, causal=True)
    lp = _alone(_chip("4 MiB"), at)
    assert lp.mapping.startswith("fused") and "K/V kept per pair" in lp.mapping
    q = 4 * 512 * 64  # int8 Q of 4 heads
    kv = 2 * 2 * 512 * 64  # K and V of 2 KV heads
    assert lp.total("dram_read_bytes") == q + kv
    assert lp.total("dram_write_bytes") == q  # O only: no score, no probability
    assert lp.macs == 4 * (512 * 513 // 2) * 64 * 2


def test_fused_traffic_rereads_kv_per_query_block_when_it_does_not_fit():
    # 128 KiB of SRAM: a pair's K and V (2 x 2048 x 64 B = 256 KiB) cannot stay; flash
    # attention's outer loop over query blocks reads every K/V block a query block visits.
    d, s = 64, 2048
    at = Attention("a", heads=4, kv_heads=2, q_len=s, kv_len=s, head_dim=d, causal=True)
    lp = _alone(_chip("128 KiB"), at)
    assert "K/V re-read per query block" in lp.mapping
    bq, bk = _blocks(lp.mapping)
    kv_reads = sum(2 * ck * d for _, _, ck, _, _, _ in _schedule(s, s, bq, bk, True))
    q = 4 * s * d
    assert lp.total("dram_read_bytes") == q + 2 * kv_reads  # two pairs
    assert lp.total("dram_write_bytes") == q
    # With every block square, query block i visits i + 1 K/V blocks: the read factor is
    # (n + 1) / 2 for n query blocks, against once for a kept K/V.
    if bq == bk:
        n = s // bq
        assert kv_reads == (n + 1) / 2 * 2 * s * d
    # The SRAM's K/V reads are as many as the steps (each step's array reads its block).
    assert lp.n_tiles == 2 * len(_schedule(s, s, bq, bk, True))


def test_online_softmax_vector_work_is_counted_per_block():
    g, d, s = 2, 64, 2048
    at = Attention("a", heads=4, kv_heads=2, q_len=s, kv_len=s, head_dim=d, causal=True)
    lp = _alone(_chip("128 KiB"), at)
    bq, bk = _blocks(lp.mapping)
    alu = special = executed = 0
    for cq, _, ck, first, last, cut in _schedule(s, s, bq, bk, True):
        rows, e = g * cq, g * cq * ck
        alu += 3 * e + (e if cut else 0)  # max, subtract, sum; the mask select when cut
        special += e  # exp
        if not first:  # merge maxima, correction, rescale the sum and O (2 per element)
            alu += rows * (4 + 2 * d)
            special += rows
        if last:  # O / l
            alu += rows * d
            special += rows
        executed += 2 * e * d
    assert lp.vector_alu_ops == 2 * alu and lp.vector_special_ops == 2 * special
    assert lp.total("macs") == 2 * executed  # masked MACs of cut blocks are executed
    assert lp.macs == 4 * (s * (s + 1) // 2) * d * 2 < lp.total("macs")


def test_split_kv_decode_uses_every_core_and_counts_the_combine():
    # One (sequence, KV head) pair on 4 cores: the cache is split in 4 parts.
    d, ctx, g = 64, 4096, 4
    at = Attention("a", heads=4, kv_heads=1, q_len=1, kv_len=ctx, head_dim=d)
    lp = _alone(_chip("4 MiB", cores=4), at)
    assert all(len(t) for t in lp.tiles)
    q = g * d
    kv = 2 * ctx * d
    partial = g * (d + 2) * 4  # O, max and sum of every part, fp32
    assert lp.total("dram_read_bytes") == 4 * q + kv + 4 * partial
    assert lp.total("dram_write_bytes") == 4 * partial + q


def test_fallback_is_materialised_when_no_block_fits():
    # 16 KiB: not even a 32-key block with its scores fits; scores go through DRAM.
    d, s = 64, 256
    at = Attention("a", heads=4, kv_heads=2, q_len=s, kv_len=s, head_dim=d, causal=True)
    lp = _alone(_chip("16 KiB"), at)
    assert lp.mapping.startswith("materialized")
    scores = 4 * s * s * 2  # fp16, the full block
    probs = 4 * s * s * 1  # int8, as P·V reads them (one size for each tensor)
    # S written by Q·K^T, P written by the softmax, O by P·V
    assert lp.total("dram_write_bytes") == pytest.approx(scores + probs + 4 * s * d, rel=1e-12)


# Fused against materialised on one model -------------------------------------------------------

@pytest.mark.parametrize("preset", ["lpddr_llm", "rngd"])
def test_fused_is_never_slower_and_moves_fewer_bytes(preset):
    chip = load_arch(preset)
    for phase, kw in (("prefill", {"prompt_len": 4096}), ("decode", {"context_len": 4096}),
                      ("decode", {"context_len": 1000, "batch": 8})):
        f, m = (simulate(chip, from_hf_config(TINY, phase, attention=a, **kw)).summary()
                for a in ("fused", "materialized"))
        assert f["latency_s"] <= m["latency_s"], (phase, kw)
        if phase == "prefill":  # 8 heads x 4096^2 fp16 scores do not fit on chip
            fb = f["dram_read_bytes"] + f["dram_write_bytes"]
            mb = m["dram_read_bytes"] + m["dram_write_bytes"]
            assert fb < mb
            assert mb - fb >= 2 * 2 * 8 * 4096**2 * 2 * 0.9  # most of S and P, 2 layers


# Capacity -------------------------------------------------------------------------------------------

def test_footprint_of_a_32k_prompt_excludes_scores():
    chip = load_arch("rngd")
    s = 32768
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContextLengthWarning)
        fused = memory_footprint("llama2_7b", phase="prefill", prompt_len=s)
        mat = memory_footprint("llama2_7b", phase="prefill", prompt_len=s,
                               attention="materialized")
        # The largest fused activation: the SwiGLU's two int8 inputs and its output, 11008
        # wide per token (the LM head runs on the last position only).
        assert fused.activation_bytes == s * 3 * 11008
        # Materialised: the softmax's fp16 scores in and int8 probabilities out, 32 heads x
        # s x s each.
        assert mat.activation_bytes == 32 * s * s * (2 + 1) == 96 * 2**30
        check_capacity(chip, "llama2_7b", phase="prefill", prompt_len=s)
        with pytest.raises(MappingError, match=r"activations 96\.00 GiB"):
            check_capacity(chip, "llama2_7b", phase="prefill", prompt_len=s,
                           attention="materialized")


# Positions past the model's maximum --------------------------------------------------------------

def test_warning_past_max_position_embeddings():
    cfg = TINY | {"max_position_embeddings": 64}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_hf_config(cfg, "prefill", prompt_len=64)  # at the limit: no warning
        run_llm("lpddr_llm", cfg, prompt=60, gen=4, decode_points=1)
    with pytest.warns(ContextLengthWarning, match="prompt = 65 positions exceed its "
                      "max_position_embeddings 64"):
        from_hf_config(cfg, "prefill", prompt_len=65)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run_llm("lpddr_llm", cfg, prompt=60, gen=5, decode_points=1)
    msgs = [str(w.message) for w in seen if issubclass(w.category, ContextLengthWarning)]
    assert msgs == ["<config>: prompt + gen = 65 positions exceed its max_position_embeddings "
                    "64; the model was not trained for them (simulated anyway)"]


# CLI --------------------------------------------------------------------------------------------------

def test_cli_attention_flag_and_warning(tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY | {"max_position_embeddings": 16}))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        rc = main(["llm", "lpddr_llm", str(cfg), "--prompt", "16", "--gen", "2",
                   "--attention", "materialized", "--json"])
    out = capsys.readouterr()
    assert rc == 0 and json.loads(out.out)["attention"] == "materialized"
    assert out.err.count("\n") == 1 and out.err.startswith("npusim: warning: config: "
                                                           "prompt + gen = 18 positions")
    assert "Traceback" not in out.err
    rc = main(["run", "lpddr_llm", str(cfg), "--attention", "fused", "--rows", "0"])
    assert rc == 0 and "npusim: error" not in capsys.readouterr().err
    rc = main(["run", "tpu_v1", "resnet50", "--attention", "fused"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "HF config.json workload only" in err
    with pytest.raises(SystemExit) as exit_:
        main(["llm", "lpddr_llm", str(cfg), "--attention", "flash"])
    assert exit_.value.code == 2 and "invalid choice: 'flash'" in capsys.readouterr().err
