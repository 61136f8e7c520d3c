"""Weight precision per tensor class: ``int8`` for all, or ``experts=mxfp4,default=bf16``.

A model's weights fall into classes by the module that holds them; a precision may be given
for each (gpt-oss ships its routed experts in MXFP4 and everything else in bf16). A plain
name applies to every class. In a mapping, ``default`` covers the classes not named; a class
neither named nor defaulted is an error when it is looked up.

=================  =========================================================================
class              weights
=================  =========================================================================
``attention``      q/k/v/o projections, MLA's down/up projections, their biases
``mlp``            a dense block's FFN (gate/up/down, fc_in/fc_out)
``experts``        the routed experts of MoE layers
``shared_experts`` the shared experts of MoE layers (and qwen2_moe's shared-expert gate)
``router``         the MoE router (gate) weights
``embeddings``     token (and position, token-type) tables
``lm_head``        the output projection (tied: the embedding table, read again)
``norms``          norm scales and biases
=================  =========================================================================

Block-scaled formats (``mxfp4``, ``nvfp4``; :mod:`npusim.workloads.formats`) are for the
classes whose weights are matmul operands: attention, mlp, experts, shared_experts, router,
lm_head. Norms and embeddings (whose gather produces rows at one precision) cannot take
one, nor can activations or the KV cache: :func:`check_precisions` says so in one line.
"""

from __future__ import annotations

from collections.abc import Mapping

from npusim.errors import WorkloadError
from npusim.workloads.formats import BITS, is_block

__all__ = ["BLOCK_CLASSES", "WEIGHT_CLASSES", "WeightsLike", "check_precisions",
           "describe_weights", "parse_weights", "weight_precision"]

WEIGHT_CLASSES: tuple[str, ...] = ("attention", "mlp", "experts", "shared_experts", "router",
                                   "embeddings", "lm_head", "norms")

#: the classes whose weights may be stored in a block-scaled format (matmul weights)
BLOCK_CLASSES: tuple[str, ...] = ("attention", "mlp", "experts", "shared_experts", "router",
                                  "lm_head")

WeightsLike = str | Mapping[str, str]


def weight_precision(weights: WeightsLike, cls: str) -> str:
    """The precision of class ``cls`` under ``weights`` (a name, or a class mapping)."""
    if cls not in WEIGHT_CLASSES:
        raise WorkloadError(f"weights: unknown tensor class {cls!r} "
                            f"(known: {', '.join(WEIGHT_CLASSES)})")
    if isinstance(weights, str):
        return weights
    if cls in weights:
        return weights[cls]
    if "default" in weights:
        return weights["default"]
    raise WorkloadError(f"weights: no precision for {cls} (name it, or give default=...)")


def parse_weights(text: str, known: tuple[str, ...] | None = None) -> WeightsLike:
    """``int8`` → ``"int8"``; ``experts=mxfp4,default=bf16`` → a mapping, each class once.

    ``known`` (precision names) checks every value; errors name the option's text."""
    text = text.strip()
    if "=" not in text and "," not in text:
        if known is not None and text not in known:
            raise WorkloadError(f"weights: unknown precision {text!r} (known: {', '.join(known)})")
        return text
    out: dict[str, str] = {}
    for part in text.split(","):
        cls, eq, prec = (x.strip() for x in part.partition("="))
        if not eq or not cls or not prec:
            raise WorkloadError(f"weights: {part.strip()!r} is not CLASS=PRECISION "
                                f"(e.g. experts=mxfp4,default=bf16)")
        if cls != "default" and cls not in WEIGHT_CLASSES:
            raise WorkloadError(f"weights: unknown tensor class {cls!r} "
                                f"(known: default, {', '.join(WEIGHT_CLASSES)})")
        if cls in out:
            raise WorkloadError(f"weights: {cls} given twice")
        if known is not None and prec not in known:
            raise WorkloadError(f"weights: unknown precision {prec!r} for {cls} "
                                f"(known: {', '.join(known)})")
        out[cls] = prec
    return out


def describe_weights(weights: WeightsLike) -> str:
    """``int8``, or ``experts=mxfp4,default=bf16`` as given (for headers and metadata)."""
    if isinstance(weights, str):
        return weights
    return ",".join(f"{k}={v}" for k, v in weights.items())


def check_precisions(weights: WeightsLike, activations: str | None = None,
                     kv: str | None = None) -> None:
    """One-line :class:`WorkloadError` for an unknown precision, or a block-scaled format
    where it cannot go: on norms or embeddings (named, or reached by a plain name or by
    ``default``), on the activations or on the KV cache."""
    known = ", ".join(BITS)
    given = {"weights": weights} if isinstance(weights, str) else dict(weights)
    for cls, p in given.items():
        if p not in BITS:
            what = "weights" if isinstance(weights, str) else f"weights: {cls}"
            raise WorkloadError(f"{what}: unknown precision {p!r} (known: {known})")
    if isinstance(weights, str):
        if is_block(weights):
            raise WorkloadError(
                f"weights: {weights} is a block-scaled format for matmul weights; norms and "
                f"embeddings need another (e.g. --weights default={weights},norms=bf16,"
                f"embeddings=bf16)")
    else:
        bad = [c for c in WEIGHT_CLASSES if c not in BLOCK_CLASSES
               and c in weights and is_block(weights[c])]
        if bad:
            raise WorkloadError(f"weights: {bad[0]}={weights[bad[0]]}: a block-scaled format "
                                f"is for matmul weights ({', '.join(BLOCK_CLASSES)})")
        dflt = weights.get("default")
        if dflt is not None and is_block(dflt):
            left = [c for c in WEIGHT_CLASSES if c not in BLOCK_CLASSES and c not in weights]
            if left:
                raise WorkloadError(
                    f"weights: default={dflt} would cover {', '.join(left)}, which cannot "
                    f"take a block-scaled format; name them (e.g. "
                    f"{','.join(f'{c}=bf16' for c in left)})")
    for name, q in (("activations", activations), ("kv", kv)):
        if q is None:
            continue
        if q not in BITS:
            raise WorkloadError(f"{name}: unknown precision {q!r} (known: {known})")
        if is_block(q):
            what = ("the KV cache is written a token at a time; npusim does not model it "
                    "in blocks" if name == "kv" else "activations are not quantised into "
                    "blocks at run time in npusim")
            raise WorkloadError(f"{name}: {q} is a block-scaled weight format; {what} "
                                f"(use fp8, int8 or int4)")
