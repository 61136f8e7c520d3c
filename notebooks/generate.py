"""Write the example notebooks from the cell sources below (no outputs are stored).

    python notebooks/generate.py           # rewrite notebooks/*.ipynb
    python notebooks/generate.py --check   # exit 1 if a notebook differs from this script

Editing a notebook by hand is fine for a look around, but the committed ``.ipynb`` files
are generated here, so a review reads plain Python. ``tests/test_notebooks.py`` executes each
notebook on a fresh kernel and checks that the files match this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
%matplotlib inline
import pandas as pd

import npusim
from npusim.result import CAUSE_COLUMNS

pd.set_option("display.precision", 4)"""


def _nb(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                for kind, src in cells]
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    # stable ids keep regenerated files identical (nbformat would draw random ones)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


QUICKSTART = [
    ("md", """\
# npusim quickstart: ResNet-50 on one chip

Load a chip preset, simulate ResNet-50 at batch 1, read the per-layer table, and see where
the time and the energy go. Needs npusim importable (`pip install -e .` in the repository)."""),
    ("code", SETUP),
    ("md", """\
A chip is a validated, frozen spec read from YAML (`arch/*.yaml`; a preset is named by its
file stem). In Jupyter it shows as a table of its hardware and peaks."""),
    ("code", """\
chip = npusim.load_arch("atom")
chip"""),
    ("md", """\
`simulate` compiles the workload to tiles, runs them in the event model against the DRAM
model, and returns a `Result`. `trace=True` keeps every tile's DMA and compute intervals for
the timeline."""),
    ("code", """\
res = npusim.simulate(chip, npusim.workloads.resnet50(), trace=True)
res"""),
    ("md", "The per-layer table is a pandas DataFrame; `summary()` holds the totals."),
    ("code", """\
df = res.layers
df[["layer", "op", "bound", "latency_s", "utilization", "dram_read_bytes", "energy_j"]].head(10)"""),
    ("code", """\
s = res.summary()
{k: s[k] for k in ("latency_s", "energy_j", "effective_tops", "utilization", "tops_per_w")}"""),
    ("md", """\
## Where the time goes

Each layer's latency is split by cause (array MACs at peak, fill/drain, SRAM port stalls,
vector work not hidden by the array, DMA not hidden by double buffering, DRAM effects, and
cores waiting at the layer barrier). The parts add up to the layer's latency."""),
    ("code", """\
share = (df[list(CAUSE_COLUMNS)].sum() / df["latency_s"].sum()).sort_values(ascending=False)
share.rename("share of latency").to_frame()"""),
    ("code", "res.plot.latency()"),
    ("md", "The ten slowest layers and what bounds them:"),
    ("code", """\
df.nlargest(10, "latency_s")[["layer", "op", "m", "n", "k", "bound", "latency_s",
                              "time_mac_s", "time_fill_drain_s", "time_dma_exposed_s"]]"""),
    ("md", "## Roofline, energy and DRAM over time"),
    ("code", "res.plot.roofline()"),
    ("code", "res.plot.energy()"),
    ("code", "res.plot.bandwidth()"),
    ("md", """\
## Timeline

`to_chrome_trace` writes Chrome trace-event JSON; open it at https://ui.perfetto.dev to see
every core's DMA-in, array+vector and DMA-out tracks and every DRAM channel.
(`npusim run atom resnet50 --trace out.json` does the same from the shell.)"""),
    ("code", """\
import tempfile
from pathlib import Path

path = res.to_chrome_trace(Path(tempfile.mkdtemp()) / "atom_resnet50.json")
print(path, f"{path.stat().st_size / 1e6:.2f} MB")"""),
    ("md", """\
## Checking what the figures show

A figure is data too: read it back from its matplotlib artists and compare it with the table
and with a hand computation. (CI runs this notebook, so these checks run with every change.)"""),
    ("code", """\
import numpy as np
from matplotlib.patches import StepPatch

per_second = {"s": 1, "ms": 1e3, "µs": 1e6, "ns": 1e9}
per_joule = {"J": 1, "mJ": 1e3, "µJ": 1e6}
unit = lambda ax: ax.get_ylabel().rsplit("(", 1)[1].rstrip(")")

# latency: the top of each layer's stack is its latency, in the axis unit
ax = res.plot.latency().axes[0]
tops = [bar.get_y() + bar.get_height() for bar in ax.containers[-1]]
assert np.allclose(tops, df["latency_s"] * per_second[unit(ax)], rtol=1e-9)

# energy: the total bar adds up to the summary's energy
ax = res.plot.energy().axes[1]
total = sum(c[0].get_height() for c in ax.containers)
assert np.isclose(total, s["energy_j"] * per_joule[unit(ax)], rtol=1e-9)

# roofline: its flat roof is the array peak, 2 ops per MAC on every core's rows x cols
array = chip.cores.core.systolic
peak = 2 * chip.n_cores * array.count * array.rows * array.cols * chip.clock
roof = res.plot.roofline().axes[0].get_lines()[0]
assert np.isclose(max(roof.get_ydata()), peak, rtol=1e-9), (max(roof.get_ydata()), peak)

# bandwidth: the area under the curve is every byte the layers moved to and from DRAM
ax = res.plot.bandwidth().axes[0]
step = next(p for p in ax.patches if isinstance(p, StepPatch))
gbps, edges = step.get_data().values, step.get_data().edges
per_x = per_second[ax.get_xlabel().rsplit("(", 1)[1].rstrip(")")]
moved = (gbps * 1e9 * np.diff(edges)).sum() / per_x
assert np.isclose(moved, (df["dram_read_bytes"] + df["dram_write_bytes"]).sum(), rtol=1e-6)
print(f"peak {peak / 1e12:.1f} TOPS; DRAM traffic {moved / 2**20:.1f} MiB plotted, "
      f"{(df['dram_read_bytes'] + df['dram_write_bytes']).sum() / 2**20:.1f} MiB in the table")"""),
]

