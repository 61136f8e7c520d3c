"""Two cycle-accurate reference configurations and their patterns, rebuilt for npusim.

The reference is DRAMSim3 (University of Maryland; commit 29817593) on its stock configs
``HBM2_8Gb_x128.ini`` and ``LPDDR4_8Gb_x16_2400.ini``, driven with one burst per request, a
512-entry lookahead window handing up to 16 requests per clock, 32-entry transaction
queues feeding 8-entry per-bank command queues, and FR-FCFS open page. ``REFERENCE`` holds
the figures it measured (an external measurement: the test's expected values); nothing in
the configurations below is fitted to them. Every parameter is the config's own or a stated
JEDEC / DRAMSim3 rule:

- organisation, timings in clocks, IDD currents: the config (``CONFIGS``);
- tRTRS: the config's (LPDDR4: 1 clock), DRAMSim3's default (2) where it gives none (HBM2);
- queues: the config's ``trans_queue_size`` (32) and ``cmd_queue_size`` (8 per bank);
- transfers per clock = BL / burst cycles; request = bus width x BL / 8 bytes;
- the address mapping string (most significant first; ``co`` = one request-sized column
  slot) becomes our field order with the column slots as one interleave chunk under every
  other field: a chunk is one row of one bank (HBM2: 32 slots x 64 B = 2 KiB, LPDDR4:
  64 x 128 B = 8 KiB), hence ``row_bytes`` = ``interleave`` = that chunk;
- write drain: DRAMSim3 drains when the write queue is full, down to empty;
- refresh: DRAMSim3's default, all-bank per rank, the ranks staggered;
- energy (core only, no I/O): ACT = VDD (IDD0 tRC - IDD3N tRAS - IDD2N tRP), burst =
  VDD (IDD4R/W - IDD3N) x burst cycles, REF = VDD (IDD5AB - IDD3N) tRFC, each x devices per
  rank; background VDD IDD3N per rank while a bank is open, VDD IDD2N otherwise.
"""

from __future__ import annotations

import numpy as np

from npusim.dram.system import DramSystem
from npusim.spec.dram_catalog import DramEnergy, DramStandard, DramTiming

MiB = 1 << 20

CONFIGS: dict[str, dict] = {
    "HBM2_8Gb_x128": dict(
        channels=8, ranks=1, width=128, devices=1, bl=4, burst_cycles=2, bankgroups=4,
        banks_per_group=4, rows=32768, tck=1.0, cl=14, cwl=4, rcd=14, rcdw=14, rp=14, ras=34,
        rc=48, ccd_s=1, ccd_l=2, rrd_s=4, rrd_l=6, faw=30, wr=16, wtr_s=6, wtr_l=8, rtp=4,
        rfc=260, refi=3900, rtrs=2, trans_queue=32, cmd_queue=8, mapping="rorabgbachco",
        columns_per_row=32, vdd=1.2, idd0=65.0, idd2n=40.0, idd3n=55.0, idd4r=390.0,
        idd4w=500.0, idd5ab=250.0),
    "LPDDR4_8Gb_x16_2400": dict(
        channels=1, ranks=2, width=64, devices=4, bl=16, burst_cycles=8, bankgroups=2,
        banks_per_group=4, rows=65536, tck=0.83, cl=17, cwl=14, rcd=15, rcdw=15, rp=15,
        ras=32, rc=47, ccd_s=4, ccd_l=6, rrd_s=8, rrd_l=8, faw=32, wr=30, wtr_s=8, wtr_l=16,
        rtp=9, rfc=392, refi=8660, rtrs=1, trans_queue=32, cmd_queue=8, mapping="rochrababgco",
        columns_per_row=64, vdd=1.2, idd0=80.0, idd2n=34.0, idd3n=47.0, idd4r=243.0,
        idd4w=228.0, idd5ab=280.0),
}

