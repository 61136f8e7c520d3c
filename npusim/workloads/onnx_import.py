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

Precision: conv, matmul, pool, elementwise and embedding tensors take ``precision``; softmax
and norms take ``precision`` if it is 16 bits or wider, else fp16 (an int8 NPU computes them in
a wider format on its vector unit).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from npusim.errors import WorkloadError
from npusim.workloads.ir import (
    BITS,
    Conv2d,
    Elementwise,
    Embedding,
    Layer,
    Matmul,
    Norm,
    Pool,
    Softmax,
    TensorKind,
    Workload,
)

__all__ = ["from_onnx"]

Shape = tuple[int, ...]

_STD_DOMAINS = ("", "ai.onnx")
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Gelu": "gelu", "Tanh": "tanh",
                "Clip": "clip", "Swish": "silu"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_FREE = frozenset({"Concat", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                   "Identity", "Shape", "Constant", "Dropout", "Cast", "Slice", "Split",
                   "QuantizeLinear", "DequantizeLinear"})
# Free ops with one data input through which a pending activation may still fuse.
_PASS_THROUGH = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                           "Identity", "Dropout", "Cast", "QuantizeLinear", "DequantizeLinear"})


# Initializers up to this many elements keep their values (shape targets, Clip bounds).
_SMALL = 64


class _Unsupported(Exception):
    """A node this importer cannot model; the message says why."""


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


def _load(path_or_model: str | os.PathLike[str] | onnx.ModelProto,
          ) -> tuple[onnx.ModelProto, str, str]:
    """The model, a label for messages, and a workload name."""
    if isinstance(path_or_model, onnx.ModelProto):
        label = path_or_model.graph.name or "<onnx model>"
        return path_or_model, label, path_or_model.graph.name or "onnx"
    path = Path(os.fspath(path_or_model))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises OSError, DecodeError, ... depending on the fault
        raise WorkloadError(f"{path}: cannot read ONNX model ({type(e).__name__}: {e})") from e
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise WorkloadError(f"{path}: not an ONNX model (no IR version or graph)")
    return model, str(path), path.stem


def _bind_inputs(model: onnx.ModelProto, batch: int, dims: dict[str, int],
                 source: str) -> onnx.ModelProto:
    """A light copy with every graph input's dims static; stale inner shapes are dropped."""
    m = _shape_only_copy(model)
    inits = {t.name for t in m.graph.initializer}
    problems: list[str] = []
    for inp in m.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or not tt.HasField("shape"):
            problems.append(f"input {inp.name!r} has no tensor shape")
            continue
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if d.HasField("dim_value"):  # a dynamic dim has a name or nothing, never a value
                problems.append(f"input {inp.name!r} dim {i} is {d.dim_value}: a size must "
                                f"be positive")
                continue
            label = d.dim_param if d.HasField("dim_param") else ""
            if label and label in dims:
                value = dims[label]
            elif i == 0:
                value = batch
            else:
                problems.append(f"input {inp.name!r} dim {i} ({label or '?'}) is dynamic; "
                                f"give it with dims={{{label or 'name'!r}: size}}")
                continue
            if int(value) <= 0:
                problems.append(f"input {inp.name!r} dim {i} ({label or '?'}) given as "
                                f"{value}: a size must be positive")
                continue
            d.Clear()
            d.dim_value = int(value)
    if problems:
        raise WorkloadError(f"{source}: " + "; ".join(problems))
    del m.graph.value_info[:]
    for out in m.graph.output:
        out.type.tensor_type.ClearField("shape")
    return m


