"""A clock-by-clock replay of the reference controller's command arbitration.

DRAMSim3 (commit 29817593, ``src/controller.cc`` and ``src/command_queue.cc``) arbitrates
every clock: it scans its per-bank command queues round robin from the queue after the one
its pointer is at, issues the first command any queue has ready *at that clock* (a queue
offers its first request whose next command - PRE, ACT or RD - meets every timing; a PRE
only for the queue's head, and not while a later request hits the open row and the row has
served fewer than 4 hits), and leaves the pointer at that queue. On HBM it then scans again
from there for a second command and issues it only if one is a column command and the other
a row command; the second scan moves the pointer even when it issues nothing. A due refresh
blocks every queue of its rank until its PREs and REF have issued. After the commands, one
request a clock moves from the transaction queue into its bank's command queue (the first
whose bank queue has room).

npusim's kernel (npusim/kernels/dram.py) implements the same rule event by event; this
replay, written apart from it and stepping every clock, is the independent check on the
case where the order of commands sets the loaded latency (HBM2 random reads; see
tests/test_dram_reference.py). It replays the rule with the front end of
tests/dram_reference.py (a 512-entry window, 16 requests per clock, order kept per
channel), for read-only traces on a one-rank configuration, and can take parts of the rule
out to show which part sets that latency. ``pointer`` chooses what moves the round-robin pointer: ``"command"`` (the
reference: every scan that finds a command), ``"act"`` (only an ACT: what an earlier
npusim's per-request rotation amounted to, its requests committed in ACT order) or ``"read"``
(only a RD: rotation once per request, at its column command). ``pre_on_bus=False``
takes the PREs out of the arbitration (as an earlier npusim placed them): each issues the
clock its bank allows, without a command slot and without moving the pointer. Plain
Python, about a minute for the 16 MiB trace.
"""

from __future__ import annotations

import numpy as np

from tests import dram_reference as R