# config -> pattern -> (GB/s, avg latency ns, p50 latency ns, row-hit rate, pJ/bit)
REFERENCE: dict[str, dict[str, tuple[float, float | None, float | None, float, float]]] = {
    "HBM2_8Gb_x128": {
        "seq_read": (235.437, 144.84, 141.0, 0.967, 1.965),
        "rand_read": (61.921, 662.09, 358.0, 0.0001, 4.486),
        "mix_2r1w": (211.611, 191.71, 198.0, 0.9662, 2.176),
        "mix_2r1w_aligned": (180.405, 200.75, 205.0, 0.9173, 2.319),
        "tile_read": (125.233, 328.73, 305.0, 0.8705, 2.379),
        "seq_write": (235.47, None, None, 0.9671, 2.48),
        "idle_seq": (3.228, 18.83, 17.0, 0.9641, 23.753),
        "idle_rand": (1.633, 38.2, 31.0, 0.0, 51.69),
    },
    "LPDDR4_8Gb_x16_2400": {
        "seq_read": (18.303, 362.04, 339.47, 0.9844, 9.942),
        "rand_read": (18.989, 797.28, 683.09, 0.0001, 16.556),
        "mix_2r1w": (18.232, 481.46, 385.95, 0.9805, 9.825),
        "mix_2r1w_aligned": (16.534, 487.62, 525.39, 0.8986, 10.666),
        "tile_read": (18.561, 891.6, 810.08, 0.8657, 10.717),
        "seq_write": (18.304, None, None, 0.9826, 9.476),
        "idle_seq": (5.386, 22.94, 21.58, 0.981, 17.91),
        "idle_rand": (2.578, 48.83, 46.48, 0.0002, 39.346),
    },
}
PATTERNS = tuple(REFERENCE["HBM2_8Gb_x128"])
_FIELDS = {"ro": "row", "ra": "rank", "bg": "bankgroup", "ba": "bank", "ch": "channel",
           "co": "column"}


def mapping_order(s: str) -> str:
    """``rorabgbachco`` -> ``row:rank:bankgroup:bank:channel:column``."""
    return ":".join(_FIELDS[s[i:i + 2]] for i in range(0, len(s), 2))


def standard(name: str) -> DramStandard:
    c = CONFIGS[name]
    req = c["width"] * c["bl"] // 8
    row_bytes = c["columns_per_row"] * req
    banks = c["bankgroups"] * c["banks_per_group"]
    nbl = c["burst_cycles"]
    tpc = c["bl"] // nbl
    tim = DramTiming(tck_ns=c["tck"], nbl=nbl, cl=c["cl"], cwl=c["cwl"], rcd=c["rcd"],
                     rcdw=c["rcdw"], rp=c["rp"], ras=c["ras"], rc=c["rc"], ccd_s=c["ccd_s"],
                     ccd_l=c["ccd_l"], rrd_s=c["rrd_s"], rrd_l=c["rrd_l"], faw=c["faw"],
                     wtr_s=c["wtr_s"], wtr_l=c["wtr_l"], rtp=c["rtp"], wr=c["wr"],
                     refi=c["refi"], rfc=c["rfc"], rfcpb=0, rtrs=c["rtrs"])
    v, dev = c["vdd"], c["devices"]
    tck = c["tck"]
    # IDD in mA x V = mW; x ns = pJ.
    act = v * (c["idd0"] * c["rc"] - c["idd3n"] * c["ras"] - c["idd2n"] * c["rp"]) * tck * dev
    burst_bits = req * 8
    rd = v * (c["idd4r"] - c["idd3n"]) * nbl * tck * dev / burst_bits
    wrb = v * (c["idd4w"] - c["idd3n"]) * nbl * tck * dev / burst_bits
    ref = v * (c["idd5ab"] - c["idd3n"]) * c["rfc"] * tck * dev
    bg = v * c["idd3n"] * dev * c["ranks"]
    pre = v * c["idd2n"] * dev * c["ranks"]
    energy = DramEnergy(act_pre_nj=act / 1e3, read_pj_per_bit=rd, write_pj_per_bit=wrb,
                        refresh_nj=ref / 1e3, background_mw=bg, io_pj_per_bit=0.0,
                        precharged_mw=pre)
    cap = c["ranks"] * banks * c["rows"] * row_bytes
    return DramStandard(name, name, tpc * 1e3 / tck, c["width"], c["channels"], 0.0, 0.0, cap,
                        ("DRAMsim3 configs/" + name + ".ini",), transfers_per_clock=tpc,
                        burst_length=c["bl"], ranks=c["ranks"], bank_groups=c["bankgroups"],
                        banks_per_group=c["banks_per_group"], row_bytes=row_bytes, timing=tim,
                        energy=energy)


