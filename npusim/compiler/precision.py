"""The compute precision of a product: which of the array's precisions runs an activation
x weight pair, and which operands are converted on the vector unit first.

The wider of the activation and weight precisions (a float if either is one) if the array
computes it; otherwise the narrowest wider precision the array has. A chip's ``fp8``
computes both FP8 encodings, and an ``fp8`` operand runs on a chip listing one
(:func:`npusim.workloads.formats.native_key`). An FP8 encoding the array lacks converts to a
16- or 32-bit float, never to the other 8-bit encoding (their ranges differ). A block-scaled
weight (mxfp4, nvfp4) the array does not take is dequantised to the narrowest 16- or 32-bit
float it computes (bf16 before fp16 at equal width: bf16's exponent holds an E8M0 scale's
range), or to the activations' precision when that is wider.

An operand whose own precision the array does not take gets an explicit dequantize step on
the vector unit, :func:`npusim.workloads.formats.dequant_ops` ALU ops per converted value (2:
scale multiply and conversion; a block format adds one per block to decode its scale),
reported in ``mapping`` (``dequant mxfp4->bf16``); no wide enough precision is a
:class:`MappingError`.
"""

from __future__ import annotations

from npusim.errors import MappingError
from npusim.spec.arch import Chip
from npusim.workloads.formats import is_block, is_float, native_key
from npusim.workloads.ir import BITS

__all__ = ["compute_precision"]


def _converts_to(want: str, p: str) -> bool:
    """Whether a value of ``want`` may be computed in the array's precision ``p``."""
    if BITS[p] < BITS[want]:
        return False
    if is_block(want) or (is_float(want) and BITS[want] == 8):
        return is_float(p) and BITS[p] >= 16
    return is_float(p) == is_float(want) or want in ("int4", "int8")


def compute_precision(chip: Chip, act: str, weight: str, layer: str = "") -> tuple[str, list[str]]:
    """The precision the array computes ``act`` x ``weight`` in (a key of its
    ``macs_per_cycle``), and the conversions needed (``"mxfp4->bf16"``)."""
    supported = chip.cores.core.systolic.macs_per_cycle
    want = act if BITS[act] >= BITS[weight] else weight
    if (is_float(act) or is_float(weight)) and not is_float(want):
        want = act if is_float(act) else weight  # int weights under fp activations: the fp type
    # An 8-bit float or a block format the array lacks converts to 16 bits or more, even
    # beside narrower activations (fp8 activations, nvfp4 weights: bf16, not fp8).
    wide = [p for p in (act, weight) if native_key(supported, p) is None
            and (is_block(p) or (is_float(p) and BITS[p] == 8))]
    if wide and BITS[want] < 16:
        want = wide[-1]
    chosen = native_key(supported, want)
    if chosen is None:
        wider = [p for p in supported if _converts_to(want, p)]
        if not wider:
            raise MappingError(
                f"layer {layer!r}: the array computes {', '.join(supported)}; it cannot run "
                f"{act} activations with {weight} weights")
        # Narrowest first; at equal width a block format prefers bf16 (sorted is stable).
        if is_block(want):
            wider.sort(key=lambda p: p != "bf16")
        chosen = min(wider, key=lambda p: BITS[p])
    # An operand in a format the array takes natively (int4 weights beside int8
    # activations) needs no conversion; any other is converted on the vector unit.
    conv = [f"{p}->{chosen}" for p in dict.fromkeys((act, weight))
            if p != chosen and native_key(supported, p) is None]
    return chosen, conv
