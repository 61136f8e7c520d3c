"""The YAML workload format: round trips, shorthands, atomic saving, and every bad input."""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npusim.errors import SpecError
from npusim.spec.workload import dump_workload, load_workload, loads_workload, save_workload
from npusim.workloads import (
    BLOCK_FORMATS,
    PRECISIONS,
    Conv2d,
    Elementwise,
    Embedding,
    Matmul,
    Norm,
    Pool,
    Softmax,
    Workload,
    bert,
    mobilenet_v2,
    resnet50,
)


def _load(text: str) -> Workload:
    return loads_workload(textwrap.dedent(text).lstrip("\n"), "w.yaml")


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        _load(text)
    return info.value


def _where(err: SpecError) -> dict[str, int | None]:
    return {i.path: i.line for i in err.issues}


# Round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda: resnet50(batch=2, image=64),
    lambda: mobilenet_v2(image=96, precision="fp16"),
    lambda: bert("base", seq_len=16, layers=2),
], ids=["resnet50", "mobilenet_v2", "bert"])
def test_builder_round_trip(build, tmp_path):
    w = build()
    path = tmp_path / "w.yaml"
    save_workload(w, path)
    back = load_workload(path)
    assert back == w
    assert back.meta == w.meta
    assert back.macs() == w.macs()


_dims = st.integers(1, 9)


@st.composite
def _layers(draw):
    kind = draw(st.sampled_from(["conv", "matmul", "ew", "softmax", "norm", "pool", "emb"]))
    # A block-scaled format (mxfp4, nvfp4) is a weight precision only.
    p = draw(st.sampled_from([q for q in PRECISIONS if q not in BLOCK_FORMATS]))
    if kind == "conv":
        k = draw(st.integers(1, 3))
        g = draw(st.sampled_from([1, 2]))
        return Conv2d("x", batch=draw(_dims), in_h=draw(st.integers(3, 12)),
                      in_w=draw(st.integers(3, 12)), in_c=2 * draw(_dims), out_c=2 * draw(_dims),
                      kernel_h=k, kernel_w=draw(st.integers(1, 3)),
                      stride_h=draw(st.integers(1, 2)), stride_w=draw(st.integers(1, 2)),
                      pad_h=draw(st.integers(0, 1)), pad_w=draw(st.integers(0, 1)), groups=g,
                      activation=draw(st.sampled_from([None, "relu", "gelu"])),
                      act_precision=p, weight_precision=draw(st.sampled_from(PRECISIONS)))
    if kind == "matmul":
        b_kind = draw(st.sampled_from(["act", "weight", "kv"]))
        w = draw(st.sampled_from(PRECISIONS)) if b_kind == "weight" else p
        return Matmul("x", batch=draw(_dims), m=draw(_dims), n=draw(_dims), k=draw(_dims),
                      b_kind=b_kind, out_kind=draw(st.sampled_from(["act", "kv"])),
                      weight_precision=w)
    if kind == "ew":
        return Elementwise("x", elements=draw(_dims), op=draw(st.sampled_from(["add", "mul", "silu"])),
                           inputs=draw(st.integers(1, 3)), precision=p)
    if kind == "softmax":
        return Softmax("x", rows=draw(_dims), cols=draw(_dims), precision=p)
    if kind == "norm":
        return Norm("x", rows=draw(_dims), cols=draw(_dims),
                    norm=draw(st.sampled_from(["layernorm", "rmsnorm", "batchnorm"])), precision=p)
    if kind == "pool":
        return Pool("x", batch=draw(_dims), in_h=draw(st.integers(3, 9)), in_w=draw(st.integers(3, 9)),
                    channels=draw(_dims), kernel=draw(st.integers(1, 3)), stride=draw(st.integers(1, 2)),
                    padding=draw(st.integers(0, 1)),
                    pool=draw(st.sampled_from(["max", "avg", "global_avg"])), precision=p)
    return Embedding("x", tokens=draw(_dims), hidden=draw(_dims), precision=p)


@settings(max_examples=60, deadline=None)
@given(st.lists(_layers(), min_size=1, max_size=4))
def test_any_layers_round_trip(layers):
    from dataclasses import replace
    named = tuple(replace(x, name=f"l{i}") for i, x in enumerate(layers))
    w = Workload("random", named, {"note": "hypothesis"})
    assert loads_workload(dump_workload(w)) == w


