"""The multi-core split and the on-chip network, against calculations done here by hand.

The split rule (docs/model.md): among the dimensions with an entry per core (g, M, N),
the lowest estimated latency; among those within 2 % of it, the fewest DRAM bytes; then the
least DRAM + NoC energy. The estimate is max(the largest share's array cycles by the fold
formula, DRAM bytes / DRAM bytes per cycle, NoC bytes per core / NoC bytes per cycle). An M
split gives every core all of B, an N split all of A; with a multicasting NoC one copy is
read from DRAM and the other cores receive theirs over the NoC.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from npusim.compiler.lower import compile_workload
from npusim.compiler.program import TILE_COLUMNS, LayerProgram, TileProgram
from npusim.simulate import simulate, simulate_program
from npusim.spec.arch import loads_arch
from npusim.workloads import builtin
from npusim.workloads.ir import Matmul, Workload
from npusim.workloads.llm import from_hf_config

CHIP = """
name: split test chip
sources: [a test]
clock: 1 GHz
cores:
  count: 4
  core:
    systolic: {{rows: 8, cols: 8, dataflow: ws}}
    sram: {{size: 4 MiB}}
noc: {{bytes_per_cycle: {noc_bpc}, latency_cycles: 10, multicast: {multicast}, pj_per_bit: 1.5}}
dram: {{standard: LPDDR4-4266, channels: 1, bandwidth: {dram_bw} B/s, pj_per_bit: 4.0}}
"""
R = C = 8  # the test chip's array
CORES = 4
CLOCK = 1e9
DRAM_PJ_PER_BIT, NOC_PJ_PER_BIT = 4.0, 1.5


def _chip(noc_bpc: float = 64, multicast: bool = True, dram_bw: float = 16e9):
    return loads_arch(CHIP.format(noc_bpc=noc_bpc, multicast="yes" if multicast else "no",
                                  dram_bw=dram_bw))


def _ws_cycles(m: int, n: int, k: int) -> int:
    """SCALE-Sim's weight-stationary count: ceil(K/R) ceil(N/C) folds of 2R + C + M - 2."""
    return math.ceil(k / R) * math.ceil(n / C) * (2 * R + C + m - 2)


