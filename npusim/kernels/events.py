"""The tile event model compiled: every core's tiles against the bandwidth memory model.

This is :func:`npusim.engine.events.run_program`'s SimPy model, event for event, for the
memory models simple enough to live in arrays (:class:`~npusim.engine.memory.BandwidthDram`
without records, :class:`~npusim.engine.memory.IdealMemory`). Each core is the same state
machine as its SimPy process: it runs until it would ``yield env.timeout(d)``, then waits
as a pending event ``(now + d, id)``; the pending event with the smallest time, then the
smallest id (SimPy's schedule order), runs next. Times are computed with the same
floating-point operations in the same order, so the results are identical, not close; the
SimPy model (the plain-Python twin) and this kernel are compared by tests on random tile
programs and on every preset.

A tile's NoC bytes arrive beside its DRAM load: the load ends at ``max(DRAM done, start +
NoC bytes / NoC rate) + NoC latency``, and the part of a wait after the DRAM part arrived is
counted as NoC time.

Memory state is passed in and updated in place: ``mem_state = [floor, read bytes, write
bytes]`` and ``busy`` (one time per channel; 0.0 where the Python model keeps no entry).
"""

from __future__ import annotations

import numpy as np

from npusim.kernels._jit import njit

__all__ = [
    "MEM_BANDWIDTH",
    "MEM_IDEAL",
    "STAT_FIELDS",
    "WORK",
    "WORK_COLUMNS",
    "bandwidth_transfer",
    "run_tiles",
]

MEM_IDEAL = 0
MEM_BANDWIDTH = 1

#: The per-core, per-layer figures ``run_tiles`` returns, in this order (CoreStats fields).
STAT_FIELDS: tuple[str, ...] = (
    "busy_s", "array_s", "vector_s", "mac_s", "fill_drain_s", "sram_stall_s",
    "vector_extra_s", "dma_wait_s", "store_wait_s", "end_s", "noc_wait_s",
)

#: Columns of the per-tile ``work`` array ``run_tiles`` takes (npusim.engine.events makes it
#: from the tile program with the SimPy model's own arithmetic).
WORK_COLUMNS: tuple[str, ...] = (
    "array_s", "vector_s", "busy_s", "compute_s", "mac_s", "read_bytes", "read_addr",
    "write_bytes", "write_addr", "noc_bytes",
)
WORK = {name: i for i, name in enumerate(WORK_COLUMNS)}
_A, _V, _BUSY, _COMP, _IDEAL, _RD, _RA, _WR, _WA, _NOC = range(10)
#: ``params`` of ``run_tiles``: memory kind, channel and peak bandwidth (B/s), idle latency
#: (s), interleave (B), DMA engine rate (B/s, 0: unlimited), NoC rate per core (B/s) and
#: NoC latency (s).
_KIND, _CH_BW, _PEAK_BW, _LAT, _IL, _DMA, _NOC_BW, _NOC_LAT = range(8)

# Where a core resumes: the points its SimPy process yields at.
_START, _TOP, _AFTER_LOAD, _AFTER_STORE, _AFTER_COMPUTE, _FINAL, _DONE = range(7)


