"""LLMs on systems of many chips: bounds, scaling, capacity, errors, energy, trace, CLI.

The bounds are written here from the HF config and the chip YAML (tests/llm_bound.py's
independent helpers): per chip, the larger of its share of the weights and K/V cache over
its DRAM bandwidth and its share of the MACs over its peak; plus the closed forms of the
collectives its tensor-parallel group runs (2 per block at the accumulation precision and the
embedding's all-reduce, the logits' all-gather), which a ring over the switch meets without contention.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import llm_bound as lb
import pytest

from npusim.cli import main
from npusim.errors import MappingError
from npusim.report.system_trace import system_trace
from npusim.spec.system import load_system, loads_system
from npusim.system import run_llm_system, simulate_system
from npusim.workloads import from_hf_config

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}
BYTES = {"int8": 1, "bf16": 2}


def _ring_all_reduce(n: int, nbytes: float, bw: float, lat: float) -> float:
    return 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat if n > 1 else 0.0


def _ring_all_gather(n: int, nbytes: float, bw: float, lat: float) -> float:
    return (n - 1) / n * nbytes / bw + (n - 1) * lat if n > 1 else 0.0


def _bound(system_name: str, model: str, tp: int, weights: str, act: str, kv: str,
           tokens: int, context: int, causal_pairs: int = 0, head_rows: int = 0) -> float:
    """Per-chip roofline plus the tensor-parallel collectives' closed forms, one step. The
    LM head runs on ``head_rows`` positions (default every token; a prefill's last one per
    sequence)."""
    cfg = lb.model(model)
    sysy = load_system(system_name)
    chip = lb.chip_yaml(sysy.chip)
    h, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    kvh = cfg.get("num_key_value_heads", heads)
    head_dim = h // heads
    moved = (lb.linear_params(cfg) * BYTES[weights]
             + 2 * layers * kvh * head_dim * context * BYTES[kv]) / tp
    pairs = causal_pairs or tokens * context
    rows = head_rows or tokens
    head = h * cfg["vocab_size"]
    macs = (tokens * (lb.linear_params(cfg) - head) + rows * head
            + 2 * layers * heads * head_dim * pairs) / tp
    peak = lb.peak_macs_per_s(chip, lb.compute_precision(chip, weights))
    chip_t = max(moved / lb.dram_bandwidth(chip), macs / peak)
    bw, lat = sysy.link.bandwidth, sysy.link.latency
    # Two partial-sum all-reduces per block at the accumulation precision (fp32, 4 B), the
    # embedding's at the activations' (its rows are whole or zero on each rank).
    comm = (2 * layers * _ring_all_reduce(tp, tokens * h * 4, bw, lat)
            + _ring_all_reduce(tp, tokens * h * BYTES[act], bw, lat))
    comm += _ring_all_gather(tp, rows * cfg["vocab_size"] * BYTES[act], bw, lat)
    return chip_t + comm


@pytest.mark.parametrize(("tp", "prec"), [(8, "bf16"), (2, "int8")])
def test_llama2_70b_on_rngd_cards_lands_within_1_3x_of_its_bound(tp: int, prec: str) -> None:
    prompt, gen = 128, 4
    res = run_llm_system("rngd_8card", "llama2_70b", prompt=prompt, gen=gen, weights=prec,
                         activations=prec, kv=prec, tp=tp, decode_points=1)
    ctx = res.decode_samples[0][0]
    tpot = _bound("rngd_8card", "llama2_70b", tp, prec, prec, prec, 1, ctx)
    ttft = _bound("rngd_8card", "llama2_70b", tp, prec, prec, prec, prompt, prompt,
                  prompt * (prompt + 1) // 2, head_rows=1)
    assert tpot <= res.tpot_s <= 1.3 * tpot
    assert ttft <= res.ttft_s <= 1.3 * ttft
    s = res.summary()
    assert s["decode_time_comm_mlp_all_reduce_s"] > 0 and s["chips_used"] == tp


def _slow_link_system() -> object:
    # RNGD cards on a switch whose transfers start slowly (5 us): all-reduces of a decode
    # step are latency-bound and grow with tp while the weights' time falls as 1/tp.
    return loads_system("""
