"""The tile program: the tiled matmul and vector trace the engine runs.

A :class:`TileProgram` is one :class:`LayerProgram` per workload layer, each holding one
float64 array of tiles per core. A tile is a unit of double-buffered work: the DMA brings its
inputs (``dram_read_bytes`` from ``read_addr``), the array and/or vector unit work on it,
and the DMA writes ``dram_write_bytes`` back at ``write_addr``. Columns, in order:

    array_cycles      array busy time incl. SRAM-port stalls (core clock cycles)
    compute_cycles    array time with ideal SRAM ports (the SCALE-Sim count)
    macs              multiply-accumulates done
    dram_read_bytes   bytes the DMA loads before the tile can start
    dram_write_bytes  bytes the DMA stores after the tile ends
    sram_read_bytes   scratchpad bytes read (array operands, partial sums read back for
                      read-modify-write, DMA drain)
    sram_write_bytes  scratchpad bytes written (partial sums and DMA fill)
    read_addr         DRAM byte address of the load
    write_addr        DRAM byte address of the store
    vector_cycles     vector-unit busy time, overlapped with the array
    noc_read_bytes    bytes that reach the core over the on-chip network (another core's
                      multicast of a shared operand) before the tile can start

On a core with an accumulator SRAM the partial sums (reads and writes) go there instead of
the scratchpad and are left out of the SRAM columns; a layer's totals of them are in
``LayerProgram.extra`` as ``acc_read_bytes`` and ``acc_write_bytes`` (0 without one).

The file format (``npusim compile ... -o trace.parquet``; CSV works the same) is one row per
tile with ``layer_index, layer, op, unit, core, tile`` and the columns above. Layer metadata
(GEMM shape, MACs, vector ops, mapping) rides in the Parquet schema metadata under
``npusim``; a trace written by another compiler may leave it out and give only the rows.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from npusim._io import atomic_write
from npusim.errors import SimulationError, SpecError
from npusim.extras import require
from npusim.spec.yamlio import read_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TILE_COLUMNS", "LayerProgram", "TileProgram", "load_program", "save_program"]

TILE_COLUMNS: tuple[str, ...] = (
    "array_cycles", "compute_cycles", "macs", "dram_read_bytes", "dram_write_bytes",
    "sram_read_bytes", "sram_write_bytes", "read_addr", "write_addr", "vector_cycles",
    "noc_read_bytes",
)
#: Columns a tile trace may leave out (taken as zero): added after the format was published.
OPTIONAL_COLUMNS: tuple[str, ...] = ("noc_read_bytes",)
COL = {name: i for i, name in enumerate(TILE_COLUMNS)}


@dataclass(frozen=True)
class LayerProgram:
    """One layer's tiles per core and the facts about its mapping."""

    index: int
    name: str
    op: str
    unit: str  # "array", "matvec" (the matrix-vector engine) or "vector"
    tiles: tuple[np.ndarray, ...]  # one (tiles x len(TILE_COLUMNS)) array per core
    m: int = 0
    n: int = 0
    k: int = 0
    g: int = 1
    macs: int = 0
    vector_alu_ops: float = 0.0
    vector_special_ops: float = 0.0
    precision: str = "int8"
    mapping: str = ""
    #: one copy of every operand the layer reads from DRAM (bytes); what the tiles read
    #: beyond it is duplicated (re-read, or read by more than one core). -1: not known
    dram_operand_bytes: float = -1.0
    extra: dict[str, float] = field(default_factory=dict)

    @cached_property
    def _sums(self) -> np.ndarray:
        """Column sums per core, (cores x columns), computed once."""
        return np.array([t.sum(axis=0) if len(t) else np.zeros(len(TILE_COLUMNS))
                         for t in self.tiles]).reshape(len(self.tiles), len(TILE_COLUMNS))

    @cached_property
    def _totals(self) -> np.ndarray:
        """Column totals over the cores, computed once."""
        return self._sums.sum(axis=0)

    def total(self, column: str) -> float:
        return float(self._totals[COL[column]])

    def per_core(self, column: str) -> np.ndarray:
        return self._sums[:, COL[column]].copy()

    @property
    def n_tiles(self) -> int:
        return sum(len(t) for t in self.tiles)

    def meta(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("tiles")
        return d


@dataclass(frozen=True)
class TileProgram:
    chip: str
    workload: str
    n_cores: int
    layers: tuple[LayerProgram, ...]
    weights_resident: bool = False  # weights held in shared on-chip SRAM, not read from DRAM

    @property
    def n_tiles(self) -> int:
        return sum(lp.n_tiles for lp in self.layers)

    @cached_property
    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every tile in one array, with (layers x cores) row offsets and counts into it:
        the form the compiled event model takes (computed once)."""
        width = max((len(lp.tiles) for lp in self.layers), default=0)
        counts = np.zeros((len(self.layers), width), np.int64)
        for li, lp in enumerate(self.layers):
            counts[li, :len(lp.tiles)] = [len(t) for t in lp.tiles]
        offsets = (np.cumsum(counts.ravel()) - counts.ravel()).reshape(counts.shape)
        parts = [t for lp in self.layers for t in lp.tiles if len(t)]
        tiles = (np.ascontiguousarray(np.concatenate(parts), dtype=np.float64) if parts
                 else np.zeros((0, len(TILE_COLUMNS))))
        return tiles, offsets, counts

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        frames = []
        for lp in self.layers:
            for core, t in enumerate(lp.tiles):
                if not len(t):
                    continue
                df = pd.DataFrame(t, columns=list(TILE_COLUMNS))
                df.insert(0, "tile", np.arange(len(t)))
                df.insert(0, "core", core)
                df.insert(0, "unit", lp.unit)
                df.insert(0, "op", lp.op)
                df.insert(0, "layer", lp.name)
                df.insert(0, "layer_index", lp.index)
                frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["layer_index", "layer", "op", "unit", "core", "tile",
                                         *TILE_COLUMNS])
        return pd.concat(frames, ignore_index=True)


def save_program(program: TileProgram, path: str | os.PathLike[str]) -> None:
    """Write ``program`` as Parquet (metadata kept) or CSV, atomically."""
    p = Path(path)
    df = program.to_dataframe()
    if p.suffix == ".csv":
        atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))
        return
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {"chip": program.chip, "workload": program.workload, "n_cores": program.n_cores,
            "weights_resident": program.weights_resident,
            "layers": [lp.meta() for lp in program.layers]}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           b"npusim": json.dumps(meta).encode()})
    atomic_write(p, lambda tmp: pq.write_table(table, tmp))


def load_program(path: str | os.PathLike[str], n_cores: int | None = None) -> TileProgram:
    """Read a tile trace written by ``save_program`` or by another compiler."""
    import pandas as pd

    p = Path(path)
    meta: dict[str, object] = {}
    try:
        if p.suffix == ".csv":
            df = pd.read_csv(io.StringIO(read_text(p)))
        else:
            pq = require("pyarrow.parquet")

            table = pq.read_table(p)
            raw = (table.schema.metadata or {}).get(b"npusim")
            meta = json.loads(raw) if raw else {}
            df = table.to_pandas()
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read tile trace: {exc}", str(p)) from None
    missing = [c for c in ("layer_index", "layer", "core", *TILE_COLUMNS)
               if c not in df.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise SpecError(f"tile trace lacks columns: {', '.join(missing)}", str(p))
    for c in OPTIONAL_COLUMNS:
        if c not in df.columns:
            df[c] = 0.0
    cores = int(n_cores or meta.get("n_cores") or int(df["core"].max()) + 1)  # type: ignore[call-overload]
    layer_meta = {int(d["index"]): d for d in meta.get("layers", [])}  # type: ignore[union-attr, attr-defined]
    layers = []
    for idx, grp in df.groupby("layer_index", sort=True):
        if int(grp["core"].max()) >= cores:
            raise SimulationError(f"layer {idx}: core {int(grp['core'].max())} >= {cores} cores")
        tiles = tuple(
            grp[grp["core"] == c].sort_values("tile")[list(TILE_COLUMNS)].to_numpy(np.float64)
            if (grp["core"] == c).any() else np.zeros((0, len(TILE_COLUMNS)))
            for c in range(cores))
        lm = dict(layer_meta.get(int(idx), {}))
        unit = str(grp["unit"].iloc[0]) if "unit" in grp else (
            "array" if grp["macs"].sum() > 0 else "vector")
        lm.update(index=int(idx), name=str(grp["layer"].iloc[0]),
                  op=str(grp["op"].iloc[0]) if "op" in grp else "tile", unit=unit, tiles=tiles)
        if "macs" not in layer_meta.get(int(idx), {}):
            lm["macs"] = int(grp["macs"].sum())
        layers.append(LayerProgram(**lm))  # type: ignore[arg-type]
    return TileProgram(str(meta.get("chip", "")), str(meta.get("workload", p.stem)), cores,
                       tuple(layers), bool(meta.get("weights_resident", False)))
