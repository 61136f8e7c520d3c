"""Links of a topology and the route a transfer takes over them.

Every link is one direction, named for reports: ``c3->c4`` between chips, ``c3->sw`` and
``sw->c4`` for a chip's up- and down-link to a switch. ``route(src, dst)`` lists the links a
transfer from chip ``src`` to chip ``dst`` holds, in order:

* switch: the sender's up-link and the receiver's down-link (one hop of latency);
* ring: the shorter way round (ties go up: ``i -> i+1``), one link per hop;
* torus: dimension-order routing (the first dimension first), each dimension the shorter
  way round with wrap-around (ties go up); a chip's index is ``x + X*(y + Y*z)``;
* fully connected: the direct link;
* two-level (servers of chips on a switch each, the servers' switches on a network switch):
  inside a server as ``switch`` (``c3->sw0``, ``sw0->c4``, one hop); between servers the
  sender's up-link, its server's network up-link ``sw0->net``, the receiving server's
  network down-link ``net->sw1`` and the receiver's down-link (two hops of the chip link:
  chip to network interface and back, and one of the network).

On a torus a ring collective orders its group with :func:`ring_order`: a cycle through the
group in which every step is one hop whenever the group fills a box of the torus that has
one (the ring is embedded along the torus dimensions), so its closed form holds.
"""

from __future__ import annotations

import math
from functools import cache

from npusim.spec.system import Topology

__all__ = ["Route", "all_links", "coords", "is_network_link", "network_hops", "ring_order",
           "route"]

#: (link names in order, hops of latency of the chip link)
Route = tuple[tuple[str, ...], int]


def _name(a: int, b: int) -> str:
    return f"c{a}->c{b}"


def coords(index: int, dims: tuple[int, ...]) -> tuple[int, ...]:
    """Torus coordinates of chip ``index`` (first dimension fastest)."""
    out = []
    for d in dims:
        out.append(index % d)
        index //= d
    return tuple(out)


def _index(c: tuple[int, ...], dims: tuple[int, ...]) -> int:
    i, scale = 0, 1
    for x, d in zip(c, dims, strict=True):
        i += x * scale
        scale *= d
    return i


def _step(delta: int, size: int) -> int:
    """+1 or -1: the shorter way round a ring of ``size`` for a forward distance ``delta``."""
    fwd = delta % size
    return 1 if fwd <= size - fwd else -1


def _torus_route(src: int, dst: int, dims: tuple[int, ...]) -> Route:
    cur = list(coords(src, dims))
    goal = coords(dst, dims)
    links: list[str] = []
    for axis, size in enumerate(dims):
        while cur[axis] != goal[axis]:
            here = _index(tuple(cur), dims)
            cur[axis] = (cur[axis] + _step(goal[axis] - cur[axis], size)) % size
            links.append(_name(here, _index(tuple(cur), dims)))
    return tuple(links), len(links)


def _dims(topology: Topology, count: int) -> tuple[int, ...]:
    if topology.kind == "ring":
        return (count,)
    assert topology.dims is not None  # checked by the spec
    return tuple(topology.dims)


@cache
def _route(kind: str, dims: tuple[int, ...], src: int, dst: int) -> Route:
    if kind == "switch":
        return (f"c{src}->sw", f"sw->c{dst}"), 1
    if kind == "two_level":
        (per,) = dims
        a, b = src // per, dst // per
        if a == b:
            return (f"c{src}->sw{a}", f"sw{a}->c{dst}"), 1
        return (f"c{src}->sw{a}", f"sw{a}->net", f"net->sw{b}", f"sw{b}->c{dst}"), 2
    if kind == "fully_connected":
        return (_name(src, dst),), 1
    return _torus_route(src, dst, dims)