def run(config: str = "HBM2_8Gb_x128", pattern: str = "rand_read", *,
        pointer: str = "command", dual: bool = True, pre_on_bus: bool = True,
        fraction: float = 1.0) -> dict[str, float]:
    """Mean and median read latency (ns) and GB/s of ``pattern`` under the replay."""
    c = R.CONFIGS[config]
    if c["ranks"] != 1:
        raise ValueError("the sketch models one rank per channel")
    sysm = R.system(config)
    addr, write = R.pattern(pattern, sysm)
    if write.any():
        raise ValueError("the sketch models reads only")
    n = int(addr.shape[0] * fraction)
    chan, bank, row = (a[:n].tolist() for a in sysm.mapping.decode(addr[:n]))
    nch, nb, bpg = c["channels"], c["bankgroups"] * c["banks_per_group"], c["banks_per_group"]
    cl, nbl, rcd, rp, ras, rc = c["cl"], c["burst_cycles"], c["rcd"], c["rp"], c["ras"], c["rc"]
    rrd_s, rrd_l, faw, rtp, rfc, refi = (c["rrd_s"], c["rrd_l"], c["faw"], c["rtp"], c["rfc"],
                                         c["refi"])
    r2r_l, r2r_s = max(nbl, c["ccd_l"]), max(nbl, c["ccd_s"])
    depth, bank_queue, window, handover = c["trans_queue"], c["cmd_queue"], 512, 16

    class Channel:
        def __init__(self) -> None:
            self.open = [-1] * nb
            self.hits = [0] * nb
            self.next_act = [0] * nb
            self.next_pre = [0] * nb
            self.next_rd = [0] * nb
            self.faw: list[int] = []
            self.tq: list[int] = []
            self.cq: list[list[int]] = [[] for _ in range(nb)]
            self.ptr = 0
            self.refreshing = False
            self.returns: list[tuple[int, int]] = []

    chans = [Channel() for _ in range(nch)]
    added = [0] * n
    lat = [0] * n
    pending: list[list[int]] = [[] for _ in range(nch)]
    for i in range(n):
        pending[chan[i]].append(i)
    head = [0] * nch
    accepted = returned = clk = 0

    def ready(ch: Channel, b: int, in_scan: bool = True) -> tuple[str, int] | None:
        for pos, r in enumerate(ch.cq[b]):
            if ch.open[b] < 0:
                if clk >= ch.next_act[b] and (len(ch.faw) < 4 or clk >= ch.faw[0]):
                    return "ACT", r
            elif ch.open[b] == row[r]:
                if clk >= ch.next_rd[b]:
                    return "RD", r
            elif pos == 0 and clk >= ch.next_pre[b] and (pre_on_bus or not in_scan):
                hit_waits = any(row[x] == ch.open[b] for x in ch.cq[b])
                if not hit_waits or ch.hits[b] >= 4:
                    return "PRE", r
        return None

    def scan(ch: Channel) -> tuple[tuple[str, int] | None, int]:
        start = ch.ptr
        for _ in range(nb):
            ch.ptr = (ch.ptr + 1) % nb
            cmd = None if ch.refreshing else ready(ch, ch.ptr)
            if cmd is not None:
                b = ch.ptr
                if pointer != "command" and cmd[0] != {"act": "ACT", "read": "RD"}[pointer]:
                    ch.ptr = start
                return cmd, b
        ch.ptr = start
        return None, -1

    def issue(ch: Channel, cmd: tuple[str, int], b: int) -> None:
        kind, r = cmd
        g = b // bpg
        if kind == "ACT":
            ch.open[b], ch.hits[b] = row[r], 0
            ch.next_pre[b] = max(ch.next_pre[b], clk + ras)
            ch.next_rd[b] = max(ch.next_rd[b], clk + rcd)
            for k in range(nb):
                gap = rc if k == b else rrd_l if k // bpg == g else rrd_s
                ch.next_act[k] = max(ch.next_act[k], clk + gap)
            if ch.faw and clk >= ch.faw[0]:
                ch.faw.pop(0)
            ch.faw.append(clk + faw)
        elif kind == "PRE":
            ch.open[b], ch.hits[b] = -1, 0
            ch.next_act[b] = max(ch.next_act[b], clk + rp)
        else:
            ch.hits[b] += 1
            ch.cq[b].remove(r)
            ch.next_pre[b] = max(ch.next_pre[b], clk + rtp)
            for k in range(nb):
                ch.next_rd[k] = max(ch.next_rd[k], clk + (r2r_l if k // bpg == g else r2r_s))
            ch.returns.append((clk + cl + nbl, r))

    while returned < n:
        for _ in range(handover):  # the front end: lowest trace position first
            best = -1
            for k in range(nch):
                if head[k] < len(pending[k]) and len(chans[k].tq) < depth:
                    i = pending[k][head[k]]
                    if i < accepted + window and (best < 0 or i < pending[best][head[best]]):
                        best = k
            if best < 0:
                break
            i = pending[best][head[best]]
            head[best] += 1
            chans[best].tq.append(i)
            added[i] = clk
            accepted += 1
        for ch in chans:
            keep = []
            for t, r in ch.returns:
                if clk >= t:
                    lat[r] = clk - added[r]
                    returned += 1
                else:
                    keep.append((t, r))
            ch.returns = keep
            if clk > 0 and clk % refi == 0:
                ch.refreshing = True
            done_ref = False
            if ch.refreshing:
                done_ref = True
                opened = [b for b in range(nb) if ch.open[b] >= 0]
                if opened:
                    ready_pre = [b for b in opened if clk >= ch.next_pre[b]]
                    if ready_pre:
                        b = ready_pre[0]
                        ch.open[b] = -1
                        ch.next_act[b] = max(ch.next_act[b], clk + rp)
                elif all(clk >= t for t in ch.next_act):
                    ch.next_act = [max(t, clk + rfc) for t in ch.next_act]
                    ch.refreshing = False
            if not done_ref and not pre_on_bus:  # PREs off the bus: every ready one, now
                for b in range(nb):
                    pre = ready(ch, b, in_scan=False) if ch.open[b] >= 0 else None
                    if pre is not None and pre[0] == "PRE":
                        issue(ch, pre, b)
            if not done_ref:
                cmd, b = scan(ch)
                if cmd is not None:
                    issue(ch, cmd, b)
                    if dual:
                        cmd2, b2 = scan(ch)
                        if cmd2 is not None and (cmd2[0] == "RD") != (cmd[0] == "RD"):
                            issue(ch, cmd2, b2)
            for j, r in enumerate(ch.tq):
                if len(ch.cq[bank[r]]) < bank_queue:
                    ch.cq[bank[r]].append(r)
                    ch.tq.pop(j)
                    break
        clk += 1
    arr = np.asarray(lat, dtype=np.float64) * c["tck"]
    req = sysm.std.burst_bytes
    return {"gbps": n * req / (clk * c["tck"]), "avg_ns": float(arr.mean()),
            "p50_ns": float(np.median(arr))}


if __name__ == "__main__":
    for ptr in ("command", "act", "read"):
        print(ptr, run(pointer=ptr))
    print("PREs off the bus", run(pre_on_bus=False))