LLM = [
    ("md", """\
# A quantized 30B LLM on one chip: LPDDR5X or HBM3?

The two presets `lpddr_llm` and `hbm_llm` are the same chip (4 cores of 128x128 arrays,
32 GiB of DRAM) with LPDDR5X-8533 or HBM3-6400 memory. Every hardware figure of such a chip
is an assumption (see the presets' `assumptions`). We serve LLaMA-30B
(`workloads/hf/llama_30b.json`) with INT4 and INT8 weights and an INT8 KV cache: a 512-token
prompt, then 64 generated tokens, batch 1."""),
    ("code", SETUP + """
from npusim.llm import run_llm
from npusim.report.plots import CAUSE_LABELS, memory_capacity
from npusim.workloads.llm import load_hf_config, memory_footprint"""),
    ("code", """\
chips = {"LPDDR5X": npusim.load_arch("lpddr_llm"), "HBM3": npusim.load_arch("hbm_llm")}
pd.DataFrame({name: {"DRAM": c.dram.standard, "channels": c.dram.n_channels,
                     "bandwidth GB/s": c.dram.peak_bandwidth / 1e9,
                     "capacity GiB": c.dram.capacity_bytes / 2**30,
                     "pJ/bit": c.dram.energy_pj_per_bit,
                     "peak TOPS int8": c.peak_ops_per_second("int8") / 1e12}
              for name, c in chips.items()})"""),
    ("md", """\
## Does it fit?

Weights, the KV cache at its largest (prompt + generated tokens) and the largest live
activations, against the 32 GiB both chips have."""),
    ("code", """\
cfg = load_hf_config("llama_30b")
PROMPT, GEN = 512, 64
fps = {w: memory_footprint(cfg, phase="decode", prompt_len=PROMPT, context_len=PROMPT + GEN,
                           weights=w, kv="int8")
       for w in ("int4", "int8")}
cap = chips["LPDDR5X"].dram.capacity_bytes
memory_capacity([f.weight_bytes for f in fps.values()], [f.kv_cache_bytes for f in fps.values()],
                [f.activation_bytes for f in fps.values()], cap,
                labels=[f"{cfg.name} {w} weights" for w in fps],
                title="LLaMA-30B footprint vs 32 GiB of DRAM")"""),
    ("md", """\
## Prefill and decode

`run_llm` checks capacity, simulates the prefill (TTFT) and decode steps at a few contexts
(interpolated over all 63 steps), and derives tokens/s and J/token."""),
    ("code", """\
runs = {(mem, w): run_llm(chip, cfg, prompt=PROMPT, gen=GEN, weights=w, kv="int8",
                          decode_points=2)
        for mem, chip in chips.items() for w in ("int4", "int8")}
table = pd.DataFrame({f"{mem} {w}": {
    "TTFT ms": r.ttft_s * 1e3, "TPOT ms": r.tpot_s * 1e3, "tokens/s": r.tokens_per_s,
    "J/token": r.j_per_token, "avg power W": r.average_power_w,
    "decode DRAM GB/step": r.summary()["decode_dram_read_bytes"] / 1e9, "limit": r.limit}
    for (mem, w), r in runs.items()})
table"""),
    ("md", """\
A lower bound to compare with: one decode step streams every weight from DRAM once, so
TPOT is at least weight bytes / peak bandwidth."""),
    ("code", """\
pd.DataFrame({f"{mem} {w}": {"weights / bandwidth ms": fps[w].weight_bytes
                              / chips[mem].dram.peak_bandwidth * 1e3,
                              "simulated TPOT ms": runs[(mem, w)].tpot_s * 1e3}
              for (mem, w) in runs})"""),
    ("md", """\
## Where a decode step's time goes (INT4 weights)

The causes split each step's time, and `limit` names what bounds it. Both twins run the
decode matmuls on their matrix-vector engine, which takes weights as fast as the SRAM port
feeds it, so a decode step is bound by the DRAM and the HBM3 twin's bandwidth shows
directly in TPOT. A weight-stationary array on its own (TPU v4 has only its MXUs) would be
limited by weight shift-in instead: it loads each weight block into its PEs and streams a
single token through it; faster DRAM cannot help that, batching tokens can."""),
    ("code", """\
causes = pd.DataFrame({mem: runs[(mem, "int4")].decode.layers[list(CAUSE_COLUMNS)].sum() * 1e3
                       for mem in chips})
causes = causes[(causes > 0).any(axis=1)].rename(index=CAUSE_LABELS)
ax = causes.T.plot.barh(stacked=True, figsize=(8, 2.6))
ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1.0), loc="upper left")
ax.set_xlabel("decode step latency (ms)");"""),
    ("code", """\
energy = pd.DataFrame({mem: {k: runs[(mem, "int4")].decode.summary()[f"energy_{k}_j"]
                             for k in ("mac", "sram", "dram", "noc", "wire", "vector",
                                       "static", "host")}
                       for mem in chips})
ax = energy.T.plot.barh(stacked=True, figsize=(8, 2.6))
ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1.0), loc="upper left")
ax.set_xlabel("energy of one decode step (J)");"""),    ("md", """\
## Checking what the figures show

The bars are read back and compared with the results they come from, and every TPOT with
the weight-streaming bound above. (CI runs this notebook, so these checks run with every
change.)"""),
    ("code", """\
import numpy as np

# the stacked causes of each chip add up to its decode step's latency, the energy parts
# to its energy
for mem in chips:
    step = runs[(mem, "int4")].decode.summary()
    assert np.isclose(causes[mem].sum(), step["latency_s"] * 1e3, rtol=1e-9)
    assert np.isclose(energy[mem].sum(), step["energy_j"], rtol=1e-9)
# the energy bars drawn (the last figure) are those numbers, chip by chip
widths = np.array([[bar.get_width() for bar in c] for c in ax.containers]).sum(axis=0)
assert np.allclose(widths, [energy[mem].sum() for mem in chips], rtol=1e-9)
# no step beats streaming its matmul weights once at peak bandwidth (the token table is
# only gathered: one row per token)
bytes_per_weight = {"int4": 0.5, "int8": 1.0}
for (mem, w), r in runs.items():
    streamed = fps[w].weight_bytes - cfg.vocab * cfg.embed_dim * bytes_per_weight[w]
    assert r.tpot_s >= streamed / chips[mem].dram.peak_bandwidth, (mem, w)
print("checked")"""),
]

