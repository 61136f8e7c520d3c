"""Calibration: a synthetic round trip (a perturbed chip's simulated times as the
"measurements", fitted from the unperturbed chip), the hold-out error under noise, the
calibrated file, and one clear line for each bad input."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

import npusim
from npusim.calibration import Measurement, calibrate, load_measurements, predict
from npusim.calibration.data import with_fields
from npusim.cli import main
from npusim.errors import NpusimError, SpecError
from npusim.presets import list_presets
from npusim.workloads.ir import Matmul, Workload

# On TPU v4 (no host link) the square GEMM is bound by the clock, the thin ones lean on
# DRAM and their three layers on the per-layer overhead: the three fields are identifiable.
W = {"gemm": Workload("gemm", (Matmul(name="g1", m=1024, n=1024, k=1024),)),
     "thin": Workload("thin", (Matmul(name="t1", m=2048, n=256, k=256),
                               Matmul(name="t2", m=2048, n=256, k=256),
                               Matmul(name="t3", m=2048, n=128, k=256))),
     "mid": Workload("mid", (Matmul(name="m1", m=512, n=512, k=2048),
                             Matmul(name="m2", m=2048, n=512, k=128)))}
ROWS = [("gemm", None), ("thin", None), ("thin", "t1"), ("thin", "t3"), ("mid", None),
        ("mid", "m2")]
FIELDS = ["clock", "dram.bandwidth", "overheads.per_layer_s"]
BOUNDS = ["overheads.per_layer_s=0:10us"]


def _resolve(name: str, batch: int) -> Workload:
    return W[name]


@pytest.fixture(scope="module")
def chips() -> tuple[npusim.Chip, npusim.Chip]:
    base = npusim.load_arch("tpu_v4")
    true = with_fields(base, {"clock": base.clock * 1.2,
                              "dram.bandwidth": base.dram.peak_bandwidth * 0.8,
                              "overheads.per_layer_s": 2e-6})
    return base, true


def _measure(chip: npusim.Chip, noise: list[float] | None = None) -> list[Measurement]:
    rows = [Measurement(w, 1.0, layer, 1, i + 2) for i, (w, layer) in enumerate(ROWS)]
    times = predict(chip, rows, {(k, 1): v for k, v in W.items()})
    noise = noise or [0.0] * len(rows)
    return [Measurement(m.workload, float(t) * (1 + e), m.layer, 1, m.line)
            for m, t, e in zip(rows, times, noise, strict=True)]


def test_round_trip_recovers_the_perturbed_fields(chips):
    base, true = chips
    res = calibrate(base, _measure(true), FIELDS, bounds=BOUNDS, resolve=_resolve)
    got = res.fitted
    assert got["clock"] == pytest.approx(true.clock, rel=0.02)
    assert got["dram.bandwidth"] == pytest.approx(true.dram.peak_bandwidth, rel=0.02)
    assert got["overheads.per_layer_s"] == pytest.approx(2e-6, rel=0.02)
    assert (res.table["error"].abs() < 0.01).all()
    # The starting chip was off (otherwise the test proves nothing).
    assert (res.table["initial_s"] / res.table["measured_s"] - 1).abs().max() > 0.1
    cal = res.chip.calibration
    assert cal is not None and cal.initial["clock"] == base.clock
    assert res.chip.clock == got["clock"] and "calibrated" in res.chip.name


def test_noise_hold_out_error_is_reported_and_larger_than_the_fit(chips):
    base, true = chips
    noisy = _measure(true, [0.04, -0.03, 0.05, -0.04, 0.03, -0.05])
    res = calibrate(base, noisy, FIELDS, bounds=BOUNDS, holdout_workloads=["mid"],
                    resolve=_resolve)
    held = res.table[res.table["held_out"]]
    assert list(held["workload"]) == ["mid", "mid"]
    rms = math.sqrt(float((held["error"] ** 2).mean()))
    assert res.holdout_rms_error == pytest.approx(rms)
    assert res.chip.calibration.holdout_rms_error == pytest.approx(rms)
    assert res.holdout_rms_error > res.fit_rms_error > 0


def test_presets_are_uncalibrated():
    assert all(npusim.load_arch(p).calibration is None for p in list_presets())


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "measured.csv"
    p.write_text(text)
    return p


def _wl_file(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\nlayers:\n  - {op: matmul, name: a, m: 256, n: 256, k: 256}\n"
        "  - {op: matmul, name: b, m: 256, n: 128, k: 256}\n")


def test_cli_writes_a_separate_labelled_chip(tmp_path, capsys):
    _wl_file(tmp_path)
    base = npusim.load_arch("tpu_v4")
    true = with_fields(base, {"clock": base.clock * 0.9})
    rows = [Measurement("tiny", 1.0, None, 1, 2), Measurement("tiny", 1.0, "b", 1, 3)]
    wls = {("tiny", 1): npusim.workloads.load_workload(tmp_path / "tiny.yaml")}
    t = predict(true, rows, wls)
    csv = _csv(tmp_path, f"workload,layer,latency_s\ntiny.yaml,,{float(t[0])!r}\ntiny.yaml,b,{float(t[1])!r}\n")
    out = tmp_path / "v4.cal.yaml"
    assert main(["calibrate", "tpu_v4", str(csv), "--fit", "clock", "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Calibrated chip written by npusim calibrate: not a preset.")
    chip = npusim.load_arch(out)
    assert chip.calibration is not None and chip.calibration.data == "measured.csv"
    assert chip.clock == pytest.approx(true.clock, rel=0.02)
    assert len(chip.calibration.residuals) == 2
    assert "fit error" in capsys.readouterr().out
    # Never over an input.
    assert main(["calibrate", "tpu_v4", str(csv), "--fit", "clock", "-o", str(csv)]) == 2


@pytest.mark.parametrize(("body", "args", "where", "says"), [
    ("workload,time\ntiny.yaml,1e-3\n", [], "measured.csv:1", "missing column(s) latency_s"),
    ("workload,latency_s\ntiny.yaml,1e-3\ntiny.yaml,0\n", [], "measured.csv:3",
     "must be greater than 0"),
    ("workload,latency_s\ntiny.yaml,-1e-3\n", [], "measured.csv:2", "greater than 0"),
    ("workload,layer,latency_s\ntiny.yaml,nope,1e-3\n", [], "measured.csv:2",
     "no layer named 'nope'"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--fit", "default_precision"], "default_precision",
     "not a numeric field"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--fit", "cores.count"], "cores.count",
     "integer field"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--fit", "clock.nope"], "clock.nope",
     "no such field"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--bounds", "clock=2GHz:1GHz"], "--bounds",
     "lower bound 2GHz is not below upper bound 1GHz"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--holdout", "1"], "--holdout",
     "nothing is left to fit"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, body, args, where, says):
    _wl_file(tmp_path)
    csv = _csv(tmp_path, body)
    fit = [] if "--fit" in args else ["--fit", "clock"]
    code = main(["calibrate", "tpu_v4", str(csv), *fit, *args, "-o", str(tmp_path / "o.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert where in err and says in err
    assert not (tmp_path / "o.yaml").exists()


def test_csv_rows_and_their_lines(tmp_path):
    csv = _csv(tmp_path, "note,workload,latency_s,layer,batch\nx,a,0.5,,\ny,b,2e-3,l1,4\n")
    rows = load_measurements(csv)
    assert rows == [Measurement("a", 0.5, None, 1, 2), Measurement("b", 2e-3, "l1", 4, 3)]


def test_missing_scipy_names_the_install_command(monkeypatch, chips):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(NpusimError, match=r"pip install 'npusim\[calibrate\]'"):
        calibrate(chips[0], _measure(chips[0])[:1], ["clock"], resolve=_resolve)


def test_bounds_for_a_zero_field_must_be_given(chips):
    with pytest.raises(SpecError, match=r"give --bounds overheads\.per_layer_s=LOW:HIGH"):
        calibrate(chips[0], _measure(chips[0])[:1], ["overheads.per_layer_s"],
                  resolve=_resolve)
