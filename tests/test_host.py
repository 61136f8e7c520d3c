"""The host path: the input's upload and the result's download over the chip's host link,
and the runtime's per-query and per-layer overheads, in series with one query's layers;
overlapped with the chip's work across offline batches."""

from __future__ import annotations

import pytest

import npusim
from npusim.engine.host import apply_host, host_io, host_path, overlapped_rate
from npusim.errors import SpecError
from npusim.presets import preset_path
from npusim.result import CAUSE_COLUMNS
from npusim.scenarios import run_scenario
from npusim.simulate import simulate
from npusim.spec.arch import loads_arch
from npusim.workloads.ir import Matmul, Workload

# int8 activations: A is m x k bytes in, the output m x n bytes out.
M, N, K = 64, 256, 128
WL = Workload("two", (Matmul(name="a", m=M, n=N, k=K), Matmul(name="b", m=M, n=N, k=N)))


def _pcie(gts: float, lanes: int) -> float:
    """Payload bytes/s per direction: GT/s per lane x lanes, 128b/130b encoding, 8 bits."""
    return gts * 1e9 * lanes * (128 / 130) / 8


def _with(chip: npusim.Chip, **changes: object) -> npusim.Chip:
    return chip.with_overrides(**changes)


def test_host_path_off_by_default_is_the_chip_alone(tpu_v1):
    bare = _with(tpu_v1, host=None)
    a = simulate(tpu_v1, WL).layers
    b = simulate(bare, WL).layers
    c = simulate(bare, WL, host=True).layers  # no link, no overheads: nothing to add
    assert list(a["latency_s"]) == list(b["latency_s"]) == list(c["latency_s"])
    assert (a["time_host_s"] == 0).all()


def test_one_query_adds_upload_overheads_and_download_in_series(tpu_v1):
    chip = _with(tpu_v1, host={"kind": "pcie5_x16"},
                 overheads={"per_query_s": "30 us", "per_layer_s": "4 us"})
    plain = simulate(chip, WL).layers
    df = simulate(chip, WL, host=True).layers
    bw, lat = _pcie(32, 16), 1e-6  # the catalog's PCIe latency assumption
    up, down = lat + M * K / bw, lat + M * N / bw
    want = [up + 30e-6 + 4e-6, 4e-6 + down]
    for i in range(2):
        assert df["latency_s"][i] - plain["latency_s"][i] == pytest.approx(want[i], rel=1e-9)
        assert df["time_host_s"][i] == pytest.approx(want[i], rel=1e-9)
        # The causes still add up to the latency, host time included.
        assert sum(df[c][i] for c in CAUSE_COLUMNS) == pytest.approx(df["latency_s"][i], rel=1e-9)
        assert df["cycles"][i] == pytest.approx(df["latency_s"][i] * chip.clock, rel=1e-12)


def test_offline_overlaps_the_host_link_with_the_chip():
    # A host link slow enough to set the pace: 1 MB/s, no latency.
    chip = loads_arch(
        preset_path("tpu_v1").read_text().replace(
            "host:\n  kind: pcie3_x16\n", "host:\n  bandwidth: 1 MB/s\n  latency: 0 s\n"))
    wl = WL
    res = simulate(chip, wl, host=True)
    path = host_path(chip, wl)
    assert path.link_s == pytest.approx((M * K + M * N) / 1e6)
    assert overlapped_rate(res.summary()["latency_s"], res.batch, path) == pytest.approx(
        1 / path.link_s)
    # A fast link: the chip's own time (the batch latency less the link) sets the pace.
    fast = _with(chip, host={"bandwidth": 1e15})
    res_f = simulate(fast, wl, host=True)
    chip_s = simulate(fast, wl).summary()["latency_s"]
    assert overlapped_rate(res_f.summary()["latency_s"], res_f.batch,
                           host_path(fast, wl)) == pytest.approx(1 / chip_s, rel=1e-9)
    off = run_scenario(chip, wl, "offline", max_batch=2)
    b = off.batch
    assert off.summary()["inferences_per_s"] == pytest.approx(b / (b * path.link_s), rel=1e-9)
    assert off.summary()["latency_s"] > b * path.link_s  # one batch alone: all in series


def test_single_stream_includes_the_host_path(tpu_v1):
    with_host = run_scenario(tpu_v1, WL, "single-stream").summary()["latency_s"]
    without = run_scenario(tpu_v1, WL, "single-stream", host=False).summary()["latency_s"]
    bw = _pcie(8, 16)
    assert with_host - without == pytest.approx(2e-6 + (M * K + M * N) / bw, rel=1e-9)


@pytest.mark.parametrize(("name", "gts", "lanes"), [
    ("rngd", 32, 16), ("warboy", 16, 8), ("atom", 32, 16), ("x220", 8, 16), ("tpu_v1", 8, 16)])