def route(topology: Topology, count: int, src: int, dst: int) -> Route:
    """The links a transfer from chip ``src`` to chip ``dst`` holds, and its hops."""
    if src == dst:
        return (), 0
    if topology.kind == "two_level":
        assert topology.servers is not None  # checked by the spec
        return _route("two_level", (count // topology.servers,), src, dst)
    dims = () if topology.kind in ("switch", "fully_connected") else _dims(topology, count)
    return _route(topology.kind, dims, src, dst)


def is_network_link(name: str) -> bool:
    """Whether link ``name`` is a server's network link (two-level topologies)."""
    return "net" in name


def network_hops(links: tuple[str, ...]) -> int:
    """Hops of the network link on a route (one per crossing between servers)."""
    return sum(1 for n in links if n.startswith("net->"))


def _box_cycle(sizes: tuple[int, ...]) -> list[tuple[int, ...]] | None:
    """A cycle through every point of a box of ``sizes`` (offsets from its corner) with
    neighbours one step apart along one dimension, or None when the box has none.

    The box is read as a grid of ``a`` (its first dimension) by ``b`` (the rest, walked as
    a snake so that consecutive values are neighbours). With ``b`` even the cycle walks the
    rows ``x = 1 … a-1`` back and forth and returns along column 0; with ``a`` even it
    walks the columns ``y = 1 … b-1`` and returns along row 0.
    """
    a, rest = sizes[0], sizes[1:]
    snake: list[tuple[int, ...]] = [()]
    for size in rest:  # boustrophedon over the other dimensions
        snake = [(*p, i if j % 2 == 0 else size - 1 - i)
                 for j, p in enumerate(snake) for i in range(size)]
    b = len(snake)
    if a < 2 or b < 2:
        return None
    grid: list[tuple[int, int]] = []
    if b % 2 == 0:
        for y in range(b):
            xs = range(1, a) if y % 2 == 0 else range(a - 1, 0, -1)
            grid += [(x, y) for x in xs]
        grid += [(0, y) for y in range(b - 1, -1, -1)]
    elif a % 2 == 0:
        for x in range(a):
            ys = range(1, b) if x % 2 == 0 else range(b - 1, 0, -1)
            grid += [(x, y) for y in ys]
        grid += [(x, 0) for x in range(a - 1, -1, -1)]
    else:
        return None
    return [(x, *snake[y]) for x, y in grid]


def ring_order(topology: Topology, count: int, group: tuple[int, ...]) -> tuple[int, ...]:
    """The order a ring collective visits ``group`` in: on a torus, a cycle of one-hop
    steps when the group fills a box that has one (see :func:`_box_cycle`; a box that
    spans a whole dimension is itself a ring along it); otherwise the group's own order."""
    if topology.kind not in ("torus2d", "torus3d") or len(group) < 3:
        return group
    dims = _dims(topology, count)
    pts = [coords(g, dims) for g in group]
    lo = tuple(min(p[i] for p in pts) for i in range(len(dims)))
    sizes = tuple(max(p[i] for p in pts) - lo[i] + 1 for i in range(len(dims)))
    if len(set(pts)) != len(pts) or len(pts) != math.prod(sizes):
        return group
    span = [i for i, s in enumerate(sizes) if s > 1]
    if len(span) == 1:  # a line: a ring only if it wraps round its whole dimension
        axis = span[0]
        if sizes[axis] != dims[axis]:
            return group
        line = sorted(group, key=lambda g: coords(g, dims)[axis])
        return tuple(line)
    cycle = _box_cycle(tuple(sizes[i] for i in span))
    if cycle is None:
        return group
    out = []
    for off in cycle:
        c = list(lo)
        for i, o in zip(span, off, strict=True):
            c[i] += o
        out.append(_index(tuple(c), dims))
    return tuple(out)



def all_links(topology: Topology, count: int) -> list[str]:
    """Every link direction of the topology."""
    if topology.kind == "switch":
        return [n for i in range(count) for n in (f"c{i}->sw", f"sw->c{i}")]
    if topology.kind == "fully_connected":
        return [_name(a, b) for a in range(count) for b in range(count) if a != b]
    if topology.kind == "two_level":
        assert topology.servers is not None
        per = count // topology.servers
        chips = [n for i in range(count) for n in (f"c{i}->sw{i // per}", f"sw{i // per}->c{i}")]
        return chips + [n for s in range(topology.servers) for n in (f"sw{s}->net", f"net->sw{s}")]
    dims = _dims(topology, count)
    out: set[str] = set()
    for i in range(count):
        c = coords(i, dims)
        for axis, size in enumerate(dims):
            for step in (1, -1):
                if size < 2:
                    continue
                n = list(c)
                n[axis] = (n[axis] + step) % size
                out.add(_name(i, _index(tuple(n), dims)))
    return sorted(out, key=lambda s: tuple(int(x[1:]) for x in s.split("->")))
