"""The YAML workload format: a named list of layers, validated into the workload IR.

    name: resnet50
    meta: {batch: 1, source: torchvision}        # optional, free-form
    layers:
      - {op: conv2d, name: conv1, in_h: 224, in_w: 224, in_c: 3, out_c: 64,
         kernel: 7, stride: 2, padding: 3, activation: relu}
      - {op: pool, name: maxpool, in_h: 112, in_w: 112, channels: 64, kernel: 3, stride: 2,
         padding: 1, pool: max}
      - {op: matmul, name: fc, m: 1, n: 1000, k: 2048, b_kind: weight}

Each layer has ``op`` (``conv2d matmul elementwise softmax attention norm pool
embedding``), a unique ``name`` and the fields of that IR class (npusim/workloads/ir.py). Its
shape fields are required, as in the IR: conv2d ``in_h in_w in_c out_c kernel``, matmul
``m n k``, elementwise ``elements``, softmax and norm ``rows cols``, attention ``heads q_len
kv_len head_dim``, pool ``in_h in_w channels`` and ``kernel`` (but for ``global_avg``),
embedding ``tokens hidden``; left-out other fields take the IR defaults (batch 1, stride 1,
padding 0 …). Two spellings differ from the IR: a conv's ``kernel``, ``stride``, ``padding``
and ``dilation`` set both the ``_h`` and ``_w`` fields, and an elementwise layer names its
operation ``function`` (``op`` is the layer type). Sizes are positive integers (paddings may
be zero), precisions are ``int4 int8 fp8 fp8_e4m3 fp8_e5m2 fp16 bf16 fp32 mxfp4 nvfp4``
(the block-scaled ``mxfp4`` and ``nvfp4`` only as a weight precision). Every problem of a file is
reported at once, as one :class:`~npusim.errors.SpecError` whose issues carry the key path
(``layers[3].kernel_h``) and the line; a missing shape field is ``layers[3].k: required key
is missing``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from npusim._io import atomic_write_text
from npusim.errors import Issue, SpecError
from npusim.spec.yamlio import LineMap, issues_from_validation, line_for, load_yaml, loads_yaml
from npusim.workloads.ir import ELEMENTWISE_OPS, LAYER_TYPES, PRECISIONS, Conv2d, Layer, Workload

__all__ = ["LAYER_FIELD_DOCS", "dump_workload", "layer_field_doc", "load_workload",
           "loads_workload", "save_workload", "workload_from_data"]

# IR field -> YAML key, where the IR name would clash with the layer-type key ``op``.
_RENAMED: dict[str, dict[str, str]] = {"elementwise": {"op": "function"}}
# Conv shorthands: one YAML key for an (_h, _w) pair.
_CONV_PAIRS: dict[str, tuple[str, str]] = {
    "kernel": ("kernel_h", "kernel_w"), "stride": ("stride_h", "stride_w"),
    "padding": ("pad_h", "pad_w"), "dilation": ("dilation_h", "dilation_w"),
}
_FUNCTIONS = tuple(sorted(ELEMENTWISE_OPS))

Positive = Annotated[int, Field(strict=True, gt=0)]
NonNegative = Annotated[int, Field(strict=True, ge=0)]
PrecisionName = Literal[PRECISIONS]  # type: ignore[valid-type]
FunctionName = Literal[_FUNCTIONS]  # type: ignore[valid-type]


class _File(BaseModel):
    """A workload: what a workload YAML holds (the top level of the file)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="the workload's name in reports")
    meta: dict[str, Any] = Field(default_factory=dict, description="free-form facts "
                                 "(batch, source …); batch sets the result's batch")
    layers: list[Any] = Field(min_length=1, description="the layers in execution order, "
                              "each a mapping with op, name and that op's fields")


