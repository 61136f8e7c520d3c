"""The ceilings npusim checks inputs against before it starts work, all in one place.

A hostile or mistyped input (``m: 1000000000000``, ``--batch 1000000000``, a YAML alias
bomb) must be refused with one line that names the key and the estimate, never found out
by running out of memory. Every check here compares an *estimate* made before allocating
with a ceiling:

* ``memory_budget()`` — bytes one command may plan to hold at once: 8 GiB, or the value of
  the ``NPUSIM_MEMORY_BUDGET`` environment variable (a size such as ``32 GiB`` or a number
  of bytes). The estimates are deliberately rough (the largest arrays a run builds), so the
  budget is a guard against mistakes, not a tight limit; raise it to run something larger.
* ``TILE_BYTES`` — host memory per tile of a compiled program, through compilation and the
  event model: about 370 B measured (a 262144-tile GEMM on tpu_v1 with the bandwidth
  model raised the peak resident set by 93 MiB), taken as 512 B. A program's tiles are
  counted from the tiling search's chosen tile before any tile array is built.
* ``BURST_BYTES`` — host memory per burst the cycle DRAM model schedules at once: 14
  int64 arrays of one entry a burst (address, arrival, channel, bank, row, order, position,
  pair, sorted pair, done, accepted, latency and the two of the request expansion) and a
  few of one byte, 115 B, taken as 128 B; a recorded command trace adds 3 commands of 5
  int64 a burst (120 B).
* ``REQUEST_BYTES``, ``STEP_BYTES`` — host memory per served request (its arrays, its
  Python record, its row of the per-request table: some 0.6 kB, taken as 1 KiB) and per
  scheduler step (a tuple of 8 numbers and its table row, some 0.3 kB, taken as 512 B). A
  stream needs at least sum(output) / max_batch decode steps and sum(prompt) / max_tokens
  prefill steps.
* ``CORE_LAYER_BYTES`` — host memory per core and layer of a compiled program: every layer
  holds one tile array per core, empty or not (an empty numpy array is 128 B), with its
  tuple slot and the event model's per-core entries, taken as 256 B.
* ``LINK_BYTES``, ``CHIP_BYTES`` — host memory per link direction of a system (its name
  and its entry in the collectives' busy-until table, some 150 B, taken as 256 B) and per
  chip (its row of the per-chip table and its route entries, taken as 1 KiB); estimates,
  not measurements, to keep a count of 10^9 chips from being walked at all.
* ``MAX_REFRESHES`` — refreshes the cycle DRAM model schedules before a trace's last
  request, one by one: some 60 million a second measured (one request at cycle 10^12 on
  HBM3's 32 channels, 5.1 x 10^9 refreshes, took 82 s), so 10^9 is some 16 s.
* ``MAX_INPUT_BYTES``, ``MAX_YAML_BYTES`` — the largest input file read (a request trace
  of 10 million rows is about 200 MB) and the largest YAML file (PyYAML's pure-Python
  reader composes about 0.5 MB a second on a quiet core, 4 MiB some 8 s; a workload of
  4 MiB has some 90,000 layers; the largest shipped YAML is 27 kB).
* ``MAX_YAML_NODES`` — nodes a YAML document may hold once its aliases are expanded
  (a billion-laughs alias bomb expands 9 aliases 9 levels deep to 387 million nodes).
"""

from __future__ import annotations

import os

from npusim.errors import NpusimError
from npusim.units import format_bytes, parse_bytes

__all__ = [
    "BURST_BYTES",
    "CHIP_BYTES",
    "CORE_LAYER_BYTES",
    "DEFAULT_MEMORY_BUDGET",
    "LINK_BYTES",
    "MAX_INPUT_BYTES",
    "MAX_REFRESHES",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "MEMORY_BUDGET_ENV",
    "REPLICA_BYTES",
    "REQUEST_BYTES",
    "STEP_BYTES",
    "TILE_BYTES",
    "TooLargeError",
    "check_memory",
    "memory_budget",
    "memory_problem",
]

DEFAULT_MEMORY_BUDGET = 8 * 2**30
MEMORY_BUDGET_ENV = "NPUSIM_MEMORY_BUDGET"
TILE_BYTES = 512
BURST_BYTES = 128
LINK_BYTES = 256
CHIP_BYTES = 1024
CORE_LAYER_BYTES = 256
REQUEST_BYTES = 1024
STEP_BYTES = 512
#: a serving replica: its scheduler, queues, SimPy process and KV block table (a rounded
#: guess, as the per-request and per-step figures are)
REPLICA_BYTES = 64 * 1024
# The largest preset workload (an 80-layer LLM) has a few tens of thousands of nodes.
MAX_YAML_NODES = 1_000_000
MAX_INPUT_BYTES = 1 << 30
MAX_REFRESHES = 10**9
MAX_YAML_BYTES = 4 << 20


class TooLargeError(NpusimError):
    """An input asks for more than a ceiling of this module allows (checked by estimate).

    ``layer`` is the index of the workload layer that passed it, when one did, so that a
    caller that knows the workload's file can name the layer's line."""

    def __init__(self, message: str, layer: int | None = None) -> None:
        super().__init__(message)
        self.layer = layer


def memory_budget() -> int:
    """Bytes a command may plan to hold: ``$NPUSIM_MEMORY_BUDGET`` or 8 GiB."""
    raw = os.environ.get(MEMORY_BUDGET_ENV)
    if not raw:
        return DEFAULT_MEMORY_BUDGET
    try:
        value = parse_bytes(raw)
    except ValueError as exc:
        raise TooLargeError(f"{MEMORY_BUDGET_ENV}={raw!r}: {exc}") from None
    if value <= 0:
        raise TooLargeError(f"{MEMORY_BUDGET_ENV}: must be positive (got {raw!r})")
    return value


def memory_problem(estimate_bytes: float) -> str | None:
    """Why an estimate of ``estimate_bytes`` is refused, or None when it fits the budget."""
    budget = memory_budget()
    if estimate_bytes <= budget:
        return None
    return (f"needs about {format_bytes(estimate_bytes)} of memory, more than the "
            f"{format_bytes(budget)} budget (set {MEMORY_BUDGET_ENV}, e.g. "
            f"{MEMORY_BUDGET_ENV}='64 GiB', to allow more)")


def check_memory(what: str, estimate_bytes: float) -> None:
    """Refuse ``what`` (an option and its value) when its estimate passes the budget."""
    problem = memory_problem(estimate_bytes)
    if problem is not None:
        raise TooLargeError(f"{what}: {problem}")
