"""``simulate_system``: system + workload + plan → per-chip simulations → step event model.

Each distinct chip shard (a pipeline stage's layers at the tensor-parallel shard's sizes, for
one micro-batch) is an ordinary workload simulated by :func:`npusim.simulate` on the chip;
every rank of a stage holds the same shard, so a stage is simulated once. The per-layer
latencies of that Result are cut into segments at the points where the ranks meet in a
collective, and :func:`npusim.engine.system.run_system_step` runs every chip and every
link of the step as SimPy processes.

Tensor and pipeline parallelism need a transformer built by
:func:`npusim.workloads.from_hf_config` (the plan shards its config); data parallelism runs
any workload, one replica per chip group, each replica its own batch.

Under expert parallelism (``ep > 1``) the chips of an expert group differ in their routed
experts only: a stage's other layers are simulated once, and every distinct routed
projection of the group's members (:mod:`npusim.system.experts`) once more, on their own;
a member's program is the stage's with its own routed layers, a dispatch all-to-all before
each MoE block's routed experts and a combine all-to-all after them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from npusim.engine.system import Segment, StageProgram, SystemProgram, run_system_step
from npusim.errors import MappingError
from npusim.result import Result
from npusim.simulate_chip import simulate_chip
from npusim.spec.system import System, load_system
from npusim.system.experts import (
    ExpertShard,
    StageExperts,
    expert_shards,
    is_routed,
    moe_block,
    routed_side,
)
from npusim.system.parallel import (
    Plan,
    check_plan,
    shard_config,
    stage_footprint,
    stage_workload,
)
from npusim.system.result import SystemResult
from npusim.workloads.hf_config import ModelConfig
from npusim.workloads.ir import BITS, PRECISIONS, Layer, Matmul, Workload, bytes_of
from npusim.workloads.llm import from_hf_config

__all__ = ["ALLREDUCE_PRECISIONS", "allreduce_bytes", "check_allreduce_precision",
           "check_shards", "peak_activation_bytes", "run_step",
           "simulate_shards", "simulate_system", "stage_program"]



#: where tensor-parallel ranks meet: (layer-name suffix, collective, cause)
_MEETINGS: tuple[tuple[str, str, str], ...] = (
    ("o_proj", "all_reduce", "attention all-reduce"),
    ("down_proj", "all_reduce", "mlp all-reduce"),
    ("fc_out", "all_reduce", "mlp all-reduce"),
    ("embed_tokens", "all_reduce", "embedding all-reduce"),
    ("lm_head", "all_gather", "logits all-gather"),
)


def _meeting(name: str) -> tuple[str, str] | None:
    for suffix, kind, cause in _MEETINGS:
        if name == suffix or name.endswith("." + suffix):
            return kind, cause
    return None


#: an all-reduce's precision: ``accum`` (the partial sums at the workload's accumulation
#: precision, the default), ``activations`` (a quantised all-reduce at the layer's output
#: precision) or a named precision
ALLREDUCE_PRECISIONS: tuple[str, ...] = ("accum", "activations", *PRECISIONS)


def check_allreduce_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`ALLREDUCE_PRECISIONS`, else a one-line
    :class:`~npusim.errors.MappingError`."""
    if precision not in ALLREDUCE_PRECISIONS:
        raise MappingError(f"unknown all-reduce precision {precision!r} (use "
                           f"{', '.join(ALLREDUCE_PRECISIONS)})")
    return precision


def allreduce_bytes(layer: Layer, workload: Workload, precision: str = "accum") -> float:
    """Bytes of the tensor a tensor-parallel all-reduce after ``layer`` reduces.

    After a row-parallel projection (``o_proj``, ``down_proj``, ``fc_out``) every rank holds
    a partial sum of the whole output, kept at the accumulation precision (fp32 or int32,
    4 B) until reduced: ``batch x m x n`` elements at ``precision`` (``accum``: the
    workload's ``meta["precision"]["accum"]``; ``activations``: the layer's own output
    precision, which is a quantised all-reduce). A vocabulary-sharded embedding's ranks each
    hold whole rows or zeros, so its sum is exact at the output precision and is sent so.
    """
    out = float(layer.output_bytes().get("act", 0))
    if not isinstance(layer, Matmul) or precision == "activations":
        return out
    if precision == "accum":
        prec = workload.meta.get("precision")
        precision = str(prec.get("accum", "fp32")) if isinstance(prec, dict) else "fp32"
    return float(bytes_of(layer.batch * layer.m * layer.n, precision))


