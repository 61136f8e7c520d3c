"""Workload intermediate representation: a network is a sequence of layers.

Each layer is a frozen dataclass naming its shapes and the precision of each tensor. Layers
know their own arithmetic (MACs, vector operations) and tensor sizes; they know nothing of
the chip. The compiler lowers them to GEMM or vector work.

Tensor kinds say where a tensor lives between layers:

* ``act``    an activation produced by an earlier layer (may stay on chip if it fits);
* ``weight`` a constant parameter, read from DRAM (or a resident on-chip copy);
* ``kv``     the KV cache, in DRAM, read by attention and appended to by K/V projections.

Precisions are named ``int4 int8 fp8 fp8_e4m3 fp8_e5m2 fp16 bf16 fp32 mxfp4 nvfp4``
(:mod:`npusim.workloads.formats`); the block-scaled ``mxfp4`` and ``nvfp4`` (4.25 and 4.5
bits per element with their shared scales) are weight formats: only a weight operand may
take one.

A layer's shape fields have no default (a matmul without ``k`` is a mistake, not a 1): they
are keyword-only and required. Fields with a natural default keep it: ``batch`` 1, stride and
dilation 1, padding 0, groups 1, precisions int8 (fp16 for softmax, norm and embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar, Literal

from npusim.workloads.formats import BITS, PRECISIONS, is_block

__all__ = [
    "BITS",
    "ELEMENTWISE_OPS",
    "PRECISIONS",
    "Attention",
    "Conv2d",
    "Elementwise",
    "Embedding",
    "ExpertMatmul",
    "Layer",
    "Matmul",
    "Norm",
    "Pool",
    "Softmax",
    "Workload",
    "bytes_of",
    "stored_weight_bytes",
]


TensorKind = Literal["act", "weight", "kv"]

# Vector operations each element of an op class costs on the vector unit. "alu" ops are
# add/mul/max/compare; "special" ops are transcendental (exp, tanh, erf, rsqrt).
ELEMENTWISE_OPS: dict[str, tuple[str, float]] = {
    "add": ("alu", 1), "sub": ("alu", 1), "mul": ("alu", 1), "div": ("special", 1),
    "relu": ("alu", 1), "relu6": ("alu", 2), "clip": ("alu", 2), "max": ("alu", 1),
    "gelu": ("special", 1), "silu": ("special", 1), "sigmoid": ("special", 1),
    "tanh": ("special", 1), "swiglu": ("special", 1), "rotary": ("alu", 3),
    "identity": ("alu", 0), "copy": ("alu", 1), "dequant": ("alu", 2),
}


def bytes_of(elements: float, precision: str) -> int:
    """Bytes taken by ``elements`` values of ``precision`` (int4 packs two per byte; a
    block format counts its shared scales, 4.25 bits per mxfp4 element)."""
    return math.ceil(elements * BITS[precision] / 8)


def _check_precision(layer: object, *names: str, weight: tuple[str, ...] = ()) -> None:
    """Known precisions; a block-scaled one only in the fields named by ``weight``."""
    for n in names:
        p = getattr(layer, n)
        if p not in BITS:
            raise ValueError(f"{type(layer).__name__}.{n}: unknown precision {p!r}")
        if is_block(p) and n not in weight:
            raise ValueError(f"{type(layer).__name__} {getattr(layer, 'name', '')!r}: {n} "
                             f"{p} is a block-scaled weight format; only a weight operand "
                             f"may take it")


@dataclass(frozen=True)
class Layer:
    """Common fields of every layer."""

    name: str
    kind: ClassVar[str] = "layer"

    def macs(self) -> int:
        return 0

    def vector_ops(self) -> dict[str, float]:
        """Vector-unit operations by op class (``alu``, ``special``)."""
        return {}

    def input_bytes(self) -> dict[TensorKind, int]:
        """Bytes read per tensor kind, each tensor counted once."""
        return {}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {}

    def to_dict(self) -> dict[str, object]:
        """Field values plus the layer type under ``kind``."""
        d: dict[str, object] = {"kind": self.kind}
        for f in fields(self):
            d[f.name] = getattr(self, f.name)
        return d


@dataclass(frozen=True, kw_only=True)
class Conv2d(Layer):
    """2-D convolution (NHWC), optionally grouped or depthwise, with a fused activation."""

    batch: int = 1
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    kernel_h: int
    kernel_w: int
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    groups: int = 1
    activation: str | None = None
    act_precision: str = "int8"
    weight_precision: str = "int8"
    out_precision: str = "int8"
    kind: ClassVar[str] = "conv2d"

    def __post_init__(self) -> None:
        _check_precision(self, "act_precision", "weight_precision", "out_precision",
                         weight=("weight_precision",))
        for n in ("batch", "in_h", "in_w", "in_c", "out_c", "kernel_h", "kernel_w",
                  "stride_h", "stride_w", "dilation_h", "dilation_w", "groups"):
            if getattr(self, n) <= 0:
                raise ValueError(f"conv2d {self.name!r}: {n} must be positive")
        if self.in_c % self.groups or self.out_c % self.groups:
            raise ValueError(f"conv2d {self.name!r}: groups must divide in_c and out_c")
        if self.out_h <= 0 or self.out_w <= 0:
            raise ValueError(f"conv2d {self.name!r}: kernel larger than padded input")

    @property
    def out_h(self) -> int:
        eff = self.dilation_h * (self.kernel_h - 1) + 1
        return (self.in_h + 2 * self.pad_h - eff) // self.stride_h + 1

    @property
    def out_w(self) -> int:
        eff = self.dilation_w * (self.kernel_w - 1) + 1
        return (self.in_w + 2 * self.pad_w - eff) // self.stride_w + 1

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_c

    def gemm_shape(self) -> tuple[int, int, int, int]:
        """(groups, M, N, K) of the im2col GEMM: M output pixels, N filters, K window."""
        m = self.batch * self.out_h * self.out_w
        return (self.groups, m, self.out_c // self.groups,
                self.kernel_h * self.kernel_w * (self.in_c // self.groups))

    def macs(self) -> int:
        g, m, n, k = self.gemm_shape()
        return g * m * n * k

    def vector_ops(self) -> dict[str, float]:
        if self.activation and self.activation != "identity":
            cls, per = ELEMENTWISE_OPS.get(self.activation, ("alu", 1))
            return {cls: per * self.batch * self.out_h * self.out_w * self.out_c}
        return {}

    def input_bytes(self) -> dict[TensorKind, int]:
        w = self.kernel_h * self.kernel_w * (self.in_c // self.groups) * self.out_c
        return {"act": bytes_of(self.batch * self.in_h * self.in_w * self.in_c, self.act_precision),
                "weight": bytes_of(w, self.weight_precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.batch * self.out_h * self.out_w * self.out_c,
                                self.out_precision)}


@dataclass(frozen=True, kw_only=True)
class Matmul(Layer):
    """``batch`` independent products (M x K) @ (K x N).

    ``b_kind`` says what B is: ``weight`` for a linear layer (shared by the whole batch),
    ``act`` or ``kv`` for attention (one B per batch entry). ``out_kind='kv'`` marks the
    K/V projections whose outputs are appended to the KV cache in DRAM.
    """

    batch: int = 1
    m: int
    n: int
    k: int
    b_kind: TensorKind = "weight"
    a_kind: TensorKind = "act"
    out_kind: TensorKind = "act"
    activation: str | None = None
    act_precision: str = "int8"
    weight_precision: str = "int8"
    out_precision: str = "int8"
    kind: ClassVar[str] = "matmul"

    def __post_init__(self) -> None:
        _check_precision(self, "act_precision", "weight_precision", "out_precision",
                         weight=("weight_precision",) if self.b_kind == "weight" else ())
        for n in ("batch", "m", "n", "k"):
            if getattr(self, n) <= 0:
                raise ValueError(f"matmul {self.name!r}: {n} must be positive")

    @property
    def b_precision(self) -> str:
        return self.weight_precision

    def gemm_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.m, self.n, self.k)

    def macs(self) -> int:
        return self.batch * self.m * self.n * self.k

    def vector_ops(self) -> dict[str, float]:
        if self.activation and self.activation != "identity":
            cls, per = ELEMENTWISE_OPS.get(self.activation, ("alu", 1))
            return {cls: per * self.batch * self.m * self.n}
        return {}

    def input_bytes(self) -> dict[TensorKind, int]:
        b_count = self.k * self.n * (1 if self.b_kind == "weight" else self.batch)
        a = bytes_of(self.batch * self.m * self.k, self.act_precision)
        b = bytes_of(b_count, self.weight_precision)
        out: dict[TensorKind, int] = {}
        out[self.a_kind] = out.get(self.a_kind, 0) + a
        out[self.b_kind] = out.get(self.b_kind, 0) + b
        return out

    def output_bytes(self) -> dict[TensorKind, int]:
        return {self.out_kind: bytes_of(self.batch * self.m * self.n, self.out_precision)}


@dataclass(frozen=True, kw_only=True)
class ExpertMatmul(Layer):
    """One projection of a mixture-of-experts layer's routed experts (a grouped GEMM).

    Expert ``e`` multiplies the ``tokens_per_expert[e]`` token rows routed to it (each
    ``k`` wide) by its own ``k x n`` weight; an expert no token chose is not read at all.
    The routing (which experts a step touches, how many tokens each gets) is decided when
    the workload is built (:mod:`npusim.workloads.routing`) and fixed here, so every stage
    above sees the same experts. ``len(tokens_per_expert)`` is the number of experts held
    (on this chip, under expert parallelism); the sum is tokens x top-k routed rows.
    """

    tokens_per_expert: tuple[int, ...]
    n: int
    k: int
    activation: str | None = None
    act_precision: str = "int8"
    weight_precision: str = "int8"
    out_precision: str = "int8"
    kind: ClassVar[str] = "expert_matmul"

    def __post_init__(self) -> None:
        _check_precision(self, "act_precision", "weight_precision", "out_precision",
                         weight=("weight_precision",))
        counts = tuple(int(t) for t in self.tokens_per_expert)
        object.__setattr__(self, "tokens_per_expert", counts)
        if not counts or any(t < 0 for t in counts):
            raise ValueError(f"expert_matmul {self.name!r}: tokens_per_expert must be a "
                             f"non-empty list of counts >= 0")
        if sum(counts) <= 0:
            raise ValueError(f"expert_matmul {self.name!r}: no token is routed to any expert")
        for n in ("n", "k"):
            if getattr(self, n) <= 0:
                raise ValueError(f"expert_matmul {self.name!r}: {n} must be positive")

    @property
    def experts(self) -> int:
        return len(self.tokens_per_expert)

    @property
    def touched(self) -> int:
        """Experts with at least one token: the weights this step reads."""
        return sum(1 for t in self.tokens_per_expert if t > 0)

    @property
    def rows(self) -> int:
        """Routed token rows (tokens x top-k, on this chip)."""
        return sum(self.tokens_per_expert)

    @property
    def imbalance(self) -> float:
        """Most tokens on one expert over the mean of the touched experts (1 = even)."""
        return max(self.tokens_per_expert) * self.touched / self.rows

    def groups(self) -> list[tuple[int, int]]:
        """``(rows, experts)`` per distinct nonzero row count, most rows first: experts
        with equal loads are one grouped GEMM of ``experts`` x (rows x k) @ (k x n)."""
        counts: dict[int, int] = {}
        for t in self.tokens_per_expert:
            if t > 0:
                counts[t] = counts.get(t, 0) + 1
        return sorted(counts.items(), reverse=True)

    def macs(self) -> int:
        return self.rows * self.k * self.n

    def vector_ops(self) -> dict[str, float]:
        if self.activation and self.activation != "identity":
            cls, per = ELEMENTWISE_OPS.get(self.activation, ("alu", 1))
            return {cls: per * self.rows * self.n}
        return {}

    def input_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.rows * self.k, self.act_precision),
                "weight": bytes_of(self.touched * self.k * self.n, self.weight_precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.rows * self.n, self.out_precision)}


@dataclass(frozen=True, kw_only=True)
class Elementwise(Layer):
    """An elementwise op over ``elements`` values with ``inputs`` operands (1 or 2)."""

    elements: int
    op: str = "add"
    inputs: int = 2
    precision: str = "int8"
    kind: ClassVar[str] = "elementwise"

    def __post_init__(self) -> None:
        _check_precision(self, "precision")
        if self.elements <= 0 or self.inputs <= 0:
            raise ValueError(f"elementwise {self.name!r}: elements and inputs must be positive")
        if self.op not in ELEMENTWISE_OPS:
            raise ValueError(f"elementwise {self.name!r}: unknown op {self.op!r} "
                             f"(known: {', '.join(sorted(ELEMENTWISE_OPS))})")

    def vector_ops(self) -> dict[str, float]:
        cls, per = ELEMENTWISE_OPS[self.op]
        return {cls: per * self.elements}

    def input_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.elements * self.inputs, self.precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.elements, self.precision)}


@dataclass(frozen=True, kw_only=True)
class Softmax(Layer):
    """Softmax over the last axis of a (rows x cols) tensor: max, exp, sum, scale.

    Reads its input at ``precision``; writes the probabilities at ``out_precision`` (None:
    the same), e.g. quantised for an integer P·V."""

    rows: int
    cols: int
    precision: str = "fp16"
    out_precision: str | None = None
    kind: ClassVar[str] = "softmax"

    def __post_init__(self) -> None:
        _check_precision(self, "precision")
        if self.out_precision is not None:
            _check_precision(self, "out_precision")

    @property
    def probs_precision(self) -> str:
        """The precision the probabilities are written at."""
        return self.out_precision or self.precision
        if self.rows <= 0 or self.cols <= 0:
            raise ValueError(f"softmax {self.name!r}: rows and cols must be positive")

    def vector_ops(self) -> dict[str, float]:
        e = self.rows * self.cols
        return {"alu": 3 * e, "special": e}  # max, subtract, sum, scale; exp

    def input_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.rows * self.cols, self.precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.rows * self.cols, self.probs_precision)}


@dataclass(frozen=True, kw_only=True)
class Attention(Layer):
    """Scaled dot-product attention ``softmax(Q·K^T / sqrt(d))·V`` as one op.

    ``batch`` sequences, each with ``heads`` query heads sharing ``kv_heads`` K/V heads
    (GQA: ``group = heads / kv_heads`` query heads per KV head), ``q_len`` queries against
    ``kv_len`` keys of ``head_dim``. The queries are the last ``q_len`` positions of the
    ``kv_len`` (prefill: ``q_len == kv_len``; decode: one query after a cache). ``causal``:
    query ``i`` (0-based, at position ``kv_len - q_len + i``) sees keys ``0 .. kv_len - q_len
    + i`` only. Q and O are activations at ``act_precision`` (the probabilities P are taken
    at it too for P·V); K and V are ``kv_kind`` tensors at ``kv_precision``. Scores and
    probabilities never leave the op: how they are held is the compiler's business
    (fused on chip, or materialised when no block fits).

    Arithmetic counts only what the mask keeps: ``macs`` is Q·K^T plus P·V over the
    unmasked (query, key) pairs, and ``vector_ops`` the softmax of those scores (max,
    subtract, sum: 3 ALU; exp: 1 special, as :class:`Softmax`) plus the final division by
    the row sum (one reciprocal per row, one multiply per output). Work that depends on
    the blocking (online-softmax rescaling, masked entries computed in diagonal blocks) is
    added by the compiler.
    """

    batch: int = 1
    heads: int
    kv_heads: int | None = None  # None: as many as ``heads`` (multi-head attention)
    q_len: int
    kv_len: int
    head_dim: int
    causal: bool = False
    kv_kind: TensorKind = "kv"
    act_precision: str = "int8"
    kv_precision: str = "int8"
    softmax_precision: str = "fp16"
    #: width of V and of the output per head (None: ``head_dim``); DeepSeek's expanded MLA
    #: has Q/K 192 wide and V 128, its absorbed form Q/K 576 (latent + rope) and V 512
    v_head_dim: int | None = None
    #: V is the first ``v_head_dim`` columns of the cached K (absorbed latent attention: one
    #: compressed vector per token serves as key and value), so K/V bytes count K only
    kv_shared: bool = False
    #: sliding window: a query sees at most the ``window`` most recent keys, its own
    #: position included (None: every key the mask allows)
    window: int | None = None
    #: a learned sink logit per head joins every softmax row (gpt-oss): one more score each
    sinks: bool = False
    kind: ClassVar[str] = "attention"

    def __post_init__(self) -> None:
        _check_precision(self, "act_precision", "kv_precision", "softmax_precision")
        if self.kv_heads is None:
            object.__setattr__(self, "kv_heads", self.heads)
        for n in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"):
            if getattr(self, n) <= 0:
                raise ValueError(f"attention {self.name!r}: {n} must be positive")
        if self.heads % self.kv_heads:  # type: ignore[operator]
            raise ValueError(f"attention {self.name!r}: kv_heads {self.kv_heads} does not "
                             f"divide heads {self.heads}")
        if self.q_len > self.kv_len:
            raise ValueError(f"attention {self.name!r}: q_len {self.q_len} exceeds kv_len "
                             f"{self.kv_len} (queries are the last positions of the keys)")
        if self.v_head_dim is None:
            object.__setattr__(self, "v_head_dim", self.head_dim)
        if self.v_head_dim <= 0:  # type: ignore[operator]
            raise ValueError(f"attention {self.name!r}: v_head_dim must be positive")
        if self.kv_shared and self.v_head_dim > self.head_dim:  # type: ignore[operator]
            raise ValueError(f"attention {self.name!r}: a shared K/V needs v_head_dim "
                             f"{self.v_head_dim} <= head_dim {self.head_dim}")
        if self.window is not None and self.window <= 0:
            raise ValueError(f"attention {self.name!r}: window must be positive")

    @property
    def group(self) -> int:
        return self.heads // self.kv_heads  # type: ignore[operator]

    @property
    def pairs(self) -> int:
        """Independent (sequence, KV head) products: each reads its own K and V."""
        return self.batch * self.kv_heads  # type: ignore[operator]

    @property
    def dv(self) -> int:
        """Width of V and of the output per head."""
        return self.v_head_dim  # type: ignore[return-value]  # set in __post_init__

    def scores(self) -> int:
        """Unmasked (query, key) pairs of one query head of one sequence.

        Query ``i`` sees ``kv - q + i + 1`` keys when causal, all ``kv`` otherwise, and at
        most ``window`` of them under a sliding window."""
        q, kv, w = self.q_len, self.kv_len, self.window
        if not self.causal:
            return q * (kv if w is None else min(kv, w))
        if w is None:
            return q * (kv - q) + q * (q + 1) // 2  # query i sees kv - q + i + 1 keys
        # visible counts run a = kv - q + 1 .. kv; those above w are cut to w
        a = kv - q + 1
        below = max(0, min(kv, w) - a + 1)  # counts a .. min(kv, w) kept as they are
        return below * (a + a + below - 1) // 2 + (q - below) * w

    def keys_read(self) -> int:
        """Keys (and values) of one sequence any query sees: what is read of the cache."""
        if self.window is None:
            return self.kv_len
        span = self.window + (self.q_len - 1 if self.causal else 0)
        return min(self.kv_len, span)

    def macs(self) -> int:
        return self.batch * self.heads * (self.head_dim + self.dv) * self.scores()

    def vector_ops(self) -> dict[str, float]:
        rows = self.batch * self.heads * self.q_len
        e = self.batch * self.heads * self.scores() + (rows if self.sinks else 0)
        return {"alu": 3 * e + rows * self.dv, "special": e + rows}

    def input_bytes(self) -> dict[TensorKind, int]:
        q = bytes_of(self.batch * self.heads * self.q_len * self.head_dim, self.act_precision)
        width = self.head_dim + (0 if self.kv_shared else self.dv)
        kv = bytes_of(self.pairs * self.keys_read() * width, self.kv_precision)
        out: dict[TensorKind, int] = {"act": q}
        out[self.kv_kind] = out.get(self.kv_kind, 0) + kv
        return out

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.batch * self.heads * self.q_len * self.dv,
                                self.act_precision)}


@dataclass(frozen=True, kw_only=True)
class Norm(Layer):
    """LayerNorm / RMSNorm / BatchNorm over (rows x cols), normalising along cols."""

    rows: int
    cols: int
    norm: Literal["layernorm", "rmsnorm", "batchnorm"] = "layernorm"
    precision: str = "fp16"
    kind: ClassVar[str] = "norm"

    def __post_init__(self) -> None:
        _check_precision(self, "precision")
        if self.rows <= 0 or self.cols <= 0:
            raise ValueError(f"norm {self.name!r}: rows and cols must be positive")
        if self.norm not in ("layernorm", "rmsnorm", "batchnorm"):
            raise ValueError(f"norm {self.name!r}: unknown norm {self.norm!r}")

    def vector_ops(self) -> dict[str, float]:
        e = self.rows * self.cols
        per = {"layernorm": 5, "rmsnorm": 3, "batchnorm": 2}[self.norm]
        return {"alu": per * e, "special": self.rows}  # one rsqrt per row

    def input_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.rows * self.cols, self.precision),
                "weight": bytes_of(2 * self.cols, self.precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.rows * self.cols, self.precision)}


@dataclass(frozen=True, kw_only=True)
class Pool(Layer):
    """Max / average pooling (NHWC); ``global_avg`` reduces each channel to one value.

    ``kernel`` (the window's side) is required for ``max`` and ``avg`` and ignored by
    ``global_avg``, whose window is the whole map.
    """

    batch: int = 1
    in_h: int
    in_w: int
    channels: int
    kernel: int | None = None
    stride: int = 1
    padding: int = 0
    pool: Literal["max", "avg", "global_avg"] = "max"
    precision: str = "int8"
    kind: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        _check_precision(self, "precision")
        for n in ("batch", "in_h", "in_w", "channels", "stride"):
            if getattr(self, n) <= 0:
                raise ValueError(f"pool {self.name!r}: {n} must be positive")
        if self.pool not in ("max", "avg", "global_avg"):
            raise ValueError(f"pool {self.name!r}: unknown pool {self.pool!r}")
        if self.kernel is None and self.pool != "global_avg":
            raise ValueError(f"pool {self.name!r}: a {self.pool} pool needs kernel")
        if self.kernel is not None and self.kernel <= 0:
            raise ValueError(f"pool {self.name!r}: kernel must be positive")

    @property
    def _window(self) -> int:
        # Asked only by max and avg pools, which __post_init__ holds to have a kernel.
        return self.kernel if self.kernel is not None else 0

    @property
    def out_h(self) -> int:
        if self.pool == "global_avg":
            return 1
        return (self.in_h + 2 * self.padding - self._window) // self.stride + 1

    @property
    def out_w(self) -> int:
        if self.pool == "global_avg":
            return 1
        return (self.in_w + 2 * self.padding - self._window) // self.stride + 1

    def vector_ops(self) -> dict[str, float]:
        if self.pool == "global_avg":
            return {"alu": self.batch * self.in_h * self.in_w * self.channels}
        window = self._window * self._window
        return {"alu": self.batch * self.out_h * self.out_w * self.channels * window}

    def input_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.batch * self.in_h * self.in_w * self.channels, self.precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.batch * self.out_h * self.out_w * self.channels,
                                self.precision)}


@dataclass(frozen=True, kw_only=True)
class Embedding(Layer):
    """Table lookup of ``tokens`` rows of width ``hidden``: a gather from DRAM."""

    tokens: int
    hidden: int
    precision: str = "fp16"
    kind: ClassVar[str] = "embedding"

    def __post_init__(self) -> None:
        _check_precision(self, "precision")
        if self.tokens <= 0 or self.hidden <= 0:
            raise ValueError(f"embedding {self.name!r}: tokens and hidden must be positive")

    def vector_ops(self) -> dict[str, float]:
        return {"alu": self.tokens * self.hidden}  # one copy per element

    def input_bytes(self) -> dict[TensorKind, int]:
        return {"weight": bytes_of(self.tokens * self.hidden, self.precision)}

    def output_bytes(self) -> dict[TensorKind, int]:
        return {"act": bytes_of(self.tokens * self.hidden, self.precision)}


LAYER_TYPES: dict[str, type[Layer]] = {
    c.kind: c for c in (Conv2d, Matmul, ExpertMatmul, Elementwise, Softmax, Attention, Norm,
                        Pool, Embedding)
}


@dataclass(frozen=True)
class Workload:
    """A named, ordered sequence of layers plus free-form metadata (batch, model, phase)."""

    name: str
    layers: tuple[Layer, ...]
    meta: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"workload {self.name!r}: duplicate layer names {dup[:5]}")

    def macs(self) -> int:
        return sum(layer.macs() for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def with_batch(self, batch: int) -> Workload:
        """A copy with every batched layer's batch multiplied by ``batch``."""
        out: list[Layer] = []
        for layer in self.layers:
            if isinstance(layer, (Conv2d, Pool)):
                out.append(replace(layer, batch=layer.batch * batch))
            elif isinstance(layer, Matmul):
                if layer.b_kind == "weight":
                    out.append(replace(layer, m=layer.m * batch))
                else:
                    out.append(replace(layer, batch=layer.batch * batch))
            elif isinstance(layer, Elementwise):
                out.append(replace(layer, elements=layer.elements * batch))
            elif isinstance(layer, (Softmax, Norm)):
                out.append(replace(layer, rows=layer.rows * batch))
            elif isinstance(layer, Embedding):
                out.append(replace(layer, tokens=layer.tokens * batch))
            elif isinstance(layer, Attention):
                out.append(replace(layer, batch=layer.batch * batch))
            elif isinstance(layer, ExpertMatmul):
                # The same experts, each with batch times its tokens: a copy of the step's
                # routing per replica (an LLM step with a larger batch touches more experts:
                # build it again with from_hf_config instead).
                out.append(replace(layer, tokens_per_expert=tuple(
                    t * batch for t in layer.tokens_per_expert)))
            else:
                out.append(layer)
        meta = dict(self.meta)
        meta["batch"] = int(meta.get("batch", 1)) * batch  # type: ignore[call-overload]
        return Workload(self.name, tuple(out), meta)


def stored_weight_bytes(layer: Layer) -> int:
    """Bytes of ``layer``'s weights as stored: a routed-expert layer holds every expert,
    though a step reads only those it touches (its ``weight`` input)."""
    if isinstance(layer, ExpertMatmul):
        return bytes_of(layer.experts * layer.k * layer.n, layer.weight_precision)
    return layer.input_bytes().get("weight", 0)
