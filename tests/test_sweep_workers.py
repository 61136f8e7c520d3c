"""A sweep killed with SIGKILL leaves no worker processes behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every run sleeps a minute before simulating, so the workers are busy (not idle in the
# pool's queue) when their parent is killed.
_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import npusim.sweep.execute as exec_mod
import npusim.sweep.run as run_mod
from npusim.sweep.spec import sweep_from_data
real = exec_mod.run_task
def slow(task, wl):
    time.sleep(60)
    return real(task, wl)
exec_mod.run_task = slow
spec = {{
    "name": "t", "base": "tpu_v1",
    "set": {{"dram.bandwidth": None, "dram.channels": None, "cores.core.accumulator": None}},
    "workloads": ["resnet50"],
    "axes": {{"cores.core.systolic.rows": [16, 32, 64, 128]}},
}}
run_mod.run_sweep(sweep_from_data(spec, root={root!r}), workers=2, cache_dir=None,
                  progress=False)
"""


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigkill_of_a_sweep_takes_its_workers_with_it() -> None:
    script = textwrap.dedent(_SCRIPT).format(root=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240  # a loaded machine is slow to import and plan
        while len(workers) < 2 and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"sweep ended early: {proc.stderr.read().decode()}")
            workers = _children(proc.pid)
            time.sleep(0.1)
        assert len(workers) == 2, "the pool's two workers never started"
        time.sleep(1.0)  # let the initializers run (they install the parent watch)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for w in workers:  # never leave them behind, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)
    assert left == [], f"orphaned workers {left} outlived the killed sweep"
