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
"""

from __future__ import annotations

from collections.abc import Mapping

from npusim.errors import WorkloadError

__all__ = ["WEIGHT_CLASSES", "WeightsLike", "describe_weights", "parse_weights",
           "weight_precision"]

WEIGHT_CLASSES: tuple[str, ...] = ("attention", "mlp", "experts", "shared_experts", "router",
                                   "embeddings", "lm_head", "norms")

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
