"""Printed tables never drop rows silently, show sizes as sizes, and print no rounding
residue as a figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from npusim.cli import main

SMALL = "workloads/sweeps/small.yaml"


def _front(df: pd.DataFrame, objs: list[str]) -> pd.DataFrame:
    """Rows no other row of the same workload dominates (brute force over pairs)."""
    keep = []
    for _, g in df[df["status"] == "ok"].groupby("workload"):
        vals = g[objs].to_numpy()
        keep += [i for i, a in zip(g.index, vals, strict=True)
                 if not any((b <= a).all() and (b < a).any() for b in vals)]
    return df.loc[keep]


def test_sweep_says_how_many_rows_it_left_out_and_all_prints_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.csv"
    args = ["sweep", SMALL, "--workers", "0", "--cache", str(tmp_path / "c"), "--quiet",
            "--pareto", "latency_s,area_mm2"]
    assert main([*args, "--rows", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    n = len(_front(pd.read_csv(out), ["latency_s", "area_mm2"]))
    assert n > 2
    assert f"(2 of {n} rows shown; --all prints every one)" in text
    assert main([*args, "--all"]) == 0
    text = capsys.readouterr().out
    assert "rows shown" not in text
    table = text.split("runs\n", 1)[1]  # after "Pareto front over …: N runs"
    assert sum(1 for ln in table.splitlines() if ln.strip()) == n + 1  # + the header
    # SRAM sizes as sizes, not bytes
    assert "MiB" in table and str(2**20) not in table


def test_run_says_how_many_layers_it_left_out(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.csv"
    assert main(["run", "tpu_v1", "resnet50", "--rows", "3", "--out", str(out)]) == 0
    layers = len(pd.read_csv(out))
    assert f"(3 of {layers} layers shown; --rows sets how many)" in capsys.readouterr().out


def test_idle_time_residue_prints_as_zero() -> None:
    """Two chips of a tp=2 decode step are busy the whole step; idle = step - busy leaves a
    residue of ~1e-19 s, which is no figure: the report says 0 s."""
    from npusim.report.export import format_system
    from npusim.system import run_llm_system

    res = run_llm_system("rngd_8card", "llama2_7b", prompt=16, gen=2, tp=2).decode
    raw = res.chips["time_idle_s"]
    assert (raw.abs() < 1e-9 * res.latency_s).all()  # a residue, if anything
    text = format_system(res)
    assert "idle 0 s (means)" in text
    assert "e-1" not in text and "e-2" not in text


def test_system_run_says_how_many_chips_it_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    """dp 8 on the 8-card server uses all 8 chips; --rows 3 shows 3 of them."""
    assert main(["run", "rngd_8card", "resnet50", "--dp", "8", "--rows", "3"]) == 0
    out = capsys.readouterr().out
    assert "(3 of 8 chips shown; --rows sets how many)" in out
