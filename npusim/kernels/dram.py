"""DRAM controller kernel: a windowed front end feeding FR-FCFS channel controllers.

One call schedules a batch of burst requests (arrival cycle, read/write, channel, bank, row)
starting from the state the previous call left: per bank the open row and the earliest next
ACT/PRE/RD/WR, per bank group the tRRD_L/tCCD_L/tWTR_L limits, per rank the tRRD_S/tCCD_S/
turnaround limits, its last 32 ACTs (tFAW, t32AW) and its refresh schedule, per channel the
command-bus clocks, the rank and kind of the last column command (tRTRS), the read/write
mode and the round-robin bank pointer. Times are int64 clock cycles (tCK).
tests/naive_dram.py is the plain-Python twin.

Front end (all channels together, in global time):

- The batch is a trace in arrival order (``gpos``: position in it). The front end sees a
  window of ``W`` not-yet-accepted requests: since every accepted request lies inside the
  window when accepted, the window ends at index ``accepted_total + W``. It hands up to
  ``H`` requests per clock to the controllers, keeping order within each (channel,
  read/write) pair: a pair's head is admissible when its index is inside the window, it has
  arrived and its transaction queue (``depth`` entries) has room. A channel left idle by
  one part of the trace therefore cannot serve requests far ahead of it.
- Channels advance together: the next channel to act is the one whose next decision is
  earliest (the clock of its last column command when it has work queued, else the cycle its
  first admissible head can be handed over). A request's ``enq`` is its handover cycle.

Controller (per channel), two stages as in DRAMSim3's controller:

- Transaction queues: a read and a write queue of ``depth`` entries each. One request a
  clock moves from one of them into its bank's command queue (``bank_queue`` entries per
  bank, reads and writes together), freeing its slot for the front end: the oldest whose
  bank queue has room, no earlier than its handover cycle. Moves come from the read queue,
  switch to the write queue when it reaches the high watermark or no read is queued, and
  drain it down to the low watermark while reads wait. Moves are made in a batch at each of
  the channel's decisions, one per clock over the clocks since the last batch.
- FR-FCFS over the command queues: the request whose column command can issue first (a row
  hit beats a miss that needs ACT, which beats a conflict that needs PRE+ACT), reads and
  writes alike (the turnaround timings weigh a change of direction); ties go to the banks in
  round-robin order from the one after the bank served last, then to the oldest in a bank.
  Its PRE/ACT/column commands are placed at the earliest cycle every constraint allows, no
  earlier than one controller clock after it entered its bank's queue (so an idle row hit
  costs CL + burst + 1). Its command-queue entry is freed at that decision. Row commands
  (ACT, PRE, REF, REFpb) and column commands (RD, WR) each use their own command bus, one
  command per cycle, in non-decreasing time. A PRE for a row conflict is placed as soon as
  its bank allows, not in bus order (its command slot is not modelled): otherwise one
  conflict waiting out tRAS would hold back every later bank's ACT.
- Ranks: each has its own tRRD_S, tFAW and t32AW windows and its own same-rank column
  spacing (tCCD_S, tWTR, read-to-write); a column command to another rank than the last
  one waits for the data bus to turn around: burst + tRTRS (+ CL - CWL or CWL - CL when the
  kind changes too).
- Open page keeps a row open until a conflict or refresh; closed page auto-precharges
  (RDA/WRA) as early as tRAS/tRTP/tWR allow.
- Refresh, per rank, the ranks staggered by tREFI / ranks: all-bank (PREA then REF every
  tREFI, the rank's banks blocked tRFC) or per-bank (REFpb to one bank every tREFI / banks
  per rank, round robin, that bank blocked tRFCpb), issued when due before the next
  request's first command. REF rows of the trace carry ``-1 - rank`` as their bank.
- Background power: per rank, the cycles with at least one bank open (ACT to the PRE that
  leaves none open) are counted (``N_OPENCYC``) for active standby; the rest is precharged
  standby. A span still open is counted from ``R_OPENSINCE`` by whoever reads it. A span
  ends at the latest precharge committed in it (requests are committed in column-command
  order, not in the order of their precharges).
- Power-down (``P_PDIDLE`` > 0; 0: never, as DRAMSim3's stock controller): a rank whose
  banks have all been precharged for ``P_PDIDLE`` clocks (since ``R_IDLESINCE``: its last
  close, or the end of its last refresh's tRFC) enters precharge power-down. A request that
  needs an ACT on it and entered its bank's queue at a cycle ``m`` at or after that entry
  wakes it: the exit (PDX) issues on the controller's next clock, ``m + 1``, and the ACT
  waits tXP after it; a refresh that falls due at or after the entry exits at its due cycle
  and the REF waits tXP. Either sets ``R_PDREADY``, before which no ACT or REF of the rank
  issues. The wake is applied when the command is committed, after any refresh the
  controller issues first, so refreshes stay in time order. Closed spans (entry to exit)
  are counted (``N_PDCYC``) and recorded as PDE/PDX rows; a rank still powered down is
  counted by whoever reads, from ``R_IDLESINCE + P_PDIDLE``. A bank left open keeps its rank
  out of power-down (active power-down is not modelled).
"""

