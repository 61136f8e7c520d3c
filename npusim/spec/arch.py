"""The chip specification: YAML → validated, frozen pydantic models.

A chip composes, in this order: clock, cores (a count and one core description: systolic
arrays, an optional matrix-vector engine, a vector unit, an SRAM scratchpad, DMA engines),
an optional shared on-chip SRAM, an optional on-chip network between the cores, DRAM (a
catalog standard plus overrides) and an energy table. Quantities are written with
units (``24 MiB``, ``700 MHz``, ``34 GB/s``, ``0.2 pJ``); bare numbers are base units.
Unknown keys are errors. Cross-field rules (SRAM holds one double-buffered minimum tile, the
default precision is one the array computes) are checked after the fields.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from npusim._views import view
from npusim.errors import Issue, SpecError
from npusim.spec.dram_catalog import DramStandard, get_standard
from npusim.spec.link_catalog import LINK_KINDS
from npusim.spec.numbers import Float, Int
from npusim.spec.quantities import (
    Bytes,
    BytesPerSecond,
    Hertz,
    Joules,
    Seconds,
    TransfersPerSecond,
    Watts,
)
from npusim.spec.yamlio import AtPaths, load_yaml, loads_yaml, validate
from npusim.workloads.formats import is_block, native_key
from npusim.workloads.ir import BITS

__all__ = [
    "Calibration",
    "Chip",
    "Core",
    "Cores",
    "Dma",
    "Dram",
    "EnergyTable",
    "Host",
    "MatVec",
    "Noc",
    "Overheads",
    "Price",
    "Residual",
    "Sram",
    "Systolic",
    "VectorUnit",
    "chip_from_dict",
    "load_arch",
    "load_scalesim_cfg",
    "loads_arch",
]


# npusim.workloads.formats.PRECISIONS, spelled out for the schema (a test holds them equal).
# In macs_per_cycle ``fp8`` is a datapath computing both FP8 encodings; a block format
# (mxfp4, nvfp4) is one whose blocks the array takes natively, scales included.
Precision = Literal["int4", "int8", "fp8", "fp8_e4m3", "fp8_e5m2", "fp16", "bf16", "fp32",
                    "mxfp4", "nvfp4"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Systolic(_Spec):
    """``count`` systolic arrays of ``rows`` x ``cols`` PEs with one dataflow."""

    rows: Int = Field(gt=0, description="PE rows of one array (PEs)")
    cols: Int = Field(gt=0, description="PE columns of one array (PEs)")
    count: Int = Field(default=1, gt=0, description="arrays per core, all computing at once")
    dataflow: Literal["ws", "os", "is"] = Field(
        default="ws", description="what stays in the PEs during a fold: weights (ws), "
        "outputs (os) or inputs (is); see docs/model.md")
    macs_per_cycle: dict[Precision, Annotated[Float, Field(gt=0)]] = Field(
        default_factory=lambda: {"int8": 1.0},  # type: ignore[arg-type]
        description="MACs one PE completes per cycle, by operand precision (int8: 1, "
        "int4: 2, fp16: 0.5 …); a precision left out is not computed by the array (a "
        "weight in it is dequantised on the vector unit). fp8 stands for both FP8 "
        "encodings (fp8_e4m3, fp8_e5m2); mxfp4 and nvfp4 mean the array takes those "
        "block-scaled weights as they are stored")
    preload: Literal["serial", "overlapped"] = Field(
        default="serial", description="how the next fold's stationary block is loaded: "
        "serial (after the current fold, SCALE-Sim's convention) or overlapped "
        "(double-buffered behind the current fold's stream, as TPU v1's weight FIFO does)")

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.macs_per_cycle)

    def peak_macs_per_cycle(self, precision: str) -> float:
        """Peak MACs per cycle at ``precision``; 0 for one the array does not compute in
        (an operand in it is dequantized to a precision the array takes)."""
        key = native_key(self.macs_per_cycle, precision)
        rate = self.macs_per_cycle[key] if key is not None else 0.0  # type: ignore[index]
        return self.rows * self.cols * self.count * rate


class MatVec(_Spec):
    """A matrix-vector engine: ``lanes`` dot-product units, each reducing ``width`` elements
    per beat in an adder tree into its own accumulator, for ``rows`` activation rows at once.

    Operands stream from SRAM through ``read_bytes_per_cycle`` (unset: the core scratchpad's
    read port); nothing is preloaded. Timing: npusim/kernels/matvec.py.
    """

    lanes: Int = Field(gt=0, description="dot-product units (lanes), each with its own "
                       "accumulator")
    width: Int = Field(gt=0, description="elements one lane reduces per beat in its adder "
                       "tree (multipliers per lane)")
    rows: Int = Field(default=1, gt=0, description="activation rows held at once: one "
                      "streamed weight serves up to this many rows")
    macs_per_cycle: dict[Precision, Annotated[Float, Field(gt=0)]] = Field(
        default_factory=lambda: {"int8": 1.0},  # type: ignore[arg-type]
        description="MACs one multiplier completes per cycle, by operand precision (as the "
        "systolic array's); every precision must be one the array computes")
    read_bytes_per_cycle: Float | None = Field(
        default=None, gt=0, description="bytes per core clock cycle the engine streams from "
        "SRAM (unset: the core scratchpad's read port)")
    pipeline: Int = Field(default=0, ge=0, description="cycles from the first operand in to "
                          "the last output out (multipliers + adder tree)")

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.macs_per_cycle)

    def peak_macs_per_cycle(self, precision: str) -> float:
        """Peak MACs per cycle at ``precision``; 0 for one the engine does not compute in."""
        key = native_key(self.macs_per_cycle, precision)
        rate = self.macs_per_cycle[key] if key is not None else 0.0  # type: ignore[index]
        return self.lanes * self.width * self.rows * rate


class VectorUnit(_Spec):
    """SIMD unit: ``lanes`` x ops per lane per cycle, by op class."""

    lanes: Int = Field(default=128, gt=0, description="SIMD lanes")
    ops_per_cycle: dict[Literal["alu", "special"], Annotated[Float, Field(gt=0)]] = Field(
        default_factory=lambda: {"alu": 1.0, "special": 0.25},  # type: ignore[arg-type]
        description="operations per lane per cycle by op class: alu (add, mul, max, "
        "compare) and special (exp, tanh, erf, rsqrt); a class left out runs at the "
        "slowest rate given")

    def rate(self, op_class: str) -> float:
        rates: dict[str, float] = {str(k): v for k, v in self.ops_per_cycle.items()}
        return self.lanes * rates.get(op_class, min(rates.values()))


class Sram(_Spec):
    """A scratchpad: capacity, port bandwidth in bytes per cycle, bank count."""

    size: Bytes = Field(description="capacity")
    read_bytes_per_cycle: Float | None = Field(
        default=None, gt=0, description="read port, bytes per core clock cycle (unset: "
        "unlimited, the array is never starved by SRAM)")
    write_bytes_per_cycle: Float | None = Field(
        default=None, gt=0, description="write port, bytes per core clock cycle (unset: "
        "unlimited)")
    banks: Int = Field(default=16, gt=0, description="banks; the default energy per byte is "
                       "that of one bank of size / banks bytes (Horowitz 2014)")


class Dma(_Spec):
    """DMA engines moving tiles between DRAM and a core's scratchpad."""

    engines: Int = Field(default=2, gt=0, description="DMA engines per core")
    bytes_per_cycle: Float | None = Field(
        default=None, gt=0, description="per-engine cap in bytes per core clock cycle; "
        "unset: the DMA is limited only by DRAM and SRAM")


