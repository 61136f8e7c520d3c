"""What a newcomer meets in the first hour: `npusim list` shows the DRAM standards,
`npusim plot --kind bandwidth` draws a saved trace, `load_arch` takes a SCALE-Sim .cfg."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import StepPatch

import npusim
from npusim.cli import main
from npusim.report import plots
from npusim.report.trace import to_chrome_trace
from npusim.spec.dram_catalog import get_standard, standard_names

ROOT = Path(__file__).resolve().parent.parent


def test_list_shows_every_dram_standard_with_its_numbers(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    pattern = re.compile(r"^\s+(\S+)\s+(\d+) MT/s x\s+(\d+) bit x\s+(\d+) ch =\s+([\d.]+) GB/s, "
                         r"\s*([\d.]+) pJ/bit$", re.M)
    rows = {m[1]: m for m in pattern.finditer(out)}
    assert set(rows) == set(standard_names())
    for name, m in rows.items():
        s = get_standard(name)
        rate, width, ch = float(m[2]), int(m[3]), int(m[4])
        assert (rate, width, ch) == (round(s.data_rate_mts), s.channel_width_bits,
                                     s.default_channels)
        # peak = transfers/s per pin x pins per channel / 8 bits x channels, in GB/s
        assert float(m[5]) == pytest.approx(s.data_rate_mts * 1e6 * width / 8 * ch / 1e9,
                                            abs=0.05)
        assert float(m[6]) == pytest.approx(s.pj_per_bit, abs=0.005)
    # spot checks against the JEDEC figures themselves: LPDDR5-6400 is 6400 MT/s on a
    # 16-bit channel, 12.8 GB/s a channel; HBM3-6400 is 6.4 Gb/s on a 32-bit pseudo-channel
    assert float(rows["LPDDR5-6400"][5]) == pytest.approx(12.8 * int(rows["LPDDR5-6400"][4]))
    assert float(rows["HBM3-6400"][5]) == pytest.approx(25.6 * int(rows["HBM3-6400"][4]))


def test_load_arch_takes_a_scalesim_cfg() -> None:
    from npusim.inputs import resolve_chip

    cfg = next((ROOT / "tests" / "data" / "scalesim").rglob("*.cfg"))
    rows = cols = None
    for line in cfg.read_text().splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key.lower() == "arrayheight":
            rows = int(value)
        elif key.lower() == "arraywidth":
            cols = int(value)
    chip = npusim.load_arch(cfg)
    assert (chip.cores.core.systolic.rows, chip.cores.core.systolic.cols) == (rows, cols)
    assert chip == resolve_chip(str(cfg))  # the same chip the CLI builds


@pytest.fixture(scope="module")
def traced() -> npusim.Result:
    return npusim.simulate("tpu_v1", npusim.workloads.builtin("mobilenet_v2"), trace=True)


def test_plot_bandwidth_command_draws_the_traced_bytes(
        traced: npusim.Result, tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    to_chrome_trace(traced, trace)
    out = tmp_path / "bw.png"
    assert main(["plot", str(trace), "--kind", "bandwidth", "--bins", "40", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    # the plotted data, read back from the figure's artists
    fig = plots.dram_bandwidth_from_trace(json.loads(trace.read_text()),
                                          traced.chip.dram.peak_bandwidth, bins=40)
    ax = fig.axes[0]
    (step,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    gbps, edges_us = step.get_data().values, step.get_data().edges  # GB/s over µs bins
    moved = float(np.sum(np.asarray(gbps) * 1e9 * np.diff(edges_us) * 1e-6))
    layers = traced.layers
    assert moved == pytest.approx(float(layers["dram_read_bytes"].sum()
                                        + layers["dram_write_bytes"].sum()), rel=1e-6)
    # the time axis ends with the last layer (µs here: the run takes well under 1 s)
    assert edges_us[-1] == pytest.approx(layers["latency_s"].sum() * 1e6, rel=1e-6)
    # the dashed peak line: arch/tpu_v1.yaml gives 34 GB/s (the TPU paper's figure)
    peak = [ln.get_ydata()[0] for ln in ax.get_lines()]
    assert peak == [pytest.approx(34.0)]
    # the Python plot of the result draws the same bars
    (same,) = [p for p in plots.dram_bandwidth(traced, bins=40).axes[0].patches
               if isinstance(p, StepPatch)]
    np.testing.assert_allclose(same.get_data().values, gbps, rtol=1e-6)


def test_plot_bandwidth_needs_a_trace(traced: npusim.Result, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "r.json"
    from npusim.report.export import save_result

    save_result(traced, table)
    assert main(["plot", str(table), "--kind", "bandwidth", "-o", str(tmp_path / "b.png")]) == 2
    assert "npusim run --trace" in capsys.readouterr().err


def _clean_env() -> dict[str, str]:
    """The environment of a fresh shell in the checkout: no PYTHONPATH pointing at it."""
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_plain_pytest_collects_tests_that_import_the_tests_package() -> None:
    """The `pytest` script (not only `python -m pytest`, which puts the current directory on
    sys.path) imports `tests.naive_dram` and this checkout's npusim: pyproject's pythonpath
    puts the repository root first."""
    import shutil
    import subprocess
    import sys

    script = Path(sys.executable).parent / "pytest"
    exe = str(script) if script.exists() else shutil.which("pytest")
    if exe is None:
        pytest.skip("no pytest script on PATH")
    proc = subprocess.run([exe, "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/test_dram_controller.py"], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_quickstart_is_two_commands_and_ci_runs_the_test_one() -> None:
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert [b.strip() for b in blocks] == ["pip install -e . && npusim run",
                                           'pip install -e ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert 'python -m pip install --quiet -e ".[test]"' in ci and "pytest" in ci
    # [test] holds every extra, so the suite needs nothing else
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {e: {re.split(r"[<>=\[]", r)[0] for r in reqs} for e, reqs in extras.items()}
    assert names["onnx"] | names["parquet"] | names["dask"] <= names["test"]
    assert names["onnx"] | names["parquet"] | names["dask"] <= names["all"]
