"""Mixture-of-experts layers: routing, the builder's blocks, the grouped-GEMM lowering and
what a decode step reads, each against a count made here from the config's fields."""

from __future__ import annotations

import math
import warnings

import llm_bound as lb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moe_configs import qwen3_30b_a3b, tiny_moe

import npusim
from npusim.compiler.lower import compile_workload
from npusim.compiler.weights import place_weights
from npusim.errors import WorkloadError
from npusim.workloads.ir import ExpertMatmul, Workload
from npusim.workloads.llm import from_hf_config
from npusim.workloads.routing import parse_routing, route


def _touched_formula(e: int, k: int, t: int) -> float:
    """Expected distinct experts when each of t tokens picks k of e uniformly."""
    return e * (1 - (1 - k / e) ** t)


def _zipf_choice(e: int, k: int, s: float) -> np.ndarray:
    """P(a token picks expert i) = min(1, c / (i+1)^s) with the sum k (the test's own
    water-filling)."""
    w = [1 / (i + 1) ** s for i in range(e)]
    capped: set[int] = set()
    while True:
        free = sum(w[i] for i in range(e) if i not in capped)
        c = (k - len(capped)) / free
        q = [1.0 if i in capped else c * w[i] for i in range(e)]
        over = {i for i in range(e) if q[i] > 1 and i not in capped}
        if not over:
            return np.array(q)
        capped |= over


# Routing ---------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(e=st.integers(2, 300), k_frac=st.floats(0.01, 1.0), t=st.integers(1, 600),
       layers=st.integers(1, 64))
def test_uniform_touched_experts_follow_the_formula(e, k_frac, t, layers):
    k = max(1, min(e, round(k_frac * e)))
    touched = 0
    for j in range(layers):
        c = np.array(route("uniform", j, t, e, k))
        assert len(c) == e and c.sum() == t * k
        assert c.max() <= t  # a token picks an expert at most once
        nz = c[c > 0]
        assert nz.max() - nz.min() <= 1  # as even as integers allow
        touched += len(nz)
    assert abs(touched - layers * _touched_formula(e, k, t)) <= 1.0 + 1e-9


def test_skewed_zero_is_uniform_and_skew_concentrates_load():
    for t in (1, 3, 16, 200):
        assert route("skewed:0", 5, t, 64, 6) == route("uniform", 5, t, 64, 6)
        for s in (0.5, 1.0, 2.0):
            c = np.array(route(f"skewed:{s}", 0, t, 64, 6))
            assert c.sum() == t * 6 and c.max() <= t
            assert all(np.diff(c) <= 0)  # the most popular experts first
            assert np.count_nonzero(c) <= np.count_nonzero(route("uniform", 0, t, 64, 6))


@pytest.mark.parametrize("s", [0.6, 1.2])
@pytest.mark.parametrize("t", [2, 9, 64])
def test_skewed_touched_follows_the_zipf_law(s, t):
    q = _zipf_choice(128, 8, s)
    expected = float(np.sum(1 - (1 - q) ** t))
    touched = sum(np.count_nonzero(route(f"skewed:{s}", j, t, 128, 8)) for j in range(40))
    assert abs(touched - 40 * expected) <= 1.0 + 1e-9


