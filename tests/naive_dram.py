"""Plain-Python twin of npusim/kernels/dram.py: the same front end and controller, with objects.

Used only by tests as the oracle for the numba kernel: same handover order, same moves from
the transaction queues into the bank command queues, the same arbitration (each clock the
first bank queue, round robin from the pointer, with a command ready; a second scan on HBM;
a refresh's commands first), same command times. Every request of a bank queue is planned
and every bank scanned (the kernel plans only the ones that can win). Slow and obvious on
purpose.
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
    hits: int = 0  # column commands since the open row's ACT


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
    row_last: int = -1  # the last refresh command
    col_last: int = -1
    last_rank: int = -1
    last_write: bool = False
    write_mode: bool = False
    now: int = 0
    open_cycles: int = 0  # rank-cycles with a bank open, closed spans only
    pd_cycles: int = 0  # rank-cycles in power-down, closed spans only
    queues: tuple[list, list] = field(default_factory=lambda: ([], []))  # transaction queues
    bank_queues: dict[int, list] = field(default_factory=dict)  # bank -> requests, move order
    rr_bank: int = -1  # the round-robin pointer: the bank queue of the last command found
    second: int = 0  # 1/2: the arbiter's second scan of clock ``now`` after a row/column command
    ref_pend: int = -1  # the rank whose refresh is under way
    free: int = NEVER  # a new batch is handed over from then: earlier ones down to one request
    commands: list[tuple[int, int, int, str]] = field(default_factory=list)


class NaiveDram:
    """``t`` is a dict of timings (names of DramTiming plus ``nbl``, ``rtw``) and options."""

    def __init__(self, t: dict[str, int], channels: int, banks: int, banks_per_group: int,
                 depth: int, closed: bool, refresh: int, ranks: int = 1, window: int = 512,
                 handover: int = 16, whigh: int | None = None, wlow: int = 0,
                 bank_queue: int = 8, powerdown_idle: int = 0, dual: bool = False) -> None:
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
        self.dual = dual  # a row and a column command in one clock (HBM)
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

    # --- readiness -------------------------------------------------------------------------
    def col_ready(self, ch: Channel, b: int, write: bool) -> int:
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        r = b // self.per_rank
        rk = ch.ranks[r]
        col = max(bank.next_wr, grp.next_wr, rk.next_wr) if write else \
            max(bank.next_rd, grp.next_rd, rk.next_rd)
        if ch.last_rank >= 0 and ch.last_rank != r:
            gap = t["nbl"] + t["rtrs"]
            if ch.last_write and not write:
                gap += t["cwl"] - t["cl"]
            elif not ch.last_write and write:
                gap += t["cl"] - t["cwl"]
            col = max(col, ch.col_last + gap)
        return col

    def act_ready(self, ch: Channel, b: int, t0: int) -> int:
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        rk = ch.ranks[b // self.per_rank]
        ta = max(t0, bank.next_act, rk.next_act, grp.next_act, rk.acts[-4] + t["faw"],
                 ch.row_last + 1, rk.pd_ready)
        if self.asleep(rk, t0 - 1):  # handed over while powered down: exit first
            ta = max(ta, t0 + t["xp"])
        if t["t32aw"] > 0:
            ta = max(ta, rk.acts[0] + t["t32aw"])
        return ta

    def bank_next(self, ch: Channel, b: int, key: int, moved: dict[int, int]
                  ) -> tuple[int, int, str]:
        """(cycle >= key, position, command) bank ``b``'s queue offers: every request's
        next command that the rules allow, the earliest, then the first in queue order; the
        head's PRE wins a tie."""
        bank, queue = ch.banks[b], ch.bank_queues[b]
        cands = []
        for i, r in enumerate(queue):
            t0 = moved[r[0]] + 1
            if bank.row < 0:
                cands.append((max(self.act_ready(ch, b, t0), key), i, "ACT"))
            elif bank.row == r[4]:
                cands.append((max(self.col_ready(ch, b, bool(r[2])), t0, key), i,
                              "WR" if r[2] else "RD"))
        head = queue[0]
        hits_wait = any(r[4] == bank.row for r in queue)
        if 0 <= bank.row != head[4] and (not hits_wait or bank.hits >= 4):
            t_pre = max(moved[head[0]] + 1, bank.next_pre, ch.row_last + 1, key)
            cands.append((t_pre, -1, "PRE"))  # -1: wins a tie
        t, i, cmd = min(cands)
        return t, max(i, 0), cmd

    # --- refresh, a command at a time ------------------------------------------------------
    def ref_begin(self, ch: Channel) -> None:
        r = min(range(len(ch.ranks)), key=lambda k: ch.ranks[k].ref_due)
        rk = ch.ranks[r]
        if self.asleep(rk, rk.ref_due):
            self.wake(ch, r, rk.ref_due, rk.ref_due + self.t["xp"])
        ch.ref_pend = r

    def ref_banks(self, ch: Channel) -> list[int]:
        """Banks a pending refresh holds."""
        r = ch.ref_pend
        if r < 0:
            return []
        if self.refresh == 1:
            return list(range(r * self.per_rank, (r + 1) * self.per_rank))
        return [r * self.per_rank + ch.ranks[r].ref_ptr]

    def ref_next(self, ch: Channel) -> int:
        rk = ch.ranks[ch.ref_pend]
        t = max(rk.ref_due, ch.row_last + 1, rk.pd_ready)
        held = [ch.banks[b] for b in self.ref_banks(ch)]
        if any(bk.row >= 0 for bk in held):
            return max([t] + [bk.next_pre for bk in held if bk.row >= 0])
        return max([t] + [bk.next_act for bk in held])

    def ref_issue(self, ch: Channel, at: int) -> None:
        t = self.t
        r = ch.ref_pend
        rk = ch.ranks[r]
        mine = self.ref_banks(ch)
        ch.row_last = at
        open_banks = [b for b in mine if ch.banks[b].row >= 0]
        if open_banks:
            if self.refresh == 1:
                ch.commands.append((at, -1 - r, -1, "PREA"))
            else:
                ch.commands.append((at, open_banks[0], ch.banks[open_banks[0]].row, "PRE"))
            for b in open_banks:
                bk = ch.banks[b]
                bk.row, bk.hits = -1, 0
                bk.next_act = max(bk.next_act, at + t["rp"])
            self.closed(ch, rk, at, len(open_banks))
            return
        if self.refresh == 1:
            ch.commands.append((at, -1 - r, -1, "REF"))
            for b in mine:
                ch.banks[b].next_act = max(ch.banks[b].next_act, at + t["rfc"])
            rk.ref_due += t["refi"]
            rk.idle_since = at + t["rfc"]
        else:
            b = mine[0]
            ch.commands.append((at, b, -1, "REFPB"))
            ch.banks[b].next_act = max(ch.banks[b].next_act, at + t["rfcpb"])
            rk.ref_ptr = (rk.ref_ptr + 1) % self.per_rank
            rk.ref_due += max(t["refi"] // self.per_rank, 1)
            if rk.n_open == 0:
                rk.idle_since = at + t["rfcpb"]
        ch.ref_pend = -1

    # --- commands ---------------------------------------------------------------------------
    def issue(self, ch: Channel, b: int, req: tuple, cmd: str, at: int, moved: int
              ) -> tuple[int, bool] | None:
        """Issue ``cmd`` for ``req`` at ``at``; a column command returns (done, hit)."""
        t, bank, grp = self.t, ch.banks[b], ch.groups[b // self.bpg]
        r = b // self.per_rank
        rk = ch.ranks[r]
        row = req[4]
        if cmd == "PRE":
            ch.commands.append((at, b, bank.row, "PRE"))
            bank.row, bank.hits = -1, 0
            bank.next_act = max(bank.next_act, at + t["rp"])
            self.closed(ch, rk, at)
            return None
        if cmd == "ACT":
            if self.asleep(rk, moved):
                self.wake(ch, r, moved + 1, moved + 1 + t["xp"])
            ch.commands.append((at, b, row, "ACT"))
            self.opened(rk, at)
            bank.row, bank.hits = row, 0
            bank.next_pre = max(bank.next_pre, at + t["ras"])
            bank.next_act = max(bank.next_act, at + t["rc"])
            bank.next_rd = max(bank.next_rd, at + t["rcd"])
            bank.next_wr = max(bank.next_wr, at + t["rcdw"])
            rk.next_act = max(rk.next_act, at + t["rrd_s"])
            grp.next_act = max(grp.next_act, at + t["rrd_l"])
            rk.acts = [*rk.acts[1:], at]
            return None
        hit = bank.hits > 0
        bank.hits += 1
        nbl = t["nbl"]
        ccd_s = max(t["ccd_s"], nbl)
        ccd_l = max(t["ccd_l"], ccd_s)
        write = cmd == "WR"
        if write:
            ch.commands.append((at, b, row, "WRA" if self.closed_page else "WR"))
            done = at + t["cwl"] + nbl
            bank.next_pre = max(bank.next_pre, done + t["wr"])
            rk.next_wr = max(rk.next_wr, at + ccd_s)
            grp.next_wr = max(grp.next_wr, at + ccd_l)
            rk.next_rd = max(rk.next_rd, done + t["wtr_s"])
            grp.next_rd = max(grp.next_rd, done + t["wtr_l"])
        else:
            ch.commands.append((at, b, row, "RDA" if self.closed_page else "RD"))
            done = at + t["cl"] + nbl
            bank.next_pre = max(bank.next_pre, at + t["rtp"])
            rk.next_rd = max(rk.next_rd, at + ccd_s)
            grp.next_rd = max(grp.next_rd, at + ccd_l)
            rk.next_wr = max(rk.next_wr, at + t["rtw"])
        ch.col_last = at
        ch.last_rank, ch.last_write = r, write
        if self.closed_page:
            bank.row, bank.hits = -1, 0
            bank.next_act = max(bank.next_act, bank.next_pre + t["rp"])
            self.closed(ch, rk, bank.next_pre)
        return done, hit

    # --- the front end and the arbiter ------------------------------------------------------
    def serving_queue(self, ch: Channel) -> list:
        """The transaction queue the next clock's move takes from (write drain rule)."""
        rq, wq = ch.queues
        mode = ch.write_mode
        if not mode:
            if len(wq) >= self.whigh or (not rq and wq):
                mode = True
        elif not wq or (len(wq) <= self.wlow and rq):
            mode = False
        return wq if mode else rq

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
        last_move = [ch.free for ch in self.chans]  # last clock whose move slot is spent
        nbanks = len(self.chans[0].banks)
        now = [ch.now for ch in self.chans]  # each arbiter's clock
        floor = list(now)  # the clock after each channel's last command
        live = sorted({r[1] for r in reqs})
        accepted = 0
        hclk, hcnt, gnow = NEVER, 0, NEVER

        def admissible(c: int, w: bool, at: int) -> list:
            lst = pairs.get((c, w), [])
            if lst and len(self.chans[c].queues[w]) < self.depth and \
                    pos[lst[0][0]] < accepted + self.window and lst[0][5] <= at and \
                    at >= self.chans[c].free:
                return [lst[0]]
            return []

        def head_time(c: int) -> int:
            heads = [lst[0] for w in (False, True) if (lst := pairs.get((c, w)))
                     and len(self.chans[c].queues[w]) < self.depth
                     and pos[lst[0][0]] < accepted + self.window]
            if not heads:
                return BIG
            k = max(min(h[5] for h in heads), hclk, gnow, self.chans[c].free)
            return hclk + 1 if k == hclk and hcnt >= self.handover else k

        def queued(ch: Channel) -> int:
            return sum(len(q) for q in ch.bank_queues.values())

        while len(out) < len(reqs):
            keys = []
            for c in live:
                ch = self.chans[c]
                k = BIG
                if queued(ch):
                    k = now[c]
                elif ch.queues[0] or ch.queues[1]:
                    k = last_move[c] + 1
                keys.append((min(k, head_time(c)), c))
            key, c = min(keys)
            gnow = key
            now[c] = max(now[c], key)
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
            before = queued(ch)
            # Moves: one a clock up to ``key``, the oldest request of the queue being served
            # whose bank queue has room, no earlier than its handover.
            clk = last_move[c] + 1
            while clk <= key:
                q = self.serving_queue(ch)
                ch.write_mode = q is ch.queues[1]
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
            second = ch.second
            if not queued(ch):
                ch.second = 0
                continue
            if now[c] > key:
                if queued(ch) > before:
                    now[c] = max(key + 1, floor[c])
                continue
            held = self.ref_banks(ch)
            best = None  # (cycle, round-robin place, bank, position, command)
            for b, bq in ch.bank_queues.items():
                if bq and b not in held:
                    t, i, cmd = self.bank_next(ch, b, key, moved)
                    o = (t, (b - ch.rr_bank - 1) % nbanks, b, i, cmd)
                    best = o if best is None or o < best else best
            best_t = best[0] if best is not None else BIG
            t_rf = BIG
            if ch.ref_pend >= 0:
                t_rf = max(self.ref_next(ch), floor[c])
                if t_rf < key:  # due while the channel idled: issued in that gap
                    self.ref_issue(ch, t_rf)
                    floor[c] = t_rf + 1
                    continue
            elif not second and self.refresh and \
                    min(rk.ref_due for rk in ch.ranks) <= best_t:
                self.ref_begin(ch)
                continue
            if second:
                ch.second = 0
                if best_t == key:
                    assert best is not None
                    _, _, b, i, cmd = best
                    ch.rr_bank = b
                    if (2 if cmd in ("RD", "WR") else 1) != second:
                        self.serve(ch, b, i, cmd, key, moved, enq, out)
                    now[c] = key + 1
                    continue
            target = min(best_t, t_rf)
            if second or target > key:
                nxt = max(target, key + 1)
                if ch.ref_pend < 0 and self.refresh:
                    nxt = min(nxt, max(min(rk.ref_due for rk in ch.ranks), key + 1))
                q = self.serving_queue(ch)
                if any(len(ch.bank_queues.get(r[3], [])) < self.bank_queue for r in q):
                    nxt = key + 1
                for w in (False, True):
                    lst = pairs.get((c, w))
                    if lst and len(ch.queues[w]) < self.depth and \
                            pos[lst[0][0]] < accepted + self.window:
                        nxt = min(nxt, max(lst[0][5], key + 1))
                now[c] = nxt
                continue
            if t_rf <= best_t:
                self.ref_issue(ch, key)
                kind = 1
            else:
                assert best is not None
                _, _, b, i, cmd = best
                ch.rr_bank = b
                self.serve(ch, b, i, cmd, key, moved, enq, out)
                kind = 2 if cmd in ("RD", "WR") else 1
            floor[c] = key + 1
            if self.dual:
                ch.second = kind
            else:
                now[c] = key + 1
            if not queued(ch) and not ch.queues[0] and not ch.queues[1] and \
                    not pairs.get((c, False)) and not pairs.get((c, True)):
                live.remove(c)
                if ch.second:
                    ch.second = 0
                    now[c] += 1
        t = self.t
        for c, ch in enumerate(self.chans):
            if ch.second:
                ch.second = 0
                now[c] += 1
            ch.now = now[c]
            cols = sorted(out[r[0]][0] - (t["cwl"] if r[2] else t["cl"]) - t["nbl"]
                          for r in reqs if r[1] == c)  # this batch's column commands
            ch.free = max([ch.free] + cols[-2:-1] + [moved[r[0]] for r in reqs if r[1] == c])
        return out

    def serve(self, ch: Channel, b: int, i: int, cmd: str, at: int, moved: dict[int, int],
              enq: dict[int, int], out: dict[int, tuple[int, int, bool]]) -> None:
        req = ch.bank_queues[b][i]
        res = self.issue(ch, b, req, cmd, at, moved[req[0]])
        if res is not None:
            out[req[0]] = (res[0], enq[req[0]], res[1])
            ch.bank_queues[b].pop(i)