name: slow switch
sources: [test]
chip: rngd
count: 8
link: {bandwidth: 63 GB/s, latency: 5 us}
topology: {kind: switch}
""")


def test_tensor_parallel_decode_falls_then_turns_where_the_closed_form_does() -> None:
    system = _slow_link_system()
    cfg = lb.model("llama2_7b")
    h, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    chip = lb.chip_yaml("rngd")
    weights_t = lb.linear_params(cfg) * 2 / lb.dram_bandwidth(chip)
    bw, lat = 63e9, 5e-6

    def closed(tp: int) -> float:
        return (weights_t / tp + (2 * layers + 1) * _ring_all_reduce(tp, h * 2, bw, lat)
                + _ring_all_gather(tp, vocab * 2, bw, lat))

    tps = (1, 2, 4, 8)
    best = min(tps, key=closed)
    assert best == 4  # the scenario: the crossover lies inside 1..8
    wl = from_hf_config("llama2_7b", "decode", prompt_len=128, context_len=129,
                        weights="bf16", activations="bf16", kv="bf16")
    sim = {tp: simulate_system(system, wl, tp=tp).latency_s for tp in tps}  # type: ignore[arg-type]
    assert sim[1] > sim[2] > sim[4]
    assert min(tps, key=sim.__getitem__) == best
    for tp in tps:
        assert sim[tp] >= closed(tp)


def test_data_parallel_throughput_scales_linearly() -> None:
    wl = from_hf_config(TINY, "decode", batch=2, prompt_len=64, context_len=65)
    base = simulate_system("rngd_8card", wl, tp=2).summary()
    for dp in (2, 4):
        s = simulate_system("rngd_8card", wl, tp=2, dp=dp).summary()
        assert s["inferences_per_s"] == pytest.approx(dp * base["inferences_per_s"], rel=1e-12)
        assert s["batch"] == dp * 2 and s["chips_used"] == 2 * dp


def test_link_bytes_and_energy_follow_from_the_collectives() -> None:
    # tp 2 over the switch: an all-reduce of B sends 2(n-1)/n x B from each of n chips over
    # its up- and down-link: 4(n-1) x B link-bytes; the logits' all-gather of T: 2(n-1) x T.
    n, tokens = 2, 3
    wl = from_hf_config(TINY, "decode", batch=tokens, prompt_len=16, context_len=17)
    s = simulate_system("rngd_8card", wl, tp=n).summary()
    act = tokens * TINY["hidden_size"] * 1  # int8 activations: the embedding's all-reduce
    psum = tokens * TINY["hidden_size"] * 4  # fp32 partial sums: 2 all-reduces per block
    logits = tokens * TINY["vocab_size"] * 1
    expected = (2 * TINY["num_hidden_layers"] * 4 * (n - 1) * psum + 4 * (n - 1) * act
                + 2 * (n - 1) * logits)
    assert s["link_bytes"] == pytest.approx(expected)
    assert s["energy_links_j"] == pytest.approx(expected * 8 * 5e-12)  # 5 pJ per bit


def test_pipeline_stages_split_the_layers_and_send_activations() -> None:
    wl = from_hf_config(TINY, "decode", batch=4, prompt_len=16, context_len=17)
    res = simulate_system("rngd_8card", wl, tp=2, pp=2, micro_batches=2)
    chips = res.chips
    assert len(chips) == 4 and sorted(set(chips["stage"])) == [0, 1]
    names0 = set(res.stage_results[0].layers["layer"])
    names1 = set(res.stage_results[1].layers["layer"])
    assert "embed_tokens" in names0 and "lm_head" in names1
    assert "l0.q_proj" in names0 and "l1.q_proj" in names1 and not names0 & names1
    # stage 1 waits for stage 0's first micro-batch: the bubble
    assert float(chips.loc[chips["stage"] == 1, "time_idle_s"].min()) > 0
    assert res.summary()["time_comm_pipeline_send_s"] > 0


def test_bad_plans_are_one_line_errors() -> None:
    wl = from_hf_config(TINY, "decode", prompt_len=16)
    with pytest.raises(MappingError, match="tp 3 does not divide its 8 query heads"):
        simulate_system("rngd_8card", wl, tp=3)
    with pytest.raises(MappingError, match="pp 4 does not divide its 2 layers"):
        simulate_system("rngd_8card", wl, pp=4)
    with pytest.raises(MappingError, match="needs 16 chips; the system has 8"):
        simulate_system("rngd_8card", wl, tp=8, dp=2)
    with pytest.raises(MappingError, match="does not fit"):
        run_llm_system("rngd_8card", "llama2_70b", weights="bf16", tp=2)


def test_trace_has_a_track_per_chip_and_per_link() -> None:
    wl = from_hf_config(TINY, "decode", prompt_len=16)
    res = simulate_system("rngd_8card", wl, tp=4, trace=True)
    doc = system_trace(res)
    names = [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"]
    assert sum(n.startswith("chip ") for n in names) == 4
    threads = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
               if e["name"] == "thread_name" and e["pid"] == 5}
    assert set(threads.values()) == {f"c{i}->sw" for i in range(4)} | {f"sw->c{i}"
                                                                        for i in range(4)}
    by_tid: dict[int, list[tuple[float, float]]] = {}
    for e in doc["traceEvents"]:
        if e.get("ph") == "X" and e["pid"] == 5:
            by_tid.setdefault(e["tid"], []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_tid.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(spans))


def test_cli_llm_on_a_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    assert main(["llm", "rngd_8card", str(cfg), "--tp", "2", "--prompt", "16", "--gen", "3",
                 "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["tp"] == 2 and s["decode_time_comm_s"] > 0
    assert main(["llm", "rngd_8card", str(cfg), "--tp", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tp 3 does not divide" in err[0]
    assert main(["run", "lpddr_llm_4chip", "mobilenet_v2", "--dp", "4", "--rows", "0"]) == 0
    assert "dp 4" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "tpu_v4_64" in capsys.readouterr().out
    bad = tmp_path / "bad_system.yaml"
    bad.write_text("name: x\nsources: [a]\nchip: rngd\ncount: 8\nlink: {bandwidth: 1 GB/s}\n"
                   "topology: {kind: torus2d, dims: [2, 2]}\n")
    assert main(["validate", str(bad)]) == 2
    assert "bad_system.yaml:6: topology.dims: 2x2 hold 4 chips" in capsys.readouterr().out


def test_sweep_crosses_count_link_and_tp_with_catalog_links() -> None:
    from npusim.system import sweep_system

    wl = from_hf_config(TINY, "decode", prompt_len=16, context_len=17)
    df = sweep_system("rngd_8card", wl, count=[2, 4], link=["pcie4_x16", "pcie5_x16"],
                      tp=[1, 2, 4])
    assert len(df) == 2 * 2 * 3
    bad = df[(df["count"] == 2) & (df["tp"] == 4)]
    assert bad["error"].str.contains("needs 4 chips; the system has 2").all()
    # tp 2: every rank arrives at each meeting together, so its communication time is the
    # collectives' closed forms at the catalog's PCIe rate (x16, 128b/130b) and 1 us; the
    # blocks' partial sums at fp32 (4 B), the embedding's rows at int8.
    h, layers, vocab = (TINY[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size"))
    for gts, kind in ((16e9, "pcie4_x16"), (32e9, "pcie5_x16")):
        bw = gts * 16 * 128 / 130 / 8
        row = df[(df["link"] == kind) & (df["tp"] == 2) & (df["count"] == 4)].iloc[0]
        expected = (2 * layers * _ring_all_reduce(2, 4 * h, bw, 1e-6)
                    + _ring_all_reduce(2, h, bw, 1e-6) + _ring_all_gather(2, vocab, bw, 1e-6))
        assert row["time_comm_s"] == pytest.approx(expected, rel=1e-9)
    ok = df[df["error"].isna()]
    assert (ok[ok["tp"] == 1]["time_comm_s"] == 0).all()


def test_system_file_names_its_chip_relative_to_itself(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / "mine.yaml").write_text((root / "arch" / "lpddr_llm.yaml").read_text())
    sysf = tmp_path / "two.yaml"
    sysf.write_text("name: two\nsources: [test]\nchip: chips/mine.yaml\ncount: 2\n"
                    "link: {kind: pcie4_x16}\ntopology: {kind: ring}\n")
    assert main(["validate", str(sysf)]) == 0
    assert "2 x LPDDR5X LLM inference chip, ring, pcie4_x16 31.5 GB/s" in capsys.readouterr().out
    out = tmp_path / "chips.csv"
    assert main(["run", str(sysf), "mobilenet_v2", "--dp", "2", "--out", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table["chip"]) == [0, 1] and (table["time_comm_s"] == 0).all()
