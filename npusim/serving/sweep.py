"""Load sweeps: the same request stream at several offered rates, and the knee.

``load_sweep(target, model, rates, ...)`` draws one stream (lengths and the pattern of
gaps) and serves it at each rate with its gaps scaled (common random numbers, so the
curves are smooth and comparable), on one step model built once. A rate meets the SLO when
at least ``attainment`` of its requests meet it (TTFT and TPOT within bounds). The knee is
the highest rate that meets it below the lowest that does not; ``refine`` bisection steps
between the two narrow it (each is a row of the table, ``refined`` True). No rate meeting
it gives a NaN knee; every rate meeting it gives ``knee_found`` False and the highest rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from npusim.errors import WorkloadError
from npusim.serving.arrivals import generate
from npusim.serving.cost import CostModel, load_cost_model
from npusim.serving.metrics import SLO, parse_slo
from npusim.serving.service import (
    Backend,
    backend,
    check_prompts,
    check_stream_size,
    serve,
    with_rate,
)
from npusim.spec.arch import Chip
from npusim.spec.system import System
from npusim.workloads.llm import ConfigLike

__all__ = ["SWEEP_COLUMNS", "LoadSweep", "load_sweep"]

SWEEP_COLUMNS = ("rate", "p50_ttft_s", "p90_ttft_s", "p99_ttft_s", "p50_tpot_s",
                 "p90_tpot_s", "p99_tpot_s", "p99_e2e_s", "tokens_per_s",
                 "goodput_tokens_per_s", "slo_attainment", "energy_per_token_j",
                 "average_power_w", "mean_decode_batch", "max_kv_occupancy", "preemptions",
                 "usd_per_mtoken")


@dataclass(frozen=True)
class LoadSweep:
    table: pd.DataFrame = field(repr=False)  # one row per rate, sorted by rate
    knee_rate: float
    knee_found: bool
    attainment: float
    slo: SLO
    backend: Backend = field(repr=False)  # the step model, to serve more streams on it


def load_sweep(target: Chip | System | str | Path | None, model: ConfigLike | None, rates: Sequence[float],
               *, n: int = 1000, seed: int = 0, prompt: str = "fixed:512",
               output: str = "fixed:128", arrivals: str = "poisson", cv: float = 1.0,
               slo: SLO | str = "", attainment: float = 0.9, refine: int = 3,
               cost: CostModel | str | Path | None = None, max_batch: int = 64,
               max_tokens: int = 2048, block_tokens: int = 16, using: Backend | None = None,
               **options: Any) -> LoadSweep:
    """Serve ``n`` requests at each of ``rates`` (``options``: the model and scheduler
    options of :func:`~npusim.serving.serve`) and find the knee. ``using``: a backend
    built before (then ``target``, ``model`` and the model options are not used)."""
    if not rates:
        raise WorkloadError("a load sweep needs at least one rate")
    for rate in rates:
        if not rate > 0 or not math.isfinite(rate):
            raise WorkloadError(f"rate must be a positive number of requests per second, "
                                f"got {rate}")
    if not 0 < attainment <= 1:
        raise WorkloadError(f"attainment must be in (0, 1], got {attainment}")
    slo_ = parse_slo(slo) if isinstance(slo, str) else slo
    cost_ = load_cost_model(cost) if isinstance(cost, (str, Path)) else cost
    base = generate(n, 1.0, prompt=prompt, output=output, arrivals=arrivals, cv=cv, seed=seed)
    check_stream_size(base, max_batch, max_tokens)
    sched = {k: options.pop(k) for k in ("priority", "chunked_prefill") if k in options}
    check_prompts(base, max_tokens, bool(sched.get("chunked_prefill", False)))
    if using is None:
        if target is None or model is None:
            raise WorkloadError("a load sweep needs a chip or system and a model "
                                "(or a backend)")
        using = backend(target, model, longest=int((base.prompt + base.output).max()),
                        max_batch=max_batch, max_tokens=max_tokens,
                        block_tokens=block_tokens,
                        need_price=cost_ is not None and cost_.card_price_usd is None,
                        **options)

    def row(rate: float, refined: bool) -> dict[str, Any]:
        res = serve(None, None, requests=with_rate(base, rate), using=using, slo=slo_,
                    cost=cost_, max_batch=max_batch, max_tokens=max_tokens,
                    block_tokens=block_tokens, **sched)
        s = res.summary()
        return {**{c: s.get(c, math.nan) for c in SWEEP_COLUMNS}, "rate": rate,
                "meets_slo": s["slo_attainment"] >= attainment, "refined": refined}

    rows = [row(float(r), False) for r in sorted(set(rates))]
    ok = [r["rate"] for r in rows if r["meets_slo"]]
    bad = [r["rate"] for r in rows if not r["meets_slo"]]
    if not ok or (bad and min(bad) < min(ok)):
        lo = math.nan
    else:
        lo = max(r for r in ok if not bad or r < min(bad))
    if bad and math.isfinite(lo):
        hi = min(b for b in bad if b > lo)
        for _ in range(refine):
            mid = (lo + hi) / 2
            got = row(mid, True)
            rows.append(got)
            lo, hi = (mid, hi) if got["meets_slo"] else (lo, mid)
    table = pd.DataFrame(rows).sort_values("rate", kind="stable").reset_index(drop=True)
    return LoadSweep(table, lo, bool(bad) and math.isfinite(lo), attainment, slo_, using)
