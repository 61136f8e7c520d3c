"""Links, routes, collectives and the system step in the event model, against closed forms
derived here (no chip is simulated: compute segments are given by hand)."""

from __future__ import annotations

import math

import pytest
import simpy

from npusim.engine.collectives import LinkNet, collective
from npusim.engine.system import Segment, StageProgram, SystemProgram, run_system_step
from npusim.engine.topology import all_links, route
from npusim.spec.system import Link, Topology, load_system, loads_system

BW, LAT = 50e9, 2e-6  # bytes/s per direction, s per hop


def _net(kind: str, count: int, dims: list[int] | None = None) -> LinkNet:
    env = simpy.Environment()
    return LinkNet(env, Topology(kind=kind, dims=dims), count,  # type: ignore[arg-type]
                   Link(bandwidth=BW, latency=LAT))


def _time(net: LinkNet, kind: str, group: list[int], nbytes: float,
          algorithm: str = "ring") -> float:
    net.env.process(collective(net, kind, group, nbytes, "test", algorithm))
    net.env.run()
    return float(net.env.now)


@pytest.mark.parametrize("kind", ["switch", "fully_connected", "ring"])
@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_ring_all_reduce_matches_its_closed_form(kind: str, n: int) -> None:
    # Ring all-reduce = reduce-scatter + all-gather: 2(n-1) steps; in each every chip sends
    # bytes/n to its ring neighbour (one hop on every one of these topologies), no two
    # transfers of a step share a link, so a step is latency + (bytes/n)/bandwidth.
    nbytes = 3e6
    expected = 2 * (n - 1) / n * nbytes / BW + 2 * (n - 1) * LAT
    assert _time(_net(kind, n), "all_reduce", list(range(n)), nbytes) == \
        pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 8, 5])
def test_tree_all_reduce_matches_its_closed_form(n: int) -> None:
    # Binomial tree: ceil(log2 n) levels up (reduce) and as many down (broadcast), each a
    # step moving the whole tensor one hop; on a switch no receiver gets two at once.
    nbytes = 1e6
    levels = math.ceil(math.log2(n))
    expected = 2 * levels * (nbytes / BW + LAT)
    assert _time(_net("switch", n), "all_reduce", list(range(n)), nbytes, "tree") == \
        pytest.approx(expected, rel=1e-12)


def test_all_gather_and_reduce_scatter_are_half_a_ring_all_reduce() -> None:
    n, nbytes = 6, 6e5
    expected = (n - 1) / n * nbytes / BW + (n - 1) * LAT
    for kind in ("all_gather", "reduce_scatter"):
        assert _time(_net("switch", n), kind, list(range(n)), nbytes) == \
            pytest.approx(expected, rel=1e-12)


def test_two_all_reduces_on_the_same_links_take_turns() -> None:
    # Both rings use the same up- and down-links, each link carries 2 x 2(n-1) chunks. A
    # chunk's time on a link (c = chunk/bandwidth) exceeds the latency, so a ring's next
    # step is ready before the other ring's chunk leaves the link: the links never idle,
    # and the last chunk arrives one latency after 4(n-1) x c. Alone it would take
    # 2(n-1)(c + latency): contention costs almost a second all-reduce.
    n, nbytes = 4, 4e6
    c = nbytes / n / BW
    assert c > LAT
    net = _net("switch", n)
    for _ in range(2):
        net.env.process(collective(net, "all_reduce", list(range(n)), nbytes, "test"))
    net.env.run()
    assert net.env.now == pytest.approx(4 * (n - 1) * c + LAT, rel=1e-12)
    # bytes per link: each chip's up-link carries 2(n-1) chunks per all-reduce
    assert net.bytes["c0->sw"] == pytest.approx(2 * 2 * (n - 1) * nbytes / n)


def test_routes_take_the_shorter_way_and_dimension_order() -> None:
    ring = Topology(kind="ring")
    assert route(ring, 8, 0, 7) == (("c0->c7",), 1)  # the wrap-around link
    assert route(ring, 8, 0, 3)[1] == 3
    torus = Topology(kind="torus3d", dims=[4, 4, 4])
    links, hops = route(torus, 64, 0, 63)  # (0,0,0) -> (3,3,3): one wrap hop per dimension
    assert hops == 3 and links == ("c0->c3", "c3->c15", "c15->c63")
    links, hops = route(torus, 64, 0, 2 + 4 * 2)  # (0,0,0) -> (2,2,0): 2 + 2 hops, x first
    assert hops == 4 and links[0] == "c0->c1"
    # 6 links out of every chip of a 4x4x4 torus, one each way along each dimension
    assert len(all_links(torus, 64)) == 64 * 6
    assert len(all_links(Topology(kind="switch"), 8)) == 16


