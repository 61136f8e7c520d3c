"""Expanding a sweep into design points, and building each point's chip.

Points are plain dicts ``{axis name: value}`` in a fixed order:

* ``grid``: the Cartesian product of dimensions, the first axis varying slowest; axes that
  share a ``group`` form one dimension and are zipped;
* ``zip``: the i-th value of every axis;
* ``random``: each dimension drawn uniformly, ``samples`` times, from
  ``numpy.random.default_rng(seed)``;
* ``lhs``: a Latin hypercube: each dimension's unit interval is cut into ``samples`` strata,
  each stratum used exactly once, in a random order, at a random position inside it.

A dimension with a value list maps a unit draw ``u`` to index ``floor(u * len)``; a range axis
maps it linearly (or logarithmically with ``log: true``) onto ``low..high``, rounded when the
axis is integer. Sampled duplicates are dropped (the first is kept), so a sampled sweep can
have fewer than ``samples`` points.

Constraints are expressions over axis names, parsed with :mod:`ast` and evaluated by a small
interpreter that allows only numbers, strings, names, arithmetic (``+ - * / // % **``),
comparisons (``< <= > >= == != in``), ``and or not`` and tuples/lists of constants. Nothing
is ever passed to ``eval``. Points for which a constraint is false are pruned.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from npusim.errors import SpecError
from npusim.spec.arch import Chip
from npusim.spec.yamlio import issues_from_validation
from npusim.sweep.spec import Axis, Sweep, set_path

__all__ = [
    "UNIT_NAMES",
    "Constraint",
    "build_chip",
    "chip_data",
    "compile_constraint",
    "discretise",
    "expand",
    "workload_overrides",
]

#: Names a constraint may use besides the axis names.
UNIT_NAMES: dict[str, float] = {
    "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "kB": 1e3, "MB": 1e6, "GB": 1e9,
    "kHz": 1e3, "MHz": 1e6, "GHz": 1e9,
}

_BIN: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMP: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def _check(node: ast.AST, names: set[str]) -> None:
    """Reject every node outside the small allowed language."""
    if isinstance(node, ast.Expression):
        _check(node.body, names)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, names)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BIN:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, names)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _CMP:
                raise ValueError(f"comparison {type(op).__name__} is not allowed")
        for v in (node.left, *node.comparators):
            _check(v, names)
    elif isinstance(node, ast.Name):
        if node.id not in names and node.id not in UNIT_NAMES:
            raise ValueError(f"unknown name {node.id!r} (axes: {', '.join(sorted(names))}; "
                             f"units: {', '.join(UNIT_NAMES)})")
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise ValueError(f"constant {node.value!r} is not allowed")
    elif isinstance(node, (ast.Tuple, ast.List)):
        for v in node.elts:
            _check(v, names)
    else:
        raise ValueError(f"{type(node).__name__} is not allowed in a constraint "
                         "(only arithmetic, comparisons and and/or/not over axis names)")


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for v in node.values:
                result = _eval(v, env)
                if not result:
                    return result
            return result
        for v in node.values:
            result = _eval(v, env)
            if result:
                return result
        return result
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Pow) and (not isinstance(right, (int, float))
                                             or abs(right) > 64):
            raise ValueError("exponents are limited to 64")
        return _BIN[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else UNIT_NAMES[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(v, env) for v in node.elts)
    raise ValueError(f"{type(node).__name__} is not allowed")  # pragma: no cover - checked


@dataclass(frozen=True)
class Constraint:
    """A parsed, checked constraint; call it with a point to test it."""

    text: str
    tree: ast.Expression

    def __call__(self, point: dict[str, Any]) -> bool:
        try:
            return bool(_eval(self.tree, point))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise SpecError(f"constraint {self.text!r} cannot be evaluated at {point}: "
                            f"{exc}") from None


def compile_constraint(text: str, names: list[str] | set[str]) -> Constraint:
    """Parse ``text``; ``ValueError`` names what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an expression: {exc.msg}") from None
    _check(tree, set(names))
    return Constraint(text, tree)


def discretise(axis: Axis, num: int | None) -> Axis:
    """A range axis as ``num`` evenly (or log-evenly) spaced values; value axes unchanged."""
    if axis.values is not None:
        return axis
    assert axis.low is not None and axis.high is not None and num is not None
    if num == 1:
        raw = np.array([axis.low])
    elif axis.log:
        raw = np.geomspace(axis.low, axis.high, num)
    else:
        raw = np.linspace(axis.low, axis.high, num)
    vals = [_cast(axis, float(x)) for x in raw]
    return replace(axis, values=tuple(dict.fromkeys(vals)))


def _cast(axis: Axis, x: float) -> Any:
    return round(x) if axis.integer else x


def _from_unit(axis: Axis, u: float) -> Any:
    assert axis.low is not None and axis.high is not None
    if axis.log:
        x = math.exp(math.log(axis.low) + u * (math.log(axis.high) - math.log(axis.low)))
    else:
        x = axis.low + u * (axis.high - axis.low)
    return _cast(axis, min(max(x, axis.low), axis.high))


def _dimensions(sweep: Sweep) -> list[list[Axis]]:
    if sweep.mode == "zip":
        return [list(sweep.axes)] if sweep.axes else []
    dims: list[list[Axis]] = []
    by_group: dict[str, list[Axis]] = {}
    for a in sweep.axes:
        if a.group is None:
            dims.append([a])
        elif a.group in by_group:
            by_group[a.group].append(a)
        else:
            by_group[a.group] = [a]
            dims.append(by_group[a.group])
    return dims


def _rows(dim: list[Axis]) -> list[tuple[Any, ...]]:
    return list(zip(*(a.values or () for a in dim), strict=True))


def _sampled(sweep: Sweep, dims: list[list[Axis]]) -> list[dict[str, Any]]:
    n = int(sweep.samples or 0)
    rng = np.random.default_rng(sweep.seed)
    columns: list[list[dict[str, Any]]] = []
    for dim in dims:
        u = rng.random(n) if sweep.mode == "random" else (rng.permutation(n) + rng.random(n)) / n
        if dim[0].values is None:
            a = dim[0]
            columns.append([{a.name: _from_unit(a, float(x))} for x in u])
        else:
            rows = _rows(dim)
            idx = np.minimum((u * len(rows)).astype(np.int64), len(rows) - 1)
            columns.append([dict(zip((a.name for a in dim), rows[i], strict=True)) for i in idx])
    points = []
    for i in range(n):
        p: dict[str, Any] = {}
        for col in columns:
            p.update(col[i])
        points.append(p)
    return points


def _ident(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, default=str)


def expand(sweep: Sweep) -> tuple[list[dict[str, Any]], int]:
    """The sweep's points after constraints, and how many the constraints pruned."""
    dims = _dimensions(sweep)
    if not dims:
        points: list[dict[str, Any]] = [{}]
    elif sweep.mode in ("grid", "zip"):
        names = [[a.name for a in dim] for dim in dims]
        points = []
        for combo in itertools.product(*(_rows(dim) for dim in dims)):
            p: dict[str, Any] = {}
            for dim_names, row in zip(names, combo, strict=True):
                p.update(zip(dim_names, row, strict=True))
            points.append(p)
    else:
        seen: set[str] = set()
        points = []
        for p in _sampled(sweep, dims):
            key = _ident(p)
            if key not in seen:
                seen.add(key)
                points.append(p)
    checks = [compile_constraint(c, sweep.axis_names) for c in sweep.constraints]
    kept = [p for p in points if all(c(p) for c in checks)]
    return kept, len(points) - len(kept)


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