class Core(_Spec):
    """One core; every core of the chip is the same."""

    systolic: Systolic = Field(description="the systolic array(s) that run GEMMs")
    matvec: MatVec | None = Field(
        default=None, description="an optional matrix-vector engine for GEMMs of few rows "
        "(decode steps); none: every GEMM runs on the array")
    vector: VectorUnit = Field(default_factory=VectorUnit, description="the SIMD vector unit "
                               "(softmax, norms, activations, pooling, elementwise)")
    sram: Sram = Field(description="the core's scratchpad, which holds double-buffered tiles")
    accumulator: Sram | None = Field(
        default=None, description="a separate accumulator SRAM for partial sums (as TPU "
        "v1's); none: outputs at 4 bytes each take scratchpad space")
    dma: Dma = Field(default_factory=Dma, description="the core's DMA engines")

    def peak_macs_per_cycle(self, unit: str, precision: str) -> float:
        """Peak MACs per cycle of the engine a layer's ``unit`` names (``array`` or
        ``matvec``) at ``precision``; 0 for the vector unit or an engine the core lacks."""
        if unit == "array":
            return self.systolic.peak_macs_per_cycle(precision)
        if unit == "matvec" and self.matvec is not None:
            return self.matvec.peak_macs_per_cycle(precision)
        return 0.0

    def matvec_read_port(self) -> float | None:
        """Bytes per cycle the matrix-vector engine streams (None: unlimited)."""
        if self.matvec is None:
            return None
        return self.matvec.read_bytes_per_cycle or self.sram.read_bytes_per_cycle


