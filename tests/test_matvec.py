"""The matrix-vector engine: its kernel against the twin and hand counts, the compiler's
choice of engine, the layer ``limit``, the presets' engines, and LLM decode against the
weight-streaming bound computed here from the model's published shape."""

from __future__ import annotations

import math
from dataclasses import replace

import naive
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import DYADIC_RATES, k_emit, k_estimate, problems, tilings, with_capacity

import npusim
from npusim.assemble import layer_limit
from npusim.compiler.lower import compile_workload
from npusim.engine.roofline import layer_times
from npusim.errors import SpecError
from npusim.kernels import matvec
from npusim.llm import run_llm
from npusim.spec.arch import load_arch, loads_arch
from npusim.workloads.ir import BITS, Matmul, Workload

# --- kernel -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, derandomize=True)
@given(m=st.integers(1, 300), n=st.integers(1, 700), k=st.integers(1, 700),
       lanes=st.integers(1, 70), width=st.integers(1, 33), rows=st.integers(1, 9),
       rate=st.sampled_from(DYADIC_RATES), depth=st.integers(0, 9))
def test_matvec_kernel_matches_twin(m, n, k, lanes, width, rows, rate, depth):
    assert (matvec.matvec_cycles(m, n, k, lanes, width, rows, rate, depth)
            == naive.matvec_cycles(m, n, k, lanes, width, rows, rate, depth))
    assert (matvec.matvec_sram_elements(m, n, k, lanes, rows)
            == naive.matvec_sram_elements(m, n, k, lanes, rows))


def test_matvec_hand_counts():
    # 128 lanes x 8 wide, 4 rows, pipeline 5. M=1, K=64, N=256: 1 row group x 2 lane groups
    # = 2 folds of 64/8 = 8 beats: 16 cycles + 5.
    assert matvec.matvec_cycles(1, 256, 64, 128, 8, 4, 1.0, 5) == 21
    # M=5: 2 row groups (4 + 1) -> 4 folds x 8 beats = 32 + 5; at int4 rate 2: 16 + 5;
    # at bf16 rate 1/2: 64 + 5. K=65 needs a 9th beat per fold: 36 + 5.
    assert matvec.matvec_cycles(5, 256, 64, 128, 8, 4, 1.0, 5) == 37
    assert matvec.matvec_cycles(5, 256, 64, 128, 8, 4, 2.0, 5) == 21
    assert matvec.matvec_cycles(5, 256, 64, 128, 8, 4, 0.5, 5) == 69
    assert matvec.matvec_cycles(5, 256, 65, 128, 8, 4, 1.0, 5) == 41
    # SRAM: A = 5 x 64 per lane group (2) = 640; B = 64 x 256 per row group (2) = 32,768;
    # each of the 5 x 256 outputs written once.
    assert matvec.matvec_sram_elements(5, 256, 64, 128, 4) == (640, 32768, 1280)


def test_matvec_port_stall():
    # M=1, K=N=1024 on 128 x 8 x 1 at int8: 128 beats x 8 lane groups = 1,024 cycles.
    # Reads 1,024 x 8 activations + 1 MiB of weights at 1 B: 1,056,768 B. A 512 B/cycle
    # port stretches it to 2,064 cycles; a 2 KiB/cycle port does not stall it.
    t, comp, rd, wr = matvec.matvec_time(1, 1024, 1024, 128, 8, 1, 1.0, 0, 1.0, 1.0, 4.0,
                                         512.0, 0.0)
    assert (comp, rd, wr) == (1024.0, 1024 * 8 + 1024 * 1024, 4096.0)
    assert t == (1024 * 8 + 1024 * 1024) / 512
    assert matvec.matvec_time(1, 1024, 1024, 128, 8, 1, 1.0, 0, 1.0, 1.0, 4.0, 2048.0,
                              0.0)[0] == 1024.0


@settings(max_examples=120, deadline=None, derandomize=True)
@given(data=st.data())
def test_tiling_on_the_matvec_engine_matches_twin(data):
    p = data.draw(problems())
    p = replace(p, df=matvec.MATVEC, overlap=data.draw(st.integers(0, 6)))
    t = data.draw(tilings(p))
    p = data.draw(with_capacity(p, t))
    assert k_estimate(p, t) == naive.estimate(p, *t)
    got = k_emit(p, t)
    assert got.tolist() == naive.emit(p, *t)
    assert got[:, 2].sum() == p.g * p.m * p.n * p.k


