"""Seven formulas whose plausible slips passed every other test (issue 23, item 6).

Each test derives its expectation here, from the catalog, the chip and the workload by
hand, and names the slip it is there to catch:

* GDDR6's 32-activate window is reached, not only respected (an off-by-one window or
  t32AW + 1 moves the 33rd ACT);
* an M split's latency is the array time of its largest share, ceil(M / cores) rows (not
  floor, not the mean over the cores);
* causal attention with fewer queries than keys (a cached prefix, a chunk of a prompt)
  visits the K/V blocks up to each query block's last position, offset by kv - q (without
  the offset, tiles compute fewer MACs than the layer has);
* resident activations never exceed what the shared SRAM keeps after resident weights
  plus the cores' scratchpads (a budget that forgets the weights overfills it), and what
  spills past the shared SRAM shrinks the scratchpad a layer tiles in (placing
  activations as if the weights were not there leaves it whole);
* a pipeline stage runs batch / micro-batches, and the step is GPipe's recurrence, which
  for equal stages is ((pp - 1) + m) t (plus the sends);
* a prompt one token longer than a KV block holds two blocks (ceil, not floor);
* goodput in tokens counts the output tokens of the requests that met the SLO only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_attention import _alone, _blocks, _schedule
from test_attention import _chip as _attention_chip
from test_split import _chip as _split_chip
from test_split import _one_matmul, _ws_cycles
from test_system_llm import TINY as TINY_LLM

from npusim.compiler.lower import compile_workload, split_estimates
from npusim.dram.system import DramSystem
from npusim.kernels import dram as K
from npusim.serving import ConstantSteps, Requests, serve
from npusim.simulate import simulate
from npusim.spec.arch import chip_from_dict
from npusim.spec.dram_catalog import get_standard
from npusim.spec.system import load_system
from npusim.system import simulate_system
from npusim.system.parallel import stage_workload
from npusim.workloads import from_hf_config
from npusim.workloads.ir import Attention, Elementwise, Matmul, Workload

# 1. GDDR6's 32-activate window ---------------------------------------------------------------


def _act_cycles(std, addr: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    d = DramSystem(std, channels=1, refresh="none", record=True)
    d.run(addr, np.zeros(len(addr), dtype=bool), 0)
    c = d.commands()
    return c[c[:, 4] == K.CMD_NAMES.index("ACT"), 0]


def _round_robin_misses(std, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``n`` burst addresses of one channel, bank i % banks, each a row no earlier one
    opened: every read is an ACT, and the banks take turns (tRC never binds)."""
    d = DramSystem(std, channels=1, refresh="none")
    cand = np.random.default_rng(0).integers(
        0, std.capacity_per_channel_bytes // std.burst_bytes, 50_000) * std.burst_bytes
    _, bank, row = d.mapping.decode(cand)
    picked: list[int] = []
    used: set[tuple[int, int]] = set()
    for i in range(n):
        hit = next(k for k in range(len(cand))
                   if bank[k] == i % std.banks and (bank[k], row[k]) not in used)
        used.add((int(bank[hit]), int(row[hit])))
        picked.append(int(cand[hit]))
    return np.array(picked, dtype=np.int64)


def test_gddr6_33rd_activate_waits_exactly_t32aw() -> None:
    """33 reads, each opening a new row, banks in turn: tRRD and tFAW (4 per tFAW) let 32
    ACTs through in 8 tFAW windows, well inside t32AW, so the 33rd waits for the window
    alone: it issues exactly t32AW after the first (taken from the catalog)."""
    std = get_standard("GDDR6")
    t = std.t
    assert t.t32aw > 0 and 8 * t.faw + 4 * max(t.rrd_s, t.rrd_l) < t.t32aw  # the window binds
    addr = _round_robin_misses(std, 33)
    acts = _act_cycles(std, addr)
    assert len(acts) == 33
    assert acts[31] - acts[0] < t.t32aw
    assert acts[32] - acts[0] == t.t32aw
    free = _act_cycles(std.with_overrides({"t32aw": 0}), addr)
    assert free[32] - free[0] < t.t32aw  # without the window the 33rd goes earlier


def test_gddr6_random_reads_reach_32_activates_per_t32aw() -> None:
    """Open-loop random reads keep the activate window full: no 33 ACTs of a rank ever fall
    within t32AW (the window is respected), and some 33rd ACT issues exactly t32AW after the
    first of its 32 predecessors (the window binds: a 31-deep window or t32AW + 1 would
    leave every such gap longer). Reads from the recorded command trace."""
    std = get_standard("GDDR6")
    t = std.t
    n = 4096
    d = DramSystem(std, channels=1, refresh="none", record=True)
    addr = np.random.default_rng(3).integers(
        0, std.capacity_per_channel_bytes // std.burst_bytes, n) * std.burst_bytes
    d.run(addr, np.zeros(n, dtype=bool), 0)
    cmds = d.commands()
    acts = np.sort(cmds[cmds[:, -1] == K.ACT, 0])
    assert len(acts) > 33
    gaps = acts[32:] - acts[:-32]  # from each ACT to the 32nd after it
    assert gaps.min() == t.t32aw
    # and the window is what limits the rate: random reads stay within 1 % of 32 per t32AW
    rate = len(acts) / (acts[-1] - acts[0])
    assert rate <= 32 / t.t32aw * 1.01


# 2. An M split's latency ----------------------------------------------------------------------


@pytest.mark.parametrize(("m", "n", "k"), [(401, 8, 8), (1001, 16, 64), (4097, 32, 64)])
def test_m_split_latency_is_the_largest_share(m: int, n: int, k: int) -> None:
    """4 cores, M not a multiple of 4: the cores hold ceil(M/4) and floor(M/4) rows, and the
    layer ends with its largest share: the weight-stationary fold count of ceil(M/4) rows,
    in the split estimate and in the event model (ideal memory: the array alone)."""
    cores = 4
    chip = _split_chip(64, True, 1e15)
    largest = _ws_cycles(-(-m // cores), n, k)
    assert largest > _ws_cycles(m // cores, n, k)  # the cases tell ceil from floor
    est = {e.how: e for e in split_estimates(chip, 1, m, n, k, 0.0, 0.0, 1.0, 0.0)}
    assert est["m"].latency_cycles == largest
    lp = compile_workload(chip, _one_matmul(m, n, k)).layers[0]
    assert "split m" in lp.mapping
    per_core = lp.per_core("array_cycles")
    assert sorted(per_core) == sorted([largest] + [_ws_cycles(m // cores, n, k)] * 3)
    layer = simulate(chip, _one_matmul(m, n, k), memory="ideal").layers.iloc[0]
    assert layer["cycles"] == largest


# 3. Causal attention with fewer queries than keys -------------------------------------------


@pytest.mark.parametrize(("q", "kv"), [(384, 1536), (200, 2048)])
def test_causal_attention_after_a_cached_prefix(q: int, kv: int) -> None:
    """q queries are the last q positions of kv keys: query i sees keys 0 .. kv - q + i.
    The block schedule (query blocks outer, K/V blocks up to the one holding the block's
    last position) is walked by hand: its tile count and executed MACs are the program's,
    and they cover at least the layer's own (unmasked) MACs."""
    g, d, heads, kv_heads = 2, 64, 4, 2
    at = Attention("a", heads=heads, kv_heads=kv_heads, q_len=q, kv_len=kv, head_dim=d,
                   causal=True)
    lp = _alone(_attention_chip("128 KiB"), at)
    bq, bk = _blocks(lp.mapping)
    steps = _schedule(q, kv, bq, bk, True)
    pairs = kv_heads
    executed = pairs * sum(2 * g * cq * ck * d for cq, _, ck, _, _, _ in steps)
    unmasked = heads * sum(kv - q + i + 1 for i in range(q)) * d * 2
    assert lp.macs == unmasked
    assert lp.n_tiles == pairs * len(steps)
    assert lp.total("macs") == executed >= unmasked
    # The offset matters: a schedule that forgot it visits fewer blocks than the mask needs.
    assert len(_schedule(q, q, bq, bk, True)) < len(steps)


# 4. Resident activations within the on-chip SRAM ----------------------------------------


def _two_cores_shared_sram(core_sram: str, shared: str):  # type: ignore[no-untyped-def]
    """Two cores of 32x32 weight-stationary arrays with ``core_sram`` each, and ``shared``."""
    return chip_from_dict({
        "name": "t", "sources": ["a test chip"], "clock": "1 GHz",
        "cores": {"count": 2, "core": {"systolic": {"rows": 32, "cols": 32, "dataflow": "ws"},
                                       "sram": {"size": core_sram}}},
        "shared_sram": {"size": shared},
        "dram": {"standard": "LPDDR5X-8533", "channels": 2, "capacity": "4 GiB"}})


def test_resident_activations_fit_what_resident_weights_leave() -> None:
    """2 cores of 64 KiB and 4 MiB of shared SRAM holding 3200 KiB of resident weights:
    896 KiB of shared SRAM are left. A layer's activations are resident when it neither
    reads its input nor writes its output from DRAM (the weights are resident, so an
    activation is all a layer would move). At no layer may they pass the 896 KiB left plus
    the scratchpads (2 x 64 KiB); layers 4 and 5 (562.5 KiB each way) would if both stayed."""
    kib = 1024
    chip = _two_cores_shared_sram("64 KiB", "4 MiB")
    ms = [900, 100, 100, 900, 900, 100, 300, 300]
    wl = Workload("chain", tuple(Matmul(f"fc{i}", m=m, n=640, k=640) for i, m in enumerate(ms)))
    weights = 8 * 640 * 640  # int8
    program = compile_workload(chip, wl)
    assert program.weights_resident and weights == 3200 * kib
    limit = 4096 * kib - weights + 2 * 64 * kib
    resident = []
    for lp, layer in zip(program.layers, wl.layers, strict=True):
        held = (layer.input_bytes()["act"] if lp.total("dram_read_bytes") == 0 else 0) + (
            layer.output_bytes()["act"] if lp.total("dram_write_bytes") == 0 else 0)
        resident.append(held)
        assert held <= limit, lp.name
    assert max(resident) > 0  # residency is used where it fits
    assert limit < 2 * 900 * 640  # layer 4's input and output together would not fit


def test_activations_past_the_shared_sram_shrink_the_scratchpad_a_layer_tiles_in() -> None:
    """2 cores of 1 MiB, 2.5 MiB of shared SRAM holding 2,000,000 B of resident weights:
    621,440 B are left. A ReLU whose 512,000 B input and output both stay on chip holds
    1,024,000 B: what the shared SRAM cannot take, 402,560 B, spills into the scratchpads,
    201,280 B a core. The vector unit's chunks are a quarter of what a core has left
    (double-buffered in and out): ceil(512,000 / ((1 MiB - 201,280) / 4)) = 3 chunks a
    core. Forgetting the weights when placing activations would find no spill and cut 2."""
    chip = _two_cores_shared_sram("1 MiB", "2.5 MiB")
    m, h = 512, 1000
    wl = Workload("w", (Matmul("fc1", m=m, n=h, k=h),
                        Elementwise("relu", elements=m * h, op="relu", inputs=1),
                        Matmul("fc2", m=m, n=h, k=h)))
    program = compile_workload(chip, wl)
    relu = program.layers[1]
    assert program.weights_resident
    assert relu.total("dram_read_bytes") == relu.total("dram_write_bytes") == 0  # both held
    left = int(2.5 * 2**20) - 2 * h * h
    spill = (2 * m * h - left) / 2
    assert spill > 0
    chunks = math.ceil((2 * m * h / 2) / ((2**20 - spill) / 4))
    assert chunks == 3 and math.ceil((2 * m * h / 2) / (2**20 / 4)) == 2  # the slip's count
    assert len(relu.tiles[0]) == len(relu.tiles[1]) == chunks


# 5. A pipeline stage runs a micro-batch ------------------------------------------------------


def test_pipeline_step_is_gpipe_over_micro_batches() -> None:
    """batch 8 in 4 micro-batches over 2 stages: each stage runs batch 2 (its latency is the
    stage built at batch 2, simulated alone), and the step is GPipe's recurrence: stage 0
    runs its micro-batches back to back; stage 1 starts micro-batch j when it is free and
    j has arrived (one hop: latency + bytes / bandwidth of 2 tokens' hidden states). For
    equal stages and free sends that is ((pp - 1) + m) t."""
    batch, pp, m = 8, 2, 4
    wl = from_hf_config(TINY_LLM, "decode", batch=batch, prompt_len=16, context_len=17)
    res = simulate_system("rngd_8card", wl, tp=1, pp=pp, micro_batches=m)
    system = load_system("rngd_8card")
    micro = from_hf_config(TINY_LLM, "decode", batch=batch // m, prompt_len=16, context_len=17)
    t = []
    for s, r in enumerate(res.stage_results):
        assert r.summary()["batch"] == batch // m
        alone = simulate(system.chip_spec, stage_workload(micro, s, pp))
        assert r.summary()["latency_s"] == pytest.approx(alone.summary()["latency_s"],
                                                         rel=1e-12)
        t.append(r.summary()["latency_s"])
    send = system.link.latency + batch // m * TINY_LLM["hidden_size"] * 1 / system.link.bandwidth
    end0 = [(j + 1) * t[0] for j in range(m)]
    end1 = 0.0
    for j in range(m):
        end1 = max(end1, end0[j] + send) + t[1]
    assert res.summary()["latency_s"] == pytest.approx(end1, rel=1e-9)
    assert end1 > ((pp - 1) + m) * min(t)  # the bubble: never m t alone


# 6. KV blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "blocks"), [(16, 1), (17, 2), (32, 2), (33, 3)])
def test_a_prompt_holds_ceil_tokens_over_block_blocks(prompt: int, blocks: int) -> None:
    """Blocks of 16 tokens: a prompt of 16 holds one, one token more holds two."""
    assert blocks == math.ceil(prompt / 16)
    req = Requests(np.array([0.0]), np.array([prompt]), np.array([2]))
    res = serve(None, None, requests=req, block_tokens=16, blocks=64,
                step_model=ConstantSteps(0.1, 0.01))
    first = res.steps.iloc[0]
    assert first["prefill_tokens"] == prompt and first["kv_blocks_used"] == blocks


# 7. Goodput in tokens ------------------------------------------------------------------------


def test_goodput_tokens_count_only_requests_within_the_slo() -> None:
    """Three requests at once, one at a time, prefill 0.1 s, decode free: TTFTs 0.1, 0.2,
    0.3 s. Under ttft <= 250 ms the first two (1 and 3 output tokens) meet the SLO, the
    third (5 tokens) does not: goodput is 4 tokens over the 0.3 s run, not 9, nor 2 x the
    mean of 3."""
    req = Requests(np.zeros(3), np.array([10, 10, 10]), np.array([1, 3, 5]))
    res = serve(None, None, requests=req, max_batch=1, slo="ttft=250ms",
                step_model=ConstantSteps(0.1, 0.0))
    s = res.summary()
    assert list(res.requests["slo_met"]) == [True, True, False]
    assert s["duration_s"] == pytest.approx(0.3)
    assert s["goodput_tokens_per_s"] == pytest.approx((1 + 3) / 0.3)
    assert s["tokens_per_s"] == pytest.approx((1 + 3 + 5) / 0.3)
