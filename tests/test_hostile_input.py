"""Hostile and mistaken input through the CLI: one line on stderr, exit code 2, no traceback,
the file and line named, every input file left as it was, no output written.

Each case of ``CASES`` writes its files into a temporary folder, runs ``npusim`` in-process
with ``{name}`` in its arguments replaced by the file's path, and checks the message
against a fragment whose numbers (lines, bytes, offsets) the case derives from the text it
wrote. Memory ceilings are met by estimate: a case that gets past its check would ask for
hundreds of GiB, so a broken check fails loudly rather than passing by luck.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from npusim.cli import main
from npusim.spec.dram_catalog import get_standard

ROOT = Path(__file__).resolve().parent.parent
TPU_V1 = (ROOT / "arch" / "tpu_v1.yaml").read_text()


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line of ``text`` that contains ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def with_line_after(text: str, anchor: str, new: str) -> str:
    """``text`` with ``new`` inserted (same indentation) after the first line holding
    ``anchor``."""
    lines = text.splitlines()
    i = line_of(text, anchor) - 1
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1, indent + new)
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes | object]
    args: list[str]
    fragment: str
    #: the file the message must name and the line (None: the message names no line)
    where: tuple[str, int | None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _bomb() -> str:
    # 9 levels x 9 aliases: 9**9 = 387 million leaves once expanded.
    out = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    out += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(out) + "\n"


def _bomb_line() -> int:
    """Line of the first sequence whose expansion passes 10**6 nodes: a0 (line 1) is itself
    and 9 leaves, each next level itself and 9 copies of the one before."""
    size, line = 10, 1
    while size <= 1_000_000:
        size, line = 9 * size + 1, line + 1
    return line


DUP_COLS = with_line_after(TPU_V1, "cols: 256", "cols: 8")
DUP_CLOCK = with_line_after(TPU_V1, "clock:", "clock: 1 GHz")
ROWS_TRUE = TPU_V1.replace("rows: 256", "rows: true")
SMALL_SRAM = TPU_V1.replace("size: 24 MiB", "size: 1 KiB")
WL_DUP_M = "name: w\nlayers:\n  - op: matmul\n    name: fc\n    m: 4\n    n: 8\n    k: 8\n    m: 64\n"
WL_HUGE = "name: big\nlayers:\n  - {op: matmul, name: fc, m: 1000000000000, n: 1000, k: 1000}\n"
NOT_UTF8 = b"name: x\n# caf\xe9\n"  # Latin-1 e-acute: 0xe9 at offset 13
NOT_UTF8_OFFSET = NOT_UTF8.index(b"\xe9")
TOPOLOGY = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
            "Num Filter, Strides,\nc1, 56, 56, 3, 3, 64, 64, 1,\n"
            "c2, 56, 56, 3, 3, 64, 64, 1, 1, 7,\n")
TILE_TRACE_CSV = "layer_index,layer,core\n0,x,0\n"
MEASURED = "workload,latency_s\nresnet50,0.01\n"
REQUESTS = "arrival_s,prompt_tokens,output_tokens\n0,16,4\n"
SWEEP = (ROOT / "workloads" / "sweeps" / "small.yaml").read_text()
# Mixture of experts: Qwen3-30B-A3B's config cut to two blocks (both MoE), top-k raised past
# the experts; routing traces (layer,token,expert) with an id past them, and with a layer
# the model does not have.
QWEN = json.loads((ROOT / "workloads" / "hf" / "qwen3_30b_a3b.json").read_text())
QWEN2 = json.dumps(QWEN | {"num_hidden_layers": 2})
E, K = QWEN["num_experts"], QWEN["num_experts_per_tok"]
TOPK = json.dumps(QWEN | {"num_experts_per_tok": E + 1})
TRACE_BAD_ID = "layer,token,expert\n" + "".join(
    f"{layer},0,{e}\n" for layer in (0, 1) for e in [*range(K - 1), E])
TRACE_3_LAYERS = "layer,token,expert\n" + "".join(
    f"{layer},0,{e}\n" for layer in (0, 1, 2) for e in range(K))
SYSTEM = (ROOT / "arch" / "systems" / "lpddr_llm_4chip.yaml").read_text()
WL_NEG_BATCH = "name: w\nmeta: {batch: -4}\nlayers:\n  - {op: matmul, name: fc, m: 4, n: 8, k: 8}\n"
WL_GEMM = "name: w\nlayers:\n  - {op: matmul, name: fc, m: 64, n: 64, k: 64}\n"
TILES = ("layer_index,layer,core,array_cycles,compute_cycles,macs,dram_read_bytes,"
         "dram_write_bytes,sram_read_bytes,sram_write_bytes,read_addr,write_addr,vector_cycles\n"
         "0,x,0,10,10,{macs},64,64,64,64,0,0,0\n")
SCALESIM_CFG = ("[general]\nrun_name = x\n[architecture_presets]\nArrayHeight: 8\n"
                "ArrayWidth: 8\nIfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\n"
                "Dataflow: ws\nBandwidth: 10\nIfmapOffset: 0\nFilterOffset: 10000000\n"
                "OfmapOffset: 20000000\n")
FIFO = object()  # a named pipe in place of the file
HBM3 = get_standard("HBM3")
HBM3_REFRESHES = 10**12 // HBM3.t.refi * HBM3.ranks * HBM3.default_channels
BIG_YAML = "name: x\n" + "# padding\n" * (5 * 2**20 // 10)
CFG_PERCENT = SCALESIM_CFG.replace("run_name = x", "run_name = 50%_test").replace(
    "ArrayHeight: 8", "ArrayHeight: 0")
# ten copies a level, eight levels: 10**9 characters were it expanded
CFG_BOMB = SCALESIM_CFG.replace("ArrayHeight: 8", "ArrayHeight: 0") + "[x]\na0 = xxxxxxxxxx\n" \
    + "".join(f"a{i} = " + f"%(a{i - 1})s" * 10 + "\n" for i in range(1, 9)) + "run = %(a8)s\n"


def _onnx(dim: int) -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 8], [0.0] * 32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y],
                              [w])
    return bytes(onnx.helper.make_model(graph).SerializeToString())


CASES: list[Case | Callable[[], Case]] = [
    # --- YAML: duplicate keys, aliases, tags ---------------------------------------------
    Case("duplicate cols", {"chip.yaml": DUP_COLS}, ["run", "{chip.yaml}"],
         f"cores.core.systolic.cols: duplicate key (first at line "
         f"{line_of(DUP_COLS, 'cols: 256')})", ("chip.yaml", line_of(DUP_COLS, "cols: 8"))),
    Case("duplicate clock", {"chip.yaml": DUP_CLOCK}, ["run", "{chip.yaml}"],
         f"clock: duplicate key (first at line {line_of(DUP_CLOCK, 'clock:')})",
         ("chip.yaml", line_of(DUP_CLOCK, "clock:", 2))),
    Case("duplicate m in a workload", {"w.yaml": WL_DUP_M}, ["run", "tpu_v1", "{w.yaml}"],
         f"layers[0].m: duplicate key (first at line {line_of(WL_DUP_M, 'm: 4')})",
         ("w.yaml", line_of(WL_DUP_M, "m: 64"))),
    Case("alias bomb", {"bomb.yaml": _bomb()}, ["run", "{bomb.yaml}"],
         "aliases expand this node to more than 1000000 nodes", ("bomb.yaml", _bomb_line())),
    Case("recursive alias", {"r.yaml": "name: x\na: &x [*x]\n"}, ["run", "{r.yaml}"],
         "recursive alias", ("r.yaml", 2)),
    Case("python tag", {"t.yaml": "name: !!python/object/apply:os.system [ls]\n"},
         ["run", "{t.yaml}"], "python/object/apply:os.system", ("t.yaml", 1)),
    # --- strict numbers, lines of cross-field rules ----------------------------------------
    Case("rows: true", {"chip.yaml": ROWS_TRUE}, ["run", "{chip.yaml}"],
         "cores.core.systolic.rows: expected an integer, not a boolean",
         ("chip.yaml", line_of(ROWS_TRUE, "rows: true"))),
    Case("sweep samples: true", {"s.yaml": SWEEP + "samples: true\n"}, ["sweep", "{s.yaml}"],
         "samples: expected an integer, not a boolean",
         ("s.yaml", line_of(SWEEP + "samples: true\n", "samples: true"))),
    Case("SRAM too small for a tile", {"chip.yaml": SMALL_SRAM}, ["run", "{chip.yaml}"],
         # one fold of the 256x256 array at its narrowest precision (int8): a 256x256
         # stationary block and 256 rows of 256 streamed, double-buffered; the outputs live
         # in TPU v1's accumulator SRAM
         f"cores.core.sram.size: 1024 B cannot hold one double-buffered minimum tile of a "
         f"256x256 array ({2 * (256 * 256 + 256 * 256)} B needed)",
         ("chip.yaml", line_of(SMALL_SRAM, "size: 1 KiB"))),
    # --- bytes that are not UTF-8, in every reader -------------------------------------------
    *[Case(f"not UTF-8 {name}", {name: NOT_UTF8}, args,
           f"{name}: not UTF-8 text (byte 0xe9 at offset {NOT_UTF8_OFFSET})", (name, None))
      for name, args in [
          ("chip.yaml", ["run", "{chip.yaml}"]),
          ("w.yaml", ["run", "tpu_v1", "{w.yaml}"]),
          ("scalesim.cfg", ["run", "{scalesim.cfg}"]),
          ("topology.csv", ["run", "tpu_v1", "{topology.csv}"]),
          ("config.json", ["run", "tpu_v1", "{config.json}"]),
          ("tiles.csv", ["run", "tpu_v1", "--tile-trace", "{tiles.csv}"]),
          ("measured.csv", ["calibrate", "tpu_v1", "{measured.csv}", "--fit", "clock"]),
          ("requests.csv", ["serve", "lpddr_llm", "llama2_7b", "--trace", "{requests.csv}"]),
          ("dram.trace", ["dram-bench", "--trace", "{dram.trace}"]),
      ]],
    # --- ONNX dims, topology rows ------------------------------------------------------------
    lambda: Case("ONNX dim -5", {"m.onnx": _onnx(-5)}, ["run", "tpu_v1", "{m.onnx}"],
                 "input 'x' dim 0 is -5: a size must be positive", ("m.onnx", None)),
    lambda: Case("ONNX dim 0", {"m.onnx": _onnx(0)}, ["run", "tpu_v1", "{m.onnx}"],
                 "input 'x' dim 0 is 0: a size must be positive", ("m.onnx", None)),
    Case("topology row with extra columns", {"t.csv": TOPOLOGY}, ["run", "tpu_v1", "{t.csv}"],
         "layer 'c2': row has 10 columns where the conv format takes at most 9 (extra: '7')",
         ("t.csv", line_of(TOPOLOGY, "c2,"))),
    # --- size before work --------------------------------------------------------------------
    Case("m: 10**12", {"w.yaml": WL_HUGE}, ["run", "tpu_v1", "{w.yaml}"],
         "layers[0]: layer 'fc' (GEMM 1 x 1000000000000x1000x1000)",
         ("w.yaml", line_of(WL_HUGE, "m: 1000000000000"))),
    Case("--batch 10**9", {}, ["run", "tpu_v1", "resnet50", "--batch", "1000000000"],
         "--batch 1000000000: layer 'conv1'"),
    Case("dram-bench --channels 10**8", {}, ["dram-bench", "--channels", "100000000"],
         "--channels 100000000: needs about"),
    # A 7B model at a 32768-token prompt x 64 on a chip with DRAM to hold it (the 23.5 GB
    # OOM of the issue); a 1 GiB budget meets it at the first attention layer.
    Case("llm --prompt 32768 --batch 64", {"huge.yaml": TPU_V1.replace(
        "capacity: 8 GiB", "capacity: 16 TiB")},
         ["llm", "{huge.yaml}", "llama2_7b", "--prompt", "32768", "--batch", "64"],
         "--prompt 32768 --batch 64: layer", env={"NPUSIM_MEMORY_BUDGET": "1 GiB"}),
    Case("budget variable not a size", {}, ["run", "tpu_v1", "resnet50"],
         "NPUSIM_MEMORY_BUDGET='lots': ", env={"NPUSIM_MEMORY_BUDGET": "lots"}),
    # --- mixture of experts and number formats ----------------------------------------------
    Case("top-k above the experts", {"c.json": TOPK}, ["llm", "lpddr_llm", "{c.json}"],
         f"top-k {E + 1} (num_experts_per_tok) exceeds the {E} experts (num_experts)",
         ("c.json", None)),
    Case("routing trace: unknown expert id", {"c.json": QWEN2, "t.csv": TRACE_BAD_ID},
         ["llm", "lpddr_llm", "{c.json}", "--routing", "{t.csv}"],
         f"layer 0: unknown expert id {E} (the model has {E}: 0 .. {E - 1})", ("t.csv", None)),
    Case("routing trace: a layer too many", {"c.json": QWEN2, "t.csv": TRACE_3_LAYERS},
         ["serve", "lpddr_llm", "{c.json}", "--routing", "{t.csv}", "--requests", "5"],
         "the trace has 3 layer(s) (0 .. 2); the model has 2 MoE layer(s) (0, 1)",
         ("t.csv", None)),
    Case("MXFP4 on the norms", {}, ["llm", "lpddr_llm", "qwen3_30b_a3b", "--weights",
                                    "norms=mxfp4,default=int4"],
         "--weights: norms=mxfp4: a block-scaled format is for matmul weights"),
    Case("MXFP4 KV cache", {}, ["serve", "lpddr_llm", "qwen3_30b_a3b", "--kv", "mxfp4"],
         "--kv: mxfp4 is a block-scaled weight format"),
    # --- output paths ------------------------------------------------------------------------
    Case("--out x.xlsx before the simulation", {"w.yaml": WL_HUGE},
         ["run", "tpu_v1", "{w.yaml}", "--out", "{dir}/x.xlsx"],
         "unknown output format '.xlsx' (use .csv, .json, .parquet)"),
    Case("--out into a missing folder", {}, ["run", "tpu_v1", "resnet50", "--out",
                                             "{dir}/no/such/x.csv"],
         "(npusim does not create folders)"),
    Case("run --out the chip", {"chip.yaml": TPU_V1}, ["run", "{chip.yaml}", "resnet50",
                                                       "--out", "{chip.yaml}"],
         "refusing to overwrite input file"),
    Case("run --trace the workload", {"w.json": "{}"}, ["run", "tpu_v1", "{w.json}",
                                                        "--trace", "{w.json}"],
         "--trace {dir}/w.json: refusing to overwrite input file"),
    Case("run --out and --trace the same", {}, ["run", "tpu_v1", "resnet50", "--out",
                                                "{dir}/a.json", "--trace", "{dir}/a.json"],
         "--trace and --out name the same file"),
    Case("compile -o the topology", {"t.csv": TOPOLOGY.rsplit("c2", 1)[0]},
         ["compile", "tpu_v1", "{t.csv}", "-o", "{t.csv}"], "refusing to overwrite input"),
    Case("llm --trace the model config", {"cfg.json": "{}"},
         ["llm", "tpu_v1", "{cfg.json}", "--trace", "{cfg.json}"], "refusing to overwrite"),
    Case("serve --out the request trace", {"r.csv": REQUESTS},
         ["serve", "lpddr_llm", "llama2_7b", "--trace", "{r.csv}", "--out", "{r.csv}"],
         "refusing to overwrite"),
    Case("sweep --plot the spec's folder", {"s.yaml": SWEEP},
         ["sweep", "{s.yaml}", "--plot", "{dir}/nope/p.png", "--no-cache", "--quiet"],
         "(npusim does not create folders)"),
    Case("calibrate -o the chip", {"chip.yaml": TPU_V1, "m.csv": MEASURED},
         ["calibrate", "{chip.yaml}", "{m.csv}", "--fit", "clock", "-o", "{chip.yaml}"],
         "refusing to overwrite"),
    Case("plot -o the table", {"r.csv": "layer,latency_s\nx,1\n"},
         ["plot", "{r.csv}", "-o", "{r.csv}"], "refusing to overwrite"),
    # --- issue 23: data loss -----------------------------------------------------------------
    # a preset named by its name is an input as much as its path (the check must hold: a
    # failure here would overwrite arch/hbm_llm.yaml)
    Case("dram-bench --commands over the preset it names", {},
         ["dram-bench", "hbm_llm", "--commands", str(ROOT / "arch" / "hbm_llm.yaml")],
         f"--commands {ROOT / 'arch' / 'hbm_llm.yaml'}: refusing to overwrite input file"),
    Case("dram-bench --out .xlsx", {}, ["dram-bench", "--out", "{dir}/x.xlsx"],
         "--out {dir}/x.xlsx: unknown output format '.xlsx' (use .json)"),
    Case("dram-bench --commands into a missing folder", {},
         ["dram-bench", "--commands", "{dir}/no/c.csv"], "(npusim does not create folders)"),
    Case("schema --out .xlsx", {}, ["schema", "chip", "--out", "{dir}/x.xlsx"],
         "unknown output format '.xlsx' (use .json)"),
    Case("schema --out into a missing folder", {}, ["schema", "chip", "--out",
                                                    "{dir}/no/s.json"],
         "(npusim does not create folders)"),
    # --- non-finite and huge numbers: one finite check behind every real -----------------
    *[Case(f"chip {new}", {"chip.yaml": TPU_V1.replace(old, new)}, ["run", "{chip.yaml}"],
           f"{key}: expected {what} that is finite",
           ("chip.yaml", line_of(TPU_V1.replace(old, new), new)))
      for old, new, key, what in [
          ("clock: 700 MHz", "clock: .inf", "clock", "a frequency"),
          ("clock: 700 MHz", "clock: 1e400 GHz", "clock", "a frequency"),
          ("clock: 700 MHz", "clock: .nan", "clock", "a frequency"),
          ("read_bytes_per_cycle: 512", "read_bytes_per_cycle: .inf",
           "cores.core.sram.read_bytes_per_cycle", "a number"),
          ("{int8: 1, fp16: 0.25}", "{int8: .inf, fp16: 0.25}",
           "cores.core.systolic.macs_per_cycle.int8", "a number"),
          ("bandwidth: 34 GB/s", "bandwidth: 1e400 GB/s", "dram.bandwidth", "a bandwidth"),
          ("capacity: 8 GiB", "capacity: 1e400 B", "dram.capacity", "a size"),
          ("leakage: 10 W", "leakage: .inf", "energy.leakage", "a power"),
      ]],
    Case("budget variable 1e400", {}, ["run", "tpu_v1", "resnet50"],
         "NPUSIM_MEMORY_BUDGET='1e400': expected a size that is finite",
         env={"NPUSIM_MEMORY_BUDGET": "1e400"}),
    Case("dram-bench --bytes 1e400", {}, ["dram-bench", "--bytes", "1e400"],
         "--bytes 1e400: expected a size that is finite"),
    Case("serve --cv inf", {}, ["serve", "lpddr_llm", "llama2_7b", "--arrivals", "gamma",
                                "--cv", "inf"], "argument --cv: expected a number that is finite"),
    Case("serve --cv 1e-300", {}, ["serve", "lpddr_llm", "llama2_7b", "--arrivals", "gamma",
                                   "--cv", "1e-300"], "cv 1e-300: so small its square is 0"),
    Case("serve --rate nan", {}, ["serve", "lpddr_llm", "llama2_7b", "--rate", "nan"],
         "argument --rate: expected a number that is finite, got 'nan'"),
    Case("serve fixed:0.5 tokens", {}, ["serve", "lpddr_llm", "llama2_7b", "--prompt",
                                        "fixed:0.5"],
         "--prompt fixed:0.5: length 'fixed:0.5': token counts are whole numbers"),
    Case("serve lognormal:1e308,1", {}, ["serve", "lpddr_llm", "llama2_7b", "--prompt",
                                         "lognormal:1e308,1"],
         "--prompt lognormal:1e308,1: length 'lognormal:1e308,1': more than 2,147,483,647 "
         "tokens a request"),
    Case("serve --slo ttft=1e400s", {}, ["serve", "lpddr_llm", "llama2_7b", "--slo",
                                         "ttft=1e400s"],
         "slo 'ttft=1e400s': expected a time that is finite"),
    Case("serve --rates 1,inf", {}, ["serve", "lpddr_llm", "llama2_7b", "--rates", "1,inf"],
         "--rates '1,inf': a comma-separated list of finite numbers"),
    # serving as deployed: replicas are built one by one, so their count is estimated first
    Case("serve --replicas 10^12", {}, ["serve", "lpddr_llm", "llama2_7b", "--requests", "5",
                                        "--replicas", str(10**12)],
         "1,000,000,000,000 replicas of lpddr_llm: needs about"),
    Case("pool count 10^9", {}, ["serve", "lpddr_llm", "llama2_7b", "--requests", "5",
                                 "--prefill-pool", f"hbm_llm,count={10**9}", "--decode-pool",
                                 "lpddr_llm"], "1,000,000,000 replicas of hbm_llm: needs about"),
    Case("pool key twice", {}, ["serve", "lpddr_llm", "llama2_7b", "--requests", "5",
                                "--prefill-pool", "hbm_llm,count=2,count=3", "--decode-pool",
                                "lpddr_llm"],
         "prefill pool 'hbm_llm,count=2,count=3': count given twice"),
    Case("cost .inf", {"c.yaml": "card_price_usd: .inf\namortisation_years: 3\npue: 1.2\n"
                                 "electricity_usd_per_kwh: 0.1\n"},
         ["serve", "lpddr_llm", "llama2_7b", "--cost", "{c.yaml}"],
         "card_price_usd: expected a number that is finite", ("c.yaml", 1)),
    Case("calibrate --bounds clock=1:inf", {"m.csv": MEASURED},
         ["calibrate", "tpu_v1", "{m.csv}", "--fit", "clock", "--bounds", "clock=1:inf",
          "-o", "{dir}/c.yaml"],
         "--bounds: clock: 'inf' is not a finite number"),
    Case("run --latency-bound inf", {}, ["run", "tpu_v1", "--scenario", "server", "--rate",
                                         "100", "--latency-bound", "inf"],
         "--latency-bound inf: expected a time"),
    Case("sweep range up to .inf", {"s.yaml": SWEEP.replace(
        "cores.core.sram.size: {values: [64 KiB, 1 MiB], name: sram}",
        "workload.batch: {low: 1, high: .inf}")}, ["sweep", "{s.yaml}", "--no-cache", "--quiet"],
         "low and high: expected a number that is finite"),
    # --- sizes estimated before any work --------------------------------------------------
    Case("serve --requests 10**9", {}, ["serve", "lpddr_llm", "llama2_7b", "--requests",
                                        "1000000000"],
         "--requests 1000000000 --prompt fixed:512 --output fixed:128: 1,000,000,000 "
         f"requests: needs about {10**9 * 1024 / 2**30:.1f} GiB"),
    Case("serve fixed:10**12 tokens", {}, ["serve", "lpddr_llm", "llama2_7b", "--output",
                                           "fixed:1000000000000"],
         "--output fixed:1000000000000: length 'fixed:1000000000000': more than"),
    Case("serve a trace of huge lengths", {"r.csv": "arrival_s,prompt_tokens,output_tokens\n"
                                                    "0,16,1000000000000\n"},
         ["serve", "lpddr_llm", "llama2_7b", "--trace", "{r.csv}"],
         "output_tokens = '1000000000000', expected a positive integer of at most",
         ("r.csv", 2)),
    Case("--scenario server --queries 10**9", {},
         ["run", "tpu_v1", "--scenario", "server", "--rate", "100", "--queries", "1000000000"],
         "--queries 1000000000: 1,000,000,000 requests: needs about"),
    Case("a system of 10**9 chips", {"s.yaml": SYSTEM.replace("count: 4", "count: 1000000000")},
         ["run", "{s.yaml}", "mobilenet_v2"],
         f"system count 1,000,000,000 (ring, {2 * 10**9:,} links): needs about"),
    Case("a fully connected system of 10**5 chips",
         {"s.yaml": SYSTEM.replace("count: 4", "count: 100000").replace("kind: ring",
                                                                        "kind: fully_connected")},
         ["run", "{s.yaml}", "mobilenet_v2"],
         f"system count 100,000 (fully_connected, {10**5 * (10**5 - 1):,} links): needs about"),
    Case("cores.count 10**6", {"chip.yaml": TPU_V1.replace("cores:\n  count: 1\n",
                                                           "cores:\n  count: 1000000\n")},
         ["run", "{chip.yaml}"],
         # 72 layers of ResNet-50, an (empty) tile array of 256 B per core and layer
         f"cores.count 1,000,000: 72 layers x 1,000,000 cores needs about "
         f"{72 * 10**6 * 256 / 2**30:.1f} GiB"),
    Case("plot --bins 10**9", {"t.json": '{"traceEvents": []}'},
         ["plot", "{t.json}", "--kind", "bandwidth", "--arch", "tpu_v1", "--bins", "1000000000",
          "-o", "{dir}/p.png"], "--bins 1000000000: from 1 to 100,000"),
    Case("dram-bench --bytes 1e15 random", {},
         ["dram-bench", "--bytes", "1e15", "--pattern", "random-read"],
         # HBM3's 32 B bursts, 128 B of host memory each
         f"--bytes 1e15: {10**15 // 32:,} bursts at once: needs about "
         f"{10**15 // 32 * 128 / 2**40:.1f} TiB"),
    # --- parsers --------------------------------------------------------------------------
    Case("NUL byte in YAML", {"chip.yaml": TPU_V1.replace("clock: 700", "clock: 7\x0000")},
         ["run", "{chip.yaml}"], "malformed YAML: character 0x0000 is not allowed in YAML text",
         ("chip.yaml", line_of(TPU_V1, "clock: 700"))),
    Case("/dev/zero", {}, ["run", "/dev/zero"], "/dev/zero: is a device, not a file"),
    *[Case(f"a named pipe as {name}", {name: FIFO}, args,
           "is a named pipe, not a file npusim can read", (name, None))
      for name, args in [("p.yaml", ["run", "{p.yaml}"]),
                         ("m.onnx", ["run", "tpu_v1", "{m.onnx}"]),
                         ("r.csv", ["plot", "{r.csv}", "-o", "{dir}/p.png"]),
                         ("q.csv", ["serve", "lpddr_llm", "llama2_7b", "--trace", "{q.csv}"])]],
    Case("a 5 MiB YAML", {"big.yaml": BIG_YAML}, ["run", "{big.yaml}"],
         f"big.yaml: {len(BIG_YAML):,} bytes, more than the 4.0 MiB npusim reads from a file "
         "of this kind", ("big.yaml", None)),
    Case("deep JSON in plot input", {"r.json": "[" * 100_000 + "]" * 100_000},
         ["plot", "{r.json}", "-o", "{dir}/p.png"], "malformed JSON: nested too deeply",
         ("r.json", None)),
    Case("duplicate key in config.json", {"c.json": '{"num_hidden_layers": 2, '
                                                    '"num_hidden_layers": 3}'},
         ["llm", "lpddr_llm", "{c.json}"], "key 'num_hidden_layers' appears twice"),
    # (each read to its end: the array height of 0 is reported with its line, no
    # configparser traceback, no expansion)
    Case("SCALE-Sim % in a value", {"s.cfg": CFG_PERCENT}, ["run", "{s.cfg}"],
         "ArrayHeight", ("s.cfg", line_of(CFG_PERCENT, "ArrayHeight"))),
    Case("SCALE-Sim interpolation bomb", {"s.cfg": CFG_BOMB}, ["run", "{s.cfg}"],
         "ArrayHeight", ("s.cfg", line_of(CFG_BOMB, "ArrayHeight"))),
    Case("dram banks_per_group: 0 under --memory cycle",
         {"chip.yaml": TPU_V1.replace("capacity: 8 GiB",
                                      "capacity: 8 GiB\n  overrides: {banks_per_group: 0}")},
         ["run", "{chip.yaml}", "--memory", "cycle"],
         "dram.overrides.banks_per_group: must be at least 1, got 0"),
    # --- wrong successes ------------------------------------------------------------------
    Case("negative batch in workload meta", {"w.yaml": WL_NEG_BATCH},
         ["run", "tpu_v1", "{w.yaml}"], "meta.batch: expected an integer of at least 1, got -4",
         ("w.yaml", 2)),
    Case("negative tile trace", {"t.csv": TILES.format(macs=-100)},
         ["run", "tpu_v1", "--tile-trace", "{t.csv}"], "macs = '-100', expected a finite number",
         ("t.csv", 2)),
    Case("NaN tile trace", {"t.csv": TILES.format(macs="nan")},
         ["run", "tpu_v1", "--tile-trace", "{t.csv}"], "expected a finite number >= 0",
         ("t.csv", 2)),
    Case("duplicate tile trace column", {"t.csv": TILES.replace("macs,", "macs,macs,", 1)
                                         .format(macs="1,1")},
         ["run", "tpu_v1", "--tile-trace", "{t.csv}"], "column 'macs' appears twice",
         ("t.csv", 1)),
    lambda: Case("--batch 10**9 on a static-batch ONNX", {"m.onnx": _onnx(1)},
                 ["run", "tpu_v1", "{m.onnx}", "--batch", "1000000000"],
                 "batch 1000000000: no input has a dynamic first dim", ("m.onnx", None)),
    Case("--batch 10**30", {}, ["run", "tpu_v1", "--batch", "1" + "0" * 30],
         "argument --batch: expected at most 2**53"),
    Case("--batch 2**53", {}, ["run", "tpu_v1", "--batch", str(2**53)],
         # conv1 of ResNet-50 as a GEMM: M = batch x 112 x 112 output pixels
         f"--batch {2**53}: layer 'conv1' (GEMM 1 x {2**53 * 112 * 112}x64x147): a dimension "
         "past 2**53"),
    Case("--rows -1", {}, ["run", "tpu_v1", "--rows", "-1"],
         "argument --rows: expected an integer of at least 0, got '-1'"),
    Case("run ''", {}, ["run", ""], "an empty chip name"),
    Case("dram.capacity: 1 B", {"chip.yaml": TPU_V1.replace("capacity: 8 GiB", "capacity: 1 B"),
                                "w.yaml": WL_GEMM},
         ["run", "{chip.yaml}", "{w.yaml}"],
         # int8 weights 64 x 64: 4 KiB
         f"dram.capacity 1 B cannot hold the {64 * 64 // 1024}.0 KiB of weights of 'w'"),
    Case("duplicate trace column", {"r.csv": "arrival_s,prompt_tokens,output_tokens,"
                                             "prompt_tokens\n0,16,4,16\n"},
         ["serve", "lpddr_llm", "llama2_7b", "--trace", "{r.csv}"],
         "column 'prompt_tokens' appears twice", ("r.csv", 1)),
    Case("duplicate measurement column", {"m.csv": "workload,latency_s,latency_s\n"
                                                   "resnet50,0.01,0.02\n"},
         ["calibrate", "tpu_v1", "{m.csv}", "--fit", "clock", "-o", "{dir}/c.yaml"],
         "column 'latency_s' appears twice in the header", ("m.csv", 1)),
    Case("--slo ttft twice", {}, ["serve", "lpddr_llm", "llama2_7b", "--slo", "ttft=1ms,ttft=2s"],
         "slo 'ttft=1ms,ttft=2s': ttft is given twice"),
    Case("--fit clock,clock", {"m.csv": MEASURED},
         ["calibrate", "tpu_v1", "{m.csv}", "--fit", "clock,clock", "-o", "{dir}/c.yaml"],
         "--fit clock,clock: clock named twice"),
    Case("--attainment 2", {}, ["serve", "lpddr_llm", "llama2_7b", "--rates", "1,2",
                                "--attainment", "2"], "--attainment 2: a share in (0, 1]"),
    Case("--scenario server without --rate", {}, ["run", "tpu_v1", "--scenario", "server"],
         "--scenario server needs --rate"),
    Case("--rates ''", {}, ["serve", "lpddr_llm", "llama2_7b", "--rates", ""],
         "--rates '': a comma-separated list of finite numbers"),
    Case("dram-bench --request-bytes 0", {}, ["dram-bench", "--request-bytes", "0"],
         "--request-bytes 0: must be a positive multiple of the 32 B burst"),
    Case("negative trace address", {"t.trace": "-0x40 READ 0\n"},
         ["dram-bench", "--trace", "{t.trace}"], "got '-0x40 READ 0'", ("t.trace", 1)),
    Case("a trace arriving at cycle 10**12", {"t.trace": "0x40 READ 1000000000000\n"},
         ["dram-bench", "--trace", "{t.trace}"],
         # HBM3 (dram-bench's default), all-bank refresh: every rank of every channel once
         # per tREFI, scheduled one by one up to the arrival
         f"its last request arrives at cycle 1,000,000,000,000, {HBM3_REFRESHES:,} refreshes "
         "to schedule before it",
         ("t.trace", None)),
    Case("negative trace cycle", {"t.trace": "0x40 READ -5\n"},
         ["dram-bench", "--trace", "{t.trace}"], "got '0x40 READ -5'", ("t.trace", 1)),
    Case("topology M of 10**30", {"t.csv": "Layer, M, N, K,\nl1, 1" + "0" * 30 + ", 8, 8,\n"},
         ["run", "tpu_v1", "{t.csv}"], f"M: layer 'l1': 1{'0' * 30} is past 2**53", ("t.csv", 2)),
    Case("sparsity 0:0", {"t.csv": TOPOLOGY.rsplit("c2", 1)[0].replace(
        "c1, 56, 56, 3, 3, 64, 64, 1,", "c1, 56, 56, 3, 3, 64, 64, 1, 0:0,")},
         ["run", "tpu_v1", "{t.csv}"], "expected a stride width or an N:M sparsity ratio, "
         "got '0:0'", ("t.csv", 2)),
    Case("bandwidth plot of a trace with no events", {"t.json": '{"traceEvents": []}'},
         ["plot", "{t.json}", "--kind", "bandwidth", "--arch", "tpu_v1", "-o", "{dir}/p.png"],
         "the trace has no DRAM or DMA events to draw", ("t.json", None)),
]


def _cases() -> list[Case]:
    return [c() if callable(c) else c for c in CASES]


def _digest(folder: Path) -> dict[str, str]:
    # (a named pipe is listed, never read: reading it would block)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "pipe"
            for p in folder.iterdir()}


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_hostile_input_is_one_line_exit_2(case: Case, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in case.files.items():
        p = tmp_path / name
        if content is FIFO:
            os.mkfifo(p)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            assert isinstance(content, str)
            p.write_text(content)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before = _digest(tmp_path)
    args = [re.sub(r"\{([^}]+)\}", lambda m: str(tmp_path if m.group(1) == "dir"
                                                  else tmp_path / m.group(1)), a)
            for a in case.args]
    try:
        code = main(args)
    except SystemExit as exc:  # an option refused by argparse, on its own one line
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    # one line, after any warnings (a 32768-token prompt is past llama2's positions)
    lines = [x for x in err.strip().splitlines() if not x.startswith("npusim: warning: ")]
    assert len(lines) == 1, err
    assert case.fragment.replace("{dir}", str(tmp_path)) in lines[0]
    if case.where is not None:
        name, line = case.where
        named = f"{tmp_path / name}:{line}:" if line is not None else f"{tmp_path / name}:"
        assert named in lines[0]
    assert _digest(tmp_path) == before  # inputs unchanged, nothing written


def test_the_tile_estimate_is_at_least_what_the_sram_forces(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """m = 10**12, n = k = 1000 on TPU v1 (24 MiB scratchpad): a tile's int8 A block of tm x
    tk bytes fits the scratchpad, so a tile covers at most 24 MiB / tk rows of one k-slice
    ... at least m * k / 24 MiB tiles in all. The estimate is 512 B a tile, in GiB."""
    (tmp_path / "w.yaml").write_text(WL_HUGE)
    assert main(["run", "tpu_v1", str(tmp_path / "w.yaml")]) == 2
    err = capsys.readouterr().err
    tiles = int(re.search(r"reaches ([\d,]+) tiles", err).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert tiles >= math.ceil(10**12 * 1000 / (24 * 2**20))
    gib = float(re.search(r"needs about ([\d.]+) GiB", err).group(1))  # type: ignore[union-attr]
    assert gib == pytest.approx(tiles * 512 / 2**30, abs=0.05)
    assert "more than the 8.0 GiB budget" in err


def test_validate_names_the_line_of_every_duplicate(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    text = with_line_after(DUP_COLS, "clock:", "clock: 1 GHz")
    (tmp_path / "chip.yaml").write_text(text)
    assert main(["validate", str(tmp_path / "chip.yaml")]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{tmp_path / 'chip.yaml'}:{line_of(text, 'clock:', 2)}: clock: duplicate key "
        f"(first at line {line_of(text, 'clock:')})",
        f"{tmp_path / 'chip.yaml'}:{line_of(text, 'cols: 8')}: cores.core.systolic.cols: "
        f"duplicate key (first at line {line_of(text, 'cols: 256')})",
    ]


def test_line_map_comes_from_the_nodes_and_stops_at_an_alias() -> None:
    from npusim.spec.yamlio import loads_yaml

    text = ("base: &b\n"            # 1
            "  rows: 4\n"           # 2
            "  cols: 8\n"           # 3
            "chip:\n"               # 4
            "  <<: *b\n"            # 5
            "  cols: 16\n"          # 6
            "other: *b\n")          # 7
    data, lines = loads_yaml(text)
    assert data["chip"] == {"rows": 4, "cols": 16} and data["other"] == {"rows": 4, "cols": 8}
    assert (lines["base.rows"], lines["base.cols"], lines["chip.cols"], lines["other"]) == (
        2, 3, 6, 7)
    # A key reached only through the alias has no line of its own: it is the alias's.
    assert "other.rows" not in lines


def test_the_channel_estimate_is_the_controller_state_it_would_allocate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from npusim.dram.system import DramSystem
    from npusim.spec.dram_catalog import get_standard

    sysm = DramSystem(get_standard("HBM3"), 3)
    state = sum(a.nbytes for a in (sysm.bs, sysm.gs, sysm.cs, sysm.rs, sysm.aw, sysm.cnt))
    monkeypatch.setenv("NPUSIM_MEMORY_BUDGET", str(state - 1))
    assert main(["dram-bench", "--standard", "HBM3", "--channels", "3", "--bytes", "4 KiB"]) == 2
    assert "--channels 3: needs about" in capsys.readouterr().err
    monkeypatch.setenv("NPUSIM_MEMORY_BUDGET", str(state))
    # (one burst: the bursts' own estimate, 128 B each, stays under this small budget)
    assert main(["dram-bench", "--standard", "HBM3", "--channels", "3", "--bytes", "32 B"]) == 0


@pytest.mark.parametrize(("value", "budget"), [(None, 8 * 2**30), ("32 GiB", 32 * 2**30),
                                                ("1000", 1000)])
def test_the_budget_is_8_gib_or_the_variable(value: str | None, budget: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from npusim.limits import memory_budget, memory_problem

    if value is None:
        monkeypatch.delenv("NPUSIM_MEMORY_BUDGET", raising=False)
    else:
        monkeypatch.setenv("NPUSIM_MEMORY_BUDGET", value)
    assert memory_budget() == budget
    assert memory_problem(budget) is None and memory_problem(budget + 1) is not None


def test_a_write_killed_by_sigkill_leaves_nothing_after_the_next_write(tmp_path: Path) -> None:
    """A process killed (SIGKILL) inside an atomic write leaves its hidden temporary file;
    the next npusim write into that folder removes it (its process is gone), and leaves a
    live process's temporary and other people's files alone."""
    import signal
    import subprocess
    import sys
    import time

    from npusim._io import atomic_write_text

    target = tmp_path / "big.csv"
    code = ("import time, pathlib, sys\n"
            "from npusim._io import atomic_write\n"
            "def slow(tmp):\n"
            "    pathlib.Path(tmp).write_text('x' * 1000)\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(60)\n"
            f"atomic_write({str(target)!r}, slow)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".big.csv.npusim-") and not target.exists()
    live = tmp_path / f".other.csv.npusim-{os.getppid()}-abc.tmp"  # a live process's
    theirs = tmp_path / ".big.csv.vim.tmp"
    live.write_text("")
    theirs.write_text("")
    time.sleep(0.01)
    atomic_write_text(tmp_path / "small.csv", "a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, theirs.name, "small.csv"])


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400", "-1e400", "Infinity"])
def test_the_shared_finite_check_refuses_every_non_finite_spelling(text: str) -> None:
    from npusim.units import finite_real, parse_frequency, parse_real

    with pytest.raises(ValueError, match="finite"):
        parse_real(text)
    with pytest.raises(ValueError, match="finite"):
        finite_real(float(text))
    with pytest.raises(ValueError):
        parse_frequency(f"{text} GHz")
    with pytest.raises(ValueError, match="finite"):
        finite_real(10**400)  # an integer past the float range
    assert parse_real("1e308") == 1e308 and finite_real(3) == 3.0


def test_sizes_stop_at_8_eib() -> None:
    from npusim.units import MAX_BYTES, parse_bytes

    assert MAX_BYTES == 2**63 - 1 and parse_bytes(str(2**62)) == 2**62
    with pytest.raises(ValueError, match="8 EiB"):
        parse_bytes("1e30 B")
