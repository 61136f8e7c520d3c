"""Safe YAML reading that remembers the line of every key, and pydantic errors as Issues.

``load_yaml(path)`` returns the plain data and a map from key path (``cores.core.sram.size``)
to 1-based line. The document is composed once by PyYAML's safe loader; the line map comes
from the composed nodes' marks (an alias is never walked twice), and the loader refuses
duplicate keys, recursive aliases and alias bombs (see :mod:`npusim.limits`) before it
constructs anything. ``validate(model, data, lines, source)`` builds a pydantic model and turns
every validation error into an :class:`~npusim.errors.Issue` with its path and line, raising
one :class:`~npusim.errors.SpecError` that carries all of them.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from npusim.errors import Issue, SpecError
from npusim.limits import MAX_YAML_NODES

__all__ = ["AtPaths", "LineMap", "did_you_mean", "is_system_data", "issues_from_validation",
           "known_keys", "line_for", "load_yaml", "loads_yaml", "read_text", "validate"]

LineMap = dict[str, int]
M = TypeVar("M", bound=BaseModel)


class _Refused(Exception):
    """A composed document npusim will not construct, and the line of the node why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.issue = Issue("", message, line)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a recursive alias or a document past MAX_YAML_NODES once aliases expand.

    The composed graph shares an aliased node between its uses, so each node's expanded
    size is computed once (post-order, memoised by identity): linear in the file, however
    large the expansion. A node met again while it is still open is its own ancestor.
    """
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            size[key] = total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_YAML_NODES:
                raise _Refused(_line(node), f"aliases expand this node to more than "
                                            f"{MAX_YAML_NODES} nodes (an alias bomb?)")
            continue
        if key in size:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_:
                raise _Refused(_line(child), "recursive alias: a node contains itself")
            if id(child) not in size:
                stack.append((child, False))


def _line_map(root: yaml.Node) -> tuple[LineMap, list[Issue]]:
    """Key path -> line from the node marks, each node visited once (an alias is not walked
    again: paths under it fall back to the alias's own key), and every duplicate key."""
    lines: LineMap = {}
    issues: list[Issue] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, _line(node))
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = str(key_node.value)
                sub = f"{path}.{key}" if path else key
                if key in first:
                    issues.append(Issue(sub, f"duplicate key (first at line {first[key]})",
                                        _line(key_node)))
                    continue
                first[key] = lines[sub] = _line(key_node)
                children.append((value_node, sub))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        # Visited in document order, an anchored node is walked where it is defined, before
        # any alias to it.
        stack.extend(reversed(children))
    return lines, issues


# PyYAML's problem texts (their start) → what a person editing the file should look for.
_PROBLEMS = (
    ("mapping values are not allowed", "a ':' where a value was expected (quote a value "
     "that contains ': ', or check the indentation)"),
    ("expected ',' or ']'", "a '[' list that is not closed"),
    ("expected ',' or '}'", "a '{' mapping that is not closed"),
    ("expected <block end>", "indentation that matches no level above (indent with the "
     "same number of spaces as the keys beside it)"),
    ("could not find expected ':'", "a key without ':' (write key: value)"),
    ("found unexpected end of stream", "a quoted string that is not closed"),
    ("found character '\\t'", "a tab: YAML indents with spaces"),
    ("found character", "{problem} (quote the value)"),
    ("found undefined alias", "an alias '*name' with no anchor '&name' before it"),
    ("found duplicate anchor", "an anchor '&name' defined twice"),
)


