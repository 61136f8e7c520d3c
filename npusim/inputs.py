"""Resolving what a user names on the command line or in a sweep into a chip and a workload.

A chip is a YAML path, a preset name from ``arch/`` or a SCALE-Sim ``.cfg``; a system (many
chips) is a system YAML (one with ``chip`` and ``topology``) or a preset from
``arch/systems/``. A workload is
a built-in name (``resnet50``), a YAML workload, a SCALE-Sim topology ``.csv``, an ``.onnx``
model, or an HF-style ``config.json`` (simulated as a prefill).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npusim.errors import SpecError
from npusim.limits import TooLargeError
from npusim.spec.arch import Chip, load_arch
from npusim.workloads.ir import Workload

if TYPE_CHECKING:
    from npusim.spec.system import System

__all__ = ["DEFAULT_CHIP", "DEFAULT_WORKLOAD", "FIGURE_SUFFIXES", "TABLE_SUFFIXES",
           "check_outputs", "input_paths", "naming_inputs", "resolve_chip", "resolve_system",
           "resolve_workload"]

DEFAULT_CHIP = "tpu_v1"
DEFAULT_WORKLOAD = "resnet50"


def resolve_chip(name: str | None) -> Chip:
    name = name or DEFAULT_CHIP
    p = Path(name)
    if p.suffix.lower() == ".cfg":
        from npusim.spec.arch import load_scalesim_cfg

        return load_scalesim_cfg(p)
    if p.suffix.lower() in (".yaml", ".yml") or p.exists():
        return load_arch(p)
    return load_arch(name)  # a preset name


def resolve_system(name: str | None) -> System | None:
    """The system ``name`` names (a system YAML or a system preset), or None for a chip."""
    if not name:
        return None
    from npusim.presets import list_systems

    p = Path(name)
    if p.suffix.lower() in (".yaml", ".yml") and p.exists():
        from npusim.spec.yamlio import is_system_data, load_yaml

        data, _ = load_yaml(p)
        if not is_system_data(data):
            return None
        from npusim.spec.system import load_system

        return load_system(p)
    if not p.suffix and not p.exists() and name in list_systems():
        from npusim.spec.system import load_system

        return load_system(name)
    return None


def resolve_workload(name: str | None, batch: int = 1, attention: str = "fused",
                     **hf: Any) -> Workload:
    """The workload ``name`` names; ``attention`` (fused or materialized) and ``hf`` (the
    other keywords of :func:`~npusim.workloads.from_hf_config`: ``weights``, ``routing``)
    apply to an HF config.json."""
    from npusim import workloads

    name = name or DEFAULT_WORKLOAD
    p = Path(name)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        wl = workloads.load_workload(p)
    elif suffix == ".csv":
        from npusim.spec.scalesim import load_scalesim_topology

        wl = load_scalesim_topology(p)
    elif suffix == ".onnx":
        return workloads.from_onnx(p, batch=batch)
    elif suffix == ".json":
        from npusim.workloads.llm import from_hf_config

        return from_hf_config(p, phase="prefill", batch=batch, attention=attention, **hf)
    elif p.exists():
        raise SpecError(f"cannot tell what kind of workload {name!r} is (use .yaml, .csv, "
                        f".onnx or .json)", name)
    elif name.strip().lower().replace("-", "_") in workloads.builtin_names():
        return workloads.builtin(name, batch=batch)
    else:
        raise SpecError(f"no workload file or built-in workload named {name!r} "
                        f"(built-in: {', '.join(workloads.builtin_names())})")
    return wl.with_batch(batch) if batch != 1 else wl


def input_paths(*names: str | None) -> list[Path]:
    """The files among ``names`` that exist, resolved, and the chip file a system YAML among
    them names (outputs must never overwrite any of them)."""
    out = [Path(n).resolve() for n in names if n and Path(n).is_file()]
    for p in list(out):
        if p.suffix.lower() in (".yaml", ".yml"):
            from npusim.spec.yamlio import is_system_data, load_yaml

            try:
                data, _ = load_yaml(p)
            except SpecError:
                continue  # the command reports it when it loads the file
            if is_system_data(data) and isinstance(data["chip"], str):
                chip = p.parent / data["chip"]
                if chip.is_file():
                    out.append(chip.resolve())
    return out


TABLE_SUFFIXES = (".csv", ".json", ".parquet")
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_outputs(outputs: dict[str, tuple[str | None, tuple[str, ...]]],
                  inputs: list[Path]) -> None:
    """Refuse, before any work, what would destroy data or fail at the end: for each
    ``option: (path, suffixes)`` given, a path naming an input file or another output, a
    suffix not in ``suffixes``, a folder that does not exist (npusim creates none)."""
    seen: dict[Path, str] = {}
    for option, (path, suffixes) in outputs.items():
        if not path:
            continue
        p, r = Path(path), Path(path).resolve()
        if r in inputs:
            raise SpecError(f"{option} {path}: refusing to overwrite input file {path!r} "
                            f"with results")
        if r in seen:
            raise SpecError(f"{option} and {seen[r]} name the same file {path!r}")
        if suffixes and p.suffix.lower() not in suffixes:
            raise SpecError(f"{option} {path}: unknown output format "
                            f"{p.suffix or '(no suffix)'!r} (use {', '.join(suffixes)})")
        if p.is_dir():
            raise SpecError(f"{option} {path}: is a folder, not a file")
        if not p.parent.is_dir():
            raise SpecError(f"{option} {path}: no folder {str(p.parent)!r} (npusim does not "
                            f"create folders)")
        seen[r] = option


@contextmanager
def naming_inputs(workload: str | None = None, **options: int) -> Iterator[None]:
    """Name what set the size in a :class:`~npusim.limits.TooLargeError` raised inside: the
    command-line ``options`` (``batch=64`` becomes ``--batch 64``) and, for a YAML
    workload, the file and line of the layer that passed the budget."""
    try:
        yield
    except TooLargeError as exc:
        where = []
        if workload and exc.layer is not None and Path(workload).suffix.lower() in (
                ".yaml", ".yml") and Path(workload).exists():
            from npusim.spec.yamlio import line_for, load_yaml

            key = f"layers[{exc.layer}]"
            where.append(f"{workload}:{line_for(key, load_yaml(workload)[1])}: {key}")
        if options:
            where.append(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items()))
        raise TooLargeError(": ".join([*where, str(exc)]), exc.layer) from None
