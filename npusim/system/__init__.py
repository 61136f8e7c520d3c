"""Systems of many chips: parallelism plans, per-chip shards, one step of the whole system.

``simulate_system(system, workload, tp=, pp=, dp=)`` simulates every chip's shard with
:func:`npusim.simulate` and runs the step (chips and links) in the event model of
:mod:`npusim.engine.system`; :func:`run_llm_system` serves an LLM on a system; :func:`sweep_system` crosses chip
count, link kind and parallelism.
"""

from __future__ import annotations

from npusim.system.llm import SystemLLMResult, run_llm_system
from npusim.system.parallel import Plan
from npusim.system.result import SystemResult
from npusim.system.simulate import simulate_system
from npusim.system.sweep import sweep_system

__all__ = ["Plan", "SystemLLMResult", "SystemResult", "run_llm_system", "simulate_system",
           "sweep_system"]