from __future__ import annotations

import math

import numpy as np

from npusim.kernels._jit import njit

__all__ = [
    "CMD_NAMES", "N_BANK_STATE", "N_CHAN_STATE", "N_COUNTERS", "N_GROUP_STATE", "N_PARAMS",
    "N_RANK_STATE", "init_state", "schedule", "state_bytes",
]

# Parameter vector indices.
P_NB, P_BPG, P_NBL, P_CL, P_CWL, P_RCD, P_RCDW, P_RP, P_RAS, P_RC = range(10)
P_CCDS, P_CCDL, P_RRDS, P_RRDL, P_FAW, P_WTRS, P_WTRL, P_RTP, P_WR = range(10, 19)
P_REFI, P_RFC, P_RFCPB, P_RTW, P_DEPTH, P_CLOSED, P_REFMODE, P_NBG = range(19, 27)
P_NRANK, P_RTRS, P_32AW, P_WIN, P_HAND, P_WHIGH, P_WLOW, P_CTRL, P_BANKQ = range(27, 36)
P_PDIDLE, P_XP = range(36, 38)
N_PARAMS = 38
# Bank state.
B_ROW, B_NACT, B_NPRE, B_NRD, B_NWR = range(5)
N_BANK_STATE = 5
# Bank-group state.
G_NACT, G_NRD, G_NWR = range(3)
N_GROUP_STATE = 3
# Rank state.
R_NACT, R_NRD, R_NWR, R_AWI, R_REFDUE, R_REFPTR, R_NOPEN, R_OPENSINCE = range(8)
R_IDLESINCE, R_PDREADY = range(8, 10)  # power-down (module docstring)
N_RANK_STATE = 10
# Channel state (C_REFDUE: the earliest refresh due over the ranks).
# C_RRBANK: the bank of the last column command (round robin among the bank queues).
C_ROWLAST, C_COLLAST, C_LASTRANK, C_LASTWR, C_REFDUE, C_MODE, C_NOW, C_RRBANK = range(8)
N_CHAN_STATE = 8
AW = 32  # ACT times kept per rank: the last 4 give tFAW, all 32 t32AW
# Counters.
# N_OPENCYC: rank-cycles with at least one bank open (active standby), closed spans only.
# N_PDCYC: rank-cycles in precharge power-down, closed spans only.
N_ACT, N_RD, N_WR, N_REF, N_REFPB, N_HIT, N_MISS, N_PRE, N_OPENCYC, N_PDCYC = range(10)
N_COUNTERS = 10
# Command codes in the trace.
# PDE/PDX: a rank's power-down entry and exit (rank-wide rows, like REF), recorded when the
# span closes.
ACT, PRE, PREA, RD, WR, RDA, WRA, REF, REFPB, PDE, PDX = range(11)
CMD_NAMES = ("ACT", "PRE", "PREA", "RD", "WR", "RDA", "WRA", "REF", "REFPB", "PDE", "PDX")
NEVER = -(1 << 40)
BIG = 1 << 62