# What each layer field means, by YAML key; "<op>.<key>" where one op means something else.
# Sizes are element counts (not bytes) unless said otherwise.
LAYER_FIELD_DOCS: dict[str, str] = {
    "name": "the layer's name, unique in the workload",
    "batch": "independent inputs (images, sequences) the layer runs on",
    "in_h": "input height (elements)", "in_w": "input width (elements)",
    "in_c": "input channels", "out_c": "output channels",
    "kernel_h": "kernel height", "kernel_w": "kernel width",
    "stride_h": "vertical stride", "stride_w": "horizontal stride",
    "pad_h": "zero padding above and below (elements, each side)",
    "pad_w": "zero padding left and right (elements, each side)",
    "dilation_h": "vertical dilation", "dilation_w": "horizontal dilation",
    "kernel": "kernel side: sets kernel_h and kernel_w",
    "stride": "stride: sets stride_h and stride_w",
    "padding": "zero padding each side: sets pad_h and pad_w",
    "dilation": "dilation: sets dilation_h and dilation_w",
    "groups": "channel groups (in_c = out_c = groups: depthwise)",
    "activation": "an elementwise function fused after the layer (run on the vector unit)",
    "act_precision": "precision of the activations (inputs and outputs)",
    "weight_precision": "precision of the weights (the block-scaled mxfp4 and nvfp4 are "
                        "taken here only, for a weight operand)",
    "out_precision": "precision of the outputs",
    "m": "rows of A and of the output", "n": "columns of B and of the output",
    "k": "the reduced dimension (columns of A, rows of B)",
    "b_kind": "what B is: weight (a linear layer, shared by the batch), act or kv "
              "(attention, one B per batch entry)",
    "a_kind": "what A is: act, weight or kv",
    "out_kind": "what the output is: act, or kv (appended to the KV cache in DRAM)",
    "elements": "values the op runs over",
    "function": "the elementwise function (see Elementwise functions)",
    "inputs": "operands read per output (1 or 2)",
    "precision": "precision of the tensor",
    "rows": "rows of the tensor", "cols": "columns (the axis reduced over)",
    "heads": "query heads", "kv_heads": "K/V heads (unset: as many as heads; fewer: GQA)",
    "q_len": "queries per sequence (the last q_len positions of kv_len)",
    "kv_len": "keys per sequence", "head_dim": "elements per head",
    "causal": "query i sees only keys up to its own position",
    "kv_kind": "where K and V come from: kv (the cache in DRAM) or act",
    "kv_precision": "precision of K and V", "softmax_precision": "precision of the scores",
    "norm": "layernorm, rmsnorm or batchnorm",
    "channels": "channels (unchanged by pooling)",
    "pool.kernel": "window side; required for max and avg, ignored by global_avg",
    "pool.stride": "window stride", "pool.padding": "padding each side (elements)",
    "pool": "max, avg, or global_avg (one value per channel)",
    "tokens": "rows looked up", "hidden": "width of a row (elements)",
    "softmax.out_precision": "precision of the probabilities written (unset: precision)",
    "v_head_dim": "elements per head of V and of the output (unset: head_dim)",
    "kv_shared": "V is the first v_head_dim columns of the cached K (absorbed latent "
                 "attention): K/V bytes count K only",
    "window": "sliding window: a query sees at most this many most recent keys (unset: all)",
    "sinks": "a learned sink logit per head joins every softmax row",
    "tokens_per_expert": "token rows routed to each expert held, one count per expert "
                         "(0: the expert is not read)",
}


def layer_field_doc(kind: str, key: str) -> str:
    """What ``key`` of a layer of type ``kind`` means (empty when undocumented)."""
    return LAYER_FIELD_DOCS.get(f"{kind}.{key}", LAYER_FIELD_DOCS.get(key, ""))


def _field_type(kind: str, name: str, hint: Any) -> Any:
    if name in ("pad_h", "pad_w", "padding"):
        return NonNegative
    if hint is int:
        return Positive
    if hint == int | None:
        return Positive | None
    if name.endswith("precision"):
        return PrecisionName
    if name == "activation":
        return FunctionName | None
    if kind == "elementwise" and name == "op":
        return FunctionName
    return hint