# On-chip wire energy, about 0.1 pJ per bit per mm: Dally, "Power, Programmability, and
# Granularity: The Challenges of ExaScale Computing" (IPDPS 2011 keynote; 28 nm: a 256-bit
# word moved 1 mm costs 26 pJ); Keckler et al., "GPUs and the Future of Parallel Computing",
# IEEE Micro 2011 (240 fJ/bit/mm per transition at 40 nm, 150 at 10 nm, i.e. about 0.12 at
# one transition in two): wire energy per mm hardly shrinks with the node, so it is not
# scaled by process_nm. A NoC byte is taken to travel 10 mm (an assumption: half the side
# of a 400 mm2 die, from the core that read it from DRAM to the one that uses it).
NOC_PJ_PER_BIT_MM = 0.1
NOC_DISTANCE_MM = 10.0


class Noc(_Spec):
    """The on-chip network between the cores.

    ``bytes_per_cycle`` is what one core can receive from the others per core cycle;
    ``latency_cycles`` the time from a byte leaving one core to arriving at another.
    With ``multicast`` a core can send one block to every other core at once: a GEMM split
    over M then reads the shared B from DRAM once (each core reads its share and multicasts
    it), an N split A once. Without it each core loads its own copy from DRAM, as with no
    network. ``pj_per_bit``: energy per bit delivered to one core (default: 0.1 pJ/bit/mm
    over 10 mm, see NOC_PJ_PER_BIT_MM).
    """

    bytes_per_cycle: Float = Field(gt=0, description="bytes one core can receive from the "
                                   "others per core clock cycle")
    latency_cycles: Float = Field(ge=0, description="core clock cycles from a byte leaving "
                                  "one core to arriving at another")
    multicast: bool = Field(default=False, description="whether a core can send one block to "
                            "every other core at once (a split GEMM then reads its shared "
                            "operand from DRAM once)")
    pj_per_bit: Float | None = Field(
        default=None, gt=0, description="energy per bit delivered to one core, in pJ "
        "(unset: 0.1 pJ/bit/mm over 10 mm = 1 pJ/bit)")

    @property
    def energy_per_byte(self) -> float:
        pj = self.pj_per_bit if self.pj_per_bit is not None else NOC_PJ_PER_BIT_MM * NOC_DISTANCE_MM
        return pj * 8e-12


class Cores(_Spec):
    """How many cores, and the one description they share."""

    count: Int = Field(default=1, gt=0, description="cores on the chip")
    core: Core = Field(description="one core (all are alike)")


