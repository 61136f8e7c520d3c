"""Timing checker: replay a recorded command trace and list every violated constraint.

Written independently of the controller: it keeps per-bank, per-bank-group, per-rank and
per-channel history of the commands it has seen and checks each new command against the
catalog timings (JEDEC names): per rank tRRD_S, tFAW, t32AW, tCCD_S, tWTR_S and the
read-to-write turnaround, per bank group the long timings (the short ones when a rank has
one bank group), and tRTRS between column commands of different ranks. REF/PREA rows carry
``-1 - rank`` as their bank. RDA/WRA imply a precharge at the earliest cycle tRAS and tRTP/tWR
allow, as auto-precharge does. Power-down (PDE/PDX rows, rank-wide): entry needs every bank
of the rank precharged, no command reaches the rank while it is down, and its next ACT or REF
waits tXP after the exit. Command slots: one command a clock per channel, or on HBM (separate
row and column command buses) one row and one column command a clock; PDE/PDX (clock-enable
transitions) take no slot.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from typing import Any

import numpy as np

from npusim.kernels.dram import CMD_NAMES
from npusim.spec.dram_catalog import DramStandard

__all__ = ["check_trace"]

_FAR = -(10**15)


class _Rank:
    def __init__(self) -> None:
        self.acts: deque[int] = deque(maxlen=32)
        self.last_act = _FAR
        self.last_rd = _FAR
        self.last_wr = _FAR
        self.last_ref = _FAR
        self.down = False
        self.pd_exit = _FAR


class _Chan:
    def __init__(self, nb: int, nbg: int, ranks: int) -> None:
        self.row = [-1] * nb
        self.act = [_FAR] * nb
        self.pre = [_FAR] * nb
        self.rd = [_FAR] * nb
        self.wr = [_FAR] * nb
        self.refpb = [_FAR] * nb
        self.g_act = [_FAR] * nbg
        self.g_rd = [_FAR] * nbg
        self.g_wr = [_FAR] * nbg
        self.ranks = [_Rank() for _ in range(ranks)]
        self.last_col = _FAR
        self.last_col_rank = -1
        self.last_col_wr = False


def check_trace(commands: np.ndarray, std: DramStandard, limit: int = 50) -> list[str]:
    """Violations found in ``commands`` (rows: cycle, channel, bank, row, code), at most
    ``limit``; an empty list means the trace obeys every checked constraint."""
    t = std.t
    nb, bpg = std.banks, std.banks_per_group
    per_rank = nb // std.ranks
    grouped = std.bank_groups > 1
    ccd_s = max(t.ccd_s, t.nbl)
    ccd_l = max(t.ccd_l if grouped else t.ccd_s, ccd_s)
    rrd_l = t.rrd_l if grouped else t.rrd_s
    wtr_l = t.wtr_l if grouped else t.wtr_s
    wr_end = t.cwl + t.nbl
    chans: dict[int, _Chan] = defaultdict(
        lambda: _Chan(nb, std.ranks * std.bank_groups, std.ranks))
    out: list[str] = []

    def need(ok: bool, cyc: int, ch: int, what: str) -> None:
        if not ok and len(out) < limit:
            out.append(f"cycle {cyc} channel {ch}: {what}")

    order: Any = np.lexsort((commands[:, 1], commands[:, 0])) if len(commands) else []
    dual = std.dual_command_bus
    slots: Counter[tuple[int, int, bool]] = Counter()
    for cyc, ch, _, _, code in commands.tolist():
        cmd = CMD_NAMES[code]
        if cmd not in ("PDE", "PDX"):
            slots[cyc, ch, dual and cmd.startswith(("RD", "WR"))] += 1
    for (cyc, ch, col), k in sorted(slots.items()):
        bus = ("column " if col else "row ") + "command bus" if dual else "command bus"
        need(k == 1, cyc, ch, f"{k} commands in one clock on the {bus}")
    for i in order:
        cyc, ch, b, row, code = (int(v) for v in commands[i])
        cmd = CMD_NAMES[code]
        s = chans[ch]
        r = b // per_rank if b >= 0 else -1 - b
        rk = s.ranks[r]
        need(not rk.down or cmd == "PDX", cyc, ch, f"{cmd} to rank {r} in power-down")
        if cmd in ("ACT", "REF", "REFPB"):
            need(cyc >= rk.pd_exit + t.xp, cyc, ch, f"tXP rank {r}")
        if cmd == "ACT":
            g = b // bpg
            need(s.row[b] < 0, cyc, ch, f"ACT to open bank {b}")
            need(cyc >= s.pre[b] + t.rp, cyc, ch, f"tRP bank {b}")
            need(cyc >= s.act[b] + t.rc, cyc, ch, f"tRC bank {b}")
            need(cyc >= rk.last_act + t.rrd_s, cyc, ch, f"tRRD_S rank {r}")
            need(cyc >= s.g_act[g] + rrd_l, cyc, ch, f"tRRD_L group {g}")
            need(len(rk.acts) < 4 or cyc >= rk.acts[-4] + t.faw, cyc, ch, f"tFAW rank {r}")
            need(t.t32aw == 0 or len(rk.acts) < 32 or cyc >= rk.acts[0] + t.t32aw, cyc, ch,
                 f"t32AW rank {r}")
            need(cyc >= rk.last_ref + t.rfc, cyc, ch, "tRFC")
            need(cyc >= s.refpb[b] + t.rfcpb, cyc, ch, f"tRFCpb bank {b}")
            s.row[b], s.act[b] = row, cyc
            rk.last_act = s.g_act[g] = cyc
            rk.acts.append(cyc)
        elif cmd in ("PRE", "PREA"):
            mine = range(r * per_rank, (r + 1) * per_rank)
            banks = [b] if cmd == "PRE" else [x for x in mine if s.row[x] >= 0]
            if cmd == "PRE":
                need(s.row[b] >= 0, cyc, ch, f"PRE to closed bank {b}")
            for x in banks:
                need(cyc >= s.act[x] + t.ras, cyc, ch, f"tRAS bank {x}")
                need(cyc >= s.rd[x] + t.rtp, cyc, ch, f"tRTP bank {x}")
                need(cyc >= s.wr[x] + wr_end + t.wr, cyc, ch, f"tWR bank {x}")
                s.row[x], s.pre[x] = -1, cyc
        elif cmd in ("RD", "RDA", "WR", "WRA"):
            g = b // bpg
            write = cmd.startswith("WR")
            need(s.row[b] == row, cyc, ch, f"{cmd} to bank {b} row {row} not open")
            need(cyc >= s.act[b] + (t.rcdw if write else t.rcd), cyc, ch, f"tRCD bank {b}")
            if s.last_col_rank >= 0 and s.last_col_rank != r:
                gap = t.nbl + t.rtrs
                if s.last_col_wr != write:
                    gap += (t.cl - t.cwl) if write else (t.cwl - t.cl)
                need(cyc >= s.last_col + gap, cyc, ch, "tRTRS (rank switch)")
            if write:
                need(cyc >= rk.last_wr + ccd_s, cyc, ch, "tCCD_S (WR)")
                need(cyc >= s.g_wr[g] + ccd_l, cyc, ch, "tCCD_L (WR)")
                need(cyc >= rk.last_rd + t.rtw, cyc, ch, "RD to WR turnaround")
                s.wr[b] = rk.last_wr = s.g_wr[g] = cyc
            else:
                need(cyc >= rk.last_rd + ccd_s, cyc, ch, "tCCD_S (RD)")
                need(cyc >= s.g_rd[g] + ccd_l, cyc, ch, "tCCD_L (RD)")
                need(cyc >= rk.last_wr + wr_end + t.wtr_s, cyc, ch, "tWTR_S")
                need(cyc >= s.g_wr[g] + wr_end + wtr_l, cyc, ch, "tWTR_L")
                s.rd[b] = rk.last_rd = s.g_rd[g] = cyc
            s.last_col, s.last_col_rank, s.last_col_wr = cyc, r, write
            if cmd.endswith("A"):
                after = wr_end + t.wr if write else t.rtp
                s.row[b], s.pre[b] = -1, max(s.act[b] + t.ras, cyc + after)
        elif cmd == "REF":
            for x in range(r * per_rank, (r + 1) * per_rank):
                need(s.row[x] < 0, cyc, ch, f"REF with bank {x} open")
                need(cyc >= s.pre[x] + t.rp, cyc, ch, f"tRP before REF bank {x}")
                need(cyc >= s.act[x] + t.rc, cyc, ch, f"tRC before REF bank {x}")
            need(cyc >= rk.last_ref + t.rfc, cyc, ch, "REF to REF tRFC")
            rk.last_ref = cyc
        elif cmd == "REFPB":
            need(s.row[b] < 0, cyc, ch, f"REFpb to open bank {b}")
            need(cyc >= s.pre[b] + t.rp, cyc, ch, f"tRP before REFpb bank {b}")
            need(cyc >= s.act[b] + t.rc, cyc, ch, f"tRC before REFpb bank {b}")
            need(cyc >= s.refpb[b] + t.rfcpb, cyc, ch, f"REFpb to REFpb bank {b}")
            s.refpb[b] = cyc
        elif cmd == "PDE":
            for x in range(r * per_rank, (r + 1) * per_rank):
                need(s.row[x] < 0 and cyc >= s.pre[x], cyc, ch,
                     f"power-down with bank {x} open")
            rk.down = True
        elif cmd == "PDX":
            need(rk.down, cyc, ch, f"power-down exit of rank {r} not powered down")
            rk.down, rk.pd_exit = False, cyc
    return out
