"""Tests of npusim.serving: queueing theory on a synthetic server, the scheduler's
bookkeeping, the step table against direct simulation, the chip at low load, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from npusim.cli import main
from npusim.errors import MappingError, WorkloadError
from npusim.llm import run_llm
from npusim.serving import (
    ConstantSteps,
    ExactSteps,
    Requests,
    TableSteps,
    generate,
    kv_blocks,
    load_trace,
    parse_slo,
    serve,
)
from npusim.spec.arch import load_arch
from npusim.workloads.llm import kv_cache_bytes, load_hf_config, weight_bytes

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 4096,
        "hidden_act": "silu"}
PREC = {"weights": "int8", "activations": "int8", "kv": "int8", "accum": "fp32"}


def little(summary: dict) -> None:
    """Little's law: the time-average in system equals arrival rate x mean latency."""
    assert summary["mean_in_system"] == pytest.approx(summary["little_lw"], rel=0.02)


@pytest.fixture(scope="module")
def chip():
    return load_arch("lpddr_llm")


# Queueing theory ---------------------------------------------------------------------------

def test_md1_mean_wait_matches_pollaczek_khinchine():
    """Batch 1, one-token outputs, constant service S: an M/D/1 queue, whose mean wait is
    Wq = rho S / (2 (1 - rho)); each wait also follows Lindley's recursion exactly."""
    s, rho = 0.01, 0.5
    req = generate(20_000, rho / s, prompt="fixed:8", output="fixed:1", seed=0)
    res = serve(None, None, requests=req, max_batch=1, step_model=ConstantSteps(s, 0.0))
    wq = res.requests["queue_s"].to_numpy()
    assert wq.mean() == pytest.approx(rho * s / (2 * (1 - rho)), rel=0.05)
    a = req.arrival_s
    lindley = np.zeros(len(a))
    for i in range(1, len(a)):
        lindley[i] = max(0.0, lindley[i - 1] + s - (a[i] - a[i - 1]))
    np.testing.assert_allclose(wq, lindley, atol=1e-9)
    np.testing.assert_allclose(res.requests["e2e_s"], lindley + s, atol=1e-9)
    little(res.summary())
    # against the offered rate, too (the observed one differs from it by sampling only)
    assert res.summary()["mean_in_system"] == pytest.approx(
        rho / s * res.summary()["mean_e2e_s"], rel=0.02)


def test_gamma_arrivals_have_the_asked_mean_and_cv():
    req = generate(50_000, 4.0, arrivals="gamma", cv=3.0, seed=1)
    gaps = np.diff(req.arrival_s)
    assert gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.05)


def test_lognormal_lengths_have_the_asked_mean():
    req = generate(50_000, 1.0, prompt="lognormal:400,0.5", seed=2)
    assert req.prompt.mean() == pytest.approx(400, rel=0.02)
    assert req.prompt.std() / req.prompt.mean() == pytest.approx(0.5, rel=0.05)


# Scheduler bookkeeping ---------------------------------------------------------------------

def test_decode_steps_and_tpot_by_hand():
    """One request, prompt step 0.1 s, decode step 0.02 s, 5 output tokens: the first token
    after 0.1 s, the other 4 one decode step each."""
    req = Requests(np.array([0.0]), np.array([20]), np.array([5]))
    res = serve(None, None, requests=req, step_model=ConstantSteps(0.1, 0.02, power_w=10.0))
    r = res.requests.iloc[0]
    assert r["ttft_s"] == pytest.approx(0.1)
    assert r["tpot_s"] == pytest.approx(0.02)
    assert r["e2e_s"] == pytest.approx(0.18)
    assert res.summary()["steps"] == 5
    assert res.summary()["energy_per_token_j"] == pytest.approx(10.0 * 0.18 / 5)


def test_continuous_batching_admits_at_step_boundaries():
    """Request 1 arrives during request 0's decodes and joins the running batch: under
    prefill priority its prompt takes one step, then both decode together."""
    req = Requests(np.array([0.0, 0.15]), np.array([10, 10]), np.array([4, 2]))
    res = serve(None, None, requests=req, step_model=ConstantSteps(0.1, 0.1))
    # steps: P0 [0, .1], D0 [.1, .2], P1 [.2, .3] (req 1 waited .05), D0+D1 [.3, .4]
    # (req 1 done), D0 [.4, .5] (req 0's fourth token)
    r = res.requests
    assert r.loc[1, "queue_s"] == pytest.approx(0.05)
    assert r.loc[1, "ttft_s"] == pytest.approx(0.15)
    assert r.loc[1, "finish_s"] == pytest.approx(0.4)
    assert r.loc[0, "finish_s"] == pytest.approx(0.5)
    assert list(res.steps["decode_batch"]) == [0, 1, 0, 2, 1]


