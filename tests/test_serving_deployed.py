"""Serving as deployed (npusim.serving.deploy): replicas and routing against queueing theory,
disaggregation's TTFT and TPOT by hand on two chips, the KV link's contention, prefix-cache
token counts and LRU, speculative decoding against the geometric law, determinism, bad input.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pandas as pd
import pytest

from npusim.cli import main
from npusim.errors import WorkloadError
from npusim.serving import ConstantSteps, Requests, generate, serve, serve_deployed
from npusim.serving.cluster import PoolModel
from npusim.simulate import simulate
from npusim.spec.arch import load_arch
from npusim.workloads.llm import from_hf_config

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 4096,
        "hidden_act": "silu"}
PCIE5_X16 = 32e9 * 16 * (128 / 130) / 8  # bytes/s per direction (PCIe 5.0 base spec)


def unified(steps, blocks=1 << 30, replicas=1) -> list[PoolModel]:
    return [PoolModel("u", "both", steps, blocks, replicas)]


def pk_wait(rate: float, s: float) -> float:
    """M/D/1 mean wait (Pollaczek-Khinchine)."""
    rho = rate * s
    return rho * s / (2 * (1 - rho))


def lindley(a: np.ndarray, s: float) -> np.ndarray:
    w = np.zeros(len(a))
    for i in range(1, len(a)):
        w[i] = max(0.0, w[i - 1] + s - (a[i] - a[i - 1]))
    return w


def central_queue_waits(a: np.ndarray, s: float, servers: int) -> np.ndarray:
    """FCFS with one queue and ``servers`` servers (M/D/N on these arrivals)."""
    free = [0.0] * servers
    w = np.zeros(len(a))
    for i, t in enumerate(a):
        f = heapq.heappop(free)
        start = max(t, f)
        w[i] = start - t
        heapq.heappush(free, start + s)
    return w


# One replica, no features: the plain serving model ------------------------------------------

@pytest.mark.parametrize("priority,chunked", [("prefill", False), ("decode", True)])
def test_one_replica_is_plain_serve(priority, chunked):
    req = generate(400, 8.0, prompt="uniform:16,200", output="uniform:1,60", seed=3)
    kw = {"max_batch": 8, "max_tokens": 256, "block_tokens": 16, "priority": priority,
          "chunked_prefill": chunked}
    steps = ConstantSteps(0.02, 0.005)
    plain = serve(None, None, requests=req, step_model=steps, blocks=40, **kw).requests
    dep = serve_deployed(None, requests=req, pools=unified(steps, 40), **kw).requests
    assert plain["preemptions"].sum() > 0  # the cache is tight enough to preempt
    for col in ("queue_s", "ttft_s", "tpot_s", "e2e_s", "preemptions"):
        np.testing.assert_array_equal(plain[col].to_numpy(), dep[col].to_numpy())


# Replicas and routing ------------------------------------------------------------------------

def test_random_routing_makes_independent_md1_queues():
    """Random routing thins a Poisson stream into N Poisson streams of rate lambda/N: each
    replica is its own M/D/1 queue (Lindley's recursion on its own arrivals, exactly) and
    the mean wait is Pollaczek-Khinchine's at lambda / N."""
    s, n, lam = 0.01, 3, 210.0
    req = generate(30_000, lam, prompt="fixed:8", output="fixed:1", seed=2)
    res = serve_deployed(None, requests=req, max_batch=1, router="random",
                         pools=unified(ConstantSteps(s, 0.0), replicas=n))
    t = res.requests
    for r in range(n):
        mine = t[t["replica"] == r]
        assert len(mine) == pytest.approx(len(t) / n, rel=0.05)
        np.testing.assert_allclose(mine["queue_s"], lindley(mine["arrival_s"].to_numpy(), s),
                                   atol=1e-9)
    assert t["queue_s"].mean() == pytest.approx(pk_wait(lam / n, s), rel=0.06)
    assert set(res.replicas["replica"]) == set(range(n))


def test_join_shortest_queue_between_md_n_and_n_md1():
    s, n, lam = 0.01, 4, 320.0  # rho = 0.8 per server
    req = generate(20_000, lam, prompt="fixed:8", output="fixed:1", seed=5)
    kw = {"requests": req, "max_batch": 1}
    rnd = serve_deployed(None, router="random", pools=unified(ConstantSteps(s, 0.0),
                                                              replicas=n), **kw)
    jsq = serve_deployed(None, router="jsq", pools=unified(ConstantSteps(s, 0.0),
                                                           replicas=n), **kw)
    w_rnd = rnd.requests["queue_s"].mean()
    w_jsq = jsq.requests["queue_s"].mean()
    w_mdn = central_queue_waits(req.arrival_s, s, n).mean()
    w_nmd1 = pk_wait(lam / n, s)
    assert w_jsq < w_rnd
    assert w_mdn < w_jsq < w_nmd1
    assert w_rnd == pytest.approx(w_nmd1, rel=0.1)


def test_round_robin_and_prefix_affinity_assign_by_hand():
    a = np.arange(12) * 10.0  # far apart: every queue is empty
    req = Requests(a, np.full(12, 64), np.full(12, 4), prefix_id=np.arange(12) % 3,
                   prefix_len=np.full(12, 32))
    rr = serve_deployed(None, requests=req, router="round-robin",
                        pools=unified(ConstantSteps(0.01, 0.001), replicas=4))
    assert list(rr.requests["replica"]) == [i % 4 for i in range(12)]
    pa = serve_deployed(None, requests=req, router="prefix",
                        pools=unified(ConstantSteps(0.01, 0.001), replicas=4))
    # the first of each prefix goes to the emptiest replica (all empty: the lowest index),
    # then every later request of that prefix follows it
    assert list(pa.requests["replica"]) == [0] * 12
    s = pa.summary()
    assert s["prefix_hits"] == 12 - 3


# Disaggregation ------------------------------------------------------------------------------

def _latency(chip: str, wl) -> float:
    return float(simulate(load_arch(chip), wl, memory="bandwidth").summary()["latency_s"])


def test_disaggregated_low_load_ttft_and_tpot_by_hand():
    """TTFT = prefill on the prefill chip + KV bytes / link bandwidth + link latency; TPOT =
    the decode chip's steps at the contexts the request passes through."""
    p, o = 256, 4
    req = Requests(np.array([0.0, 10.0]), np.full(2, p), np.full(2, o))
    res = serve_deployed(TINY, requests=req, prefill_pool="hbm_llm", decode_pool="lpddr_llm",
                         kv_link="pcie5_x16", fidelity="exact")
    prefill = _latency("hbm_llm", from_hf_config(TINY, "prefill", prompt_len=p))
    # K and V of 2 layers x 2 KV heads x 64 dims, one byte each (int8), per prompt token
    kv_bytes = p * 2 * 2 * 2 * 64 * 1
    ttft = prefill + kv_bytes / PCIE5_X16 + 1e-6
    decode = [_latency("lpddr_llm", from_hf_config(TINY, "decode", batch=1, prompt_len=c,
                                                  context_len=c)) for c in (p + 1, p + 2, p + 3)]
    t = res.requests
    np.testing.assert_allclose(t["ttft_s"], ttft, rtol=1e-9)
    np.testing.assert_allclose(t["queue_s"], 0.0, atol=1e-12)
    np.testing.assert_allclose(t["prefill_s"], prefill, rtol=1e-9)
    np.testing.assert_allclose(t["kv_transfer_s"], kv_bytes / PCIE5_X16 + 1e-6, rtol=1e-9)
    np.testing.assert_allclose(t["tpot_s"], np.mean(decode), rtol=1e-9)
    s = res.summary()
    assert s["kv_link_bytes"] == 2 * kv_bytes
    assert set(res.pools["role"]) == {"prefill", "decode"}


def test_kv_link_contention_queues_transfers():
    """Two prompts finish their prefills together on two prefill replicas; one link lane:
    the second transfer waits for the first (2 x bytes / bandwidth + latency)."""
    req = Requests(np.zeros(2), np.full(2, 1000), np.full(2, 3))
    per_token = 10_000
    # both pools of one chip kind: one name, two pools
    pools = [PoolModel("x", "prefill", ConstantSteps(0.1, 0.0), 1 << 20, replicas=2),
             PoolModel("x", "decode", ConstantSteps(0.0, 0.01), 1 << 20)]
    res = serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=per_token,
                         kv_link="ethernet_100g")
    one = 1000 * per_token / 12.5e9
    t = res.requests.sort_values("kv_transfer_s")
    np.testing.assert_allclose(t["kv_transfer_s"], [one + 5e-6, 2 * one + 5e-6], rtol=1e-9)
    np.testing.assert_allclose(t["ttft_s"], [0.1 + one + 5e-6, 0.1 + 2 * one + 5e-6],
                               rtol=1e-9)
    assert list(res.pools["role"]) == ["prefill", "decode"]
    assert list(res.pools["replicas"]) == [2, 1]
    two = serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=per_token,
                         kv_link="ethernet_100g", kv_lanes=2)
    np.testing.assert_allclose(two.requests["kv_transfer_s"], one + 5e-6, rtol=1e-9)