def test_routing_errors_are_one_line(tmp_path):
    for bad in ("skewed", "skewed:-1", "skewed:x", "nope"):
        with pytest.raises(WorkloadError) as exc:
            parse_routing(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(WorkloadError, match="between 1 and the number of experts"):
        route("uniform", 0, 4, 8, 9)


# Routing traces --------------------------------------------------------------------------

def _write_trace(path, picks: dict[int, list[list[int]]]) -> str:
    lines = ["layer,token,expert"]
    for layer, toks in picks.items():
        for t, ids in enumerate(toks):
            lines += [f"{layer},{t},{e}" for e in ids]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_trace_sets_tokens_per_expert_and_dram_bytes_exactly(tmp_path):
    cfg = tiny_moe(experts=8, top_k=2, layers=2)
    picks = {0: [[0, 1], [1, 2], [0, 7]], 1: [[3, 4], [3, 4], [3, 5]]}
    trace = _write_trace(tmp_path / "trace.csv", picks)
    wl = from_hf_config(cfg, "decode", batch=3, context_len=64, routing=trace,
                        weights="int8")
    experts = [la for la in wl.layers if isinstance(la, ExpertMatmul)]
    assert [la.name for la in experts[:3]] == ["l0.experts.gate_proj", "l0.experts.up_proj",
                                                "l0.experts.down_proj"]
    by_hand = {i: np.bincount(np.ravel(picks[i]), minlength=8) for i in picks}
    for la in experts:
        i = int(la.name[1])
        assert la.tokens_per_expert == tuple(by_hand[i])
    assert wl.meta["routing"] == trace
    # What the expert layers read from DRAM: the touched experts' weights, nothing else
    # (their inputs stay on chip at this size), int8.
    chip = npusim.load_arch("lpddr_llm")
    prog = compile_workload(chip, wl, weights_resident=False)
    h, ei = cfg.hidden, cfg.expert_intermediate
    for i, counts in by_hand.items():
        touched = int(np.count_nonzero(counts))
        got = sum(lp.total("dram_read_bytes") for lp in prog.layers
                  if lp.name.startswith(f"l{i}.experts.") and lp.op == "expert_matmul")
        assert got == touched * 3 * h * ei
    res = npusim.simulate(chip, wl)
    rows = res.layers.set_index("layer")
    assert rows.loc["l1.experts.up_proj", "experts_touched"] == 3
    assert rows.loc["l1.experts.up_proj", "expert_imbalance"] == pytest.approx(3 / 2)


def test_bad_traces_are_one_line_each(tmp_path):
    cfg = tiny_moe(experts=8, top_k=2, layers=2)
    cases = {
        "unknown expert id": {0: [[0, 8]], 1: [[0, 1]]},
        "routes each token to 2": {0: [[0, 1, 2]], 1: [[0, 1, 2]]},
        "MoE layer": {0: [[0, 1]]},
    }
    for what, picks in cases.items():
        trace = _write_trace(tmp_path / "t.csv", picks)
        with pytest.raises(WorkloadError) as exc:
            from_hf_config(cfg, "decode", batch=1, context_len=8, routing=trace)
        assert what in str(exc.value) and "\n" not in str(exc.value)
    (tmp_path / "h.csv").write_text("layer,tok,expert\n0,0,1\n")
    with pytest.raises(WorkloadError, match=r"h\.csv:1: .*header"):
        parse_routing(str(tmp_path / "h.csv"))


# Blocks and arithmetic -------------------------------------------------------------------

def test_moe_block_layers_and_flops_by_hand():
    cfg = qwen3_30b_a3b(layers=2)
    t, h, e, k, ei = 5, 2048, 128, 8, 768
    wl = from_hf_config(cfg, "decode", batch=t, context_len=100)
    names = [la.name for la in wl.layers if la.name.startswith("l0.")]
    assert names[names.index("l0.mlp_norm"):] == [
        "l0.mlp_norm", "l0.router", "l0.router_score", "l0.topk", "l0.experts.gate_proj",
        "l0.experts.up_proj", "l0.experts.swiglu", "l0.experts.down_proj",
        "l0.experts.combine", "l0.mlp_residual"]
    assert {"l0.q_norm", "l0.k_norm"} <= set(names)
    q, kv = 32 * 128, 4 * 128
    attn_w = h * q + 2 * h * kv + q * h
    scores = 32 * 100 * 128 * 2  # per sequence: heads x keys x (QK + PV)
    per_token = attn_w + h * e + k * 3 * h * ei
    expect = cfg.layers * t * (per_token + scores) + t * h * 151936
    assert wl.macs() == expect


def test_shared_experts_gate_and_dense_leading_layers():
    cfg = tiny_moe(layers=4, shared_experts=2, shared_intermediate=96,
                   shared_expert_gate=True, moe_layers=(False, True, False, True))
    wl = from_hf_config(cfg, "decode", batch=2, context_len=16)
    names = {la.name for la in wl.layers}
    assert "l0.gate_proj" in names and "l0.router" not in names  # dense FFN
    assert {"l1.router", "l1.shared.gate_proj", "l1.shared.expert_gate",
            "l1.experts.combine"} <= names
    shared = next(la for la in wl.layers if la.name == "l1.shared.up_proj")
    assert (shared.m, shared.k, shared.n) == (2, 256, 2 * 96)
    combine = next(la for la in wl.layers if la.name == "l3.experts.combine")
    assert combine.inputs == 2 + 1  # top-k routed outputs and the shared one
    rows = sum(la.rows for la in wl.layers if la.name == "l1.experts.up_proj")
    assert rows == 2 * 2


def test_weights_resident_counts_every_expert():
    cfg = tiny_moe(experts=64, top_k=1, layers=1)
    wl = from_hf_config(cfg, "decode", batch=1, context_len=8)
    held = sum(la.experts * la.k * la.n for la in wl.layers if isinstance(la, ExpertMatmul))
    read = sum(la.touched * la.k * la.n for la in wl.layers if isinstance(la, ExpertMatmul))
    assert held == 64 * 3 * 256 * 128 and read == 3 * 256 * 128
    placed = place_weights(npusim.load_arch("lpddr_llm"), wl)
    others = sum(la.input_bytes().get("weight", 0) for la in wl.layers
                 if not isinstance(la, ExpertMatmul))
    assert placed.weight_bytes == others + held


def test_prefill_expert_rows_and_grouped_gemm_tiles_once():
    # Every MoE layer of a step has the same loads (or two variants): tiles come from the
    # cache, and each layer's MACs are its rows x k x n.
    cfg = qwen3_30b_a3b(layers=4)
    wl = from_hf_config(cfg, "prefill", batch=1, prompt_len=64)
    ups = [la for la in wl.layers if la.name.endswith("experts.up_proj")]
    assert all(la.rows == 64 * 8 for la in ups)
    assert all(la.macs() == 64 * 8 * 2048 * 768 for la in ups)
    prog = compile_workload(npusim.load_arch("lpddr_llm"), wl)
    lps = [lp for lp in prog.layers if lp.name.endswith("experts.up_proj")]
    assert all(lp.macs == 64 * 8 * 2048 * 768 for lp in lps)
    assert all(lp.total("macs") >= lp.macs for lp in lps)


# A decode step's DRAM bytes ---------------------------------------------------------------

def _shape(name: str) -> dict:
    """The fields a decode step's bytes depend on, read from the shipped config.json as
    plain JSON (the test's own reader, not npusim's family loaders)."""
    c = lb.model(name)
    layers = c["num_hidden_layers"]
    types = c.get("layer_types") or ["full_attention"] * layers
    return {"h": c["hidden_size"], "layers": layers, "heads": c["num_attention_heads"],
            "kvh": c["num_key_value_heads"], "d": c["head_dim"], "vocab": c["vocab_size"],
            "e": c.get("num_experts") or c["num_local_experts"],
            "k": c["num_experts_per_tok"],
            "ei": c.get("moe_intermediate_size") or c["intermediate_size"],
            "windows": [c["sliding_window"] if t == "sliding_attention" else 0 for t in types],
            "qk_norm": c["model_type"] == "qwen3_moe"}


def _decode_bytes(s: dict, batch: int, ctx: int) -> float:
    """A decode step's DRAM traffic by hand (int8 weights and cache): every non-expert
    weight, the experts the uniform formula expects per MoE layer, the K/V each layer reads
    (its window at most) and writes, the embedding rows and the fp16 norm gains;
    activations stay on chip."""
    h, d = s["h"], s["d"]
    q, kv = s["heads"] * d, s["kvh"] * d
    touched = _touched_formula(s["e"], s["k"], batch)
    total = 0.0
    for w in s["windows"]:
        total += 2 * h * q + 2 * h * kv + h * s["e"] + touched * 3 * h * s["ei"]
        total += batch * ((min(ctx, w) if w else ctx) + 1) * 2 * kv
        total += 2 * 2 * h * 2 + (2 * 2 * 2 * d * 2 if s["qk_norm"] else 0)
    return total + s["vocab"] * h + batch * h + 2 * h * 2


@pytest.mark.parametrize("batch", [1, 4, 16, 64])
def test_moe_decode_dram_bytes_follow_the_distinct_expert_formula(batch):
    wl = from_hf_config("qwen3_30b_a3b", "decode", batch=batch, context_len=512)
    res = npusim.simulate(npusim.load_arch("lpddr_llm"), wl)
    got = float(res.layers["dram_read_bytes"].sum() + res.layers["dram_write_bytes"].sum())
    expect = _decode_bytes(_shape("qwen3_30b_a3b"), batch, 512)
    assert abs(got / expect - 1) < 0.02


# Decode time against the bandwidth bound --------------------------------------------------

def _step_bound(preset: str, s: dict, batch: int, ctx: int) -> float:
    """max(bytes by hand / DRAM bandwidth, MACs / peak MAC rate) of one decode step, both
    from the chip's YAML (tests/llm_bound.py's readers)."""
    chip = lb.chip_yaml(preset)
    h, d = s["h"], s["d"]
    q, kv = s["heads"] * d, s["kvh"] * d
    per_token = s["layers"] * (2 * h * q + 2 * h * kv + h * s["e"] + s["k"] * 3 * h * s["ei"])
    keys = sum(min(ctx, w) if w else ctx for w in s["windows"])
    macs = batch * (per_token + h * s["vocab"] + 2 * q * keys)
    peak = lb.peak_macs_per_s(chip, lb.compute_precision(chip, "int8"))
    return max(_decode_bytes(s, batch, ctx) / lb.dram_bandwidth(chip), macs / peak)


@pytest.mark.parametrize("preset", ["lpddr_llm", "hbm_llm", "rngd"])
@pytest.mark.parametrize("model", ["qwen3_30b_a3b", "gpt_oss_20b"])
def test_moe_decode_time_within_the_bandwidth_bound(preset, model):
    chip = npusim.load_arch(preset)
    for batch in (1, 8, 32):
        wl = from_hf_config(model, "decode", batch=batch, context_len=512)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = float(npusim.simulate(chip, wl).summary()["latency_s"])
        ratio = t / _step_bound(preset, _shape(model), batch, 512)
        assert 1.0 <= ratio <= 1.3, (preset, model, batch, ratio)


def test_expected_touched_is_exact_at_one_token():
    # One token touches exactly top-k experts: the formula's value, no rounding at all.
    for e, k in ((128, 8), (32, 4), (8, 2)):
        assert math.isclose(_touched_formula(e, k, 1), k)
        assert all(np.count_nonzero(route("uniform", j, 1, e, k)) == k for j in range(10))


def test_with_batch_keeps_the_experts():
    wl = from_hf_config(tiny_moe(), "decode", batch=1, context_len=8)
    big = Workload.with_batch(wl, 3)
    for a, b in zip(wl.layers, big.layers, strict=True):
        if isinstance(a, ExpertMatmul):
            assert b.touched == a.touched and b.rows == 3 * a.rows


def test_step_bytes_differ_by_exactly_the_experts_two_traces_touch(tmp_path):
    # The same step under two traces: every layer but the routed experts is the same, so
    # the whole step's DRAM bytes differ by the difference in touched experts x their bytes.
    cfg = tiny_moe(experts=16, top_k=2, layers=2)
    spread = {0: [[0, 1], [2, 3], [4, 5], [6, 7]], 1: [[8, 9], [10, 11], [12, 13], [14, 15]]}
    packed = {0: [[0, 1], [0, 1], [1, 0], [0, 1]], 1: [[3, 4], [4, 5], [3, 5], [3, 4]]}
    chip = npusim.load_arch("lpddr_llm")
    total = {}
    for name, picks in (("spread", spread), ("packed", packed)):
        wl = from_hf_config(cfg, "decode", batch=4, context_len=64,
                            routing=_write_trace(tmp_path / f"{name}.csv", picks))
        res = npusim.simulate(chip, wl, weights_resident=False)
        total[name] = float(res.layers["dram_read_bytes"].sum()
                            + res.layers["dram_write_bytes"].sum())
    touched = (8 + 8) - (2 + 3)
    assert total["spread"] - total["packed"] == touched * 3 * cfg.hidden * cfg.expert_intermediate