@pytest.mark.parametrize("n", [8, 12, 16, 48, 64])
def test_a_torus_ring_all_reduce_equals_its_closed_form(n: int) -> None:
    # chips 0..n-1 of a 4x4x4 torus fill a box (4x2, 4x3, 4x4, 4x4x3, 4x4x4); taken in
    # index order, 3 -> 4 and 7 -> 0 would be two hops. The ring is embedded along the
    # torus dimensions instead (a snake through the box returning along its first
    # column), so every step is one hop on its own link and the closed form holds.
    net = _net("torus3d", 64, [4, 4, 4])
    nbytes = 8e5
    expected = 2 * (n - 1) / n * nbytes / BW + 2 * (n - 1) * LAT
    assert _time(net, "all_reduce", list(range(n)), nbytes) == pytest.approx(expected, rel=1e-12)


def _system(kind: str = "switch", count: int = 8) -> object:
    return loads_system(f"""
name: test
sources: [test]
chip: tpu_v1
count: {count}
link: {{bandwidth: {BW}, latency: {LAT}, energy_per_bit: 5 pJ}}
topology: {{kind: {kind}}}
""")


def test_tensor_parallel_step_is_compute_plus_each_all_reduce() -> None:
    tp, ar_bytes = 4, 2e5
    seg = (Segment("a", 1e-4, "all_reduce", ar_bytes, "attention all-reduce"),
           Segment("b", 3e-4, "all_reduce", ar_bytes, "mlp all-reduce"), Segment("c", 5e-5))
    prog = SystemProgram((StageProgram(seg),), tp=tp, dp=1, micro_batches=1,
                         placement=tuple(range(tp)))
    step = run_system_step(_system(), prog)  # type: ignore[arg-type]
    ar = 2 * (tp - 1) / tp * ar_bytes / BW + 2 * (tp - 1) * LAT
    assert step.latency_s == pytest.approx(1e-4 + 3e-4 + 5e-5 + 2 * ar, rel=1e-12)
    for st in step.chips:
        assert st.comm_s["attention all-reduce"] == pytest.approx(ar, rel=1e-12)
        assert st.compute_s == pytest.approx(4.5e-4)


@pytest.mark.parametrize("m", [1, 4])
def test_pipeline_step_has_the_gpipe_bubble(m: int) -> None:
    # pp equal stages of t per micro-batch; a send takes c = latency + bytes/bandwidth < t
    # and overlaps the sender's next micro-batch: the last stage starts micro-batch 0 at
    # (pp-1)(t + c) and then runs m micro-batches back to back.
    pp, t, send = 4, 1e-4, 1e5
    c = LAT + send / BW
    stages = tuple(StageProgram((Segment("s", t),), send_bytes=send) for _ in range(pp))
    prog = SystemProgram(stages, tp=1, dp=1, micro_batches=m, placement=tuple(range(pp)))
    step = run_system_step(_system(), prog)  # type: ignore[arg-type]
    assert step.latency_s == pytest.approx((pp - 1) * (t + c) + m * t, rel=1e-12)
    first, last = step.chips[0], step.chips[-1]
    assert first.compute_s == pytest.approx(m * t)
    assert last.comm_s["pipeline send"] == pytest.approx(c, rel=1e-9)  # only mb 0 waits


def test_data_parallel_replicas_do_not_interact() -> None:
    seg = (Segment("a", 1e-4, "all_reduce", 1e5, "mlp all-reduce"),)
    lat = []
    for dp in (1, 2, 4):
        prog = SystemProgram((StageProgram(seg),), tp=2, dp=dp, micro_batches=1,
                             placement=tuple(range(2 * dp)))
        lat.append(run_system_step(_system(), prog).latency_s)  # type: ignore[arg-type]
    assert lat[0] == lat[1] == lat[2]


def test_presets_load_with_their_figures() -> None:
    rngd = load_system("rngd_8card")
    # PCIe Gen5 x16: 32 GT/s x 16 lanes x 128/130 / 8 bits
    assert rngd.link.bandwidth == pytest.approx(32e9 * 16 * 128 / 130 / 8, rel=1e-3)
    assert rngd.count == 8 and rngd.chip_spec.name == "FuriosaAI RNGD"
    tpu = load_system("tpu_v4_64")
    assert tpu.topology.dims == [4, 4, 4] and tpu.count == 64
    assert tpu.link.bandwidth == pytest.approx(24e12 / (2 * 16 * 16), rel=1e-2)
    for name in ("atom_8card", "lpddr_llm_4chip", "lpddr_llm_8chip"):
        assert load_system(name).sources
