"""The sweep file: a base chip, workloads, axes over chip key paths, constraints.

    name: array_sram_dram
    base: tpu_v1                  # preset name, chip YAML (relative to this file) or a mapping
    set:                          # fixed changes to the base, by key path (null unsets)
      dram.bandwidth: null
    workloads:
      - resnet50                  # built-in name, or a file: .yaml/.csv/.onnx, .json HF config
      - {builtin: bert_base, batch: 1, options: {seq_len: 128}, label: bert128}
      - {hf_config: ../hf/llama2_7b.json, options: {phase: decode, context_len: 2048}}
    memory: bandwidth             # memory model of every run
    weights_resident: auto        # auto | yes | no: weights in the shared SRAM (docs/model.md)
    mode: grid                    # grid | zip | random | lhs
    samples: 100                  # random / lhs: how many points to draw
    seed: 0
    axes:
      cores.core.systolic.rows: {values: [32, 64, 128, 256], name: rows, group: array}
      cores.core.systolic.cols: {values: [32, 64, 128, 256], name: cols, group: array}
      cores.core.sram.size: [2 MiB, 8 MiB, 32 MiB]
      dram.standard: [LPDDR5-6400, HBM3-6400]
      clock: {low: 500 MHz, high: 1.5 GHz, num: 3}       # continuous range (grid needs num)
      workload.batch: [1, 8]                             # a workload option, not the chip
    constraints:
      - rows * cols <= 65536

An axis is a key path into the chip spec (``cores.count``, ``cores.core.sram.size``,
``dram.channels``, ``cores.core.systolic.macs_per_cycle.int4``, ``clock`` …) or
``workload.<option>`` (``batch`` or a builder option; for an HF config ``workload.weights``
takes precisions or mappings of tensor class to precision, ``{experts: mxfp4, default:
bf16}``, kept in the table as ``experts=mxfp4,default=bf16``, and ``workload.routing``
``uniform``, ``skewed:S`` or a trace file relative to the sweep file; both are checked when
the file is read). Its values are validated and
normalised with the chip spec's own field type when the file is read, so ``8 MiB`` becomes
8388608 in the table and in constraints. An axis is named after the last two parts of its key
path (``systolic_rows``, ``sram_size``, ``dram_standard``, ``clock``) unless it sets ``name``.
In ``grid`` mode axes sharing a ``group`` are zipped and groups are crossed; ``zip`` zips all
axes. ``random`` and ``lhs`` (Latin hypercube) draw ``samples`` points with ``seed``; a group
is one dimension there too. Constraints are expressions over axis names and the unit names
``KiB MiB GiB kB MB GB kHz MHz GHz`` (see :mod:`npusim.sweep.constraints`). A sweep
has at most :data:`MAX_RUNS` runs (points before constraints x workloads); a larger one is
refused here.

A sweep of a system of many chips names ``system:`` instead of ``base:``; its axes are
``system.*``, ``parallel.*`` and ``workload.*`` (see :mod:`npusim.sweep.systems`).

``load_sweep(path)`` returns a resolved :class:`Sweep`; every problem of the file is one
:class:`~npusim.errors.Issue` (key path and line) of one :class:`~npusim.errors.SpecError`.
"""

from __future__ import annotations

import copy
import keyword
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from npusim.errors import Issue, SpecError
from npusim.spec.arch import Chip
from npusim.spec.yamlio import (
    LineMap,
    issues_from_validation,
    line_for,
    load_yaml,
    loads_yaml,
)
from npusim.sweep.constraints import ConstraintError, compile_constraint
from npusim.sweep.keypath import load_named, resolve_key, set_path
from npusim.sweep.schema import AxisSpec, SweepFile, WorkloadEntry
from npusim.units import finite_real

__all__ = [
    "MAX_RUNS",
    "Axis",
    "AxisSpec",
    "Sweep",
    "SweepFile",
    "WorkloadEntry",
    "discretise",
    "load_sweep",
    "loads_sweep",
    "resolve_key",
    "set_path",
    "sweep_from_data",
]

WORKLOAD_PREFIX = "workload."
#: The most runs a sweep may have: design points before constraints (a grid's product of
#: axis lengths, a sampled sweep's samples) times workloads. A larger one is refused when
#: the file is read, before any work: planning holds about 14 KiB per run (its chip and
#: task), so the limit is about 3 GB, and that many runs take days on one machine.
MAX_RUNS = 200_000
# ---------------------------------------------------------------------------------------
# The resolved sweep


