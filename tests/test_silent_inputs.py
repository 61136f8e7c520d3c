"""Inputs npusim used to accept silently now get an error or the right behaviour: a tile
trace run on another chip, a workload beside --tile-trace, a roofline with the cycle memory
model, `llm --gen 1`, and the offline scenario's batch search past a throughput drop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import npusim
import npusim.scenarios as scenarios
from npusim.cli import main
from npusim.workloads.ir import Conv2d, Matmul, Workload


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_tile_trace_compiled_for_another_chip(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.parquet"
    assert main(["compile", "tpu_v1", "mobilenet_v2", "-o", str(trace)]) == 0
    capsys.readouterr()
    tpu, rngd = npusim.load_arch("tpu_v1").name, npusim.load_arch("rngd").name
    assert main(["run", "rngd", "--tile-trace", str(trace)]) == 2
    err = _err(capsys)
    assert err.startswith("npusim: error: ")
    assert f"compiled for chip {tpu!r}, not {rngd!r}" in err
    assert main(["run", "tpu_v1", "--tile-trace", str(trace), "--rows", "0"]) == 0  # its own chip


@pytest.mark.parametrize(("argv", "line"), [
    (["run", "tpu_v1", "resnet50", "--tile-trace", "t.parquet"],
     "npusim: error: --tile-trace runs a compiled program: give no workload with it (got "
     "'resnet50'; it was compiled into the trace)"),
    (["run", "tpu_v1", "--tile-trace", "t.parquet", "--batch", "4"],
     "npusim: error: --tile-trace runs a compiled program: its batch was fixed by "
     "`npusim compile --batch`"),
    (["run", "tpu_v1", "mobilenet_v2", "--fidelity", "roofline", "--memory", "cycle"],
     "npusim: error: --fidelity roofline bounds each layer by peak DRAM bandwidth and has no "
     "memory model: drop --memory cycle or use --fidelity event"),
])
def test_contradictory_options_are_one_line_errors(
        argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert _err(capsys) == line


def _llm(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["llm", "tpu_v4", "llama2_7b", "--prompt", "64", *extra]) == 0
    return capsys.readouterr().out


def test_llm_gen_1_has_no_tpot(capsys: pytest.CaptureFixture[str]) -> None:
    text = _llm(capsys, "--gen", "1")
    assert "mean of 0 steps" not in text
    assert "TPOT          undefined (--gen 1" in text
    one = json.loads(_llm(capsys, "--gen", "1", "--json"))
    two = json.loads(_llm(capsys, "--gen", "2", "--json"))
    assert one["tpot_s"] is None and one["decode_steps"] == 0
    # The step reported instead is the one decode step of --gen 2 (context prompt + 1): the
    # same step, simulated independently.
    assert two["decode_steps"] == 1 and two["decode_contexts"] == [65]
    assert one["next_decode_step_s"] == pytest.approx(two["tpot_s"], rel=1e-9)


class _FakeResult:
    """What run_scenario reads of a Result: its summary."""

    def __init__(self, batch: int, rate: float) -> None:
        self.batch, self.rate = batch, rate

    def summary(self) -> dict[str, Any]:
        return {"latency_s": self.batch / self.rate, "inferences_per_s": self.rate}


def test_offline_search_goes_past_a_throughput_drop(monkeypatch: pytest.MonkeyPatch,
                                                    tpu_v1: npusim.Chip) -> None:
    # Throughput rises, drops twice (batch 4 and 8 slower than 2), then beats them all at 16:
    # a search that stops after two drops reports batch 2; the best batch is 16.
    rates = {1: 100.0, 2: 150.0, 4: 140.0, 8: 130.0, 16: 300.0, 32: 200.0, 64: 120.0}
    seen: list[int] = []

    def fake_simulate(chip: object, wl: Workload, **kwargs: object) -> _FakeResult:
        batch = wl.layers[0].batch  # type: ignore[attr-defined]
        seen.append(batch)
        return _FakeResult(batch, rates[batch])

    monkeypatch.setattr(scenarios, "simulate", fake_simulate)
    wl = Workload("small", (
        Conv2d("c", in_h=8, in_w=8, in_c=4, out_c=8, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1),
        Matmul("fc", m=1, n=10, k=8 * 8 * 8)), {"batch": 1})
    r = scenarios.run_scenario(tpu_v1, wl, "offline", max_batch=64, host=False)
    assert seen == [1, 2, 4, 8, 16, 32, 64]  # every power of two up to max_batch
    assert r.batch == 16 and r.result.summary()["inferences_per_s"] == 300.0
    assert list(r.tried["inferences_per_s"]) == [rates[b] for b in seen]
    # A tie keeps the smaller batch (the same throughput at lower latency).
    rates.update({16: 150.0, 32: 150.0})
    seen.clear()
    assert scenarios.run_scenario(tpu_v1, wl, "offline", max_batch=64, host=False).batch == 2
