"""Model builders (ResNet-50, MobileNet-V2, BERT), the built-in registry, the shipped YAML."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npusim.workloads as wl
from npusim.errors import WorkloadError
from npusim.workloads import (
    Conv2d,
    Elementwise,
    Embedding,
    Matmul,
    Norm,
    Pool,
    Softmax,
    bert,
    bert_base,
    bert_large,
    builtin,
    load_workload,
    mobilenet_v2,
    resnet50,
)

ROOT = Path(__file__).resolve().parents[1]


def _convs(w):
    return [x for x in w.layers if isinstance(x, Conv2d)]


# ResNet-50 ------------------------------------------------------------------------------

def test_resnet50_macs_match_torchvision():
    # torchvision's model card: ResNet50_Weights.IMAGENET1K_V2, 4.09 GFLOPS (multiply-adds)
    assert resnet50().macs() == pytest.approx(4.09e9, rel=0.02)


def test_resnet50_structure():
    w = resnet50()
    convs = _convs(w)
    assert len(convs) == 53  # stem + 16 bottlenecks x 3 + 4 projections
    assert sum(isinstance(x, Elementwise) and x.op == "add" for x in w.layers) == 16
    fc = w.layers[-1]
    assert isinstance(fc, Matmul) and (fc.m, fc.n, fc.k, fc.b_kind) == (1, 1000, 2048, "weight")
    pools = [x for x in w.layers if isinstance(x, Pool)]
    assert [p.pool for p in pools] == ["max", "global_avg"]
    assert (pools[1].in_h, pools[1].in_w, pools[1].channels) == (7, 7, 2048)
    by = {x.name: x for x in w.layers}
    stem = by["conv1"]
    assert (stem.kernel_h, stem.stride_h, stem.pad_h, stem.out_h) == (7, 2, 3, 112)
    # v1.5: the 3x3 conv carries the stride, the first 1x1 does not
    for s, size in ((2, 28), (3, 14), (4, 7)):
        assert by[f"layer{s}.0.conv1"].stride_h == 1
        assert by[f"layer{s}.0.conv2"].stride_h == 2
        assert by[f"layer{s}.0.conv2"].out_h == size
        ds = by[f"layer{s}.0.downsample"]
        assert ds.stride_h == 2 and ds.kernel_h == 1 and ds.out_h == size
    for c in convs:
        if c.name.endswith((".conv3", ".downsample")):
            assert c.activation is None, c.name
        else:
            assert c.activation == "relu", c.name


def test_resnet50_parameters_scale():
    one = resnet50()
    assert resnet50(batch=4).macs() == 4 * one.macs()
    small = resnet50(image=112)
    assert small.macs() < one.macs() / 3
    assert all(x.act_precision == "fp16" for x in _convs(resnet50(precision="fp16")))
    assert resnet50(batch=3) == one.with_batch(3)


# MobileNet-V2 ---------------------------------------------------------------------------

def test_mobilenet_v2_macs_and_depthwise():
    w = mobilenet_v2()
    # torchvision: MobileNet_V2_Weights.IMAGENET1K_V1, 0.30 GFLOPS (300.8 M multiply-adds)
    assert w.macs() == pytest.approx(300.8e6, rel=0.02)
    dws = [c for c in _convs(w) if c.name.endswith(".dw")]
    assert len(dws) == 17
    assert all(c.depthwise and c.groups == c.in_c == c.out_c for c in dws)
    assert all(c.activation == "relu6" for c in dws)
    assert all(c.activation is None for c in _convs(w) if c.name.endswith(".project"))
    assert sum(isinstance(x, Elementwise) for x in w.layers) == 10
    last = _convs(w)[-1]
    assert (last.in_c, last.out_c, last.in_h) == (320, 1280, 7)
    assert w.layers[-1].k == 1280


# BERT -----------------------------------------------------------------------------------

def _textbook_layer_macs(tokens, batch, seq, hidden, inter):
    # Q, K, V and output projections; QK^T and PV; the two FFN matmuls
    return 4 * tokens * hidden * hidden + 2 * batch * seq * seq * hidden + 2 * tokens * hidden * inter


@pytest.mark.parametrize("size,hidden,layers,heads,inter",
                         [("base", 768, 12, 12, 3072), ("large", 1024, 24, 16, 4096)])
def test_bert_macs_per_layer_are_textbook(size, hidden, layers, heads, inter):
    w = bert(size, seq_len=384, batch=1)
    for i in range(layers):
        got = sum(x.macs() for x in w.layers if x.name.startswith(f"layer{i}."))
        assert got == _textbook_layer_macs(384, 1, 384, hidden, inter)
    assert w.macs() == layers * _textbook_layer_macs(384, 1, 384, hidden, inter)
    assert len(w.layers) == 2 + 13 * layers


@settings(max_examples=25, deadline=None)
@given(seq=st.integers(1, 64), batch=st.integers(1, 3), heads=st.integers(1, 4),
       head_dim=st.integers(1, 16), inter=st.integers(1, 64), layers=st.integers(1, 2))
def test_bert_custom_sizes(seq, batch, heads, head_dim, inter, layers):
    hidden = heads * head_dim
    w = bert(seq_len=seq, batch=batch, hidden=hidden, heads=heads, intermediate=inter,
             layers=layers, embeddings=False)
    assert w.macs() == layers * _textbook_layer_macs(batch * seq, batch, seq, hidden, inter)
    scores = next(x for x in w.layers if x.name.endswith("scores"))
    assert (scores.batch, scores.m, scores.n, scores.k, scores.b_kind) == \
        (batch * heads, seq, seq, head_dim, "act")
    soft = next(x for x in w.layers if isinstance(x, Softmax))
    assert (soft.rows, soft.cols) == (batch * heads * seq, seq)


def test_bert_layer_kinds():
    w = bert_base(seq_len=128)
    by = {x.name: x for x in w.layers}
    assert isinstance(by["embeddings"], Embedding) and by["embeddings"].tokens == 128
    assert by["layer0.intermediate"].activation == "gelu"
    assert by["layer0.attention.query"].b_kind == "weight"
    assert by["layer0.attention.context"].b_kind == "act"
    assert isinstance(by["layer11.output.norm"], Norm) and by["layer11.output.norm"].norm == "layernorm"
    assert by["layer0.attention.softmax"].precision == "fp16"  # int8 run: softmax in fp16
    assert bert_base(precision="bf16").layers[-1].precision == "bf16"
    assert bert_large().name == "bert_large" and bert_base().name == "bert_base"
    assert len(bert_base(embeddings=False).layers) == 13 * 12


def test_bert_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        bert(hidden=100, heads=12)
    with pytest.raises(ValueError, match="size"):
        bert("huge")
    with pytest.raises(ValueError, match="seq_len"):
        bert(seq_len=0)


# Registry and package surface -----------------------------------------------------------

def test_builtin_registry():
    assert set(wl.BUILTINS) == {"resnet50", "mobilenet_v2", "bert_base", "bert_large"}
    assert builtin("resnet50", batch=2) == resnet50(batch=2)
    assert builtin("BERT-base", seq_len=64) == bert_base(seq_len=64)
    with pytest.raises(WorkloadError, match="known: resnet50"):
        builtin("vgg16")
    with pytest.raises(WorkloadError, match="resnet50"):
        builtin("resnet50", colour="red")
    with pytest.raises(WorkloadError):
        builtin("resnet50", batch=0)


def test_public_surface():
    for name in wl.__all__:
        assert hasattr(wl, name), name
    for name in ("resnet50", "mobilenet_v2", "bert", "bert_base", "bert_large",
                 "load_workload", "save_workload", "builtin", "Workload", "Conv2d"):
        assert name in wl.__all__


# Shipped YAML files ---------------------------------------------------------------------

def _generate_module():
    spec = importlib.util.spec_from_file_location("_wl_generate", ROOT / "workloads/generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("stem", ["resnet50", "mobilenet_v2", "bert_base", "bert_large"])
def test_shipped_yaml_equals_builder(stem):
    gen = _generate_module()
    path = ROOT / "workloads" / f"{stem}.yaml"
    assert path.read_text(encoding="utf-8") == gen.expected_text(stem), \
        "run `python workloads/generate.py`"
    loaded = load_workload(path)
    built = gen.build(stem)
    assert loaded == built and loaded.meta == built.meta