@njit
def bandwidth_transfer(t: float, nbytes: int, addr: int, write: bool, mem_state: np.ndarray,
                       busy: np.ndarray, channel_bw: float, peak_bw: float, latency: float,
                       interleave: int) -> float:
    """BandwidthDram.transfer over array state (see npusim.engine.memory)."""
    if nbytes <= 0:
        return t
    if write:
        mem_state[2] += nbytes
    else:
        mem_state[1] += nbytes
    channels = len(busy)
    floor = mem_state[0]
    if nbytes >= interleave * channels:
        start = t
        if floor > start:
            start = floor
        for c in range(channels):
            if busy[c] > start:
                start = busy[c]
            busy[c] = 0.0
        mem_state[0] = start + nbytes / peak_bw
        return mem_state[0] + latency
    chunks = nbytes // interleave
    rest = nbytes - chunks * interleave
    base = chunks // channels
    extra = chunks - base * channels
    first = (addr // interleave) % channels
    end = t
    for c in range(channels):
        i = (c - first) % channels
        share = float((base + (1 if i < extra else 0)) * interleave)
        if i == extra:
            share += rest
        if share <= 0.0:
            continue
        b = busy[c] if busy[c] > floor else floor
        start = b if b > t else t
        done = start + share / channel_bw
        busy[c] = done
        if done > end:
            end = done
    return end + latency


@njit
def _transfer(t: float, nbytes: int, addr: int, write: bool, params: np.ndarray,
              mem_state: np.ndarray, busy: np.ndarray) -> float:
    if params[_KIND] == MEM_IDEAL:
        if write:
            mem_state[2] += nbytes
        else:
            mem_state[1] += nbytes
        done = t
    else:
        done = bandwidth_transfer(t, nbytes, addr, write, mem_state, busy, params[_CH_BW],
                                  params[_PEAK_BW], params[_LAT], np.int64(params[_IL]))
    if params[_DMA] != 0.0:
        capped = t + nbytes / params[_DMA]
        if capped > done:
            done = capped
    return done


@njit
def _advance(i0: int, n: int, now: float, work: np.ndarray, core: np.ndarray, s: np.ndarray,
             params: np.ndarray, mem_state: np.ndarray, busy: np.ndarray) -> float:
    """Run one core from where it waits, at ``now``, to its next wait; return when that
    wait ends, or -1.0 when the core is done. ``core`` = [resume point, tile, load done,
    store done (buffer 0), store done (buffer 1), DRAM part of the load done]; ``s`` its
    STAT_FIELDS; its tiles are ``work[i0:i0 + n]``."""
    while True:
        st = core[0]
        i = np.int64(core[1])
        row = -1  # a DMA request: the work row, and the core field its end time goes to
        field = 2
        if st == _START:
            if n == 0:
                s[9] = now
                return -1.0
            core[1] = 0.0
            core[2] = core[3] = core[4] = now
            row = i0
            core[0] = _TOP
        elif st == _TOP:
            if i >= n:
                core[0] = _FINAL
                continue
            core[0] = _AFTER_LOAD
            if core[2] > now:
                d = core[2] - now
                arrived = core[5] if core[5] > now else now
                noc_part = core[2] - arrived
                s[10] += noc_part
                s[7] += d - noc_part
                return now + d
        elif st == _AFTER_LOAD:
            core[0] = _AFTER_STORE
            sd = core[3 + i % 2]
            if sd > now:
                d = sd - now
                s[8] += d
                return now + d
        elif st == _AFTER_STORE:
            core[0] = _AFTER_COMPUTE
            if i + 1 < n:
                core[2] = now
                row = i0 + i + 1
        elif st == _AFTER_COMPUTE:
            a = work[i0 + i, _A]
            v = work[i0 + i, _V]
            b = work[i0 + i, _BUSY]
            s[0] += b
            s[1] += a
            s[2] += v
            if a > 0:
                ideal = work[i0 + i, _IDEAL]
                comp = work[i0 + i, _COMP]
                s[3] += ideal
                s[4] += comp - ideal
                s[5] += a - comp
            s[6] += b - a
            core[1] = i + 1
            core[0] = _TOP
            row = i0 + i
            field = 3 + i % 2
        elif st == _FINAL:
            core[0] = _DONE
            last = core[3] if core[3] > core[4] else core[4]
            if last > now:
                d = last - now
                s[8] += d
                return now + d
        else:  # _DONE
            s[9] = now
            return -1.0
        if row >= 0:
            write = field > 2
            nbytes = np.int64(work[row, _WR if write else _RD])
            if nbytes > 0:
                core[field] = _transfer(now, nbytes, np.int64(work[row, _WA if write else _RA]),
                                        write, params, mem_state, busy)
            if not write:
                core[5] = core[2]
                noc = work[row, _NOC]
                if noc > 0:
                    stream = now + noc / params[_NOC_BW]
                    done = core[2] if core[2] > stream else stream
                    core[2] = done + params[_NOC_LAT]
        if st == _AFTER_STORE:  # the tile computes once its successor's load is issued
            b = work[i0 + i, _BUSY]
            if b > 0:
                return now + b


@njit
def run_tiles(work: np.ndarray, offsets: np.ndarray, counts: np.ndarray, params: np.ndarray,
              mem_state: np.ndarray, busy: np.ndarray, times: np.ndarray, stats: np.ndarray,
              traffic: np.ndarray, scratch: np.ndarray) -> None:
    """Run every layer from time 0; ``offsets``/``counts`` (layers x cores) locate each
    core's rows of ``work`` (WORK_COLUMNS).

    Fills ``times`` (layers x 2: start, end), ``stats`` (layers x cores x STAT_FIELDS, zeros
    on entry) and ``traffic`` (layers x 4: cumulative read and write bytes at each layer's
    start and end). ``scratch`` is (cores x 8) working space. The caller allocates the
    arrays: numba's own allocation code would add seconds to a cold start.
    """
    n_layers, n_cores = offsets.shape
    cores = scratch[:, :6]
    wake = scratch[:, 6]  # when each core's pending wait ends (-1: it has ended)
    ids = scratch[:, 7]  # the order waits were scheduled in (SimPy's event id)
    next_id = 0.0
    now = 0.0
    for layer in range(n_layers):
        times[layer, 0] = now
        traffic[layer, 0] = mem_state[1]
        traffic[layer, 1] = mem_state[2]
        # Processes start in core order, each running until its first wait; then the
        # earliest pending wait (ties: the one scheduled first) runs, until none is left.
        live = n_cores
        started = 0
        while live > 0:
            if started < n_cores:
                c = started
                started += 1
                cores[c, 0] = _START
            else:
                c = -1
                for j in range(n_cores):
                    if wake[j] < 0.0:
                        continue
                    if c < 0 or wake[j] < wake[c] or (wake[j] == wake[c] and ids[j] < ids[c]):
                        c = j
                now = wake[c]
            t = _advance(offsets[layer, c], counts[layer, c], now, work, cores[c],
                         stats[layer, c], params, mem_state, busy)
            wake[c] = t
            if t >= 0.0:
                ids[c] = next_id
                next_id += 1.0
            else:
                live -= 1
        # A layer ends when its last core does: the time of the last wait that ended.
        times[layer, 1] = now
        traffic[layer, 2] = mem_state[1]
        traffic[layer, 3] = mem_state[2]