SWEEP = [
    ("md", """\
# A small design sweep and its Pareto front

Starting from TPU v1, vary the array (64², 128², 256²), the scratchpad (8 or 24 MiB) and the
DRAM standard (LPDDR5-6400 or HBM3-6400, each at its catalog defaults), run ResNet-50 at each
point and find the designs that no other beats on latency, energy and area at once.
`npusim sweep FILE.yaml` runs the same thing from a YAML file."""),
    ("code", SETUP + """
import npusim.sweep
from npusim.sweep.plots import plot_metric_vs_axis, plot_pareto"""),
    ("code", """\
spec = {
    "name": "notebook",
    "base": "tpu_v1",
    # TPU v1 fixes its DDR3 bandwidth, channels and capacity: drop them so each standard's apply
    "set": {"dram.bandwidth": None, "dram.channels": None, "dram.capacity": None},
    "workloads": ["resnet50"],
    "axes": {
        "cores.core.systolic.rows": {"values": [64, 128, 256], "group": "array", "name": "rows"},
        "cores.core.systolic.cols": {"values": [64, 128, 256], "group": "array", "name": "cols"},
        "cores.core.sram.size": {"values": ["8 MiB", "24 MiB"], "name": "sram"},
        "dram.standard": {"values": ["LPDDR5-6400", "HBM3-6400"], "name": "dram"},
    },
}
df = npusim.sweep.run_sweep(spec, workers=0, cache_dir=None, progress=False)
df.attrs["sweep"]"""),
    ("code", """\
df["sram_MiB"] = df["sram"] / 2**20
df["front"] = npusim.sweep.pareto_front(df, "latency_s,energy_j,area_mm2")
df[["rows", "cols", "sram_MiB", "dram", "latency_s", "energy_j", "area_mm2", "tops_per_w",
    "front"]].sort_values("latency_s")"""),
    ("code", 'plot_pareto(df, "latency_s", "energy_j", objectives="latency_s,energy_j,area_mm2")'),
    ("code", 'plot_metric_vs_axis(df, "latency_s", "rows")'),
    ("md", """\
The same front by hand, to see what `pareto_front` does: a point is on the front when no
other point is at least as good in every objective and better in one."""),
    ("code", """\
import numpy as np

v = df[["latency_s", "energy_j", "area_mm2"]].to_numpy()
dominated = [bool(((v <= p).all(axis=1) & (v < p).any(axis=1)).any()) for p in v]
assert (~np.array(dominated) == df["front"].to_numpy()).all()
df.loc[df["front"], ["rows", "sram_MiB", "dram", "latency_s", "energy_j", "area_mm2"]]"""),
    ("md", """\
And the plot above shows that front: its red points, read back from the figure, are the
undominated designs found by hand."""),
    ("code", """\
fig = plot_pareto(df, "latency_s", "energy_j", objectives="latency_s,energy_j,area_mm2")
red = next(c for c in fig.axes[0].collections if c.get_label() == "Pareto front")
shown = np.array(sorted(map(tuple, red.get_offsets())))
by_hand = np.array(sorted(zip(v[~np.array(dominated), 0], v[~np.array(dominated), 1])))
assert shown.shape == by_hand.shape and np.allclose(shown, by_hand, rtol=1e-12)
print(len(shown), "designs on the front, as plotted and as found by hand")"""),
]

SEED = [
    ("md", """\
# The seed chips side by side

Every preset in `arch/` on ResNet-50 and BERT-large (sequence 384), batch 1, single stream,
with the `bandwidth` memory model. Each preset cites its sources and states its assumptions;
these are simulated figures, not published benchmark results."""),
    ("code", SETUP + """
from npusim.presets import list_presets
from npusim.report.plots import CAUSE_LABELS"""),
    ("code", """\
chips = {p: npusim.load_arch(p) for p in list_presets()}
pd.DataFrame({p: {"name": c.name, "cores": c.n_cores,
                  "array": f"{c.cores.core.systolic.count}x{c.cores.core.systolic.rows}"
                           f"x{c.cores.core.systolic.cols}",
                  "clock GHz": c.clock / 1e9,
                  "peak TOPS": c.peak_ops_per_second() / 1e12,
                  "precision": c.default_precision,
                  "SRAM MiB/core": c.cores.core.sram.size / 2**20,
                  "DRAM": c.dram.standard, "GB/s": c.dram.peak_bandwidth / 1e9}
              for p, c in chips.items()}).T"""),
    ("code", """\
workloads = {"ResNet-50": npusim.workloads.resnet50(),
             "BERT-large s384": npusim.workloads.bert_large(seq_len=384)}
results = {(p, w): npusim.simulate(c, wl) for p, c in chips.items()
           for w, wl in workloads.items()}
rows = []
for (p, w), r in results.items():
    s = r.summary()
    rows.append({"chip": p, "workload": w, "latency ms": s["latency_s"] * 1e3,
                 "inferences/s": s["inferences_per_s"], "energy mJ": s["energy_j"] * 1e3,
                 "avg power W": s["average_power_w"], "utilization": s["utilization"],
                 "TOPS/W": s["tops_per_w"]})
table = pd.DataFrame(rows)
table.pivot(index="chip", columns="workload", values=["latency ms", "energy mJ"])"""),
    ("code", """\
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
for ax, value in zip(axes, ("latency ms", "energy mJ")):
    table.pivot(index="chip", columns="workload", values=value).plot.bar(ax=ax, logy=True)
    ax.set_ylabel(value + " (log)")
    ax.set_title(value + " per inference, batch 1")"""),
    ("md", "Where the time goes, summed over layers, as a share of each chip's latency:"),
    ("code", """\
shares = {}
for (p, w), r in results.items():
    df = r.layers
    shares[(p, w)] = df[list(CAUSE_COLUMNS)].sum() / df["latency_s"].sum()
shares = pd.DataFrame(shares).T
shares = shares.loc[:, (shares > 0).any()].rename(columns=CAUSE_LABELS)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained", sharey=True)
for ax, w in zip(axes, workloads):
    shares.xs(w, level=1).plot.bar(stacked=True, ax=ax, legend=ax is axes[-1], title=w)
axes[-1].legend(fontsize=7, bbox_to_anchor=(1.0, 1.0));"""),    ("md", """\
## Checking what the figures show

The table's peak against a hand count, and the bars drawn against what they show. (CI runs
this notebook, so these checks run with every change.)"""),
    ("code", """\
import numpy as np

# peak TOPS by hand: 2 ops per MAC, every PE of every array of every core, each clock
for p, c in chips.items():
    a = c.cores.core.systolic
    hand = 2 * c.n_cores * a.count * a.rows * a.cols * c.clock * a.macs_per_cycle[
        c.default_precision]
    assert np.isclose(c.peak_ops_per_second(), hand, rtol=1e-12), p
# the causes split each chip's latency: every stacked bar adds up to one
for ax in axes:
    tops = np.array([[bar.get_height() for bar in cont] for cont in ax.containers]).sum(axis=0)
    assert np.allclose(tops, 1.0, rtol=1e-9), tops
# and each bar's stack is that chip's share table row
for ax, w in zip(axes, workloads):
    drawn = np.array([[bar.get_height() for bar in cont] for cont in ax.containers]).T
    assert np.allclose(drawn, shares.xs(w, level=1).to_numpy(), rtol=1e-12)
print("checked")"""),
]

