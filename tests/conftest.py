"""Shared fixtures: the repository root, the TPU v1 preset, small workloads."""

from __future__ import annotations

from pathlib import Path

import pytest

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