@dataclass(frozen=True)
class Axis:
    """One resolved axis: normalised values (discrete) or a normalised range."""

    name: str
    key: str
    values: tuple[Any, ...] | None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    group: str | None = None

    @property
    def is_workload(self) -> bool:
        return self.key.startswith(WORKLOAD_PREFIX)

    @property
    def option(self) -> str:
        return self.key[len(WORKLOAD_PREFIX):]

    @property
    def is_chip(self) -> bool:
        """A key path into the chip spec (not a workload, system or parallel axis)."""
        return not self.key.startswith((WORKLOAD_PREFIX, "system.", "parallel."))


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: base chip (or system) data, resolved workloads, axes, constraints."""

    name: str
    #: the base chip (with ``set`` applied) as model_dump data; a system sweep's system
    base: dict[str, Any]
    workloads: tuple[WorkloadEntry, ...]  # paths made absolute
    axes: tuple[Axis, ...]
    constraints: tuple[str, ...]
    mode: str = "grid"
    samples: int | None = None
    seed: int = 0
    memory: str = "bandwidth"
    weights_resident: str = "auto"  # auto | yes | no
    objectives: tuple[str, ...] = ()
    source: str | None = None
    input_files: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = ()
    #: a sweep of a system of many chips (``base`` is the system's data)
    is_system: bool = False
    #: a system sweep's plan where no axis sets it
    parallel: dict[str, Any] = field(default_factory=dict)
    #: the file line of each constraint (for errors found while evaluating one)
    constraint_lines: tuple[int | None, ...] = ()

    @property
    def axis_names(self) -> list[str]:
        return [a.name for a in self.axes]

    @property
    def labels(self) -> list[str]:
        return [w.default_label() for w in self.workloads]

    def dimensions(self) -> list[list[Axis]]:
        """The independent dimensions: one axis each, or the axes of a group (zipped); a
        ``zip`` sweep is one dimension of all its axes."""
        if self.mode == "zip":
            return [list(self.axes)] if self.axes else []
        dims: list[list[Axis]] = []
        by_group: dict[str, list[Axis]] = {}
        for a in self.axes:
            if a.group is None:
                dims.append([a])
            elif a.group in by_group:
                by_group[a.group].append(a)
            else:
                by_group[a.group] = [a]
                dims.append(by_group[a.group])
        return dims

    def dimension_sizes(self) -> list[int]:
        """How many values each dimension has (a range axis counts as its ``num``)."""
        return [len(dim[0].values) if dim[0].values is not None else 0
                for dim in self.dimensions()]

    def size(self) -> int:
        """Design points before constraints: the grid's product, or the samples drawn."""
        if self.mode in ("random", "lhs"):
            return int(self.samples or 0)
        return math.prod(self.dimension_sizes())


def _key_problem(exc: ValueError, key: str) -> str:
    if isinstance(exc, ValidationError):  # a dict entry whose key is not allowed
        return f"not a key of the chip spec: {key} ({exc.errors()[0]['msg']})"
    return str(exc)


def _default_name(key: str) -> str:
    parts = key.removeprefix("system.").removeprefix("parallel.").split(".")
    name = "_".join(parts[-2:])
    return name.replace("-", "_")


def _resolve_base(base: str | dict[str, Any], root: Path, lines: LineMap,
                  issues: list[Issue], inputs: list[str]) -> dict[str, Any] | None:
    if isinstance(base, dict):
        try:
            return Chip.model_validate(base).model_dump()
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, lines, prefix="base", model=Chip))
            return None
    from npusim.spec.arch import load_arch

    found = load_named(base, "base", root, load_arch, lines, issues, inputs)
    return None if found is None else found[0].model_dump()


def _resolve_workload(w: WorkloadEntry, i: int, root: Path, lines: LineMap,
                      issues: list[Issue], inputs: list[str]) -> WorkloadEntry:
    from npusim import workloads

    where = f"workloads[{i}]"
    if w.builtin is not None:
        key = w.builtin.strip().lower().replace("-", "_")
        if key not in workloads.BUILTINS:
            issues.append(Issue(f"{where}.builtin", f"unknown built-in workload {w.builtin!r} "
                                f"(known: {', '.join(workloads.BUILTINS)}; files end in "
                                f".yaml/.csv/.onnx/.json)", line_for(where, lines)))
        return w
    for attr in ("file", "hf_config"):
        value = getattr(w, attr)
        if value is None:
            continue
        p = Path(value)
        p = p if p.is_absolute() else root / p
        if not p.exists():
            if attr == "hf_config" and not Path(value).suffix:
                return w  # a shipped config name (llama2_7b)
            issues.append(Issue(f"{where}.{attr}", f"no such file: {p}", line_for(where, lines)))
            return w
        inputs.append(str(p.resolve()))
        if attr == "file" and w.options:
            issues.append(Issue(f"{where}.options", "a workload file takes no builder options "
                                "(only batch)", line_for(f"{where}.options", lines)))
        return w.model_copy(update={attr: str(p.resolve())})
    return w


