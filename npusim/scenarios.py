"""MLPerf-style scenarios for CNN and encoder workloads.

* ``single-stream``: one query at a time, batch 1; the figure is its latency.
* ``offline``: all queries at once; the figure is throughput at the batch that maximises
  it among those whose weights and activations fit the chip's DRAM. Batches are tried in
  doubling steps from 1 (powers of two up to ``max_batch``); the search stops once
  throughput has not improved for two steps in a row or the next batch does not fit.

Both include the host path (npusim.engine.host) when the chip has one: a single-stream
query's upload, runtime overheads and download are in its latency; offline overlaps one
batch's host path with the chip's work on another, so its rate is the batch over the slower
of the two (``host=False`` leaves the host path out).

The DRAM footprint of a batch is all weights plus the largest activation working set of
any layer (its inputs and outputs), an assumption: activations of earlier layers are dead
by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from npusim.errors import MappingError
from npusim.report.result import Result
from npusim.simulate import simulate
from npusim.spec.arch import Chip
from npusim.workloads.ir import Workload

__all__ = ["SCENARIOS", "ScenarioResult", "footprint_bytes", "run_scenario"]

SCENARIOS = ("single-stream", "offline")


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

    def summary(self) -> dict[str, object]:
        s = self.result.summary()
        s["scenario"] = self.scenario
        return s


def _overlapped(chip: Chip, workload: Workload, res: Result) -> Result:
    """``res`` with its rate as when batches overlap their host paths (offline)."""
    from npusim.engine.host import host_path, overlapped_rate

    rate = overlapped_rate(res, host_path(chip, workload))
    # meta overrides the summary's own inferences_per_s (latency-based) for this result.
    return replace(res, meta={**res.meta, "inferences_per_s": rate})


def run_scenario(chip: Chip, workload: Workload, scenario: str = "single-stream", *,
                 max_batch: int = 256, memory: str = "bandwidth",
                 weights_resident: bool | None = None, host: bool = True) -> ScenarioResult:
    """Run ``workload`` (given at batch 1) in ``scenario`` on ``chip`` (``memory``,
    ``weights_resident`` and ``host`` as for :func:`~npusim.simulate.simulate`)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (use {' or '.join(SCENARIOS)})")
    capacity = chip.dram.capacity_bytes
    need = footprint_bytes(workload)
    if need > capacity:
        raise MappingError(f"{workload.name} at batch 1 needs {need} B of DRAM, more than "
                           f"{chip.name}'s {capacity} B by {need - capacity} B")
    first = simulate(chip, workload, memory=memory, weights_resident=weights_resident, host=host)
    if scenario == "offline" and host:
        first = _overlapped(chip, workload, first)
    rows = [{"batch": 1, "latency_s": first.summary()["latency_s"],
             "inferences_per_s": first.summary()["inferences_per_s"], "fits": True}]
    if scenario == "single-stream":
        return ScenarioResult(scenario, 1, first, pd.DataFrame(rows))
    best, best_batch, best_rate, stale = first, 1, rows[0]["inferences_per_s"], 0
    batch = 2
    while batch <= max_batch and stale < 2:
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
        if s["inferences_per_s"] > best_rate:
            best, best_batch, best_rate, stale = res, batch, s["inferences_per_s"], 0
        else:
            stale += 1
        batch *= 2
    return ScenarioResult(scenario, best_batch, best, pd.DataFrame(rows))
