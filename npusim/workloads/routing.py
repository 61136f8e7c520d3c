"""Which experts a step's tokens are routed to: tokens per expert, per MoE layer.

A routing is chosen by name (:func:`parse_routing`):

* ``uniform`` — each token picks ``k`` of ``E`` experts uniformly at random, and the step
  takes the *expected* case: for ``T`` tokens the distinct experts touched per MoE layer
  follow ``D = E·(1 − (1 − k/E)^T)``. ``D`` is rarely an integer, so layer ``j`` (0-based
  among the MoE layers) touches ``round((j+1)·D) − round(j·D)`` experts: the fraction is
  carried from layer to layer and the step's total is within one expert of ``layers x D``.
  The ``T·k`` routed rows are spread over the touched experts as evenly as integers allow
  (at most two distinct loads per layer, each ``<= T`` because ``D >= k``), the touched
  experts evenly spaced over the expert ids. Deterministic.
* ``skewed:S`` — a Zipf popularity law with exponent ``S >= 0``: expert ``e`` (``e = 0``
  the most popular) is chosen by a token with probability ``q_e = min(1, c / (e+1)^S)``,
  ``c`` set so that ``sum q_e = k`` (a token picks ``k`` distinct experts). The step again
  takes the expected case, deterministically (no random draw): ``D = sum_e 1 − (1 −
  q_e)^T`` experts touched (carried over layers as above), the most popular ones, the
  ``T·k`` rows shared among them in proportion to ``q_e`` (each ``<= T``, rounded by
  largest remainder). ``S = 0`` is ``uniform``.
* a routing trace file — a CSV with the header ``layer,token,expert`` and one row per
  (layer, token, chosen expert): ``layer`` is the model's block index (``l{i}``) of an MoE
  layer, ``token`` a 0-based token index within the step, ``expert`` a 0-based expert id;
  each token of each layer lists exactly top-k distinct experts. A step of ``T`` tokens
  uses trace tokens ``0 .. T-1`` of each layer, wrapping around when the trace has fewer.
  Checked against the model when the workload is built (:func:`check_trace`): its layers
  must be the model's MoE layers, its ids below the expert count, ``k`` per token.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from npusim.errors import WorkloadError

__all__ = ["Routing", "check_trace", "expected_touched", "parse_routing", "route"]


@dataclass(frozen=True)
class Routing:
    """A parsed routing: ``kind`` ``uniform``, ``skewed`` (with ``skew``) or ``trace``."""

    kind: str
    skew: float = 0.0
    path: str = ""
    #: trace: per MoE block index, a (tokens x top-k) array of expert ids
    trace: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        if self.kind == "skewed":
            return f"skewed:{self.skew:g}"
        return self.path if self.kind == "trace" else self.kind


def parse_routing(text: str | Routing) -> Routing:
    """``uniform``, ``skewed:S`` or the path of a trace file (read and checked for form)."""
    if isinstance(text, Routing):
        return text
    t = str(text).strip()
    if t == "uniform":
        return Routing("uniform")
    if t.startswith("skewed"):
        _, colon, s = t.partition(":")
        try:
            skew = float(s) if colon else math.nan
        except ValueError:
            skew = math.nan
        if not math.isfinite(skew) or skew < 0:
            raise WorkloadError(f"routing: {t!r}: expected skewed:S with a Zipf exponent "
                                f"S >= 0 (e.g. skewed:1.2)")
        return Routing("skewed", skew=skew)
    p = Path(t)
    if not p.is_file():
        raise WorkloadError(f"routing: {t!r} is neither uniform, skewed:S nor a trace file")
    st = p.stat()
    return _trace(t, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _trace(path: str, mtime_ns: int, size: int) -> Routing:
    """A trace file read once per version (a serving run builds many steps from it)."""
    return Routing("trace", path=path, trace=_read_trace(Path(path)))


def _read_trace(path: Path) -> dict[int, np.ndarray]:
    rows: dict[int, dict[int, list[int]]] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["layer", "token", "expert"]:
            raise WorkloadError(f"{path}:1: a routing trace starts with the header "
                                f"layer,token,expert")
        for line, rec in enumerate(reader, start=2):
            if not rec or all(not r.strip() for r in rec):
                continue
            try:
                layer, token, expert = (int(r) for r in rec)
            except ValueError:
                raise WorkloadError(f"{path}:{line}: expected three integers layer,token,"
                                    f"expert, got {','.join(rec)!r}") from None
            if layer < 0 or token < 0:
                raise WorkloadError(f"{path}:{line}: layer and token must be >= 0")
            if expert < 0:
                raise WorkloadError(f"{path}:{line}: unknown expert id {expert}")
            rows.setdefault(layer, {}).setdefault(token, []).append(expert)
    if not rows:
        raise WorkloadError(f"{path}: the routing trace has no rows")
    out = {}
    for layer, toks in rows.items():
        ks = {len(v) for v in toks.values()}
        if len(ks) != 1:
            raise WorkloadError(f"{path}: layer {layer}: tokens list different numbers of "
                                f"experts ({', '.join(map(str, sorted(ks)))})")
        n = max(toks) + 1
        if len(toks) != n:
            missing = next(t for t in range(n) if t not in toks)
            raise WorkloadError(f"{path}: layer {layer}: token {missing} has no experts "
                                f"(tokens are 0 .. {n - 1})")
        for t, v in toks.items():
            if len(set(v)) != len(v):
                raise WorkloadError(f"{path}: layer {layer} token {t}: expert listed twice")
        out[layer] = np.array([toks[t] for t in range(n)], dtype=np.int64)
    return out


def check_trace(routing: Routing, moe_blocks: list[int], experts: int, top_k: int) -> None:
    """One-line :class:`WorkloadError` if a trace does not fit the model: its layers must be
    the MoE blocks, every id below ``experts``, ``top_k`` experts per token."""
    if routing.kind != "trace":
        return
    got = sorted(routing.trace)
    if got != sorted(moe_blocks):
        raise WorkloadError(
            f"{routing.path}: the trace has {len(got)} layer(s) ({_span(got)}); the model has "
            f"{len(moe_blocks)} MoE layer(s) ({_span(sorted(moe_blocks))})")
    for layer in got:
        ids = routing.trace[layer]
        if ids.shape[1] != top_k:
            raise WorkloadError(f"{routing.path}: layer {layer}: {ids.shape[1]} experts per "
                                f"token, the model routes each token to {top_k}")
        if int(ids.max()) >= experts:
            raise WorkloadError(f"{routing.path}: layer {layer}: unknown expert id "
                                f"{int(ids.max())} (the model has {experts}: 0 .. "
                                f"{experts - 1})")


def _span(ids: list[int]) -> str:
    if not ids:
        return "none"
    if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]} .. {ids[-1]}"
    return ", ".join(map(str, ids[:8])) + (" …" if len(ids) > 8 else "")


def _choice_probs(experts: int, top_k: int, skew: float) -> np.ndarray:
    """Per expert, the probability a token picks it: ``min(1, c/(e+1)^S)``, sum ``top_k``."""
    w = 1.0 / np.arange(1, experts + 1, dtype=np.float64) ** skew
    q = np.zeros(experts)
    capped = np.zeros(experts, bool)
    for _ in range(experts):  # water-filling: experts at probability 1 are capped
        left = top_k - capped.sum()
        free = w * ~capped
        q = np.where(capped, 1.0, left * free / free.sum())
        over = (q > 1.0) & ~capped
        if not over.any():
            break
        capped |= over
    return q


def expected_touched(experts: int, top_k: int, tokens: int, skew: float = 0.0) -> float:
    """Expected distinct experts touched by ``tokens`` tokens: ``E·(1 − (1 − k/E)^T)`` for
    uniform routing, ``sum_e 1 − (1 − q_e)^T`` under a Zipf law of exponent ``skew``."""
    if skew == 0.0:
        return experts * (1.0 - (1.0 - top_k / experts) ** tokens)
    q = _choice_probs(experts, top_k, skew)
    return float(np.sum(1.0 - (1.0 - q) ** tokens))


def _carried(total: float, j: int) -> int:
    """Layer ``j``'s integer share of ``total`` per layer, the fraction carried over."""
    return math.floor((j + 1) * total + 0.5) - math.floor(j * total + 0.5)


