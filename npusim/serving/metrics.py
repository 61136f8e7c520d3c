"""Serving figures from a run's trace: per-request table, percentiles, goodput, occupancy.

Per request: ``queue_s`` (arrival to the start of its first step), ``ttft_s`` (arrival to
its first token), ``tpot_s`` (first token to last over the ``output - 1`` later tokens;
NaN for one-token outputs), ``e2e_s`` (arrival to last token). A request meets the SLO when
its TTFT and TPOT are both within bounds (a NaN TPOT meets any bound). The run's duration
is first arrival to last completion. ``offered_rate`` is the arrivals' own rate (``n - 1``
gaps over first to last arrival); ``arrival_rate`` and ``requests_per_s`` are completions
per second of the duration (what was served, below the offered rate when a queue builds).
``max_queue_length`` is the most requests waiting at once (arrived, first step not yet
started), from the arrival and start times; the steps table's ``queue_length`` is what
was left waiting when a step started. ``mean_in_system`` is the time average of the requests
in the system, integrated from the recorded arrivals and completions; Little's law says it
equals the arrival rate times the mean latency (``little_lw``: observed arrivals per second
of the duration x mean ``e2e_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from npusim.errors import WorkloadError
from npusim.serving.sim import Trace
from npusim.units import parse_time

__all__ = ["SLO", "parse_slo", "request_table", "step_table", "summarize"]


@dataclass(frozen=True)
class SLO:
    ttft_s: float = math.inf
    tpot_s: float = math.inf


def parse_slo(text: str) -> SLO:
    """``ttft=500ms,tpot=50ms`` (either may be left out)."""
    vals: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, val = part.partition("=")
        if not eq or key.strip() not in ("ttft", "tpot"):
            raise WorkloadError(f"slo {text!r}: use ttft=500ms,tpot=50ms")
        try:
            vals[f"{key.strip()}_s"] = parse_time(val.strip())
        except (ValueError, TypeError) as exc:
            raise WorkloadError(f"slo {text!r}: {exc}") from None
        if vals[f"{key.strip()}_s"] <= 0:
            raise WorkloadError(f"slo {text!r}: bounds must be positive")
    return SLO(**vals)


def request_table(trace: Trace, slo: SLO) -> pd.DataFrame:
    s = trace.seqs
    arr = np.array([q.arrival for q in s])
    first = np.array([q.first_token for q in s])
    fin = np.array([q.finish for q in s])
    out = np.array([q.output for q in s])
    ttft = first - arr
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (fin - first) / np.maximum(out - 1, 1), np.nan)
    met = (ttft <= slo.ttft_s) & ~(tpot > slo.tpot_s)
    return pd.DataFrame({
        "request": np.arange(len(s)), "arrival_s": arr,
        "prompt_tokens": [q.prompt for q in s], "output_tokens": out,
        "queue_s": np.array([q.admitted for q in s]) - arr, "ttft_s": ttft, "tpot_s": tpot,
        "e2e_s": fin - arr, "first_token_s": first, "finish_s": fin,
        "preemptions": [q.preemptions for q in s], "swaps": [q.swaps for q in s],
        "slo_met": met,
    })


def step_table(trace: Trace) -> pd.DataFrame:
    """Per step: start, latency, energy, prefill tokens, decode batch, queue, KV use and the
    tokens swapped over the host link."""
    cols = ["start_s", "latency_s", "energy_j", "prefill_tokens", "decode_batch",
            "queue_length", "kv_blocks_used", "swap_tokens"]
    df = pd.DataFrame(trace.steps, columns=cols)
    df["kv_occupancy"] = df["kv_blocks_used"] / trace.blocks if trace.blocks else 0.0
    return df


def _time_average(times: np.ndarray, values: np.ndarray, end: float) -> float:
    """Mean over [times[0], end] of a step function taking ``values[i]`` from ``times[i]``."""
    if len(times) == 0 or end <= times[0]:
        return 0.0
    widths = np.diff(np.append(times, end))
    return float((widths * values).sum() / (end - times[0]))


def _most_waiting(req: pd.DataFrame) -> int:
    """Most requests waiting at once: +1 at an arrival, -1 when its first step starts (a
    request started at the instant it arrives never waits: starts sort first on ties)."""
    arrive = req["arrival_s"].to_numpy()
    start = arrive + req["queue_s"].to_numpy()
    times = np.concatenate([start, arrive])
    delta = np.concatenate([-np.ones(len(start)), np.ones(len(arrive))])
    order = np.lexsort((delta, times))
    return int(max(np.cumsum(delta[order]).max(initial=0), 0))


def summarize(trace: Trace, req: pd.DataFrame, steps: pd.DataFrame) -> dict[str, Any]:
    start, end = float(req["arrival_s"].min()), float(req["finish_s"].max())
    dur = end - start
    n = len(req)
    tokens = int(req["output_tokens"].sum())
    busy = float(steps["latency_s"].sum())
    energy = float(steps["energy_j"].sum()) + trace.idle_power_w * max(dur - busy, 0.0)
    arr = np.sort(req["arrival_s"].to_numpy())
    span = float(arr[-1] - arr[0]) if n else 0.0
    out: dict[str, Any] = {"requests": n, "duration_s": dur,
                           "offered_rate": (n - 1) / span if span > 0 else math.inf,
                           "arrival_rate": n / dur if dur > 0 else math.inf}
    for col in ("ttft_s", "tpot_s", "e2e_s", "queue_s"):
        v = req[col].dropna().to_numpy()
        out[f"mean_{col}"] = float(v.mean()) if len(v) else math.nan
        for q in (50, 90, 99):
            out[f"p{q}_{col}"] = float(np.percentile(v, q)) if len(v) else math.nan
    met = int(req["slo_met"].sum())
    weights = steps["latency_s"].to_numpy()
    counts = trace.in_system
    out.update({
        "requests_per_s": n / dur if dur > 0 else math.inf,
        "tokens_per_s": tokens / dur if dur > 0 else math.inf,
        "slo_attainment": met / n,
        "goodput_requests_per_s": met / dur if dur > 0 else math.inf,
        "goodput_tokens_per_s": float(req.loc[req["slo_met"], "output_tokens"].sum()) / dur
        if dur > 0 else math.inf,
        "energy_j": energy, "energy_per_token_j": energy / tokens,
        "average_power_w": energy / dur if dur > 0 else 0.0,
        "busy_fraction": busy / dur if dur > 0 else 1.0,
        "mean_decode_batch": float(np.average(steps["decode_batch"], weights=weights))
        if busy > 0 else 0.0,
        "mean_kv_occupancy": float(np.average(steps["kv_occupancy"], weights=weights))
        if busy > 0 else 0.0,
        "max_kv_occupancy": float(steps["kv_occupancy"].max()),
        "max_queue_length": _most_waiting(req),
        "mean_in_system": _time_average(counts[:, 0], counts[:, 1], end),
        "little_lw": (n / dur) * float(req["e2e_s"].mean()) if dur > 0 else math.nan,
        "steps": len(steps), "preemptions": trace.preemptions, "swaps": trace.swaps,
        "output_tokens": tokens, "kv_blocks": trace.blocks,
    })
    return out
