"""The npusim exception hierarchy.

    NpusimError
    ├── SpecError          a chip, DRAM, sweep or workload file is invalid
    ├── WorkloadError      a workload cannot be built or imported
    ├── MappingError       a layer cannot be mapped onto the chip (does not fit, unsupported)
    └── SimulationError    the engine met an inconsistent program

The library raises these and never exits; the CLI turns them into one line and exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Issue",
    "MappingError",
    "NpusimError",
    "SimulationError",
    "SpecError",
    "WorkloadError",
]


class NpusimError(Exception):
    """Base of every error npusim raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found in an input file: where it is and what is wrong."""

    path: str  # key path such as "cores.core.systolic.rows"
    message: str
    line: int | None = None  # 1-based line in the file, when the loader knows it
    column: int | None = None  # 1-based column, for a YAML syntax error

    def format(self, source: str | None) -> str:
        """``file:line: key.path: message`` (``file:line:column`` for a syntax error),
        leaving out what is not known."""
        where = source or ("<input>" if self.line is not None else "")
        if self.line is not None:
            where = f"{where}:{self.line}"
            if self.column is not None:
                where = f"{where}:{self.column}"
        parts = [p for p in (where, self.path) if p]
        return ": ".join([*parts, self.message])


class SpecError(NpusimError):
    """An input file (chip, workload, sweep) is invalid; carries every problem found."""

    def __init__(self, issues: list[Issue] | Issue | str, source: str | None = None) -> None:
        if isinstance(issues, str):
            issues = [Issue("", issues)]
        elif isinstance(issues, Issue):
            issues = [issues]
        self.issues: list[Issue] = list(issues)
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [i.format(self.source) for i in self.issues]
        if len(lines) == 1:
            return lines[0]
        return f"{len(lines)} problems:\n" + "\n".join(f"  {x}" for x in lines)

    @property
    def paths(self) -> list[str]:
        return [i.path for i in self.issues]


class WorkloadError(NpusimError):
    """A workload cannot be built, parsed or imported."""


class MappingError(NpusimError):
    """A layer cannot be mapped onto the chip (capacity, precision, SRAM)."""


class SimulationError(NpusimError):
    """The engine was given an inconsistent tile program."""