def test_disaggregated_cost_charges_each_pool_its_price():
    from npusim.serving import CostModel

    req = generate(50, 5.0, prompt="fixed:64", output="fixed:8", seed=1)
    pools = [PoolModel("p", "prefill", ConstantSteps(0.01, 0.0, power_w=100.0), 1 << 20,
                       replicas=1, price_usd=30_000.0),
             PoolModel("d", "decode", ConstantSteps(0.0, 0.002, power_w=50.0), 1 << 20,
                       replicas=2, price_usd=5_000.0)]
    cost = CostModel(card_price_usd=1.0, amortisation_years=3, pue=1.2,
                     electricity_usd_per_kwh=0.1)
    s = serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=100,
                       cost=cost).summary()
    year = 365.25 * 86400
    hw = (30_000 + 2 * 5_000) * s["duration_s"] / (3 * year)
    assert s["cost_hardware_usd"] == pytest.approx(hw, rel=1e-12)
    assert s["usd_per_mtoken"] == pytest.approx(
        (hw + s["energy_j"] / 3.6e6 * 1.2 * 0.1) / (50 * 8) * 1e6, rel=1e-12)


# Prefix caching ------------------------------------------------------------------------------

def test_prefix_cache_computes_prompt_minus_prefix_after_the_first():
    n, prompt, pre = 40, 300, 128
    req = generate(n, 2.0, prompt=f"fixed:{prompt - pre}", output="fixed:5", seed=0)
    res = serve_deployed(None, requests=req, prefix=f"system:1,{pre}",
                         pools=unified(ConstantSteps(0.02, 0.002)))
    t = res.requests
    assert (t["prompt_tokens"] == prompt).all()
    assert t["prefill_tokens"].iloc[0] == prompt
    assert (t["prefill_tokens"].iloc[1:] == prompt - pre).all()
    s = res.summary()
    assert s["prefix_hit_rate"] == pytest.approx((n - 1) / n)
    assert s["prefill_tokens_computed"] == prompt + (n - 1) * (prompt - pre)


