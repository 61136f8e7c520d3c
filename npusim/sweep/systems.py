"""Sweeps of a system of many chips: chip count, link, topology and parallelism as axes.

    name: rngd_scale_out
    system: rngd_8card            # system preset, or a system YAML (relative to this file)
    workloads:
      - {hf_config: llama2_7b, options: {phase: decode, context_len: 2048}}
    parallel: {tp: 1, algorithm: ring}    # the plan where no axis sets it (default 1 / ring)
    axes:
      system.count: [2, 4, 8]
      system.link.kind: [pcie4_x16, pcie5_x16]
      parallel.tp: [1, 2, 4, 8]
    constraints:
      - tp <= count

A system sweep's axes are ``system.<key path>`` into the system spec (``count``, ``chip``,
``link.kind``, ``link.bandwidth``, ``link.latency``, ``topology.kind``, ``topology.dims`` …),
``parallel.<tp|pp|dp|micro_batches|ep|algorithm|allreduce_precision|all_to_all>`` and ``workload.<option>``; they are named
after the last two parts of the path with its ``system.`` or ``parallel.`` cut off
(``count``, ``chip``, ``link_kind``, ``tp``). ``system.link.kind`` (and ``system.host.kind``)
sets the whole link to that kind of the link catalog (npusim/spec/link_catalog.py), so a
preset's own figures do not stay behind; axes on the link's ``bandwidth``, ``latency`` or
``energy_per_bit`` are applied after it. ``set:`` takes ``system.*`` keys the same way.

Every point is one :func:`~npusim.system.simulate_system` step (``workload``'s batch is one
replica's). A point whose system is invalid (a torus whose dims do not hold the count) is a
row with that error; a plan the system or the model cannot take (more chips than the count,
tp not dividing the heads, a shard that does not fit) is a run with its one-line error,
cached like a result. A process simulates each chip shard once for all the counts and links
that share it (the shard depends on the chip, the workload and tp, pp, micro-batches and ep
only).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from npusim.errors import Issue, NpusimError, SpecError
from npusim.spec.link_catalog import LINK_KINDS
from npusim.spec.system import System
from npusim.spec.yamlio import LineMap, issues_from_validation
from npusim.workloads.ir import Workload

__all__ = [
    "PARALLEL_DEFAULTS",
    "PARALLEL_PREFIX",
    "SYSTEM_METRIC_COLUMNS",
    "SYSTEM_PREFIX",
    "build_system",
    "check_system_value",
    "chip_path",
    "parallel_adapter",
    "plan_of",
    "resolve_system_base",
    "run_system_task",
    "set_system_key",
    "system_data",
    "system_point_key",
]

SYSTEM_PREFIX = "system."
PARALLEL_PREFIX = "parallel."
#: the plan of a point where neither ``parallel:`` nor an axis sets it
PARALLEL_DEFAULTS: dict[str, Any] = {"tp": 1, "pp": 1, "dp": 1, "micro_batches": 1,
                                     "ep": 1, "algorithm": "ring", "allreduce_precision": "accum",
                                     "all_to_all": "direct"}
_KIND_KEYS = ("link.kind", "host.kind")

#: table column → ``SystemResult.summary()`` key
_SUMMARY_METRICS: dict[str, str] = {
    "latency_s": "latency_s", "throughput": "inferences_per_s", "energy_j": "energy_j",
    "energy_chips_j": "energy_chips_j", "energy_links_j": "energy_links_j",
    "time_compute_s": "time_compute_s", "time_comm_s": "time_comm_s",
    "time_idle_s": "time_idle_s",
    "time_comm_attention_all_reduce_s": "time_comm_attention_all_reduce_s",
    "time_comm_mlp_all_reduce_s": "time_comm_mlp_all_reduce_s",
    "time_comm_embedding_all_reduce_s": "time_comm_embedding_all_reduce_s",
    "time_comm_logits_all_gather_s": "time_comm_logits_all_gather_s",
    "time_comm_pipeline_send_s": "time_comm_pipeline_send_s",
    "time_comm_moe_dispatch_all_to_all_s": "time_comm_moe_dispatch_all_to_all_s",
    "time_comm_moe_combine_all_to_all_s": "time_comm_moe_combine_all_to_all_s",
    "link_bytes": "link_bytes", "link_utilization_max": "link_utilization_max",
    "link_utilization_mean": "link_utilization_mean", "chips_used": "chips_used",
    "batch": "batch",
}
#: the metrics of a system sweep's table: the step's summary, then the derived columns
#: (power = energy / latency, inferences per joule; ``area_mm2`` and ``peak_tops`` are
#: the chips used times one chip's)
SYSTEM_METRIC_COLUMNS: tuple[str, ...] = (
    *_SUMMARY_METRICS, "average_power_w", "inferences_per_j", "area_mm2", "peak_tops")


def parallel_adapter(key: str) -> TypeAdapter[Any]:
    """The validator of ``parallel.<key>``; ``ValueError`` for another key."""
    if key == "algorithm":
        return TypeAdapter(Literal["ring", "tree"])
    if key == "allreduce_precision":
        from npusim.system.simulate import ALLREDUCE_PRECISIONS

        # A Literal built from a tuple is a runtime form mypy cannot check: typed Any.
        choices: Any = Literal[ALLREDUCE_PRECISIONS]  # type: ignore[valid-type]
        return TypeAdapter(choices)
    if key == "all_to_all":
        return TypeAdapter(Literal["direct", "pairwise"])
    if key in PARALLEL_DEFAULTS:
        return TypeAdapter(Annotated[int, Field(gt=0)])
    raise ValueError(f"unknown parallel key {key!r} (known: {', '.join(PARALLEL_DEFAULTS)})")


def set_system_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (a path without ``system.``) in system data; a link's ``kind`` replaces
    the whole link by the catalog's figures for that kind."""
    from npusim.sweep.keypath import set_path

    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if key in _KIND_KEYS:
        data[key.split(".")[0]] = {"kind": value}
    else:
        set_path(data, key, value)


