"""npusim beside GenZ (genz-llm) on the same chips: decode time per output token.

    python -m venv /tmp/genz && /tmp/genz/bin/pip install genz-llm
    python bench/genz_compare.py --genz-python /tmp/genz/bin/python \
        [--json bench/data/genz_compare.json]   # the file docs/validation.md §3c quotes

GenZ is never an npusim dependency: it runs in its own interpreter (``--genz-python``), fed
each chip's peak figures, and its decode latency is compared with npusim's TPOT for the same
model, batch, context and precision. GenZ takes a chip as four numbers (``Flops`` TFLOPS at
bf16, ``Memory_BW`` GB/s, ``Memory_size`` GB, an interconnect figure) and times each operator
as the larger of its compute and memory time (its roofline), so the two should agree where
npusim's decode step is bound by streaming the weights.

Where they model different things, the table says so (the ``note`` column):

* GenZ's MoE decode reads ``top_k`` experts per layer whatever the batch (``ffn.py``:
  ``A = K``), where npusim reads the distinct experts the batch's tokens touch
  (E·(1-(1-k/E)^T) under uniform routing); above batch 1 GenZ's figure is a lower bound.
* GenZ's DeepSeek-V3 entry (``Models/Model_sets/misc.py``) has grouped-query attention with
  two KV heads and an 18,432-wide shared expert; the published model has latent attention
  and a 2,048-wide shared expert, so it is left out of the comparison.
* Qwen3-30B-A3B is given to GenZ as a ModelConfig with the published config's fields; its
  ``intermediate_size`` is the expert width (768), since GenZ's default FFN sizes every
  expert by ``intermediate_size`` and every Qwen3-MoE layer is an MoE layer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import npusim
from npusim.llm import run_llm

# (npusim config, GenZ model id or None for a ModelConfig built below, weights/GenZ bits)
CASES = [
    ("llama3_1_8b", "meta-llama/Llama-3.1-8B", "int8"),
    ("mixtral_8x7b", "mistralai/Mixtral-8x7B", "int4"),
    ("qwen3_30b_a3b", None, "int4"),
]
CHIPS = ("lpddr_llm", "hbm_llm", "rngd")
BATCHES = (1, 8, 32)
CONTEXT = 512

GENZ_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    warnings.filterwarnings("ignore")
    from GenZ.LLM_inference import decode_moddeling
    from GenZ.Models.default_models import ModelConfig
    qwen3 = ModelConfig(model="Qwen/Qwen3-30B-A3B", vocab_size=151936, hidden_size=2048,
        intermediate_size=768, num_decoder_layers=48, num_attention_heads=32, head_dim=128,
        num_key_value_heads=4, num_ffi=2, hidden_act="silu", num_experts=128, expert_top_k=8,
        max_model_len=40960)
    from importlib.metadata import version
    out = []
    for case in json.load(sys.stdin):
        model = case["genz_model"] or qwen3
        r = decode_moddeling(model=model, batch_size=case["batch"], input_tokens=case["context"],
                             output_tokens=0, Bb=1, system_name=case["system"],
                             bits=case["bits"], tensor_parallel=1)
        out.append(r["Latency"] / 1e3)
    print(json.dumps({"version": version("genz-llm"), "latency_s": out}))
""")


def genz_system(chip: npusim.Chip) -> dict[str, object]:
    """A chip as GenZ's four numbers: bf16 TFLOPS (GenZ scales int8/int4 from it), GB/s, GB."""
    prec = "bf16" if "bf16" in chip.cores.core.systolic.macs_per_cycle else "fp16"
    return {"real_values": True, "Flops": chip.peak_ops_per_second(prec) / 1e12,
            "Memory_BW": chip.dram.peak_bandwidth / 1e9,
            "Memory_size": chip.dram.capacity_bytes / 1e9, "ICN": 64, "ICN_LL": 1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genz-python", required=True, help="an interpreter with genz-llm")
    ap.add_argument("--json", type=Path, help="write the table here as JSON")
    args = ap.parse_args(argv)
    rows: list[dict[str, object]] = []
    for chip_name in CHIPS:
        chip = npusim.load_arch(chip_name)
        for model, genz_model, bits in CASES:
            for batch in BATCHES:
                rows.append({"chip": chip_name, "model": model, "genz_model": genz_model,
                             "bits": bits, "batch": batch, "context": CONTEXT,
                             "system": genz_system(chip)})
    proc = subprocess.run([args.genz_python, "-c", GENZ_SCRIPT], input=json.dumps(rows),
                          capture_output=True, text=True, check=True)
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    genz = answer["latency_s"]
    print(f"{'chip':<10} {'model':<14} {'w':<5} {'batch':>5} {'npusim ms':>10} "
          f"{'GenZ ms':>9} {'ratio':>6}  note")
    for row, g in zip(rows, genz, strict=True):
        res = run_llm(str(row["chip"]), str(row["model"]), prompt=CONTEXT, gen=2,
                      batch=int(row["batch"]), weights=str(row["bits"]),  # type: ignore[call-overload]
                      activations="int8", kv="int8")
        row["npusim_s"], row["genz_s"] = res.tpot_s, g
        row["ratio"] = res.tpot_s / g if g else float("nan")
        moe = row["model"] != "llama3_1_8b"
        row["note"] = ("GenZ reads top-k experts only (lower bound)"
                       if moe and row["batch"] > 1 else  # type: ignore[operator]
                       "npusim compute-bound: the array at M = batch (see text)"
                       if row["ratio"] > 1.3 else "")  # type: ignore[operator]
        row.pop("system")
        print(f"{row['chip']:<10} {row['model']:<14} {row['bits']:<5} {row['batch']:>5} "
              f"{res.tpot_s * 1e3:>10.2f} {g * 1e3:>9.2f} {row['ratio']:>6.2f}  {row['note']}")
    if args.json:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        args.json.write_text(json.dumps({"genz_version": answer["version"], "generated_utc": stamp,
                                         "context": CONTEXT, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