def test_prefix_cache_too_small_for_one_prefix_never_hits():
    req = generate(30, 2.0, prompt="fixed:100", output="fixed:5", seed=0)
    res = serve_deployed(None, requests=req, prefix="system:1,128", block_tokens=16,
                         prefix_cache_blocks=128 // 16 - 1,
                         pools=unified(ConstantSteps(0.02, 0.002)))
    s = res.summary()
    assert s["prefix_hit_rate"] == 0.0
    assert (res.requests["prefill_tokens"] == 228).all()


def test_prefix_cache_evicts_least_recently_used():
    """Room for one prefix: A B A B all miss; A A B B hit on each second."""
    def run(ids):
        req = Requests(np.arange(4) * 10.0, np.full(4, 100), np.full(4, 2),
                       prefix_id=np.array(ids), prefix_len=np.full(4, 64))
        return serve_deployed(None, requests=req, prefix_cache_blocks=4,
                              pools=unified(ConstantSteps(0.01, 0.001)), block_tokens=16)
    assert list(run([0, 1, 0, 1]).requests["cached_tokens"]) == [0, 0, 0, 0]
    assert list(run([0, 0, 1, 1]).requests["cached_tokens"]) == [0, 64, 0, 64]


def test_prefix_cache_gives_way_to_running_sequences():
    """Cached prefixes nobody reads are evicted before a sequence is preempted."""
    req = Requests(np.array([0.0, 10.0, 20.0]), np.array([64, 64, 160]), np.array([2, 2, 2]),
                   prefix_id=np.array([0, 1, -1]), prefix_len=np.array([48, 48, 0]))
    res = serve_deployed(None, requests=req, block_tokens=16,
                         pools=unified(ConstantSteps(0.01, 0.001), blocks=11))
    assert res.summary()["preemptions"] == 0
    assert res.requests["e2e_s"].iloc[2] == pytest.approx(0.011)


