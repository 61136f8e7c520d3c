"""LLM serving: request arrivals, continuous batching over a paged KV cache, on npusim's
chip model; per-request latencies, percentiles, goodput, energy and cost per token.

    >>> res = npusim.serve("lpddr_llm", "llama2_7b", rate=2.0, n=500, slo="ttft=500ms")
    >>> res.summary()["p99_ttft_s"], res.requests.head()

As deployed (replicas and routing, prefill/decode disaggregation, prefix caching,
speculative decoding): :func:`serve_deployed`, :func:`load_sweep_deployed`,
:func:`sweep_deployed`.
"""

from __future__ import annotations

from npusim.serving.arrivals import TRACE_COLUMNS, Requests, generate, load_trace
from npusim.serving.cost import CostModel, load_cost_model
from npusim.serving.deploy import DeployedResult, Deployment, Pool, parse_pool, serve_deployed
from npusim.serving.metrics import SLO, parse_slo
from npusim.serving.scheduler import Limits
from npusim.serving.service import (
    FIDELITIES,
    Backend,
    ServeResult,
    backend,
    kv_blocks,
    serve,
    with_rate,
)
from npusim.serving.steps import ConstantSteps, ExactSteps, StepModel, TableSteps
from npusim.serving.sweep import LoadSweep, load_sweep, load_sweep_deployed, sweep_deployed

__all__ = ["FIDELITIES", "SLO", "TRACE_COLUMNS", "Backend", "ConstantSteps", "CostModel",
           "DeployedResult", "Deployment", "ExactSteps", "Limits", "LoadSweep", "Pool",
           "Requests", "ServeResult", "StepModel", "TableSteps", "backend", "generate",
           "kv_blocks", "load_cost_model", "load_sweep", "load_sweep_deployed", "load_trace",
           "parse_pool", "parse_slo", "serve", "serve_deployed", "sweep_deployed",
           "with_rate"]
