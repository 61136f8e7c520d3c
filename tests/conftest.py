"""Shared fixtures: the repository root, the TPU v1 preset, small workloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

import npusim
from npusim.spec.arch import Chip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tpu_v1() -> Chip:
    return npusim.load_arch(ROOT / "arch" / "tpu_v1.yaml")


@pytest.fixture()
def tpu_v1_text() -> str:
    return (ROOT / "arch" / "tpu_v1.yaml").read_text()


# Property tests run the same examples on every machine: a CI failure is reproducible, and
# a run never depends on a local example database.
settings.register_profile("npusim", derandomize=True, database=None, deadline=None)
settings.load_profile("npusim")


@pytest.fixture(autouse=True, scope="session")
def _no_compile_notice() -> None:
    """The CLI prints ``npusim: compiling kernels…`` at a process's first numba compilation,
    terminal or not; on a cold cache that would land in whichever test compiles first and
    break its one-line stderr. Said already, for the tests (tests/test_progress.py resets it
    to test the notice itself)."""
    from npusim import progress

    progress._CompileNotice.said = True