def _normalise(adapter: TypeAdapter[Any] | None, v: Any, at: Issue,
               issues: list[Issue]) -> Any:
    """``v`` validated by the chip field's type; a failure is recorded at ``at``."""
    if adapter is None:
        return v
    try:
        return adapter.validate_python(v)
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        issues.append(Issue(at.path, f"{at.message} {v!r}: {msg}", at.line))
        return v


def _axis_adapter(key: str, system: bool) -> TypeAdapter[Any]:
    """The validator of a chip or system axis; ``ValueError`` names what is wrong."""
    from npusim.spec.system import System
    from npusim.sweep.systems import PARALLEL_PREFIX, SYSTEM_PREFIX, parallel_adapter

    if key.startswith(SYSTEM_PREFIX) and system:
        return resolve_key(key.removeprefix(SYSTEM_PREFIX), System)
    if key.startswith(PARALLEL_PREFIX) and system:
        return parallel_adapter(key.removeprefix(PARALLEL_PREFIX))
    if key.startswith((SYSTEM_PREFIX, PARALLEL_PREFIX)):
        raise ValueError(f"{key.split('.')[0]}.* axes sweep a system of many chips: name it "
                         "with system: instead of base:")
    if system:
        raise ValueError(f"{key!r}: a system sweep's axes are system.<key path> (count, "
                         "link.kind, topology.kind …), parallel.<tp|pp|dp|micro_batches|"
                         "algorithm|allreduce_precision> or workload.<option>")
    return resolve_key(key)


def _weights_value(v: Any, root: Path, at: Issue, issues: list[Issue]) -> Any:
    """A ``workload.weights`` value (a precision, ``experts=mxfp4,default=bf16`` or a
    mapping of class to precision), checked, as its one-line text (the table's value)."""
    from npusim.errors import WorkloadError
    from npusim.workloads.precision import check_precisions, describe_weights, parse_weights

    try:
        if isinstance(v, dict):
            w: Any = parse_weights(",".join(f"{k}={p}" for k, p in v.items()))
        elif isinstance(v, str):
            w = parse_weights(v)
        else:
            raise WorkloadError(f"weights: {v!r} is neither a precision nor a mapping of "
                                f"tensor class to precision")
        check_precisions(w)
    except WorkloadError as exc:
        issues.append(Issue(at.path, f"{at.message} {v!r}: {exc}", at.line))
        return v
    return describe_weights(w)


def _routing_value(v: Any, root: Path, at: Issue, issues: list[Issue]) -> Any:
    """A ``workload.routing`` value: uniform, skewed:S, or a trace file (relative to the
    sweep file; made absolute)."""
    from npusim.errors import NpusimError
    from npusim.workloads.routing import parse_routing

    if not isinstance(v, str):
        issues.append(Issue(at.path, f"{at.message} {v!r}: routing is uniform, skewed:S or "
                            f"a trace file", at.line))
        return v
    text = v
    if text != "uniform" and not text.startswith("skewed:"):
        p = Path(text)
        text = str((p if p.is_absolute() else root / p).resolve())
    try:
        parse_routing(text)
    except (NpusimError, OSError, ValueError) as exc:
        issues.append(Issue(at.path, f"{at.message} {v!r}: {exc}", at.line))
        return v
    return text


#: workload axes whose values are model options checked here, not by the chip spec
_MODEL_AXES = {f"{WORKLOAD_PREFIX}weights": _weights_value,
               f"{WORKLOAD_PREFIX}routing": _routing_value}


def _plain(key: str, v: Any, root: Path) -> Any:
    """A system axis value as the table and the cache hold it: sub-specs as data, a chip
    YAML as an absolute path."""
    from npusim.sweep.systems import chip_path

    if isinstance(v, BaseModel):
        return v.model_dump(mode="json")
    if key == "system.chip" and isinstance(v, str):
        return chip_path(v, root)
    return v


