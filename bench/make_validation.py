"""Generate docs/validation.md from fresh measurements (issue 7, item 5).

    python bench/make_validation.py            # full: ResNet-50 on every preset, ws/os/is
    python bench/make_validation.py --quick    # the first 8 ResNet-50 layers, ws only
    python bench/make_validation.py --out /tmp/validation.md

Sections: (1) compute cycles against SCALE-Sim (bench/scalesim_compare.py, when SCALE-Sim is
installed in its throwaway venv) and against the closed-form SCALE-Sim formula computed here
independently of npusim's kernels; (2) roofline vs the event model (bandwidth DRAM) vs the
event model with the cycle-approximate DRAM, layer by layer on every preset for ResNet-50;
(3) speed figures from bench/results.json when present; (3a) silicon: each preset's
uncalibrated single-stream prediction beside the public measurements in PUBLIC_RESULTS, and a
hold-out fit where a preset has two workloads measured; (4) stated limitations. The file is
written atomically; regenerate rather than edit it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import npusim
from npusim._io import atomic_write_text
from npusim.compiler.lower import compile_workload
from npusim.engine.roofline import layer_times, plainly_compute_bound, with_unlimited_sram_ports
from npusim.presets import list_presets
from npusim.simulate import simulate_program
from npusim.spec.arch import load_scalesim_cfg
from npusim.spec.scalesim import load_scalesim_topology
from npusim.workloads import Matmul, Workload

SCALESIM_VENV = Path("/tmp/npusim-scalesim-venv")
DATA = HERE / "data" / "scalesim"


# --- 1. compute cycles ----------------------------------------------------------------

def scalesim_formula(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim's stall-free cycles of one GEMM (0-based last cycle), written out here from
    Samajdar et al. (ISPASS 2020) rather than taken from npusim.kernels."""
    if dataflow == "ws":
        folds, per = math.ceil(k / rows) * math.ceil(n / cols), 2 * rows + cols + m - 2
    elif dataflow == "os":
        folds, per = math.ceil(m / rows) * math.ceil(n / cols), rows + cols + k - 2
    else:
        folds, per = math.ceil(k / rows) * math.ceil(m / cols), 2 * rows + cols + n - 2
    return folds * per - 1


def formula_check() -> list[dict[str, Any]]:
    """npusim's compute_cycles (ideal memory) vs the closed form, per dataflow and topology."""
    out = []
    base = DATA / "array_16x16_ws.cfg"
    for df in ("ws", "os", "is"):
        chip = load_scalesim_cfg(base)
        sa = chip.cores.core.systolic.model_copy(update={"dataflow": df})
        chip = chip.model_copy(update={"cores": chip.cores.model_copy(
            update={"core": chip.cores.core.model_copy(update={"systolic": sa})})})
        for topo in ("conv_small.csv", "gemm_small.csv"):
            wl = load_scalesim_topology(DATA / topo)
            layers = npusim.simulate(chip, wl, memory="ideal").layers
            same = 0
            for layer, row in zip(wl.layers, layers.itertuples(index=False), strict=True):
                g, m, n, k = layer.gemm_shape()
                want = g * scalesim_formula(m, n, k, sa.rows, sa.cols, df)
                same += int(row.compute_cycles) == want
            out.append({"dataflow": df, "topology": topo, "layers": len(wl.layers),
                        "equal": same})
    return out


def scalesim_installed() -> bool:
    py = SCALESIM_VENV / "bin" / "python"
    if not py.exists():
        return False
    return subprocess.run([str(py), "-c", "import scalesim.scale_sim"],
                          capture_output=True, timeout=120).returncode == 0


NETWORK_CFG = HERE / "data" / "scalesim" / "array_256x256_ws.cfg"
NETWORK_TOPOLOGY = HERE / "data" / "scalesim" / "resnet50_convs.csv"