SCALE_OUT = [
    ("md", """\
# Scale-out: LLaMA-2-70B on 1 to 8 RNGD cards

One RNGD card holds 48 GB: LLaMA-2-70B at INT8 (69 GB of weights) does not fit, so the
8-card server (`arch/systems/rngd_8card.yaml`: PCIe Gen5 x16 through a switch, 63 GB/s per
direction) splits it tensor-parallel (Megatron: heads and MLP columns divided, an all-reduce
after attention and after the MLP). Every card's shard is simulated on the chip; the
all-reduces run over the links in the event model. Simulated figures, not measurements."""),
    ("code", SETUP + """
import matplotlib.pyplot as plt

from npusim.errors import MappingError
from npusim.system.result import COMM_CAUSES, cause_column"""),
    ("code", """\
system = npusim.load_system("rngd_8card")
runs, rows = {}, []
for cards in range(1, 9):
    try:
        r = npusim.run_llm_system(system, "llama2_70b", prompt=512, gen=128, weights="int8",
                                  tp=cards, decode_points=1)
    except MappingError as exc:  # does not fit, or the cards do not divide the heads
        rows.append({"cards": cards, "runs": str(exc)[:90]})
        continue
    runs[cards] = r
    s = r.summary()
    rows.append({"cards": cards, "runs": "yes", "TTFT ms": s["ttft_s"] * 1e3,
                 "TPOT ms": s["tpot_s"] * 1e3, "tokens/s": s["tokens_per_s"],
                 "J/token": s["j_per_token"],
                 "link time ms": s["decode_time_comm_s"] * 1e3})
pd.DataFrame(rows).set_index("cards")"""),
    ("md", """\
Tokens/s and J/token against cards, and what a decode step's time on one card is made of:
its own compute (its shard's weights streamed from HBM) and its wait in the all-reduces
over PCIe. Each card streams 1/tp of the weights, so compute falls as 1/tp while the
all-reduces (2 per block, 161 per step) add a latency-bound cost that grows with tp."""),
    ("code", """\
cards = sorted(runs)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
axes[0].plot(cards, [runs[c].tokens_per_s for c in cards], "o-")
axes[0].set(xlabel="cards (tp)", ylabel="tokens/s (batch 1)", title="decode throughput")
axes[1].plot(cards, [runs[c].j_per_token for c in cards], "o-", color="C1")
axes[1].set(xlabel="cards (tp)", ylabel="J/token", title="decode energy per token")
split = pd.DataFrame({c: {"compute": runs[c].decode.summary()["time_compute_s"] * 1e3,
                          **{cause: runs[c].decode.summary()[cause_column(cause)] * 1e3
                             for cause in COMM_CAUSES}} for c in cards}).T
split = split.loc[:, (split > 0).any()]
split.plot.bar(stacked=True, ax=axes[2], title="one decode step, per card")
axes[2].set(xlabel="cards (tp)", ylabel="ms");"""),
    ("md", """\
The links themselves: bytes and utilisation of each link direction during one decode step
on 8 cards. A batch-1 decode step moves little (a few KiB per all-reduce), so the links are
almost idle and the all-reduces cost their start-up latency, not bandwidth."""),
    ("code", """\
runs[8].decode.links.head(8)"""),
    ("md", """\
Data parallelism instead: on the same 8 cards, 4 replicas of tp 2 serve 4 x as many
sequences at the tp-2 step time, against one tp-8 group serving one."""),
    ("code", """\
dp = npusim.run_llm_system(system, "llama2_70b", prompt=512, gen=128, weights="int8",
                           tp=2, dp=4, decode_points=1)
pd.DataFrame({"tp 8": runs[8].summary(), "tp 2 x dp 4": dp.summary()}).loc[
    ["chips_used", "sequences", "tpot_s", "tokens_per_s", "j_per_token"]]"""),    ("md", """\
## Checking what the figures show

The plotted numbers read back from the figure above and compared with the runs. (CI runs
this notebook, so these checks run with every change.)"""),
    ("code", """\
import numpy as np

# batch 1: a card group's tokens/s is one token per TPOT
drawn = axes[0].get_lines()[0].get_ydata()
assert np.allclose(drawn, [1 / runs[c].tpot_s for c in cards], rtol=1e-9)
# the stacked bars (compute and each collective's wait), with the card's idle time, make up
# the step's latency
tops = np.array([[bar.get_height() for bar in c] for c in axes[2].containers]).sum(axis=0)
for c, top in zip(cards, tops):
    s = runs[c].decode.summary()
    assert np.isclose(top + s["time_idle_s"] * 1e3, s["latency_s"] * 1e3, rtol=1e-6), c
print("checked")"""),
]

