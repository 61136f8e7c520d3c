"""Safe YAML reading that remembers the line of every key, and pydantic errors as Issues.

``load_yaml(path)`` returns the plain data and a map from key path (``cores.core.sram.size``)
to 1-based line. ``validate(model, data, lines, source)`` builds a pydantic model and turns
every validation error into an :class:`~npusim.errors.Issue` with its path and line, raising
one :class:`~npusim.errors.SpecError` that carries all of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from npusim.errors import Issue, SpecError

__all__ = ["LineMap", "issues_from_validation", "load_yaml", "loads_yaml", "validate"]

LineMap = dict[str, int]
M = TypeVar("M", bound=BaseModel)


def _walk(node: yaml.Node, path: str, lines: LineMap) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            lines[sub] = key_node.start_mark.line + 1
            _walk(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{path}[{i}]", lines)


def loads_yaml(text: str, source: str | None = None) -> tuple[Any, LineMap]:
    """Parse YAML text with the safe loader; malformed YAML is a one-issue SpecError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(Issue("", f"malformed YAML: {problem}", line), source) from None
    lines: LineMap = {}
    if node is not None:
        _walk(node, "", lines)
    return data, lines


def load_yaml(path: str | os.PathLike[str]) -> tuple[Any, LineMap]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(Issue("", f"cannot read file: {exc.strerror}"), str(p)) from None
    return loads_yaml(text, str(p))


def _path_of(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def line_for(path: str, lines: LineMap) -> int | None:
    """Line of ``path`` or of its nearest ancestor that the file has."""
    p = path
    while p:
        if p in lines:
            return lines[p]
        cut = max(p.rfind("."), p.rfind("["))
        p = p[:cut] if cut > 0 else ""
    return lines.get("")


def issues_from_validation(exc: ValidationError, lines: LineMap, prefix: str = "") -> list[Issue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _path_of(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        elif msg.startswith("Assertion failed, "):
            msg = msg[len("Assertion failed, "):]
        got = err.get("input")
        if err["type"] not in ("missing", "extra_forbidden") and not isinstance(got, (dict, list)):
            msg = f"{msg} (got {got!r})"
        issues.append(Issue(path, msg, line_for(path, lines)))
    return issues


def validate(model: type[M], data: Any, lines: LineMap, source: str | None) -> M:
    """Build ``model`` from ``data``; every problem becomes one Issue of one SpecError."""
    if not isinstance(data, dict):
        kind = "empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(Issue("", f"expected a mapping at the top level, got {kind}", 1), source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, lines), source) from None
