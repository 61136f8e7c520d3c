"""``npusim run``, ``compile``, ``validate`` and ``list``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npusim.commands import (
    add_plan_options,
    add_quiet,
    add_routing_option,
    add_weights_resident,
    plan_options,
    routing_option,
    weights_resident,
)
from npusim.errors import NpusimError, SpecError
from npusim.extras import require

if TYPE_CHECKING:
    from npusim.spec.system import System

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="simulate a workload on a chip (default: tpu_v1, ResNet-50)")
    run.add_argument("arch", nargs="?", help="chip YAML, preset name or SCALE-Sim .cfg; or a "
                     "system YAML or system preset")
    run.add_argument("workload", nargs="?", help="built-in name, workload YAML, SCALE-Sim "
                     "topology .csv, .onnx or HF config.json")
    run.add_argument("--batch", type=int, default=1)
    run.add_argument("--attention", choices=("fused", "materialized"), default=None,
                     help="for an HF config.json workload: fused (default) or materialized "
                     "attention")
    run.add_argument("--weights", default=None, metavar="PREC|CLASS=PREC,…",
                     help="for an HF config.json workload: the weight precision (default "
                     "int8) or one per tensor class, e.g. experts=mxfp4,default=bf16 (see "
                     "npusim llm --help)")
    add_routing_option(run)
    run.add_argument("--memory", default="bandwidth",
                     help="memory model: bandwidth (default), ideal, cycle")
    run.add_argument("--fidelity", default="event",
                     help="event (default: the tile event model) or roofline (per-layer bound)")
    run.add_argument("--tile-trace", metavar="FILE", help="run a tile trace instead of compiling")
    run.add_argument("--out", metavar="FILE", help="write the per-layer table (.csv/.json/.parquet)")
    run.add_argument("--rows", type=int, default=None, help="print at most this many layers")
    run.add_argument("--trace", metavar="FILE",
                     help="write a Chrome trace-event JSON timeline (opens in Perfetto)")
    run.add_argument("--scenario", choices=("single-stream", "offline", "server"),
                     default=None,
                     help="single-stream: batch-1 latency; offline: throughput at the batch "
                     "(a power of two) that maximises it within DRAM; server: Poisson "
                     "queries at --rate, batched while the chip is busy, p99 latency")
    run.add_argument("--rate", type=float, default=None,
                     help="server scenario: queries per second")
    run.add_argument("--queries", type=int, default=2000,
                     help="server scenario: queries to run (default 2000)")
    run.add_argument("--latency-bound", default=None, metavar="TIME",
                     help="server scenario: the p99 latency bound, e.g. 15ms")
    run.add_argument("--seed", type=int, default=0, help="server scenario: arrival seed")
    run.add_argument("--dram-commands", metavar="FILE",
                     help="with --memory cycle: write every DRAM command of the run as CSV")
    run.add_argument("--host", action="store_true",
                     help="include the host path (input upload, runtime overheads, result "
                     "download: the chip's host: and overheads: fields); --scenario always does")
    add_weights_resident(run)
    add_quiet(run)
    add_plan_options(run)
    run.set_defaults(func=_run)

    comp = sub.add_parser("compile", help="compile a workload to a tile trace file")
    comp.add_argument("arch")
    comp.add_argument("workload")
    comp.add_argument("--batch", type=int, default=1)
    comp.add_argument("-o", "--out", required=True, metavar="FILE", help=".parquet or .csv")
    comp.add_argument("--ideal", action="store_true", help="tile for an ideal memory")
    add_weights_resident(comp)
    comp.set_defaults(func=_compile)

    val = sub.add_parser("validate", help="check a chip, system, workload, sweep or SCALE-Sim file")
    val.add_argument("files", nargs="+")
    val.set_defaults(func=_validate)

    lst = sub.add_parser("list", help="list chip and system presets, workloads and DRAM "
                         "standards")
    lst.set_defaults(func=_list)


def _needs_parquet(table: str | None = None, tile_trace: str | None = None) -> None:
    """Refuse before the work, not after it, when a Parquet file needs a missing pyarrow (a
    tile trace is Parquet unless it is ``.csv``)."""
    if (table and Path(table).suffix.lower() == ".parquet") or (
            tile_trace and Path(tile_trace).suffix.lower() != ".csv"):
        require("pyarrow")


def _run(args: argparse.Namespace) -> int:
    from npusim.inputs import TABLE_SUFFIXES, check_outputs, input_paths

    check_outputs({"--out": (args.out, TABLE_SUFFIXES), "--trace": (args.trace, (".json",)),
                   "--dram-commands": (args.dram_commands, (".csv",))},
                  input_paths(args.arch, args.workload, args.tile_trace))
    _needs_parquet(table=args.out, tile_trace=args.tile_trace)
    if args.dram_commands and args.memory != "cycle":
        raise SpecError("--dram-commands needs --memory cycle")
    if args.scenario and (args.tile_trace or args.batch != 1 or args.dram_commands):
        raise SpecError("--scenario runs several batches: give neither --batch, "
                        "--tile-trace nor --dram-commands with it")
    if (args.rate is not None or args.latency_bound) and args.scenario != "server":
        raise SpecError("--rate and --latency-bound belong to --scenario server")
    if args.scenario and args.fidelity != "event":
        raise SpecError("--scenario runs the event model; drop --fidelity")
    if args.batch < 1:
        raise SpecError(f"--batch must be at least 1, got {args.batch}")
    if args.tile_trace and args.weights_resident != "auto":
        raise SpecError("a tile trace was compiled with its weights' place; give "
                        "--weights-resident to `npusim compile` instead")
    hf = not args.tile_trace and str(args.workload or "").lower().endswith(".json")
    for opt in ("attention", "weights", "routing"):
        if getattr(args, opt) and not hf:
            raise SpecError(f"--{opt} applies to an HF config.json workload only")
    args.hf_options = _hf_options(args) if hf else {}
    if args.tile_trace and args.workload:
        raise SpecError(f"--tile-trace runs a compiled program: give no workload with it "
                        f"(got {args.workload!r}; it was compiled into the trace)")
    if args.tile_trace and args.batch != 1:
        raise SpecError("--tile-trace runs a compiled program: its batch was fixed by "
                        "`npusim compile --batch`")
    if args.fidelity == "roofline" and args.memory == "cycle":
        raise SpecError("--fidelity roofline bounds each layer by peak DRAM bandwidth and has "
                        "no memory model: drop --memory cycle or use --fidelity event")
    from npusim.inputs import naming_inputs

    with naming_inputs(args.workload, **({"batch": args.batch} if args.batch != 1 else {})):
        return _simulate_and_write(args)


def _hf_options(args: argparse.Namespace) -> dict[str, Any]:
    """from_hf_config's keywords for ``--attention``, ``--weights`` and ``--routing``."""
    out: dict[str, Any] = {"attention": args.attention or "fused"}
    if args.weights:
        from npusim.errors import WorkloadError
        from npusim.workloads.precision import check_precisions, parse_weights

        try:
            out["weights"] = parse_weights(args.weights)
            check_precisions(out["weights"])
        except WorkloadError as exc:
            raise WorkloadError(f"--{exc}") from None
    return {**out, **routing_option(args)}