def refresh_step(params: np.ndarray) -> int:
    """Cycles between two refreshes of one rank (all-bank: tREFI; per-bank: tREFI / banks)."""
    if params[P_REFMODE] == 2:
        return max(int(params[P_REFI]) // (int(params[P_NB]) // int(params[P_NRANK])), 1)
    return int(params[P_REFI])


def _state_shapes(channels: int, params: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Shapes of the state arrays ``(bs, gs, cs, rs, aw, cnt)``, all int64."""
    nb, nbg, nr = int(params[P_NB]), int(params[P_NBG]), int(params[P_NRANK])
    return ((channels, nb, N_BANK_STATE), (channels, nbg, N_GROUP_STATE),
            (channels, N_CHAN_STATE), (channels, nr, N_RANK_STATE), (channels, nr, AW),
            (channels, N_COUNTERS))


def state_bytes(channels: int, params: np.ndarray) -> int:
    """Bytes :func:`init_state` allocates for ``channels`` channels (estimated before it does)."""
    return 8 * sum(math.prod(shape) for shape in _state_shapes(channels, params))


def init_state(channels: int, params: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fresh state arrays ``(bs, gs, cs, rs, aw, cnt)`` (banks closed, nothing pending)."""
    bs, gs, cs, rs, aw, cnt = (np.zeros(shape, dtype=np.int64)
                               for shape in _state_shapes(channels, params))
    nr = int(params[P_NRANK])
    bs[:, :, B_ROW] = -1
    step = refresh_step(params)
    # Staggered: rank r is first due at step * (r + 1) / ranks.
    rs[:, :, R_REFDUE] = [max(step * (r + 1) // nr, 1) for r in range(nr)]
    cs[:, C_ROWLAST] = -1
    cs[:, C_COLLAST] = -1
    cs[:, C_LASTRANK] = -1
    cs[:, C_RRBANK] = -1
    cs[:, C_REFDUE] = rs[:, :, R_REFDUE].min(axis=1)
    aw[:] = NEVER
    return bs, gs, cs, rs, aw, cnt


@njit
def _record(tr, trn, t, c, b, row, cmd):  # type: ignore[no-untyped-def]
    n = trn[0]
    if n < tr.shape[0]:
        tr[n, 0] = t
        tr[n, 1] = c
        tr[n, 2] = b
        tr[n, 3] = row
        tr[n, 4] = cmd
        trn[0] = n + 1
    elif tr.shape[0] > 0:
        trn[1] = 1  # overflow flag


@njit
def _opened(c, r, t, rs):  # type: ignore[no-untyped-def]
    if rs[c, r, R_NOPEN] == 0:
        rs[c, r, R_OPENSINCE] = t
    rs[c, r, R_NOPEN] += 1


@njit
def _closed(c, r, t, nclose, rs, cnt):  # type: ignore[no-untyped-def]
    """``nclose`` banks of rank ``r`` precharged at ``t``: close its active-standby span
    when none is left open. Requests are committed in column-command order, not in the order
    of their precharges, so the span ends at the latest precharge seen in it."""
    rs[c, r, R_NOPEN] -= nclose
    rs[c, r, R_IDLESINCE] = max(rs[c, r, R_IDLESINCE], t)
    if rs[c, r, R_NOPEN] == 0:
        cnt[c, N_OPENCYC] += max(rs[c, r, R_IDLESINCE] - rs[c, r, R_OPENSINCE], 0)


@njit
def _asleep(c, r, t, p, rs):  # type: ignore[no-untyped-def]
    """Whether rank ``r`` is in power-down at cycle ``t``."""
    return (p[P_PDIDLE] > 0 and rs[c, r, R_NOPEN] == 0
            and t >= rs[c, r, R_IDLESINCE] + p[P_PDIDLE])


@njit
def _wake(c, r, t, ready, rs, cnt, p, tr, trn):  # type: ignore[no-untyped-def]
    """End rank ``r``'s power-down span at ``t`` (the exit command's cycle); its next ACT or
    REF waits until ``ready``."""
    entry = rs[c, r, R_IDLESINCE] + p[P_PDIDLE]
    cnt[c, N_PDCYC] += t - entry
    _record(tr, trn, entry, c, -1 - r, -1, PDE)
    _record(tr, trn, t, c, -1 - r, -1, PDX)
    rs[c, r, R_PDREADY] = max(rs[c, r, R_PDREADY], ready)


@njit
def _plan(c, b, g, r, row, is_wr, t0, p, bs, gs, cs, rs, aw):  # type: ignore[no-untyped-def]
    """Earliest (t_pre, t_act, t_col) for one request to bank ``b`` (of bank group ``g`` and
    rank ``r``); -1 for a command it does not need."""
    if is_wr:
        col_lo = max(bs[c, b, B_NWR], gs[c, g, G_NWR], rs[c, r, R_NWR])
    else:
        col_lo = max(bs[c, b, B_NRD], gs[c, g, G_NRD], rs[c, r, R_NRD])
    col_lo = max(col_lo, cs[c, C_COLLAST] + 1, t0)
    last_r = cs[c, C_LASTRANK]
    if last_r >= 0 and last_r != r:
        gap = p[P_NBL] + p[P_RTRS]
        if cs[c, C_LASTWR] != 0 and not is_wr:
            gap += p[P_CWL] - p[P_CL]
        elif cs[c, C_LASTWR] == 0 and is_wr:
            gap += p[P_CL] - p[P_CWL]
        col_lo = max(col_lo, cs[c, C_COLLAST] + gap)
    if bs[c, b, B_ROW] == row:
        return -1, -1, col_lo
    t_pre = -1
    i = rs[c, r, R_AWI]
    t_act = max(t0, bs[c, b, B_NACT], rs[c, r, R_NACT], gs[c, g, G_NACT],
                aw[c, r, (i - 4) % AW] + p[P_FAW], cs[c, C_ROWLAST] + 1, rs[c, r, R_PDREADY])
    if _asleep(c, r, t0 - p[P_CTRL], p, rs):
        t_act = max(t_act, t0 + p[P_XP])
    if p[P_32AW] > 0:
        t_act = max(t_act, aw[c, r, i] + p[P_32AW])
    if bs[c, b, B_ROW] >= 0:
        t_pre = max(t0, bs[c, b, B_NPRE])
        t_act = max(t_act, t_pre + p[P_RP])
    rcd = p[P_RCDW] if is_wr else p[P_RCD]
    t_col = max(col_lo, t_act + rcd)
    return t_pre, t_act, t_col


@njit
def _next_refresh(c, p, rs):  # type: ignore[no-untyped-def]
    """The rank whose refresh is due first on channel ``c``."""
    best = 0
    for r in range(1, p[P_NRANK]):
        if rs[c, r, R_REFDUE] < rs[c, best, R_REFDUE]:
            best = r
    return best


@njit
def _refresh(c, r, p, bs, cs, rs, cnt, tr, trn):  # type: ignore[no-untyped-def]
    """Issue rank ``r``'s refresh that is due on channel ``c``."""
    per_rank = p[P_NB] // p[P_NRANK]
    lo = r * per_rank
    t_due = rs[c, r, R_REFDUE]
    if _asleep(c, r, t_due, p, rs):
        _wake(c, r, t_due, t_due + p[P_XP], rs, cnt, p, tr, trn)
    t = max(t_due, cs[c, C_ROWLAST] + 1, rs[c, r, R_PDREADY])
    if p[P_REFMODE] == 1:
        tp = t
        n_open = 0
        for b in range(lo, lo + per_rank):
            if bs[c, b, B_ROW] >= 0:
                n_open += 1
                tp = max(tp, bs[c, b, B_NPRE])
        if n_open > 0:
            _record(tr, trn, tp, c, -1 - r, -1, PREA)
            for b in range(lo, lo + per_rank):
                if bs[c, b, B_ROW] >= 0:
                    bs[c, b, B_ROW] = -1
                    bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
            cs[c, C_ROWLAST] = tp
            cnt[c, N_PRE] += n_open
            _closed(c, r, tp, n_open, rs, cnt)
            t = tp + 1
        for b in range(lo, lo + per_rank):
            t = max(t, bs[c, b, B_NACT])
        _record(tr, trn, t, c, -1 - r, -1, REF)
        cs[c, C_ROWLAST] = t
        for b in range(lo, lo + per_rank):
            bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RFC])
        rs[c, r, R_REFDUE] += p[P_REFI]
        rs[c, r, R_IDLESINCE] = t + p[P_RFC]  # every bank of the rank is precharged
        cnt[c, N_REF] += 1
    else:
        b = lo + rs[c, r, R_REFPTR]
        if bs[c, b, B_ROW] >= 0:
            tp = max(t, bs[c, b, B_NPRE])
            _record(tr, trn, tp, c, b, bs[c, b, B_ROW], PRE)
            bs[c, b, B_ROW] = -1
            bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
            cs[c, C_ROWLAST] = tp
            cnt[c, N_PRE] += 1
            _closed(c, r, tp, 1, rs, cnt)
            t = tp + 1
        t = max(t, bs[c, b, B_NACT])
        _record(tr, trn, t, c, b, -1, REFPB)
        cs[c, C_ROWLAST] = t
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RFCPB])
        rs[c, r, R_REFPTR] = (rs[c, r, R_REFPTR] + 1) % per_rank
        rs[c, r, R_REFDUE] += max(p[P_REFI] // per_rank, 1)
        if rs[c, r, R_NOPEN] == 0:
            rs[c, r, R_IDLESINCE] = t + p[P_RFCPB]
        cnt[c, N_REFPB] += 1
    due = rs[c, 0, R_REFDUE]
    for k in range(1, p[P_NRANK]):
        due = min(due, rs[c, k, R_REFDUE])
    cs[c, C_REFDUE] = due


@njit
def _commit(c, b, g, r, row, is_wr, t_pre, t_act, t_col, t0, p, bs, gs, cs, rs, aw, cnt, tr,
            trn):  # type: ignore[no-untyped-def]
    if t_act >= 0 and _asleep(c, r, t0 - p[P_CTRL], p, rs):
        _wake(c, r, t0, t0 + p[P_XP], rs, cnt, p, tr, trn)
    if t_pre >= 0:
        _record(tr, trn, t_pre, c, b, bs[c, b, B_ROW], PRE)
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t_pre + p[P_RP])
        cnt[c, N_PRE] += 1
        _closed(c, r, t_pre, 1, rs, cnt)
    if t_act >= 0:
        _record(tr, trn, t_act, c, b, row, ACT)
        _opened(c, r, t_act, rs)
        bs[c, b, B_ROW] = row
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], t_act + p[P_RAS])
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t_act + p[P_RC])
        bs[c, b, B_NRD] = max(bs[c, b, B_NRD], t_act + p[P_RCD])
        bs[c, b, B_NWR] = max(bs[c, b, B_NWR], t_act + p[P_RCDW])
        rs[c, r, R_NACT] = max(rs[c, r, R_NACT], t_act + p[P_RRDS])
        gs[c, g, G_NACT] = max(gs[c, g, G_NACT], t_act + p[P_RRDL])
        i = rs[c, r, R_AWI]
        aw[c, r, i] = t_act
        rs[c, r, R_AWI] = (i + 1) % AW
        cs[c, C_ROWLAST] = t_act
        cnt[c, N_ACT] += 1
        cnt[c, N_MISS] += 1
    else:
        cnt[c, N_HIT] += 1
    nbl = p[P_NBL]
    ccd_s = max(p[P_CCDS], nbl)
    ccd_l = max(p[P_CCDL], ccd_s)
    closed = p[P_CLOSED] != 0
    if is_wr:
        _record(tr, trn, t_col, c, b, row, WRA if closed else WR)
        done = t_col + p[P_CWL] + nbl
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], done + p[P_WR])
        rs[c, r, R_NWR] = max(rs[c, r, R_NWR], t_col + ccd_s)
        gs[c, g, G_NWR] = max(gs[c, g, G_NWR], t_col + ccd_l)
        rs[c, r, R_NRD] = max(rs[c, r, R_NRD], done + p[P_WTRS])
        gs[c, g, G_NRD] = max(gs[c, g, G_NRD], done + p[P_WTRL])
        cnt[c, N_WR] += 1
    else:
        _record(tr, trn, t_col, c, b, row, RDA if closed else RD)
        done = t_col + p[P_CL] + nbl
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], t_col + p[P_RTP])
        rs[c, r, R_NRD] = max(rs[c, r, R_NRD], t_col + ccd_s)
        gs[c, g, G_NRD] = max(gs[c, g, G_NRD], t_col + ccd_l)
        rs[c, r, R_NWR] = max(rs[c, r, R_NWR], t_col + p[P_RTW])
        cnt[c, N_RD] += 1
    cs[c, C_COLLAST] = t_col
    cs[c, C_LASTRANK] = r
    cs[c, C_LASTWR] = 1 if is_wr else 0
    if closed:
        tp = bs[c, b, B_NPRE]
        bs[c, b, B_ROW] = -1
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
        cnt[c, N_PRE] += 1
        _closed(c, r, tp, 1, rs, cnt)
    return done