# --- spec and presets ---------------------------------------------------------------------


def test_matvec_precision_the_array_lacks_is_an_error(root):
    text = (root / "arch" / "lpddr_llm.yaml").read_text()
    bad = text.replace("      macs_per_cycle: {int4: 2, int8: 1, fp8: 1, fp16: 0.5, bf16: 0.5, "
                       "mxfp4: 1, nvfp4: 1}\n"
                       "      read_bytes_per_cycle: 1056",
                       "      macs_per_cycle: {int8: 1, fp32: 0.25}\n"
                       "      read_bytes_per_cycle: 1056")
    assert bad != text
    with pytest.raises(SpecError, match=r"x.yaml:\d+: cores.core.matvec.macs_per_cycle: has fp32"):
        loads_arch(bad, "x.yaml")
    with pytest.raises(SpecError, match=r"x.yaml:\d+: cores.core.matvec.lane"):
        loads_arch(text.replace("      lanes: 128\n      width: 8",
                                "      lane: 128\n      width: 8"), "x.yaml")


MATVEC_PRESETS = ["lpddr_llm", "hbm_llm", "rngd"]


@pytest.mark.parametrize("name", MATVEC_PRESETS)
def test_matvec_port_feeds_the_engine_at_every_precision(name):
    core = load_arch(name).cores.core
    mv = core.matvec
    assert mv is not None
    port = core.matvec_read_port()
    for prec, rate in mv.macs_per_cycle.items():
        b = BITS[prec] / 8
        weights = mv.lanes * mv.width * rate * b  # one weight per multiplier column per beat
        acts = mv.rows * mv.width * rate * b  # the rows' activations, broadcast to the lanes
        assert port is not None and weights + acts <= port, prec


def test_llm_twins_take_weights_at_the_hbm_rate():
    """The engine takes weights at least as fast as the HBM twin's DRAM delivers them to a
    core, in every precision it computes and for int4 weights under int8 compute."""
    hbm = load_arch("hbm_llm")
    per_core = 2 * 32 * 32 / 8 * 6.4e9 / 4 / 1.0e9  # HBM3-6400: 64 x 32-bit channels, B/cycle
    assert per_core == pytest.approx(hbm.dram.peak_bandwidth / hbm.clock / hbm.n_cores)
    for name in ("lpddr_llm", "hbm_llm"):
        mv = load_arch(name).cores.core.matvec
        assert mv == hbm.cores.core.matvec  # the twins' compute stays identical
        for prec, rate in mv.macs_per_cycle.items():
            assert mv.lanes * mv.width * rate * BITS[prec] / 8 >= per_core, prec
        assert mv.lanes * mv.width * mv.macs_per_cycle["int8"] * 0.5 >= per_core


def test_rngd_engine_takes_weights_at_its_hbm_rate():
    chip = load_arch("rngd")
    per_pe = 1.5e12 / 8 / 1.0e9  # published 1.5 TB/s over 8 PEs at 1 GHz, B/cycle
    mv = chip.cores.core.matvec
    assert mv is not None
    for prec, rate in mv.macs_per_cycle.items():
        assert mv.lanes * mv.width * rate * BITS[prec] / 8 >= per_pe, prec
    # Its peak stays below the arrays' (the same contraction engines, weight-fed).
    assert mv.peak_macs_per_cycle("int8") < chip.cores.core.systolic.peak_macs_per_cycle("int8")


def test_tpu_v4_has_no_matvec_engine():
    assert load_arch("tpu_v4").cores.core.matvec is None


# --- the compiler's choice ----------------------------------------------------------------


def _ws_overlapped_cycles(m: int, n: int, k: int, r: int, c: int, arrays: int) -> int:
    """WS with double-buffered weights (docs/model.md): F rounds of folds per array take
    R + T + (F - 1) max(T, R) + R + C - 2 cycles for a stream of T = M rows."""
    folds = math.ceil(k / r) * math.ceil(n / c)
    f = math.ceil(folds / arrays)
    if f == 1:
        return 2 * r + c + m - 2
    return r + m + (f - 1) * max(m, r) + r + c - 2


