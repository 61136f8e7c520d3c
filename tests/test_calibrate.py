"""Calibration: a synthetic round trip (a perturbed chip's simulated times as the
"measurements", fitted from the unperturbed chip), the hold-out error under noise, the
calibrated file, what a fit cannot know (fields that trade off, a field no row moves, a
physical bound), the standard error against its closed form, and one clear line for each
bad input."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

import npusim
from npusim.calibration import Measurement, calibrate, load_measurements, predict
from npusim.calibration.bounds import CLOCK_RANGE_HZ
from npusim.calibration.data import with_fields
from npusim.calibration.fit import CalibrationWarning
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
# Within the physical range (0 .. the shortest measured row, 3.3 us here).
BOUNDS = ["overheads.per_layer_s=0:3us"]


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
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--fit", "overheads.per_query_s", "--bounds",
     "overheads.per_query_s=-1us:5us"], "--bounds",
     "overheads.per_query_s: lower bound -1us is negative"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--fit", "cores.core.sram.read_bytes_per_cycle",
     "--bounds", "cores.core.sram.read_bytes_per_cycle=0:1000"], "--bounds",
     "cores.core.sram.read_bytes_per_cycle: lower bound 0 is not above 0"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--bounds", "nope=1:2"], "--bounds",
     "'nope' is not a field being fitted"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--bounds", "clock=nan:2GHz"], "--bounds",
     "clock: 'nan' is not a finite number"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--bounds", "clock=1GHz:inf"], "--bounds",
     "clock: 'inf' is not a finite number"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--bounds", "clock=1GHz:fast"], "--bounds",
     "clock: 'fast' is not a number"),
    ("workload,latency_s\ntiny.yaml,1e-3\n", ["--fit", "clock,overheads.per_query_s"],
     "--fit", "2 fields to fit from 1 fitted row(s)"),
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


def test_bounds_for_a_zero_field_without_a_physical_range_must_be_given(chips):
    with pytest.raises(SpecError, match=r"give --bounds energy\.leakage=LOW:HIGH"):
        calibrate(with_fields(chips[0], {"energy.leakage": 0.0}), _measure(chips[0])[:1],
                  ["energy.leakage"], resolve=_resolve)


# --- what a fit cannot know -----------------------------------------------------------

def _on(chip: npusim.Chip, names: list[str], layer: str | None = None) -> list[Measurement]:
    rows = [Measurement(w, 1.0, layer, 1, i + 2) for i, w in enumerate(names)]
    t = predict(chip, rows, {(k, 1): v for k, v in W.items()})
    return [Measurement(m.workload, float(x), m.layer, 1, m.line) for m, x in zip(rows, t,
                                                                               strict=True)]


def test_trading_fields_are_named_in_a_warning():
    # Every whole-query row pays the per-query overhead once and the host link's latency
    # twice (upload and download): the two columns of the Jacobian are proportional, so the
    # rows fix q + 2 L and neither field alone (rank 1, correlation +1).
    base = npusim.load_arch("tpu_v1")
    true = with_fields(base, {"overheads.per_query_s": 150e-6, "host.latency": 1e-6})
    rows = _on(true, ["gemm", "thin", "mid"])
    fields = ["overheads.per_query_s", "host.latency"]
    with pytest.warns(CalibrationWarning, match=r"overheads\.per_query_s and host\.latency "
                      r"trade off \(correlation \+1\.00\)"):
        res = calibrate(base, rows, fields, resolve=_resolve)
    ident = res.identifiability
    assert ident is not None and ident.rank == 1
    assert ident.correlation.loc[fields[0], fields[1]] == pytest.approx(1.0, abs=1e-6)
    assert res.fields["stderr"].tolist() == [math.inf, math.inf]
    got = res.fitted
    # What the rows do fix: the sum q + 2 L, to the true 152 us.
    assert got[fields[0]] + 2 * got[fields[1]] == pytest.approx(152e-6, rel=1e-3)


def test_standard_error_matches_the_closed_form():
    # t_i = t0_i + q is linear in the per-query overhead q, so the weighted least squares on
    # r_i = t_i / m_i - 1 has q = sum((m_i - t0_i) / m_i^2) / sum(1 / m_i^2) and standard
    # error sigma / sqrt(sum(1 / m_i^2)), sigma^2 = sum(r_i^2) / (rows - 1).
    base = npusim.load_arch("tpu_v1")
    t0 = [m.latency_s for m in _on(base, ["gemm", "thin", "mid"])]
    noise = [0.03, -0.02, 0.01]
    meas = [(t + 40e-6) * (1 + e) for t, e in zip(t0, noise, strict=True)]
    rows = [Measurement(w, m, None, 1, i + 2)
            for i, (w, m) in enumerate(zip(["gemm", "thin", "mid"], meas, strict=True))]
    w2 = sum(1 / m**2 for m in meas)
    q = sum((m - t) / m**2 for m, t in zip(meas, t0, strict=True)) / w2
    r = [(t + q) / m - 1 for m, t in zip(meas, t0, strict=True)]
    se = math.sqrt(sum(x * x for x in r) / 2) / math.sqrt(w2)
    res = calibrate(base, rows, ["overheads.per_query_s"], resolve=_resolve)
    assert res.fitted["overheads.per_query_s"] == pytest.approx(q, rel=1e-4)
    assert res.fields["stderr"].iloc[0] == pytest.approx(se, rel=1e-3)
    assert res.chip.calibration.standard_error["overheads.per_query_s"] == pytest.approx(
        se, rel=1e-3)
    assert res.identifiability.rank == 1 and not res.warnings


def test_physical_bounds_refuse_a_6_mhz_clock(tmp_path, capsys):
    # Measurements 100x slower than the chip: a clock fit alone would go to ~1/100 of the
    # clock. 0 is allowed by --bounds but below the physical floor, which holds.
    _wl_file(tmp_path)
    base = npusim.load_arch("tpu_v1")
    wls = {("tiny", 1): npusim.workloads.load_workload(tmp_path / "tiny.yaml")}
    rows = [Measurement("tiny", 1.0, None, 1, 2), Measurement("tiny", 1.0, "b", 1, 3)]
    t = [float(x) * 100 for x in predict(base, rows, wls)]
    csv = _csv(tmp_path, f"workload,layer,latency_s\ntiny.yaml,,{t[0]!r}\ntiny.yaml,b,{t[1]!r}\n")
    out = tmp_path / "v1.cal.yaml"
    assert main(["calibrate", "tpu_v1", str(csv), "--fit", "clock", "--bounds", "clock=0:2GHz",
                 "-o", str(out)]) == 0
    got = capsys.readouterr()
    chip = npusim.load_arch(out)
    assert chip.clock == pytest.approx(CLOCK_RANGE_HZ[0], rel=1e-6)
    assert "--bounds clock=0:2GHz reaches outside the physical range" in got.err
    assert "clock ended on its lower bound 1e+08 (physical:" in got.err
    assert all(line.startswith("npusim: warning: ") for line in got.err.splitlines())


def test_report_shows_a_row_that_cannot_fit_dram_bandwidth():
    # On ATOM the weights sit in shared SRAM; the middle layer "b" reads "a"'s output and
    # leaves its own for "c" on chip, so nothing of it touches DRAM: no memory share, no
    # sensitivity to bandwidth (the first layer reads the input, the last writes the result).
    w = Workload("w", (Matmul(name="a", m=64, n=1024, k=1024),
                       Matmul(name="b", m=64, n=1024, k=1024),
                       Matmul(name="c", m=64, n=1024, k=1024)))
    chip = npusim.load_arch("atom")
    rows = [Measurement("w", 1.0, "b", 1, 2)]
    t = predict(chip, rows, {("w", 1): w})
    rows = [Measurement("w", float(t[0]) * 1.2, "b", 1, 2)]
    with pytest.warns(CalibrationWarning, match=r"dram\.bandwidth moves none of the fitted "
                      r"rows' times"):
        res = calibrate(chip, rows, ["dram.bandwidth"], resolve=lambda n, b: w)
    rep = res.report.iloc[0]
    assert rep["memory"] == 0 and abs(rep["d_ln_t/d_ln dram.bandwidth"]) < 1e-12
    assert rep[["compute", "memory", "vector", "overhead"]].sum() == pytest.approx(1.0)


def test_identifiability_by_hand():
    import numpy as np

    from npusim.calibration.fit import identifiability

    # J^T J = [[2, 1], [1, 2]], its inverse [[2, -1], [-1, 2]] / 3: correlation -1/2;
    # sigma^2 = r.r / (3 rows - 2 fields), standard error sigma sqrt(2/3) x the scale.
    jac = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    r = np.array([0.01, -0.02, 0.02])
    got = identifiability(jac, r, ["a", "b"], [10.0, 1.0])
    assert got.rank == 2 and not got.not_identified and not got.unmoved
    assert got.correlation.loc["a", "b"] == pytest.approx(-0.5)
    sigma = math.sqrt(float(r @ r) / 1)
    assert got.stderr["a"] == pytest.approx(sigma * math.sqrt(2 / 3) * 10)
    assert got.per_percent["b"] == pytest.approx(0.01 * math.sqrt(2 / 3))
    # Proportional columns: rank 1, both fields not identified, correlation +1.
    flat = identifiability(np.array([[1.0, 2.0], [3.0, 6.0]]), np.zeros(2), ["a", "b"],
                           [1.0, 1.0])
    assert flat.rank == 1 and set(flat.not_identified) == {"a", "b"}
    assert flat.correlation.loc["a", "b"] == pytest.approx(1.0)
    # A column of zeros: the field moves nothing.
    zero = identifiability(np.array([[1.0, 0.0], [2.0, 0.0]]), np.zeros(2), ["a", "b"],
                           [1.0, 1.0])
    assert zero.unmoved == ("b",) and zero.not_identified == ("b",) and zero.rank == 1


def test_cli_report_shows_what_bounds_each_row(tmp_path, capsys):
    _wl_file(tmp_path)
    base = npusim.load_arch("tpu_v1")
    wls = {("tiny", 1): npusim.workloads.load_workload(tmp_path / "tiny.yaml")}
    rows = [Measurement("tiny", 1.0, None, 1, 2), Measurement("tiny", 1.0, "b", 1, 3)]
    t = [float(x) * 1.1 for x in predict(base, rows, wls)]
    csv = _csv(tmp_path, f"workload,layer,latency_s\ntiny.yaml,,{t[0]!r}\ntiny.yaml,b,{t[1]!r}\n")
    assert main(["calibrate", "tpu_v1", str(csv), "--fit", "clock", "--report", "-o",
                 str(tmp_path / "o.yaml")]) == 0
    out = capsys.readouterr().out
    assert "what bounds each row" in out
    for col in ("compute_%", "memory_%", "vector_%", "overhead_%", "d_ln_t/d_ln clock"):
        assert col in out
    assert "standard error" in out and "Jacobian rank 1 of 1" in out