class Dram(_Spec):
    """Off-chip memory: a catalog standard plus overrides."""

    standard: str = Field(description="a DRAM catalog standard (LPDDR5-6400, HBM3-6400 "
                          "…; the catalog is npusim/spec/dram_catalog.py)")
    channels: Int | None = Field(default=None, gt=0, description="channels (unset: the "
                                 "standard's default)")
    data_rate: TransfersPerSecond | None = Field(
        default=None, description="transfers per second per pin (unset: the standard's)")
    bus_width_bits: Int | None = Field(default=None, gt=0, description="data bits per "
                                       "channel (unset: the standard's)")
    capacity: Bytes | None = Field(default=None, description="total capacity (unset: "
                                   "channels x the standard's capacity per channel)")
    bandwidth: BytesPerSecond | None = Field(
        default=None, description="peak bandwidth over all channels, a published figure "
        "replacing channels x width x rate")
    pj_per_bit: Float | None = Field(default=None, gt=0, description="access energy in pJ "
                                     "per bit moved, device core + interface + NPU-side "
                                     "controller/PHY; the interface share makes it up "
                                     "(unset: the standard's)")
    latency_ns: Float | None = Field(default=None, ge=0, description="idle read latency "
                                     "in ns (unset: the standard's)")
    overrides: dict[str, Int | Float] = Field(
        default_factory=dict, description="catalog fields replaced for this chip: timings "
        "in DRAM clock cycles (rcd, rp, cl, faw, refi, rfc …), organisation (bank_groups, "
        "banks_per_group, row_bytes, ranks), command energies (act_pre_nj, "
        "read_pj_per_bit, refresh_nj, background_mw …) and per-bit energies "
        "(io_pj_per_bit: interface, phy_pj_per_bit: controller + PHY)")
    # The cycle-approximate model's controller and address mapping (``--memory cycle``).
    mapping: str = Field(default="row:rank:bank:column:bankgroup:channel",
                         description="address mapping of the cycle model (--memory cycle), "
                         "most significant field first")
    interleave: Bytes = Field(default=256, description="cycle model: bytes on one "
                              "channel before the next (the bandwidth model deals 256 B "
                              "chunks)")
    page_policy: Literal["open", "closed"] = Field(
        default="open", description="cycle model: keep a row open after an access (open) "
        "or precharge at once (closed)")
    refresh: Literal["all-bank", "per-bank", "none"] = Field(
        default="all-bank", description="cycle model: refresh all banks at once, one bank "
        "at a time, or not at all")
    queue_depth: Int = Field(default=32, gt=0, description="cycle model: entries of each "
                             "transaction queue (read, write) per channel")
    window: Int | None = Field(
        default=None, gt=0, description="cycle model front end: requests the controller "
        "sees ahead in arrival order (unset: 512, or 64 per channel when that is more)")
    handover: Int | None = Field(
        default=None, gt=0, description="cycle model front end: requests handed to the "
        "controller per DRAM clock (unset: 16, or 2 per channel when that is more)")
    bank_queue: Int = Field(default=8, gt=0, description="cycle model: entries of each "
                            "bank's command queue behind the transaction queues")
    powerdown_idle: Int = Field(default=0, ge=0, description="cycle model: controller clocks "
                                "a rank stays with every bank precharged before it enters "
                                "precharge power-down (exit costs tXP); 0: never")

    @field_validator("standard")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            get_standard(v)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return v

    @model_validator(mode="after")
    def _overrides_apply(self) -> Dram:
        if self.overrides:
            try:
                get_standard(self.standard).with_overrides(dict(self.overrides))
            except SpecError as exc:
                raise AtPaths([(f"overrides.{i.path}", i.message) for i in exc.issues]) from None
        return self

    @property
    def catalog(self) -> DramStandard:
        """The catalog entry with this chip's ``overrides`` applied."""
        std = get_standard(self.standard)
        return std.with_overrides(dict(self.overrides)) if self.overrides else std

    @property
    def n_channels(self) -> int:
        return self.channels or self.catalog.default_channels

    @property
    def width_bits(self) -> int:
        return self.bus_width_bits or self.catalog.channel_width_bits

    @property
    def rate_tps(self) -> float:
        return self.data_rate or self.catalog.data_rate_mts * 1e6

    @property
    def peak_bandwidth(self) -> float:
        """Bytes per second across all channels."""
        if self.bandwidth is not None:
            return self.bandwidth
        return self.n_channels * self.width_bits / 8 * self.rate_tps

    @property
    def capacity_bytes(self) -> int:
        return self.capacity or self.n_channels * self.catalog.capacity_per_channel_bytes

    @property
    def energy_pj_per_bit(self) -> float:
        """The headline: device core + interface + NPU-side controller/PHY, pJ per bit."""
        return self.pj_per_bit or self.catalog.pj_per_bit

    @property
    def energy_parts_pj_per_bit(self) -> dict[str, float]:
        """The headline split into ``core``, ``interface`` and ``phy`` (controller + PHY),
        pJ per bit, adding up to :attr:`energy_pj_per_bit`. A chip's ``pj_per_bit`` keeps the
        catalog's core and controller/PHY and moves the interface share to make it up; a
        headline below core + PHY takes the PHY, then the core, down to fit."""
        std = self.catalog
        core, phy = std.core_pj_per_bit, std.phy_pj_per_bit
        if self.pj_per_bit is None:
            return {"core": core, "interface": std.interface_pj_per_bit, "phy": phy}
        total = self.pj_per_bit
        core = min(core, total)
        phy = min(phy, total - core)
        return {"core": core, "interface": total - core - phy, "phy": phy}

    @property
    def idle_latency_s(self) -> float:
        ns = self.latency_ns if self.latency_ns is not None else self.catalog.idle_read_latency_ns
        return ns * 1e-9


