"""Executing runs: one simulation per task, in this process, on a local pool or on Dask.

A :class:`Task` carries what a worker needs (the chip as data, the workload's digest, the
memory model, where weights live; a system run its system and plan); :func:`run_task`
simulates it and never raises for a bad point. :func:`execute` runs a list of tasks and
calls ``done(task, outcome)`` in the calling process as each finishes:

* ``workers=0`` (or a single task): in this process, one after another;
* local worker processes (``concurrent.futures.ProcessPoolExecutor``, default
  ``os.cpu_count()`` workers); the workloads are sent once per process by the pool's
  initializer, each task carries only its chip. A worker that dies (segfault, OOM kill)
  breaks the pool; the unfinished runs are resubmitted to a fresh pool, up to 3 rounds.
  Workers end when the sweep process dies, even by SIGKILL (``PR_SET_PDEATHSIG`` on Linux,
  and a thread in each worker that watches its parent), so a killed sweep leaves no
  orphans;
* a Dask cluster (``client``): workloads are scattered to every worker once, tasks are
  submitted with ``retries``, and the scheduler moves the runs of a worker that died to the
  others; a run whose future fails anyway (cancelled because a dependency was lost,
  KilledWorker) is resubmitted, up to 3 rounds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pandas as pd

from npusim.errors import NpusimError
from npusim.extras import require
from npusim.spec.arch import Chip
from npusim.sweep.columns import LAYER_COLUMNS, SUMMARY_METRICS
from npusim.sweep.systems import run_system_task
from npusim.workloads.ir import Workload

__all__ = ["Done", "Task", "execute", "run_task"]

# ---------------------------------------------------------------------------------------
# One run (executed in a worker)


@dataclass(frozen=True)
class Task:
    """One simulation: a chip (as JSON data), a workload by digest, a memory model, where
    weights live (``auto``, ``yes`` or ``no``)."""

    key: str
    chip: dict[str, Any]
    workload_id: str
    memory: str
    weights_resident: str = "auto"
    #: a system run: the system's data (``chip`` is then its chip) and the plan
    system: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None


def _layer_table(df: pd.DataFrame) -> dict[str, list[Any]]:
    cols = [c for c in LAYER_COLUMNS if c in df.columns]
    return {c: df[c].tolist() for c in cols}


def run_task(task: Task, workload: Workload) -> dict[str, Any]:
    """Simulate one run; never raises for a bad point (the error goes into the entry)."""
    from npusim.simulate import simulate

    try:
        if task.system is not None:
            assert task.plan is not None
            metrics = run_system_task(task.system, task.chip, task.plan, workload,
                                      task.workload_id, task.memory, task.weights_resident)
            return {"status": "ok", "metrics": metrics}
        chip = Chip.model_validate(task.chip)
        resident = {"auto": None, "yes": True, "no": False}[task.weights_resident]
        res = simulate(chip, workload, memory=task.memory, weights_resident=resident)
        summary = res.summary()
        metrics = {name: float(summary[k]) for k, name in SUMMARY_METRICS.items()
                   if k in summary}
        return {"status": "ok", "metrics": metrics, "layers": _layer_table(res.layers)}
    except (NpusimError, ValueError) as exc:  # pydantic ValidationError is a ValueError
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "cacheable": True}
    except Exception as exc:  # recorded, not cached: retried next run
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"status": "error", "error": tb, "cacheable": False}


# Per-process workloads for the local pool, set once by the initializer.
_WORKER_WORKLOADS: dict[str, Workload] = {}


def _die_with_parent(parent: int) -> None:
    """End this worker when the sweep process ``parent`` dies, even by SIGKILL (which runs
    no cleanup in the parent): the kernel sends SIGKILL on the parent's death
    (``PR_SET_PDEATHSIG``, Linux), and a daemon thread watches for the parent to be gone
    where that is not available or the parent is not the one who forked us."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass
    first = os.getppid()

    def parent_gone() -> bool:
        if os.getppid() != first:  # reparented: whoever forked us is gone
            return True
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def watch() -> None:
        while not parent_gone():
            time.sleep(0.5)
        os._exit(1)

    if parent_gone():  # died before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, name="npusim-parent-watch", daemon=True).start()


