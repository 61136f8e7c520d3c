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

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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

__all__ = ["SWEEP_COLUMNS", "LoadSweep", "load_sweep", "load_sweep_deployed",
           "sweep_deployed"]

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
    #: the step model (a Backend, or a deployed run's Deployment), to serve more streams on
    backend: Any = field(repr=False)


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
    _check_rates(rates, attainment)
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

    table, lo, found = _knee(row, rates, refine)
    return LoadSweep(table, lo, found, attainment, slo_, using)


def _knee(row: Callable[[float, bool], dict[str, Any]], rates: Sequence[float],
          refine: int) -> tuple[pd.DataFrame, float, bool]:
    """Rows at ``rates``, bisection rows between the last rate meeting the SLO and the
    first missing it; (table, knee, knee found)."""
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
    return table, lo, bool(bad) and math.isfinite(lo)


def load_sweep_deployed(model: ConfigLike | None, rates: Sequence[float], *, n: int = 1000,
                        seed: int = 0, prompt: str = "fixed:512", output: str = "fixed:128",
                        arrivals: str = "poisson", cv: float = 1.0, slo: SLO | str = "",
                        attainment: float = 0.9, refine: int = 3,
                        **deployment: Any) -> LoadSweep:
    """:func:`load_sweep` on a deployment (``deployment``: the options of
    :func:`~npusim.serving.serve_deployed`); the step models are built once. The table
    adds the mean TTFT parts and, when they apply, the prefix hit rate and tokens per
    verify."""
    from npusim.serving.deploy import serve_deployed

    _check_rates(rates, attainment)
    slo_ = parse_slo(slo) if isinstance(slo, str) else slo
    base = generate(n, 1.0, prompt=prompt, output=output, arrivals=arrivals, cv=cv, seed=seed)
    built: dict[str, Any] = {}

    def row(rate: float, refined: bool) -> dict[str, Any]:
        res = serve_deployed(model, requests=with_rate(base, rate), slo=slo_, seed=seed,
                             using=built.get("d"), **deployment)
        built["d"] = res.deployment
        s = res.summary()
        extra = ("mean_queue_s", "mean_prefill_s", "mean_kv_transfer_s", "prefix_hit_rate",
                 "tokens_per_verify", "busy_fraction")
        return {**{c: s.get(c, math.nan) for c in (*SWEEP_COLUMNS, *extra)}, "rate": rate,
                "meets_slo": s["slo_attainment"] >= attainment, "refined": refined}

    table, lo, found = _knee(row, rates, refine)
    return LoadSweep(table, lo, found, attainment, slo_, built["d"])


def _check_rates(rates: Sequence[float], attainment: float) -> None:
    if not rates:
        raise WorkloadError("a load sweep needs at least one rate")
    for rate in rates:
        if not rate > 0 or not math.isfinite(rate):
            raise WorkloadError(f"rate must be a positive number of requests per second, "
                                f"got {rate}")
    if not 0 < attainment <= 1:
        raise WorkloadError(f"attainment must be in (0, 1], got {attainment}")


#: options of serve_deployed a deployment's step models do not depend on (varied freely)
_FREE = ("router", "prefix", "prefix_cache", "prefix_cache_blocks", "spec_accept", "rate",
         "n", "seed", "slo", "cost", "requests", "prompt", "output", "arrivals", "cv",
         "kv_link", "kv_lanes", "priority", "chunked_prefill")


def sweep_deployed(model: ConfigLike | None, axes: Mapping[str, Sequence[Any]], *,
                   prefix_tokens: int = 512, **base: Any) -> pd.DataFrame:
    """One deployed run per point of the grid ``axes`` (option name → values, any option of
    :func:`~npusim.serving.serve_deployed`, plus ``prefix_share`` (a share of requests
    opening with one system prompt of ``prefix_tokens``), ``replicas``, ``prefill_count``
    and ``decode_count`` (pool sizes)); a row per point: its values and the summary. Step
    models are built once per distinct chip, model and precision setting."""
    from npusim.serving.deploy import serve_deployed

    if not axes:
        raise WorkloadError("a deployment sweep needs at least one axis")
    keys = list(axes)
    built: dict[str, Any] = {}
    rows = []
    for values in itertools.product(*(axes[k] for k in keys)):
        kw = {**base, **dict(zip(keys, values, strict=True))}
        if "prefix_share" in kw:
            kw["prefix"] = f"system:{kw.pop('prefix_share')},{prefix_tokens}"
        counts: dict[str, Any] = {k: kw.pop(k) for k in
                                  ("prefill_count", "decode_count", "replicas") if k in kw}
        key = repr([*sorted((k, repr(v)) for k, v in kw.items()
                            if k not in _FREE and k != "spec_tokens"),
                    ("spec", bool(kw.get("spec_tokens")))])
        using = built.get(key)
        if using is not None:
            using = replace(using, pools=_recount(using.pools, counts))
        elif counts and kw.get("pools") is not None:
            kw["pools"] = _recount(kw["pools"], counts)
        elif counts:
            kw = _with_counts(kw, counts)
        res = serve_deployed(model, using=using, **kw)
        if key not in built:
            built[key] = res.deployment
        rows.append({**dict(zip(keys, values, strict=True)), **res.summary()})
    return pd.DataFrame(rows)


def _recount(pools: list[Any], counts: dict[str, Any]) -> list[Any]:
    """Built pools with the replica counts of this point."""
    out = list(pools)
    for i, p in enumerate(out):
        axis = {"prefill": "prefill_count", "decode": "decode_count"}.get(p.role, "replicas")
        if counts.get(axis) is not None:
            out[i] = replace(p, replicas=int(counts[axis]))
    return out


def _with_counts(kw: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    from npusim.serving.deploy import Pool, parse_pool

    out = dict(kw)
    if "replicas" in counts:
        out["replicas"] = int(counts["replicas"])
    for opt, cnt in (("prefill_pool", "prefill_count"), ("decode_pool", "decode_count")):
        if cnt in counts and out.get(opt) is not None:
            pool = out[opt] if isinstance(out[opt], Pool) else parse_pool(out[opt], opt)
            out[opt] = replace(pool, count=int(counts[cnt]))
    return out
