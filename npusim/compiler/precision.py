"""The compute precision of a product: which of the array's precisions runs an activation
x weight pair, and which operands are converted on the vector unit first.

The wider of the activation and weight precisions if the array computes it; otherwise the
narrowest wider precision the array has. An operand whose own precision the array does not
take gets an explicit dequantize step on the vector unit (2 ALU ops per converted value,
reported in ``mapping``); no wide enough precision is a :class:`MappingError`.
"""

from __future__ import annotations

from npusim.errors import MappingError
from npusim.spec.arch import Chip
from npusim.workloads.ir import BITS

__all__ = ["compute_precision"]

_FP = ("fp8", "fp16", "bf16", "fp32")


def compute_precision(chip: Chip, act: str, weight: str, layer: str = "") -> tuple[str, list[str]]:
    """The precision the array computes ``act`` x ``weight`` in, and conversions needed."""
    supported = chip.cores.core.systolic.macs_per_cycle
    want = act if BITS[act] >= BITS[weight] else weight
    if (act in _FP or weight in _FP) and want not in _FP:
        want = act if act in _FP else weight  # int weights under fp activations: the fp type
    if want in supported:
        chosen = want
    else:
        wider = sorted((p for p in supported if BITS[p] >= BITS[want]
                        and ((p in _FP) == (want in _FP) or want in ("int4", "int8"))),
                       key=lambda p: BITS[p])
        if not wider:
            raise MappingError(
                f"layer {layer!r}: the array computes {', '.join(supported)}; it cannot run "
                f"{act} activations with {weight} weights")
        chosen = wider[0]
    # An operand in a format the array takes natively (int4 weights beside int8
    # activations) needs no conversion; any other is converted on the vector unit.
    conv = [f"{p}->{chosen}" for p in dict.fromkeys((act, weight))
            if p != chosen and p not in supported]
    return chosen, conv

