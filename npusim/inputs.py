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

from npusim.errors import SpecError
from npusim.limits import TooLargeError
from npusim.spec.arch import Chip, load_arch
from npusim.spec.system import System
from npusim.workloads.ir import Workload

__all__ = ["DEFAULT_CHIP", "DEFAULT_WORKLOAD", "input_paths", "naming_inputs", "resolve_chip",
           "resolve_system", "resolve_workload"]

DEFAULT_CHIP = "tpu_v1"
DEFAULT_WORKLOAD = "resnet50"


def resolve_chip(name: str | None) -> Chip:
    name = name or DEFAULT_CHIP
    p = Path(name)
    if p.suffix.lower() == ".cfg":
        from npusim.spec.scalesim import load_scalesim_cfg

        return load_scalesim_cfg(p)
    if p.suffix.lower() in (".yaml", ".yml") or p.exists():
        return load_arch(p)
    return load_arch(name)  # a preset name


def resolve_system(name: str | None) -> System | None:
    """The system ``name`` names (a system YAML or a system preset), or None for a chip."""
    if not name:
        return None
    from npusim.presets import list_systems
    from npusim.spec.system import is_system_data, load_system

    p = Path(name)
    if p.suffix.lower() in (".yaml", ".yml") and p.exists():
        from npusim.spec.yamlio import load_yaml

        data, _ = load_yaml(p)
        return load_system(p) if is_system_data(data) else None
    if not p.suffix and not p.exists() and name in list_systems():
        return load_system(name)
    return None


def resolve_workload(name: str | None, batch: int = 1, attention: str = "fused") -> Workload:
    """The workload ``name`` names; ``attention`` (fused or materialized) applies to an HF
    config.json."""
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
        from npusim.workloads.onnx_import import from_onnx

        return from_onnx(p, batch=batch)
    elif suffix == ".json":
        from npusim.workloads.llm import from_hf_config

        return from_hf_config(p, phase="prefill", batch=batch, attention=attention)
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
    """The files among ``names`` that exist, resolved (outputs must never overwrite them)."""
    return [Path(n).resolve() for n in names if n and Path(n).exists()]


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
        where += [f"--{k.replace('_', '-')} {v}" for k, v in options.items()]
        raise TooLargeError(": ".join([*where, str(exc)]), exc.layer) from None
