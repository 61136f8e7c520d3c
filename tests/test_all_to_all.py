"""All-to-all (expert parallelism's dispatch and combine), two-level topologies and rings
embedded in tori, against closed forms derived here from bytes, hops, bandwidth and
latency (no chip is simulated)."""

from __future__ import annotations

import itertools

import pytest
import simpy
from hypothesis import given
from hypothesis import strategies as st

from npusim.engine.collectives import LinkNet, all_to_all, collective
from npusim.engine.topology import coords, ring_order, route
from npusim.errors import SpecError
from npusim.spec.system import Link, Topology, load_system, loads_system

BW, LAT = 50e9, 2e-6  # chip link: bytes/s per direction, s per hop
NBW, NLAT = 12.5e9, 5e-6  # network link of a two-level system


def _net(kind: str, count: int, dims: list[int] | None = None,
         servers: int | None = None) -> LinkNet:
    return LinkNet(simpy.Environment(),
                   Topology(kind=kind, dims=dims, servers=servers),  # type: ignore[arg-type]
                   count, Link(bandwidth=BW, latency=LAT),
                   network=Link(bandwidth=NBW, latency=NLAT) if servers else None)


def _run(net: LinkNet, group: list[int], matrix: list[list[float]],
         algorithm: str = "pairwise") -> float:
    net.env.process(all_to_all(net, group, matrix, "test", algorithm))
    net.env.run()
    return float(net.env.now)


def _even(n: int, b: float) -> list[list[float]]:
    return [[0.0 if i == j else b for j in range(n)] for i in range(n)]


@pytest.mark.parametrize("kind", ["switch", "fully_connected"])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_all_to_all_on_a_switch(kind: str, n: int) -> None:
    # n-1 shift steps; in each every chip sends one message and receives one, each on its
    # own up- and down-link (or direct link): a step is latency + bytes/bandwidth.
    b = 1e6
    assert _run(_net(kind, n), list(range(n)), _even(n, b)) == \
        pytest.approx((n - 1) * (LAT + b / BW), rel=1e-12)


@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_all_to_all_on_a_ring(n: int) -> None:
    # Pairwise step k sends every message d = min(k, n-k) hops the shorter way round, all
    # the same way; link j carries messages j-d+1 … j. A message's head reaches its next
    # link a hop latency after it started on the last; with t = bytes/bandwidth above the
    # latency that link is still busy with the message ahead, so message i runs on its
    # h-th link from h·t to (h+1)·t and arrives d·t + latency after the step began.
    b = 2e5
    t = b / BW
    assert t > LAT
    expected = sum(min(k, n - k) * t + LAT for k in range(1, n))
    assert _run(_net("ring", n), list(range(n)), _even(n, b)) == \
        pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
def test_all_to_all_along_a_torus_dimension_is_a_ring(axis: int) -> None:
    # A row (x) or a column (y, stride 4) of a 4x4 torus is a ring of 4 with wrap-around:
    # shifts of 1, 2 and 1 hops, each d·t + latency as on a ring. A second all-to-all on
    # another row or column at the same time uses other links and does not slow the first.
    b = 3e5
    net = _net("torus2d", 16, [4, 4])
    stride = 1 if axis == 0 else 4
    groups = [[i * stride for i in range(4)], [i * stride + (4 if axis == 0 else 1)
                                               for i in range(4)]]
    for g in groups:
        net.env.process(all_to_all(net, g, _even(4, b), "test", "pairwise"))
    net.env.run()
    assert net.env.now == pytest.approx((1 + 2 + 1) * b / BW + 3 * LAT, rel=1e-12)


