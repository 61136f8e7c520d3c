"""`npusim sweep`, table files and the sweep plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from npusim.cli import main
from npusim.sweep import layers_of, run_sweep
from npusim.sweep.plots import (
    axis_columns,
    plot_layer_breakdown,
    plot_metric_vs_axis,
    plot_pareto,
    plot_table_file,
)

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "workloads" / "sweeps" / "small.yaml"


def test_sweep_command_writes_tables_front_and_plot(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cache, pq, csv, png = (tmp_path / n for n in ("c", "t.parquet", "t.csv", "p.png"))
    args = ["sweep", str(SMALL), "--workers", "0", "--cache", str(cache), "--quiet",
            "--out", str(pq), "--out", str(csv), "--pareto", "latency_s,energy_j,area_mm2",
            "--plot", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 points x 1 workloads = 6 runs (6 distinct): 6 computed, 0 from cache" in out
    assert "2 points pruned by constraints" in out
    a, b = pd.read_parquet(pq), pd.read_csv(csv)
    assert len(a) == len(b) == 6
    assert a["pareto"].any() and not a["pareto"].all()
    assert list(a.columns) == list(b.columns)
    assert png.stat().st_size > 1000
    assert main(args) == 0
    assert "0 computed, 6 from cache" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(pq), a)


def test_sweep_command_refuses_bad_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SMALL.read_text())
    before = spec.read_text()
    assert main(["sweep", str(spec), "--out", str(spec), "--no-cache", "--quiet"]) == 2
    assert "refusing to overwrite input file" in capsys.readouterr().err
    assert spec.read_text() == before
    assert main(["sweep", str(spec), "--out", str(tmp_path / "t.xlsx"), "--quiet"]) == 2
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2


def test_sweep_plots(tmp_path: Path) -> None:
    df = run_sweep(SMALL, workers=0, cache_dir=tmp_path / "c", progress=False)
    assert axis_columns(df) == ["rows", "cols", "sram", "dram"]
    fig = plot_pareto(df, "latency_s", "energy_j", objectives="latency_s,energy_j,area_mm2")
    assert len(fig.axes) == 1
    fig = plot_metric_vs_axis(df, "latency_s", "sram", fixed={"dram": "HBM3-6400"})
    (ax,) = fig.axes
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 2
    ok = df[df["status"] == "ok"]
    a, b = layers_of(ok.iloc[0], tmp_path / "c"), layers_of(ok.iloc[-1], tmp_path / "c")
    assert list(a["layer"]) == ["fc1", "act", "fc2"]
    fig = plot_layer_breakdown(a, b, labels=("first", "last"))
    assert len(fig.axes) == 2
    assert plot_layer_breakdown(a, b, kind="energy").axes[0].get_title().startswith("A:")
    table = tmp_path / "t.parquet"
    df.to_parquet(table)
    plot_table_file(table, tmp_path / "f.svg")
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
