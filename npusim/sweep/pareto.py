"""Pareto fronts over chosen objectives of a sweep table.

Objectives are column names, minimised unless written ``max:column`` (``min:`` is accepted
too). A row is on the front when no other row is at least as good in every objective and
strictly better in one. Rows with a missing or non-finite objective (failed runs) are never
on the front. Identical rows do not dominate each other, so both stay on the front.

The search sorts the rows lexicographically: a row's dominators all sort before it, and if
one of them is dominated, so is the row by the front member that dominates it; so each row
is compared only against the front found so far.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from npusim.errors import NpusimError

__all__ = ["pareto_front", "pareto_mask", "parse_objectives"]


def parse_objectives(objectives: str | Sequence[str]) -> list[tuple[str, bool]]:
    """``"latency_s,max:throughput"`` → ``[("latency_s", False), ("throughput", True)]``
    (the flag says: maximise)."""
    items = objectives.split(",") if isinstance(objectives, str) else list(objectives)
    out = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item.startswith("max:"):
            out.append((item[4:].strip(), True))
        else:
            out.append((item.removeprefix("min:").strip(), False))
    if not out:
        raise NpusimError("no Pareto objectives given")
    return out


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n x k), all minimised.

    Rows with a non-finite entry are excluded (never on the front, never dominating).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError("values must be an n x k array")
    n = len(v)
    mask = np.zeros(n, dtype=bool)
    ok = np.flatnonzero(np.isfinite(v).all(axis=1))
    if len(ok) == 0:
        return mask
    order = ok[np.lexsort(v[ok].T[::-1])]
    front = np.empty((0, v.shape[1]))
    for i in order:
        p = v[i]
        if len(front):
            dominated = np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1))
            if dominated:
                continue
        mask[i] = True
        front = np.vstack([front, p])
    return mask


def pareto_front(df: pd.DataFrame, objectives: str | Sequence[str],
                 by: str | None = "workload") -> pd.Series:
    """Boolean Series: is the row on the Pareto front of its ``by`` group (per workload by
    default; ``by=None`` for one front over all rows)?"""
    objs = parse_objectives(objectives)
    missing = [c for c, _ in objs if c not in df.columns]
    if missing:
        raise NpusimError(f"unknown objective column(s) {', '.join(missing)} "
                          f"(columns: {', '.join(map(str, df.columns))})")
    signed = np.column_stack([
        (-1.0 if hi else 1.0) * pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        for c, hi in objs])
    if "status" in df.columns:
        signed[(df["status"] != "ok").to_numpy()] = np.nan
    out = np.zeros(len(df), dtype=bool)
    if by is None or by not in df.columns:
        out = pareto_mask(signed)
    else:
        for _, idx in df.groupby(by, sort=False).indices.items():
            out[idx] = pareto_mask(signed[idx])
    return pd.Series(out, index=df.index, name="pareto")