def _moe_parts(layers: tuple[Layer, ...]) -> dict[int, tuple[int, int, int, int, float]]:
    """Per MoE block: indices of the first layer of its MoE part (routed and shared
    experts, their combine), of its first and last routed projections, of the part's last
    layer, and the bytes of the block's output the tensor-parallel ranks all-reduce (the
    combine's or a shared expert's output, tokens x hidden)."""
    parts: dict[int, list[Any]] = {}
    for i, layer in enumerate(layers):
        b = moe_block(layer.name)
        if b is None or not (".experts." in layer.name or ".shared." in layer.name):
            continue
        p = parts.setdefault(b, [i, -1, -1, i, 0.0])
        if is_routed(layer):
            p[1] = i if p[1] < 0 else p[1]
            p[2] = i
        else:
            p[4] = float(layer.output_bytes().get("act", 0))
        p[3] = i
    return {b: (p[0], p[1], p[2], p[3], p[4] or float(layers[p[3]].output_bytes().get("act", 0)))
            for b, p in parts.items() if p[1] >= 0}


def _latencies(result: Result) -> dict[str, float]:
    rows = result.layers
    return dict(zip(rows["layer"], rows["latency_s"].astype(float), strict=True))


def _reduced_bytes(act_bytes: float, workload: Workload, precision: str) -> float:
    """An MoE part's all-reduce (its output's ``act_bytes`` at the activation precision)
    at ``precision``, as :func:`allreduce_bytes` sizes a projection's: partial sums at the
    accumulation precision unless a quantised all-reduce is asked for."""
    if precision == "activations":
        return act_bytes
    prec = workload.meta.get("precision")
    prec = prec if isinstance(prec, dict) else {}
    act = str(prec.get("activations", "int8"))  # the IR's default activation precision
    if precision == "accum":
        precision = str(prec.get("accum", "fp32"))
    return float(bytes_of(act_bytes * 8 / BITS[act], precision))


def stage_program(result: Result | dict[str, float], workload: Workload, tp: int,
                  shard: ExpertShard | None = None,
                  routed_s: dict[str, float] | None = None, *,
                  layout: tuple[dict[int, tuple[int, int, int, int, float]], set[str]]
                  | None = None, allreduce_precision: str = "accum") -> StageProgram:
    """Cut a stage's simulated layers into segments at its tensor-parallel meetings (and,
    with an expert ``shard``, at its expert-parallel all-to-alls).

    A meeting's tensor is the layer's activation output: whole for an all-reduce (every
    rank holds a partial sum of all of it, at the precision :func:`allreduce_bytes` gives),
    ``tp`` slices for the logits' all-gather. An
    MoE block's ranks meet once, after its MoE part (routed experts, shared experts and
    their combine). The bytes sent to the next stage are the last layer's activation
    output. With a ``shard``, routed layers take their latency from ``routed_s`` (0 for
    a layer the member gets no row of). ``result`` may be its latency per layer name;
    ``layout`` the workload's MoE parts and routed-side layers, found once for all members.
    """
    lat = result if isinstance(result, dict) else _latencies(result)
    parts, side = layout or (_moe_parts(workload.layers), routed_side(workload.layers))
    if shard is None:
        side = set()
    segs: list[Segment] = []
    acc, first = 0.0, None

    def cut(last: str, kind: str | None = None, nbytes: float = 0.0, cause: str = "",
            row: tuple[float, ...] = ()) -> None:
        nonlocal acc, first
        segs.append(Segment(f"{first or last} … {last}", acc, kind, nbytes, cause, row))
        acc, first = 0.0, None

    for i, layer in enumerate(workload.layers):
        blk = moe_block(layer.name)
        b = -1 if blk is None else blk
        part = parts.get(b)
        if shard is not None and part is not None and i == part[1]:
            prev = workload.layers[i - 1].name if i else layer.name
            cut(prev, "all_to_all", 0.0, "moe dispatch all-to-all", shard.dispatch[b])
        if layer.name in side:
            acc += (routed_s or {}).get(layer.name, 0.0)
        else:
            acc += float(lat[layer.name])
        first = first or layer.name
        if shard is not None and part is not None and i == part[2]:
            cut(layer.name, "all_to_all", 0.0, "moe combine all-to-all", shard.combine[b])
        if tp < 2:
            continue
        if part is not None and part[0] <= i <= part[3]:
            if i == part[3]:
                cut(layer.name, "all_reduce",
                    _reduced_bytes(part[4], workload, allreduce_precision), "mlp all-reduce")
            continue
        meet = _meeting(layer.name)
        if meet is not None:
            out = float(layer.output_bytes().get("act", 0))
            kind, cause = meet
            nbytes = (out * tp if kind == "all_gather"
                      else allreduce_bytes(layer, workload, allreduce_precision))
            cut(layer.name, kind, nbytes, cause)
    if first is not None:
        cut(workload.layers[-1].name)
    send = float(workload.layers[-1].output_bytes().get("act", 0)) if workload.layers else 0.0
    return StageProgram(tuple(segs), send)


