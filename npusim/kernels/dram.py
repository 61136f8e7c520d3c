"""DRAM controller kernel: a windowed front end feeding command-by-command channel arbiters.

One call schedules a batch of burst requests (arrival cycle, read/write, channel, bank, row)
starting from the state the previous call left: per bank the open row and the earliest next
ACT/PRE/RD/WR, per bank group the tRRD_L/tCCD_L/tWTR_L limits, per rank the tRRD_S/tCCD_S/
turnaround limits, its last 32 ACTs (tFAW, t32AW) and its refresh schedule, per channel the
arbiter's clock, the last refresh and column commands, the rank and kind of the last column
command (tRTRS), the read/write mode, the round-robin pointer and a refresh under way. Times
are int64 clock cycles (tCK).
tests/naive_dram.py is the plain-Python twin.

Front end (all channels together, in global time):

- The batch is a trace in arrival order (``gpos``: position in it). The front end sees a
  window of ``W`` not-yet-accepted requests: since every accepted request lies inside the
  window when accepted, the window ends at index ``accepted_total + W``. It hands up to
  ``H`` requests per clock to the controllers, keeping order within each (channel,
  read/write) pair: a pair's head is admissible when its index is inside the window, it has
  arrived and its transaction queue (``depth`` entries) has room. A channel left idle by
  one part of the trace therefore cannot serve requests far ahead of it.
- Channels advance together: the next channel to act is the one whose next event is
  earliest: its arbiter's clock when requests wait in its bank queues, its next move when
  they wait in its transaction queues, the cycle its first admissible head can be handed
  over (the front end does not wait for the arbiter). A request's ``enq`` is its handover
  cycle. The kernel serves one batch at a time per channel: a new batch is handed over
  once the earlier ones are down to their last request (``C_FREE``: it has entered its
  bank's queue and every other has issued).

Controller (per channel), two stages as in DRAMSim3's controller:

- Transaction queues: a read and a write queue of ``depth`` entries each. One request a
  clock moves from one of them into its bank's command queue (``bank_queue`` entries per
  bank, reads and writes together), freeing its slot for the front end: the oldest whose
  bank queue has room, no earlier than its handover cycle. Moves come from the read queue,
  switch to the write queue when it reaches the high watermark or no read is queued, and
  drain it down to the low watermark while reads wait. Moves are made in a batch at each of
  the channel's decisions, one per clock over the clocks since the last batch.
- The arbiter, one command a clock as DRAMSim3's (``src/controller.cc``,
  ``src/command_queue.cc``): each clock it scans the bank queues round robin from the one
  after its pointer and issues the first command a queue has ready at that clock; the
  pointer stays at that queue. A queue offers, for a closed bank, ACT for its oldest
  request; for an open bank, the column command of its first request (in queue order) that
  hits the row and meets its timings, or PRE when its head misses, unless a queued request
  still hits the row and the row has served fewer than 4 (ArbitratePrecharge). Reads and
  writes alike (the turnaround timings weigh a change of direction). A request's first
  command issues no earlier than one clock after it entered its bank's queue (so an idle
  row hit costs CL + burst + 1); its column command frees its entry. With HBM's separate
  row and column command buses (``P_DUAL``) a second scan follows in the same clock, from
  the pointer: the first command it finds ready takes the pointer and issues if it is of
  the other kind. The kernel is event-driven: when nothing is ready it jumps to the first
  cycle something is, unless a move or a handover may come first (a request that enters a
  bank queue wakes the arbiter the next clock); the result is the clock-by-clock rule's.
- Ranks: each has its own tRRD_S, tFAW and t32AW windows and its own same-rank column
  spacing (tCCD_S, tWTR, read-to-write); a column command to another rank than the last
  one waits for the data bus to turn around: burst + tRTRS (+ CL - CWL or CWL - CL when the
  kind changes too).
- Open page keeps a row open until a conflict or refresh; closed page auto-precharges
  (RDA/WRA) as early as tRAS/tRTP/tWR allow.
- Refresh, per rank, the ranks staggered by tREFI / ranks: all-bank (PREA then REF every
  tREFI, the rank's banks blocked tRFC) or per-bank (PRE if open, then REFpb, to one bank
  every tREFI / banks per rank, round robin, that bank blocked tRFCpb). A refresh starts when
  it falls due before the next command the arbiter would issue (not while the channel
  idles); from then the rank's (all-bank) or bank's (per-bank) queues are held, and its own
  commands go first, each in a command slot, when their timings allow. REF rows of the trace
  carry ``-1 - rank`` as their bank.
- Background power: per rank, the cycles with at least one bank open (ACT to the PRE that
  leaves none open) are counted (``N_OPENCYC``) for active standby; the rest is precharged
  standby. A span still open is counted from ``R_OPENSINCE`` by whoever reads it. A span
  ends at the latest precharge recorded in it (an auto-precharge is recorded at its column
  command, for the cycle tRAS/tRTP/tWR allow it).
- Power-down (``P_PDIDLE`` > 0; 0: never, as DRAMSim3's stock controller): a rank whose
  banks have all been precharged for ``P_PDIDLE`` clocks (since ``R_IDLESINCE``: its last
  close, or the end of its last refresh's tRFC) enters precharge power-down. A request that
  needs an ACT on it and entered its bank's queue at a cycle ``m`` at or after that entry
  wakes it: the exit (PDX) issues on the controller's next clock, ``m + 1``, and the ACT
  waits tXP after it; a refresh that falls due at or after the entry exits at its due cycle
  and the REF waits tXP. Either sets ``R_PDREADY``, before which no ACT or REF of the rank
  issues. The wake is applied when the ACT issues, after any refresh the arbiter issues
  first, so refreshes stay in time order. Closed spans (entry to exit)
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
P_PDIDLE, P_XP, P_DUAL = range(36, 39)
N_PARAMS = 39
# Bank state.
# B_HITS: column commands since the open row's ACT.
B_ROW, B_NACT, B_NPRE, B_NRD, B_NWR, B_HITS = range(6)
N_BANK_STATE = 6
# Bank-group state.
G_NACT, G_NRD, G_NWR = range(3)
N_GROUP_STATE = 3
# Rank state.
R_NACT, R_NRD, R_NWR, R_AWI, R_REFDUE, R_REFPTR, R_NOPEN, R_OPENSINCE = range(8)
R_IDLESINCE, R_PDREADY = range(8, 10)  # power-down (module docstring)
N_RANK_STATE = 10
# Channel state (C_REFDUE: the earliest refresh due over the ranks).
# C_ROWLAST: the last refresh command (PREA/PRE/REF/REFpb); C_COLLAST: the last column
# command; C_NOW: the arbiter's clock; C_RRBANK: the round-robin pointer (a bank queue);
# C_SECOND: 0, or 1/2 when the arbiter is at its second scan of clock C_NOW after a row/column
# command (dual issue); C_REFPEND: the rank whose refresh is under way, -1 if none; C_FREE:
# the clock earlier batches were down to their last request (it had entered its bank's queue,
# every other had issued): a new batch is handed over from then on.
C_ROWLAST, C_COLLAST, C_LASTRANK, C_LASTWR, C_REFDUE, C_MODE, C_NOW, C_RRBANK = range(8)
C_SECOND, C_REFPEND, C_FREE = range(8, 11)
N_CHAN_STATE = 11
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
    cs[:, C_REFPEND] = -1
    cs[:, C_FREE] = NEVER
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
    when none is left open. An auto-precharge is recorded at its column command for a later
    cycle, so the span ends at the latest precharge seen in it."""
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
def _next_refresh(c, p, rs):  # type: ignore[no-untyped-def]
    """The rank whose refresh is due first on channel ``c``."""
    best = 0
    for r in range(1, p[P_NRANK]):
        if rs[c, r, R_REFDUE] < rs[c, best, R_REFDUE]:
            best = r
    return best