def test_chat_turns_reuse_the_whole_history():
    req = generate(6, 1.0, prompt="fixed:50", output="fixed:10", seed=0)
    req = Requests(np.arange(6) * 10.0, req.prompt, req.output)  # each turn after the last
    res = serve_deployed(None, requests=req, prefix="chat:3",
                         pools=unified(ConstantSteps(0.01, 0.001)))
    t = res.requests
    # two conversations (requests 0, 2, 4 and 1, 3, 5); turn k's prompt = history + 50;
    # the cache holds the history's K/V but the last output token's (never computed)
    assert list(t["prompt_tokens"]) == [50, 50, 110, 110, 170, 170]
    assert list(t["cached_tokens"]) == [0, 0, 59, 59, 119, 119]
    assert list(t["prefill_tokens"]) == [50, 50, 51, 51, 51, 51]


def test_prefill_after_a_hit_costs_between_its_new_tokens_and_the_whole_prompt():
    from npusim.serving import ExactSteps
    from npusim.serving.shapes import Shapes
    from npusim.workloads.llm import load_hf_config

    ex = ExactSteps(load_arch("lpddr_llm"), load_hf_config(TINY),
                    {"weights": "int8", "activations": "int8", "kv": "int8", "accum": "fp32"})
    hit = Shapes(ex).prefill(64, 448)
    assert ex.prefill(64)[0] < hit[0] < ex.prefill(512)[0]


# Speculative decoding ------------------------------------------------------------------------

@pytest.mark.parametrize("alpha,gamma", [(0.6, 3), (0.85, 5)])
def test_tokens_per_verify_follow_the_geometric_law(alpha, gamma):
    """Leviathan et al. (2023): E[tokens per verify] = (1 - alpha^(gamma+1)) / (1 - alpha)."""
    req = generate(12, 1.0, prompt="fixed:16", output="fixed:4000", seed=0)
    res = serve_deployed(None, requests=req, spec_tokens=gamma, spec_accept=alpha,
                         pools=unified(ConstantSteps(0.01, 0.001)))
    s = res.summary()
    assert s["verifies"] >= 10_000
    want = (1 - alpha ** (gamma + 1)) / (1 - alpha)
    assert s["tokens_per_verify"] == pytest.approx(want, rel=0.02)
    assert (res.requests["verifies"] > 0).all()


def test_alpha_zero_is_plain_decoding_plus_the_draft():
    req = Requests(np.array([0.0, 100.0]), np.full(2, 32), np.full(2, 20))
    target, draft, gamma = ConstantSteps(0.05, 0.01), ConstantSteps(0.004, 0.002), 4
    res = serve_deployed(None, requests=req, spec_tokens=gamma, spec_accept=0.0,
                         draft_steps=draft, pools=unified(target))
    t = res.requests
    np.testing.assert_allclose(t["tpot_s"], 0.01 + gamma * 0.002, rtol=1e-12)
    np.testing.assert_allclose(t["ttft_s"], 0.05 + 0.004, rtol=1e-12)  # draft prefills too
    assert res.summary()["tokens_per_verify"] == 1.0
    full = serve_deployed(None, requests=req, spec_tokens=gamma, spec_accept=1.0,
                          pools=unified(target))
    # alpha = 1: gamma + 1 tokens a verify, 19 tokens after the first in 4 verifies
    assert list(full.requests["verifies"]) == [4, 4]


def test_speculative_decoding_on_a_chip_verifies_gamma_plus_one_tokens():
    """A verify of 4 tokens per sequence reads the weights once: it costs more than one
    decode step and much less than four."""
    req = Requests(np.array([0.0]), np.array([128]), np.array([9]))
    base = serve_deployed(TINY, requests=req, target="lpddr_llm", fidelity="exact")
    spec = serve_deployed(TINY, requests=req, target="lpddr_llm", fidelity="exact",
                          spec_tokens=3, spec_accept=1.0)
    step = base.requests["tpot_s"].iloc[0]
    verify = spec.steps.loc[spec.steps["decode_batch"] > 0, "latency_s"]
    assert (verify > step * 0.99).all() and (verify < 3 * step).all()
    assert spec.requests["tpot_s"].iloc[0] < step


# Determinism, sweeps, CLI --------------------------------------------------------------------