def _shape_only_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without the data of large initializers: inference needs only their dims (and
    the values of small ones such as Reshape targets), and this keeps a multi-GB model from
    being copied and serialized again (protobuf stops at 2 GB)."""
    m = onnx.ModelProto()
    m.ir_version = model.ir_version
    m.opset_import.extend(model.opset_import)
    m.functions.extend(model.functions)
    src, g = model.graph, m.graph
    g.name = src.name
    for part in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(g, part).extend(getattr(src, part))
    for t in src.initializer:
        if math.prod(t.dims) <= _SMALL:
            g.initializer.append(t)
        else:
            g.initializer.append(onnx.TensorProto(name=t.name, data_type=t.data_type,
                                                  dims=t.dims))
    return m


def _infer(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                            data_prop=True)
    except Exception as e:  # InferenceError, ValidationError, ...
        raise WorkloadError(f"{source}: ONNX shape inference failed: {e}") from e


def _static_shape(t: onnx.TypeProto) -> Shape | None:
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    out = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        out.append(int(d.dim_value))
    return tuple(out)


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _fit(in_: int, out: int, k_eff: int, stride: int, total_pad: int,
         pad: int | None = None) -> tuple[int, int]:
    """(input size, symmetric pad) for which the IR's floor formula gives ``out``.

    The padding beyond ``2 * pad`` becomes extra input rows; if the result still misses
    ``out`` (ceil_mode, rows the window never reaches), the input is sized from ``out``.
    """
    pad = total_pad // 2 if pad is None else pad
    in_eff = in_ + total_pad - 2 * pad
    if (in_eff + 2 * pad - k_eff) // stride + 1 != out:
        in_eff = (out - 1) * stride + k_eff - 2 * pad
        if in_eff < 1:
            pad, in_eff = 0, (out - 1) * stride + k_eff
    return in_eff, pad


class _Importer:
    """One pass over a shape-inferred graph, building layers and collecting problems."""

    def __init__(self, model: onnx.ModelProto, *, precision: str, source: str) -> None:
        self.g = model.graph
        self.source = source
        self.precision = precision
        self.vprec = precision if BITS[precision] >= 16 else "fp16"
        self.opset = next((o.version for o in model.opset_import if o.domain in _STD_DOMAINS),
                          1)
        self.layers: list[Layer] = []
        self.unsupported: list[tuple[str, str, str]] = []
        self.errors: list[str] = []
        self.fusable: dict[str, int] = {}  # tensor -> layer whose linear output it is
        self.elementwise_out: dict[str, int] = {}  # tensor -> Elementwise layer making it
        self.shapes: dict[str, Shape] = {}
        for vi in [*self.g.input, *self.g.value_info, *self.g.output]:
            s = _static_shape(vi.type)
            if s is not None:
                self.shapes[vi.name] = s
        self.static: set[str] = set()  # constants and shape-derived tensors
        self.values: dict[str, np.ndarray] = {}  # small constants we may need (Clip bounds)
        for t in self.g.initializer:
            self.shapes[t.name] = tuple(int(d) for d in t.dims)
            self.static.add(t.name)
            if _numel(tuple(t.dims)) <= _SMALL and t.data_location != onnx.TensorProto.EXTERNAL:
                # A shape-only initializer (no data) has no value to read.
                with contextlib.suppress(ValueError, TypeError):
                    self.values[t.name] = numpy_helper.to_array(t)
        self.uses: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.g.node):
            for t in node.input:
                if t:
                    self.uses[t].append(i)
        for out in self.g.output:
            self.uses[out.name].append(-1)
        self.names = self._node_names()
        self.silu_mul: dict[int, str] = {}  # Mul node index -> x of x * sigmoid(x)
        self.absorbed: set[int] = set()  # Sigmoid nodes taken into a silu
        self._find_silu()
        self.handlers: dict[str, Callable[[onnx.NodeProto, str, int], None]] = {
            "Conv": self._conv, "ConvTranspose": self._conv_transpose, "Gemm": self._gemm,
            "MatMul": self._matmul, "BatchNormalization": self._batchnorm,
            "Softmax": self._softmax, "LayerNormalization": self._norm,
            "RMSNormalization": self._norm, "MaxPool": self._pool, "AveragePool": self._pool,
            "GlobalAveragePool": self._global_pool, "GlobalMaxPool": self._global_pool,
            "Gather": self._gather,
            **{op: self._activation_node for op in _ACTIVATIONS},
            **{op: self._binary for op in _BINARY},
        }

    # ---- bookkeeping -------------------------------------------------------------------

    def _node_names(self) -> list[str]:
        seen: set[str] = set()
        names = []
        for i, node in enumerate(self.g.node):
            base = node.name or f"{node.op_type}_{i}"
            name, k = base, 1
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            seen.add(name)
            names.append(name)
        return names

    def _find_silu(self) -> None:
        for i, node in enumerate(self.g.node):
            if node.op_type != "Sigmoid" or node.domain not in _STD_DOMAINS:
                continue
            x, y = node.input[0], node.output[0]
            if len(self.uses[y]) != 1 or self.uses[y][0] < 0:
                continue
            j = self.uses[y][0]
            mul = self.g.node[j]
            if mul.op_type == "Mul" and sorted(mul.input) == sorted([x, y]):
                self.silu_mul[j] = x
                self.absorbed.add(i)

    def shape(self, tensor: str) -> Shape:
        s = self.shapes.get(tensor)
        if s is None:
            raise WorkloadError(f"shape of tensor {tensor!r} is unknown after shape inference")
        return s

    def add(self, layer_fn: Callable[[], Layer], name: str, op: str) -> int:
        try:
            layer = layer_fn()
        except ValueError as e:
            raise WorkloadError(f"node {name!r} ({op}): {e}") from e
        self.layers.append(layer)
        return len(self.layers) - 1

    def _open_layer(self, tensor: str, uses: int = 1) -> int | None:
        """The layer whose pre-activation output ``tensor`` is, if it can take a fusion."""
        idx = self.fusable.get(tensor)
        if idx is None or len(self.uses[tensor]) != uses or -1 in self.uses[tensor]:
            return None
        if getattr(self.layers[idx], "activation", "x") is not None:
            return None
        return idx

    def run(self) -> None:
        for i, node in enumerate(self.g.node):
            name, op = self.names[i], node.op_type
            data_in = [t for t in node.input if t]
            if not data_in or all(t in self.static for t in data_in) or op == "Shape":
                self.static.update(node.output)  # constant-folded at compile time
                if op == "Constant":
                    self._constant(node)
                continue
            if i in self.absorbed:
                continue
            gelu_ms = op == "Gelu" and node.domain == "com.microsoft"
            if node.domain not in _STD_DOMAINS and not gelu_ms:
                self.unsupported.append((name, f"{node.domain}.{op}", "custom domain"))
                continue
            if op in _FREE:
                if op in _PASS_THROUGH and node.output:
                    idx = self._open_layer(node.input[0])
                    if idx is not None:
                        self.fusable[node.output[0]] = idx
                continue
            handler = self.handlers.get(op)
            if handler is None:
                self.unsupported.append((name, op, ""))
                continue
            try:
                handler(node, name, i)
            except _Unsupported as e:
                self.unsupported.append((name, op, str(e)))
            except WorkloadError as e:
                msg = str(e)
                self.errors.append(msg if msg.startswith("node ") else f"node {name!r}: {msg}")

    def _constant(self, node: onnx.NodeProto) -> None:
        for a in node.attribute:
            if a.name == "value":
                arr = numpy_helper.to_array(a.t)
            elif a.name in ("value_float", "value_int", "value_floats", "value_ints"):
                arr = np.asarray(helper.get_attribute_value(a))
            else:
                continue
            self.shapes[node.output[0]] = tuple(arr.shape)
            if arr.size <= _SMALL:
                self.values[node.output[0]] = arr

    # ---- handlers ----------------------------------------------------------------------

    def _conv_geometry(self, node: onnx.NodeProto, xs: Shape, ks: Shape,
                       ) -> tuple[list[int], list[int], list[int]]:
        """Strides, dilations and total padding per spatial dim."""
        r = len(ks)
        at = _attrs(node)
        strides = list(at.get("strides", [1] * r))
        dil = list(at.get("dilations", [1] * r))
        auto = at.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            totals = []
            for i in range(r):
                k_eff = dil[i] * (ks[i] - 1) + 1
                out = -(-xs[2 + i] // strides[i])
                totals.append(max(0, (out - 1) * strides[i] + k_eff - xs[2 + i]))
        elif auto == "VALID":
            totals = [0] * r
        else:
            pads = list(at.get("pads", [0] * (2 * r)))
            totals = [pads[i] + pads[i + r] for i in range(r)]
        return strides, dil, totals

    def _spatial(self, node: onnx.NodeProto, name: str, what: str,
                 ) -> tuple[Shape, Shape, Shape | None]:
        """Input, weight and output shapes with 1-D ops lifted to 2-D (height 1)."""
        xs, ws = self.shape(node.input[0]), self.shape(node.input[1])
        ys = self.shapes.get(node.output[0])
        if len(xs) == 3 and len(ws) == 3:
            xs, ws = (*xs[:2], 1, xs[2]), (*ws[:2], 1, ws[2])
            ys = None if ys is None else (*ys[:2], 1, ys[2])
            _lift_1d(node)
        elif len(xs) != 4 or len(ws) != 4:
            raise _Unsupported(f"{len(xs) - 2}-D {what}")
        return xs, ws, ys

    def _conv(self, node: onnx.NodeProto, name: str, i: int) -> None:
        xs, ws, ys = self._spatial(node, name, "convolution")
        groups = int(_attrs(node).get("group", 1))
        (sh, sw), (dh, dw), (th, tw) = self._conv_geometry(node, xs, ws[2:])
        kh, kw = ws[2], ws[3]
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        oh = ys[2] if ys else (xs[2] + th - eh) // sh + 1
        ow = ys[3] if ys else (xs[3] + tw - ew) // sw + 1
        in_h, pad_h = _fit(xs[2], oh, eh, sh, th)
        in_w, pad_w = _fit(xs[3], ow, ew, sw, tw)
        p = self.precision
        idx = self.add(lambda: Conv2d(
            name, batch=xs[0], in_h=in_h, in_w=in_w, in_c=xs[1], out_c=ws[0], kernel_h=kh,
            kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=pad_h, pad_w=pad_w, dilation_h=dh,
            dilation_w=dw, groups=groups, act_precision=p, weight_precision=p,
            out_precision=p), name, "Conv")
        self.fusable[node.output[0]] = idx

    def _conv_transpose(self, node: onnx.NodeProto, name: str, i: int) -> None:
        xs, ws, ys = self._spatial(node, name, "transposed convolution")
        groups = int(_attrs(node).get("group", 1))
        strides, dil, _ = self._conv_geometry(node, xs, ws[2:])
        if ys is None:
            raise WorkloadError(f"node {name!r} (ConvTranspose): output shape unknown")
        geo = []
        for d in range(2):
            s, k_eff = strides[d], dil[d] * (ws[2 + d] - 1) + 1
            k = -(-k_eff // s)
            out = -(-ys[2 + d] // s)
            total = out - 1 + k - xs[2 + d]
            in_eff, pad = _fit(xs[2 + d], out, k, 1, max(total, 0))
            geo.append((in_eff, pad, k))
        (in_h, pad_h, kh), (in_w, pad_w, kw) = geo
        p = self.precision
        idx = self.add(lambda: Conv2d(
            name, batch=xs[0], in_h=in_h, in_w=in_w, in_c=xs[1],
            out_c=ws[1] * groups * strides[0] * strides[1], kernel_h=kh, kernel_w=kw,
            pad_h=pad_h, pad_w=pad_w, groups=groups, act_precision=p, weight_precision=p,
            out_precision=p), name, "ConvTranspose")
        self.fusable[node.output[0]] = idx

    def _matmul_layer(self, name: str, op: str, out: str, *, batch: int, m: int, n: int,
                      k: int, a_const: bool, b_const: bool) -> None:
        a_kind: TensorKind = "weight" if a_const and not b_const else "act"
        b_kind: TensorKind = "weight" if b_const else "act"
        p = self.precision
        idx = self.add(lambda: Matmul(
            name, batch=batch, m=m, n=n, k=k, a_kind=a_kind, b_kind=b_kind,
            act_precision=p, weight_precision=p, out_precision=p), name, op)
        self.fusable[out] = idx

    def _gemm(self, node: onnx.NodeProto, name: str, i: int) -> None:
        at = _attrs(node)
        a, b = self.shape(node.input[0]), self.shape(node.input[1])
        if len(a) != 2 or len(b) != 2:
            raise WorkloadError(f"node {name!r} (Gemm): A and B must be 2-D, got {a} and {b}")
        m, k = (a[1], a[0]) if at.get("transA", 0) else a
        k2, n = (b[1], b[0]) if at.get("transB", 0) else b
        if k != k2:
            raise WorkloadError(f"node {name!r} (Gemm): inner dims differ ({k} vs {k2})")
        self._matmul_layer(name, "Gemm", node.output[0], batch=1, m=m, n=n, k=k,
                           a_const=node.input[0] in self.static,
                           b_const=node.input[1] in self.static)

    def _matmul(self, node: onnx.NodeProto, name: str, i: int) -> None:
        a, b = self.shape(node.input[0]), self.shape(node.input[1])
        a = (1, *a) if len(a) == 1 else a
        b = (*b, 1) if len(b) == 1 else b
        m, k = a[-2:]
        k2, n = b[-2:]
        if k != k2:
            raise WorkloadError(f"node {name!r} (MatMul): inner dims differ ({a} @ {b})")
        a_const, b_const = node.input[0] in self.static, node.input[1] in self.static
        if b_const and _numel(b[:-2]) == 1:  # a linear layer: A's leading dims are rows
            batch, m = 1, _numel(a[:-1])
        elif a_const and _numel(a[:-2]) == 1:  # W @ X: one product per batch entry of X
            batch = _numel(b[:-2])
        else:
            batch = _numel(tuple(np.broadcast_shapes(a[:-2], b[:-2])))
        self._matmul_layer(name, "MatMul", node.output[0], batch=batch, m=m, n=n, k=k,
                           a_const=a_const, b_const=b_const)

    def _batchnorm(self, node: onnx.NodeProto, name: str, i: int) -> None:
        idx = self._open_layer(node.input[0])
        if idx is not None:  # scale and shift fold into the weights and bias
            self.fusable[node.output[0]] = idx
            return
        s = self.shape(node.input[0])
        c = s[1] if len(s) > 1 else 1
        self.add(lambda: Norm(name, rows=_numel(s) // c, cols=c, norm="batchnorm",
                              precision=self.vprec), name, "BatchNormalization")

    def _activation_node(self, node: onnx.NodeProto, name: str, i: int) -> None:
        act = _ACTIVATIONS[node.op_type]
        if node.op_type == "Clip":
            act = self._clip_kind(node)
        self._activate(name, node.input[0], node.output[0], act, uses=1)

    def _activate(self, name: str, x: str, out: str, act: str, uses: int) -> None:
        idx = self._open_layer(x, uses)
        if idx is not None:
            self.layers[idx] = replace(self.layers[idx], activation=act)  # type: ignore[call-arg]
            return
        if act in ("relu", "relu6") and x in self.elementwise_out and len(self.uses[x]) == 1 \
                and self.uses[x][0] >= 0:
            # Fused into the elementwise op before it (ResNet's add + ReLU), as the built-in
            # CNNs do: its one ALU op per element is not counted separately.
            return
        self.add(lambda: Elementwise(name, elements=_numel(self.shape(out)), op=act,
                                     inputs=1, precision=self.precision), name, act)

    def _clip_kind(self, node: onnx.NodeProto) -> str:
        at = _attrs(node)
        lo, hi = at.get("min"), at.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = self.values.get(node.input[1])
        if len(node.input) > 2 and node.input[2]:
            hi = self.values.get(node.input[2])
        if lo is not None and hi is not None and _scalar(lo) == 0.0 and _scalar(hi) == 6.0:
            return "relu6"
        return "clip"

    def _binary(self, node: onnx.NodeProto, name: str, i: int) -> None:
        if i in self.silu_mul:
            self._activate(name, self.silu_mul[i], node.output[0], "silu", uses=2)
            return
        consts = [t in self.static for t in node.input]
        if sum(consts) == 1 and len(node.input) == 2:
            x, c = node.input[consts.index(False)], node.input[consts.index(True)]
            idx = self._open_layer(x)
            n_c = _numel(self.shape(c))
            # A bias add or a constant scale of a linear layer's output is done by its
            # accumulator / requantization step (as Gemm's C): no layer.
            bias = idx is not None and node.op_type == "Add" and \
                n_c == _out_channels(self.layers[idx])
            scale = node.op_type == "Mul" or (node.op_type == "Div" and c == node.input[1])
            if idx is not None and (bias or (scale and n_c == 1)):
                self.fusable[node.output[0]] = idx
                return
        inputs = max(1, len(node.input) - sum(consts))
        idx = self.add(lambda: Elementwise(name, elements=_numel(self.shape(node.output[0])),
                                           op=_BINARY[node.op_type], inputs=inputs,
                                           precision=self.precision), name, node.op_type)
        self.elementwise_out[node.output[0]] = idx

    def _softmax(self, node: onnx.NodeProto, name: str, i: int) -> None:
        s = self.shape(node.input[0])
        axis = int(_attrs(node).get("axis", -1 if self.opset >= 13 else 1)) % len(s)
        cols = s[axis] if self.opset >= 13 else _numel(s[axis:])
        self.add(lambda: Softmax(name, rows=_numel(s) // cols, cols=cols,
                                 precision=self.vprec), name, "Softmax")

    def _norm(self, node: onnx.NodeProto, name: str, i: int) -> None:
        s = self.shape(node.input[0])
        axis = int(_attrs(node).get("axis", -1)) % len(s)
        cols = _numel(s[axis:])
        kind: Literal["layernorm", "rmsnorm"] = (
            "layernorm" if node.op_type == "LayerNormalization" else "rmsnorm")
        self.add(lambda: Norm(name, rows=_numel(s) // cols, cols=cols, norm=kind,
                              precision=self.vprec), name, node.op_type)

    def _pool(self, node: onnx.NodeProto, name: str, i: int) -> None:
        xs, ys = self.shape(node.input[0]), self.shape(node.output[0])
        at = _attrs(node)
        ks: Shape = tuple(at.get("kernel_shape", ()))
        if len(xs) != 4 or len(ks) != 2:
            raise _Unsupported(f"{len(xs) - 2}-D pooling (the IR pools 2-D windows)")
        strides, dil, (th, tw) = self._conv_geometry(node, xs, ks)
        if ks[0] != ks[1] or strides[0] != strides[1]:
            raise _Unsupported("non-square window or stride")
        if dil != [1, 1]:
            raise _Unsupported("dilated pooling")
        k, s = ks[0], strides[0]
        pad = min(th // 2, tw // 2)
        in_h, pad = _fit(xs[2], ys[2], k, s, th, pad)
        in_w, pad_w = _fit(xs[3], ys[3], k, s, tw, pad)
        if pad_w != pad:  # _fit gave up on the shared pad; size both dims unpadded
            in_h, pad = _fit(xs[2], ys[2], k, s, th, 0)
            in_w, _ = _fit(xs[3], ys[3], k, s, tw, 0)
        kind: Literal["max", "avg"] = "max" if node.op_type == "MaxPool" else "avg"
        self.add(lambda: Pool(name, batch=xs[0], in_h=in_h, in_w=in_w, channels=xs[1],
                              kernel=k, stride=s, padding=pad, pool=kind,
                              precision=self.precision), name, node.op_type)

    def _global_pool(self, node: onnx.NodeProto, name: str, i: int) -> None:
        xs = self.shape(node.input[0])
        if len(xs) not in (3, 4):
            raise _Unsupported(f"{len(xs) - 2}-D pooling")
        h, w = (1, xs[2]) if len(xs) == 3 else xs[2:]
        kind: Literal["max", "global_avg"]
        k: int | None
        if node.op_type == "GlobalAveragePool":
            kind, k = "global_avg", None
        elif h == w:
            kind, k = "max", h
        else:
            raise _Unsupported("global max pooling over a non-square map")
        self.add(lambda: Pool(name, batch=xs[0], in_h=h, in_w=w, channels=xs[1], kernel=k,
                              stride=1, pool=kind, precision=self.precision), name,
                 node.op_type)

    def _gather(self, node: onnx.NodeProto, name: str, i: int) -> None:
        data, indices = node.input[0], node.input[1]
        if indices in self.static:
            return  # selecting fixed rows of an activation is a view
        if data not in self.static or int(_attrs(node).get("axis", 0)) != 0:
            raise _Unsupported("gather of activations by computed indices")
        ds = self.shape(data)
        tokens, hidden = _numel(self.shape(indices)), _numel(ds[1:])
        self.add(lambda: Embedding(name, tokens=tokens, hidden=hidden,
                                   precision=self.precision), name, "Gather")


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scalar(v: object) -> float:
    return float(np.asarray(v).reshape(-1)[0])


def _lift_1d(node: onnx.NodeProto) -> None:
    """Rewrite a 1-D conv's attributes in place (on our private copy) as 2-D, height 1."""
    at = _attrs(node)
    new = []
    for key, pad_width in (("strides", 1), ("dilations", 1), ("kernel_shape", 1)):
        if key in at:
            new.append(helper.make_attribute(key, [pad_width, *at[key]]))
    if "pads" in at:
        b, e = at["pads"]
        new.append(helper.make_attribute("pads", [0, b, 0, e]))
    keep = [a for a in node.attribute if a.name not in {"strides", "dilations",
                                                         "kernel_shape", "pads"}]
    del node.attribute[:]
    node.attribute.extend(keep + new)


def _out_channels(layer: Layer) -> int:
    if isinstance(layer, Conv2d):
        return layer.out_c
    if isinstance(layer, Matmul):
        return layer.n
    return -1