def _matvec_cycles(m: int, n: int, k: int, lanes: int, width: int, rows: int, depth: int) -> int:
    return math.ceil(m / rows) * math.ceil(n / lanes) * math.ceil(k / width) + depth


@pytest.mark.parametrize(("m", "n", "k"), [(1, 4096, 4096), (2048, 2048, 2048)])
def test_compiler_picks_the_faster_engine(m, n, k):
    chip = load_arch("lpddr_llm")
    wl = Workload("one", (Matmul("mm", m=m, n=n, k=k),))
    # Ideal memory: no DRAM or SRAM capacity in the way, each core does its share of the
    # wider of M and N (4 cores); lpddr_llm: one 128 x 128 array, or 128 lanes x 8 x 4 rows.
    cm, cn = (m, n // 4) if m < 4 else (m // 4, n)
    array = _ws_overlapped_cycles(cm, cn, k, 128, 128, 1)
    engine = _matvec_cycles(cm, cn, k, 128, 8, 4, 5)
    want = "matvec" if engine < array else "array"
    assert want == ("matvec" if m == 1 else "array")  # the test's premise
    lp = compile_workload(chip, wl, ideal=True).layers[0]
    assert lp.unit == want
    assert lp.mapping.startswith("matvec tile" if want == "matvec" else "ws tile")
    # The roofline's compute bound uses the peak of the engine the layer runs on.
    peak = 4 * (128 * 8 * 4 if want == "matvec" else 128 * 128) * 1.0e9
    assert layer_times(chip, lp).compute_s == pytest.approx(m * n * k / peak, rel=1e-12)


def test_the_engine_stalls_on_its_own_port():
    base = load_arch("lpddr_llm")
    data = base.model_dump()
    data["cores"]["core"]["matvec"]["read_bytes_per_cycle"] = 256
    narrow = type(base).model_validate(data)
    wl = Workload("one", (Matmul("mm", m=1, n=4096, k=4096),))
    # Per core (N split 4 ways): A 1 x 4096 read once per lane group (1024 / 128 = 8), B
    # 4096 x 1024 once: 4,227,072 B. Compute: 8 lane groups x 512 beats + 5 = 4,101 cycles.
    nbytes = 4096 * 8 + 4096 * 1024
    for chip, port in ((base, 1056), (narrow, 256)):
        lp = compile_workload(chip, wl, ideal=True).layers[0]
        assert lp.unit == "matvec"
        assert lp.per_core("compute_cycles").max() == 8 * 512 + 5
        want = max(8 * 512 + 5, nbytes / port)
        assert lp.per_core("array_cycles").max() == pytest.approx(want, rel=1e-12)


def test_no_matvec_engine_means_the_array():
    chip = load_arch("tpu_v4")
    wl = Workload("one", (Matmul("mm", m=1, n=4096, k=4096),))
    assert compile_workload(chip, wl, ideal=True).layers[0].unit == "array"


def test_matvec_layer_utilization_against_the_engine_peak():
    chip = load_arch("hbm_llm")
    res = npusim.simulate(chip, Workload("one", (Matmul("mm", m=1, n=4096, k=4096),)),
                          memory="ideal")
    row = res.layers.iloc[0]
    assert row["unit"] == "matvec"
    peak = 4 * 128 * 8 * 4  # MACs per cycle of the four cores' engines at int8
    assert row["utilization"] == pytest.approx(4096 * 4096 / (row["cycles"] * peak))
    # M = 1 fills one of the 4 rows the engine holds: at most a quarter of its peak.
    assert 0.2 < row["utilization"] <= 0.25


# --- limit --------------------------------------------------------------------------------


def _row(bound: str, **times: float) -> dict[str, float | str]:
    return {"bound": bound, **{f"time_{k}_s": v for k, v in times.items()}}


def test_layer_limit_names_the_cause():
    # Memory-bound: the compute that hides behind the transfers does not name the limit.
    assert layer_limit(_row("memory", mac=5.0, dma_exposed=1.0)) == "dram bandwidth"
    assert layer_limit(_row("memory", dma_exposed=1.0, dram_bank=2.0)) == "dram bank conflicts"
    # Compute-bound: the largest cause, fill/drain under the name its engine gives it.
    assert layer_limit(_row("compute", mac=1.0, fill_drain=3.0)) == "fill/drain"
    assert layer_limit(_row("compute", mac=1.0, fill_drain=3.0), "weight shift-in") == (
        "weight shift-in")
    assert layer_limit(_row("compute", mac=3.0, sram_stall=2.0)) == "mac rate"
    assert layer_limit(_row("compute", mac=1.0, sram_stall=2.0)) == "sram port"
    assert layer_limit(_row("compute", mac=1.0, sync=2.0)) == "core imbalance"
    assert layer_limit(_row("vector", vector=1.0)) == "vector unit"
    # Exposed DMA on a layer whose bytes would fit the bandwidth is latency, not bandwidth.
    assert layer_limit(_row("compute", mac=1.0, dma_exposed=2.0)) == "dram latency"
    assert layer_limit(_row("compute")) == "none"


@pytest.mark.parametrize(("chip", "m", "want"), [
    # A GEMV on TPU v4's double-buffered WS arrays: 1 row streams per fold while the next
    # 128 x 128 block takes 128 cycles to shift in.
    ("tpu_v4", 1, "weight shift-in (fill/drain)"),
    # 4096 rows per core stream per fold: the shift-in hides; a 4,000-deep K leaves the
    # last fold of each column partly idle (4000 = 31 x 128 + 32) — fill/drain, MACs lead.
    ("tpu_v4", 8192, "mac rate"),
    # The matrix-vector engine's own fill: M = 1 uses one of its 4 rows.
    ("hbm_llm", 1, "engine fill (idle lanes, pipeline)"),
])
def test_limit_of_simulated_layers(chip, m, want):
    wl = Workload("one", (Matmul("mm", m=m, n=4096, k=4000),))
    row = npusim.simulate(load_arch(chip), wl, memory="ideal").layers.iloc[0]
    assert row["limit"] == want


# --- LLM decode against the weight-streaming bound ----------------------------------------

# LLaMA-2-7B (HF config.json): hidden 4096, intermediate 11008, 32 layers, 32 heads (no GQA),
# vocabulary 32000. A decode step reads every projection and the LM head once; the
# embedding reads one row and the norms 4096 values each (left out: < 0.01 %).
_H, _I, _L, _V = 4096, 11008, 32, 32000
_WEIGHTS_7B = _L * (4 * _H * _H + 3 * _H * _I) + _V * _H  # parameters streamed per step


@pytest.fixture(scope="module")
def decode_7b() -> dict[str, object]:
    return {name: run_llm(name, "llama2_7b", prompt=64, gen=2, weights="int8", kv="int8",
                          decode_points=1)
            for name in ("lpddr_llm", "hbm_llm", "tpu_v4")}


@pytest.mark.parametrize(("name", "gbps"), [
    ("lpddr_llm", 16 * 16 / 8 * 8.533),  # LPDDR5X-8533, 16 x16 channels
    ("hbm_llm", 64 * 32 / 8 * 6.4),  # HBM3-6400, 64 x 32-bit pseudo-channels
])
def test_decode_is_bound_by_the_memory(decode_7b, name, gbps):
    res = decode_7b[name]
    bound = _WEIGHTS_7B * 1 / (gbps * 1e9)  # int8: one byte per weight
    assert res.tpot_s >= bound
    assert res.tpot_s <= 1.3 * bound
    assert res.limit == "dram bandwidth"
    assert res.summary()["limit"] == "dram bandwidth"


def test_llm_twins_now_tell_the_memories_apart(decode_7b):
    ratio = decode_7b["lpddr_llm"].tpot_s / decode_7b["hbm_llm"].tpot_s
    # 1.64 TB/s vs 273 GB/s: 6x; within the 1.3x margins of both results.
    assert 6.0 / 1.3 < ratio < 6.0 * 1.3


def test_tpu_v4_decode_names_weight_shift_in(decode_7b):
    res = decode_7b["tpu_v4"]
    # 2 cores x 4 arrays take 128 weights per cycle each at 1.05 GHz: 1.075 TB/s of int8
    # weights, below the 1.2 TB/s HBM2; the step is bound by shifting weights in.
    intake = 2 * 4 * 128 * 1.05e9  # int8 weights per second the arrays take
    assert intake < 1.2e12  # the premise: below the DRAM's rate
    assert res.tpot_s >= _WEIGHTS_7B / intake
    assert res.limit == "weight shift-in (fill/drain)"