def test_chunked_prefill_cuts_a_prompt_to_the_step_budget():
    req = Requests(np.array([0.0]), np.array([200]), np.array([2]))
    res = serve(None, None, requests=req, max_tokens=64, chunked_prefill=True,
                step_model=ConstantSteps(0.1, 0.01))
    assert list(res.steps["prefill_tokens"]) == [64, 64, 64, 8, 0]
    assert res.requests.loc[0, "ttft_s"] == pytest.approx(0.4)


def test_decode_priority_runs_mixed_steps():
    req = Requests(np.array([0.0, 0.05]), np.array([10, 10]), np.array([3, 3]))
    res = serve(None, None, requests=req, priority="decode",
                step_model=ConstantSteps(0.1, 0.1))
    st = res.steps
    mixed = st[(st["prefill_tokens"] > 0) & (st["decode_batch"] > 0)]
    assert len(mixed) == 1 and mixed.iloc[0]["start_s"] == pytest.approx(0.1)


def test_full_kv_cache_preempts_by_recompute_and_every_token_is_served():
    """4 blocks of 4 tokens hold 16 tokens; two requests of 6 + 8 tokens cannot both grow
    to 13 tokens: the later one is preempted, recomputed, and still gets all its tokens."""
    req = Requests(np.array([0.0, 0.0]), np.array([6, 6]), np.array([8, 8]))
    res = serve(None, None, requests=req, block_tokens=4, blocks=4,
                step_model=ConstantSteps(0.1, 0.01))
    assert res.summary()["preemptions"] >= 1
    assert res.requests.loc[1, "preemptions"] >= 1
    assert res.summary()["output_tokens"] == 16
    # every completed prefill (2, plus one per recompute) and every decode makes one token;
    # none is made twice: seq 0 decodes 7 tokens, seq 1 2 before its preemption (at 8 of
    # its 6 + 3 tokens cached, seq 0 needing a third block of the 4) and 4 after
    assert res.summary()["preemptions"] == 1
    assert res.steps["decode_batch"].sum() == 16 - 2 - 1 == 7 + 2 + 4
    assert res.steps["kv_blocks_used"].max() <= 4
    little(res.summary())


def test_same_seed_same_table_and_another_seed_differs():
    kw = dict(n=2000, rate=30.0, prompt="uniform:16,256", output="lognormal:40,1.0",
              step_model=ConstantSteps(0.02, 0.005), max_batch=8, block_tokens=8,
              blocks=200)
    a, b = serve(None, None, seed=7, **kw), serve(None, None, seed=7, **kw)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    assert not serve(None, None, seed=8, **kw).requests.equals(a.requests)
    little(a.summary())


def test_goodput_counts_the_requests_within_the_slo():
    req = Requests(np.array([0.0, 0.0, 0.0]), np.array([10, 10, 10]), np.array([1, 1, 1]))
    res = serve(None, None, requests=req, max_batch=1, slo="ttft=250ms",
                step_model=ConstantSteps(0.1, 0.0))
    # TTFTs 0.1, 0.2, 0.3 s: two within 250 ms, over a run of 0.3 s
    assert res.summary()["slo_attainment"] == pytest.approx(2 / 3)
    assert res.summary()["goodput_requests_per_s"] == pytest.approx(2 / 0.3)
    assert res.summary()["p50_ttft_s"] == pytest.approx(0.2)


def test_cost_per_million_tokens_by_hand(tmp_path):
    """2 requests x 4 tokens, a 1 s prefill and 0.5 s decodes at 100 W: 2.5 s each, 5 s."""
    (tmp_path / "cost.yaml").write_text(
        "card_price_usd: 3153.6\namortisation_years: 1\npue: 1.5\n"
        "electricity_usd_per_kwh: 0.2\n")
    req = Requests(np.array([0.0, 2.5]), np.array([8, 8]), np.array([4, 4]))
    res = serve(None, None, requests=req, cost=tmp_path / "cost.yaml",
                step_model=ConstantSteps(1.0, 0.5, power_w=100.0))
    s = res.summary()
    assert s["duration_s"] == pytest.approx(5.0)
    hw = 3153.6 / (365.25 * 86400) * 5.0
    energy_kwh = 100.0 * 5.0 / 3.6e6
    assert s["cost_hardware_usd"] == pytest.approx(hw)
    assert s["cost_electricity_usd"] == pytest.approx(energy_kwh * 1.5 * 0.2)
    assert s["usd_per_mtoken"] == pytest.approx((hw + energy_kwh * 0.3) / 8 * 1e6)


