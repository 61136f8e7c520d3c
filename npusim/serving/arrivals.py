"""Request streams: arrival times and prompt/output lengths, drawn (seeded) or read from a trace.

Arrivals: ``poisson`` (exponential gaps at ``rate`` per second), ``gamma`` (gamma gaps of
mean ``1/rate`` and coefficient of variation ``cv``: ``cv > 1`` is bursty, ``cv = 1`` is
Poisson, ``cv < 1`` is smoother than Poisson) or a CSV trace.

Lengths are distributions written as text: ``fixed:N``, ``uniform:LO,HI`` (integers, both
ends included) or ``lognormal:MEAN,CV`` (a lognormal with that mean and coefficient of
variation, rounded, at least 1 token).

Trace format (CSV with a header row; other columns are ignored)::

    arrival_s,prompt_tokens,output_tokens
    0.000,512,128
    0.031,96,300

``arrival_s`` is seconds from the start (non-decreasing after sorting; it is sorted),
lengths are positive integers. Optional columns ``prefix_id`` (an integer >= 0, or empty
for none) and ``prefix_tokens`` (the prompt's first tokens shared by every request of that
id) feed a prefix cache (:mod:`npusim.serving.prefix`). Every random draw comes from one ``numpy.random.Generator``
seeded by ``seed``, so a seed fixes the stream.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from npusim.errors import WorkloadError
from npusim.limits import REQUEST_BYTES, check_memory
from npusim.spec.yamlio import read_text
from npusim.units import parse_real

__all__ = ["MAX_TOKENS", "TRACE_COLUMNS", "Requests", "draw_lengths", "generate", "load_trace"]

TRACE_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")
#: the longest prompt or output a request may have (a 32-bit token count)
MAX_TOKENS = 2**31 - 1


@dataclass(frozen=True)
class Requests:
    """``n`` requests: arrival times (s, sorted), prompt and output token counts."""

    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    #: prefix id (-1: none) and its tokens at the head of the prompt (a prefix cache)
    prefix_id: np.ndarray | None = None
    prefix_len: np.ndarray | None = None
    #: id the whole finished sequence is cached under (a conversation's next turn)
    publish: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def offered_rate(self) -> float:
        """Requests per second over the span of the arrivals."""
        n = len(self)
        span = float(self.arrival_s[-1] - self.arrival_s[0]) if n > 1 else 0.0
        return (n - 1) / span if span > 0 else math.inf


def draw_lengths(spec: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` token counts from the distribution ``spec`` (``fixed:N``, ``uniform:LO,HI``,
    ``lognormal:MEAN,CV``)."""
    kind, _, args = spec.partition(":")
    try:
        vals = [parse_real(v) for v in args.split(",")] if args else []
    except ValueError:
        raise WorkloadError(f"length {spec!r}: finite numbers expected after the "
                            "colon") from None
    want = {"fixed": 1, "uniform": 2, "lognormal": 2}
    if kind not in want or len(vals) != want[kind]:
        raise WorkloadError(f"length {spec!r}: use fixed:N, uniform:LO,HI or "
                            "lognormal:MEAN,CV")
    if any(v <= 0 for v in vals):
        raise WorkloadError(f"length {spec!r}: every number must be positive")
    if kind in ("fixed", "uniform") and any(v != int(v) for v in vals):
        raise WorkloadError(f"length {spec!r}: token counts are whole numbers")
    if (vals[0] if kind != "uniform" else vals[1]) > MAX_TOKENS:
        raise WorkloadError(f"length {spec!r}: more than {MAX_TOKENS:,} tokens a request")
    if kind == "fixed":
        return np.full(n, int(vals[0]), dtype=np.int64)
    if kind == "uniform":
        lo, hi = int(vals[0]), int(vals[1])
        if hi < lo:
            raise WorkloadError(f"length {spec!r}: HI is below LO")
        return rng.integers(lo, hi + 1, size=n, dtype=np.int64)
    mean, cv = vals
    sigma2 = math.log1p(cv * cv)
    mu = math.log(mean) - sigma2 / 2
    drawn = np.maximum(1, np.rint(rng.lognormal(mu, math.sqrt(sigma2), size=n)))
    if not (np.isfinite(drawn).all() and drawn.max() <= MAX_TOKENS):
        raise WorkloadError(f"length {spec!r}: draws lengths past {MAX_TOKENS:,} tokens a "
                            "request (a smaller MEAN or CV)")
    return drawn.astype(np.int64)


