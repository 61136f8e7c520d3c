"""Specs: YAML to validated, frozen objects (arch, workload, DRAM catalog, SCALE-Sim files),
with errors naming the file, the key path and the line (yamlio)."""

__all__: list[str] = []