def _init_worker(workloads: dict[str, Workload], parent: int | None = None) -> None:
    if parent is not None:
        _die_with_parent(parent)
    _WORKER_WORKLOADS.clear()
    _WORKER_WORKLOADS.update(workloads)


def _run_in_worker(task: Task) -> dict[str, Any]:
    return run_task(task, _WORKER_WORKLOADS[task.workload_id])


# ---------------------------------------------------------------------------------------
# Executors: each calls done(task, outcome) as runs finish.

Done = Callable[[Task, dict[str, Any]], None]


def _execute_inline(tasks: list[Task], workloads: dict[str, Workload], done: Done) -> None:
    for t in tasks:
        done(t, run_task(t, workloads[t.workload_id]))


def _execute_local(tasks: list[Task], workloads: dict[str, Workload], workers: int,
                   done: Done, rounds: int = 3) -> None:
    pending = {t.key: t for t in tasks}
    for _ in range(rounds):
        if not pending:
            return
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                                   initializer=_init_worker,
                                   initargs=(workloads, os.getpid()))
        futures = {pool.submit(_run_in_worker, t): t for t in pending.values()}
        try:
            not_done = set(futures)
            while not_done:
                finished, not_done = wait(not_done, return_when=FIRST_COMPLETED)
                for fut in finished:
                    t = futures[fut]
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        continue  # resubmitted in the next round
                    pending.pop(t.key, None)
                    done(t, outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    for t in pending.values():
        done(t, {"status": "error", "error": "worker process died (tried 3 times)",
                 "cacheable": False})


def _execute_dask(tasks: list[Task], workloads: dict[str, Workload], client: Any,
                  done: Done, retries: int = 2, rounds: int = 3) -> None:
    """Submit every run with ``retries``; runs whose future fails anyway (a worker died
    and took a dependency with it: cancelled, KilledWorker) are resubmitted, with the
    workloads scattered again, for up to ``rounds`` rounds."""
    import asyncio

    as_completed = require("dask.distributed").as_completed

    pending = {t.key: t for t in tasks}
    last_error: dict[str, str] = {}
    for _ in range(rounds):
        if not pending:
            return
        needed = {t.workload_id for t in pending.values()}
        scattered = {wid: client.scatter(wl, broadcast=True)
                     for wid, wl in workloads.items() if wid in needed}
        futures = {}
        for t in pending.values():
            fut = client.submit(run_task, t, scattered[t.workload_id], pure=False,
                                retries=retries)
            futures[fut.key] = (fut, t)
        try:
            for fut in as_completed([f for f, _ in futures.values()]):
                t = futures[fut.key][1]
                try:
                    outcome = fut.result()
                except (Exception, asyncio.CancelledError) as exc:  # retried next round
                    last_error[t.key] = f"{type(exc).__name__}: {exc}"
                    continue
                pending.pop(t.key, None)
                done(t, outcome)
        except BaseException:
            client.cancel([f for f, _ in futures.values()])
            raise
    for t in pending.values():
        done(t, {"status": "error", "cacheable": False,
                 "error": f"{last_error.get(t.key, 'lost')} (tried {rounds} times)"})


def execute(tasks: list[Task], workloads: dict[str, Workload], done: Done, *,
             workers: int | None, client: Any) -> None:
    """Run ``tasks`` on Dask (``client``), in this process or on a local pool."""
    if not tasks:
        return
    wls = {t.workload_id: workloads[t.workload_id] for t in tasks}
    if client is not None:
        _execute_dask(tasks, wls, client, done)
        return
    n = (os.cpu_count() or 1) if workers is None else workers
    if n <= 0 or len(tasks) == 1:
        _execute_inline(tasks, wls, done)
    else:
        _execute_local(tasks, wls, n, done)