SERVING = [
    ("md", """\
# Serving LLaMA-30B (INT4) to many users: LPDDR or HBM?

`npusim.serve` runs a stream of requests (Poisson arrivals, prompt and output lengths from
distributions) through an iteration-level continuous-batching scheduler with a paged KV
cache, on the chip model: each step's latency and energy come from `npusim.simulate` of
that step's shape (interpolated on a grid of simulated steps). A load sweep serves the same
stream at rising rates and finds the knee: the highest rate at which 90 % of requests still
meet the SLO. Simulated figures, not measurements; the cost model is the example file
`docs/examples/cost.yaml` (placeholder amortisation, PUE and tariff) with each chip's own
`price:` block, an example labelled `basis: assumption` ($5,000 for the LPDDR chip,
$10,000 for its HBM twin), not a quote."""),
    ("code", SETUP + """
import matplotlib.pyplot as plt
from IPython.display import display

from npusim.report.plots import load_curves
from npusim.serving import load_sweep"""),
    ("md", """\
The same 1,000 requests (prompts ~512 tokens, outputs ~128, lognormal) at each rate, on the
LPDDR5X chip and on its HBM3 twin (same compute, same 32 GiB), weights INT4, KV cache INT8.
SLO: first token within 1 s, then at most 100 ms per token. (With 200 requests per rate the
knee came out 10-20 % higher than with 1,000 and moved more with the seed; with 1,000 it
stays within about ±7 % across seeds. The two sweeps take about a minute.)"""),
    ("code", """\
kw = dict(n=1000, seed=0, prompt="lognormal:512,0.3", output="lognormal:128,0.5",
          slo="ttft=1s,tpot=100ms", weights="int4", max_batch=32, refine=2,
          cost="../docs/examples/cost.yaml")
sweeps = {chip: load_sweep(chip, "llama_30b", [0.25, 0.5, 1, 2], **kw)
          for chip in ("lpddr_llm", "hbm_llm")}
pd.DataFrame({chip: {"knee (requests/s)": sw.knee_rate} for chip, sw in sweeps.items()})"""),
    ("code", """\
cols = ["rate", "p50_ttft_s", "p99_ttft_s", "p99_tpot_s", "tokens_per_s", "slo_attainment",
        "energy_per_token_j", "usd_per_mtoken"]
pd.concat({chip: sw.table[cols] for chip, sw in sweeps.items()})"""),
    ("md", """\
Latency percentiles against offered load, and what the load buys: output tokens/s rise with
the rate until the chip saturates, and the hardware's cost per token falls as it is shared
by more requests. Past the knee the queue grows without bound (TTFT explodes) while the
throughput flattens at the chip's capacity. The dash-dotted lines are the SLO bounds.
(A figure built in a loop is not the cell's value, so each is shown with `display`.)"""),
    ("code", """\
for chip, sw in sweeps.items():
    display(load_curves(sw.table, knee=sw.knee_rate, title=f"LLaMA-30B INT4 on {chip}",
                        slo_ttft_s=sw.slo.ttft_s, slo_tpot_s=sw.slo.tpot_s))"""),
    ("md", """\
One run in detail, a little below the LPDDR chip's knee (another draw of the stream): the
per-request table and the batch size, queue and KV-cache occupancy over time."""),
    ("code", """\
knee = sweeps["lpddr_llm"].knee_rate
# the sweep's step model (`backend`) serves this stream too: nothing is simulated again
res = npusim.serve(None, None, using=sweeps["lpddr_llm"].backend, rate=0.9 * knee, n=1000,
                   seed=1, prompt="lognormal:512,0.3", output="lognormal:128,0.5",
                   max_batch=32, slo="ttft=1s,tpot=100ms")
res.requests.head()"""),
    ("code", """\
st = res.steps
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), layout="constrained")
axes[0].plot(st["start_s"], st["decode_batch"], lw=0.6)
axes[0].set(xlabel="time (s)", ylabel="sequences decoding", title="batch size")
axes[1].plot(st["start_s"], st["queue_length"], lw=0.6, color="C1")
axes[1].set(xlabel="time (s)", ylabel="requests waiting as a step starts", title="queue")
axes[2].plot(st["start_s"], 100 * st["kv_occupancy"], lw=0.6, color="C2")
axes[2].set(xlabel="time (s)", ylabel="% of KV blocks", title="KV cache occupancy");"""),    ("md", """\
## Checking what the figures show

The knee against its definition, worked out from the table, and the curves drawn against
the tables they come from. (CI runs this notebook, so these checks run with every
change.)"""),
    ("code", """\
import numpy as np

for chip, sw in sweeps.items():
    t = sw.table.sort_values("rate")
    ok = t["slo_attainment"] >= 0.9
    # the knee: the highest rate meeting the SLO below the lowest rate that does not
    first_miss = t.loc[~ok, "rate"].min() if (~ok).any() else np.inf
    below = t.loc[ok & (t["rate"] < first_miss), "rate"]
    assert (below.empty and np.isnan(sw.knee_rate)) or sw.knee_rate == below.max(), chip
    # the load curves drawn are the table's columns, in ms
    fig = load_curves(sw.table, knee=sw.knee_rate)
    lat, thr = fig.axes[:2]
    drawn = {line.get_label(): line.get_ydata() for line in lat.get_lines()}
    assert np.allclose(drawn["TTFT p99"], t["p99_ttft_s"] * 1e3)
    assert np.allclose(thr.get_lines()[0].get_ydata(), t["tokens_per_s"])
# the run in detail: the batch and queue curves are the steps table
assert np.array_equal(axes[0].get_lines()[0].get_ydata(), st["decode_batch"])
assert np.array_equal(axes[1].get_lines()[0].get_ydata(), st["queue_length"])
print("checked")"""),
]


