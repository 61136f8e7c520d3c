"""The layers of one decoder (or encoder) block, per form: attention (MHA/GQA/MQA, latent,
windowed, with sinks and q/k norms) and FFN (dense, mixture of experts with shared experts).

Used by :func:`npusim.workloads.llm.from_hf_config`, which documents the forms; the layer
names (``l{i}.q_proj`` …) are part of the contract with the compiler, the weight classes
(:mod:`npusim.workloads.precision`) and expert parallelism.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from npusim.workloads.hf_config import ModelConfig
from npusim.workloads.ir import (
    Attention,
    Elementwise,
    Embedding,
    ExpertMatmul,
    Layer,
    Matmul,
    Norm,
    Softmax,
    TensorKind,
)
from npusim.workloads.precision import WeightsLike, weight_precision
from npusim.workloads.routing import Routing, route

__all__ = ["BlockCtx", "block", "embeddings", "head"]

Phase = Literal["prefill", "decode"]


@dataclass(frozen=True)
class BlockCtx:
    """What every block builder needs: shapes of this phase and the precisions."""

    cfg: ModelConfig
    phase: Phase
    batch: int
    q_len: int  # query tokens per sequence (prompt in prefill, 1 in decode)
    kv_len: int  # tokens attended to per sequence
    weights: WeightsLike
    act: str
    kv: str
    fused: bool = True
    routing: Routing = field(default_factory=lambda: Routing("uniform"))
    logits_all: bool = False
    #: block index -> ordinal among the MoE layers
    moe_ordinal: dict[int, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.batch * self.q_len

    @property
    def float_precision(self) -> str:
        """Softmax and norms: the activation precision, or fp16 when that is narrower."""
        return self.act if self.act in ("fp16", "bf16", "fp32") else "fp16"

    def w(self, cls: str) -> str:
        return weight_precision(self.weights, cls)

    def linear(self, name: str, k: int, n: int, cls: str, out_kind: TensorKind = "act",
               rows: int | None = None, activation: str | None = None) -> Matmul:
        return Matmul(name, m=self.tokens if rows is None else rows, k=k, n=n,
                      b_kind="weight", out_kind=out_kind, act_precision=self.act,
                      weight_precision=self.w(cls), activation=activation,
                      out_precision=self.kv if out_kind == "kv" else self.act)

    def vec(self, name: str, elements: int, op: str, inputs: int) -> Elementwise:
        return Elementwise(name, elements=elements, op=op, inputs=inputs, precision=self.act)

    def norm(self, name: str, cols: int | None = None, rows: int | None = None) -> Norm:
        return Norm(name, rows=self.tokens if rows is None else rows,
                    cols=self.cfg.hidden if cols is None else cols, norm=self.cfg.norm,
                    precision=self.float_precision)


# Attention -------------------------------------------------------------------------------

def _core(x: BlockCtx, p: str, *, heads: int, kv_heads: int, d: int, dv: int,
          kv_kind: TensorKind, kv_prec: str, window: int, kv_shared: bool = False) -> list[Layer]:
    """Scores, softmax and context: one fused Attention layer, or the materialised three.
    Materialised, each tensor has one size everywhere: the scores at the softmax precision
    (written by qk, read by the softmax), the probabilities at the activation precision
    (written by the softmax, read by pv)."""
    c = x.cfg
    win = window if window and window < x.kv_len else None
    sm = x.float_precision
    causal = not c.encoder and x.phase == "prefill"
    if x.fused:
        return [Attention(f"{p}attention", batch=x.batch, heads=heads, kv_heads=kv_heads,
                          q_len=x.q_len, kv_len=x.kv_len, head_dim=d, v_head_dim=dv,
                          causal=causal, kv_kind=kv_kind, act_precision=x.act,
                          kv_precision=kv_prec, softmax_precision=sm, window=win,
                          kv_shared=kv_shared, sinks=c.attention_sinks)]
    # Eager: the full q x keys block (the mask is applied to computed scores); a window
    # limits the keys a query block can see to the window plus the block's span.
    keys = x.kv_len if win is None else min(x.kv_len, win + (x.q_len - 1 if causal else 0))
    g = heads // kv_heads
    cols = keys + (1 if c.attention_sinks else 0)
    return [
        Matmul(f"{p}qk", batch=x.batch * kv_heads, m=g * x.q_len, k=d, n=keys, b_kind=kv_kind,
               act_precision=x.act, weight_precision=kv_prec, out_precision=sm),
        Softmax(f"{p}softmax", rows=x.batch * heads * x.q_len, cols=cols, precision=sm,
                out_precision=x.act),
        Matmul(f"{p}pv", batch=x.batch * kv_heads, m=g * x.q_len, k=keys, n=dv,
               b_kind=kv_kind, act_precision=x.act, weight_precision=kv_prec,
               out_precision=x.act),
    ]


def _mha(x: BlockCtx, p: str, i: int) -> list[Layer]:
    c = x.cfg
    h, kvh, d = c.heads, c.kv_heads, c.head_dim
    out: list[Layer] = [
        x.linear(f"{p}q_proj", c.hidden, h * d, "attention"),
        x.linear(f"{p}k_proj", c.hidden, kvh * d, "attention", out_kind="kv"),
        x.linear(f"{p}v_proj", c.hidden, kvh * d, "attention", out_kind="kv"),
    ]
    if c.qk_norm:  # RMSNorm over head_dim, per head
        out += [x.norm(f"{p}q_norm", cols=d, rows=x.tokens * h),
                x.norm(f"{p}k_norm", cols=d, rows=x.tokens * kvh)]
    if c.positions == "rotary" and (not c.rope_layers or c.rope_layers[i]):
        # (Llama 4's NoPE layers and EXAONE 4's global layers apply none)
        out.append(x.vec(f"{p}rotary", x.tokens * (h + kvh) * c.rotary_dim, "rotary", 1))
    cached = x.phase == "decode"
    kv_kind: TensorKind = "kv" if (x.fused or cached) else "act"
    kv_prec = x.kv if (x.fused or cached) else x.act
    out += _core(x, p, heads=h, kv_heads=kvh, d=d, dv=d, kv_kind=kv_kind, kv_prec=kv_prec,
                 window=c.window_at(i))
    out.append(x.linear(f"{p}o_proj", h * d, c.hidden, "attention"))
    return out


def _mla_query(x: BlockCtx, p: str, width: int) -> list[Layer]:
    c = x.cfg
    if c.q_lora_rank:
        return [x.linear(f"{p}q_a_proj", c.hidden, c.q_lora_rank, "attention"),
                x.norm(f"{p}q_a_norm", cols=c.q_lora_rank),
                x.linear(f"{p}q_b_proj", c.q_lora_rank, width, "attention")]
    return [x.linear(f"{p}q_proj", c.hidden, width, "attention")]


def _per_head(x: BlockCtx, name: str, k: int, n: int) -> ExpertMatmul:
    """A product with one ``k x n`` weight per head (absorbed MLA): a grouped GEMM whose
    groups are the heads, each over every token."""
    return ExpertMatmul(name, tokens_per_expert=(x.tokens,) * x.cfg.heads, k=k, n=n,
                        act_precision=x.act, weight_precision=x.w("attention"),
                        out_precision=x.act)


def _mla(x: BlockCtx, p: str, i: int) -> list[Layer]:
    """DeepSeek multi-head latent attention. The cache holds, per token, the compressed
    latent (kv_lora_rank) and the shared rotary key (qk_rope_dim), written by kv_a_proj.

    Prefill, expanded: kv_b_proj expands the latent into per-head K (qk_nope) and V
    (v_head_dim) as activations, attention per head over head_dim qk_nope + qk_rope.
    Decode, absorbed (DeepSeek-V3's reference ``attn_impl="absorb"``): the query's nope
    part is multiplied into the latent space per head (W_UK), attention runs as one shared
    latent head (K = latent + rope, V = the latent itself) over the cache, the per-head
    output is taken back to v_head_dim (W_UV), then o_proj."""
    c = x.cfg
    h, nope, rope, lora = c.heads, c.qk_nope_dim, c.qk_rope_dim, c.kv_lora_rank
    dv = c.v_head_dim or c.head_dim
    out = _mla_query(x, p, h * (nope + rope))
    out += [x.linear(f"{p}kv_a_proj", c.hidden, lora + rope, "attention", out_kind="kv"),
            x.norm(f"{p}kv_a_norm", cols=lora)]
    if c.qk_norm:
        out += [x.norm(f"{p}q_norm", cols=nope + rope, rows=x.tokens * h)]
    out.append(x.vec(f"{p}rotary", x.tokens * (h + 1) * rope, "rotary", 1))
    if x.phase == "prefill":
        out.append(x.linear(f"{p}kv_b_proj", lora, h * (nope + dv), "attention"))
        out += _core(x, p, heads=h, kv_heads=h, d=nope + rope, dv=dv, kv_kind="act",
                     kv_prec=x.act, window=c.window_at(i))
    else:
        out.append(_per_head(x, f"{p}q_absorb", nope, lora))
        out += _core(x, p, heads=h, kv_heads=1, d=lora + rope, dv=lora, kv_kind="kv",
                     kv_prec=x.kv, window=c.window_at(i), kv_shared=True)
        out.append(_per_head(x, f"{p}o_absorb", lora, dv))
    out.append(x.linear(f"{p}o_proj", h * dv, c.hidden, "attention"))
    return out


# FFN -------------------------------------------------------------------------------------

def _mlp(x: BlockCtx, p: str) -> list[Layer]:
    c = x.cfg
    e = x.tokens * c.intermediate
    if c.gated_mlp:
        return [x.linear(f"{p}gate_proj", c.hidden, c.intermediate, "mlp"),
                x.linear(f"{p}up_proj", c.hidden, c.intermediate, "mlp"),
                x.vec(f"{p}swiglu", e, "swiglu", 2),
                x.linear(f"{p}down_proj", c.intermediate, c.hidden, "mlp")]
    return [x.linear(f"{p}fc_in", c.hidden, c.intermediate, "mlp"),
            x.vec(f"{p}{c.activation}", e, c.activation, 1),
            x.linear(f"{p}fc_out", c.intermediate, c.hidden, "mlp")]


def _moe(x: BlockCtx, p: str, i: int) -> list[Layer]:
    """Router (hidden -> E), its score and top-k, the routed experts as grouped GEMMs over
    the rows routed to each, shared experts as a dense FFN, and the weighted combine."""
    c = x.cfg
    t, e, k = x.tokens, c.experts, c.experts_per_token
    loads = route(x.routing, x.moe_ordinal[i], t, e, k, block=i)
    rows = t * k
    out: list[Layer] = [x.linear(f"{p}router", c.hidden, e, "router")]
    if c.router_score == "sigmoid":
        out.append(x.vec(f"{p}router_score", t * e, "sigmoid", 1))
    else:
        out.append(Softmax(f"{p}router_score", rows=t, cols=e, precision=x.float_precision))
    # Top-k by one pass of compares over each token's E scores (k << E).
    out.append(x.vec(f"{p}topk", t * e, "max", 1))
    ei, we = c.expert_intermediate, x.w("experts")

    def experts(name: str, kk: int, n: int, act: str | None = None) -> ExpertMatmul:
        return ExpertMatmul(f"{p}experts.{name}", tokens_per_expert=loads, k=kk, n=n,
                            activation=act, act_precision=x.act, weight_precision=we,
                            out_precision=x.act)

    if c.gated_mlp:
        out += [experts("gate_proj", c.hidden, ei), experts("up_proj", c.hidden, ei),
                x.vec(f"{p}experts.swiglu", rows * ei, "swiglu", 2)]
    else:
        out += [experts("up_proj", c.hidden, ei),
                x.vec(f"{p}experts.{c.activation}", rows * ei, c.activation, 1)]
    # The routing weight scales each routed row in the down projection's epilogue.
    out.append(experts("down_proj", ei, c.hidden, act="mul"))
    inputs = k
    if c.shared_experts:
        si = c.shared_experts * c.shared_intermediate
        out += [x.linear(f"{p}shared.gate_proj", c.hidden, si, "shared_experts"),
                x.linear(f"{p}shared.up_proj", c.hidden, si, "shared_experts"),
                x.vec(f"{p}shared.swiglu", t * si, "swiglu", 2),
                x.linear(f"{p}shared.down_proj", si, c.hidden, "shared_experts")]
        if c.shared_expert_gate:  # qwen2_moe: sigmoid(hidden -> 1) scales the output
            out += [x.linear(f"{p}shared.expert_gate", c.hidden, 1, "shared_experts",
                             activation="sigmoid"),
                    x.vec(f"{p}shared.scale", t * c.hidden, "mul", 1)]
        inputs += 1
    out.append(x.vec(f"{p}experts.combine", t * c.hidden, "add", inputs))
    return out


# Blocks ----------------------------------------------------------------------------------

def block(x: BlockCtx, i: int) -> list[Layer]:
    """Block ``i``: norms, attention of its form, FFN of its kind, residual adds."""
    c, p = x.cfg, f"l{i}."
    th = x.tokens * c.hidden
    attn = _mla(x, p, i) if c.attention_kind == "mla" else _mha(x, p, i)
    ffn = _moe(x, p, i) if c.moe_at(i) else _mlp(x, p)
    if c.parallel_block:  # GPT-J: x + attn(ln(x)) + mlp(ln(x))
        return [x.norm(f"{p}ln"), *attn, *ffn, x.vec(f"{p}residual", th, "add", 3)]
    if c.post_norm:  # BERT, OPT with do_layer_norm_before=False
        return [*attn, x.vec(f"{p}attn_residual", th, "add", 2), x.norm(f"{p}attn_norm"),
                *ffn, x.vec(f"{p}mlp_residual", th, "add", 2), x.norm(f"{p}mlp_norm")]
    # Extra norms (Gemma 2/3: on the attention and the FFN outputs before the residual).
    extra = [x.norm(f"{p}post_attn_norm")] if c.extra_norms >= 1 else []
    extra_ffn = [x.norm(f"{p}post_mlp_norm")] if c.extra_norms >= 2 else []
    extra_ffn += [x.norm(f"{p}extra_norm{j}") for j in range(2, c.extra_norms)]
    return [x.norm(f"{p}attn_norm"), *attn, *extra, x.vec(f"{p}attn_residual", th, "add", 2),
            x.norm(f"{p}mlp_norm"), *ffn, *extra_ffn,
            x.vec(f"{p}mlp_residual", th, "add", 2)]


def embeddings(x: BlockCtx) -> list[Layer]:
    c = x.cfg
    out: list[Layer] = [Embedding("embed_tokens", tokens=x.tokens, hidden=c.embed_dim,
                                  precision=x.act)]
    if c.embed_dim != c.hidden:
        out.append(x.linear("project_in", c.embed_dim, c.hidden, "embeddings"))
    extra = []
    if c.position_rows:
        extra.append(Embedding("embed_positions", tokens=x.tokens, hidden=c.hidden,
                               precision=x.act))
    if c.type_vocab:
        extra.append(Embedding("embed_token_types", tokens=x.tokens, hidden=c.hidden,
                               precision=x.act))
    if extra:
        out += [*extra, x.vec("embed_add", x.tokens * c.hidden, "add", 1 + len(extra))]
    if c.encoder:
        out.append(x.norm("embed_norm"))
    return out


def head(x: BlockCtx) -> list[Layer]:
    """Final norm and LM head; the head over every position or one per sequence."""
    c = x.cfg
    out: list[Layer] = []
    if c.final_norm:
        out.append(x.norm("final_norm"))
    if c.encoder:
        return out
    rows = x.tokens if x.logits_all else x.batch
    if c.embed_dim != c.hidden:
        out.append(x.linear("project_out", c.hidden, c.embed_dim, "lm_head", rows=rows))
    out.append(x.linear("lm_head", c.embed_dim, c.vocab, "lm_head", rows=rows))
    return out
