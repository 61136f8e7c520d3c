"""The public surface is explicit: every module lists it in ``__all__``, and it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import npusim

MODULES = sorted(m.name for m in pkgutil.walk_packages(npusim.__path__, "npusim.")
                 if not m.name.split(".")[-1].startswith("_"))


def test_top_level_names() -> None:
    for name in npusim.__all__:
        assert getattr(npusim, name) is not None, name
    assert {"load_arch", "simulate", "workloads", "sweep", "Result"} <= set(npusim.__all__)
    # LLMs: a chip's run (weights per tensor class, MoE routing) and the weights' parser.
    assert {"run_llm", "parse_weights"} <= set(npusim.__all__)


@pytest.mark.parametrize("module", MODULES)
def test_module_declares_what_it_exports(module: str) -> None:
    mod = importlib.import_module(module)
    if module.startswith("npusim.commands.") or module == "npusim.commands":
        assert module == "npusim.commands" or hasattr(mod, "register")
        return
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    for name in exported:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which is missing"