def _features(seed: int) -> pd.DataFrame:
    req = generate(300, 30.0, prompt="uniform:32,128", output="uniform:2,40", seed=seed)
    return serve_deployed(None, requests=req, prefix="system:0.5,64", spec_tokens=2,
                          spec_accept="beta:4,2", router="random", seed=seed,
                          pools=unified(ConstantSteps(0.02, 0.004), blocks=200,
                                        replicas=2)).requests


def test_same_seed_same_table():
    pd.testing.assert_frame_equal(_features(4), _features(4))
    assert not _features(4).equals(_features(5))


def test_sweep_over_routers_and_replicas():
    from npusim.serving import sweep_deployed

    req = generate(400, 60.0, prompt="fixed:8", output="fixed:1", seed=0)
    t = sweep_deployed(None, {"router": ["random", "jsq"], "replicas": [1, 2]},
                       requests=req, max_batch=1, pools=unified(ConstantSteps(0.01, 0.0)))
    assert len(t) == 4 and {"router", "replicas", "p99_ttft_s"} <= set(t.columns)


def test_load_sweep_knee_of_deployed_replicas():
    from npusim.serving import load_sweep_deployed

    s = 0.01  # two near-deterministic replicas: the knee is near 2 / S
    sw = load_sweep_deployed(None, [100, 150, 180, 250, 300], n=600, prompt="fixed:8",
                             output="fixed:1", slo="ttft=100ms", max_batch=1, refine=4,
                             arrivals="gamma", cv=0.05, router="round-robin",
                             pools=unified(ConstantSteps(s, 0.0), replicas=2))
    assert sw.knee_found
    assert sw.knee_rate == pytest.approx(2 / s, rel=0.05)


