"""ONNX import, part 1: loading a model and making its shapes static (no weights read).

Binds the dynamic dims of the graph inputs, drops the data of large initializers, runs ONNX
shape inference, and holds the small shape helpers the op handlers use. See
:mod:`npusim.workloads.onnx_import` for the whole importer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, shape_inference

from npusim.errors import WorkloadError

Shape = tuple[int, ...]

# Initializers up to this many elements keep their values (shape targets, Clip bounds).
_SMALL = 64


def _load(path_or_model: str | os.PathLike[str] | onnx.ModelProto,
          ) -> tuple[onnx.ModelProto, str, str]:
    """The model, a label for messages, and a workload name."""
    if isinstance(path_or_model, onnx.ModelProto):
        label = path_or_model.graph.name or "<onnx model>"
        return path_or_model, label, path_or_model.graph.name or "onnx"
    path = Path(os.fspath(path_or_model))
    from npusim.errors import SpecError
    from npusim.spec.yamlio import check_input_file

    try:  # a named pipe or a device is refused before onnx opens it
        check_input_file(path)
    except SpecError as exc:
        raise WorkloadError(str(exc)) from None
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
