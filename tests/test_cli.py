"""The npusim command: output, exit codes, one-line errors, files never overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from npusim.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "npusim.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_run_without_arguments_simulates_resnet50_on_the_default_chip() -> None:
    p = run_cli("run")
    assert p.returncode == 0, p.stderr
    assert "Google TPU v1" in p.stdout and "resnet50" in p.stdout
    assert "layer1.0.conv1" in p.stdout and "latency" in p.stdout


def test_bad_chip_file_is_one_line_exit_2_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "arch/tpu_v1.yaml").read_text().replace("rows: 256", "rows: -4"))
    p = run_cli("run", str(bad))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.yaml:" in lines[0] and "cores.core.systolic.rows" in lines[0]


def test_validate_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "arch/tpu_v1.yaml").read_text()
                   .replace("rows: 256", "rows: -4").replace("DDR3-2133", "DDR0"))
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "cores.core.systolic.rows" in out and "dram.standard" in out
    assert main(["validate", str(ROOT / "arch/tpu_v1.yaml")]) == 0


def test_unknown_workload_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tpu_v1", "no_such_net"]) == 2
    assert "no_such_net" in capsys.readouterr().err


def test_out_files_and_no_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for suffix in (".csv", ".json", ".parquet"):
        out = tmp_path / f"r{suffix}"
        assert main(["run", "tpu_v1", "mobilenet_v2", "--out", str(out)]) == 0
        assert out.exists()
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(pd.read_parquet(tmp_path / "r.parquet"))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["latency_s"] > 0
    chip = tmp_path / "chip.yaml"
    original = (ROOT / "arch/tpu_v1.yaml").read_text()
    chip.write_text(original)
    assert main(["run", str(chip), "mobilenet_v2", "--out", str(chip)]) == 2
    assert chip.read_text() == original
    assert "refusing to overwrite" in capsys.readouterr().err


def test_compile_then_run_the_tile_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.parquet"
    assert main(["compile", "tpu_v1", "mobilenet_v2", "-o", str(trace)]) == 0
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["run", "tpu_v1", "mobilenet_v2", "--out", str(a)]) == 0
    assert main(["run", "tpu_v1", "--tile-trace", str(trace), "--out", str(b)]) == 0
    da, db = pd.read_csv(a), pd.read_csv(b)
    pd.testing.assert_series_equal(da["cycles"], db["cycles"])
    pd.testing.assert_series_equal(da["energy_j"], db["energy_j"])


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tpu_v1" in out and "resnet50" in out


def test_scenario_and_dram_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tpu_v1", "mobilenet_v2", "--scenario", "offline", "--rows", "0"]) == 0
    out = capsys.readouterr().out
    assert "offline: batch" in out and "inferences_per_s" in out
    cmds = tmp_path / "cmds.csv"
    assert main(["run", "tpu_v1", "mobilenet_v2", "--memory", "cycle", "--rows", "0",
                 "--dram-commands", str(cmds)]) == 0
    lines = cmds.read_text().splitlines()
    assert lines[0] == "cycle,channel,rank,bankgroup,bank,row,command"
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} >= {"ACT", "RD"}
    assert main(["run", "tpu_v1", "mobilenet_v2", "--dram-commands", str(cmds)]) == 2
    assert capsys.readouterr().err.strip() == "npusim: error: --dram-commands needs --memory cycle"


def test_several_problems_still_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "wl.yaml"
    bad.write_text("name: x\nlayers:\n  - op: conv2d\n    name: c\n    in_h: -3\n    kernal: 3\n"
                   "    in_w: 8\n    in_c: 4\n    out_c: 8\n    kernel: 3\n")
    assert main(["run", "tpu_v1", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "wl.yaml:5: layers[0].in_h" in err[0] and "1 more" in err[0]
