"""Links of a topology and the route a transfer takes over them.

Every link is one direction, named for reports: ``c3->c4`` between chips, ``c3->sw`` and
``sw->c4`` for a chip's up- and down-link to a switch. ``route(src, dst)`` lists the links a
transfer from chip ``src`` to chip ``dst`` holds, in order:

* switch: the sender's up-link and the receiver's down-link (one hop of latency);
* ring: the shorter way round (ties go up: ``i -> i+1``), one link per hop;
* torus: dimension-order routing (the first dimension first), each dimension the shorter
  way round with wrap-around (ties go up); a chip's index is ``x + X*(y + Y*z)``;
* fully connected: the direct link.
"""

from __future__ import annotations

from functools import cache

from npusim.spec.system import Topology

__all__ = ["Route", "all_links", "check_size", "coords", "link_count", "route"]

#: (link names in order, hops of latency)
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
    if kind == "fully_connected":
        return (_name(src, dst),), 1
    return _torus_route(src, dst, dims)


def route(topology: Topology, count: int, src: int, dst: int) -> Route:
    """The links a transfer from chip ``src`` to chip ``dst`` holds, and its hops."""
    if src == dst:
        return (), 0
    dims = () if topology.kind in ("switch", "fully_connected") else _dims(topology, count)
    return _route(topology.kind, dims, src, dst)


def link_count(topology: Topology, count: int) -> int:
    """How many link directions :func:`all_links` lists, by closed form: 2 per chip to a
    switch, n(n - 1) fully connected, and per ring or torus axis of size s a link each way
    per chip (s > 2), one (s = 2: both ways reach the same neighbour) or none (s = 1)."""
    if topology.kind == "switch":
        return 2 * count
    if topology.kind == "fully_connected":
        return count * (count - 1)
    per_chip = sum(2 if s > 2 else (1 if s == 2 else 0) for s in _dims(topology, count))
    return per_chip * count


def check_size(topology: Topology, count: int) -> None:
    """Refuse by estimate, before any list is built, a system whose links and per-chip
    records pass the memory budget (see :mod:`npusim.limits`)."""
    from npusim.errors import SpecError
    from npusim.limits import CHIP_BYTES, LINK_BYTES, memory_problem

    links = link_count(topology, count)
    problem = memory_problem(links * LINK_BYTES + count * CHIP_BYTES)
    if problem is not None:  # the system file's count, whatever the command's options
        raise SpecError(f"system count {count:,} ({topology.kind}, {links:,} links): "
                        f"{problem}")


def all_links(topology: Topology, count: int) -> list[str]:
    """Every link direction of the topology."""
    check_size(topology, count)
    if topology.kind == "switch":
        return [n for i in range(count) for n in (f"c{i}->sw", f"sw->c{i}")]
    if topology.kind == "fully_connected":
        return [_name(a, b) for a in range(count) for b in range(count) if a != b]
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
