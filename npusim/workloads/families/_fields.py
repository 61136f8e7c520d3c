"""Typed, collecting access to a ``config.json``'s fields.

Every problem of a config is gathered before anything is raised: a config missing three
fields is one :class:`WorkloadError` naming the three, and inconsistent fields (top-k above
the expert count, kv heads not dividing the heads) are one line each in the same error.
A missing field reads as a harmless placeholder (1) so that a family reader can run to the
end and find every other problem first; :meth:`Fields.raise_problems` is called before the
placeholder could reach a :class:`ModelConfig`.
"""

from __future__ import annotations

import builtins
from typing import Any

from npusim.errors import WorkloadError

__all__ = ["MAX_EXPERTS", "MAX_LAYERS", "Fields"]

#: ceilings on counts the loader expands per layer or per expert (npusim/limits.py's rule:
#: refuse by estimate, never by running out of memory); published models have at most a
#: few hundred of either (Llama 3.1 405B: 126 layers; Qwen3-Next: 512 experts)
MAX_LAYERS = 10_000
MAX_EXPERTS = 65_536


class Fields:
    """A config's fields, each read under every spelling its family's versions use."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where
        self.missing: list[str] = []
        self.problems: list[str] = []  # a field's own value is wrong
        self.conflicts: list[str] = []  # fields disagree with each other
        self.guessed = False  # a placeholder stands in for a missing or refused value

    def has(self, *names: str) -> bool:
        return any(self.data.get(n) is not None for n in names)

    def int(self, *names: str, default: int | None = None, zero: bool = False) -> int:
        """The first of ``names`` present, a positive integer (``zero``: or 0).

        Absent and no default: recorded as missing (all spellings named)."""
        for n in names:
            v = self.data.get(n)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (v == 0 and not zero):
                kind = "a non-negative" if zero else "a positive"
                self.problems.append(f"{n} must be {kind} integer, got {v!r}")
                self.guessed = True
                return default if default is not None else 1
            return v
        if default is None:
            self.missing.append(" or ".join(names))
            self.guessed = True
            return 1
        return default

    def count(self, *names: str, ceiling: builtins.int) -> builtins.int:
        """A required positive integer that the loader expands (layers, experts), refused
        above ``ceiling``."""
        v = self.int(*names)
        if v > ceiling:
            self.bad(f"{next(n for n in names if self.has(n))} {v} is above npusim's ceiling "
                     f"of {ceiling}")
            self.guessed = True
            return 1
        return v

    def opt_int(self, name: str) -> builtins.int | None:
        """An optional positive integer (``null``, absent or 0, as saved configs write a
        disabled window: None)."""
        if self.data.get(name) is None:
            return None
        return self.int(name, zero=True) or None

    def real(self, name: str, default: float) -> float:
        v = self.data.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
            self.problems.append(f"{name} must be a positive number, got {v!r}")
            return default
        return float(v)

    def flag(self, name: str, default: bool) -> bool:
        v = self.data.get(name)
        if v is None:
            return default
        if not isinstance(v, bool):
            self.problems.append(f"{name} must be true or false, got {v!r}")
            return default
        return v

    def get(self, name: str, default: Any) -> Any:
        v = self.data.get(name)
        return default if v is None else v

    def int_list(self, name: str, length: builtins.int | None = None,
                 ) -> list[builtins.int] | None:
        v = self.data.get(name)
        if v is None:
            return None
        if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, int)
                                          for x in v):
            self.problems.append(f"{name} must be a list of integers, got {_short(v)}")
            return None
        if length is not None and len(v) != length:
            self.conflicts.append(f"{name} has {len(v)} entries, num_hidden_layers is {length}")
            return None
        return list(v)

    def str_list(self, name: str, length: builtins.int) -> list[str] | None:
        v = self.data.get(name)
        if v is None:
            return None
        if not isinstance(v, list) or any(not isinstance(x, str) for x in v):
            self.problems.append(f"{name} must be a list of strings, got {_short(v)}")
            return None
        if len(v) != length:
            self.conflicts.append(f"{name} has {len(v)} entries, num_hidden_layers is {length}")
            return None
        return list(v)

    def bad(self, text: str) -> None:
        """A field whose own value is wrong (always reported)."""
        self.problems.append(text)

    def problem(self, text: str) -> None:
        """Fields that disagree (reported only when no placeholder stands in for a missing
        or refused value: it could be the cause)."""
        self.conflicts.append(text)

    def raise_problems(self) -> None:
        """One WorkloadError: the missing fields on one line, then one line per problem."""
        lines = []
        if self.missing:
            lines.append(f"{self.where}: missing field{'s' if len(self.missing) > 1 else ''} "
                         f"{', '.join(self.missing)}")
        lines += [f"{self.where}: {p}" for p in self.problems]
        if not self.guessed:
            lines += [f"{self.where}: {p}" for p in self.conflicts]
        if lines:
            raise WorkloadError("\n".join(lines))


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
