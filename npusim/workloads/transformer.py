"""Transformer encoder builders: BERT-base and BERT-large as workload IR.

One encoder layer over T = batch x seq_len tokens, hidden H, heads A (head size d = H / A),
intermediate I, in the order HuggingFace ``BertLayer`` runs it:

    query, key, value      Matmul  T x H x H each, weights
    scores                 Matmul  batch*A products of (S x d) @ (d x S), B is an activation
    softmax                Softmax rows batch*A*S, cols S
    context                Matmul  batch*A products of (S x S) @ (S x d)
    attention.output       Matmul  T x H x H, then residual add and LayerNorm
    intermediate           Matmul  T x I x H with GELU fused
    output                 Matmul  T x H x I, then residual add and LayerNorm

MACs per layer: 4 T H^2 + 2 batch S^2 H + 2 T H I. The attention scale (1/sqrt(d)) and the
mask are taken as fused into the softmax. The embedding lookup (word + position + type, the
three sums fused into the gather) and its LayerNorm are optional; no pooler or task head.

Precision: the matmuls and residual adds use ``precision``; softmax and LayerNorm run in
fp16 when ``precision`` is narrower than 16 bits (an assumption: integer inference keeps
these in floating point), otherwise in ``precision``.
"""

from __future__ import annotations

from npusim.workloads.ir import BITS, Elementwise, Embedding, Layer, Matmul, Norm, Softmax, Workload

__all__ = ["BERT_SIZES", "bert", "bert_base", "bert_large"]

#: (hidden, layers, heads, intermediate) of the published BERT checkpoints (Devlin et al. 2019)
BERT_SIZES: dict[str, tuple[int, int, int, int]] = {
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}


def bert(size: str = "base", seq_len: int = 384, batch: int = 1, precision: str = "int8", *,
         hidden: int | None = None, layers: int | None = None, heads: int | None = None,
         intermediate: int | None = None, embeddings: bool = True,
         name: str | None = None) -> Workload:
    """A BERT encoder; ``hidden``/``layers``/``heads``/``intermediate`` override ``size``."""
    if size not in BERT_SIZES:
        raise ValueError(f"unknown BERT size {size!r} (known: {', '.join(BERT_SIZES)})")
    if precision not in BITS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(BITS)})")
    h0, l0, a0, i0 = BERT_SIZES[size]
    h = hidden or h0
    n_layers = layers if layers is not None else l0
    a = heads or a0
    inter = intermediate or i0
    for what, v in (("seq_len", seq_len), ("batch", batch), ("layers", n_layers)):
        if v <= 0:
            raise ValueError(f"bert: {what} must be positive (got {v})")
    if h % a:
        raise ValueError(f"bert: hidden {h} is not divisible by heads {a}")
    d = h // a
    s = seq_len
    t = batch * s
    p = precision
    vp = p if BITS[p] >= 16 else "fp16"

    def linear(lname: str, n: int, k: int, activation: str | None = None) -> Matmul:
        return Matmul(lname, m=t, n=n, k=k, b_kind="weight", activation=activation,
                      act_precision=p, weight_precision=p, out_precision=p)

    def attn(lname: str, m: int, n: int, k: int) -> Matmul:
        return Matmul(lname, batch=batch * a, m=m, n=n, k=k, b_kind="act",
                      act_precision=p, weight_precision=p, out_precision=p)

    out: list[Layer] = []
    if embeddings:
        out.append(Embedding("embeddings", tokens=t, hidden=h, precision=p))
        out.append(Norm("embeddings.norm", rows=t, cols=h, norm="layernorm", precision=vp))
    for i in range(n_layers):
        pre = f"layer{i}"
        out += [
            linear(f"{pre}.attention.query", h, h),
            linear(f"{pre}.attention.key", h, h),
            linear(f"{pre}.attention.value", h, h),
            attn(f"{pre}.attention.scores", s, s, d),
            Softmax(f"{pre}.attention.softmax", rows=batch * a * s, cols=s, precision=vp),
            attn(f"{pre}.attention.context", s, d, s),
            linear(f"{pre}.attention.output", h, h),
            Elementwise(f"{pre}.attention.add", elements=t * h, op="add", inputs=2,
                        precision=p),
            Norm(f"{pre}.attention.norm", rows=t, cols=h, norm="layernorm", precision=vp),
            linear(f"{pre}.intermediate", inter, h, activation="gelu"),
            linear(f"{pre}.output", h, inter),
            Elementwise(f"{pre}.output.add", elements=t * h, op="add", inputs=2, precision=p),
            Norm(f"{pre}.output.norm", rows=t, cols=h, norm="layernorm", precision=vp),
        ]
    wname = name or (f"bert_{size}" if (h, n_layers, a, inter) == BERT_SIZES[size] else "bert")
    meta: dict[str, object] = {
        "model": wname, "batch": batch, "seq_len": s, "hidden": h, "layers": n_layers,
        "heads": a, "intermediate": inter, "precision": p,
        "source": "Devlin et al. 2019 (BERT); layer order of HuggingFace BertLayer"}
    return Workload(wname, tuple(out), meta)


def bert_base(seq_len: int = 384, batch: int = 1, precision: str = "int8",
              **kw: object) -> Workload:
    """BERT-base: hidden 768, 12 layers, 12 heads, intermediate 3072."""
    return bert("base", seq_len, batch, precision, **kw)  # type: ignore[arg-type]


def bert_large(seq_len: int = 384, batch: int = 1, precision: str = "int8",
               **kw: object) -> Workload:
    """BERT-large: hidden 1024, 24 layers, 16 heads, intermediate 4096."""
    return bert("large", seq_len, batch, precision, **kw)  # type: ignore[arg-type]
