"""``npusim calibrate CHIP MEASURED.csv --fit FIELD[,FIELD...]``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cal = sub.add_parser(
        "calibrate", help="fit chip fields to measured latencies; write a calibrated chip",
        description="Fit numeric chip fields (key paths such as clock, dram.bandwidth, "
        "overheads.per_layer_s) to measured latencies. MEASURED.csv has a header with "
        "workload and latency_s (seconds), optionally layer (a layer's time; empty: the whole "
        "query's, host path included) and batch. The calibrated chip is written to a separate "
        "file that records what was fitted, to what, and the residuals.")
    cal.add_argument("arch", help="chip YAML or preset name")
    cal.add_argument("measured", help="measurement CSV")
    cal.add_argument("--fit", required=True, metavar="FIELD[,FIELD...]",
                     help="chip key paths to fit (real-valued fields)")
    cal.add_argument("--bounds", action="append", metavar="FIELD=LOW:HIGH",
                     help="a fitted field's range, units allowed (clock=0.5GHz:2GHz), kept "
                     "within its physical range; default: that range (clock 100 MHz..4 GHz, "
                     "dram.bandwidth up to the standard's peak, overheads 0..the shortest "
                     "measurement), else ±50%% of its value")
    cal.add_argument("--holdout", type=int, default=0, metavar="K",
                     help="keep the last K rows of the CSV out of the fit and report their error")
    cal.add_argument("--holdout-workloads", default="", metavar="NAME[,NAME...]",
                     help="keep these workloads' rows out of the fit and report their error")
    cal.add_argument("--memory", default="bandwidth", help="memory model (as for npusim run)")
    cal.add_argument("--report", action="store_true",
                     help="also print, per row, the compute / memory / vector / overhead share "
                     "of its time and its sensitivity to each field (d ln t / d ln x): a "
                     "field no fitted row is sensitive to cannot be fitted")
    cal.add_argument("-o", "--out", metavar="FILE",
                     help="calibrated chip YAML (default: <chip>.calibrated.yaml here)")
    cal.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from npusim.calibration import calibrate, load_measurements, write_calibrated
    from npusim.inputs import check_outputs, input_paths, resolve_chip

    check_outputs({"--out": (args.out, (".yaml", ".yml"))},
                  input_paths(args.arch, args.measured))
    chip = resolve_chip(args.arch)
    rows = load_measurements(args.measured)
    fields = [f.strip() for f in args.fit.split(",") if f.strip()]
    held = [w.strip() for w in args.holdout_workloads.split(",") if w.strip()]
    res = calibrate(chip, rows, fields, bounds=args.bounds, holdout=args.holdout,
                    holdout_workloads=held, memory=args.memory,
                    data_name=Path(args.measured).name, source=args.measured)
    table = res.table.copy()
    for col in ("measured_s", "initial_s", "predicted_s"):
        table[col.replace("_s", "_ms")] = table.pop(col) * 1e3
    table["error_%"] = table.pop("error") * 100
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.report:
        rep = res.report.copy()
        sens = [c for c in rep.columns if c.startswith("d_ln_t/")]
        for name in ("compute", "memory", "vector", "overhead"):
            rep[f"{name}_%"] = rep.pop(name) * 100
        rep = rep[[c for c in rep.columns if c not in sens] + sens]
        print("\nwhat bounds each row (share of its time) and its sensitivity to each field:")
        print(rep.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    cal = res.chip.calibration
    assert cal is not None
    ident = res.identifiability
    assert ident is not None
    print()
    for r in res.fields.itertuples():
        se = r.stderr
        spread = ("not identified" if se is not None and not math.isfinite(se) else
                  f"± {se:.3g} (standard error)" if se is not None else
                  f"± {r.per_1pct_error:.3g} per 1 % of measurement error (no rows to spare "
                  f"for a standard error)")
        print(f"{r.field:<28} {r.initial:.6g} -> {r.fitted:.6g}  {spread}  "
              f"(bounds {r.low:.6g} .. {r.high:.6g})")
    print(f"identifiability  Jacobian rank {ident.rank} of {len(fields)}")
    print(f"fit error       {cal.fit_rms_error:.3%} rms over {int((~table['held_out']).sum())} rows")
    if cal.holdout_rms_error is not None:
        print(f"hold-out error  {cal.holdout_rms_error:.3%} rms over "
              f"{int(table['held_out'].sum())} rows (kept out of the fit: the honest figure)")
    stem = Path(args.arch).stem if args.arch.endswith((".yaml", ".yml")) else args.arch
    out = args.out or f"{stem}.calibrated.yaml"
    inputs = [args.arch, args.measured]
    if not Path(args.arch).exists():
        from npusim.presets import preset_path

        inputs.append(str(preset_path(args.arch)))
    write_calibrated(res, out, inputs)
    print(f"\nwrote {out} (a calibrated chip: not a preset)")
    return 0