def _system_dump(system: System) -> dict[str, Any]:
    """System data with a relative chip YAML made absolute (points are built anywhere)."""
    data = system.model_dump(mode="json")
    p = Path(system.chip)
    if p.suffix.lower() in (".yaml", ".yml") and not p.is_absolute() and system.source:
        data["chip"] = str((Path(system.source).parent / p).resolve())
    return data


def resolve_system_base(name: str, root: Path, lines: LineMap, issues: list[Issue],
                        inputs: list[str]) -> dict[str, Any] | None:
    """The ``system:`` of a sweep file (a path relative to ``root`` or a system preset)."""
    from npusim.spec.system import load_system
    from npusim.sweep.keypath import load_named

    found = load_named(name, "system", root, load_system, lines, issues, inputs)
    if found is None:
        return None
    system, path = found
    data = _system_dump(system)
    if path is not None and Path(data["chip"]).exists():
        inputs.append(str(data["chip"]))
    return data


def check_system_value(base: dict[str, Any], key: str, value: Any, root: Path) -> list[str]:
    """Problems of ``value`` at ``key`` (without ``system.``) set alone on the base system:
    an unknown link kind, a chip that does not load, a value its field refuses. Rules
    across fields (a torus's dims and the count) belong to the points."""
    from npusim.spec.arch import load_arch

    if key in _KIND_KEYS and value not in LINK_KINDS:
        return [f"unknown link kind {value!r} (known: {', '.join(LINK_KINDS)})"]
    if key == "chip":
        try:
            load_arch(chip_path(value, root))
        except SpecError as exc:
            return [f"the chip does not load: {exc.issues[0].message if exc.issues else exc}"]
    data = copy.deepcopy(base)
    set_system_key(data, key, value)
    try:
        System.model_validate(data)
    except ValidationError as exc:
        return [i.message for i in issues_from_validation(exc, {})
                if i.path == key or i.path.startswith(key + ".")
                or (key in _KIND_KEYS and i.path.startswith(key.split(".")[0]))]
    return []


def chip_path(value: str, root: Path) -> str:
    """A ``system.chip`` value: a chip YAML relative to the sweep file, or a preset name."""
    p = Path(value)
    if p.suffix.lower() in (".yaml", ".yml") and not p.is_absolute():
        return str((root / p).resolve())
    return value


def system_data(sweep: Any, point: dict[str, Any]) -> dict[str, Any]:
    """The base system data with the point's system axes set (link kinds first)."""
    data = copy.deepcopy(sweep.base)
    axes = [a for a in sweep.axes if a.key.startswith(SYSTEM_PREFIX) and a.name in point]
    axes.sort(key=lambda a: a.key.removeprefix(SYSTEM_PREFIX) not in _KIND_KEYS)
    for a in axes:
        set_system_key(data, a.key.removeprefix(SYSTEM_PREFIX), point[a.name])
    return data