@njit
def _ref_begin(c, p, cs, rs, cnt, tr, trn):  # type: ignore[no-untyped-def]
    """The refresh due first on channel ``c`` starts: its rank's (all-bank) or bank's
    (per-bank) queues are held until its REF has issued; a rank in power-down exits at the
    due cycle."""
    r = _next_refresh(c, p, rs)
    t_due = rs[c, r, R_REFDUE]
    if _asleep(c, r, t_due, p, rs):
        _wake(c, r, t_due, t_due + p[P_XP], rs, cnt, p, tr, trn)
    cs[c, C_REFPEND] = r


@njit
def _ref_next(c, p, bs, cs, rs):  # type: ignore[no-untyped-def]
    """Earliest cycle of the pending refresh's next command: PREA (all-bank) or PRE
    (per-bank) while a bank it needs is open, then REF or REFpb."""
    r = cs[c, C_REFPEND]
    per_rank = p[P_NB] // p[P_NRANK]
    lo = r * per_rank
    t = max(rs[c, r, R_REFDUE], cs[c, C_ROWLAST] + 1, rs[c, r, R_PDREADY])
    if p[P_REFMODE] == 1:
        n_open = 0
        for b in range(lo, lo + per_rank):
            if bs[c, b, B_ROW] >= 0:
                n_open += 1
                t = max(t, bs[c, b, B_NPRE])
        if n_open == 0:
            for b in range(lo, lo + per_rank):
                t = max(t, bs[c, b, B_NACT])
        return t
    b = lo + rs[c, r, R_REFPTR]
    return max(t, bs[c, b, B_NPRE] if bs[c, b, B_ROW] >= 0 else bs[c, b, B_NACT])