def _resolve_axes(sf: SweepFile, lines: LineMap, issues: list[Issue],
                  root: Path | None = None) -> list[Axis]:
    system = sf.system is not None
    axes: list[Axis] = []
    for key, spec in sf.axes.items():
        where = f"axes.{key}"
        line = line_for(where, lines)
        name = spec.name or _default_name(key)
        if not name.isidentifier() or keyword.iskeyword(name):
            issues.append(Issue(where, f"axis name {name!r} is not an identifier; set name:",
                                line))
            continue
        adapter: TypeAdapter[Any] | None = None
        if not key.startswith(WORKLOAD_PREFIX):
            try:
                adapter = _axis_adapter(key, system)
            except ValueError as exc:
                issues.append(Issue(where, _key_problem(exc, key), line))
                continue
        elif key == WORKLOAD_PREFIX:
            issues.append(Issue(where, "name a workload option: workload.batch, "
                                "workload.seq_len …", line))
            continue

        def norm(v: Any, what: str, adapter: TypeAdapter[Any] | None = adapter,
                 where: str = where, line: int | None = line) -> Any:
            return _normalise(adapter, v, Issue(where, what, line), issues)

        integer = spec.integer
        if spec.values is not None and key in _MODEL_AXES:
            values = tuple(_MODEL_AXES[key](v, root or Path.cwd(), Issue(where, "value", line),
                                            issues) for v in spec.values)
            axes.append(Axis(name, key, values, group=spec.group))
            continue
        if spec.values is not None:
            values = tuple(norm(v, "value") for v in spec.values)
            if system:
                values = tuple(_plain(key, v, root or Path.cwd()) for v in values)
            axes.append(Axis(name, key, values, group=spec.group))
            continue
        low, high = norm(spec.low, "low"), norm(spec.high, "high")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (low, high)):
            issues.append(Issue(where, "low and high must be numbers (with units)", line))
            continue
        try:
            finite_real(low), finite_real(high)
        except ValueError as exc:
            issues.append(Issue(where, f"low and high: {exc}", line))
            continue
        if low > high or (spec.log and low <= 0):
            issues.append(Issue(where, "need low <= high (and low > 0 for log)", line))
            continue
        if integer is None:
            integer = isinstance(low, int) and isinstance(high, int)
        if spec.group is not None:
            issues.append(Issue(where, "a low/high axis cannot be in a group", line))
            continue
        axes.append(Axis(name, key, None, float(low), float(high), spec.log, bool(integer)))
    from npusim.sweep.columns import RESERVED_COLUMNS

    names = [a.name for a in axes]
    for a in axes:
        if a.name in RESERVED_COLUMNS:
            issues.append(Issue(f"axes.{a.key}", f"axis name {a.name!r} is a column of the "
                                "results table; set another name:",
                                line_for(f"axes.{a.key}", lines)))
        elif names.count(a.name) > 1:
            issues.append(Issue(f"axes.{a.key}", f"two axes are named {a.name!r}; set name: "
                                "on one of them", line_for(f"axes.{a.key}", lines)))
    return axes


def _check_values_on_base(base: dict[str, Any], axes: list[Axis], lines: LineMap,
                          issues: list[Issue], root: Path) -> None:
    """Each value set alone on the base: errors at the axis's own key are file errors
    (``dram.standard: HBM9``); errors elsewhere (cross-field rules) belong to the points."""
    for a in axes:
        if a.is_workload or a.values is None:
            continue
        if not a.is_chip:
            if a.key.startswith("system."):
                from npusim.sweep.systems import check_system_value

                for v in a.values:
                    issues.extend(Issue(f"axes.{a.key}", f"value {v!r}: {m}",
                                        line_for(f"axes.{a.key}", lines))
                                  for m in check_system_value(
                                      base, a.key.removeprefix("system."), v, root))
            continue
        for v in a.values:
            data = copy.deepcopy(base)
            set_path(data, a.key, v)
            try:
                Chip.model_validate(data)
            except ValidationError as exc:
                for i in issues_from_validation(exc, {}):
                    if i.path == a.key or i.path.startswith(a.key + "."):
                        issues.append(Issue(f"axes.{a.key}", f"value {v!r}: {i.message}",
                                            line_for(f"axes.{a.key}", lines)))