def scalesim_side_by_side(quick: bool, network: bool = False) -> dict[str, Any] | None:
    """The bundled small layers on all dataflows, or (``network``) ResNet-50's 53
    convolutions on a TPU-v1-sized 256x256 weight-stationary array (minutes of SCALE-Sim)."""
    if not scalesim_installed():
        return None
    args = ["--json", "--no-install"] + ([] if quick else ["--dataflow", "all"])
    if network:
        args = ["--json", "--no-install", "--cfg", str(NETWORK_CFG), "--topology",
                str(NETWORK_TOPOLOGY), "--repeat", "3"]
    proc = subprocess.run([sys.executable, str(HERE / "scalesim_compare.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=3600)
    try:
        doc: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    doc["exit"] = proc.returncode
    return doc


# --- 2. fidelity modes ----------------------------------------------------------------

def fidelity_table(workload: Workload) -> list[dict[str, Any]]:
    rows = []
    for name in list_presets():
        chip = npusim.load_arch(name)
        program = compile_workload(chip, workload)
        t0 = time.perf_counter()
        roof = simulate_program(chip, program, fidelity="roofline").layers
        t1 = time.perf_counter()
        ev = simulate_program(chip, program).layers
        t2 = time.perf_counter()
        cyc = simulate_program(chip, program, memory="cycle").layers
        t3 = time.perf_counter()
        r_ev = ev["latency_s"] / roof["latency_s"]
        r_cy = cyc["latency_s"] / roof["latency_s"]
        worst = int(r_ev.idxmax())
        stalled = sum(1 for lp in program.layers if lp.unit == "array"
                      and lp.total("array_cycles") > 1.01 * lp.total("compute_cycles"))
        within5 = int((r_ev <= 1.05).sum())
        bounds = [layer_times(chip, lp).bound for lp in program.layers]
        plain = sum(plainly_compute_bound(chip, lp) is not None for lp in program.layers)
        rows.append({
            "preset": name, "layers": len(program.layers),
            "roofline_ms": roof["latency_s"].sum() * 1e3,
            "event_ms": ev["latency_s"].sum() * 1e3,
            "event_cycle_ms": cyc["latency_s"].sum() * 1e3,
            "total_event_over_roof": ev["latency_s"].sum() / roof["latency_s"].sum(),
            "total_cycle_over_roof": cyc["latency_s"].sum() / roof["latency_s"].sum(),
            "median_event_over_roof": float(r_ev.median()),
            "max_event_over_roof": float(r_ev.max()), "worst_layer": str(ev["layer"][worst]),
            "median_cycle_over_roof": float(r_cy.median()),
            "max_cycle_over_roof": float(r_cy.max()),
            "min_ratio": float(min(r_ev.min(), r_cy.min())),
            "within_5pct": within5, "sram_port_bound": stalled, "plainly_compute_bound": plain,
            "roof_bounds": {b: bounds.count(b) for b in ("compute", "memory", "vector")},
            "wall_roofline_s": t1 - t0, "wall_event_s": t2 - t1, "wall_cycle_s": t3 - t2,
        })
    return rows


def agreement() -> dict[str, Any]:
    """Event/roofline on plainly compute-bound layers: BERT-base's first block (seq 384) and
    three large GEMMs on every preset with unlimited SRAM ports (as tests/test_fidelity.py)."""
    bert = npusim.workloads.bert_base(seq_len=384)
    wls = [Workload("bert_base_block0",
                    tuple(x for x in bert.layers if x.name.startswith("layer0.")),
                    dict(bert.meta)),
           Workload("probe", (Matmul("gemm_2048", m=2048, n=2048, k=2048),
                              Matmul("gemm_2048x1024x1024", m=2048, n=1024, k=1024),
                              Matmul("gemm_1024x2048x2048", m=1024, n=2048, k=2048)),
                    {"batch": 1})]
    ratios, excess, on_presets = [], [], 0
    for name in list_presets():
        preset = npusim.load_arch(name)
        for wl in wls:
            on_presets += sum(plainly_compute_bound(preset, lp) is not None
                              for lp in compile_workload(preset, wl).layers)
        chip = with_unlimited_sram_ports(preset)
        for wl in wls:
            program = compile_workload(chip, wl)
            roof = simulate_program(chip, program, fidelity="roofline").layers
            for memory in ("bandwidth", "cycle"):
                ev = simulate_program(chip, program, memory=memory).layers
                for i, lp in enumerate(program.layers):
                    explained = plainly_compute_bound(chip, lp)
                    if explained is not None:
                        r = float(ev["latency_s"][i] / roof["latency_s"][i])
                        ratios.append(r)
                        excess.append(r / explained)
    return {"n": len(ratios), "max": max(ratios, default=float("nan")),
            "median": statistics.median(ratios) if ratios else float("nan"),
            "max_excess": max(excess, default=float("nan")), "on_presets": on_presets}


# --- 3. LLMs against an independent bound -----------------------------------------------

def llm_bounds(quick: bool) -> dict[str, Any]:
    """Decode and prefill of the LLM grid against tests/llm_bound.py (a calculator written
    from the HF configs and chip YAML files, independent of npusim), and the LPDDR5X vs HBM3
    comparison for LLaMA 30B at int4 weights."""
    sys.path.insert(0, str(ROOT / "tests"))
    import llm_bound as lb

    from npusim.llm import run_llm
    from npusim.workloads.llm import from_hf_config

    grid: dict[tuple[str, str, str], dict[str, Any]] = {}
    for preset, name, weights, batch in lb.cases():
        if quick and (name != "llama2_7b" or batch != 1):
            continue
        chip, cfg = lb.chip_yaml(preset), lb.model(name)
        row = grid.setdefault((preset, name, weights), {})
        kw = dict(weights=weights, activations=lb.ACT, kv=lb.KV)
        dec = npusim.simulate(ROOT / "arch" / f"{preset}.yaml",
                              from_hf_config(name, "decode", batch=batch,
                                             prompt_len=lb.CONTEXT, context_len=lb.CONTEXT, **kw))
        row[f"d{batch}"] = dec.summary()["latency_s"] / lb.decode_bound(chip, cfg, weights, batch)
        row[f"d{batch}_limit"] = lb.dominant_limit(dec.layers)
        if batch in (1, 8):
            pre = npusim.simulate(ROOT / "arch" / f"{preset}.yaml",
                                  from_hf_config(name, "prefill", batch=batch,
                                                 prompt_len=lb.PROMPT, **kw))
            row[f"p{batch}"] = (pre.summary()["latency_s"]
                                / lb.prefill_bound(chip, cfg, weights, batch))
            row[f"p{batch}_limit"] = lb.dominant_limit(pre.layers)
    memories = {}
    for preset in ("lpddr_llm", "hbm_llm"):
        r = run_llm(ROOT / "arch" / f"{preset}.yaml", "llama_30b", weights="int4", kv="int8")
        dec = r.decode.summary()
        chip = lb.chip_yaml(preset)
        memories[preset] = {
            "standard": chip["dram"]["standard"], "bandwidth": lb.dram_bandwidth(chip),
            "tpot_s": r.tpot_s, "tokens_per_s": r.tokens_per_s, "j_per_token": r.j_per_token,
            "dram_j": dec["energy_dram_j"] / r.batch, "ttft_s": r.ttft_s,
            "bound_s": lb.decode_bound(chip, lb.model("llama_30b"), "int4", 1),
            "limit": getattr(r, "limit", lb.dominant_limit(r.decode_layers))}
    return {"grid": grid, "memories": memories, "prompt": lb.PROMPT, "context": lb.CONTEXT}


def _llm_lines(llm: dict[str, Any]) -> list[str]:
    L = ["## 3. LLM decode and prefill against an independent bound", "",
         "`tests/llm_bound.py` computes, from the HF `config.json` files and the chip YAML "
         "files alone (its own parameter, byte, KV-cache and MAC counts; none of npusim's "
         "functions), the roofline bound of a step: the larger of (weights + KV cache read) / "
         "DRAM bandwidth and MACs / every multiplier of the chip's largest engine. The table gives "
         "npusim's "
         f"latency over that bound: decode of one token against a {llm['context']}-token "
         f"cache at batch 1, 8 and 32, prefill of {llm['prompt']} tokens per sequence at batch "
         "1 and 8 (activations and KV cache int8); `limit` is what npusim says takes most of "
         "the batch-1 decode step. `tests/test_llm_bounds.py` asserts the same grid: never "
         "below 1.0; within 1.3x wherever the chip's engines take the weights and the K/V cache "
         "at least as fast as its DRAM delivers them; and beyond 1.3x, layers naming a limit "
         "the bound does not model (weight shift-in, fill and drain, a port, the vector unit, "
         "a small engine's MAC rate) take the excess. TPU v4 has only its MXUs: int8 and int4 "
         "weights enter them at the arrays' edge rate, slower than its HBM delivers them, and "
         "its rows name `weight shift-in`. At batch 32 the twins' matrix-vector engine (4 rows "
         "held) passes over the weights 8 times and becomes MAC-bound.", "",
         "| chip | model | weights | decode b1 | b8 | b32 | prefill b1 | b8 | decode limit (b1) |",
         "|---|---|---|---|---|---|---|---|---|"]

    def cell(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.2f}x" if key in row else "-"

    for (preset, name, weights), row in llm["grid"].items():
        L.append(f"| {preset} | {name} | {weights} | {cell(row, 'd1')} | {cell(row, 'd8')} | "
                 f"{cell(row, 'd32')} | {cell(row, 'p1')} | {cell(row, 'p8')} | "
                 f"{row.get('d1_limit', '-')} |")
    ratios = [v for row in llm["grid"].values() for k, v in row.items()
              if isinstance(v, float) and not k.endswith("limit")]
    L += ["", f"{len(ratios)} simulated steps; the lowest ratio is {min(ratios):.3f}, the "
          f"median {statistics.median(ratios):.2f}.", ""]
    mem = llm["memories"]
    if mem:
        L += ["LLaMA 30B, int4 weights, int8 KV cache, batch 1, prompt 512, 128 generated "
              "tokens (`npusim llm lpddr_llm llama_30b --weights int4 --kv int8` and the same "
              "on `hbm_llm`, the twin with identical compute and SRAM):", "",
              "| chip | DRAM | bandwidth | TTFT | TPOT | bound | tokens/s | J/token | "
              "DRAM J/token | limit |", "|---|---|---|---|---|---|---|---|---|---|"]
        for preset, m in mem.items():
            L.append(f"| {preset} | {m['standard']} | {m['bandwidth'] / 1e9:.0f} GB/s | "
                     f"{m['ttft_s'] * 1e3:.1f} ms | {m['tpot_s'] * 1e3:.2f} ms | "
                     f"{m['bound_s'] * 1e3:.2f} ms | {m['tokens_per_s']:.1f} | "
                     f"{m['j_per_token']:.3f} | {m['dram_j']:.3f} | {m['limit']} |")
        lp, hb = mem.get("lpddr_llm"), mem.get("hbm_llm")
        if lp and hb:
            L += ["", f"The HBM3 twin generates {hb['tokens_per_s'] / lp['tokens_per_s']:.1f}x "
                  f"the tokens per second (its bandwidth is {hb['bandwidth'] / lp['bandwidth']:.1f}x)"
                  f" and spends {hb['dram_j'] / lp['dram_j']:.2f}x the DRAM energy per token "
                  "(the same bytes at each standard's pJ/bit, docs/model.md); the rest of the "
                  "energy per token is compute, SRAM and leakage x the (shorter) step time."]
        L.append("")
    return L


# --- rendering ------------------------------------------------------------------------

def _f(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}"


def _network_lines(net: dict[str, Any] | None) -> list[str]:
    if net is None:
        return ["Whole network: not run this time (`python bench/make_validation.py --network` "
                "runs ResNet-50's 53 convolutions through SCALE-Sim on a 256x256 array; it "
                "takes several minutes).", ""]
    if "error" in net:
        return [f"Whole network: the SCALE-Sim run failed: {net['error']}", ""]
    s = net["summary"]
    return [f"Whole network: ResNet-50's {s['compared']} convolutions "
            f"(bench/data/scalesim/resnet50_convs.csv, built from `npusim.workloads.resnet50()`) "
            f"on a 256x256 weight-stationary array (bench/data/scalesim/array_256x256_ws.cfg): "
            f"**{s['match']} of {s['compared']} layers identical**, {s['mismatch']} different; "
            f"SCALE-Sim {s['scalesim_wall_s']:.1f} s against npusim "
            f"{s['npusim_warm_s'] * 1e3:.2f} ms warm: **{s['wall_ratio']:,.0f}x**.", ""]


# --- 3a. silicon ----------------------------------------------------------------------

#: Public measurements of the shipped presets' chips, each with its citation: dicts of
#: preset, workload (a built-in), scenario (single-stream: latency_s, MLPerf's 90th
#: percentile; offline: inferences_per_s), value, source. Each figure was read from the
#: MLPerf Inference results repositories (github.com/mlcommons/inference_results_vX.Y,
#: closed division, the run's mlperf_log_summary.txt); every system has one accelerator.
_MLPERF = "MLPerf Inference {v}, closed, {cat}: {system} ({sw}; one accelerator, {pcie}), {path}"
_WARBOY = dict(v="v2.0", cat="edge", system="FuriosaAI 'Supermicro SYS-420GP-TNR 1x Warboy'",
               sw="FuriosaAI SDK 0.5.0", pcie="PCIe 4.0 x8")
_ATOM = dict(v="v3.0", cat="edge", system="Rebellions 'Dell-R750-1xATOM'", sw="RBLN SDK v0.2.0",
             pcie="PCIe 4.0 x16")
_X220 = dict(v="v2.1", cat="datacenter", system="SAPEON 'SUPERMICRO SYS-620C-TN12R X220-compact'",
             sw="SAPEON SDK v0.52", pcie="PCIe Gen3 x16")
PUBLIC_RESULTS: list[dict[str, Any]] = [
    {"preset": "warboy", "workload": "resnet50", "scenario": "single-stream",
     "value": 712_196e-9, "source": _MLPERF.format(
         **_WARBOY, path="results/warboy/resnet50/SingleStream: 90th percentile 712,196 ns")},
    {"preset": "warboy", "workload": "resnet50", "scenario": "offline", "value": 2758.44,
     "source": _MLPERF.format(**_WARBOY, path="results/warboy/resnet50/Offline: 2,758.44 "
                                              "samples/s")},
    {"preset": "atom", "workload": "resnet50", "scenario": "single-stream",
     "value": 238_829e-9, "source": _MLPERF.format(
         **_ATOM, path="results/ATOM/resnet50/SingleStream: 90th percentile 238,829 ns")},
    {"preset": "atom", "workload": "bert_large", "scenario": "single-stream",
     "value": 4_297_295e-9, "source": _MLPERF.format(
         **_ATOM, path="results/ATOM/bert-99 (sequence 384; the log filed under Offline "
                       "reports Scenario SingleStream): 90th percentile 4,297,295 ns")},
    {"preset": "atom", "workload": "resnet50", "scenario": "offline", "value": 7245.87,
     "source": _MLPERF.format(**_ATOM, path="results/ATOM/resnet50/Offline: 7,245.87 "
                                            "samples/s")},
    {"preset": "x220", "workload": "resnet50", "scenario": "offline", "value": 6769.07,
     "source": _MLPERF.format(**_X220, path="results/X220-compact/resnet50/Offline: "
                                            "6,769.07 samples/s")},
]

#: The runtime overheads fitted one at a time for the hold-out: which one a chip's gap is
#: made of is not published, and the held-out error shows how much the choice matters.
HOLDOUT_FIELDS = ("overheads.per_layer_s", "overheads.per_query_s")

#: Workloads predicted for every preset with a host link (the MLPerf edge/datacenter pair).
SILICON_WORKLOADS = ("resnet50", "bert_large")


def silicon(quick: bool, results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Each preset with a host link: its uncalibrated single-stream prediction (host path
    included) for each workload, beside every public result for it; where a preset has
    public results on two workloads, each of HOLDOUT_FIELDS fitted alone on the first
    (default physical bounds) and the second predicted (the signed hold-out error)."""
    from npusim.calibration import Measurement, calibrate
    from npusim.calibration.fit import CalibrationWarning
    from npusim.scenarios import run_scenario

    results = PUBLIC_RESULTS if results is None else results
    names = ("resnet50",) if quick else SILICON_WORKLOADS
    rows: list[dict[str, Any]] = []
    holdouts: list[dict[str, Any]] = []
    for preset in list_presets():
        chip = npusim.load_arch(preset)
        if chip.host is None:
            continue
        for name in names:
            s = run_scenario(chip, npusim.workloads.builtin(name), "single-stream").summary()
            pub = [r for r in results if r["preset"] == preset and r["workload"] == name]
            rows.append({"preset": preset, "workload": name, "latency_s": s["latency_s"],
                         "host_s": s.get("host_upload_s", 0.0) + s.get("host_download_s", 0.0),
                         "public": pub})
        lat = [r for r in results if r["preset"] == preset and r["scenario"] == "single-stream"]
        if len({r["workload"] for r in lat}) >= 2:
            fit, held = lat[0], next(r for r in lat if r["workload"] != lat[0]["workload"])
            ms = [Measurement(fit["workload"], fit["value"]),
                  Measurement(held["workload"], held["value"], line=1)]
            for f in HOLDOUT_FIELDS:
                with warnings.catch_warnings():
                    # One row for one field is the point here; the hold-out row is the test.
                    warnings.simplefilter("ignore", CalibrationWarning)
                    res = calibrate(chip, ms, [f], holdout=1)
                holdouts.append({"preset": preset, "fit_on": fit["workload"],
                                 "predict": held["workload"], "field": f,
                                 "value": res.fitted[f], "fit_error": res.fit_rms_error,
                                 "holdout_error": float(res.table["error"].iloc[1])})
    offline = []
    for r in results:
        if r["scenario"] != "offline" or (quick and r["workload"] != "resnet50"):
            continue
        scen = run_scenario(npusim.load_arch(r["preset"]), npusim.workloads.builtin(r["workload"]),
                            "offline")
        offline.append({**r, "predicted": scen.summary()["inferences_per_s"],
                        "batch": scen.batch})
    return {"rows": rows, "holdouts": holdouts, "offline": offline}


def _silicon_lines(sil: dict[str, Any]) -> list[str]:
    L = ["## 3a. Silicon: the presets beside public measurements", "",
         "Single-stream latency at batch 1 of each preset with a host link, uncalibrated (the "
         "preset as shipped), host path included (the input's upload and the result's download "
         "over the preset's PCIe link; runtime overheads 0, as each preset states). Beside it, "
         "every public measurement collected for that chip, with its source; the ratio is "
         "predicted over measured.", "",
         "| preset | workload | predicted ms | of which host link ms | public result | ratio |"
         " source |", "|---|---|---|---|---|---|---|"]
    for r in sil["rows"]:
        head = (f"| {r['preset']} | {r['workload']} | {r['latency_s'] * 1e3:.3f} | "
                f"{r['host_s'] * 1e3:.3f} |")
        lat = [p for p in r["public"] if p["scenario"] == "single-stream"]
        if not lat:
            L.append(head + " none collected | | |")
        for p in lat:
            L.append(head + f" {p['value'] * 1e3:.3f} ms | {r['latency_s'] / p['value']:.2f} | "
                     f"{p['source']} |")
    if sil.get("offline"):
        L += ["", "Offline throughput (the best batch that fits, host transfers overlapped with "
              "compute), uncalibrated, beside the public offline results:", "",
              "| preset | workload | predicted inferences/s (batch) | public | ratio | source |",
              "|---|---|---|---|---|---|"]
        L += [f"| {o['preset']} | {o['workload']} | {o['predicted']:,.0f} ({o['batch']}) | "
              f"{o['value']:,.2f} | {o['predicted'] / o['value']:.2f} | {o['source']} |"
              for o in sil["offline"]]
    ratios = [r["latency_s"] / p["value"] for r in sil["rows"] for p in r["public"]
              if p["scenario"] == "single-stream"]
    ratios += [o["predicted"] / o["value"] for o in sil.get("offline", [])]
    if ratios:
        near = sum(1 for x in ratios if 0.8 <= x <= 1.2)
        L += ["", f"Uncalibrated, **{near} of {len(ratios)}** public figures are within ±20 % "
              f"(ratios {', '.join(f'{x:.2f}' for x in ratios)}): nothing in a preset is fitted "
              "to them, and the runtimes' overheads, which no public document gives, are 0."]
    L += ["", "Hold-out: where a chip has public single-stream results on two workloads, one "
          "runtime overhead at a time is fitted to the first (`npusim calibrate`, default "
          "physical bounds: 0 to the measured time) and the second predicted; its signed error "
          "(predicted / measured - 1) is the honest one. A fit of one field to one row matches "
          "that row exactly whatever the field, so the fit error says nothing; which overhead "
          "the gap is made of is not published, and the two rows show how much that choice "
          "moves the prediction.", ""]
    if not sil["holdouts"]:
        L.append("No preset has two public results collected, so no hold-out was run.")
    else:
        L += ["| preset | fitted on | predicted | field fitted | fitted value | fit error | "
              "hold-out error |", "|---|---|---|---|---|---|---|"]
        L += [f"| {h['preset']} | {h['fit_on']} | {h['predict']} | `{h['field']}` | "
              f"{h['value'] * 1e6:.3g} us | {h['fit_error']:.1%} | "
              f"{h['holdout_error']:+.1%} |" for h in sil["holdouts"]]
    return [*L, ""]


# --- 3b. The cycle DRAM model against a cycle-accurate controller -------------------------

def dram_reference() -> list[dict[str, Any]]:
    """Every (configuration, pattern) of tests/dram_reference.py: DRAMSim3's figures beside
    npusim's cycle model configured the same way (nothing fitted)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import dram_reference as dr

    rows = []
    for config, patterns in dr.REFERENCE.items():
        for pattern, (gbps, avg, p50, hit, pj) in patterns.items():
            got = dr.measure(config, pattern)
            rows.append({"config": config, "pattern": pattern,
                         "ref": {"gbps": gbps, "avg_ns": avg, "p50_ns": p50, "hit": hit,
                                 "pj_per_bit": pj}, "npusim": got})
    return rows


def _dram_lines(rows: list[dict[str, Any]]) -> list[str]:
    L = ["## 3b. The cycle DRAM model against a cycle-accurate controller", "",
         "DRAMSim3 (University of Maryland, commit 29817593) on its stock `HBM2_8Gb_x128` and "
         "`LPDDR4_8Gb_x16_2400` configurations, one burst per request, a 512-entry lookahead "
         "window handing 16 requests per clock, 32-entry transaction queues feeding 8-entry "
         "per-bank command queues, one command a clock round robin over them (HBM: a row and "
         "a column command), open page; npusim's "
         "cycle model built from the same organisation, timings, address mapping, queue sizes "
         "and IDD currents (tests/dram_reference.py; nothing fitted). Throughput patterns move "
         "16 MiB with every request offered at once; `idle_*` keep one read outstanding. "
         "Tolerances tested (tests/test_dram_reference.py): bandwidth 10 %, idle latency 5 %, "
         "loaded (queueing) latency on the saturating read patterns 15 % (all ten; "
         "docs/model.md, \"Cycle DRAM controller\"), row-hit rate 0.05; "
         "energy "
         "(core only, no I/O) is shown for information.", "",
         "| config | pattern | GB/s ref | GB/s npusim | diff | avg lat. ns ref / npusim "
         "| row hits ref / npusim | pJ/bit ref / npusim |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref, got = r["ref"], r["npusim"]
        lat = "-" if ref["avg_ns"] is None else f"{ref['avg_ns']:.1f} / {got['avg_ns']:.1f}"
        L.append(f"| {r['config']} | {r['pattern']} | {ref['gbps']:.2f} | {got['gbps']:.2f} "
                 f"| {100 * (got['gbps'] / ref['gbps'] - 1):+.1f} % | {lat} "
                 f"| {ref['hit']:.3f} / {got['hit']:.3f} "
                 f"| {ref['pj_per_bit']:.2f} / {got['pj_per_bit']:.2f} |")
    return [*L, ""]


def _genz_lines(genz: dict[str, Any]) -> list[str]:
    """Section 3c from bench/data/genz_compare.json (bench/genz_compare.py, run where GenZ is
    installed in a throwaway venv: it is never an npusim dependency)."""
    rows = genz["rows"]
    same = [r for r in rows if not r["note"]]
    lo = min(r["ratio"] for r in same)
    hi = max(r["ratio"] for r in same)
    L = ["## 3c. Beside GenZ: decode time per token", "",
         f"GenZ {genz['genz_version']} (genz-llm, in a throwaway venv) against npusim on the "
         f"same chips, {genz['generated_utc']}, context {genz['context']}: each chip given to "
         "GenZ as its bf16 peak, DRAM bandwidth and capacity. `python bench/genz_compare.py "
         "--genz-python VENV/bin/python --json bench/data/genz_compare.json` remakes the "
         "table; this section quotes that file. Where both model the same thing (dense decode "
         f"while the datapath streams weights at memory rate; MoE at batch 1) npusim is "
         f"{lo:.2f}-{hi:.2f}x GenZ: npusim adds the DRAM's achieved rather than peak "
         "bandwidth, fill and drain, and the vector work between the products.", "",
         "Where they differ, and why:", "",
         "- MoE above batch 1: GenZ's decode reads `top_k` experts per layer whatever the "
         "batch (its `ffn.py` sets the activated experts to `K`); npusim reads the distinct "
         "experts the batch's tokens touch, E·(1-(1-k/E)^T) under uniform routing, which at "
         "batch 32 is nearly all of them. GenZ's figure is a lower bound there.",
         "- Dense decode at batch 32 on hbm_llm (and other chips whose array is the compute "
         "unit): GenZ times every product at the chip's peak; npusim's weight-stationary "
         "128x128 arrays shift a weight block in for every 32 rows streamed (about 20 % "
         "utilisation), so the step is compute-bound on the matrix-vector engine instead.",
         "- DeepSeek-V3 is left out: GenZ's entry has grouped-query attention with two KV "
         "heads and an 18,432-wide shared expert, where the model has latent attention and "
         "a 2,048-wide one.", "",
         "| chip | model | weights | batch | npusim ms | GenZ ms | npusim / GenZ | note |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['chip']} | {r['model']} | {r['bits']} | {r['batch']} | "
                 f"{r['npusim_s'] * 1e3:.2f} | {r['genz_s'] * 1e3:.2f} | {r['ratio']:.2f} | "
                 f"{r['note']} |")
    return [*L, ""]


def render(quick: bool, formula: list[dict[str, Any]], scalesim: dict[str, Any] | None,
           fid: list[dict[str, Any]], wl_desc: str, bench: dict[str, Any] | None,
           agree: dict[str, Any], network: dict[str, Any] | None = None,
           llm: dict[str, Any] | None = None, sil: dict[str, Any] | None = None,
           dram: list[dict[str, Any]] | None = None,
           genz: dict[str, Any] | None = None) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L = [
        "# Validation: what npusim was checked against, and how far it is off",
        "",
        f"Generated by `python bench/make_validation.py{' --quick' if quick else ''}` at {now} "
        "from fresh runs; regenerate rather than edit. Nothing here is fitted: every figure "
        "is a measurement of the current code.",
        "",
        "## 1. Compute cycles against SCALE-Sim",
        "",
        "npusim's systolic-array timing follows the SCALE-Sim convention (docs/model.md). With "
        "`--memory ideal` and one array, a layer's `compute_cycles` should equal SCALE-Sim's "
        "stall-free cycles (Total Cycles - Stall Cycles of its COMPUTE_REPORT.csv).",
        "",
    ]
    if scalesim is None:
        L += [f"SCALE-Sim is **not installed** in `{SCALESIM_VENV}`, so no side-by-side run was "
              "made this time (`python bench/scalesim_compare.py` creates the throwaway venv "
              "and runs it). The analytic check below stands in for it.", ""]
    elif "error" in scalesim:
        L += [f"The SCALE-Sim comparison failed: {scalesim['error']}", ""]
    else:
        s = scalesim["summary"]
        L += [f"SCALE-Sim 3.0.0 (throwaway venv `{SCALESIM_VENV}`) and npusim ran the bundled "
              f"16x16 configuration on the bundled conv and GEMM topologies "
              f"(bench/data/scalesim/): **{s['match']} of {s['compared']} layers identical**, "
              f"{s['mismatch']} different.", "",
              "| dataflow | topology | layers | identical | SCALE-Sim wall (s) | npusim warm (ms) "
              "| wall-time ratio |", "|---|---|---|---|---|---|---|"]
        for r in scalesim["runs"]:
            same = sum(row["status"] == "match" for row in r["rows"])
            ratio = r.get("wall_ratio")
            L.append(f"| {r['dataflow']} | {r['topology']} | {len(r['rows'])} | {same} | "
                     f"{_f(r['scalesim_wall_s'] or 0)} | {_f(r['npusim_warm_s'] * 1e3)} | "
                     f"{'-' if ratio is None else f'{ratio:,.0f}x'} |")
        if s.get("wall_ratio"):
            L += ["", f"Overall SCALE-Sim / npusim wall time: {s['wall_ratio']:,.0f}x on these "
                  "small layers (npusim warm, in-process; SCALE-Sim's own timer inside its "
                  "process). The issue's goal is >= 1000x for a whole network; these tiny "
                  "layers are dominated by fixed per-call costs on both sides."]
        L.append("")
    L += _network_lines(network)
    L += ["Analytic check (always run): npusim's `compute_cycles` against the closed-form "
          "SCALE-Sim formula, written out independently in this script (WS: "
          "ceil(K/R)·ceil(N/C)·(2R + C + M − 2) − 1 per GEMM; OS and IS likewise).", "",
          "| dataflow | topology | layers | equal |", "|---|---|---|---|"]
    L += [f"| {r['dataflow']} | {r['topology']} | {r['layers']} | {r['equal']} |"
          for r in formula]
    L += [
        "",
        "## 2. Roofline vs event model vs event model with cycle-approximate DRAM",
        "",
        f"Workload: {wl_desc}, every preset in `arch/`. The three fidelities run the *same* "
        "compiled tile program: `--fidelity roofline` (per layer the largest of MACs at peak, "
        "DRAM bytes at peak bandwidth, vector cycles at the vector rate), the event model "
        "with the bandwidth DRAM (default), and the event model with `--memory cycle`. Ratios "
        "are event latency / roofline latency per layer; a ratio below 1 would be a bug "
        "(tests/test_fidelity.py checks it on every preset).",
        "",
        "| preset | layers | roofline ms | event ms | event+cycle ms | total ev/roof | "
        "median ev/roof | max ev/roof (layer) | median cyc/roof | max cyc/roof | min ratio | "
        "layers within 5 % | SRAM-port-bound | plainly compute-bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in fid:
        L.append(f"| {r['preset']} | {r['layers']} | {_f(r['roofline_ms'])} | "
                 f"{_f(r['event_ms'])} | {_f(r['event_cycle_ms'])} | "
                 f"{_f(r['total_event_over_roof'], 2)} | {_f(r['median_event_over_roof'], 2)} | "
                 f"{_f(r['max_event_over_roof'], 2)} ({r['worst_layer']}) | "
                 f"{_f(r['median_cycle_over_roof'], 2)} | {_f(r['max_cycle_over_roof'], 2)} | "
                 f"{_f(r['min_ratio'], 4)} | {r['within_5pct']} | {r['sram_port_bound']} | "
                 f"{r['plainly_compute_bound']} |")
    n_layers = sum(r["layers"] for r in fid)
    ok = all(r["min_ratio"] >= 1 - 1e-9 for r in fid)
    L += [
        "",
        f"Over {n_layers} (preset, layer) pairs the event model is "
        f"{'never' if ok else '**sometimes**'} faster than the roofline. Where the two differ "
        "the causes are the ones the event model adds on purpose, reported per layer in the "
        "`time_*_s` columns: fold fill and drain and part-filled folds (a 64-channel layer "
        "uses a quarter of a 256-row array), SRAM-port stalls, DMA that double buffering "
        "cannot hide (a layer's first load and last store) and DRAM latency, and the layer "
        "barrier between unevenly loaded cores. The largest ratios are matrix-vector layers "
        "(ResNet-50's `fc`, M = 1): a weight-stationary fold then spends R cycles shifting "
        "weights in for a single row of MACs, which the roofline's MAC-rate term cannot see.",
        "",
        "Where a layer is *plainly compute-bound* (`npusim.engine.roofline."
        "plainly_compute_bound`: roofline compute >= 3x its DRAM and vector time, >= 8 full "
        "folds per core, >= 97 % array occupancy, no SRAM-port stall, DMA that double "
        "buffering cannot hide <= 2 % of compute) the two should agree. Measured on BERT-base's "
        "first block (sequence 384) and three large GEMMs, on every preset with unlimited SRAM "
        f"ports, bandwidth and cycle DRAM: {agree['n']} such layers, event/roofline median "
        f"{agree['median']:.3f}, max {agree['max']:.3f}; beyond what their fill/drain and "
        f"unhidden DMA explain, the event model adds at most "
        f"{(agree['max_excess'] - 1) * 100:.1f} %. The same layers on the presets as shipped: "
        f"{agree['on_presets']} qualify. ResNet-50 at batch 1 has "
        f"{sum(r['plainly_compute_bound'] for r in fid)} (column above): early layers fill "
        "part of the array (K or N of 64 against 128 or 256 rows), late layers stream 49 rows "
        "per fold, TPU v1 is DRAM-bound (34 GB/s), and the `SRAM-port-bound` column counts "
        "array layers whose SRAM traffic (inputs, weights shifting in, 4-byte partial sums) "
        "exceeds the scratchpad ports the preset assumes.",
        "",
        "Wall time per fidelity (same program, this machine, seconds):",
        "",
        "| preset | roofline | event | event+cycle DRAM |",
        "|---|---|---|---|",
    ]
    L += [f"| {r['preset']} | {r['wall_roofline_s']:.4f} | {r['wall_event_s']:.4f} | "
          f"{r['wall_cycle_s']:.4f} |" for r in fid]
    L += [""]
    if llm is not None:
        L += _llm_lines(llm)
    if sil is not None:
        L += _silicon_lines(sil)
    if genz is not None:
        L += _genz_lines(genz)
    L += ["## 4. Speed", ""]
    if bench is None:
        L += ["`bench/results.json` is not there: run `python bench/run_all.py` (full) or "
              "`--quick`, then regenerate this file."]
    else:
        L += [f"From `bench/results.json` ({'quick' if bench.get('quick') else 'full'} run, "
              f"{bench.get('generated_utc')}, {bench.get('cpus')} CPUs); "
              "see bench/results.md for every figure.", ""]
        L += _speed_lines(bench)
    if dram:
        L += ["", *_dram_lines(dram)]
    L += [
        "",
        "## 5. Limitations",
        "",
        "- Compute cycles are validated against SCALE-Sim, itself a model. Silicon enters only "
        "through the published MLPerf results of section 3a, against which the presets are "
        "uncalibrated: preset results are as good as the public figures and the assumptions "
        "each preset lists, and section 3a shows how far that is.",
        "- The SCALE-Sim comparison covers stall-free compute cycles with ideal memory, one "
        "array, one core; SRAM stalls, DRAM, multi-core splits and energy are not part of it.",
        "- Cutting the streamed dimension into tiles pays fill and drain again per tile; a "
        "real array could keep streaming (docs/model.md).",
        "- Layers run one after another: no inter-layer pipelining or fusion beyond fused "
        "activations; activation residency is a size rule, not an allocator (docs/model.md).",
        "- The roofline omits SRAM-port bandwidth and the DMA engines' caps, so it is a "
        "bound, not an estimate, for SRAM-port-bound layers; the event model charges those.",
        "- Weight-stationary partial sums are written to SRAM at accumulator width every "
        "fold and read back by every fold after an output's first (to the accumulator SRAM "
        "where the core has one). The presets' ports are sized so every advertised precision "
        "reaches its peak (an assumption each preset states: (rows + columns) x rate x "
        "operand bytes + 4 B x columns x rate read, 4 B x columns x rate written per array "
        "and cycle; tests/test_peaks.py); real port widths are not public. SRAM-port stalls "
        "show in the `time_sram_stall_s` column.",
        "- The agreement check between fidelities runs on preset variants with unlimited SRAM "
        "ports and on synthetic GEMMs as well as on the presets as shipped (section 2).",
        "- Wall times depend on the machine and on its load; they are medians of a few runs.",
    ]
    return "\n".join(L) + "\n"


def _speed_lines(bench: dict[str, Any]) -> list[str]:
    s = bench.get("scripts", {})
    out = ["| figure | value |", "|---|---|"]

    def rows(name: str) -> list[dict[str, Any]]:
        fig = s.get(name, {}).get("figures")
        return fig if isinstance(fig, list) else []

    for r in rows("bench_startup"):
        out.append(f"| `npusim run` warm numba cache | {r['warm_run_s']:.2f} s (target <= 3 s) |")
        if "cold_run_s" in r:
            out.append(f"| `npusim run` cold numba cache | {r['cold_run_s']:.2f} s "
                       "(target <= 15 s) |")
    for r in rows("bench_resnet"):
        out.append(f"| ResNet-50 b1 on {r['preset']}, warm | {r['warm_s'] * 1e3:.0f} ms, "
                   f"{r['cycles_per_wall_s'] / 1e6:.1f} M simulated cycles/s, "
                   f"{r['tiles']} tiles |")
    for r in rows("bench_bert"):
        out.append(f"| BERT-large 384 on {r['preset']}, warm | {r['warm_s'] * 1e3:.0f} ms, "
                   f"{r['cycles_per_wall_s'] / 1e6:.1f} M simulated cycles/s, "
                   f"{r['tiles']} tiles |")
    for r in rows("bench_llm"):
        if "ratio_70b_7b" in r:
            out.append(f"| LLaMA-2 70B / 7B decode wall time on {r['preset']} | "
                       f"{r['ratio_70b_7b']:.2f}x (median of {len(r['ratios'])} back-to-back "
                       "pairs; target <= 3x) |")
        else:
            out.append(f"| {r['model']} {r['phase']} {r['tokens']} on {r['preset']} | "
                       f"{r['wall_s']:.3f} s, {r['tiles']} tiles |")
    for name in ("bench_system", "bench_serve"):
        fig = s.get(name, {}).get("figures")
        for c in fig.get("cases", []) if isinstance(fig, dict) else []:
            if name == "bench_system":
                model = {"llama2_70b": "LLaMA-2-70B", "deepseek_v3": "DeepSeek-V3"}.get(
                    str(c.get("model", "llama2_70b")), c.get("model"))
                out.append(f"| {model} decode step on {c['system']} ({c['plan']}) | "
                           f"{c['wall_s']:.2f} s (target <= {c['target_s']:g} s) |")
            else:
                out.append(f"| serving {c['requests']:,} requests of {c['model']} on "
                           f"{c['target']} | {c['wall_s']:.1f} s (target <= "
                           f"{c['target_s']:g} s) |")
    for r in rows("bench_sweep"):
        if "cold_s" in r:
            out.append(f"| sweep of {r.get('points')} points | {r['cold_s']:.1f} s cold, "
                       f"{r.get('cache_s', float('nan')):.2f} s from cache |")
    for r in rows("bench_dram"):
        out.append(f"| DRAM model: {r['size']:,} {r['what']} | {r['warm_s']:.3f} s warm |")
    ss = s.get("scalesim_compare", {}).get("figures")
    if isinstance(ss, dict) and ss.get("summary", {}).get("wall_ratio"):
        out.append(f"| SCALE-Sim / npusim wall time | {ss['summary']['wall_ratio']:,.0f}x |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 ResNet-50 layers, ws only")
    ap.add_argument("--network", action="store_true",
                    help="also run ResNet-50 through SCALE-Sim on 256x256 (several minutes)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation.md")
    ap.add_argument("--bench", type=Path, default=HERE / "results.json",
                    help="benchmark results to quote (default bench/results.json)")
    args = ap.parse_args(argv)
    r50 = npusim.workloads.resnet50()
    if args.quick:
        wl = Workload("resnet50_head", r50.layers[:8], dict(r50.meta))
        desc = "the first 8 layers of ResNet-50 (batch 1)"
    else:
        wl, desc = r50, "ResNet-50 (batch 1, all 72 layers)"
    print("formula check ...", file=sys.stderr)
    formula = formula_check()
    print("SCALE-Sim side by side ...", file=sys.stderr)
    scalesim = scalesim_side_by_side(args.quick)
    network = scalesim_side_by_side(False, network=True) if args.network else None
    print("fidelity table ...", file=sys.stderr)
    fid = fidelity_table(wl)
    print("agreement on plainly compute-bound layers ...", file=sys.stderr)
    agree = agreement()
    print("LLMs against the independent bound ...", file=sys.stderr)
    llm = llm_bounds(args.quick)
    print("silicon: presets beside public results ...", file=sys.stderr)
    sil = silicon(args.quick)
    print("cycle DRAM model against DRAMSim3 ...", file=sys.stderr)
    dram = dram_reference()
    bench = json.loads(args.bench.read_text()) if args.bench.is_file() else None
    genz_file = HERE / "data" / "genz_compare.json"
    genz = json.loads(genz_file.read_text()) if genz_file.is_file() else None
    atomic_write_text(args.out, render(args.quick, formula, scalesim, fid, desc, bench, agree,
                                       network, llm, sil, dram, genz))
    worst = max(r["max_event_over_roof"] for r in fid)
    print(f"wrote {args.out} (worst event/roofline {worst:.2f}, "
          f"median of medians {statistics.median(r['median_event_over_roof'] for r in fid):.2f})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
