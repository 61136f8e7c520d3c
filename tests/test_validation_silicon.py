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
    (h,) = sil["holdouts"]
    assert (h["fit_on"], h["predict"]) == ("resnet50", "mobilenet_v2")
    assert h["per_query_s"] == pytest.approx(1e-4, rel=1e-3)
    assert h["holdout_error"] < 1e-3
    text = "\n".join(mv._silicon_lines(sil))
    ratio = lat["resnet50"] / (lat["resnet50"] + 1e-4)
    assert f"| {ratio:.2f} | synthetic |" in text and "## 3a. Silicon" in text
    # Presets without a host link are not listed; the shipped list has no made-up figures.
    assert {r["preset"] for r in sil["rows"]} == {
        p for p in list_presets() if npusim.load_arch(p).host is not None}
    assert all(r["source"] for r in mv.PUBLIC_RESULTS)