@njit
def _head_time(c, p, gpos, arr, pair_order, pair_start, ph, acc_total, hclk, hcnt):  # type: ignore[no-untyped-def]
    """Earliest cycle channel ``c`` (queues empty) can be handed a request; BIG if none is
    admissible until other channels accept."""
    best = BIG
    for w in range(2):
        k = 2 * c + w
        if ph[k] < pair_start[k + 1]:
            q = pair_order[ph[k]]
            if gpos[q] < acc_total + p[P_WIN]:
                best = min(best, arr[q])
    if best == BIG:
        return BIG
    best = max(best, hclk)
    if best == hclk and hcnt >= p[P_HAND]:
        best = hclk + 1
    return best


@njit
def _move(c, key, p, bank, enq, mv, tq, tqn, cq, bq, lastmv, stuck, cs):  # type: ignore[no-untyped-def]
    """Move requests of channel ``c`` from its transaction queues into their banks' command
    queues, one per clock over the clocks up to ``key`` not yet passed: each clock the
    oldest request of the queue being served (reads, or writes while draining) whose bank
    queue has room, no earlier than its handover. ``stuck[c, 0]`` is 1 + the queue in which
    a scan found nothing to move (0: not known); ``stuck[c, 1]`` is the one bank given room
    since (-1: none, -2: more than one, or a request handed over for a bank with room), so
    only that bank's requests are looked for."""
    clk = lastmv[c] + 1
    nb = p[P_NB]
    while clk <= key:
        occ_r = tqn[c, 0]
        occ_w = tqn[c, 1]
        mode = cs[c, C_MODE]
        if mode == 0:
            if occ_w >= p[P_WHIGH] or (occ_r == 0 and occ_w > 0):
                mode = 1
        elif occ_w == 0 or (occ_w <= p[P_WLOW] and occ_r > 0):
            mode = 0
        cs[c, C_MODE] = mode
        pick = -1
        if stuck[c, 0] == mode + 1 and stuck[c, 1] != -2:
            f = stuck[c, 1]
            if f < 0 or bq[c, f] >= p[P_BANKQ]:
                stuck[c, 1] = -1
                break
            for i in range(tqn[c, mode]):
                if bank[tq[c, mode, i]] == f:
                    pick = i
                    break
            if pick < 0:
                stuck[c, 1] = -1
                break
        else:
            for i in range(tqn[c, mode]):
                if bq[c, bank[tq[c, mode, i]]] < p[P_BANKQ]:
                    pick = i
                    break
            if pick < 0:
                stuck[c, 0] = mode + 1
                stuck[c, 1] = -1
                break
            stuck[c, 0] = 0
        q = tq[c, mode, pick]
        clk = max(clk, enq[q])
        if clk > key:
            break
        for i in range(pick, tqn[c, mode] - 1):  # keep the queue in handover order
            tq[c, mode, i] = tq[c, mode, i + 1]
        tqn[c, mode] -= 1
        mv[q] = clk
        b = bank[q]
        cq[c, b, bq[c, b]] = q
        bq[c, b] += 1
        bq[c, nb] += 1
        clk += 1
    lastmv[c] = max(lastmv[c], key)


