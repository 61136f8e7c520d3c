"""The serving run in SimPy: arrivals, the scheduler and the chip as processes.

``arrivals`` puts each request in the scheduler's queue at its time and wakes the scheduler
when it is idle; ``scheduler`` forms a step (:class:`~npusim.serving.scheduler.Scheduler`),
hands it to ``chip`` and waits for it; ``chip`` holds the step for its latency from the
step model (npusim's own simulation of that step's shape). One step is in flight at a time.
The run ends when every request has finished. Everything recorded is returned as plain
arrays; :mod:`npusim.serving.metrics` computes the figures.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from npusim import progress
from npusim.serving.arrivals import Requests
from npusim.serving.scheduler import Limits, Scheduler, Seq, Step
from npusim.serving.steps import StepModel

__all__ = ["Trace", "run"]


@dataclass(frozen=True)
class Trace:
    """What a run recorded: every request, every step, every change of the number in system."""

    seqs: list[Seq]
    #: per step: start s, latency s, energy J, prefill tokens, decode batch, waiting, KV
    #: blocks, tokens swapped
    steps: np.ndarray
    #: (time s, requests in system after the change) at every arrival and completion
    in_system: np.ndarray
    blocks: int
    preemptions: int
    swaps: int
    idle_power_w: float


def run(requests: Requests, model: StepModel, limits: Limits) -> Trace:
    """Serve ``requests`` under ``limits`` with step costs from ``model``."""
    env = simpy.Environment()
    sched = Scheduler(limits, recompute_s=lambda tokens: model.cost(tokens, 0, 0)[0])
    seqs = [Seq(i, float(a), int(p), int(o)) for i, (a, p, o) in
            enumerate(zip(requests.arrival_s, requests.prompt, requests.output, strict=True))]
    steps: list[tuple[float, ...]] = []
    counts: list[tuple[float, int]] = []
    state: dict[str, Any] = {"wake": env.event(), "in_system": 0, "left": len(seqs)}
    chip_state: dict[str, Any] = {"ready": env.event(), "job": None}

    def arrivals() -> Generator[simpy.Event, Any, None]:
        for seq in seqs:
            if seq.arrival > env.now:
                yield env.timeout(seq.arrival - env.now)
            sched.add(seq)
            state["in_system"] += 1
            counts.append((env.now, state["in_system"]))
            if not state["wake"].triggered:
                state["wake"].succeed()

    def chip() -> Generator[simpy.Event, Any, None]:
        while True:
            yield chip_state["ready"]
            chip_state["ready"] = env.event()
            step, done = chip_state["job"]
            latency, energy = model.cost(step.prefill_tokens, len(step.decodes),
                                         step.context_sum)
            if step.swap_tokens:  # the host link moves them, in series with the step
                latency += step.swap_tokens * limits.swap_s_per_token
                energy += step.swap_tokens * limits.swap_j_per_token
            steps.append((env.now, latency, energy, step.prefill_tokens, len(step.decodes),
                          len(sched.waiting), sched.used_blocks, step.swap_tokens))
            yield env.timeout(latency)
            done.succeed()

    def scheduler() -> Generator[simpy.Event, Any, None]:
        while state["left"]:
            step: Step | None = sched.next_step()
            if step is None:
                state["wake"] = env.event()
                yield state["wake"]
                continue
            for seq, _ in step.prefills:
                if math.isnan(seq.admitted):
                    seq.admitted = env.now
            done = env.event()
            chip_state["job"] = (step, done)
            chip_state["ready"].succeed()
            yield done
            finished = sched.finish_step(step, env.now)
            state["left"] -= len(finished)
            if finished:
                state["bar"].update(len(finished))
            for _ in finished:
                state["in_system"] -= 1
                counts.append((env.now, state["in_system"]))

    env.process(arrivals())
    env.process(chip())
    with progress.bar(len(seqs), "requests", unit="req") as served:
        state["bar"] = served
        env.run(until=env.process(scheduler()))
    return Trace(seqs, np.array(steps, dtype=float).reshape(-1, 8),
                 np.array(counts, dtype=float).reshape(-1, 2), limits.blocks,
                 sched.preemptions, sched.swaps, model.idle_power_w)