def _shards(system: System, wl: Workload, plan: Plan, count: int | None = None,
            activation_floor: int = 0) -> list[Workload]:
    """One micro-batch's workload per stage, capacity checked per chip (activations at
    least ``activation_floor`` bytes); the plan checked against ``count`` chips (default:
    the system's)."""
    count = system.count if count is None else count
    cfg = wl.meta.get("config")
    batch = int(wl.meta.get("batch", 1))  # type: ignore[call-overload]
    if not isinstance(cfg, ModelConfig):
        if plan.tp > 1 or plan.pp > 1 or plan.micro_batches > 1:
            raise MappingError(f"{wl.name}: tensor and pipeline parallelism need a "
                               "transformer built from an HF config (npusim llm, or "
                               "workloads.from_hf_config); use dp for other workloads")
        if plan.ep > 1:
            raise MappingError(f"{wl.name}: expert parallelism needs a mixture-of-experts "
                               "model built from an HF config (npusim llm, or "
                               "workloads.from_hf_config)")
        check_plan(plan, count)
        return [wl]
    check_plan(plan, count, cfg, batch)
    prec: dict[str, Any] = wl.meta["precision"]  # type: ignore[assignment]
    shard = shard_config(cfg, plan.tp, plan.ep)
    micro = _rebuild(wl, shard, batch // plan.micro_batches)
    out = []
    for s in range(plan.pp):
        st = stage_workload(micro, s, plan.pp)
        act = max(activation_floor, peak_activation_bytes(st))
        stage_footprint(system.chip_spec, shard, s, plan.pp, batch=batch,
                        context_len=int(wl.meta["context_len"]),  # type: ignore[call-overload]
                        weights=prec["weights"], kv=prec["kv"], activation_bytes=act,
                        ep=plan.ep)
        out.append(st)
    return out


def _rebuild(wl: Workload, cfg: ModelConfig, batch: int) -> Workload:
    """``wl`` (built by from_hf_config) again for ``cfg`` and ``batch`` sequences."""
    prec: dict[str, Any] = wl.meta["precision"]  # type: ignore[assignment]
    kw: dict[str, Any] = {}
    if "routing" in wl.meta:
        kw["routing"] = wl.meta["routing"]
    if "logits" in wl.meta:  # the prefill's LM head at every position, or the last
        kw["logits"] = wl.meta["logits"]
    return from_hf_config(cfg, str(wl.meta["phase"]), batch=batch,  # type: ignore[arg-type]
                          prompt_len=int(wl.meta["prompt_len"]),  # type: ignore[call-overload]
                          context_len=int(wl.meta["context_len"]),  # type: ignore[call-overload]
                          weights=prec["weights"], activations=prec["activations"],
                          kv=prec["kv"], accum=prec["accum"],
                          attention=str(wl.meta.get("attention", "fused")), **kw)


def _stage_experts(system: System, wl: Workload, plan: Plan, memory: str,
                   weights_resident: bool | None) -> list[StageExperts]:
    """Each stage's expert-parallel members: the routing of one group's tokens (its
    ``ep/tp`` replicas' micro-batches together) cut by expert ranges, and every distinct
    routed projection of the members simulated once."""
    cfg = wl.meta["config"]
    assert isinstance(cfg, ModelConfig)
    batch = int(wl.meta.get("batch", 1))  # type: ignore[call-overload]
    group = _rebuild(wl, shard_config(cfg, plan.tp, plan.ep),
                     batch // plan.micro_batches * (plan.ep // plan.tp))
    out = []
    for s in range(plan.pp):
        shards = expert_shards(stage_workload(group, s, plan.pp), plan.ep)
        distinct: dict[Layer, str] = {}
        names: list[dict[str, str]] = []  # per member: its layer -> the distinct one's name
        for sh in shards:
            names.append({x.name: distinct.setdefault(replace(x, name="routed"),
                                                      f"routed{len(distinct)}")
                          for x in sh.layers})
        lat: dict[str, float] = {}
        energy: dict[str, float] = {}
        if distinct:
            res = simulate_chip(system.chip_spec,
                                Workload("routed experts", tuple(replace(k, name=v)
                                                                 for k, v in distinct.items())),
                                memory=memory, weights_resident=weights_resident)
            rows = res.layers
            lat = dict(zip(rows["layer"], rows["latency_s"].astype(float), strict=True))
            energy = dict(zip(rows["layer"], rows["energy_j"].astype(float), strict=True))
        per_lat = [{n: lat[v] for n, v in own.items()} for own in names]
        per_e = [sum(energy[v] for v in own.values()) for own in names]
        out.append(StageExperts(shards, tuple(per_lat), tuple(per_e)))
    return out


def peak_activation_bytes(workload: Workload) -> int:
    """The largest activation working set of one layer (its act inputs plus outputs)."""
    return max((layer.input_bytes().get("act", 0) + layer.output_bytes().get("act", 0)
                for layer in workload.layers), default=0)


def check_shards(system: System, workload: Workload, *, tp: int = 1, pp: int = 1,
                 dp: int = 1, micro_batches: int = 1, ep: int = 1,
                 activation_floor: int = 0) -> list[Workload]:
    """The per-stage workloads of one micro-batch under the plan, after checking the plan
    against the system and the model and each chip's shard against its DRAM, with at
    least ``activation_floor`` bytes of activations (one-line
    :class:`~npusim.errors.MappingError` otherwise)."""
    return _shards(system, workload, Plan(tp, pp, dp, micro_batches, ep),
                   activation_floor=activation_floor)


def simulate_system(system: System | str | Path, workload: Workload, *, tp: int = 1,
                    pp: int = 1, dp: int = 1, micro_batches: int = 1, ep: int = 1,
                    algorithm: str = "ring", memory: str = "bandwidth",
                    weights_resident: bool | None = None, trace: bool = False,
                    allreduce_precision: str = "accum",
                    all_to_all: str = "direct") -> SystemResult:
    """Simulate one step of ``workload`` on ``system`` under a ``tp x pp x dp`` plan
    (routed experts over ``ep`` chips of a stage).

    ``workload``'s batch is one replica's; ``micro_batches`` cut it for the pipeline.
    ``algorithm`` is the all-reduce's (``ring`` or ``tree``), ``allreduce_precision`` the
    precision its partial sums cross the links at (:data:`ALLREDUCE_PRECISIONS`; default
    the accumulation precision, ``activations`` for a quantised all-reduce), ``all_to_all``
    the expert dispatch and combine's (``direct`` or ``pairwise``). ``memory`` and
    ``weights_resident`` go to each chip's :func:`npusim.simulate`. Errors (a plan that does
    not divide the model, more chips than the system has, a shard that does not fit a
    chip) are one-line :class:`~npusim.errors.MappingError`.
    """
    sys_ = system if isinstance(system, System) else load_system(system)
    plan = Plan(tp, pp, dp, micro_batches, ep)
    stages, results, experts = simulate_shards(sys_, workload, plan, memory=memory,
                                               weights_resident=weights_resident)
    return run_step(sys_, workload, plan, stages, results, experts, algorithm=algorithm,
                    trace=trace, memory=memory, allreduce_precision=allreduce_precision,
                    all_to_all=all_to_all)


def simulate_shards(system: System, workload: Workload, plan: Plan, *,
                    memory: str = "bandwidth", weights_resident: bool | None = None,
                    count: int | None = None
                    ) -> tuple[list[Workload], list[Result], tuple[StageExperts, ...]]:
    """Each stage's shard (one micro-batch), its Result on the system's chip and (under
    expert parallelism) its members' routed experts, after the checks of
    :func:`check_shards` (the plan against ``count`` chips, default the system's). Every
    rank of a stage holds the same shard but for its routed experts, so a stage is
    simulated once (all stages together cost about one whole model), its routed
    projections apart."""
    stages = _shards(system, workload, plan, count)
    chip = system.chip_spec
    kw: dict[str, Any] = dict(memory=memory, weights_resident=weights_resident)
    if plan.ep == 1:
        return stages, [simulate_chip(chip, st, **kw) for st in stages], ()
    base = []
    for st in stages:
        side = routed_side(st.layers)
        base.append(Workload(st.name, tuple(x for x in st.layers if x.name not in side),
                             st.meta))
    return (stages, [simulate_chip(chip, b, **kw) for b in base],
            tuple(_stage_experts(system, workload, plan, memory, weights_resident)))


def run_step(system: System, workload: Workload, plan: Plan, stages: list[Workload],
             results: list[Result], experts: tuple[StageExperts, ...] = (), *,
             algorithm: str = "ring", trace: bool = False,
             memory: str = "bandwidth", allreduce_precision: str = "accum",
             all_to_all: str = "direct") -> SystemResult:
    """The step of ``plan`` on ``system`` from its stages' simulated Results."""
    if algorithm not in ("ring", "tree"):
        raise MappingError(f"unknown all-reduce algorithm {algorithm!r} (use ring or tree)")
    if all_to_all not in ("direct", "pairwise"):
        raise MappingError(f"unknown all-to-all algorithm {all_to_all!r} (use direct or "
                           "pairwise)")
    check_allreduce_precision(allreduce_precision)
    batch = int(workload.meta.get("batch", 1))  # type: ignore[call-overload]
    check_plan(plan, system.count, batch=batch)
    if plan.ep > 1 and len(experts) != len(stages):
        raise MappingError(f"ep {plan.ep}: the stages' expert shards are missing "
                           "(simulate_shards with the same ep)")
    chip_stages = {}
    members: list[list[StageProgram]] = []
    if plan.ep > 1:
        members = []
        for r, st, ex in zip(results, stages, experts, strict=True):
            lat = _latencies(r)
            layout = (_moe_parts(st.layers), routed_side(st.layers))
            members.append([stage_program(lat, st, plan.tp, sh, ex.latency_s[m],
                                          layout=layout,
                                          allreduce_precision=allreduce_precision)
                            for m, sh in enumerate(ex.shards)])
        chip_stages = {(d, s, t): members[s][(d * plan.tp + t) % plan.ep]
                       for d in range(plan.dp) for s in range(plan.pp)
                       for t in range(plan.tp)}
    program = SystemProgram(
        tuple(members[s][0] for s in range(plan.pp)) if plan.ep > 1 else
        tuple(stage_program(r, st, plan.tp, allreduce_precision=allreduce_precision)
              for r, st in zip(results, stages, strict=True)),
        tp=plan.tp, dp=plan.dp, micro_batches=plan.micro_batches,
        placement=tuple(range(plan.chips)), algorithm=algorithm, ep=plan.ep,
        chip_stages=chip_stages, all_to_all=all_to_all)
    step = run_system_step(system, program, trace=trace)
    return SystemResult(system, plan, workload.name, batch, tuple(results), step,
                        {"algorithm": algorithm, "memory_model": memory,
                         "allreduce_precision": allreduce_precision,
                         **({"all_to_all": all_to_all} if plan.ep > 1 else {})}, workload,
                        experts if plan.ep > 1 else ())