def _layer_model(cls: type[Layer]) -> type[BaseModel]:
    """A pydantic model of one layer type, generated from its IR dataclass (no drift)."""
    hints = typing.get_type_hints(cls)
    rename = _RENAMED.get(cls.kind, {})
    spec: dict[str, Any] = {}
    paired = {p for pair in _CONV_PAIRS.values() for p in pair} if cls is Conv2d else set()
    for f in dataclasses.fields(cls):
        typ = _field_type(cls.kind, f.name, hints[f.name])
        # A field the IR requires is required here (``...``), but for a conv's (_h, _w)
        # halves, which a shorthand may give instead (_missing checks them); left
        # out, any other field takes the IR default (model_dump(exclude_unset=True)).
        required = f.default is dataclasses.MISSING and f.name not in paired
        key = rename.get(f.name, f.name)
        # The schema shows the IR default, which a left-out key takes.
        default = None if required or f.default is dataclasses.MISSING else f.default
        extra: dict[str, Any] | None = None if default is None else {"default": default}
        spec[key] = (typ, Field(... if required else None, json_schema_extra=extra,
                                description=layer_field_doc(cls.kind, key)))
    if cls is Conv2d:
        for key in _CONV_PAIRS:
            spec[key] = (NonNegative if key == "padding" else Positive,
                         Field(None, description=layer_field_doc(cls.kind, key)))
    return create_model(f"{cls.__name__}Spec", __config__=ConfigDict(extra="forbid"),
                        __doc__=cls.__doc__, **spec)


_MODELS: dict[str, type[BaseModel]] = {k: _layer_model(c) for k, c in LAYER_TYPES.items()}


def _missing(kind: str, body: dict[str, Any]) -> list[str]:
    """Required keys the pydantic model cannot require on its own: a conv's (_h, _w) pair
    with no default when neither its shorthand nor both halves are given; a max or avg
    pool's ``kernel``."""
    out: list[str] = []
    if kind == "conv2d":
        for short, pair in _CONV_PAIRS.items():
            ir_default = Conv2d.__dataclass_fields__[pair[0]].default
            if ir_default is dataclasses.MISSING and short not in body:
                given = [p for p in pair if p in body]
                out += [p for p in pair if p not in body] if given else [short]
    if kind == "pool" and body.get("pool", "max") != "global_avg" and "kernel" not in body:
        out.append("kernel")
    return out


def _build_layer(kind: str, raw: dict[str, Any], path: str,
                 lines: LineMap) -> tuple[Layer | None, list[Issue]]:
    body = {k: v for k, v in raw.items() if k != "op"}
    issues: list[Issue] = [Issue(f"{path}.{key}", "required key is missing", line_for(path, lines))
                           for key in _missing(kind, body)]
    if kind == "conv2d":
        for short, pair in _CONV_PAIRS.items():
            if short in body and any(p in body for p in pair):
                where = f"{path}.{short}"
                issues.append(Issue(where, f"give {short} or {'/'.join(pair)}, not both",
                                    line_for(where, lines)))
    try:
        spec = _MODELS[kind].model_validate(body)
    except ValidationError as exc:
        return None, issues + issues_from_validation(exc, lines, prefix=path,
                                                     model=_MODELS[kind])
    if issues:
        return None, issues
    given = spec.model_dump(exclude_unset=True)
    if kind == "conv2d":
        for short, pair in _CONV_PAIRS.items():
            if short in given:
                value = given.pop(short)
                for p in pair:
                    given[p] = value
    for ir_name, yaml_name in _RENAMED.get(kind, {}).items():
        if yaml_name in given:
            given[ir_name] = given.pop(yaml_name)
    try:
        return LAYER_TYPES[kind](**given), []
    except ValueError as exc:  # cross-field rules of the IR (groups, kernel vs input)
        return None, [Issue(path, str(exc), line_for(path, lines))]