def _expected_split(m: int, n: int, k: int, noc_bpc: float, multicast: bool,
                    dram_bw: float) -> str:
    """The rule, restated: int8 A (m x k) and B (k x n) both read from DRAM, g = 1."""
    a, b = m * k, k * n
    cands = {}
    for how, size, shared in (("m", m, b), ("n", n, a)):
        if size < CORES:
            continue
        part = -(-size // CORES)
        cycles = _ws_cycles(part, n, k) if how == "m" else _ws_cycles(m, part, k)
        copies = shared * (CORES - 1)
        dram = a + b + (0 if multicast else copies)
        noc = copies if multicast else 0
        latency = max(cycles, dram / (dram_bw / CLOCK), noc / CORES / noc_bpc)
        energy = dram * 8 * DRAM_PJ_PER_BIT + noc * 8 * NOC_PJ_PER_BIT
        cands[how] = (latency, dram, energy)
    fastest = min(v[0] for v in cands.values())
    close = {h: v for h, v in cands.items() if v[0] <= 1.02 * fastest}
    return min(close, key=lambda h: (close[h][1], close[h][2]))


def _one_matmul(m: int, n: int, k: int) -> Workload:
    return Workload("one matmul", (Matmul("mm", m=m, n=n, k=k),))


def _split_of(mapping: str) -> str:
    return mapping.split("split ")[1][0]


CASES = [  # (m, n, k, NoC B/cycle, multicast, DRAM B/s)
    (4096, 32, 64, 64, True, 16e9),
    (4096, 32, 64, 64, False, 16e9),
    (32, 4096, 64, 64, True, 16e9),
    (32, 4096, 64, 64, False, 1e12),
    (1024, 96, 128, 64, True, 1e12),  # N is 6 % faster on the array
    (1024, 96, 128, 1, True, 1e12),  # ... but its A multicast would take 98,304 NoC cycles
    (256, 64, 256, 1, True, 16e9),
    (256, 64, 256, 64, False, 16e9),
    (512, 512, 64, 64, True, 1e12),
]


@pytest.mark.parametrize(("m", "n", "k", "noc_bpc", "multicast", "dram_bw"), CASES)
def test_split_is_the_one_the_rule_picks(m, n, k, noc_bpc, multicast, dram_bw):
    chip = _chip(noc_bpc, multicast, dram_bw)
    lp = compile_workload(chip, _one_matmul(m, n, k)).layers[0]
    assert _split_of(lp.mapping) == _expected_split(m, n, k, noc_bpc, multicast, dram_bw)


def test_the_cases_exercise_both_splits_and_the_noc_rate():
    picks = [_expected_split(*c) for c in CASES]
    assert {"m", "n"} <= set(picks)
    # Same GEMM, same chip but for the NoC rate: a slow NoC turns the choice around.
    assert _expected_split(*CASES[4]) == "n" and _expected_split(*CASES[5]) == "m"


@pytest.mark.parametrize("multicast", [True, False])
def test_m_split_reads_b_once_with_multicast_and_per_core_without(multicast):
    m, n, k = 4096, 32, 64  # tall: the rule splits M (checked above)
    chip = _chip(64, multicast)
    res = simulate(chip, _one_matmul(m, n, k))
    row = res.layers.iloc[0]
    assert "split m" in row["mapping"]
    a, b = m * k, k * n  # int8: one byte per element
    lp = res.program.layers[0]
    per_core_rd = lp.per_core("dram_read_bytes")
    per_core_noc = lp.per_core("noc_read_bytes")
    if multicast:
        # Each core: its quarter of A, its quarter of B; three quarters of B over the NoC.
        assert per_core_rd.tolist() == [a / CORES + b / CORES] * CORES
        assert per_core_noc.tolist() == [b * (CORES - 1) / CORES] * CORES
        assert row["dram_read_bytes"] == a + b
        assert row["noc_bytes"] == b * (CORES - 1)
        assert row["dram_dup_bytes"] == 0
        assert row["energy_noc_j"] == pytest.approx(b * (CORES - 1) * 8 * NOC_PJ_PER_BIT * 1e-12,
                                                    rel=1e-12)
    else:
        assert per_core_rd.tolist() == [a / CORES + b] * CORES
        assert row["dram_read_bytes"] == a + CORES * b
        assert row["noc_bytes"] == 0 and row["energy_noc_j"] == 0
        assert row["dram_dup_bytes"] == (CORES - 1) * b
    # The same bytes reach the scratchpads either way (DMA fill), so SRAM writes agree.
    other = simulate(_chip(64, not multicast), _one_matmul(m, n, k)).layers.iloc[0]
    assert row["sram_write_bytes"] == other["sram_write_bytes"]


@pytest.mark.parametrize(("multicast", "dram_bw"), [(True, 16e9), (False, 1e12)])
def test_n_split_duplicates_a_and_only_a(multicast, dram_bw):
    """Wide GEMM: an N split gives every core all of A (m x k) and a quarter of B. Counted
    here: per core a + b/4 read from DRAM without multicast (A read 4 times: 3 copies
    beyond one, ``dram_dup_bytes``); with multicast a/4 + b/4, the other 3/4 of A over the
    NoC. A mutant duplicating B instead, or A and B both, changes every count below."""
    m, n, k = 32, 4096, 64
    assert _expected_split(m, n, k, 64, multicast, dram_bw) == "n"
    res = simulate(_chip(64, multicast, dram_bw), _one_matmul(m, n, k))
    row = res.layers.iloc[0]
    assert "split n" in row["mapping"]
    a, b = m * k, k * n  # int8: one byte per element
    lp = res.program.layers[0]
    if multicast:
        assert lp.per_core("dram_read_bytes").tolist() == [a / CORES + b / CORES] * CORES
        assert lp.per_core("noc_read_bytes").tolist() == [a * (CORES - 1) / CORES] * CORES
        assert row["dram_read_bytes"] == a + b
        assert row["noc_bytes"] == a * (CORES - 1)
        assert row["dram_dup_bytes"] == 0
    else:
        assert lp.per_core("dram_read_bytes").tolist() == [a + b / CORES] * CORES
        assert lp.per_core("noc_read_bytes").tolist() == [0.0] * CORES
        assert row["dram_read_bytes"] == CORES * a + b
        assert row["dram_dup_bytes"] == (CORES - 1) * a
    # Every core writes its own quarter of the output, m x n/4 int8, once.
    assert lp.per_core("dram_write_bytes").tolist() == [m * n / CORES] * CORES


def test_g_split_duplicates_nothing():
    """Independent products (a batched matmul of activations, one B per entry): a split
    over g gives each core whole products, so nothing is read twice."""
    g, m, n, k = 8, 64, 64, 64
    wl = Workload("bmm", (Matmul("bmm", batch=g, m=m, n=n, k=k, b_kind="act"),))
    res = simulate(_chip(64, False), wl)
    row = res.layers.iloc[0]
    assert "split g" in row["mapping"]
    one = g * (m * k + k * n)  # every A and every B once, int8
    assert row["dram_read_bytes"] == one and row["dram_dup_bytes"] == 0
    per_core = res.program.layers[0].per_core("dram_read_bytes").tolist()
    assert per_core == [one / CORES] * CORES


def test_noc_energy_default_is_a_tenth_pj_per_bit_mm_over_10_mm():
    chip = loads_arch(CHIP.format(noc_bpc=64, multicast="yes", dram_bw=16e9)
                      .replace(", pj_per_bit: 1.5}", "}"))
    assert chip.noc is not None
    assert chip.noc.energy_per_byte == pytest.approx(0.1e-12 * 10 * 8, rel=1e-12)


def _noc_program(dram_bytes: float, noc_bytes: float, array_cycles: float) -> TileProgram:
    t = np.zeros((1, len(TILE_COLUMNS)))
    col = {c: i for i, c in enumerate(TILE_COLUMNS)}
    t[0, col["dram_read_bytes"]] = dram_bytes
    t[0, col["noc_read_bytes"]] = noc_bytes
    t[0, col["array_cycles"]] = t[0, col["compute_cycles"]] = array_cycles
    empty = np.zeros((0, len(TILE_COLUMNS)))
    lp = LayerProgram(0, "l", "tile", "array", (t, empty, empty, empty))
    return TileProgram("split test chip", "noc", CORES, (lp,))


@pytest.mark.parametrize("compiled", [True, False])
def test_noc_time_where_the_noc_is_the_bottleneck(compiled):
    """One tile: 1,600 B from DRAM (16 GB/s: 100 ns + the standard's idle latency) and
    64,000 B over a 64 B/cycle NoC (1,000 cycles = 1 us) + 10 cycles of NoC latency."""
    from npusim.engine.events import run_program
    from npusim.engine.memory import make_memory

    chip = _chip(64, True)
    prog = _noc_program(1600, 64_000, 0)
    stats, _ = run_program(chip, prog, make_memory(chip, "bandwidth"), compiled=compiled)
    core = stats[0].cores[0]
    noc_done = 64_000 / 64 / CLOCK + 10 / CLOCK
    dram_done = 1600 / 16e9 + chip.dram.idle_latency_s
    assert stats[0].end_s - stats[0].start_s == pytest.approx(noc_done, rel=1e-12)
    assert core.noc_wait_s == pytest.approx(noc_done - dram_done, rel=1e-12)
    assert core.dma_wait_s == pytest.approx(dram_done, rel=1e-12)
    # And when DRAM is the longer part, the NoC only adds its latency.
    prog = _noc_program(1_600_000, 640, 0)
    stats, _ = run_program(chip, prog, make_memory(chip, "bandwidth"), compiled=compiled)
    dram_done = 1_600_000 / 16e9 + chip.dram.idle_latency_s
    assert stats[0].end_s == pytest.approx(dram_done + 10 / CLOCK, rel=1e-12)
    assert stats[0].cores[0].noc_wait_s == pytest.approx(10 / CLOCK, rel=1e-9)


def test_noc_time_is_its_own_cause_in_the_latency_split():
    chip = _chip(64, True)
    res = simulate_program(chip, _noc_program(1600, 64_000, 0))
    row = res.layers.iloc[0]
    dram_done = 1600 / 16e9 + chip.dram.idle_latency_s
    # Averaged over the 4 cores (three idle ones wait at the barrier).
    assert row["time_noc_s"] == pytest.approx((1e-6 + 1e-8 - dram_done) / CORES, rel=1e-9)


def test_a_program_with_noc_bytes_needs_a_chip_with_a_noc():
    from npusim.errors import SimulationError

    text = CHIP.format(noc_bpc=64, multicast="yes", dram_bw=16e9)
    chip = loads_arch("\n".join(line for line in text.splitlines() if not line.startswith("noc")))
    assert chip.noc is None
    with pytest.raises(SimulationError, match="on-chip network"):
        simulate_program(chip, _noc_program(0, 10, 0))


def test_llama_30b_int4_prefill_on_lpddr_llm_reads_the_weights_about_once():
    """Weights from the HF config (hidden 6656, intermediate 17920, 60 layers, vocab 32000):
    q, k, v, o (4 h^2) and gate, up, down (3 h i) per layer and the LM head (h x vocab), at
    half a byte each. Fused attention reads the K and V it attends to back from the KV cache
    (2 x h per token and layer, int8). Before the NoC and the split rule this read 4x (65 GB
    at 512 tokens)."""
    h, inter, layers, vocab, prompt = 6656, 17920, 60, 32000, 512
    weights = (layers * (4 * h * h + 3 * h * inter) + h * vocab) * 0.5
    kv = layers * 2 * h * prompt
    wl = from_hf_config("llama_30b", "prefill", prompt_len=prompt, weights="int4")
    s = simulate("lpddr_llm", wl).summary()
    assert weights + kv <= s["dram_read_bytes"] <= 1.06 * (weights + kv)


def test_bert_base_on_hbm_llm_reads_weights_plus_activations():
    """BERT-base linear weights (12 layers x (4 x 768^2 + 2 x 768 x 3072) bytes at int8) and
    the embedding rows of 384 tokens; before, the M split read them once per core (243 MiB)."""
    h, inter, layers, seq = 768, 3072, 12, 384
    weights = layers * (4 * h * h + 2 * h * inter)
    s = simulate("hbm_llm", builtin("bert_base")).summary()
    assert weights + seq * h <= s["dram_read_bytes"] <= 1.02 * (weights + seq * h)
    assert s["dram_dup_bytes"] <= 0.02 * weights


def test_a_noc_without_its_rate_is_a_spec_error_naming_the_key():
    from npusim.errors import SpecError

    text = CHIP.format(noc_bpc=64, multicast="yes", dram_bw=16e9).replace(
        "bytes_per_cycle: 64, ", "")
    with pytest.raises(SpecError, match=r"noc\.bytes_per_cycle"):
        loads_arch(text, "chip.yaml")


def test_roofline_bounds_a_layer_by_its_busiest_cores_noc_bytes_too():
    chip = _chip(64, True)
    res = simulate_program(chip, _noc_program(1600, 64_000, 0), fidelity="roofline")
    # 64,000 B at 64 B/cycle and 1 GHz: 1 us, against 0.1 us of DRAM at 16 GB/s.
    assert res.layers.iloc[0]["latency_s"] == pytest.approx(1e-6, rel=1e-12)
    event = simulate_program(chip, _noc_program(1600, 64_000, 0))
    assert event.layers.iloc[0]["latency_s"] >= res.layers.iloc[0]["latency_s"]
