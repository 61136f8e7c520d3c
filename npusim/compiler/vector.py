"""Vector-unit lowering (elementwise, softmax, norms, pooling, embedding gathers, and a
depthwise conv the cost model sends there): the layer's ALU and special-function ops at
the vector unit's rates, its bytes in chunks small enough to double-buffer, shared evenly
by the cores."""

from __future__ import annotations

import math

import numpy as np

from npusim.compiler.context import Ctx
from npusim.compiler.program import COL, TILE_COLUMNS, LayerProgram
from npusim.spec.arch import Chip
from npusim.workloads.ir import Layer

__all__ = ["lower_vector", "spread_vector"]


def spread_vector(chip: Chip, per_core: list[np.ndarray], vec: dict[str, float]) -> None:
    """Share a layer's vector cycles over its tiles in proportion to their MACs."""
    vu = chip.cores.core.vector
    cycles = sum(ops / vu.rate(cls) for cls, ops in vec.items())
    if cycles <= 0:
        return
    total_macs = sum(t[:, COL["macs"]].sum() for t in per_core)
    for t in per_core:
        if len(t) and total_macs > 0:
            t[:, COL["vector_cycles"]] = cycles * t[:, COL["macs"]] / total_macs


def lower_vector(ctx: Ctx, index: int, layer: Layer, a_res: bool, out_res: bool,
                 macs_on_vector: int = 0) -> LayerProgram:
    chip = ctx.chip
    vu = chip.cores.core.vector
    vec = dict(layer.vector_ops())
    if macs_on_vector:
        vec["alu"] = vec.get("alu", 0.0) + macs_on_vector
    ins = layer.input_bytes()
    outs = layer.output_bytes()
    rd = sum(b for kind, b in ins.items()
             if not ((kind == "act" and a_res) or (kind == "weight" and ctx.weights_on_chip)))
    wr = sum(b for kind, b in outs.items() if kind == "kv" or not out_res)
    in_total = sum(ins.values())
    out_total = sum(outs.values())
    cycles = sum(ops / vu.rate(cls) for cls, ops in vec.items())
    cores = chip.n_cores
    # Chunks small enough to double-buffer: at most a quarter of the SRAM each.
    chunk = max(ctx.capacity / 4, 1.0)
    per_core_bytes = (in_total + out_total) / cores
    n_chunks = int(min(256, max(1, math.ceil(per_core_bytes / chunk))))
    rbase = ctx.alloc(rd)
    wbase = ctx.alloc(wr)
    # Every core's chunks at once: (cores x chunks x columns).
    t = np.zeros((cores, n_chunks, len(TILE_COLUMNS)))
    share = 1.0 / (cores * n_chunks)
    t[:, :, COL["vector_cycles"]] = cycles * share
    t[:, :, COL["dram_read_bytes"]] = rd * share
    t[:, :, COL["dram_write_bytes"]] = wr * share
    t[:, :, COL["sram_read_bytes"]] = (in_total + wr) * share
    t[:, :, COL["sram_write_bytes"]] = (out_total + rd) * share
    step = np.arange(cores * n_chunks).reshape(cores, n_chunks)
    t[:, :, COL["read_addr"]] = rbase + step * rd * share
    t[:, :, COL["write_addr"]] = wbase + step * wr * share
    per_core = list(t)
    mapping = f"vector {n_chunks} chunk(s) x {cores} core(s)"
    if macs_on_vector:
        mapping = "depthwise on vector unit; " + mapping
    return LayerProgram(
        index=index, name=layer.name, op=layer.kind, unit="vector", tiles=tuple(per_core),
        macs=layer.macs(), vector_alu_ops=float(vec.get("alu", 0.0)),
        vector_special_ops=float(vec.get("special", 0.0)),
        precision=getattr(layer, "precision", getattr(layer, "act_precision", "int8")),
        mapping=mapping, dram_operand_bytes=rd)

