"""Expert parallelism: routed experts cut by expert ranges, what each chip dispatches and
gets back, the segments of an MoE block, and an expert-parallel step in the event model,
against hand counts and closed forms derived here (layer latencies are given by hand)."""

from __future__ import annotations

import pandas as pd
import pytest

from npusim.engine.system import Segment, StageProgram, SystemProgram, run_system_step
from npusim.errors import MappingError
from npusim.spec.system import loads_system
from npusim.system.experts import expert_shards
from npusim.system.parallel import Plan, check_plan
from npusim.system.simulate import stage_program
from npusim.workloads.ir import Elementwise, ExpertMatmul, Matmul, Workload

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
        assert [x.tokens_per_expert for x in sh.layers] == [held[m]] * 3
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
    own = {"l0.experts.gate_proj": 0.1, "l0.experts.up_proj": 0.2, "l0.experts.down_proj": 0.4}
    base = {k: v for k, v in lat.items() if ".experts." not in k or k.endswith("combine")}
    prog = stage_program(_Lat(base), wl, 1, shard, own)  # type: ignore[arg-type]
    kinds = [(s.collective, s.cause) for s in prog.segments]
    assert kinds == [("all_to_all", "moe dispatch all-to-all"),
                     ("all_to_all", "moe combine all-to-all"), (None, "")]
    # compute before dispatch: o_proj and router; between: this member's own projections
    assert prog.segments[0].compute_s == pytest.approx(lat["l0.o_proj"] + lat["l0.router"])
    assert prog.segments[1].compute_s == pytest.approx(0.7)
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
    assert meets == [("all_reduce", "attention all-reduce", 2 * H),
                     ("all_reduce", "mlp all-reduce", 2 * H)]


def test_an_expert_parallel_step_waits_for_its_busiest_chip() -> None:
    # 4 chips, dp 4, ep 4 on a switch: compute A, dispatch all-to-all, each chip's own
    # experts (B_m), combine all-to-all, compute C. The step is A + dispatch + max B +
    # combine + C, an all-to-all on a switch being sum over shifts k of latency + its
    # largest message / bandwidth.
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
                         placement=tuple(range(n)), ep=n, chip_stages=chips)
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
