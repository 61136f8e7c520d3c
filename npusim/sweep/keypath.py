"""Names in a sweep file: key paths into a spec, and the chip or system file it starts from.

Key paths: which field ``cores.core.sram.size`` names, and setting it in data.

:func:`resolve_key` walks the pydantic models of a spec (the chip's unless told) along a
dotted path and returns the validator of the field it ends at, so an axis value is checked and
normalised with the field's own type (``8 MiB`` becomes 8388608). :func:`set_path` writes a
value at a dotted path of plain nested dicts. :func:`load_named` loads the ``base:`` chip or
``system:`` a sweep names: a file relative to the sweep file, or a preset.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter

from npusim.errors import Issue, SpecError
from npusim.spec.arch import Chip
from npusim.spec.yamlio import LineMap, line_for

__all__ = ["load_named", "resolve_key", "set_path"]

T = TypeVar("T")


def load_named(name: str, key: str, root: Path, load: Callable[[str | Path], T],
               lines: LineMap, issues: list[Issue], inputs: list[str]
               ) -> tuple[T, Path | None] | None:
    """Load what ``key`` names: a file (relative to ``root``, the sweep file's folder) when
    one exists or the name has a suffix, else a preset. A name that loads nothing is an
    issue at ``key`` (None); an invalid file raises its own errors, with its own lines. A
    file is recorded in ``inputs`` and returned beside what it holds."""
    p = Path(name)
    candidate = p if p.is_absolute() else root / p
    target: str | Path = candidate if (candidate.exists() or p.suffix) else name
    try:
        loaded = load(target)
    except SpecError as exc:
        if not Path(target).exists():
            issues.append(Issue(key, exc.issues[0].message, line_for(key, lines)))
            return None
        raise
    if not Path(target).exists():
        return loaded, None
    inputs.append(str(Path(target).resolve()))
    return loaded, Path(target)



def _strip_optional(ann: Any) -> list[Any]:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(ann) if a is not type(None)]
    return [ann]


def _model_in(ann: Any) -> type[BaseModel] | None:
    for a in _strip_optional(ann):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _dict_in(ann: Any) -> tuple[Any, Any] | None:
    for a in _strip_optional(ann):
        if typing.get_origin(a) is dict:
            return typing.get_args(a)  # type: ignore[return-value]
    return None


def resolve_key(path: str, spec: type[BaseModel] = Chip) -> TypeAdapter[Any]:
    """The validator of the field at ``path`` of ``spec`` (the chip spec unless told);
    ``ValueError`` if the path is unknown."""
    model: type[BaseModel] | None = spec
    parts = path.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if model is None:
            raise ValueError(f"{'.'.join(parts[:i])} has no sub-keys")
        info = model.model_fields.get(part)
        if info is None:
            known = ", ".join(model.model_fields)
            raise ValueError(f"unknown key {part!r} in {path!r} (known here: {known})")
        ann = info.annotation
        if last:
            if not info.metadata:
                return TypeAdapter(cast(Any, ann))
            args = (ann, *info.metadata)  # Annotated[*args] needs Python 3.11 syntax
            return TypeAdapter(Annotated.__class_getitem__(args))  # type: ignore[attr-defined]
        sub = _model_in(ann)
        if sub is not None:
            model = sub
            continue
        kv = _dict_in(ann)
        if kv is not None and i == len(parts) - 2:
            key_t, value_t = kv
            TypeAdapter(key_t).validate_python(parts[-1])
            return TypeAdapter(value_t | None)
        raise ValueError(f"{'.'.join(parts[:i + 1])} has no sub-key {parts[i + 1]!r}")
    raise ValueError("empty key path")  # pragma: no cover - split never yields nothing


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in a nested dict; missing or null parents become dicts. None removes
    the key, so the field takes its default (``dram.bandwidth: null``) and a dict entry
    (``macs_per_cycle.int4: null``) disappears."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
