"""Running a sweep: plan the points, take what the cache has, compute the rest, one table.

``run_sweep(spec)`` expands the sweep, builds every point's chip (an invalid chip becomes a
row with its error, no simulation; a system sweep builds its system and plan instead, see
:mod:`npusim.sweep.systems`), builds each workload variant once, and keys every
(point, workload) run by content hash (:mod:`npusim.sweep.cache`). Runs whose key is cached
are read back; identical keys are computed once. The rest go to an executor
(:mod:`npusim.sweep.execute`): this process (``workers=0``), local worker processes, or a
Dask cluster (``client=`` or ``scheduler="tcp://host:8786"``).

Results are written to the cache by this process as they arrive, so an interrupted sweep
(Ctrl-C, SIGKILL) keeps every finished run and a re-run computes only the rest. A run that
raises an npusim error (the chip cannot map the layer …) is cached with its error; any
other exception is reported in the table but not cached, so the next run retries it.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from npusim.errors import NpusimError, SpecError
from npusim.spec.arch import Chip
from npusim.sweep.cache import (
    DEFAULT_CACHE_DIR,
    PointCache,
    canonical_chip,
    point_key,
    workload_digest,
)
from npusim.sweep.columns import METRIC_COLUMNS, RESERVED_COLUMNS
from npusim.sweep.execute import Task, execute, run_task
from npusim.sweep.expand import Pruned, build_chip, iter_points, workload_overrides
from npusim.sweep.schema import WorkloadEntry
from npusim.sweep.spec import Sweep, load_sweep, sweep_from_data
from npusim.sweep.systems import (
    SYSTEM_METRIC_COLUMNS,
    build_system,
    plan_of,
    system_point_key,
)
from npusim.workloads.ir import Workload

__all__ = ["METRIC_COLUMNS", "RESERVED_COLUMNS", "Task", "build_workload", "layers_of", "plan", "run_sweep",
           "run_task"]

# ---------------------------------------------------------------------------------------
# Workloads


def build_workload(entry: WorkloadEntry, overrides: dict[str, Any] | None = None) -> Workload:
    """Build a sweep workload; ``overrides`` are workload axes (``batch`` or options)."""
    from npusim import workloads
    from npusim.inputs import resolve_workload

    opts = dict(entry.options)
    opts.update(overrides or {})
    batch = int(opts.pop("batch", entry.batch))
    if entry.builtin is not None:
        return workloads.builtin(entry.builtin, batch=batch, **opts)
    if entry.hf_config is not None:
        from npusim.workloads.llm import from_hf_config
        from npusim.workloads.precision import parse_weights

        if isinstance(opts.get("weights"), str):  # an axis value: experts=mxfp4,default=bf16
            opts["weights"] = parse_weights(opts["weights"])
        return from_hf_config(entry.hf_config, batch=batch, **opts)
    if opts:
        raise NpusimError(f"workload {entry.default_label()!r} takes no options "
                          f"({', '.join(opts)}); only batch")
    if entry.inline is not None:
        from npusim.spec.workload import workload_from_data

        wl = workload_from_data(entry.inline, source=f"inline workload "
                                f"{entry.default_label()!r}")
        return wl.with_batch(batch) if batch != 1 else wl
    return resolve_workload(entry.file, batch=batch)


# ---------------------------------------------------------------------------------------
# Planning and the table


@dataclass
class _Run:
    point: int
    values: dict[str, Any]
    label: str
    chip: Chip | None
    key: str | None
    error: str | None = None


@dataclass
class Plan:
    """Everything a sweep will run: rows (point x workload), tasks by key, workloads."""

    sweep: Sweep
    runs: list[_Run]
    workloads: dict[str, Workload]
    tasks: dict[str, Task]
    pruned: int


def plan(sweep: Sweep) -> Plan:
    """Expand ``sweep`` and key every run; builds chips and workloads, simulates nothing."""
    pruned = Pruned()
    labels = sweep.labels
    built: dict[tuple[int, str], tuple[str | None, str | None]] = {}
    workloads: dict[str, Workload] = {}
    runs: list[_Run] = []
    tasks: dict[str, Task] = {}
    for i, values in enumerate(iter_points(sweep, pruned)):
        system = None
        try:
            if sweep.is_system:
                system = build_system(sweep, values)
                chip: Chip | None = system.chip_spec
            else:
                chip = build_chip(sweep, values)
            chip_err = None
        except SpecError as exc:
            what = "system" if sweep.is_system else "chip"
            chip, chip_err = None, f"invalid {what}: " + "; ".join(
                f"{i.path}: {i.message}" if i.path else i.message for i in exc.issues)
        overrides = workload_overrides(sweep, values)
        okey = repr(sorted(overrides.items()))
        for w, (entry, label) in enumerate(zip(sweep.workloads, labels, strict=True)):
            if (w, okey) not in built:
                try:
                    wl = build_workload(entry, overrides)
                    digest = workload_digest(wl)
                    workloads[digest] = wl
                    built[(w, okey)] = (digest, None)
                except (NpusimError, ValueError, TypeError) as exc:
                    built[(w, okey)] = (None, f"invalid workload: {exc}")
            wid, wl_err = built[(w, okey)]
            if chip is None or wid is None:
                runs.append(_Run(i, values, label, chip, None, chip_err or wl_err))
                continue
            if system is not None:
                parallel = plan_of(sweep, values)
                key = system_point_key(system, wid, parallel, sweep.memory,
                                       sweep.weights_resident, workload=workloads[wid])
                task = Task(key, chip.model_dump(mode="json"), wid, sweep.memory,
                            sweep.weights_resident, system.model_dump(mode="json"), parallel)
            else:
                key = point_key(chip, wid, sweep.memory,
                                weights_resident=sweep.weights_resident)
                task = Task(key, chip.model_dump(mode="json"), wid, sweep.memory,
                            sweep.weights_resident)
            runs.append(_Run(i, values, label, chip, key))
            tasks.setdefault(key, task)
    return Plan(sweep, runs, workloads, tasks, pruned.count)


def _scalar(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        import json

        return json.dumps(v, sort_keys=True)
    return v


def _row(run: _Run, sweep: Sweep, outcome: dict[str, Any] | None) -> dict[str, Any]:
    from npusim.area import chip_area_mm2

    row: dict[str, Any] = {"point": run.point, "workload": run.label}
    row.update({name: _scalar(run.values.get(name)) for name in sweep.axis_names})
    error = run.error
    metrics: dict[str, float] = {}
    if outcome is not None:
        if outcome["status"] == "ok":
            metrics = dict(outcome["metrics"])
        else:
            error = outcome["error"]
    row["status"] = "error" if error else "ok"
    row["error"] = error
    if sweep.is_system:
        return _system_row(row, run, metrics)
    for col in METRIC_COLUMNS:
        row[col] = math.nan
    row.update(metrics)
    if run.chip is not None:
        area = chip_area_mm2(run.chip)
        row["area_mm2"] = area["total_mm2"]
        for part in ("array", "vector", "sram", "dram_phy", "dram_controller"):
            row[f"area_{part}_mm2"] = area[f"{part}_mm2"]
        row["peak_tops"] = run.chip.peak_ops_per_second() / 1e12
    if metrics:
        row["dram_bytes"] = metrics["dram_read_bytes"] + metrics["dram_write_bytes"]
        thr = metrics["throughput"]
        row["perf_per_mm2"] = thr / row["area_mm2"]
        row["tops_per_mm2"] = metrics["effective_tops"] / row["area_mm2"]
        power = metrics["average_power_w"]
        row["perf_per_w"] = thr / power if power > 0 else math.nan
    row["key"] = run.key
    return row


def _system_row(row: dict[str, Any], run: _Run, metrics: dict[str, float]) -> dict[str, Any]:
    """A system run's columns: its step's metrics, and the area and peak of the chips it
    used."""
    from npusim.area import chip_area_mm2

    row.update(dict.fromkeys(SYSTEM_METRIC_COLUMNS, math.nan))
    row.update(metrics)
    if metrics and run.chip is not None:
        n = metrics["chips_used"]
        row["area_mm2"] = n * chip_area_mm2(run.chip)["total_mm2"]
        row["peak_tops"] = n * run.chip.peak_ops_per_second() / 1e12
    row["key"] = run.key
    return row


def _table(p: Plan, outcomes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = [_row(r, p.sweep, outcomes.get(r.key) if r.key else None) for r in p.runs]
    df = pd.DataFrame(rows)
    for name in p.sweep.axis_names:  # mixed-type axis columns as text (Parquet needs one type)
        kinds = {type(v) for v in df[name] if v is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:
            df[name] = df[name].astype(str)
    return df


# ---------------------------------------------------------------------------------------
# The entry point


def _as_sweep(spec: Sweep | str | os.PathLike[str] | dict[str, Any]) -> Sweep:
    if isinstance(spec, Sweep):
        return spec
    if isinstance(spec, dict):
        return sweep_from_data(spec)
    return load_sweep(Path(spec))


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", desc="sweep", disable=not enabled or total == 0,
                file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


#: Metrics a cached entry must hold for the table to be built from it.
_REQUIRED = ("latency_s", "energy_j", "throughput", "effective_tops", "average_power_w",
             "dram_read_bytes", "dram_write_bytes")
_REQUIRED_SYSTEM = ("latency_s", "energy_j", "throughput", "chips_used")
#: seconds between looks at runs another sweep on the same cache is computing
CLAIM_POLL_S = 0.5


def run_sweep(spec: Sweep | str | os.PathLike[str] | dict[str, Any], *,
              workers: int | None = None, client: Any = None, scheduler: str | None = None,
              cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE_DIR,
              progress: bool = True, limit: int | None = None) -> pd.DataFrame:
    """Run a sweep and return its table: one row per point x workload.

    ``spec`` is a :class:`Sweep`, a sweep YAML path or the sweep as a dict. ``workers`` is
    the number of local processes (default ``os.cpu_count()``; 0 runs in this process);
    ``client`` (a ``dask.distributed.Client``) or ``scheduler`` (its address) runs on Dask
    instead. ``cache_dir=None`` disables the cache. ``limit`` computes at most that many
    new runs (the rest stay missing from the table's metrics, with status ``pending``).

    Runs another live sweep has claimed on the same cache are not computed again: this one
    waits for their entries (and takes a claim over if its sweep dies).

    The table has ``point``, ``workload``, one column per axis, ``status`` (ok, error,
    pending), ``error``, the metrics of :data:`METRIC_COLUMNS` and the cache ``key``.
    ``df.attrs["sweep"]`` counts runs computed, read from cache, failed and pruned.
    """
    sweep = _as_sweep(spec)
    p = plan(sweep)
    cache = PointCache(cache_dir)
    required = _REQUIRED_SYSTEM if sweep.is_system else _REQUIRED
    outcomes: dict[str, dict[str, Any]] = {}
    missing: list[Task] = []
    for key, task in p.tasks.items():
        entry = cache.get(key, required)
        if entry is not None:
            outcomes[key] = entry
        else:
            missing.append(task)
    cached = len(outcomes)
    if limit is not None:
        missing = missing[:max(limit, 0)]
    bar = _progress(len(missing), progress)
    computed = 0

    def done(task: Task, outcome: dict[str, Any]) -> None:
        nonlocal computed
        outcomes[task.key] = outcome
        computed += 1
        if outcome["status"] == "ok" or outcome.get("cacheable"):
            entry = {**outcome, "chip": canonical_chip(Chip.model_validate(task.chip)),
                     "workload": task.workload_id, "memory": task.memory}
            if task.system is not None:
                entry.update(system=task.system, plan=task.plan)
            entry.pop("cacheable", None)
            cache.put(task.key, entry)
        cache.release(task.key)
        bar.update(1)

    own_client = None
    claimed: list[Task] = []
    try:
        if missing and client is None and scheduler is not None:
            from npusim.extras import require

            Client = require("dask.distributed").Client
            own_client = client = Client(scheduler)
        waiting = missing
        warned = False
        while waiting:
            mine, others = [], []
            for t in waiting:
                entry = cache.get(t.key, required)
                if entry is not None:  # another sweep finished it meanwhile
                    outcomes[t.key] = entry
                    cached += 1
                    bar.update(1)
                elif cache.claim(t.key):
                    mine.append(t)
                else:
                    others.append(t)
            if others and not warned:
                warned = True
                warnings.warn(f"{len(others)} runs are being computed by another sweep on "
                              f"{cache.dir}; waiting for them (a .claim file of a dead "
                              "sweep is taken over)", stacklevel=2)
            claimed.extend(mine)
            execute(mine, p.workloads, done, workers=workers, client=client)
            waiting = others
            if waiting and not mine:
                time.sleep(CLAIM_POLL_S)
    finally:
        for t in claimed:
            cache.release(t.key)
        bar.close()
        if own_client is not None:
            own_client.close()
    df = _table(p, outcomes)
    if limit is not None:
        absent = df["key"].notna() & ~df["key"].isin(list(outcomes))
        df.loc[absent, "status"] = "pending"
    df.attrs["sweep"] = {
        "name": sweep.name, "axes": sweep.axis_names, "points": len({r.point for r in p.runs}),
        "runs": len(df), "unique_runs": len(p.tasks), "computed": computed, "cached": cached,
        "errors": int((df["status"] == "error").sum()), "pruned": p.pruned,
    }
    return df


def layers_of(df_row: pd.Series | dict[str, Any],
              cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE_DIR) -> pd.DataFrame:
    """The per-layer breakdown of one table row, read from the cache."""
    key = df_row["key"]
    layers = PointCache(cache_dir).get_layers(str(key)) if isinstance(key, str) else None
    if layers is None:
        raise NpusimError(f"no cached per-layer result for run {key!r} (a failed run, or "
                          "re-run the sweep with the same cache directory)")
    return pd.DataFrame(layers)

