"""One step of a multi-chip system as SimPy processes: chips compute, links carry collectives.

The input is a :class:`SystemProgram`: the stages of a pipeline, each a list of
:class:`Segment` (a stretch of compute on one chip, from the chip's own simulated Result,
then optionally a collective over the chip's tensor-parallel group, or an all-to-all over
its expert-parallel group), repeated for every micro-batch, and the bytes each stage sends
to the next. Chip ``(replica d, stage s, rank t)`` sits at system position
``placement[(d * pp + s) * tp + t]``. Under expert parallelism the chips of a stage, taken
in the order ``q = d * tp + t``, form groups of ``ep`` consecutive chips (``q // ep``);
each chip may run a program of its own (its experts' share of the routed tokens), and an
all-to-all's bytes are each member's row of what it sends to every member.

A chip's process, for each micro-batch in turn: wait for the previous stage's activations
(stage > 0), run its segments (a compute segment is a timeout of its simulated latency; a
collective starts when the last member of the group arrives and every member waits until
it ends), then hand its output to the next stage as a send process that overlaps with its
next micro-batch. Time is booked per chip as compute, communication by cause (waiting in a
collective, from the chip's arrival to the end; or waiting for a send that has started) and
idle (pipeline bubble, waiting for a slower stage; the tail to the last chip's end).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from npusim.engine.collectives import LinkNet, LinkSpan, all_to_all, collective
from npusim.spec.system import System

__all__ = ["ChipSpan", "ChipStats", "Segment", "StageProgram", "StepStats", "SystemProgram",
           "run_system_step"]

Process = Generator[simpy.Event, Any, None]


@dataclass(frozen=True)
class Segment:
    """Compute on one chip, then (if ``collective``) a collective over its TP group, or
    (``all_to_all``) an all-to-all over its EP group sending ``row[m]`` bytes to member
    ``m``."""

    name: str
    compute_s: float
    collective: str | None = None  # all_reduce, all_gather, reduce_scatter, all_to_all
    nbytes: float = 0.0  # the full tensor the collective moves
    cause: str = ""
    row: tuple[float, ...] = ()  # all_to_all: bytes to each member of the EP group


@dataclass(frozen=True)
class StageProgram:
    segments: tuple[Segment, ...]
    #: activation bytes each rank sends to the same rank of the next stage, per micro-batch
    send_bytes: float = 0.0


@dataclass(frozen=True)
class SystemProgram:
    stages: tuple[StageProgram, ...]
    tp: int
    dp: int
    micro_batches: int
    placement: tuple[int, ...]
    algorithm: str = "ring"
    ep: int = 1
    all_to_all: str = "direct"
    #: a chip's own program where it differs from its stage's (expert parallelism):
    #: (replica, stage, rank) -> program
    chip_stages: dict[tuple[int, int, int], StageProgram] = field(default_factory=dict)

    @property
    def pp(self) -> int:
        return len(self.stages)

    def position(self, replica: int, stage: int, rank: int) -> int:
        return self.placement[(replica * self.pp + stage) * self.tp + rank]

    def ep_group(self, replica: int, stage: int, rank: int) -> tuple[int, list[int]]:
        """The expert-parallel group of a chip: its index and its members' positions."""
        q = replica * self.tp + rank
        first = q - q % self.ep
        return q // self.ep, [self.position(p // self.tp, stage, p % self.tp)
                             for p in range(first, first + self.ep)]


@dataclass(frozen=True)
class ChipSpan:
    """One compute segment or one wait on one chip (for the Perfetto trace)."""

    chip: int
    name: str
    start_s: float
    end_s: float
    kind: str  # compute, comm, idle


@dataclass
class ChipStats:
    position: int
    replica: int
    stage: int
    rank: int
    compute_s: float = 0.0
    comm_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    end_s: float = 0.0


@dataclass(frozen=True)
class StepStats:
    latency_s: float
    chips: tuple[ChipStats, ...]
    link_bytes: dict[str, float]
    link_busy_s: dict[str, float]
    links: tuple[str, ...]
    chip_spans: tuple[ChipSpan, ...] = ()
    link_spans: tuple[LinkSpan, ...] = ()


