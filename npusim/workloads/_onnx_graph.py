"""ONNX import, part 2: the walk over a shape-inferred graph, in node order.

:class:`_GraphWalk` keeps the bookkeeping (tensor shapes, constants and shape-derived
tensors, uses, unique node names, the ``x * Sigmoid(x)`` pattern, layers open to a fused
activation) and dispatches each node that is neither constant-folded nor free to a handler
in ``handlers`` (filled by :class:`npusim.workloads._onnx_ops._Importer`).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from npusim.errors import WorkloadError
from npusim.workloads._onnx_shapes import _SMALL, Shape, _numel, _static_shape
from npusim.workloads.ir import BITS, Layer

_STD_DOMAINS = ("", "ai.onnx")
_FREE = frozenset({"Concat", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                   "Identity", "Shape", "Constant", "Dropout", "Cast", "Slice", "Split",
                   "QuantizeLinear", "DequantizeLinear"})
# Free ops with one data input through which a pending activation may still fuse.
_PASS_THROUGH = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                           "Identity", "Dropout", "Cast", "QuantizeLinear", "DequantizeLinear"})


class _Unsupported(Exception):
    """A node this importer cannot model; the message says why."""


class _GraphWalk:
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
        #: op type -> handler(node, unique name, node index)
        self.handlers: dict[str, Callable[[onnx.NodeProto, str, int], None]] = {}

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
