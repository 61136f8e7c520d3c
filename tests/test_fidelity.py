"""Roofline vs event model (bandwidth and cycle-approximate DRAM), layer by layer.

Layers: the first 8 layers of ResNet-50, the first encoder block of BERT-base (seq 384) and
three large GEMMs (``probe``), on every preset in ``arch/``, and the last two sets on each
preset's *wide-port* variant (SRAM ports unlimited; nothing else changed).

1. **Bound.** On every chip, with both DRAM models, no layer is faster in the event model
   than its roofline (max of MACs at peak, DRAM bytes at peak bandwidth, vector cycles at
   the vector rate, all from the same compiled program).

2. **Agreement where a layer is plainly compute-bound.** A layer counts as plainly
   compute-bound (``npusim.engine.roofline.plainly_compute_bound``) when, judged only from the roofline terms and the compiled program (never
   from the event model's own output, which would make the check circular: for a
   compute-bound roofline, event/roofline is exactly 1/utilisation):

   a. roofline compute time >= 3x its DRAM time and >= 3x its vector time;
   b. >= 8 full folds per core (folds whose stationary block fills the R x C array);
   c. high array occupancy: on the busiest core, MACs at peak rate >= 0.97 x the ideal
      (SCALE-Sim) compute cycles, i.e. fill/drain and part-filled folds cost <= 3 %;
   d. the array, not its SRAM ports, sets the pace: no SRAM-port stall in the program
      (array cycles <= 1.01 x compute cycles);
   e. the DMA that double buffering cannot hide — the busiest core's first load and last
      store at its share of peak DRAM bandwidth — is <= 2 % of the compute time.

   (c) and (d) exist because fold fill/drain (SCALE-Sim's convention, real on hardware) and
   SRAM-port stalls are not among the roofline's three terms; (e) because a layer's first
   load and last store are never overlapped. Together they let the event model be up to
   1/0.97 x 1.02 = 1.052 x the roofline, so the test asserts two things for these layers:

   * event/roofline <= ``AGREE`` = 1.06 (the criteria's 5.2 % plus 1 % for DRAM latency and
     contention); measured here: at most 1.038, median about 1.02;
   * event <= roofline x (1/occupancy) x (1 + unhidden-DMA fraction) x 1.01, layer by
     layer: beyond what the criteria explain, the event model adds at most 1 % (measured:
     at most 0.7 %, with the cycle-approximate DRAM).

   On the presets as shipped no layer of this set qualifies: the main SRAM's 256 B/cycle
   write port takes the 4-byte partial sums of a 128-column weight-stationary array
   (512 B/cycle) at half rate, so every GEMM with K > rows is SRAM-port-bound (2x; 4x with
   two arrays per core), and TPU v1 is DRAM-bound. The wide-port variants remove only the
   port limit, so the agreement is checked there; a minimum count of qualifying layers
   keeps the check from passing vacuously.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import npusim
from npusim.compiler.lower import compile_workload
from npusim.engine.roofline import plainly_compute_bound, with_unlimited_sram_ports
from npusim.presets import list_presets
from npusim.simulate import simulate_program
from npusim.workloads import Matmul, Workload

AGREE = 1.06  # event/roofline for plainly compute-bound layers
ENGINE_SLACK = 1.01  # beyond what fill/drain and unhidden DMA explain
MIN_QUALIFYING = 8  # (chip, layer, memory model) triples that must meet the criterion


def _workloads() -> list[Workload]:
    r50 = npusim.workloads.resnet50()
    bert = npusim.workloads.bert_base(seq_len=384)
    block = tuple(layer for layer in bert.layers if layer.name.startswith("layer0."))
    probe = (Matmul("gemm_2048", m=2048, n=2048, k=2048),
             Matmul("gemm_2048x1024x1024", m=2048, n=1024, k=1024),
             Matmul("gemm_1024x2048x2048", m=1024, n=2048, k=2048))
    return [Workload("resnet50_head", r50.layers[:8], dict(r50.meta)),
            Workload("bert_base_block0", block, dict(bert.meta)),
            Workload("probe", probe, {"batch": 1})]


@dataclass(frozen=True)
class Row:
    chip: str
    layer: str
    memory: str
    event_s: float
    roofline_s: float
    explained: float | None  # set for plainly compute-bound layers


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    out: list[Row] = []
    wls = _workloads()
    for name in list_presets():
        preset = npusim.load_arch(name)
        for chip, sets in ((preset, wls), (with_unlimited_sram_ports(preset), wls[1:])):
            for wl in sets:
                program = compile_workload(chip, wl)
                roof = simulate_program(chip, program, fidelity="roofline").layers
                flags = [plainly_compute_bound(chip, lp) for lp in program.layers]
                for memory in ("bandwidth", "cycle"):
                    ev = simulate_program(chip, program, memory=memory).layers
                    out.extend(Row(chip.name, lp.name, memory, float(ev.latency_s[i]),
                                   float(roof.latency_s[i]), flags[i])
                               for i, lp in enumerate(program.layers))
    return out


def test_event_never_beats_roofline(rows: list[Row]) -> None:
    bad = [r for r in rows if r.event_s < r.roofline_s * (1 - 1e-9)]
    assert not bad, bad[:5]
    assert {r.memory for r in rows} == {"bandwidth", "cycle"}
    assert len({r.chip for r in rows}) == 2 * len(list_presets())


def test_plainly_compute_bound_layers_agree(rows: list[Row]) -> None:
    q = [r for r in rows if r.explained is not None]
    assert len(q) >= MIN_QUALIFYING, f"only {len(q)} plainly compute-bound layers"
    worst = max(q, key=lambda r: r.event_s / r.roofline_s)
    assert worst.event_s / worst.roofline_s <= AGREE, worst
    over = [r for r in q if r.event_s > r.roofline_s * r.explained * ENGINE_SLACK]  # type: ignore[operator]
    assert not over, over


def test_roofline_causes_sum_to_latency() -> None:
    chip = npusim.load_arch("warboy")
    res = npusim.simulate(chip, _workloads()[1], fidelity="roofline")
    df = res.layers
    causes = df[[c for c in df.columns if c.startswith("time_")]].sum(axis=1)
    assert (causes - df["latency_s"]).abs().max() <= 1e-12 * df["latency_s"].max()
    assert set(df["bound"]) <= {"compute", "memory", "vector"}
    assert res.summary()["fidelity"] == "roofline"
    # The roofline's DRAM bytes are the program's, as the event model moves them.
    ev = npusim.simulate(chip, _workloads()[1])
    assert df["dram_read_bytes"].sum() == pytest.approx(ev.layers["dram_read_bytes"].sum(),
                                                        rel=1e-6)


def test_roofline_ideal_memory_has_no_memory_term() -> None:
    chip = npusim.load_arch("tpu_v1")
    wl = _workloads()[0]
    ideal = npusim.simulate(chip, wl, memory="ideal", fidelity="roofline").layers
    assert (ideal["time_dma_exposed_s"] == 0).all()
    bw = npusim.simulate(chip, wl, fidelity="roofline").layers
    assert (bw["time_dma_exposed_s"] > 0).any()


def test_unknown_fidelity_is_a_value_error() -> None:
    chip = npusim.load_arch("tpu_v1")
    with pytest.raises(ValueError, match="'roofline', 'event'"):
        npusim.simulate(chip, _workloads()[0], fidelity="spice")
    with pytest.raises(ValueError, match="memory model"):
        npusim.simulate(chip, _workloads()[0], memory="magic", fidelity="roofline")


def test_cli_fidelity_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from npusim.cli import main

    assert main(["run", "tpu_v1", "resnet50", "--fidelity", "roofline", "--rows", "3"]) == 0
    assert "roofline" in capsys.readouterr().out
    assert main(["run", "tpu_v1", "resnet50", "--fidelity", "spice"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown fidelity" in err[0]