def test_cli_disaggregated_run_writes_the_split(tmp_path, capsys):
    out = tmp_path / "req.csv"
    code = main(["serve", "-", str(_tiny(tmp_path)), "--prefill-pool", "hbm_llm",
                 "--decode-pool", "lpddr_llm,count=2", "--requests", "20", "--rate", "2",
                 "--prompt", "fixed:128", "--output", "fixed:8", "--fidelity", "exact",
                 "--prefix", "system:0.5,64", "--spec-tokens", "2", "--draft", "mtp",
                 "--router", "least-kv", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "TTFT split" in text and "KV transfer" in text and "prefix" in text
    t = pd.read_csv(out)
    assert {"prefill_s", "kv_transfer_s", "decode_replica", "cached_tokens"} <= set(t.columns)


def _tiny(tmp_path):
    import json

    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    return p


@pytest.mark.parametrize("extra,words", [
    (["--spec-tokens", "0"], "--spec-tokens"),
    (["--spec-tokens", "2", "--spec-accept", "1.5"], "alpha"),
    (["--spec-tokens", "2", "--spec-accept", "beta:0,1"], "beta"),
    (["--prefill-pool", "hbm_llm"], "--decode-pool"),
    (["--replicas", "2", "--router", "fastest"], "invalid choice"),
])
def test_cli_bad_deployment_input_is_one_line(tmp_path, capsys, extra, words):
    out = tmp_path / "o.csv"
    # an option's own type or choices are checked by argparse (SystemExit 2, one line);
    # the rest by the command (exit code 2)
    try:
        code = main(["serve", "lpddr_llm", str(_tiny(tmp_path)), "--requests", "5",
                     "--out", str(out), *extra])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_prefix_longer_than_prompt_is_one_line(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens\n"
                     "0,100,4,0,64\n0.5,50,4,0,64\n")
    out = tmp_path / "o.csv"
    code = main(["serve", "lpddr_llm", str(_tiny(tmp_path)), "--trace", str(trace),
                 "--replicas", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "request 1: prefix of 64 tokens is longer than its prompt of 50" in err
    assert not out.exists()


def test_cli_decode_pool_that_cannot_hold_one_sequence(tmp_path, capsys):
    out = tmp_path / "o.csv"
    code = main(["serve", "-", "llama2_70b", "--prefill-pool", "hbm_llm", "--decode-pool",
                 "lpddr_llm", "--weights", "fp16", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "KV block" in err
    assert not out.exists()


def test_api_decode_pool_that_holds_a_block_but_not_a_sequence():
    req = Requests(np.array([0.0]), np.array([500]), np.array([20]))
    pools = [PoolModel("p", "prefill", ConstantSteps(0.01, 0.0), 1000),
             PoolModel("d", "decode", ConstantSteps(0.0, 0.01), 10)]
    with pytest.raises(WorkloadError, match="less than one sequence of 519"):
        serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=1)


def test_mean_tokens_formula_helper_matches_a_direct_sum():
    from npusim.serving.spec import mean_tokens_per_verify

    for a, g in ((0.3, 1), (0.9, 7)):
        assert mean_tokens_per_verify(a, g) == pytest.approx(sum(a ** j for j in range(g + 1)))
    assert math.isclose(mean_tokens_per_verify(1.0, 4), 5)


# Invariants, drafts, systems, sweeps from the CLI ------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), replicas=st.integers(1, 3),
       router=st.sampled_from(["round-robin", "random", "jsq", "least-kv", "prefix"]),
       gamma=st.integers(0, 4), share=st.sampled_from([0.0, 0.5, 1.0]),
       disagg=st.booleans(), blocks=st.integers(24, 80))
def test_every_request_finishes_with_its_tokens(seed, replicas, router, gamma, share, disagg,
                                                blocks):
    """Whatever the features, every request ends with exactly its output tokens, after its
    first token, no later than the last step; no sequence is left holding KV."""
    req = generate(60, 40.0, prompt="uniform:8,120", output="uniform:1,40", seed=seed)
    steps = ConstantSteps(0.01, 0.002)
    pools = ([PoolModel("p", "prefill", steps, blocks, replicas),
              PoolModel("d", "decode", steps, blocks, replicas)] if disagg
             else unified(steps, blocks, replicas))
    res = serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=64,
                         router=router, spec_tokens=gamma, spec_accept=0.7, seed=seed,
                         prefix=f"system:{share},32", block_tokens=16, max_batch=8,
                         max_tokens=256)
    t = res.requests
    assert (t["finish_s"] >= t["first_token_s"]).all()
    assert (t["first_token_s"] > t["arrival_s"]).all()
    assert (t["prefill_tokens"] >= t["prompt_tokens"] - t["cached_tokens"]).all()
    ends = res.steps["start_s"] + res.steps["latency_s"]
    assert t["finish_s"].max() <= ends.max() + 1e-12
    # tokens: one from each completed prefill (a recompute after preemption gives the next
    # one), the rest from decodes (several a verify)
    assert res.steps["decode_tokens"].sum() == (t["output_tokens"] - 1
                                                - t["preemptions"]).sum()
    dep = res.deployment
    assert dep is not None
    assert (res.steps["kv_blocks_used"] <= blocks).all()


def test_a_draft_on_the_decode_chip_takes_its_kv_space():
    from npusim.workloads.hf_config import kv_cache_bytes, weight_bytes
    from npusim.workloads.llm import load_hf_config

    req = Requests(np.array([0.0]), np.array([64]), np.array([4]))
    small = dict(TINY, num_hidden_layers=1, hidden_size=256, intermediate_size=512)
    kw = {"requests": req, "target": "lpddr_llm", "fidelity": "exact", "spec_tokens": 2}
    alone = serve_deployed(TINY, **kw)
    shared = serve_deployed(TINY, draft=small, **kw)
    apart = serve_deployed(TINY, draft=small, draft_target="hbm_llm", **kw)
    per_block = kv_cache_bytes(load_hf_config(TINY), 1, 1, "int8") * 16
    taken = -(-weight_bytes(load_hf_config(small), "int8") // per_block)
    blocks = [r.summary()["kv_blocks"] for r in (alone, shared, apart)]
    assert blocks == [blocks[0], blocks[0] - taken, blocks[0]]
    # the draft's decode steps lengthen each verify
    assert shared.requests["tpot_s"].iloc[0] > alone.requests["tpot_s"].iloc[0]


def test_replicas_of_a_system_need_its_chips():
    with pytest.raises(WorkloadError, match="need 16 chips, the system has 8"):
        serve_deployed("llama2_70b", target="rngd_8card", replicas=2, tp=8, n=5)


def test_speculative_lookahead_counts_in_the_capacity_check():
    req = Requests(np.array([0.0]), np.array([100]), np.array([60]))
    with pytest.raises(WorkloadError, match="prompt \\+ output \\+ gamma"):
        serve_deployed(None, requests=req, spec_tokens=4, block_tokens=1,
                       pools=unified(ConstantSteps(0.01, 0.001), blocks=160))


def test_cli_deployed_load_sweep_plots(tmp_path, capsys):
    plot, out = tmp_path / "load.png", tmp_path / "sweep.csv"
    code = main(["serve", "lpddr_llm", str(_tiny(tmp_path)), "--replicas", "2", "--router",
                 "jsq", "--rates", "50,400", "--requests", "60", "--prompt", "fixed:64",
                 "--output", "fixed:8", "--slo", "ttft=200ms", "--fidelity", "exact",
                 "--plot", str(plot), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    t = pd.read_csv(out)
    assert {"rate", "p99_ttft_s", "mean_prefill_s", "meets_slo"} <= set(t.columns)
    assert plot.stat().st_size > 0


def test_cli_deployment_file(tmp_path, capsys):
    dep = tmp_path / "dep.yaml"
    dep.write_text("prefill_pool: {target: hbm_llm, price_usd: 15000}\n"
                   "decode_pool: {target: lpddr_llm, count: 2, price_usd: 6000}\n"
                   "kv_link: {kind: ethernet_400g, lanes: 2}\n"
                   "router: jsq\n"
                   "speculative: {tokens: 2, accept: 'beta:4,2'}\n")
    out = tmp_path / "r.csv"
    code = main(["serve", "-", str(_tiny(tmp_path)), "--deployment", str(dep), "--requests",
                 "20", "--prompt", "fixed:64", "--output", "fixed:8", "--fidelity", "exact",
                 "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    import json

    s = json.loads(capsys.readouterr().out)
    assert s["kv_link"] == "ethernet_400g" and s["chips"] == 3 and s["spec_tokens"] == 2
    assert pd.read_csv(out)["decode_replica"].isin([0, 1]).all()


def test_cli_deployment_file_errors_name_file_key_and_line(tmp_path, capsys):
    dep = tmp_path / "dep.yaml"
    dep.write_text("prefill_pool: {target: hbm_llm, count: 0}\n"
                   "decode_pool:\n"
                   "  target: lpddr_llm\n"
                   "  colour: red\n")
    out = tmp_path / "r.csv"
    code = main(["serve", "-", str(_tiny(tmp_path)), "--deployment", str(dep),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert f"{dep}:1: prefill_pool.count" in err and "1 more" in err
    from npusim.errors import SpecError
    from npusim.serving.deployment_file import load_deployment

    with pytest.raises(SpecError) as info:  # the library lists every problem
        load_deployment(dep)
    assert [(i.path, i.line) for i in info.value.issues] == [("prefill_pool.count", 1),
                                                              ("decode_pool.colour", 4)]
    dep.write_text("prefill_pool: {target: hbm_llm}\nrouter: fastest\n")
    with pytest.raises(SpecError) as info:
        load_deployment(dep)
    assert [(i.path, i.line) for i in info.value.issues] == [("decode_pool", 1),
                                                              ("router", 2)]
    assert not out.exists()


def test_least_kv_weighs_blocks_where_jsq_counts_requests():
    """One long prompt on replica 0, then two short ones: least-KV puts both short ones on
    replica 1 (less KV there); join-shortest-queue alternates on the request count."""
    req = Requests(np.array([0.0, 0.001, 0.002]), np.array([1000, 16, 16]),
                   np.array([50, 50, 50]))
    kw = {"requests": req, "block_tokens": 16, "max_tokens": 2048}
    lkv = serve_deployed(None, router="least-kv", **kw,
                         pools=unified(ConstantSteps(0.01, 0.01), 1000, replicas=2))
    jsq = serve_deployed(None, router="jsq", **kw,
                         pools=unified(ConstantSteps(0.01, 0.01), 1000, replicas=2))
    assert list(lkv.requests["replica"]) == [0, 1, 1]
    assert list(jsq.requests["replica"]) == [0, 1, 0]


def test_example_deployment_file_loads():
    from pathlib import Path

    from npusim.serving.deployment_file import load_deployment

    kw = load_deployment(Path(__file__).resolve().parent.parent / "docs/examples/"
                         "deployment.yaml")
    assert kw["decode_pool"].count == 2 and kw["spec_tokens"] == 3


def test_sweep_axes_pool_size_gamma_and_prefix_share():
    from npusim.serving import sweep_deployed

    req = generate(80, 20.0, prompt="fixed:64", output="fixed:16", seed=0)
    pools = [PoolModel("p", "prefill", ConstantSteps(0.01, 0.0), 1 << 20),
             PoolModel("d", "decode", ConstantSteps(0.0, 0.005), 1 << 20)]
    t = sweep_deployed(None, {"decode_count": [1, 3], "spec_tokens": [0, 2],
                              "prefix_share": [0.0, 1.0]}, prefix_tokens=32,
                       requests=req, pools=pools, kv_bytes_per_token=10)
    assert len(t) == 8
    assert list(t["replicas"]) == [2] * 4 + [4] * 4  # one prefill replica + decode_count
    spec = t["spec_tokens"] == 2
    assert t.loc[spec, "tokens_per_verify"].gt(1).all()
    assert t.loc[~spec, "tokens_per_verify"].isna().all()
    hits = t["prefix_hit_rate"]
    assert (hits[t["prefix_share"] == 1.0] > 0.9).all()
    assert (hits[t["prefix_share"] == 0.0].fillna(0) == 0).all()


def test_cli_out_may_not_overwrite_the_deployment_file(tmp_path, capsys):
    dep = tmp_path / "dep.json"  # JSON is YAML, and a table format --out writes
    dep.write_text('{"pool": {"target": "lpddr_llm"}}\n')
    before = dep.read_text()
    code = main(["serve", "-", str(_tiny(tmp_path)), "--deployment", str(dep), "--requests",
                 "5", "--fidelity", "exact", "--out", str(dep)])
    err = capsys.readouterr().err
    assert code == 2 and dep.read_text() == before and len(err.strip().splitlines()) == 1


def test_littles_law_holds_across_pools_and_the_link():
    """Requests in the system (arrival to last token, through both pools and the link),
    time-averaged, equal the arrival rate times the mean latency."""
    req = generate(4000, 30.0, prompt="uniform:32,256", output="uniform:1,64", seed=9)
    pools = [PoolModel("p", "prefill", ConstantSteps(0.01, 0.0), 1 << 20, replicas=2),
             PoolModel("d", "decode", ConstantSteps(0.0, 0.004), 4000, replicas=2)]
    s = serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=50_000,
                       kv_link="ethernet_100g", router="jsq").summary()
    assert s["mean_kv_transfer_s"] > 0
    assert s["mean_in_system"] == pytest.approx(s["little_lw"], rel=0.02)


def test_a_prefill_replica_holds_a_prompts_blocks_until_its_kv_has_left():
    """Room for one 160-token prompt: the second prompt's prefill starts when the first's
    K/V has crossed the link (T = bytes / bandwidth), so it arrives at 0.2 + 2T + latency."""
    req = Requests(np.zeros(2), np.full(2, 160), np.full(2, 2))
    pools = [PoolModel("p", "prefill", ConstantSteps(0.1, 0.0), 10),
             PoolModel("d", "decode", ConstantSteps(0.0, 0.01), 1000)]
    res = serve_deployed(None, requests=req, pools=pools, kv_bytes_per_token=1_000_000,
                         kv_link="ethernet_100g", block_tokens=16)
    t = 160 * 1_000_000 / 12.5e9
    np.testing.assert_allclose(res.requests["ttft_s"], [0.1 + t + 5e-6, 0.2 + 2 * t + 5e-6],
                               rtol=1e-9)
    np.testing.assert_allclose(res.requests["queue_s"], [0.0, 0.1 + t], rtol=1e-9)


def test_pools_take_their_chips_price_blocks_when_no_price_is_given():
    from npusim.serving import CostModel

    req = Requests(np.array([0.0, 1.0]), np.full(2, 64), np.full(2, 4))
    cost = CostModel(amortisation_years=2, pue=1.0, electricity_usd_per_kwh=0.0)
    s = serve_deployed(TINY, requests=req, prefill_pool="hbm_llm",
                       decode_pool="lpddr_llm,count=2", fidelity="exact", cost=cost).summary()
    # the presets' example prices (price: blocks, basis assumption): 10,000 and 5,000 USD
    want = (10_000 + 2 * 5_000) * s["duration_s"] / (2 * 365.25 * 86400)
    assert s["cost_hardware_usd"] == pytest.approx(want, rel=1e-12)
    with pytest.raises(WorkloadError, match="no price"):
        serve_deployed(None, requests=req, cost=cost,
                       pools=unified(ConstantSteps(0.01, 0.001)))


def test_cli_router_choices_are_the_routers():
    from npusim.commands._serve_deployed import ROUTER_CHOICES
    from npusim.serving.router import ROUTERS

    assert ROUTER_CHOICES == ROUTERS
