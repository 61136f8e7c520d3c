"""DRAM controller kernel: a windowed front end feeding FR-FCFS channel controllers.

One call schedules a batch of burst requests (arrival cycle, read/write, channel, bank, row)
starting from the state the previous call left: per bank the open row and the earliest next
ACT/PRE/RD/WR, per bank group the tRRD_L/tCCD_L/tWTR_L limits, per rank the tRRD_S/tCCD_S/
turnaround limits, its last 32 ACTs (tFAW, t32AW) and its refresh schedule, per channel the
command-bus clocks, the rank and kind of the last column command (tRTRS) and the read/write
mode. Times are int64 clock cycles (tCK). tests/naive_dram.py is the plain-Python twin.

Front end (all channels together, in global time):

- The batch is a trace in arrival order (``gpos``: position in it). The front end sees a
  window of ``W`` not-yet-accepted requests: since every accepted request lies inside the
  window when accepted, the window ends at index ``accepted_total + W``. It hands up to
  ``H`` requests per clock to the controllers, keeping order within each (channel,
  read/write) pair: a pair's head is admissible when its index is inside the window, it has
  arrived and its queue (``depth`` entries) has room. A channel left idle by one part of the
  trace therefore cannot serve requests far ahead of it.
- Channels advance together: the next channel to act is the one whose next decision is
  earliest (the clock of its last column command when it has work queued, else the cycle its
  first admissible head can be handed over). A request's ``enq`` is its handover cycle.

Controller (per channel):

- It serves reads, switches to writes when the write queue reaches the high watermark or no
  read is queued, and drains writes down to the low watermark while reads wait.
- FR-FCFS: among queued requests of the current kind that have reached their bank's
  command queue (the first ``bank_queue`` queued requests of each bank, in handover order,
  so a row's hits cannot be gathered from further back), the one whose column command can
  issue first (a row hit beats a miss that needs ACT, which beats a conflict that needs
  PRE+ACT), oldest first on ties. Its PRE/ACT/column commands are placed at the earliest
  cycle every constraint allows, no earlier than one controller clock after its handover
  (so an idle row hit costs CL + burst + 1). Row commands (ACT, PRE, REF, REFpb) and column
  commands (RD, WR) each use their own command bus, one command per cycle, in
  non-decreasing time. A PRE for a row conflict is placed as soon as its bank allows, not in
  bus order (its command slot is not modelled): otherwise one conflict waiting out tRAS
  would hold back every later bank's ACT.
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
  standby. A span still open is counted from ``R_OPENSINCE`` by whoever reads it.
- Power-down (``P_PDIDLE`` > 0; 0: never, as DRAMSim3's stock controller): a rank whose
  banks have all been precharged for ``P_PDIDLE`` clocks (since ``R_IDLESINCE``: its last
  close, or the end of its last refresh's tRFC) enters precharge power-down. A request that
  needs an ACT on it and was handed over at ``enq`` at or after that entry wakes it: the
  exit (PDX) issues on the controller's next clock, ``enq + 1``, and the ACT waits tXP after
  it; a refresh that falls due at or after the entry exits at its due cycle and the REF
  waits tXP. Either sets ``R_PDREADY``, before which no ACT or REF of the rank issues. The
  wake is applied when the command is committed, after any refresh the controller issues
  first, so refreshes stay in time order. Closed spans (entry to exit) are counted
  (``N_PDCYC``) and recorded as PDE/PDX rows; a rank still powered down is counted by
  whoever reads, from ``R_IDLESINCE + P_PDIDLE``. A bank left open keeps its rank out of
  power-down (active power-down is not modelled).
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
C_ROWLAST, C_COLLAST, C_LASTRANK, C_LASTWR, C_REFDUE, C_MODE, C_NOW = range(7)
N_CHAN_STATE = 7
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
    when none is left open."""
    rs[c, r, R_NOPEN] -= nclose
    if rs[c, r, R_NOPEN] == 0:
        cnt[c, N_OPENCYC] += max(t - rs[c, r, R_OPENSINCE], 0)
        rs[c, r, R_IDLESINCE] = t


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
def _plan(c, b, row, is_wr, t0, p, bs, gs, cs, rs, aw):  # type: ignore[no-untyped-def]
    """Earliest (t_pre, t_act, t_col) for one request; -1 for a command it does not need."""
    g = b // p[P_BPG]
    r = b // (p[P_NB] // p[P_NRANK])
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
def _commit(c, b, row, is_wr, t_pre, t_act, t_col, t0, p, bs, gs, cs, rs, aw, cnt, tr, trn):  # type: ignore[no-untyped-def]
    g = b // p[P_BPG]
    r = b // (p[P_NB] // p[P_NRANK])
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
    queue = np.empty((nch, 2, depth), dtype=np.int64)  # request ids in handover order
    qn = np.zeros((nch, 2), dtype=np.int64)
    ph = pair_start[:-1].copy()  # next request of each pair not yet handed over
    seen = np.zeros(p[P_NB], dtype=np.int64)  # queued requests per bank met in the scan
    # Within one bank, a request's plan depends only on whether it hits the open row and on
    # its handover cycle, which never decreases along the queue: the first hit and the first
    # non-hit of each bank dominate the later ones (ties go to the older), so the scan plans
    # only those. ``tried[b, hit]`` holds the number of the decision that planned one.
    tried = np.full((p[P_NB], 2), -1, dtype=np.int64)
    decision = 0
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
            if qn[ch, 0] + qn[ch, 1] > 0:
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
                if ph[k] < pair_start[k + 1] and qn[c, w] < depth:
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
            queue[c, pick, qn[c, pick]] = q
            qn[c, pick] += 1
            enq[q] = key
            acc_total += 1
            hcnt += 1
        occ_r = qn[c, 0]
        occ_w = qn[c, 1]
        if occ_r + occ_w == 0:
            continue
        mode = cs[c, C_MODE]
        if mode == 0:
            if occ_w >= p[P_WHIGH] or (occ_r == 0 and occ_w > 0):
                mode = 1
        elif occ_w == 0 or (occ_w <= p[P_WLOW] and occ_r > 0):
            mode = 0
        cs[c, C_MODE] = mode
        use_w = mode == 1
        kind = 1 if use_w else 0
        # A bound no candidate's column command can beat: stop the scan when one reaches it.
        lower = BIG
        for r in range(p[P_NRANK]):
            lower = min(lower, rs[c, r, R_NWR] if use_w else rs[c, r, R_NRD])
        lower = max(lower, cs[c, C_COLLAST] + 1)
        best = -1
        bt_pre = -1
        bt_act = -1
        bt_col = BIG
        seen[:] = 0
        decision += 1
        for i in range(qn[c, kind]):
            q = queue[c, kind, i]
            b = bank[q]
            seen[b] += 1
            if seen[b] > p[P_BANKQ]:
                continue  # not yet in its bank's command queue
            h = 1 if bs[c, b, B_ROW] == row[q] else 0
            if tried[b, h] == decision:
                continue  # an older request of this bank and kind was planned
            tried[b, h] = decision
            tp, ta, tc = _plan(c, bank[q], row[q], use_w, enq[q] + p[P_CTRL], p, bs, gs, cs,
                               rs, aw)
            if tc < bt_col:
                best = i
                bt_pre = tp
                bt_act = ta
                bt_col = tc
                if tc <= lower:
                    break
        q = queue[c, kind, best]
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
        done[q] = _commit(c, bank[q], row[q], use_w, bt_pre, bt_act, bt_col, enq[q] + p[P_CTRL],
                          p, bs, gs, cs, rs, aw, cnt, tr, trn)
        for i in range(best, qn[c, kind] - 1):  # keep the queue in handover order
            queue[c, kind, i] = queue[c, kind, i + 1]
        qn[c, kind] -= 1
        served += 1
        if (qn[c, 0] + qn[c, 1] == 0 and ph[2 * c] >= pair_start[2 * c + 1]
                and ph[2 * c + 1] >= pair_start[2 * c + 2]):
            j = 0
            while live[j] != c:
                j += 1
            for i in range(j, nlive - 1):
                live[i] = live[i + 1]
            nlive -= 1
    for c in range(nch):
        cs[c, C_NOW] = now[c]
