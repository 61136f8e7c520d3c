"""Plots (npusim.report.plots) and the ``npusim plot`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

import npusim
from npusim.cli import main
from npusim.report import plots
from npusim.report.export import save_result
from npusim.result import CAUSE_COLUMNS
from npusim.workloads import resnet50


@pytest.fixture(scope="module")
def res() -> npusim.Result:
    return npusim.simulate("tpu_v1", resnet50(), trace=True)


def _bars(ax: object) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]  # type: ignore[attr-defined]


def _assert_written(fig: Figure, draw: object, tmp_path: Path) -> None:
    assert isinstance(fig, Figure)
    for suffix in (".png", ".svg"):
        p = tmp_path / f"plot{suffix}"
        draw(p)  # type: ignore[operator]
        assert p.stat().st_size > 1000
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "plot.svg").read_bytes()[:2000]


def test_latency_by_cause(res: npusim.Result, tmp_path: Path) -> None:
    fig = res.plot.latency()
    ax = fig.axes[0]
    df = res.layers
    nonzero = [c for c in CAUSE_COLUMNS if df[c].abs().sum() > 0]
    bars = _bars(ax)
    assert len(bars) == len(nonzero) >= 2
    assert all(len(b) == len(df) for b in bars)
    # the top of each stack is the layer's latency (in the axis unit, µs here)
    tops = np.array([r.get_y() + r.get_height() for r in bars[-1]])
    np.testing.assert_allclose(tops, df["latency_s"].to_numpy() * 1e6, rtol=1e-9)
    _assert_written(fig, res.plot.latency, tmp_path)


def test_energy_breakdown(res: npusim.Result, tmp_path: Path) -> None:
    fig = res.plot.energy()
    per_layer, total = fig.axes[0], fig.axes[1]
    # MAC, SRAM, DRAM, NoC, wire, vector, static, host link
    assert [len(b) for b in _bars(per_layer)] == [len(res.layers)] * 8
    assert [len(b) for b in _bars(total)] == [1] * 8
    top = max(r.get_y() + r.get_height() for b in _bars(total) for r in b)
    assert top == pytest.approx(res.layers["energy_j"].sum() * 1e3, rel=1e-6)  # mJ
    _assert_written(fig, res.plot.energy, tmp_path)


def test_roofline(res: npusim.Result, tmp_path: Path) -> None:
    fig = res.plot.roofline()
    ax = fig.axes[0]
    df = res.layers
    expected = ((df["macs"] > 0) & (df["dram_read_bytes"] + df["dram_write_bytes"] > 0)).sum()
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == expected > 0
    # no point above the roof
    chip = res.chip
    for c in points:
        xy = np.asarray(c.get_offsets())
        roof = np.minimum(chip.peak_ops_per_second(), xy[:, 0] * chip.dram.peak_bandwidth)
        assert (xy[:, 1] <= roof * (1 + 1e-9)).all()
    _assert_written(fig, res.plot.roofline, tmp_path)


def test_bandwidth(res: npusim.Result, tmp_path: Path) -> None:
    fig = plots.dram_bandwidth(res, bins=50)
    ax = fig.axes[0]
    assert len(ax.patches) >= 1
    edges, rate, source = plots._bandwidth_series(res, 50)
    assert source == "DRAM channel activity"
    moved = float((rate * np.diff(edges)).sum())
    s = res.summary()
    assert moved == pytest.approx(s["dram_read_bytes"] + s["dram_write_bytes"], rel=1e-9)
    # each channel serves at its peak rate, one share at a time: never above the chip's peak
    assert 0 < rate.max() <= res.chip.dram.peak_bandwidth * (1 + 1e-9)
    _assert_written(fig, res.plot.bandwidth, tmp_path)


def test_memory_capacity(tmp_path: Path) -> None:
    gib = 2**30
    fig = plots.memory_capacity([28 * gib, 28 * gib], 2 * gib, 0.1 * gib, [32 * gib, 24 * gib],
                                labels=["LPDDR", "HBM"])
    bars = _bars(fig.axes[0])
    assert [len(b) for b in bars] == [2, 2, 2]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("(fits)" in t for t in texts) and any("does not fit" in t for t in texts)
    _assert_written(fig, lambda p: plots.memory_capacity(1, 2, 3, 10, p), tmp_path)
    with pytest.raises(ValueError, match="labels"):
        plots.memory_capacity(1, 2, 3, [10, 20], labels=["one"])


def test_unknown_suffix(res: npusim.Result, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        res.plot.latency(tmp_path / "x.jpg")


def test_dataframe_input_and_missing_columns(res: npusim.Result) -> None:
    assert isinstance(plots.latency_by_cause(res.layers), Figure)
    with pytest.raises(ValueError, match="chip"):
        plots.roofline(res.layers)
    with pytest.raises(ValueError, match="time_mac_s"):
        plots.latency_by_cause(pd.DataFrame({"layer": ["a"], "latency_s": [1.0]}))


def test_plot_command(res: npusim.Result, tmp_path: Path) -> None:
    js, csv = tmp_path / "r.json", tmp_path / "r.csv"
    save_result(res, js)
    save_result(res, csv)
    for kind in ("latency", "energy", "roofline"):
        out = tmp_path / f"{kind}.svg"
        assert main(["plot", str(js), "--kind", kind, "-o", str(out)]) == 0
        assert out.stat().st_size > 1000
    # a CSV has no summary: the roofline needs --arch
    assert main(["plot", str(csv), "--kind", "roofline", "-o", str(tmp_path / "r.png")]) == 2
    assert main(["plot", str(csv), "--kind", "roofline", "--arch", "tpu_v1",
                 "-o", str(tmp_path / "r.png")]) == 0
    assert main(["plot", str(csv), "-o", str(csv)]) == 2  # never overwrites its input
    assert main(["plot", str(csv), "--kind", "pareto", "-o", str(tmp_path / "p.png")]) == 2
    table = tmp_path / "t.csv"
    pd.DataFrame({"latency_s": [1.0]}).to_csv(table, index=False)
    assert main(["plot", str(table), "--kind", "latency", "-o", str(tmp_path / "t.png")]) == 2


def test_plot_command_sweep_table(tmp_path: Path) -> None:
    sweep = pytest.importorskip("npusim.sweep")
    df = sweep.run_sweep(Path(__file__).parent.parent / "workloads" / "sweeps" / "small.yaml",
                         workers=0, cache_dir=None, progress=False)
    table = tmp_path / "sweep.csv"
    df.to_csv(table, index=False)
    out = tmp_path / "front.png"
    assert main(["plot", str(table), "-o", str(out)]) == 0  # pareto by default
    assert out.stat().st_size > 1000
    assert main(["plot", str(table), "--kind", "roofline", "-o", str(out)]) == 2


def test_every_cause_has_a_legend_label():
    """A cause without a label would fail the latency plot of any layer that has it."""
    from npusim.report.plots import CAUSE_LABELS

    assert set(CAUSE_LABELS) == set(CAUSE_COLUMNS)
