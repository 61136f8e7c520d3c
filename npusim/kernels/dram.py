"""DRAM channel controller kernel: FR-FCFS over a request batch, bank state carried between calls.

One call schedules a batch of burst requests (arrival cycle, read/write, bank, row) on every
channel they map to, starting from the state the previous call left: per bank the open row
and the earliest next ACT/PRE/RD/WR, per bank group the tRRD_L/tCCD_L/tWTR_L limits, per
channel the command-bus clocks, the tRRD_S/tCCD_S/turnaround limits, the last four ACTs
(tFAW), the refresh schedule and the read/write mode. Times are int64 clock cycles (tCK).

The controller model, per channel (tests/naive_dram.py is its plain-Python twin):

- Requests are accepted in arrival order into a read queue and a write queue of ``depth``
  entries each; acceptance stalls while the next request's queue is full (an in-order
  front end, so an open-loop batch is offered all at once and the queues decide what is in
  flight). A request's ``enq`` cycle is when it was accepted.
- The controller serves reads, and switches to writes when the write queue reaches the high
  watermark (3/4 of depth) or no read is queued; it drains writes to the low watermark
  (1/4 of depth) while reads wait.
- FR-FCFS: among queued requests of the current kind, the one whose column command can
  issue first (a row hit beats a miss that needs ACT, which beats a conflict that needs
  PRE+ACT), oldest first on ties. Its PRE/ACT/column commands are placed at the earliest
  cycle every constraint allows, no earlier than its acceptance; row commands (ACT, PRE,
  REF, REFpb) and column commands (RD, WR) each use their own command bus, one command
  per cycle, issued in non-decreasing time. A PRE for a row conflict is placed as soon as
  its bank allows, not in bus order (its command slot is not modelled): otherwise one
  conflict waiting out tRAS would hold back every later bank's ACT.
- Open page keeps a row open until a conflict or refresh; closed page auto-precharges
  (RDA/WRA) as early as tRAS/tRTP/tWR allow.
- Refresh: all-bank (PREA then REF every tREFI, banks blocked tRFC) or per-bank (REFpb to
  one bank every tREFI/banks, round robin, that bank blocked tRFCpb), issued when due
  before the next request's first command.

Simplification (stated): ranks share one tFAW/tRRD window and there is no rank-to-rank
switch penalty; the catalog entries all have one rank.
"""

from __future__ import annotations

import numpy as np

from npusim.kernels._jit import njit

__all__ = [
    "CMD_NAMES", "N_BANK_STATE", "N_CHAN_STATE", "N_COUNTERS", "N_GROUP_STATE", "N_PARAMS",
    "init_state", "schedule",
]

# Parameter vector indices.
P_NB, P_BPG, P_NBL, P_CL, P_CWL, P_RCD, P_RCDW, P_RP, P_RAS, P_RC = range(10)
P_CCDS, P_CCDL, P_RRDS, P_RRDL, P_FAW, P_WTRS, P_WTRL, P_RTP, P_WR = range(10, 19)
P_REFI, P_RFC, P_RFCPB, P_RTW, P_DEPTH, P_CLOSED, P_REFMODE, P_NBG = range(19, 27)
N_PARAMS = 27
# Bank state.
B_ROW, B_NACT, B_NPRE, B_NRD, B_NWR = range(5)
N_BANK_STATE = 5
# Bank-group state.
G_NACT, G_NRD, G_NWR = range(3)
N_GROUP_STATE = 3
# Channel state.
C_ROWLAST, C_COLLAST, C_NACT, C_NRD, C_NWR, C_REFDUE, C_REFPTR, C_MODE, C_FAWI, C_NOW = range(10)
N_CHAN_STATE = 10
# Counters.
N_ACT, N_RD, N_WR, N_REF, N_REFPB, N_HIT, N_MISS, N_PRE = range(8)
N_COUNTERS = 8
# Command codes in the trace.
ACT, PRE, PREA, RD, WR, RDA, WRA, REF, REFPB = range(9)
CMD_NAMES = ("ACT", "PRE", "PREA", "RD", "WR", "RDA", "WRA", "REF", "REFPB")
NEVER = -(1 << 40)


