"""JSON Schema of every file npusim reads: ``chip``, ``workload``, ``sweep``, ``system``.

Built from the same pydantic models that validate the files, so it cannot drift from them.
Editors use it for completion and checks (``npusim schema chip -o chip.schema.json``; the
YAML language server reads a ``# yaml-language-server: $schema=chip.schema.json`` line), and
:mod:`npusim.docs` renders docs/reference/ from it. Quantities accept a number in the base
unit or a string with a unit; their schema names the base unit under ``x-unit``.

A workload's layers are one schema per layer type, told apart by ``op``. The sweep models
live in :mod:`npusim.sweep.spec`; their field descriptions are kept here (``SWEEP_DOCS``).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

__all__ = ["KINDS", "SWEEP_DOCS", "json_schema"]

KINDS: tuple[str, ...] = ("chip", "workload", "sweep", "system")

_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: What each key of a sweep file means, by model and key.
SWEEP_DOCS: dict[str, dict[str, str]] = {
    "SweepFile": {
        "name": "the sweep's name (cache and output file names)",
        "description": "free text",
        "base": "the chip every point changes: a preset name, a chip YAML path (relative to "
                "the sweep file) or an inline chip mapping; give base or system",
        "system": "the system of many chips every point changes (a system sweep): a system "
                  "preset or YAML path; its axes are system.*, parallel.* and workload.*",
        "parallel": "a system sweep's plan where no axis sets it (tp, pp, dp, "
                    "micro_batches, algorithm, allreduce_precision)",
        "set": "fixed changes to the base, by key path (cores.core.sram.size: 8 MiB); null "
               "unsets an optional key",
        "workloads": "the workloads every point runs: a built-in name or a file "
                     "(.yaml/.csv/.onnx, .json HF config), or a mapping (see WorkloadEntry)",
        "memory": "memory model of every run: bandwidth, ideal or cycle",
        "weights_resident": "auto, yes or no: weights kept in the shared SRAM (see "
                            "docs/model.md)",
        "mode": "grid (axes crossed, a group zipped), zip (all axes zipped), random or lhs "
                "(Latin hypercube: samples points drawn with seed)",
        "samples": "random and lhs: points to draw",
        "seed": "random and lhs: the draw's seed",
        "axes": "axis by key path into the chip (cores.core.sram.size, dram.standard, "
                "clock …) or workload.<option> (workload.batch; for an HF config "
                "workload.weights: precisions or mappings of tensor class to precision, "
                "workload.routing: uniform, skewed:S or a trace file): a list of values or "
                "a range (see AxisSpec)",
        "constraints": "expressions over axis names and the units KiB MiB GiB kB MB GB kHz "
                       "MHz GHz; a point is kept when all hold (rows * cols <= 65536)",
        "objectives": "default objectives of npusim sweep --pareto (max: to maximise)",
    },
    "WorkloadEntry": {
        "builtin": "a built-in workload name (npusim list)",
        "file": "a workload file: .yaml, SCALE-Sim topology .csv or .onnx (relative to the "
                "sweep file)",
        "hf_config": "an HF-style config.json of an LLM",
        "inline": "a workload mapping written in place (name, layers)",
        "label": "the name in the results table (default: the builtin name or file stem)",
        "batch": "batch size",
        "options": "builder keyword arguments (seq_len, precision, phase, context_len; for "
                   "an HF config weights: a precision or a mapping of tensor class to "
                   "precision {experts: mxfp4, default: bf16}, routing: uniform, skewed:S "
                   "or a trace file …)",
    },
    "AxisSpec": {
        "values": "the axis's values, each validated as the key path's field (8 MiB becomes "
                  "8388608)",
        "low": "a range's lower end",
        "high": "a range's upper end",
        "num": "points of a range in grid mode",
        "log": "space a range's points geometrically",
        "integer": "round a range's points to integers (default: when the field is one)",
        "name": "the column name (default: the key path's last two parts, sram_size)",
        "group": "axes sharing a group are zipped in grid mode and form one dimension in "
                 "random and lhs",
    },
}


class _FactoryDefaults(GenerateJsonSchema):
    """Shows a ``default_factory``'s value as the default (``macs_per_cycle: {int8: 1}``,
    a whole ``vector:`` section), which pydantic leaves out: a reader needs to see it."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()  # type: ignore[call-arg]
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _model(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(schema_generator=_FactoryDefaults)


def _catalog_fills(link: dict[str, Any]) -> None:
    """A link whose ``kind`` is a catalog entry takes its bandwidth from there: the key is
    required only without one (the model's validator checks that; JSON Schema cannot)."""
    link["required"] = [k for k in link.get("required", []) if k != "bandwidth"]
    link["properties"]["bandwidth"]["description"] += " (required unless kind is a catalog link)"


def _chip() -> dict[str, Any]:
    from npusim.spec.arch import Chip

    schema = _model(Chip)
    _catalog_fills(schema["$defs"]["Host"])
    return schema


def _system() -> dict[str, Any]:
    from npusim.spec.system import System

    schema = _model(System)
    _catalog_fills(schema["$defs"]["Link"])
    return schema


def _sweep() -> dict[str, Any]:
    from npusim.sweep.spec import AxisSpec, SweepFile, WorkloadEntry

    schema = _model(SweepFile)
    defs = schema.setdefault("$defs", {})
    for model in (AxisSpec, WorkloadEntry):
        defs.setdefault(model.__name__, _model(model))
    for name, docs in SWEEP_DOCS.items():
        target = schema if name == "SweepFile" else defs[name]
        for key, text in docs.items():
            target["properties"][key]["description"] = text
    # Both take a shorthand (a workload by name, an axis as a list of values).
    props = schema["properties"]
    props["workloads"]["items"] = {"anyOf": [{"type": "string"},
                                             {"$ref": "#/$defs/WorkloadEntry"}]}
    props["axes"]["additionalProperties"] = {"anyOf": [{"type": "array"},
                                                       {"$ref": "#/$defs/AxisSpec"}]}
    return schema


def _workload() -> dict[str, Any]:
    from npusim.spec.workload import _MODELS, _File

    schema = _model(_File)
    defs: dict[str, Any] = {}
    refs = []
    for kind, model in _MODELS.items():
        layer = _layer_schema(kind, model)
        defs[layer["title"]] = layer
        refs.append({"$ref": f"#/$defs/{layer['title']}"})
    schema["title"] = "Workload"
    schema["properties"]["layers"]["items"] = {"oneOf": refs}
    schema["$defs"] = defs
    return schema


def _layer_schema(kind: str, model: type[BaseModel]) -> dict[str, Any]:
    layer = copy.deepcopy(_model(model))
    layer["title"] = f"{kind} layer"
    op = {"const": kind, "description": "the layer type"}
    layer["properties"] = {"op": op, **layer["properties"]}
    layer["required"] = ["op", *layer.get("required", [])]
    return layer


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``chip``, ``workload``, ``sweep`` or ``system``
    file; a ``ValueError`` for any other kind."""
    builders = {"chip": _chip, "workload": _workload, "sweep": _sweep, "system": _system}
    if kind not in builders:
        raise ValueError(f"unknown schema {kind!r} (use {', '.join(KINDS)})")
    return {"$schema": _DIALECT, **builders[kind]()}