def build_system(sweep: Any, point: dict[str, Any]) -> System:
    """The point's validated system (its chip loaded); a SpecError names every problem."""
    from npusim.spec.system import system_from_data

    return system_from_data(system_data(sweep, point))


def plan_of(sweep: Any, point: dict[str, Any]) -> dict[str, Any]:
    """The point's plan: the defaults, the file's ``parallel:``, then its parallel axes."""
    plan = {**PARALLEL_DEFAULTS, **sweep.parallel}
    for a in sweep.axes:
        if a.key.startswith(PARALLEL_PREFIX) and a.name in point:
            plan[a.key.removeprefix(PARALLEL_PREFIX)] = point[a.name]
    return plan


#: what the sharding of a transformer reads besides its layers (npusim.system.simulate)
_SHARD_META = ("config", "precision", "phase", "prompt_len", "context_len", "attention")


def system_point_key(system: System, workload_id: str, plan: dict[str, Any], memory: str,
                     weights_resident: str, version: str | None = None,
                     workload: Workload | None = None) -> str:
    """The cache key of one system run: the system without its descriptive fields, its chip
    by content (not by name or path), the plan, the all-reduce algorithm, the workload's
    digest and what its sharding reads (the model config: tied embeddings change a pipeline
    stage's capacity, not the layers), the memory model, where weights live and the
    simulator's code."""
    from npusim.sweep.cache import SCHEMA, canonical_chip

    if version is None:
        from npusim._version import model_version

        version = model_version()
    spec = system.model_dump(mode="json")
    for k in ("name", "sources", "assumptions", "chip"):
        spec.pop(k, None)
    doc = {"system": spec, "chip": canonical_chip(system.chip_spec), "plan": plan,
           "workload": workload_id,
           "model": repr([workload.meta.get(k) for k in _SHARD_META]) if workload else None,
           "memory": memory, "weights_resident": weights_resident,
           "npusim": version, "schema": SCHEMA}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# Chip shards simulated in this process: (chip, workload, tp, pp, micro-batches, memory,
# weights) → (stages, Results) or the error; a few kept, the oldest dropped first.
_SHARDS: OrderedDict[str, Any] = OrderedDict()
_SHARDS_KEPT = 16


def _shards(system: System, workload: Workload, plan: Any, chip: dict[str, Any],
            workload_id: str, memory: str, resident: str) -> Any:
    from npusim.system.parallel import Plan
    from npusim.system.simulate import simulate_shards

    key = json.dumps([chip, workload_id, plan.tp, plan.pp, plan.micro_batches, plan.ep,
                      memory, resident], sort_keys=True)
    if key in _SHARDS:
        _SHARDS.move_to_end(key)
        return _SHARDS[key]
    try:
        r = max(plan.ep // plan.tp, 1)  # an expert group's replicas (one without ep)
        got: Any = simulate_shards(
            system, workload, Plan(plan.tp, plan.pp, r, plan.micro_batches, plan.ep),
            memory=memory, weights_resident={"auto": None, "yes": True, "no": False}[resident],
            count=plan.tp * plan.pp * r)
    except NpusimError as exc:
        got = exc
    _SHARDS[key] = got
    while len(_SHARDS) > _SHARDS_KEPT:
        _SHARDS.popitem(last=False)
    return got


def run_system_task(system_spec: dict[str, Any], chip: dict[str, Any],
                    plan_spec: dict[str, Any], workload: Workload, workload_id: str,
                    memory: str, weights_resident: str) -> dict[str, float]:
    """One system step's metrics; a plan that cannot run raises its NpusimError."""
    from npusim.system.parallel import Plan
    from npusim.system.simulate import run_step

    system = System.model_validate(system_spec)
    plan = Plan(*(int(plan_spec[k]) for k in ("tp", "pp", "dp", "micro_batches", "ep")))
    got = _shards(system, workload, plan, chip, workload_id, memory, weights_resident)
    if isinstance(got, NpusimError):
        raise got
    res = run_step(system, workload, plan, *got, algorithm=str(plan_spec["algorithm"]),
                   memory=memory,
                   allreduce_precision=str(plan_spec.get("allreduce_precision", "accum")),
                   all_to_all=str(plan_spec.get("all_to_all", "direct")))
    s = res.summary()
    metrics = {col: float(s[k]) for col, k in _SUMMARY_METRICS.items()}
    lat, energy = metrics["latency_s"], metrics["energy_j"]
    metrics["average_power_w"] = energy / lat if lat > 0 else float("nan")
    metrics["inferences_per_j"] = metrics["batch"] / energy if energy > 0 else float("nan")
    return metrics
