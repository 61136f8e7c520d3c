"""The sweep file as written: pydantic models of its keys (paths not yet resolved, axis
values not yet normalised). The file format and its resolution into a :class:`Sweep` are
described in :mod:`npusim.sweep.spec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from npusim.spec.numbers import Int

__all__ = ["AxisSpec", "SweepFile", "WorkloadEntry"]

_FILE_SUFFIXES = (".yaml", ".yml", ".csv", ".onnx")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _workload_shorthand(v: Any) -> Any:
    if isinstance(v, str):
        suffix = Path(v).suffix.lower()
        if suffix in _FILE_SUFFIXES:
            return {"file": v}
        if suffix == ".json":
            return {"hf_config": v}
        return {"builtin": v}
    return v


class WorkloadEntry(_Model):
    """One workload of the sweep: exactly one of builtin, file, hf_config, inline."""

    builtin: str | None = None
    file: str | None = None
    hf_config: str | None = None
    inline: dict[str, Any] | None = None
    label: str | None = None
    batch: Int = Field(default=1, gt=0)
    #: builder keyword arguments (``seq_len``, ``precision``, ``phase``, ``context_len`` …)
    options: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, _ctx: Any) -> None:
        given = [k for k in ("builtin", "file", "hf_config", "inline") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a workload names exactly one of builtin, file, hf_config, "
                             f"inline (got {', '.join(given) or 'none'})")

    @property
    def kind(self) -> str:
        return next(k for k in ("builtin", "file", "hf_config", "inline") if getattr(self, k))

    def default_label(self) -> str:
        if self.label:
            return self.label
        if self.builtin:
            return self.builtin
        if self.inline:
            return str(self.inline.get("name", "inline"))
        return Path(self.file or self.hf_config or "").stem


class AxisSpec(_Model):
    """An axis: a list of values, or a range ``low``..``high`` (``num`` points for a grid)."""

    values: list[Any] | None = Field(default=None, min_length=1)
    low: Any = None
    high: Any = None
    num: Int | None = Field(default=None, gt=0)
    log: bool = False
    integer: bool | None = None
    name: str | None = None
    group: str | None = None

    def model_post_init(self, _ctx: Any) -> None:
        ranged = self.low is not None or self.high is not None
        if self.values is not None and (ranged or self.num is not None):
            raise ValueError("give either values or low/high (with num for a grid), not both")
        if self.values is None and (self.low is None or self.high is None):
            raise ValueError("an axis needs values, or both low and high")


def _axis_shorthand(v: Any) -> Any:
    return {"values": v} if isinstance(v, list) else v


class SweepFile(_Model):
    """The sweep YAML as written (paths not yet resolved, values not yet normalised)."""

    name: str = "sweep"
    description: str | None = None
    #: the chip every point changes (a chip sweep) …
    base: str | dict[str, Any] | None = None
    #: … or the system of many chips (a system sweep, see npusim.sweep.systems)
    system: str | None = None
    #: a system sweep's plan where no axis sets it (tp, pp, dp, micro_batches, algorithm,
    #: allreduce_precision)
    parallel: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    workloads: list[Annotated[WorkloadEntry, BeforeValidator(_workload_shorthand)]] = Field(
        min_length=1)
    memory: str = "bandwidth"
    weights_resident: Literal["auto", "yes", "no"] = "auto"
    mode: Literal["grid", "zip", "random", "lhs"] = "grid"
    samples: Int | None = Field(default=None, gt=0)
    seed: Int = 0
    axes: dict[str, Annotated[AxisSpec, BeforeValidator(_axis_shorthand)]] = Field(
        default_factory=dict)
    constraints: list[str] = Field(default_factory=list)
    #: default objectives of ``npusim sweep --pareto`` (``max:`` to maximise)
    objectives: list[str] = Field(default_factory=list)

    def model_post_init(self, _ctx: Any) -> None:
        if (self.base is None) == (self.system is None):
            raise ValueError("a sweep names exactly one of base (a chip) and system (a "
                             "system of many chips)")
        if self.parallel and self.system is None:
            raise ValueError("parallel: applies to a system sweep (system:), not to a chip")