@njit
def _do_pre(c, b, r, t, p, bs, rs, cnt, tr, trn):  # type: ignore[no-untyped-def]
    _record(tr, trn, t, c, b, bs[c, b, B_ROW], PRE)
    bs[c, b, B_ROW] = -1
    bs[c, b, B_HITS] = 0
    bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RP])
    cnt[c, N_PRE] += 1
    _closed(c, r, t, 1, rs, cnt)


@njit
def _ref_issue(c, t, p, bs, cs, rs, cnt, tr, trn):  # type: ignore[no-untyped-def]
    """Issue the pending refresh's next command at ``t`` (see :func:`_ref_next`)."""
    r = cs[c, C_REFPEND]
    per_rank = p[P_NB] // p[P_NRANK]
    lo = r * per_rank
    cs[c, C_ROWLAST] = t
    if p[P_REFMODE] == 1:
        n_open = 0
        for b in range(lo, lo + per_rank):
            if bs[c, b, B_ROW] >= 0:
                n_open += 1
                bs[c, b, B_ROW] = -1
                bs[c, b, B_HITS] = 0
                bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RP])
        if n_open > 0:
            _record(tr, trn, t, c, -1 - r, -1, PREA)
            cnt[c, N_PRE] += n_open
            _closed(c, r, t, n_open, rs, cnt)
            return
        _record(tr, trn, t, c, -1 - r, -1, REF)
        for b in range(lo, lo + per_rank):
            bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RFC])
        rs[c, r, R_REFDUE] += p[P_REFI]
        rs[c, r, R_IDLESINCE] = t + p[P_RFC]  # every bank of the rank is precharged
        cnt[c, N_REF] += 1
    else:
        b = lo + rs[c, r, R_REFPTR]
        if bs[c, b, B_ROW] >= 0:
            _do_pre(c, b, r, t, p, bs, rs, cnt, tr, trn)
            return
        _record(tr, trn, t, c, b, -1, REFPB)
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RFCPB])
        rs[c, r, R_REFPTR] = (rs[c, r, R_REFPTR] + 1) % per_rank
        rs[c, r, R_REFDUE] += max(p[P_REFI] // per_rank, 1)
        if rs[c, r, R_NOPEN] == 0:
            rs[c, r, R_IDLESINCE] = t + p[P_RFCPB]
        cnt[c, N_REFPB] += 1
    cs[c, C_REFPEND] = -1
    due = rs[c, 0, R_REFDUE]
    for k in range(1, p[P_NRANK]):
        due = min(due, rs[c, k, R_REFDUE])
    cs[c, C_REFDUE] = due


@njit
def _do_act(c, b, g, r, rw, t, t0, p, bs, gs, rs, aw, cnt, tr, trn):  # type: ignore[no-untyped-def]
    """ACT at ``t`` for a request that could issue from ``t0`` (a rank powered down when it
    entered its bank's queue exits at ``t0``)."""
    if _asleep(c, r, t0 - p[P_CTRL], p, rs):
        _wake(c, r, t0, t0 + p[P_XP], rs, cnt, p, tr, trn)
    _record(tr, trn, t, c, b, rw, ACT)
    _opened(c, r, t, rs)
    bs[c, b, B_ROW] = rw
    bs[c, b, B_HITS] = 0
    bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], t + p[P_RAS])
    bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RC])
    bs[c, b, B_NRD] = max(bs[c, b, B_NRD], t + p[P_RCD])
    bs[c, b, B_NWR] = max(bs[c, b, B_NWR], t + p[P_RCDW])
    rs[c, r, R_NACT] = max(rs[c, r, R_NACT], t + p[P_RRDS])
    gs[c, g, G_NACT] = max(gs[c, g, G_NACT], t + p[P_RRDL])
    i = rs[c, r, R_AWI]
    aw[c, r, i] = t
    rs[c, r, R_AWI] = (i + 1) % AW
    cnt[c, N_ACT] += 1