def _malformed(exc: yaml.YAMLError, source: str | None) -> SpecError:
    """A syntax error as one Issue at its line and column, in words about the file."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = " ".join((getattr(exc, "problem", None) or str(exc).splitlines()[0]).split())
    text = next((hint.replace("{problem}", problem) for start, hint in _PROBLEMS
                 if problem.startswith(start)), problem)
    ctx, ctx_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if ctx and ctx_mark is not None and ctx_mark.line + 1 != line:
        what = str(ctx).removeprefix("while ").replace("parsing ", "").replace("scanning ", "")
        text += f"; {what} started at line {ctx_mark.line + 1}"
    return SpecError(Issue("", f"malformed YAML: {text}", line, column), source)


def loads_yaml(text: str, source: str | None = None) -> tuple[Any, LineMap]:
    """Parse YAML text with the safe loader, composing it once.

    Refused, each as a SpecError with its line: malformed YAML, python tags, duplicate keys
    (every one), a recursive alias, a document past MAX_YAML_NODES once aliases expand.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        pos = int(exc.position)
        line, column = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        raise SpecError(Issue("", f"malformed YAML: character {exc.character:#06x} is not "
                              "allowed in YAML text", line, column), source) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _malformed(exc, source) from None
        except RecursionError:
            raise SpecError(Issue("", "malformed YAML: nested too deeply"), source) from None
        if node is None:
            return None, {}
        try:
            _check_expansion(node)
        except _Refused as exc:
            raise SpecError(exc.issue, source) from None
        lines, duplicates = _line_map(node)
        if duplicates:
            raise SpecError(duplicates, source)
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _malformed(exc, source) from None
    finally:
        loader.dispose()
    return data, lines


def read_text(path: str | os.PathLike[str]) -> str:
    """A text input file's content; unreadable or not UTF-8 is a one-issue SpecError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError(Issue("", f"cannot read file: {exc.strerror}"), str(p)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(Issue("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                                  f"{exc.start})"), str(p)) from None


def load_yaml(path: str | os.PathLike[str]) -> tuple[Any, LineMap]:
    return loads_yaml(read_text(path), str(Path(path)))


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


class AtPaths(ValueError):
    """Raised by a cross-field validator: problems each at a key path below the model's
    own, so each Issue points at the line of the key it is about (``cores.core.sram.size``)
    rather than at the top of the file."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p).replace(".[", "[")


def _unwrap(tp: Any) -> list[Any]:
    """The types a field annotation may hold: Optional, unions and Annotated taken apart."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (Union, UnionType):
        return [t for a in get_args(tp) for t in _unwrap(a)]
    return [tp]


def known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at ``loc`` below ``model`` takes ([] where that is not one model:
    a union of several, a plain value)."""
    here: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for tp in here:
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                field = tp.model_fields.get(part) or next(
                    (f for f in tp.model_fields.values() if f.alias == part), None)
                if field is not None:
                    nxt += _unwrap(field.annotation)
            elif get_origin(tp) in (list, tuple) and isinstance(part, int):
                nxt += [t for a in get_args(tp) if a is not Ellipsis for t in _unwrap(a)]
            elif get_origin(tp) is dict and isinstance(part, str):
                nxt += _unwrap(get_args(tp)[1])
        here = nxt
    models = [t for t in here if isinstance(t, type) and issubclass(t, BaseModel)]
    if len(models) != 1:
        return []
    return [f.alias or name for name, f in models[0].model_fields.items()
            if not (f.exclude or name.startswith("_"))]


def did_you_mean(key: str, known: list[str]) -> str:
    """``"; did you mean `banks`?"`` for the known key nearest ``key`` (difflib), or ""."""
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean `{near[0]}`?" if near else ""


def issues_from_validation(exc: ValidationError, lines: LineMap, prefix: str = "",
                           at_paths: bool = False,
                           model: type[BaseModel] | None = None) -> list[Issue]:
    """Every error of ``exc`` as an Issue. With ``at_paths`` a cross-field validator's
    :class:`AtPaths` problems become one Issue each at its own key; without, one Issue at the
    model's path (a caller telling a field's own errors from cross-field ones wants that).
    With ``model`` (the model validated), an unknown key names the nearest known one."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _join(prefix, _path_of(loc))
        cause = (err.get("ctx") or {}).get("error")
        if at_paths and isinstance(cause, AtPaths):
            for sub, msg in cause.problems:
                where = _join(path, sub)
                issues.append(Issue(where, msg, line_for(where, lines)))
            continue
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if model is not None and loc and isinstance(loc[-1], str):
                msg += did_you_mean(loc[-1], known_keys(model, loc[:-1]))
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
        raise SpecError(issues_from_validation(exc, lines, at_paths=True, model=model),
                        source) from None


def is_system_data(data: Any) -> bool:
    """Whether parsed YAML describes a system (it names a chip and a topology); here, not
    in npusim.spec.system, so that telling a file's kind builds no spec models."""
    return isinstance(data, dict) and "topology" in data and "chip" in data
