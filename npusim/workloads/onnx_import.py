"""Import an ONNX graph as a workload: shapes only, no weights are read.

``from_onnx(path_or_model)`` binds dynamic input dims, runs ONNX shape inference, and walks
the nodes in their (topological) order, turning each into zero or one IR layer. Weight shapes
come from the initializers' ``dims`` (external data is never loaded). ONNX is NCHW and the IR
is NHWC, but the IR holds shapes only, so only the dimension sizes are carried over.

How ONNX operators map to layers:

* ``Conv`` → ``Conv2d`` (strides, pads, dilations, groups incl. depthwise, ``auto_pad``
  SAME_UPPER/SAME_LOWER/VALID; a 1-D conv is a conv with height 1). The IR pads both sides
  equally: an odd total padding is modelled as one more input row/column and ``pad = total //
  2``, which gives the same output size and MACs. 3-D convs are unsupported.
* ``ConvTranspose`` → an equivalent ``Conv2d`` by sub-pixel (phase) decomposition, the way
  accelerators avoid multiplying inserted zeros: a transposed conv with stride ``s`` and
  kernel ``k`` equals ``s_h * s_w`` stride-1 convs over the *original* input, each with kernel
  ``ceil(k / s)``, producing one output phase each. We model them as one stride-1 conv with
  ``out_c = C_out * s_h * s_w`` and output ``ceil(O / s)``; its MACs are those of the
  transposed conv's useful products (exactly so when ``s`` divides ``k`` and ``O``).
* ``Gemm`` (transA/transB; the bias ``C`` is added in the accumulator, no layer) and
  ``MatMul`` → ``Matmul``. A constant B (initializer, ``Constant`` or constant-folded) is
  ``b_kind="weight"`` and every leading dim of A folds into ``m``; two activations give a
  batched ``Matmul`` with ``b_kind="act"`` over the broadcast batch dims; a constant A with an
  activation B is ``a_kind="weight"``.
* ``BatchNormalization`` folds into the preceding Conv/Gemm/MatMul (no layer) when that
  layer's output feeds only it and has no activation yet; otherwise it is a batchnorm ``Norm``.
  Likewise an ``Add`` of a constant bias vector (one value per output channel) and a ``Mul``
  or ``Div`` by a constant scalar (attention's 1/sqrt(d)) after such a layer fold into it, as
  ``Gemm``'s C does: the accumulator and requantization step do them.
* ``Relu``, ``Clip`` (``relu6`` when it clips to [0, 6]), ``Sigmoid``, ``Gelu``, ``Tanh``,
  ``Swish`` and the ``x * Sigmoid(x)`` pattern (silu) fuse into the preceding Conv/Matmul as
  its ``activation`` when that layer's output has a single consumer (the silu pattern's two
  uses count as one). A ``Relu`` (or relu6 ``Clip``) right after a single-consumer
  ``Add``/``Sub``/``Mul``/``Div`` layer fuses into it with no layer, as ResNet's add + ReLU in
  the built-in CNNs. Otherwise an activation is a one-input ``Elementwise``.
* ``Add/Sub/Mul/Div`` → ``Elementwise`` over the broadcast output; ``inputs=1`` when one
  operand is constant, else 2.
* ``Softmax`` → ``Softmax`` (opset < 13 flattens from ``axis`` on, as ONNX says);
  ``LayerNormalization``/``RMSNormalization`` → ``Norm``; ``MaxPool``/``AveragePool``
  (square window and stride only), ``GlobalAveragePool``, ``GlobalMaxPool`` → ``Pool``;
  ``Gather`` of a constant table by computed indices → ``Embedding``.

Free (no layer): ``Concat Reshape Transpose Flatten Squeeze Unsqueeze Identity Shape Constant
Dropout Cast Slice Split QuantizeLinear DequantizeLinear``, a ``Gather`` with constant
indices, and every node whose inputs are all constant or shape-derived (constant folding, so
``Gather``-on-shape and other shape arithmetic cost nothing). We treat ``Transpose`` and
``Concat`` as free rather than as data movement: an NPU compiler folds layout changes into the
DMA addressing of the neighbouring layers, and the IR has no copy layer to charge it to.
Activations still fuse across single-consumer layout ops (``Relu(Reshape(x))`` equals
``Reshape(Relu(x))``). Quantize/Dequantize/Cast are free because the precision of every layer
is set by the ``precision`` argument, not read from the graph.

The importer is split at its seams: loading and shape inference
(:mod:`npusim.workloads._onnx_shapes`), the walk over the graph
(:mod:`npusim.workloads._onnx_graph`) and one handler per operator
(:mod:`npusim.workloads._onnx_ops`).

Precision: conv, matmul, pool, elementwise and embedding tensors take ``precision``; softmax
and norms take ``precision`` if it is 16 bits or wider, else fp16 (an int8 NPU computes them in
a wider format on its vector unit).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np
import onnx

from npusim.errors import WorkloadError
from npusim.workloads._onnx_ops import _Importer
from npusim.workloads._onnx_shapes import _bind_inputs, _infer, _load
from npusim.workloads.ir import BITS, Workload

__all__ = ["from_onnx"]


def _batch_dim_free(model: onnx.ModelProto, dims: Mapping[str, int]) -> bool:
    """Whether some graph input has a first dim that ``batch`` fills (dynamic, not named
    in ``dims``)."""
    inits = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        shape = inp.type.tensor_type.shape
        if inp.name in inits or not shape.dim:
            continue
        d = shape.dim[0]
        if not d.HasField("dim_value") and not (d.HasField("dim_param") and d.dim_param in dims):
            return True
    return False


def from_onnx(
    path_or_model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    batch: int | None = None,
    precision: str = "int8",
    skip_unsupported: bool = False,
    dims: Mapping[str, int] | None = None,
) -> Workload:
    """Build a workload from an ONNX file or ``ModelProto`` (see the module docstring).

    ``batch`` fills the dynamic (named or unset) first dim of every graph input (default 1);
    a dim of value 0 or below is an error.
    static dims are kept, so use ``Workload.with_batch`` to scale a static-batch model.
    ``dims`` gives values for other named symbolic dims, e.g. ``{"seq": 128}``.
    Unsupported nodes raise one ``WorkloadError`` naming all of them; with
    ``skip_unsupported=True`` they are left out and one warning lists them.
    """
    if precision not in BITS:
        raise WorkloadError(f"from_onnx: unknown precision {precision!r} "
                            f"(known: {', '.join(BITS)})")
    batch = 1 if batch is None else batch
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch <= 0:
        raise WorkloadError(f"from_onnx: batch must be a positive integer, got {batch!r}")
    batch = int(batch)
    model, source, name = _load(path_or_model)
    if batch != 1 and not _batch_dim_free(model, dims or {}):
        raise WorkloadError(f"{source}: batch {batch}: no input has a dynamic first dim for it "
                            "to set (the model fixes its batch; Workload.with_batch scales it)")
    model = _infer(_bind_inputs(model, batch, dict(dims or {}), source), source)
    imp = _Importer(model, precision=precision, source=source)
    imp.run()
    if imp.unsupported:
        listing = ", ".join(f"{n!r} ({op}{': ' + why if why else ''})"
                            for n, op, why in imp.unsupported)
        count = f"{len(imp.unsupported)} unsupported ONNX node(s)"
        if not skip_unsupported:
            raise WorkloadError(f"{source}: {count}: {listing}. "
                                "Pass skip_unsupported=True to leave them out.")
        warnings.warn(f"{source}: skipped {count}: {listing}", stacklevel=2)
    if imp.errors:
        raise WorkloadError(f"{source}: " + "; ".join(imp.errors))
    if not imp.layers:
        raise WorkloadError(f"{source}: the graph has no compute layers")
    meta: dict[str, object] = {"source": "onnx", "batch": batch, "opset": imp.opset,
                               "skipped": [n for n, _, _ in imp.unsupported]}
    if not isinstance(path_or_model, onnx.ModelProto):
        meta["path"] = str(path_or_model)
    return Workload(name, tuple(imp.layers), meta)
