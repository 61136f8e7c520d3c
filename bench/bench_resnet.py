"""ResNet-50 batch 1 on chip presets: wall time (cold and warm), simulated cycles per second.

    python bench/bench_resnet.py [--presets tpu_v1,warboy] [--repeat 7] [--memory bandwidth]
    python bench/bench_resnet.py --quick     # what CI runs: one preset, few repeats

Cold: a fresh interpreter with an empty numba cache (compilation included) running
``npusim.simulate``. Warm start: a fresh interpreter with the cache warm. Warm: repeated
calls in this process after one untimed call. Targets (issue 2): <= 1 s warm, <= 15 s cold
on TPU v1.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import network_main

if __name__ == "__main__":
    sys.exit(network_main(__doc__, "npusim.workloads.resnet50()", "ResNet-50 b1",
                          "tpu_v1,warboy"))