def _share(rows: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """``rows`` over ``len(weights)`` experts: one each, the rest in proportion to
    ``weights``, none above ``cap``, rounded by largest remainder."""
    n = len(weights)
    out = np.ones(n, np.int64)
    left = rows - n
    room = np.full(n, cap - 1, np.float64)
    free = room > 0
    ideal = np.zeros(n)
    while left > 0 and free.any():  # water-filling against the cap
        ideal = np.where(free, left * weights * free / weights[free].sum(), 0.0)
        over = free & (ideal >= room)
        if not over.any():
            whole = np.floor(ideal).astype(np.int64)
            out += whole
            rem = left - int(whole.sum())
            order = np.argsort(-(ideal - whole), kind="stable")
            out[order[:rem]] += 1
            return out
        out[over] += room[over].astype(np.int64)
        left -= int(room[over].sum())
        room[over] = 0
        free &= ~over
    return out


def route(routing: Routing | str, moe_layer: int, tokens: int, experts: int, top_k: int,
          block: int | None = None) -> tuple[int, ...]:
    """Tokens per expert (``experts`` counts, summing to ``tokens x top_k``) of MoE layer
    ``moe_layer`` (0-based among the model's MoE layers) for a step of ``tokens`` tokens.
    A trace is looked up by the layer's block index ``block`` (default ``moe_layer``)."""
    r = parse_routing(routing)
    if not 0 < top_k <= experts:
        raise WorkloadError(f"experts_per_token {top_k} must be between 1 and the number "
                            f"of experts {experts}")
    if tokens <= 0:
        raise WorkloadError("routing: a step needs at least one token")
    rows = tokens * top_k
    if r.kind == "trace":
        ids = r.trace.get(moe_layer if block is None else block)
        if ids is None:
            raise WorkloadError(f"{r.path}: no layer {moe_layer if block is None else block} "
                                f"in the routing trace")
        take = ids[np.arange(tokens) % len(ids)]
        if take.shape[1] != top_k or int(take.max()) >= experts:
            check_trace(r, sorted(r.trace), experts, top_k)
        return tuple(int(c) for c in np.bincount(take.ravel(), minlength=experts))
    counts = np.zeros(experts, np.int64)
    if r.kind == "uniform" or r.skew == 0.0:
        d = expected_touched(experts, top_k, tokens)
        n = min(max(_carried(d, moe_layer), top_k), experts, rows)
        base, rem = divmod(rows, n)
        ids = (np.arange(n) * experts) // n  # evenly spaced over the expert ids
        counts[ids] = base
        counts[ids[:rem]] += 1
        return tuple(int(c) for c in counts)
    q = _choice_probs(experts, top_k, r.skew)
    d = float(np.sum(1.0 - (1.0 - q) ** tokens))
    n = min(max(_carried(d, moe_layer), top_k), experts, rows)
    counts[:n] = _share(rows, q[:n], tokens)
    return tuple(int(c) for c in counts)