def _check_layout(sf: SweepFile, axes: list[Axis], lines: LineMap, issues: list[Issue]) -> None:
    if sf.mode in ("random", "lhs") and sf.samples is None:
        issues.append(Issue("samples", f"mode {sf.mode} needs samples:", line_for("mode", lines)))
    if sf.mode in ("grid", "zip"):
        for a in axes:
            if a.values is None and sf.axes[a.key].num is None:
                issues.append(Issue(f"axes.{a.key}", f"a {sf.mode} needs values or num: "
                                    "for a low/high axis", line_for(f"axes.{a.key}", lines)))
    groups: dict[str, list[Axis]] = {}
    for a in axes:
        if sf.mode == "zip" or a.group is not None:
            groups.setdefault("*" if sf.mode == "zip" else str(a.group), []).append(a)
    for members in groups.values():
        lengths = {len(a.values) if a.values is not None else (sf.axes[a.key].num or 0)
                   for a in members}
        if len(lengths) > 1:
            keys = ", ".join(a.name for a in members)
            issues.append(Issue(f"axes.{members[0].key}", f"zipped axes ({keys}) need as many "
                                f"values each (got {sorted(lengths)})",
                                line_for(f"axes.{members[0].key}", lines)))


def _check_size(sf: SweepFile, axes: list[Axis], lines: LineMap, issues: list[Issue]) -> bool:
    """Refuse a sweep of more than :data:`MAX_RUNS` runs before anything is expanded;
    True if refused."""
    n_wl = len(sf.workloads)
    if sf.mode in ("random", "lhs"):
        if sf.samples is not None and sf.samples * n_wl > MAX_RUNS:
            issues.append(Issue("samples", f"{sf.samples:,} samples x {n_wl} workloads = "
                                f"{sf.samples * n_wl:,} runs, past the limit of {MAX_RUNS:,}",
                                line_for("samples", lines)))
            return True
        return False
    dims: dict[str, int] = {}  # one entry per dimension: its number of values
    for a in axes:
        dim = "*" if sf.mode == "zip" else f"group {a.group}" if a.group else f"axis {a.name}"
        dims.setdefault(dim, len(a.values) if a.values is not None else sf.axes[a.key].num or 1)
    sizes = list(dims.values())
    total = math.prod(sizes)
    if total * n_wl > MAX_RUNS:
        issues.append(Issue("axes", f"the {sf.mode} has {' x '.join(map(str, sizes))} = "
                            f"{total:,} points (before constraints) x {n_wl} workloads = "
                            f"{total * n_wl:,} runs, past the limit of {MAX_RUNS:,}; use "
                            "fewer values, group axes, or mode: random with samples:",
                            line_for("axes", lines)))
        return True
    return False


def _parallel(sf: SweepFile, lines: LineMap, issues: list[Issue]) -> dict[str, Any]:
    """The file's ``parallel:`` validated (problems recorded in ``issues``)."""
    from npusim.sweep.systems import parallel_adapter

    plan: dict[str, Any] = {}
    for key, value in sf.parallel.items():
        where = f"parallel.{key}"
        try:
            plan[key] = parallel_adapter(key).validate_python(value)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            issues.append(Issue(where, f"{value!r}: {msg}", line_for(where, lines)))
        except ValueError as exc:
            issues.append(Issue(where, str(exc), line_for(where, lines)))
    return plan


def _resolve_system_sweep(sf: SweepFile, root: Path, lines: LineMap, issues: list[Issue],
                          inputs: list[str]) -> dict[str, Any] | None:
    """A system sweep's base system with ``set:`` applied, and its ``parallel:`` checked."""
    from npusim.spec.system import System, system_from_data
    from npusim.sweep.systems import SYSTEM_PREFIX, resolve_system_base, set_system_key

    assert sf.system is not None
    _parallel(sf, lines, issues)
    base = resolve_system_base(sf.system, root, lines, issues, inputs)
    if base is None or not sf.set:
        return base
    base = copy.deepcopy(base)
    for key, value in sf.set.items():
        where = f"set.{key}"
        try:
            if not key.startswith(SYSTEM_PREFIX):
                raise ValueError(f"a system sweep sets system.<key path>, not {key!r}")
            resolve_key(key.removeprefix(SYSTEM_PREFIX), System)
        except ValueError as exc:
            issues.append(Issue(where, _key_problem(exc, key), line_for(where, lines)))
            continue
        set_system_key(base, key.removeprefix(SYSTEM_PREFIX), value)
    if issues:
        return None
    try:
        return system_from_data(base).model_dump(mode="json")
    except SpecError as exc:
        issues.extend(Issue("set", f"the system with set: is invalid: {i.path}: {i.message}",
                            line_for("set", lines)) for i in exc.issues)
        return None