def system(name: str) -> DramSystem:
    std = standard(name)
    c = CONFIGS[name]
    return DramSystem(std, c["channels"], mapping=mapping_order(c["mapping"]),
                      interleave_bytes=std.row_bytes, queue_depth=c["trans_queue"], window=512,
                      handover=16, bank_queue=c["cmd_queue"], fast_path=False)


def _field_lsb(sysm: DramSystem, field: str) -> int:
    """Byte-address bit where ``field`` starts under the system's mapping."""
    m = sysm.mapping
    bit = int(np.log2(m.burst_bytes * m.chunk_bursts))
    for f in reversed(m.order):
        if f == field:
            return bit
        bit += int(np.log2(m.sizes[f]))
    raise KeyError(field)


def pattern(name: str, sysm: DramSystem, total: int = 16 * MiB
            ) -> tuple[np.ndarray, np.ndarray]:
    """(byte address, write) of a throughput pattern, in trace order (docstring of REFERENCE's
    source: tests/dram_reference.py's module docstring and the table in docs/validation.md)."""
    req = sysm.std.burst_bytes
    n = total // req
    i = np.arange(n, dtype=np.int64)
    if name in ("seq_read", "seq_write"):
        return i * req, np.full(n, name == "seq_write")
    if name == "rand_read":
        cap = sysm.std.capacity_per_channel_bytes * sysm.channels
        rng = np.random.default_rng(1)
        return rng.integers(0, cap // req, n) * req, np.zeros(n, dtype=bool)
    if name.startswith("mix_2r1w"):
        u = 0 if name.endswith("aligned") else \
            (1 << _field_lsb(sysm, "bank")) + (1 << _field_lsb(sysm, "bankgroup"))
        k = np.arange(n // 3, dtype=np.int64) * req
        addr = np.stack([k, 256 * MiB + u + k, 512 * MiB + 2 * u + k], axis=1).ravel()
        write = np.tile(np.array([False, False, True]), n // 3)
        return addr, write
    if name == "tile_read":
        tr, tc, r, b = np.meshgrid(np.arange(8), np.arange(8), np.arange(512),
                                   np.arange(512 // req), indexing="ij")
        addr = ((tr * 512 + r) * 4096 + tc * 512 + b * req).ravel().astype(np.int64)
        return addr, np.zeros(addr.shape[0], dtype=bool)
    raise KeyError(name)


def measure(config: str, name: str, total: int = 16 * MiB) -> dict[str, float]:
    """Our figures for one (configuration, pattern), as the reference defines them."""
    sysm = system(config)
    tck = sysm.std.t.tck_ns
    if name.startswith("idle_"):
        n = 4096
        req = sysm.std.burst_bytes
        if name == "idle_seq":
            addr = np.arange(n, dtype=np.int64) * req
        else:
            cap = sysm.std.capacity_per_channel_bytes * sysm.channels
            addr = np.random.default_rng(1).integers(0, cap // req, n) * req
        done = sysm.run_closed(addr, np.zeros(n, dtype=bool), outstanding=1)
    else:
        addr, write = pattern(name, sysm, total)
        done, *_ = sysm.run(addr, write, 0)
    end = int(done.max())
    moved = addr.shape[0] * sysm.std.burst_bytes
    energy = sysm.energy(end)
    return {"gbps": moved / (end * tck), "avg_ns": sysm.latency_mean() * tck,
            "p50_ns": sysm.latency_percentile(50) * tck, "hit": sysm.row_hit_rate(),
            "pj_per_bit": energy.total_j / (moved * 8) * 1e12}