def test_dump_is_readable_and_uses_shorthands():
    text = dump_workload(resnet50())
    conv1 = next(line for line in text.splitlines() if "name: conv1," in line)
    assert "kernel: 7" in conv1 and "stride: 2" in conv1 and "padding: 3" in conv1
    assert "kernel_h" not in conv1
    assert "function: add" in text  # the elementwise operation, not the layer type
    assert dump_workload(resnet50(), "line one\nline two").startswith("# line one\n# line two\n")


# The format -----------------------------------------------------------------------------

def test_shorthands_and_defaults():
    w = _load("""
        name: tiny
        layers:
          - {op: conv2d, name: c, in_h: 8, in_w: 8, in_c: 4, out_c: 8, kernel: 3, stride: 2,
             padding: 1, dilation: 1, groups: 4}
          - {op: conv2d, name: d, in_h: 8, in_w: 6, in_c: 4, out_c: 8, kernel_h: 3, kernel_w: 1}
          - {op: elementwise, name: e, elements: 10, function: relu, inputs: 1}
          - {op: matmul, name: m, m: 2, n: 3, k: 4}
        """)
    c, d, e, m = w.layers
    assert (c.kernel_h, c.kernel_w, c.stride_h, c.stride_w, c.pad_h, c.pad_w) == (3, 3, 2, 2, 1, 1)
    assert (c.out_h, c.groups) == (4, 4)
    assert (d.kernel_h, d.kernel_w, d.out_h, d.out_w) == (3, 1, 6, 6)
    assert e.op == "relu"
    assert m == Matmul("m", m=2, n=3, k=4)  # left-out optional fields take the IR defaults
    assert w.meta == {}


def test_unknown_key_names_path_and_line():
    err = _error("""
        name: x
        layers:
          - op: conv2d
            name: a
            in_h: 8
            kernel_hh: 3
            in_w: 8
            in_c: 4
            out_c: 8
            kernel: 3
        """)
    assert _where(err) == {"layers[0].kernel_hh": 6}
    assert "unknown key" in str(err) and "w.yaml:6" in str(err)


def test_wrong_type_and_negative_size():
    err = _error("""
        name: x
        layers:
          - {op: matmul, name: a, m: 4, n: four, k: 4}
          - op: conv2d
            name: b
            in_h: 8
            in_w: 8
            kernel_h: -3
            padding: -1
            act_precision: int7
            in_c: 4
            out_c: 8
            kernel_w: 3
        """)
    assert _where(err) == {"layers[0].n": 3, "layers[1].kernel_h": 8, "layers[1].padding": 9,
                           "layers[1].act_precision": 10}
    assert "greater than 0" in str(err) and "'four'" in str(err)


def test_booleans_and_floats_are_not_sizes():
    err = _error("""
        name: x
        layers:
          - {op: softmax, name: a, rows: true, cols: 2.5}
        """)
    assert set(_where(err)) == {"layers[0].rows", "layers[0].cols"}


def test_malformed_yaml_has_a_line():
    err = _error("""
        name: x
        layers:
          - {op: conv2d, name: a
          - {op: pool}
        """)
    assert err.issues[0].line is not None and "malformed YAML" in str(err)


def test_every_problem_at_once():
    err = _error("""
        name: x
        extra: 1
        layers:
          - {op: conv2d, name: a, in_h: 8, in_w: 8, in_c: 4, out_c: 4, kernel: 3, kernel_h: 3}
          - {op: frob, name: b}
          - {name: c}
          - {op: elementwise, name: a, elements: 5, function: addd}
          - {op: conv2d, name: g, in_h: 8, in_w: 8, in_c: 3, out_c: 4, kernel: 1, groups: 2}
          - {op: norm, rows: 2, cols: 2}
          - 7
        """)
    where = _where(err)
    assert where == {
        "extra": 2,
        "layers[0].kernel": 4,
        "layers[1].op": 5,
        "layers[2].op": 6,
        "layers[3].name": 7,
        "layers[3].function": 7,
        "layers[4]": 8,
        "layers[5].name": 9,
        "layers[6]": 10,
    }
    assert "duplicate layer name 'a'" in str(err)
    assert "groups must divide" in str(err)


