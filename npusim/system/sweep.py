"""Sweeps of a system over chip count, link kind and parallelism: one row per point.

``sweep_system(system, workload, count=[2, 4, 8], link=["pcie4_x16", "pcie5_x16"],
tp=[1, 2, 4, 8])`` crosses every axis given (a single value is a one-point axis), runs
:func:`~npusim.system.simulate_system` at each point and returns a DataFrame: the axes,
the step's figures and ``error`` (the one-line message of a point that cannot run: a plan
that needs more chips than the count, does not divide the model, a shard that does not fit,
a torus whose dims do not hold the count). The chips' shards depend on the plan only, so
each plan's shards are simulated once and reused for every count and link.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from npusim.errors import NpusimError
from npusim.result import Result
from npusim.spec.system import Link, System, load_system, system_with
from npusim.system.parallel import Plan
from npusim.system.simulate import run_step, simulate_shards
from npusim.workloads.ir import Workload

__all__ = ["SWEEP_COLUMNS", "sweep_system"]

#: the step figures of every row (from ``SystemResult.summary()``)
SWEEP_COLUMNS: tuple[str, ...] = (
    "latency_s", "time_compute_s", "time_comm_s", "time_idle_s", "inferences_per_s",
    "energy_j", "energy_links_j", "link_bytes", "link_utilization_max")


def _axis(value: Any) -> list[Any]:
    if value is None:
        return [None]
    if isinstance(value, (str, int, Link, dict)):
        return [value]
    return list(value)


def sweep_system(system: System | str | Path, workload: Workload, *,
                 count: int | Sequence[int] | None = None,
                 link: str | Link | Sequence[str | Link] | None = None,
                 tp: int | Sequence[int] = 1, pp: int | Sequence[int] = 1,
                 dp: int | Sequence[int] = 1, micro_batches: int | Sequence[int] = 1,
                 ep: int | Sequence[int] = 1, algorithm: str | Sequence[str] = "ring",
                 memory: str = "bandwidth",
                 allreduce_precision: str | Sequence[str] = "accum") -> pd.DataFrame:
    """Every combination of the axes; see the module docstring. ``link`` values are a
    catalog kind (``pcie5_x16``, npusim/spec/link_catalog.py) or a :class:`Link`;
    ``allreduce_precision`` as for :func:`npusim.system.simulate_system`."""
    base = system if isinstance(system, System) else load_system(system)
    shards: dict[tuple[int, int, int, int],
                 tuple[list[Workload], list[Result], Any] | NpusimError] = {}
    rows = []
    for n, lk, t, p, d, m, e, alg, arp in itertools.product(
            _axis(count), _axis(link), _axis(tp), _axis(pp), _axis(dp), _axis(micro_batches),
            _axis(ep), _axis(algorithm), _axis(allreduce_precision)):
        plan = Plan(t, p, d, m, e)
        kind = lk if isinstance(lk, str) else (lk.kind if lk is not None else base.link.kind)
        row: dict[str, Any] = {"count": n or base.count, "link": kind, "tp": t, "pp": p,
                               "dp": d, "micro_batches": m, "ep": e, "algorithm": alg,
                               "allreduce_precision": arp, "chips_used": plan.chips}
        try:
            changes: dict[str, Any] = {}
            if n is not None:
                changes["count"] = n
            if lk is not None:
                changes["link"] = {"kind": lk} if isinstance(lk, str) else lk
            sys_ = system_with(base, **changes) if changes else base
            key = (t, p, m, e)  # what a chip's shard depends on
            if key not in shards:
                # an expert group's ep/tp replicas (one without expert parallelism)
                r = max(e // t, 1)
                try:
                    shards[key] = simulate_shards(sys_, workload, Plan(t, p, r, m, e),
                                                  memory=memory, count=t * p * r)
                except NpusimError as exc:
                    shards[key] = exc
            got = shards[key]
            if isinstance(got, NpusimError):
                raise got
            res = run_step(sys_, workload, plan, *got, algorithm=alg, memory=memory,
                           allreduce_precision=arp)
            s = res.summary()
            row.update({c: s[c] for c in SWEEP_COLUMNS})
            row["error"] = None
        except NpusimError as exc:
            row.update(dict.fromkeys(SWEEP_COLUMNS, float("nan")))
            row["error"] = " ".join(str(exc).split())
        rows.append(row)
    return pd.DataFrame(rows)
