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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from npusim.cli import main

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
    files: dict[str, str | bytes]
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
         "NPUSIM_MEMORY_BUDGET: ", env={"NPUSIM_MEMORY_BUDGET": "lots"}),
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
]


def _cases() -> list[Case]:
    return [c() if callable(c) else c for c in CASES]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_hostile_input_is_one_line_exit_2(case: Case, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in case.files.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before = _digest(tmp_path)
    args = [re.sub(r"\{([^}]+)\}", lambda m: str(tmp_path if m.group(1) == "dir"
                                                  else tmp_path / m.group(1)), a)
            for a in case.args]
    code = main(args)
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
    assert main(["dram-bench", "--standard", "HBM3", "--channels", "3", "--bytes", "4 KiB"]) == 0


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
