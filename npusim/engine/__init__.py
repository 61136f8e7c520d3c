"""Engine: the SimPy chip model (events), the memory interface and bandwidth model (memory),
the cycle-approximate DRAM behind it (dram), and the roofline fidelity (roofline)."""

__all__: list[str] = []