def generate(n: int, rate: float, *, prompt: str = "fixed:512", output: str = "fixed:128",
             arrivals: str = "poisson", cv: float = 1.0, seed: int = 0) -> Requests:
    """``n`` requests arriving at ``rate`` per second (``poisson`` or ``gamma`` with ``cv``)."""
    if not rate > 0 or not math.isfinite(rate):
        raise WorkloadError(f"rate must be a positive number of requests per second, got {rate}")
    if n < 1:
        raise WorkloadError(f"the number of requests must be at least 1, got {n}")
    if not (cv > 0 and math.isfinite(cv)):
        raise WorkloadError(f"cv must be a positive finite number, got {cv}")
    check_memory(f"{n:,} requests", n * REQUEST_BYTES)  # before drawing them
    rng = np.random.default_rng(seed)
    if arrivals == "poisson":
        gaps = rng.exponential(1.0 / rate, size=n)
    elif arrivals == "gamma":
        if cv * cv == 0.0:
            raise WorkloadError(f"cv {cv:g}: so small its square is 0 (gaps of one length: "
                                "use a cv of at least 1e-150)")
        shape = 1.0 / (cv * cv)
        if not (math.isfinite(shape) and math.isfinite(1.0 / (rate * shape))):
            raise WorkloadError(f"cv {cv:g} at rate {rate:g}: gamma gaps past the float range")
        gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
    else:
        raise WorkloadError(f"arrivals must be poisson or gamma, got {arrivals!r}")
    t = np.cumsum(gaps) - gaps[0]  # the first request arrives at time 0
    if not np.isfinite(t[-1]):
        raise WorkloadError(f"rate {rate:g}: arrival times past the float range")
    return Requests(t, draw_lengths(prompt, n, rng), draw_lengths(output, n, rng))


def load_trace(path: str | Path) -> Requests:
    """Requests from a CSV trace (see the module docstring); one-line errors."""
    p = Path(path)
    if not p.exists():
        raise WorkloadError(f"{p}: no such trace file")
    try:
        df = pd.read_csv(io.StringIO(read_text(p)))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{p}: not a CSV trace ({' '.join(str(exc).split())})") from None
    header = read_text(p).split("\n", 1)[0]
    cols = [c.strip() for c in header.split(",")]
    dup = next((c for i, c in enumerate(cols) if c in cols[:i] and c in TRACE_COLUMNS), None)
    if dup is not None:
        raise WorkloadError(f"{p}:1: column {dup!r} appears twice")
    missing = [c for c in TRACE_COLUMNS if c not in df.columns]
    if missing:
        raise WorkloadError(f"{p}: missing column(s) {', '.join(missing)} (a trace needs "
                            f"{', '.join(TRACE_COLUMNS)})")
    if df.empty:
        raise WorkloadError(f"{p}: the trace has no requests")
    for col in TRACE_COLUMNS:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() | ~np.isfinite(vals.fillna(0)) | (
            vals < 0 if col == "arrival_s" else vals <= 0)
        if col != "arrival_s":
            bad |= (vals != np.floor(vals.fillna(0))) | (vals > MAX_TOKENS)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            what = ("a finite time >= 0" if col == "arrival_s" else
                    f"a positive integer of at most {MAX_TOKENS:,}")
            raise WorkloadError(f"{p}:{row + 2}: {col} = {str(df[col].iloc[row])!r}, "
                                f"expected {what}")
        df[col] = vals
    pid = plen = None
    if "prefix_id" in df.columns or "prefix_tokens" in df.columns:
        for col in ("prefix_id", "prefix_tokens"):
            vals = pd.to_numeric(df.get(col, pd.Series(np.nan, index=df.index)),
                                 errors="coerce")
            bad = vals.notna() & ((vals < 0) | (vals != np.floor(vals.fillna(0))))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise WorkloadError(f"{p}:{row + 2}: {col} = {str(df[col].iloc[row])!r}, "
                                    "expected an integer >= 0 (or empty)")
            df[col] = vals
        missing = df["prefix_id"].isna() | df["prefix_tokens"].isna()
        df.loc[missing, "prefix_id"], df.loc[missing, "prefix_tokens"] = -1, 0
    df = df.sort_values("arrival_s", kind="stable")
    if "prefix_id" in df.columns:
        pid = df["prefix_id"].to_numpy(dtype=np.int64)
        plen = df["prefix_tokens"].to_numpy(dtype=np.int64)
    return Requests(df["arrival_s"].to_numpy(dtype=float),
                    df["prompt_tokens"].to_numpy(dtype=np.int64),
                    df["output_tokens"].to_numpy(dtype=np.int64), pid, plen)
