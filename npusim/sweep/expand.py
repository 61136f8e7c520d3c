"""Expanding a sweep into design points, and building each point's chip.

Points are plain dicts ``{axis name: value}`` in a fixed order, produced lazily (a generator):

* ``grid``: the Cartesian product of dimensions (``itertools.product``), the first axis
  varying slowest; axes that share a ``group`` form one dimension and are zipped;
* ``zip``: the i-th value of every axis;
* ``random``: each dimension drawn uniformly, ``samples`` times, from
  ``numpy.random.default_rng(seed)``;
* ``lhs``: a Latin hypercube: each dimension's unit interval is cut into ``samples`` strata,
  each stratum used exactly once, in a random order, at a random position inside it.

A dimension with a value list maps a unit draw ``u`` to index ``floor(u * len)``; a range axis
maps it linearly (or logarithmically with ``log: true``) onto ``low..high``, rounded when the
axis is integer. Sampled duplicates are dropped (the first is kept), so a sampled sweep can
have fewer than ``samples`` points.

Constraints (:mod:`npusim.sweep.constraints`) are applied as the points stream past; one
that cannot be evaluated at a point is a :class:`~npusim.errors.SpecError` naming the file,
the constraint's line, its text and the point. A sweep past
:data:`~npusim.sweep.spec.MAX_RUNS` runs is refused before any point is made.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from npusim.errors import Issue, SpecError
from npusim.spec.arch import Chip
from npusim.spec.yamlio import issues_from_validation
from npusim.sweep.constraints import ConstraintError, compile_constraint
from npusim.sweep.keypath import set_path
from npusim.sweep.spec import MAX_RUNS, Axis, Sweep

__all__ = [
    "Pruned",
    "build_chip",
    "chip_data",
    "describe",
    "expand",
    "iter_points",
    "workload_overrides",
]


def _cast(axis: Axis, x: float) -> Any:
    return round(x) if axis.integer else x


def _from_unit(axis: Axis, u: float) -> Any:
    assert axis.low is not None and axis.high is not None
    if axis.log:
        x = math.exp(math.log(axis.low) + u * (math.log(axis.high) - math.log(axis.low)))
    else:
        x = axis.low + u * (axis.high - axis.low)
    return _cast(axis, min(max(x, axis.low), axis.high))


def _rows(dim: list[Axis]) -> list[tuple[Any, ...]]:
    return list(zip(*(a.values or () for a in dim), strict=True))


def _sampled(sweep: Sweep, dims: list[list[Axis]]) -> Iterator[dict[str, Any]]:
    """Draw every dimension's unit numbers up front (one array each, in the fixed order
    that makes a seed reproducible), then build the points one at a time."""
    n = int(sweep.samples or 0)
    rng = np.random.default_rng(sweep.seed)
    draws = [rng.random(n) if sweep.mode == "random" else (rng.permutation(n) + rng.random(n)) / n
             for _ in dims]
    rows = [_rows(dim) if dim[0].values is not None else [] for dim in dims]
    seen: set[str] = set()
    for i in range(n):
        p: dict[str, Any] = {}
        for dim, u, dim_rows in zip(dims, draws, rows, strict=True):
            if dim[0].values is None:
                p[dim[0].name] = _from_unit(dim[0], float(u[i]))
            else:
                row = dim_rows[min(int(u[i] * len(dim_rows)), len(dim_rows) - 1)]
                p.update(zip((a.name for a in dim), row, strict=True))
        ident = json.dumps(p, sort_keys=True, default=str)
        if ident not in seen:
            seen.add(ident)
            yield p


def _all_points(sweep: Sweep) -> Iterator[dict[str, Any]]:
    """Every point before constraints, one at a time."""
    runs = sweep.size() * max(len(sweep.workloads), 1)
    if runs > MAX_RUNS:  # a Sweep built in Python skips the file's check
        raise SpecError(Issue("axes", f"{sweep.size():,} points (before constraints) x "
                              f"{len(sweep.workloads)} workloads = {runs:,} runs is past the "
                              f"limit of {MAX_RUNS:,}"), sweep.source)
    dims = sweep.dimensions()
    if not dims:
        yield {}
    elif sweep.mode in ("grid", "zip"):
        names = [[a.name for a in dim] for dim in dims]
        for combo in itertools.product(*(_rows(dim) for dim in dims)):
            p: dict[str, Any] = {}
            for dim_names, row in zip(names, combo, strict=True):
                p.update(zip(dim_names, row, strict=True))
            yield p
    else:
        yield from _sampled(sweep, dims)


@dataclass
class Pruned:
    """How many points the constraints have dropped so far (filled while iterating)."""

    count: int = 0


def iter_points(sweep: Sweep, pruned: Pruned | None = None) -> Iterator[dict[str, Any]]:
    """The sweep's points that satisfy every constraint, lazily; ``pruned`` counts the rest."""
    checks = []
    for i, text in enumerate(sweep.constraints):
        line = sweep.constraint_lines[i] if i < len(sweep.constraint_lines) else None
        try:
            checks.append((i, line, compile_constraint(text, sweep.axis_names)))
        except ConstraintError as exc:
            raise SpecError(Issue(f"constraints[{i}]", f"{text!r}: {exc}", line),
                            sweep.source) from None
    for p in _all_points(sweep):
        for i, line, check in checks:
            try:
                ok = check(p)
            except ConstraintError as exc:
                raise SpecError(Issue(f"constraints[{i}]", f"{check.text!r} cannot be "
                                      f"evaluated at {p}: {exc}", line), sweep.source) from None
            if not ok:
                if pruned is not None:
                    pruned.count += 1
                break
        else:
            yield p


