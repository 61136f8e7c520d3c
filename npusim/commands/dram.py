"""``npusim dram-bench``: memory microbenchmark on the cycle-approximate DRAM.

    npusim dram-bench [CHIP.yaml | --standard NAME] --pattern PATTERN --bytes N
                      [--channels N] [--request-bytes B] [--outstanding N] [--trace FILE]
                      [--commands OUT.csv] [--out OUT.json] [--json]

With a chip, every ``dram:`` field of it applies (standard and overrides, channels, mapping,
interleave, page policy, refresh, queue depth, window, handover, bank queue); flags given
explicitly win. Patterns: ``stream-read``/``stream-write`` (one contiguous range, fast path
when long and open loop), ``random-read`` (request-aligned uniform addresses, seed 0),
``mix-2r1w`` (two sequential reads to one region per sequential write to another),
``tile`` (512-byte rows of a tile with a 64 KiB pitch). A request of ``--request-bytes``
(default one burst) is that many consecutive bursts. Open loop (default): every request is
offered at once (or at its trace cycle) and the controller queues decide how many are in
flight; ``--outstanding N``: closed loop, request i + N is offered when request i completes.
``--trace`` reads ``0xADDRESS READ|WRITE CYCLE`` lines (DRAMSim3's format; cycles are DRAM
clocks). The output starts with what the run assumed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npusim import progress
from npusim.commands import add_quiet
from npusim.errors import SpecError
from npusim.spec.dram_catalog import DramStandard, get_standard
from npusim.units import parse_bytes

if TYPE_CHECKING:  # imported when a benchmark runs: `npusim run` never loads the DRAM kernels
    import numpy as np

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
    p.add_argument("--policy", choices=("open", "closed"), help="page policy (default: chip's, "
                                                                 "else open)")
    p.add_argument("--refresh", choices=("all-bank", "per-bank", "none"),
                   help="refresh (default: chip's, else all-bank)")
    p.add_argument("--request-bytes", help="bytes per request, a multiple of the burst "
                                           "(default: one burst)")
    p.add_argument("--outstanding", type=int, help="closed loop: requests in flight")
    p.add_argument("--trace", help="request trace: 0xADDRESS READ|WRITE CYCLE per line")
    p.add_argument("--commands", help="write the DRAM command trace to this CSV file")
    p.add_argument("--out", help="write the figures as JSON to this file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_quiet(p)
    p.set_defaults(func=_main)


def read_trace(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(address, write, cycle) arrays from a DRAMSim3-style text trace."""
    import numpy as np

    from npusim.spec.yamlio import read_text

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


