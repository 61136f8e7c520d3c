"""Expert parallelism: routed experts cut by expert ranges, what each chip dispatches and
gets back, the segments of an MoE block, and an expert-parallel step in the event model,
against hand counts and closed forms derived here (layer latencies are given by hand)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npusim.engine.system import Segment, StageProgram, SystemProgram, run_system_step
from npusim.errors import MappingError
from npusim.spec.system import loads_system
from npusim.system.experts import expert_shards
from npusim.system.parallel import Plan, check_plan
from npusim.system.simulate import stage_program
from npusim.workloads.ir import Elementwise, ExpertMatmul, Matmul, Workload

ROOT = Path(__file__).resolve().parent.parent

BW, LAT = 50e9, 2e-6
H, F = 64, 32  # hidden, expert width


def _system(count: int = 4) -> object:
    return loads_system(f"""
name: test
sources: [test]
chip: tpu_v1
count: {count}
link: {{bandwidth: {BW}, latency: {LAT}}}
topology: {{kind: switch}}
""")


def _block(i: int, counts: tuple[int, ...], tokens: int) -> list[object]:
    return [
        Matmul(name=f"l{i}.o_proj", m=tokens, n=H, k=H),
        Matmul(name=f"l{i}.router", m=tokens, n=len(counts), k=H),
        ExpertMatmul(name=f"l{i}.experts.gate_proj", tokens_per_expert=counts, n=F, k=H),
        ExpertMatmul(name=f"l{i}.experts.up_proj", tokens_per_expert=counts, n=F, k=H),
        Elementwise(name=f"l{i}.experts.swiglu", elements=sum(counts) * F, op="mul"),
        ExpertMatmul(name=f"l{i}.experts.down_proj", tokens_per_expert=counts, n=H, k=F),
        Matmul(name=f"l{i}.shared.down_proj", m=tokens, n=H, k=F),
        Elementwise(name=f"l{i}.experts.combine", elements=tokens * H, op="add"),
    ]


def test_members_hold_expert_ranges_and_exchange_every_routed_row() -> None:
    # 8 experts over 4 chips, 2 each; 10 tokens x top-2 = 20 routed rows, skewed to the
    # first experts. Member m computes the rows of experts 2m, 2m+1. Every row reaches
    # the member holding its expert (columns of the dispatch add up to its experts' rows)
    # and comes back (combine is the dispatch transposed: same rows, H wide both ways).
    counts = (7, 5, 3, 2, 1, 1, 1, 0)
    wl = Workload("g", tuple(_block(0, counts, 10)))  # type: ignore[arg-type]
    shards = expert_shards(wl, 4)
    held = [counts[2 * m:2 * m + 2] for m in range(4)]
    for m, sh in enumerate(shards):
        assert sh.first_expert == 2 * m and sh.experts == 2
        assert sh.rows == sum(held[m]) and sh.touched == sum(1 for c in held[m] if c)
        routed = [x for x in sh.layers if isinstance(x, ExpertMatmul)]
        assert [x.tokens_per_expert for x in routed] == [held[m]] * 3
        # the experts' activation runs on the holder, over its own rows
        swiglu = [x for x in sh.layers if isinstance(x, Elementwise)]
        assert [x.elements for x in swiglu] == ([sum(held[m]) * F] if sum(held[m]) else [])
    for d in range(4):  # int8 activations: one byte per value
        assert sum(sh.dispatch[0][d] for sh in shards) == sum(held[d]) * H
        for m in range(4):
            assert shards[m].dispatch[0][d] == shards[d].combine[0][m]
    # the senders share the rows evenly: each sends within one row of a quarter of them
    for sh in shards:
        assert abs(sum(sh.dispatch[0]) / H - sum(counts) / 4) < 1


def test_a_member_no_row_reaches_runs_no_routed_projection() -> None:
    shards = expert_shards(Workload("g", tuple(_block(0, (4, 4, 0, 0), 4))),  # type: ignore[arg-type]
                           2)
    assert shards[1].layers == () and shards[1].rows == 0
    assert sum(shards[1].dispatch[0]) == 4 * H  # its own share of the tokens still goes out


class _Lat:
    """A stand-in Result: only the per-layer latency table stage_program reads."""

    def __init__(self, lat: dict[str, float]) -> None:
        self.layers = pd.DataFrame({"layer": list(lat), "latency_s": list(lat.values())})


def test_an_moe_block_is_cut_at_dispatch_and_combine() -> None:
    counts = (3, 1)
    layers = _block(0, counts, 2)
    wl = Workload("w", tuple(layers))  # type: ignore[arg-type]
    lat = {x.name: 1e-6 * (i + 1) for i, x in enumerate(layers)}  # type: ignore[attr-defined]
    shard = expert_shards(wl, 2)[0]
    own = {"l0.experts.gate_proj": 0.1, "l0.experts.up_proj": 0.2, "l0.experts.swiglu": 0.05,
           "l0.experts.down_proj": 0.4}
    base = {k: v for k, v in lat.items() if ".experts." not in k or k.endswith("combine")}
    prog = stage_program(_Lat(base), wl, 1, shard, own)  # type: ignore[arg-type]
    kinds = [(s.collective, s.cause) for s in prog.segments]
    assert kinds == [("all_to_all", "moe dispatch all-to-all"),
                     ("all_to_all", "moe combine all-to-all"), (None, "")]
    # compute before dispatch: o_proj and router; between: this member's own projections
    assert prog.segments[0].compute_s == pytest.approx(lat["l0.o_proj"] + lat["l0.router"])
    assert prog.segments[1].compute_s == pytest.approx(0.75)
    assert prog.segments[0].row == shard.dispatch[0]
    assert prog.segments[1].row == shard.combine[0]


def test_tensor_parallel_ranks_meet_once_per_moe_block() -> None:
    # tp 2 without ep: the routed and shared experts are split by columns; the ranks
    # all-reduce the block's output (tokens x hidden, the combine's) once, after the MoE
    # part, not after each down projection; o_proj keeps its attention all-reduce.
    layers = _block(0, (3, 1), 2)
    wl = Workload("w", tuple(layers))  # type: ignore[arg-type]
    lat = {x.name: 1e-6 for x in layers}  # type: ignore[attr-defined]
    prog = stage_program(_Lat(lat), wl, 2)  # type: ignore[arg-type]
    meets = [(s.collective, s.cause, s.nbytes) for s in prog.segments if s.collective]
    # partial sums cross at the accumulation precision: 2 tokens x H values x 4 B (fp32)
    assert meets == [("all_reduce", "attention all-reduce", 2 * H * 4),
                     ("all_reduce", "mlp all-reduce", 2 * H * 4)]


def test_an_expert_parallel_step_waits_for_its_busiest_chip() -> None:
    # 4 chips, dp 4, ep 4 on a switch: compute A, dispatch all-to-all, each chip's own
    # experts (B_m), combine all-to-all, compute C. The step is A + dispatch + max B +
    # combine + C, a pairwise all-to-all on a switch being sum over shifts k of latency +
    # its largest message / bandwidth.
    n, a, c = 4, 1e-5, 2e-5
    b = [3e-5, 1e-5, 5e-5, 2e-5]
    disp = [[0.0 if i == j else 1e4 * (1 + i + 2 * j) for j in range(n)] for i in range(n)]
    comb = [[disp[j][i] for j in range(n)] for i in range(n)]

    def a2a(m: list[list[float]]) -> float:
        return sum(LAT + max(m[i][(i + k) % n] for i in range(n)) / BW for k in range(1, n))

    chips = {(d, 0, 0): StageProgram((
        Segment("a", a, "all_to_all", row=tuple(disp[d]), cause="moe dispatch all-to-all"),
        Segment("experts", b[d], "all_to_all", row=tuple(comb[d]),
                cause="moe combine all-to-all"),
        Segment("c", c))) for d in range(n)}
    prog = SystemProgram((chips[(0, 0, 0)],), tp=1, dp=n, micro_batches=1,
                         placement=tuple(range(n)), ep=n, chip_stages=chips,
                         all_to_all="pairwise")
    step = run_system_step(_system(), prog)  # type: ignore[arg-type]
    assert step.latency_s == pytest.approx(a + a2a(disp) + max(b) + a2a(comb) + c, rel=1e-12)
    # the busiest chip waits least in the combine: the others wait for it
    waits = {st.position: st.comm_s["moe combine all-to-all"] for st in step.chips}
    assert min(waits, key=waits.__getitem__) == b.index(max(b))


def test_two_expert_groups_run_side_by_side() -> None:
    # dp 4, ep 2: groups {0, 1} and {2, 3} exchange on their own links: the step is one
    # group's alone.
    n = 4
    row = (0.0, 1e5)
    prog_of = {(d, 0, 0): StageProgram((Segment("a", 1e-5, "all_to_all",
                                                row=row if d % 2 == 0 else row[::-1],
                                                cause="moe dispatch all-to-all"),))
               for d in range(n)}
    prog = SystemProgram((prog_of[(0, 0, 0)],), tp=1, dp=n, micro_batches=1,
                         placement=tuple(range(n)), ep=2, chip_stages=prog_of)
    step = run_system_step(_system(), prog)  # type: ignore[arg-type]
    assert step.latency_s == pytest.approx(1e-5 + LAT + 1e5 / BW, rel=1e-12)


@pytest.mark.parametrize(("plan", "message"), [
    (Plan(dp=4, ep=3), "ep 3 must be a multiple of tp 1 and divide the 4 chips"),
    (Plan(tp=2, dp=2, ep=2), None),
    (Plan(tp=4, dp=2, ep=2), "ep 2 must be a multiple of tp 4"),
    (Plan(ep=4), "ep 4 must be a multiple of tp 1 and divide the 1 chips"),
])
def test_plans_the_expert_group_cannot_take(plan: Plan, message: str | None) -> None:
    if message is None:
        check_plan(plan, 8)
        return
    with pytest.raises(MappingError, match=message):
        check_plan(plan, 8)


# --- end to end: a small mixture-of-experts model from its config -------------------------

TINY_MOE = {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"],
            "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 128,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
            "num_hidden_layers": 2, "num_experts": 8, "num_experts_per_tok": 2,
            "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": 1024,
            "max_position_embeddings": 4096, "hidden_act": "silu", "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False}


@pytest.fixture(scope="module")
def moe_dir(tmp_path_factory: pytest.TempPathFactory) -> object:
    import json

    d = tmp_path_factory.mktemp("moe")
    (d / "tiny_moe.json").write_text(json.dumps(TINY_MOE))
    # every token of both MoE layers picks experts 0 and 7
    (d / "trace.csv").write_text("layer,token,expert\n" + "".join(
        f"{layer},{t},{e}\n" for layer in (0, 1) for t in range(8) for e in (0, 7)))
    return d


def test_an_expert_parallel_step_moves_the_rows_it_routes(moe_dir: object) -> None:
    # dp 4 x batch 2 = 8 tokens in the group, each routed to experts 0 and 7: member 0
    # (experts 0, 1) and member 3 (experts 6, 7) compute 8 rows each per layer, members 1
    # and 2 none. Rows numbered expert after expert (expert 0's rows 0-7, expert 7's 8-15)
    # are dealt to the members in turn, so every member sends 2 rows to member 0 and 2 to
    # member 3; all but a member's rows to itself cross the switch: 12 rows a layer, each
    # 256 int8 activations, up-link and down-link, dispatch and combine, 2 layers.
    from npusim.system import simulate_system
    from npusim.workloads.llm import from_hf_config

    h = TINY_MOE["hidden_size"]
    wl = from_hf_config(moe_dir / "tiny_moe.json", "decode", batch=2,  # type: ignore[operator]
                        prompt_len=16, context_len=16, routing=str(moe_dir / "trace.csv"))  # type: ignore[operator]
    res = simulate_system(_system(), wl, dp=4, ep=4)  # type: ignore[arg-type]
    chips = res.chips.set_index("chip")
    assert list(chips["expert_rows"]) == [2 * 8, 0, 0, 2 * 8]
    assert list(chips["experts_touched"]) == [2, 0, 0, 2]
    assert list(chips["first_expert"]) == [0, 2, 4, 6]
    s = res.summary()
    assert s["expert_load_imbalance"] == pytest.approx(16 / 8)
    assert s["link_bytes"] == pytest.approx(2 * 2 * 2 * 12 * h)
    # All arrive together at the dispatch (same compute before it), so theirs is the
    # all-to-all alone (direct, every message at once): members 0 and 3 each receive a
    # 2-row message from the three others, one after another on their down-link, the
    # other links carrying at most two; one all-to-all a layer. At the combine the last
    # to arrive (the busiest) waits for the all-to-all alone (the same messages back:
    # 0 and 3 each send three on their up-link); members 1 and 2, with no routed rows,
    # wait for the busy ones.
    a2a = 3 * 2 * h / BW + LAT
    dispatch = chips["time_comm_moe_dispatch_all_to_all_s"]
    combine = chips["time_comm_moe_combine_all_to_all_s"]
    assert list(dispatch) == pytest.approx([2 * a2a] * 4, rel=1e-9)
    assert combine.min() == pytest.approx(2 * a2a, rel=1e-9)
    assert combine.idxmin() in (0, 3) and combine[1] > combine[0] and combine[2] > combine[3]


def test_each_chip_holds_its_share_of_the_routed_experts(moe_dir: object,
                                                        tmp_path: object) -> None:
    # On a chip of 1 MiB of DRAM both plans overflow; the overflow under ep 4 is smaller
    # by 3/4 of the routed experts (2 layers x 8 experts x gate, up, down x hidden x
    # expert width, int8: one byte each), the KV cache and activations being the same.
    import re

    from npusim.system.simulate import check_shards
    from npusim.workloads.llm import from_hf_config

    text = (ROOT / "arch" / "tpu_v1.yaml").read_text().replace("capacity: 8 GiB",
                                                                 "capacity: 1 MiB")
    chip = tmp_path / "small.yaml"  # type: ignore[operator]
    chip.write_text(text)
    small = loads_system(f"""