# The chip ----------------------------------------------------------------------------------

def test_low_load_ttft_and_tpot_are_run_llm_s(chip):
    """Requests far apart run alone: TTFT is run_llm's prefill latency, TPOT its decode."""
    req = Requests(np.array([0.0, 100.0, 200.0]), np.array([128] * 3), np.array([17] * 3))
    res = serve(chip, TINY, requests=req, fidelity="exact")
    one = run_llm(chip, TINY, prompt=128, gen=17, batch=1)
    assert res.requests["ttft_s"].to_numpy() == pytest.approx([one.ttft_s] * 3, rel=1e-9)
    assert res.requests["tpot_s"].to_numpy() == pytest.approx([one.tpot_s] * 3, rel=0.01)
    assert res.summary()["max_queue_length"] == 0
    little(res.summary())


# Two blocks at LLaMA-2-7B's widths: the tiles (and so the cost's stairs) of the real model,
# at a tenth of its simulation time.
SMALL = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
         "intermediate_size": 11008, "num_attention_heads": 32, "num_key_value_heads": 32,
         "num_hidden_layers": 2, "vocab_size": 32000, "max_position_embeddings": 4096,
         "hidden_act": "silu"}


@pytest.fixture(scope="module")
def small_table(chip):
    cfg = load_hf_config(SMALL)
    table = TableSteps(ExactSteps(chip, cfg, PREC), max_prefill_tokens=1024, max_batch=32,
                       max_context=1536)
    return table, ExactSteps(chip, cfg, PREC)


@pytest.mark.parametrize("category", ["prefill", "decode", "mixed"])
def test_table_interpolates_direct_simulation_within_the_stated_error(small_table, category):
    """docs/model.md states: latency within 2 %, energy within 8 % of direct simulation
    (--fidelity exact), on 40 random shapes of each category. (The energy of a prefill
    zig-zags by about 7 % with the prompt length mod 4 where the tiler alternates between
    two tilings; a line through the grid cannot follow that, the latency barely moves.)"""
    table, direct = small_table
    rng = np.random.default_rng({"prefill": 3, "decode": 4, "mixed": 5}[category])
    for _ in range(40):
        p, b, c = (int(rng.integers(1, 1025)), int(rng.integers(1, 33)),
                   int(rng.integers(2, 1537)))
        shape = {"prefill": (p, 0, 0), "decode": (0, b, b * c), "mixed": (p, b, b * c)}[category]
        (t, e), (t0, e0) = table.cost(*shape), direct.cost(*shape)
        assert t == pytest.approx(t0, rel=0.02), shape
        assert e == pytest.approx(e0, rel=0.08), shape


def test_a_short_prefill_is_simulated_exactly_not_scaled_down(small_table, chip):
    # A prompt below the grid's first point (16 tokens) still streams every weight but the
    # embedding table (only its rows are gathered) once from DRAM: that time is a floor,
    # which the 16-token cost scaled down in proportion falls under for a 1-token prompt.
    table, direct = small_table
    streamed = weight_bytes(SMALL, "int8") - SMALL["vocab_size"] * SMALL["hidden_size"]
    floor = streamed / chip.dram.peak_bandwidth
    assert direct.prefill(16)[0] / 16 < floor
    for p in (1, 5, 8, 15):
        assert table.prefill(p) == direct.prefill(p)
        assert table.prefill(p)[0] >= floor


def test_refine_isolates_a_jump_between_two_neighbouring_integers():
    # cost = 10, or 15 from 38 tokens on: the coarse interval [32, 64] straddles the jump;
    # bisection where the line misses the midpoint must end with 37 and 38 both in the
    # grid (so interpolation is exact on either side), and leave the flat intervals alone.
    from npusim.serving.steps import refine

    def cost(x: int) -> tuple[float]:
        return (15.0 if x >= 38 else 10.0,)

    pts = refine([1, 16, 32, 64], cost, 0.001, shortest=0)
    assert pts == sorted(pts) and {1, 16, 32, 37, 38, 64} <= set(pts)
    assert not set(pts) & set(range(2, 16)) and not set(pts) & set(range(17, 32))
    # With the default floor an interval no longer than 1/16 of its start stays whole.
    assert refine([320, 340], cost, 0.001) == [320, 340]


