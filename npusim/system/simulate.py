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
"""

from __future__ import annotations

from pathlib import Path

from npusim.engine.system import Segment, StageProgram, SystemProgram, run_system_step
from npusim.errors import MappingError
from npusim.result import Result
from npusim.simulate_chip import simulate_chip
from npusim.spec.system import System, load_system
from npusim.system.parallel import (
    Plan,
    check_plan,
    shard_config,
    stage_footprint,
    stage_workload,
)
from npusim.system.result import SystemResult
from npusim.workloads.hf_config import ModelConfig
from npusim.workloads.ir import Workload
from npusim.workloads.llm import from_hf_config

__all__ = ["check_shards", "peak_activation_bytes", "run_step", "simulate_shards",
           "simulate_system", "stage_program"]

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


def stage_program(result: Result, workload: Workload, tp: int) -> StageProgram:
    """Cut a stage's simulated layers into segments at its tensor-parallel meetings.

    A meeting's tensor is the layer's activation output: whole for an all-reduce (every
    rank holds a partial sum of all of it), ``tp`` slices for the logits' all-gather. The
    bytes sent to the next stage are the last layer's activation output.
    """
    lat = dict(zip(result.layers["layer"], result.layers["latency_s"], strict=True))
    segs: list[Segment] = []
    acc, first = 0.0, None
    for layer in workload.layers:
        acc += float(lat[layer.name])
        first = first or layer.name
        meet = _meeting(layer.name) if tp > 1 else None
        if meet is not None:
            out = float(layer.output_bytes().get("act", 0))
            kind, cause = meet
            nbytes = out * tp if kind == "all_gather" else out
            segs.append(Segment(f"{first} … {layer.name}", acc, kind, nbytes, cause))
            acc, first = 0.0, None
    if first is not None:
        segs.append(Segment(f"{first} … {workload.layers[-1].name}", acc))
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
        check_plan(plan, count)
        return [wl]
    check_plan(plan, count, cfg, batch)
    prec: dict[str, str] = wl.meta["precision"]  # type: ignore[assignment]
    phase = str(wl.meta["phase"])
    shard = shard_config(cfg, plan.tp)
    micro = from_hf_config(shard, phase, batch=batch // plan.micro_batches,  # type: ignore[arg-type]
                           prompt_len=int(wl.meta["prompt_len"]),  # type: ignore[call-overload]
                           context_len=int(wl.meta["context_len"]),  # type: ignore[call-overload]
                           weights=prec["weights"], activations=prec["activations"],
                           kv=prec["kv"], accum=prec["accum"],
                           attention=str(wl.meta.get("attention", "fused")))
    out = []
    for s in range(plan.pp):
        st = stage_workload(micro, s, plan.pp)
        act = max(activation_floor, peak_activation_bytes(st))
        stage_footprint(system.chip_spec, shard, s, plan.pp, batch=batch,
                        context_len=int(wl.meta["context_len"]),  # type: ignore[call-overload]
                        weights=prec["weights"], kv=prec["kv"], activation_bytes=act)
        out.append(st)
    return out


def peak_activation_bytes(workload: Workload) -> int:
    """The largest activation working set of one layer (its act inputs plus outputs)."""
    return max((layer.input_bytes().get("act", 0) + layer.output_bytes().get("act", 0)
                for layer in workload.layers), default=0)


def check_shards(system: System, workload: Workload, *, tp: int = 1, pp: int = 1,
                 dp: int = 1, micro_batches: int = 1,
                 activation_floor: int = 0) -> list[Workload]:
    """The per-stage workloads of one micro-batch under the plan, after checking the plan
    against the system and the model and each chip's shard against its DRAM, with at
    least ``activation_floor`` bytes of activations (one-line
    :class:`~npusim.errors.MappingError` otherwise)."""
    return _shards(system, workload, Plan(tp, pp, dp, micro_batches),
                   activation_floor=activation_floor)


def simulate_system(system: System | str | Path, workload: Workload, *, tp: int = 1,
                    pp: int = 1, dp: int = 1, micro_batches: int = 1,
                    algorithm: str = "ring", memory: str = "bandwidth",
                    weights_resident: bool | None = None, trace: bool = False) -> SystemResult:
    """Simulate one step of ``workload`` on ``system`` under a ``tp x pp x dp`` plan.

    ``workload``'s batch is one replica's; ``micro_batches`` cut it for the pipeline.
    ``algorithm`` is the all-reduce's (``ring`` or ``tree``). ``memory`` and
    ``weights_resident`` go to each chip's :func:`npusim.simulate`. Errors (a plan that does
    not divide the model, more chips than the system has, a shard that does not fit a
    chip) are one-line :class:`~npusim.errors.MappingError`.
    """
    sys_ = system if isinstance(system, System) else load_system(system)
    plan = Plan(tp, pp, dp, micro_batches)
    stages, results = simulate_shards(sys_, workload, plan, memory=memory,
                                      weights_resident=weights_resident)
    return run_step(sys_, workload, plan, stages, results, algorithm=algorithm, trace=trace,
                    memory=memory)


def simulate_shards(system: System, workload: Workload, plan: Plan, *,
                    memory: str = "bandwidth", weights_resident: bool | None = None,
                    count: int | None = None) -> tuple[list[Workload], list[Result]]:
    """Each stage's shard (one micro-batch) and its Result on the system's chip, after the
    checks of :func:`check_shards` (the plan against ``count`` chips, default the
    system's). Every rank of a stage holds the same shard, so a stage is simulated once
    (all stages together cost about one whole model)."""
    stages = _shards(system, workload, plan, count)
    chip = system.chip_spec
    return stages, [simulate_chip(chip, st, memory=memory, weights_resident=weights_resident)
                    for st in stages]


def run_step(system: System, workload: Workload, plan: Plan, stages: list[Workload],
             results: list[Result], *, algorithm: str = "ring", trace: bool = False,
             memory: str = "bandwidth") -> SystemResult:
    """The step of ``plan`` on ``system`` from its stages' simulated Results."""
    if algorithm not in ("ring", "tree"):
        raise MappingError(f"unknown all-reduce algorithm {algorithm!r} (use ring or tree)")
    batch = int(workload.meta.get("batch", 1))  # type: ignore[call-overload]
    check_plan(plan, system.count, batch=batch)
    program = SystemProgram(
        tuple(stage_program(r, st, plan.tp) for r, st in zip(results, stages, strict=True)),
        tp=plan.tp, dp=plan.dp, micro_batches=plan.micro_batches,
        placement=tuple(range(plan.chips)), algorithm=algorithm)
    step = run_system_step(system, program, trace=trace)
    return SystemResult(system, plan, workload.name, batch, tuple(results), step,
                        {"algorithm": algorithm, "memory_model": memory}, workload)
