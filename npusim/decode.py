"""Decode figures shared by a chip's LLM result (:mod:`npusim.llm`) and a system's
(:mod:`npusim.system.llm`): the contexts at which decode steps are simulated, the totals of
every step interpolated between them, and TPOT, tokens/s and J/token from those totals
(the definitions are in npusim.llm's docstring).
"""

from __future__ import annotations

import math

import numpy as np

from npusim.errors import MappingError

__all__ = ["DecodeFigures", "decode_contexts", "decode_totals"]


class DecodeFigures:
    """TPOT, tokens/s and J/token from a result's decode totals, shared by a chip's and a
    system's LLM result. With no decode step after the prefill (``gen`` 1) they are those of
    the first simulated step."""

    decode_samples: tuple[tuple[int, float, float], ...]
    decode_time_s: float
    decode_energy_j: float
    decode_steps: int

    @property
    def sequences(self) -> int:
        """Sequences each decode step advances by one token."""
        raise NotImplementedError

    @property
    def tpot_s(self) -> float:
        if self.decode_steps:
            return self.decode_time_s / self.decode_steps
        return self.decode_samples[0][1]

    @property
    def tokens_per_s(self) -> float:
        return self.sequences / self.tpot_s

    @property
    def j_per_token(self) -> float:
        if self.decode_steps:
            return self.decode_energy_j / (self.decode_steps * self.sequences)
        return self.decode_samples[0][2] / self.sequences


def decode_contexts(prompt: int, steps: int, points: int) -> list[int]:
    """``points`` contexts from ``prompt + 1`` to ``prompt + steps``, ends included."""
    lo, hi = prompt + 1, prompt + max(steps, 1)
    n = min(points, hi - lo + 1)
    if n == 1:
        return [(lo + hi) // 2]
    return sorted({lo + (hi - lo) * i // (n - 1) for i in range(n)})


def decode_totals(samples: tuple[tuple[int, float, float], ...], prompt: int,
                  steps: int, where: str) -> tuple[float, float]:
    """(time s, energy J) of ``steps`` decode steps at contexts ``prompt + 1`` …, each
    interpolated linearly between the simulated ``(context, latency, energy)`` samples;
    ``where`` names the run in the error when they are not finite."""
    if steps:
        every = np.arange(prompt + 1, prompt + steps + 1, dtype=float)
        xs = np.array([s[0] for s in samples], dtype=float)
        dec_t = float(np.interp(every, xs, [s[1] for s in samples]).sum())
        dec_e = float(np.interp(every, xs, [s[2] for s in samples]).sum())
    else:
        dec_t = dec_e = 0.0
    if not all(math.isfinite(v) for v in (dec_t, dec_e)):
        raise MappingError(f"{where}: the simulation gave no finite decode time")
    return dec_t, dec_e