def _simulate_and_write(args: argparse.Namespace) -> int:
    from npusim.inputs import resolve_chip, resolve_system, resolve_workload
    from npusim.report.export import format_summary, format_table, save_result
    from npusim.simulate import simulate, simulate_program

    resident = weights_resident(args)
    system = resolve_system(args.arch)
    if system is not None:
        return _run_system(args, system, resident)
    if plan_options(args) != {}:
        raise SpecError("--tp, --pp, --dp, --ep, --micro-batches, --collective, --all-to-all "
                        "and --allreduce-precision need a system (a system YAML or preset: "
                        "`npusim list`), not a chip")
    chip = resolve_chip(args.arch)
    memory: object = args.memory
    if args.dram_commands:
        from npusim.engine.dram import CycleDram

        memory = CycleDram.from_chip(chip, record=True)
    if args.scenario:
        from npusim.scenarios import run_scenario
        from npusim.units import parse_time

        bound = parse_time(args.latency_bound) if args.latency_bound else None
        scen = run_scenario(chip, resolve_workload(args.workload, **args.hf_options),
                            args.scenario, memory=args.memory, weights_resident=resident,
                            rate=args.rate, queries=args.queries, latency_bound_s=bound,
                            seed=args.seed)
        from npusim.report.export import human_table

        print(human_table(scen.tried).to_string(index=False))
        print(f"\n{args.scenario}: batch {scen.batch}\n")
        if scen.server:
            sv = scen.server
            met = ("no bound given" if bound is None else
                   f"bound {bound * 1e3:g} ms {'met' if sv['bound_met'] else 'NOT met'}")
            print(f"server: {sv['queries']} queries at {sv['rate']:g}/s, latency p50 "
                  f"{sv['p50_latency_s'] * 1e3:.3f} ms, p90 {sv['p90_latency_s'] * 1e3:.3f} "
                  f"ms, p99 {sv['p99_latency_s'] * 1e3:.3f} ms ({met}); mean batch "
                  f"{sv['mean_batch']:.2f}, {sv['queries_per_s']:.1f} queries/s\n")
        result = scen.result
    elif args.tile_trace:
        from npusim.compiler.program import load_program

        # A CSV trace names neither chip nor cores: it is taken as written for this chip.
        csv = Path(args.tile_trace).suffix.lower() == ".csv"
        program = load_program(args.tile_trace, n_cores=chip.n_cores if csv else None)
        if program.chip and program.chip != chip.name:
            # Its tiles were sized for that chip's arrays and SRAM: on another they mean nothing.
            raise SpecError(f"tile trace {args.tile_trace} was compiled for chip "
                            f"{program.chip!r}, not {chip.name!r}: compile the workload for "
                            f"{chip.name!r} (`npusim compile`)", args.tile_trace)
        result = simulate_program(chip, program, memory=memory,  # type: ignore[arg-type]
                                  trace=bool(args.trace), fidelity=args.fidelity)
    else:
        wl = resolve_workload(args.workload, batch=args.batch, **args.hf_options)
        result = simulate(chip, wl, memory=memory, trace=bool(args.trace),  # type: ignore[call-overload]
                          fidelity=args.fidelity, weights_resident=resident, host=args.host)
    if args.rows != 0:
        print(format_table(result, args.rows))
        print()
    print(format_summary(result))
    if args.fidelity != "event":
        print(f"fidelity        {args.fidelity} (per-layer bound of the compiled program)")
    if args.out:
        save_result(result, args.out)
        print(f"\nwrote {args.out}")
    if args.trace:
        from npusim.report.trace import to_chrome_trace

        to_chrome_trace(result, args.trace)
        print(f"\nwrote {args.trace} (open it at https://ui.perfetto.dev)")
    if args.dram_commands:
        n = memory.system.write_commands(args.dram_commands)  # type: ignore[attr-defined]
        print(f"\nwrote {args.dram_commands}: {n} DRAM commands")
    return 0


