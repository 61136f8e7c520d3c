"""ONNX import: models built with onnx.helper here, compared with IR built by hand."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import onnx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from npusim.errors import WorkloadError
from npusim.workloads.ir import (
    Conv2d,
    Elementwise,
    Layer,
    Matmul,
    Norm,
    Pool,
    Softmax,
)
from npusim.workloads.onnx_import import from_onnx


def _weight(name: str, dims: list[int]) -> TensorProto:
    """An initializer with dims and no data: the importer reads shapes only."""
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    return t


def _scalar(name: str, value: float) -> TensorProto:
    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


class _Graph:
    """A tiny graph builder that tracks NCHW channel counts for weight shapes."""

    def __init__(self, inp: list[int | str], opset: int = 17) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, inp)
        self.opset = opset
        self.channels: dict[str, int] = {"input": inp[1] if isinstance(inp[1], int) else 0}
        self.n = 0

    def node(self, op: str, inputs: list[str], name: str | None = None, **attrs: object) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        if inputs and inputs[0] in self.channels:
            self.channels[out] = self.channels[inputs[0]]
        return out

    def init(self, name: str, dims: list[int]) -> str:
        self.inits.append(_weight(name, dims))
        return name

    def const(self, name: str, value: float) -> str:
        self.inits.append(_scalar(name, value))
        return name

    def conv(self, x: str, name: str, out_c: int, k: int, stride: int = 1, groups: int = 1,
             bn: bool = True, relu: bool = True) -> str:
        in_c = self.channels[x]
        w = self.init(f"{name}.w", [out_c, in_c // groups, k, k])
        y = self.node("Conv", [x, w], name, strides=[stride] * 2, pads=[k // 2] * 4,
                      group=groups)
        self.channels[y] = out_c
        if bn:
            ps = [self.init(f"{name}.bn.{p}", [out_c]) for p in ("s", "b", "m", "v")]
            y = self.node("BatchNormalization", [y, *ps], f"{name}.bn")
        if relu:
            y = self.node("Relu", [y], f"{name}.relu")
        return y

    def model(self, out: str) -> onnx.ModelProto:
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, "test", [self.inp], [y], initializer=self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])


def _unnamed(layers: tuple[Layer, ...] | list[Layer]) -> list[Layer]:
    return [replace(layer, name="") for layer in layers]


def _conv(batch: int, h: int, c: int, out_c: int, k: int, stride: int = 1,
          activation: str | None = None, groups: int = 1) -> Conv2d:
    return Conv2d("", batch=batch, in_h=h, in_w=h, in_c=c, out_c=out_c, kernel_h=k,
                  kernel_w=k, stride_h=stride, stride_w=stride, pad_h=k // 2, pad_w=k // 2,
                  groups=groups, activation=activation)


# ---- whole models ---------------------------------------------------------------------


def _small_cnn() -> onnx.ModelProto:
    g = _Graph(["N", 3, 32, 32])
    x = g.conv("input", "conv1", 16, 3, stride=2)
    x = g.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    x = g.conv(x, "conv2", 32, 3, bn=False, relu=False)
    x = g.node("GlobalAveragePool", [x], "gap")
    x = g.node("Flatten", [x], "flatten", axis=1)
    w = g.init("fc.w", [10, 32])
    x = g.node("Gemm", [x, w, g.init("fc.b", [10])], "fc", transB=1)
    return g.model(x)


@pytest.mark.parametrize("batch", [1, 3])
def test_small_cnn_matches_hand_built_ir(batch: int) -> None:
    wl = from_onnx(_small_cnn(), batch=batch)
    expect = (
        _conv(batch, 32, 3, 16, 3, stride=2, activation="relu"),
        Pool("", batch=batch, in_h=16, in_w=16, channels=16, kernel=3, stride=2, padding=1,
             pool="max"),
        _conv(batch, 8, 16, 32, 3),
        Pool("", batch=batch, in_h=8, in_w=8, channels=32, pool="global_avg"),
        Matmul("", m=batch, n=10, k=32, b_kind="weight"),
    )
    assert wl.macs() == sum(layer.macs() for layer in expect)
    assert len(wl) == len(expect) == 5
    assert _unnamed(wl.layers) == list(expect)
    assert [layer.name for layer in wl.layers] == ["conv1", "pool", "conv2", "gap", "fc"]
    assert wl.meta["batch"] == batch


def _bottleneck(g: _Graph, x: str, pre: str, width: int, stride: int, project: bool) -> str:
    y = g.conv(x, f"{pre}.conv1", width, 1)
    y = g.conv(y, f"{pre}.conv2", width, 3, stride=stride)
    y = g.conv(y, f"{pre}.conv3", width * 4, 1, relu=False)
    short = g.conv(x, f"{pre}.downsample", width * 4, 1, stride=stride, relu=False) \
        if project else x
    y = g.node("Add", [y, short], f"{pre}.add")
    g.channels[y] = width * 4
    return g.node("Relu", [y], f"{pre}.relu")


def test_resnet_bottleneck_matches_hand_built_ir() -> None:
    g = _Graph([1, 64, 16, 16])
    out = _bottleneck(g, "input", "block", 32, 2, project=True)
    wl = from_onnx(g.model(out))
    expect = (
        _conv(1, 16, 64, 32, 1, activation="relu"),
        _conv(1, 16, 32, 32, 3, stride=2, activation="relu"),
        _conv(1, 8, 32, 128, 1),
        _conv(1, 16, 64, 128, 1, stride=2),
        Elementwise("", elements=8 * 8 * 128, op="add", inputs=2),
    )
    assert wl.macs() == sum(layer.macs() for layer in expect)
    assert len(wl) == 5
    assert _unnamed(wl.layers) == _unnamed(expect)


def _transformer_block(h: int, heads: int, inter: int, seq: int) -> onnx.ModelProto:
    """One BERT encoder layer as PyTorch exports it (opset 20 for Gelu)."""
    d = h // heads
    g = _Graph(["batch", seq, h], opset=20)
    x = "input"
    shape = g.node("Shape", [x], "shape")
    dims = [g.node("Unsqueeze", [g.node("Gather", [shape, g.init_int(f"i{i}", i)]),
                                 g.init_int("ax0", 0, [1])]) for i in (0, 1)]
    split = g.node("Concat", [*dims, g.init_int("hd", [heads, d], [2])], "heads_shape",
                   axis=0)

    def linear(x: str, name: str, n: int, k: int) -> str:
        y = g.node("MatMul", [x, g.init(f"{name}.w", [k, n])], name)
        return g.node("Add", [y, g.init(f"{name}.b", [n])], f"{name}.bias")

    def heads_of(x: str, perm: list[int]) -> str:
        return g.node("Transpose", [g.node("Reshape", [x, split])], perm=perm)

    q = heads_of(linear(x, "query", h, h), [0, 2, 1, 3])
    k = heads_of(linear(x, "key", h, h), [0, 2, 3, 1])
    v = heads_of(linear(x, "value", h, h), [0, 2, 1, 3])
    s = g.node("MatMul", [q, k], "scores")
    s = g.node("Div", [s, g.const("sqrt_d", math.sqrt(d))], "scale")
    p = g.node("Softmax", [s], "softmax", axis=-1)
    c = g.node("MatMul", [p, v], "context")
    c = g.node("Reshape", [g.node("Transpose", [c], perm=[0, 2, 1, 3]),
                           g.init_int("hshape", [0, 0, h], [3])])
    a = g.node("Add", [linear(c, "attn_out", h, h), x], "attn_add")
    a = g.node("LayerNormalization", [a, g.init("ln1.g", [h]), g.init("ln1.b", [h])], "ln1")
    f = g.node("Gelu", [linear(a, "inter", inter, h)], "gelu")
    o = g.node("Add", [linear(f, "out", h, inter), a], "out_add")
    o = g.node("LayerNormalization", [o, g.init("ln2.g", [h]), g.init("ln2.b", [h])], "ln2")
    return g.model(o)


def _init_int(self: _Graph, name: str, value: int | list[int],
              dims: list[int] | None = None) -> str:
    vals = value if isinstance(value, list) else [value]
    self.inits.append(helper.make_tensor(name, TensorProto.INT64, dims or [], vals))
    return name


_Graph.init_int = _init_int  # type: ignore[attr-defined]


@pytest.mark.parametrize("batch", [1, 2])
def test_transformer_block_matches_hand_built_ir(batch: int) -> None:
    h, a, inter, s = 64, 4, 256, 32
    wl = from_onnx(_transformer_block(h, a, inter, s), batch=batch)
    t, d = batch * s, h // a

    def lin(n: int, k: int, act: str | None = None) -> Matmul:
        return Matmul("", m=t, n=n, k=k, b_kind="weight", activation=act)

    def attn(m: int, n: int, k: int) -> Matmul:
        return Matmul("", batch=batch * a, m=m, n=n, k=k, b_kind="act")

    expect = [
        lin(h, h), lin(h, h), lin(h, h), attn(s, s, d),
        Softmax("", rows=batch * a * s, cols=s, precision="fp16"), attn(s, d, s), lin(h, h),
        Elementwise("", elements=t * h, op="add", inputs=2),
        Norm("", rows=t, cols=h, norm="layernorm", precision="fp16"),
        lin(inter, h, "gelu"), lin(h, inter),
        Elementwise("", elements=t * h, op="add", inputs=2),
        Norm("", rows=t, cols=h, norm="layernorm", precision="fp16"),
    ]
    assert wl.macs() == sum(layer.macs() for layer in expect)
    assert len(wl) == len(expect)
    assert _unnamed(wl.layers) == expect
    assert wl.macs() == 4 * t * h * h + 2 * batch * s * s * h + 2 * t * h * inter


def test_resnet50_graph_matches_builtin() -> None:
    cnn = pytest.importorskip("npusim.workloads.cnn")
    g = _Graph([1, 3, 224, 224])
    x = g.conv("input", "conv1", 64, 7, stride=2)
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    for s, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2),
                                                 (512, 3, 2)), start=1):
        for b in range(blocks):
            x = _bottleneck(g, x, f"layer{s}.{b}", width, stride if b == 0 else 1, b == 0)
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x], "avgpool")], axis=1)
    x = g.node("Gemm", [x, g.init("fc.w", [1000, 2048]), g.init("fc.b", [1000])], "fc",
               transB=1)
    wl = from_onnx(g.model(x))
    ref = cnn.resnet50()
    assert wl.macs() == pytest.approx(ref.macs(), rel=1e-3)
    assert len(wl) == len(ref)
    assert _unnamed(wl.layers) == _unnamed(ref.layers)


# ---- errors, skipping, files ----------------------------------------------------------


def _with_unsupported() -> onnx.ModelProto:
    g = _Graph([1, 8, 8, 8])
    x = g.conv("input", "conv", 8, 3)
    x = g.node("Erf", [x], "my_erf")
    x = g.node("LpNormalization", [x], "lpn")
    x = g.node("Sigmoid", [x], "sig")
    return g.model(x)


def test_unsupported_ops_named_in_one_error() -> None:
    with pytest.raises(WorkloadError) as err:
        from_onnx(_with_unsupported())
    msg = str(err.value)
    assert "2 unsupported" in msg
    assert "'my_erf' (Erf)" in msg and "'lpn' (LpNormalization)" in msg
    assert "skip_unsupported" in msg


def test_skip_unsupported_warns_once_and_keeps_the_rest() -> None:
    with pytest.warns(UserWarning, match="my_erf.*lpn") as record:
        wl = from_onnx(_with_unsupported(), skip_unsupported=True)
    assert len(record) == 1
    assert [layer.name for layer in wl.layers] == ["conv", "sig"]
    assert wl.layers[1] == Elementwise("sig", elements=8 * 8 * 8, op="sigmoid", inputs=1)
    assert wl.meta["skipped"] == ["my_erf", "lpn"]


def test_unsupported_configuration_is_reported() -> None:
    g = _Graph([1, 4, 8, 8, 8])
    y = g.node("Conv", ["input", g.init("w", [4, 4, 3, 3, 3])], "conv3d")
    with pytest.raises(WorkloadError, match=r"'conv3d' \(Conv: 3-D convolution\)"):
        from_onnx(g.model(y))


def test_file_round_trip_and_unreadable_files(tmp_path) -> None:
    path = tmp_path / "cnn.onnx"
    onnx.save(_small_cnn(), str(path))
    wl = from_onnx(path)
    assert wl.name == "cnn" and wl.meta["path"] == str(path)
    assert _unnamed(wl.layers) == _unnamed(from_onnx(_small_cnn()).layers)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xfe not a protobuf \x00\x01")
    with pytest.raises(WorkloadError, match=r"bad\.onnx"):
        from_onnx(bad)
    with pytest.raises(WorkloadError, match=r"missing\.onnx"):
        from_onnx(tmp_path / "missing.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(WorkloadError, match=r"empty\.onnx"):
        from_onnx(empty)


def test_dynamic_dims_and_arguments() -> None:
    g = _Graph(["N", "seq", 16])
    y = g.node("MatMul", ["input", g.init("w", [16, 8])], "proj")
    model = g.model(y)
    with pytest.raises(WorkloadError, match=r"dim 1 \(seq\)"):
        from_onnx(model)
    wl = from_onnx(model, batch=2, dims={"seq": 5})
    assert wl.layers == (Matmul("proj", m=10, n=8, k=16),)
    with pytest.raises(WorkloadError, match="precision"):
        from_onnx(model, precision="int3")
    with pytest.raises(WorkloadError, match="batch"):
        from_onnx(model, batch=0)
    fp16 = from_onnx(model, dims={"seq": 5}, precision="fp16")
    assert fp16.layers[0].act_precision == "fp16"  # type: ignore[attr-defined]


def test_layer_names_unique_with_fallback() -> None:
    g = _Graph([1, 4, 4, 4])
    x = g.node("Sigmoid", ["input"], "act")
    x = g.node("Tanh", [x], "act")
    x = g.node("Tanh", [x])
    wl = from_onnx(g.model(x))
    assert [layer.name for layer in wl.layers] == ["act", "act_1", "Tanh_2"]


# ---- operator details -----------------------------------------------------------------


def _conv_model(h: int, w: int, c: int, out_c: int, k: int, groups: int = 1,
                **attrs: object) -> onnx.ModelProto:
    g = _Graph([2, c, h, w])
    y = g.node("Conv", ["input", g.init("w", [out_c, c // groups, k, k])], "conv",
               group=groups, **attrs)
    return g.model(y)


def _onnx_out(model: onnx.ModelProto) -> tuple[int, ...]:
    inferred = onnx.shape_inference.infer_shapes(model)
    vi = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}["t1"]
    return tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(5, 20), w=st.integers(5, 20), k=st.integers(1, 4), s=st.integers(1, 3),
       d=st.integers(1, 2), pads=st.lists(st.integers(0, 2), min_size=4, max_size=4),
       auto=st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
def test_conv_geometry_matches_onnx_shapes(h, w, k, s, d, pads, auto) -> None:
    attrs: dict[str, object] = {"strides": [s, s], "dilations": [d, d], "auto_pad": auto}
    if auto == "NOTSET":
        attrs["pads"] = pads
    model = _conv_model(h, w, 4, 6, k, **attrs)
    n, oc, oh, ow = _onnx_out(model)
    assume(oh > 0 and ow > 0)  # a dilated kernel larger than the padded input is invalid
    (layer,) = from_onnx(model).layers
    assert isinstance(layer, Conv2d)
    assert (layer.out_h, layer.out_w) == (oh, ow)
    assert layer.macs() == n * oh * ow * oc * k * k * 4
    assert abs(layer.in_h - h) <= max(s, d * (k - 1) + 1)  # sizes stay near the real input


def test_depthwise_and_dilated_conv() -> None:
    (dw,) = from_onnx(_conv_model(16, 16, 32, 32, 3, groups=32, pads=[1] * 4)).layers
    assert isinstance(dw, Conv2d) and dw.depthwise and dw.macs() == 2 * 16 * 16 * 32 * 9
    (dil,) = from_onnx(_conv_model(16, 16, 8, 8, 3, dilations=[2, 2], pads=[2] * 4)).layers
    assert (dil.dilation_h, dil.out_h, dil.pad_h) == (2, 16, 2)  # type: ignore[attr-defined]


def test_conv1d_is_height_one_and_model_untouched() -> None:
    g = _Graph([1, 8, 50])
    w = np.ones((16, 8, 5), dtype=np.float32)  # real data this time: it must be ignored
    g.inits.append(onnx.numpy_helper.from_array(w, "w"))
    y = g.node("Conv", ["input", "w"], "c1d", pads=[2, 2], strides=[2])
    model = g.model(y)
    before = model.SerializeToString()
    (layer,) = from_onnx(model).layers
    assert model.SerializeToString() == before
    assert isinstance(layer, Conv2d)
    assert (layer.in_h, layer.out_h, layer.out_w, layer.kernel_h) == (1, 1, 25, 1)
    assert layer.macs() == 25 * 16 * 8 * 5


def test_conv_transpose_counts_useful_products() -> None:
    g = _Graph([1, 16, 8, 8])
    y = g.node("ConvTranspose", ["input", g.init("w", [16, 4, 4, 4])], "up", strides=[2, 2],
               pads=[1] * 4)
    (layer,) = from_onnx(g.model(y)).layers
    assert isinstance(layer, Conv2d)
    # every input pixel meets every weight once: H*W*Cin*Cout*k*k
    assert layer.macs() == 8 * 8 * 16 * 4 * 4 * 4
    assert layer.output_bytes()["act"] == 16 * 16 * 4  # the 16x16x4 output, as phases
    assert layer.stride_h == 1 and layer.out_c == 4 * 2 * 2


def test_gemm_transposes_and_matmul_kinds() -> None:
    g = _Graph([12, 5])
    y = g.node("Gemm", ["input", g.init("w", [7, 12])], "gemm", transA=1, transB=1)
    z = g.node("MatMul", [g.init("wl", [3, 5]), y], "left")  # W @ X: A is the weight
    (gemm, left) = from_onnx(g.model(z)).layers
    assert gemm == Matmul("gemm", m=5, n=7, k=12)
    assert left == Matmul("left", m=3, n=7, k=5, a_kind="weight", b_kind="act")

    g = _Graph([2, 1, 6, 4])
    other = helper.make_tensor_value_info("other", TensorProto.FLOAT, [3, 4, 5])
    y = g.node("MatMul", ["input", "other"], "bmm")
    m = g.model(y)
    m.graph.input.append(other)
    (bmm,) = from_onnx(m).layers
    assert bmm == Matmul("bmm", batch=6, m=6, n=5, k=4, b_kind="act")


def test_activation_fusion_rules() -> None:
    g = _Graph([1, 4, 8, 8])
    a = g.node("Conv", ["input", g.init("w1", [4, 4, 1, 1])], "a")
    r = g.node("Clip", [a, g.const("lo", 0.0), g.const("hi", 6.0)], "clip")
    b = g.node("Conv", [r, g.init("w2", [4, 4, 1, 1])], "b")
    t = g.node("Tanh", [b], "tanh")  # b has two consumers: not fused
    s = g.node("Add", [t, b], "sum")
    c = g.node("Conv", [s, g.init("w3", [4, 4, 1, 1])], "c")
    silu = g.node("Mul", [c, g.node("Sigmoid", [c], "sig")], "silu")
    e = g.node("Mul", [silu, g.const("two", 2.0)], "twice")  # c already has an activation
    wl = from_onnx(g.model(e))
    acts = {layer.name: getattr(layer, "activation", None) for layer in wl.layers}
    assert acts == {"a": "relu6", "b": None, "tanh": None, "sum": None, "c": "silu",
                    "twice": None}
    assert wl.layers[1] == replace(wl.layers[1], activation=None)
    assert wl.layers[2] == Elementwise("tanh", elements=256, op="tanh", inputs=1)
    assert wl.layers[5] == Elementwise("twice", elements=256, op="mul", inputs=1)


def test_batchnorm_without_conv_is_a_norm_and_softmax_old_opset() -> None:
    g = _Graph([2, 6, 3, 5], opset=11)
    ps = [g.init(f"bn.{p}", [6]) for p in "sbmv"]
    x = g.node("BatchNormalization", ["input", *ps], "bn")
    x = g.node("Softmax", [x], "sm", axis=1)  # opset < 13: flattened from axis 1 on
    wl = from_onnx(g.model(x))
    assert wl.layers == (Norm("bn", rows=30, cols=6, norm="batchnorm"),
                         Softmax("sm", rows=2, cols=90))


def test_pools_and_embedding() -> None:
    g = _Graph([1, 8, 9, 9])
    x = g.node("AveragePool", ["input"], "avg", kernel_shape=[2, 2], strides=[2, 2],
               ceil_mode=1)
    y = g.node("MaxPool", [x], "max", kernel_shape=[3, 1])
    with pytest.raises(WorkloadError, match="non-square"):
        from_onnx(g.model(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = from_onnx(g.model(y), skip_unsupported=True)
    (avg,) = wl.layers
    assert isinstance(avg, Pool) and (avg.out_h, avg.out_w) == (5, 5)

    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 7])
    emb = helper.make_node("Gather", ["table", "ids"], ["e"], name="embed")
    out = helper.make_tensor_value_info("e", TensorProto.FLOAT, None)
    graph = helper.make_graph([emb], "emb", [ids], [out], initializer=[_weight("table",
                                                                               [100, 32])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (layer,) = from_onnx(model, batch=3).layers
    assert layer.tokens == 21 and layer.hidden == 32  # type: ignore[attr-defined]


def test_numpy_constant_inputs_fold() -> None:
    # A Constant node feeding Reshape and a constant-only subgraph cost nothing.
    g = _Graph([2, 3, 4, 4])
    shape = np.array([2, 48], dtype=np.int64)
    g.nodes.append(helper.make_node("Constant", [], ["shp"], name="shp_const",
                                    value=helper.make_tensor("v", TensorProto.INT64, [2],
                                                             shape)))
    folded = g.node("Mul", [g.const("a", 2.0), g.const("b", 3.0)], "const_mul")
    x = g.node("Reshape", ["input", "shp"], "flat")
    y = g.node("Add", [x, folded], "bias_add")
    wl = from_onnx(g.model(y))
    assert wl.layers == (Elementwise("bias_add", elements=96, op="add", inputs=1),)


def test_fusion_through_layout_ops_and_unfolded_batchnorm() -> None:
    g = _Graph([2, 6, 16])
    y = g.node("MatMul", ["input", g.init("w", [16, 8])], "proj")
    y = g.node("Transpose", [g.node("Reshape", [y, g.init_int("s", [2, 48], [2])])],
               perm=[1, 0])
    y = g.node("Relu", [y], "relu")  # fuses through Reshape and Transpose
    c = g.node("Conv", [g.node("Reshape", [y, g.init_int("s4", [2, 8, 2, 3], [4])]),
                        g.init("cw", [8, 8, 1, 1])], "conv")
    ps = [g.init(f"bn.{p}", [8]) for p in "sbmv"]
    b = g.node("BatchNormalization", [c, *ps], "bn")  # conv also feeds the Add: no fold
    y = g.node("Add", [b, c], "add")
    y = g.node("Mul", [y, g.init("gain", [1, 8, 1, 1])], "gain")  # not a scalar: a layer
    wl = from_onnx(g.model(y))
    assert wl.layers[0] == Matmul("proj", m=12, n=8, k=16, activation="relu")
    assert [layer.name for layer in wl.layers] == ["proj", "conv", "bn", "add", "gain"]
    assert wl.layers[2] == Norm("bn", rows=12, cols=8, norm="batchnorm")
    assert wl.layers[4] == Elementwise("gain", elements=96, op="mul", inputs=1)