def workload_from_data(data: Any, lines: LineMap | None = None,
                       source: str | None = None) -> Workload:
    """Validate parsed YAML data and build the :class:`Workload`; all problems at once."""
    lines = lines or {}
    if not isinstance(data, dict):
        kind = "empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(Issue("", f"expected a mapping at the top level, got {kind}", 1), source)
    issues: list[Issue] = []
    top: _File | None = None
    raw_layers: list[Any] = []
    try:
        top = _File.model_validate(data)
        raw_layers = top.layers
    except ValidationError as exc:
        issues += issues_from_validation(exc, lines, model=_File)
        found = data.get("layers")
        if isinstance(found, list):  # still check the layers when the top level is wrong
            raw_layers = found
    layers: list[Layer] = []
    first_seen: dict[str, int] = {}
    for i, raw in enumerate(raw_layers):
        path = f"layers[{i}]"
        if not isinstance(raw, dict):
            issues.append(Issue(path, f"expected a mapping, got {type(raw).__name__}",
                                line_for(path, lines)))
            continue
        kind = str(raw.get("op"))
        if kind not in _MODELS:
            where = f"{path}.op"
            msg = ("required key is missing" if "op" not in raw else f"unknown op {raw['op']!r}")
            issues.append(Issue(where, f"{msg} (known: {', '.join(_MODELS)})",
                                line_for(where, lines)))
            continue
        name = raw.get("name")
        if isinstance(name, str):
            if name in first_seen:
                where = f"{path}.name"
                issues.append(Issue(where, f"duplicate layer name {name!r} "
                                           f"(first at layers[{first_seen[name]}])",
                                    line_for(where, lines)))
            first_seen.setdefault(name, i)
        layer, found = _build_layer(kind, raw, path, lines)
        issues += found
        if layer is not None:
            layers.append(layer)
    if issues or top is None:
        raise SpecError(issues, source)
    return Workload(top.name, tuple(layers), dict(top.meta))


def loads_workload(text: str, source: str | None = None) -> Workload:
    data, lines = loads_yaml(text, source)
    return workload_from_data(data, lines, source)


def load_workload(path: str | os.PathLike[str]) -> Workload:
    """Read a workload YAML file; a :class:`SpecError` lists every problem with its line."""
    data, lines = load_yaml(path)
    return workload_from_data(data, lines, str(path))


# Fields written even when they hold the IR default, because they say what a layer does.
_ALWAYS = {"b_kind", "pool", "norm", "function"}


def _layer_to_yaml(layer: Layer) -> dict[str, Any]:
    rename = _RENAMED.get(layer.kind, {})
    # (h, w) pairs of a conv written as one shorthand key where both are equal
    merged: dict[str, str] = {}  # field -> shorthand ("" for the w half: nothing to write)
    if isinstance(layer, Conv2d):
        for short, (h, w) in _CONV_PAIRS.items():
            if getattr(layer, h) == getattr(layer, w):
                merged[h], merged[w] = short, ""
    out: dict[str, Any] = {"op": layer.kind}
    for f in dataclasses.fields(layer):
        value = getattr(layer, f.name)
        key = merged.get(f.name, rename.get(f.name, f.name))
        if not key:
            continue
        if f.name == "name" or value != f.default or key in _ALWAYS:
            out[key] = value
    return out


def dump_workload(workload: Workload, comment: str | None = None) -> str:
    """The YAML text of ``workload``: one flow-style mapping per layer, defaults left out."""
    head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    doc: dict[str, Any] = {"name": workload.name}
    if workload.meta:
        doc["meta"] = dict(workload.meta)
    doc["layers"] = [_layer_to_yaml(layer) for layer in workload.layers]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=4096,
                          allow_unicode=True)
    return head + body


def save_workload(workload: Workload, path: str | os.PathLike[str],
                  comment: str | None = None) -> None:
    """Write ``workload`` as YAML atomically (a temp file in the same folder, then replace)."""
    atomic_write_text(path, dump_workload(workload, comment))