def test_kv_capacity_is_dram_after_weights_and_activations(chip):
    cfg = load_hf_config(TINY)
    ex = ExactSteps(chip, cfg, PREC)
    blocks = kv_blocks(ex, max_batch=4, max_tokens=256, block_tokens=16)
    per_block = 2 * cfg.layers * cfg.kv_heads * cfg.head_dim * 16  # int8: a byte each
    assert per_block == kv_cache_bytes(cfg, 1, 16, "int8")
    # the largest activations: SwiGLU of a 256-token prefill, two inputs and an output of
    # 256 x intermediate int8 values
    act = 3 * 256 * cfg.intermediate
    free = chip.dram.capacity_bytes - weight_bytes(cfg, "int8") - act
    assert blocks == free // per_block


def test_a_model_beside_no_kv_block_is_one_line(chip, capsys):
    cfg = load_hf_config(TINY)
    small = chip.model_copy(update={"dram": chip.dram.model_copy(
        update={"capacity": weight_bytes(cfg, "int8") + 1024})})
    with pytest.raises(MappingError, match="less than one KV block"):
        serve(small, TINY, n=5)


# Bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan])
def test_rate_must_be_positive(rate):
    with pytest.raises(WorkloadError, match="rate must be a positive"):
        generate(10, rate)


def test_trace_round_trip_and_bad_traces(tmp_path):
    good = tmp_path / "t.csv"
    good.write_text("arrival_s,prompt_tokens,output_tokens,user\n0.5,10,3,a\n0.0,7,2,b\n")
    req = load_trace(good)
    assert list(req.arrival_s) == [0.0, 0.5] and list(req.prompt) == [7, 10]
    (tmp_path / "m.csv").write_text("arrival_s,prompt_tokens\n0,5\n")
    with pytest.raises(WorkloadError, match=r"missing column.*output_tokens"):
        load_trace(tmp_path / "m.csv")
    (tmp_path / "n.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,5,2\n1,-3,2\n")
    with pytest.raises(WorkloadError, match=r"n.csv:3: prompt_tokens = '-3'"):
        load_trace(tmp_path / "n.csv")


def test_slo_parsing():
    slo = parse_slo("ttft=500ms, tpot=50 ms")
    assert (slo.ttft_s, slo.tpot_s) == pytest.approx((0.5, 0.05))
    with pytest.raises(WorkloadError):
        parse_slo("latency=1s")