@njit
def _do_col(c, b, g, r, rw, is_wr, t, p, bs, gs, cs, rs, cnt, tr, trn):  # type: ignore[no-untyped-def]
    """Column command at ``t``; returns (cycle the last data beat moves, row hit). A hit is a
    column command after the first since its row's ACT (DRAMSim3's count)."""
    hit = bs[c, b, B_HITS] > 0
    if hit:
        cnt[c, N_HIT] += 1
    else:
        cnt[c, N_MISS] += 1
    bs[c, b, B_HITS] += 1
    nbl = p[P_NBL]
    ccd_s = max(p[P_CCDS], nbl)
    ccd_l = max(p[P_CCDL], ccd_s)
    closed = p[P_CLOSED] != 0
    if is_wr:
        _record(tr, trn, t, c, b, rw, WRA if closed else WR)
        done = t + p[P_CWL] + nbl
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], done + p[P_WR])
        rs[c, r, R_NWR] = max(rs[c, r, R_NWR], t + ccd_s)
        gs[c, g, G_NWR] = max(gs[c, g, G_NWR], t + ccd_l)
        rs[c, r, R_NRD] = max(rs[c, r, R_NRD], done + p[P_WTRS])
        gs[c, g, G_NRD] = max(gs[c, g, G_NRD], done + p[P_WTRL])
        cnt[c, N_WR] += 1
    else:
        _record(tr, trn, t, c, b, rw, RDA if closed else RD)
        done = t + p[P_CL] + nbl
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], t + p[P_RTP])
        rs[c, r, R_NRD] = max(rs[c, r, R_NRD], t + ccd_s)
        gs[c, g, G_NRD] = max(gs[c, g, G_NRD], t + ccd_l)
        rs[c, r, R_NWR] = max(rs[c, r, R_NWR], t + p[P_RTW])
        cnt[c, N_RD] += 1
    cs[c, C_COLLAST] = t
    cs[c, C_LASTRANK] = r
    cs[c, C_LASTWR] = 1 if is_wr else 0
    if closed:
        tp = bs[c, b, B_NPRE]
        bs[c, b, B_ROW] = -1
        bs[c, b, B_HITS] = 0
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
        cnt[c, N_PRE] += 1
        _closed(c, r, tp, 1, rs, cnt)
    return done, hit


@njit
def _heads(c, p, gpos, arr, pair_order, pair_start, ph, tqn, acc_total, hb, hw):  # type: ignore[no-untyped-def]
    """Channel ``c``'s pair heads whose transaction queue has room: ``hb[c]`` the earliest
    arrival among those inside the window (BIG: none), ``hw[c]`` the lowest trace position
    among those outside it (BIG: none; they enter as other channels accept). Both change only
    when ``c`` is handed a request or moves one, or when ``hw[c]`` enters the window."""
    hb[c] = BIG
    hw[c] = BIG
    for w in range(2):
        k = 2 * c + w
        if ph[k] < pair_start[k + 1] and tqn[c, w] < p[P_DEPTH]:
            q = pair_order[ph[k]]
            if gpos[q] < acc_total + p[P_WIN]:
                hb[c] = min(hb[c], arr[q])
            else:
                hw[c] = min(hw[c], gpos[q])


