"""numba kernels: pure functions over arrays and scalars (systolic timing, tiling, DRAM
controller); numba flags live in _jit; each kernel has a plain-Python twin in tests/."""

__all__: list[str] = []