@pytest.mark.parametrize("args,msg", [
    (["--rate", "0"], "rate must be a positive"),
    (["--trace", "MISSING"], "missing column"),
    (["--trace", "NEG"], "expected a positive integer"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, msg):
    (tmp_path / "m.csv").write_text("arrival_s,prompt_tokens\n0,5\n")
    (tmp_path / "n.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,-5,2\n")
    args = [{"MISSING": str(tmp_path / "m.csv"), "NEG": str(tmp_path / "n.csv")}.get(a, a)
            for a in args]
    out = tmp_path / "out.csv"
    assert main(["serve", "lpddr_llm", "llama2_7b", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err
    assert not out.exists()


def test_cli_serve_writes_the_request_table(tmp_path, capsys):
    out = tmp_path / "req.csv"
    cfg = tmp_path / "tiny.json"
    import json

    cfg.write_text(json.dumps(TINY))
    assert main(["serve", "lpddr_llm", str(cfg), "--requests", "40", "--rate", "20",
                 "--prompt", "uniform:32,256", "--output", "fixed:8", "--slo",
                 "ttft=500ms,tpot=50ms", "--cost", "docs/examples/cost.yaml",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "TTFT" in text and "per million output tokens" in text
    df = pd.read_csv(out)
    assert len(df) == 40 and {"ttft_s", "tpot_s", "e2e_s", "slo_met"} <= set(df.columns)


# Load sweeps -------------------------------------------------------------------------------

def test_knee_of_a_near_deterministic_server_is_its_service_rate():
    """Nearly even arrivals (gamma, CV 0.01), batch 1, service S: no wait below 1/S, a wait
    growing by S - 1/rate per request above it. With TTFT <= 2 S for 90 % of 500 requests
    the SLO breaks within 1/(0.9 x 500) above 1/S: the knee is 1/S."""
    from npusim.serving import Backend, load_sweep

    s = 0.01
    sw = load_sweep(None, None, [0.5 / s, 0.9 / s, 1.2 / s, 2 / s], n=500, arrivals="gamma",
                    cv=0.01, output="fixed:1", slo=f"ttft={2 * s}s", refine=5, max_batch=1,
                    using=Backend(ConstantSteps(s, 0.0), 1 << 30))
    assert sw.knee_found
    assert sw.knee_rate == pytest.approx(1 / s, rel=0.03)
    t = sw.table
    assert list(t["rate"]) == sorted(t["rate"]) and t["refined"].sum() == 5
    assert t.loc[t["rate"] <= sw.knee_rate, "meets_slo"].all()
    assert not t.loc[t["rate"] > sw.knee_rate, "meets_slo"].any()
    # below the service rate the chip keeps up: output tokens/s is the arrival rate
    low = t.iloc[0]
    assert low["tokens_per_s"] == pytest.approx(0.5 / s, rel=0.02)


def test_load_curves_plot_names_its_axes(tmp_path):
    from npusim.report.plots import load_curves

    df = pd.DataFrame({"rate": [1.0, 2.0], "p50_ttft_s": [0.1, 0.2], "p99_ttft_s": [0.2, 0.5],
                       "p50_tpot_s": [0.01, 0.02], "p99_tpot_s": [0.02, 0.04],
                       "tokens_per_s": [100.0, 190.0], "usd_per_mtoken": [2.0, 1.1]})
    fig = load_curves(df, tmp_path / "load.png", knee=1.5)
    assert (tmp_path / "load.png").stat().st_size > 0
    left, right = fig.axes[:2]
    assert left.get_xlabel() == right.get_xlabel() == "offered load (requests/s)"
    np.testing.assert_allclose(left.lines[1].get_ydata(), [200.0, 500.0])  # p99 TTFT in ms


def test_cli_rates_sweep_writes_table_and_plot(tmp_path, capsys):
    import json

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out, fig = tmp_path / "sweep.csv", tmp_path / "load.svg"
    assert main(["serve", "lpddr_llm", str(cfg), "--requests", "30", "--rates", "5,50",
                 "--prompt", "fixed:64", "--output", "fixed:4", "--slo", "ttft=1s",
                 "--out", str(out), "--plot", str(fig)]) == 0
    assert "knee" in capsys.readouterr().out
    assert list(pd.read_csv(out)["rate"])[:1] == [5.0] and fig.stat().st_size > 0
    assert main(["serve", "lpddr_llm", str(cfg), "--plot", str(fig)]) == 2


def test_swap_to_host_when_cheaper_than_recompute():
    """The preemption case above with a host link moving a token's K/V in 1 ms: swapping
    seq 1's 8 tokens out and back (16 ms) beats recomputing them (a 100 ms prefill), so it
    is swapped: no prefill again, every later token of both comes from a decode, and the
    swap time sits on the steps that moved them."""
    from npusim.serving import Backend

    req = Requests(np.array([0.0, 0.0]), np.array([6, 6]), np.array([8, 8]))
    using = Backend(ConstantSteps(0.1, 0.01, power_w=1.0), 4, swap_s_per_token=0.001,
                    swap_j_per_token=0.5)
    res = serve(None, None, requests=req, block_tokens=4, using=using)
    s, st = res.summary(), res.steps
    assert (s["swaps"], s["preemptions"]) == (1, 0)
    assert st["decode_batch"].sum() == 2 * 7 and st["prefill_tokens"].sum() == 12
    # both decode twice together (6 -> 8 cached), seq 0 alone 5 times, seq 1 alone 5 times
    assert len(st) == 1 + 2 + 5 + 5
    assert st["swap_tokens"].sum() == 16
    assert st["latency_s"].sum() == pytest.approx(0.1 + 12 * 0.01 + 16 * 0.001)
    assert st["energy_j"].sum() == pytest.approx(0.1 + 12 * 0.01 + 16 * 0.5)
    # a slower link (16 tokens x 10 ms > 100 ms) recomputes instead
    slow = Backend(ConstantSteps(0.1, 0.01), 4, swap_s_per_token=0.01)
    res = serve(None, None, requests=req, block_tokens=4, using=slow)
    assert (res.summary()["swaps"], res.summary()["preemptions"]) == (0, 1)


def test_cli_model_beside_no_kv_block_is_one_line(tmp_path, capsys):
    """LLaMA-2-70B at int8 (about 64 GiB of weights) on a 32 GiB chip."""
    out = tmp_path / "req.csv"
    assert main(["serve", "lpddr_llm", "llama2_70b", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "less than one KV block" in err and "\n" not in err
    assert not out.exists()
