"""BERT-large (sequence 384, batch 1) on chip presets: wall time, simulated cycles per second.

    python bench/bench_bert.py [--presets warboy,rngd] [--repeat 7] [--memory bandwidth]
    python bench/bench_bert.py --quick       # what CI runs: one preset, 2 repeats

Warm: the median of ``--repeat`` ``npusim.simulate`` calls in this process (compile + event
model), after one untimed call. Cold: a fresh interpreter with an empty numba cache
(compilation included) running the same call; warm start: a fresh interpreter with numba's
cache warm. Events processed = tiles the event model ran. Peak memory: the Python heap
(tracemalloc) during one call. Not a test: prints figures, asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import network_main

if __name__ == "__main__":
    sys.exit(network_main(__doc__, "npusim.workloads.bert_large(seq_len=384)",
                          "BERT-large 384", "warboy,rngd"))
