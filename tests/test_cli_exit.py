"""The ``npusim`` process ends without the interpreter's teardown after most commands
(``npusim.cli.entry``): what it printed and wrote must all be there, and its exit code kept."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import npusim
from npusim import cli

ROOT = Path(__file__).resolve().parent.parent


def _npusim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "npusim.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_run_prints_and_writes_everything_before_the_quick_exit(tmp_path: Path) -> None:
    out = tmp_path / "r50.csv"
    proc = _npusim("run", "tpu_v1", "resnet50", "--out", str(out), "--rows", "0", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(f"wrote {out}")
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(npusim.workloads.resnet50().layers)  # every layer, one row each


def test_errors_keep_their_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "chip.yaml"
    bad.write_text("name: x\n")
    proc = _npusim("validate", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "clock: required key is missing" in proc.stdout + proc.stderr  # every problem listed


def test_commands_that_start_workers_take_the_normal_exit() -> None:
    assert "sweep" not in cli._QUICK_EXIT