def expand(sweep: Sweep) -> tuple[list[dict[str, Any]], int]:
    """The sweep's points after constraints (as a list), and how many the constraints
    pruned."""
    pruned = Pruned()
    points = list(iter_points(sweep, pruned))
    return points, pruned.count


def describe(sweep: Sweep) -> str:
    """One paragraph: the mode, axes, points (and how many constraints prune), runs, base."""
    pruned = Pruned()
    n = sum(1 for _ in iter_points(sweep, pruned))
    how = sweep.mode if sweep.mode in ("grid", "zip") else \
        f"{sweep.mode} ({sweep.samples} samples, seed {sweep.seed})"
    axes = ", ".join(sweep.axis_names) or "no axes"
    resident = "" if sweep.weights_resident == "auto" else \
        f", weights resident {sweep.weights_resident}"
    text = (f"{how} over {len(sweep.axes)} axes ({axes}): {n} points"
            f"{f' ({pruned.count} pruned by constraints)' if pruned.count else ''} x "
            f"{len(sweep.workloads)} workloads ({', '.join(sweep.labels)}) = "
            f"{n * len(sweep.workloads)} runs; "
            f"{'system' if sweep.is_system else 'base'} {sweep.base.get('name')!r}, "
            f"memory {sweep.memory}{resident}")
    for note in sweep.notes:
        text += f"\n  note: {note}"
    return text


def chip_data(sweep: Sweep, point: dict[str, Any]) -> dict[str, Any]:
    """The base chip data with the point's chip axes set."""
    data = copy.deepcopy(sweep.base)
    for a in sweep.axes:
        if a.is_chip and a.name in point:
            set_path(data, a.key, point[a.name])
    return data


def workload_overrides(sweep: Sweep, point: dict[str, Any]) -> dict[str, Any]:
    """The point's workload options (``workload.batch`` → ``{"batch": ...}``)."""
    return {a.option: point[a.name] for a in sweep.axes if a.is_workload and a.name in point}


def build_chip(sweep: Sweep, point: dict[str, Any]) -> Chip:
    """The point's validated chip; an invalid one is a SpecError naming every problem."""
    try:
        return Chip.model_validate(chip_data(sweep, point))
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, {}), f"chip of point {point}") from None
