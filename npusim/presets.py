"""Where the shipped chip presets (``arch/``), system presets (``arch/systems/``) and
workloads (``workloads/``) live."""

from __future__ import annotations

from pathlib import Path

from npusim.errors import SpecError

__all__ = ["ARCH_DIR", "SYSTEM_DIR", "WORKLOAD_DIR", "list_presets", "list_systems",
           "list_workloads", "preset_path", "system_path"]

_ROOT = Path(__file__).resolve().parent.parent
ARCH_DIR = _ROOT / "arch"
WORKLOAD_DIR = _ROOT / "workloads"
SYSTEM_DIR = ARCH_DIR / "systems"


def list_presets() -> list[str]:
    return sorted(p.stem for p in ARCH_DIR.glob("*.yaml"))


def list_workloads() -> list[str]:
    return sorted(p.stem for p in WORKLOAD_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    p = ARCH_DIR / f"{name}.yaml"
    if not p.exists():
        raise SpecError(f"no chip file or preset named {name!r} (presets: {', '.join(list_presets())})")
    return p


def list_systems() -> list[str]:
    return sorted(p.stem for p in SYSTEM_DIR.glob("*.yaml"))


def system_path(name: str) -> Path:
    p = SYSTEM_DIR / f"{name}.yaml"
    if not p.exists():
        raise SpecError(f"no system file or preset named {name!r} "
                        f"(systems: {', '.join(list_systems())})")
    return p