MOE = [
    ("md", """\
# Mixture of experts on LPDDR and HBM: dense LLaMA-30B against Qwen3-30B-A3B

Qwen3-30B-A3B holds 30.5B parameters but routes each token through 8 of its 128 experts per
layer: about 3.3B parameters a token. A decode step reads from DRAM only the experts its
batch touches, so a bandwidth-poor, capacity-rich LPDDR chip decodes it far faster than a
dense model of the same size (LLaMA-30B, `workloads/hf/llama_30b.json`). As the batch
grows, its tokens touch more experts, and the step reads more of the model: under uniform
routing (each token picks k of E experts at random) a layer touches E·(1−(1−k/E)^B)
experts at batch B. Here: one decode step per batch size (1 to 64) on the LPDDR5X chip and
on its HBM3 twin (same compute, same 32 GiB), weights INT4, KV cache INT8, 256 tokens of
context per sequence (simulated figures, not measurements)."""),
    ("code", SETUP + """
import math

import matplotlib.pyplot as plt
import numpy as np

from npusim.workloads import from_hf_config
from npusim.workloads.llm import load_hf_config, memory_footprint"""),
    ("md", """\
Each point is one `npusim.simulate` of a decode step built by `from_hf_config`: tokens/s =
batch / step latency, J/token = step energy / batch. `experts_touched` is the per-layer
column of the result (routed-expert layers only), averaged over the layers. Every point
fits the 32 GiB (checked). About 28 steps, 10-20 s."""),
    ("code", """\
MODELS = {"llama_30b": "LLaMA-30B (dense)", "qwen3_30b_a3b": "Qwen3-30B-A3B (MoE)"}
BATCHES = [1, 2, 4, 8, 16, 32, 64]
CONTEXT = 256
rows = []
for chip_name in ("lpddr_llm", "hbm_llm"):
    chip = npusim.load_arch(chip_name)
    for model in MODELS:
        for b in BATCHES:
            wl = from_hf_config(model, "decode", batch=b, context_len=CONTEXT,
                                weights="int4", kv="int8")
            assert memory_footprint(wl).total_bytes <= chip.dram.capacity_bytes
            res = npusim.simulate(chip, wl)
            s, layers = res.summary(), res.layers
            touched = (layers["experts_touched"].dropna().mean()
                       if "experts_touched" in layers else math.nan)
            rows.append({"chip": chip_name, "model": model, "batch": b,
                         "tokens_per_s": b / s["latency_s"], "j_per_token": s["energy_j"] / b,
                         "dram_gib_per_step": s["dram_read_bytes"] / 2**30,
                         "experts_touched": touched})
t = pd.DataFrame(rows)
t.pivot_table(index="batch", columns=["chip", "model"], values="tokens_per_s")"""),
    ("md", """\
## Tokens/s and J/token against batch

Solid lines: the LPDDR5X chip; dashed: its HBM3 twin. At batch 1 the MoE model reads a
tenth of the dense one's bytes and runs about ten times faster on either chip."""),
    ("code", """\
fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
for (chip_name, model), g in t.groupby(["chip", "model"], sort=False):
    style = dict(ls="-" if chip_name == "lpddr_llm" else "--", marker="o",
                 color="C0" if model == "llama_30b" else "C1",
                 label=f"{MODELS[model]}, {chip_name}")
    ax_t.plot(g["batch"], g["tokens_per_s"], **style)
    ax_e.plot(g["batch"], g["j_per_token"], **style)
for ax in (ax_t, ax_e):
    ax.set(xscale="log", yscale="log", xlabel="decode batch")
    ax.set_xticks(BATCHES, [str(b) for b in BATCHES])
ax_t.set(ylabel="tokens/s", title="decode throughput")
ax_e.set(ylabel="J/token", title="decode energy per token")
ax_t.legend(fontsize=8);"""),
    ("md", """\
## Where the LPDDR chip's advantage ends

The experts a step touches per layer, from the result's `experts_touched` column (dots),
beside the formula E·(1−(1−k/E)^B) (line), and the MoE model's speed-up over the dense
one on each chip. At batch 1 a step reads 8 of 128 experts per layer; by batch 32 it reads
most of them and its DRAM bytes approach the whole model's. On the LPDDR chip, where every
step is bound by DRAM bandwidth, the MoE model's lead over the dense one falls with the
experts touched, from about 10x to about 2x. On the HBM twin the dense model turns
compute-bound from batch 8 (its matrix-vector engine holds 4 rows, so it passes over the
weights batch / 4 times) while the MoE model's few rows per expert stay cheap: the lead
stays at 4-6x."""),
    ("code", """\
cfg = load_hf_config("qwen3_30b_a3b")
E, k = cfg.experts, cfg.experts_per_token
bs = np.arange(1, 65)
formula = E * (1 - (1 - k / E) ** bs)
moe = t[(t["model"] == "qwen3_30b_a3b") & (t["chip"] == "lpddr_llm")]
speedup = t.pivot_table(index="batch", columns=["chip", "model"], values="tokens_per_s")
speedup = pd.DataFrame({c: speedup[(c, "qwen3_30b_a3b")] / speedup[(c, "llama_30b")]
                        for c in ("lpddr_llm", "hbm_llm")})
fig2, (ax_x, ax_s) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
ax_x.plot(bs, formula, color="0.5", label="E·(1−(1−k/E)^B), E = 128, k = 8")
ax_x.plot(moe["batch"], moe["experts_touched"], "o", color="C1",
          label="experts_touched (simulated step)")
ax_x.set(xlabel="decode batch", ylabel="experts touched per layer", ylim=(0, E * 1.05),
         title="Qwen3-30B-A3B: experts a decode step reads")
ax_x.legend(fontsize=8)
for c, ls in (("lpddr_llm", "-"), ("hbm_llm", "--")):
    ax_s.plot(speedup.index, speedup[c], ls, marker="o", color="C2", label=c)
ax_s.set(xscale="log", xlabel="decode batch", ylabel="Qwen3-30B-A3B / LLaMA-30B tokens/s",
         title="MoE speed-up over the dense model", ylim=(0, None))
ax_s.set_xticks(BATCHES, [str(b) for b in BATCHES])
ax_s.legend(fontsize=8);"""),
    ("md", """\
The same in numbers: the MoE speed-up on each chip, and the LPDDR chip running the MoE
model against the HBM chip running the dense one. The cheaper memory with the MoE model
decodes faster than the HBM chip with the dense model while the batch touches few experts;
the first batch at which it falls behind is where the LPDDR chip's advantage ends. (It is
ahead again at batch 32 and 64 only because the dense model on the HBM twin is then
compute-bound, as above.)"""),
    ("code", """\
tps = t.pivot_table(index="batch", columns=["chip", "model"], values="tokens_per_s")
versus = tps[("lpddr_llm", "qwen3_30b_a3b")] / tps[("hbm_llm", "llama_30b")]
behind = versus[versus < 1]
ends = int(behind.index.min()) if len(behind) else None
if ends is not None:
    print(f"Qwen3-30B-A3B on lpddr_llm falls behind LLaMA-30B on hbm_llm at batch {ends}, "
          f"touching {moe.set_index('batch').loc[ends, 'experts_touched']:.1f} of {E} "
          "experts per layer")
speedup.assign(lpddr_moe_over_hbm_dense=versus).round(2)"""),
    ("md", """\
## Checking what the figures show

The curves drawn are the table's columns; the touched experts in the table follow the
formula, computed here (the simulated step takes the expected count, a whole number of
experts per layer with the fraction carried from layer to layer, so the mean over the 48
layers is within half an expert over 48 of it); and the speed-ups are the ratio of the
tokens/s drawn. (CI runs this notebook, so these checks run with every change.)"""),
    ("code", """\
for line, ((chip_name, model), g) in zip(ax_t.get_lines(),
                                         t.groupby(["chip", "model"], sort=False)):
    assert np.array_equal(line.get_xdata(), g["batch"])
    assert np.allclose(line.get_ydata(), g["tokens_per_s"])
for line, (_, g) in zip(ax_e.get_lines(), t.groupby(["chip", "model"], sort=False)):
    assert np.allclose(line.get_ydata(), g["j_per_token"])
for _, r in t[t["model"] == "qwen3_30b_a3b"].iterrows():
    d = E * (1 - (1 - k / E) ** r["batch"])
    assert abs(r["experts_touched"] - d) <= 0.5 / cfg.layers + 1e-9, (r["batch"], d)
assert t.loc[t["model"] == "llama_30b", "experts_touched"].isna().all()
assert np.allclose(ax_x.get_lines()[1].get_ydata(), moe["experts_touched"])
for line, c in zip(ax_s.get_lines(), ("lpddr_llm", "hbm_llm")):
    want = (t[(t["chip"] == c) & (t["model"] == "qwen3_30b_a3b")]["tokens_per_s"].to_numpy()
            / t[(t["chip"] == c) & (t["model"] == "llama_30b")]["tokens_per_s"].to_numpy())
    assert np.allclose(line.get_ydata(), want)
print("checked")"""),
]


