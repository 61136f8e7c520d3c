"""ONNX import, part 3: one handler per ONNX operator, each adding zero or one IR layer.

The mapping from operators to layers is described in :mod:`npusim.workloads.onnx_import`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
import onnx

from npusim.errors import WorkloadError
from npusim.workloads._onnx_graph import _GraphWalk, _Unsupported
from npusim.workloads._onnx_shapes import Shape, _attrs, _fit, _lift_1d, _numel, _scalar
from npusim.workloads.ir import (
    Conv2d,
    Elementwise,
    Embedding,
    Layer,
    Matmul,
    Norm,
    Pool,
    Softmax,
    TensorKind,
)

_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Gelu": "gelu", "Tanh": "tanh",
                "Clip": "clip", "Swish": "silu"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


class _Importer(_GraphWalk):
    """The graph walk with a handler for every supported operator."""

    def __init__(self, model: onnx.ModelProto, *, precision: str, source: str) -> None:
        super().__init__(model, precision=precision, source=source)
        self.handlers = {
            "Conv": self._conv, "ConvTranspose": self._conv_transpose, "Gemm": self._gemm,
            "MatMul": self._matmul, "BatchNormalization": self._batchnorm,
            "Softmax": self._softmax, "LayerNormalization": self._norm,
            "RMSNormalization": self._norm, "MaxPool": self._pool, "AveragePool": self._pool,
            "GlobalAveragePool": self._global_pool, "GlobalMaxPool": self._global_pool,
            "Gather": self._gather,
            **{op: self._activation_node for op in _ACTIVATIONS},
            **{op: self._binary for op in _BINARY},
        }

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



def _out_channels(layer: Layer) -> int:
    if isinstance(layer, Conv2d):
        return layer.out_c
    if isinstance(layer, Matmul):
        return layer.n
    return -1
