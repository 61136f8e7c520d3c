"""The silicon section of docs/validation.md (bench/make_validation.py): predictions beside
public results, and the hold-out fit where a chip has two."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import npusim
from npusim.presets import list_presets
from npusim.simulate import simulate

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("make_validation",
                                                  ROOT / "bench" / "make_validation.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_validation"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_silicon_section_fits_one_workload_and_predicts_the_other():
    mv = _module()
    chip = npusim.load_arch("tpu_v1")
    # Synthetic "public results": the uncalibrated prediction plus 100 us of runtime per
    # query, so the fit must find 100 us and the held-out workload then lands exactly.
    lat = {w: simulate(chip, npusim.workloads.builtin(w), host=True).summary()["latency_s"]
           for w in ("resnet50", "mobilenet_v2")}
    fake = [{"preset": "tpu_v1", "workload": w, "scenario": "single-stream",
             "value": t + 1e-4, "source": "synthetic"} for w, t in lat.items()]
    sil = mv.silicon(True, fake)
    row = next(r for r in sil["rows"] if r["preset"] == "tpu_v1")
    assert row["latency_s"] == pytest.approx(lat["resnet50"], rel=1e-12)
    h = next(h for h in sil["holdouts"] if h["field"] == "overheads.per_query_s")
    assert (h["fit_on"], h["predict"]) == ("resnet50", "mobilenet_v2")
    assert h["value"] == pytest.approx(1e-4, rel=1e-3)
    assert abs(h["holdout_error"]) < 1e-3
    assert {h["field"] for h in sil["holdouts"]} == set(mv.HOLDOUT_FIELDS)
    text = "\n".join(mv._silicon_lines(sil))
    ratio = lat["resnet50"] / (lat["resnet50"] + 1e-4)
    assert f"| {ratio:.2f} | synthetic |" in text and "## 3a. Silicon" in text
    # Presets without a host link are not listed; the shipped list has no made-up figures.
    assert {r["preset"] for r in sil["rows"]} == {
        p for p in list_presets() if npusim.load_arch(p).host is not None}
    assert all(r["source"] for r in mv.PUBLIC_RESULTS)


def _layers(chip: npusim.Chip, name: str) -> tuple[float, int]:
    res = simulate(chip, npusim.workloads.builtin(name), host=True)
    return float(res.summary()["latency_s"]), len(res.layers)


def test_atom_per_layer_overhead_fitted_on_resnet50_predicts_bert_within_15_percent():
    # Each dispatched layer pays overheads.per_layer_s once, so by hand: the fit is the
    # ResNet-50 gap over its layer count, and BERT-Large's prediction its uncalibrated time
    # plus its own layer count times that. The published figures are MLPerf's (PUBLIC_RESULTS).
    from npusim.calibration import Measurement, calibrate

    mv = _module()
    pub = {r["workload"]: r["value"] for r in mv.PUBLIC_RESULTS
           if r["preset"] == "atom" and r["scenario"] == "single-stream"}
    chip = npusim.load_arch("atom")
    (r50, n_r50), (bert, n_bert) = _layers(chip, "resnet50"), _layers(chip, "bert_large")
    per_layer = (pub["resnet50"] - r50) / n_r50
    by_hand = bert + n_bert * per_layer
    with pytest.warns(UserWarning, match="no row to spare"):
        res = calibrate(chip, [Measurement("resnet50", pub["resnet50"]),
                               Measurement("bert_large", pub["bert_large"], line=1)],
                        ["overheads.per_layer_s"], holdout=1)
    assert res.fitted["overheads.per_layer_s"] == pytest.approx(per_layer, rel=1e-6)
    assert res.table["predicted_s"].iloc[1] == pytest.approx(by_hand, rel=1e-6)
    assert abs(by_hand / pub["bert_large"] - 1) < 0.15