def test_all_to_all_v_steps_wait_for_their_largest_message() -> None:
    # Uneven bytes (an expert-parallel dispatch under skewed routing): on a switch step k
    # takes latency + the largest message of the step / bandwidth.
    n = 4
    m = [[0.0 if i == j else 1e5 * (1 + i + 3 * j) for j in range(n)] for i in range(n)]
    expected = sum(LAT + max(m[i][(i + k) % n] for i in range(n)) / BW for k in range(1, n))
    assert _run(_net("switch", n), list(range(n)), m) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["switch", "fully_connected"])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_direct_all_to_all_on_a_switch(kind: str, n: int) -> None:
    # Every message issued at once, in shift order. On a switch the messages of shift k
    # find their up- and down-links free when those of shift k-1 leave them, so each
    # chip's up-link streams its n-1 messages back to back and the last arrives one
    # latency later; fully connected, every message has a link of its own.
    b = 1e6
    serial = n - 1 if kind == "switch" else 1
    assert _run(_net(kind, n), list(range(n)), _even(n, b), "direct") == \
        pytest.approx(serial * b / BW + LAT, rel=1e-12)


def test_direct_all_to_all_on_a_ring_is_bounded_by_its_busiest_link() -> None:
    # Forwarded hop by hop, all at once: at least the busiest link's bytes (every link of
    # a ring of n carries sum over shifts of min(k, n-k) / 2 messages each way, counted
    # from the link totals), at most the pairwise schedule; every byte crosses each hop.
    n, b = 6, 2e5
    net = _net("ring", n)
    t = _run(net, list(range(n)), _even(n, b), "direct")
    hops = sum(min(k, n - k) for k in range(1, n))
    assert sum(net.bytes.values()) == pytest.approx(n * hops * b)
    assert t >= max(net.bytes.values()) / BW
    assert t <= _run(_net("ring", n), list(range(n)), _even(n, b), "pairwise") + 1e-15


def test_even_all_to_all_collective_splits_the_tensor() -> None:
    # collective("all_to_all", nbytes): every chip holds nbytes and sends nbytes/n to
    # every other chip (direct).
    n, nbytes = 4, 8e5
    net = _net("switch", n)
    net.env.process(collective(net, "all_to_all", list(range(n)), nbytes, "test"))
    net.env.run()
    assert net.env.now == pytest.approx((n - 1) * nbytes / n / BW + LAT, rel=1e-12)
    assert net.bytes["c0->sw"] == pytest.approx((n - 1) * nbytes / n)


def test_two_level_routes_and_all_to_all() -> None:
    # 2 servers x 2 chips. Inside a server: the switch path, one hop. Between servers:
    # chip link, network up, network down, chip link: two hops of the chip link and one
    # of the network, at the network's (slower) bandwidth.
    topo = Topology(kind="two_level", servers=2)
    assert route(topo, 4, 0, 1) == (("c0->sw0", "sw0->c1"), 1)
    assert route(topo, 4, 1, 2) == (("c1->sw0", "sw0->net", "net->sw1", "sw1->c2"), 2)
    b = 1e6
    cross = 2 * LAT + NLAT + b / NBW
    # k=1: 0->1 and 2->3 stay inside, 1->2 and 3->0 cross, one per network link: the
    # crossing sets the step. k=2: all four cross, two on each server's network link,
    # which carries them one after the other. k=3: as k=1.
    expected = cross + (cross + b / NBW) + cross
    assert _run(_net("two_level", 4, servers=2), list(range(4)), _even(4, b)) == \
        pytest.approx(expected, rel=1e-12)
    # direct: each server's network up-link carries the 4 messages leaving it (0->2, 0->3,
    # 1->2, 1->3 from server 0) back to back, the others fitting around them: the last
    # leaves at 4 b / network bandwidth and arrives after two chip hops and a network hop.
    assert _run(_net("two_level", 4, servers=2), list(range(4)), _even(4, b), "direct") == \
        pytest.approx(4 * b / NBW + 2 * LAT + NLAT, rel=1e-12)


def _hops(a: int, b: int, dims: tuple[int, ...]) -> int:
    ca, cb = coords(a, dims), coords(b, dims)
    return sum(min((x - y) % d, (y - x) % d) for x, y, d in zip(ca, cb, dims, strict=True))


