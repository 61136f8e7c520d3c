"""MLPerf-style scenarios for CNN and encoder workloads.

* ``single-stream``: one query at a time, batch 1; the figure is its latency.
* ``offline``: all queries at once; the figure is throughput at the batch that maximises
  it among those whose weights and activations fit the chip's DRAM. Every power of two from
  1 to ``max_batch`` is tried, up to the first that does not fit (the footprint grows with
  the batch, so none past it fits either). Throughput is not monotonic in the batch (a
  batch whose tiles split worse, or whose activations spill to DRAM, can be slower than a
  smaller one: on RNGD, BERT-Large at batch 32 runs slower than at both 16 and 64), so the
  search never stops at a drop.
* ``server``: ``queries`` single-sample queries arrive as a Poisson stream at ``rate`` per
  second (seeded); whenever the chip is free it runs every waiting query (up to
  ``max_batch``, and the largest batch that fits DRAM) as one batch, whose latency is
  ``simulate`` of the workload at that batch (each batch size simulated once). The figure
  is the 99th percentile of query latency (arrival to the end of its batch), met when it
  is within ``latency_bound_s``. It runs on the serving machinery
  (:mod:`npusim.serving`): a query is a one-token prompt with one output token.

Both include the host path (npusim.engine.host) when the chip has one: a single-stream
query's upload, runtime overheads and download are in its latency; offline overlaps one
batch's host path with the chip's work on another, so its rate is the batch over the slower
of the two (``host=False`` leaves the host path out).

The DRAM footprint of a batch is all weights plus the largest activation working set of
any layer (its inputs and outputs), an assumption: activations of earlier layers are dead
by then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from npusim.errors import MappingError
from npusim.result import Result
from npusim.simulate import simulate
from npusim.spec.arch import Chip
from npusim.workloads.ir import Workload

__all__ = ["SCENARIOS", "ScenarioResult", "footprint_bytes", "run_scenario"]

SCENARIOS = ("single-stream", "offline", "server")


def footprint_bytes(workload: Workload) -> int:
    """Weights plus the largest per-layer activation working set, in bytes."""
    weights = sum(layer.input_bytes().get("weight", 0) for layer in workload.layers)
    acts = max((layer.input_bytes().get("act", 0) + layer.output_bytes().get("act", 0)
                for layer in workload.layers), default=0)
    return weights + acts


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    batch: int  # the batch reported (1 for single-stream, the best for offline)
    result: Result = field(repr=False)
    tried: pd.DataFrame = field(repr=False)  # batch, latency_s, inferences_per_s, fits
    #: server: rate, percentiles of query latency, the bound and whether it is met
    server: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        s = self.result.summary()
        s["scenario"] = self.scenario
        s.update(self.server)
        return s


def _overlapped(chip: Chip, workload: Workload, res: Result) -> Result:
    """``res`` with its rate as when batches overlap their host paths (offline)."""
    from npusim.engine.host import host_path, overlapped_rate

    rate = overlapped_rate(res.summary()["latency_s"], res.batch, host_path(chip, workload))
    # meta overrides the summary's own inferences_per_s (latency-based) for this result.
    return replace(res, meta={**res.meta, "inferences_per_s": rate})


@dataclass
class _BatchSteps:
    """Serving step costs of a non-LLM workload: a step of ``b`` queries is one inference
    at batch ``b`` (simulated once per batch size)."""

    chip: Chip
    workload: Workload
    memory: str
    weights_resident: bool | None
    host: bool = True  # each step's queries cross the host link (npusim.engine.host)
    done: dict[int, Result] = field(default_factory=dict)

    @property
    def idle_power_w(self) -> float:
        return self.chip.energy.leakage

    def result(self, batch: int) -> Result:
        if batch not in self.done:
            wl = self.workload if batch == 1 else self.workload.with_batch(batch)
            self.done[batch] = simulate(self.chip, wl, memory=self.memory,
                                        weights_resident=self.weights_resident,
                                        host=self.host)
        return self.done[batch]

    def cost(self, prefill_tokens: int, decode_batch: int,
             context_sum: int) -> tuple[float, float]:
        s = self.result(prefill_tokens).summary()
        return float(s["latency_s"]), float(s["energy_j"])


def _largest_fitting_batch(workload: Workload, capacity: int, max_batch: int) -> int:
    lo, hi = 1, max_batch  # footprint grows with the batch: bisect for the largest that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if footprint_bytes(workload.with_batch(mid)) <= capacity:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _server(chip: Chip, workload: Workload, steps: _BatchSteps, *, rate: float,
            queries: int, max_batch: int, latency_bound_s: float | None,
            seed: int) -> ScenarioResult:
    from npusim.serving import generate, serve

    limit = _largest_fitting_batch(workload, chip.dram.capacity_bytes, max_batch)
    req = generate(queries, rate, prompt="fixed:1", output="fixed:1", seed=seed)
    res = serve(None, None, requests=req, max_batch=limit, max_tokens=limit,
                step_model=steps)
    lat = res.requests["e2e_s"]
    s = res.summary()
    p99 = float(lat.quantile(0.99))
    bound = latency_bound_s if latency_bound_s is not None else math.inf
    server = {"rate": rate, "queries": queries, "max_batch": limit,
              "p50_latency_s": float(lat.quantile(0.5)),
              "p90_latency_s": float(lat.quantile(0.9)), "p99_latency_s": p99,
              "latency_bound_s": bound, "bound_met": p99 <= bound,
              "queries_per_s": s["requests_per_s"], "mean_batch": float(
                  (res.steps["prefill_tokens"] * res.steps["latency_s"]).sum()
                  / res.steps["latency_s"].sum()),
              "server_energy_per_query_j": s["energy_j"] / queries,
              "server_average_power_w": s["average_power_w"]}
    rows = [{"batch": b, "latency_s": r.summary()["latency_s"],
             "inferences_per_s": r.summary()["inferences_per_s"], "fits": True}
            for b, r in sorted(steps.done.items())]
    return ScenarioResult("server", int(res.steps["prefill_tokens"].max()), steps.result(1),
                          pd.DataFrame(rows), server)


def run_scenario(chip: Chip, workload: Workload, scenario: str = "single-stream", *,
                 max_batch: int = 256, memory: str = "bandwidth",
                 weights_resident: bool | None = None, host: bool = True,
                 rate: float | None = None, queries: int = 2000,
                 latency_bound_s: float | None = None, seed: int = 0) -> ScenarioResult:
    """Run ``workload`` (given at batch 1) in ``scenario`` on ``chip`` (``memory``,
    ``weights_resident`` and ``host`` as for :func:`~npusim.simulate.simulate`); ``server``
    needs ``rate`` (queries per second) and takes ``queries``, ``latency_bound_s`` and
    ``seed``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (use {' or '.join(SCENARIOS)})")
    capacity = chip.dram.capacity_bytes
    need = footprint_bytes(workload)
    if need > capacity:
        raise MappingError(f"{workload.name} at batch 1 needs {need} B of DRAM, more than "
                           f"{chip.name}'s {capacity} B by {need - capacity} B")
    if scenario == "server":
        if rate is None:
            raise MappingError("the server scenario needs a rate (queries per second)")
        steps = _BatchSteps(chip, workload, memory, weights_resident, host)
        return _server(chip, workload, steps, rate=rate, queries=queries,
                       max_batch=max_batch, latency_bound_s=latency_bound_s, seed=seed)
    first = simulate(chip, workload, memory=memory, weights_resident=weights_resident, host=host)
    if scenario == "offline" and host:
        first = _overlapped(chip, workload, first)
    rows = [{"batch": 1, "latency_s": first.summary()["latency_s"],
             "inferences_per_s": first.summary()["inferences_per_s"], "fits": True}]
    if scenario == "single-stream":
        return ScenarioResult(scenario, 1, first, pd.DataFrame(rows))
    results = {1: first}
    batch = 2
    while batch <= max_batch:
        wl = workload.with_batch(batch)
        if footprint_bytes(wl) > capacity:
            rows.append({"batch": batch, "latency_s": float("nan"),
                         "inferences_per_s": float("nan"), "fits": False})
            break
        res = simulate(chip, wl, memory=memory, weights_resident=weights_resident, host=host)
        if host:
            res = _overlapped(chip, wl, res)
        s = res.summary()
        rows.append({"batch": batch, "latency_s": s["latency_s"],
                     "inferences_per_s": s["inferences_per_s"], "fits": True})
        results[batch] = res
        batch *= 2
    # The best of every batch tried; max keeps the first (smallest) batch of equals.
    best = max(results, key=lambda b: results[b].summary()["inferences_per_s"])
    return ScenarioResult(scenario, best, results[best], pd.DataFrame(rows))
