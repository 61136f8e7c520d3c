"""Step shapes beyond plain prefill and decode: a prefill against cached context (a prefix
cache hit) and a speculative verify step, costed by npusim's own simulation.

Both are built from :func:`~npusim.workloads.llm.from_hf_config` workloads whose fused
attention layers are given a longer key range (the IR's causal attention with ``q_len <
kv_len``: the queries are the last positions):

- **prefill after a hit**: a prefill pass of the ``n`` new tokens whose attention reads
  ``past + n`` keys (the ``past`` cached tokens' K/V read from DRAM, causal over the new
  ones). Several prompts in one step are one pass of their summed new tokens against the
  token-weighted mean past (attention's work over the cached keys is linear in each past,
  so the mean gives the sum, as the decode part does with contexts);
- **verify**: ``batch`` sequences of ``k = gamma + 1`` tokens each (the LM head over every
  token, as in prefill) against their cached tokens + ``k`` keys: one pass over the weights
  for all ``batch x k`` tokens.

``fidelity table`` interpolates on lazily simulated grids: new tokens on the step table's
prefill grid by past tokens at 0, 64, 256, 1024 … (x4; for a given number of new tokens,
attention over the cached keys, its K/V reads and MACs, is linear in the past), bilinearly; verify at the step
table's batch and context points for the one ``k`` of the run. ``exact`` simulates each
shape. A synthetic step model (no chip) costs a prefill after a hit as a prefill of the new
tokens and a verify as a decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from npusim.errors import WorkloadError
from npusim.serving.steps import ExactSteps, StepModel, TableSteps, _segment, grid
from npusim.workloads.ir import Attention, Workload
from npusim.workloads.llm import from_hf_config

__all__ = ["Shapes"]


def _longer_keys(wl: Workload, past: int) -> Workload:
    layers = []
    seen = False
    for layer in wl.layers:
        if isinstance(layer, Attention):
            seen = True
            layer = replace(layer, kv_len=layer.kv_len + past, causal=True)
        layers.append(layer)
    if not seen:
        raise WorkloadError("prefix caching and speculative decoding need fused attention "
                            "(attention='fused')")
    return Workload(wl.name, tuple(layers), dict(wl.meta))


@dataclass
class Shapes:
    """Prefill-after-hit and verify costs of ``steps`` (latency s, energy J)."""

    steps: StepModel
    _cache: dict[tuple[str, int, int, int], tuple[float, float]] = field(default_factory=dict,
                                                                       repr=False)

    @property
    def exact(self) -> ExactSteps | None:
        s = self.steps
        return s if isinstance(s, ExactSteps) else s.exact if isinstance(s, TableSteps) else None

    def _sim(self, kind: str, a: int, b: int, c: int) -> tuple[float, float]:
        """kind ``p``: prefill of ``a`` tokens after ``b``; ``v``: verify of batch ``a``,
        ``c`` tokens each, at context ``b``."""
        key = (kind, a, b, c)
        if key not in self._cache:
            ex = self.exact
            assert ex is not None
            if kind == "p":
                if b == 0:
                    self._cache[key] = ex.prefill(a)
                    return self._cache[key]
                wl = _longer_keys(ex.workload("prefill", 1, a), b)
            else:
                # the scheduler's context counts the token being decoded: b - 1 are cached
                wl = _longer_keys(from_hf_config(ex.config, "prefill", batch=a, prompt_len=c,
                                                 attention=ex.attention, **ex._prec()),
                                  max(b - 1, 0))
            self._cache[key] = ex._run(wl)
        return self._cache[key]

    def prefill(self, tokens: int, past: float) -> tuple[float, float]:
        """A prefill of ``tokens`` new tokens after ``past`` cached ones."""
        ex = self.exact
        p = max(round(past), 0)
        if ex is None or p == 0:
            return self.steps.cost(tokens, 0, 0)
        if isinstance(self.steps, ExactSteps):
            return self._sim("p", tokens, p, 0)
        assert isinstance(self.steps, TableSteps)
        xs = self.steps._pre_x
        if tokens < xs[0] or len(xs) == 1:  # below the grid: exact, as TableSteps does
            return self._sim("p", tokens, p, 0)
        ps = [0.0, *[float(v) for v in grid(max(p, 256), 4.0, lo=64)]]
        i, u = _segment(xs, tokens)
        j, v = _segment(ps, p)
        return self._bilinear("p", xs, ps, i, u, j, v, 0)

    def _bilinear(self, kind: str, xs: list[float], ys: list[float], i: int, u: float,
                  j: int, v: float, c: int) -> tuple[float, float]:
        """Bilinear interpolation of simulated corners; a corner of weight 0 (a point on
        the grid) is not simulated."""
        t = e = 0.0
        for a, b, w in ((i, j, (1 - u) * (1 - v)), (i + 1, j, u * (1 - v)),
                        (i, j + 1, (1 - u) * v), (i + 1, j + 1, u * v)):
            if w:
                q = self._sim(kind, int(xs[a]), int(ys[b]), c)
                t, e = t + w * q[0], e + w * q[1]
        return t, e

    def verify(self, batch: int, k: int, context_sum: int) -> tuple[float, float]:
        """``batch`` sequences verifying ``k`` tokens each, their contexts summing to
        ``context_sum``."""
        ex = self.exact
        if ex is None or k == 1:
            return self.steps.cost(0, batch, context_sum)
        ctx = max(round(context_sum / batch), 1)
        if isinstance(self.steps, ExactSteps):
            return self._sim("v", batch, ctx, k)
        assert isinstance(self.steps, TableSteps)
        bs, cs = self.steps._b, self.steps._c
        j, v = _segment(cs, ctx)
        i, u = (0, 0.0) if len(bs) == 1 else _segment(bs, batch)
        t, e = self._bilinear("v", bs, cs, i, u, j, v, k)
        return max(t, 0.0), max(e, 0.0)

    @property
    def simulations(self) -> int:
        return getattr(self.steps, "simulations", 0) + sum(
            1 for key in self._cache if not (key[0] == "p" and key[2] == 0))