def _run_system(args: argparse.Namespace, system: System, resident: bool | None) -> int:
    from npusim.inputs import resolve_workload
    from npusim.report.export import format_system
    from npusim.system import simulate_system

    if args.scenario or args.tile_trace or args.dram_commands or args.fidelity != "event":
        raise SpecError("a system runs the event model on compiled workloads: "
                        "--scenario, --tile-trace, --dram-commands and --fidelity apply to "
                        "one chip")
    wl = resolve_workload(args.workload, batch=args.batch, **args.hf_options)
    res = simulate_system(system, wl, memory=args.memory, weights_resident=resident,
                          trace=bool(args.trace), **plan_options(args))
    print(format_system(res, args.rows))
    if args.out:
        from npusim.report.export import save_frame

        save_frame(res.chips, args.out)
        print(f"\nwrote {args.out} (one row per chip)")
    if args.trace:
        res.to_chrome_trace(args.trace)
        print(f"\nwrote {args.trace} (open it at https://ui.perfetto.dev)")
    return 0


def _compile(args: argparse.Namespace) -> int:
    from npusim.compiler.lower import compile_workload
    from npusim.compiler.program import save_program
    from npusim.inputs import (
        check_outputs,
        input_paths,
        naming_inputs,
        resolve_chip,
        resolve_workload,
    )

    check_outputs({"--out": (args.out, (".parquet", ".csv"))},
                  input_paths(args.arch, args.workload))
    _needs_parquet(tile_trace=args.out)
    chip = resolve_chip(args.arch)
    with naming_inputs(args.workload, **({"batch": args.batch} if args.batch != 1 else {})):
        wl = resolve_workload(args.workload, batch=args.batch)
        program = compile_workload(chip, wl, ideal=args.ideal,
                                   weights_resident=weights_resident(args))
    save_program(program, args.out)
    print(f"wrote {args.out}: {len(program.layers)} layers, {program.n_tiles} tiles, "
          f"{program.n_cores} core(s)")
    return 0


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".cfg":
        return "scalesim-cfg"
    if suffix == ".csv":
        return "scalesim-topology"
    if suffix == ".onnx":
        return "onnx"
    from npusim.spec.yamlio import is_system_data, load_yaml

    data, _ = load_yaml(path)
    if is_system_data(data):
        return "system"
    if isinstance(data, dict):
        if "layers" in data:
            return "workload"
        if "axes" in data or "sweep" in data or "base" in data or (
                "system" in data and "workloads" in data):
            return "sweep"
    return "chip"