# Horowitz, ISSCC 2014, 45 nm: multiply + add per MAC, in pJ (int8, fp16, fp32; int4, fp8
# and bf16 are npusim's assumptions beside them). Both FP8 encodings take fp8's figure. A
# block-scaled FP4 MAC (mxfp4, nvfp4) takes int4's (an assumption: an E2M1 x E2M1 product
# has 2-bit significands, less than a 4-bit integer multiply; its block's scale is applied
# once per 16 or 32 products).
_MAC_PJ_45NM = {"int4": 0.1, "int8": 0.23, "fp8": 0.5, "fp8_e4m3": 0.5, "fp8_e5m2": 0.5,
                "fp16": 1.5, "bf16": 1.3, "fp32": 4.6, "mxfp4": 0.1, "nvfp4": 0.1}
# 64-bit SRAM read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ → pJ per byte by bank size.
_SRAM_POINTS = ((8 * 1024, 10 / 8), (32 * 1024, 20 / 8), (1024 * 1024, 100 / 8))


@cache  # a pure function of one number, asked for every layer of every result
def sram_pj_per_byte_45nm(bank_bytes: float) -> float:
    """Log-log interpolation of Horowitz's SRAM read energies, clamped at the ends."""
    (x0, y0), (x1, y1), (x2, y2) = _SRAM_POINTS
    x = min(max(bank_bytes, x0), x2)
    lo, hi = ((x0, y0), (x1, y1)) if x <= x1 else ((x1, y1), (x2, y2))
    t = (math.log(x) - math.log(lo[0])) / (math.log(hi[0]) - math.log(lo[0]))
    return math.exp(math.log(lo[1]) + t * (math.log(hi[1]) - math.log(lo[1])))


class EnergyTable(_Spec):
    """Energy per event; any value left out takes a default from public tables.

    Defaults are Horowitz's 45 nm figures scaled by ``process_nm / 45`` (an assumption:
    switched capacitance shrinks with feature size, supply voltage held), except DRAM,
    whose per-bit energy comes from the DRAM catalog.
    """

    mac: dict[Precision, Joules] = Field(
        default_factory=dict, description="energy of one MAC by precision (default: "
        "Horowitz 45 nm multiply + add, int8 0.23 pJ, scaled by process_nm / 45; fp8_e4m3 "
        "and fp8_e5m2 fall back to a given fp8)")
    sram_read_per_byte: Joules | None = Field(
        default=None, description="scratchpad read energy per byte (default: Horowitz 45 nm "
        "by bank size, scaled)")
    sram_write_per_byte: Joules | None = Field(
        default=None, description="scratchpad write energy per byte (default: the read "
        "default, not sram_read_per_byte)")
    vector_alu_op: Joules | None = Field(
        default=None, description="one vector ALU op (default: an fp16 add, 0.4 pJ at "
        "45 nm, scaled)")
    vector_special_op: Joules | None = Field(
        default=None, description="one vector special op (default: 4 ALU ops)")
    leakage: Watts = Field(default=0.0, description="static power of the whole chip, "
                           "charged for the run's latency")
    wire_pj_per_bit_mm: Float | None = Field(
        default=None, ge=0, description="on-chip wire energy in pJ per bit per mm, charged "
        "for bytes between the DRAM PHYs and the cores and between a core's scratchpad and "
        "its arrays over the floorplan's distances (npusim/area.py; default 0.1, not scaled "
        "by process_nm)")


# A host link's energy per bit when its file names no kind: the link catalog's PCIe class
# figure, 5 pJ/bit for both ends (npusim/spec/link_catalog.py, an assumption of the class).
# Anchor: a PCIe Gen4 PHY transmitter alone takes 1.93 pJ/bit (Bae et al., "A 1.93-pJ/Bit PCI
# Express Gen4 PHY Transmitter with On-Chip Supply Regulators in 28 nm CMOS", Electronics
# 10(1) 68, 2021); a receiver of the like at the other end and the link layer make ~4-5.
HOST_ENERGY_PER_BIT = LINK_KINDS["pcie5_x16"][2]