@given(st.sampled_from([(4, 4, 4), (4, 2, 3), (2, 4, 4), (4, 3, 3)]), st.data())
def test_ring_order_is_a_cycle_of_one_hop_steps(dims: tuple[int, ...], data: st.DataObject
                                                ) -> None:
    # Any box of the torus with an even side (or a whole dimension as a line): the order
    # visits every member once and each step, the last back to the first included, is a
    # single hop.
    sizes = [data.draw(st.integers(1, d)) for d in dims]
    lo = [data.draw(st.integers(0, d - s)) for d, s in zip(dims, sizes, strict=True)]
    pts = list(itertools.product(*(range(a, a + s) for a, s in zip(lo, sizes, strict=True))))
    group = tuple(sorted(p[0] + dims[0] * (p[1] + dims[1] * p[2]) for p in pts))
    span = [s for s in sizes if s > 1]
    has_cycle = (len(span) >= 2 and any(s % 2 == 0 for s in span)) or \
        (len(span) == 1 and any(s == d for s, d in zip(sizes, dims, strict=True) if s > 1))
    order = ring_order(Topology(kind="torus3d", dims=list(dims)), dims[0] * dims[1] * dims[2],
                       group)
    assert sorted(order) == list(group)
    if has_cycle and len(group) > 2:
        n = len(order)
        assert all(_hops(order[i], order[(i + 1) % n], dims) == 1 for i in range(n))


def test_the_32_card_preset_holds_deepseek_v3_at_fp8() -> None:
    rngd = load_system("rngd_4x8")
    assert rngd.count == 32 and rngd.topology.servers == 4
    assert rngd.link.bandwidth == pytest.approx(32e9 * 16 * 128 / 130 / 8, rel=1e-3)
    assert rngd.network is not None and rngd.network.bandwidth == pytest.approx(400e9 / 8)
    # 671e9 parameters at one byte each (FP8) over the cards' memory
    assert rngd.count * rngd.chip_spec.dram.capacity > 671e9


@pytest.mark.parametrize(("topology", "extra", "message"), [
    ("{kind: two_level, servers: 3}", "network: {bandwidth: 1 GB/s}",
     "6: topology.servers: 3 servers do not divide the 8 chips"),
    ("{kind: two_level, servers: 2}", "", "network: a two_level topology needs a network"),
    ("{kind: switch}", "network: {bandwidth: 1 GB/s}",
     "7: network: network applies to two_level topologies only, not switch"),
    ("{kind: switch, servers: 2}", "", "servers apply to two_level only"),
    ("{kind: two_level}", "network: {bandwidth: 1 GB/s}", "two_level needs servers"),
])
def test_two_level_errors_name_their_key_and_line(topology: str, extra: str,
                                                  message: str) -> None:
    text = ("name: x\nsources: [a]\nchip: rngd\ncount: 8\nlink: {bandwidth: 1 GB/s}\n"
            f"topology: {topology}\n{extra}\n")
    with pytest.raises(SpecError) as exc:
        loads_system(text, "sys.yaml")
    assert message in str(exc.value)
    assert len(str(exc.value).strip().splitlines()) == 1


def test_a_heavy_all_to_all_between_servers_runs_at_its_busiest_link() -> None:
    # 4 servers x 8 chips, 1 MB per pair, direct: each server's network up-link carries
    # the 8 x 24 messages leaving it, 192 MB at the network's 12.5 GB/s = 15.4 ms, far
    # above every chip link's load. Links booked one by one (pipelined) keep it busy: the
    # all-to-all takes that, to within 1 %, plus the routes' latency.
    b, servers, per = 1e6, 4, 8
    n = servers * per
    net = _net("two_level", n, servers=servers)
    t = _run(net, list(range(n)), _even(n, b), "direct")
    busiest = per * (n - per) * b / NBW
    assert max(net.bytes[f"sw{s}->net"] for s in range(servers)) == per * (n - per) * b
    assert busiest <= t <= 1.01 * busiest + 2 * LAT + NLAT
    # a message alone: at the slower bandwidth, two chip hops and a network hop
    alone = _net("two_level", n, servers=servers)
    m = [[0.0] * n for _ in range(n)]
    m[0][9] = b
    assert _run(alone, list(range(n)), m, "direct") == \
        pytest.approx(b / NBW + 2 * LAT + NLAT, rel=1e-12)