@pytest.mark.parametrize("text,path", [
    ("", ""),
    ("- 1\n- 2\n", ""),
    ("name: x\nlayers: []\n", "layers"),
    ("name: x\nlayers: {a: 1}\n", "layers"),
    ("layers:\n  - {op: softmax, name: s, rows: 2, cols: 2}\n", "name"),
])
def test_bad_top_level(text, path):
    with pytest.raises(SpecError) as info:
        loads_workload(text, "w.yaml")
    assert info.value.paths == [path]


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_workload(tmp_path / "nope.yaml")


# Saving ---------------------------------------------------------------------------------

def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    path = tmp_path / "w.yaml"
    save_workload(resnet50(image=32), path)
    first = path.read_text()
    save_workload(mobilenet_v2(image=32), path)
    assert path.read_text() != first
    assert load_workload(path).name == "mobilenet_v2"
    assert os.listdir(tmp_path) == ["w.yaml"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # the usual mode, not mkstemp's 0600


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.yaml"
    save_workload(resnet50(image=32), path)
    before = path.read_text()
    bad = Workload("bad", resnet50(image=32).layers, {"obj": object()})
    with pytest.raises(Exception):  # noqa: B017 - yaml refuses the object; any error will do
        save_workload(bad, path)
    assert path.read_text() == before

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_workload(mobilenet_v2(image=32), path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["w.yaml"]  # the temp file is gone


# Required dimensions ------------------------------------------------------------------------
# Each op's shape fields have no default: leaving one out is an error naming the file, the
# line of the layer and the key path, never a silent 1 (``{op: matmul, m: 32, n: 64}`` once
# ran with k = 1). The bad layer is always the second, on line 4 of its file.

_GOOD = "  - {op: matmul, name: ok, m: 2, n: 2, k: 2}\n"


@pytest.mark.parametrize("layer,key", [
    ("{op: matmul, name: b, m: 32, n: 64}", "k"),
    ("{op: matmul, name: b, n: 64, k: 8}", "m"),
    ("{op: conv2d, name: b, in_h: 8, in_w: 8, in_c: 4, kernel: 3}", "out_c"),
    ("{op: conv2d, name: b, in_h: 8, in_c: 4, out_c: 8, kernel: 3}", "in_w"),
    ("{op: conv2d, name: b, in_h: 8, in_w: 8, in_c: 4, out_c: 8}", "kernel"),
    ("{op: conv2d, name: b, in_h: 8, in_w: 8, in_c: 4, out_c: 8, kernel_h: 3}", "kernel_w"),
    ("{op: elementwise, name: b, function: relu, inputs: 1}", "elements"),
    ("{op: softmax, name: b, cols: 64}", "rows"),
    ("{op: norm, name: b, rows: 4, norm: rmsnorm}", "cols"),
    ("{op: pool, name: b, in_h: 8, in_w: 8, channels: 4, pool: max}", "kernel"),
    ("{op: pool, name: b, in_h: 8, in_w: 8, kernel: 2, pool: avg}", "channels"),
    ("{op: embedding, name: b, tokens: 16}", "hidden"),
])
def test_missing_dimension_is_one_line_with_file_line_and_path(tmp_path, layer, key):
    path = tmp_path / "wl.yaml"
    path.write_text(f"name: x\nlayers:\n{_GOOD}  - {layer}\n")
    with pytest.raises(SpecError) as info:
        load_workload(path)
    assert [i.format(info.value.source) for i in info.value.issues] == [
        f"{path}:4: layers[1].{key}: required key is missing"]


def test_missing_dimension_through_the_cli(tmp_path, capsys):
    from npusim.cli import main

    path = tmp_path / "wl.yaml"
    path.write_text(f"name: x\nlayers:\n{_GOOD}  - {{op: matmul, name: fc, m: 32, n: 64}}\n")
    assert main(["run", "tpu_v1", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"npusim: error: {path}:4: layers[1].k: required key is missing"]


def test_global_pool_needs_no_kernel_and_python_layers_need_their_dimensions():
    w = _load("""
        name: x
        layers:
          - {op: pool, name: p, in_h: 7, in_w: 7, channels: 8, pool: global_avg}
        """)
    assert w.layers[0].kernel is None and (w.layers[0].out_h, w.layers[0].out_w) == (1, 1)
    with pytest.raises(TypeError, match="'k'"):
        Matmul("fc", m=32, n=64)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="needs kernel"):
        Pool("p", in_h=8, in_w=8, channels=4, pool="max")
