"""Compiler: lowering layers to GEMM and vector work (lower), tiling (kernels.tiling), where
weights live (weights), and the tile program the engine runs (program)."""

__all__: list[str] = []
