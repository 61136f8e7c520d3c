"""Number formats: their width in DRAM, their family, and how a chip that cannot compute one
converts it.

============  ======  =======================================================================
name          bits    what it is
============  ======  =======================================================================
``int4``      4       signed 4-bit integer (two per byte)
``int8``      8       signed 8-bit integer
``fp8``       8       an 8-bit float whose encoding is not stated: E4M3 or E5M2. In a workload
                      it is stored as one byte like either; in a chip's ``macs_per_cycle`` it
                      means the array computes both encodings at that rate (as the FP8
                      datapaths with published rates do)
``fp8_e4m3``  8       OCP OFP8 E4M3 (4 exponent bits, 3 mantissa bits; max 448): the encoding
                      FP8 inference weights and activations use
``fp8_e5m2``  8       OCP OFP8 E5M2 (5 exponent bits, 2 mantissa bits; max 57344)
``fp16``      16      IEEE binary16
``bf16``      16      bfloat16 (8 exponent bits, 7 mantissa bits)
``fp32``      32      IEEE binary32
``mxfp4``     4.25    OCP Microscaling MXFP4: blocks of 32 FP4 E2M1 elements (4 bits each)
                      share one 8-bit E8M0 scale (a power of two): 4 + 8 / 32 = 4.25 bits
``nvfp4``     4.5     NVIDIA NVFP4: blocks of 16 FP4 E2M1 elements share one FP8 E4M3 scale:
                      4 + 8 / 16 = 4.5 bits. Its second-level per-tensor FP32 scale (4 bytes
                      per tensor, not per block) is left out: under 1e-6 of a 4096 x 4096
                      weight's bytes
============  ======  =======================================================================

Sources: OCP Microscaling Formats (MX) Specification v1.0 (Open Compute Project, 2023):
MXFP4 = E2M1 elements, block size 32, E8M0 shared scale; OCP 8-bit Floating Point
Specification (OFP8) rev 1.0 (2023): E4M3 and E5M2. NVIDIA, "Introducing NVFP4 for Efficient
and Accurate Low-Precision Inference" (NVIDIA technical blog, 24 June 2025,
developer.nvidia.com/blog/introducing-nvfp4-for-efficient-and-accurate-low-precision-inference)
and the TensorRT Model
Optimizer documentation: NVFP4 = E2M1 elements, 16-element micro-blocks, an E4M3 scale per
block and an FP32 scale per tensor.

Block-scaled formats are *weight* formats here: a matmul's (or an expert's) weight operand may
be stored in one; activations, the KV cache, norms and the embedding gather (whose one
precision is also that of the rows it produces) may not — the quantisation of activations
into blocks at run time is not modelled.

A block format whose values the array cannot take is dequantised on the vector unit to the
precision the array computes (:func:`dequant_ops` per element: the scale multiply and the
conversion, 2 ALU ops, plus one op per block to decode its shared scale). Its values need
more than 8 bits to hold exactly (an E8M0 scale spans 2^-127 .. 2^127; an E4M3 scale times an
E2M1 element 2^-10 .. 2688), so it converts to a 16- or 32-bit float, never to an 8-bit one.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

__all__ = ["BITS", "BLOCK_FORMATS", "FLOAT_FORMATS", "PRECISIONS", "BlockFormat",
           "dequant_ops", "is_block", "is_float", "native_key"]


@dataclass(frozen=True)
class BlockFormat:
    """A block-scaled format: ``block`` elements of ``element_bits`` share one scale."""

    element: str
    element_bits: int
    block: int
    scale: str
    scale_bits: int

    @property
    def bits(self) -> float:
        """Storage bits per element, the shared scale included."""
        return self.element_bits + self.scale_bits / self.block


BLOCK_FORMATS: dict[str, BlockFormat] = {
    "mxfp4": BlockFormat("fp4_e2m1", 4, 32, "e8m0", 8),
    "nvfp4": BlockFormat("fp4_e2m1", 4, 16, "fp8_e4m3", 8),
}

BITS: dict[str, float] = {
    "int4": 4, "int8": 8, "fp8": 8, "fp8_e4m3": 8, "fp8_e5m2": 8, "fp16": 16, "bf16": 16,
    "fp32": 32, **{name: f.bits for name, f in BLOCK_FORMATS.items()},
}
PRECISIONS: tuple[str, ...] = tuple(BITS)

#: floating-point formats (block formats included: their elements are FP4)
FLOAT_FORMATS: tuple[str, ...] = ("fp8", "fp8_e4m3", "fp8_e5m2", "fp16", "bf16", "fp32",
                                  *BLOCK_FORMATS)

# The 8-bit float names one chip key may stand for (see the module docstring).
_FP8_ENCODINGS = ("fp8_e4m3", "fp8_e5m2")


def is_block(precision: str) -> bool:
    """Whether ``precision`` is a block-scaled format (mxfp4, nvfp4)."""
    return precision in BLOCK_FORMATS


def is_float(precision: str) -> bool:
    return precision in FLOAT_FORMATS


def native_key(computes: Container[str], precision: str) -> str | None:
    """The key of a chip's ``macs_per_cycle`` (``computes``, any container of names) under
    which the array computes ``precision``, or None. ``fp8`` on the chip covers both FP8
    encodings; an ``fp8`` operand runs on a chip listing one encoding (E4M3 first)."""
    have = computes
    if precision in have:
        return precision
    if precision in _FP8_ENCODINGS and "fp8" in have:
        return "fp8"
    if precision == "fp8":
        for enc in _FP8_ENCODINGS:
            if enc in have:
                return enc
    return None


def dequant_ops(precision: str) -> float:
    """Vector ALU ops to convert one stored value of ``precision`` to the compute precision:
    a scale multiply and a conversion (2), plus, for a block format, one op per block to
    decode the shared scale, spread over the block's elements."""
    f = BLOCK_FORMATS.get(precision)
    return 2.0 + (1.0 / f.block if f is not None else 0.0)
