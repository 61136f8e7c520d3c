"""The cycle-approximate DRAM: address mapping (mapping), the multi-channel controller
driving the numba kernels in npusim.kernels.dram (system), and the timing checker (checker)."""

__all__: list[str] = []
