"""Compiler: lowering layers to GEMM and vector work (lower, dispatching to one module per
family of layer kinds: gemm with split, experts, attention_layer with attention, vector; precision
for the compute precision), tiling (kernels.tiling), where weights live (weights), and the
tile program the engine runs (program)."""

__all__: list[str] = []