@njit
def schedule(gpos, pair_order, pair_start, arr, is_wr, bank, row, p, bs, gs, cs, rs, aw, cnt,
             done, enq, hit, tr, trn):  # type: ignore[no-untyped-def]
    """Schedule a batch (see the module docstring). ``gpos[q]`` is request q's position in
    arrival order; ``pair_order[pair_start[k]:pair_start[k+1]]`` are the requests of pair
    ``k = 2 * channel + write`` in that order. Fills ``done`` (cycle the last data beat
    moves), ``enq`` and ``hit`` per request, updates the state arrays and counters in place,
    and appends commands to ``tr`` (rows: cycle, channel, bank, row, command) while it has
    room (``trn[0]`` rows used, ``trn[1]`` set on overflow)."""
    nch = cs.shape[0]
    n = arr.shape[0]
    depth = p[P_DEPTH]
    nb = p[P_NB]
    tq = np.empty((nch, 2, depth), dtype=np.int64)  # transaction queues, handover order
    tqn = np.zeros((nch, 2), dtype=np.int64)
    cq = np.empty((nch, nb, p[P_BANKQ]), dtype=np.int64)  # bank command queues, move order
    bq = np.zeros((nch, nb + 1), dtype=np.int64)  # entries per bank queue; [nb]: all banks
    mv = np.zeros(n, dtype=np.int64)  # cycle each request entered its bank's queue
    lastmv = np.full(nch, NEVER, dtype=np.int64)  # last clock whose move slot is spent
    stuck = np.zeros((nch, 2), dtype=np.int64)  # see _move
    miss_lo = np.empty(p[P_NRANK], dtype=np.int64)
    group_of = np.arange(nb) // p[P_BPG]  # (divisions are slow: once per bank, not per plan)
    rank_of = np.arange(nb) // (nb // p[P_NRANK])
    ph = pair_start[:-1].copy()  # next request of each pair not yet handed over
    # Within one bank and kind, a request's plan depends only on whether it hits the open
    # row and on its move cycle, which never decreases along the bank's queue: the first hit
    # and the first non-hit of each kind dominate the later ones (ties go to the older), so
    # the scan plans only those (``tried``: write x 2 + hit).
    tried = np.zeros(4, dtype=np.bool_)
    now = np.empty(nch, dtype=np.int64)
    for c in range(nch):
        now[c] = max(cs[c, C_NOW], cs[c, C_COLLAST])
    # Channels with requests in this batch, in index order (ties go to the lowest index); a
    # channel leaves the list once it has nothing queued or left to hand over, so a batch on
    # few of many channels does not scan them all at every decision.
    live = np.empty(nch, dtype=np.int64)
    nlive = 0
    for c in range(nch):
        if pair_start[2 * c] < pair_start[2 * c + 2]:
            live[nlive] = c
            nlive += 1
    acc_total = 0
    hclk = NEVER
    hcnt = 0
    served = 0
    while served < n:
        c = -1
        key = BIG
        for j in range(nlive):
            ch = live[j]
            if tqn[ch, 0] + tqn[ch, 1] + bq[ch, nb] > 0:
                k = max(now[ch], cs[ch, C_COLLAST])
            else:
                k = _head_time(ch, p, gpos, arr, pair_order, pair_start, ph, acc_total, hclk,
                               hcnt)
                k = max(k, now[ch]) if k < BIG else BIG
            if k < key:
                key = k
                c = ch
        now[c] = key
        while True:  # hand over admissible heads, lowest trace position first
            pick = -1
            for w in range(2):
                k = 2 * c + w
                if ph[k] < pair_start[k + 1] and tqn[c, w] < depth:
                    q = pair_order[ph[k]]
                    if gpos[q] < acc_total + p[P_WIN] and arr[q] <= key and (
                            pick < 0 or gpos[q] < gpos[pair_order[ph[2 * c + pick]]]):
                        pick = w
            if pick < 0:
                break
            if key > hclk:
                hclk = key
                hcnt = 0
            elif hcnt >= p[P_HAND]:
                break
            k = 2 * c + pick
            q = pair_order[ph[k]]
            ph[k] += 1
            tq[c, pick, tqn[c, pick]] = q
            tqn[c, pick] += 1
            enq[q] = key
            acc_total += 1
            hcnt += 1
            if stuck[c, 0] == pick + 1 and bq[c, bank[q]] < p[P_BANKQ]:
                stuck[c, 1] = -2
        _move(c, key, p, bank, enq, mv, tq, tqn, cq, bq, lastmv, stuck, cs)
        if bq[c, nb] == 0:
            if tqn[c, 0] + tqn[c, 1] > 0:
                now[c] = key + 1  # this clock's move is spent: the next one moves
            continue
        # A bound no candidate's column command can beat: stop the scan when one reaches it.
        lower = BIG
        for r in range(p[P_NRANK]):
            lower = min(lower, rs[c, r, R_NWR], rs[c, r, R_NRD])
        lower = max(lower, cs[c, C_COLLAST] + 1)
        # Per rank, a bound no request that needs an ACT can beat (its ACT waits for these).
        for r in range(p[P_NRANK]):
            i = rs[c, r, R_AWI]
            lo = max(rs[c, r, R_NACT], aw[c, r, (i - 4) % AW] + p[P_FAW],
                     cs[c, C_ROWLAST] + 1, rs[c, r, R_PDREADY])
            if p[P_32AW] > 0:
                lo = max(lo, aw[c, r, i] + p[P_32AW])
            miss_lo[r] = lo + min(p[P_RCD], p[P_RCDW])
        # Banks in round-robin order from the one after the last served (ties between banks
        # go to the earlier in that order), each bank's queue oldest first.
        best_b = -1
        best = -1
        best_k = nb  # position of best_b in the round-robin order
        bt_pre = -1
        bt_act = -1
        bt_col = BIG
        # Pass 1 plans the hits, and the misses whose ACT bound does not exceed ``lower``;
        # the others cannot reach ``lower``, so they are planned in pass 2 only if no hit
        # reached it. Ties keep the round-robin order, then the oldest, in both passes.
        deferred = False
        for pss in range(2):
            b = cs[c, C_RRBANK]
            for k in range(nb):
                b = b + 1 if b + 1 < nb else 0
                if bq[c, b] == 0:
                    continue
                tried[:] = False
                for i in range(bq[c, b]):
                    q = cq[c, b, i]
                    w = is_wr[q]
                    h = 1 if bs[c, b, B_ROW] == row[q] else 0
                    if tried[2 * w + h]:
                        continue  # an older request of this bank and kind was planned
                    tried[2 * w + h] = True
                    if h == 0:
                        lo = miss_lo[rank_of[b]]
                        if lo > bt_col or (lo == bt_col and k > best_k):
                            continue  # cannot beat the best so far
                        if (lo > lower) != (pss == 1):
                            deferred = deferred or lo > lower
                            continue  # its pass is the other one
                    elif pss == 1:
                        continue  # planned in pass 1
                    tp, ta, tc = _plan(c, b, group_of[b], rank_of[b], row[q], w != 0,
                                       mv[q] + p[P_CTRL], p, bs, gs, cs, rs, aw)
                    if tc < bt_col or (tc == bt_col and (k < best_k or (k == best_k
                                                                        and i < best))):
                        best_b = b
                        best = i
                        best_k = k
                        bt_pre = tp
                        bt_act = ta
                        bt_col = tc
                        if tc <= lower:
                            break
                if bt_col <= lower:
                    break
            if bt_col <= lower or not deferred:
                break
        q = cq[c, best_b, best]
        if p[P_REFMODE] != 0:
            first = bt_col
            if bt_act >= 0:
                first = bt_act
            if bt_pre >= 0:
                first = bt_pre
            if cs[c, C_REFDUE] <= first:
                _refresh(c, _next_refresh(c, p, rs), p, bs, cs, rs, cnt, tr, trn)
                continue
        hit[q] = 1 if bt_act < 0 else 0
        done[q] = _commit(c, best_b, group_of[best_b], rank_of[best_b], row[q], is_wr[q] != 0,
                          bt_pre, bt_act, bt_col,
                          mv[q] + p[P_CTRL], p, bs, gs, cs, rs, aw, cnt, tr, trn)
        for i in range(best, bq[c, best_b] - 1):  # keep the queue in move order
            cq[c, best_b, i] = cq[c, best_b, i + 1]
        bq[c, best_b] -= 1
        bq[c, nb] -= 1
        if stuck[c, 1] == -1 or stuck[c, 1] == best_b:
            stuck[c, 1] = best_b
        else:
            stuck[c, 1] = -2
        cs[c, C_RRBANK] = best_b
        served += 1
        if (tqn[c, 0] + tqn[c, 1] + bq[c, nb] == 0 and ph[2 * c] >= pair_start[2 * c + 1]
                and ph[2 * c + 1] >= pair_start[2 * c + 2]):
            j = 0
            while live[j] != c:
                j += 1
            for i in range(j, nlive - 1):
                live[i] = live[i + 1]
            nlive -= 1
    for c in range(nch):
        cs[c, C_NOW] = now[c]