def init_state(channels: int, params: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fresh state arrays (banks closed, nothing pending) for ``channels`` channels."""
    nb, nbg = int(params[P_NB]), int(params[P_NBG])
    bs = np.zeros((channels, nb, N_BANK_STATE), dtype=np.int64)
    bs[:, :, B_ROW] = -1
    gs = np.zeros((channels, nbg, N_GROUP_STATE), dtype=np.int64)
    cs = np.zeros((channels, N_CHAN_STATE), dtype=np.int64)
    cs[:, C_ROWLAST] = -1
    cs[:, C_COLLAST] = -1
    refi = int(params[P_REFI])
    if params[P_REFMODE] == 2:
        refi = max(refi // nb, 1)
    cs[:, C_REFDUE] = refi
    faw = np.full((channels, 4), NEVER, dtype=np.int64)
    cnt = np.zeros((channels, N_COUNTERS), dtype=np.int64)
    return bs, gs, cs, faw, cnt


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
def _plan(c, b, row, is_wr, t0, p, bs, gs, cs, faw):  # type: ignore[no-untyped-def]
    """Earliest (t_pre, t_act, t_col) for one request; -1 for a command it does not need."""
    g = b // p[P_BPG]
    if is_wr:
        col_lo = max(bs[c, b, B_NWR], gs[c, g, G_NWR], cs[c, C_NWR])
    else:
        col_lo = max(bs[c, b, B_NRD], gs[c, g, G_NRD], cs[c, C_NRD])
    col_lo = max(col_lo, cs[c, C_COLLAST] + 1, t0)
    if bs[c, b, B_ROW] == row:
        return -1, -1, col_lo
    t_pre = -1
    t_act = max(t0, bs[c, b, B_NACT], cs[c, C_NACT], gs[c, g, G_NACT],
                faw[c, cs[c, C_FAWI]] + p[P_FAW], cs[c, C_ROWLAST] + 1)
    if bs[c, b, B_ROW] >= 0:
        t_pre = max(t0, bs[c, b, B_NPRE])
        t_act = max(t_act, t_pre + p[P_RP])
    rcd = p[P_RCDW] if is_wr else p[P_RCD]
    t_col = max(col_lo, t_act + rcd)
    return t_pre, t_act, t_col


@njit
def _refresh(c, p, bs, cs, cnt, tr, trn):  # type: ignore[no-untyped-def]
    """Issue the refresh that is due on channel ``c``."""
    nb = p[P_NB]
    t = max(cs[c, C_REFDUE], cs[c, C_ROWLAST] + 1)
    if p[P_REFMODE] == 1:
        tp = t
        n_open = 0
        for b in range(nb):
            if bs[c, b, B_ROW] >= 0:
                n_open += 1
                tp = max(tp, bs[c, b, B_NPRE])
        if n_open > 0:
            _record(tr, trn, tp, c, -1, -1, PREA)
            for b in range(nb):
                if bs[c, b, B_ROW] >= 0:
                    bs[c, b, B_ROW] = -1
                    bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
            cs[c, C_ROWLAST] = tp
            cnt[c, N_PRE] += n_open
            t = tp + 1
        for b in range(nb):
            t = max(t, bs[c, b, B_NACT])
        _record(tr, trn, t, c, -1, -1, REF)
        cs[c, C_ROWLAST] = t
        for b in range(nb):
            bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RFC])
        cs[c, C_REFDUE] += p[P_REFI]
        cnt[c, N_REF] += 1
    else:
        b = cs[c, C_REFPTR]
        if bs[c, b, B_ROW] >= 0:
            tp = max(t, bs[c, b, B_NPRE])
            _record(tr, trn, tp, c, b, bs[c, b, B_ROW], PRE)
            bs[c, b, B_ROW] = -1
            bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
            cs[c, C_ROWLAST] = tp
            cnt[c, N_PRE] += 1
            t = tp + 1
        t = max(t, bs[c, b, B_NACT])
        _record(tr, trn, t, c, b, -1, REFPB)
        cs[c, C_ROWLAST] = t
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t + p[P_RFCPB])
        cs[c, C_REFPTR] = (b + 1) % nb
        cs[c, C_REFDUE] += max(p[P_REFI] // nb, 1)
        cnt[c, N_REFPB] += 1


@njit
def _commit(c, b, row, is_wr, t_pre, t_act, t_col, p, bs, gs, cs, faw, cnt, tr, trn):  # type: ignore[no-untyped-def]
    g = b // p[P_BPG]
    if t_pre >= 0:
        _record(tr, trn, t_pre, c, b, bs[c, b, B_ROW], PRE)
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t_pre + p[P_RP])
        cnt[c, N_PRE] += 1
    if t_act >= 0:
        _record(tr, trn, t_act, c, b, row, ACT)
        bs[c, b, B_ROW] = row
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], t_act + p[P_RAS])
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], t_act + p[P_RC])
        bs[c, b, B_NRD] = max(bs[c, b, B_NRD], t_act + p[P_RCD])
        bs[c, b, B_NWR] = max(bs[c, b, B_NWR], t_act + p[P_RCDW])
        cs[c, C_NACT] = max(cs[c, C_NACT], t_act + p[P_RRDS])
        gs[c, g, G_NACT] = max(gs[c, g, G_NACT], t_act + p[P_RRDL])
        i = cs[c, C_FAWI]
        faw[c, i] = t_act
        cs[c, C_FAWI] = (i + 1) % 4
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
        cs[c, C_NWR] = max(cs[c, C_NWR], t_col + ccd_s)
        gs[c, g, G_NWR] = max(gs[c, g, G_NWR], t_col + ccd_l)
        cs[c, C_NRD] = max(cs[c, C_NRD], done + p[P_WTRS])
        gs[c, g, G_NRD] = max(gs[c, g, G_NRD], done + p[P_WTRL])
        cnt[c, N_WR] += 1
    else:
        _record(tr, trn, t_col, c, b, row, RDA if closed else RD)
        done = t_col + p[P_CL] + nbl
        bs[c, b, B_NPRE] = max(bs[c, b, B_NPRE], t_col + p[P_RTP])
        cs[c, C_NRD] = max(cs[c, C_NRD], t_col + ccd_s)
        gs[c, g, G_NRD] = max(gs[c, g, G_NRD], t_col + ccd_l)
        cs[c, C_NWR] = max(cs[c, C_NWR], t_col + p[P_RTW])
        cnt[c, N_RD] += 1
    cs[c, C_COLLAST] = t_col
    if closed:
        tp = bs[c, b, B_NPRE]
        bs[c, b, B_ROW] = -1
        bs[c, b, B_NACT] = max(bs[c, b, B_NACT], tp + p[P_RP])
        cnt[c, N_PRE] += 1
    return done


@njit
def _channel(c, seq, arr, is_wr, bank, row, p, bs, gs, cs, faw, cnt, done, enq, hit, tr, trn):  # type: ignore[no-untyped-def]
    n = seq.shape[0]
    depth = p[P_DEPTH]
    whigh = max((3 * depth) // 4, 1)
    wlow = depth // 4
    rq = np.empty(n, dtype=np.int64)  # read queue: request ids in acceptance order
    wq = np.empty(n, dtype=np.int64)
    rserved = np.zeros(n, dtype=np.uint8)
    wserved = np.zeros(n, dtype=np.uint8)
    nr = 0
    nw = 0
    rhead = 0
    whead = 0
    occ_r = 0
    occ_w = 0
    acc = 0
    served = 0
    now = max(cs[c, C_NOW], cs[c, C_COLLAST])
    big = 1 << 62
    while served < n:
        now = max(now, cs[c, C_COLLAST])
        if occ_r == 0 and occ_w == 0 and acc < n:
            now = max(now, arr[seq[acc]])
        while acc < n:  # in-order acceptance into queues of ``depth`` entries
            q = seq[acc]
            if arr[q] > now:
                break
            if is_wr[q]:
                if occ_w >= depth:
                    break
                wq[nw] = q
                nw += 1
                occ_w += 1
            else:
                if occ_r >= depth:
                    break
                rq[nr] = q
                nr += 1
                occ_r += 1
            enq[q] = max(arr[q], now)
            acc += 1
        mode = cs[c, C_MODE]
        if mode == 0:
            if occ_w >= whigh or (occ_r == 0 and occ_w > 0):
                mode = 1
        elif occ_w == 0 or (occ_w <= wlow and occ_r > 0):
            mode = 0
        cs[c, C_MODE] = mode
        use_w = mode == 1
        if use_w:
            lst = wq
            sv = wserved
            head = whead
            end = nw
            lower = max(cs[c, C_COLLAST] + 1, cs[c, C_NWR])
        else:
            lst = rq
            sv = rserved
            head = rhead
            end = nr
            lower = max(cs[c, C_COLLAST] + 1, cs[c, C_NRD])
        best = -1
        bt_pre = -1
        bt_act = -1
        bt_col = big
        for i in range(head, end):
            if sv[i]:
                continue
            q = lst[i]
            tp, ta, tc = _plan(c, bank[q], row[q], use_w, enq[q], p, bs, gs, cs, faw)
            if tc < bt_col:
                best = i
                bt_pre = tp
                bt_act = ta
                bt_col = tc
                if tc <= lower:
                    break
        q = lst[best]
        if p[P_REFMODE] != 0:
            first = bt_col
            if bt_act >= 0:
                first = bt_act
            if bt_pre >= 0:
                first = bt_pre
            if cs[c, C_REFDUE] <= first:
                _refresh(c, p, bs, cs, cnt, tr, trn)
                continue
        hit[q] = 1 if bt_act < 0 else 0
        done[q] = _commit(c, bank[q], row[q], use_w, bt_pre, bt_act, bt_col, p, bs, gs, cs, faw,
                          cnt, tr, trn)
        sv[best] = 1
        served += 1
        if use_w:
            occ_w -= 1
            while whead < nw and wserved[whead]:
                whead += 1
        else:
            occ_r -= 1
            while rhead < nr and rserved[rhead]:
                rhead += 1
    cs[c, C_NOW] = now


@njit
def schedule(order, chan_start, arr, is_wr, bank, row, p, bs, gs, cs, faw, cnt, done, enq, hit,
             tr, trn):  # type: ignore[no-untyped-def]
    """Schedule a batch; ``order[chan_start[c]:chan_start[c+1]]`` are channel c's requests in
    arrival order. Fills ``done`` (cycle the last data beat moves), ``enq`` and ``hit`` per
    request, updates the state arrays and counters in place, and appends commands to ``tr``
    (rows: cycle, channel, bank, row, command) while it has room (``trn[0]`` rows used,
    ``trn[1]`` set on overflow)."""
    for c in range(chan_start.shape[0] - 1):
        lo = chan_start[c]
        hi = chan_start[c + 1]
        if hi > lo:
            _channel(c, order[lo:hi], arr, is_wr, bank, row, p, bs, gs, cs, faw, cnt, done,
                     enq, hit, tr, trn)
