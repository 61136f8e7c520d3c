"""A serving deployment as YAML (``npusim serve - MODEL --deployment FILE``), validated like
the chip files: unknown keys, wrong types and cross-field problems are reported together,
each as ``file:line: key.path: message``.

    pool: {target: lpddr_llm, count: 2}        # unified: replicas of one target; or
    prefill_pool: {target: hbm_llm, count: 1, price_usd: 15000}
    decode_pool: {target: lpddr_llm, count: 2, tp: 1, pp: 1, price_usd: 6000}
    kv_link: {kind: pcie5_x16, lanes: 1}       # between the pools (link catalog kinds)
    router: jsq                                # round-robin, random, jsq, least-kv, prefix
    prefix_cache: {enabled: true, max_blocks: 4096}
    speculative: {tokens: 3, accept: 0.7, draft: mtp, draft_target: lpddr_llm}

Every key is optional except a pool: ``pool``, or both ``prefill_pool`` and ``decode_pool``.
``price_usd`` is per chip (else the cost file's ``card_price_usd``). ``accept`` is a number
in [0, 1] or ``uniform:LO,HI`` / ``beta:A,B``. :func:`load_deployment` gives the keyword
arguments of :func:`~npusim.serving.serve_deployed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from npusim.spec.numbers import Float, Int
from npusim.spec.yamlio import AtPaths, load_yaml, validate

__all__ = ["DeploymentFile", "load_deployment"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolSpec(_Strict):
    target: str = Field(description="chip or system preset, or a YAML path")
    count: Annotated[Int, Field(ge=1)] = 1
    tp: Annotated[Int, Field(ge=1)] = 1
    pp: Annotated[Int, Field(ge=1)] = 1
    price_usd: Annotated[Float, Field(ge=0)] | None = None


class LinkSpec(_Strict):
    kind: str = "pcie5_x16"
    lanes: Annotated[Int, Field(ge=1)] = 1


class PrefixSpec(_Strict):
    enabled: bool = True
    max_blocks: Annotated[Int, Field(ge=0)] | None = None


class SpecSpec(_Strict):
    tokens: Annotated[Int, Field(ge=1)]
    accept: Float | str = 0.7
    draft: str | None = None
    draft_target: str | None = None


class DeploymentFile(_Strict):
    pool: PoolSpec | None = None
    prefill_pool: PoolSpec | None = None
    decode_pool: PoolSpec | None = None
    kv_link: LinkSpec = LinkSpec()
    router: str = "round-robin"
    prefix_cache: PrefixSpec | None = None
    speculative: SpecSpec | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross(self) -> DeploymentFile:
        import numpy as np

        from npusim.errors import WorkloadError
        from npusim.serving.router import ROUTERS
        from npusim.serving.spec import accept_rates
        from npusim.spec.link_catalog import LINK_KINDS

        problems: list[tuple[str, str]] = []
        split = (self.prefill_pool is not None, self.decode_pool is not None)
        if self.pool is not None and any(split):
            problems.append(("pool", "give pool, or prefill_pool and decode_pool, not both"))
        elif self.pool is None and not all(split):
            where = "decode_pool" if split[0] else "prefill_pool" if split[1] else "pool"
            problems.append((where, "a deployment needs pool, or prefill_pool and "
                             "decode_pool"))
        if self.router not in ROUTERS:
            problems.append(("router", f"unknown router {self.router!r} (known: "
                             f"{', '.join(ROUTERS)})"))
        if self.kv_link.kind not in LINK_KINDS:
            problems.append(("kv_link.kind", f"unknown link kind {self.kv_link.kind!r} "
                             f"(known: {', '.join(LINK_KINDS)})"))
        if self.speculative is not None:
            try:
                accept_rates(self.speculative.accept, 1, np.random.default_rng(0))
            except WorkloadError as exc:
                problems.append(("speculative.accept", str(exc)))
        if problems:
            raise AtPaths(problems)
        return self


def load_deployment(path: str | Path) -> dict[str, Any]:
    """The keyword arguments of :func:`~npusim.serving.serve_deployed` a deployment file
    gives; errors as ``file:line: key: message``, all at once."""
    from npusim.serving.deploy import Pool

    data, lines = load_yaml(path)
    d = validate(DeploymentFile, data, lines, str(path))

    def pool(p: PoolSpec) -> Pool:
        return Pool(p.target, p.count, p.tp, p.pp, p.price_usd)

    out: dict[str, Any] = {"router": d.router, "kv_link": d.kv_link.kind,
                           "kv_lanes": d.kv_link.lanes}
    if d.pool is not None:
        out["target"] = pool(d.pool)
    else:
        assert d.prefill_pool is not None and d.decode_pool is not None
        out["prefill_pool"], out["decode_pool"] = pool(d.prefill_pool), pool(d.decode_pool)
    if d.prefix_cache is not None:
        out["prefix_cache"] = d.prefix_cache.enabled
        out["prefix_cache_blocks"] = d.prefix_cache.max_blocks
    if d.speculative is not None:
        out.update({"spec_tokens": d.speculative.tokens, "spec_accept": d.speculative.accept,
                    "draft": d.speculative.draft,
                    "draft_target": d.speculative.draft_target})
    return out
