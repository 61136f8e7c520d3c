"""bench/scalesim_compare.py: its --quick mode, its comparison logic, and (where SCALE-Sim is
installed in a throwaway venv) the real side-by-side run.

The expected npusim cycles are recomputed here from SCALE-Sim's convention
(its ``systolic_compute_*`` cycle counts, as docs/model.md "Systolic array" states them),
independently of npusim/kernels/systolic.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "scalesim_compare.py"
DATA = ROOT / "bench" / "data" / "scalesim"
VENV = Path(os.environ.get("NPUSIM_SCALESIM_VENV", "/tmp/npusim-scalesim-venv"))


def _load_script():
    spec = importlib.util.spec_from_file_location("scalesim_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scalesim_compare"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sc = _load_script()


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _stall_free(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim's stall-free cycles of one GEMM (folds x cycles per fold - 1)."""
    if dataflow == "ws":
        folds, per = _ceil(k, rows) * _ceil(n, cols), 2 * rows + cols + m - 2
    elif dataflow == "os":
        folds, per = _ceil(m, rows) * _ceil(n, cols), rows + cols + k - 2
    else:
        folds, per = _ceil(k, rows) * _ceil(m, cols), 2 * rows + cols + n - 2
    return folds * per - 1


# (name, M, N, K, channels of a depthwise layer else 1) of bench/data/scalesim/conv_small.csv,
# worked out by hand: M = out_h x out_w with out = ceil((H - F + S) / S), K = Fh x Fw x C.
CONV_SMALL = [("c3x3", 256, 24, 72, 1), ("c3x3_s2", 64, 20, 144, 1), ("c5x2_s2", 42, 9, 30, 1),
              ("c1x3", 90, 7, 18, 1), ("c1x1", 64, 33, 40, 1), ("c3x3_DP", 64, 1, 9, 4),
              ("fc", 1, 10, 100, 1)]


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_quick_mode_without_scalesim_reports_npusim_cycles(tmp_path, capsys, dataflow):
    code = sc.main(["--quick", "--venv", str(tmp_path / "no-venv"), "--json", "--repeat", "1",
                    "--dataflow", dataflow, "--topology", str(DATA / "conv_small.csv")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["scalesim_run"] is False
    assert any("not installed" in note for note in out["notes"])
    (run,) = out["runs"]
    assert run["dataflow"] == dataflow and run["scalesim_wall_s"] is None
    got = [(r["layer"], r["m"], r["n"], r["k"], r["npusim_cycles"], r["status"])
           for r in run["rows"]]
    want = []
    for name, m, n, k, groups in CONV_SMALL:
        # npusim applies SCALE-Sim's "- 1" once per GEMM: once per depthwise group
        cycles = groups * _stall_free(m, n, k, 16, 16, dataflow)
        want.append((name, m, n, k, cycles, "not run"))
    assert got == want


def test_quick_mode_table_output(tmp_path, capsys):
    code = sc.main(["--quick", "--venv", str(tmp_path / "no-venv"), "--repeat", "1"])
    text = capsys.readouterr().out
    assert code == 0
    assert "not installed" in text
    for layer in ("c3x3_s2", "c5x2_s2", "g_ragged", "g_deep"):
        assert layer in text


def test_quick_mode_as_a_script(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", "--repeat", "1",
                           "--venv", str(tmp_path / "no-venv"),
                           "--topology", str(DATA / "gemm_small.csv")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rows = out["runs"][0]["rows"]
    assert [r["npusim_cycles"] for r in rows] == [
        _stall_free(m, n, k, 16, 16, "ws") for m, n, k in
        [(32, 32, 32), (20, 13, 37), (7, 40, 9), (33, 5, 70)]]


def test_no_install_fails_cleanly_without_a_venv(tmp_path, capsys):
    assert sc.main(["--no-install", "--venv", str(tmp_path / "no-venv")]) == 2
    assert "not installed" in capsys.readouterr().err


def test_parse_compute_report(tmp_path):
    report = tmp_path / "COMPUTE_REPORT.csv"
    report.write_text(
        "LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, "
        "Mapping Efficiency %, Compute Util %,\n"
        "0, 923, 859, 0, 50.2, 67.5, 46.4,\n"
        "1, 4283, 3990, 77, 76.0, 96.7, 71.2,\n")
    assert sc.parse_compute_report(report) == [859, 3913]


def test_comparison_statuses(tmp_path, monkeypatch):
    """Depthwise rows are summed and compare directly; any difference is a mismatch."""
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                    "Channels, Num Filter, Strides,\n"
                    "a,10,10,3,3,4,12,1,\n"
                    "dw_DP,10,10,3,3,3,1,1,\n"
                    "b,6,6,1,1,17,33,1,\n")
    a = _stall_free(64, 12, 36, 16, 16, "ws")
    dw = _stall_free(64, 1, 9, 16, 16, "ws")
    b = _stall_free(36, 33, 17, 16, 16, "ws")

    def fake(venv, cfg, topology, gemm, workdir, timeout_s):
        return [a, dw, dw, dw, b + 5], 1.0, 1.5

    monkeypatch.setattr(sc, "run_scalesim", fake)
    res = sc.compare_one(DATA / "array_16x16_ws.cfg", topo, venv=tmp_path, use_scalesim=True,
                         repeat=1, workdir=tmp_path, timeout_s=10)
    assert [(r.scalesim_cycles, r.diff, r.status) for r in res.rows] == [
        (a, 0, "match"), (3 * dw, 0, "match"), (b + 5, -5, "MISMATCH")]
    assert res.scalesim_wall_s == 1.0 and res.ratio == pytest.approx(1.0 / res.npusim_warm_s)
    assert sc.summary([res])["mismatch"] == 1


def test_dataflow_override_rewrites_the_cfg(tmp_path):
    out = sc.cfg_with_dataflow(DATA / "array_16x16_ws.cfg", "is", tmp_path)
    assert sc.cfg_dataflow(out) == "is"
    assert "run_name = npusim_compare_16x16_is" in out.read_text()
    assert sc.cfg_with_dataflow(DATA / "array_16x16_ws.cfg", None, tmp_path) == \
        DATA / "array_16x16_ws.cfg"


def _scalesim_in_venv() -> bool:
    py = VENV / "bin" / "python"
    if not py.exists():
        return False
    return subprocess.run([str(py), "-c", "import scalesim.scale_sim"],
                          capture_output=True, timeout=120).returncode == 0


@pytest.mark.scalesim
def test_against_real_scalesim(capsys):
    if not _scalesim_in_venv():
        pytest.skip(f"SCALE-Sim is not installed in {VENV}")
    code = sc.main(["--no-install", "--venv", str(VENV), "--json", "--repeat", "1",
                    "--timeout", "300"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["scalesim_run"] is True
    summ = out["summary"]
    assert summ["compared"] == summ["layers"] == 11
    assert summ["mismatch"] == 0, [r for run in out["runs"] for r in run["rows"]
                                   if r["status"] == "MISMATCH"]
    assert summ["match"] == 11