name: small
sources: [test]
chip: {chip}
count: 4
link: {{bandwidth: {BW}}}
topology: {{kind: switch}}
""")
    wl = from_hf_config(moe_dir / "tiny_moe.json", "decode", batch=2,  # type: ignore[operator]
                        prompt_len=16, context_len=16)
    over = {}
    for ep in (1, 4):
        with pytest.raises(MappingError) as exc:
            check_shards(small, wl, dp=4, ep=ep)  # type: ignore[arg-type]
        assert "does not fit" in str(exc.value) and len(str(exc.value).splitlines()) == 1
        over[ep] = int(re.search(r"\(([\d,]+) bytes\)", str(exc.value))[1].replace(",", ""))  # type: ignore[index]
    routed = 2 * 8 * 3 * TINY_MOE["hidden_size"] * TINY_MOE["moe_intermediate_size"]
    assert over[1] - over[4] == routed * 3 // 4


def test_cli_runs_ep_and_rejects_a_bad_one_in_one_line(moe_dir: object,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    import json

    from npusim.cli import main

    cfg = str(moe_dir / "tiny_moe.json")  # type: ignore[operator]
    assert main(["llm", "rngd_8card", cfg, "--dp", "4", "--ep", "4", "--prompt", "16",
                 "--gen", "2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["ep"] == 4 and s["decode_time_comm_moe_dispatch_all_to_all_s"] > 0
    assert s["decode_expert_load_imbalance"] >= 1
    for args, message in ((["--dp", "4", "--ep", "3"], "ep 3 must be a multiple of tp 1"),
                          (["--dp", "3", "--ep", "3"], "ep 3 does not divide its 8 routed"),
                          (["--ep", "2"], "divide the 1 chips of a stage")):
        assert main(["llm", "rngd_8card", cfg, *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
    assert main(["llm", "rngd_8card", "llama2_7b", "--dp", "2", "--ep", "2"]) == 2
    assert "needs a mixture-of-experts model" in capsys.readouterr().err


def test_sweep_crosses_ep(moe_dir: object) -> None:
    # ep as an axis: ep 1 runs no all-to-all; ep 2 and 4 split the same routed rows.
    from npusim.system import sweep_system
    from npusim.workloads.llm import from_hf_config

    wl = from_hf_config(moe_dir / "tiny_moe.json", "decode", batch=2,  # type: ignore[operator]
                        prompt_len=16, context_len=16)
    df = sweep_system(_system(), wl, dp=4, ep=[1, 2, 3, 4])  # type: ignore[arg-type]
    assert list(df["ep"]) == [1, 2, 3, 4]
    assert "ep 3 does not divide its 8 routed experts" in df["error"].iloc[2]
    ok = df[df["error"].isna()]
    assert (ok["link_bytes"] > 0).tolist() == [False, True, True]


def test_serve_takes_ep_on_a_system(moe_dir: object, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    # One replica of tp 2 ranks, each dispatching half the tokens to the rank holding
    # their experts; ep 4 needs more chips than the replica's two (one-line error).
    import json

    from npusim.cli import main

    cfg = str(moe_dir / "tiny_moe.json")  # type: ignore[operator]
    base = ["serve", "rngd_8card", cfg, "--tp", "2", "--requests", "10", "--rate", "5",
            "--prompt", "fixed:32", "--output", "fixed:4", "--max-batch", "4"]
    assert main([*base, "--ep", "2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["chips"] == 2 and s["requests"] == 10
    assert main([*base, "--ep", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ep 4 must be a multiple of tp 2 and divide the 2 chips" in err[0]


@given(st.sampled_from([1, 2, 4, 8]), st.data())
def test_every_routed_row_goes_out_and_comes_back(ep: int, data: st.DataObject) -> None:
    # Any routing of 8 experts: member d receives exactly the rows of its experts, sends
    # back as many as it received from each, each member's own tokens are within one row
    # of an even share, and the members' expert rows add up to the routing's.
    counts = tuple(data.draw(st.lists(st.integers(0, 40), min_size=8, max_size=8)
                             .filter(lambda c: sum(c) > 0)))
    shards = expert_shards(Workload("g", tuple(_block(0, counts, 40))),  # type: ignore[arg-type]
                           ep)
    held = 8 // ep
    assert sum(sh.rows for sh in shards) == sum(counts)
    # every touched expert's weights are read once, by the member holding it
    touched = sum(1 for c in counts if c)
    assert sum(x.input_bytes()["weight"] for sh in shards for x in sh.layers
               if isinstance(x, ExpertMatmul) and x.name.endswith("gate_proj")) == \
        touched * H * F
    for d in range(ep):
        assert sum(sh.dispatch[0][d] for sh in shards) == \
            sum(counts[d * held:(d + 1) * held]) * H
        assert shards[d].rows == sum(counts[d * held:(d + 1) * held])
        for m in range(ep):
            assert shards[m].dispatch[0][d] == shards[d].combine[0][m]
    for sh in shards:
        assert abs(sum(sh.dispatch[0]) / H - sum(counts) / ep) < 1


def test_deepseek_v3_at_fp8_fits_the_32_cards_only_with_its_experts_spread() -> None:
    # DeepSeek-V3: 58 MoE layers x 256 experts x 3 x 7168 x 2048 = 654B routed parameters
    # of 671B. At one byte each a card holds the other ~17 GB plus 654/ep GB: 37 GB at
    # ep 32 fits its 48 GiB (51.5 GB), 99 GB at ep 8 does not.
    import warnings

    from npusim.spec.system import load_system
    from npusim.system.simulate import check_shards
    from npusim.workloads.llm import from_hf_config

    routed = 58 * 256 * 3 * 7168 * 2048
    assert routed == pytest.approx(654e9, rel=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = from_hf_config("deepseek_v3", "decode", batch=1, prompt_len=1024,
                            context_len=1024, weights="fp8")
    system = load_system("rngd_4x8")
    check_shards(system, wl, dp=32, ep=32)
    with pytest.raises(MappingError, match="does not fit"):
        check_shards(system, wl, dp=32, ep=8)


@pytest.mark.parametrize(("model", "pp"), [("qwen3_30b_a3b", 4), ("deepseek_v2_lite", 3),
                                           ("llama2_70b", 4)])
def test_pipeline_stages_add_up_to_the_model(model: str, pp: int) -> None:
    # Each block counted as what it is (DeepSeek's leading dense blocks, MoE blocks): the
    # stages hold every parameter of the model but its multi-token-prediction module.
    from npusim.system.parallel import _stage_params
    from npusim.workloads.hf_config import load_hf_config, param_count

    cfg = load_hf_config(model)
    assert cfg.layers % pp == 0
    assert sum(_stage_params(cfg, s, pp) for s in range(pp)) == param_count(cfg, mtp=False)


def test_the_python_api_takes_ep(moe_dir: object) -> None:
    import npusim
    from npusim.llm import run_llm
    from npusim.workloads.llm import from_hf_config

    cfg = moe_dir / "tiny_moe.json"  # type: ignore[operator]
    wl = from_hf_config(cfg, "decode", batch=1, prompt_len=16, context_len=16)
    res = npusim.simulate("rngd_8card", wl, dp=4, ep=4)  # type: ignore[call-overload]
    assert res.plan.ep == 4 and len(res.chips) == 4
    assert run_llm("rngd_8card", cfg, prompt=16, gen=2, dp=2, ep=2).summary()["ep"] == 2
    with pytest.raises(ValueError, match="ep apply to a system"):
        npusim.simulate("tpu_v1", wl, ep=2)  # type: ignore[call-overload]


def test_a_sweep_file_takes_parallel_ep(moe_dir: object) -> None:
    # parallel.ep and parallel.all_to_all as axes of a system sweep: ep 1 moves nothing;
    # ep 3 does not divide the 8 experts (a row with its error); pairwise is never faster
    # than direct on a switch.
    from npusim.sweep import run_sweep
    from npusim.sweep.spec import sweep_from_data

    data = {"name": "ep", "system": "rngd_8card",
            "workloads": [{"hf_config": "tiny_moe.json",
                           "options": {"phase": "decode", "prompt_len": 16,
                                       "context_len": 16, "batch": 2}}],
            "parallel": {"dp": 4},
            "axes": {"parallel.ep": [1, 3, 4], "parallel.all_to_all": ["direct", "pairwise"]}}
    df = run_sweep(sweep_from_data(data, root=moe_dir), workers=0, cache_dir=None,  # type: ignore[arg-type]
                   progress=False)
    assert len(df) == 6
    assert df[df["ep"] == 3]["error"].str.contains("ep 3 does not divide").all()
    one = df[df["ep"] == 1]
    assert (one["link_bytes"] == 0).all()
    four = df[df["ep"] == 4].set_index("all_to_all")
    assert four.loc["direct", "link_bytes"] == four.loc["pairwise", "link_bytes"] > 0
    assert four.loc["pairwise", "latency_s"] >= four.loc["direct", "latency_s"]
