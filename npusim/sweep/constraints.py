"""Sweep constraints: a small expression language over axis names, with bounded cost.

A constraint (``rows * cols <= 65536``, ``sram_size >= 4 MiB``, ``dram_standard in
("HBM3-6400",)``) is parsed with :mod:`ast` and run by a small interpreter; nothing is ever
passed to ``eval``. Allowed: numbers, strings, names (axes and the units of
:data:`UNIT_NAMES`), arithmetic on numbers (``+ - * / // % **``), comparisons
(``< <= > >= == != in, not in``), ``and or not`` and tuples/lists.

Every evaluation costs a bounded amount of time and memory, whatever the text:

* the text is at most :data:`MAX_TEXT` characters, its tree at most :data:`MAX_NODES` nodes
  and :data:`MAX_DEPTH` levels deep (measured without recursion, so ``-----…1`` cannot
  exhaust the stack);
* arithmetic takes numbers only (``"x" * 10**9`` is refused, not allocated);
* an integer may hold at most :data:`MAX_INT_BITS` bits, checked *before* ``**`` computes
  (a tower such as ``((10**64)**64)**64 ...`` is refused at its first step past the
  limit, before Python spends minutes and gigabytes on exact big integers) and
  after every other operation;
* parts that use no axis are evaluated once when the constraint is compiled, so one that
  can never be evaluated is refused with the file rather than at the first point.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT_BITS", "MAX_NODES", "MAX_TEXT", "UNIT_NAMES", "Constraint",
           "ConstraintError", "compile_constraint"]

#: Names a constraint may use besides the axis names.
UNIT_NAMES: dict[str, float] = {
    "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "kB": 1e3, "MB": 1e6, "GB": 1e9,
    "kHz": 1e3, "MHz": 1e6, "GHz": 1e9,
}
MAX_TEXT = 1000
MAX_NODES = 300
MAX_DEPTH = 40
#: far past any chip quantity (2**64 bytes is 16 EiB), far below a slow big integer
MAX_INT_BITS = 256

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


class ConstraintError(ValueError):
    """A constraint is not allowed, or cannot be evaluated at a point."""


def _shape(tree: ast.AST) -> tuple[int, int]:
    """Node count and depth of ``tree``, walked with an explicit stack."""
    nodes, depth = 0, 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        nodes += 1
        depth = max(depth, d)
        if nodes > MAX_NODES or depth > MAX_DEPTH:
            break
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return nodes, depth


def _check(node: ast.AST, names: set[str]) -> None:
    """Reject every node outside the language (depth is bounded, so recursion is safe)."""
    children: list[ast.AST] = []
    if isinstance(node, ast.Expression):
        children = [node.body]
    elif isinstance(node, ast.BoolOp):
        children = list(node.values)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BIN:
            raise ConstraintError(f"operator {type(node.op).__name__} is not allowed")
        children = [node.left, node.right]
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ConstraintError(f"operator {type(node.op).__name__} is not allowed")
        children = [node.operand]
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _CMP:
                raise ConstraintError(f"comparison {type(op).__name__} is not allowed")
        children = [node.left, *node.comparators]
    elif isinstance(node, ast.Name):
        if node.id not in names and node.id not in UNIT_NAMES:
            raise ConstraintError(f"unknown name {node.id!r} (axes: "
                                  f"{', '.join(sorted(names))}; units: {', '.join(UNIT_NAMES)})")
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise ConstraintError(f"constant {node.value!r} is not allowed")
        _bounded(node.value)
    elif isinstance(node, (ast.Tuple, ast.List)):
        children = list(node.elts)
    else:
        raise ConstraintError(f"{type(node).__name__} is not allowed in a constraint (only "
                              "arithmetic, comparisons and and/or/not over axis names)")
    for child in children:
        _check(child, names)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float))  # bool is an int: True + 1 is harmless


def _bounded(x: Any) -> Any:
    if isinstance(x, int) and x.bit_length() > MAX_INT_BITS:
        raise ConstraintError(f"integer past {MAX_INT_BITS} bits")
    return x


def _power(base: Any, exp: Any) -> Any:
    """``base ** exp`` refused before computing when its integer result would be too big."""
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 \
            and (abs(base) > 1 and (abs(base).bit_length() - 1) * exp > MAX_INT_BITS):
        shown = str(base) if abs(base) < 10**12 else f"a {abs(base).bit_length()}-bit integer"
        raise ConstraintError(f"{shown} ** {exp} is past {MAX_INT_BITS} bits")
    if isinstance(exp, float) or isinstance(base, float):
        return math.pow(base, exp)  # OverflowError instead of a huge float loop
    return base ** exp


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for v in node.values:
            result = _eval(v, env)
            if bool(result) != isinstance(node.op, ast.And):
                return result
        return result
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if not (_is_number(left) and _is_number(right)):
            raise ConstraintError(f"arithmetic takes numbers, got {type(left).__name__} "
                                  f"and {type(right).__name__}")
        if isinstance(node.op, ast.Pow):
            return _bounded(_power(left, right))
        return _bounded(_BIN[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env)
        if not isinstance(node.op, ast.Not) and not _is_number(operand):
            raise ConstraintError(f"a sign takes a number, got {type(operand).__name__}")
        return _UNARY[type(node.op)](operand)
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
    raise ConstraintError(f"{type(node).__name__} is not allowed")  # pragma: no cover


@dataclass(frozen=True)
class Constraint:
    """A parsed, checked constraint; call it with a point to test it."""

    text: str
    tree: ast.Expression

    def __call__(self, point: dict[str, Any]) -> bool:
        """Whether ``point`` satisfies it; :class:`ConstraintError` says why it cannot tell."""
        try:
            return bool(_eval(self.tree, point))
        except ConstraintError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ConstraintError(f"{type(exc).__name__}: {exc}") from None


def compile_constraint(text: str, names: list[str] | set[str]) -> Constraint:
    """Parse and check ``text``; :class:`ConstraintError` names what is not allowed."""
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ConstraintError(f"longer than {MAX_TEXT} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConstraintError(f"not an expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ConstraintError(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    nodes, depth = _shape(tree)
    if nodes > MAX_NODES:
        raise ConstraintError(f"more than {MAX_NODES} terms")
    if depth > MAX_DEPTH:
        raise ConstraintError(f"nested too deeply (at most {MAX_DEPTH} levels)")
    _check(tree, set(names))
    _fold_constants(tree, set(names))
    return Constraint(text, tree)


def _fold_constants(tree: ast.Expression, names: set[str]) -> None:
    """Evaluate once every arithmetic part that uses no axis, so one that can never be
    evaluated (``2 ** 300``, ``'x' * 10**9``, ``1 / 0``) is refused with the file, not at
    the first point."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)) and not any(
                isinstance(n, ast.Name) and n.id in names for n in ast.walk(node)):
            try:
                _eval(node, {})
            except ConstraintError:
                raise
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise ConstraintError(f"{type(exc).__name__}: {exc}") from None
