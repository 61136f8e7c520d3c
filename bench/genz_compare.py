"""Side by side with GenZ (genz-llm, https://github.com/abhibambhaniya/GenZ-LLM-Analyzer):
Mixtral-8x7B decode steps (context 512, batch 1, 8, 32) on lpddr_llm, hbm_llm (int4) and
rngd (int8), GenZ given each chip's bf16 FLOP rate, DRAM bandwidth and capacity.

    python -m venv /tmp/genz && /tmp/genz/bin/pip install genz-llm   # a throwaway venv
    python bench/genz_compare.py --genz-python /tmp/genz/bin/python

GenZ runs in its own interpreter (its dependencies are not npusim's). Where both model the
same thing they agree: batch 1 (one token touches its top-k experts) within 1.11x. Where
they do not: GenZ's decode FFN counts the weights of top-k experts per step whatever the
batch (``A = K`` in GenZ/Models/ffn.py, "TODO: number of activated experts"), while npusim
reads the experts the batch touches, E·(1−(1−k/E)^B) per layer (7.2 of 8 at batch 8), so
from batch 8 npusim's step is 3.5-6.8x GenZ's and GenZ's is below the bandwidth bound of
the experts the batch touches.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHIPS = {"lpddr_llm": "int4", "hbm_llm": "int4", "rngd": "int8"}
BATCHES = (1, 8, 32)
CONTEXT = 512

GENZ = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from GenZ import decode_moddeling
out = []
for chip, (tflops, bw, gb, bits) in json.loads(sys.argv[1]).items():
    for b in json.loads(sys.argv[2]):
        system = {"Flops": tflops, "Memory_BW": bw, "Memory_size": gb, "real_values": True}
        r = decode_moddeling(model="mixtral_8x7b", batch_size=b, input_tokens=int(sys.argv[3]),
                             output_tokens=0, Bb=1, system_name=system, bits=bits)
        out.append([chip, b, float(r["Latency"])])
print(json.dumps(out))
"""


def genz_latencies_ms(python: str) -> dict[tuple[str, int], float]:
    import npusim

    chips = {}
    for name, bits in CHIPS.items():
        chip = npusim.load_arch(name)
        # GenZ takes the bf16 rate in TFLOPS and scales it by the precision (int8 2x, int4 4x)
        chips[name] = (chip.peak_ops_per_second("bf16") / 1e12, chip.dram.peak_bandwidth / 1e9,
                       chip.dram.capacity_bytes / 2**30, bits)
    out = subprocess.run([python, "-c", GENZ, json.dumps(chips), json.dumps(BATCHES),
                          str(CONTEXT)], capture_output=True, text=True, check=True)
    return {(c, b): t for c, b, t in json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genz-python", required=True, help="a python with genz-llm installed")
    args = ap.parse_args()
    import npusim
    from npusim.workloads.llm import from_hf_config

    genz = genz_latencies_ms(args.genz_python)
    print("chip        batch  weights   npusim ms    GenZ ms   ratio  experts touched")
    for name, bits in CHIPS.items():
        chip = npusim.load_arch(name)
        for b in BATCHES:
            wl = from_hf_config("mixtral_8x7b", "decode", batch=b, context_len=CONTEXT,
                                weights=bits, kv="int8")
            res = npusim.simulate(chip, wl)
            t = float(res.summary()["latency_s"]) * 1e3
            touched = float(res.layers["experts_touched"].dropna().mean())
            print(f"{name:11s} {b:5d}  {bits:7s} {t:10.2f} {genz[(name, b)]:10.2f} "
                  f"{t / genz[(name, b)]:7.2f}  {touched:.2f} of 8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
