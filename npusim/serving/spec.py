"""Speculative decoding: a draft proposes ``gamma`` tokens, the target model verifies them
in one pass of ``gamma + 1`` tokens per sequence (Leviathan et al., 2023; Chen et al., 2023).

Each draft token is accepted with probability ``alpha`` independently until the first
rejection; a verify emits the accepted tokens plus one (the target's correction, or its
next token when all ``gamma`` were accepted), so the tokens of a verify are
``min(K, gamma + 1)`` with ``K`` geometric (``P(K >= j) = alpha^(j-1)``), of mean
``(1 - alpha^(gamma+1)) / (1 - alpha)``. ``alpha`` is a constant, or a distribution drawn
once per request: ``uniform:LO,HI`` or ``beta:A,B``. Draws come from a generator seeded
per replica.

Cost of a verify step of ``B`` sequences: the target's verify pass (:class:`~npusim.
serving.shapes.Shapes`) plus ``gamma`` decode steps of batch ``B`` of the draft (a smaller
model on the same chip or another, or multi-token-prediction heads: one transformer block
and the LM head of the target's shape, as DeepSeek-V3's MTP module), one after the other;
a prompt's prefill adds the draft's prefill of it. Each verify reserves KV blocks for
``gamma + 1`` more tokens; the rejected tokens' slots are given back by the next step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from npusim.errors import WorkloadError
from npusim.serving.steps import StepModel

__all__ = ["Speculation", "accept_rates", "mean_tokens_per_verify", "verify_tokens"]


def mean_tokens_per_verify(alpha: float, gamma: int) -> float:
    """``(1 - alpha^(gamma+1)) / (1 - alpha)`` (``gamma + 1`` at ``alpha = 1``)."""
    return gamma + 1.0 if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)


def accept_rates(spec: float | str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-request acceptance rates: a constant, ``uniform:LO,HI`` or ``beta:A,B``."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        a = float(spec)
        if not 0 <= a <= 1 or not math.isfinite(a):
            raise WorkloadError(f"spec acceptance alpha must be in [0, 1], got {spec}")
        return np.full(n, a)
    text = str(spec)
    kind, _, args = text.partition(":")
    if not args:
        try:
            return accept_rates(float(text), n, rng)
        except ValueError:
            pass
    try:
        vals = [float(v) for v in args.split(",")]
    except ValueError:
        vals = []
    if kind == "uniform" and len(vals) == 2 and 0 <= vals[0] <= vals[1] <= 1:
        return rng.uniform(vals[0], vals[1], size=n)
    if kind == "beta" and len(vals) == 2 and min(vals) > 0 and all(map(math.isfinite, vals)):
        return rng.beta(vals[0], vals[1], size=n)
    raise WorkloadError(f"spec acceptance {text!r}: alpha in [0, 1], uniform:LO,HI (0 <= LO "
                        "<= HI <= 1) or beta:A,B (A, B > 0)")


def verify_tokens(alpha: np.ndarray, gamma: int, rng: np.random.Generator) -> np.ndarray:
    """Tokens each verify emits, ``min(K, gamma + 1)`` with ``K`` geometric in ``1 - alpha``."""
    p = np.clip(1.0 - alpha, 1e-300, 1.0)
    k = rng.geometric(p)
    return np.where(alpha >= 1, gamma + 1, np.minimum(k, gamma + 1)).astype(np.int64)


@dataclass(frozen=True)
class Speculation:
    """``gamma`` draft tokens per verify, acceptance ``alpha`` (constant or distribution)
    and the draft's step costs (None: free, an idealised draft)."""

    gamma: int
    alpha: float | str = 0.7
    draft: StepModel | None = None
    name: str = "draft"

    def __post_init__(self) -> None:
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, np.integer)) \
                or self.gamma <= 0:
            raise WorkloadError(f"spec tokens gamma must be a positive integer, got "
                                f"{self.gamma!r}")
        accept_rates(self.alpha, 1, np.random.default_rng(0))  # validates
