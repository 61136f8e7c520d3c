"""Plain-Python twin of npusim/kernels/dram.py: the same controller, written with objects.

Used only by tests as the oracle for the numba kernel: same request order, same FR-FCFS
choice, same command times. Slow and obvious on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NEVER = -(1 << 40)


@dataclass
class Bank:
    row: int = -1
    next_act: int = 0
    next_pre: int = 0
    next_rd: int = 0
    next_wr: int = 0


@dataclass
class Group:
    next_act: int = 0
    next_rd: int = 0
    next_wr: int = 0


@dataclass
class Channel:
    banks: list[Bank]
    groups: list[Group]
    row_last: int = -1
    col_last: int = -1
    next_act: int = 0
    next_rd: int = 0
    next_wr: int = 0
    ref_due: int = 0
    ref_ptr: int = 0
    write_mode: bool = False
    now: int = 0
    faw: list[int] = field(default_factory=lambda: [NEVER] * 4)
    faw_i: int = 0
    commands: list[tuple[int, int, int, str]] = field(default_factory=list)


class NaiveDram:
    """``t`` is a dict of timings (names of DramTiming plus ``nbl``) and options."""

    def __init__(self, t: dict[str, int], channels: int, banks: int, banks_per_group: int,
                 depth: int, closed: bool, refresh: int) -> None:
        self.t = t
        self.bpg = banks_per_group
        self.depth = depth
        self.closed = closed
        self.refresh = refresh  # 0 none, 1 all-bank, 2 per-bank
        step = t["refi"] if refresh != 2 else max(t["refi"] // banks, 1)
        self.chans = [Channel([Bank() for _ in range(banks)],
                              [Group() for _ in range(banks // banks_per_group)], ref_due=step)
                      for _ in range(channels)]

    def plan(self, ch: Channel, b: int, row: int, write: bool, t0: int) -> tuple[int, int, int]:
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        if write:
            col = max(bank.next_wr, grp.next_wr, ch.next_wr)
        else:
            col = max(bank.next_rd, grp.next_rd, ch.next_rd)
        col = max(col, ch.col_last + 1, t0)
        if bank.row == row:
            return -1, -1, col
        t_pre = -1
        t_act = max(t0, bank.next_act, ch.next_act, grp.next_act, ch.faw[ch.faw_i] + t["faw"],
                    ch.row_last + 1)
        if bank.row >= 0:
            t_pre = max(t0, bank.next_pre)
            t_act = max(t_act, t_pre + t["rp"])
        return t_pre, t_act, max(col, t_act + (t["rcdw"] if write else t["rcd"]))

    def do_refresh(self, c: int) -> None:
        t, ch = self.t, self.chans[c]
        start = max(ch.ref_due, ch.row_last + 1)
        if self.refresh == 1:
            open_banks = [bk for bk in ch.banks if bk.row >= 0]
            if open_banks:
                tp = max([start] + [bk.next_pre for bk in open_banks])
                ch.commands.append((tp, -1, -1, "PREA"))
                for bk in open_banks:
                    bk.row = -1
                    bk.next_act = max(bk.next_act, tp + t["rp"])
                ch.row_last = tp
                start = tp + 1
            tr = max([start] + [bk.next_act for bk in ch.banks])
            ch.commands.append((tr, -1, -1, "REF"))
            ch.row_last = tr
            for bk in ch.banks:
                bk.next_act = max(bk.next_act, tr + t["rfc"])
            ch.ref_due += t["refi"]
        else:
            b = ch.ref_ptr
            bk = ch.banks[b]
            if bk.row >= 0:
                tp = max(start, bk.next_pre)
                ch.commands.append((tp, b, bk.row, "PRE"))
                bk.row = -1
                bk.next_act = max(bk.next_act, tp + t["rp"])
                ch.row_last = tp
                start = tp + 1
            tr = max(start, bk.next_act)
            ch.commands.append((tr, b, -1, "REFPB"))
            ch.row_last = tr
            bk.next_act = max(bk.next_act, tr + t["rfcpb"])
            ch.ref_ptr = (b + 1) % len(ch.banks)
            ch.ref_due += max(t["refi"] // len(ch.banks), 1)

    def commit(self, ch: Channel, b: int, row: int, write: bool, tp: int, ta: int, tc: int) -> int:
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        if tp >= 0:
            ch.commands.append((tp, b, bank.row, "PRE"))
            bank.next_act = max(bank.next_act, tp + t["rp"])
        if ta >= 0:
            ch.commands.append((ta, b, row, "ACT"))
            bank.row = row
            bank.next_pre = max(bank.next_pre, ta + t["ras"])
            bank.next_act = max(bank.next_act, ta + t["rc"])
            bank.next_rd = max(bank.next_rd, ta + t["rcd"])
            bank.next_wr = max(bank.next_wr, ta + t["rcdw"])
            ch.next_act = max(ch.next_act, ta + t["rrd_s"])
            grp.next_act = max(grp.next_act, ta + t["rrd_l"])
            ch.faw[ch.faw_i] = ta
            ch.faw_i = (ch.faw_i + 1) % 4
            ch.row_last = ta
        nbl = t["nbl"]
        ccd_s = max(t["ccd_s"], nbl)
        ccd_l = max(t["ccd_l"], ccd_s)
        if write:
            ch.commands.append((tc, b, row, "WRA" if self.closed else "WR"))
            done = tc + t["cwl"] + nbl
            bank.next_pre = max(bank.next_pre, done + t["wr"])
            ch.next_wr = max(ch.next_wr, tc + ccd_s)
            grp.next_wr = max(grp.next_wr, tc + ccd_l)
            ch.next_rd = max(ch.next_rd, done + t["wtr_s"])
            grp.next_rd = max(grp.next_rd, done + t["wtr_l"])
        else:
            ch.commands.append((tc, b, row, "RDA" if self.closed else "RD"))
            done = tc + t["cl"] + nbl
            bank.next_pre = max(bank.next_pre, tc + t["rtp"])
            ch.next_rd = max(ch.next_rd, tc + ccd_s)
            grp.next_rd = max(grp.next_rd, tc + ccd_l)
            ch.next_wr = max(ch.next_wr, tc + t["rtw"])
        ch.col_last = tc
        if self.closed:
            bank.row = -1
            bank.next_act = max(bank.next_act, bank.next_pre + t["rp"])
        return done

    def run(self, reqs: list[tuple[int, int, bool, int, int]]) -> dict[int, tuple[int, int, bool]]:
        """``reqs``: (id, channel, write, bank, row, arrival). Returns id -> (done, enq, hit)."""
        out: dict[int, tuple[int, int, bool]] = {}
        for c, ch in enumerate(self.chans):
            seq = sorted((r for r in reqs if r[1] == c), key=lambda r: r[5])
            self._run_channel(c, ch, seq, out)
        return out

    def _run_channel(self, c: int, ch: Channel, seq: list, out: dict) -> None:
        depth = self.depth
        whigh, wlow = max(3 * depth // 4, 1), depth // 4
        rq: list = []
        wq: list = []
        enq: dict[int, int] = {}
        acc = 0
        now = max(ch.now, ch.col_last)
        while acc < len(seq) or rq or wq:
            now = max(now, ch.col_last)
            if not rq and not wq and acc < len(seq):
                now = max(now, seq[acc][5])
            while acc < len(seq) and seq[acc][5] <= now:
                r = seq[acc]
                q = wq if r[2] else rq
                if len(q) >= depth:
                    break
                q.append(r)
                enq[r[0]] = max(r[5], now)
                acc += 1
            if not ch.write_mode:
                if len(wq) >= whigh or (not rq and wq):
                    ch.write_mode = True
            elif not wq or (len(wq) <= wlow and rq):
                ch.write_mode = False
            q = wq if ch.write_mode else rq
            lower = max(ch.col_last + 1, ch.next_wr if ch.write_mode else ch.next_rd)
            best, plan = None, (-1, -1, 1 << 62)
            for r in q:
                p = self.plan(ch, r[3], r[4], ch.write_mode, enq[r[0]])
                if p[2] < plan[2]:
                    best, plan = r, p
                    if p[2] <= lower:
                        break
            if self.refresh:
                first = plan[0] if plan[0] >= 0 else plan[1] if plan[1] >= 0 else plan[2]
                if ch.ref_due <= first:
                    self.do_refresh(c)
                    continue
            assert best is not None
            done = self.commit(ch, best[3], best[4], ch.write_mode, *plan)
            out[best[0]] = (done, enq[best[0]], plan[1] < 0)
            q.remove(best)
        ch.now = now
