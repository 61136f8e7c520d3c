"""Physical address → (channel, bank, row): a configurable field order with an interleave size.

The order is written most-significant field first, e.g. ``row:rank:bank:column:bankgroup:channel``
(the default). Below every field sit the burst offset and the low column bits that make up
one ``interleave_bytes`` chunk: consecutive chunks go to consecutive values of the least
significant field. With the default, 256-byte chunks rotate over the channels, then over
bank groups (so a stream alternates bank groups and pays tCCD_S, not tCCD_L), then the rest
of the row, then banks, then rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npusim.errors import SpecError
from npusim.spec.dram_catalog import DramStandard

__all__ = ["DEFAULT_ORDER", "FIELDS", "AddressMapping"]

FIELDS = ("row", "rank", "bankgroup", "bank", "column", "channel")
DEFAULT_ORDER = "row:rank:bank:column:bankgroup:channel"


@dataclass(frozen=True)
class AddressMapping:
    order: tuple[str, ...]  # most significant first
    sizes: dict[str, int]  # values each field takes ("column": chunks per row)
    burst_bytes: int
    chunk_bursts: int  # bursts per interleave chunk
    rows: int
    banks_per_group: int
    bank_groups: int

    @classmethod
    def build(cls, std: DramStandard, channels: int, order: str = DEFAULT_ORDER,
              interleave_bytes: int = 256) -> AddressMapping:
        fields = tuple(f.strip().lower() for f in order.split(":") if f.strip())
        bad = [f for f in fields if f not in FIELDS]
        if bad or len(set(fields)) != len(fields):
            raise SpecError(f"address mapping {order!r}: fields must be distinct names from "
                            f"{', '.join(FIELDS)}")
        bb = std.burst_bytes
        bursts_per_row = max(std.row_bytes // bb, 1)
        if interleave_bytes % bb or not 0 < interleave_bytes <= std.row_bytes \
                or bursts_per_row % (interleave_bytes // bb):
            raise SpecError(f"interleave {interleave_bytes} B must be a multiple of the "
                            f"{bb} B burst dividing the {std.row_bytes} B row")
        chunk = interleave_bytes // bb
        rows = max(std.capacity_per_channel_bytes // (std.row_bytes * std.banks), 1)
        sizes = {"row": rows, "rank": std.ranks, "bankgroup": std.bank_groups,
                 "bank": std.banks_per_group, "column": bursts_per_row // chunk,
                 "channel": channels}
        missing = [f for f in FIELDS if f not in fields and sizes[f] > 1]
        if missing:
            raise SpecError(f"address mapping {order!r} lacks {', '.join(missing)}")
        return cls(fields, sizes, bb, chunk, rows, std.banks_per_group, std.bank_groups)

    @property
    def channels(self) -> int:
        return self.sizes["channel"]

    def decode(self, addr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(channel, flat bank id within the channel, row) of each byte address."""
        x = np.asarray(addr, dtype=np.int64) // self.burst_bytes // self.chunk_bursts
        vals = {}
        for f in reversed(self.order):
            size = self.sizes[f]
            vals[f] = x % size
            x = x // size
        zero = np.zeros_like(x)
        rank, bg = vals.get("rank", zero), vals.get("bankgroup", zero)
        bank = (rank * self.bank_groups + bg) * self.banks_per_group + vals.get("bank", zero)
        row = vals.get("row", zero) % self.rows
        return vals.get("channel", zero), bank, row

    def channel_stride_bursts(self) -> int:
        """Bursts between consecutive channel values (channel = burst // stride % channels)."""
        stride = self.chunk_bursts
        for f in reversed(self.order):
            if f == "channel":
                return stride
            stride *= self.sizes[f]
        return stride

    def bursts_per_channel(self, first: int, stop: int) -> np.ndarray:
        """How many of the bursts ``first .. stop-1`` map to each channel (closed form)."""
        c = self.channels
        s = self.channel_stride_bursts()
        period = s * c
        ch = np.arange(c, dtype=np.int64)

        def upto(x: int) -> np.ndarray:
            full, rest = divmod(x, period)
            return full * s + np.clip(rest - ch * s, 0, s)

        return upto(stop) - upto(first)