DEPLOYED = [
    ("md", """\
# Serving as deployed: HBM for prompts, LPDDR for tokens?

A prompt's prefill is compute-bound; a token's decode reads every weight and the whole KV
cache for one token per sequence, so it is bandwidth- and capacity-bound. Disaggregated
serving (DistServe, Splitwise, Mooncake) runs the two phases on different pools and moves
each prompt's KV cache between them. Here: LLaMA-2-7B (INT8) on two chips, three ways:
two `hbm_llm` replicas, two `lpddr_llm` replicas (each behind a join-shortest-queue
router), and one `hbm_llm` prefilling for one, then two, `lpddr_llm` decoding over PCIe 5.0
x16. Each is load-swept to its SLO knee and priced there.

**Prices are stated examples, not quotes**: no vendor publishes prices for these chips.
We take the presets' example `price:` blocks (`basis: assumption`): 10,000 USD for the HBM
chip, 5,000 USD for the LPDDR chip, amortised over 3 years, PUE 1.3, 0.10 USD/kWh. Change
them (`price_usd` on a pool) and re-run: the ranking depends on them.
Simulated figures, not measurements."""),
    ("code", SETUP + """
from dataclasses import replace

import matplotlib.pyplot as plt

from npusim.serving import CostModel, generate, load_sweep_deployed, serve_deployed
from npusim.workloads.hf_config import kv_cache_bytes
from npusim.workloads.llm import load_hf_config"""),
    ("md", """\
Each chip's step model is built once (a grid of simulated prefill and decode steps,
interpolated) from a first run; the three deployments then reuse those pools, with their
replica counts, roles and prices. The KV bytes per token that cross the link: every
layer's K and V at INT8."""),
    ("code", """\
MODEL, CHIPS = "llama2_7b", ("hbm_llm", "lpddr_llm")
kw = dict(prompt="lognormal:384,0.25", output="lognormal:128,0.5", max_batch=32,
          max_tokens=1024, chunked_prefill=True)
stream = generate(300, 1.0, prompt=kw["prompt"], output=kw["output"], seed=0)
built = {chip: serve_deployed(MODEL, target=chip, requests=stream, **kw).deployment.pools[0]
         for chip in CHIPS}
kv_per_token = kv_cache_bytes(load_hf_config(MODEL), 1, 1, "int8")
deployments = {
    "2 x hbm_llm": [replace(built["hbm_llm"], replicas=2)],
    "2 x lpddr_llm": [replace(built["lpddr_llm"], replicas=2)],
    "hbm prefill + lpddr decode": [replace(built["hbm_llm"], role="prefill"),
                                   replace(built["lpddr_llm"], role="decode")],
    "hbm prefill + 2 x lpddr decode": [replace(built["hbm_llm"], role="prefill"),
                                       replace(built["lpddr_llm"], role="decode", replicas=2)],
}
# no card_price_usd: each chip at its preset's example price: block
cost = CostModel(amortisation_years=3, pue=1.3, electricity_usd_per_kwh=0.10)
{chip: pool.chip_price_usd for chip, pool in built.items()} | {"KV bytes/token": kv_per_token}"""),
    ("md", """\
The same 300 requests at each rate (gaps scaled), SLO: first token within 1 s, then at most
50 ms per token, met by 90 % of requests."""),
    ("code", """\
sweeps = {name: load_sweep_deployed(None, [2, 4, 8, 12, 16, 24], n=300, seed=0,
                                    slo="ttft=1s,tpot=50ms", refine=2, router="jsq",
                                    pools=pools, kv_bytes_per_token=kv_per_token, cost=cost,
                                    kv_link="pcie5_x16", **kw)
          for name, pools in deployments.items()}
at_knee = {}
for name, sw in sweeps.items():
    row = sw.table.loc[sw.table["rate"] == sw.knee_rate].iloc[0]
    at_knee[name] = {"knee (requests/s)": sw.knee_rate, "knee found": sw.knee_found,
                     "p99 TTFT (ms)": 1e3 * row["p99_ttft_s"],
                     "p99 TPOT (ms)": 1e3 * row["p99_tpot_s"],
                     "tokens/s": row["tokens_per_s"], "J/token": row["energy_per_token_j"],
                     "USD per Mtoken": row["usd_per_mtoken"]}
knee = pd.DataFrame(at_knee).T.infer_objects()
knee"""),
    ("md", """\
Latency against load for the three, and the cost per million output tokens at each one's
knee (hardware at the example prices, busy or idle, plus electricity)."""),
    ("code", """\
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
for name, sw in sweeps.items():
    t = sw.table
    axes[0].plot(t["rate"], 1e3 * t["p99_ttft_s"], marker="o", label=name)
    axes[1].plot(t["rate"], 1e3 * t["p99_tpot_s"], marker="o", label=name)
axes[0].axhline(1000, color="grey", ls=":")
axes[1].axhline(50, color="grey", ls=":")
axes[0].set(xlabel="offered requests/s", ylabel="ms", title="p99 TTFT", yscale="log")
axes[1].set(xlabel="offered requests/s", ylabel="ms", title="p99 TPOT")
axes[1].legend(fontsize=8)
axes[2].bar(range(len(knee)), knee["USD per Mtoken"], color=["C0", "C1", "C2", "C3"])
axes[2].set_xticks(range(len(knee)), [n.replace(" + ", "\\n+ ") for n in knee.index],
                   fontsize=8)
axes[2].set(ylabel="USD per million output tokens", title="cost at the SLO knee");"""),
    ("md", """\
The knees and tokens/s are the chips' (simulated) behaviour; which deployment is cheapest
per token is that times the prices, so it moves with the example prices above.

One HBM chip prefilling for one LPDDR chip, at 80 % of its knee, in detail: where the time
to first token goes (queue, prefill on the HBM chip, the KV transfer), and how busy each
pool is. The decode pool is the busier one: prompts take the HBM chip a fraction of the
time the LPDDR chip spends generating their tokens, which is why one HBM chip can feed two
LPDDR decoders above."""),
    ("code", """\
mixed = sweeps["hbm prefill + lpddr decode"]
res = serve_deployed(None, using=mixed.backend, rate=0.8 * mixed.knee_rate, n=300, seed=1,
                     prompt=kw["prompt"], output=kw["output"], max_batch=32, max_tokens=1024,
                     chunked_prefill=True, slo="ttft=1s,tpot=50ms", cost=cost)
split = res.requests[["queue_s", "prefill_s", "kv_transfer_s", "ttft_s"]].mean() * 1e3
display(split.rename("mean (ms)").to_frame())
res.pools"""),
    ("md", """\
Prefix caching on the same deployment: 80 % of requests opening with one 256-token system
prompt, cached or not (the cache shares the HBM chip's KV blocks)."""),
    ("code", """\
shared = {}
for cached in (False, True):
    r = serve_deployed(None, using=mixed.backend, rate=0.8 * mixed.knee_rate, n=300, seed=1,
                       prompt=kw["prompt"], output=kw["output"], max_batch=32,
                       max_tokens=1024, chunked_prefill=True, prefix="system:0.8,256",
                       prefix_cache=cached, slo="ttft=1s,tpot=50ms")
    s = r.summary()
    shared["cached" if cached else "not cached"] = {
        "mean TTFT (ms)": 1e3 * s["mean_ttft_s"], "p99 TTFT (ms)": 1e3 * s["p99_ttft_s"],
        "prefill tokens": int(r.requests["prefill_tokens"].sum()),
        "hit rate": s.get("prefix_hit_rate", 0.0)}
pd.DataFrame(shared).T"""),
    ("md", """\
## Checking what the figures show

The knee row against the sweep tables, the TTFT split against its parts, and the cost bars
against the table. (CI runs this notebook, so these checks run with every change.)"""),
    ("code", """\
import numpy as np

for name, sw in sweeps.items():
    t = sw.table.sort_values("rate")
    ok = t["slo_attainment"] >= 0.9
    first_miss = t.loc[~ok, "rate"].min() if (~ok).any() else np.inf
    assert sw.knee_rate == t.loc[ok & (t["rate"] < first_miss), "rate"].max(), name
drawn = [bar.get_height() for bar in axes[2].patches]
assert np.allclose(drawn, knee["USD per Mtoken"])
# TTFT = queue + prefill + KV transfer, request by request
q = res.requests
assert np.allclose(q["queue_s"] + q["prefill_s"] + q["kv_transfer_s"], q["ttft_s"])
# the decode pool is the busier one (the text above says so)
busy = res.pools.set_index("role")["busy_fraction"]
assert busy["decode"] > busy["prefill"]
# with the cache, every hit skips the shared 256 tokens
assert shared["cached"]["prefill tokens"] < shared["not cached"]["prefill tokens"]
print("checked")"""),
]


NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_lpddr_vs_hbm_llm.ipynb": LLM,
    "03_design_sweep.ipynb": SWEEP,
    "04_seed_chips.ipynb": SEED,
    "05_scale_out.ipynb": SCALE_OUT,
    "06_serving.ipynb": SERVING,
    "07_moe.ipynb": MOE,
    "08_serving_deployed.ipynb": DEPLOYED,
}


def build() -> dict[str, str]:
    """Notebook file name → its JSON text."""
    return {name: nbformat.writes(_nb(cells)) + "\n" for name, cells in NOTEBOOKS.items()}


def main(argv: list[str]) -> int:
    texts = build()
    if "--check" in argv:
        stale = [n for n, t in texts.items()
                 if not (HERE / n).exists() or (HERE / n).read_text() != t]
        for n in stale:
            print(f"{n} differs from notebooks/generate.py", file=sys.stderr)
        return 1 if stale else 0
    for name, text in texts.items():
        (HERE / name).write_text(text)
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