def _request_starts(name: str, nbytes: int, req: int, cap: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(start address, write) of each request of a synthetic pattern."""
    import numpy as np

    n = max(nbytes // req, 1)
    i = np.arange(n, dtype=np.int64)
    if name in ("stream-read", "stream-write"):
        return i * req, np.full(n, name == "stream-write")
    if name == "random-read":
        rng = np.random.default_rng(0)
        return rng.integers(0, cap // req, n) * req, np.zeros(n, dtype=bool)
    if name == "mix-2r1w":
        write = i % 3 == 2
        seq = np.where(write, i // 3, i - i // 3)
        return (seq * req + np.where(write, cap // 2, 0)) % cap, write
    if name == "tile":
        per_row = max(512 // req, 1)
        return ((i // per_row) * 65536 + (i % per_row) * req) % cap, np.zeros(n, dtype=bool)
    raise SpecError(f"unknown pattern {name!r}")


def _bursts(starts: np.ndarray, write: np.ndarray, per_req: int, bb: int
            ) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    k = np.arange(per_req, dtype=np.int64) * bb
    return (starts[:, None] + k).ravel(), np.repeat(write, per_req)


def bench(std: DramStandard, pattern: str, nbytes: int, channels: int | None = None,
          trace: str | None = None, record: bool = False, outstanding: int | None = None,
          request_bytes: int | None = None, **options: Any) -> tuple[dict, DramSystem]:
    """Run one benchmark; returns the figures and the system (for its command trace)."""
    from npusim.dram.system import DramSystem

    sysm = DramSystem(std, channels, record=record, **options)
    bb = std.burst_bytes
    req = request_bytes or bb
    if req % bb or req <= 0:
        raise SpecError(f"--request-bytes {req} must be a positive multiple of the {bb} B burst")
    if outstanding is not None and outstanding < 1:
        raise SpecError(f"--outstanding must be positive, got {outstanding}")
    per_req = req // bb
    if trace:
        addr, write, cyc = read_trace(trace)
        done, *_ = sysm.run(addr, write, cyc)
        start, end, moved = int(cyc.min()), int(done.max()), len(addr) * bb
    elif pattern in ("stream-read", "stream-write") and outstanding is None:
        end = sysm.stream(0, nbytes, pattern == "stream-write", 0)
        start, moved = 0, -(-nbytes // bb) * bb
    else:
        cap = std.capacity_per_channel_bytes * sysm.channels
        starts, write = _request_starts(pattern, nbytes, req, cap)
        if outstanding is None:
            done, *_ = sysm.run(*_bursts(starts, write, per_req, bb), 0)
        else:
            done = sysm.run_closed(starts, write, outstanding, bursts=per_req)
        start, end, moved = 0, int(done.max()), len(starts) * req
    seconds = max(end - start, 1) * sysm.tck_s
    energy = sysm.energy(end)
    gbs = moved / seconds / 1e9
    tck_ns = std.t.tck_ns
    p = sysm.params
    from npusim.kernels import dram as K

    out = {
        "standard": std.name, "channels": sysm.channels, "pattern": "trace" if trace else pattern,
        "assumed": {
            "request_bytes": bb if trace else req, "burst_bytes": bb,
            "outstanding": outstanding if outstanding is not None else "open loop",
            "queue_depth": int(p[K.P_DEPTH]), "window": int(p[K.P_WIN]),
            "handover_per_clock": int(p[K.P_HAND]), "bank_queue": int(p[K.P_BANKQ]),
            "mapping": ":".join(sysm.mapping.order),
            "interleave_bytes": sysm.mapping.chunk_bursts * bb,
            "page_policy": "closed" if p[K.P_CLOSED] else "open",
            "refresh": ("none", "all-bank", "per-bank")[int(p[K.P_REFMODE])],
            "powerdown_idle": int(p[K.P_PDIDLE]),
        },
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


def _setup(args: argparse.Namespace) -> tuple[DramStandard, int | None, dict[str, Any]]:
    """The standard, channel count and DramSystem options; explicit flags win."""
    if args.chip and args.standard:
        raise SpecError("give a chip file or --standard, not both")
    opts: dict[str, Any] = {}
    if args.chip:
        from npusim.dram.system import system_options
        from npusim.engine.dram import standard_for_chip
        from npusim.spec.arch import load_arch

        chip = load_arch(args.chip)
        std, channels = standard_for_chip(chip), args.channels or chip.dram.n_channels
        opts = system_options(chip.dram)
    else:
        try:
            std, channels = get_standard(args.standard or "HBM3"), args.channels
        except KeyError as exc:
            raise SpecError(exc.args[0]) from None
    if args.policy:
        opts["policy"] = args.policy
    if args.refresh:
        opts["refresh"] = args.refresh
    return std, channels, opts


def _refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    inputs = {Path(p).resolve(): p for p in (args.chip, args.trace) if p and Path(p).exists()}
    outputs = [(flag, p) for flag, p in (("--commands", args.commands), ("--out", args.out)) if p]
    for flag, p in outputs:
        if Path(p).resolve() in inputs:
            raise SpecError(f"{flag} {p}: is an input of this run; refusing to overwrite it")
    if len(outputs) == 2 and Path(outputs[0][1]).resolve() == Path(outputs[1][1]).resolve():
        raise SpecError(f"--commands and --out name the same file {outputs[0][1]}")


def _main(args: argparse.Namespace) -> int:
    _refuse_overwriting_inputs(args)
    std, channels, opts = _setup(args)
    try:
        nbytes = parse_bytes(args.bytes)
        req = parse_bytes(args.request_bytes) if args.request_bytes else None
    except ValueError as exc:
        raise SpecError(f"--bytes/--request-bytes: {exc}") from None
    if nbytes <= 0:
        raise SpecError(f"--bytes must be positive, got {args.bytes!r}")
    if channels is not None and channels < 1:
        raise SpecError(f"--channels must be positive, got {channels}")
    if channels is not None:
        from npusim.dram.system import make_params
        from npusim.kernels.dram import state_bytes
        from npusim.limits import check_memory

        # The controller's state arrays; their shapes follow the organisation alone.
        check_memory(f"--channels {channels}",
                     state_bytes(channels, make_params(std, "open", "none", 1)))
    with progress.busy("dram-bench"):
        out, sysm = bench(std, args.pattern, nbytes, channels, args.trace,
                          record=bool(args.commands), outstanding=args.outstanding,
                          request_bytes=req, **opts)
    if args.commands:
        sysm.write_commands(args.commands)
    if args.out:
        from npusim._io import atomic_write_text

        atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    a = out["assumed"]
    print(f"{out['standard']} x{out['channels']} channels, {out['pattern']}, "
          f"{out['bytes']} B in {out['time_s'] * 1e6:.2f} us")
    loop = a["outstanding"] if a["outstanding"] == "open loop" else \
        f"closed loop, {a['outstanding']} outstanding"
    print(f"  assumed    {a['request_bytes']} B requests ({a['burst_bytes']} B bursts), {loop}; "
          f"queues {a['queue_depth']}, window {a['window']} ({a['handover_per_clock']}/clock), "
          f"bank queue {a['bank_queue']}; mapping {a['mapping']}, interleave "
          f"{a['interleave_bytes']} B; {a['page_policy']} page, {a['refresh']} refresh"
          + (f", power-down after {a['powerdown_idle']} idle clocks"
             if a["powerdown_idle"] else ""))
    print(f"  achieved   {out['achieved_gb_s']:.2f} GB/s ({out['percent_of_peak']:.1f} % of "
          f"{out['peak_gb_s']:.1f} GB/s peak)")
    print(f"  read lat.  avg {out['read_latency_avg_ns']:.1f} ns, median "
          f"{out['read_latency_median_ns']:.1f} ns, p99 {out['read_latency_p99_ns']:.1f} ns")
    print(f"  row hits   {100 * out['row_hit_rate']:.1f} %")
    print(f"  energy     {out['pj_per_bit']:.2f} pJ/bit")
    return 0
