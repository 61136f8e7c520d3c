"""The normalised shape of a transformer read from any family's ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a transformer, independent of the config's family-specific spelling."""

    name: str
    #: the config's model_type as npusim reads it (llama, qwen3_moe, deepseek_v3 ...);
    #: an unknown model_type read as a generic decoder keeps its own name
    family: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    activation: str  # IR elementwise op: silu (SwiGLU when gated), gelu, relu
    gated_mlp: bool  # gate + up + down (SwiGLU) instead of up + down
    norm: Literal["rmsnorm", "layernorm"]
    positions: Literal["rotary", "learned", "absolute"]
    rotary_dim: int  # per head; 0 without rotary
    parallel_block: bool  # GPT-J: attention and MLP read the same normed input
    post_norm: bool  # BERT: norm after the residual add
    tied_embeddings: bool
    qkv_bias: bool
    out_bias: bool  # attention output projection
    mlp_bias: bool
    lm_head_bias: bool
    embed_dim: int  # OPT word_embed_proj_dim (== hidden for every other family)
    position_rows: int  # learned position table rows (OPT keeps 2 extra)
    type_vocab: int  # BERT token types
    final_norm: bool
    encoder: bool
    # --- Mixture of experts (experts == 0: a dense FFN in every layer) -------------------
    #: routed experts per MoE layer (num_local_experts, num_experts, n_routed_experts)
    experts: int = 0
    #: experts each token is routed to (num_experts_per_tok, top-k)
    experts_per_token: int = 0
    #: FFN width of one routed expert (moe_intermediate_size; Mixtral: intermediate_size)
    expert_intermediate: int = 0
    #: shared experts every token passes through (DeepSeek n_shared_experts; 1 for
    #: qwen2_moe / llama4), each ``shared_intermediate`` wide
    shared_experts: int = 0
    shared_intermediate: int = 0
    #: qwen2_moe: a sigmoid gate (hidden -> 1) scales the shared expert's output
    shared_expert_gate: bool = False
    #: per layer, True where the FFN is MoE (DeepSeek first_k_dense_replace, Llama 4
    #: interleave_moe_layer_step, mlp_only_layers, decoder_sparse_step); () means every
    #: layer when ``experts`` > 0, else none
    moe_layers: tuple[bool, ...] = ()
    router_bias: bool = False  # gpt-oss: the router has a bias
    expert_bias: bool = False  # gpt-oss: every expert projection has a bias
    #: the router's score function: "softmax" (Mixtral, Qwen) or "sigmoid" (DeepSeek-V3)
    router_score: str = "softmax"
    # --- Attention form -----------------------------------------------------------------
    #: "mha" (MHA/GQA/MQA through kv_heads) or "mla" (DeepSeek multi-head latent attention)
    attention_kind: str = "mha"
    q_lora_rank: int = 0  # MLA: 0 = q_proj straight from hidden (DeepSeek-V2-Lite)
    kv_lora_rank: int = 0  # MLA: the compressed KV width per token
    qk_nope_dim: int = 0  # MLA: per-head Q/K width without rotary
    qk_rope_dim: int = 0  # MLA: per-head (and shared K) rotary width
    v_head_dim: int = 0  # MLA: per-head V width (0: head_dim)
    #: per layer, the sliding window in tokens (0: full attention); () = all full
    layer_windows: tuple[int, ...] = ()
    attention_sinks: bool = False  # gpt-oss: a learned sink logit per head
    qk_norm: bool = False  # Qwen3, Gemma 3, EXAONE 4, OLMo 2: RMSNorm on q and k per head
    #: norms per block beyond the usual two (Gemma 2/3: post-attention and post-FFN norms)
    extra_norms: int = 0
    #: layers of the multi-token-prediction module (DeepSeek-V3 num_nextn_predict_layers):
    #: stored with the model, not run by a plain decode step
    mtp_layers: int = 0
    #: layer kinds in the config that npusim does not model (named in the load warning)
    unmodelled: tuple[str, ...] = ()
    #: False where a LayerNorm has a scale but no shift (Cohere 2)
    norm_bias: bool = True
    #: Llama 4: its q/k norm is a weightless L2 norm (no parameters)
    qk_norm_weightless: bool = False
    #: per layer, False where the layer applies no rotary embedding (Llama 4 NoPE layers,
    #: EXAONE 4 global layers); () = rotary everywhere when ``positions`` is rotary
    rope_layers: tuple[bool, ...] = ()

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    def moe_at(self, layer: int) -> bool:
        """Whether block ``layer``'s FFN is a mixture of experts."""
        if not self.is_moe:
            return False
        return self.moe_layers[layer] if self.moe_layers else True

    def window_at(self, layer: int) -> int:
        """Block ``layer``'s sliding window in tokens, 0 for full attention."""
        return self.layer_windows[layer] if self.layer_windows else 0

    @property
    def group(self) -> int:
        """Query heads per KV head (1 for MHA, heads for MQA)."""
        return self.heads // self.kv_heads