def _validate_one(path: Path) -> str:
    kind = _kind_of(path)
    if kind == "scalesim-cfg":
        from npusim.spec.arch import load_scalesim_cfg

        chip = load_scalesim_cfg(path)
        return f"SCALE-Sim config, {chip.cores.core.systolic.rows}x{chip.cores.core.systolic.cols}"
    if kind == "scalesim-topology":
        from npusim.spec.scalesim import load_scalesim_topology

        return f"SCALE-Sim topology, {len(load_scalesim_topology(path))} layers"
    if kind == "onnx":
        from npusim.workloads import from_onnx

        return f"ONNX model, {len(from_onnx(path))} layers"
    if kind == "workload":
        from npusim.workloads import load_workload

        wl = load_workload(path)
        return f"workload {wl.name!r}, {len(wl)} layers, {wl.macs() / 1e9:.3f} GMACs"
    if kind == "system":
        from npusim.spec.system import load_system

        system = load_system(path)
        return (f"system {system.name!r}, {system.count} x {system.chip_spec.name}, "
                f"{system.topology.kind}, {system.link.kind} "
                f"{system.link.bandwidth / 1e9:.1f} GB/s per direction{_network(system)}")
    if kind == "sweep":
        from npusim.sweep.expand import describe
        from npusim.sweep.spec import load_sweep

        spec = load_sweep(path)
        return f"sweep, {describe(spec)}"
    from npusim.spec.arch import load_arch

    chip = load_arch(path)
    return (f"chip {chip.name!r}, {chip.n_cores} core(s), "
            f"{chip.peak_ops_per_second() / 1e12:.1f} TOPS {chip.default_precision}, "
            f"DRAM {chip.dram.peak_bandwidth / 1e9:.1f} GB/s")


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for name in args.files:
        path = Path(name)
        try:
            print(f"{name}: OK: {_validate_one(path)}")
        except SpecError as exc:
            status = 2
            for issue in exc.issues:
                print(issue.format(exc.source or name))
        except NpusimError as exc:
            status = 2
            print(f"{name}: {exc}")
    return status