@njit
def _serving(c, p, tqn, cs):  # type: ignore[no-untyped-def]
    """The transaction queue channel ``c`` moves from this clock (0 reads, 1 writes): reads
    until the write queue reaches the high watermark or no read is queued, then writes
    until it is down to the low watermark while reads wait."""
    occ_r = tqn[c, 0]
    occ_w = tqn[c, 1]
    mode = cs[c, C_MODE]
    if mode == 0:
        if occ_w >= p[P_WHIGH] or (occ_r == 0 and occ_w > 0):
            mode = 1
    elif occ_w == 0 or (occ_w <= p[P_WLOW] and occ_r > 0):
        mode = 0
    return mode


@njit
def _can_move(c, p, bank, tq, tqn, bq, stuck, cs):  # type: ignore[no-untyped-def]
    """Whether channel ``c``'s next clock moves a request (see the moves in
    :func:`schedule`): the queue it will serve holds one whose bank queue has room."""
    mode = _serving(c, p, tqn, cs)
    if stuck[c, 0] == mode + 1 and stuck[c, 1] == -1:
        return False  # a scan of that queue found nothing, and no bank got room since
    for i in range(tqn[c, mode]):  # noqa: SIM110 (numba compiles no generator in any())
        if bq[c, bank[tq[c, mode, i]]] < p[P_BANKQ]:
            return True
    return False


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
    per_rank = nb // p[P_NRANK]
    tq = np.empty((nch, 2, depth), dtype=np.int64)  # transaction queues, handover order
    tqn = np.zeros((nch, 2), dtype=np.int64)
    cq = np.empty((nch, nb, p[P_BANKQ]), dtype=np.int64)  # bank command queues, move order
    bq = np.zeros((nch, nb + 1), dtype=np.int64)  # entries per bank queue; [nb]: all banks
    nh = np.zeros((nch, nb, 2), dtype=np.int64)  # queued hits on the open row: all, writes
    mv = np.zeros(n, dtype=np.int64)  # cycle each request entered its bank's queue
    lastmv = cs[:, C_FREE].copy()  # last clock whose move slot is spent
    stuck = np.zeros((nch, 2), dtype=np.int64)  # see the moves below
    act_lo = np.empty(p[P_NRANK], dtype=np.int64)  # see the scan
    col_lo = np.empty((p[P_NRANK], 2), dtype=np.int64)
    group_of = np.arange(nb) // p[P_BPG]  # (divisions are slow: once per bank, not per scan)
    rank_of = np.arange(nb) // per_rank
    ph = pair_start[:-1].copy()  # next request of each pair not yet handed over
    now = cs[:, C_NOW].copy()  # each channel's arbiter clock
    floor = now.copy()  # the clock after each channel's last command
    collast = np.full(nch, NEVER, dtype=np.int64)  # this batch's last column command
    colprev = np.full(nch, NEVER, dtype=np.int64)  # and the one before it
    # Channels with requests in this batch, in index order (ties go to the lowest index); a
    # channel leaves the list once it has nothing queued or left to hand over, so a batch on
    # few of many channels does not scan them all at every decision.
    live = np.empty(nch, dtype=np.int64)
    nlive = 0
    hb = np.empty(nch, dtype=np.int64)  # see _heads
    hw = np.empty(nch, dtype=np.int64)
    for c in range(nch):
        if pair_start[2 * c] < pair_start[2 * c + 2]:
            live[nlive] = c
            nlive += 1
        _heads(c, p, gpos, arr, pair_order, pair_start, ph, tqn, 0, hb, hw)
    acc_total = 0
    gnow = NEVER  # the cycle of the decision being made (non-decreasing)
    hclk = NEVER
    hcnt = 0
    served = 0
    while served < n:
        c = -1
        key = BIG
        for j in range(nlive):
            ch = live[j]
            k = BIG
            if bq[ch, nb] > 0:
                k = now[ch]  # the arbiter's next decision
            elif tqn[ch, 0] + tqn[ch, 1] > 0:
                k = lastmv[ch] + 1  # the next move
            # The next handover (the front end does not wait for the arbiter): never before
            # ``gnow``, so only looked for when the channel's own event is later.
            if k > gnow:
                if hw[ch] < acc_total + p[P_WIN]:
                    _heads(ch, p, gpos, arr, pair_order, pair_start, ph, tqn, acc_total, hb, hw)
                if hb[ch] < BIG:
                    h = max(hb[ch], hclk, gnow, cs[ch, C_FREE])
                    if h == hclk and hcnt >= p[P_HAND]:
                        h = hclk + 1
                    k = min(k, h)
            if k < key:
                key = k
                c = ch
        gnow = key
        now[c] = max(now[c], key)  # an idle arbiter's clock catches up with the decision
        accepted = acc_total
        while True:  # hand over admissible heads, lowest trace position first
            pick = -1
            for w in range(2):
                k = 2 * c + w
                if ph[k] < pair_start[k + 1] and tqn[c, w] < depth:
                    q = pair_order[ph[k]]
                    if gpos[q] < acc_total + p[P_WIN] and arr[q] <= key and (
                            key >= cs[c, C_FREE]) and (
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
        queued = bq[c, nb]
        # Moves: from the transaction queues into the bank command queues, one per clock
        # over the clocks up to ``key`` not yet passed: each clock the oldest request of the
        # queue being served (reads, or writes while draining) whose bank queue has room, no
        # earlier than its handover. ``stuck[c, 0]`` is 1 + the queue in which a scan found
        # nothing to move (0: not known); ``stuck[c, 1]`` the one bank given room since (-1:
        # none, -2: more than one, or a request handed over for a bank with room), so only
        # that bank's requests are looked for. (Inline, as the issue below.)
        clk = lastmv[c] + 1
        while clk <= key:
            mode = _serving(c, p, tqn, cs)
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
            if bs[c, b, B_ROW] == row[q]:
                nh[c, b, 0] += 1
                nh[c, b, 1] += is_wr[q]
            bq[c, nb] += 1
            clk += 1
        lastmv[c] = max(lastmv[c], key)
        if acc_total > accepted or bq[c, nb] > queued:  # its heads or its room changed
            _heads(c, p, gpos, arr, pair_order, pair_start, ph, tqn, acc_total, hb, hw)
        second = cs[c, C_SECOND]
        if bq[c, nb] == 0:
            cs[c, C_SECOND] = 0
            continue
        if now[c] > key:
            if bq[c, nb] > queued:  # a request moved in: the arbiter looks again next clock
                now[c] = max(key + 1, floor[c])
            continue  # the arbiter's clock is ahead (it waits for a command or a refresh)
        pend = cs[c, C_REFPEND]
        blk_lo = 0  # banks [blk_lo, blk_hi) are held by a pending refresh
        blk_hi = 0
        if pend >= 0:
            blk_lo = pend * per_rank
            blk_hi = blk_lo + per_rank
            if p[P_REFMODE] == 2:
                blk_lo += rs[c, pend, R_REFPTR]
                blk_hi = blk_lo + 1
        # The bank queues in round-robin order from the one after the pointer: the first
        # whose command is ready earliest (at ``key``: the first ready now) wins.
        best_t = BIG
        best_b = -1
        best_i = -1
        best_code = -1
        # Per rank, the bound every ACT waits for (tRRD_S, tFAW, t32AW, refresh, power-down
        # exit) and the bound every read / write waits for (the rank's column spacing, and
        # the data bus turning around when the last column command went to another rank).
        for r in range(p[P_NRANK]):
            i = rs[c, r, R_AWI]
            lo = max(rs[c, r, R_NACT], aw[c, r, (i - 4) % AW] + p[P_FAW],
                     cs[c, C_ROWLAST] + 1, rs[c, r, R_PDREADY], key)
            if p[P_32AW] > 0:
                lo = max(lo, aw[c, r, i] + p[P_32AW])
            act_lo[r] = lo
            col_lo[r, 0] = rs[c, r, R_NRD]
            col_lo[r, 1] = rs[c, r, R_NWR]
            if cs[c, C_LASTRANK] >= 0 and cs[c, C_LASTRANK] != r:
                gap = p[P_NBL] + p[P_RTRS]
                last_wr = cs[c, C_LASTWR] != 0
                col_lo[r, 0] = max(col_lo[r, 0], cs[c, C_COLLAST] + gap
                                   + (p[P_CWL] - p[P_CL] if last_wr else 0))
                col_lo[r, 1] = max(col_lo[r, 1], cs[c, C_COLLAST] + gap
                                   + (0 if last_wr else p[P_CL] - p[P_CWL]))
        b = cs[c, C_RRBANK]
        for _ in range(nb):
            b = b + 1 if b + 1 < nb else 0
            if bq[c, b] == 0 or (blk_lo <= b < blk_hi):
                continue
            q = cq[c, b, 0]
            g = group_of[b]
            r = rank_of[b]
            if bs[c, b, B_ROW] < 0:  # ACT for the oldest
                t = max(act_lo[r], bs[c, b, B_NACT], gs[c, g, G_NACT], mv[q] + p[P_CTRL])
                if p[P_PDIDLE] > 0 and _asleep(c, r, mv[q], p, rs):  # powered down: exit first
                    t = max(t, mv[q] + p[P_CTRL] + p[P_XP])
                i = 0
                code = ACT
            else:
                # An open bank: the column command of the first request, in queue order, that
                # hits the row and is ready first (an older hit of the same kind is ready no
                # later, so only the first of each kind is planned); PRE for a missing head
                # when nothing hits the row or it has served 4 (DRAMSim3's
                # ArbitratePrecharge), and it wins a tie.
                orow = bs[c, b, B_ROW]
                t = BIG
                i = -1
                code = -1
                seen_rd = False
                seen_wr = False
                for j in range(bq[c, b] if nh[c, b, 0] > 0 else 0):
                    x = cq[c, b, j]
                    if row[x] != orow or (seen_wr if is_wr[x] else seen_rd):
                        continue
                    if is_wr[x]:
                        seen_wr = True
                        tj = max(col_lo[r, 1], gs[c, g, G_NWR], bs[c, b, B_NWR])
                    else:
                        seen_rd = True
                        tj = max(col_lo[r, 0], gs[c, g, G_NRD], bs[c, b, B_NRD])
                    tj = max(tj, mv[x] + p[P_CTRL], key)
                    if tj < t:
                        t = tj
                        i = j
                        code = WR if is_wr[x] else RD
                    if (seen_rd or nh[c, b, 1] == nh[c, b, 0]) and (
                            seen_wr or nh[c, b, 1] == 0):
                        break  # both kinds found, or the only kind there is
                if row[q] != orow and (nh[c, b, 0] == 0 or bs[c, b, B_HITS] >= 4):
                    tp = max(mv[q] + p[P_CTRL], bs[c, b, B_NPRE], cs[c, C_ROWLAST] + 1, key)
                    if tp <= t:
                        t = tp
                        i = 0
                        code = PRE
            if t < best_t:
                best_t = t
                best_b = b
                best_i = i
                best_code = code
                if t == key:
                    break
        t_rf = BIG
        if pend >= 0:
            t_rf = max(_ref_next(c, p, bs, cs, rs), floor[c])
            if t_rf < key:
                # Fell due while the channel idled: its commands issue in that gap, after
                # the channel's last command, as they would have.
                _ref_issue(c, t_rf, p, bs, cs, rs, cnt, tr, trn)
                floor[c] = t_rf + 1
                continue
        elif second == 0 and p[P_REFMODE] != 0 and cs[c, C_REFDUE] <= best_t:
            _ref_begin(c, p, cs, rs, cnt, tr, trn)
            continue
        target = min(best_t, t_rf)
        waiting = False
        if second != 0:
            # The clock's second scan (dual command issue): the first command ready now
            # takes the pointer, and issues if it is of the other kind (row vs column).
            cs[c, C_SECOND] = 0
            if best_t == key:
                cs[c, C_RRBANK] = best_b
                now[c] = key + 1
                if (2 if best_code >= RD else 1) == second:
                    continue
            else:
                waiting = True
        elif target > key:
            waiting = True
        elif t_rf <= best_t:  # a refresh's commands go first
            _ref_issue(c, key, p, bs, cs, rs, cnt, tr, trn)
            floor[c] = key + 1
            if p[P_DUAL] != 0:
                cs[c, C_SECOND] = 1  # the same clock's second scan comes next
            else:
                now[c] = key + 1
            continue
        else:
            cs[c, C_RRBANK] = best_b
            floor[c] = key + 1
            if p[P_DUAL] != 0:
                cs[c, C_SECOND] = 2 if best_code >= RD else 1  # the second scan comes next
            else:
                now[c] = key + 1
        if waiting:
            # Nothing (more) is ready this clock: wait for the first ready command or a due
            # refresh, unless a move or a handover may come first (it can add a command
            # ready earlier).
            nxt = max(target, key + 1)
            if pend < 0 and p[P_REFMODE] != 0:
                nxt = min(nxt, max(cs[c, C_REFDUE], key + 1))
            if tqn[c, 0] + tqn[c, 1] > 0 and _can_move(c, p, bank, tq, tqn, bq, stuck, cs):
                nxt = key + 1
            if hw[c] < acc_total + p[P_WIN]:
                _heads(c, p, gpos, arr, pair_order, pair_start, ph, tqn, acc_total, hb, hw)
            if hb[c] < BIG:
                nxt = min(nxt, max(hb[c], key + 1))
            now[c] = nxt
            continue
        # Issue bank ``b``'s command for its queue's request at ``best_i``; a column command
        # serves the request and frees its queue entry. (Inline: a helper taking these
        # arrays costs more in reference counting than the work.)
        b = best_b
        q = cq[c, b, best_i]
        g = group_of[b]
        r = rank_of[b]
        if best_code == PRE:
            _do_pre(c, b, r, key, p, bs, rs, cnt, tr, trn)
        elif best_code == ACT:
            _do_act(c, b, g, r, row[q], key, mv[q] + p[P_CTRL], p, bs, gs, rs, aw, cnt, tr,
                    trn)
            nh[c, b, 0] = 0
            nh[c, b, 1] = 0
            for j in range(bq[c, b]):
                if row[cq[c, b, j]] == row[q]:
                    nh[c, b, 0] += 1
                    nh[c, b, 1] += is_wr[cq[c, b, j]]
        else:
            d, h = _do_col(c, b, g, r, row[q], is_wr[q] != 0, key, p, bs, gs, cs, rs, cnt, tr,
                           trn)
            done[q] = d
            hit[q] = 1 if h else 0
            if bs[c, b, B_ROW] >= 0:
                nh[c, b, 0] -= 1
                nh[c, b, 1] -= is_wr[q]
            else:
                nh[c, b, 0] = 0
                nh[c, b, 1] = 0
            for k in range(best_i, bq[c, b] - 1):  # keep the queue in move order
                cq[c, b, k] = cq[c, b, k + 1]
            bq[c, b] -= 1
            bq[c, nb] -= 1
            if stuck[c, 1] == -1 or stuck[c, 1] == b:
                stuck[c, 1] = b
            else:
                stuck[c, 1] = -2
            served += 1
            colprev[c] = collast[c]
            collast[c] = key
            nlive = _retire(c, nlive, live, tqn, bq, ph, pair_start, nb)
    for c in range(nch):
        if cs[c, C_SECOND] != 0:
            cs[c, C_SECOND] = 0
            now[c] += 1
        cs[c, C_NOW] = now[c]
        # The next batch is handed over once this one is down to its last request: that
        # request has entered its bank's queue and every other has issued.
        cs[c, C_FREE] = max(cs[c, C_FREE], colprev[c])
        for j in range(pair_start[2 * c], pair_start[2 * c + 2]):
            cs[c, C_FREE] = max(cs[c, C_FREE], mv[pair_order[j]])


@njit
def _retire(c, nlive, live, tqn, bq, ph, pair_start, nb):  # type: ignore[no-untyped-def]
    """Drop channel ``c`` from the live list once it has nothing queued or left to hand
    over; returns the new length."""
    if (tqn[c, 0] + tqn[c, 1] + bq[c, nb] == 0 and ph[2 * c] >= pair_start[2 * c + 1]
            and ph[2 * c + 1] >= pair_start[2 * c + 2]):
        j = 0
        while live[j] != c:
            j += 1
        for k in range(j, nlive - 1):
            live[k] = live[k + 1]
        nlive -= 1
    return nlive