def test_preset_host_links_from_their_specs(name, gts, lanes):
    chip = npusim.load_arch(name)
    assert chip.host is not None and chip.host.bandwidth == pytest.approx(_pcie(gts, lanes))
    assert chip.overheads.per_query_s == chip.overheads.per_layer_s == 0
    assert any("Runtime overheads" in a for a in chip.assumptions)
    assert chip.calibration is None


def test_unknown_host_kind_is_one_clear_error():
    text = preset_path("tpu_v1").read_text().replace("pcie3_x16", "pcie9_x1")
    with pytest.raises(SpecError) as exc:
        loads_arch(text, "chip.yaml")
    assert "host" in str(exc.value) and "pcie9_x1" in str(exc.value)


def test_apply_host_of_no_layers_is_unchanged(tpu_v1):
    meta = {"memory_model": "bandwidth"}
    rows, out = apply_host((), meta, tpu_v1.clock, host_path(tpu_v1, WL))
    assert rows == () and out is meta


def test_run_host_flag_prints_the_host_path(tmp_path, capsys):
    from npusim.cli import main

    (tmp_path / "w.yaml").write_text(
        f"name: w\nlayers:\n  - {{op: matmul, name: a, m: {M}, n: {N}, k: {K}}}\n")
    assert main(["run", "warboy", str(tmp_path / "w.yaml"), "--host", "--rows", "0"]) == 0
    up_us = (1e-6 + M * K / _pcie(16, 8)) * 1e6
    assert 1 <= up_us < 1000  # so the table shows it in µs, 3 significant digits
    assert f"host path       {up_us:.3g} µs upload" in capsys.readouterr().out
    assert main(["run", "warboy", str(tmp_path / "w.yaml"), "--rows", "0"]) == 0
    assert "host path" not in capsys.readouterr().out


# --- What crosses the link is what the benchmark defines (item: host path) -------------
def test_bert_squad_uploads_ids_and_downloads_start_end_logits():
    """MLPerf BERT (SQuAD, 384 tokens): input ids, segment ids and mask go up as int32
    (3 x 384 x 4 B = 4,608 B); the start and end logits of every token come down as fp32
    (2 x 384 x 4 B = 3,072 B), not the 384 x 1024 hidden state."""
    io = host_io(npusim.workloads.builtin("bert_large"))
    assert (io.upload_bytes, io.download_bytes) == (3 * 384 * 4, 2 * 384 * 4)
    io4 = host_io(npusim.workloads.builtin("bert_large").with_batch(4))
    assert (io4.upload_bytes, io4.download_bytes) == (4 * 3 * 384 * 4, 4 * 2 * 384 * 4)


def test_resnet50_uploads_the_image_and_downloads_the_top1_id():
    """224 x 224 x 3 int8 pixels up; one int32 class id per image down (the reference
    graph ends in an ArgMax)."""
    io = host_io(npusim.workloads.builtin("resnet50").with_batch(2))
    assert (io.upload_bytes, io.download_bytes) == (2 * 224 * 224 * 3, 2 * 4)


def test_llm_step_uploads_token_ids_and_downloads_sampled_ids():
    """Decode: one int32 token id per sequence each way; prefill: the prompt's ids up, one
    sampled id per sequence down (the logits stay on the chip)."""
    from npusim.workloads import from_hf_config

    cfg = "workloads/hf/llama2_7b.json"
    dec = host_io(from_hf_config(cfg, "decode", batch=3, context_len=64))
    assert (dec.upload_bytes, dec.download_bytes) == (3 * 4, 3 * 4)
    pre = host_io(from_hf_config(cfg, "prefill", batch=2, prompt_len=16))
    assert (pre.upload_bytes, pre.download_bytes) == (2 * 16 * 4, 2 * 4)


def test_host_transfers_cost_link_energy_and_leakage_while_waiting(tpu_v1):
    """Link energy: bytes x 8 x the kind's pJ/bit (PCIe: 5 pJ); the chip leaks on while it
    waits: static energy grows by leakage x the host time, so energy >= leakage x latency."""
    chip = _with(tpu_v1, host={"kind": "pcie3_x16"}, overheads={"per_query_s": "30 us"})
    plain = simulate(chip, WL).summary()
    res = simulate(chip, WL, host=True)
    s = res.summary()
    link_j = (M * K + M * N) * 8 * 5e-12
    assert s["energy_host_j"] == pytest.approx(link_j, rel=1e-12)
    added = s["latency_s"] - plain["latency_s"]
    assert added == pytest.approx(2e-6 + (M * K + M * N) / _pcie(8, 16) + 30e-6, rel=1e-9)
    leak = chip.energy.leakage
    assert leak > 0
    assert s["energy_static_j"] - plain["energy_static_j"] == pytest.approx(leak * added,
                                                                            rel=1e-9)
    assert s["energy_j"] - plain["energy_j"] == pytest.approx(link_j + leak * added, rel=1e-9)
    own = _with(chip, host={"kind": "pcie3_x16", "energy_per_bit": "20 pJ"})
    assert simulate(own, WL, host=True).summary()["energy_host_j"] == pytest.approx(4 * link_j)