def _list(args: argparse.Namespace) -> int:
    from npusim.presets import list_presets, list_workloads
    from npusim.spec.arch import load_arch

    print("chip presets (arch/):")
    for name in list_presets():
        try:
            chip = load_arch(name)
            print(f"  {name:14s} {chip.name} — {chip.n_cores} core(s), "
                  f"{chip.peak_ops_per_second() / 1e12:.1f} TOPS {chip.default_precision}, "
                  f"{chip.dram.standard} {chip.dram.peak_bandwidth / 1e9:.0f} GB/s")
        except NpusimError as exc:
            print(f"  {name:14s} INVALID: {str(exc).splitlines()[0]}")
    from npusim.presets import list_systems
    from npusim.spec.system import load_system

    print("system presets (arch/systems/, for `npusim run` and `npusim llm`):")
    for name in list_systems():
        try:
            system = load_system(name)
            print(f"  {name:16s} {system.count} x {system.chip_spec.name}, "
                  f"{system.topology.kind}, {system.link.kind} "
                  f"{system.link.bandwidth / 1e9:.1f} GB/s per direction{_network(system)}")
        except NpusimError as exc:
            print(f"  {name:16s} INVALID: {str(exc).splitlines()[0]}")
    print("workloads (workloads/):")
    for name in list_workloads():
        print(f"  {name}")
    from npusim.presets import WORKLOAD_DIR

    hf = sorted(p.stem for p in (WORKLOAD_DIR / "hf").glob("*.json"))
    if hf:
        print("LLM configs (workloads/hf/, for `npusim llm`; parameters in total and active "
              "per token, the input embedding table included):")
        for name in hf:
            print(f"  {name:18s} {_describe_model(name)}")
    _list_dram()
    return 0


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _describe_model(name: str) -> str:
    """``46.70B total, 12.88B active, mixtral (MoE 8 experts, top 2)`` for `npusim list`."""
    import warnings

    from npusim.workloads.hf_config import (
        active_param_count,
        load_hf_config,
        param_count,
    )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = load_hf_config(name)
    except NpusimError as exc:
        return f"INVALID: {str(exc).splitlines()[0]}"
    total, main = param_count(cfg), param_count(cfg, mtp=False)
    text = _count(total) + " total"
    if total != main:
        text += f" (incl. {_count(total - main)} MTP)"
    text += f", {_count(active_param_count(cfg))} active, {cfg.family}"
    notes = []
    if cfg.is_moe:
        notes.append(f"MoE {cfg.experts} experts, top {cfg.experts_per_token}")
    if cfg.attention_kind == "mla":
        notes.append("latent attention")
    windowed = [w for w in cfg.layer_windows if w]
    if windowed:
        notes.append(f"window {max(windowed)} on {len(windowed)}/{cfg.layers} layers")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _list_dram() -> None:
    from npusim.spec.dram_catalog import get_standard, standard_names

    print("DRAM standards (a chip's dram: standard:; per pin rate x channel width x default "
          "channels = peak; pJ/bit core + I/O):")
    for name in standard_names():
        s = get_standard(name)
        print(f"  {name:16s} {s.data_rate_mts:6.0f} MT/s x {s.channel_width_bits:3d} bit x "
              f"{s.default_channels:2d} ch = {s.channel_bandwidth * s.default_channels / 1e9:7.1f}"
              f" GB/s, {s.pj_per_bit:5.2f} pJ/bit")


def _network(system: System) -> str:
    """``, servers on ethernet_400g 50.0 GB/s`` for a two-level system, else nothing."""
    net = system.network
    return "" if net is None else (f", {system.topology.servers} servers on {net.kind} "
                                   f"{net.bandwidth / 1e9:.1f} GB/s")
