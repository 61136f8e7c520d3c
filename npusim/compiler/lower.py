"""Lowering: workload layers → GEMM or vector work → tiles per core.

:func:`compile_workload` walks the layers, decides where each layer's activations live,
and dispatches each layer to the module of its family:

* :mod:`npusim.compiler.precision`: the compute precision (the wider of the activation and
  weight precisions if the array computes it, else the narrowest wider one the array has;
  an operand the array does not take is dequantized on the vector unit, 2 ALU ops per
  converted value, reported in ``mapping``);
* :mod:`npusim.compiler.gemm`: conv and matmul on the systolic array or the matrix-vector
  engine, split over the cores by :mod:`npusim.compiler.split`, tiled by the numba search
  in :mod:`npusim.kernels.tiling`; a depthwise conv goes to the array or the vector unit,
  whichever the cost model says is faster;
* :mod:`npusim.compiler.experts`: routed experts as grouped GEMMs, one per load, reading
  only the touched experts' weights;
* :mod:`npusim.compiler.attention_layer`: attention fused (npusim/compiler/attention.py:
  Q·K^T and P·V on the array, softmax on the vector unit, scores on chip) when a query
  block and a K/V block fit the core's SRAM, else materialised;
* :mod:`npusim.compiler.vector`: the rest on the vector unit.

Where activations live: an activation tensor stays on chip (no DRAM traffic) when the
producer's output and the consumer's inputs together take at most three quarters of the
on-chip SRAM (an assumption: the last quarter is kept for tiles; the tiler then works in
whatever the resident tensors leave).
"""

from __future__ import annotations

from npusim.compiler.attention_layer import lower_attention
from npusim.compiler.context import Ctx
from npusim.compiler.experts import lower_experts
from npusim.compiler.gemm import depthwise_on_vector, lower_gemm
from npusim.compiler.precision import compute_precision
from npusim.compiler.program import TileProgram
from npusim.compiler.split import SPLIT_TIE, SplitEstimate, choose_split, split_estimates
from npusim.compiler.vector import lower_vector
from npusim.compiler.weights import place_weights, weight_bytes
from npusim.errors import MappingError
from npusim.spec.arch import Chip, min_tile_sram_bytes
from npusim.workloads.ir import (
    Attention,
    Conv2d,
    Elementwise,
    Embedding,
    ExpertMatmul,
    Matmul,
    Norm,
    Pool,
    Softmax,
    Workload,
)

__all__ = ["SPLIT_TIE", "SplitEstimate", "choose_split", "compile_workload", "compute_precision",
           "split_estimates", "weights_fit_shared_sram"]


def weights_fit_shared_sram(chip: Chip, workload: Workload) -> bool:
    """Whether every weight of ``workload`` fits the chip's shared on-chip SRAM."""
    return place_weights(chip, workload).fits


def compile_workload(chip: Chip, workload: Workload, *, ideal: bool = False,
                     weights_resident: bool | None = None) -> TileProgram:
    """Lower and tile every layer of ``workload`` for ``chip``.

    ``ideal`` drops SRAM capacity and DRAM bandwidth from the tiling decisions: the
    SCALE-Sim 'ideal memory' case, where the streamed dimension is never cut.
    ``weights_resident``: weights live in the shared on-chip SRAM (ATOM-style) and are not
    read from DRAM — the steady state of repeated inferences. ``None`` (default) means
    whenever all weights fit the shared SRAM; ``True`` when they do not is a
    :class:`MappingError` (see :mod:`npusim.compiler.weights`).
    """
    core = chip.cores.core
    sram = float(core.sram.size)
    weights_resident = place_weights(chip, workload, weights_resident).resident
    shared = float(chip.shared_sram.size) if chip.shared_sram else 0.0
    if weights_resident:
        shared -= weight_bytes(workload)
    onchip = chip.n_cores * sram + max(shared, 0.0)
    dram_bpc = chip.dram.peak_bandwidth / chip.clock / chip.n_cores
    lat = 0.0 if ideal else chip.dram.idle_latency_s * chip.clock
    ctx = Ctx(chip, ideal, sram, float(core.accumulator.size) if core.accumulator else 0.0,
               0.0 if ideal else dram_bpc, lat, onchip * 0.75, {}, weights_resident)
    shared_left = max(shared, 0.0)
    # Resident activations fill what the shared SRAM has left, then the cores' scratchpads,
    # which must keep room for the layer's smallest tile.
    room = sram - min_tile_sram_bytes(chip)

    def per_core(resident: float) -> float:
        return max(resident - shared_left, 0.0) / chip.n_cores

    layers = []
    prev_out_resident = False
    for i, layer in enumerate(workload.layers):
        ctx.layer = i
        nxt = workload.layers[i + 1] if i + 1 < len(workload.layers) else None
        out_act = layer.output_bytes().get("act", 0)
        next_in = nxt.input_bytes().get("act", 0) if nxt is not None else 0
        a_res = prev_out_resident
        in_act = layer.input_bytes().get("act", 0) if a_res else 0
        out_res = (nxt is not None and out_act > 0
                   and out_act + next_in <= ctx.resident_budget
                   and per_core(in_act + out_act) <= room and per_core(next_in) <= room)
        ctx.capacity = sram - per_core(in_act + (out_act if out_res else 0))
        if isinstance(layer, (Conv2d, Matmul)):
            if isinstance(layer, Conv2d) and layer.depthwise and depthwise_on_vector(chip, layer):
                lp = lower_vector(ctx, i, layer, a_res, out_res, macs_on_vector=layer.macs())
            else:
                lp = lower_gemm(ctx, i, layer, a_res, out_res)
        elif isinstance(layer, ExpertMatmul):
            lp = lower_experts(ctx, i, layer, a_res, out_res)
        elif isinstance(layer, Attention):
            lp = lower_attention(ctx, i, layer, a_res, out_res)
        elif isinstance(layer, (Elementwise, Softmax, Norm, Pool, Embedding)):
            lp = lower_vector(ctx, i, layer, a_res, out_res)
        else:
            raise MappingError(f"layer {layer.name!r}: no lowering for op {layer.kind!r}")
        layers.append(lp)
        prev_out_resident = out_res
    return TileProgram(chip.name, workload.name, chip.n_cores, tuple(layers),
                       weights_resident=weights_resident)
