"""JSON input files read as strictly as YAML ones: one reader for config.json, results and
traces.

``load_json(path)`` refuses, each as a one-line :class:`~npusim.errors.SpecError` naming the
file (and the line where the parser knows it): what :func:`~npusim.spec.yamlio.read_text`
refuses (not a regular file, too large, not UTF-8), malformed JSON, nesting deeper than
Python's recursion limit, a key given twice in one object (JSON leaves its meaning open;
Python would keep the last silently), the non-standard constants ``NaN``, ``Infinity`` and
numbers past the float range (``1e400``).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from npusim.errors import Issue, SpecError
from npusim.spec.yamlio import read_text

__all__ = ["load_json", "loads_json"]


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e400
        raise ValueError(f"{text} is past the float range")
    return v


def loads_json(text: str, source: str | None = None) -> Any:
    """Parse JSON ``text`` (see the module docstring for what is refused)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                          parse_float=_finite)
    except _Duplicate as exc:
        raise SpecError(Issue("", f"key {exc.args[0]!r} appears twice in one object"),
                        source) from None
    except json.JSONDecodeError as exc:
        raise SpecError(Issue("", f"malformed JSON: {exc.msg} (column {exc.colno})",
                              exc.lineno), source) from None
    except RecursionError:
        raise SpecError(Issue("", "malformed JSON: nested too deeply"), source) from None
    except ValueError as exc:
        raise SpecError(Issue("", f"malformed JSON: {exc}"), source) from None


def load_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document in the file ``path``."""
    return loads_json(read_text(path), str(path))