class Host(_Spec):
    """The chip's host interface: the link the input is uploaded over before the first layer
    and the result downloaded over after the last (see :mod:`npusim.engine.host`).

    ``kind`` names a link of :data:`~npusim.spec.link_catalog.LINK_KINDS` (``pcie5_x16``,
    ``pcie4_x8`` …), which fills ``bandwidth`` (payload per direction), ``latency`` (per
    transfer) and ``energy_per_bit`` when the file leaves them out.
    """

    kind: str = Field(default="link", description="a link kind (pcie3_x16, pcie4_x8, "
                      "pcie4_x16, pcie5_x8, pcie5_x16, ethernet_100g, ethernet_400g, "
                      "ici_v4) that fills bandwidth and latency; or a free label when both "
                      "are given")
    bandwidth: BytesPerSecond = Field(description="payload bandwidth per direction")
    latency: Seconds = Field(default=0.0, description="time per transfer (driver and DMA "
                             "start-up)")
    energy_per_bit: Joules = Field(
        default=HOST_ENERGY_PER_BIT, le=1e-9, description="energy per payload bit moved "
        "over the link, both ends, at most 1 nJ (a bare number is joules: write 5 pJ; "
        "unset: the kind's, else 5 pJ, the link catalog's PCIe figure)")

    @model_validator(mode="before")
    @classmethod
    def _from_catalog(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "kind" not in data:
            return data
        if data["kind"] not in LINK_KINDS:
            raise ValueError(f"unknown host link kind {data['kind']!r} (known: "
                             f"{', '.join(sorted(LINK_KINDS))})")
        bw, lat, epb = LINK_KINDS[data["kind"]]
        return {"bandwidth": bw, "latency": lat, "energy_per_bit": epb, **data}


class Overheads(_Spec):
    """Runtime time on the host per query (driver call, input preparation, completion) and
    per layer dispatched (a kernel launch and its synchronisation). Default 0: no overhead."""

    per_query_s: Seconds = Field(default=0.0, description="host time per query (driver "
                                 "call, input preparation, completion)")
    per_layer_s: Seconds = Field(default=0.0, description="host time per layer dispatched "
                                 "(a kernel launch and its synchronisation)")


class Price(_Spec):
    """What one unit (a chip or card; a whole system in a system file) costs, with where the
    figure comes from. ``npusim serve --cost`` charges it when the cost file gives no
    ``card_price_usd``. Presets carry a price only where a list price is published, or,
    on the reference chips that stand for no product, an example marked ``assumption``."""

    usd: Float = Field(gt=0, allow_inf_nan=False, description="price in US dollars")
    basis: Literal["list", "assumption"] = Field(description="list: a published list price "
                                                 "(cite it in source); assumption: an "
                                                 "example figure, not a quote")
    source: str = Field(min_length=1, description="where the list price is published, or "
                        "what the assumed figure rests on")


class Residual(_Spec):
    """One measurement of a calibration beside the calibrated chip's prediction."""

    workload: str = Field(description="the measured workload")
    layer: str | None = Field(default=None, description="the measured layer (none: the "
                              "whole workload)")
    batch: Int = Field(default=1, gt=0, description="batch of the measurement")
    measured_s: Float = Field(gt=0, description="measured latency in s")
    predicted_s: Float = Field(ge=0, description="the calibrated chip's latency in s")
    error: Float = Field(description="predicted / measured - 1 (dimensionless)")
    held_out: bool = Field(default=False, description="kept out of the fit (--holdout): its "
                           "error is the honest one")


class Calibration(_Spec):
    """What a calibrated chip file was fitted to: written by ``npusim calibrate``, never by
    hand. ``fitted`` holds each fitted key path's value, ``initial`` its value in the chip
    the fit started from, ``bounds`` the interval it was kept in."""

    data: str = Field(description="the measurement CSV fitted to")
    started_from: str = Field(description="the chip the fit started from")
    fitted: dict[str, float] = Field(description="fitted value by key path, in base units")
    initial: dict[str, float] = Field(description="starting value by key path")
    bounds: dict[str, tuple[float, float]] = Field(description="interval each key path was "
                                                   "kept in")
    standard_error: dict[str, Float] = Field(
        default_factory=dict, description="standard error of each fitted value, in base "
        "units, from the residuals and (J^T J)^-1 (left out: no rows to spare, or not "
        "identified)")
    warnings: list[str] = Field(default_factory=list, description="what the measurements "
                                "cannot tell (fields that trade off, a fit on a bound)")
    fit_rms_error: Float = Field(ge=0, description="RMS of the fitted rows' relative errors")
    holdout_rms_error: Float | None = Field(default=None, ge=0, description="RMS of the "
                                            "held-out rows' relative errors")
    residuals: list[Residual] = Field(default_factory=list, description="one entry per "
                                      "measurement")


class Chip(_Spec):
    """A chip: what a chip YAML holds (the top level of the file)."""

    name: str = Field(description="the chip's name in reports")
    sources: list[str] = Field(min_length=1, description="public documents every figure "
                               "comes from (at least one)")
    assumptions: list[str] = Field(default_factory=list, description="each value not "
                                   "published: what was chosen and why")
    process_nm: Float = Field(default=28.0, gt=0, description="process node in nm; scales "
                              "default energies (x process_nm / 45) and area")
    clock: Hertz = Field(description="core clock")
    default_precision: Precision = Field(default="int8", description="precision of "
                                         "workloads that do not set one; the array must "
                                         "compute it")
    cores: Cores = Field(description="the cores")
    shared_sram: Sram | None = Field(default=None, description="an on-chip SRAM shared by "
                                     "the cores, where weights stay resident when they fit")
    noc: Noc | None = Field(default=None, description="the network between cores (none: "
                            "each core loads its own copy of a shared operand from DRAM)")
    dram: Dram = Field(description="off-chip memory")
    energy: EnergyTable = Field(default_factory=EnergyTable, description="energy per event; "
                                "left-out values take public defaults")
    tdp: Watts | None = Field(default=None, description="published thermal design power "
                              "(reported beside the simulated power, not used by the model)")
    host: Host | None = Field(default=None, description="the host link (none: the host "
                              "path is not modelled, whatever the scenario)")
    overheads: Overheads = Field(default_factory=Overheads, description="host runtime time "
                                 "per query and per layer")
    calibration: Calibration | None = Field(default=None, description="set only in a file "
                                            "written by npusim calibrate; presets never "
                                            "have it")
    price: Price | None = Field(default=None, description="what one chip (or card) costs, "
                                "with its source; used by serve --cost when the cost file "
                                "gives no card_price_usd (none: no public price)")

    @model_validator(mode="after")
    def _cross_field(self) -> Chip:
        core = self.cores.core
        sa = core.systolic
        problems: list[tuple[str, str]] = []
        if is_block(self.default_precision):
            problems.append((
                "default_precision",
                f"{self.default_precision} is a block-scaled weight format; a workload's "
                f"one precision is also its activations'"))
        elif native_key(sa.macs_per_cycle, self.default_precision) is None:
            problems.append((
                "default_precision",
                f"{self.default_precision!r} is not computed by the array "
                f"(cores.core.systolic.macs_per_cycle has {', '.join(sa.precisions)})"))
        mv = core.matvec
        if mv is not None:
            extra = [p for p in mv.macs_per_cycle if p not in sa.macs_per_cycle]
            if extra:
                problems.append((
                    "cores.core.matvec.macs_per_cycle",
                    f"has {', '.join(extra)}, which the array does not compute (a layer's "
                    f"compute precision is one of {', '.join(sa.precisions)})"))
        need = min_tile_sram_bytes(self)
        if core.sram.size < need:
            problems.append((
                "cores.core.sram.size",
                f"{core.sram.size} B cannot hold one double-buffered minimum tile of a "
                f"{sa.rows}x{sa.cols} array ({need} B needed)"))
        if problems:
            raise AtPaths(problems)
        return self

    # Derived figures -------------------------------------------------------------------
    @property
    def freq_hz(self) -> float:
        return self.clock

    @property
    def n_cores(self) -> int:
        return self.cores.count

    def peak_macs_per_second(self, precision: str | None = None) -> float:
        p = precision or self.default_precision
        return self.cores.count * self.cores.core.systolic.peak_macs_per_cycle(p) * self.clock

    def peak_ops_per_second(self, precision: str | None = None) -> float:
        return 2 * self.peak_macs_per_second(precision)

    def energy_scale(self) -> float:
        return self.process_nm / 45.0

    def mac_energy(self, precision: str) -> float:
        key = native_key(self.energy.mac, precision)
        if key is not None:
            return self.energy.mac[key]  # type: ignore[index]
        return _MAC_PJ_45NM[precision] * 1e-12 * self.energy_scale()

    def sram_energy_per_byte(self, write: bool = False) -> float:
        given = self.energy.sram_write_per_byte if write else self.energy.sram_read_per_byte
        if given is not None:
            return given
        s = self.cores.core.sram
        return sram_pj_per_byte_45nm(s.size / s.banks) * 1e-12 * self.energy_scale()

    def accumulator_energy_per_byte(self) -> float:
        """Energy per byte read or written in the accumulator SRAM, from its own (smaller)
        banks by the same table as the scratchpad; the scratchpad's read energy when the
        core has none. The energy table's SRAM overrides are the scratchpad's only."""
        acc = self.cores.core.accumulator
        if acc is None:
            return self.sram_energy_per_byte()
        return sram_pj_per_byte_45nm(acc.size / acc.banks) * 1e-12 * self.energy_scale()

    def vector_energy(self, op_class: str) -> float:
        given = self.energy.vector_special_op if op_class == "special" else self.energy.vector_alu_op
        if given is not None:
            return given
        # An fp16 add (0.4 pJ at 45 nm) per ALU op; a special op taken as 4 of them (assumption).
        base = 0.4e-12 * (4 if op_class == "special" else 1)
        return base * self.energy_scale()

    def dram_energy_per_byte(self) -> float:
        return self.dram.energy_pj_per_bit * 8e-12

    def wire_energy_per_byte_mm(self) -> float:
        """Joules per byte per mm of on-chip wire (see NOC_PJ_PER_BIT_MM)."""
        pj = self.energy.wire_pj_per_bit_mm
        return (NOC_PJ_PER_BIT_MM if pj is None else pj) * 8e-12

    @property
    def multicast(self) -> bool:
        """Whether cores can share one DRAM read of an operand over the on-chip network."""
        return self.noc is not None and self.noc.multicast and self.n_cores > 1

    def _repr_html_(self) -> str:
        return str(view("chip.html")(self))  # drawn by npusim.report (see npusim._views)

    def with_overrides(self, **changes: Any) -> Chip:
        """A validated copy with top-level fields replaced."""
        data = self.model_dump()
        data.update(changes)
        return Chip.model_validate(data)


def min_tile_sram_bytes(chip: Chip) -> int:
    """SRAM for one minimum tile, double-buffered: one fold's operands plus its outputs.

    A minimum tile is one array fold: an R x C stationary block, an R-wide stream of R rows,
    and R x C outputs at accumulator width (unless a separate accumulator SRAM holds them).
    """
    sa = chip.cores.core.systolic
    bits = min(BITS[p] for p in sa.macs_per_cycle)
    r, c = sa.rows, sa.cols
    operands = math.ceil((r * c + r * r) * bits / 8)
    outputs = 0 if chip.cores.core.accumulator else r * c * 4
    return 2 * operands + outputs


def chip_from_dict(data: dict[str, Any], source: str | None = None, lines: dict[str, int] | None = None) -> Chip:
    return validate(Chip, data, lines or {}, source)


def loads_arch(text: str, source: str | None = None) -> Chip:
    data, lines = loads_yaml(text, source)
    return validate(Chip, data, lines, source)


def load_arch(path: str | Path) -> Chip:
    """Load a chip from a YAML file path, a SCALE-Sim ``.cfg`` or a preset name (``tpu_v1``)."""
    p = Path(path)
    if p.suffix.lower() == ".cfg":  # as the CLI takes it
        return load_scalesim_cfg(p)
    if not p.exists() and not p.suffix:
        from npusim.presets import preset_path

        p = preset_path(str(path))
    data, lines = load_yaml(p)
    return validate(Chip, data, lines, str(p))


def load_scalesim_cfg(path: str | os.PathLike[str], clock_hz: float = 1e9) -> Chip:
    """A one-core, one-array :class:`Chip` from a SCALE-Sim ``.cfg`` (v2 or v3; read by
    :func:`npusim.spec.scalesim.scalesim_cfg_data`, which tells how)."""
    from npusim.spec.scalesim import ARCH_SECTION, scalesim_cfg_data

    data, source, line = scalesim_cfg_data(path, clock_hz)
    try:
        return chip_from_dict(data, source)
    except SpecError as exc:  # a chip rule the cfg breaks (SRAM too small for the array)
        raise SpecError([Issue(ARCH_SECTION, f"the chip this file describes is invalid: "
                                             f"{i.path + ': ' if i.path else ''}{i.message}",
                               line) for i in exc.issues], source) from None