def sweep_from_data(data: Any, lines: LineMap | None = None, source: str | None = None,
                    root: str | Path | None = None) -> Sweep:
    """Validate parsed sweep data and resolve it; paths are relative to ``root``."""
    lines = lines or {}
    if not isinstance(data, dict):
        kind = "empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(Issue("", f"expected a mapping at the top level, got {kind}", 1), source)
    try:
        sf = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, lines, model=SweepFile), source) from None
    root_dir = Path(root) if root is not None else Path.cwd()
    issues: list[Issue] = []
    inputs: list[str] = [str(Path(source).resolve())] if source else []
    if sf.system is not None:
        base = _resolve_system_sweep(sf, root_dir, lines, issues, inputs)
    else:
        assert sf.base is not None
        base = _resolve_base(sf.base, root_dir, lines, issues, inputs)
    if base is not None and sf.set and sf.system is None:
        base = copy.deepcopy(base)
        for key, value in sf.set.items():
            try:
                resolve_key(key)
            except ValueError as exc:
                issues.append(Issue(f"set.{key}", _key_problem(exc, key),
                                    line_for(f"set.{key}", lines)))
                continue
            set_path(base, key, value)
        if not issues:
            try:
                base = Chip.model_validate(base).model_dump()
            except ValidationError as exc:
                issues.extend(Issue("set", f"the base chip with set: is invalid: "
                                    f"{i.path}: {i.message}", line_for("set", lines))
                              for i in issues_from_validation(exc, {}))
    wls = tuple(_resolve_workload(w, i, root_dir, lines, issues, inputs)
                for i, w in enumerate(sf.workloads))
    labels = [w.default_label() for w in wls]
    for i, lab in enumerate(labels):
        if labels.count(lab) > 1:
            issues.append(Issue(f"workloads[{i}]", f"two workloads are labelled {lab!r}; "
                                "set label:", line_for(f"workloads[{i}]", lines)))
    axes = _resolve_axes(sf, lines, issues, root_dir)
    _check_layout(sf, axes, lines, issues)
    too_big = _check_size(sf, axes, lines, issues)
    if base is not None and not too_big:  # a chip validation per value: skipped if refused
        _check_values_on_base(base, axes, lines, issues, root_dir)
    names = [a.name for a in axes]
    for i, text in enumerate(sf.constraints):
        try:
            compile_constraint(text, names)
        except ConstraintError as exc:
            issues.append(Issue(f"constraints[{i}]", str(exc),
                                line_for(f"constraints[{i}]", lines)))
    for i, obj in enumerate(sf.objectives):
        if not obj.removeprefix("max:").removeprefix("min:"):
            issues.append(Issue(f"objectives[{i}]", "empty objective",
                                line_for(f"objectives[{i}]", lines)))
    if issues:
        raise SpecError(issues, source)
    assert base is not None
    axes = [discretise(a, sf.axes[a.key].num) if sf.mode in ("grid", "zip") else a
            for a in axes]
    notes = []
    keys = {a.key for a in axes}
    if "dram.standard" in keys:
        fixed = [k for k in ("bandwidth", "channels", "data_rate", "bus_width_bits")
                 if base["dram"].get(k) is not None and f"dram.{k}" not in keys]
        if fixed:
            notes.append(f"dram.standard is swept but the base fixes dram.{', dram.'.join(fixed)}"
                         "; every standard gets those values (set them to null to use each "
                         "standard's own)")
    return Sweep(
        name=sf.name, base=base, workloads=wls, axes=tuple(axes),
        constraints=tuple(sf.constraints), mode=sf.mode, samples=sf.samples, seed=sf.seed,
        memory=sf.memory, weights_resident=sf.weights_resident,
        objectives=tuple(sf.objectives), source=source,
        input_files=tuple(dict.fromkeys(inputs)), notes=tuple(notes),
        is_system=sf.system is not None, parallel=_parallel(sf, lines, []),
        constraint_lines=tuple(line_for(f"constraints[{i}]", lines)
                               for i in range(len(sf.constraints))))


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
    vals = [round(float(x)) if axis.integer else float(x) for x in raw]
    return replace(axis, values=tuple(dict.fromkeys(vals)))


def loads_sweep(text: str, source: str | None = None, root: str | Path | None = None) -> Sweep:
    data, lines = loads_yaml(text, source)
    return sweep_from_data(data, lines, source, root)


def load_sweep(path: str | Path) -> Sweep:
    """Read and resolve a sweep YAML file (relative paths are relative to the file)."""
    p = Path(path)
    data, lines = load_yaml(p)
    return sweep_from_data(data, lines, str(p), p.resolve().parent)