class _Gate:
    """A collective's meeting point: starts the collective when all members are in."""

    def __init__(self, env: simpy.Environment, size: int) -> None:
        self.size, self.arrived, self.done = size, 0, env.event()
        self.rows: dict[int, tuple[float, ...]] = {}


def run_system_step(system: System, program: SystemProgram, *, trace: bool = False) -> StepStats:
    """Simulate one step of ``program`` on ``system``; see the module docstring."""
    env = simpy.Environment()
    net = LinkNet(env, system.topology, system.count, system.link, trace=trace,
                  network=system.network)
    gates: dict[tuple[int, ...], _Gate] = {}
    inbox: dict[tuple[int, int, int, int], simpy.Event] = {}
    spans: list[ChipSpan] = []
    tp, pp = program.tp, program.pp

    def box(d: int, s: int, t: int, j: int) -> simpy.Event:
        key = (d, s, t, j)
        if key not in inbox:
            inbox[key] = env.event()
        return inbox[key]

    def run_collective(seg: Segment, group: list[int], gate: _Gate) -> Process:
        if seg.collective == "all_to_all":
            yield from all_to_all(net, group, [gate.rows[m] for m in range(len(group))],
                                  seg.cause, program.all_to_all)
        else:
            yield from collective(net, seg.collective or "", group, seg.nbytes, seg.cause,
                                  program.algorithm)
        gate.done.succeed()

    def send(src: int, dst: int, nbytes: float, arrive: simpy.Event) -> Process:
        started = env.now
        yield from net.send(src, dst, nbytes, "pipeline send")
        arrive.succeed(started)

    def chip(st: ChipStats) -> Process:
        d, s, t = st.replica, st.stage, st.rank
        stage = program.chip_stages.get((d, s, t), program.stages[s])
        group = [program.position(d, s, r) for r in range(tp)]
        ep_index, ep_members = program.ep_group(d, s, t)
        member = (d * tp + t) % program.ep
        for j in range(program.micro_batches):
            if s > 0:
                t0 = env.now
                started = yield box(d, s, t, j)
                if env.now > t0:
                    # before the send started: the bubble (idle); after: the transfer
                    sent = max(t0, started)
                    st.comm_s["pipeline send"] += env.now - sent
                    if trace and sent > t0:
                        spans.append(ChipSpan(st.position, "bubble", t0, sent, "idle"))
                    if trace and env.now > sent:
                        spans.append(ChipSpan(st.position, "pipeline send", sent, env.now,
                                              "comm"))
            for i, seg in enumerate(stage.segments):
                if seg.compute_s > 0:
                    t0 = env.now
                    yield env.timeout(seg.compute_s)
                    st.compute_s += seg.compute_s
                    if trace:
                        spans.append(ChipSpan(st.position, seg.name, t0, env.now, "compute"))
                if seg.collective is None:
                    continue
                if seg.collective == "all_to_all":
                    if program.ep < 2:
                        continue
                    key: tuple[int, ...] = (-1, ep_index, s, j, i)
                    members, size = ep_members, program.ep
                else:
                    if tp < 2:
                        continue
                    key, members, size = (d, s, j, i), group, tp
                gate = gates.get(key)
                if gate is None:
                    gate = gates[key] = _Gate(env, size)
                gate.arrived += 1
                gate.rows[member] = seg.row
                if gate.arrived == gate.size:
                    env.process(run_collective(seg, members, gate))
                t0 = env.now
                yield gate.done
                st.comm_s[seg.cause] += env.now - t0
                if trace and env.now > t0:
                    spans.append(ChipSpan(st.position, seg.cause, t0, env.now, "comm"))
            if s < pp - 1:
                env.process(send(st.position, program.position(d, s + 1, t),
                                 stage.send_bytes, box(d, s + 1, t, j)))
        st.end_s = env.now

    chips = [ChipStats(program.position(d, s, t), d, s, t)
             for d in range(program.dp) for s in range(pp) for t in range(tp)]
    for st in chips:
        env.process(chip(st))
    env.run()
    latency = max(st.end_s for st in chips)
    return StepStats(latency, tuple(chips), dict(net.bytes), dict(net.busy_s),
                     tuple(net.names), tuple(spans), tuple(net.spans))
