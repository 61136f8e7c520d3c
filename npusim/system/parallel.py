"""Parallelism plans and the shard of a transformer each chip holds.

A :class:`Plan` is ``tp x pp x dp`` chips (tensor-parallel ranks, pipeline stages, data
replicas) plus the micro-batches a pipeline step is cut into. Replica ``d``'s stage ``s``
rank ``t`` sits at system position ``(d * pp + s) * tp + t``: the ranks of one
tensor-parallel group are neighbours, the group whose collectives run most often.

Tensor parallelism is Megatron-LM's (Shoeybi et al. 2019, arXiv:1909.08053): Q, K, V and
the MLP's up (and gate) projections are split by columns, O and down by rows, so every
rank holds ``heads/tp`` query heads, ``kv_heads/tp`` KV heads (and their cache) and
``intermediate/tp`` MLP columns; the embedding table and the LM head are split by vocabulary
rows. Each rank's partial sums meet in an all-reduce after attention's O projection and
after the MLP's down projection, another after the (vocabulary-parallel) embedding lookup,
and the LM head's logit slices in an all-gather. The shard is the model config with those
four sizes divided, so a rank's compute is an ordinary workload of
:func:`npusim.workloads.from_hf_config`. Norms and residual adds run whole on every rank.

Expert parallelism (``ep``, for mixture-of-experts models) shards every MoE layer's routed
experts over ``ep`` chips of a stage, ``experts/ep`` consecutive experts each, as DeepSeek-V3
serves its experts (DeepSeek-AI 2024, arXiv:2412.19437, section 3.4) and vLLM's expert
parallelism does: the expert group is drawn from the stage's ``tp x dp`` chips (``ep`` a
multiple of ``tp`` and a divisor of ``tp x dp``), so attention and the dense parts stay
data- (and tensor-) parallel while each token travels to the chips that hold its experts
(:mod:`npusim.system.experts`). With ``ep = 1`` and ``tp > 1`` the routed and shared
experts are split by columns like the MLP (``expert_intermediate/tp``); with ``ep > 1`` the
routed experts are whole on their chip and only the shared experts are split.

Pipeline parallelism gives stage ``s`` the blocks ``s*L/pp … (s+1)*L/pp - 1``; the first
stage also holds the embeddings, the last the final norm and LM head (and, with tied
embeddings, its own copy of the table). Each stage hands its activations to the next.

A chip's weights are counted by tensor class (:mod:`npusim.workloads.precision`), each at
its precision, so ``experts=mxfp4,default=bf16`` sizes a shard as it sizes a model on one
chip (:func:`stage_weight_bytes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from npusim.errors import MappingError
from npusim.spec.arch import Chip
from npusim.workloads.hf_config import ModelConfig, kv_cache_bytes, param_counts_by_class
from npusim.workloads.ir import Layer, Workload, bytes_of
from npusim.workloads.llm import Footprint, require_fits
from npusim.workloads.precision import WeightsLike, weight_precision

__all__ = ["Plan", "check_plan", "shard_config", "stage_footprint", "stage_layers",
           "stage_params_by_class", "stage_weight_bytes", "stage_workload"]

_BLOCK = re.compile(r"^l(\d+)\.")


@dataclass(frozen=True)
class Plan:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    micro_batches: int = 1
    #: expert-parallel group size (chips of a stage sharing one copy of the experts)
    ep: int = 1

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp

    def describe(self) -> str:
        return (f"tp {self.tp} x pp {self.pp} x dp {self.dp}"
                + (f", ep {self.ep}" if self.ep > 1 else "")
                + (f", {self.micro_batches} micro-batches" if self.micro_batches > 1 else ""))


def check_plan(plan: Plan, count: int, cfg: ModelConfig | None = None, batch: int = 1) -> None:
    """One-line :class:`MappingError` for a plan the system or the model cannot take."""
    for key in ("tp", "pp", "dp", "micro_batches", "ep"):
        if getattr(plan, key) < 1:
            raise MappingError(f"{key} must be at least 1, got {getattr(plan, key)}")
    if plan.ep > 1 and (plan.ep % plan.tp or (plan.tp * plan.dp) % plan.ep):
        raise MappingError(f"ep {plan.ep} must be a multiple of tp {plan.tp} and divide the "
                           f"{plan.tp * plan.dp} chips of a stage (tp x dp): the expert "
                           f"group spans data-parallel replicas (e.g. --dp {plan.ep} --ep "
                           f"{plan.ep})")
    if plan.chips > count:
        raise MappingError(f"{plan.describe()} needs {plan.chips} chips; the system has "
                           f"{count}")
    if batch % plan.micro_batches:
        raise MappingError(f"{plan.micro_batches} micro-batches do not divide the batch of "
                           f"{batch}")
    if cfg is None:
        return
    if plan.ep > 1 and not cfg.is_moe:
        raise MappingError(f"{cfg.name}: ep {plan.ep} needs a mixture-of-experts model; "
                           "this one has no routed experts")
    if cfg.is_moe and cfg.experts % plan.ep:
        raise MappingError(f"{cfg.name}: ep {plan.ep} does not divide its {cfg.experts} "
                           "routed experts")
    moe_cols: tuple[tuple[str, int, int], ...] = ()
    if cfg.is_moe:
        moe_cols = (("shared-expert columns", cfg.shared_intermediate, plan.tp),)
        if plan.ep == 1:
            moe_cols += (("expert columns", cfg.expert_intermediate, plan.tp),)
    for what, size, by in (*moe_cols, ("query heads", cfg.heads, plan.tp),
                           ("KV heads", cfg.kv_heads, plan.tp),
                           ("MLP columns (intermediate size)", cfg.intermediate, plan.tp),
                           ("vocabulary rows", cfg.vocab, plan.tp),
                           ("layers", cfg.layers, plan.pp)):
        if size % by:
            axis = "tp" if what != "layers" else "pp"
            raise MappingError(f"{cfg.name}: {axis} {by} does not divide its {size} {what}")


def shard_config(cfg: ModelConfig, tp: int, ep: int = 1) -> ModelConfig:
    """The config of one tensor-parallel rank's shard (see the module docstring); its
    routed experts are split by columns only without expert parallelism."""
    if tp == 1:
        return cfg
    return replace(cfg, heads=cfg.heads // tp, kv_heads=cfg.kv_heads // tp,
                   intermediate=cfg.intermediate // tp, vocab=cfg.vocab // tp,
                   shared_intermediate=cfg.shared_intermediate // tp,
                   expert_intermediate=(cfg.expert_intermediate // tp if ep == 1
                                        else cfg.expert_intermediate))


def stage_layers(layers: tuple[Layer, ...], stage: int, pp: int,
                 n_blocks: int) -> tuple[Layer, ...]:
    """The layers of pipeline stage ``stage``: its blocks, plus the embeddings on the first
    stage and the head on the last."""
    per = n_blocks // pp
    lo, hi = stage * per, (stage + 1) * per
    out = []
    seen_block = False
    for layer in layers:
        m = _BLOCK.match(layer.name)
        if m:
            seen_block = True
            if lo <= int(m.group(1)) < hi:
                out.append(layer)
        elif (not seen_block and stage == 0) or (seen_block and stage == pp - 1):
            out.append(layer)
    return tuple(out)


def stage_workload(wl: Workload, stage: int, pp: int) -> Workload:
    """Stage ``stage`` of ``pp`` of a workload built by ``from_hf_config``."""
    if pp == 1:
        return wl
    cfg = wl.meta["config"]
    assert isinstance(cfg, ModelConfig)
    return Workload(f"{wl.name}-stage{stage}", stage_layers(wl.layers, stage, pp, cfg.layers),
                    {**wl.meta, "stage": stage})


def stage_params_by_class(shard: ModelConfig, stage: int, pp: int) -> dict[str, int]:
    """Parameters of stage ``stage`` by weight class (:mod:`npusim.workloads.precision`):
    its blocks' attention, MLP, routed and shared experts, router and norms, each block
    counted as what it is (dense or mixture of experts), plus the embeddings on the first
    stage and the final norm and LM head on the last (with tied embeddings and ``pp > 1``
    the last stage's own copy of the table is its ``lm_head``). Every routed expert is
    counted; a chip of an expert group holds ``1/ep`` of them (:func:`stage_footprint`).
    The multi-token-prediction module, not run, is left out."""
    per = shard.layers // pp

    def count(blocks: range) -> dict[str, int]:
        return param_counts_by_class(replace(
            shard, layers=len(blocks),
            moe_layers=tuple(shard.moe_at(i) for i in blocks) if shard.is_moe else (),
            layer_windows=tuple(shard.window_at(i) for i in blocks)
            if shard.layer_windows else ()), mtp=False)

    rest = count(range(0))  # no block: embeddings, final norm, LM head
    embed = dict.fromkeys(rest, 0)
    embed["embeddings"] = (shard.vocab * shard.embed_dim
                           + (shard.position_rows + shard.type_vocab) * shard.hidden)
    if shard.embed_dim != shard.hidden:  # OPT's project_in (project_out goes with the head)
        embed["embeddings"] += shard.embed_dim * shard.hidden
    head = {c: rest[c] - embed[c] for c in rest}
    if shard.tied_embeddings and pp > 1:
        head["lm_head"] += shard.vocab * shard.embed_dim
    blocks = count(range(stage * per, (stage + 1) * per))
    return {c: blocks[c] - rest[c] + (embed[c] if stage == 0 else 0)
            + (head[c] if stage == pp - 1 else 0) for c in rest}


def _stage_params(shard: ModelConfig, stage: int, pp: int) -> int:
    """Parameters of stage ``stage``, every class together."""
    return sum(stage_params_by_class(shard, stage, pp).values())


def stage_weight_bytes(shard: ModelConfig, stage: int, pp: int, weights: WeightsLike,
                       ep: int = 1) -> int:
    """DRAM bytes of the weights one chip of stage ``stage`` holds: each class of
    :func:`stage_params_by_class` at its precision under ``weights`` (a name, or a class
    mapping such as ``{"experts": "mxfp4", "default": "bf16"}``), the routed experts
    divided over the ``ep`` chips of an expert group."""
    total = 0
    for cls, n in stage_params_by_class(shard, stage, pp).items():
        if n:
            total += bytes_of(n // ep if cls == "experts" else n,
                              weight_precision(weights, cls))
    return total


def stage_footprint(chip: Chip, shard: ModelConfig, stage: int, pp: int, *, batch: int,
                    context_len: int, weights: WeightsLike, kv: str, activation_bytes: int,
                    ep: int = 1) -> Footprint:
    """DRAM one chip of stage ``stage`` needs (its weights, each class at its precision and
    ``1/ep`` of the routed experts, :func:`stage_weight_bytes`; the KV cache of its layers
    for the replica's whole ``batch``), checked against the chip: one-line MappingError."""
    fp = Footprint(stage_weight_bytes(shard, stage, pp, weights, ep),
                   kv_cache_bytes(replace(shard, layers=shard.layers // pp), batch,
                                  context_len, kv),
                   activation_bytes)
    try:
        return require_fits(chip, fp)
    except MappingError as exc:
        raise MappingError(f"the shard of one chip (stage {stage}) does not fit: {exc}") from None
