"""`npusim sweep`, table files and the sweep plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    assert len(fig.axes) == 2  # the panel and its key of the front's designs
    ok = df[df["status"] == "ok"]
    drawn = {(float(x), float(y)) for c in fig.axes[0].collections[:2] for x, y in c.get_offsets()}
    assert drawn == set(zip(ok["latency_s"], ok["energy_j"], strict=True))
    fig = plot_metric_vs_axis(df, "latency_s", "sram", fixed={"dram": "HBM3-6400"})
    (ax,) = fig.axes
    # rows/cols (a group) held at the first row's 16x16, dram as told: sram's two values
    sel = ok[(ok["dram"] == "HBM3-6400") & (ok["rows"] == 16)].sort_values("sram")
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xydata(),
                                  sel[["sram", "latency_s"]].to_numpy(dtype=float))
    a, b = layers_of(ok.iloc[0], tmp_path / "c"), layers_of(ok.iloc[-1], tmp_path / "c")
    assert list(a["layer"]) == ["fc1", "act", "fc2"]
    fig = plot_layer_breakdown(a, b, labels=("first", "last"))
    assert len(fig.axes) == 2
    # each panel's bars stack to the layer latencies (µs), and its title is their sum
    for ax, t in zip(fig.axes, (a, b), strict=True):
        widths = np.zeros(len(t))
        for bars in ax.containers:
            widths += [r.get_width() for r in bars]
        parts = [c for c in t.columns if c.startswith("time_") and c != "time_noc_s"]
        np.testing.assert_allclose(widths, t[parts].fillna(0).sum(axis=1) * 1e6, rtol=1e-12)
        assert ax.get_title().endswith(f"{widths.sum():.4g} µs total")
    assert plot_layer_breakdown(a, b, kind="energy").axes[0].get_title().startswith("A:")
    table = tmp_path / "t.parquet"
    df.to_parquet(table)
    plot_table_file(table, tmp_path / "f.svg")
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
