"""Plain-Python twin of npusim/kernels/dram.py: the same front end and controller, with objects.

Used only by tests as the oracle for the numba kernel: same handover order, same moves from
the transaction queues into the bank command queues, same FR-FCFS choice, same command
times. Slow and obvious on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NEVER = -(1 << 40)
BIG = 1 << 62


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
class Rank:
    ref_due: int
    next_act: int = 0
    next_rd: int = 0
    next_wr: int = 0
    ref_ptr: int = 0
    n_open: int = 0
    open_since: int = 0
    idle_since: int = 0  # every bank precharged since (last close or refresh end)
    pd_ready: int = 0  # no ACT or REF before this (power-down exit)
    acts: list[int] = field(default_factory=lambda: [NEVER] * 32)  # oldest first


@dataclass
class Channel:
    banks: list[Bank]
    groups: list[Group]
    ranks: list[Rank]
    row_last: int = -1
    col_last: int = -1
    last_rank: int = -1
    last_write: bool = False
    write_mode: bool = False
    now: int = 0
    open_cycles: int = 0  # rank-cycles with a bank open, closed spans only
    pd_cycles: int = 0  # rank-cycles in power-down, closed spans only
    queues: tuple[list, list] = field(default_factory=lambda: ([], []))  # transaction queues
    bank_queues: dict[int, list] = field(default_factory=dict)  # bank -> requests, move order
    rr_bank: int = -1  # bank of the last column command (round robin)
    commands: list[tuple[int, int, int, str]] = field(default_factory=list)


class NaiveDram:
    """``t`` is a dict of timings (names of DramTiming plus ``nbl``, ``rtw``) and options."""

    def __init__(self, t: dict[str, int], channels: int, banks: int, banks_per_group: int,
                 depth: int, closed: bool, refresh: int, ranks: int = 1, window: int = 512,
                 handover: int = 16, whigh: int | None = None, wlow: int = 0,
                 bank_queue: int = 8, powerdown_idle: int = 0) -> None:
        self.t = t
        self.bpg = banks_per_group
        self.per_rank = banks // ranks
        self.depth = depth
        self.closed_page = closed
        self.refresh = refresh  # 0 none, 1 all-bank, 2 per-bank
        self.window, self.handover = window, handover
        self.whigh = depth if whigh is None else whigh
        self.wlow = wlow
        self.bank_queue = bank_queue
        self.pd_idle = powerdown_idle
        self.step = t["refi"] if refresh != 2 else max(t["refi"] // self.per_rank, 1)
        self.chans = [Channel([Bank() for _ in range(banks)],
                              [Group() for _ in range(banks // banks_per_group)],
                              [Rank(max(self.step * (r + 1) // ranks, 1)) for r in range(ranks)])
                      for _ in range(channels)]

    @staticmethod
    def opened(rk: Rank, t: int) -> None:
        if rk.n_open == 0:
            rk.open_since = t
        rk.n_open += 1

    @staticmethod
    def closed(ch: Channel, rk: Rank, t: int, n: int = 1) -> None:
        rk.n_open -= n
        rk.idle_since = max(rk.idle_since, t)  # the span ends at its latest precharge
        if rk.n_open == 0:
            ch.open_cycles += max(rk.idle_since - rk.open_since, 0)

    def asleep(self, rk: Rank, t: int) -> bool:
        """Powered down at ``t``: all banks precharged for ``pd_idle`` clocks by then."""
        return self.pd_idle > 0 and rk.n_open == 0 and t >= rk.idle_since + self.pd_idle

    def wake(self, ch: Channel, r: int, t: int, ready: int) -> None:
        """Exit rank ``r``'s power-down at ``t``; no ACT or REF before ``ready``."""
        rk = ch.ranks[r]
        entry = rk.idle_since + self.pd_idle
        ch.pd_cycles += t - entry
        ch.commands += [(entry, -1 - r, -1, "PDE"), (t, -1 - r, -1, "PDX")]
        rk.pd_ready = max(rk.pd_ready, ready)

    def plan(self, ch: Channel, b: int, row: int, write: bool, t0: int) -> tuple[int, int, int]:
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        r = b // self.per_rank
        rk = ch.ranks[r]
        if write:
            col = max(bank.next_wr, grp.next_wr, rk.next_wr)
        else:
            col = max(bank.next_rd, grp.next_rd, rk.next_rd)
        col = max(col, ch.col_last + 1, t0)
        if ch.last_rank >= 0 and ch.last_rank != r:
            gap = t["nbl"] + t["rtrs"]
            if ch.last_write and not write:
                gap += t["cwl"] - t["cl"]
            elif not ch.last_write and write:
                gap += t["cl"] - t["cwl"]
            col = max(col, ch.col_last + gap)
        if bank.row == row:
            return -1, -1, col
        t_pre = -1
        t_act = max(t0, bank.next_act, rk.next_act, grp.next_act, rk.acts[-4] + t["faw"],
                    ch.row_last + 1, rk.pd_ready)
        if self.asleep(rk, t0 - 1):  # handed over while powered down: exit first
            t_act = max(t_act, t0 + t["xp"])
        if t["t32aw"] > 0:
            t_act = max(t_act, rk.acts[0] + t["t32aw"])
        if bank.row >= 0:
            t_pre = max(t0, bank.next_pre)
            t_act = max(t_act, t_pre + t["rp"])
        return t_pre, t_act, max(col, t_act + (t["rcdw"] if write else t["rcd"]))

    def do_refresh(self, ch: Channel) -> None:
        t = self.t
        r = min(range(len(ch.ranks)), key=lambda k: ch.ranks[k].ref_due)
        rk = ch.ranks[r]
        mine = list(range(r * self.per_rank, (r + 1) * self.per_rank))
        if self.asleep(rk, rk.ref_due):
            self.wake(ch, r, rk.ref_due, rk.ref_due + t["xp"])
        start = max(rk.ref_due, ch.row_last + 1, rk.pd_ready)
        if self.refresh == 1:
            open_banks = [ch.banks[b] for b in mine if ch.banks[b].row >= 0]
            if open_banks:
                tp = max([start] + [bk.next_pre for bk in open_banks])
                ch.commands.append((tp, -1 - r, -1, "PREA"))
                for bk in open_banks:
                    bk.row = -1
                    bk.next_act = max(bk.next_act, tp + t["rp"])
                self.closed(ch, rk, tp, len(open_banks))
                ch.row_last = tp
                start = tp + 1
            tr = max([start] + [ch.banks[b].next_act for b in mine])
            ch.commands.append((tr, -1 - r, -1, "REF"))
            ch.row_last = tr
            for b in mine:
                ch.banks[b].next_act = max(ch.banks[b].next_act, tr + t["rfc"])
            rk.ref_due += t["refi"]
            rk.idle_since = tr + t["rfc"]
        else:
            b = mine[rk.ref_ptr]
            bk = ch.banks[b]
            if bk.row >= 0:
                tp = max(start, bk.next_pre)
                ch.commands.append((tp, b, bk.row, "PRE"))
                bk.row = -1
                bk.next_act = max(bk.next_act, tp + t["rp"])
                self.closed(ch, rk, tp)
                ch.row_last = tp
                start = tp + 1
            tr = max(start, bk.next_act)
            ch.commands.append((tr, b, -1, "REFPB"))
            ch.row_last = tr
            bk.next_act = max(bk.next_act, tr + t["rfcpb"])
            rk.ref_ptr = (rk.ref_ptr + 1) % self.per_rank
            rk.ref_due += max(t["refi"] // self.per_rank, 1)
            if rk.n_open == 0:
                rk.idle_since = tr + t["rfcpb"]

    def commit(self, ch: Channel, b: int, row: int, write: bool, tp: int, ta: int, tc: int,
               moved: int) -> int:
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        r = b // self.per_rank
        rk = ch.ranks[r]
        if ta >= 0 and self.asleep(rk, moved):
            self.wake(ch, r, moved + 1, moved + 1 + t["xp"])
        if tp >= 0:
            ch.commands.append((tp, b, bank.row, "PRE"))
            bank.next_act = max(bank.next_act, tp + t["rp"])
            self.closed(ch, rk, tp)
        if ta >= 0:
            ch.commands.append((ta, b, row, "ACT"))
            self.opened(rk, ta)
            bank.row = row
            bank.next_pre = max(bank.next_pre, ta + t["ras"])
            bank.next_act = max(bank.next_act, ta + t["rc"])
            bank.next_rd = max(bank.next_rd, ta + t["rcd"])
            bank.next_wr = max(bank.next_wr, ta + t["rcdw"])
            rk.next_act = max(rk.next_act, ta + t["rrd_s"])
            grp.next_act = max(grp.next_act, ta + t["rrd_l"])
            rk.acts = [*rk.acts[1:], ta]
            ch.row_last = ta
        nbl = t["nbl"]
        ccd_s = max(t["ccd_s"], nbl)
        ccd_l = max(t["ccd_l"], ccd_s)
        if write:
            ch.commands.append((tc, b, row, "WRA" if self.closed_page else "WR"))
            done = tc + t["cwl"] + nbl
            bank.next_pre = max(bank.next_pre, done + t["wr"])
            rk.next_wr = max(rk.next_wr, tc + ccd_s)
            grp.next_wr = max(grp.next_wr, tc + ccd_l)
            rk.next_rd = max(rk.next_rd, done + t["wtr_s"])
            grp.next_rd = max(grp.next_rd, done + t["wtr_l"])
        else:
            ch.commands.append((tc, b, row, "RDA" if self.closed_page else "RD"))
            done = tc + t["cl"] + nbl
            bank.next_pre = max(bank.next_pre, tc + t["rtp"])
            rk.next_rd = max(rk.next_rd, tc + ccd_s)
            grp.next_rd = max(grp.next_rd, tc + ccd_l)
            rk.next_wr = max(rk.next_wr, tc + t["rtw"])
        ch.col_last = tc
        ch.last_rank, ch.last_write = r, write
        if self.closed_page:
            bank.row = -1
            bank.next_act = max(bank.next_act, bank.next_pre + t["rp"])
            self.closed(ch, rk, bank.next_pre)
        return done

    def run(self, reqs: list[tuple[int, int, bool, int, int, int]]
            ) -> dict[int, tuple[int, int, bool]]:
        """``reqs``: (id, channel, write, bank, row, arrival), ids 0..n-1 in the order given.
        Returns id -> (done, enq, hit)."""
        trace = sorted(reqs, key=lambda r: r[5])  # stable: ties keep the order given
        pos = {r[0]: i for i, r in enumerate(trace)}
        pairs: dict[tuple[int, bool], list] = {}
        for r in trace:
            pairs.setdefault((r[1], bool(r[2])), []).append(r)
        out: dict[int, tuple[int, int, bool]] = {}
        enq: dict[int, int] = {}
        moved: dict[int, int] = {}  # request id -> cycle it entered its bank's command queue
        last_move = [NEVER] * len(self.chans)  # last clock whose move slot is spent
        nbanks = len(self.chans[0].banks)
        now = [max(ch.now, ch.col_last) for ch in self.chans]
        accepted = 0
        hclk, hcnt = NEVER, 0

        def admissible(c: int, w: bool, at: int) -> list:
            lst = pairs.get((c, w), [])
            if lst and len(self.chans[c].queues[w]) < self.depth and \
                    pos[lst[0][0]] < accepted + self.window and lst[0][5] <= at:
                return [lst[0]]
            return []

        while len(out) < len(reqs):
            keys = []
            for c, ch in enumerate(self.chans):
                if ch.queues[0] or ch.queues[1] or any(ch.bank_queues.values()):
                    keys.append(max(now[c], ch.col_last))
                    continue
                heads = [lst[0] for w in (False, True) if (lst := pairs.get((c, w)))
                         and pos[lst[0][0]] < accepted + self.window]
                if not heads:
                    keys.append(BIG)
                    continue
                k = max(min(h[5] for h in heads), hclk)
                if k == hclk and hcnt >= self.handover:
                    k += 1
                keys.append(max(k, now[c]))
            c = min(range(len(keys)), key=lambda i: keys[i])
            key = now[c] = keys[c]
            ch = self.chans[c]
            while True:
                cand = admissible(c, False, key) + admissible(c, True, key)
                if not cand:
                    break
                if key > hclk:
                    hclk, hcnt = key, 0
                elif hcnt >= self.handover:
                    break
                r = min(cand, key=lambda x: pos[x[0]])
                pairs[(c, bool(r[2]))].pop(0)
                ch.queues[bool(r[2])].append(r)
                enq[r[0]] = key
                accepted += 1
                hcnt += 1
            # Moves: one a clock up to ``key``, the oldest request of the queue being served
            # whose bank queue has room, no earlier than its handover.
            clk = last_move[c] + 1
            while clk <= key:
                rq, wq = ch.queues
                if not ch.write_mode:
                    if len(wq) >= self.whigh or (not rq and wq):
                        ch.write_mode = True
                elif not wq or (len(wq) <= self.wlow and rq):
                    ch.write_mode = False
                q = wq if ch.write_mode else rq
                room = [r for r in q if len(ch.bank_queues.get(r[3], [])) < self.bank_queue]
                if not room:
                    break
                r = room[0]
                clk = max(clk, enq[r[0]])
                if clk > key:
                    break
                q.remove(r)
                moved[r[0]] = clk
                ch.bank_queues.setdefault(r[3], []).append(r)
                clk += 1
            last_move[c] = max(last_move[c], key)
            cands = [(r, b, i) for b, bq in ch.bank_queues.items() for i, r in enumerate(bq)]
            if not cands:
                if ch.queues[0] or ch.queues[1]:
                    now[c] = key + 1
                continue
            best, plan, order = None, (-1, -1, BIG), None
            for r, b, i in cands:  # full scan: the kernel's early exit must not change the choice
                p = self.plan(ch, b, r[4], bool(r[2]), moved[r[0]] + 1)
                # Ties: banks in round-robin order after the last one served, then oldest.
                o = (p[2], (b - ch.rr_bank - 1) % nbanks, i)
                if order is None or o < order:
                    best, plan, order = r, p, o
            if self.refresh:
                first = plan[0] if plan[0] >= 0 else plan[1] if plan[1] >= 0 else plan[2]
                if min(rk.ref_due for rk in ch.ranks) <= first:
                    self.do_refresh(ch)
                    continue
            assert best is not None
            done = self.commit(ch, best[3], best[4], bool(best[2]), *plan, moved[best[0]])
            out[best[0]] = (done, enq[best[0]], plan[1] < 0)
            ch.bank_queues[best[3]].remove(best)
            ch.rr_bank = best[3]
        for c, ch in enumerate(self.chans):
            ch.now = now[c]
        return out
