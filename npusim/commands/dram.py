"""``npusim dram-bench``: open-loop memory microbenchmark on the cycle-approximate DRAM.

    npusim dram-bench [CHIP.yaml | --standard NAME] --pattern PATTERN --bytes N
                      [--channels N] [--trace FILE] [--commands OUT.csv] [--json]

Patterns: ``stream-read``/``stream-write`` (one contiguous range, fast path when long),
``random-read`` (burst-aligned uniform addresses, seed 0), ``mix-2r1w`` (two sequential
reads to one region per sequential write to another), ``tile`` (512-byte rows of a tile
with a 64 KiB pitch). ``--trace`` reads ``0xADDRESS READ|WRITE CYCLE`` lines (DRAMSim3's
format; cycles are DRAM clocks). Every request is offered at once (or at its trace cycle);
the controller queues decide how many are in flight.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from npusim import progress
from npusim.commands import add_quiet
from npusim.errors import SpecError
from npusim.spec.dram_catalog import DramStandard, get_standard
from npusim.spec.yamlio import read_text
from npusim.units import parse_bytes

if TYPE_CHECKING:  # imported when a benchmark runs: `npusim run` never loads the DRAM kernels
    from npusim.dram.system import DramSystem

__all__ = ["bench", "read_trace", "register"]

PATTERNS = ("stream-read", "stream-write", "random-read", "mix-2r1w", "tile")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("dram-bench", help="memory microbenchmark on the cycle DRAM model")
    p.add_argument("chip", nargs="?", help="chip YAML or preset whose DRAM to use")
    p.add_argument("--standard", help="DRAM standard, e.g. HBM3 or LPDDR5-6400")
    p.add_argument("--pattern", choices=PATTERNS, default="stream-read")
    p.add_argument("--bytes", default="16 MiB", help="bytes to move (e.g. '64 MiB')")
    p.add_argument("--channels", type=int, help="channels (default: chip's or standard's)")
    p.add_argument("--policy", choices=("open", "closed"), default="open")
    p.add_argument("--refresh", choices=("all-bank", "per-bank", "none"), default="all-bank")
    p.add_argument("--trace", help="request trace: 0xADDRESS READ|WRITE CYCLE per line")
    p.add_argument("--commands", help="write the DRAM command trace to this CSV file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_quiet(p)
    p.set_defaults(func=_main)


def read_trace(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(address, write, cycle) arrays from a DRAMSim3-style text trace."""
    addrs, writes, cycles = [], [], []
    for i, line in enumerate(read_text(Path(path)).splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if len(parts) != 3:
                raise ValueError
            a, kind, cyc = parts
            k = kind.upper()
            if k not in ("READ", "WRITE"):
                raise ValueError
            addrs.append(int(a, 16))
            writes.append(k == "WRITE")
            cycles.append(int(cyc))
        except ValueError:
            raise SpecError(f"{path}:{i}: expected '0xADDRESS READ|WRITE CYCLE', got {line!r}") from None
    if not addrs:
        raise SpecError(f"{path}: no requests")
    return np.array(addrs, dtype=np.int64), np.array(writes), np.array(cycles, dtype=np.int64)


def _pattern(name: str, nbytes: int, std: DramStandard, channels: int
             ) -> tuple[np.ndarray, np.ndarray]:
    bb = std.burst_bytes
    n = max(nbytes // bb, 1)
    cap = std.capacity_per_channel_bytes * channels
    if name == "random-read":
        rng = np.random.default_rng(0)
        return rng.integers(0, cap // bb, n) * bb, np.zeros(n, dtype=bool)
    if name == "mix-2r1w":
        i = np.arange(n)
        write = i % 3 == 2
        seq = np.where(write, i // 3, i - i // 3)
        return (seq * bb + np.where(write, cap // 2, 0)) % cap, write
    if name == "tile":
        row_bursts = max(512 // bb, 1)
        i = np.arange(n)
        return ((i // row_bursts) * 65536 + (i % row_bursts) * bb) % cap, np.zeros(n, dtype=bool)
    raise SpecError(f"unknown pattern {name!r}")


def bench(std: DramStandard, pattern: str, nbytes: int, channels: int | None = None,
          trace: str | None = None, record: bool = False, **options: object) -> tuple[dict, DramSystem]:
    """Run one benchmark; returns the figures and the system (for its command trace)."""
    from npusim.dram.system import DramSystem

    sysm = DramSystem(std, channels, record=record, **options)  # type: ignore[arg-type]
    bb = std.burst_bytes
    if trace:
        addr, write, cyc = read_trace(trace)
        done, *_ = sysm.run(addr, write, cyc)
        start, end, moved = int(cyc.min()), int(done.max()), len(addr) * bb
    elif pattern in ("stream-read", "stream-write"):
        end = sysm.stream(0, nbytes, pattern == "stream-write", 0)
        start, moved = 0, -(-nbytes // bb) * bb
    else:
        addr, write = _pattern(pattern, nbytes, std, sysm.channels)
        done, *_ = sysm.run(addr, write, 0)
        start, end, moved = 0, int(done.max()), len(addr) * bb
    seconds = max(end - start, 1) * sysm.tck_s
    energy = sysm.energy(end)
    gbs = moved / seconds / 1e9
    tck_ns = std.t.tck_ns
    out = {
        "standard": std.name, "channels": sysm.channels, "pattern": "trace" if trace else pattern,
        "bytes": moved, "time_s": seconds, "achieved_gb_s": gbs,
        "peak_gb_s": sysm.peak_bandwidth / 1e9,
        "percent_of_peak": 100 * gbs * 1e9 / sysm.peak_bandwidth,
        "read_latency_avg_ns": sysm.latency_mean() * tck_ns,
        "read_latency_median_ns": sysm.latency_percentile(50) * tck_ns,
        "read_latency_p99_ns": sysm.latency_percentile(99) * tck_ns,
        "row_hit_rate": sysm.row_hit_rate(),
        "pj_per_bit": energy.total_j / (moved * 8) * 1e12,
        "energy_j": {"activate": energy.activate_j, "read": energy.read_j,
                     "write": energy.write_j, "refresh": energy.refresh_j,
                     "background": energy.background_j},
    }
    return out, sysm


def _standard(args: argparse.Namespace) -> tuple[DramStandard, int | None]:
    if args.chip and args.standard:
        raise SpecError("give a chip file or --standard, not both")
    if args.chip:
        from npusim.engine.dram import standard_for_chip
        from npusim.spec.arch import load_arch

        chip = load_arch(args.chip)
        return standard_for_chip(chip), args.channels or chip.dram.n_channels
    try:
        return get_standard(args.standard or "HBM3"), args.channels
    except KeyError as exc:
        raise SpecError(exc.args[0]) from None


def _main(args: argparse.Namespace) -> int:
    std, channels = _standard(args)
    try:
        nbytes = parse_bytes(args.bytes)
    except ValueError as exc:
        raise SpecError(f"--bytes: {exc}") from None
    if nbytes <= 0:
        raise SpecError(f"--bytes must be positive, got {args.bytes!r}")
    if channels is not None and channels < 1:
        raise SpecError(f"--channels must be positive, got {channels}")
    if channels is not None:
        from npusim.kernels import dram as K
        from npusim.limits import check_memory

        # The controller's state arrays (kernels/dram.py init_state), 8-byte words each.
        words = std.banks * K.N_BANK_STATE + std.bank_groups * K.N_GROUP_STATE \
            + K.N_CHAN_STATE + 4 + K.N_COUNTERS
        check_memory(f"--channels {channels}", channels * words * 8)
    with progress.busy("dram-bench"):
        out, sysm = bench(std, args.pattern, nbytes, channels, args.trace,
                          record=bool(args.commands), policy=args.policy, refresh=args.refresh)
    if args.commands:
        sysm.write_commands(args.commands)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['standard']} x{out['channels']} channels, {out['pattern']}, "
          f"{out['bytes']} B in {out['time_s'] * 1e6:.2f} us")
    print(f"  achieved   {out['achieved_gb_s']:.2f} GB/s ({out['percent_of_peak']:.1f} % of "
          f"{out['peak_gb_s']:.1f} GB/s peak)")
    print(f"  read lat.  avg {out['read_latency_avg_ns']:.1f} ns, median "
          f"{out['read_latency_median_ns']:.1f} ns, p99 {out['read_latency_p99_ns']:.1f} ns")
    print(f"  row hits   {100 * out['row_hit_rate']:.1f} %")
    print(f"  energy     {out['pj_per_bit']:.2f} pJ/bit")
    return 0
