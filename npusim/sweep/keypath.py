"""Key paths into a spec: which field ``cores.core.sram.size`` names, and setting it in data.

:func:`resolve_key` walks the pydantic models of a spec (the chip's unless told) along a
dotted path and returns the validator of the field it ends at, so an axis value is checked and
normalised with the field's own type (``8 MiB`` becomes 8388608). :func:`set_path` writes a
value at a dotted path of plain nested dicts.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, cast

from pydantic import BaseModel, TypeAdapter

from npusim.spec.arch import Chip

__all__ = ["resolve_key", "set_path"]



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
